"""RNN/LSTM/GRU and the cells: outputs, final states and every gradient vs PyTorch (weights copied by state_dict,
float64), parameter names and init, compiled forward/backward and a compiled SGD step vs eager, and the error
messages worded as PyTorch's."""
import warnings

import numpy as np
import pytest

import graphnet as gn
from graphnet import nn

torch = pytest.importorskip("torch")

SEQ, BATCH, IN, HID = 4, 3, 5, 6
LAYERS = {"RNN": {}, "RNN_relu": {"nonlinearity": "relu"}, "LSTM": {}, "GRU": {}, "LSTM_proj": {"proj_size": 4}}
CONFIGS = {
    "plain": {},
    "stacked_bidirectional_batch_first": {"num_layers": 2, "bidirectional": True, "batch_first": True},
    "no_bias_bidirectional": {"bias": False, "bidirectional": True},
}


def _np(t):
    return t.detach().numpy()


def _pair(kind, kwargs):
    """The same float64 layer in torch and graphnet, graphnet's weights loaded from torch's state_dict."""
    name = kind.split("_")[0]
    tm = getattr(torch.nn, name)(IN, HID, **LAYERS[kind], **kwargs).double()
    gm = getattr(nn, name)(IN, HID, **LAYERS[kind], **kwargs, dtype=gn.float64)
    assert list(gm.state_dict()) == list(tm.state_dict())
    gm.load_state_dict({k: gn.tensor(v.detach().numpy()) for k, v in tm.state_dict().items()})
    return tm, gm


def _flat(x):
    return list(x) if isinstance(x, tuple) else [x]


def _compare(tm, gm, inputs, hidden=None, tol=1e-10):
    """Run both with the same inputs (and initial state), compare results, then the input, state and parameter
    gradients of a loss touching every result."""
    results = []
    for lib, m in ((torch, tm), (gn, gm)):
        x = lib.tensor(inputs, requires_grad=True)
        hx = None if hidden is None else tuple(lib.tensor(h, requires_grad=True) for h in hidden)
        out = m(x, hx if hx is None or len(hx) > 1 else hx[0])
        outs = [out] if not isinstance(out, tuple) else [out[0], *_flat(out[1])]
        loss = sum((o * lib.tensor(np.linspace(-1, 1, o.numel()).reshape(tuple(o.shape)))).sum() for o in outs)
        loss.backward()
        grads = [x.grad] + [h.grad for h in hx or ()] + [p.grad for p in m.parameters()]
        results.append((outs, grads))
    (t_outs, t_grads), (g_outs, g_grads) = results
    assert [tuple(o.shape) for o in g_outs] == [tuple(o.shape) for o in t_outs]
    for got, want in zip(g_outs + g_grads, t_outs + t_grads):
        np.testing.assert_allclose(_np(got), _np(want), rtol=tol, atol=tol)


@pytest.mark.parametrize("config", CONFIGS)
@pytest.mark.parametrize("kind", LAYERS)
def test_layer_matches_torch(kind, config):
    tm, gm = _pair(kind, CONFIGS[config])
    shape = (BATCH, SEQ, IN) if gm.batch_first else (SEQ, BATCH, IN)
    _compare(tm, gm, np.random.randn(*shape))


@pytest.mark.parametrize("kind", LAYERS)
def test_layer_with_initial_state_matches_torch(kind):
    tm, gm = _pair(kind, {"num_layers": 2, "bidirectional": True})
    h = np.random.randn(4, BATCH, gm.proj_size or HID)
    hidden = (h, np.random.randn(4, BATCH, HID)) if kind.startswith("LSTM") else (h,)
    _compare(tm, gm, np.random.randn(SEQ, BATCH, IN), hidden)


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("kind", LAYERS)
def test_unbatched_input_matches_torch(kind, batch_first):
    tm, gm = _pair(kind, {"num_layers": 2, "batch_first": batch_first})
    _compare(tm, gm, np.random.randn(SEQ, IN))
    h = np.random.randn(2, gm.proj_size or HID)
    _compare(tm, gm, np.random.randn(SEQ, IN), (h, np.random.randn(2, HID)) if kind.startswith("LSTM") else (h,))


def test_dropout_between_layers_only_in_training():
    with pytest.warns(UserWarning, match="non-zero dropout expects num_layers greater than 1"):
        nn.GRU(IN, HID, dropout=0.5)
    tm, gm = _pair("LSTM", {"num_layers": 3, "dropout": 1.0})
    _compare(tm, gm, np.random.randn(SEQ, BATCH, IN))  # p=1 zeroes every layer's input but the first: deterministic
    gm.dropout = 0.5
    x = gn.randn(SEQ, BATCH, IN, dtype=gn.float64)
    assert not np.allclose(_np(gm(x)[0]), _np(gm(x)[0]))
    gm.eval()
    tm.eval()
    np.testing.assert_allclose(_np(gm(x)[0]), _np(tm(torch.tensor(x.numpy()))[0]), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name,hidden,extra", [("RNNCell", 1, {}), ("RNNCell", 1, {"nonlinearity": "relu"}),
                                               ("RNNCell", 1, {"bias": False}), ("LSTMCell", 2, {}),
                                               ("LSTMCell", 2, {"bias": False}), ("GRUCell", 1, {}),
                                               ("GRUCell", 1, {"bias": False})])
def test_cells_match_torch(name, hidden, extra):
    tm = getattr(torch.nn, name)(IN, HID, **extra).double()
    gm = getattr(nn, name)(IN, HID, **extra, dtype=gn.float64)
    keys = ["weight_ih", "weight_hh"] + ([] if extra.get("bias") is False else ["bias_ih", "bias_hh"])
    assert list(gm.state_dict()) == list(tm.state_dict()) == keys
    gm.load_state_dict({k: gn.tensor(v.detach().numpy()) for k, v in tm.state_dict().items()})
    for shape, state in (((BATCH, IN), (BATCH, HID)), ((IN,), (HID,))):
        _compare(tm, gm, np.random.randn(*shape))
        _compare(tm, gm, np.random.randn(*shape), tuple(np.random.randn(*state) for _ in range(hidden)))


def test_parameters_names_shapes_and_init():
    m = nn.LSTM(IN, HID, 2, bidirectional=True)
    t = torch.nn.LSTM(IN, HID, 2, bidirectional=True)
    assert [(k, tuple(v.shape)) for k, v in m.state_dict().items()] == \
           [(k, tuple(v.shape)) for k, v in t.state_dict().items()]
    assert m._flat_weights_names == t._flat_weights_names and m._all_weights == t._all_weights
    assert all(w is getattr(m, n) for ws, ns in zip(m.all_weights, m._all_weights) for w, n in zip(ws, ns))
    m.weight_hh_l1 = nn.Parameter(gn.zeros(4 * HID, 2 * HID))
    assert m._flat_weights[m._flat_weights_names.index("weight_hh_l1")] is m.weight_hh_l1
    assert m.flatten_parameters() is None
    bound = 1 / np.sqrt(HID)
    values = np.concatenate([p.detach().numpy().ravel() for p in nn.GRU(IN, HID).parameters()])
    assert np.abs(values).max() <= bound and values.min() < -0.8 * bound and values.max() > 0.8 * bound
    assert [tuple(p.shape) for p in nn.GRUCell(IN, HID).parameters()] == [(18, 5), (18, 6), (18,), (18,)]


def test_reprs_match_torch():
    for args, kw in (((IN, HID), {}), ((IN, HID, 2), {"bias": False, "batch_first": True, "dropout": 0.1,
                                                      "bidirectional": True})):
        for name in ("RNN", "LSTM", "GRU"):
            assert repr(getattr(nn, name)(*args, **kw)) == repr(getattr(torch.nn, name)(*args, **kw))
    assert repr(nn.LSTM(IN, HID, proj_size=2)) == repr(torch.nn.LSTM(IN, HID, proj_size=2))
    assert repr(nn.RNN(IN, HID, 1, "relu")) == "RNN(5, 6)" and nn.RNN(IN, HID, 1, "relu").nonlinearity == "relu"
    for name, kw in (("RNNCell", {"nonlinearity": "relu"}), ("LSTMCell", {"bias": False}), ("GRUCell", {})):
        assert repr(getattr(nn, name)(IN, HID, **kw)) == repr(getattr(torch.nn, name)(IN, HID, **kw))


# ---- compiled ---------------------------------------------------------------------------------------------------
def _no_fallback(fn, *args):
    with warnings.catch_warnings():
        warnings.filterwarnings("error", module="graphnet")  # a fallback to eager warns
        return fn(*args)


WIDE = {"num_layers": 2, "bidirectional": True, "batch_first": True}


@pytest.mark.parametrize("kind,kw,hid", [("LSTM", {"num_layers": 2}, HID), ("GRU", {"bidirectional": True}, HID),
                                         ("RNN", {"batch_first": True}, HID), ("LSTM", WIDE, 37), ("GRU", WIDE, 37),
                                         ("RNN", {**WIDE, "nonlinearity": "relu"}, 37)])
def test_compiled_forward_and_backward_match_eager(kind, kw, hid):
    """hid 37: the kernels' gate loops run their vectorised body and a scalar tail (6 is all tail)."""
    gn.manual_seed(0)
    m = getattr(nn, kind)(IN, hid, **kw)
    x = gn.randn(BATCH, SEQ, IN) if m.batch_first else gn.randn(SEQ, BATCH, IN)
    x.requires_grad_(True)
    h0 = gn.randn(m.num_layers * (2 if m.bidirectional else 1), BATCH, hid, requires_grad=True)
    cm = gn.compile(m)
    results = []
    for fn in (m, lambda *args: _no_fallback(cm, *args)):
        out, h_n = fn(x, (h0, h0 * 0.5) if kind == "LSTM" else h0)
        ((out * out).sum() + sum(h.sum() for h in _flat(h_n))).backward()
        results.append([out, *_flat(h_n), x.grad, h0.grad, *(p.grad for p in m.parameters())])
        x.grad = h0.grad = None
        m.zero_grad()
    assert cm._last.programs
    for got, want in zip(results[1], results[0]):
        np.testing.assert_allclose(_np(got), _np(want), rtol=1e-5, atol=1e-6)


def test_compiled_sgd_training_step_matches_eager():
    def run(compiled):
        gn.manual_seed(3)
        model, head = nn.LSTM(IN, HID), nn.Linear(HID, 2)
        opt = gn.optim.SGD([*model.parameters(), *head.parameters()], lr=0.1)
        x, y = gn.randn(SEQ, BATCH, IN), gn.randn(BATCH, 2)

        def step(x, y):
            opt.zero_grad()
            out, (h, c) = model(x)
            loss = ((head(out[-1]) - y) ** 2).mean() + (c * c).mean()
            loss.backward()
            opt.step()
            return loss

        fn = gn.compile(step) if compiled else step
        losses = [_no_fallback(fn, x, y).item() for _ in range(4)]
        return losses, [p.detach().numpy().copy() for p in model.parameters()], fn

    eager, eager_params, _ = run(False)
    comp, comp_params, fn = run(True)
    assert fn._last.programs and eager[-1] < eager[0]
    np.testing.assert_allclose(comp, eager, rtol=1e-5)
    for got, want in zip(comp_params, eager_params):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


# ---- errors -------------------------------------------------------------------------------------------------------
def _x(*shape):
    return gn.randn(*shape)


LAYER_CALL_ERRORS = [
    ("RNN", (_x(2, 3, 4, IN),), ValueError, "RNN: Expected input to be 2D or 3D, got 4D tensor instead"),
    ("LSTM", (_x(2, 3, 4, IN),), ValueError, "LSTM: Expected input to be 2D or 3D, got 4D instead"),
    ("GRU", (_x(2),), ValueError, "GRU: Expected input to be 2D or 3D, got 1D instead"),
    ("GRU", (_x(SEQ, BATCH, 7),), RuntimeError, "input.size(-1) must be equal to input_size. Expected 5, got 7"),
    ("RNN", (_x(SEQ, BATCH, IN), _x(2, BATCH, HID)), RuntimeError, "Expected hidden size (1, 3, 6), got [2, 3, 6]"),
    ("RNN", (_x(SEQ, BATCH, IN), _x(BATCH, HID)), RuntimeError,
     "For batched 3-D input, hx should also be 3-D but got 2-D tensor"),
    ("GRU", (_x(SEQ, IN), _x(1, BATCH, HID)), RuntimeError,
     "For unbatched 2-D input, hx should also be 2-D but got 3-D tensor"),
    ("LSTM", (_x(SEQ, BATCH, IN), (_x(2, BATCH, HID), _x(1, BATCH, HID))), RuntimeError,
     "Expected hidden[0] size (1, 3, 6), got [2, 3, 6]"),
    ("LSTM", (_x(SEQ, BATCH, IN), (_x(1, BATCH, HID), _x(1, BATCH, 7))), RuntimeError,
     "Expected hidden[1] size (1, 3, 6), got [1, 3, 7]"),
    ("LSTM", (_x(SEQ, BATCH, IN), (_x(BATCH, HID), _x(BATCH, HID))), RuntimeError,
     "For batched 3-D input, hx and cx should also be 3-D but got (2-D, 2-D) tensors"),
    ("LSTM", (_x(SEQ, IN), (_x(1, 1, HID), _x(1, HID))), RuntimeError,
     "For unbatched 2-D input, hx and cx should also be 2-D but got (3-D, 2-D) tensors"),
]


def _to_torch(args):
    return [tuple(_to_torch(a)) if isinstance(a, tuple) else torch.tensor(a.numpy()) for a in args]


def test_layer_dtype_mismatch_error():
    with pytest.raises(ValueError) as info:
        nn.LSTM(IN, HID)(gn.randn(SEQ, BATCH, IN, dtype=gn.float64))
    assert str(info.value) == ("RNN input dtype (graphnet.float64) does not match weight dtype (graphnet.float32). "
                               "Convert input: input.to(graphnet.float32), or convert model: "
                               "model.to(graphnet.float64)")


DROPOUT_MSG = "dropout should be a number in range [0, 1] representing the probability of an element being zeroed"
CONSTRUCTOR_ERRORS = [
    ("LSTM", (IN, HID), {"dropout": 1.5}, ValueError, DROPOUT_MSG),
    ("GRU", (IN, HID), {"dropout": True}, ValueError, DROPOUT_MSG),
    ("RNN", (IN, HID), {"num_layers": 0}, ValueError, "num_layers must be greater than zero"),
    ("RNN", (IN, 0), {}, ValueError, "hidden_size must be greater than zero"),
    ("RNN", (0, HID), {}, ValueError, "input_size must be greater than zero"),
    ("GRU", (IN, 2.5), {}, TypeError, "hidden_size should be of type int, got: float"),
    ("GRU", (IN, HID), {"bias": 1}, TypeError, "bias should be of type bool, got: int"),
    ("LSTM", (IN, HID), {"batch_first": None}, TypeError, "batch_first should be of type bool, got: NoneType"),
    ("RNN", (IN, HID), {"nonlinearity": "sigmoid"}, ValueError,
     "Unknown nonlinearity 'sigmoid'. Select from 'tanh' or 'relu'."),
    ("GRU", (IN, HID), {"proj_size": 2}, ValueError, "proj_size argument is only supported for LSTM, not RNN or GRU"),
    ("LSTM", (IN, HID), {"proj_size": -1}, ValueError,
     "proj_size should be a positive integer or zero to disable projections"),
    ("LSTM", (IN, HID), {"proj_size": HID}, ValueError, "proj_size has to be smaller than hidden_size"),
]


@pytest.mark.parametrize("name,args,kwargs,exc,msg", CONSTRUCTOR_ERRORS)
def test_constructor_errors_match_torch(name, args, kwargs, exc, msg):
    for lib in (nn, torch.nn):
        with pytest.raises(exc) as info:
            getattr(lib, name)(*args, **kwargs)
        assert str(info.value) == msg


CELL_ERRORS = [
    ("RNNCell", (_x(2, 3, IN),), ValueError, "RNNCell: Expected input to be 1D or 2D, got 3D instead"),
    ("GRUCell", (_x(BATCH, IN), _x(1, BATCH, HID)), ValueError,
     "GRUCell: Expected hidden to be 1D or 2D, got 3D instead"),
    ("LSTMCell", (_x(BATCH, IN), (_x(BATCH, HID), _x(1, BATCH, HID))), ValueError,
     "LSTMCell: Expected hx[1] to be 1D or 2D, got 3D instead"),
    ("GRUCell", (_x(BATCH, 7),), RuntimeError, "input has inconsistent input_size: got 7 expected 5"),
    ("RNNCell", (_x(BATCH, IN), _x(4, HID)), RuntimeError, "Input batch size 3 doesn't match hidden0 batch size 4"),
    ("LSTMCell", (_x(BATCH, IN), (_x(BATCH, HID), _x(BATCH, 7))), RuntimeError,
     "hidden1 has inconsistent hidden_size: got 7, expected 6"),
    ("GRUCell", (_x(IN), _x(BATCH, HID)), RuntimeError, "hidden0 has inconsistent hidden_size: got 3, expected 6"),
]


@pytest.mark.parametrize("name,args,exc,msg", LAYER_CALL_ERRORS + CELL_ERRORS)
def test_layer_and_cell_call_errors_match_torch(name, args, exc, msg):
    for lib, call_args in ((nn, args), (torch.nn, _to_torch(args))):
        with pytest.raises(exc) as info:
            getattr(lib, name)(IN, HID)(*call_args)
        assert str(info.value) == msg


def test_rnn_cell_with_unknown_nonlinearity_fails_at_call_as_in_torch():
    cell = nn.RNNCell(IN, HID, nonlinearity="sigmoid")
    with pytest.raises(RuntimeError, match="Unknown nonlinearity: sigmoid"):
        cell(_x(BATCH, IN))

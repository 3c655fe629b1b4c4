"""Optimizers vs NumPy transcriptions of PyTorch's documented algorithms, plus groups, state_dict and errors."""
import pickle

import numpy as np
import pytest

import graphnet
from graphnet import optim

STEPS = 3


# ---- NumPy references (PyTorch's pseudo-code, one parameter, a list of per-step gradients) ------------------------
def sgd_ref(p, grads, lr=1e-3, momentum=0, dampening=0, weight_decay=0, nesterov=False, maximize=False):
    buf = None
    for g in grads:
        g = (-g if maximize else g) + weight_decay * p
        if momentum:
            buf = g.copy() if buf is None else momentum * buf + (1 - dampening) * g
            g = g + momentum * buf if nesterov else buf
        p = p - lr * g
    return p


def adam_ref(p, grads, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, amsgrad=False, maximize=False,
             decoupled=False):
    (b1, b2), m, v, v_max = betas, 0 * p, 0 * p, 0 * p
    for t, g in enumerate(grads, 1):
        g = -g if maximize else g
        if decoupled:
            p = p * (1 - lr * weight_decay)
        else:
            g = g + weight_decay * p
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        v_max = np.maximum(v_max, v)
        v_hat = (v_max if amsgrad else v) / (1 - b2 ** t)
        p = p - lr * (m / (1 - b1 ** t)) / (np.sqrt(v_hat) + eps)
    return p


def adamw_ref(p, grads, weight_decay=1e-2, **kw):
    return adam_ref(p, grads, weight_decay=weight_decay, decoupled=True, **kw)


def rmsprop_ref(p, grads, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0, centered=False, maximize=False):
    v, g_avg, buf = 0 * p, 0 * p, 0 * p
    for g in grads:
        g = (-g if maximize else g) + weight_decay * p
        v = alpha * v + (1 - alpha) * g * g
        v_t = v
        if centered:
            g_avg = alpha * g_avg + (1 - alpha) * g
            v_t = v - g_avg * g_avg
        step = g / (np.sqrt(v_t) + eps)
        if momentum > 0:
            buf = momentum * buf + step
            step = buf
        p = p - lr * step
    return p


def adagrad_ref(p, grads, lr=1e-2, lr_decay=0, weight_decay=0, initial_accumulator_value=0, eps=1e-10,
                maximize=False):
    acc = 0 * p + initial_accumulator_value
    for t, g in enumerate(grads, 1):
        g = (-g if maximize else g) + weight_decay * p
        clr = lr / (1 + (t - 1) * lr_decay)
        acc = acc + g * g
        p = p - clr * g / (np.sqrt(acc) + eps)
    return p


CASES = [
    (optim.SGD, sgd_ref, dict(lr=0.1)),
    (optim.SGD, sgd_ref, dict(lr=0.1, momentum=0.9, weight_decay=0.1)),
    (optim.SGD, sgd_ref, dict(lr=0.1, momentum=0.9, dampening=0.3)),
    (optim.SGD, sgd_ref, dict(lr=0.1, momentum=0.8, nesterov=True, maximize=True)),
    (optim.Adam, adam_ref, dict()),
    (optim.Adam, adam_ref, dict(lr=0.05, betas=(0.8, 0.9), weight_decay=0.1)),
    (optim.Adam, adam_ref, dict(lr=0.05, amsgrad=True)),
    (optim.Adam, adam_ref, dict(lr=0.05, maximize=True, eps=1e-3)),
    (optim.AdamW, adamw_ref, dict()),
    (optim.AdamW, adamw_ref, dict(lr=0.05, weight_decay=0.5, amsgrad=True)),
    (optim.RMSprop, rmsprop_ref, dict()),
    (optim.RMSprop, rmsprop_ref, dict(lr=0.05, alpha=0.9, weight_decay=0.1, momentum=0.5)),
    (optim.RMSprop, rmsprop_ref, dict(lr=0.05, centered=True, maximize=True)),
    (optim.RMSprop, rmsprop_ref, dict(lr=0.05, centered=True, momentum=0.9)),
    (optim.Adagrad, adagrad_ref, dict()),
    (optim.Adagrad, adagrad_ref, dict(lr=0.1, lr_decay=0.5, weight_decay=0.1, initial_accumulator_value=0.3)),
    (optim.Adagrad, adagrad_ref, dict(lr=0.1, maximize=True, eps=1e-2)),
]


def _ids(case):
    return case[0].__name__ + "-" + "-".join(f"{k}={v}" for k, v in case[2].items())


def _run(cls, kwargs, p0s, grads, dtype=graphnet.float64):
    """Run STEPS steps of `cls` over params p0s, feeding grads[step][param]; returns the params."""
    params = [graphnet.tensor(p0, dtype=dtype, requires_grad=True) for p0 in p0s]
    opt = cls(params, **kwargs)
    for step_grads in grads:
        for p, g in zip(params, step_grads):
            p.grad = graphnet.tensor(g, dtype=dtype)
        opt.step()
    return params, opt


@pytest.mark.parametrize("case", CASES, ids=[_ids(c) for c in CASES])
def test_matches_numpy_reference(case):
    cls, ref, kwargs = case
    rng = np.random.default_rng(1)
    p0s = [rng.standard_normal((3, 4)), rng.standard_normal(5)]
    grads = [[rng.standard_normal(p.shape) for p in p0s] for _ in range(STEPS)]
    params, _ = _run(cls, kwargs, p0s, grads)
    for i, (p, p0) in enumerate(zip(params, p0s)):
        expected = ref(p0, [g[i] for g in grads], **kwargs)
        np.testing.assert_allclose(p.detach().numpy(), expected, rtol=1e-12, atol=1e-14)
        assert not np.allclose(expected, p0)


@pytest.mark.parametrize("case", CASES[1::4], ids=[_ids(c) for c in CASES[1::4]])
def test_float32_stays_float32(case):
    cls, ref, kwargs = case
    rng = np.random.default_rng(2)
    p0s = [rng.standard_normal(6).astype(np.float32)]
    grads = [[rng.standard_normal(6).astype(np.float32)] for _ in range(STEPS)]
    params, opt = _run(cls, kwargs, p0s, grads, dtype=graphnet.float32)
    assert params[0].dtype == graphnet.float32
    assert all(v.dtype == graphnet.float32 for v in opt.state[params[0]].values())
    expected = ref(p0s[0].astype(np.float64), [g[0].astype(np.float64) for g in grads], **kwargs)
    np.testing.assert_allclose(params[0].detach().numpy(), expected, rtol=1e-5, atol=1e-6)


def test_state_uses_pytorch_key_names():
    p = graphnet.tensor([1.0, 2.0], requires_grad=True)
    keys = {
        optim.SGD([p], lr=0.1, momentum=0.9): {"momentum_buffer"},
        optim.Adam([p], amsgrad=True): {"step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"},
        optim.RMSprop([p], momentum=0.5, centered=True): {"step", "square_avg", "momentum_buffer", "grad_avg"},
        optim.Adagrad([p]): {"step", "sum"},
    }
    p.grad = graphnet.tensor([0.1, 0.2])
    for opt, expected in keys.items():
        opt.step()
        assert set(opt.state[p]) == expected
    assert optim.AdamW([p]).defaults["weight_decay"] == 1e-2


def test_param_groups_with_their_own_options():
    a = graphnet.tensor([1.0, 2.0], dtype=graphnet.float64, requires_grad=True)
    b = graphnet.tensor([3.0], dtype=graphnet.float64, requires_grad=True)
    opt = optim.SGD([{"params": [a]}, {"params": b, "lr": 0.01, "momentum": 0.5}], lr=0.1)
    assert opt.param_groups[0]["momentum"] == 0 and opt.param_groups[1]["lr"] == 0.01
    ga, gb = np.array([0.5, -1.0]), np.array([2.0])
    for _ in range(STEPS):
        a.grad, b.grad = graphnet.tensor(ga), graphnet.tensor(gb)
        opt.step()
    np.testing.assert_allclose(a.detach().numpy(), sgd_ref(np.array([1.0, 2.0]), [ga] * STEPS, lr=0.1), rtol=1e-12)
    np.testing.assert_allclose(b.detach().numpy(), sgd_ref(np.array([3.0]), [gb] * STEPS, lr=0.01, momentum=0.5),
                               rtol=1e-12)


def test_add_param_group_later():
    a = graphnet.tensor([1.0], requires_grad=True)
    b = graphnet.tensor([1.0], requires_grad=True)
    opt = optim.Adagrad([a], lr=0.5)
    opt.add_param_group({"params": [b], "lr": 0.25})
    b.grad = graphnet.tensor([1.0])
    opt.step()
    np.testing.assert_allclose(b.detach().numpy(), adagrad_ref(np.array([1.0]), [np.array([1.0])], lr=0.25),
                               rtol=1e-6)
    with pytest.raises(ValueError, match="some parameters appear in more than one parameter group"):
        opt.add_param_group({"params": [a]})
    with pytest.raises(TypeError, match="param_group must be a dict, but got list"):
        opt.add_param_group([b])


@pytest.mark.parametrize("cls", [optim.SGD, optim.Adam, optim.AdamW, optim.RMSprop, optim.Adagrad])
def test_grad_none_is_skipped_and_frozen_params_untouched(cls):
    w = graphnet.tensor([1.0, -2.0], requires_grad=True)
    frozen = graphnet.tensor([3.0, 4.0])
    unused = graphnet.tensor([5.0], requires_grad=True)
    opt = cls([w, frozen, unused], lr=0.1)
    loss = (w * frozen).sum()
    loss.backward()
    assert frozen.grad is None and unused.grad is None
    opt.step()
    assert frozen.tolist() == [3.0, 4.0] and unused.tolist() == [5.0]
    assert w.tolist() != [1.0, -2.0]
    assert float(opt.state.get(unused, {}).get("step", 0)) == 0  # Adagrad creates state up front; never stepped
    assert w.requires_grad and w.grad_fn is None


def test_updates_are_in_place_on_the_same_storage():
    w = graphnet.tensor([1.0, 2.0], requires_grad=True)
    alias = w.detach()
    opt = optim.SGD([w], lr=0.5)
    w.grad = graphnet.tensor([1.0, 1.0])
    opt.step()
    assert alias.tolist() == [0.5, 1.5]


def test_zero_grad():
    w = graphnet.tensor([1.0, 2.0], requires_grad=True)
    opt = optim.SGD([w], lr=0.1)
    w.grad = graphnet.tensor([3.0, 4.0])
    grad = w.grad
    opt.zero_grad(set_to_none=False)
    assert w.grad is grad and w.grad.tolist() == [0.0, 0.0]
    opt.zero_grad()
    assert w.grad is None
    opt.zero_grad()  # no grads: nothing to do
    assert w.grad is None


def test_step_with_closure_reevaluates_with_grad_enabled():
    w = graphnet.tensor([2.0], dtype=graphnet.float64, requires_grad=True)
    opt = optim.SGD([w], lr=0.1)
    calls = []

    def closure():
        opt.zero_grad()
        loss = (w * w).sum()
        loss.backward()
        calls.append(graphnet.is_grad_enabled())
        return loss

    with graphnet.no_grad():
        loss = opt.step(closure)
    assert calls == [True] and loss.item() == 4.0
    np.testing.assert_allclose(w.detach().numpy(), [2.0 - 0.1 * 4.0])
    assert opt.step() is None


@pytest.mark.parametrize("case", [CASES[1], CASES[6], CASES[9], CASES[13], CASES[15]],
                         ids=[_ids(c) for c in (CASES[1], CASES[6], CASES[9], CASES[13], CASES[15])])
def test_state_dict_round_trip_continues_identically(case):
    cls, _, kwargs = case
    rng = np.random.default_rng(3)
    p0 = rng.standard_normal(4)
    grads = [rng.standard_normal(4) for _ in range(4)]
    a = graphnet.tensor(p0, requires_grad=True)
    opt_a = cls([a], **kwargs)
    for g in grads[:2]:
        a.grad = graphnet.tensor(g)
        opt_a.step()
    saved = pickle.loads(pickle.dumps(opt_a.state_dict()))
    assert list(saved["state"]) == [0] and saved["param_groups"][0]["params"] == [0]
    b = graphnet.tensor(a.tolist(), dtype=graphnet.float64, requires_grad=True)
    opt_b = cls([b], lr=123.0)
    opt_b.load_state_dict(saved)
    assert opt_b.param_groups[0]["lr"] == kwargs.get("lr", opt_a.defaults["lr"])
    for g in grads[2:]:
        a.grad, b.grad = graphnet.tensor(g), graphnet.tensor(g)
        opt_a.step()
        opt_b.step()
    np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())


def test_load_state_dict_copies_and_casts_state():
    a = graphnet.tensor([1.0, 2.0], requires_grad=True)
    opt_a = optim.SGD([a], lr=0.1, momentum=0.9)
    a.grad = graphnet.tensor([1.0, 1.0])
    opt_a.step()
    b = graphnet.tensor([1.0, 2.0], dtype=graphnet.float64, requires_grad=True)
    opt_b = optim.SGD([b], lr=0.1, momentum=0.9)
    opt_b.load_state_dict(opt_a.state_dict())
    buf_b = opt_b.state[b]["momentum_buffer"]
    assert buf_b.dtype == graphnet.float64
    opt_a.step()
    assert buf_b.tolist() == [1.0, 1.0]


def test_load_state_dict_mismatch_errors():
    a, b = (graphnet.tensor([1.0], requires_grad=True) for _ in range(2))
    saved = optim.SGD([a, b], lr=0.1).state_dict()
    with pytest.raises(ValueError, match="different number of parameter groups"):
        optim.SGD([{"params": [a]}, {"params": [b]}], lr=0.1).load_state_dict(saved)
    with pytest.raises(ValueError, match="doesn't match the size of optimizer's group"):
        optim.SGD([a], lr=0.1).load_state_dict(saved)


def test_custom_optimizer_subclass_like_pytorch_tutorials():
    class Plain(optim.Optimizer):
        def __init__(self, params, lr=optim.optimizer.required):
            super().__init__(params, dict(lr=lr))

        @graphnet.no_grad()
        def step(self, closure=None):
            for group in self.param_groups:
                for p in group["params"]:
                    p.add_(p.grad, alpha=-group["lr"])

    w = graphnet.tensor([1.0], requires_grad=True)
    opt = Plain([w], lr=0.5)
    w.grad = graphnet.tensor([1.0])
    opt.step()
    assert w.tolist() == [0.5]
    with pytest.raises(ValueError, match="didn't specify a value of required optimization parameter lr"):
        Plain([w])
    with pytest.raises(NotImplementedError):
        optim.Optimizer([w], {}).step()


def test_repr_lists_groups():
    text = repr(optim.SGD([graphnet.tensor([1.0], requires_grad=True)], lr=0.1, momentum=0.9))
    assert text.startswith("SGD (\nParameter Group 0\n") and "    lr: 0.1\n" in text and "    momentum: 0.9\n" in text
    assert text.endswith(")")


def _param():
    return graphnet.tensor([1.0], requires_grad=True)


@pytest.mark.parametrize("make, exc, match", [
    (lambda: optim.SGD([], lr=0.1), ValueError, "optimizer got an empty parameter list"),
    (lambda: optim.SGD(_param(), lr=0.1), TypeError, "should be an iterable of Tensors or dicts, but got graphnet"),
    (lambda: optim.SGD([_param(), 3.0], lr=0.1), TypeError, "can only optimize Tensors, but one of the params is fl"),
    (lambda: optim.SGD({_param()}, lr=0.1), TypeError, "ordering of tensors in sets will change"),
    (lambda: optim.SGD([_param() * 2], lr=0.1), ValueError, "can't optimize a non-leaf Tensor"),
    (lambda: optim.SGD([_param()], lr=-0.1), ValueError, "Invalid learning rate: -0.1"),
    (lambda: optim.SGD([_param()], momentum=-1), ValueError, "Invalid momentum value: -1"),
    (lambda: optim.SGD([_param()], weight_decay=-1), ValueError, "Invalid weight_decay value: -1"),
    (lambda: optim.SGD([_param()], nesterov=True), ValueError, "Nesterov momentum requires a momentum and zero damp"),
    (lambda: optim.SGD([_param()], momentum=0.9, dampening=0.1, nesterov=True), ValueError, "Nesterov momentum"),
    (lambda: optim.SGD([_param()], bogus=1), TypeError, "unexpected keyword argument 'bogus'"),
    (lambda: optim.Adam([_param()], lr=-1.0), ValueError, "Invalid learning rate: -1.0"),
    (lambda: optim.Adam([_param()], eps=-1.0), ValueError, "Invalid epsilon value: -1.0"),
    (lambda: optim.Adam([_param()], betas=(1.0, 0.9)), ValueError, "Invalid beta parameter at index 0: 1.0"),
    (lambda: optim.AdamW([_param()], betas=(0.9, -0.1)), ValueError, "Invalid beta parameter at index 1: -0.1"),
    (lambda: optim.AdamW([_param()], weight_decay=-0.1), ValueError, "Invalid weight_decay value: -0.1"),
    (lambda: optim.RMSprop([_param()], alpha=-0.5), ValueError, "Invalid alpha value: -0.5"),
    (lambda: optim.RMSprop([_param()], momentum=-0.5), ValueError, "Invalid momentum value: -0.5"),
    (lambda: optim.Adagrad([_param()], lr_decay=-1), ValueError, "Invalid lr_decay value: -1"),
    (lambda: optim.Adagrad([_param()], initial_accumulator_value=-1), ValueError,
     "Invalid initial_accumulator_value value: -1"),
    (lambda: optim.Adagrad([_param()], eps=-1), ValueError, "Invalid epsilon value: -1"),
])
def test_argument_errors(make, exc, match):
    with pytest.raises(exc, match=match):
        make()


def test_duplicate_parameter_in_one_group_warns():
    w = _param()
    with pytest.warns(UserWarning, match="duplicate parameters"):
        optim.SGD([w, w], lr=0.1)
    with pytest.raises(ValueError, match="some parameters appear in more than one parameter group"):
        optim.SGD([{"params": [w]}, {"params": [w]}], lr=0.1)


def test_adam_minimizes_a_quadratic():
    target = np.array([1.0, -2.0, 3.0])
    w = graphnet.zeros(3, requires_grad=True)
    t = graphnet.tensor(target, dtype=graphnet.float32)
    opt = optim.Adam([w], lr=0.1)
    for _ in range(300):
        opt.zero_grad()
        ((w - t) * (w - t)).sum().backward()
        opt.step()
    np.testing.assert_allclose(w.detach().numpy(), target, atol=1e-2)

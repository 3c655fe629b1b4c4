"""RMSNorm, GLU, PReLU, Softsign, SiLU, tanh-GELU and Embedding's max_norm/padding_idx: values and every gradient vs
PyTorch on copied weights, float64 gradchecks (no torch needed), compiled forward+backward vs eager, and the error
paths with PyTorch's exception types and wording."""
import copy
import warnings

import numpy as np
import pytest

import graphnet as gn
import graphnet.nn.functional as F
from graphnet import nn
from graphnet.autograd import gradcheck

# name -> (graphnet module, the same module's torch constructor as a string evaluated against torch.nn, input shape)
CASES = {
    "rmsnorm_int": (lambda: nn.RMSNorm(4), "RMSNorm(4)", (2, 3, 4)),
    "rmsnorm_tuple_eps": (lambda: nn.RMSNorm((3, 4), eps=1e-3), "RMSNorm((3, 4), eps=1e-3)", (2, 3, 4)),
    "rmsnorm_no_affine": (lambda: nn.RMSNorm([4], elementwise_affine=False), "RMSNorm([4], elementwise_affine=False)",
                          (3, 4)),
    "glu_last": (lambda: nn.GLU(), "GLU()", (3, 6)),
    "glu_dim1": (lambda: nn.GLU(1), "GLU(1)", (2, 4, 3)),
    "prelu_one": (lambda: nn.PReLU(), "PReLU()", (2, 3, 4)),
    "prelu_channels": (lambda: nn.PReLU(3, init=0.1), "PReLU(3, init=0.1)", (2, 3, 4)),
    "softsign": (lambda: nn.Softsign(), "Softsign()", (3, 5)),
    "silu": (lambda: nn.SiLU(), "SiLU()", (3, 5)),
    "gelu_tanh": (lambda: nn.GELU(approximate="tanh"), "GELU(approximate='tanh')", (3, 5)),
}


def _np(t):
    return t.detach().numpy()


def _module(name, dtype=gn.float32):
    """The case's module with non-trivial parameters (ones and 0.25 would hide a swapped or broadcast weight)."""
    gn.manual_seed(0)
    m = CASES[name][0]()
    with gn.no_grad():
        for p in m.parameters():
            p.copy_(gn.rand(*p.shape) + 0.5)
    return m.double() if dtype is gn.float64 else m


def _input(name, dtype=gn.float32):
    gn.manual_seed(1)
    return (gn.randn(*CASES[name][2], dtype=dtype) * 2).requires_grad_(True)


def _forward_backward(fn, module, x, g):
    """Output, input gradient and parameter gradients of sum(fn(x) * g)."""
    module.zero_grad()
    x = x.detach().requires_grad_(True)
    out = fn(x)
    (out * g).sum().backward()
    return [_np(out), x.grad.numpy(), *(p.grad.numpy() for p in module.parameters())]


@pytest.mark.parametrize("name", sorted(CASES))
def test_values_and_gradients_match_torch(name):
    torch = pytest.importorskip("torch")
    ours = _module(name)
    theirs = eval(f"torch.nn.{CASES[name][1]}", {"torch": torch})  # noqa: S307 - the constructor strings above
    with torch.no_grad():
        for p, q in zip(ours.parameters(), theirs.parameters()):
            q.copy_(torch.from_numpy(p.detach().numpy()))
    x = _input(name)
    gn.manual_seed(2)
    g = gn.randn(*ours(x).shape)
    got = _forward_backward(ours, ours, x, g)
    tx = torch.from_numpy(x.detach().numpy()).requires_grad_(True)
    out = theirs(tx)
    (out * torch.from_numpy(g.numpy())).sum().backward()
    want = [out.detach().numpy(), tx.grad.numpy(), *(p.grad.numpy() for p in theirs.parameters())]
    assert len(got) == len(want)
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert repr(ours) == repr(theirs)


@pytest.mark.parametrize("name", sorted(CASES))
def test_float64_gradcheck_over_input_and_parameters(name):
    m = _module(name, gn.float64)
    x = _input(name, gn.float64)
    params = list(m.parameters())
    assert all(p.dtype is gn.float64 for p in params)
    assert gradcheck(lambda t, *ps: m(t), (x, *params))  # gradcheck perturbs the parameters in place


@pytest.mark.parametrize("name", sorted(CASES))
def test_compiled_forward_and_backward_match_eager(name):
    m = _module(name)
    x = _input(name)
    g = gn.randn(*m(x).shape)
    want = _forward_backward(m, m, x, g)
    compiled = gn.compile(m)
    for _ in range(2):
        with warnings.catch_warnings():
            warnings.filterwarnings("error", message=".*eager.*")  # no fallback to eager
            got = _forward_backward(compiled, m, x, g)
        for a, b in zip(got, want):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert compiled.graph() is not None


def test_functional_forms_match_their_formulas():
    x = gn.randn(2, 3, 4)
    w = gn.rand(4) + 0.5
    a = x.numpy()
    rms = np.sqrt((a * a).mean(-1, keepdims=True) + 1e-3)
    np.testing.assert_allclose(_np(F.rms_norm(x, (4,), w, 1e-3)), a / rms * w.numpy(), rtol=1e-5)
    np.testing.assert_allclose(_np(F.rms_norm(x, [3, 4])), _np(nn.RMSNorm([3, 4])(x)), rtol=1e-6)
    np.testing.assert_allclose(_np(F.glu(x)), a[..., :2] / (1 + np.exp(-a[..., 2:])), rtol=1e-6)
    np.testing.assert_allclose(_np(F.prelu(x, gn.tensor([0.5]))), np.where(a > 0, a, 0.5 * a))
    np.testing.assert_allclose(_np(F.prelu(x, gn.tensor([0.1, 0.2, 0.3]))),
                               np.where(a > 0, a, np.array([0.1, 0.2, 0.3])[:, None] * a), rtol=1e-6)
    np.testing.assert_allclose(_np(F.softsign(x)), a / (1 + np.abs(a)), rtol=1e-6)


def test_rms_norm_default_eps_is_the_dtype_epsilon():
    torch = pytest.importorskip("torch")
    tiny = np.full((2, 4), 1e-4)
    for dtype, tdtype in ((gn.float32, torch.float32), (gn.float64, torch.float64)):
        got = F.rms_norm(gn.tensor(tiny, dtype=dtype), (4,))
        want = torch.nn.functional.rms_norm(torch.tensor(tiny, dtype=tdtype), (4,))
        np.testing.assert_allclose(_np(got), want.numpy(), rtol=1e-6)


def test_prelu_on_a_0d_input_takes_one_weight():
    torch = pytest.importorskip("torch")
    w = gn.tensor([0.3], requires_grad=True)
    x = gn.tensor(-2.0, requires_grad=True)
    out = F.prelu(x, w)
    out.backward()
    tw, tx = torch.tensor([0.3], requires_grad=True), torch.tensor(-2.0, requires_grad=True)
    tout = torch.nn.functional.prelu(tx, tw)
    tout.backward()
    np.testing.assert_allclose([out.item(), x.grad.item(), w.grad.item()],
                               [tout.item(), tx.grad.item(), tw.grad.item()], rtol=1e-6)


# ---- error paths (wording checked against torch 2.x) --------------------------------------------------------------
ERRORS = [
    (lambda: F.glu(gn.randn(2, 3), 1), RuntimeError, r"Halving dimension must be even, but dimension 1 is size 3"),
    (lambda: F.glu(gn.randn(2, 3)), RuntimeError, r"Halving dimension must be even, but dimension 1 is size 3"),
    (lambda: nn.GLU(0)(gn.randn(3, 4)), RuntimeError, r"Halving dimension must be even, but dimension 0 is size 3"),
    (lambda: F.glu(gn.tensor(1.0)), RuntimeError, r"glu does not support scalars because halving size must be even"),
    (lambda: F.glu(gn.randn(2, 4), 2), IndexError,
     r"Dimension out of range \(expected to be in range of \[-2, 1\], but got 2\)"),
    (lambda: nn.PReLU(3)(gn.randn(2, 4)), RuntimeError, r"Mismatch of parameter numbers and input channel size\. "
                                                        r"Found parameter numbers = 3 and channel size = 4\."),
    (lambda: nn.PReLU(3)(gn.randn(3)), RuntimeError, r"Found parameter numbers = 3 and channel size = 1\."),
    (lambda: F.prelu(gn.randn(2, 4), gn.randn(2, 2)), RuntimeError,
     r"prelu: Expected `weight` to be a scalar or 1D tensor, but got: ndim = 2"),
    (lambda: F.prelu(gn.tensor(1.0), gn.ones(3)), RuntimeError, r"Not allow zero-dim input tensor\."),
    (lambda: nn.RMSNorm(4)(gn.randn(2, 3)), RuntimeError,
     r"Given normalized_shape=\[4\], expected input with shape \[\*4\], but got input of size\[2, 3\]"),
    (lambda: nn.RMSNorm((2, 3))(gn.randn(2, 4)), RuntimeError,
     r"Given normalized_shape=\[2, 3\], expected input with shape \[\*2, 3\], but got input of size\[2, 4\]"),
    (lambda: F.rms_norm(gn.randn(2, 3), (3,), gn.ones(4)), RuntimeError,
     r"Expected weight to be of same shape as normalized_shape, but got weight of shape \[4\] and "
     r"normalized_shape = \[3\]"),
    (lambda: F.rms_norm(gn.randn(3), (2, 3)), ValueError, r"Input tensor must have at least 2 dimensions, but got 1"),
    (lambda: nn.Embedding(5, 2, padding_idx=5), AssertionError, r"Padding_idx must be within num_embeddings"),
    (lambda: F.embedding(gn.tensor([1]), gn.randn(5, 2), padding_idx=-6), AssertionError,
     r"Padding_idx must be within num_embeddings"),
]


@pytest.mark.parametrize("call, exc, message", ERRORS, ids=[m[:40] for _, _, m in ERRORS])
def test_error_paths(call, exc, message):
    with pytest.raises(exc, match=message):
        call()


@pytest.mark.parametrize("call, exc, message", ERRORS, ids=[m[:40] for _, _, m in ERRORS])
def test_torch_raises_the_same(call, exc, message):
    torch = pytest.importorskip("torch")
    namespace = {"gn": torch, "nn": torch.nn, "F": torch.nn.functional}
    with pytest.raises(exc, match=message):
        eval(call.__code__, {**call.__globals__, **namespace})  # noqa: S307 - the same lambda body, run on torch


# ---- Embedding: max_norm renormalises the looked-up rows in place; padding_idx gets no gradient ------------------
def _embedding_pair(torch, **kwargs):
    gn.manual_seed(0)
    ours = nn.Embedding(7, 3, **kwargs)
    with gn.no_grad():
        ours.weight.mul_(2.0)  # most rows above max_norm
    theirs = torch.nn.Embedding(7, 3, **kwargs)
    with torch.no_grad():
        theirs.weight.copy_(torch.from_numpy(ours.weight.detach().numpy()))
    return ours, theirs


IDS = [[0, 2, 2, 5], [1, 5, 3, 0]]


@pytest.mark.parametrize("kwargs", [dict(max_norm=1.0), dict(max_norm=0.5, norm_type=1.0),
                                    dict(max_norm=1.0, padding_idx=2), dict(padding_idx=-2)],
                         ids=["max_norm", "max_norm_l1", "max_norm_padding", "padding_negative"])
def test_embedding_max_norm_and_padding_match_torch(kwargs):
    torch = pytest.importorskip("torch")
    ours, theirs = _embedding_pair(torch, **kwargs)
    assert repr(ours) == repr(theirs)
    g = np.random.default_rng(0).standard_normal((2, 4, 3)).astype(np.float32)
    out = ours(gn.tensor(IDS))
    (out * gn.tensor(g)).sum().backward()
    tout = theirs(torch.tensor(IDS))
    (tout * torch.from_numpy(g)).sum().backward()
    np.testing.assert_allclose(_np(out), tout.detach().numpy(), rtol=1e-6)
    np.testing.assert_allclose(_np(ours.weight), theirs.weight.detach().numpy(), rtol=1e-6)  # renormalised in place
    np.testing.assert_allclose(ours.weight.grad.numpy(), theirs.weight.grad.numpy(), rtol=1e-6)


def test_embedding_max_norm_renormalises_only_looked_up_rows_without_autograd():
    emb = nn.Embedding(5, 2, max_norm=1.0)
    with gn.no_grad():
        emb.weight.copy_(gn.tensor([[3.0, 4.0], [0.3, 0.4], [6.0, 8.0], [1.0, 0.0], [0.0, 9.0]]))
    out = emb(gn.tensor([0, 1, 2, 2]))
    norms = np.linalg.norm(emb.weight.detach().numpy(), axis=1)
    np.testing.assert_allclose(norms, [1.0, 0.5, 1.0, 1.0, 9.0], rtol=1e-6)  # rows 3 (not above) and 4 (unused) kept
    assert emb.weight.grad_fn is None and out.grad_fn is not None


def test_embedding_padding_row_gets_zero_gradient_and_the_others_the_plain_lookups():
    w = gn.randn(6, 3, dtype=gn.float64, requires_grad=True)
    ids = gn.tensor([[0, 4, 1], [4, 4, 5]])
    F.embedding(ids, w, padding_idx=4).sin().sum().backward()
    padded, w.grad = w.grad.numpy(), None
    F.embedding(ids, w).sin().sum().backward()
    plain = w.grad.numpy()
    assert not padded[4].any() and plain[4].any()
    np.testing.assert_array_equal(np.delete(padded, 4, 0), np.delete(plain, 4, 0))


def _embedding_run(fn, emb, g):
    """Output, weight gradient and weight after the lookup (max_norm renormalises it) of sum(fn(IDS) * g)."""
    emb.zero_grad()
    out = fn(gn.tensor(IDS))
    (out * g).sum().backward()
    return [_np(out), emb.weight.grad.numpy(), _np(emb.weight)]


@pytest.mark.parametrize("kwargs", [dict(padding_idx=2), dict(max_norm=1.0)], ids=["padding", "max_norm"])
def test_compiled_embedding_matches_eager(kwargs):
    gn.manual_seed(0)
    emb = nn.Embedding(7, 3, **kwargs)
    with gn.no_grad():
        emb.weight.mul_(2.0)
    twin = copy.deepcopy(emb)
    g = gn.randn(2, 4, 3)
    compiled = gn.compile(emb)
    with warnings.catch_warnings():
        # max_norm's renorm writes weight[ids] (the ids read on the host), so that module runs eagerly, warned once
        warnings.filterwarnings("ignore" if "max_norm" in kwargs else "error", message=".*falling back to eager.*")
        for _ in range(2):
            for a, b in zip(_embedding_run(compiled, emb, g), _embedding_run(twin, twin, g)):
                np.testing.assert_allclose(a, b, rtol=1e-6)

"""F.conv_transpose1d/2d and nn.ConvTranspose1d/2d (composites over conv2d_input_grad): values, input/weight/bias
gradients and double backward vs PyTorch in float64 over strides, padding, output_padding (also >= stride, below the
dilation), groups, dilation and unbatched input; forward's output_size; init, repr; compiled vs eager; every error
worded as PyTorch words it, eager and compiled."""
import math

import numpy as np
import pytest

import graphnet as gn
import graphnet.nn as nn
import graphnet.nn.functional as F

RNG = np.random.default_rng(0)

# (input shape, weight shape, kwargs)
CASES_2D = [((2, 4, 5, 4), (4, 3, 3, 3), {}),
            ((2, 4, 5, 4), (4, 3, 3, 2), dict(stride=2, padding=1, output_padding=1)),
            ((1, 4, 4, 5), (4, 2, 4, 4), dict(stride=(2, 3), padding=(1, 2), output_padding=(1, 2), groups=2)),
            ((2, 4, 3, 3), (4, 1, 3, 3), dict(stride=2, groups=4, dilation=2)),
            ((1, 2, 4, 4), (2, 3, 3, 3), dict(padding=1, output_padding=1, dilation=2)),  # output_padding >= stride
            ((1, 2, 4, 4), (2, 3, 3, 3), dict(output_padding=(1, 0), dilation=(2, 1))),
            ((3, 4, 4), (3, 2, 2, 2), dict(stride=2)),  # unbatched
            ((2, 6, 4, 3), (6, 2, 1, 1), dict(stride=3, groups=3))]
CASES_1D = [((2, 4, 6), (4, 3, 3), dict(stride=2, padding=1, output_padding=1)),
            ((2, 4, 6), (4, 1, 4), dict(groups=2, dilation=3, output_padding=2)),
            ((4, 5), (4, 2, 3), {})]


def _torch():
    return pytest.importorskip("torch")


def _check(fn_name, x_shape, w_shape, kw):
    torch = _torch()
    x, w = RNG.standard_normal(x_shape), RNG.standard_normal(w_shape)
    b = RNG.standard_normal(w_shape[1] * kw.get("groups", 1))
    t_args = [torch.tensor(a, requires_grad=True) for a in (x, w, b)]
    g_args = [gn.tensor(a, requires_grad=True) for a in (x, w, b)]
    want = getattr(torch.nn.functional, fn_name)(*t_args, **kw)
    got = getattr(F, fn_name)(*g_args, **kw)
    assert tuple(got.shape) == tuple(want.shape)
    np.testing.assert_allclose(got.detach().numpy(), want.detach().numpy(), rtol=1e-10, atol=1e-12)
    r = np.cos(np.arange(want.numel())).reshape(tuple(want.shape))
    (want * torch.tensor(r)).sum().backward()
    (got * gn.tensor(r)).sum().backward()
    for g, t in zip(g_args, t_args):
        np.testing.assert_allclose(g.grad.numpy(), t.grad.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("x_shape,w_shape,kw", CASES_2D, ids=[str(c[2]) for c in CASES_2D])
def test_conv_transpose2d_matches_torch(x_shape, w_shape, kw):
    _check("conv_transpose2d", x_shape, w_shape, kw)


@pytest.mark.parametrize("x_shape,w_shape,kw", CASES_1D, ids=[str(c[2]) for c in CASES_1D])
def test_conv_transpose1d_matches_torch(x_shape, w_shape, kw):
    _check("conv_transpose1d", x_shape, w_shape, kw)


@pytest.mark.parametrize("kw", [dict(stride=2, padding=1, output_padding=1), dict(padding=1, output_padding=1,
                                                                                 dilation=2)])
def test_double_backward_matches_torch(kw):
    torch = _torch()
    x, w = RNG.standard_normal((1, 2, 3, 4)), RNG.standard_normal((2, 3, 3, 3))
    results = []
    for lib, fn in ((torch, torch.nn.functional.conv_transpose2d), (gn, F.conv_transpose2d)):
        tx, tw = lib.tensor(x, requires_grad=True), lib.tensor(w, requires_grad=True)
        gx, = lib.autograd.grad((fn(tx, tw, **kw) ** 3).sum(), tx, create_graph=True)
        (gx * gx).sum().backward()
        results.append([gx.detach().numpy(), tx.grad.numpy(), tw.grad.numpy()])
    for got, want in zip(results[1], results[0]):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-10)


MODULES = [("ConvTranspose2d", dict(in_channels=4, out_channels=6, kernel_size=3, stride=2, padding=1)),
           ("ConvTranspose2d", dict(in_channels=4, out_channels=6, kernel_size=(3, 2), stride=2, padding=1,
                                    output_padding=1, groups=2, bias=False, dilation=2)),
           ("ConvTranspose1d", dict(in_channels=4, out_channels=6, kernel_size=3, stride=2, output_padding=1))]


@pytest.mark.parametrize("cls,kw", MODULES, ids=[str(i) for i in range(len(MODULES))])
def test_modules_match_torch_repr_shapes_init_and_values(cls, kw):
    torch = _torch()
    t, g = getattr(torch.nn, cls)(**kw).double(), getattr(nn, cls)(**kw).double()
    assert repr(g) == repr(t)
    assert {k: tuple(v.shape) for k, v in g.state_dict().items()} == {k: tuple(v.shape) for k, v in
                                                                      t.state_dict().items()}
    fan_in = g.weight.shape[1] * math.prod(g.weight.shape[2:])  # PyTorch's fan for transposed weights: dim 1
    bound = 1 / math.sqrt(fan_in)  # kaiming_uniform_(a=sqrt(5)) gives the same bound as the bias
    for p in g.parameters():
        assert np.abs(p.detach().numpy()).max() <= bound
    g.load_state_dict({k: gn.tensor(v.detach().numpy()) for k, v in t.state_dict().items()})
    x = RNG.standard_normal((2, 4) + (5,) * g._n)
    np.testing.assert_allclose(g(gn.tensor(x)).detach().numpy(), t(torch.tensor(x)).detach().numpy(), rtol=1e-10)


def test_init_spreads_to_the_bound():
    gn.manual_seed(0)
    w = nn.ConvTranspose2d(8, 16, 3, groups=2).weight.detach().numpy()
    bound = 1 / math.sqrt(8 * 9)
    assert w.shape == (8, 8, 3, 3) and 0.95 * bound < np.abs(w).max() <= bound


@pytest.mark.parametrize("output_size", [(10, 10), [1, 6, 10, 10], (9, 10)])
def test_forward_output_size_matches_torch(output_size):
    torch = _torch()
    t = torch.nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1).double()
    g = nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1).double()
    g.load_state_dict({k: gn.tensor(v.detach().numpy()) for k, v in t.state_dict().items()})
    x = RNG.standard_normal((1, 4, 5, 5))
    want = t(torch.tensor(x), output_size=output_size).detach().numpy()
    np.testing.assert_allclose(g(gn.tensor(x), output_size=output_size).detach().numpy(), want, rtol=1e-10)


def test_compiled_matches_eager_with_gradients():
    gn.manual_seed(0)
    model = nn.Sequential(nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1, groups=2), nn.ReLU(),
                          nn.ConvTranspose2d(6, 2, 3, padding=1, output_padding=1, dilation=2))
    x = gn.randn(2, 4, 4, 3, requires_grad=True)
    results = []
    for fn in (model, gn.compile(model)):
        out = fn(x)
        (out * out).sum().backward()
        results.append([out.detach().numpy().copy(), x.grad.numpy().copy(), model[0].weight.grad.numpy().copy(),
                        model[2].bias.grad.numpy().copy()])
        x.grad = None
        model.zero_grad()
    assert results[0][0].shape == (2, 2, 11, 9)
    for got, want in zip(results[1], results[0]):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


W = (4, 3, 3, 3)
ERRORS = [
    ((1, 4, 5, 5), W, dict(stride=2, output_padding=2),
     r"output padding must be smaller than either stride or dilation, but got output_padding_height: 2 "
     r"output_padding_width: 2 stride_height: 2 stride_width: 2 dilation_height: 1 dilation_width: 1"),
    ((1, 3, 5, 5), W, {}, r"Given transposed=1, weight of size \[4, 3, 3, 3\], expected input\[1, 3, 5, 5\] to have 4 "
                          r"channels, but got 3 channels instead"),
    ((1, 4, 5, 5), W, dict(groups=3), r"Given groups=3, expected weight to be divisible by 3 at dimension 0, but got "
                                      r"weight of size \[\[4, 3, 3, 3\]\] instead"),
    ((5, 5), W, {}, r"Expected 3D \(unbatched\) or 4D \(batched\) input to conv_transpose2d, but got input of size: "
                    r"\[5, 5\]"),
    ((1, 4, 5, 5), (4, 3, 3), {}, r"expected stride to be a single integer value or a list of 1 values"),
    ((1, 4, 5, 5), W, dict(padding=5), r"Given input size per channel: \(5 x 5\). Calculated output size per channel: "
                                       r"\(-3 x -3\). Output size is too small"),
    ((1, 4, 5, 5), W, dict(stride=0), "non-positive stride is not supported"),
    ((1, 4, 5, 5), W, dict(output_padding=-1), "negative output_padding is not supported"),
]


@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "compiled"])
@pytest.mark.parametrize("x_shape,w_shape,kw,match", ERRORS, ids=[str(i) for i in range(len(ERRORS))])
def test_errors_are_worded_as_pytorch(x_shape, w_shape, kw, match, compiled):
    def fn(x, w):
        return F.conv_transpose2d(x, w, **kw)

    with pytest.raises(RuntimeError, match=match):
        (gn.compile(fn) if compiled else fn)(gn.randn(*x_shape), gn.randn(*w_shape))


def test_more_errors_worded_as_pytorch():
    x, w = gn.randn(1, 4, 5), gn.randn(4, 3, 3)
    with pytest.raises(RuntimeError, match=r"output_padding_height: 0 output_padding_width: 2 stride_height: 1 "
                                           r"stride_width: 2"):
        F.conv_transpose1d(x, w, stride=2, output_padding=2)
    with pytest.raises(RuntimeError, match=r"Expected 2D \(unbatched\) or 3D \(batched\) input to conv_transpose1d"):
        F.conv_transpose1d(gn.randn(5), w)
    with pytest.raises(RuntimeError, match=r"expected bias to be 1-dimensional with 3 elements, but got bias of size "
                                           r"\[4\] instead"):
        F.conv_transpose1d(x, w, gn.randn(4))
    with pytest.raises(TypeError, match="argument 'padding' must be tuple of ints, not str"):
        nn.ConvTranspose2d(4, 6, 3, padding="same")(gn.randn(1, 4, 5, 5))
    with pytest.raises(TypeError, match=r"conv_transpose1d\(\): argument 'padding' must be tuple of ints"):
        F.conv_transpose1d(x, w, padding="valid")
    with pytest.raises(ValueError, match="out_channels must be divisible by groups"):
        nn.ConvTranspose2d(4, 6, 3, groups=4)
    with pytest.raises(ValueError, match='Only "zeros" padding mode is supported for ConvTranspose2d'):
        nn.ConvTranspose2d(4, 6, 3, padding_mode="reflect")
    m = nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1)
    with pytest.raises(ValueError, match=r"requested an output size of \(12, 12\), but valid sizes range from \[9, 9\] "
                                         r"to \[10, 10\] \(for an input of \(5, 5\)\)"):
        m(gn.randn(1, 4, 5, 5), output_size=(12, 12))
    with pytest.raises(ValueError, match=r"ConvTranspose2D: for 4D input, output_size must have 2 or 4 elements "
                                         r"\(got 1\)"):
        m(gn.randn(1, 4, 5, 5), output_size=(10,))

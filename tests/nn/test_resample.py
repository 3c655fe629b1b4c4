"""Adaptive pooling, interpolate, pixel (un)shuffle, pad modes and padding layers, dropout2d, max_pool2d options:
values, gradients and errors vs PyTorch; float64 gradchecks without it; compiled forward+backward vs eager."""
import warnings

import numpy as np
import pytest

import graphnet
import graphnet.nn.functional as F
from graphnet import nn
from graphnet.autograd import gradcheck

RNG = np.random.default_rng(0)


def _arr(*shape):
    return RNG.standard_normal(shape)


def _vs_torch(fn, torch_fn, x, atol=1e-10):
    """Value and gradient (of a weighted sum) of fn vs torch_fn on float64 input `x` (results may be tuples)."""
    torch = pytest.importorskip("torch")
    ours_in, theirs_in = graphnet.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    ours, theirs = fn(ours_in), torch_fn(theirs_in)
    if isinstance(theirs, tuple):
        np.testing.assert_array_equal(ours[1].numpy(), theirs[1].numpy())
        ours, theirs = ours[0], theirs[0]
    assert tuple(ours.shape) == tuple(theirs.shape)
    np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), atol=atol)
    w = _arr(*theirs.shape)
    (ours * graphnet.tensor(w)).sum().backward()
    (theirs * torch.tensor(w)).sum().backward()
    np.testing.assert_allclose(ours_in.grad.numpy(), theirs_in.grad.numpy(), atol=atol)


def _torch_f():
    return pytest.importorskip("torch").nn.functional


def _compiled_matches_eager(fn, x):
    """graphnet.compile of forward+backward gives eager's output and input gradient."""
    def step(a):
        out = fn(a)
        (out * out).sum().backward()
        return out

    results = []
    for run in (step, graphnet.compile(step)):
        a = graphnet.tensor(x, requires_grad=True)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # a GraphBreak fallback warns: fail on it
            out = run(a)
        results.append((out.detach().numpy(), a.grad.numpy()))
    np.testing.assert_allclose(results[1][0], results[0][0], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(results[1][1], results[0][1], rtol=1e-12, atol=1e-12)


# ---- adaptive pooling ---------------------------------------------------------------------------------------------

ADAPTIVE_2D = [((2, 3, 7, 5), (3, 2)), ((3, 7, 5), (4, None)), ((1, 2, 6, 6), 3), ((2, 1, 5, 9), (5, 4)),
               ((1, 1, 4, 4), (7, 6)), ((1, 2, 5, 5), 1)]


@pytest.mark.parametrize("shape, size", ADAPTIVE_2D)
def test_adaptive_pool2d_matches_torch(shape, size):
    tf = _torch_f()
    x = _arr(*shape)
    _vs_torch(lambda a: F.adaptive_avg_pool2d(a, size), lambda a: tf.adaptive_avg_pool2d(a, size), x)
    _vs_torch(lambda a: F.adaptive_max_pool2d(a, size, return_indices=True),
              lambda a: tf.adaptive_max_pool2d(a, size, return_indices=True), x)


@pytest.mark.parametrize("shape, size", [((2, 3, 7), 3), ((3, 10), 4), ((1, 2, 5), 5), ((1, 1, 3), 7), ((2, 2, 9), 2)])
def test_adaptive_pool1d_matches_torch(shape, size):
    tf = _torch_f()
    x = _arr(*shape)
    _vs_torch(lambda a: F.adaptive_avg_pool1d(a, size), lambda a: tf.adaptive_avg_pool1d(a, size), x)
    _vs_torch(lambda a: F.adaptive_max_pool1d(a, size, True), lambda a: tf.adaptive_max_pool1d(a, size, True), x)


def test_adaptive_max_first_argmax_on_ties():
    x = graphnet.tensor([[[[1.0, 1.0, 1.0], [1.0, 1.0, 1.0], [1.0, 1.0, 1.0]]]])
    _, idx = F.adaptive_max_pool2d(x, 2, return_indices=True)
    assert idx.numpy().tolist() == [[[[0, 1], [3, 4]]]]


def test_adaptive_modules_and_repr():
    x = graphnet.tensor(_arr(1, 2, 5, 7))
    assert nn.AdaptiveAvgPool2d((3, None))(x).shape == (1, 2, 3, 7)
    values, idx = nn.AdaptiveMaxPool2d(2, return_indices=True)(x)
    assert values.shape == idx.shape == (1, 2, 2, 2)
    assert nn.AdaptiveMaxPool1d(3)(x[0]).shape == (2, 5, 3)
    assert nn.AdaptiveAvgPool1d(2)(x[0]).shape == (2, 5, 2)
    assert repr(nn.AdaptiveMaxPool2d((3, None))) == "AdaptiveMaxPool2d(output_size=(3, None))"


def test_adaptive_gradcheck_and_compile():
    x = _arr(1, 2, 5, 7)
    assert gradcheck(lambda a: F.adaptive_avg_pool2d(a, (3, 4)), (graphnet.tensor(x, requires_grad=True),))
    assert gradcheck(lambda a: F.adaptive_max_pool2d(a, (3, 4)), (graphnet.tensor(x, requires_grad=True),))
    _compiled_matches_eager(lambda a: F.adaptive_max_pool2d(a, (3, 4)) + F.adaptive_avg_pool2d(a, (2, 3)).sum(), x)


@pytest.mark.parametrize("call, exc, match", [
    (lambda x: F.adaptive_avg_pool2d(x, (1, 2, 3)), RuntimeError, "adaptive_avg_pool2d: output_size must be 2"),
    (lambda x: F.adaptive_avg_pool2d(x[0, 0], 3), RuntimeError,
     r"adaptive_avg_pool2d\(\): Expected 3D or 4D tensor, but got \[5, 5\]"),
    (lambda x: F.adaptive_max_pool1d(x, 3), RuntimeError,
     "Expected 2 to 3 dimensions, but got 4-dimensional tensor for argument #1 'self' "
     r"\(while checking arguments for adaptive_max_pool1d\)"),
])
def test_adaptive_errors(call, exc, match):
    with pytest.raises(exc, match=match):
        call(graphnet.tensor(_arr(1, 2, 5, 5)))


# ---- interpolate --------------------------------------------------------------------------------------------------

RESIZES = [dict(size=(3, 9)), dict(scale_factor=2), dict(scale_factor=1.7), dict(scale_factor=(0.6, 2.3)),
           dict(scale_factor=1.7, recompute_scale_factor=True), dict(size=(13, 4)), dict(size=5)]
MODES = [("nearest", None), ("nearest-exact", None), ("bilinear", False), ("bilinear", True)]


@pytest.mark.parametrize("mode, align", MODES)
@pytest.mark.parametrize("kwargs", RESIZES, ids=str)
def test_interpolate_2d_matches_torch(kwargs, mode, align):
    tf = _torch_f()
    _vs_torch(lambda a: F.interpolate(a, mode=mode, align_corners=align, **kwargs),
              lambda a: tf.interpolate(a, mode=mode, align_corners=align, **kwargs), _arr(2, 2, 5, 7))


@pytest.mark.parametrize("mode, align", [("nearest", None), ("nearest-exact", None), ("linear", False),
                                         ("linear", True)])
@pytest.mark.parametrize("kwargs", [dict(size=11), dict(size=3), dict(scale_factor=2.5), dict(scale_factor=0.5)],
                         ids=str)
def test_interpolate_1d_matches_torch(kwargs, mode, align):
    tf = _torch_f()
    _vs_torch(lambda a: F.interpolate(a, mode=mode, align_corners=align, **kwargs),
              lambda a: tf.interpolate(a, mode=mode, align_corners=align, **kwargs), _arr(2, 3, 7))


def test_interpolate_float32_nearest_index_rule():
    """The float32 floor(dst * in/out) rule, where a float64 product would round differently."""
    tf = _torch_f()
    import torch

    for size, out in ((7, 49), (3, 10), (10, 3), (13, 37)):
        x = np.arange(size, dtype=np.float32).reshape(1, 1, size)
        ours = F.interpolate(graphnet.tensor(x), size=out).numpy()
        np.testing.assert_array_equal(ours, tf.interpolate(torch.tensor(x), size=out).numpy())


def test_upsample_layers_match_torch_and_repr():
    torch = pytest.importorskip("torch")
    x = _arr(1, 2, 3, 4)
    for ours, theirs in ((nn.Upsample(scale_factor=2), torch.nn.Upsample(scale_factor=2)),
                         (nn.Upsample(size=(5, 5), mode="bilinear"), torch.nn.Upsample(size=(5, 5), mode="bilinear")),
                         (nn.UpsamplingNearest2d(size=7), torch.nn.UpsamplingNearest2d(size=7)),
                         (nn.UpsamplingBilinear2d(scale_factor=2), torch.nn.UpsamplingBilinear2d(scale_factor=2))):
        np.testing.assert_allclose(ours(graphnet.tensor(x)).numpy(), theirs(torch.tensor(x)).numpy(), atol=1e-12)
        assert repr(ours) == repr(theirs)


def test_interpolate_gradcheck_and_compile():
    x = _arr(1, 2, 3, 4)
    assert gradcheck(lambda a: F.interpolate(a, size=(5, 6), mode="bilinear"),
                     (graphnet.tensor(x, requires_grad=True),))
    assert gradcheck(lambda a: F.interpolate(a, scale_factor=1.5), (graphnet.tensor(x, requires_grad=True),))
    _compiled_matches_eager(lambda a: F.interpolate(a, scale_factor=2, mode="bilinear", align_corners=True)
                            + F.interpolate(a, size=(6, 8)), x)


@pytest.mark.parametrize("kwargs, exc, match", [
    (dict(size=3, scale_factor=2), ValueError, "only one of size or scale_factor should be defined"),
    (dict(), ValueError, "either size or scale_factor should be defined"),
    (dict(size=(1, 2, 3)), ValueError, r"Input and output must have the same number of spatial dimensions, but got "
     r"input with spatial dimensions of \[5, 5\] and output size of \(1, 2, 3\)"),
    (dict(scale_factor=(2, 2, 2)), ValueError, "Input and scale_factor must have the same number of spatial "
     r"dimensions, but got input with spatial dimensions of \[5, 5\] and scale_factor of shape \(2, 2, 2\)"),
    (dict(scale_factor=2, mode="foo"), NotImplementedError,
     r"Input Error: Only 3D, 4D and 5D input Tensors supported \(got 4D\) for the modes: .* \(got foo\)"),
    (dict(scale_factor=2, align_corners=True), ValueError,
     "align_corners option can only be set with the interpolating modes"),
    (dict(scale_factor=2, mode="linear"), NotImplementedError, "Got 4D input, but linear mode needs 3D input"),
    (dict(size=0), RuntimeError, r"Input and output sizes should be greater than 0, but got input \(H: 5, W: 5\) "
     r"output \(H: 0, W: 0\)"),
    (dict(size=4, recompute_scale_factor=True), ValueError, "recompute_scale_factor is not meaningful"),
])
def test_interpolate_errors_match_torch(kwargs, exc, match):
    x = _arr(1, 2, 5, 5)
    with pytest.raises(exc, match=match):
        F.interpolate(graphnet.tensor(x), **kwargs)
    tf = _torch_f()
    import torch

    with pytest.raises(exc, match=match):
        tf.interpolate(torch.tensor(x), **kwargs)


# ---- pixel shuffle ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape, r", [((2, 8, 3, 5), 2), ((9, 2, 2), 3), ((2, 1, 4, 1, 1), 2)])
def test_pixel_shuffle_matches_torch_and_round_trips(shape, r):
    tf = _torch_f()
    x = _arr(*shape)
    _vs_torch(lambda a: F.pixel_shuffle(a, r), lambda a: tf.pixel_shuffle(a, r), x)
    up = F.pixel_shuffle(graphnet.tensor(x), r)
    _vs_torch(lambda a: F.pixel_unshuffle(a, r), lambda a: tf.pixel_unshuffle(a, r), up.numpy())
    np.testing.assert_array_equal(nn.PixelUnshuffle(r)(nn.PixelShuffle(r)(graphnet.tensor(x))).numpy(), x)


def test_pixel_shuffle_errors_and_compile():
    x = graphnet.tensor(_arr(1, 2, 5, 5))
    with pytest.raises(RuntimeError, match=r"pixel_shuffle expects its input's 'channel' dimension to be divisible "
                                           r"by the square of upscale_factor, but input.size\(-3\)=2 is not divisible "
                                           "by 4"):
        F.pixel_shuffle(x, 2)
    with pytest.raises(RuntimeError, match=r"pixel_shuffle expects input to have at least 3 dimensions, but got input "
                                           r"with 2 dimension\(s\)"):
        F.pixel_shuffle(x[0, 0], 2)
    with pytest.raises(RuntimeError, match=r"pixel_unshuffle expects height to be divisible by downscale_factor, but "
                                           r"input.size\(-2\)=5 is not divisible by 2"):
        F.pixel_unshuffle(x, 2)
    assert repr(nn.PixelShuffle(3)) == "PixelShuffle(upscale_factor=3)"
    _compiled_matches_eager(lambda a: F.pixel_unshuffle(F.pixel_shuffle(a, 2) * 2.0, 2), _arr(1, 8, 2, 3))


# ---- pad ----------------------------------------------------------------------------------------------------------

PADS = [(1, 2), (2, 1, 3, 0), (0, 3, 1, 1), (-1, 2, 1, -2), (2, -1, 0, -3), (4, 4)]


@pytest.mark.parametrize("mode", ["constant", "reflect", "replicate", "circular"])
@pytest.mark.parametrize("pad", PADS, ids=str)
@pytest.mark.parametrize("shape", [(2, 3, 5, 4), (3, 5, 4), (5, 4)], ids=str)
def test_pad_matches_torch_values_grads_and_errors(mode, pad, shape):
    torch = pytest.importorskip("torch")
    x = _arr(*shape)
    try:
        torch.nn.functional.pad(torch.tensor(x), pad, mode=mode)
    except Exception as e:  # torch refuses this combination: so must we, with its words
        with pytest.raises(type(e), match=f"^{__import__('re').escape(str(e))}$"):
            F.pad(graphnet.tensor(x), pad, mode=mode)
        return
    _vs_torch(lambda a: F.pad(a, pad, mode=mode), lambda a: torch.nn.functional.pad(a, pad, mode=mode), x)


def test_pad_errors():
    x = graphnet.tensor(_arr(1, 2, 5, 5))
    with pytest.raises(NotImplementedError, match="Unrecognised padding mode foo"):
        F.pad(x, (1, 1), mode="foo")
    with pytest.raises(RuntimeError, match="Padding length must be divisible by 2"):
        F.pad(x, (1,), mode="reflect")
    with pytest.raises(RuntimeError, match="Padding value causes wrapping around more than once."):
        F.pad(x, (0, 0, 6, 0), mode="circular")
    with pytest.raises(RuntimeError, match=r"Argument #4: Padding size should be less than the corresponding input "
                                           r"dimension, but got: padding \(5, 0\) at dimension 3 of input "
                                           r"\[1, 2, 5, 5\]"):
        F.pad(x, (5, 0, 0, 0), mode="reflect")


def test_padding_layers_match_torch():
    torch = pytest.importorskip("torch")
    x = _arr(2, 3, 4, 5)
    for name, args in (("ZeroPad1d", (2,)), ("ZeroPad2d", ((1, 0, 2, 1),)), ("ConstantPad1d", ((1, 2), 3.5)),
                       ("ConstantPad2d", (1, -1.0)), ("ReflectionPad1d", (3,)), ("ReflectionPad2d", ((1, 2, 3, 0),)),
                       ("ReplicationPad1d", ((0, 4),)), ("ReplicationPad2d", (2,)), ("CircularPad1d", (2,)),
                       ("CircularPad2d", ((1, 1, 2, 0),))):
        ours, theirs = getattr(nn, name)(*args), getattr(torch.nn, name)(*args)
        data = x[0] if name.endswith("1d") else x
        np.testing.assert_allclose(ours(graphnet.tensor(data)).numpy(), theirs(torch.tensor(data)).numpy())
        assert repr(ours) == repr(theirs)


def test_pad_gradcheck_and_compile():
    x = _arr(1, 2, 4, 5)
    for mode in ("reflect", "replicate", "circular"):
        assert gradcheck(lambda a, m=mode: F.pad(a, (2, 1, 1, 3), mode=m), (graphnet.tensor(x, requires_grad=True),))
    _compiled_matches_eager(lambda a: F.pad(a, (2, 1, 1, 3), mode="reflect") + F.pad(a, (2, 1, 1, 3), mode="circular")
                            + F.pad(a, (2, 1, 1, 3), mode="replicate"), x)


# ---- max_pool2d options -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(1, 2, 7, 9), (2, 1, 8, 8), (3, 6, 5)], ids=str)
def test_max_pool2d_ceil_dilation_indices_match_torch(shape):
    torch = pytest.importorskip("torch")
    pool = nn.MaxPool2d(3, stride=2, padding=1, dilation=2, ceil_mode=True, return_indices=True)
    ref = torch.nn.MaxPool2d(3, stride=2, padding=1, dilation=2, ceil_mode=True, return_indices=True)
    _vs_torch(pool, ref, _arr(*shape))


# ---- dropout2d ----------------------------------------------------------------------------------------------------


def test_dropout2d_zeroes_whole_channels_and_scales():
    graphnet.manual_seed(0)
    x = graphnet.ones(8, 16, 3, 3, dtype=graphnet.float64)
    out = F.dropout2d(x, p=0.25).numpy()
    per_channel = out.reshape(8, 16, -1)
    assert np.all(per_channel.min(-1) == per_channel.max(-1))  # each channel all dropped or all kept
    assert set(np.unique(out)) <= {0.0, 1 / 0.75}
    assert 0 < (per_channel[..., 0] == 0).sum() < 8 * 16
    layer = nn.Dropout2d(0.5)
    layer.eval()
    assert layer(x) is x
    assert repr(layer) == "Dropout2d(p=0.5, inplace=False)"


def test_dropout2d_gradient_follows_the_mask_and_compiles():
    graphnet.manual_seed(1)
    x = graphnet.tensor(_arr(2, 4, 2, 2), requires_grad=True)
    out = F.dropout2d(x, 0.5)
    out.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), (out.detach().numpy() != 0) * 2.0)

    def step(a):
        return F.dropout2d(a, 0.5).sum(dim=(2, 3))

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        kept = graphnet.compile(step)(graphnet.ones(2, 4, 2, 2)).numpy()
    assert set(np.unique(kept)) <= {0.0, 8.0}


def test_dropout2d_errors_and_warnings():
    x = graphnet.ones(2, 3, 4)
    with pytest.raises(ValueError, match="dropout probability has to be between 0 and 1, but got 1.5"):
        F.dropout2d(x, 1.5)
    with pytest.warns(UserWarning, match="Received a 3D input to dropout2d"):
        out = F.dropout2d(x, 0.5).numpy()
    assert np.all(out.min(-1) == out.max(-1))
    with pytest.warns(UserWarning, match="Received a 2-D input to dropout2d, which is deprecated"):
        F.dropout2d(graphnet.ones(3, 4), 0.5)


# ---- max_unpool2d -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape, k, s, p, size", [((1, 2, 4, 6), 2, None, 0, None), ((2, 1, 7, 7), 3, 2, 1, (7, 7)),
                                                  ((1, 2, 5, 5), 2, None, 0, (1, 2, 5, 5))], ids=str)
def test_max_unpool2d_matches_torch(shape, k, s, p, size):
    torch = pytest.importorskip("torch")
    values, idx = torch.nn.functional.max_pool2d(torch.tensor(_arr(*shape)), k, s, p, return_indices=True)
    ours_idx = graphnet.tensor(idx.numpy())
    _vs_torch(lambda a: nn.MaxUnpool2d(k, s, p)(a, ours_idx, size),
              lambda a: torch.nn.MaxUnpool2d(k, s, p)(a, idx, size), values.numpy())
    assert repr(nn.MaxUnpool2d(k, s, p)) == repr(torch.nn.MaxUnpool2d(k, s, p))


def test_max_unpool2d_round_trip_error_and_compile():
    x = _arr(1, 2, 4, 4)
    values, idx = F.max_pool2d(graphnet.tensor(x), 2, return_indices=True)
    with pytest.raises(ValueError, match=r'invalid output_size "\(9, 9\)" \(dim 0 must be between 2 and 6\)'):
        F.max_unpool2d(values, idx, 2, output_size=(9, 9))
    _compiled_matches_eager(lambda a: F.max_unpool2d(a, idx, 2) * 3.0, values.numpy())
    assert gradcheck(lambda a: F.max_unpool2d(a, idx, 2), (graphnet.tensor(values.numpy(), requires_grad=True),))

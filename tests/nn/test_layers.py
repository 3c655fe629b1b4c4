"""Linear, Conv1d/2d, pooling, Embedding, Flatten and lazy layers: values vs NumPy references, float64 gradchecks,
reprs and error messages."""
import numpy as np
import pytest

import graphnet as torch
import graphnet.nn.functional as F
from graphnet import nn
from graphnet.autograd import gradcheck


def _np(t):
    return t.detach().numpy()


def _x64(*shape):
    return torch.randn(*shape, dtype=torch.float64, requires_grad=True)


def conv2d_ref(x, w, b, stride, padding, dilation, groups):
    """Direct-loop 2-d cross-correlation (the textbook definition)."""
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (padding[0],) * 2, (padding[1],) * 2))
    ho = (h + 2 * padding[0] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    wo = (wd + 2 * padding[1] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    out = np.zeros((n, o, ho, wo))
    og = o // groups
    for oc in range(o):
        g = oc // og
        for i in range(ho):
            for j in range(wo):
                patch = xp[:, g * cg:(g + 1) * cg, i * stride[0]:i * stride[0] + dilation[0] * (kh - 1) + 1:dilation[0],
                           j * stride[1]:j * stride[1] + dilation[1] * (kw - 1) + 1:dilation[1]]
                out[:, oc, i, j] = (patch * w[oc]).sum(axis=(1, 2, 3))
    return out if b is None else out + b.reshape(1, -1, 1, 1)


def pool_ref(x, k, s, reduce):
    n, c, h, w = x.shape
    ho, wo = (h - k) // s + 1, (w - k) // s + 1
    out = np.zeros((n, c, ho, wo))
    for i in range(ho):
        for j in range(wo):
            out[:, :, i, j] = reduce(x[:, :, i * s:i * s + k, j * s:j * s + k], axis=(2, 3))
    return out


# ---- Linear ---------------------------------------------------------------------------------------------------
def test_linear_values_and_repr():
    lin = nn.Linear(4, 3)
    x = torch.randn(5, 4)
    np.testing.assert_allclose(_np(lin(x)), x.numpy() @ _np(lin.weight).T + _np(lin.bias), rtol=1e-5, atol=1e-6)
    assert repr(lin) == "Linear(in_features=4, out_features=3, bias=True)"
    no_bias = nn.Linear(4, 3, bias=False)
    assert no_bias.bias is None and [n for n, _ in no_bias.named_parameters()] == ["weight"]
    assert tuple(lin(torch.randn(2, 7, 4)).shape) == (2, 7, 3)


def test_linear_gradcheck():
    lin = nn.Linear(3, 2).double()
    assert gradcheck(lambda x, w, b: F.linear(x, w, b), (_x64(4, 3), lin.weight, lin.bias))


def test_linear_feature_mismatch_message():
    with pytest.raises(RuntimeError, match=r"linear: input has 400 features but weight expects 256 \(input shape "
                                           r"\(64, 400\), weight shape \(120, 256\)\)"):
        nn.Linear(256, 120)(torch.randn(64, 400))


def test_bilinear_values_and_gradcheck():
    bil = nn.Bilinear(3, 2, 4).double()
    x1, x2 = _x64(5, 3), _x64(5, 2)
    ref = np.einsum("ni,oij,nj->no", _np(x1), _np(bil.weight), _np(x2)) + _np(bil.bias)
    np.testing.assert_allclose(_np(bil(x1, x2)), ref, rtol=1e-10)
    assert gradcheck(lambda a, b, w: F.bilinear(a, b, w), (_x64(2, 3), _x64(2, 2), bil.weight))


# ---- Convolution ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs", [
    {}, {"stride": 2}, {"padding": 1}, {"dilation": 2}, {"groups": 2, "padding": (1, 0)},
    {"stride": (2, 1), "padding": (0, 2), "bias": False},
])
def test_conv2d_matches_reference(kwargs):
    conv = nn.Conv2d(4, 6, 3, **kwargs).double()
    x = torch.randn(2, 4, 7, 6, dtype=torch.float64)
    ref = conv2d_ref(x.numpy(), _np(conv.weight), None if conv.bias is None else _np(conv.bias), conv.stride,
                     conv.padding, conv.dilation, conv.groups)
    np.testing.assert_allclose(_np(conv(x)), ref, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kernel, dilation", [(3, 1), (4, 1), ((2, 3), (1, 2))])
def test_conv2d_same_and_valid_padding(kernel, dilation):
    conv = nn.Conv2d(2, 3, kernel, padding="same", dilation=dilation).double()
    x = torch.randn(1, 2, 6, 7, dtype=torch.float64)
    out = conv(x)
    assert tuple(out.shape) == (1, 3, 6, 7)
    kh, kw = conv.kernel_size
    th, tw = conv.dilation[0] * (kh - 1), conv.dilation[1] * (kw - 1)
    xp = np.pad(x.numpy(), ((0, 0), (0, 0), (th // 2, th - th // 2), (tw // 2, tw - tw // 2)))
    ref = conv2d_ref(xp, _np(conv.weight), _np(conv.bias), (1, 1), (0, 0), conv.dilation, 1)
    np.testing.assert_allclose(_np(out), ref, rtol=1e-10, atol=1e-12)
    valid = nn.Conv2d(2, 3, 3, padding="valid")
    assert tuple(valid(torch.randn(1, 2, 6, 7)).shape) == (1, 3, 4, 5)


def test_conv2d_gradcheck():
    conv = nn.Conv2d(2, 2, 3, stride=2, padding=1, bias=True).double()
    assert gradcheck(lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=1), (_x64(1, 2, 5, 4), conv.weight,
                                                                               conv.bias))


def test_conv1d_matches_reference_and_gradcheck():
    conv = nn.Conv1d(3, 4, 3, stride=2, padding=1).double()
    x = torch.randn(2, 3, 9, dtype=torch.float64)
    ref = conv2d_ref(x.numpy()[:, :, None], _np(conv.weight)[:, :, None], _np(conv.bias), (1, 2), (0, 1), (1, 1), 1)
    np.testing.assert_allclose(_np(conv(x)), ref[:, :, 0], rtol=1e-10, atol=1e-12)
    assert repr(conv) == "Conv1d(3, 4, kernel_size=(3,), stride=(2,), padding=(1,))"
    assert gradcheck(lambda x, w: F.conv1d(x, w, padding=1), (_x64(1, 3, 5), conv.weight))


def test_conv_reprs_and_errors():
    assert repr(nn.Conv2d(1, 6, 5)) == "Conv2d(1, 6, kernel_size=(5, 5), stride=(1, 1))"
    assert repr(nn.Conv2d(4, 8, (3, 1), stride=2, padding=1, dilation=2, groups=2,
                          bias=False)) == ("Conv2d(4, 8, kernel_size=(3, 1), stride=(2, 2), padding=(1, 1), "
                                           "dilation=(2, 2), groups=2, bias=False)")
    assert repr(nn.Conv2d(1, 1, 3, padding="same")) == "Conv2d(1, 1, kernel_size=(3, 3), stride=(1, 1), padding=same)"
    with pytest.raises(ValueError, match="padding='same' is not supported for strided convolutions"):
        nn.Conv2d(1, 1, 3, stride=2, padding="same")
    with pytest.raises(ValueError, match="in_channels must be divisible by groups"):
        nn.Conv2d(3, 4, 3, groups=2)
    with pytest.raises(RuntimeError, match=r"^Given groups=1, weight of size \[6, 1, 5, 5\], expected "
                                           r"input\[2, 3, 32, 32\] to have 1 channels, but got 3 channels instead$"):
        nn.Conv2d(1, 6, 5)(torch.randn(2, 3, 32, 32))


def test_conv2d_unbatched_input():
    conv = nn.Conv2d(2, 3, 3)
    x = torch.randn(2, 5, 5)
    np.testing.assert_allclose(_np(conv(x)), _np(conv(x.unsqueeze(0)))[0], rtol=1e-6)


# ---- Pooling --------------------------------------------------------------------------------------------------
def test_max_and_avg_pool_match_reference():
    x = torch.randn(2, 3, 6, 6, dtype=torch.float64)
    np.testing.assert_allclose(_np(nn.MaxPool2d(2)(x)), pool_ref(x.numpy(), 2, 2, np.max))
    np.testing.assert_allclose(_np(nn.MaxPool2d((3, 3), stride=1)(x)), pool_ref(x.numpy(), 3, 1, np.max))
    np.testing.assert_allclose(_np(nn.AvgPool2d(2)(x)), pool_ref(x.numpy(), 2, 2, np.mean))
    np.testing.assert_allclose(_np(F.avg_pool2d(x, 3, stride=1)), pool_ref(x.numpy(), 3, 1, np.mean))
    values, idx = F.max_pool2d(x, 2, return_indices=True)
    flat = x.numpy().reshape(2, 3, -1)
    np.testing.assert_allclose(np.take_along_axis(flat, idx.numpy().reshape(2, 3, -1), 2), _np(values).reshape(2, 3,
                                                                                                                -1))


def test_pool_reprs():
    assert repr(nn.MaxPool2d(2, 2)) == "MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)"
    assert repr(nn.MaxPool2d((2, 2))) == ("MaxPool2d(kernel_size=(2, 2), stride=(2, 2), padding=0, dilation=1, "
                                          "ceil_mode=False)")
    assert repr(nn.AvgPool2d(3, stride=1, padding=1)) == "AvgPool2d(kernel_size=3, stride=1, padding=1)"
    assert repr(nn.AdaptiveAvgPool2d((1, 1))) == "AdaptiveAvgPool2d(output_size=(1, 1))"


def test_pool_gradchecks():
    assert gradcheck(lambda x: F.max_pool2d(x, 2), (_x64(1, 2, 4, 4),))
    assert gradcheck(lambda x: F.avg_pool2d(x, 2, stride=1, padding=1), (_x64(1, 1, 3, 3),))
    assert gradcheck(lambda x: F.adaptive_avg_pool2d(x, (2, 3)), (_x64(1, 1, 5, 4),))


@pytest.mark.parametrize("size, out", [((6, 6), (1, 1)), ((6, 6), (3, 2)), ((5, 7), (3, 4)), ((5, 7), (None, 2))])
def test_adaptive_avg_pool_matches_pytorch_windows(size, out):
    x = torch.randn(2, 3, *size, dtype=torch.float64)
    h, w = size
    oh, ow = h if out[0] is None else out[0], w if out[1] is None else out[1]
    ref = np.zeros((2, 3, oh, ow))
    for i in range(oh):
        for j in range(ow):
            hs, he = (i * h) // oh, -(-((i + 1) * h) // oh)
            ws, we = (j * w) // ow, -(-((j + 1) * w) // ow)
            ref[:, :, i, j] = x.numpy()[:, :, hs:he, ws:we].mean(axis=(2, 3))
    np.testing.assert_allclose(_np(nn.AdaptiveAvgPool2d(out)(x)), ref, rtol=1e-12)


def test_pool1d():
    x = torch.randn(2, 3, 8, dtype=torch.float64)
    np.testing.assert_allclose(_np(nn.MaxPool1d(2)(x)), x.numpy().reshape(2, 3, 4, 2).max(-1))
    np.testing.assert_allclose(_np(nn.AvgPool1d(4)(x)), x.numpy().reshape(2, 3, 2, 4).mean(-1))


# ---- Embedding, Flatten, Identity -------------------------------------------------------------------------------
def test_embedding_lookup_padding_and_grad():
    emb = nn.Embedding(10, 3, padding_idx=0)
    assert repr(emb) == "Embedding(10, 3, padding_idx=0)"
    np.testing.assert_array_equal(_np(emb.weight)[0], np.zeros(3))
    idx = torch.tensor([[0, 2, 2], [5, 0, 9]])
    out = emb(idx)
    np.testing.assert_array_equal(_np(out), _np(emb.weight)[idx.numpy()])
    out.sum().backward()
    counts = np.bincount(idx.numpy().ravel(), minlength=10).astype(np.float32)
    counts[0] = 0
    np.testing.assert_array_equal(emb.weight.grad.numpy(), np.repeat(counts[:, None], 3, axis=1))
    with pytest.raises(RuntimeError, match="Expected tensor for argument #1 'indices' to have one of the following "
                                           "scalar types: Long, Int"):
        emb(torch.ones(2))
    with pytest.raises(IndexError, match="index out of range in self"):
        emb(torch.tensor([10]))


def test_embedding_from_pretrained_gradcheck():
    w = torch.randn(5, 2, dtype=torch.float64)
    emb = nn.Embedding.from_pretrained(w)
    assert not emb.weight.requires_grad
    idx = torch.tensor([4, 1, 1])
    assert gradcheck(lambda weight: F.embedding(idx, weight), (_x64(5, 2),))
    np.testing.assert_array_equal(_np(emb(idx)), w.numpy()[[4, 1, 1]])


def test_flatten_unflatten_identity():
    x = torch.randn(2, 3, 4, 5)
    assert tuple(nn.Flatten()(x).shape) == (2, 60)
    assert tuple(nn.Flatten(0, 2)(x).shape) == (24, 5)
    assert tuple(nn.Unflatten(1, (6, 10))(nn.Flatten()(x)).shape) == (2, 6, 10)
    assert nn.Identity(54, unused="x")(x) is x
    assert repr(nn.Flatten()) == "Flatten(start_dim=1, end_dim=-1)"


# ---- Lazy layers ----------------------------------------------------------------------------------------------
def test_lazy_linear_infers_in_features_and_becomes_linear():
    lazy = nn.LazyLinear(4)
    assert repr(lazy) == "LazyLinear(in_features=0, out_features=4, bias=True)"
    assert isinstance(lazy.weight, nn.UninitializedParameter)
    with pytest.raises(ValueError, match="uninitialized parameter"):
        _ = lazy.weight.shape
    out = lazy(torch.randn(2, 7))
    assert type(lazy) is nn.Linear and lazy.in_features == 7 and tuple(out.shape) == (2, 4)
    assert type(lazy.weight) is nn.Parameter and tuple(lazy.weight.shape) == (4, 7)
    assert repr(lazy) == "Linear(in_features=7, out_features=4, bias=True)"
    assert not lazy._forward_pre_hooks
    x = torch.randn(3, 7)
    np.testing.assert_allclose(_np(lazy(x)), x.numpy() @ _np(lazy.weight).T + _np(lazy.bias), rtol=1e-5, atol=1e-6)


def test_lazy_conv2d_and_state_dict_loading():
    lazy = nn.LazyConv2d(6, 3, padding=1)
    assert tuple(lazy(torch.randn(1, 2, 5, 5)).shape) == (1, 6, 5, 5)
    assert type(lazy) is nn.Conv2d and lazy.in_channels == 2 and tuple(lazy.weight.shape) == (6, 2, 3, 3)
    src = nn.Linear(5, 3)
    fresh = nn.LazyLinear(3)
    fresh.load_state_dict(src.state_dict())
    np.testing.assert_array_equal(_np(fresh.weight), _np(src.weight))


def test_optimizer_style_access_to_uninitialized_parameter_fails_clearly():
    lazy = nn.LazyLinear(2)
    with pytest.raises(ValueError, match="call `forward` with a dummy batch"):
        [p.numel() for p in lazy.parameters()]

"""F.scaled_dot_product_attention and nn.MultiheadAttention vs PyTorch: values and gradients for every mask kind,
causal, GQA, kdim/vdim, bias_kv, zero_attn, batch_first and unbatched input; compiled vs eager; the error paths."""
import re
import warnings

import numpy as np
import pytest

import graphnet as gn
import graphnet.nn as nn
import graphnet.nn.functional as F

torch = pytest.importorskip("torch")
TOL = {"rtol": 1e-5, "atol": 1e-5}


@pytest.fixture(autouse=True)
def _kernel_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("GRAPHNET_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "kernel-cache"))


def to_gn(t, requires_grad=False):
    return gn.tensor(t.detach().numpy(), requires_grad=requires_grad)


def close(got, want):
    np.testing.assert_allclose(got.detach().numpy(), want.detach().numpy(), **TOL)


def copy_module(gm, tm):
    gm.load_state_dict({k: to_gn(v) for k, v in tm.state_dict().items()})
    return gm


# ---- scaled_dot_product_attention -------------------------------------------------------------------------------
def _qkv(*shapes):
    gen = torch.Generator().manual_seed(0)
    return [torch.randn(s, generator=gen, requires_grad=True) for s in shapes]


QKV = [(3, 2, 5, 4), (3, 2, 6, 4), (3, 2, 6, 4)]
BOOL = torch.rand(5, 6, generator=torch.Generator().manual_seed(1)) > 0.4
BOOL[:, 0] = True
DEAD_ROW = BOOL.clone()
DEAD_ROW[2] = False  # a query that may attend nowhere: PyTorch gives 0, not nan
CASES = {
    "plain": {},
    "bool_2d": {"attn_mask": BOOL},
    "bool_dead_row": {"attn_mask": DEAD_ROW},
    "bool_per_batch": {"attn_mask": torch.rand(3, 1, 5, 6, generator=torch.Generator().manual_seed(2)) > 0.3},
    "float_per_head": {"attn_mask": torch.randn(2, 5, 6, generator=torch.Generator().manual_seed(3))},
    "causal": {"is_causal": True},
    "causal_and_mask": {"is_causal": True, "attn_mask": BOOL},
    "scale": {"scale": 0.3},
}


@pytest.mark.parametrize("case", list(CASES))
def test_sdpa_values_and_gradients_match_torch(case):
    kw = CASES[case]
    q, k, v = _qkv(*QKV)
    want = torch.nn.functional.scaled_dot_product_attention(q, k, v, **kw)
    gq, gk, gv = (to_gn(t, True) for t in (q, k, v))
    gkw = {n: to_gn(a) if isinstance(a, torch.Tensor) else a for n, a in kw.items()}
    got = F.scaled_dot_product_attention(gq, gk, gv, **gkw)
    close(got, want)
    g = torch.randn(want.shape, generator=torch.Generator().manual_seed(4))
    want.backward(g)
    got.backward(to_gn(g))
    for a, b in ((gq, q), (gk, k), (gv, v)):
        assert np.isfinite(a.grad.numpy()).all()
        close(a.grad, b.grad)


def test_sdpa_unbatched_broadcast_batch_and_grouped_query_heads():
    q, k, v = _qkv((5, 4), (6, 4), (6, 3))
    close(F.scaled_dot_product_attention(to_gn(q), to_gn(k), to_gn(v)),
          torch.nn.functional.scaled_dot_product_attention(q, k, v))
    q, k, v = _qkv((3, 4, 5, 4), (3, 2, 6, 4), (3, 2, 6, 4))
    want = torch.nn.functional.scaled_dot_product_attention(q, k, v, enable_gqa=True)
    close(F.scaled_dot_product_attention(to_gn(q), to_gn(k), to_gn(v), enable_gqa=True), want)
    q, k, v = _qkv((3, 2, 5, 4), (1, 2, 6, 4), (1, 2, 6, 4))  # key/value broadcast over the batch
    close(F.scaled_dot_product_attention(to_gn(q), to_gn(k), to_gn(v)),
          torch.nn.functional.scaled_dot_product_attention(q, k, v))


def test_sdpa_dropout_uses_graphnets_generator_and_scales_the_kept_weights():
    q, k, v = (to_gn(t) for t in _qkv(*QKV))
    gn.manual_seed(5)
    a = F.scaled_dot_product_attention(q, k, v, dropout_p=0.5)
    gn.manual_seed(5)
    np.testing.assert_array_equal(F.scaled_dot_product_attention(q, k, v, dropout_p=0.5).numpy(), a.numpy())
    ones = gn.ones(3, 2, 6, 4)  # each output element is then the sum of the kept, rescaled weights of its row
    rows = F.scaled_dot_product_attention(q, k, ones, dropout_p=0.5).numpy()
    assert not np.allclose(rows, 1.0) and abs(rows.mean() - 1.0) < 0.2


def test_sdpa_compiled_matches_eager_with_traced_masks():
    q, k, v = (to_gn(t) for t in _qkv(*QKV))
    mask = to_gn(BOOL)

    def attend(q, k, v, mask):
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=True)

    compiled = gn.compile(attend)
    want = attend(q, k, v, mask).numpy()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a fallback to eager would warn
        for _ in range(2):
            np.testing.assert_allclose(compiled(q, k, v, mask).numpy(), want, **TOL)


SDPA_ERRORS = [
    (lambda q, k, v: F.scaled_dot_product_attention(q, k, v, attn_mask=gn.ones(4, 6, dtype=gn.bool)), RuntimeError,
     "The size of tensor a (5) must match the size of tensor b (4) at non-singleton dimension 2"),
    (lambda q, k, v: F.scaled_dot_product_attention(q, k, v, attn_mask=gn.ones(5, 5)), RuntimeError,
     "The size of tensor a (6) must match the size of tensor b (5) at non-singleton dimension 3"),
    (lambda q, k, v: F.scaled_dot_product_attention(q, k, v, attn_mask=gn.ones(1, 3, 2, 5, 6)), RuntimeError,
     "output with shape [3, 2, 5, 6] doesn't match the broadcast shape [1, 3, 2, 5, 6]"),
    (lambda q, k, v: F.scaled_dot_product_attention(q, k, v, attn_mask=gn.ones(6, dtype=gn.bool)), IndexError,
     "Dimension out of range (expected to be in range of [-1, 0], but got -2)"),
    (lambda q, k, v: F.scaled_dot_product_attention(q, k, v, attn_mask=gn.ones(5, 6, dtype=gn.int64)), RuntimeError,
     "Expected attn_mask dtype to be bool or float or to match query dtype, but got attn_mask.dtype: long int and  "
     "query.dtype: float instead."),
    (lambda q, k, v: F.scaled_dot_product_attention(q, k, v, attn_mask=gn.ones(5, 6, dtype=gn.float64)),
     RuntimeError, "but got attn_mask.dtype: double and  query.dtype: float instead."),
    (lambda q, k, v: F.scaled_dot_product_attention(q.double(), k, v), RuntimeError,
     "Expected query, key, and value to have the same dtype, but got query.dtype: double key.dtype: float and "
     "value.dtype: float instead."),
    (lambda q, k, v: F.scaled_dot_product_attention(q[0, 0, 0], k[0, 0, 0], v[0, 0, 0]), RuntimeError,
     "Expected query, key, and value to all be  at least 2 dimensional, but got query.dim: 1 key.dim: 1 and "
     "value.dim: 1 instead."),
    (lambda q, k, v: F.scaled_dot_product_attention(q, k, v, dropout_p=1.5), RuntimeError,
     "dropout probability has to be between 0 and 1, but got 1.5"),
    (lambda q, k, v: F.scaled_dot_product_attention(gn.ones(3, 3, 5, 4), k, v, enable_gqa=True), RuntimeError,
     "Number of heads in key and value must divide the number of heads in"),
]


@pytest.mark.parametrize("i", range(len(SDPA_ERRORS)))
def test_sdpa_errors_are_worded_like_torch(i):
    fn, exc, message = SDPA_ERRORS[i]
    q, k, v = (to_gn(t) for t in _qkv(*QKV))
    with pytest.raises(exc, match=re.escape(message)):
        fn(q, k, v)


# ---- MultiheadAttention -----------------------------------------------------------------------------------------
def _pair(**kw):
    torch.manual_seed(0)
    tm = torch.nn.MultiheadAttention(16, 2, **kw)
    return copy_module(nn.MultiheadAttention(16, 2, **kw), tm), tm


def _run_both(gm, tm, args, kwargs):
    want = tm(*args, **kwargs)
    got = gm(*(to_gn(a, a.requires_grad) for a in args),
             **{n: to_gn(a) if isinstance(a, torch.Tensor) else a for n, a in kwargs.items()})
    return got, want


def _compare(gm, tm, got, want, inputs_grad=True):
    close(got[0], want[0])
    if want[1] is None:
        assert got[1] is None
    else:
        close(got[1], want[1])
    want[0].square().sum().backward()
    got[0].square().sum().backward()
    grads = dict(gm.named_parameters())
    for name, p in tm.named_parameters():
        close(grads[name].grad, p.grad)


X = torch.randn(5, 3, 16, generator=torch.Generator().manual_seed(6), requires_grad=True)
MEM = torch.randn(6, 3, 16, generator=torch.Generator().manual_seed(7))
KPM = torch.tensor([[False] * 5 + [True], [False] * 6, [False, True] + [False] * 4])
MHA_CASES = {
    "self": ({}, (X, X, X), {}),
    "cross_bool_masks": ({}, (X, MEM, MEM), {"key_padding_mask": KPM, "attn_mask": ~BOOL}),
    "float_3d_mask_no_weights": ({}, (X, MEM, MEM), {"attn_mask": torch.randn(6, 5, 6), "need_weights": False}),
    "per_head_weights": ({}, (X, X, X), {"average_attn_weights": False}),
    "causal": ({}, (X, X, X), {"attn_mask": torch.nn.Transformer.generate_square_subsequent_mask(5),
                               "is_causal": True, "need_weights": False}),
    "kdim_vdim": ({"kdim": 8, "vdim": 4}, (X, MEM[..., :8], MEM[..., :4]), {}),
    "bias_kv_zero_attn": ({"add_bias_kv": True, "add_zero_attn": True}, (X, MEM, MEM), {"key_padding_mask": KPM}),
    "no_bias": ({"bias": False}, (X, MEM, MEM), {}),
    "batch_first": ({"batch_first": True}, (X.detach().transpose(0, 1).requires_grad_(),) * 3, {}),
    "unbatched": ({}, (X.detach()[:, 0].requires_grad_(), MEM[:, 0], MEM[:, 0]), {"key_padding_mask": KPM[0]}),
}


@pytest.mark.parametrize("case", list(MHA_CASES))
def test_multihead_attention_matches_torch_values_and_parameter_gradients(case):
    init_kw, args, kwargs = MHA_CASES[case]
    gm, tm = _pair(**init_kw)
    assert list(gm.state_dict()) == list(tm.state_dict())
    got, want = _run_both(gm, tm, args, kwargs)
    _compare(gm, tm, got, want)


def test_multihead_attention_modes_and_repr():
    gm, tm = _pair(dropout=0.5)
    assert repr(gm) == repr(tm)
    assert gm.head_dim == 8 and gm._qkv_same_embed_dim and gm.q_proj_weight is None
    x = to_gn(X)
    gm.eval()
    out, w = gm(x, x, x)
    np.testing.assert_allclose(w.detach().numpy().sum(-1), 1.0, rtol=1e-5)
    gm.train()
    gn.manual_seed(3)
    a = gm(x, x, x)[0].detach().numpy()
    assert not np.allclose(a, out.detach().numpy())


def test_multihead_attention_compiled_matches_eager():
    gm, _ = _pair(batch_first=True)
    x = gn.randn(3, 5, 16)
    mask = to_gn(torch.ones(5, 5, dtype=torch.bool).triu(1))  # bool, like the padding mask: True = masked out
    kpm = to_gn(KPM[:, :5])
    with gn.no_grad():
        want = gm(x, x, x, kpm, True, mask)
        compiled = gn.compile(gm)
        for _ in range(2):
            got = compiled(x, x, x, kpm, True, mask)
            close(got[0], want[0])
            close(got[1], want[1])


MHA_ERRORS = [
    (lambda: nn.MultiheadAttention(16, 3), AssertionError, "embed_dim must be divisible by num_heads"),
    (lambda: nn.MultiheadAttention(0, 3), ValueError,
     "embed_dim and num_heads must be greater than 0, got embed_dim=0 and num_heads=3 instead"),
    (lambda m, x: m(x, x, x, attn_mask=gn.ones(4, 6)), RuntimeError,
     "The shape of the 2D attn_mask is graphnet.Size([4, 6]), but should be (5, 5)."),
    (lambda m, x: m(x, x, x, attn_mask=gn.ones(2, 5, 5)), RuntimeError,
     "The shape of the 3D attn_mask is graphnet.Size([2, 5, 5]), but should be (6, 5, 5)."),
    (lambda m, x: m(x, x, x, attn_mask=gn.ones(1, 1, 5, 5)), AssertionError,
     "For batched (3-D) `query`, expected `attn_mask` to be `None`, 2-D or 3-D but found 4-D tensor instead"),
    (lambda m, x: m(x, x, x, key_padding_mask=gn.ones(3, 4, dtype=gn.bool)), AssertionError,
     "Expected key_padded_mask.shape[1] to be 5, but got 4"),
    (lambda m, x: m(x, x, x, key_padding_mask=gn.ones(2, 5, dtype=gn.bool)), AssertionError,
     "Expected key_padded_mask.shape[0] to be 3, but got 2"),
    (lambda m, x: m(x, x, x, key_padding_mask=gn.ones(3, dtype=gn.bool)), AssertionError,
     "For batched (3-D) `query`, expected `key_padding_mask` to be `None` or 2-D but found 1-D tensor instead"),
    (lambda m, x: m(x, x, x, attn_mask=gn.ones(5, 5, dtype=gn.int64)), AssertionError,
     "only bool and floating types of attn_mask are supported"),
    (lambda m, x: m(x, x[0], x[0]), AssertionError,
     "For batched (3-D) `query`, expected `key` and `value` to be 3-D but found 2-D and 2-D tensors respectively"),
    (lambda m, x: m(x[0, 0], x[0, 0], x[0, 0]), AssertionError,
     "query should be unbatched 2D or batched 3D tensor but received 1-D query tensor"),
    (lambda m, x: m(x, x, x, is_causal=True), RuntimeError, "Need attn_mask if specifying the is_causal hint."),
    (lambda m, x: m(x[..., :8], x[..., :8], x[..., :8]), AssertionError,
     "was expecting embedding dimension of 16, but got 8"),
    (lambda m, x: m(x, x, x[:4]), AssertionError, "key shape"),
]


@pytest.mark.parametrize("i", range(len(MHA_ERRORS)))
def test_multihead_attention_errors_are_worded_like_torch(i):
    fn, exc, message = MHA_ERRORS[i]
    with pytest.raises(exc, match=re.escape(message)):
        fn() if fn.__code__.co_argcount == 0 else fn(nn.MultiheadAttention(16, 2), gn.randn(5, 3, 16))


def test_mismatched_mask_types_warn_like_torch():
    m, x = nn.MultiheadAttention(16, 2), gn.randn(5, 3, 16)
    with pytest.warns(UserWarning, match="Support for mismatched key_padding_mask and attn_mask is deprecated"):
        m(x, x, x, key_padding_mask=gn.zeros(3, 5, dtype=gn.bool), attn_mask=gn.zeros(5, 5))

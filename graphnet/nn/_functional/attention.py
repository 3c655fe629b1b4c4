"""nn.functional attention: scaled_dot_product_attention and multi_head_attention_forward, composites of matmul,
softmax, where and dropout (so they trace, compile and differentiate like any other composite).

Masks follow PyTorch: SDPA's bool attn_mask is True where a query may attend; MHA's bool masks are True where it
may not (they become additive -inf float masks first, as PyTorch's _canonical_mask does)."""
import math
import warnings

import numpy as np

from ...core import dtype as dt
from ...frontend.api_movement import cat
from ...frontend.creation import arange, zeros
from .common import concrete
from .dropout import dropout
from .linear import linear
from .shape import pad

# The C++ type names PyTorch's SDPA messages print for a dtype.
_CPP_NAMES = {dt.float32: "float", dt.float64: "double", dt.float16: "c10::Half",
              dt.int64: "long int", dt.int32: "int", dt.int16: "short int", dt.int8: "signed char",
              dt.uint8: "unsigned char", dt.bool_: "bool"}


def _cpp(dtype):
    return _CPP_NAMES.get(dtype, dtype.name)


def _check_sdpa_inputs(query, key, value, attn_mask, dropout_p):
    if query.dim() < 2 or key.dim() < 2 or value.dim() < 2:
        raise RuntimeError(f"Expected query, key, and value to all be  at least 2 dimensional, but got query.dim: "
                           f"{query.dim()} key.dim: {key.dim()} and value.dim: {value.dim()} instead.")
    if not (query.dtype == key.dtype == value.dtype):
        raise RuntimeError(f"Expected query, key, and value to have the same dtype, but got query.dtype: "
                           f"{_cpp(query.dtype)} key.dtype: {_cpp(key.dtype)} and value.dtype: {_cpp(value.dtype)} "
                           "instead.")
    if not query.dtype.is_floating_point:
        raise RuntimeError(f"expected scalar type Float but found {query.dtype.name}")
    if attn_mask is not None and attn_mask.dtype is not dt.bool_ and attn_mask.dtype != query.dtype:
        raise RuntimeError(f"Expected attn_mask dtype to be bool or float or to match query dtype, but got "
                           f"attn_mask.dtype: {_cpp(attn_mask.dtype)} and  query.dtype: {_cpp(query.dtype)} instead.")
    if not 0.0 <= dropout_p <= 1.0:
        raise RuntimeError(f"dropout probability has to be between 0 and 1, but got {dropout_p}")


def _check_mask_shape(mask, scores_shape):
    """attn_mask must broadcast to the (..., L, S) scores; the errors are those PyTorch's broadcasting raises."""
    if mask.dim() < 2:
        raise IndexError(f"Dimension out of range (expected to be in range of [{-max(mask.dim(), 1)}, "
                         f"{max(mask.dim(), 1) - 1}], but got -2)")
    if mask.dim() > len(scores_shape):
        raise RuntimeError(f"output with shape {list(scores_shape)} doesn't match the broadcast shape "
                           f"{list(np.broadcast_shapes(tuple(scores_shape), tuple(mask.shape)))}")
    for i in range(1, mask.dim() + 1):
        a, b = scores_shape[-i], mask.shape[-i]
        if b != 1 and a != b:
            raise RuntimeError(f"The size of tensor a ({a}) must match the size of tensor b ({b}) at non-singleton "
                               f"dimension {len(scores_shape) - i}")


def _repeat_heads(t, n_heads):
    """repeat_interleave of the head dim -3 up to n_heads (grouped-query attention), by expand + reshape."""
    groups = t.shape[-3]
    if n_heads % groups:
        raise RuntimeError("Number of heads in key and value must divide the number of heads in query")
    shape = tuple(t.shape)
    expanded = t.unsqueeze(-3).expand(*shape[:-2], n_heads // groups, *shape[-2:])
    return expanded.reshape(*shape[:-3], n_heads, *shape[-2:])


def causal_mask(L, S, device=None):
    """(L, S) bool mask, True on and below the diagonal (PyTorch's ones(L, S).tril()), built by comparing aranges so
    that it is an op sequence in a trace, not host data."""
    return arange(L, device=device).unsqueeze(-1) >= arange(S, device=device)


def _safe_softmax(scores):
    """Softmax over the last dim giving 0 (not nan) on rows that are all -inf, as PyTorch's _safe_softmax; the masked
    rows are replaced before the softmax too, so no nan reaches the gradient either."""
    dead = scores.amax(-1, keepdim=True) == float("-inf")
    return scores.masked_fill(dead, 0.0).softmax(-1).masked_fill(dead, 0.0)


def scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None,
                                 enable_gqa=False):
    """softmax(q k^T * scale + mask) v over (..., L, E) queries and (..., S, E) keys; bool masks are True where a
    query attends, float masks are added; is_causal keeps j <= i (combined with attn_mask when both are given)."""
    _check_sdpa_inputs(query, key, value, attn_mask, dropout_p)
    L, S = query.shape[-2], key.shape[-2]
    scale = 1.0 / math.sqrt(query.shape[-1]) if scale is None else scale
    if enable_gqa and query.dim() >= 3:
        key, value = _repeat_heads(key, query.shape[-3]), _repeat_heads(value, query.shape[-3])
    scores = (query @ key.transpose(-2, -1)) * scale
    if attn_mask is not None:
        _check_mask_shape(attn_mask, tuple(scores.shape))
        scores = scores.masked_fill(attn_mask.logical_not(), float("-inf")) if attn_mask.dtype is dt.bool_ \
            else scores + attn_mask
    if is_causal:
        scores = scores.masked_fill(causal_mask(L, S, query.device).logical_not(), float("-inf"))
    weights = scores.softmax(-1) if attn_mask is None else _safe_softmax(scores)
    return dropout(weights, dropout_p) @ value


# ---- multi-head attention ---------------------------------------------------------------------------------------
def canonical_mask(mask, mask_name, other_type, other_name, target_type, check_other=True):
    """A bool mask (True = masked out) becomes an additive float mask of `target_type` (-inf where masked)."""
    if mask is None:
        return None
    if mask.dtype is not dt.bool_ and not mask.dtype.is_floating_point:
        raise AssertionError(f"only bool and floating types of {mask_name} are supported")
    if check_other and other_type is not None and mask.dtype != other_type:
        warnings.warn(f"Support for mismatched {mask_name} and {other_name} is deprecated. Use same type for both "
                      "instead.", stacklevel=3)
    if mask.dtype.is_floating_point:
        return mask
    return zeros(tuple(mask.shape), dtype=target_type, device=mask.device).masked_fill(mask, float("-inf"))


def none_or_dtype(t):
    return None if t is None else t.dtype


def _mha_shape_check(query, key, value, key_padding_mask, attn_mask, num_heads):
    """PyTorch's checks of the query/key/value and mask ranks; whether the input is batched."""
    if query.dim() == 3:
        if key.dim() != 3 or value.dim() != 3:
            raise AssertionError("For batched (3-D) `query`, expected `key` and `value` to be 3-D but found "
                                 f"{key.dim()}-D and {value.dim()}-D tensors respectively")
        if key_padding_mask is not None and key_padding_mask.dim() != 2:
            raise AssertionError("For batched (3-D) `query`, expected `key_padding_mask` to be `None` or 2-D but "
                                 f"found {key_padding_mask.dim()}-D tensor instead")
        if attn_mask is not None and attn_mask.dim() not in (2, 3):
            raise AssertionError("For batched (3-D) `query`, expected `attn_mask` to be `None`, 2-D or 3-D but found "
                                 f"{attn_mask.dim()}-D tensor instead")
        return True
    if query.dim() == 2:
        if key.dim() != 2 or value.dim() != 2:
            raise AssertionError("For unbatched (2-D) `query`, expected `key` and `value` to be 2-D but found "
                                 f"{key.dim()}-D and {value.dim()}-D tensors respectively")
        if key_padding_mask is not None and key_padding_mask.dim() != 1:
            raise AssertionError("For unbatched (2-D) `query`, expected `key_padding_mask` to be `None` or 1-D but "
                                 f"found {key_padding_mask.dim()}-D tensor instead")
        if attn_mask is not None:
            if attn_mask.dim() not in (2, 3):
                raise AssertionError("For unbatched (2-D) `query`, expected `attn_mask` to be `None`, 2-D or 3-D but "
                                     f"found {attn_mask.dim()}-D tensor instead")
            expected = (num_heads, query.shape[0], key.shape[0])
            if attn_mask.dim() == 3 and tuple(attn_mask.shape) != expected:
                raise AssertionError(f"Expected `attn_mask` shape to be {expected} but got {attn_mask.shape}")
        return False
    raise AssertionError(f"query should be unbatched 2D or batched 3D tensor but received {query.dim()}-D query "
                         "tensor")


def _in_projection(query, key, value, in_proj_weight, in_proj_bias, separate):
    """q, k, v projections from the packed (3E, E) weight, or from separate q/k/v weights."""
    if separate is None:
        if query is key and key is value:  # self-attention: one GEMM, split after
            return linear(query, in_proj_weight, in_proj_bias).chunk(3, -1)
        weights, biases = in_proj_weight.chunk(3), (None,) * 3 if in_proj_bias is None else in_proj_bias.chunk(3)
    else:
        E = query.shape[-1]
        for name, w, x in zip(("query", "key", "value"), separate, (query, key, value)):
            if tuple(w.shape) != (E, x.shape[-1]):
                raise AssertionError(f"expecting {name} weights shape of {(E, x.shape[-1])}, but got {w.shape}")
        weights, biases = separate, (None,) * 3 if in_proj_bias is None else in_proj_bias.chunk(3)
    return tuple(linear(x, w, b) for x, w, b in zip((query, key, value), weights, biases))


def _check_attn_mask(attn_mask, bsz, num_heads, tgt_len, src_len):
    """The float attn_mask as (1 or bsz * num_heads, tgt_len, src_len)."""
    if attn_mask.dim() == 2:
        if tuple(attn_mask.shape) != (tgt_len, src_len):
            raise RuntimeError(f"The shape of the 2D attn_mask is {attn_mask.shape}, but should be "
                               f"{(tgt_len, src_len)}.")
        return attn_mask.unsqueeze(0)
    if attn_mask.dim() == 3:
        if tuple(attn_mask.shape) != (bsz * num_heads, tgt_len, src_len):
            raise RuntimeError(f"The shape of the 3D attn_mask is {attn_mask.shape}, but should be "
                               f"{(bsz * num_heads, tgt_len, src_len)}.")
        return attn_mask
    raise RuntimeError(f"attn_mask's dimension {attn_mask.dim()} is not supported")


def _heads(t, bsz, num_heads, head_dim):
    """(len, bsz, E) -> (bsz * num_heads, len, head_dim)."""
    return t.reshape(t.shape[0], bsz * num_heads, head_dim).transpose(0, 1)


def multi_head_attention_forward(query, key, value, embed_dim_to_check, num_heads, in_proj_weight, in_proj_bias,
                                 bias_k, bias_v, add_zero_attn, dropout_p, out_proj_weight, out_proj_bias,
                                 training=True, key_padding_mask=None, need_weights=True, attn_mask=None,
                                 use_separate_proj_weight=False, q_proj_weight=None, k_proj_weight=None,
                                 v_proj_weight=None, static_k=None, static_v=None, average_attn_weights=True,
                                 is_causal=False):
    """PyTorch's multi-head attention over (L, N, E) query and (S, N, E) key/value (or unbatched (L, E)/(S, E)):
    returns (attn_output, head-averaged or per-head attention weights, or None when need_weights is False)."""
    if static_k is not None or static_v is not None:
        raise NotImplementedError("multi_head_attention_forward: static_k / static_v are not supported yet")
    is_batched = _mha_shape_check(query, key, value, key_padding_mask, attn_mask, num_heads)
    if not is_batched:
        query, key, value = query.unsqueeze(1), key.unsqueeze(1), value.unsqueeze(1)
        key_padding_mask = None if key_padding_mask is None else key_padding_mask.unsqueeze(0)
    tgt_len, bsz, embed_dim = query.shape
    src_len = key.shape[0]
    key_padding_mask = canonical_mask(key_padding_mask, "key_padding_mask", none_or_dtype(attn_mask), "attn_mask",
                                      query.dtype)
    if is_causal and attn_mask is None:
        raise RuntimeError("Need attn_mask if specifying the is_causal hint. You may use the Transformer module method "
                           "`generate_square_subsequent_mask` to create this mask.")
    if is_causal and key_padding_mask is None and not need_weights:
        attn_mask = None  # SDPA's is_causal replaces the (causal) mask
    else:
        attn_mask = canonical_mask(attn_mask, "attn_mask", None, "", query.dtype, check_other=False)
        is_causal = is_causal and key_padding_mask is None
    if embed_dim != embed_dim_to_check:
        raise AssertionError(f"was expecting embedding dimension of {embed_dim_to_check}, but got {embed_dim}")
    head_dim = embed_dim // num_heads
    if head_dim * num_heads != embed_dim:
        raise AssertionError(f"embed_dim {embed_dim} not divisible by num_heads {num_heads}")
    if use_separate_proj_weight:
        if tuple(key.shape[:2]) != tuple(value.shape[:2]):
            raise AssertionError(f"key's sequence and batch dims {key.shape[:2]} do not match value's "
                                 f"{value.shape[:2]}")
    elif tuple(key.shape) != tuple(value.shape):
        raise AssertionError(f"key shape {key.shape} does not match value shape {value.shape}")
    separate = (q_proj_weight, k_proj_weight, v_proj_weight) if use_separate_proj_weight else None
    q, k, v = _in_projection(query, key, value, in_proj_weight, in_proj_bias, separate)
    if attn_mask is not None:
        attn_mask = _check_attn_mask(attn_mask, bsz, num_heads, tgt_len, src_len)
    if (bias_k is None) != (bias_v is None):
        raise AssertionError("bias_k and bias_v must both be given or both be None")
    if bias_k is not None:
        k, v = cat([k, bias_k.repeat(1, bsz, 1)]), cat([v, bias_v.repeat(1, bsz, 1)])
        attn_mask = None if attn_mask is None else pad(attn_mask, (0, 1))
        key_padding_mask = None if key_padding_mask is None else pad(key_padding_mask, (0, 1))
    q, k, v = (_heads(t, bsz, num_heads, head_dim) for t in (q, k, v))
    if add_zero_attn:
        zero = zeros((bsz * num_heads, 1, head_dim), dtype=k.dtype, device=k.device)
        k, v = cat([k, zero], dim=1), cat([v, zero], dim=1)
        attn_mask = None if attn_mask is None else pad(attn_mask, (0, 1))
        key_padding_mask = None if key_padding_mask is None else pad(key_padding_mask, (0, 1))
    src_len = k.shape[1]
    if key_padding_mask is not None:
        if key_padding_mask.shape[0] != bsz:
            raise AssertionError(f"Expected key_padded_mask.shape[0] to be {bsz}, but got {key_padding_mask.shape[0]}")
        if key_padding_mask.shape[1] != src_len:
            raise AssertionError(f"Expected key_padded_mask.shape[1] to be {src_len}, but got "
                                 f"{key_padding_mask.shape[1]}")
        kpm = key_padding_mask.reshape(bsz, 1, 1, src_len).expand(bsz, num_heads, 1, src_len)
        kpm = kpm.reshape(bsz * num_heads, 1, src_len)
        attn_mask = kpm if attn_mask is None else attn_mask + kpm
    dropout_p = dropout_p if training else 0.0
    if need_weights:
        scores = (q * math.sqrt(1.0 / float(head_dim))) @ k.transpose(-2, -1)
        weights = (scores if attn_mask is None else scores + attn_mask).softmax(-1)
        weights = dropout(weights, dropout_p) if dropout_p > 0.0 else weights
        out = (weights @ v).transpose(0, 1).reshape(tgt_len * bsz, embed_dim)
        weights = weights.reshape(bsz, num_heads, tgt_len, src_len)
        weights = weights.mean(1) if average_attn_weights else weights
    else:
        if attn_mask is not None:
            attn_mask = attn_mask.unsqueeze(0) if attn_mask.shape[0] == 1 else \
                attn_mask.reshape(bsz, num_heads, -1, src_len)
        q, k, v = (t.reshape(bsz, num_heads, t.shape[1], head_dim) for t in (q, k, v))
        out = scaled_dot_product_attention(q, k, v, attn_mask, dropout_p, is_causal)
        out = out.permute(2, 0, 1, 3).reshape(bsz * tgt_len, embed_dim)
        weights = None
    out = linear(out, out_proj_weight, out_proj_bias).reshape(tgt_len, bsz, -1)
    if not is_batched:
        out = out.squeeze(1)
        weights = None if weights is None else weights.squeeze(0)
    return out, weights


def detect_is_causal_mask(mask, is_causal=None, size=None):
    """PyTorch's _detect_is_causal_mask: is_causal, or (when None) whether the mask equals the square subsequent
    mask. It is compared on the host, so a traced step never reads a traced value; a mask computed in the trace is
    unknown and counts as not causal (it is then applied as given, which computes the same)."""
    if is_causal is not None or mask is None:
        return is_causal is True
    sz = size if size is not None else mask.shape[-2]
    if tuple(mask.shape) != (sz, sz) or not concrete(mask):
        return False
    causal = np.triu(np.full((sz, sz), -np.inf), 1)
    return bool(np.array_equal(mask._host(), causal))


def square_subsequent_mask(sz, device=None, dtype=None):
    """(sz, sz) float mask: 0 on and below the diagonal, -inf above it."""
    dtype = dt.float32 if dtype is None else dtype
    return zeros((sz, sz), dtype=dtype, device=device).masked_fill(causal_mask(sz, sz, device).logical_not(),
                                                                   float("-inf"))

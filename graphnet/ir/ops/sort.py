"""argsort, the one ordering primitive: sort, topk and sampling without replacement gather through its indices, so
their values' gradients are gather's scatter-add."""
import numpy as np

from ...core import dtype as dt
from ...core.opdef import OpDef, register
from .util import norm_dim


def _argsort_infer(t, dim, descending):
    norm_dim("sort", dim, t.ndim)
    return t.with_(dtype=dt.int64)


def _argsort_impl(x, dim, descending):
    """A stable argsort (NaN sorts as the largest value, as in PyTorch); descending keeps ties in input order too:
    the ascending stable order of the reversed input, reversed, with its indices mapped back."""
    if x.ndim == 0:
        return np.zeros((), np.int64)
    d = norm_dim("sort", dim, x.ndim)
    if not descending:
        return np.argsort(x, axis=d, kind="stable")
    rev = np.argsort(np.flip(x, d), axis=d, kind="stable")
    return np.ascontiguousarray(x.shape[d] - 1 - np.flip(rev, d))


register(OpDef("argsort", "opaque", _argsort_infer, _argsort_impl))

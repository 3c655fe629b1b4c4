"""nn.functional on integer indices: embedding (row lookup, optional max_norm renormalisation) and one_hot, with
PyTorch's index checks."""
import numpy as np

from ...core import dtype as dt
from ...core.bind import bind
from ...frontend.autograd import no_grad
from ...frontend.tensor import Tensor
from ...ir.ops.softmax import one_hot_error
from .common import concrete


def _check_index_dtype(name, t):
    if not isinstance(t, Tensor) or t.dtype not in (dt.int64, dt.int32):
        got = t.type() if isinstance(t, Tensor) else type(t).__name__
        raise RuntimeError(f"Expected tensor for argument #1 'indices' to have one of the following scalar types: "
                           f"Long, Int; but got {got} instead (while checking arguments for {name})")


def _renorm_rows(weight, input, max_norm, norm_type):
    """Scale (in place, outside autograd) each looked-up row whose norm_type-norm exceeds max_norm down to
    max_norm / (norm + 1e-7) times itself; a row looked up twice gets the same value both times."""
    with no_grad():
        idx = input.reshape(-1)
        rows = weight[idx]
        norm = (rows.abs() ** norm_type).sum(-1, keepdim=True) ** (1.0 / norm_type)
        scale = bind("where", norm > max_norm, max_norm / (norm + 1e-7), 1.0)
        weight[idx] = rows * scale


def embedding(input, weight, padding_idx=None, max_norm=None, norm_type=2.0, scale_grad_by_freq=False, sparse=False):
    """Rows of `weight` picked by the integer `input` (one graph op, so it compiles; a bad id raises IndexError in
    eager and compiled mode); rows at padding_idx get no gradient. With max_norm, the rows looked up are first
    renormalised in place (PyTorch's embedding_renorm_)."""
    _check_index_dtype("embedding", input)
    ids = input if input.dtype is dt.int64 else bind("cast", input, dtype=dt.int64)
    if max_norm is not None:
        _renorm_rows(weight, ids, max_norm, norm_type)
    if padding_idx is None:
        return bind("embedding", weight, ids)
    if not -weight.shape[0] <= padding_idx < weight.shape[0]:
        raise AssertionError("Padding_idx must be within num_embeddings")
    return bind("embedding", weight, ids, padding_idx=padding_idx % weight.shape[0])


def one_hot(tensor, num_classes=-1):
    """int64 class indices -> int64 one-hot vectors in a new last dim (num_classes=-1: max + 1)."""
    if not isinstance(tensor, Tensor) or tensor.dtype is not dt.int64:
        raise RuntimeError("one_hot is only applicable to index tensor of type LongTensor.")
    if concrete(tensor) and tensor.numel():
        vals = tensor._host()
        num_classes = int(vals.max()) + 1 if num_classes == -1 else num_classes
        error = one_hot_error(vals, num_classes)
        if error is not None:
            raise error
    elif not concrete(tensor) and num_classes > 0:  # checked in the compiled step; 0, a class, ignores nothing
        tensor = bind("check_targets", tensor, n_classes=num_classes, ignore_index=0, loss="one_hot")
    if num_classes < 0:
        raise RuntimeError("Can not infer total number of classes from empty tensor.")
    classes = Tensor._wrap(np.arange(num_classes, dtype=np.int64), dt.int64).to(tensor.device)
    return bind("cast", bind("eq", tensor.unsqueeze(-1), classes), dtype=dt.int64)


"""Cross-entropy rows, their gradient and the target check on device arrays: codegen's cuda_softmax kernels launched."""
from ...codegen.cuda import grid_for
from ...codegen.templates.cuda_softmax import kernel
from .. import storage
from .index import error_flag, raise_if_flagged


def cross_entropy_rows(x, target, ignore_index):
    """(N,) losses of contiguous (N, C) device logits and (N,) int64 device targets."""
    n, k = x.shape
    loss = storage.empty((n,), x.dtype)
    if n:
        kernel("rows_fwd")[grid_for(n)](storage.flat(x), target, loss, n, k, ignore_index, x.dtype.type(0))
    return loss


def cross_entropy_rows_backward(g, x, target, ignore_index):
    """(N, C) gradient of the row losses: (softmax(x) - onehot(target)) * g per row."""
    n, k = x.shape
    dx = storage.empty((n, k), x.dtype)
    if n:
        kernel("rows_bwd")[grid_for(n)](g, storage.flat(x), target, storage.flat(dx), n, k, ignore_index,
                                        x.dtype.type(0))
    return dx


def check_targets(target, n_classes, ignore_index, loss):
    """The device targets, unchanged, once a kernel found them all in [0, n_classes) or equal to ignore_index; a bad
    one raises the CPU's error (read back from the error flag)."""
    if target.size:
        kernel("targets_check")[grid_for(target.size)](storage.flat(target), target.size, n_classes, ignore_index,
                                                       error_flag())
        raise_if_flagged("check_targets", [target], dict(n_classes=n_classes, ignore_index=ignore_index, loss=loss))
    return target

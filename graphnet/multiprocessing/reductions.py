"""How tensors are pickled between processes: a shared tensor as its memfd (duplicated to the receiver, which maps
the same memory), any other by value."""
from multiprocessing import reduction

from ..core import dtype as dt
from ..frontend.shared_memory import mapped
from ..frontend.tensor import Tensor
from ..nn.parameter import Parameter


def _rebuild_shared(cls, dup, dtype_name, shape, requires_grad):
    fd = dup.detach()
    dtype = dt.from_name(dtype_name)
    t = Tensor._wrap(mapped(fd, dtype.np, shape), dtype)
    if cls is Parameter:
        t = Parameter(t, requires_grad=requires_grad)
    elif requires_grad:
        t.requires_grad = True
    t._shared_fd = fd
    return t


def _reduce(t):
    if not t.is_shared():
        return t.__reduce_ex__(4)
    return (_rebuild_shared, (type(t), reduction.DupFd(t._shared_fd), t._dtype.name, tuple(t._data.shape),
                              t._requires_grad))


def init_reductions():
    """Register the reducer with multiprocessing's pickler only (its dispatch table is keyed by exact type); plain
    pickling (graphnet.save) keeps the classes' own __reduce_ex__."""
    for cls in (Tensor, Parameter):
        reduction.ForkingPickler.register(cls, _reduce)

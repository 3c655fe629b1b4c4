"""dtype and device conversion: to(), float()/double()/long()/int()/bool()/half()/bfloat16(), cpu(), cuda(), type()."""
from ..core import dtype as dt
from ..core.bind import bind
from ..core.device import as_device, device
from .api import export
from .tensor import Tensor


def _parse_to(args, kwargs):
    dev, dtype = kwargs.pop("device", None), kwargs.pop("dtype", None)
    for a in args:
        if isinstance(a, Tensor):
            dev, dtype = a.device, a.dtype
        elif isinstance(a, (device, str)) and not (isinstance(a, str) and a in dt._BY_NAME) or \
                isinstance(a, int) and not isinstance(a, bool):  # an int is a CUDA device index, as in torch
            dev = a
        elif a is not None:
            dtype = a
    return (None if dev is None else as_device(dev)), (None if dtype is None else dt.as_dtype(dtype))


@export("to", function=False)
def to(self, *args, non_blocking=False, copy=False, **kwargs):
    """to(dtype), to(device) (a device index means that CUDA device), to(device, dtype), to(other_tensor):
    differentiable, a no-op when nothing changes."""
    dev, dtype = _parse_to(args, kwargs)
    out = self
    if dtype is not None and dtype is not out.dtype:
        out = bind("cast", out, dtype=dtype)
    if dev is not None and dev != out.device:
        out = bind("to_device", out, device=dev)
    if copy and out is self:
        out = bind("copy", self)
    return out


def _caster(d):
    return lambda self, memory_format=None: to(self, d)


for _name, _d in (("float", dt.float32), ("double", dt.float64), ("half", dt.float16), ("bfloat16", dt.bfloat16),
                  ("long", dt.int64),
                  ("int", dt.int32), ("short", dt.int16), ("bool", dt.bool_), ("byte", dt.uint8), ("char", dt.int8)):
    setattr(Tensor, _name, _caster(_d))


@export("cpu", function=False)
def cpu(self):
    return to(self, "cpu")


@export("cuda", function=False)
def cuda(self, device=None, non_blocking=False):
    return to(self, "cuda" if device is None else device if isinstance(device, (str, type(self.device)))
              else f"cuda:{device}")


@export("type", function=False)
def type_(self, dtype=None):
    """With no argument, the legacy type name (e.g. 'graphnet.FloatTensor'); otherwise a cast."""
    if dtype is None:
        return f"graphnet.{self.dtype.legacy_name}"
    return to(self, dtype)


@export("type_as", function=False)
def type_as(self, other):
    return to(self, other.dtype)

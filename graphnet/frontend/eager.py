"""The eager interpreter: promote operands, check devices, infer types, run the device's kernel, wrap the results as
Tensors and record autograd. Registered with `core.bind` as the interpreter that runs when nothing traces."""
from ..core import bind as _bind
from ..core.bind import Interpreter, promote
from ..core.types import TensorType
from ..runtime.backends import BACKENDS
from . import autograd
from .tensor import Tensor


class Eager(Interpreter):
    """Runs each op now, on its operands' device."""

    operand = Tensor

    def process(self, opdef, args, attrs):
        if opdef.promote:
            args = promote(opdef, args, self)
        dev = common_device(opdef, args)
        out = opdef.infer(*[t._type() for t in args], **attrs)
        out_types = [out] if isinstance(out, TensorType) else list(out)
        backend = BACKENDS.get(dev.type)
        if backend is None:
            raise RuntimeError(f"{opdef.name}: no backend for device {dev}")
        results = backend.run(opdef, [t._data for t in args], attrs, out_types)
        outputs = [Tensor._wrap(arr, typ.dtype, typ.device) for arr, typ in zip(results, out_types)]
        if opdef.is_view and args and backend.aliases(opdef, results[0], args[0]._data):
            src = args[0]
            outputs[0]._version, outputs[0]._base = src._version, src._base if src._base is not None else src
        autograd.record(opdef, args, attrs, out_types, outputs)
        return outputs[0] if opdef.n_outputs == 1 else tuple(outputs)

    def scalar(self, value, dtype, like):
        return Tensor._scalar(value, dtype, like._device if like is not None else None)


def infer(opdef, tensors, attrs):
    """The op's output types for these operands, as a list."""
    out = opdef.infer(*(t._type() for t in tensors), **attrs)
    return [out] if isinstance(out, TensorType) else list(out)


def common_device(opdef, tensors):
    """The device the op runs on; a 0-d operand may join from another device (a CPU scalar with GPU tensors)."""
    dev = tensors[0]._device if tensors else None
    for t in tensors:
        if t._device is not dev:
            break
    else:
        return dev
    dimensioned = [t for t in tensors if t.ndim > 0] or tensors
    dev = dimensioned[0]._device if dimensioned else None
    for t in dimensioned:
        if t._device != dev:
            raise RuntimeError(f"{opdef.name}: Expected all tensors to be on the same device, but found at least two "
                               f"devices, {t._device} and {dev}!")
    return dev


_bind.register_eager(Eager())

"""The one road every op call takes: promote operands, check devices, then run eagerly or record into a trace."""
import numpy as np

from ..ir import dtype as dt
from ..ir.ops import OPS, OpError
from ..ir.types import TensorType
from . import autograd
from .tensor import Tensor

# The active tracer (frontend/tracer.py) or None. A tracer has `record(opdef, tensors, attrs, out_types) -> outputs`.
TRACE = [None]

# Per-device backends: device type -> run(opdef, tensors, attrs, out_types) -> list of Tensors. The CPU one is below;
# the CUDA backend registers itself when imported.
BACKENDS = {}


def call(name, *args, **attrs):
    """Run the primitive `name` on tensors (and Python scalars where the op promotes), returning Tensor(s)."""
    opdef = OPS[name]
    if opdef.promote:
        if opdef.check is not None:
            opdef.check(*(_operand_dtype(opdef, i, args[i]) for i in opdef.promote))
        args = _promote(opdef, args)
    tensors = args
    tracer = TRACE[0]
    if tracer is not None and tracer.wants(tensors):
        return _single(opdef, tracer.record(opdef, tensors, attrs, _infer(opdef, tensors, attrs)))
    dev = _common_device(opdef, tensors)
    out_types = _infer(opdef, tensors, attrs)
    try:
        outputs = BACKENDS[dev.type](opdef, tensors, attrs, out_types)
    except KeyError:
        raise RuntimeError(f"{opdef.name}: no backend for device {dev}") from None
    autograd.record(opdef, tensors, attrs, out_types, outputs)
    return _single(opdef, outputs)


def _single(opdef, outputs):
    return outputs[0] if opdef.n_outputs == 1 else tuple(outputs)


def _infer(opdef, tensors, attrs):
    out = opdef.infer(*(t._type() for t in tensors), **attrs)
    return [out] if isinstance(out, TensorType) else list(out)


def _common_device(opdef, tensors):
    dev = tensors[0]._device if tensors else None
    if all(t._device is dev for t in tensors):
        return dev
    dimensioned = [t for t in tensors if t.ndim > 0] or tensors
    dev = dimensioned[0]._device if dimensioned else None
    for t in dimensioned:
        if t._device != dev:
            raise RuntimeError(f"{opdef.name}: Expected all tensors to be on the same device, but found at least two "
                               f"devices, {t._device} and {dev}!")
    return dev


def _promote(opdef, args):
    """Cast the promoting operands to their PyTorch result type; Python scalars become 0-d constant tensors."""
    picked = [args[i] for i in opdef.promote]
    first = picked[0]
    if isinstance(first, Tensor) and all(isinstance(a, Tensor) and a._dtype is first._dtype for a in picked) and (
            first._dtype.is_floating_point or not opdef.float_compute):
        return args
    for i, a in zip(opdef.promote, picked):
        _operand_dtype(opdef, i, a)
    common = dt.result_type(*picked)
    if opdef.float_compute and not common.is_floating_point:
        common = dt.get_default_dtype()
    dev = next((a._device for a in args if isinstance(a, Tensor)), None)
    out = list(args)
    for i in opdef.promote:
        a = args[i]
        if not isinstance(a, Tensor):
            out[i] = Tensor._scalar(a, common, dev)
        elif a.dtype is not common:
            out[i] = call("cast", a, dtype=common)
    return out


def _operand_dtype(opdef, i, a):
    """The dtype of promoting operand `i` (a tensor or a Python number); anything else is a TypeError."""
    if isinstance(a, Tensor):
        return a._dtype
    if not isinstance(a, (int, float, bool, np.number, np.bool_)):
        raise TypeError(f"{opdef.name}(): argument {i} must be a Tensor or a number, not {type(a).__name__}")
    return dt.scalar_dtype(a)


def run_cpu(opdef, tensors, attrs, out_types):
    """Eager CPU: the op's NumPy reference implementation, results coerced to the inferred dtypes."""
    result = opdef.impl(*(t._data for t in tensors), **attrs)
    results = (result,) if opdef.n_outputs == 1 else result
    outputs = []
    for arr, typ in zip(results, out_types):
        on_host = typ.device.type == "cpu"
        if on_host and (not isinstance(arr, np.ndarray) or arr.dtype != typ.dtype.np):
            arr = np.asarray(arr, dtype=typ.dtype.np)
        if tuple(arr.shape) != typ.shape:
            raise OpError(f"{opdef.name}: internal error, impl gave shape {arr.shape} but infer said {typ.shape}")
        out = Tensor._wrap(arr, typ.dtype, typ.device)
        if opdef.is_view and tensors and np.may_share_memory(arr, tensors[0]._data):
            out._version = tensors[0]._version
            out._base = tensors[0]._base if tensors[0]._base is not None else tensors[0]
        outputs.append(out)
    return outputs


BACKENDS["cpu"] = run_cpu

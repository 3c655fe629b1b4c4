"""ONNX lowerings of graphnet's primitives: one function per op, `lower(ctx, node, ins) -> [output names]`, built
with onnx.helper nodes. `ctx` names values, adds constants (initializers) and knows which axes are dynamic."""
import numpy as np
from onnx import TensorProto, helper

from ..core import dtype as dt
from ..ir.ops.indexing import basic_index
from ..ir.ops.movement import _pad_widths

_BINARY = {"add": "Add", "sub": "Sub", "mul": "Mul", "div": "Div", "pow": "Pow", "maximum": "Max", "minimum": "Min",
           "eq": "Equal", "lt": "Less", "le": "LessOrEqual", "gt": "Greater", "ge": "GreaterOrEqual",
           "logical_and": "And", "logical_or": "Or"}
_UNARY = {"neg": "Neg", "exp": "Exp", "log": "Log", "sqrt": "Sqrt", "abs": "Abs", "relu": "Relu", "tanh": "Tanh",
          "sigmoid": "Sigmoid", "erf": "Erf", "sin": "Sin", "cos": "Cos", "floor": "Floor", "sign": "Sign",
          "logical_not": "Not", "copy": "Identity"}
_REDUCE = {"sum": "ReduceSum", "mean": "ReduceMean", "amax": "ReduceMax", "amin": "ReduceMin", "prod": "ReduceProd"}


def onnx_type(dtype):
    """The TensorProto element type of a graphnet dtype."""
    if dtype == dt.bfloat16:
        return TensorProto.BFLOAT16
    return helper.np_dtype_to_tensor_dtype(np.dtype(dtype.np))


def _one(op_type):
    return lambda ctx, node, ins: ctx.emit(op_type, ins, node)


def _ne(ctx, node, ins):
    return ctx.emit("Not", ctx.emit("Equal", ins, node, fresh=True), node)


def _rsqrt(ctx, node, ins):
    return ctx.emit("Reciprocal", ctx.emit("Sqrt", ins, node, fresh=True), node)


def _erfc(ctx, node, ins):
    erf = ctx.emit("Erf", ins, node, fresh=True)
    return ctx.emit("Sub", [ctx.const(np.ones((), node.inputs[0].dtype.np)), erf[0]], node)


def _log1p(ctx, node, ins):
    one = ctx.const(np.ones((), node.inputs[0].dtype.np))
    return ctx.emit("Log", ctx.emit("Add", [ins[0], one], node, fresh=True), node)


def _expm1(ctx, node, ins):
    one = ctx.const(np.ones((), node.inputs[0].dtype.np))
    return ctx.emit("Sub", [ctx.emit("Exp", ins, node, fresh=True)[0], one], node)


def _log_base(ln_base):
    def lower(ctx, node, ins):
        log = ctx.emit("Log", ins, node, fresh=True)
        return ctx.emit("Div", [log[0], ctx.const(np.asarray(ln_base, node.inputs[0].dtype.np))], node)
    return lower


def _cast(ctx, node, ins):
    return ctx.emit("Cast", ins, node, to=onnx_type(node.attrs["dtype"]))


def _clamp(ctx, node, ins):
    np_dtype = node.inputs[0].dtype.np
    bounds = [ctx.const(np.asarray(node.attrs[k], np_dtype)) if node.attrs.get(k) is not None else ""
              for k in ("min", "max")]
    return ctx.emit("Clip", ins + bounds, node)


def _reduce(op_type):
    def lower(ctx, node, ins):
        dims = node.attrs.get("dims")
        ndim = node.inputs[0].type.ndim
        axes = list(range(ndim)) if dims is None else [d % max(ndim, 1) for d in dims]
        keep = int(bool(node.attrs.get("keepdim", False)))
        if not axes:
            return ctx.emit("Identity", ins, node)
        return ctx.emit(op_type, ins + [ctx.const(np.array(axes, np.int64))], node, keepdims=keep)

    return lower


def _reshape(ctx, node, ins):
    return ctx.emit("Reshape", ins + [ctx.const(np.array(ctx.target_shape(node), np.int64))], node)


def _expand(ctx, node, ins):
    return ctx.emit("Expand", ins + [ctx.const(np.array(ctx.target_shape(node), np.int64))], node)


def _permute(ctx, node, ins):
    return ctx.emit("Transpose", ins, node, perm=list(node.attrs["dims"]))


def _cat(ctx, node, ins):
    return ctx.emit("Concat", ins, node, axis=node.attrs["dim"] % node.outputs[0].type.ndim)


def _log_softmax(ctx, node, ins):
    return ctx.emit("LogSoftmax", ins, node, axis=node.attrs["dim"] % node.inputs[0].type.ndim)


def _conv2d(ctx, node, ins):
    a = node.attrs
    pads = list(a["padding"]) * 2
    return ctx.emit("Conv", ins, node, strides=list(a["stride"]), pads=pads, dilations=list(a["dilation"]),
                    group=a["groups"])


def _conv_transpose(ctx, node, ins):
    """conv2d_input_grad is a transposed convolution; its output_padding is the input_shape's excess."""
    a, (h, w), k = node.attrs, node.inputs[0].type.shape[2:], node.inputs[1].type.shape[2:]
    natural = [(n - 1) * s - 2 * p + d * (kk - 1) + 1
               for n, s, p, d, kk in zip((h, w), a["stride"], a["padding"], a["dilation"], k)]
    return ctx.emit("ConvTranspose", ins, node, strides=list(a["stride"]), pads=list(a["padding"]) * 2,
                    dilations=list(a["dilation"]), group=a["groups"],
                    output_padding=[t - n for t, n in zip(a["input_shape"][2:], natural)])


def _max_pool2d(ctx, node, ins):
    a = node.attrs
    if ctx.used(node.outputs[1]):  # (a graph output counts: its reader is listed as None)
        raise ctx.unsupported(node, "max_pool2d's indices output")
    out = ctx.emit("MaxPool", ins, node, kernel_shape=list(a["kernel_size"]), strides=list(a["stride"]),
                   pads=list(a["padding"]) * 2, dilations=list(a["dilation"]), ceil_mode=int(a["ceil_mode"]))
    return out + [""]


def _avg_pool2d(ctx, node, ins):
    a = node.attrs
    if a.get("divisor_override") is not None:
        raise ctx.unsupported(node, "avg_pool2d(divisor_override=...)")
    return ctx.emit("AveragePool", ins, node, kernel_shape=list(a["kernel_size"]), strides=list(a["stride"]),
                    pads=list(a["padding"]) * 2, ceil_mode=int(a["ceil_mode"]),
                    count_include_pad=int(a["count_include_pad"]))


def _embedding(ctx, node, ins):
    return ctx.emit("Gather", ins, node, axis=0)


def _pad(ctx, node, ins):
    widths = _pad_widths("pad", node.inputs[0].type, node.attrs["pad"])
    pads = [a for a, _ in widths] + [b for _, b in widths]
    value = ctx.const(np.asarray(node.attrs.get("value", 0), node.inputs[0].dtype.np))
    return ctx.emit("Pad", ins + [ctx.const(np.array(pads, np.int64)), value], node)


def _getitem(ctx, node, ins):
    """Basic indexing: one Slice over the sliced dims, then Squeeze the integer ones and Unsqueeze new axes."""
    shape = node.inputs[0].type.shape
    index, _ = basic_index(shape, node.attrs["index"])
    starts, ends, axes, steps, squeeze, unsqueeze, d, out_d = [], [], [], [], [], [], 0, 0
    for item in index[:-1]:
        if item is None:
            unsqueeze.append(out_d)
            out_d += 1
            continue
        if isinstance(item, slice):
            start, stop, step = item.indices(shape[d])
            if (start, stop, step) != (0, shape[d], 1):
                starts.append(start), ends.append(stop), axes.append(d), steps.append(step)
            out_d += 1
        else:
            i = item % shape[d]
            starts.append(i), ends.append(i + 1), axes.append(d), steps.append(1)
            squeeze.append(d)
        d += 1
    name = ins[0]
    if axes:
        name = ctx.emit("Slice", [name] + [ctx.const(np.array(v, np.int64)) for v in (starts, ends, axes, steps)],
                        node, fresh=True)[0]
    if squeeze:
        name = ctx.emit("Squeeze", [name, ctx.const(np.array(squeeze, np.int64))], node, fresh=True)[0]
    if unsqueeze:
        name = ctx.emit("Unsqueeze", [name, ctx.const(np.array(unsqueeze, np.int64))], node, fresh=True)[0]
    return ctx.emit("Identity", [name], node)


LOWERINGS = {
    **{name: _one(op_type) for name, op_type in {**_BINARY, **_UNARY}.items()},
    **{name: _reduce(op_type) for name, op_type in _REDUCE.items()},
    "where": _one("Where"), "matmul": _one("MatMul"), "ne": _ne, "rsqrt": _rsqrt, "erfc": _erfc, "cast": _cast,
    "log1p": _log1p, "expm1": _expm1, "log2": _log_base(0.6931471805599453),
    "log10": _log_base(2.302585092994046),
    "clamp": _clamp, "reshape": _reshape, "expand": _expand, "permute": _permute, "cat": _cat,
    "log_softmax": _log_softmax, "conv2d": _conv2d, "conv2d_input_grad": _conv_transpose, "max_pool2d": _max_pool2d,
    "avg_pool2d": _avg_pool2d, "embedding": _embedding, "pad": _pad, "getitem": _getitem,
}

"""graphnet.onnx.export: a model's traced IR graph (after DCE, CSE, folding and simplification, before fusion)
written as an ONNX model with the onnx package's helpers and checked by onnx.checker."""
import io

import numpy as np
import onnx
from onnx import helper, numpy_helper

from ..frontend.autograd import no_grad
from ..frontend.tracer import trace
from ..passes import pipeline
from ..serialization import write_atomic
from .lowering import LOWERINGS, onnx_type

PASSES = ["dce", "cse", "fold", "simplify", "dce"]


class UnsupportedOperatorError(RuntimeError):
    """An op of the traced graph has no ONNX lowering (PyTorch: torch.onnx.errors.UnsupportedOperatorError)."""


class _Context:
    """Names, initializers and nodes of the ONNX graph being built from one graphnet graph."""

    def __init__(self, graph, names, dynamic_sizes):
        self.graph, self.names, self.dynamic_sizes = graph, dict(names), dynamic_sizes
        self.nodes, self.initializers, self._count = [], [], 0
        self._readers = {}
        for n in graph.nodes:
            for v in n.inputs:
                self._readers.setdefault(v, []).append(n)
        for v in graph.outputs:
            self._readers.setdefault(v, []).append(None)

    def name(self, value):
        return self.names.setdefault(value, f"v{len(self.names)}_{value.name}".replace("%", ""))

    def fresh(self):
        self._count += 1
        return f"t{self._count}"

    def const(self, array):
        name = f"const{len(self.initializers)}"
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def used(self, value):
        return self._readers.get(value, [])

    def emit(self, op_type, inputs, node, fresh=False, **attrs):
        """One ONNX node; its outputs are node's outputs' names (or one fresh name for an intermediate)."""
        outs = [self.fresh()] if fresh else [self.name(v) for v in node.outputs[:1]]
        self.nodes.append(helper.make_node(op_type, inputs, outs, name=f"{node.op}_{len(self.nodes)}", **attrs))
        return outs

    def unsupported(self, node, what=None):
        where = node.meta.get("source", "an unknown line")
        return UnsupportedOperatorError(f"onnx.export: {what or repr(node.op)} has no ONNX lowering (op {node.op!r} "
                                        f"from {where} of forward); rewrite that line with ops graphnet exports, or "
                                        "leave it out of the exported module")

    def target_shape(self, node):
        """A reshape/expand target where dynamic axes stay dynamic: a size copied from the input (0 for Reshape,
        1 for Expand's broadcasting) where the traced dynamic size sits at the same place, -1 for one merged dim."""
        src, out = node.inputs[0].type.shape, list(node.outputs[0].type.shape)
        if not self.dynamic_sizes:
            return out
        keep = 0 if node.op == "reshape" else 1
        if node.op == "expand":
            lead = len(out) - len(src)
            return [keep if i >= lead and src[i - lead] == s else s for i, s in enumerate(out)]
        target = [keep if i < len(src) and s == src[i] and s in self.dynamic_sizes else s for i, s in enumerate(out)]
        merged = [i for i, s in enumerate(target) if s != keep and any(s % d == 0 and s != d
                                                                        for d in self.dynamic_sizes)]
        if len(merged) == 1 and all(s != -1 for s in target):
            target[merged[0]] = -1
        return target


def _value_info(name, value, dims):
    shape = [dims.get(i, s) for i, s in enumerate(value.type.shape)]
    return helper.make_tensor_value_info(name, onnx_type(value.dtype), shape)


def _dynamic(dynamic_axes, name):
    axes = (dynamic_axes or {}).get(name, {})
    return {int(a): f"{name}_dim{a}" for a in axes} if isinstance(axes, (list, tuple)) else \
        {int(a): str(n) for a, n in axes.items()}


def export(model, args, f, input_names=None, output_names=None, dynamic_axes=None, opset_version=18,
           do_constant_folding=True, export_params=True, verbose=False, training=None):
    """Export `model(*args)` (a Module, in eval mode as torch.onnx.export does by default) to ONNX file or stream
    `f`. dynamic_axes = {name: [axes] or {axis: "name"}} makes those axes symbolic. Returns the onnx.ModelProto."""
    if opset_version < 17:
        raise ValueError(f"onnx.export: opset_version {opset_version} is not supported; use 17 or newer")
    args = args if isinstance(args, tuple) else (args,)
    was_training = getattr(model, "training", False)
    if hasattr(model, "eval"):
        model.eval()
    try:
        with no_grad():
            traced = trace(model, *args)
    finally:
        if hasattr(model, "train"):
            model.train(was_training)
    graph, _ = pipeline.run_pipeline(traced.graph, passes=PASSES)
    user = graph.inputs_by_role("input")
    input_names = list(input_names or [f"input{i}" if len(user) > 1 else "input" for i in range(len(user))])
    output_names = list(output_names or [f"output{i}" if len(graph.outputs) > 1 else "output"
                                         for i in range(len(graph.outputs))])
    if len(input_names) != len(user) or len(output_names) != len(graph.outputs):
        raise ValueError(f"onnx.export: {len(input_names)} input_names for {len(user)} tensor inputs and "
                         f"{len(output_names)} output_names for {len(graph.outputs)} outputs")
    dyn = {n: _dynamic(dynamic_axes, n) for n in input_names + output_names}
    sizes = {v.type.shape[a] for v, n in zip(user, input_names) for a in dyn[n]}
    ctx = _Context(graph, zip(user, input_names), sizes)
    state = traced.state
    for v in graph.inputs:
        if v.role != "input" and ctx.used(v):  # (an unread buffer, e.g. BatchNorm's num_batches_tracked, stays out)
            ctx.initializers.append(numpy_helper.from_array(np.ascontiguousarray(state[v.name].detach().numpy()),
                                                            ctx.name(v)))
    for node in graph.nodes:
        if node.op in ("input", "output"):
            continue
        if node.op == "constant":
            value = np.asarray(node.attrs["value"])
            ctx.initializers.append(numpy_helper.from_array(np.ascontiguousarray(value), ctx.name(node.outputs[0])))
            continue
        lower = LOWERINGS.get(node.op)
        if lower is None:
            raise ctx.unsupported(node)
        lower(ctx, node, [ctx.name(v) for v in node.inputs])
    outputs = []
    for v, name in zip(graph.outputs, output_names):
        ctx.nodes.append(helper.make_node("Identity", [ctx.name(v)], [name], name=f"output_{name}"))
        outputs.append(_value_info(name, v, dyn[name]))
    inputs = [_value_info(name, v, dyn[name]) for v, name in zip(user, input_names)]
    onnx_graph = helper.make_graph(ctx.nodes, graph.meta.get("name", "graphnet"), inputs, outputs, ctx.initializers)
    proto = helper.make_model(onnx_graph, opset_imports=[helper.make_opsetid("", opset_version)],
                              producer_name="graphnet")
    proto.ir_version = min(proto.ir_version, 10)
    onnx.checker.check_model(proto, full_check=True)
    data = proto.SerializeToString()
    if isinstance(f, io.IOBase) or hasattr(f, "write"):
        f.write(data)
    else:
        write_atomic(f, lambda out: out.write(data))
    if verbose:
        print(helper.printable_graph(proto.graph))
    return proto


def is_in_onnx_export():
    return False

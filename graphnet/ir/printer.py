"""Text form of a Graph: a header of inputs with roles, one line per node, a footer of outputs and write-backs.

    graph(%x: float32[64, 400] input, %fc1.weight: float32[120, 400] param):
      %c: float32[] = constant(2.0)
      %3: float32[64, 120] = matmul(%x, %w1)  # fc1
      return (%3)
"""
import numpy as np

from ..core.dtype import DType


def format_attr(value):
    """Attrs print compactly: dtypes by name, small arrays by value, big arrays by shape."""
    if isinstance(value, DType):
        return value.name
    if isinstance(value, np.ndarray):
        if value.size <= 4:
            return np.array2string(value, separator=", ") if value.ndim else repr(value.item())
        return f"array<{value.dtype}{list(value.shape)}>"
    return repr(value)


def _comment(node):
    text = node.meta.get("scope") or node.meta.get("comment")
    return f"  # {text}" if text else ""


def format_node(node):
    """One line, e.g. `%3: float32[64, 120] = matmul(%x, %w1)  # fc1`."""
    if node.op == "output":
        return format_output(node)
    if node.op == "constant":
        args = [format_attr(node.attrs["value"])]
    else:
        args = [f"%{v.name}" for v in node.inputs] + [f"{k}={format_attr(a)}" for k, a in node.attrs.items()]
    outs = [f"%{v.name}: {v.type}" for v in node.outputs]
    lhs = outs[0] if len(outs) == 1 else f"({', '.join(outs)})"
    return f"{lhs} = {node.op}({', '.join(args)}){_comment(node)}"


def format_output(node):
    n = node.attrs["n_outputs"]
    line = f"return ({', '.join('%' + v.name for v in node.inputs[:n])})"
    for v, (target, kind) in zip(node.inputs[n:], node.attrs["writebacks"]):
        line += f"\n  writeback %{v.name} -> %{target}" + ("" if kind == "data" else f".{kind}")
    return line


def _format_input(value):
    node = value.producer
    target = node.attrs["target"]
    bound = f" <- {target}" if target != value.name else ""
    return f"%{value.name}: {value.type} {node.attrs['role']}{bound}"


def format_graph(graph):
    """The whole graph: header of inputs, constants and compute nodes, footer of outputs."""
    header = "graph(" + ", ".join(_format_input(v) for v in graph.inputs) + "):"
    body = [format_node(n) for n in graph.nodes if n.op != "input"]
    return "\n".join([header] + ["  " + line for line in body])

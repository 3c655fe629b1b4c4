"""Structural and type checks of a Graph, run after every pass in tests: a broken invariant names the node."""
from ..core.types import TensorType
from .graph import INPUT_ROLES, SPECIAL_OPS
from .printer import format_node


class VerifyError(RuntimeError):
    """The graph breaks an IR invariant; the message names the offending node."""


def _fail(node, msg):
    raise VerifyError(f"verify: {msg}\n  at: {format_node(node) if node.graph is not None else repr(node)}")


def verify(graph):
    """Check order (defs before uses, hence acyclic), users lists, names, sources, op types and the output node."""
    defined, names = set(), set()
    nodes = graph.nodes
    for i, node in enumerate(nodes):
        for v in node.inputs:
            if v not in defined:
                where = "a node later in the graph" if v.producer in nodes else "no node of this graph"
                _fail(node, f"input %{v.name} is used before it is defined (it is produced by {where})")
            if v.users.count(node) != node.inputs.count(v):
                _fail(node, f"users list of %{v.name} does not record this node once per use")
        for j, v in enumerate(node.outputs):
            if v.producer is not node or v.index != j:
                _fail(node, f"output %{v.name} records producer/index {v.producer!r}/{v.index}, expected this node/{j}")
            if v.name in names:
                _fail(node, f"value name %{v.name} is defined twice")
            names.add(v.name)
            _check_users(node, v)
            defined.add(v)
        _check_op(graph, node, i == len(nodes) - 1)


def _check_users(node, v):
    for u in v.users:
        if u.graph is not node.graph or v not in u.inputs:
            _fail(node, f"%{v.name} lists a user that is erased or does not read it: {u!r}")


def _check_op(graph, node, is_last):
    if node.op == "output":
        if not is_last:
            _fail(node, "the output node must be the last node")
        _check_writebacks(graph, node)
    elif node.op == "input":
        if node.attrs.get("role") not in INPUT_ROLES:
            _fail(node, f"input role must be one of {INPUT_ROLES}, got {node.attrs.get('role')!r}")
    elif node.op == "constant":
        arr, t = node.attrs.get("value"), node.outputs[0].type
        if arr is None or tuple(arr.shape) != t.shape or arr.dtype != t.dtype.np:
            _fail(node, f"constant value does not match its type {t}")
    else:
        _check_types(node)
    if node.op in SPECIAL_OPS and node.op != "output" and node.inputs:
        _fail(node, f"a '{node.op}' node takes no inputs")


def _check_writebacks(graph, node):
    n = node.attrs.get("n_outputs", len(node.inputs))
    for v, (target, kind) in zip(node.inputs[n:], node.attrs.get("writebacks", ())):
        try:
            tv = graph.input(target)
        except KeyError:
            _fail(node, f"write-back target %{target} is not a graph input")
        if kind not in ("data", "grad") or (kind == "data" and v.type != tv.type):
            _fail(node, f"write-back %{v.name} ({v.type}) -> %{target} ({tv.type}, {kind}) is ill-typed")


def _check_types(node):
    from .ops import OPS

    opdef = OPS.get(node.op)
    if opdef is None:
        _fail(node, f"unknown op {node.op!r} (not a registered OpDef nor one of {SPECIAL_OPS})")
    try:
        res = opdef.infer(*(v.type for v in node.inputs), **node.attrs)
    except Exception as e:  # noqa: BLE001 - any failure of the rule is a verify failure naming the node
        _fail(node, f"{node.op}: type rule rejects the inputs: {type(e).__name__}: {e}")
    want = [res] if isinstance(res, TensorType) else list(res)
    have = [v.type for v in node.outputs]
    if want != have:
        _fail(node, f"{node.op}: recorded output types {[str(t) for t in have]} but the op infers "
                    f"{[str(t) for t in want]}")

"""The IR: a Graph of Nodes in SSA form, each producing typed Values (modelled on PyTorch FX).

Contract read by every pass and code generator:
  * Source nodes: op 'input' (attrs role in INPUT_ROLES, target = the qualified name of the tensor it stands for,
    e.g. 'fc1.weight') and op 'constant' (attrs value = a NumPy array). They sit at the head of the node list.
  * Compute nodes: op is an OpDef name from ir.ops.OPS; attrs are that op's keyword attributes.
  * One 'output' node, last: its inputs are the graph outputs followed by write-back values; attrs n_outputs and
    writebacks = ((target input name, kind), ...), kind 'data' (overwrite the tensor) or 'grad' (set its .grad).
  * Node order is always a valid topological order (`verify` checks it); rewrites that append out of order call
    `sort()`. Every Value keeps `users` (one entry per use), so DCE and replace-all-uses are a few lines.
"""
import heapq
from collections import namedtuple

import numpy as np

from ..core.dtype import as_dtype
from ..core.opdef import get_op
from ..core.types import TensorType

INPUT_ROLES = ("input", "param", "buffer", "state", "grad_output", "saved")
SPECIAL_OPS = ("input", "constant", "output")
WriteBack = namedtuple("WriteBack", "value target kind")


class Value:
    """One SSA value: its type, the node producing it (output number `index`), and the nodes using it."""

    __slots__ = ("type", "producer", "index", "users", "name")

    def __init__(self, type, producer, index, name):  # noqa: A002
        self.type, self.producer, self.index, self.users, self.name = type, producer, index, [], name

    @property
    def shape(self):
        return self.type.shape

    @property
    def dtype(self):
        return self.type.dtype

    @property
    def ndim(self):
        return len(self.type.shape)

    @property
    def role(self):
        """'constant' for constants, the input role for graph inputs, None for computed values."""
        node = self.producer
        return node.attrs["role"] if node.op == "input" else ("constant" if node.op == "constant" else None)

    def __repr__(self):
        return f"%{self.name}: {self.type}"


class Node:
    """One operation: `op` (an OpDef name or a special op), input Values, attrs, output Values, free-form meta."""

    __slots__ = ("op", "inputs", "attrs", "outputs", "meta", "graph", "_prev", "_next")

    def __init__(self, op, inputs, attrs, meta):
        self.op, self.inputs, self.attrs, self.meta = op, list(inputs), dict(attrs), dict(meta)
        self.outputs, self.graph, self._prev, self._next = [], None, None, None

    @property
    def opdef(self):
        return get_op(self.op)

    @property
    def users(self):
        """Distinct nodes that read any output of this node, in first-use order."""
        return list(dict.fromkeys(u for v in self.outputs for u in v.users))

    @property
    def out(self):
        """The single output Value (for one-output nodes)."""
        return self.outputs[0]

    def __repr__(self):
        outs = ", ".join(f"%{v.name}" for v in self.outputs)
        return f"<Node {outs} = {self.op}({', '.join('%' + v.name for v in self.inputs)})>"


class Graph:
    """An ordered, doubly linked list of Nodes; values are named uniquely (`%x`, `%fc1.weight`, `%7`)."""

    def __init__(self):
        self._root = Node("root", (), {}, {})
        self._root._prev = self._root._next = self._root
        self._last_source = self._root
        self._names, self._counter = set(), 0
        self.meta = {}

    # ---- iteration ---------------------------------------------------------------------------------------------
    @property
    def nodes(self):
        """The nodes in program order (a list snapshot, safe to mutate the graph while iterating)."""
        out, n = [], self._root._next
        while n is not self._root:
            out.append(n)
            n = n._next
        return out

    def __len__(self):
        return len(self.nodes)

    @property
    def inputs(self):
        return [n.outputs[0] for n in self.nodes if n.op == "input"]

    def inputs_by_role(self, *roles):
        return [v for v in self.inputs if v.role in roles]

    def _inputs_by_name(self):
        return {v.name: v for v in self.inputs}

    def input(self, name):
        """The graph input Value called `name`. Sources come first in program order, so the walk stops early."""
        n = self._root._next
        while n is not self._root and n.op in ("input", "constant"):
            if n.op == "input" and n.outputs[0].name == name:
                return n.outputs[0]
            n = n._next
        found = self._inputs_by_name().get(name)  # (a source a pass placed later)
        if found is None:
            raise KeyError(f"graph has no input named {name!r}; inputs: {[v.name for v in self.inputs]}")
        return found

    @property
    def constants(self):
        return [n.outputs[0] for n in self.nodes if n.op == "constant"]

    @property
    def output_node(self):
        last = self._root._prev
        return last if last.op == "output" else None

    @property
    def outputs(self):
        node = self.output_node
        return [] if node is None else node.inputs[:node.attrs["n_outputs"]]

    @property
    def writebacks(self):
        """WriteBack(value, target input Value, kind) for every in-place update the graph performs."""
        node = self.output_node
        if node is None:
            return []
        vals, by_name = node.inputs[node.attrs["n_outputs"]:], self._inputs_by_name()
        return [WriteBack(v, by_name[name], kind) for v, (name, kind) in zip(vals, node.attrs["writebacks"])]

    # ---- building ----------------------------------------------------------------------------------------------
    def _name(self, hint=None):
        if hint is None:
            while str(self._counter) in self._names:
                self._counter += 1
            hint = str(self._counter)
        name, k = hint, 1
        while name in self._names:
            name, k = f"{hint}_{k}", k + 1
        self._names.add(name)
        return name

    def _link(self, node, after):
        node.graph, node._prev, node._next = self, after, after._next
        after._next._prev = node
        after._next = node

    def _add(self, op, inputs, attrs, out_types, meta, after, names=()):
        node = Node(op, inputs, attrs, meta or {})
        node.outputs = [Value(t, node, i, self._name(names[i] if i < len(names) else None))
                        for i, t in enumerate(out_types)]
        for v in node.inputs:
            v.users.append(node)
        self._link(node, after)
        return node

    def add_input(self, type, name, role="input", target=None, meta=None):  # noqa: A002
        """A graph input with `role` (see INPUT_ROLES); `target` names the tensor it binds to (default: name)."""
        if role not in INPUT_ROLES:
            raise ValueError(f"add_input: role must be one of {INPUT_ROLES}, got {role!r}")
        node = self._add("input", (), {"role": role, "target": target or name}, [type], meta, self._last_source,
                         (name,))
        self._last_source = node
        return node.outputs[0]

    def add_constant(self, array, name=None, meta=None, dtype=None):
        """A constant source node holding a NumPy array (its type is read from the array unless `dtype` is given:
        a bfloat16 tensor's storage is float32)."""
        array = np.asarray(array)
        typ = TensorType(tuple(array.shape), dtype or as_dtype(array.dtype))
        node = self._add("constant", (), {"value": array}, [typ], meta, self._last_source, (name or "c",))
        self._last_source = node
        return node.outputs[0]

    def add_node(self, op, inputs, attrs=None, out_types=None, meta=None, before=None):
        """Append (or insert before `before`) a compute node; output types are inferred when not given."""
        attrs = attrs or {}
        if out_types is None:
            res = get_op(op).infer(*(v.type for v in inputs), **attrs)
            out_types = [res] if isinstance(res, TensorType) else list(res)
        anchor = before if before is not None else (self.output_node or self._root)
        return self._add(op, inputs, attrs, out_types, meta, anchor._prev)

    def call(self, op, *inputs, **attrs):
        """Add a node and return its Value (or tuple of Values): a tiny builder for tests and rewrites."""
        node = self.add_node(op, list(inputs), attrs)
        return node.outputs[0] if len(node.outputs) == 1 else tuple(node.outputs)

    def set_outputs(self, values, writebacks=()):
        """Make `values` the graph outputs; writebacks are (value, target input Value, kind) triples."""
        old = self.output_node
        if old is not None:
            self.erase_node(old, force=True)
        writebacks = list(writebacks)
        attrs = {"n_outputs": len(values), "writebacks": tuple((t.name, k) for _, t, k in writebacks)}
        self._add("output", list(values) + [v for v, _, _ in writebacks], attrs, [], None, self._root._prev)

    # ---- rewriting ---------------------------------------------------------------------------------------------
    def replace_all_uses(self, old, new):
        """Point every use of Value `old` at Value `new` (outputs included)."""
        if old is new:
            return
        for user in old.users:
            user.inputs = [new if v is old else v for v in user.inputs]
            new.users.append(user)
        old.users = []

    def replace_input(self, node, index, new):
        """Rewire input `index` of `node` to Value `new`."""
        old = node.inputs[index]
        old.users.remove(node)
        node.inputs[index] = new
        new.users.append(node)

    def erase_node(self, node, force=False):
        """Unlink `node`; its outputs must be unused (unless force, used when replacing the output node)."""
        if not force and any(v.users for v in node.outputs):
            users = ", ".join(repr(u) for u in node.users)
            raise RuntimeError(f"erase_node: {node!r} still has users ({users}); replace its uses first")
        for v in node.inputs:
            v.users.remove(node)
        if node is self._last_source:
            self._last_source = node._prev
        node._prev._next, node._next._prev = node._next, node._prev
        node.graph = None
        for v in node.outputs:
            self._names.discard(v.name)

    def topo_order(self):
        """A topological order of the nodes (Kahn's algorithm, iterative, stable w.r.t. the current order)."""
        nodes = self.nodes
        pos = {n: i for i, n in enumerate(nodes)}
        indeg = {n: len({v.producer for v in n.inputs}) for n in nodes}
        heap = [pos[n] for n in nodes if indeg[n] == 0]
        heapq.heapify(heap)
        order = []
        while heap:
            n = nodes[heapq.heappop(heap)]
            order.append(n)
            for u in n.users:
                indeg[u] -= 1
                if indeg[u] == 0:
                    heapq.heappush(heap, pos[u])
        if len(order) != len(nodes):
            stuck = [n for n in nodes if indeg[n] > 0]
            raise RuntimeError(f"graph has a cycle through {stuck[0]!r}")
        return order

    def sort(self):
        """Relink the nodes in topological order (after rewrites that appended nodes out of order)."""
        order = self.topo_order()
        self._root._prev = self._root._next = self._root
        prev = self._root
        for n in order:
            self._link(n, prev)
            prev = n
        sources = [n for n in order if n.op in ("input", "constant")]
        self._last_source = sources[-1] if sources else self._root
        return self

    def copy(self):
        return self.copy_with_map()[0]

    def copy_with_map(self):
        """A deep copy of the structure (attrs/meta dicts copied, arrays shared) and the old->new Value map."""
        g, vmap = Graph(), {}
        g.meta = dict(self.meta)
        g._counter = self._counter
        for n in self.nodes:
            new = g._add(n.op, [vmap[v] for v in n.inputs], n.attrs, [v.type for v in n.outputs], n.meta,
                         g._root._prev, tuple(v.name for v in n.outputs))
            if n.op in ("input", "constant"):
                g._last_source = new
            vmap.update(zip(n.outputs, new.outputs))
        return g, vmap

    # ---- views -------------------------------------------------------------------------------------------------
    def to_networkx(self):
        """A networkx.MultiDiGraph: one vertex per node (op, label), one edge per use (value name)."""
        import networkx as nx

        from .printer import format_node

        nxg = nx.MultiDiGraph()
        for i, n in enumerate(self.nodes):
            nxg.add_node(id(n), op=n.op, label=format_node(n), order=i)
            for v in n.inputs:
                nxg.add_edge(id(v.producer), id(n), value=v.name)
        return nxg

    def __str__(self):
        from .printer import format_graph

        return format_graph(self)

    def __repr__(self):
        return f"<Graph: {len(self.inputs)} inputs, {len(self)} nodes, {len(self.outputs)} outputs>"

    def print(self):
        print(self)

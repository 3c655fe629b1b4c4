"""draw_graph: a picture of an IR graph at one stage of compilation (traced, joint, optimized or fused).

Parameters are blue boxes, user inputs yellow ellipses, constants small grey boxes, outputs dark green; ops show
their name and key attributes, edges the tensor type they carry. Backward-phase ops of a joint graph are pink,
write-backs (in-place updates) are dashed edges back to the input they overwrite, and each fusion group is a
cluster holding its member ops. Ops are clustered by module path (meta 'scope', else the source line that made
them); `collapse_depth=k` folds every module subtree deeper than k into one box.
"""
import numpy as np

from ..core.dtype import DType
from ..ir.graph import Graph
from ..ir.printer import format_attr
from ..passes.autodiff import autodiff
from ..passes.fuse import fuse
from ..passes.pipeline import DEFAULT_PASSES, format_bytes, run_pipeline
from . import style

STAGES = ("traced", "joint", "optimized", "fused")
ABBREV = {"stride": "s", "padding": "p", "dilation": "d", "groups": "g", "kernel_size": "k"}
DEFAULT_ATTRS = {"dilation": 1, "groups": 1, "keepdim": False, "ceil_mode": False, "count_include_pad": True}
HIDDEN_ATTRS = ("subgraph", "kernel", "value")
MAX_ATTR_CHARS = 24
REPORTED_PASSES = ("dce", "cse", "fold", "simplify")  # listed in the legend by their scalar report entries
ROLE_STYLE = {
    "param": dict(fillcolor=style.LEAF),
    "buffer": dict(fillcolor=style.IR_BUFFER),
    "state": dict(fillcolor=style.IR_BUFFER),
    "input": dict(fillcolor=style.IR_INPUT, shape="ellipse"),
    "grad_output": dict(fillcolor=style.IR_GRAD_OUTPUT, shape="ellipse"),
    "saved": dict(fillcolor=style.SAVED, shape="ellipse"),
}
CONSTANT_STYLE = dict(fillcolor=style.IR_CONSTANT, fontsize="8", height="0.1", width="0.1", margin="0.02")
OUTPUT_STYLE = dict(fillcolor=style.IR_OUTPUT, fontcolor="white")
FUSED_CLUSTER = dict(style="dashed,rounded", color=style.FUSED_BORDER, fontcolor=style.FUSED_BORDER, fontsize="10")
MODULE_CLUSTER = dict(style="rounded", color="gray60", fontcolor="gray30", fontsize="10")


def draw_graph(graph, stage="traced", collapse_depth=None, show_shapes=True):
    """Draw `graph` (an ir.Graph, a Traced from graphnet.trace, or a compiled model with .graph(stage=...)).

    stage: 'traced' draws the graph as given; 'joint', 'optimized' and 'fused' build that stage with the passes.
    collapse_depth: fold module subtrees deeper than this into one box. show_shapes: label edges with types.
    """
    if stage not in STAGES:
        raise ValueError(f"draw_graph: stage must be one of {STAGES}, got {stage!r}")
    if collapse_depth is not None and (isinstance(collapse_depth, bool) or not isinstance(collapse_depth, int)
                                       or collapse_depth < 0):
        raise ValueError(f"draw_graph: collapse_depth must be None or an int >= 0, got {collapse_depth!r}")
    return _Drawer(stage_graph(graph, stage), stage, collapse_depth, show_shapes).draw()


# ---- which graph -------------------------------------------------------------------------------------------------
def stage_graph(obj, stage):
    """The ir.Graph to draw: a Graph or a Traced's graph taken through the passes up to `stage`, or what a
    compiled model's graph(stage=...) returns."""
    if isinstance(obj, Graph):
        return build_stage(obj, stage)
    attr = getattr(obj, "graph", None)
    if isinstance(attr, Graph):
        return build_stage(attr, stage)
    if callable(attr):
        graph = attr(stage=stage)
        if not isinstance(graph, Graph):
            raise TypeError(f"draw_graph: {type(obj).__name__}.graph(stage={stage!r}) returned "
                            f"{type(graph).__name__}, expected an ir.Graph")
        return graph
    raise TypeError(f"draw_graph: expected an ir.Graph, a Traced (from graphnet.trace) or a compiled model with "
                    f".graph(stage=...), got {type(obj).__name__}; trace a function or Module first with "
                    f"graphnet.trace(fn, *example_inputs)")


def build_stage(graph, stage):
    """Run the passes that turn a traced graph into `stage` (passes are pure: `graph` is left untouched)."""
    if stage == "traced":
        return graph
    joint = joint_graph(graph)
    if stage == "joint":
        return joint
    optimized = optimize(joint)
    return optimized if stage == "optimized" else fuse(optimized)


def joint_graph(graph):
    """autodiff's joint graph; a graph that is already joint, writes gradients itself (a traced train step) or has
    no floating-point output to differentiate is its own joint graph."""
    if "autodiff" in graph.meta or any(w.kind == "grad" for w in graph.writebacks):
        return graph
    outputs = graph.outputs
    if not outputs or not outputs[0].dtype.is_floating_point:
        return graph
    return autodiff(graph)


def optimize(graph):
    """The default pipeline's passes before fusion (prune_grads on joint graphs, dce, cse, fold, simplify, dce)."""
    names = [p.name for p in DEFAULT_PASSES]
    return run_pipeline(graph, DEFAULT_PASSES[:names.index("fuse")])[0]


# ---- labels ------------------------------------------------------------------------------------------------------
def _compact(value):
    if isinstance(value, DType):
        return value.name
    if isinstance(value, np.ndarray):
        return format_attr(value)
    if isinstance(value, (tuple, list)):
        return ",".join(_compact(v) for v in value) if value else "()"
    return repr(value).replace(" ", "")


def _attr_text(key, value):
    """'s=1' for stride=(1, 1), 'keepdim' for keepdim=True; None for attrs not worth a place in the label."""
    if key in HIDDEN_ATTRS or value is None:
        return None
    if key in ABBREV and isinstance(value, (tuple, list)) and value and all(v == value[0] for v in value):
        value = value[0]
    if key in DEFAULT_ATTRS and value == DEFAULT_ATTRS[key]:
        return None
    if isinstance(value, bool):
        return key if value else f"{key}=False"
    text = _compact(value)
    if len(text) > MAX_ATTR_CHARS:
        text = text[:MAX_ATTR_CHARS - 1] + "…"
    return f"{ABBREV.get(key, key)}={text}"


def op_label(node):
    """An op's name and its key attributes, compactly: 'conv2d s=1 p=0', 'sum dims=1 keepdim'."""
    parts = [t for t in (_attr_text(k, v) for k, v in node.attrs.items()) if t]
    return " ".join([node.op] + parts)


def fused_label(members):
    return "fused: " + "+".join(members)


def shape_label(name, shape):
    """'fc1.weight\\n(120, 400)'."""
    return f"{name}\n{style.size_to_str(shape)}"


def _constant_label(node):
    value = node.attrs["value"]
    return format_attr(value) if value.size <= 4 else f"const\n{style.size_to_str(value.shape)}"


# ---- phases and module paths -------------------------------------------------------------------------------------
def node_phases(graph):
    """{node: 'forward' | 'backward'} for joint graphs, else {}. A node without meta['phase'] (e.g. a fused group)
    is forward when a forward output or a data write-back depends on it."""
    info = graph.meta.get("autodiff")
    if info is None and not any("phase" in n.meta for n in graph.nodes):
        return {}
    n_fwd = info["n_forward_outputs"] if info else len(graph.outputs)
    forward, work = set(), graph.outputs[:n_fwd] + [w.value for w in graph.writebacks if w.kind == "data"]
    while work:
        node = work.pop().producer
        if node not in forward:
            forward.add(node)
            work.extend(node.inputs)
    return {n: n.meta.get("phase") or ("forward" if n in forward else "backward")
            for n in graph.nodes if n.op != "output"}


def _source_path(source):
    """('forward()', 'lenet.py:20') from the tracer's 'path/lenet.py:20 in forward'."""
    where, _, func = source.rpartition(" in ")
    file_line = where.replace("\\", "/").rsplit("/", 1)[-1]
    return (f"{func}()", file_line) if where else None


def module_paths(graph, phases):
    """{node: path tuple} for clustering, from meta['scope'] ('features.0' -> ('features', 'features.0')) when the
    graph has any, else from meta['source'] (function, then line) of non-backward ops; {} if all share one path."""
    nodes = [n for n in graph.nodes if n.op != "output"]
    paths = {}
    if any(n.meta.get("scope") for n in nodes):
        for n in nodes:
            scope = n.meta.get("scope")
            if n.op == "input" and n.attrs["role"] in ("param", "buffer") and "." in n.attrs["target"]:
                scope = n.attrs["target"].rsplit(".", 1)[0]
            if scope:
                parts = scope.split(".")
                paths[n] = tuple(".".join(parts[:i + 1]) for i in range(len(parts)))
    else:
        for n in nodes:
            source = n.meta.get("source")
            if source and n.op != "input" and phases.get(n) != "backward":
                paths[n] = _source_path(source)
        paths = {n: p for n, p in paths.items() if p}
    return paths if len(set(paths.values())) > 1 else {}


# ---- the drawing -------------------------------------------------------------------------------------------------
class _Drawer:
    """Flattens the graph into dot nodes (fused nodes expanded into their members), clusters and edges, optionally
    collapses deep module subtrees, then emits a Digraph with nested clusters."""

    def __init__(self, graph, stage, collapse_depth, show_shapes):
        self.graph, self.stage, self.depth, self.show_shapes = graph, stage, collapse_depth, show_shapes
        self.phases = node_phases(graph)
        self.paths = module_paths(graph, self.phases)
        self.nodes = {}     # dot id -> (label, attrs, cluster key, module path)
        self.clusters = {}  # key -> (parent key, label, attrs)
        self.edges = []     # (src id, dst id, value type, extra label, attrs)
        self.src = {}       # Value -> dot id of the node drawn as its producer

    def draw(self):
        for i, node in enumerate(self.graph.nodes):
            if node.op == "output":
                self.add_outputs(node)
            elif node.op == "fused" and isinstance(node.attrs.get("subgraph"), Graph):
                self.add_fused(f"n{i}", node)
            else:
                self.add_node(f"n{i}", node)
        if self.depth is not None:
            self.collapse()
        return self.emit()

    # -- building
    def edge(self, value, dst, extra="", **attrs):
        src = self.src.get(value)
        if src is not None:
            self.edges.append((src, dst, value.type, extra, attrs))

    def module_cluster(self, node):
        """The cluster key of `node`'s module path (registering the path's clusters), or None."""
        path = self.paths.get(node)
        if not path:
            return None
        for i in range(len(path)):
            key = ("module", path[:i + 1])
            self.clusters.setdefault(key, (("module", path[:i]) if i else None, path[i], MODULE_CLUSTER))
        return ("module", path)

    def op_style(self, node):
        return dict(fillcolor=style.BACKWARD) if self.phases.get(node) == "backward" else {}

    def add_node(self, nid, node):
        if node.op == "input":
            label, attrs = shape_label(node.attrs["target"], node.out.shape), ROLE_STYLE[node.attrs["role"]]
        elif node.op == "constant":
            label, attrs = _constant_label(node), CONSTANT_STYLE
        else:
            name = fused_label(node.meta.get("members", ())) if node.op == "fused" else op_label(node)
            label, attrs = name, self.op_style(node)
        self.nodes[nid] = (label, attrs, self.module_cluster(node), self.paths.get(node))
        for v in node.inputs:
            self.edge(v, nid)
        for v in node.outputs:
            self.src[v] = nid

    def add_fused(self, nid, node):
        """A cluster labelled 'fused: a+b' holding the group's ops from attrs['subgraph'], wired to the outside."""
        sub = node.attrs["subgraph"]
        key = ("fused", nid)
        self.clusters[key] = (self.module_cluster(node), fused_label(node.meta.get("members", ())), FUSED_CLUSTER)
        alias = dict(zip(sub.inputs, node.inputs))
        for j, member in enumerate(sub.nodes):
            if member.op in ("input", "constant", "output"):
                continue
            sid = f"{nid}_{j}"
            self.nodes[sid] = (op_label(member), self.op_style(node), key, self.paths.get(node))
            for v in member.inputs:
                self.edge(alias.get(v, v), sid)
            for v in member.outputs:
                self.src[v] = sid
        for outer, inner in zip(node.outputs, sub.outputs):
            if alias.get(inner, inner) in self.src:
                self.src[outer] = self.src[alias.get(inner, inner)]

    def output_name(self, i, n_outputs):
        """'output', 'output 1', or 'grad fc1.weight' for the gradient outputs of a joint graph."""
        info = self.graph.meta.get("autodiff", {})
        grads = {idx: name for name, idx in info.get("grads", {}).items()}
        if i in grads:
            return "grad " + self.graph.input(grads[i]).producer.attrs["target"]
        return "output" if info.get("n_forward_outputs", n_outputs) == 1 else f"output {i}"

    def add_outputs(self, node):
        n = node.attrs["n_outputs"]
        for i, v in enumerate(node.inputs[:n]):
            self.nodes[f"out{i}"] = (shape_label(self.output_name(i, n), v.shape), OUTPUT_STYLE, None, None)
            self.edge(v, f"out{i}")
        for w in self.graph.writebacks:
            extra = "sets .grad" if w.kind == "grad" else "writes back"
            self.edge(w.value, self.src[w.target], extra, style="dashed", color=style.WRITEBACK, constraint="false")

    # -- collapsing
    def collapse(self):
        """Replace the nodes of every module subtree deeper than `depth` by one box with the path and node count."""
        k, boxes, remap = self.depth, {}, {}
        for nid, (_, _, _, path) in list(self.nodes.items()):
            if path and len(path) > k:
                members = boxes.setdefault(path[:k + 1], [])
                members.append(nid)
                remap[nid] = f"m{len(boxes) - 1}" if len(members) == 1 else remap[members[0]]
                del self.nodes[nid]
        for i, (prefix, members) in enumerate(boxes.items()):
            parent = ("module", prefix[:-1]) if len(prefix) > 1 else None
            label = f"{prefix[-1]}\n({len(members)} node{'s' if len(members) != 1 else ''})"
            self.nodes[f"m{i}"] = (label, dict(fillcolor="white", peripheries="2"), parent, prefix[:-1])
        edges, seen = [], set()
        for src, dst, typ, extra, attrs in self.edges:
            src, dst = remap.get(src, src), remap.get(dst, dst)
            if src != dst and (src, dst, typ, extra) not in seen:
                seen.add((src, dst, typ, extra))
                edges.append((src, dst, typ, extra, attrs))
        self.edges = edges

    # -- emitting
    def _used_clusters(self):
        """Clusters that hold a node, directly or through a sub-cluster, each after its descendants."""
        used = set()
        for _, _, key, _ in self.nodes.values():
            while key is not None and key not in used:
                used.add(key)
                key = self.clusters[key][0]
        return sorted((c for c in self.clusters if c in used), key=lambda c: -self._depth(c))

    def _depth(self, key):
        d = 0
        while self.clusters[key][0] is not None:
            key, d = self.clusters[key][0], d + 1
        return d

    def emit(self):
        dot = style.new_digraph(newrank="true")  # dot's default ranking fails on big clustered graphs
        used = self._used_clusters()
        subs = {}
        for i, key in enumerate(used):
            parent, label, attrs = self.clusters[key]
            name = f"cluster_{key[0]}_{key[1] if key[0] == 'fused' else i}"
            subs[key] = style.Digraph(name=name, graph_attr=dict(label=label, **attrs))
        for nid, (label, attrs, key, _) in self.nodes.items():
            (subs[key] if key is not None else dot).node(nid, label, **attrs)
        for key in used:
            parent = self.clusters[key][0]
            (subs[parent] if parent is not None else dot).subgraph(subs[key])
        for src, dst, typ, extra, attrs in self.edges:
            text = "\n".join(t for t in (style.type_str(typ) if self.show_shapes else "", extra) if t)
            dot.edge(src, dst, **(dict(label=text, fontsize="8") if text else {}), **attrs)
        dot.node("legend", "\\l".join(self.legend()) + "\\l", shape="note", fillcolor="white", fontsize="9")
        style.resize_graph(dot)
        return dot

    def legend(self):
        meta = self.graph.meta
        n_ops = sum(n.op not in ("input", "constant", "output") for n in self.graph.nodes)
        lines = [f"{meta.get('name', 'graph')}: {self.stage} graph, {n_ops} ops"]
        if self.phases:
            lines.append("grey: forward ops, pink: backward ops")
        if self.graph.writebacks:
            lines.append("dashed blue: write-back (in-place update of its target)")
        if "prune_grads" in meta:
            report = meta["prune_grads"]
            lines.append(f"prune_grads: {report['nodes_removed']} backward nodes removed, "
                         f"{format_bytes(report['saved_bytes_avoided'])} of saved activations avoided")
        lines += [f"{name}: {_report_text(meta[name])}" for name in REPORTED_PASSES if name in meta]
        if "fuse" in meta:
            lines.append(f"fuse: {meta['fuse']['groups']} groups from {meta['fuse']['fused_nodes']} ops")
        if self.depth is not None:
            lines.append(f"module subtrees deeper than {self.depth} collapsed into boxes")
        return lines


def _report_text(report):
    """A pass report's scalar entries as 'key=value' pairs."""
    if not isinstance(report, dict):
        return str(report)
    return " ".join(f"{k}={v}" for k, v in report.items() if isinstance(v, (int, float, str)))

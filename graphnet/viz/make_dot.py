"""make_dot: draw the eager autograd graph behind a tensor as a graphviz.Digraph, the way torchviz does.

Blue boxes are leaf tensors (named from `params`), grey boxes backward functions, green boxes the outputs, orange
boxes tensors saved for backward (with show_saved). Edges point the way the forward pass ran. The walk is iterative,
so graphs thousands of ops deep draw without hitting Python's recursion limit.
"""
from collections.abc import Mapping

from ..frontend.tensor import Tensor
from . import style

_INPUT_NAMES = ("self", "other")


def make_dot(var, params=None, show_attrs=False, show_saved=False, max_attr_chars=50):
    """Draw the autograd graph that produced `var` (a tensor, or a tuple/list of tensors).

    params: {name: tensor} (e.g. dict(model.named_parameters())) naming the leaves, matched by identity.
    show_attrs: list each function's op name, attributes and saved tensors in its box (values cut to max_attr_chars).
    show_saved: draw the tensors each function saved for backward, in orange.
    """
    drawer = _Drawer(_param_names(params), show_attrs, show_saved, max_attr_chars)
    for v in _outputs(var):
        drawer.add_output(v)
    style.resize_graph(drawer.dot)
    return drawer.dot


def _outputs(var):
    outputs = list(var) if isinstance(var, (tuple, list)) else [var]
    for v in outputs:
        if not isinstance(v, Tensor):
            raise TypeError(f"make_dot: expected a tensor or a tuple/list of tensors, got {type(v).__name__}")
    return outputs


def _param_names(params):
    """{id(tensor): name} from a mapping or an iterable of (name, tensor) pairs."""
    if params is None:
        return {}
    items = params.items() if isinstance(params, Mapping) else params
    names = {}
    for name, t in items:
        if not isinstance(t, Tensor):
            raise TypeError(f"make_dot: params must map names to tensors (e.g. dict(model.named_parameters())); "
                            f"got {type(t).__name__} for {name!r}")
        names[id(t)] = str(name)
    return names


def _saved(fn):
    """(name, tensor) for each tensor `fn` keeps for backward: inputs as self/other/inputN, outputs as result."""
    saved_in, saved_out = getattr(fn, "_saved_in", None), getattr(fn, "_saved_out", None)
    if saved_in is None and saved_out is None:
        return []
    entries = [(_INPUT_NAMES[i] if i < len(_INPUT_NAMES) else f"input{i}", s.tensor)
               for i, s in sorted(saved_in.items())]
    many = len(getattr(fn, "out_types", ())) > 1
    entries += [(f"result{j}" if many else "result", s.tensor) for j, s in sorted(saved_out.items())]
    return entries


def _fn_name(fn):
    name = getattr(fn, "name", None)
    return name() if callable(name) else type(fn).__name__


def _attr_str(value):
    if isinstance(value, Tensor):
        return "[saved tensor]"
    if isinstance(value, (tuple, list)) and any(isinstance(v, Tensor) for v in value):
        return "[saved tensors]"
    return str(value)


class _Drawer:
    """Builds the Digraph. `seen`: ids of functions, leaves and outputs drawn; `saved`: ids drawn as saved tensors
    (a later leaf or output box for the same tensor overrides the orange one). The graph keeps all of them alive."""

    def __init__(self, param_map, show_attrs, show_saved, max_attr_chars):
        self.param_map, self.show_attrs, self.show_saved = param_map, show_attrs, show_saved
        self.max_attr_chars = max_attr_chars
        self.dot, self.seen, self.saved = style.new_digraph(), set(), set()

    def tensor_node(self, t, color, name=None):
        label = style.tensor_label(name or self.param_map.get(id(t), ""), t.shape)
        self.dot.node(str(id(t)), label, fillcolor=color)

    def edge(self, src, dst, **attrs):
        self.dot.edge(str(id(src)), str(id(dst)), **attrs)

    def add_output(self, var):
        """The output in green, the graph behind it, then (dotted) the base it is a view of, if any."""
        color = style.OUTPUT
        while var is not None and id(var) not in self.seen:
            self.seen.add(id(var))
            self.tensor_node(var, color)
            if var.grad_fn is not None:
                self.walk(var.grad_fn)
                self.edge(var.grad_fn, var)
            base = getattr(var, "_base", None)
            if base is not None:
                self.edge(base, var, style="dotted")
            var, color = base, style.VIEW_BASE

    def walk(self, root):
        """Depth-first over next_functions with an explicit stack (first input first, as torchviz recurses)."""
        stack = [root]
        while stack:
            fn = stack.pop()
            if id(fn) in self.seen:
                continue
            self.seen.add(id(fn))
            self.add_function(fn)
            children = [child for child, _ in getattr(fn, "next_functions", ()) if child is not None]
            for child in children:
                self.edge(child, fn)
            stack.extend(reversed(children))

    def add_function(self, fn):
        """One grey box for `fn`, its saved tensors (show_saved) and, for AccumulateGrad, the leaf it feeds."""
        if self.show_saved:
            for name, t in _saved(fn):
                self.edge(fn, t, dir="none")
                if id(t) not in self.seen and id(t) not in self.saved:
                    self.saved.add(id(t))
                    self.tensor_node(t, style.SAVED, name)
        var = getattr(fn, "variable", None)
        if var is not None:
            self.seen.add(id(var))
            self.tensor_node(var, style.LEAF)
            self.edge(var, fn)
        self.dot.node(str(id(fn)), self.fn_label(fn))

    def fn_label(self, fn):
        name = _fn_name(fn)
        if not self.show_attrs:
            return name
        opdef = getattr(fn, "opdef", None)
        attrs = {"op": opdef.name} if opdef is not None else {}
        attrs.update((k, _attr_str(v)) for k, v in (getattr(fn, "attrs", None) or {}).items())
        attrs.update((k, "[saved tensor]") for k, _ in _saved(fn))
        return style.attrs_label(name, attrs, self.max_attr_chars)

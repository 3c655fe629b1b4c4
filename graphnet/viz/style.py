"""The shared look of graphnet's drawings (torchviz's colours and box style) and their rendering to files.

make_dot and the IR drawer both build graphs with `new_digraph()` and the label helpers here, so the two kinds of
picture read alike; `render` (and `Digraph.render`) turns a missing Graphviz `dot` program into clear advice.
"""
import functools

import graphviz

NODE_ATTR = dict(style="filled", shape="box", align="left", fontsize="10", ranksep="0.1", height="0.2",
                 fontname="monospace")
MIN_SIZE = 12
SIZE_PER_ROW = 0.15

LEAF = "lightblue"            # a leaf tensor (a parameter or an input that requires grad)
OUTPUT = "darkolivegreen1"    # a tensor the graph was drawn from
VIEW_BASE = "darkolivegreen3"  # the base tensor an output is a view of
SAVED = "orange"              # a tensor saved for backward
FUNCTION = "lightgrey"        # an op / backward function (graphviz's default fill, as in torchviz)

# IR drawings (draw_graph): graph inputs by role, constants, outputs, backward-phase ops, fusion groups
IR_INPUT = "yellow"           # a user input of the traced function
IR_BUFFER = "lightcyan"       # a module buffer or optimizer state
IR_GRAD_OUTPUT = "pink"       # the incoming gradient of a non-scalar output (joint graphs)
IR_CONSTANT = "gray90"        # a constant baked into the graph
IR_OUTPUT = "darkgreen"       # a graph output (drawn with white text)
BACKWARD = "lightpink"        # an op of the backward phase of a joint graph
WRITEBACK = "blue"            # the dashed edge of an in-place update back to its target input
FUSED_BORDER = "purple"       # the outline of a fusion group's cluster

MISSING_DOT = ("graphnet.viz: rendering needs the Graphviz 'dot' program, which was not found on PATH "
               "(the Python package 'graphviz' alone cannot draw). Install the system package graphviz, e.g. "
               "`apt-get install graphviz`, `brew install graphviz` or `conda install graphviz`.")


class GraphvizNotFoundError(graphviz.ExecutableNotFound):
    """Raised instead of graphviz.ExecutableNotFound, with install advice; still a RuntimeError."""

    def __init__(self, message=MISSING_DOT):
        RuntimeError.__init__(self, message)


def _with_advice(method):
    @functools.wraps(method)
    def call(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except GraphvizNotFoundError:
            raise
        except graphviz.ExecutableNotFound as exc:
            raise GraphvizNotFoundError() from exc

    return call


class Digraph(graphviz.Digraph):
    """graphviz.Digraph whose render/pipe/view say how to install Graphviz when `dot` is missing."""

    render = _with_advice(graphviz.Digraph.render)
    pipe = _with_advice(graphviz.Digraph.pipe)
    view = _with_advice(graphviz.Digraph.view)


def new_digraph(**graph_attr):
    """An empty drawing with torchviz's node style and a 12x12 inch default size."""
    return Digraph(node_attr=dict(NODE_ATTR), graph_attr={"size": f"{MIN_SIZE},{MIN_SIZE}", **graph_attr})


def resize_graph(dot, size_per_element=SIZE_PER_ROW, min_size=MIN_SIZE):
    """Grow the page size with the number of statements, as torchviz does, so big graphs stay legible."""
    size = max(min_size, len(dot.body) * size_per_element)
    dot.graph_attr.update(size=f"{size},{size}")


def size_to_str(shape):
    return "(" + ", ".join(str(int(s)) for s in shape) + ")"


def type_str(typ):
    """A compact tensor type for edge labels, e.g. 'float32[64,6,28,28]'."""
    return f"{typ.dtype.name}[{','.join(str(int(s)) for s in typ.shape)}]"


def tensor_label(name, shape):
    """torchviz's tensor label: the name, then the shape on the next line, e.g. 'fc1.weight\\n (120, 400)'."""
    return f"{name}\n {size_to_str(shape)}"


def attrs_label(name, attrs, max_attr_chars=50):
    """`name` over a ruled two-column table of attrs, values cut to max_attr_chars (torchviz's show_attrs look)."""
    if not attrs:
        return name
    width = max(max_attr_chars, 3)
    col1 = max(len(k) for k in attrs)
    col2 = min(max(len(str(v)) for v in attrs.values()), width)
    rule = "-" * max(col1 + col2 + 2, len(name))

    def cut(s):
        return s[:col2 - 3] + "..." if len(s) > col2 else s

    rows = "\n".join(f"{k:<{col1}}: {cut(str(v)):>{col2}}" for k, v in attrs.items())
    return f"{name}\n{rule}\n{rows}"


def render(dot, path, format="pdf", cleanup=False):  # noqa: A002  (graphviz's own argument name)
    """Write `dot` to `path`.<format> (or to `path` itself when it already ends in .<format>); returns that path.

    A missing `dot` program raises a RuntimeError telling how to install the system package graphviz.
    """
    path = str(path)
    try:
        if path.endswith("." + format):
            return dot.render(outfile=path, format=format, cleanup=cleanup)
        return dot.render(path, format=format, cleanup=cleanup)
    except graphviz.ExecutableNotFound as exc:
        raise GraphvizNotFoundError() from exc

"""Pictures of graphs: `make_dot` draws an eager autograd graph the way torchviz does, `draw_graph` an IR graph at
any compilation stage; `render` writes one to a file."""
from .draw_graph import draw_graph
from .make_dot import make_dot
from .style import Digraph, GraphvizNotFoundError, render

__all__ = ["Digraph", "GraphvizNotFoundError", "draw_graph", "make_dot", "render"]

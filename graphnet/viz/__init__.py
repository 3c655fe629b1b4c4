"""Pictures of graphs: `make_dot` draws an eager autograd graph the way torchviz does; `render` writes one to a file."""
from .make_dot import make_dot
from .style import Digraph, GraphvizNotFoundError, render

__all__ = ["Digraph", "GraphvizNotFoundError", "make_dot", "render"]

"""Graph passes: each a pure function Graph -> Graph (the input graph is never mutated)."""
from .autodiff import autodiff, split
from .dce import dce
from .prune_grads import prune_grads

__all__ = ["autodiff", "dce", "prune_grads", "split"]

"""Graph passes: each a pure function Graph -> Graph (the input graph is never mutated)."""
from .autodiff import autodiff, split
from .cse import cse
from .dce import dce
from .fold import fold
from .prune_grads import prune_grads
from .fuse import fuse
from .hfuse import hfuse
from .plan_memory import plan_memory
from .simplify import simplify

__all__ = ["fuse", "hfuse", "plan_memory", "autodiff", "cse", "dce", "fold", "prune_grads", "simplify", "split"]

"""Every public op function, gathered for the top level: importing this module imports each module whose
`api.export` publishes graphnet.<name> functions (and Tensor methods), so FUNCTIONS is complete."""
from . import (  # noqa: F401  (imported for their @export side effect)
    api_convert,
    api_einsum,
    api_elementwise,
    api_indexing,
    api_linalg,
    api_movement,
    api_random,
    api_reduce,
    api_sort,
    creation,  # tensor, zeros, arange, ...
    interop,  # from_dlpack, Tensor.__dlpack__
)
from .api import FUNCTIONS

__all__ = ["FUNCTIONS"]

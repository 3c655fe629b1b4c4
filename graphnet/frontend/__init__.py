"""The frontend: Tensor, the public op functions, autograd, and the eager and tracing interpreters it registers with
`core.bind` (importing this package registers the eager one)."""
from . import eager  # noqa: F401

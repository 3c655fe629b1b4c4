"""The op registry; importing this package registers every primitive."""
from . import elementwise, fused, indexing, linalg, movement, nn, random, reduce, transfer  # noqa: F401,E402  (each registers its ops)
from .registry import OPS, GradContext, OpDef, OpError, get_op, op, register

__all__ = ["OPS", "GradContext", "OpDef", "OpError", "get_op", "op", "register"]

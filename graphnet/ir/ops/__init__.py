"""The op registry; importing this package registers every primitive."""
from .registry import OPS, GradContext, OpDef, OpError, get_op, op, register
from . import elementwise, movement, reduce, transfer  # noqa: F401,E402  (each module registers its ops)

__all__ = ["OPS", "GradContext", "OpDef", "OpError", "get_op", "op", "register"]

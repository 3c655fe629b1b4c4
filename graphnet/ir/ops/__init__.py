"""The op registry; importing this package registers every primitive."""
# each module registers its ops
from . import (collective, elementwise, fused, indexing, linalg, movement, nn, random, recurrent, reduce, scan,
               softmax, sort, transfer)
from ...core.opdef import OPS, GradContext, OpDef, OpError, get_op, register
from ...core.bind import op

__all__ = ["OPS", "GradContext", "OpDef", "OpError", "get_op", "op", "register"]

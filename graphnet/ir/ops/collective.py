"""Collectives as graph nodes: `all_reduce(x, reduce_op)` is x summed (or averaged) over every rank of the default
process group. It is opaque (never folded, fused or given a kernel): eager mode and compiled Programs run its impl
on the host, which calls the group's MPI all-reduce, so a compiled DDP step keeps the gradient average inside."""
import numpy as np

from ...core import collective
from ...core.bind import op
from ...core.opdef import OpDef, OpError, register

REDUCE_OPS = ("SUM", "AVG")


def _infer(t, reduce_op):
    if reduce_op not in REDUCE_OPS:
        raise OpError(f"all_reduce: reduce_op must be one of {list(REDUCE_OPS)} in a graph, got {reduce_op!r}")
    if not t.dtype.is_floating_point:
        raise OpError(f"all_reduce: a graph all-reduces floating-point tensors, got {t.dtype.name}")
    return t


def _impl(x, reduce_op):
    out = np.array(x, order="C", copy=True)
    collective.all_reduce(out, reduce_op)
    return out


def _grad(ctx, g):
    """Every rank's output depends on every rank's input: the gradient is the same reduction of the gradients."""
    return (op.all_reduce(g, reduce_op=ctx.attrs["reduce_op"]),)


register(OpDef("all_reduce", "opaque", _infer, _impl, _grad))

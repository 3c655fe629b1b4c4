"""Collectives as graph nodes over the default process group: `all_reduce(x, reduce_op)` is x summed (or averaged)
over every rank, `broadcast(x, src)` is rank src's x. They are opaque (never folded, fused or given a kernel):
eager mode and compiled Programs run their impls on the host, which call the group's MPI collectives, so a compiled
DDP step keeps its gradient average and buffer broadcast inside."""
import numpy as np

from ...core import collective
from ...core.bind import op
from ...core.opdef import OpDef, OpError, register

REDUCE_OPS = ("SUM", "AVG")


def _all_reduce_infer(t, reduce_op):
    if reduce_op not in REDUCE_OPS:
        raise OpError(f"all_reduce: reduce_op must be one of {list(REDUCE_OPS)} in a graph, got {reduce_op!r}")
    if not t.dtype.is_floating_point:
        raise OpError(f"all_reduce: a graph all-reduces floating-point tensors, got {t.dtype.name}")
    return t


def _host(name):
    def impl(x, **attrs):
        out = np.array(x, order="C", copy=True)
        collective.run(name, out, **attrs)
        return out
    return impl


def _all_reduce_grad(ctx, g):
    """Every rank's output depends on every rank's input: the gradient is the same reduction of the gradients."""
    return (op.all_reduce(g, reduce_op=ctx.attrs["reduce_op"]),)


def _broadcast_infer(t, src):
    if not isinstance(src, int) or src < 0:
        raise OpError(f"broadcast: src must be a non-negative rank, got {src!r}")
    return t


register(OpDef("all_reduce", "opaque", _all_reduce_infer, _host("all_reduce"), _all_reduce_grad, kernel="collective"))
register(OpDef("broadcast", "opaque", _broadcast_infer, _host("broadcast"), kernel="collective"))

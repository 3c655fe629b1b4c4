"""The check every pass test starts from: run the pass on a verified graph, verify the result, and compare outputs
and write-backs with the original's on random inputs."""
import numpy as np

from graphnet.ir.interpreter import interpret
from graphnet.ir.verify import verify


def run_checked(pass_fn, graph, rng, rtol=0.0):
    """pass_fn(graph), verified, with the same outputs and write-backs (shape, dtype, values within rtol)."""
    verify(graph)
    out = pass_fn(graph)
    verify(out)
    args = [rng.standard_normal(v.shape).astype(v.dtype.np) for v in graph.inputs]
    want, got = interpret(graph, args, with_writebacks=True), interpret(out, args, with_writebacks=True)
    for w, o in zip(want[0] + want[1], got[0] + got[1]):
        assert o.shape == w.shape and o.dtype == w.dtype
        np.testing.assert_allclose(o, w, rtol=rtol, atol=0)
    return out

"""The CPU renderer on a HorizontalKernel: one njit function running each member's loop nest in turn over merged,
deduplicated buffers, a prange only for members of PARALLEL_MIN elements or more; results vs NumPy."""
import numpy as np
import pytest

from graphnet.codegen import cpu
from graphnet.core.dtype import float32
from graphnet.core.types import TensorType
from graphnet.ir.graph import Graph
from graphnet.ir.kernel import HorizontalKernel
from graphnet.passes.fuse import fuse
from graphnet.passes.hfuse import hfuse

RNG = np.random.default_rng(0)


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("GRAPHNET_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "kcache"))


def _merged(n):
    """exp(x), x * y (y broadcast over x's rows) and y * y + 1 on x: (3, n), y: (n,); x and y each read twice."""
    g = Graph()
    x, y = g.add_input(TensorType((3, n), float32), "x"), g.add_input(TensorType((n,), float32), "y")
    one = g.add_constant(np.float32(1))
    g.set_outputs([g.call("exp", x), g.call("mul", x, y), g.call("add", g.call("mul", y, y), one)])
    (node,) = [nd for nd in hfuse(fuse(g)).nodes if nd.op == "fused"]
    return node.attrs["kernel"]


def _run(kernel, x, y):
    outs = [np.empty_like(x), np.empty_like(x), np.empty_like(y)]
    cpu.load(cpu.render(kernel))(x.reshape(-1), y, *(o.reshape(-1) for o in outs))
    return outs


def _check(outs, x, y):
    np.testing.assert_allclose(outs[0], np.exp(x), rtol=2e-6)
    np.testing.assert_allclose(outs[1], x * y, rtol=1e-6)
    np.testing.assert_allclose(outs[2], y * y + 1, rtol=1e-6)


def test_members_run_in_turn_in_one_function_over_deduplicated_inputs():
    kernel = _merged(5)
    assert isinstance(kernel, HorizontalKernel) and len(kernel.members) == 3
    assert kernel.inputs == ["in0", "in1"] and kernel.outputs == ["out0", "out1", "out2"]
    source = cpu.render(kernel)
    assert source.count("def ") == 1 and source.count("@njit(") == 1 and "parallel=False" in source
    assert "def kernel(in0, in1, out0, out1, out2):" in source
    assert [line.strip() for line in source.splitlines() if "for " in line] == [
        "for i0 in range(15):", "for i0 in range(3):", "for i1 in range(5):", "for i0 in range(5):"]
    x, y = RNG.standard_normal((3, 5)).astype(np.float32), RNG.standard_normal(5).astype(np.float32)
    _check(_run(kernel, x, y), x, y)


def test_members_share_no_scalar_variable():
    kernel = _merged(5)
    names = [{st.var for st in m.body} for m in kernel.members]
    assert all(not (a & b) for i, a in enumerate(names) for b in names[i + 1:])
    assert all(v.startswith(f"h{i}_") for i, vs in enumerate(names) for v in vs)


def test_only_members_over_parallel_min_elements_get_a_prange(monkeypatch):
    monkeypatch.setattr(cpu, "PARALLEL_MIN", 40)
    kernel = _merged(17)  # members of 51, 51 and 17 elements
    source = cpu.render(kernel)
    assert "parallel=True" in source and source.count("prange(") == 2
    assert "for i0 in range(17):" in source  # the small member stays a plain loop
    x, y = RNG.standard_normal((3, 17)).astype(np.float32), RNG.standard_normal(17).astype(np.float32)
    _check(_run(kernel, x, y), x, y)

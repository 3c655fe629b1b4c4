"""The CPU renderer: hand-built LoopKernels rendered, compiled through the hashed-file cache, and run vs NumPy."""
import numpy as np
import pytest

from graphnet.codegen import cpu
from graphnet.core.dtype import float32
from graphnet.ir.kernel import Access, LoopKernel, Stmt, broadcast_access, contiguous_strides

RNG = np.random.default_rng(0)


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("GRAPHNET_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "kcache"))


def _chain_kernel(n):
    body = [Stmt("x", "load", (0,)), Stmt("c2", "const", (2.0,)), Stmt("c1", "const", (1.0,)),
            Stmt("ch", "const", (0.5,)), Stmt("t0", "mul", ("x", "c2")), Stmt("t1", "add", ("t0", "c1")),
            Stmt("t2", "relu", ("t1",)), Stmt("t3", "mul", ("t2", "x")), Stmt("t4", "sub", ("t3", "ch")),
            Stmt("t5", "sigmoid", ("t4",)), Stmt("t6", "tanh", ("x",)), Stmt("y", "mul", ("t5", "t6"))]
    return LoopKernel("chain", (n,), ["a"], ["out"], {"a": "float32", "out": "float32"}, body, ["y"],
                      [broadcast_access("a", (n,), (n,))])


def test_eltwise_chain_matches_numpy_in_float32_roundoff():
    n = 10007
    fn = cpu.load(cpu.render(_chain_kernel(n)))
    x = RNG.standard_normal(n).astype(np.float32)
    out = np.empty_like(x)
    fn(x, out)
    xd = x.astype(np.float64)
    ref = 1 / (1 + np.exp(-(np.maximum(xd * 2 + 1, 0) * xd - 0.5))) * np.tanh(xd)
    np.testing.assert_allclose(out, ref, rtol=2e-6, atol=2e-7)


def test_render_is_pure_and_bakes_shapes():
    src = cpu.render(_chain_kernel(100), parallel=False)
    assert src == cpu.render(_chain_kernel(100), parallel=False)
    assert "for i0 in range(100):" in src and "fast_sigmoid(t4)" in src and "cache=True" in src


def test_broadcast_bias_relu_over_permuted_input():
    """out[i, j] = relu(a.T[i, j] + b[j]): the permute and the broadcast are folded into the strides."""
    a = RNG.standard_normal((5, 3)).astype(np.float32)
    b = RNG.standard_normal(5).astype(np.float32)
    dom = (3, 5)
    body = [Stmt("p", "load", (0,)), Stmt("q", "load", (1,)), Stmt("s", "add", ("p", "q")), Stmt("r", "relu", ("s",))]
    k = LoopKernel("bias", dom, ["a", "b"], ["o"], {"a": "float32", "b": "float32", "o": "float32"}, body, ["r"],
                   [Access("a", (1, 3)), broadcast_access("b", (5,), dom)])
    out = np.empty(15, np.float32)
    cpu.load(cpu.render(k))(a.reshape(-1), b, out)
    np.testing.assert_allclose(out.reshape(dom), np.maximum(a.T + b, 0), rtol=1e-6)


@pytest.mark.parametrize("axes", [(0,), (1,), (0, 2), (2,), (0, 1, 2)])
@pytest.mark.parametrize("op", ["sum", "max"])
def test_reductions_with_prologue(axes, op):
    shape = (4, 6, 5)
    x = RNG.standard_normal(shape).astype(np.float32)
    body = [Stmt("v", "load", (0,)), Stmt("w", "mul", ("v", "v"))]
    k = LoopKernel("red", shape, ["x"], ["o"], {"x": "float32", "o": "float32"}, body, ["w"],
                   [Access("x", contiguous_strides(shape))], reduce_axes=axes, reduce_op=op)
    kept = tuple(s for d, s in enumerate(shape) if d not in axes)
    out = np.empty(int(np.prod(kept)), np.float32)
    cpu.load(cpu.render(k))(x.reshape(-1), out)
    ref = getattr(np, op)(x * x, axis=axes)
    np.testing.assert_allclose(out.reshape(kept), ref, rtol=1e-5)


def test_mean_via_post_statement():
    x = RNG.standard_normal((8, 3)).astype(np.float32)
    k = LoopKernel("mean", (8, 3), ["x"], ["o"], {"x": "float32", "o": "float32", "n": "float32"},
                   [Stmt("v", "load", (0,))], ["v"], [Access("x", (3, 1))], reduce_axes=(0,), reduce_op="sum",
                   post=[Stmt("m", "div", ("acc", "np.float32(8)"))])
    out = np.empty(3, np.float32)
    cpu.load(cpu.render(k))(x.reshape(-1), out)
    np.testing.assert_allclose(out, x.mean(0), rtol=1e-5)


def test_cast_template_uses_numpy_type():
    assert cpu.scalar_expr("cast", ("v",), {"dtype": float32}, "float64") == "np.float32(v)"


def test_cache_file_is_written_once(tmp_path, monkeypatch):
    monkeypatch.setenv("GRAPHNET_CACHE_DIR", str(tmp_path))
    src = cpu.render(_chain_kernel(64), parallel=False)
    cpu.load(src)
    files = list((tmp_path / "kernels").glob("k_*.py"))
    assert len(files) == 1 and files[0].read_text() == src


def test_relu_keeps_nan_like_pytorch():
    k = LoopKernel("relu", (4,), ["a"], ["o"], {"a": "float32", "o": "float32"},
                   [Stmt("x", "load", (0,)), Stmt("y", "relu", ("x",))], ["y"], [broadcast_access("a", (4,), (4,))])
    out = np.empty(4, np.float32)
    cpu.load(cpu.render(k))(np.array([np.nan, -1, 0, 2], np.float32), out)
    np.testing.assert_array_equal(out, [np.nan, 0, 0, 2])


@pytest.mark.parametrize("reduce", [False, True], ids=["elementwise", "reduction"])
def test_scalar_loads_are_hoisted_out_of_the_loops(reduce):
    """A 0-d input (a runtime learning rate) is read once before the loops: read inside, every store forces a
    re-read (the buffers may alias) and the loop does not vectorise."""
    shape = (6, 5)
    reads = [Access("a", contiguous_strides(shape), 0), Access("lr", (0, 0), 0)]
    body = [Stmt("x", "load", (0,)), Stmt("s", "load", (1,)), Stmt("y", "mul", ("x", "s"))]
    dtypes = {"a": "float32", "lr": "float32", "out": "float32"}
    kernel = LoopKernel("k", shape, ["a", "lr"], ["out"], dtypes, body, ["y"], reads,
                        **({"reduce_axes": (1,), "reduce_op": "sum"} if reduce else {}))
    source = cpu.render(kernel)
    assert source.index("s = lr[0]") < source.index("for ") < source.index("x = a[")
    a, lr = RNG.standard_normal(shape).astype(np.float32), np.array([0.5], np.float32)
    out = np.empty(6 if reduce else 30, np.float32)
    cpu.load(source)(a.reshape(-1), lr, out)
    want = (a * 0.5).sum(1) if reduce else (a * 0.5).reshape(-1)
    np.testing.assert_allclose(out, want, rtol=1e-6)

"""The CUDA LoopKernel renderer: hand-built kernels rendered (pure text), loaded through the hashed cache, run."""
import numpy as np
import pytest

from graphnet.codegen import cuda as cg
from graphnet.ir.kernel import Access, LoopKernel, Stmt, broadcast_access, contiguous_strides
from graphnet.runtime import storage

pytestmark = pytest.mark.cuda
RNG = np.random.default_rng(0)
F32 = {"a": "float32", "b": "float32", "x": "float32", "o": "float32"}


def _run(kernel, inputs, out_size, reduction=False):
    fn = cg.load(cg.render(kernel, threads=cg.launch_limits()[0]))
    out = storage.empty((out_size,), np.float32)
    grid = (min(out_size, cg.launch_limits()[1]), cg.launch_limits()[0]) if reduction else cg.grid_for(out_size)
    fn[grid](*(storage.to_device(a.reshape(-1)) for a in inputs), out)
    return storage.to_host(out)


def test_render_is_pure_text_with_baked_shapes():
    k = LoopKernel("neg", (37,), ["a"], ["o"], F32, [Stmt("v", "load", (0,)), Stmt("w", "neg", ("v",))], ["w"],
                   [broadcast_access("a", (37,), (37,))])
    src = cg.render(k, threads=32)
    assert src == cg.render(k, threads=32)
    assert "@cuda.jit(cache=True)" in src and "for _i in range(cuda.grid(1), 37, cuda.gridsize(1)):" in src


def test_broadcast_bias_relu_over_permuted_input():
    a, b = _rand(5, 3), _rand(5)
    dom = (3, 5)
    body = [Stmt("p", "load", (0,)), Stmt("q", "load", (1,)), Stmt("s", "add", ("p", "q")), Stmt("r", "relu", ("s",))]
    reads = [Access("a", (1, 3)), broadcast_access("b", (5,), dom)]
    k = LoopKernel("bias", dom, ["a", "b"], ["o"], F32, body, ["r"], reads)
    np.testing.assert_allclose(_run(k, [a, b], 15).reshape(dom), np.maximum(a.T + b, 0), rtol=1e-6)


def test_elementwise_chain_with_transcendentals():
    x = _rand(45)
    body = [Stmt("x", "load", (0,)), Stmt("c", "const", (0.5,)), Stmt("t", "mul", ("x", "c")),
            Stmt("s", "sigmoid", ("t",)), Stmt("h", "tanh", ("x",)), Stmt("y", "add", ("s", "h"))]
    k = LoopKernel("chain", (45,), ["a"], ["o"], F32, body, ["y"], [broadcast_access("a", (45,), (45,))])
    np.testing.assert_allclose(_run(k, [x], 45), 1 / (1 + np.exp(-0.5 * x)) + np.tanh(x), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("axes", [(0,), (1,), (0, 2), (2,), (0, 1, 2)])
@pytest.mark.parametrize("op", ["sum", "max", "min"])
def test_block_tree_reductions_with_prologue(axes, op):
    shape = (3, 11, 5)
    x = _rand(*shape)
    body = [Stmt("v", "load", (0,)), Stmt("w", "mul", ("v", "v"))]
    k = LoopKernel("red", shape, ["x"], ["o"], F32, body, ["w"], [Access("x", contiguous_strides(shape))],
                   reduce_axes=axes, reduce_op=op)
    kept = tuple(s for d, s in enumerate(shape) if d not in axes)
    out = _run(k, [x], int(np.prod(kept)), reduction=True)
    np.testing.assert_allclose(out.reshape(kept), getattr(np, op)(x * x, axis=axes), rtol=1e-5)


def test_mean_via_post_statement():
    x = _rand(40, 3)
    k = LoopKernel("mean", (40, 3), ["x"], ["o"], F32, [Stmt("v", "load", (0,))], ["v"], [Access("x", (3, 1))],
                   reduce_axes=(0,), reduce_op="sum", post=[Stmt("m", "div", ("acc", "np.float32(40)"))])
    np.testing.assert_allclose(_run(k, [x], 3, reduction=True), x.mean(0), rtol=1e-5)


def test_cast_and_clamp_templates():
    from graphnet.core.dtype import float32, int64

    assert cg.scalar_expr("cast", ("v",), {"dtype": int64}, "float32") == "np.int64(v)"
    assert cg.scalar_expr("cast", ("v",), {"dtype": float32}, "float64") == "np.float32(v)"
    assert (cg.scalar_expr("clamp", ("v",), {"min": None, "max": 2.0}, "float32")
            == "(v if v <= np.float32(2.0) or v != v else np.float32(2.0))")


def _rand(*shape):
    return RNG.standard_normal(shape).astype(np.float32)

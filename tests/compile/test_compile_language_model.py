"""What a language model's compiled training step needs: embedding as a graph op (values, gradients, bounds in eager
and compiled mode), erf, batched matmuls and slice adjoints inside one driver, column sums, and identical layers
sharing kernels."""
import os
import sys

import numba
import numpy as np
import pytest

import graphnet as gn
import graphnet.nn as nn
import graphnet.nn.functional as F
from graphnet.codegen import cpu, precompile
from graphnet.ir.kernel import Access, LoopKernel, Stmt
from graphnet.passes.hfuse import PER_KIND

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from examples.charlm import GPT, GPTConfig, lm_loss  # noqa: E402

RNG = np.random.default_rng(0)


def _twice(fn, *args):
    """A compiled function's second call: the first runs eagerly while it is traced."""
    fn(*args)
    return fn(*args)


# ---- embedding ---------------------------------------------------------------------------------------------------
def test_embedding_values_and_weight_gradient_match_torch():
    torch = pytest.importorskip("torch")
    w = RNG.standard_normal((7, 3)).astype(np.float32)
    ids = np.array([[1, 6, 1], [0, 1, 5]])
    tw = torch.tensor(w, requires_grad=True)
    gw = gn.tensor(w, requires_grad=True)
    g = RNG.standard_normal((2, 3, 3)).astype(np.float32)
    (torch.nn.functional.embedding(torch.tensor(ids), tw) * torch.tensor(g)).sum().backward()
    out = F.embedding(gn.tensor(ids), gw)
    (out * gn.tensor(g)).sum().backward()
    np.testing.assert_allclose(out.detach().numpy(), w[ids])
    np.testing.assert_allclose(gw.grad.numpy(), tw.grad.numpy(), rtol=1e-6)


def test_embedding_gradient_vs_finite_differences():
    w = gn.tensor(RNG.standard_normal((5, 2)), dtype=gn.float64, requires_grad=True)
    ids = gn.tensor([[4, 0], [4, 4]])
    assert gn.autograd.gradcheck(lambda t: F.embedding(ids, t).sin(), (w,))


def test_padding_idx_row_gets_no_gradient_and_int32_ids_work():
    emb = nn.Embedding(4, 2, padding_idx=1)
    out = emb(gn.tensor([1, 2, 1], dtype=gn.int32))
    out.sum().backward()
    np.testing.assert_array_equal(emb.weight.grad.numpy()[1], [0.0, 0.0])
    np.testing.assert_array_equal(emb.weight.grad.numpy()[2], [1.0, 1.0])


def _embed_step():
    torch_like = nn.Sequential(nn.Embedding(10, 4), nn.Linear(4, 10))
    opt = gn.optim.SGD(torch_like.parameters(), lr=0.1)

    def step(x, y):
        loss = F.cross_entropy(torch_like(x).view(-1, 10), y.view(-1))
        loss.backward()
        opt.step()
        opt.zero_grad()
        return loss

    return torch_like, step


def test_compiled_embedding_training_step_matches_eager():
    gn.manual_seed(0)
    model_c, step_c = _embed_step()
    gn.manual_seed(0)
    model_e, step_e = _embed_step()
    compiled = gn.compile(step_c)
    x, y = gn.tensor([[1, 2, 9], [9, 0, 1]]), gn.tensor([[2, 3, 4], [5, 6, 7]])
    for _ in range(3):
        lc, le = compiled(x, y), step_e(x, y)
        np.testing.assert_allclose(lc.item(), le.item(), rtol=1e-5)
    np.testing.assert_allclose(model_c[0].weight.detach().numpy(), model_e[0].weight.detach().numpy(), atol=1e-6)
    assert not any(n.op == "index" for n in compiled.graph().nodes)
    assert sum(n.op == "embedding_backward" for n in compiled.graph().nodes) == 1


@pytest.mark.parametrize("bad", [10, -1])
def test_out_of_range_id_raises_index_error_eager_and_compiled(bad):
    emb = nn.Embedding(10, 4)
    with pytest.raises(IndexError, match=rf"index out of range in self \(embedding: id {bad} is not in \[0, 10\)"):
        emb(gn.tensor([[1, bad]]))
    compiled = gn.compile(emb)
    _twice(compiled, gn.tensor([[1, 2]]))
    with pytest.raises(IndexError, match=rf"embedding: id {bad} is not in \[0, 10\)"):
        compiled(gn.tensor([[1, bad]]))


def test_id_computed_inside_the_compiled_graph_is_checked_too():
    emb = nn.Embedding(10, 4)
    compiled = gn.compile(lambda ids: emb(ids * 3))
    _twice(compiled, gn.tensor([1, 2]))
    with pytest.raises(IndexError, match=r"embedding: id 12 is not in \[0, 10\)"):
        compiled(gn.tensor([1, 4]))


def test_embedding_rejects_float_ids_and_a_non_matrix_weight():
    with pytest.raises(RuntimeError, match="Expected tensor for argument #1 'indices'"):
        F.embedding(gn.tensor([1.0]), gn.zeros(3, 2))
    with pytest.raises(RuntimeError, match=r"embedding: expected a 2-d weight"):
        F.embedding(gn.tensor([1]), gn.zeros(3))


# ---- erf ------------------------------------------------------------------------------------------------------------
def test_erf_and_erfc_match_torch_and_their_gradients_check():
    torch = pytest.importorskip("torch")
    x = np.linspace(-5, 5, 101)
    for name in ("erf", "erfc"):
        np.testing.assert_allclose(getattr(gn, name)(gn.tensor(x)).numpy(), getattr(torch, name)(torch.tensor(x)),
                                   rtol=1e-12, atol=1e-15)
        t = gn.tensor(RNG.standard_normal(6), requires_grad=True)
        assert gn.autograd.gradcheck(getattr(gn, name), (t,))


def test_compiled_float32_erf_is_within_a_few_ulp():
    x = np.linspace(-6, 6, 20001).astype(np.float32)
    got = _twice(gn.compile(lambda t: gn.erf(t) * 1.0), gn.tensor(x)).numpy()
    from scipy import special

    ref = special.erf(x.astype(np.float64))
    assert np.abs(got - ref).max() < 4e-7
    small = np.abs(x) < 0.5
    assert (np.abs(got - ref)[small] / np.maximum(np.abs(ref[small]), 1e-30)).max() < 3e-7
    special_values = _twice(gn.compile(lambda t: gn.erf(t) * 1.0), gn.tensor([float("nan"), -0.0, 1e-30, 9.0]))
    assert np.isnan(special_values[0].item()) and special_values[2].item() == pytest.approx(1.1283791e-30)
    assert special_values[3].item() == 1.0


def test_gelu_matches_torch_values_and_gradients():
    torch = pytest.importorskip("torch")
    x = RNG.standard_normal(200).astype(np.float32) * 4
    tx, gx = torch.tensor(x, requires_grad=True), gn.tensor(x, requires_grad=True)
    torch.nn.functional.gelu(tx).sum().backward()
    F.gelu(gx).sum().backward()
    np.testing.assert_allclose(F.gelu(gn.tensor(x)).numpy(), torch.nn.functional.gelu(torch.tensor(x)), atol=1e-6)
    np.testing.assert_allclose(gx.grad.numpy(), tx.grad.numpy(), atol=1e-6)


# ---- one driver for attention-shaped steps ---------------------------------------------------------------------------
def test_batched_and_nd_matmuls_and_a_split_backward_run_in_one_driver():
    w = gn.tensor(RNG.standard_normal((8, 24)).astype(np.float32), requires_grad=True)
    opt = gn.optim.SGD([w], lr=0.1)

    def step(x):
        q, k, v = (x @ w).split(8, dim=-1)  # (B, T, C) @ (C, 3C), split: its backward is a cat (simplify)
        q, k, v = (z.view(2, 5, 2, 4).transpose(1, 2) for z in (q, k, v))
        att = (q @ k.transpose(-2, -1)).softmax(-1)  # 4-d batched, a transposed operand
        loss = (att @ v).square().mean()
        loss.backward()
        opt.step()
        opt.zero_grad()
        return loss

    x = gn.tensor(RNG.standard_normal((2, 5, 8)).astype(np.float32))
    w0 = w.detach().clone()
    compiled = gn.compile(step)
    losses = [compiled(x).item() for _ in range(3)]
    program = compiled._last.programs[0]
    assert program.driver is not None
    ops = {n.op for n in program.graph.nodes}
    assert ops >= {"matmul", "cat"} and "getitem_backward" not in ops
    with gn.no_grad():
        w.copy_(w0)
    eager = [step(x).item() for _ in range(3)]
    np.testing.assert_allclose(losses, eager, rtol=2e-5)


# ---- kernels ---------------------------------------------------------------------------------------------------------
def _column_kernel(post=()):
    """sum over dims (0, 1) of a (3, 4, 5) input (a bias gradient), optional post statements."""
    return LoopKernel(name="k", domain=(3, 4, 5), inputs=["in0"], outputs=["out0"],
                      dtypes={"in0": "float32", "out0": "float32"}, reads=[Access("in0", (20, 5, 1), 0)],
                      body=[Stmt("v0", "load", (0,)), Stmt("v1", "exp", ("v0",))],
                      results=["v1"], reduce_axes=(0, 1), reduce_op="sum", post=list(post))


def test_sum_over_leading_dims_renders_rows_added_into_the_output():
    x = RNG.standard_normal(60).astype(np.float32)
    for post, ref in (((), np.exp(x.reshape(12, 5)).sum(0)),
                      ((Stmt("v2", "div", ("acc", "count")),), np.exp(x.reshape(12, 5)).mean(0))):
        source = cpu.render(_column_kernel(post))
        assert "+= v1" in source and "acc = zero" not in source
        out = np.empty(5, np.float32)
        cpu.load(source)(x, out)
        np.testing.assert_allclose(out, ref, rtol=1e-5)


def test_an_inplace_output_is_written_through_its_input():
    k = LoopKernel(name="k", domain=(6,), inputs=["in0", "in1"], outputs=["out0"],
                   dtypes={"in0": "float32", "in1": "float32", "out0": "float32"},
                   reads=[Access("in0", (1,), 0), Access("in1", (1,), 0)],
                   body=[Stmt("v0", "load", (0,)), Stmt("v1", "load", (1,)), Stmt("v2", "add", ("v0", "v1"))],
                   results=["v2"])
    source, _ = cpu.render_generic(k, generic=False, inplace={"out0": "in0"})
    assert "def kernel(in0, in1):" in source and "in0[i0] = v2" in source
    a, b = np.arange(6, dtype=np.float32), np.ones(6, np.float32)
    cpu.load(source)(a, b)
    np.testing.assert_array_equal(a, np.arange(6) + 1)


@pytest.mark.parametrize("numba_dir", [False, True], ids=["in-tree", "NUMBA_CACHE_DIR"])
def test_precompile_fills_the_cache_in_worker_processes(tmp_path, monkeypatch, numba_dir):
    """With NUMBA_CACHE_DIR set, machine code is found there: a warm run forked workers for nothing before."""
    monkeypatch.setenv("GRAPHNET_CACHE_DIR", str(tmp_path))
    if numba_dir:
        monkeypatch.setattr(numba.config, "CACHE_DIR", str(tmp_path / "numba"))
    if precompile._cores() < 2:
        pytest.skip("one core: precompile compiles in-process")
    first = 3 + 2 * precompile.MIN_KERNELS * numba_dir  # kernels of their own: those of the other case are imported
    sources = [cpu.render(LoopKernel(name="k", domain=(n,), inputs=["in0"], outputs=["out0"],
                                     dtypes={"in0": "float32", "out0": "float32"}, reads=[Access("in0", (1,), 0)],
                                     body=[Stmt("v0", "load", (0,)), Stmt("v1", "tanh", ("v0",))], results=["v1"]))
               for n in range(first, first + precompile.MIN_KERNELS)]
    assert precompile._uncached(sources) == sources
    assert precompile.precompile(sources + sources[:2]) == len(sources)
    assert precompile._uncached(sources) == []  # machine code on disk, found with one listing of the cache folder
    assert precompile.precompile(sources) == 0
    out = np.empty(first, np.float32)  # the kernel's literal size: any other would be read and written past its end
    cpu.load(sources[0])(np.ones(first, np.float32), out)
    np.testing.assert_allclose(out, np.tanh(np.ones(first)), rtol=1e-6)


# ---- a GPT -----------------------------------------------------------------------------------------------------------
def _gpt_step(n_layer, seed=0):
    gn.manual_seed(seed)
    model = GPT(GPTConfig(vocab_size=11, block_size=8, n_layer=n_layer, n_head=2, n_embd=8))
    opt = gn.optim.AdamW(model.parameters(), lr=1e-2)

    def step(x, y):
        loss = lm_loss(model(x), y)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss

    return model, step


@pytest.mark.slow
def test_compiled_gpt_step_matches_eager_and_identical_blocks_share_kernels():
    x = gn.tensor(RNG.integers(0, 11, (2, 8)))
    y = gn.tensor(RNG.integers(0, 11, (2, 8)))
    (_, eager), (model, step) = _gpt_step(2), _gpt_step(2)
    compiled = gn.compile(step)
    for _ in range(3):
        np.testing.assert_allclose(compiled(x, y).item(), eager(x, y).item(), rtol=1e-4)
    assert model.lm_head.weight is model.wte.weight
    # twice as deep: more kernel calls, the same kernels (the optimizer's updates merge in runs of PER_KIND per kind)
    shallow, deep = (gn.compile(_gpt_step(n * PER_KIND)[1]) for n in (1, 2))
    for fn in (shallow, deep):
        _twice(fn, x, y)
    assert deep.stats()["kernels"] > shallow.stats()["kernels"]
    assert deep.stats()["distinct_kernels"] == shallow.stats()["distinct_kernels"]

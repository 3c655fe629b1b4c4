"""Dynamic shapes (issue 13): once arguments have been seen at two sizes, graphnet.compile builds shape-generic
Programs, whose kernels and driver take their sizes as arguments, so every further size reuses the compiled code;
variants stay a bounded LRU, and a generic sibling evicted to make room is rebuilt without a warning."""
import copy
import sys
import warnings

import numpy as np
import pytest

import graphnet as torch
import graphnet.nn as nn
import graphnet.nn.functional as F
import graphnet.optim as optim
from graphnet.codegen import cpu
from graphnet.ir.kernel import Access, LoopKernel, Stmt, contiguous_strides


def _kernel_modules():
    """How many generated kernel and driver modules this process has loaded (each is one Numba compile or load)."""
    return sum(name.startswith("graphnet_kernels.") for name in sys.modules)


def _training_pair(dynamic=None, cache_size_limit=8, conv=False):
    """A compiled SGD step and an eager twin on copied weights, each returning (loss, logits)."""
    torch.manual_seed(0)
    if conv:
        model = nn.Sequential(nn.Conv2d(1, 3, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(27, 4))
    else:
        model = nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 4))
    twin = copy.deepcopy(model)

    def make(m):
        opt = optim.SGD(m.parameters(), lr=0.1, momentum=0.9)

        def step(x, y):
            opt.zero_grad()
            logits = m(x)
            loss = F.cross_entropy(logits, y) + logits.mean() * 0.1
            loss.backward()
            opt.step()
            return loss, logits
        step.opt = opt
        return step

    return (torch.compile(make(model), dynamic=dynamic, cache_size_limit=cache_size_limit), make(twin),
            model, twin)


def _batch(n, conv=False):
    x = torch.randn(n, 1, 8, 8) if conv else torch.randn(n, 6)
    return x, torch.randint(0, 4, (n,))


def _agree(compiled, eager, model, twin, x, y):
    (loss, logits), (want_loss, want_logits) = compiled(x, y), eager(x, y)
    np.testing.assert_allclose(loss.item(), want_loss.item(), rtol=1e-5)
    np.testing.assert_allclose(logits.detach().numpy(), want_logits.detach().numpy(), rtol=1e-5, atol=1e-6)
    for p, q in zip(model.parameters(), twin.parameters()):
        np.testing.assert_allclose(p.detach().numpy(), q.detach().numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("conv", [False, True], ids=["mlp", "conv"])
def test_sizes_after_the_second_compile_nothing_and_stay_correct(conv):
    step, eager, model, twin = _training_pair(conv=conv)
    for n in (5, 5, 6, 6):  # 5: eager, then static; 6: shape-generic at once (the state exists)
        _agree(step, eager, model, twin, *_batch(n, conv))
    assert step._last.generic
    loaded = _kernel_modules()
    sources = step.kernels()
    for n in (7, 3, 11, 7):
        _agree(step, eager, model, twin, *_batch(n, conv))
        assert step._last.generic
        assert step.kernels() == sources  # the same kernels and driver source at every size
    assert _kernel_modules() == loaded
    _agree(step, eager, model, twin, *_batch(1, conv))  # size 1 broadcasts, so its structure (and code) differs


def test_dynamic_false_specialises_every_size():
    step, eager, model, twin = _training_pair(dynamic=False)
    sources = []
    for n in (5, 6, 7):
        for _ in range(2):  # the first call of each size runs eagerly
            _agree(step, eager, model, twin, *_batch(n))
        sources.append(step.kernels())
        assert not step._last.generic
    assert sources[0] != sources[1] != sources[2]
    assert any("range(7)" in src for src in sources[2].values())
    assert step.stats()["variants"] == 3


def test_dynamic_true_is_generic_from_the_first_compile():
    step, eager, model, twin = _training_pair(dynamic=True)
    for n in (4, 4):
        _agree(step, eager, model, twin, *_batch(n))
    assert step._last.generic
    assert not any("range(4)" in src for src in step.kernels().values())


def test_generic_siblings_count_as_one_entry_and_are_kept_while_their_arenas_fit(monkeypatch):
    """The sizes of one shape-generic family share every kernel, so they count as one entry against
    cache_size_limit (torch.compile's one dynamic graph): a generation loop over growing lengths hits its cache on
    the next pass. Beyond GENERIC_ARENA_BYTES the least recently used sizes go, without a warning."""
    from graphnet.frontend import compile as compile_module

    step, eager, model, twin = _training_pair(cache_size_limit=3)
    for n in (2, 2, 3):
        _agree(step, eager, model, twin, *_batch(n))
    first = step._last
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for n in range(4, 12):
            _agree(step, eager, model, twin, *_batch(n))
        assert step.stats()["variants"] == 10 and first.programs is not None
        budget = 3 * compile_module._arena_bytes(step._last)
        monkeypatch.setattr(compile_module, "GENERIC_ARENA_BYTES", budget)
        _agree(step, eager, model, twin, *_batch(12))
    kept = [v for vs in step._variants.values() for v in vs if v.generic]
    assert 1 < len(kept) < 9 and sum(map(compile_module._arena_bytes, kept)) <= budget
    assert first.programs is None  # evicted: its Programs (and their arenas) were let go


def test_static_variants_beyond_the_limit_warn_naming_the_size_change():
    step, eager, model, twin = _training_pair(dynamic=False, cache_size_limit=2)
    with pytest.warns(UserWarning, match=r"hit cache_size_limit \(2\).*x changed from tensor\(shape=\[2, 6\].*"
                                          r"to tensor\(shape=\[4, 6\]"):
        for n in (2, 2, 3, 3, 4, 4):
            _agree(step, eager, model, twin, *_batch(n))
    assert step.stats()["variants"] == 2


def test_a_guard_change_with_a_new_size_still_warms_up_eagerly():
    """Only a change of sizes compiles at once: a new param group at a new size has no momentum yet."""
    step, eager, model, twin = _training_pair()
    for n in (4, 4, 5):
        _agree(step, eager, model, twin, *_batch(n))
    for fn in (step.fn, eager):
        fn.opt.param_groups[0]["nesterov"] = True
    for n in (6, 6, 7):
        _agree(step, eager, model, twin, *_batch(n))


def test_compiled_module_forward_and_backward_across_sizes():
    torch.manual_seed(1)
    model = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(48, 2))
    twin = copy.deepcopy(model)
    cmodel = torch.compile(model)
    for n in (2, 3, 4, 6, 1):
        x = torch.randn(n, 2, 4, 4)
        out, want = cmodel(x), twin(x)
        np.testing.assert_allclose(out.detach().numpy(), want.detach().numpy(), rtol=1e-5, atol=1e-6)
        (out ** 2).sum().backward()
        (want ** 2).sum().backward()
        for p, q in zip(model.parameters(), twin.parameters()):
            np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), rtol=1e-4, atol=1e-5)
    assert cmodel._last.generic


def test_views_slices_and_broadcasts_take_their_sizes_at_run_time():
    f = torch.compile(lambda x: (x.reshape(x.shape[0], -1)[1:, :3].expand(2, -1, -1) * 2).sum(0).exp()
                      + x.mean())
    loaded = None
    for n in (3, 3, 4, 5, 6, 9):
        x = torch.randn(n, 2, 3)
        np.testing.assert_allclose(f(x).numpy(), (np.exp((x.numpy().reshape(n, -1)[1:, :3] * 2) * 2)
                                                  + x.numpy().mean()), rtol=1e-5)
        if n == 5:
            loaded = _kernel_modules()
    assert f._last.generic and _kernel_modules() == loaded


def test_render_generic_writes_no_size_into_the_source():
    def kernel(rows):
        shape = (rows, 7)
        reads = [Access("in0", contiguous_strides(shape), 0), Access("in1", (0, 1), 0)]
        body = [Stmt("a", "load", (0,)), Stmt("b", "load", (1,)), Stmt("c", "mul", ("a", "b"))]
        return LoopKernel("reduce", shape, ["in0", "in1"], ["out0"], {"in0": "float32", "in1": "float32",
                          "out0": "float32"}, body, ["c"], reads, reduce_axes=(0,), reduce_op="sum",
                          post=[Stmt("mean", "div", ("acc", "count"))])

    (src3, ext3), (src5, ext5) = cpu.render_generic(kernel(3)), cpu.render_generic(kernel(5))
    assert src3 == src5 and ext3 != ext5
    assert cpu.render(kernel(3)) != cpu.render(kernel(5))
    fn = cpu.load(src5)
    x, w = np.random.default_rng(0).standard_normal((2, 5, 7)).astype(np.float32)
    for rows, ext in ((3, ext3), (5, ext5)):
        out = np.empty(7, np.float32)
        fn(x[:rows].reshape(-1), w[0], out, *ext)
        np.testing.assert_allclose(out, (x[:rows] * w[0]).mean(0), rtol=1e-5)

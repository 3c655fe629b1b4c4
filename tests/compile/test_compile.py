"""graphnet.compile: compiled results equal eager ones; guards, fallbacks and introspection behave as documented."""
import copy
import warnings

import numpy as np
import pytest

import graphnet as torch
import graphnet.nn as nn
import graphnet.nn.functional as F
import graphnet.optim as optim
from examples.lenet import LeNet


def _mlp():
    return nn.Sequential(nn.Linear(20, 32), nn.ReLU(), nn.Linear(32, 5))


def _data(n=16, shape=(20,), classes=5):
    return torch.randn(n, *shape), torch.randint(0, classes, (n,))


def test_compiled_inference_matches_eager_and_keeps_no_activations():
    model = LeNet().eval()
    x, _ = _data(8, (1, 32, 32), 10)
    cm = torch.compile(model)
    with torch.no_grad():
        out = cm(x)
        np.testing.assert_allclose(out.numpy(), model(x).numpy(), rtol=1e-5, atol=1e-6)
    assert out.grad_fn is None
    graph = cm.graph("optimized")
    assert not [v for v in graph.inputs if v.role == "saved"]
    assert len(graph.outputs) == 1  # nothing saved for a backward that will not happen


def test_compiled_module_backward_matches_eager_gradients():
    model = LeNet()
    x, y = _data(8, (1, 32, 32), 10)
    F.cross_entropy(model(x), y).backward()
    want = [p.grad.numpy().copy() for p in model.parameters()]
    model.zero_grad()
    cm = torch.compile(model)
    loss = F.cross_entropy(cm(x), y)
    assert loss.grad_fn is not None
    loss.backward()
    for p, w in zip(model.parameters(), want):
        np.testing.assert_allclose(p.grad.numpy(), w, rtol=1e-4, atol=1e-6)
    assert "joint" in cm.stats()["compile_seconds"] or cm.graph("joint") is not None


def test_frozen_parameters_get_no_gradient_work():
    model = _mlp()
    model[0].weight.requires_grad = False
    model[0].bias.requires_grad = False
    x, y = _data()
    cm = torch.compile(model)
    F.cross_entropy(cm(x), y).backward()
    assert model[0].weight.grad is None and model[2].weight.grad is not None
    backward = cm.graph("backward")
    assert len(backward.outputs) == 2  # only the second layer's weight and bias


def _train_pair(make_model, make_opt, data, steps=4):
    model = make_model()
    twin = copy.deepcopy(model)
    opt, opt2 = make_opt(model), make_opt(twin)

    def step(x, y):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss

    cstep = torch.compile(step)
    for _ in range(steps):
        got = cstep(*data)
        opt2.zero_grad()
        want = F.cross_entropy(twin(data[0]), data[1])
        want.backward()
        opt2.step()
        np.testing.assert_allclose(got.item(), want.item(), rtol=1e-5)
    for p, q in zip(model.parameters(), twin.parameters()):
        np.testing.assert_allclose(p.detach().numpy(), q.detach().numpy(), rtol=1e-5, atol=1e-6)
    for p, q in zip(model.parameters(), twin.parameters()):
        np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), rtol=1e-4, atol=1e-6)
    return cstep, opt, opt2


def test_compiled_train_step_with_sgd_momentum_matches_eager():
    cstep, opt, opt2 = _train_pair(LeNet, lambda m: optim.SGD(m.parameters(), lr=0.05, momentum=0.9),
                                   _data(8, (1, 32, 32), 10))
    for p, q in zip(opt.param_groups[0]["params"], opt2.param_groups[0]["params"]):
        np.testing.assert_allclose(opt.state[p]["momentum_buffer"].numpy(), opt2.state[q]["momentum_buffer"].numpy(),
                                   rtol=1e-4, atol=1e-6)
    stats = cstep.stats()
    assert stats["programs"] == 1 and stats["fused_groups"] > 0 and stats["planned_peak_bytes"] > 0


def test_compiled_train_step_mlp_plain_sgd():
    _train_pair(_mlp, lambda m: optim.SGD(m.parameters(), lr=0.1), _data())


def test_compiled_elementwise_function_matches_eager():
    def chain(x):
        return torch.sigmoid(torch.relu(x * 2 + 1) * x - 0.5) * torch.tanh(x)

    f = torch.compile(chain)
    x = torch.randn(1000)
    for _ in range(3):
        np.testing.assert_allclose(f(x).numpy(), chain(x).numpy(), rtol=2e-6, atol=2e-7)
    assert f.stats()["fused_groups"] == 1
    assert any("fast_tanh" in src for src in f.kernels().values())


def test_new_shapes_keep_at_most_cache_size_limit_variants_and_name_the_failing_guard():
    f = torch.compile(lambda x: x * 2, dynamic=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for n in range(1, 11):
            for _ in range(2):
                np.testing.assert_allclose(f(torch.ones(n)).numpy(), np.full(n, 2.0))
    assert f.stats()["variants"] == 8
    limit = [str(w.message) for w in caught if "cache_size_limit (8)" in str(w.message)]
    assert len(limit) == 1 and "x changed from tensor(shape=[1]" in limit[0] and "to tensor(shape=[9]" in limit[0]


def test_graph_break_falls_back_to_eager_with_one_warning_naming_the_line():
    def f(x):
        while x.abs().sum() > 1:  # value-dependent control flow
            x = x / 2
        return x

    cf = torch.compile(f)
    x = torch.ones(4)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(3):
            np.testing.assert_allclose(cf(x).numpy(), f(x).numpy())
    messages = [str(w.message) for w in caught if "falling back to eager" in str(w.message)]
    assert len(messages) == 1 and "test_compile.py" in messages[0]


def test_fullgraph_turns_a_graph_break_into_an_error():
    cf = torch.compile(lambda x: x * x.sum().item(), fullgraph=True)
    cf(torch.ones(2))
    with pytest.raises(torch.GraphBreak, match="test_compile.py"):
        cf(torch.ones(2))


def test_compiled_module_shares_parameters_and_state_dict():
    model = _mlp()
    cm = torch.compile(model)
    assert list(cm.parameters())[0] is list(model.parameters())[0]
    assert cm.state_dict().keys() == model.state_dict().keys()


def test_introspection_requires_a_compiled_call_and_names_stages():
    cm = torch.compile(_mlp())
    with pytest.raises(RuntimeError, match="nothing compiled yet"):
        cm.graph()
    with torch.no_grad():
        cm(torch.randn(4, 20))
    assert "matmul" in str(cm.graph("traced"))
    with pytest.raises(ValueError, match="available stages"):
        cm.graph("nonsense")
    assert cm.kernels() and all("@njit" in src for src in cm.kernels().values())


def test_compile_options_are_checked():
    with pytest.raises(TypeError, match="dynamic must be None, True or False"):
        torch.compile(lambda x: x, dynamic="yes")
    with pytest.raises(ValueError, match="cache_size_limit must be a positive int"):
        torch.compile(lambda x: x, cache_size_limit=0)
    fn = lambda x: x  # noqa: E731
    assert torch.compile(fn, disable=True) is fn


def test_compiled_train_step_with_adam_matches_eager():
    """Adam's bias corrections are tensors, so its whole update compiles into the step."""
    cstep, _, _ = _train_pair(_mlp, lambda m: optim.Adam(m.parameters(), lr=1e-2), _data())
    assert cstep.stats()["variants"] == 1 and cstep._last is not None


def test_compile_model_prunes_frozen_gradients_with_the_pass_and_reports_it():
    model = _mlp()
    for p in model[0].parameters():
        p.requires_grad = False
    cm = torch.compile(model)
    F.cross_entropy(cm(torch.randn(8, 20)), torch.randint(0, 5, (8,))).backward()
    report = cm.stats()["passes"]["prune_grads"]
    assert report["nodes_removed"] > 0 and report["saved_bytes_avoided"] > 0
    assert model[0].weight.grad is None and model[2].weight.grad is not None


# ---- compiled-vs-eager differences the differential fuzz test found (tests/frontend/test_fuzz_differential.py) ----
class _Wrap(nn.Module):
    """A function as a module, so its compiled outputs carry the compiled backward."""

    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x)


def test_a_0d_input_returned_as_it_is_keeps_its_shape():
    compiled = torch.compile(lambda t: t.neg().neg(), fullgraph=True)  # simplified to the input itself
    x = torch.tensor(float("nan"))
    compiled(x)  # the first call of a signature runs eagerly
    out = compiled(x)
    assert out.shape == () and np.isnan(out.item())


def test_sign_of_bool_compiles():
    compiled = torch.compile(lambda t: t.sign(), fullgraph=True)
    x = torch.tensor([True, False])
    compiled(x)
    out = compiled(x)
    assert out.dtype == torch.bool
    np.testing.assert_array_equal(out.numpy(), [True, False])


def test_backward_of_an_empty_output_runs():
    """The gradient of sum() over an empty tensor is an empty read-only broadcast; kernels need writeable arrays."""
    x = torch.zeros(0, 2, dtype=torch.float64, requires_grad=True)
    torch.compile(_Wrap(lambda t: -t.sin()), fullgraph=True)(x).sum().backward()
    assert x.grad.shape == (0, 2)


def test_an_output_reached_only_through_a_bool_cast_needs_no_grad_as_in_eager():
    fn = _Wrap(lambda t: (t > 0).to(torch.float32) + 1)
    x = torch.ones(3, dtype=torch.float64, requires_grad=True)
    assert not fn(x).requires_grad
    out = torch.compile(fn, fullgraph=True)(x)
    assert not out.requires_grad and out.grad_fn is None
    assert torch.compile(_Wrap(lambda t: t.exp()), fullgraph=True)(x).requires_grad


@pytest.mark.parametrize("lo,hi", [(2.0, None), (None, 2.0), (None, float("inf")), (float("nan"), None), (-1.0, 2.0)])
def test_compiled_clamp_with_one_bound_or_non_finite_bounds_matches_eager(lo, hi):
    """A None bound did not type in the kernel and inf/nan bounds were written as undefined names; NaN propagates from
    the input and from a bound, as in PyTorch."""
    compiled = torch.compile(lambda t: t.clamp(lo, hi) * 2, fullgraph=True)
    x = torch.tensor([0.5, -2.0, 100.0, float("nan")], dtype=torch.float64)
    compiled(x)
    np.testing.assert_array_equal(compiled(x).numpy(), (x.clamp(lo, hi) * 2).numpy())


def test_compiled_clamp_by_tensors_matches_eager_values_and_gradients():
    """clamp by tensor bounds is its own op (PyTorch's gradient rule); its kernel propagates NaN like eager."""
    model = _Wrap(lambda t: t[0].clamp(t[1], t[2]) * 2)
    nan = float("nan")
    data = [[nan, 1.0, 5.0, 2.0, 0.0, 3.0], [0.0, nan, 0.0, 2.0, 0.0, 3.0], [3.0, 3.0, 3.0, 2.0, 0.0, 1.0]]
    results = []
    for run in (model, torch.compile(model, fullgraph=True)):
        x = torch.tensor(data, dtype=torch.float64, requires_grad=True)
        out = run(x)
        out.sum().backward()
        results.append((out.detach().numpy(), x.grad.numpy()))
    for got, want in zip(*results):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("name", ["floor", "trunc"])
def test_compiled_floor_and_trunc_keep_inf_and_nan(name):
    """The kernels used math.floor/math.trunc, which convert to an integer: inf and NaN came out as -2**63."""
    compiled = torch.compile(lambda t: getattr(t, name)() * 2, fullgraph=True)
    x = torch.tensor([float("inf"), float("nan"), -0.5, 2.5])
    compiled(x)
    np.testing.assert_array_equal(compiled(x).numpy(), (getattr(x, name)() * 2).numpy())


def test_compiled_module_leaves_grad_none_for_what_the_output_does_not_use():
    """As in eager autograd, an input or parameter no output depends on gets no gradient (None, not zeros)."""
    class TwoInputs(nn.Module):
        def __init__(self):
            super().__init__()
            self.used, self.unused = nn.Linear(3, 2), nn.Linear(3, 2)

        def forward(self, x, z):
            return self.used(x)

    model = TwoInputs()
    compiled = torch.compile(model)
    for _ in range(2):  # built on the first call, reused on the second
        model.zero_grad()
        x, z = torch.randn(4, 3, requires_grad=True), torch.randn(4, 3, requires_grad=True)
        compiled(x, z).sum().backward()
        assert z.grad is None and model.unused.weight.grad is None and model.unused.bias.grad is None
        np.testing.assert_allclose(x.grad.numpy(), np.tile(model.used.weight.detach().numpy().sum(0), (4, 1)),
                                   rtol=1e-6)


def test_compiled_module_backward_takes_the_gradient_of_every_output():
    """A module with several differentiable outputs (an RNN's output and h_n, a tuple among them, one value returned
    twice): each output's incoming gradient reaches the inputs, as in eager mode."""

    class Several(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(4, 4)

        def forward(self, x):
            h = self.lin(x).tanh()
            return h * 2, (h * 3, h), h

    torch.manual_seed(0)
    m, x = Several(), torch.randn(3, 4, requires_grad=True)
    grads = []
    for fn in (m, torch.compile(m)):
        a, (b, c), d = fn(x)
        (a.sum() + (b * 5).sum() + (c * c).sum() + (d * 7).sum()).backward()
        grads.append([x.grad.numpy().copy(), m.lin.weight.grad.numpy().copy()])
        x.grad = None
        m.zero_grad()
    for got, want in zip(grads[1], grads[0]):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("shape", [(1, 4), (4,)])
def test_compiled_module_with_a_single_element_output_takes_its_incoming_gradient(shape):
    """A one-element output (Linear(4, 1) on one row, a 0-d value) is not a loss: the caller may scale it, and the
    scaled gradient must reach the parameters (it was seeded with 1, so `(cm(x) * 3).sum()` gave a third)."""
    torch.manual_seed(0)
    m, x = nn.Linear(4, 1), torch.randn(*shape, requires_grad=True)
    grads = []
    for fn in (m, torch.compile(m)):
        (fn(x) * 3).sum().backward()
        grads.append([x.grad.numpy().copy(), m.weight.grad.numpy().copy(), m.bias.grad.numpy().copy()])
        x.grad = None
        m.zero_grad()
    for got, want in zip(grads[1], grads[0]):
        np.testing.assert_allclose(got, want, rtol=1e-6)
    np.testing.assert_allclose(grads[1][2], [3.0])


def test_compiled_module_backward_stops_at_detach_as_eager_does():
    """x + (f(x) - x).detach() (a straight-through estimator): the graph's own autodiff sees the detach node, so the
    compiled module's gradients equal eager's (detach used to be invisible in the trace)."""

    class StraightThrough(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(4, 4)

        def forward(self, x):
            h = self.lin(x)
            return h * 2 + (h * h - h).detach()

    torch.manual_seed(0)
    m, x = StraightThrough(), torch.randn(3, 4, requires_grad=True)
    results = []
    for fn in (m, torch.compile(m)):
        y = fn(x)
        (y * y).sum().backward()
        results.append([y.detach().numpy().copy(), x.grad.numpy().copy(), m.lin.weight.grad.numpy().copy()])
        x.grad = None
        m.zero_grad()
    for got, want in zip(results[1], results[0]):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_a_build_pauses_the_cycle_collector_and_restores_its_state():
    import gc

    seen = []

    def fn(x):
        seen.append(gc.isenabled())
        return x * 2

    def breaks(x):
        return x * float(x.sum().item())

    x = torch.ones(3)
    compiled, broken = torch.compile(fn), torch.compile(breaks)
    for _ in range(3):
        np.testing.assert_allclose(compiled(x).numpy(), [2, 2, 2])
    assert seen == [True, False] and gc.isenabled()  # eager call, then the traced one; the Program runs no Python
    with pytest.warns(UserWarning, match="falling back to eager"):
        for _ in range(2):
            broken(x)
    assert gc.isenabled()  # a build that fails turns it back on too
    gc.disable()
    try:
        f = torch.compile(lambda a: a - 1)
        f(x), f(x)
        assert not gc.isenabled()  # left off when the caller had turned it off
    finally:
        gc.enable()

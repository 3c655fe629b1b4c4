"""Optimizers, schedulers and gradient clipping step for step against real PyTorch: identical tiny models, eager
and inside a graphnet.compile'd training step (one compiled variant across all steps), plus signatures, state_dict
layout and PyTorch's error messages."""
import inspect
import math

import numpy as np
import pytest

import graphnet
from graphnet import nn
from graphnet.nn.utils import clip_grad_norm_, clip_grad_value_

torch = pytest.importorskip("torch")

LIBS = (torch, graphnet)
TOL = {"float64": 1e-6, "float32": 1e-5}
# PyTorch's kernel choices: graphnet accepts and stores them and runs its one path; the torch reference runs its
# default path (capturable=True is refused by torch on CPU).
IMPL_KEYS = ("foreach", "fused", "capturable", "differentiable")


# ---- harness: one tiny model in both libraries, trained side by side ------------------------------------------------
def _model(lib, dtype):
    torch.manual_seed(0)
    if lib is torch:
        return torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Tanh(), torch.nn.Linear(3, 2)).to(
            getattr(torch, dtype))
    model = nn.Sequential(nn.Linear(4, 3), nn.Tanh(), nn.Linear(3, 2)).to(getattr(graphnet, dtype))
    with graphnet.no_grad():
        for p, ref in zip(model.parameters(), _model(torch, dtype).parameters()):
            p.copy_(graphnet.tensor(ref.detach().numpy()))
    return model


def _params(model, groups):
    """All parameters, or two groups (first layer / second layer) with their own options."""
    params = list(model.parameters())
    if groups is None:
        return params
    return [{"params": params[:2], **groups[0]}, {"params": params[2:], **groups[1]}]


class Trainer:
    """A model, its optimizer (and optional scheduler) in one library; `step(x)` is a whole training step."""

    def __init__(self, lib, name, kwargs, groups=None, dtype="float64", schedule=None, clip=None, compiled=False):
        self.lib, self.dtype = lib, getattr(lib, dtype)
        self.model = _model(lib, dtype)
        if lib is torch:
            kwargs = {k: v for k, v in kwargs.items() if k not in IMPL_KEYS}
        self.opt = getattr(lib.optim, name)(_params(self.model, groups), **kwargs)
        self.sched = schedule(lib.optim.lr_scheduler, self.opt) if schedule else None
        self.clip = clip
        self.fn = graphnet.compile(self._step, fullgraph=True) if compiled else self._step

    def _step(self, x):
        self.opt.zero_grad()
        loss = ((self.model(x) - 1.0) ** 2).mean()
        loss.backward()
        out = self.clip(self.lib, list(self.model.parameters())) if self.clip else loss
        self.opt.step()
        return out

    def step(self, x):
        out = self.fn(self.lib.tensor(x, dtype=self.dtype))
        if self.sched is not None:
            self.sched.step()
        return out

    def weights(self):
        return [p.detach().numpy().copy() for p in self.model.parameters()]


def _inputs(n):
    rng = np.random.default_rng(0)
    return [rng.standard_normal((6, 4)) for _ in range(n)]


def _assert_close(got, expected, tol, what):
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g, e, rtol=0, atol=tol, err_msg=what)


def _compare(name, kwargs, groups=None, dtype="float64", steps=5, compiled=False, **extra):
    """Train torch and graphnet (eager, and compiled when asked) side by side; compare weights after every step."""
    ref = Trainer(torch, name, kwargs, groups, dtype, **extra)
    runs = [Trainer(graphnet, name, kwargs, groups, dtype, **extra)]
    if compiled:
        runs.append(Trainer(graphnet, name, kwargs, groups, dtype, compiled=True, **extra))
    start = ref.weights()
    for i, x in enumerate(_inputs(steps)):
        expected_out = ref.step(x)
        for run in runs:
            out = run.step(x)
            compiled_run = run.fn is not run._step
            _assert_close(run.weights(), ref.weights(), TOL[dtype], f"{name} step {i} compiled={compiled_run}")
            np.testing.assert_allclose(float(out.detach()), float(expected_out.detach()), rtol=1e-5)
            if ref.sched is not None:
                assert run.sched.get_last_lr() == pytest.approx(ref.sched.get_last_lr(), rel=1e-12)
    assert any(not np.allclose(a, b) for a, b in zip(ref.weights(), start))
    if compiled:
        assert runs[1].fn.stats()["variants"] == 1  # lr, betas, step counts are runtime inputs: no retrace
    return runs


DECAY_GROUPS = [dict(weight_decay=0.1), dict(weight_decay=0.0, lr=0.05, betas=(0.5, 0.6))]

EAGER_CASES = [
    ("SGD", dict(lr=0.1, momentum=0.9, nesterov=True), [dict(weight_decay=0.1), dict(weight_decay=0.0, lr=0.05)]),
    ("SGD", dict(lr=0.1, momentum=0.9, dampening=0.2, maximize=True, foreach=False, fused=True), None),
    ("Adam", dict(lr=0.05, betas=(0.8, 0.9), eps=1e-4, amsgrad=True, maximize=True), None),
    ("Adam", dict(lr=0.05, weight_decay=0.1, foreach=True, capturable=True, differentiable=True), None),
    ("AdamW", dict(lr=0.05), DECAY_GROUPS),
    ("AdamW", dict(lr=0.05, amsgrad=True, fused=True), DECAY_GROUPS),
    ("Adamax", dict(lr=0.05, weight_decay=0.1), None),
    ("Adamax", dict(lr=0.05, betas=(0.7, 0.8), eps=1e-3, maximize=True), [dict(), dict(lr=0.1)]),
    ("NAdam", dict(lr=0.05), None),
    ("NAdam", dict(lr=0.05, momentum_decay=0.01, weight_decay=0.1, maximize=True), None),
    ("NAdam", dict(lr=0.05, weight_decay=0.1, decoupled_weight_decay=True), DECAY_GROUPS),
    ("RAdam", dict(lr=0.05), None),
    ("RAdam", dict(lr=0.05, weight_decay=0.1, maximize=True), [dict(), dict(betas=(0.7, 0.9))]),
    ("RAdam", dict(lr=0.05, weight_decay=0.1, decoupled_weight_decay=True), DECAY_GROUPS),
    ("Adadelta", dict(), None),
    ("Adadelta", dict(lr=0.5, rho=0.8, eps=1e-4, weight_decay=0.1, maximize=True), [dict(), dict(rho=0.5)]),
]


def _id(case):
    return f"{case[0]}-" + "-".join(f"{k}={v}" for k, v in case[1].items()) + ("-groups" if case[2] else "")


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("case", EAGER_CASES, ids=[_id(c) for c in EAGER_CASES])
def test_eager_matches_torch_step_by_step(case, dtype):
    name, kwargs, groups = case
    _compare(name, kwargs, groups, dtype, steps=9 if name == "RAdam" else 5)  # RAdam: both sides of rho_t > 5


COMPILED_CASES = [
    ("SGD", dict(lr=0.1, momentum=0.9, nesterov=True), [dict(weight_decay=0.1), dict(weight_decay=0.0, lr=0.05)]),
    ("Adam", dict(lr=0.05, amsgrad=True, maximize=True), None),
    ("AdamW", dict(lr=0.05, fused=True), DECAY_GROUPS),
    ("Adamax", dict(lr=0.05, weight_decay=0.1), None),
    ("NAdam", dict(lr=0.05, weight_decay=0.1, decoupled_weight_decay=True), DECAY_GROUPS),
    ("RAdam", dict(lr=0.05, weight_decay=0.1), DECAY_GROUPS),
    ("Adadelta", dict(lr=0.5, weight_decay=0.1), None),
]


@pytest.mark.parametrize("case", COMPILED_CASES, ids=[_id(c) for c in COMPILED_CASES])
def test_compiled_step_matches_eager_and_torch(case):
    name, kwargs, groups = case
    _compare(name, kwargs, groups, steps=8 if name == "RAdam" else 4, compiled=True)


def test_radam_rectification_switches_on_after_step_five():
    # rho_t (beta2 = 0.999) is 1, 2, 3, 4, 5.0, 5.99, ...: the update is unrectified for 5 steps, then adaptive
    b2, rho_inf = 0.999, 2 / (1 - 0.999) - 1
    rho = [rho_inf - 2 * t * b2 ** t / (1 - b2 ** t) for t in range(1, 8)]
    assert [r > 5 for r in rho] == [False] * 5 + [True] * 2
    w = graphnet.tensor([1.0, -2.0], dtype=graphnet.float64, requires_grad=True)
    opt = graphnet.optim.RAdam([w], lr=0.1)
    for _ in range(5):
        w.grad = graphnet.tensor([1.0, 1.0], dtype=graphnet.float64)
        opt.step()
    np.testing.assert_allclose(w.detach().numpy(), [0.5, -2.5], rtol=1e-12)  # plain bias-corrected momentum: 5 x lr


# ---- signatures, state_dict layout, errors --------------------------------------------------------------------------
OPTIMIZERS = ["SGD", "Adam", "AdamW", "Adamax", "NAdam", "RAdam", "Adadelta", "RMSprop", "Adagrad"]


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_signature_defaults_and_state_dict_match_torch(name):
    def sig(cls):
        return [(p.name, p.kind, p.default) for p in inspect.signature(cls).parameters.values()]

    assert sig(getattr(graphnet.optim, name)) == sig(getattr(torch.optim, name))
    saved = []
    for lib in LIBS:
        p = lib.zeros(2, requires_grad=True)
        opt = getattr(lib.optim, name)([p])
        p.grad = lib.ones(2)
        opt.step()
        saved.append(opt.state_dict())
    ref, got = saved
    assert got["param_groups"] == ref["param_groups"]
    assert {k: list(v) for k, v in got["state"].items()} == {k: list(v) for k, v in ref["state"].items()}


def test_nanogpt_fused_probe():
    assert "fused" in inspect.signature(graphnet.optim.AdamW).parameters
    assert "fused" in inspect.signature(graphnet.optim.Adam).parameters


def _p(lib):
    return [lib.zeros(1, requires_grad=True)]


def _messages_match(make):
    """`make(lib)` raises the same exception type and message in torch and graphnet."""
    errors = []
    for lib in LIBS:
        with pytest.raises(Exception) as info:
            make(lib)
        errors.append(info.value)
    assert type(errors[1]) is type(errors[0])
    assert str(errors[1]) == str(errors[0]).replace("torch", "graphnet")


@pytest.mark.parametrize("make", [
    lambda lib: lib.optim.Adamax(_p(lib), lr=-1.0),
    lambda lib: lib.optim.Adamax(_p(lib), betas=(0.9, 1.0)),
    lambda lib: lib.optim.NAdam(_p(lib), eps=-1e-8),
    lambda lib: lib.optim.NAdam(_p(lib), momentum_decay=-0.1),
    lambda lib: lib.optim.NAdam(_p(lib), weight_decay=-0.1),
    lambda lib: lib.optim.RAdam(_p(lib), betas=(-0.1, 0.9)),
    lambda lib: lib.optim.RAdam(_p(lib), lr=-0.5),
    lambda lib: lib.optim.Adadelta(_p(lib), rho=1.5),
    lambda lib: lib.optim.Adadelta(_p(lib), lr=-1.0),
    lambda lib: lib.optim.Adadelta(_p(lib), eps=-1.0),
    lambda lib: lib.optim.AdamW(_p(lib), fused=True, foreach=True),
    lambda lib: lib.optim.Adam(_p(lib), fused=True, differentiable=True),
    lambda lib: lib.optim.SGD(_p(lib), fused=True, foreach=True),
    lambda lib: lib.optim.Adagrad(_p(lib), fused=True, differentiable=True),
    lambda lib: lib.optim.AdamW(_p(lib), bogus=1),
], ids=lambda make: "")
def test_optimizer_errors_match_torch(make):
    _messages_match(make)


def test_invalid_learning_rate_message():
    with pytest.raises(ValueError, match=r"^Invalid learning rate: -1.0$"):
        graphnet.optim.NAdam(_p(graphnet), lr=-1.0)


# ---- schedulers -----------------------------------------------------------------------------------------------------
SCHEDULES = {
    "lambda": lambda m, o: m.LambdaLR(o, [lambda e: 0.95 ** e, lambda e: 1 / (1 + e)]),
    "cosine": lambda m, o: m.CosineAnnealingLR(o, T_max=7, eta_min=0.01),
    "linear": lambda m, o: m.LinearLR(o),
    "linear-args": lambda m, o: m.LinearLR(o, start_factor=0.5, end_factor=0.1, total_iters=10),
    "constant": lambda m, o: m.ConstantLR(o),
    "polynomial": lambda m, o: m.PolynomialLR(o, total_iters=12, power=2.0),
    "sequential": lambda m, o: m.SequentialLR(o, [m.LinearLR(o, start_factor=0.1, total_iters=5),
                                                  m.CosineAnnealingLR(o, T_max=20)], milestones=[5]),
    "sequential-3": lambda m, o: m.SequentialLR(o, [m.ConstantLR(o, factor=0.5, total_iters=3),
                                                    m.ExponentialLR(o, gamma=0.9), m.StepLR(o, 4)],
                                                milestones=[4, 11]),
    "chained": lambda m, o: m.ChainedScheduler([m.ConstantLR(o, factor=0.1, total_iters=2),
                                                m.ExponentialLR(o, gamma=0.9)]),
    "onecycle": lambda m, o: m.OneCycleLR(o, max_lr=[0.5, 1.0], total_steps=30),
    "onecycle-linear-3phase": lambda m, o: m.OneCycleLR(o, max_lr=1.0, epochs=3, steps_per_epoch=10,
                                                         anneal_strategy="linear", three_phase=True),
    "onecycle-args": lambda m, o: m.OneCycleLR(o, max_lr=1.0, total_steps=31, pct_start=0.25, div_factor=10.0,
                                               final_div_factor=100.0, base_momentum=0.7, max_momentum=0.9),
    "onecycle-no-momentum": lambda m, o: m.OneCycleLR(o, max_lr=1.0, total_steps=30, cycle_momentum=False),
}


def _two_group_opt(lib, name):
    params = [lib.zeros(1, requires_grad=True) for _ in range(2)]
    kwargs = dict(momentum=0.9) if name == "SGD" else {}
    return getattr(lib.optim, name)([{"params": [p], "lr": 0.1 * (i + 1)} for i, p in enumerate(params)], **kwargs)


@pytest.mark.parametrize("opt_name", ["SGD", "Adam"])
@pytest.mark.parametrize("key", SCHEDULES)
def test_schedule_over_30_steps_equals_torch(key, opt_name):
    opts = [_two_group_opt(lib, opt_name) for lib in LIBS]
    scheds = [SCHEDULES[key](lib.optim.lr_scheduler, o) for lib, o in zip(LIBS, opts)]
    momentum = "momentum" if opt_name == "SGD" else "betas"
    for epoch in range(30):
        assert scheds[1].get_last_lr() == scheds[0].get_last_lr(), epoch
        assert [g["lr"] for g in opts[1].param_groups] == [g["lr"] for g in opts[0].param_groups]
        assert [g[momentum] for g in opts[1].param_groups] == [g[momentum] for g in opts[0].param_groups]
        for o, s in zip(opts, scheds):
            o.step()
            s.step()


def test_onecycle_drives_a_compiled_adam_without_retracing():
    _compare("Adam", dict(lr=0.01), steps=6, compiled=True,
             schedule=lambda m, o: m.OneCycleLR(o, max_lr=0.1, total_steps=6, anneal_strategy="linear"))


def test_sequential_warmup_cosine_drives_a_compiled_sgd_without_retracing():
    _compare("SGD", dict(lr=0.1, momentum=0.9), steps=6, compiled=True,
             schedule=lambda m, o: m.SequentialLR(o, [m.LinearLR(o, start_factor=0.2, total_iters=2),
                                                     m.CosineAnnealingLR(o, T_max=4)], milestones=[2]))


def test_scheduler_state_dict_round_trip():
    a = graphnet.optim.lr_scheduler.OneCycleLR(_two_group_opt(graphnet, "Adam"), max_lr=1.0, total_steps=20)
    for _ in range(5):
        a.optimizer.step()
        a.step()
    opt_b = _two_group_opt(graphnet, "Adam")
    opt_b.load_state_dict(a.optimizer.state_dict())
    b = graphnet.optim.lr_scheduler.OneCycleLR(opt_b, max_lr=1.0, total_steps=20)
    b.load_state_dict(a.state_dict())
    for _ in range(5):
        for s in (a, b):
            s.optimizer.step()
            s.step()
        assert b.get_last_lr() == a.get_last_lr()
    seq = SCHEDULES["sequential"](graphnet.optim.lr_scheduler, _two_group_opt(graphnet, "SGD"))
    saved = seq.state_dict()
    assert "optimizer" not in saved and len(saved["_schedulers"]) == 2 and "optimizer" not in saved["_schedulers"][0]


def _sched_opt(lib, name="SGD"):
    return _two_group_opt(lib, name)


@pytest.mark.parametrize("make", [
    lambda m, o: m.LinearLR(o, start_factor=0.0),
    lambda m, o: m.LinearLR(o, end_factor=1.5),
    lambda m, o: m.ConstantLR(o, factor=2.0),
    lambda m, o: m.OneCycleLR(o, max_lr=1.0),
    lambda m, o: m.OneCycleLR(o, max_lr=1.0, total_steps=0),
    lambda m, o: m.OneCycleLR(o, max_lr=1.0, epochs=0, steps_per_epoch=3),
    lambda m, o: m.OneCycleLR(o, max_lr=1.0, epochs=2, steps_per_epoch=1.5),
    lambda m, o: m.OneCycleLR(o, max_lr=1.0, total_steps=10, pct_start=1),
    lambda m, o: m.OneCycleLR(o, max_lr=1.0, total_steps=10, anneal_strategy="exp"),
    lambda m, o: m.OneCycleLR(o, max_lr=[1.0], total_steps=10),
    lambda m, o: m.SequentialLR(o, [], milestones=[]),
    lambda m, o: m.SequentialLR(o, [m.ConstantLR(o), m.ConstantLR(o)], milestones=[]),
    lambda m, o: m.SequentialLR(o, [m.ConstantLR(o), m.ReduceLROnPlateau(o)], milestones=[3]),
    lambda m, o: m.SequentialLR(o, [m.ConstantLR(o), m.ConstantLR(o)], milestones=[3, 4]),
    lambda m, o: m.ChainedScheduler([]),
], ids=lambda make: "")
def test_scheduler_errors_match_torch(make):
    _messages_match(lambda lib: make(lib.optim.lr_scheduler, _sched_opt(lib)))


def test_scheduler_errors_needing_a_second_optimizer_or_many_steps():
    _messages_match(lambda lib: lib.optim.lr_scheduler.OneCycleLR(
        lib.optim.Adagrad(_p(lib)), max_lr=1.0, total_steps=10))  # no momentum, no betas
    for lib in LIBS:
        s = lib.optim.lr_scheduler.OneCycleLR(_sched_opt(lib), max_lr=1.0, total_steps=3)
        for _ in range(3):
            s.optimizer.step()
            s.step()
    with pytest.raises(ValueError, match="^Tried to step 4 times. The specified number of total steps is 3$"):
        s.step()
    other = _sched_opt(graphnet)
    opt = _sched_opt(graphnet)
    m = graphnet.optim.lr_scheduler
    with pytest.raises(ValueError, match="ChainedScheduler expects all schedulers to belong to the same optimizer"):
        m.ChainedScheduler([m.ConstantLR(opt), m.ConstantLR(other)])
    with pytest.raises(TypeError, match="SequentialLR at index 1 should have `optimizer` as its attribute."):
        m.SequentialLR(opt, [m.ConstantLR(opt), object()], milestones=[2])


# ---- gradient clipping ----------------------------------------------------------------------------------------------
def _grads_pair(dtype="float64", scale=1.0):
    rng = np.random.default_rng(0)
    grads = [scale * rng.standard_normal(s) for s in [(3, 4), (5,), (2, 2)]]
    pair = []
    for lib in LIBS:
        params = [lib.zeros(g.shape, dtype=getattr(lib, dtype), requires_grad=True) for g in grads]
        for p, g in zip(params, grads):
            p.grad = lib.tensor(g, dtype=getattr(lib, dtype))
        pair.append(params)
    return pair


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("norm_type", [2.0, 1, math.inf, 3.5])
@pytest.mark.parametrize("max_norm", [0.5, 100.0])
def test_clip_grad_norm_matches_torch(norm_type, max_norm, dtype):
    ref, got = _grads_pair(dtype)
    total_ref = torch.nn.utils.clip_grad_norm_(ref, max_norm, norm_type)
    total = graphnet.nn.utils.clip_grad_norm_(got, max_norm, norm_type=norm_type)
    assert isinstance(total, graphnet.Tensor) and total.shape == () and total.dtype == getattr(graphnet, dtype)
    np.testing.assert_allclose(total.numpy(), total_ref.numpy(), rtol=1e-6)
    _assert_close([p.grad.numpy() for p in got], [p.grad.numpy() for p in ref], TOL[dtype], "clipped grads")


def test_clip_grad_norm_edge_cases():
    assert clip_grad_norm_([graphnet.zeros(2, requires_grad=True)], 1.0).tolist() == 0.0  # no grads
    w = graphnet.tensor([3.0, 4.0], requires_grad=True)
    w.grad = graphnet.tensor([3.0, 4.0])
    assert clip_grad_norm_(w, 1.0, foreach=True).item() == pytest.approx(5.0)  # a single tensor
    np.testing.assert_allclose(w.grad.numpy(), [0.6, 0.8], rtol=1e-5)
    with pytest.warns(UserWarning, match="`parameters` is an empty generator, no gradient clipping will occur."):
        clip_grad_norm_((p for p in []), 1.0)


def test_clip_grad_norm_nonfinite():
    w = graphnet.tensor([1.0, 2.0], requires_grad=True)
    w.grad = graphnet.tensor([math.inf, 1.0])
    _messages_match(lambda lib: lib.nn.utils.clip_grad_norm_(
        [w] if lib is graphnet else [_inf_param()], 1.0, error_if_nonfinite=True))
    assert math.isinf(clip_grad_norm_([w], 1.0).item())  # default: scaled by the non-finite norm, no error


def _inf_param():
    p = torch.tensor([1.0, 2.0], requires_grad=True)
    p.grad = torch.tensor([math.inf, 1.0])
    return p


@pytest.mark.parametrize("clip_value", [0.3, 5.0])
def test_clip_grad_value_matches_torch(clip_value):
    ref, got = _grads_pair(scale=2.0)
    assert torch.nn.utils.clip_grad_value_(ref, clip_value) is None
    assert clip_grad_value_(got, clip_value, foreach=None) is None
    _assert_close([p.grad.numpy() for p in got], [p.grad.numpy() for p in ref], 0, "clamped grads")


def _clip_norm(lib, params):
    return lib.nn.utils.clip_grad_norm_(params, 0.05)


def _clip_value(lib, params):
    lib.nn.utils.clip_grad_value_(params, 0.01)
    return sum(p.grad.abs().sum() for p in params)


@pytest.mark.parametrize("clip", [_clip_norm, _clip_value], ids=["norm", "value"])
def test_clipping_inside_a_compiled_training_step(clip):
    _compare("Adam", dict(lr=0.05), steps=4, compiled=True, clip=clip)


def test_error_if_nonfinite_reads_the_norm_so_it_graph_breaks():
    def clip(lib, params):
        return lib.nn.utils.clip_grad_norm_(params, 0.05, error_if_nonfinite=True)

    run = Trainer(graphnet, "SGD", dict(lr=0.1), compiled=True, clip=clip)
    x = _inputs(2)
    run.step(x[0])  # the first call runs eagerly
    with pytest.raises(graphnet.GraphBreak):
        run.step(x[1])


def test_parameters_to_vector_and_back():
    model = _model(graphnet, "float64")
    ref = torch.nn.utils.parameters_to_vector(_model(torch, "float64").parameters())
    vec = graphnet.nn.utils.parameters_to_vector(model.parameters())
    np.testing.assert_array_equal(vec.detach().numpy(), ref.detach().numpy())
    graphnet.nn.utils.vector_to_parameters(vec * 2, model.parameters())
    np.testing.assert_array_equal(graphnet.nn.utils.parameters_to_vector(model.parameters()).detach().numpy(),
                                  2 * ref.detach().numpy())
    assert all(p.requires_grad and p.is_leaf for p in model.parameters())
    assert model[0].weight.shape == (3, 4)
    _messages_match(lambda lib: lib.nn.utils.vector_to_parameters([1.0], []))

"""Learning-rate schedulers: lr sequences vs their closed forms and PyTorch's documented examples."""
import math
import warnings

import numpy as np
import pytest

import graphnet
from graphnet import optim
from graphnet.optim import lr_scheduler as sched


def _opt(lr=1.0, groups=1):
    return optim.SGD([{"params": [graphnet.tensor([1.0], requires_grad=True)], "lr": lr * (i + 1)}
                      for i in range(groups)], lr=lr)


def _lrs(scheduler, epochs):
    """The lr of every group at epochs 0..epochs-1 (epoch 0 is the value after construction)."""
    seq = []
    for _ in range(epochs):
        seq.append(scheduler.get_last_lr())
        scheduler.optimizer.step()
        scheduler.step()
    return np.array(seq)


CLOSED_FORMS = [
    (lambda o: sched.StepLR(o, step_size=3, gamma=0.5), lambda base, e: base * 0.5 ** (e // 3)),
    (lambda o: sched.MultiStepLR(o, milestones=[2, 5, 5], gamma=0.1),
     lambda base, e: base * 0.1 ** ((e >= 2) + 2 * (e >= 5))),
    (lambda o: sched.ExponentialLR(o, gamma=0.9), lambda base, e: base * 0.9 ** e),
    (lambda o: sched.CosineAnnealingLR(o, T_max=4, eta_min=0.1),
     lambda base, e: 0.1 + (base - 0.1) * (1 + math.cos(math.pi * e / 4)) / 2),
    (lambda o: sched.LambdaLR(o, lambda e: 1 / (1 + e)), lambda base, e: base / (1 + e)),
]


@pytest.mark.parametrize("make, closed", CLOSED_FORMS, ids=["step", "multistep", "exponential", "cosine", "lambda"])
def test_sequence_matches_closed_form(make, closed):
    scheduler = make(_opt(lr=0.5, groups=2))
    got = _lrs(scheduler, 13)  # cosine: three half-periods, through the restart branch
    expected = np.array([[closed(base, e) for base in (0.5, 1.0)] for e in range(13)])
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)
    assert [g["lr"] for g in scheduler.optimizer.param_groups] == scheduler.get_last_lr()
    assert [g["initial_lr"] for g in scheduler.optimizer.param_groups] == [0.5, 1.0]


def test_step_lr_pytorch_doc_example():
    # docs: lr = 0.05 if epoch < 30, 0.005 if 30 <= epoch < 60, 0.0005 if 60 <= epoch < 90
    scheduler = sched.StepLR(_opt(lr=0.05), step_size=30, gamma=0.1)
    got = _lrs(scheduler, 90)[:, 0]
    np.testing.assert_allclose(got, [0.05] * 30 + [0.005] * 30 + [0.0005] * 30, rtol=1e-12)


def test_multistep_lr_pytorch_doc_example():
    scheduler = sched.MultiStepLR(_opt(lr=0.05), milestones=[30, 80], gamma=0.1)
    got = _lrs(scheduler, 100)[:, 0]
    np.testing.assert_allclose(got, [0.05] * 30 + [0.005] * 50 + [0.0005] * 20, rtol=1e-12)


def test_schedulers_chain_and_drive_the_optimizer():
    w = graphnet.tensor([0.0], dtype=graphnet.float64, requires_grad=True)
    opt = optim.SGD([w], lr=1.0)
    s1 = sched.ExponentialLR(opt, gamma=0.5)
    s2 = sched.StepLR(opt, step_size=2, gamma=0.1)
    used = []
    for _ in range(4):
        w.grad = graphnet.tensor([1.0], dtype=graphnet.float64)
        used.append(opt.param_groups[0]["lr"])
        opt.step()
        s1.step()
        s2.step()
    np.testing.assert_allclose(used, [1.0, 0.5, 0.025, 0.0125], rtol=1e-12)
    np.testing.assert_allclose(w.item(), -sum(used), rtol=1e-12)


def test_step_with_epoch_uses_closed_form_and_warns():
    scheduler = sched.StepLR(_opt(lr=1.0), step_size=2, gamma=0.5)
    with pytest.warns(UserWarning, match="epoch parameter in `scheduler.step\\(\\)`"):
        scheduler.step(5)
    assert scheduler.last_epoch == 5 and scheduler.get_last_lr() == [0.25]


def test_resume_requires_initial_lr():
    with pytest.raises(KeyError, match="'initial_lr' is not specified in param_groups\\[0\\]"):
        sched.StepLR(_opt(), step_size=3, last_epoch=4)
    opt = _opt(lr=1.0)
    opt.param_groups[0]["initial_lr"] = 2.0
    scheduler = sched.ExponentialLR(opt, gamma=0.5, last_epoch=2)
    assert scheduler.base_lrs == [2.0] and scheduler.last_epoch == 3
    assert scheduler.get_last_lr() == [1.0]  # PyTorch 2.x: the constructor's step keeps the current lr
    cosine = sched.CosineAnnealingLR(opt, T_max=4, last_epoch=2)
    assert cosine.get_last_lr() == [1.0] and cosine.last_epoch == 3


def test_state_dict_round_trip():
    a = sched.CosineAnnealingLR(_opt(lr=1.0), T_max=5)
    _lrs(a, 3)
    b = sched.CosineAnnealingLR(_opt(lr=1.0), T_max=99)
    b.load_state_dict(a.state_dict())
    b.optimizer.param_groups[0]["lr"] = a.optimizer.param_groups[0]["lr"]
    assert "optimizer" not in a.state_dict() and b.T_max == 5
    np.testing.assert_allclose(_lrs(b, 4), _lrs(a, 4), rtol=1e-15)


def test_lambda_lr_per_group_and_errors():
    scheduler = sched.LambdaLR(_opt(lr=1.0, groups=2), [lambda e: 0.5 ** e, lambda e: e + 1])
    np.testing.assert_allclose(_lrs(scheduler, 3), [[1.0, 2.0], [0.5, 4.0], [0.25, 6.0]])
    assert scheduler.state_dict()["lr_lambdas"] == [None, None]
    with pytest.raises(ValueError, match="Expected 2 lr_lambdas, but got 1"):
        sched.LambdaLR(_opt(groups=2), [lambda e: 1.0])
    with pytest.raises(TypeError, match="list is not an Optimizer"):
        sched.StepLR([], step_size=1)


# ---- ReduceLROnPlateau ---------------------------------------------------------------------------------------------
def _plateau(metrics, **kwargs):
    scheduler = sched.ReduceLROnPlateau(_opt(lr=1.0), **kwargs)
    out = []
    for m in metrics:
        scheduler.step(m)
        out.append(scheduler.get_last_lr()[0])
    return out


def test_plateau_reduces_after_patience():
    metrics = [1.0, 0.9, 0.95, 0.95, 0.95, 0.95, 0.95, 0.95]
    assert _plateau(metrics, patience=2, factor=0.5) == [1, 1, 1, 1, 0.5, 0.5, 0.5, 0.25]


def test_plateau_cooldown_and_min_lr():
    metrics = [1.0] + [2.0] * 8
    assert _plateau(metrics, patience=2, factor=0.5, cooldown=1) == [1, 1, 1, 0.5, 0.5, 0.5, 0.5, 0.25, 0.25]
    assert _plateau([1.0] + [2.0] * 6, patience=0, factor=0.1, min_lr=0.05) == [1, 0.1, 0.05, 0.05, 0.05, 0.05, 0.05]


def test_plateau_thresholds_and_max_mode():
    # rel/min: 0.99995 is not better than 1.0 * (1 - 1e-4), so it counts as a bad epoch
    assert _plateau([1.0, 0.99995, 0.99995], patience=1, factor=0.5) == [1, 1, 0.5]
    # abs/max: improvements under 0.1 do not count
    assert _plateau([1.0, 1.05, 1.2, 1.25, 1.28], mode="max", threshold=0.1, threshold_mode="abs", patience=1,
                    factor=0.5) == [1, 1, 1, 1, 0.5]
    # eps: a reduction smaller than eps is skipped
    assert _plateau([1.0, 2.0], patience=0, factor=0.5, eps=1.0) == [1, 1]


def test_plateau_accepts_tensor_metrics_and_round_trips():
    a = sched.ReduceLROnPlateau(_opt(lr=1.0), patience=1)
    for m in (1.0, 2.0):
        a.step(graphnet.tensor(m))
    b = sched.ReduceLROnPlateau(_opt(lr=1.0), patience=5)
    b.load_state_dict(a.state_dict())
    assert (b.best, b.num_bad_epochs, b.patience, b.last_epoch) == (1.0, 1, 1, 2)
    b.step(3.0)
    assert b.get_last_lr() == [0.1]


@pytest.mark.parametrize("kwargs, match", [
    (dict(factor=1.0), "Factor should be < 1.0."),
    (dict(mode="median"), "mode median is unknown!"),
    (dict(threshold_mode="pct"), "threshold mode pct is unknown!"),
    (dict(min_lr=[0.1, 0.2]), "expected 1 min_lrs, got 2"),
])
def test_plateau_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        sched.ReduceLROnPlateau(_opt(), **kwargs)


def test_no_warning_in_normal_use():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _lrs(sched.StepLR(_opt(), step_size=2), 3)


# ---- against PyTorch ---------------------------------------------------------------------------------------------
def _lr_trace(lib, make, metrics, groups=2):
    """Each group's lr after every step of a scheduler built by make(lib.optim.lr_scheduler, optimizer)."""
    params = [lib.tensor([1.0], requires_grad=True) for _ in range(groups)]
    opt = lib.optim.SGD([{"params": [p], "lr": 0.5 * (i + 1)} for i, p in enumerate(params)], lr=0.5)
    scheduler = make(lib.optim.lr_scheduler, opt)
    out = []
    for m in metrics:
        opt.step()
        scheduler.step() if m is None else scheduler.step(m)
        out.append([g["lr"] for g in opt.param_groups])
    return np.array(out)


_METRICS = list(np.random.default_rng(0).permutation(np.r_[np.linspace(1.0, 0.5, 15), np.full(25, 0.6)])) + \
    [0.5 + 1e-5 * i for i in range(20)] + [0.2, 0.19999, 0.3, 0.3, 0.3, 0.3, 0.3]

PLATEAUS = [
    dict(),
    dict(mode="max", factor=0.5, patience=2),
    dict(factor=0.5, patience=1, threshold=0.01, threshold_mode="abs", cooldown=2),
    dict(mode="max", factor=0.3, patience=0, threshold=0.05, threshold_mode="rel", cooldown=1, min_lr=[0.01, 0.2]),
    dict(factor=0.5, patience=0, min_lr=0.01, eps=0.05),
]


@pytest.mark.parametrize("kwargs", PLATEAUS, ids=[str(k) for k in PLATEAUS])
def test_reduce_lr_on_plateau_lr_sequence_equals_pytorchs(kwargs):
    torch = pytest.importorskip("torch")
    make = lambda m, o: m.ReduceLROnPlateau(o, **kwargs)  # noqa: E731
    want = _lr_trace(torch, make, _METRICS)
    assert len(np.unique(want[:, 0])) > 1  # the case reduces at least once
    np.testing.assert_allclose(_lr_trace(graphnet, make, _METRICS), want, rtol=1e-15)


@pytest.mark.parametrize("milestones, gamma", [([3, 7, 7, 12], 0.5), ([0, 2], 0.1), ([20], 0.3)])
def test_multistep_lr_sequence_equals_pytorchs(milestones, gamma):
    torch = pytest.importorskip("torch")
    make = lambda m, o: m.MultiStepLR(o, milestones=milestones, gamma=gamma)  # noqa: E731
    np.testing.assert_allclose(_lr_trace(graphnet, make, [None] * 15), _lr_trace(torch, make, [None] * 15),
                               rtol=1e-15)

"""graphnet.compile never runs a variant whose trace baked in something that has changed since (issue 13, items 1-3):
non-tensor arguments are guarded, optimizer hyperparameters are runtime inputs, module flags, parameter identity and
requires_grad flags are guarded, and the cache of variants is a bounded LRU."""
import copy
import gc
import warnings
import weakref

import numpy as np
import pytest

import graphnet as torch
import graphnet.nn as nn
import graphnet.nn.functional as F
import graphnet.optim as optim


def _compiled_calls(cf):
    """Count the calls that run the last compiled variant's first Program (not the eager function)."""
    prog = cf._last.programs[0]
    counter = [0]
    run = prog.run

    def counting(*a):
        counter[0] += 1
        return run(*a)

    prog.run = counting
    return counter


def _assert_same_parameters(model, twin):
    for p, q in zip(model.parameters(), twin.parameters()):
        np.testing.assert_allclose(p.detach().numpy(), q.detach().numpy(), rtol=1e-5, atol=1e-6)


# ---- 1. non-tensor arguments ---------------------------------------------------------------------------------------
def test_python_floats_are_guarded():
    f = torch.compile(lambda x, s: x * s)
    x = torch.ones(3)
    got = [f(x, s)[0].item() for s in (1.0, 2.0, 3.0, 3.0, 3.0, 2.0, -0.0)]
    assert got == [1.0, 2.0, 3.0, 3.0, 3.0, 2.0, -0.0]
    assert np.signbit(f(x, -0.0)[0].item())


def test_ints_dims_none_strings_tuples_and_keywords_are_guarded():
    g = torch.compile(lambda x, d: x.sum(dim=d))
    x = torch.arange(6.0).reshape(2, 3)
    for d in (0, 0, 1, 1, 1, (0, 1), (0, 1), 0):
        np.testing.assert_allclose(g(x, d).numpy(), x.numpy().sum(axis=d))
    h = torch.compile(lambda x, mode, k=None: x.relu() if mode == "relu" else x * (2 if k is None else k))
    y = torch.tensor([-1.0, 2.0])
    for mode, k, want in [("relu", None, [0, 2]), ("relu", None, [0, 2]), ("scale", None, [-2, 4]),
                          ("scale", None, [-2, 4]), ("scale", 3, [-3, 6]), ("scale", 3, [-3, 6])]:
        np.testing.assert_allclose(h(y, mode, k=k).numpy(), want)


def test_tensors_nested_in_lists_are_inputs_not_constants():
    f = torch.compile(lambda xs: xs[0] + xs[1])
    for a in range(4):
        xs = [torch.full((2,), float(a)), torch.ones(2)]
        np.testing.assert_allclose(f(xs).numpy(), [a + 1.0] * 2)


# ---- 2. optimizer hyperparameters are runtime inputs ----------------------------------------------------------------
def _setup(make_opt, seed=0):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 3))
    opt = make_opt(model)

    def step(x, y):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss

    return model, opt, step


OPTIMIZERS = {
    "sgd": lambda m: optim.SGD(m.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-3),
    "nesterov": lambda m: optim.SGD(m.parameters(), lr=0.1, momentum=0.9, nesterov=True),
    "adam": lambda m: optim.Adam(m.parameters(), lr=0.01),
    "adamw_amsgrad": lambda m: optim.AdamW(m.parameters(), lr=0.01, amsgrad=True),
    "rmsprop": lambda m: optim.RMSprop(m.parameters(), lr=0.01, momentum=0.5, centered=True),
    "adagrad": lambda m: optim.Adagrad(m.parameters(), lr=0.1, lr_decay=0.01),
}


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_learning_rate_zero_leaves_weights_unchanged_without_recompiling(name):
    model, opt, step = _setup(OPTIMIZERS[name])
    cstep = torch.compile(step)
    x, y = torch.randn(8, 6), torch.randint(0, 3, (8,))
    for _ in range(2):
        cstep(x, y)
    runs = _compiled_calls(cstep)
    for g in opt.param_groups:
        g["lr"] = 0.0
    before = [p.detach().clone() for p in model.parameters()]
    cstep(x, y)
    assert runs[0] == 1 and cstep.stats()["variants"] == 1
    for p, b in zip(model.parameters(), before):
        np.testing.assert_array_equal(p.detach().numpy(), b.numpy())


@pytest.mark.parametrize("name", ["sgd", "adam", "rmsprop"])
def test_schedulers_and_manual_changes_match_eager(name):
    """Every hyperparameter the rule computes with follows param_groups at each call, as eagerly."""
    model, opt, step = _setup(OPTIMIZERS[name])
    twin_model, twin_opt, twin_step = _setup(OPTIMIZERS[name])
    twin_model.load_state_dict(model.state_dict())
    cstep = torch.compile(step)
    sched = optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    twin_sched = optim.lr_scheduler.StepLR(twin_opt, step_size=2, gamma=0.5)
    x, y = torch.randn(8, 6), torch.randint(0, 3, (8,))
    for i in range(8):
        if i == 5:
            for o in (opt, twin_opt):
                g = o.param_groups[0]
                if "betas" in g:
                    g["betas"], g["eps"] = (0.5, 0.9), 1e-3
                else:
                    g["momentum"] = 0.3
        got, want = cstep(x, y), twin_step(x, y)
        np.testing.assert_allclose(got.item(), want.item(), rtol=1e-5)
        sched.step()
        twin_sched.step()
    assert cstep.stats()["variants"] == 1
    _assert_same_parameters(model, twin_model)


def test_step_lr_with_gamma_zero_stops_training():
    model, opt, step = _setup(OPTIMIZERS["adam"])
    cstep = torch.compile(step)
    x, y = torch.randn(8, 6), torch.randint(0, 3, (8,))
    cstep(x, y)
    cstep(x, y)
    optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.0).step()
    before = [p.detach().clone() for p in model.parameters()]
    cstep(x, y)
    for p, b in zip(model.parameters(), before):
        np.testing.assert_array_equal(p.detach().numpy(), b.numpy())


def test_structural_changes_recompile_and_stay_correct():
    """nesterov, a new param group or a momentum switched on change the traced update: a new variant is built."""
    model, opt, step = _setup(lambda m: optim.SGD(m[0].parameters(), lr=0.1, momentum=0.9))
    twin, twin_opt, twin_step = _setup(lambda m: optim.SGD(m[0].parameters(), lr=0.1, momentum=0.9))
    twin.load_state_dict(model.state_dict())
    cstep = torch.compile(step)
    x, y = torch.randn(8, 6), torch.randint(0, 3, (8,))
    for i in range(10):
        for o, m in ((opt, model), (twin_opt, twin)):
            if i == 3:
                o.param_groups[0]["nesterov"] = True
            if i == 6:
                o.add_param_group({"params": list(m[2].parameters()), "lr": 0.05})
        np.testing.assert_allclose(cstep(x, y).item(), twin_step(x, y).item(), rtol=1e-5)
    assert cstep.stats()["variants"] == 3
    _assert_same_parameters(model, twin)


def test_loading_optimizer_state_is_seen_by_the_compiled_step():
    model, opt, step = _setup(OPTIMIZERS["adam"])
    cstep = torch.compile(step)
    x, y = torch.randn(8, 6), torch.randint(0, 3, (8,))
    cstep(x, y)
    saved_model, saved_opt = copy.deepcopy(model.state_dict()), copy.deepcopy(opt.state_dict())
    cstep(x, y)
    after_two = cstep(x, y).item()
    model.load_state_dict(saved_model)
    opt.load_state_dict(saved_opt)  # new state tensors: the old variant must not update the old ones
    cstep(x, y)
    np.testing.assert_allclose(cstep(x, y).item(), after_two, rtol=1e-5)


# ---- 3. module flags, parameter identity, requires_grad ------------------------------------------------------------
def test_compiled_function_sees_module_eval_and_train():
    m = nn.Sequential(nn.Linear(32, 32), nn.Dropout(0.5))
    f = torch.compile(lambda x: m(x))
    x = torch.randn(4, 32) + 5
    for _ in range(3):
        assert (f(x) == 0).sum().item() > 0
    m.eval()
    for _ in range(3):
        np.testing.assert_allclose(f(x).detach().numpy(), m(x).detach().numpy(), rtol=1e-5, atol=1e-6)
    m.train()
    assert (f(x) == 0).sum().item() > 0
    assert f.stats()["variants"] == 2


def test_compiled_function_sees_replaced_parameters_and_frozen_ones():
    m = nn.Linear(3, 2)

    def loss_fn(x):
        loss = m(x).sum()
        loss.backward()
        return loss

    f = torch.compile(loss_fn)
    x = torch.ones(1, 3)
    f(x)
    f(x)
    m.weight = nn.Parameter(torch.zeros(2, 3))
    m.bias = nn.Parameter(torch.zeros(2))
    assert f(x).item() == 0.0 and f(x).item() == 0.0
    m.weight.requires_grad_(False)
    m.weight.grad = m.bias.grad = None
    f(x)
    f(x)
    assert m.weight.grad is None and m.bias.grad is not None


def test_compiled_module_sees_replaced_parameters():
    m = nn.Linear(3, 2)
    cm = torch.compile(m)
    x = torch.ones(1, 3)
    with torch.no_grad():
        cm(x)
        m.bias = nn.Parameter(torch.full((2,), 7.0))
        m.weight = nn.Parameter(torch.zeros(2, 3))
        np.testing.assert_allclose(cm(x).numpy(), [[7.0, 7.0]])


# ---- the cache of variants ------------------------------------------------------------------------------------------
def test_evicted_variants_are_freed():
    f = torch.compile(lambda x, k: x * k, cache_size_limit=2)
    x = torch.ones(4)
    refs = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for k in range(5):
            f(x, k)
            f(x, k)
            refs.append(weakref.ref(f._last.programs[0]))
            np.testing.assert_allclose(f(x, k).numpy(), [k] * 4)
    gc.collect()
    assert [r() is None for r in refs] == [True, True, True, False, False]
    assert f.stats()["variants"] == 2
    message = next(str(w.message) for w in caught if "cache_size_limit (2)" in str(w.message))
    assert "k changed from 0 to 2" in message

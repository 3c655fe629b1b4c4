"""LBFGS (with and without the strong-Wolfe line search), Rprop and ASGD against real PyTorch on copied weights in
float64: weights step by step, eager and (Rprop, ASGD) compiled, state_dict layout and round trip, errors."""
import inspect

import numpy as np
import pytest

import graphnet

torch = pytest.importorskip("torch")

from tests.optim.test_optimizers_more import Trainer, _inputs, _messages_match, _model, _p  # noqa: E402

LIBS = (torch, graphnet)
TOL = 1e-10


def _assert_weights(got, ref, what):
    for g, r in zip(got.parameters(), ref.parameters()):
        np.testing.assert_allclose(g.detach().numpy(), r.detach().numpy(), rtol=0, atol=TOL, err_msg=what)


# ---- Rprop, ASGD: per-parameter rules, eager and compiled ----------------------------------------------------------
CASES = [
    ("Rprop", dict(lr=0.05)),
    ("Rprop", dict(lr=0.02, etas=(0.3, 1.5), step_sizes=(1e-3, 0.04), maximize=True)),
    ("ASGD", dict(lr=0.1)),
    ("ASGD", dict(lr=0.2, lambd=0.01, alpha=0.5, t0=2, weight_decay=0.1, maximize=True)),
]


@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "compiled"])
@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[0]}-{'-'.join(map(str, c[1].values()))}")
def test_matches_torch_step_by_step(case, compiled):
    name, kwargs = case
    ref, run = Trainer(torch, name, kwargs), Trainer(graphnet, name, kwargs, compiled=compiled)
    for i, x in enumerate(_inputs(6)):
        ref.step(x)
        run.step(x)
        _assert_weights(run.model, ref.model, f"{name} step {i}")
    assert len(run.opt.state) == 4
    if compiled:
        assert run.fn.stats()["variants"] == 1  # etas, step sizes, eta, mu, lr are runtime inputs: no retrace


def test_asgd_average_starts_after_t0():
    w = {lib: lib.tensor([1.0, -2.0], dtype=lib.float64, requires_grad=True) for lib in LIBS}
    opts = {lib: lib.optim.ASGD([w[lib]], lr=0.1, t0=3) for lib in LIBS}
    for k in range(8):
        for lib in LIBS:
            w[lib].grad = lib.tensor([1.0, 0.5 * k], dtype=lib.float64)
            opts[lib].step()
        ref, got = opts[torch].state[w[torch]], opts[graphnet].state[w[graphnet]]
        for key in ("ax", "eta", "mu", "step"):
            np.testing.assert_allclose(got[key].numpy(), ref[key].numpy(), rtol=1e-15, atol=0, err_msg=f"{key} {k}")
    assert float(ref["mu"]) == pytest.approx(1 / 5, rel=1e-7)  # 1 / (t - t0) once t > t0 + 1 (float32 state)


# ---- LBFGS ----------------------------------------------------------------------------------------------------------
def _closure(lib, model, opt, x, y):
    def closure():
        opt.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        return loss
    return closure


@pytest.mark.parametrize("kwargs", [dict(lr=0.8), dict(line_search_fn="strong_wolfe"),
                                    dict(lr=0.5, max_iter=4, history_size=2),
                                    dict(max_iter=7, max_eval=9, history_size=3, line_search_fn="strong_wolfe")],
                         ids=["plain", "strong_wolfe", "short-history", "strong_wolfe-short"])
def test_lbfgs_model_matches_torch(kwargs):
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((8, 4)), rng.standard_normal((8, 2))
    models = {lib: _model(lib, "float64") for lib in LIBS}
    opts = {lib: lib.optim.LBFGS(models[lib].parameters(), **kwargs) for lib in LIBS}
    closures = {lib: _closure(lib, models[lib], opts[lib], lib.tensor(x), lib.tensor(y)) for lib in LIBS}
    for i in range(3):
        losses = {lib: opts[lib].step(closures[lib]).item() for lib in LIBS}
        assert losses[graphnet] == pytest.approx(losses[torch], rel=1e-12, abs=TOL)
        _assert_weights(models[graphnet], models[torch], f"step {i}")
        ref, got = (opts[lib].state[next(iter(models[lib].parameters()))] for lib in LIBS)
        assert got["func_evals"] == ref["func_evals"] and got["n_iter"] == ref["n_iter"]
        assert len(got["old_dirs"]) == len(ref["old_dirs"])
    assert losses[torch] < float((torch.tensor(y) ** 2).mean())  # it did optimize (below the zero predictor's loss)


def _rosenbrock(w):
    a, b = 1 - w[0], w[1] - w[0] * w[0]  # products, not pow: pow's backward rounds differently from PyTorch's
    return a * a + 100 * b * b


@pytest.mark.parametrize("line_search_fn", [None, "strong_wolfe"])
def test_lbfgs_rosenbrock_matches_torch(line_search_fn):
    ws, opts, closures = {}, {}, {}
    for lib in LIBS:
        w = ws[lib] = lib.tensor([-1.5, 2.0], dtype=lib.float64, requires_grad=True)
        opt = opts[lib] = lib.optim.LBFGS([w], lr=1 if line_search_fn else 0.1, line_search_fn=line_search_fn)

        def closure(w=w, opt=opt):
            opt.zero_grad()
            loss = _rosenbrock(w)
            loss.backward()
            return loss
        closures[lib] = closure
    for i in range(6 if line_search_fn else 4):  # plain steps on this valley amplify 1-ulp differences
        for lib in LIBS:
            opts[lib].step(closures[lib])
        np.testing.assert_allclose(ws[graphnet].detach().numpy(), ws[torch].detach().numpy(), rtol=0, atol=TOL,
                                   err_msg=f"step {i}")
    if line_search_fn:
        np.testing.assert_allclose(ws[graphnet].detach().numpy(), [1.0, 1.0], atol=1e-5)  # converged to the minimum


def _to_graphnet(value):
    if isinstance(value, torch.Tensor):
        return graphnet.tensor(value.numpy(), dtype=getattr(graphnet, str(value.dtype).split(".")[1]))
    if isinstance(value, dict):
        return {k: _to_graphnet(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_to_graphnet(v) for v in value]
    return value


# L-BFGS on a small net amplifies 1-ulp differences (matmul summation order) by ~100x per 20 iterations, so the LBFGS
# cases keep to a few dozen iterations, where the two libraries agree to 1e-10.
@pytest.mark.parametrize("name,kwargs", [("LBFGS", dict(line_search_fn="strong_wolfe", history_size=4, max_iter=5)),
                                         ("LBFGS", dict(lr=0.5, max_iter=3)),
                                         ("Rprop", dict(lr=0.05)), ("ASGD", dict(lr=0.1, t0=1))])
def test_torch_state_dict_loads_and_training_continues_identically(name, kwargs):
    """Train in torch, save; load into a fresh torch and a fresh graphnet optimizer on copies of the weights (loading
    casts state to the parameters' dtype in both), then both continue step for step."""
    rng = np.random.default_rng(2)
    x, y = rng.standard_normal((8, 4)), rng.standard_normal((8, 2))
    first = _model(torch, "float64")
    first_opt = getattr(torch.optim, name)(first.parameters(), **kwargs)
    first_closure = _closure(torch, first, first_opt, torch.tensor(x), torch.tensor(y))
    for _ in range(2):
        first_opt.step(first_closure)
    saved = first_opt.state_dict()
    models = {lib: _model(lib, "float64") for lib in LIBS}
    opts, closures = {}, {}
    for lib in LIBS:
        with lib.no_grad():
            for p, r in zip(models[lib].parameters(), first.parameters()):
                p.copy_(lib.tensor(r.detach().numpy()))
        opts[lib] = getattr(lib.optim, name)(models[lib].parameters(), **kwargs)
        opts[lib].load_state_dict(saved if lib is torch else _to_graphnet(saved))
        closures[lib] = _closure(lib, models[lib], opts[lib], lib.tensor(x), lib.tensor(y))
    assert opts[graphnet].state_dict()["param_groups"] == saved["param_groups"]
    assert {k: sorted(v) for k, v in opts[graphnet].state_dict()["state"].items()} == {
        k: sorted(v) for k, v in saved["state"].items()}
    for i in range(3):
        for lib in LIBS:
            opts[lib].step(closures[lib])
        _assert_weights(models[graphnet], models[torch], f"{name} step {i} after loading")


@pytest.mark.parametrize("name", ["LBFGS", "Rprop", "ASGD"])
def test_signature_and_state_layout_match_torch(name):
    def sig(cls):
        return [(p.name, p.kind, p.default) for p in inspect.signature(cls).parameters.values()]

    assert sig(getattr(graphnet.optim, name)) == sig(getattr(torch.optim, name))
    saved = []
    for lib in LIBS:
        p = lib.tensor([1.0, -2.0], dtype=lib.float64, requires_grad=True)
        opt = getattr(lib.optim, name)([p])

        def closure(p=p, opt=opt):
            opt.zero_grad()
            loss = (p ** 4).sum()
            loss.backward()
            return loss
        for _ in range(2):
            opt.step(closure)
        saved.append(opt.state_dict())
    ref, got = saved
    assert got["param_groups"] == ref["param_groups"]
    assert {k: list(v) for k, v in got["state"].items()} == {k: list(v) for k, v in ref["state"].items()}


@pytest.mark.parametrize("make", [
    lambda lib: lib.optim.LBFGS(_p(lib), lr=-1),
    lambda lib: lib.optim.LBFGS([{"params": _p(lib)}, {"params": _p(lib), "lr": 0.1}]),
    lambda lib: _lbfgs_step(lib, line_search_fn="armijo"),
    lambda lib: lib.optim.Rprop(_p(lib), lr=-1),
    lambda lib: lib.optim.Rprop(_p(lib), etas=(1.2, 0.5)),
    lambda lib: lib.optim.Rprop(_p(lib), etas=(0.5, 1.0)),
    lambda lib: lib.optim.ASGD(_p(lib), lr=-1),
    lambda lib: lib.optim.ASGD(_p(lib), weight_decay=-0.5),
], ids=["lbfgs-lr", "lbfgs-groups", "lbfgs-line-search", "rprop-lr", "rprop-etas", "rprop-etas-1", "asgd-lr",
        "asgd-weight-decay"])
def test_errors_match_torch(make):
    _messages_match(make)


def _lbfgs_step(lib, **kwargs):
    """One LBFGS step on sum(p^2) from p = [1]."""
    p = lib.ones(1, dtype=lib.float64, requires_grad=True)
    opt = lib.optim.LBFGS([p], **kwargs)

    def closure():
        opt.zero_grad()
        loss = (p ** 2).sum()
        loss.backward()
        return loss
    return opt.step(closure)


def test_lbfgs_step_needs_a_closure_and_runs_eagerly_only():
    with pytest.raises(ValueError, match=r"^Invalid learning rate: -1$"):
        graphnet.optim.LBFGS(_p(graphnet), lr=-1)
    w = graphnet.tensor([1.0, 2.0], dtype=graphnet.float64, requires_grad=True)
    opt = graphnet.optim.LBFGS([w])
    with pytest.raises(TypeError, match=r"step\(\) missing 1 required positional argument: 'closure'"):
        opt.step()

    def closure():
        opt.zero_grad()
        loss = (w ** 2).sum()
        loss.backward()
        return loss

    step = graphnet.compile(lambda: opt.step(closure), fullgraph=True)
    step()  # the first call runs eagerly
    with pytest.raises(graphnet.GraphBreak, match="LBFGS.step under graphnet.compile"):
        step()
    np.testing.assert_allclose(w.detach().numpy(), [0.0, 0.0], atol=1e-12)  # eager L-BFGS solved the quadratic


def test_lbfgs_under_compile_without_fullgraph_falls_back_to_eager_with_the_reason():
    w = graphnet.tensor([1.0, 2.0], dtype=graphnet.float64, requires_grad=True)
    opt = graphnet.optim.LBFGS([w], max_iter=1)

    def closure():
        opt.zero_grad()
        loss = (w ** 2).sum()
        loss.backward()
        return loss

    step = graphnet.compile(lambda: opt.step(closure))
    step()
    with pytest.warns(UserWarning, match="falling back to eager: LBFGS.step under graphnet.compile"):
        step()
    ref = torch.tensor([1.0, 2.0], dtype=torch.float64, requires_grad=True)
    ref_opt = torch.optim.LBFGS([ref], max_iter=1)

    def ref_closure():
        ref_opt.zero_grad()
        loss = (ref ** 2).sum()
        loss.backward()
        return loss
    for _ in range(2):
        ref_opt.step(ref_closure)
    np.testing.assert_allclose(w.detach().numpy(), ref.detach().numpy(), rtol=0, atol=1e-15)

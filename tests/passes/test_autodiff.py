"""autodiff: the joint graph's gradients equal eager autograd's, op by op (same OpDef.grad rules) and on an MLP."""
import numpy as np
import pytest

import graphnet as torch
from graphnet.core.bind import bind
from graphnet.ir.interpreter import interpret
from graphnet.ir.ops import OPS
from graphnet.ir.verify import verify
from graphnet.passes import autodiff, split


def _unary(name):
    return lambda a: bind(name, a)


def _reduce(name):
    return lambda a: bind(name, a, dims=(1,), keepdim=False)


def _nnf(fn_name, *args, **kwargs):
    def run(*ts):
        import graphnet.nn.functional as F

        if not hasattr(F, fn_name):
            pytest.skip(f"graphnet.nn.functional.{fn_name} is not available yet")
        return getattr(F, fn_name)(*ts, *args, **kwargs)

    return run


def _idx(*values):
    return torch.tensor(list(values))


# op name -> (function of the float64 inputs, input shapes, positive inputs?)
CASES = {
    **{n: (_unary(n), [(3, 4)], False) for n in ("neg", "abs", "sign", "exp", "sin", "cos", "tanh", "sigmoid",
                                                   "relu", "floor", "trunc", "copy")},
    **{n: (_unary(n), [(3, 4)], True) for n in ("log", "sqrt", "rsqrt")},
    **{n: (lambda a, b, n=n: bind(n, a, b), [(3, 4), (4,)], False) for n in ("add", "sub", "mul", "maximum",
                                                                              "minimum")},
    "div": (lambda a, b: bind("div", a, b), [(3, 4), (3, 1)], True),
    "pow": (lambda a, b: bind("pow", a, b), [(3, 4), (4,)], True),
    "where": (lambda a, b: bind("where", bind("gt", a, 0.0), a, b), [(3, 4), (3, 4)], False),
    "cast": (lambda a: bind("cast", a, dtype=torch.float32), [(3, 4)], False),
    "clamp": (lambda a: bind("clamp", a, min=-0.5, max=0.5), [(3, 4)], False),
    "reshape": (lambda a: bind("reshape", a, shape=(2, 6)), [(3, 4)], False),
    "permute": (lambda a: bind("permute", a, dims=(2, 0, 1)), [(2, 3, 4)], False),
    "expand": (lambda a: bind("expand", a, shape=(2, 3, 4)), [(3, 1)], False),
    "flip": (lambda a: a.flip(0), [(3, 4)], False),
    "cat": (lambda a, b: torch.cat([a, b], 1), [(3, 2), (3, 4)], False),
    "getitem": (lambda a: a[1:3, ::2], [(4, 5)], False),
    "index": (lambda a: a[_idx(0, 2, 2)], [(4, 5)], False),
    "gather": (lambda a: torch.gather(a, 1, torch.tensor([[0, 0], [1, 0], [2, 1]])), [(3, 4)], False),
    "matmul": (lambda a, b: bind("matmul", a, b), [(3, 4), (4, 2)], False),
    **{n: (_reduce(n), [(3, 4)], n == "prod") for n in ("sum", "mean", "prod", "amax", "amin")},
    "sum_to": (lambda a: bind("sum_to", a, shape=(1, 4)), [(3, 4)], False),
    "pad": (_nnf("pad", (1, 2)), [(3, 4)], False),
    "conv2d": (_nnf("conv2d", padding=1), [(1, 2, 5, 5), (3, 2, 3, 3)], False),
    "max_pool2d": (_nnf("max_pool2d", 2), [(1, 2, 4, 4)], False),
    "avg_pool2d": (_nnf("avg_pool2d", 2), [(1, 2, 4, 4)], False),
}


def _inputs(shapes, positive):
    rng = np.random.default_rng(1)
    arrays = [rng.uniform(0.5, 2.0, s) if positive else rng.standard_normal(s) for s in shapes]
    return [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in arrays]


def _loss_fn(fn, weights):
    """A scalar loss with distinct weights per output element, so every gradient entry is exercised."""

    def loss(*ts):
        out = fn(*ts)
        return (out.to(torch.float64) * weights).sum()

    return loss


def _autodiff_grads(loss, inputs):
    traced = torch.trace(loss, *inputs)
    joint = autodiff(traced.graph)
    verify(joint)
    outs = interpret(joint, [t.detach() for t in inputs])
    grads = joint.meta["autodiff"]["grads"]
    return joint, outs[0], [outs[grads[v.name]] if v.name in grads else None for v in joint.inputs_by_role("input")]


@pytest.mark.parametrize("name", sorted(CASES))
def test_op_gradient_matches_eager(name):
    if name not in OPS:
        pytest.skip(f"op {name} is not registered yet")
    fn, shapes, positive = CASES[name]
    inputs = _inputs(shapes, positive)
    with torch.no_grad():
        shape = tuple(fn(*inputs).shape)
    weights = torch.tensor(np.random.default_rng(2).standard_normal(shape), dtype=torch.float64)
    loss = _loss_fn(fn, weights)
    eager = loss(*inputs)
    eager.backward()
    joint, value, grads = _autodiff_grads(loss, inputs)
    forward_ops = {n.op for n in joint.nodes if n.meta.get("phase") == "forward"}
    assert name in forward_ops, f"the case for {name} does not exercise op {name}"
    np.testing.assert_allclose(value, eager.detach().numpy(), rtol=1e-6)
    for t, g in zip(inputs, grads):
        np.testing.assert_allclose(g, t.grad.numpy(), rtol=1e-6, atol=1e-8)


def test_core_op_families_are_covered():
    core = {"neg", "exp", "log", "add", "mul", "div", "pow", "where", "sum", "reshape", "permute", "expand", "sum_to"}
    assert core <= set(CASES) and core <= set(OPS)


def _mm(a, b):
    return bind("matmul", a, b) if "matmul" in OPS else (a.unsqueeze(2) * b.unsqueeze(0)).sum(1)


def mlp_loss(x, w1, b1, w2):
    """x @ w1 + b1 -> relu -> @ w2 -> mean of logsumexp minus the first logit (a cross-entropy-like loss)."""
    logits = _mm((_mm(x, w1) + b1).relu(), w2)
    top = logits.amax(1, keepdim=True)
    lse = (logits - top).exp().sum(1).log() + top.reshape(logits.shape[0])
    return (lse - logits[:, 0]).mean() if "getitem" in OPS else lse.mean()


def mlp_inputs():
    rng = np.random.default_rng(3)
    x = torch.tensor(rng.standard_normal((6, 5)))
    params = [torch.tensor(rng.standard_normal(s), requires_grad=True) for s in ((5, 7), (7,), (7, 3))]
    return [x] + params


def test_mlp_gradients_match_eager_and_finite_differences():
    inputs = mlp_inputs()
    loss = mlp_loss(*inputs)
    loss.backward()
    joint, value, grads = _autodiff_grads(mlp_loss, inputs)
    np.testing.assert_allclose(value, loss.detach().numpy(), rtol=1e-10)
    for t, g in zip(inputs[1:], grads[1:]):
        np.testing.assert_allclose(g, t.grad.numpy(), rtol=1e-8, atol=1e-10)
    assert torch.autograd.gradcheck(mlp_loss, inputs)
    assert grads[0] is None and set(joint.meta["autodiff"]["grads"]) == {"w1", "b1", "w2"}


def test_joint_graph_contract_and_phases():
    inputs = mlp_inputs()
    joint = autodiff(torch.trace(mlp_loss, *inputs).graph)
    info = joint.meta["autodiff"]
    assert info["n_forward_outputs"] == 1 and set(info["grads"]) == {"w1", "b1", "w2"}
    phases = {n.meta["phase"] for n in joint.nodes if n.op != "output"}
    assert phases == {"forward", "backward"}
    compute = [n.meta["phase"] for n in joint.nodes if n.op not in ("input", "constant", "output")]
    assert compute == sorted(compute, key=lambda p: p == "backward"), "forward nodes must precede backward ones"


def test_explicit_wrt_and_non_scalar_output_seed():
    x = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    graph = torch.trace(lambda x: x.tanh() * 2.0, x).graph
    joint = autodiff(graph, wrt=["x"])
    verify(joint)
    seed = joint.inputs_by_role("grad_output")
    assert [v.shape for v in seed] == [(3, 4)]
    g = np.random.default_rng(0).standard_normal((3, 4))
    out = interpret(joint, {"x": x.detach().numpy(), seed[0].name: g})
    np.testing.assert_allclose(out[1], g * 2 * (1 - np.tanh(x.detach().numpy()) ** 2), rtol=1e-12)


def test_unused_input_gets_zero_gradient():
    a, b = (torch.randn(2, 2, dtype=torch.float64, requires_grad=True) for _ in range(2))
    joint = autodiff(torch.trace(lambda a, b: a.sum(), a, b).graph)
    outs = interpret(joint, [a.detach(), b.detach()])
    np.testing.assert_array_equal(outs[joint.meta["autodiff"]["grads"]["b"]], np.zeros((2, 2)))


def test_split_forward_and_backward_reproduce_the_joint_graph():
    inputs = mlp_inputs()
    joint = autodiff(torch.trace(mlp_loss, *inputs).graph)
    fwd, bwd = split(joint)
    verify(fwd)
    verify(bwd)
    feeds = [t.detach() for t in inputs]
    joint_out = interpret(joint, feeds)
    fwd_out = interpret(fwd, feeds)
    assert len(fwd_out) == 1 + len(fwd.meta["saved"])
    saved = dict(zip(fwd.meta["saved"], fwd_out[1:]))
    bwd_out = interpret(bwd, saved)
    np.testing.assert_allclose(fwd_out[0], joint_out[0])
    for name, i in bwd.meta["grads"].items():
        np.testing.assert_allclose(bwd_out[i], joint_out[joint.meta["autodiff"]["grads"][name]])
    assert all(v.role == "saved" for v in bwd.inputs)


def test_autodiff_does_not_mutate_its_input():
    graph = torch.trace(mlp_loss, *mlp_inputs()).graph
    before = str(graph)
    autodiff(graph)
    assert str(graph) == before

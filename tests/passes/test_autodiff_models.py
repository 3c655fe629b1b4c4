"""Graph-level gradients (autodiff on the traced forward, run by the interpreter) equal eager autograd's, for the
tutorial LeNet and the d2l-style blocks."""
import numpy as np
import pytest

import graphnet as torch
import graphnet.nn as nn
import graphnet.nn.functional as F
from examples.custom_blocks import MLP, MySequential, NestMLP
from examples.lenet import LeNet
from graphnet.ir.interpreter import interpret
from graphnet.passes import autodiff, prune_grads
from graphnet.passes.pipeline import run_pipeline

MODELS = {
    "lenet": (LeNet, (4, 1, 32, 32)),
    "mlp": (MLP, (3, 20)),
    "my_sequential": (lambda: MySequential(nn.Linear(20, 256), nn.ReLU(), nn.Linear(256, 10)), (3, 20)),
    "nest_mlp": (NestMLP, (3, 20)),
    "chimera": (lambda: nn.Sequential(NestMLP(), nn.Linear(16, 20), MLP()), (3, 20)),
}


@pytest.mark.parametrize("name", list(MODELS))
def test_graph_gradients_equal_eager_gradients(name):
    make, shape = MODELS[name]
    model = make().double()
    x = torch.randn(*shape, dtype=torch.float64)
    model(x).sum().backward()
    eager = {n: p.grad.numpy().copy() for n, p in model.named_parameters()}
    traced = torch.trace(lambda t: model(t).sum(), x, params=dict(model.named_parameters()))
    joint = autodiff(traced.graph)
    grads = joint.meta["autodiff"]["grads"]
    feeds = {"t": x.numpy(), **{n: p.detach().numpy() for n, p in model.named_parameters()}}
    outs = interpret(joint, {v.name: feeds.get(v.producer.attrs["target"], feeds.get(v.name))
                             for v in joint.inputs})
    by_target = {v.name: v.producer.attrs["target"] for v in joint.inputs}
    for input_name, index in grads.items():
        np.testing.assert_allclose(outs[index], eager[by_target[input_name]], rtol=1e-9, atol=1e-12)
    assert len(grads) == len(eager)


def test_frozen_backbone_loses_its_weight_gradients_and_their_matmuls():
    model = NestMLP()
    for p in model.net.parameters():
        p.requires_grad = False
    x = torch.randn(8, 20)
    traced = torch.trace(lambda t: model(t).sum(), x, params=dict(model.named_parameters()))
    full = autodiff(traced.graph, wrt=list(traced.graph.inputs_by_role("param")))
    pruned = prune_grads(full)
    kept = {v.producer.attrs["target"] for v in pruned.inputs if v.name in pruned.meta["autodiff"]["grads"]}
    assert kept == {"linear.weight", "linear.bias"}
    matmuls = lambda g: sum(n.op == "matmul" for n in g.nodes)  # noqa: E731
    assert matmuls(pruned) < matmuls(full)
    assert pruned.meta["prune_grads"]["nodes_removed"] > 0


def test_lenet_training_pipeline_runs_verified_with_a_report():
    from graphnet.passes.pipeline import format_report

    model = LeNet()
    x, y = torch.randn(4, 1, 32, 32), torch.randint(0, 10, (4,))
    traced = torch.trace(lambda a, b: F.cross_entropy(model(a), b), x, y, params=dict(model.named_parameters()))
    optimized, report = run_pipeline(autodiff(traced.graph), verify=True)
    names = [r["name"] for r in report]
    assert names[-3:] == ["fuse", "hfuse", "plan_memory"]
    plan = optimized.meta["plan_memory"]
    assert plan["peak_bytes_after"] < plan["peak_bytes_before"]
    assert "fuse" in format_report(report)

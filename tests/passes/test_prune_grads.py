"""prune_grads: frozen layers lose their weight-gradient work; inference graphs keep no backward and no saved values."""
import numpy as np
import pytest

import graphnet as torch
from graphnet.ir.interpreter import interpret
from graphnet.ir.verify import verify
from graphnet.passes import autodiff, prune_grads, split


def _mm(a, b):
    return torch.matmul(a, b) if hasattr(torch, "matmul") else (a.unsqueeze(2) * b.unsqueeze(0)).sum(1)


def two_layer(x, w1, b1, w2):
    return (_mm((_mm(x, w1) + b1).relu(), w2) ** 2).mean()


@pytest.fixture
def joint():
    rng = np.random.default_rng(0)
    x = torch.tensor(rng.standard_normal((4, 6)))
    params = [torch.tensor(rng.standard_normal(s), requires_grad=True) for s in ((6, 5), (5,), (5, 3))]
    graph = autodiff(torch.trace(two_layer, x, *params).graph)
    return graph, [x] + params


def _backward_readers(graph, name):
    v = graph.input(name)
    return [n for n in v.users if n.meta.get("phase") == "backward"]


def test_frozen_first_layer_loses_its_weight_gradient_work(joint):
    graph, inputs = joint
    assert _backward_readers(graph, "x"), "the full joint graph computes dW1 from x"
    pruned = prune_grads(graph, ["w2"])
    verify(pruned)
    assert not _backward_readers(pruned, "x"), "dW1 = x^T @ dh1 must be gone"
    assert set(pruned.meta["autodiff"]["grads"]) == {"w2"}
    report = pruned.meta["prune_grads"]
    assert report["nodes_removed"] > 0 and report["saved_bytes_avoided"] > 0
    assert "x" in report["saved_before"] and "x" not in report["saved_after"]
    full = interpret(graph, [t.detach() for t in inputs])
    part = interpret(pruned, [t.detach() for t in inputs])
    np.testing.assert_allclose(part[1], full[graph.meta["autodiff"]["grads"]["w2"]])
    np.testing.assert_allclose(part[0], full[0])


def test_default_request_follows_requires_grad(joint):
    graph, _ = joint
    assert set(prune_grads(graph).meta["autodiff"]["grads"]) == {"w1", "b1", "w2"}


def test_inference_graph_has_no_backward_nodes_and_no_saved_values(joint):
    graph, inputs = joint
    inference = prune_grads(graph, [])
    verify(inference)
    assert not [n for n in inference.nodes if n.meta.get("phase") == "backward"]
    assert inference.meta["prune_grads"]["saved_after"] == []
    fwd, bwd = split(inference)
    assert fwd.meta["saved"] == [] and len(fwd.outputs) == 1
    np.testing.assert_allclose(interpret(inference, [t.detach() for t in inputs])[0],
                               two_layer(*inputs).detach().numpy())


def test_prune_grads_is_pure_and_checks_its_arguments(joint):
    graph, _ = joint
    before = str(graph)
    prune_grads(graph, ["w2"])
    assert str(graph) == before
    with pytest.raises(ValueError, match=r"prune_grads: no gradient for \['nope'\]"):
        prune_grads(graph, ["nope"])
    with pytest.raises(ValueError, match="expected a joint graph"):
        prune_grads(torch.trace(lambda a: a * 2, torch.ones(2)).graph)

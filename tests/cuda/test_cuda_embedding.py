"""Embedding on the device: the row lookup and its scatter-add adjoint run device kernels (no host fallback),
match the CPU, and a bad id raises the CPU's IndexError, eager and compiled."""
import numpy as np
import pytest

import graphnet
import graphnet.nn as nn
from graphnet.runtime import cuda_backend

pytestmark = pytest.mark.cuda
RNG = np.random.default_rng(3)


@pytest.fixture(autouse=True)
def _no_host_fallback():
    before = {k: cuda_backend.FALLBACKS.get(k, 0) for k in ("embedding", "embedding_backward")}
    yield
    assert {k: cuda_backend.FALLBACKS.get(k, 0) for k in before} == before


def test_lookup_and_gradient_match_the_cpu():
    w = RNG.standard_normal((6, 3)).astype(np.float32)
    ids = np.array([[5, 0, 5], [2, 5, 1]])
    g = RNG.standard_normal((2, 3, 3)).astype(np.float32)
    results = []
    for dev in ("cpu", "cuda"):
        weight = graphnet.tensor(w, device=dev, requires_grad=True)
        out = nn.functional.embedding(graphnet.tensor(ids, device=dev), weight)
        (out * graphnet.tensor(g, device=dev)).sum().backward()
        results.append((out.detach().cpu().numpy(), weight.grad.cpu().numpy()))
    np.testing.assert_allclose(results[1][0], results[0][0])
    np.testing.assert_allclose(results[1][1], results[0][1], rtol=1e-6)


@pytest.mark.parametrize("bad", [6, -2])
def test_bad_id_raises_the_cpu_error(bad):
    emb = nn.Embedding(6, 2).cuda()
    with pytest.raises(IndexError, match=rf"embedding: id {bad} is not in \[0, 6\)"):
        emb(graphnet.tensor([[0, bad]], device="cuda"))


def test_compiled_on_the_device_matches_eager_and_checks_ids():
    emb = nn.Embedding(6, 2).cuda()
    compiled = graphnet.compile(emb)
    ids = graphnet.tensor([[1, 5]], device="cuda")
    compiled(ids)
    np.testing.assert_allclose(compiled(ids).detach().cpu().numpy(), emb(ids).detach().cpu().numpy())
    with pytest.raises(IndexError, match=r"embedding: id 7 is not in \[0, 6\)"):
        compiled(graphnet.tensor([[1, 7]], device="cuda"))

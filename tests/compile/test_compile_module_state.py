"""compile(model) traces forward under the caller's grad mode (code may branch on is_grad_enabled(), as d2l's
from-scratch BatchNorm does); a forward that rebinds a plain tensor attribute or a buffer to a traced tensor runs
eagerly (before, the trace leaked a symbolic tensor into the module), and in-place buffer updates compile."""
import warnings

import numpy as np
import pytest

import graphnet
from graphnet import nn


class GradModeBranch(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(3, 3)

    def forward(self, x):
        return self.lin(x) * (2.0 if graphnet.is_grad_enabled() else -1.0)


def test_forward_sees_the_callers_grad_mode():
    m = GradModeBranch()
    compiled, x = graphnet.compile(m), graphnet.randn(2, 3)
    for _ in range(2):
        out = compiled(x)
        np.testing.assert_allclose(out.detach().numpy(), m(x).detach().numpy(), rtol=1e-6)
        out.sum().backward()
    assert compiled.stats()["kernels"] > 0
    np.testing.assert_allclose(m.lin.bias.grad.numpy(), np.full(3, 2 * 2 * 2.0), rtol=1e-6)
    with graphnet.no_grad():
        np.testing.assert_allclose(compiled(x).numpy(), m(x).numpy(), rtol=1e-6)


class RunningMeanAttr(nn.Module):
    """Keeps a running mean in a plain tensor attribute or a buffer, rebound (or updated in place) in forward."""

    def __init__(self, buffer, inplace=False):
        super().__init__()
        self.inplace = inplace
        if buffer:
            self.register_buffer("mean", graphnet.zeros(3))
        else:
            self.mean = graphnet.zeros(3)

    def forward(self, x):
        new = 0.9 * self.mean + 0.1 * x.mean(0)
        if self.inplace:
            self.mean.copy_(new)
        else:
            self.mean = new
        return x - self.mean


@pytest.mark.parametrize("compile_what", ["model", "step"])
@pytest.mark.parametrize("buffer", [False, True])
def test_rebound_state_runs_eagerly_with_a_warning_and_stays_correct(compile_what, buffer):
    m, ref = RunningMeanAttr(buffer), RunningMeanAttr(buffer)
    x = graphnet.randn(4, 3)
    fn = graphnet.compile(m) if compile_what == "model" else graphnet.compile(lambda x: m(x) * 2)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(3):
            out = fn(x)
            expect = ref(x) * (1 if compile_what == "model" else 2)
            np.testing.assert_allclose(out.numpy(), expect.numpy(), rtol=1e-6)
    kind, remedy = ("buffer", "self.mean.copy_(...)") if buffer else ("plain attribute", "register_buffer('mean'")
    assert any(f"RunningMeanAttr.mean, a {kind}" in str(w.message) and remedy in str(w.message) for w in caught)
    assert m.mean._proxy is None
    np.testing.assert_allclose(m.mean.numpy(), ref.mean.numpy(), rtol=1e-6)


def test_the_same_state_updated_in_place_in_a_buffer_compiles():
    m, ref = RunningMeanAttr(True, inplace=True), RunningMeanAttr(True, inplace=True)
    compiled, x = graphnet.compile(m), graphnet.randn(4, 3)
    for _ in range(3):
        np.testing.assert_allclose(compiled(x).numpy(), ref(x).numpy(), rtol=1e-6)
    assert compiled.stats()["kernels"] > 0
    np.testing.assert_allclose(m.mean.numpy(), ref.mean.numpy(), rtol=1e-6)


def test_fullgraph_raises_the_graph_break():
    with pytest.raises(graphnet.GraphBreak, match="plain attribute"):
        graphnet.compile(RunningMeanAttr(False), fullgraph=True)(graphnet.randn(4, 3))

"""Test set-up: a fixed seed per test, and float64 finite-difference helpers shared by the op tests."""
import numpy as np
import pytest

import graphnet


@pytest.fixture(autouse=True)
def _seed():
    graphnet.manual_seed(0)
    np.random.seed(0)


class BadIndexStep:
    """A compiled SGD training step of nn.Linear(4, 3) on `device` whose loss reads `index` (labels, gather
    indices), next to an eager twin that starts from the same weights."""

    def __init__(self, loss_fn, device="cpu"):
        self.device = device
        self.model = graphnet.nn.Linear(4, 3).to(device)
        self.twin = graphnet.nn.Linear(4, 3).to(device)
        self.twin.load_state_dict(self.model.state_dict())
        self.compiled = graphnet.compile(self._step(loss_fn, self.model))
        self.eager = self._step(loss_fn, self.twin)
        self.x = graphnet.randn(5, 4).to(device)

    @staticmethod
    def _step(loss_fn, model):
        opt = graphnet.optim.SGD(model.parameters(), lr=0.1)

        def step(x, index):
            opt.zero_grad()
            loss = loss_fn(model(x), index)
            loss.backward()
            opt.step()
            return loss

        return step

    def weights(self, model):
        return [p.detach().cpu().numpy().copy() for p in model.parameters()]

    def both(self, index):
        """(compiled loss, eager loss) for the same index values; the two models must then be equal."""
        index = index.to(self.device)
        got, want = self.compiled(self.x, index).item(), self.eager(self.x, index).item()
        for a, b in zip(self.weights(self.model), self.weights(self.twin)):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
        return got, want

    def check(self, good, bad, expected_type, match):
        """Two good calls (the first runs eagerly, the second compiled), then `bad`: the compiled step must raise the
        eager error (type, `match`, the whole message), leave every weight as it was, and still train afterwards."""
        for _ in range(2):
            np.testing.assert_allclose(*self.both(good), rtol=1e-5)
        with pytest.raises(expected_type, match=match) as eager:
            self.eager(self.x, bad.to(self.device))
        before = self.weights(self.model)
        with pytest.raises(expected_type, match=match) as got:
            self.compiled(self.x, bad.to(self.device))
        assert str(got.value) == str(eager.value)
        assert all(np.array_equal(a, b) for a, b in zip(before, self.weights(self.model)))
        assert self.compiled.stats()["variants"] == 1  # the compiled variant raised: no eager fallback, no rebuild
        np.testing.assert_allclose(*self.both(good), rtol=1e-5)
        assert all(np.isfinite(w).all() for w in self.weights(self.model))


@pytest.fixture
def bad_index_step():
    """BadIndexStep(loss_fn, device): checks that a compiled step refuses an out-of-range index as eager does."""
    return BadIndexStep

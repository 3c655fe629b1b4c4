"""Resampling composites on the device (tiny shapes, simulator-friendly): interpolate, adaptive pooling, pad modes
and pixel shuffle give the CPU's values and gradients, eagerly and compiled."""
import numpy as np
import pytest

import graphnet
import graphnet.nn.functional as F

pytestmark = pytest.mark.cuda
RNG = np.random.default_rng(5)

CASES = {
    "bilinear": lambda a: F.interpolate(a, size=(3, 5), mode="bilinear"),
    "nearest": lambda a: F.interpolate(a, scale_factor=1.5),
    "adaptive_max": lambda a: F.adaptive_max_pool2d(a, (3, 2)),
    "adaptive_avg": lambda a: F.adaptive_avg_pool2d(a, (3, 2)),
    "reflect": lambda a: F.pad(a, (1, 2, 2, 1), mode="reflect"),
    "pixel_shuffle": lambda a: F.pixel_shuffle(a, 2),
}


def _run(fn, x, device, compiled):
    a = graphnet.tensor(x, device=device, requires_grad=True)

    def step(t):
        out = fn(t)
        (out * out).sum().backward()
        return out

    out = (graphnet.compile(step) if compiled else step)(a)
    return out.detach().cpu().numpy(), a.grad.cpu().numpy()


@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "compiled"])
@pytest.mark.parametrize("name", list(CASES))
def test_matches_the_cpu(name, compiled):
    x = RNG.standard_normal((1, 4, 4, 3)).astype(np.float32)
    cpu, dev = _run(CASES[name], x, "cpu", False), _run(CASES[name], x, "cuda", compiled)
    np.testing.assert_allclose(dev[0], cpu[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(dev[1], cpu[1], rtol=1e-5, atol=1e-6)


def test_adaptive_max_indices_on_device():
    x = RNG.standard_normal((1, 2, 5, 4)).astype(np.float32)
    _, idx_cpu = F.adaptive_max_pool2d(graphnet.tensor(x), (2, 3), return_indices=True)
    _, idx_dev = F.adaptive_max_pool2d(graphnet.tensor(x, device="cuda"), (2, 3), return_indices=True)
    assert idx_dev.device.type == "cuda"
    np.testing.assert_array_equal(idx_dev.cpu().numpy(), idx_cpu.numpy())

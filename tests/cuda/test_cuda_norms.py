"""Normalisation composites on the device (tiny shapes, simulator-friendly): batch norm (the corrected two-pass
statistics), instance norm, group norm, local response norm and layer norm over (C, H, W) give the CPU's values
and gradients, eagerly and compiled."""
import numpy as np
import pytest

import graphnet
import graphnet.nn.functional as F

pytestmark = pytest.mark.cuda
RNG = np.random.default_rng(7)

CASES = {
    "batch_norm": lambda a: F.batch_norm(a, None, None, training=True),
    "instance_norm": lambda a: F.instance_norm(a),
    "group_norm": lambda a: F.group_norm(a, 2),
    "local_response_norm": lambda a: F.local_response_norm(a, 3, alpha=0.1),
    "layer_norm_chw": lambda a: F.layer_norm(a, (4, 3, 2)),
}


def _run(fn, x, device, compiled):
    a = graphnet.tensor(x, device=device, requires_grad=True)

    def step(t):
        out = fn(t)
        (out * out * out).sum().backward()
        return out

    out = (graphnet.compile(step) if compiled else step)(a)
    return out.detach().cpu().numpy(), a.grad.cpu().numpy()


@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "compiled"])
@pytest.mark.parametrize("name", list(CASES))
def test_matches_the_cpu(name, compiled):
    x = (RNG.standard_normal((2, 4, 3, 2)) + 3).astype(np.float32)
    cpu, dev = _run(CASES[name], x, "cpu", False), _run(CASES[name], x, "cuda", compiled)
    np.testing.assert_allclose(dev[0], cpu[0], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(dev[1], cpu[1], rtol=1e-4, atol=1e-4)


def test_batchnorm_module_running_stats_on_device():
    bn, ref = graphnet.nn.BatchNorm2d(4).to("cuda"), graphnet.nn.BatchNorm2d(4)
    x = RNG.standard_normal((2, 4, 1, 2)).astype(np.float32)
    graphnet.compile(bn)(graphnet.tensor(x, device="cuda"))
    ref(graphnet.tensor(x))
    np.testing.assert_allclose(bn.running_mean.cpu().numpy(), ref.running_mean.numpy(), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(bn.running_var.cpu().numpy(), ref.running_var.numpy(), rtol=1e-5, atol=1e-7)

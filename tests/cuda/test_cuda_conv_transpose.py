"""ConvTranspose2d/1d on the device (tiny shapes, simulator-friendly): the conv2d_input_grad kernels give the CPU's
values and input/weight/bias gradients, eagerly and compiled, output_padding >= stride (crop + zero pad) included."""
import numpy as np
import pytest

import graphnet
import graphnet.nn as nn

pytestmark = pytest.mark.cuda

CASES = {
    "strided": lambda: nn.ConvTranspose2d(2, 4, 3, stride=2, padding=1, output_padding=1, groups=2),
    "dilated": lambda: nn.ConvTranspose2d(2, 3, 2, padding=1, output_padding=1, dilation=2),
    "1d": lambda: nn.ConvTranspose1d(2, 3, 3, stride=2),
}


def _run(name, x, device, compiled):
    graphnet.manual_seed(0)
    layer = CASES[name]().to(device)
    a = graphnet.tensor(x if name != "1d" else x[:, :, 0], device=device, requires_grad=True)

    def step(t):
        out = layer(t)
        (out * out).sum().backward()
        return out

    out = (graphnet.compile(step) if compiled else step)(a)
    return [out.detach().cpu().numpy(), a.grad.cpu().numpy(), layer.weight.grad.cpu().numpy(),
            layer.bias.grad.cpu().numpy()]


@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "compiled"])
@pytest.mark.parametrize("name", list(CASES))
def test_matches_the_cpu(name, compiled):
    x = np.random.default_rng(3).standard_normal((1, 2, 3, 3)).astype(np.float32)
    for dev, cpu in zip(_run(name, x, "cuda", compiled), _run(name, x, "cpu", False)):
        np.testing.assert_allclose(dev, cpu, rtol=1e-5, atol=1e-5)

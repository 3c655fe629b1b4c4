"""Conv1d/Conv2d errors in PyTorch's words (channel mismatch, kernel larger than the padded input, groups not
dividing the channels, wrong input rank), eager and compiled (raised before any kernel runs), and unbatched input
matching PyTorch."""
import numpy as np
import pytest

import graphnet as gn
import graphnet.nn as nn
import graphnet.nn.functional as F

CHANNELS_2D = (r"^Given groups=1, weight of size \[16, 3, 3, 3\], expected input\[64, 1, 28, 28\] to have 3 channels, "
               r"but got 1 channels instead$")
ERRORS = [
    (lambda: nn.Conv2d(3, 16, 3), (64, 1, 28, 28), CHANNELS_2D),
    (lambda: nn.Conv2d(3, 16, 3), (1, 28, 28), r"^Given groups=1, weight of size \[16, 3, 3, 3\], expected "
                                               r"input\[1, 1, 28, 28\] to have 3 channels, but got 1 channels "
                                               r"instead$"),
    (lambda: nn.Conv1d(3, 16, 3), (64, 1, 28), r"^Given groups=1, weight of size \[16, 3, 3\], expected input\[64, 1, "
                                               r"28\] to have 3 channels, but got 1 channels instead$"),
    (lambda: nn.Conv1d(3, 16, 3), (1, 28), r"^Given groups=1, weight of size \[16, 3, 3\], expected input\[1, 1, "
                                           r"28\] to have 3 channels, but got 1 channels instead$"),
    (lambda: nn.Conv2d(3, 4, 3), (1, 3, 2, 2), r"^Calculated padded input size per channel: \(2 x 2\)\. Kernel size: "
                                               r"\(3 x 3\)\. Kernel size can't be greater than actual input size$"),
    (lambda: nn.Conv2d(3, 4, 3, padding=(1, 0)), (3, 2, 2), r"^Calculated padded input size per channel: \(4 x 2\)\. "
                                                            r"Kernel size: \(3 x 3\)\."),
    (lambda: nn.Conv2d(3, 4, 3, dilation=2), (1, 3, 4, 4), r"Calculated padded input size per channel: \(4 x 4\)\. "
                                                           r"Kernel size: \(5 x 5\)\."),
    (lambda: nn.Conv1d(3, 4, 3), (1, 3, 2), r"^Calculated padded input size per channel: \(2\)\. Kernel size: \(3\)\. "
                                            r"Kernel size can't be greater than actual input size$"),
    (lambda: nn.Conv1d(3, 4, 3, padding="valid"), (1, 3, 2), r"^Calculated padded input size per channel: \(2\)\."),
    (lambda: nn.Conv2d(4, 4, 3, groups=2), (1, 5, 8, 8), r"^Given groups=2, weight of size \[4, 2, 3, 3\], expected "
                                                         r"input\[1, 5, 8, 8\] to have 4 channels, but got 5 channels "
                                                         r"instead$"),
    (lambda: nn.Conv2d(3, 16, 3), (2, 1, 3, 8, 8), r"^Expected 3D \(unbatched\) or 4D \(batched\) input to conv2d, "
                                                   r"but got input of size: \[2, 1, 3, 8, 8\]$"),
    (lambda: nn.Conv2d(3, 16, 3), (8, 8), r"^Expected 3D \(unbatched\) or 4D \(batched\) input to conv2d, but got "
                                          r"input of size: \[8, 8\]$"),
    (lambda: nn.Conv1d(3, 16, 3), (2, 3, 4, 8), r"^Expected 2D \(unbatched\) or 3D \(batched\) input to conv1d, but "
                                                r"got input of size: \[2, 3, 4, 8\]$"),
]


@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "compiled"])
@pytest.mark.parametrize("make,shape,match", ERRORS, ids=[f"case{i}" for i in range(len(ERRORS))])
def test_conv_errors_are_pytorchs(make, shape, match, compiled):
    conv = make()
    with pytest.raises(RuntimeError, match=match):
        (gn.compile(conv) if compiled else conv)(gn.randn(*shape))


def test_functional_weight_groups_error_and_module_checks():
    with pytest.raises(RuntimeError, match=r"^Given groups=2, expected weight to be divisible by 2 at dimension 0, "
                                           r"but got weight of size \[\[3, 2, 3, 3\]\] instead$"):
        F.conv2d(gn.randn(1, 4, 8, 8), gn.randn(3, 2, 3, 3), groups=2)
    with pytest.raises(RuntimeError, match=r"^Given groups=2, expected weight to be divisible by 2 at dimension 0"):
        F.conv1d(gn.randn(1, 4, 8), gn.randn(3, 2, 3), groups=2)
    with pytest.raises(ValueError, match="^in_channels must be divisible by groups$"):
        nn.Conv2d(5, 4, 3, groups=2)
    with pytest.raises(ValueError, match="^out_channels must be divisible by groups$"):
        nn.Conv2d(4, 3, 3, groups=2)


@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "compiled"])
@pytest.mark.parametrize("cls,shape", [("Conv2d", (3, 6, 5)), ("Conv1d", (3, 7))])
def test_unbatched_input_matches_torch(cls, shape, compiled):
    torch = pytest.importorskip("torch")
    t = getattr(torch.nn, cls)(3, 4, 3, padding=1).double()
    g = getattr(nn, cls)(3, 4, 3, padding=1).double()
    g.load_state_dict({k: gn.tensor(v.detach().numpy()) for k, v in t.state_dict().items()})
    x = np.random.default_rng(0).standard_normal(shape)
    tx, gx = torch.tensor(x, requires_grad=True), gn.tensor(x, requires_grad=True)

    def step(a):
        out = g(a)
        (out * out).sum().backward()
        return out

    out = (gn.compile(step) if compiled else step)(gx)
    ref = t(tx)
    (ref * ref).sum().backward()
    assert tuple(out.shape) == tuple(ref.shape)
    np.testing.assert_allclose(out.detach().numpy(), ref.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(gx.grad.numpy(), tx.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(g.weight.grad.numpy(), t.weight.grad.numpy(), rtol=1e-10, atol=1e-12)

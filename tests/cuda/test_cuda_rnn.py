"""RNN, LSTM and GRU on a CUDA device (simulator-tested): eager forward and backward, and the compiled forward and
backward, equal the CPU run's outputs, final states and gradients."""
import warnings

import numpy as np
import pytest

import graphnet as torch
import graphnet.nn as nn

pytestmark = pytest.mark.cuda


def _host(t):
    return t.detach().cpu().numpy()


def _run(model, x, h0, compiled):
    """Output, final states and the gradients of x, h0 and every parameter, for a loss touching every result."""
    x, h0 = x.detach().requires_grad_(True), h0.detach().requires_grad_(True)
    fn = torch.compile(model) if compiled else model
    out, h_n = fn(x, (h0, h0 * 0.5) if isinstance(model, nn.LSTM) else h0)
    states = list(h_n) if isinstance(h_n, tuple) else [h_n]
    ((out * out).sum() + sum(h.sum() for h in states)).backward()
    results = [out, *states, x.grad, h0.grad, *(p.grad for p in model.parameters())]
    model.zero_grad()
    return [_host(r) for r in results]


@pytest.mark.parametrize("kind", ["LSTM", "GRU", "RNN", "RNN_relu"])
def test_recurrent_layers_forward_backward_on_device_match_cpu(kind):
    """Every mode's rnn_scan and its backward run on device kernels (no host fallback warning)."""
    torch.manual_seed(0)
    name, kw = kind.split("_")[0], ({"nonlinearity": "relu"} if kind.endswith("relu") else {})
    bidirectional = kind != "LSTM"
    cpu = getattr(nn, name)(3, 4, bidirectional=bidirectional, **kw)
    x, h0 = torch.randn(3, 2, 3), torch.randn(2 if bidirectional else 1, 2, 4)
    want = _run(cpu, x, h0, compiled=False)
    dev = getattr(nn, name)(3, 4, bidirectional=bidirectional, **kw)
    dev.load_state_dict(cpu.state_dict())
    dev = dev.cuda()
    assert all(p.is_cuda for p in dev.parameters())
    for compiled in (False, True):
        with warnings.catch_warnings():
            warnings.filterwarnings("error", message=".*eager.*", module="graphnet")  # no fallback to eager
            warnings.filterwarnings("error", message=".*no device kernel.*")  # nor to the host
            got = _run(dev, x.cuda(), h0.cuda(), compiled)
        for g, w in zip(got, want):
            np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)

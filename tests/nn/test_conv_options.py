"""Conv2d/Conv1d options real CNNs use: groups (depthwise too), dilation, padding 'same'/'valid', and the
padding modes reflect/replicate/circular (F.pad in front of the conv, as PyTorch does): values and every gradient
vs PyTorch, reprs, compiled vs eager, and the padding_mode error."""
import numpy as np
import pytest

import graphnet as gn
import graphnet.nn as nn

CASES = [dict(in_channels=4, out_channels=6, kernel_size=3, groups=2),
         dict(in_channels=4, out_channels=4, kernel_size=3, groups=4, bias=False),
         dict(in_channels=3, out_channels=5, kernel_size=3, dilation=2, padding=2),
         dict(in_channels=3, out_channels=5, kernel_size=4, padding="same", dilation=2),
         dict(in_channels=3, out_channels=5, kernel_size=3, padding="valid", stride=2),
         dict(in_channels=3, out_channels=5, kernel_size=3, padding=1, padding_mode="reflect"),
         dict(in_channels=3, out_channels=5, kernel_size=3, padding=(2, 1), padding_mode="replicate"),
         dict(in_channels=4, out_channels=4, kernel_size=4, padding="same", padding_mode="circular", groups=2)]


def _pair(kw, dims=2):
    torch = pytest.importorskip("torch")
    cls = "Conv2d" if dims == 2 else "Conv1d"
    t, g = getattr(torch.nn, cls)(**kw).double(), getattr(nn, cls)(**kw).double()
    g.load_state_dict({k: gn.tensor(v.detach().numpy()) for k, v in t.state_dict().items()})
    return torch, t, g


@pytest.mark.parametrize("kw", CASES, ids=lambda kw: ",".join(f"{k}={v}" for k, v in kw.items() if k != "in_channels"))
def test_conv2d_options_match_torch(kw):
    torch, t, g = _pair(kw)
    assert repr(g) == repr(t)
    x = np.random.default_rng(0).standard_normal((2, kw["in_channels"], 9, 8))
    tx, gx = torch.tensor(x, requires_grad=True), gn.tensor(x, requires_grad=True)
    to, go = t(tx), g(gx)
    (to ** 2).sum().backward()
    (go ** 2).sum().backward()
    np.testing.assert_allclose(go.detach().numpy(), to.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(gx.grad.numpy(), tx.grad.numpy(), rtol=1e-10, atol=1e-12)
    for name, p in g.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), dict(t.named_parameters())[name].grad.numpy(), rtol=1e-9,
                                   atol=1e-10)


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
def test_conv1d_padding_modes_match_torch(mode):
    torch, t, g = _pair(dict(in_channels=2, out_channels=3, kernel_size=3, padding=2, padding_mode=mode), dims=1)
    x = np.random.default_rng(1).standard_normal((2, 2, 7))
    np.testing.assert_allclose(g(gn.tensor(x)).detach().numpy(), t(torch.tensor(x)).detach().numpy(), rtol=1e-10)


@pytest.mark.parametrize("kw", CASES[::3], ids=lambda kw: str(kw.get("padding_mode", kw.get("groups", "dil"))))
def test_compiled_conv_options_match_eager(kw):
    gn.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(**kw), nn.ReLU())
    x = gn.randn(2, kw["in_channels"], 9, 8, requires_grad=True)
    results = []
    for fn in (model, gn.compile(model)):
        out = fn(x)
        (out * out).sum().backward()
        results.append([out.detach().numpy().copy(), x.grad.numpy().copy(), model[0].weight.grad.numpy().copy()])
        x.grad = None
        model.zero_grad()
    for got, want in zip(results[1], results[0]):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_an_unknown_padding_mode_is_refused_as_pytorch_does():
    expected = r"padding_mode must be one of \{.*'reflect'.*\}, but got padding_mode='mirror'"
    with pytest.raises(ValueError, match=expected):
        nn.Conv2d(3, 4, 3, padding_mode="mirror")

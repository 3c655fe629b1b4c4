"""GradScaler (torch.amp / torch.cuda.amp) against PyTorch's on the CPU: scaled losses, unscaled grads, skipped
overflow steps, scale back-off/growth, state_dict and the disabled pass-through nanoGPT's train.py relies on."""
import warnings

import numpy as np
import pytest

import graphnet as gn

torch = pytest.importorskip("torch")


def _pair(seed=0):
    rng = np.random.default_rng(seed)
    w, b = rng.standard_normal((2, 3)).astype(np.float32), rng.standard_normal(2).astype(np.float32)
    x = rng.standard_normal((4, 3)).astype(np.float32)
    mods = []
    for lib in (gn, torch):
        lin = lib.nn.Linear(3, 2)
        with lib.no_grad():
            lin.weight.copy_(lib.tensor(w))
            lin.bias.copy_(lib.tensor(b))
        mods.append((lib, lin, lib.optim.SGD(lin.parameters(), lr=0.1), lib.tensor(x)))
    return mods


def _run(lib, lin, opt, x, scaler, poison):
    """Five scaled steps; step `poison` gets an inf in the weight's grad. Returns the scales after each update."""
    scales = []
    for i in range(5):
        opt.zero_grad()
        loss = (lin(x) ** 2).mean()
        scaled = scaler.scale(loss)
        assert scaled.item() == pytest.approx(loss.item() * scaler.get_scale(), rel=1e-6)
        scaled.backward()
        if i == poison:
            with lib.no_grad():
                lin.weight.grad[0, 0] = float("inf")
        scaler.unscale_(opt)
        scaler.step(opt)
        scaler.update()
        scales.append(scaler.get_scale())
    return scales


def test_grad_scaler_matches_pytorch_steps_skips_and_scale_updates():
    results = []
    for lib, lin, opt, x in _pair():
        scaler = lib.amp.GradScaler("cpu", init_scale=2.0**10, growth_interval=2)
        scales = _run(lib, lin, opt, x, scaler, poison=2)
        results.append((scales, lin.weight.detach().numpy(), lin.bias.detach().numpy(), scaler.state_dict()))
    (s_g, w_g, b_g, sd_g), (s_t, w_t, b_t, sd_t) = results
    assert s_g == s_t == [1024.0, 2048.0, 1024.0, 1024.0, 2048.0]
    np.testing.assert_allclose(w_g, w_t, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(b_g, b_t, rtol=1e-5, atol=1e-6)
    assert sd_g == sd_t


def test_grad_scaler_errors_match_pytorch():
    for lib, lin, opt, x in _pair():
        scaler = lib.amp.GradScaler("cpu")
        scaler.scale(lin(x).sum()).backward()
        scaler.unscale_(opt)
        with pytest.raises(RuntimeError, match=r"unscale_\(\) has already been called on this optimizer"):
            scaler.unscale_(opt)
        scaler.step(opt)
        with pytest.raises(RuntimeError, match=r"step\(\) has already been called since the last update\(\)"):
            scaler.step(opt)
        with pytest.raises(RuntimeError, match="Closure use is not currently supported"):
            scaler.step(opt, closure=lambda: None)
        with pytest.raises(ValueError, match="outputs must be a Tensor or an iterable of Tensors"):
            scaler.scale(3.0)
        with pytest.raises(AssertionError, match="The growth factor must be > 1.0"):
            lib.amp.GradScaler("cpu", growth_factor=1.0)


@pytest.mark.skipif(gn.cuda.is_available(), reason="checks the answer on a machine without a GPU")
def test_cuda_grad_scaler_without_a_gpu_warns_disables_and_passes_through():
    if torch.cuda.is_available():
        pytest.skip("the oracle has a GPU")
    for lib, lin, opt, x in _pair():
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            scaler = lib.cuda.amp.GradScaler(enabled=True)
        messages = [str(w.message) for w in caught]
        assert any("torch.cuda.amp.GradScaler is enabled, but CUDA is not available.  Disabling." in m
                   for m in messages)
        assert any(issubclass(w.category, FutureWarning) for w in caught)
        assert scaler.is_enabled() is False and scaler.get_scale() == 1.0 and scaler.state_dict() == {}
        loss = lin(x).sum()
        assert scaler.scale(loss) is loss
        before = lin.bias.detach().numpy().copy()
        loss.backward()
        scaler.unscale_(opt)
        scaler.step(opt)
        scaler.update()
        np.testing.assert_allclose(lin.bias.detach().numpy(), before - 0.1 * 4, rtol=1e-6)

"""The tutorial examples run and compute what the tutorials say they compute (checked against NumPy)."""
import copy
import inspect
import os
import pickle
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import graphnet as torch
import graphnet.nn as nn
from examples import (
    custom_blocks,
    custom_layers,
    dcgan_mnist,
    finetune_frozen,
    gpu_placement,
    parameters,
    save_load,
    tensors_autograd,
)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def a(t):
    """A tensor's values as a NumPy array (float64 for comparisons)."""
    return np.asarray(t.detach().cpu().numpy(), dtype=np.float64)


def linear_np(layer, x):
    return x @ a(layer.weight).T + a(layer.bias)


# ---- the 60-minute blitz ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def blitz():
    torch.manual_seed(0)
    return tensors_autograd.main()


def test_tensor_ops_match_numpy(blitz):
    t = blitz["tensors"]
    np.testing.assert_allclose(a(t["out"]), a(t["x"]) + a(t["y"]), rtol=1e-6)
    np.testing.assert_allclose(a(t["y_after_add_"]), a(t["out"]), rtol=1e-6)
    assert [tuple(s) for s in t["sizes"]] == [(4, 4), (16,), (2, 8)]
    t["x44"][0, 0] = 123.0  # a view shares its base's storage
    assert t["view16"][0].item() == 123.0
    assert t["one"].item() == pytest.approx(float(a(t["one"])[0]))


def test_new_ones_and_size_keyword():
    """The blitz's x.new_ones(5, 3, dtype=torch.double) and d2l's torch.rand(size=(2, 20))."""
    x = torch.tensor([5.5, 3])
    ones = x.new_ones(5, 3, dtype=torch.double)
    assert ones.dtype == torch.float64 and tuple(ones.shape) == (5, 3) and a(ones).sum() == 15
    assert x.new_zeros(2).dtype == torch.float32 and x.new_full((2,), 7.0).tolist() == [7.0, 7.0]
    assert x.new_tensor([1, 2]).dtype == torch.float32
    assert tuple(torch.rand(size=(2, 20)).shape) == (2, 20) and tuple(torch.zeros(size=(3,)).shape) == (3,)


def test_numpy_bridge_shares_memory(blitz):
    b, d = blitz["numpy"]
    np.testing.assert_array_equal(b, np.full(5, 2.0))
    np.testing.assert_array_equal(a(d), np.full(5, 2.0))


def test_autograd_walkthrough_gives_4_5(blitz):
    grad, grad_fn = blitz["autograd"]
    np.testing.assert_allclose(a(grad), np.full((2, 2), 4.5))
    assert grad_fn.name() == "AddBackward0"


def test_norm_loop_vector_jacobian_product(blitz):
    x, y, v = blitz["norm_loop"]
    scale = a(y) / a(x)  # y = x * 2**k
    k = np.log2(scale[0])
    assert np.allclose(scale, scale[0]) and k == round(k) and k >= 1
    assert np.linalg.norm(a(y)) >= 1000 > np.linalg.norm(a(y) / 2)
    np.testing.assert_allclose(a(x.grad), a(v) * scale, rtol=1e-6)


def test_grad_modes_and_volatile(blitz):
    g = blitz["grad_modes"]
    assert g["no_grad"] is False and g["requires_grad_"] is True and g["b_grad_fn"] is not None
    assert g["volatile_grad_fn"] is None and g["volatile_requires_grad"] is False


def test_blitz_prints_what_the_tutorial_prints(capsys):
    tensors_autograd.autograd_walkthrough()
    out = capsys.readouterr().out
    assert "grad_fn=<AddBackward0>" in out and "tensor(27., grad_fn=<MeanBackward0>)" in out
    assert "tensor([[4.5000, 4.5000],\n        [4.5000, 4.5000]])" in out


# ---- d2l: layers and modules --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def blocks():
    torch.manual_seed(0)
    return custom_blocks.main()


def mlp_np(net, x):
    return linear_np(net.out, np.maximum(linear_np(net.hidden, x), 0))


def fixed_np(net, x):
    x = linear_np(net.linear, x)
    x = linear_np(net.linear, np.maximum(x @ a(net.rand_weight) + 1, 0))
    while np.abs(x).sum() > 1:
        x = x / 2
    return x.sum()


def test_blocks_match_numpy(blocks):
    x, nets = a(blocks["X"]), blocks["nets"]
    np.testing.assert_allclose(a(nets["mlp"](blocks["X"])), mlp_np(nets["mlp"], x), rtol=1e-4, atol=1e-6)
    seq = nets["seq"]
    assert list(seq._modules) == ["0", "1", "2"]
    expected = linear_np(seq._modules["2"], np.maximum(linear_np(seq._modules["0"], x), 0))
    np.testing.assert_allclose(a(seq(blocks["X"])), expected, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(nets["fixed"](blocks["X"]).item(), fixed_np(nets["fixed"], x), rtol=1e-4, atol=1e-6)
    weight, bias = nets["fixed"].parameters()  # rand_weight is a constant, not a parameter
    assert weight is nets["fixed"].linear.weight and bias is nets["fixed"].linear.bias
    assert nets["chimera"](blocks["X"]).shape == ()
    assert len(list(nets["chimera"].parameters())) == 2 * 3 + 2 + 2


def test_compiled_mlp_equals_eager(blocks):
    y_compiled, y_eager = blocks["compiled"]["mlp"]
    np.testing.assert_allclose(a(y_compiled), a(y_eager), rtol=1e-5, atol=1e-6)


def test_compiling_fixed_hidden_mlp_falls_back_with_the_while_line(blocks):
    source, first = inspect.getsourcelines(custom_blocks.FixedHiddenMLP.forward)
    line = first + next(i for i, s in enumerate(source) if "while X.abs().sum() > 1" in s)
    [message] = blocks["compiled"]["warnings"]
    assert "falling back to eager" in message and f"custom_blocks.py:{line}" in message
    compiled, eager = blocks["compiled"]["fixed"]
    assert compiled.item() == pytest.approx(eager.item(), rel=1e-6)


# ---- d2l: parameters ----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def params():
    torch.manual_seed(0)
    return parameters.main()


def test_parameter_access(params):
    assert [(n, tuple(s)) for n, s in params["names"]] == [("0.weight", (8, 4)), ("0.bias", (8,)),
                                                           ("2.weight", (1, 8)), ("2.bias", (1,))]
    rgnet = params["rgnet"]
    named = dict(rgnet.named_parameters())
    assert named["0.block 1.0.bias"] is rgnet[0][1][0].bias and len(named) == 4 * 4 + 2


def test_builtin_and_custom_init(params):
    init = params["init"]
    w, b = (a(t) for t in init["normal"])
    assert 0.002 < w.std() < 0.02 and not b.any()
    w, b = (a(t) for t in init["constant"])
    assert (w == 1).all() and not b.any()
    bound = np.sqrt(6 / (4 + 8))
    assert (np.abs(a(init["xavier"])) <= bound).all() and a(init["xavier"]).std() > 0
    assert (a(init["42"]) == 42).all()
    custom = a(init["custom"])
    assert ((custom == 0) | ((np.abs(custom) >= 5) & (np.abs(custom) <= 10))).all()
    expected = custom + 1
    expected[0, 0] = 42
    np.testing.assert_allclose(a(init["edited"]), expected)


def test_tied_parameters_share_values_and_add_gradients(params):
    net, X = params["tied"], params["X"]
    assert net[2] is net[4] and len(list(net.parameters())) == 6
    assert net[4].weight[0, 0].item() == 100
    untied = nn.Sequential(*[copy.deepcopy(m) for m in net])
    for model in (net, untied):
        model.zero_grad()
        model(X).sum().backward()
    np.testing.assert_allclose(a(net[2].weight.grad), a(untied[2].weight.grad) + a(untied[4].weight.grad), rtol=1e-5)


# ---- d2l: custom layers -------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def layers():
    torch.manual_seed(0)
    return custom_layers.main()


def test_centered_layer(layers):
    out, Y = layers["centered"]
    np.testing.assert_allclose(a(out), [-2, -1, 0, 1, 2])
    assert abs(Y.mean().item()) < 1e-5


def test_my_linear(layers):
    linear, X = layers["linear"]
    expected = np.maximum(a(X) @ a(linear.weight) + a(linear.bias), 0)
    np.testing.assert_allclose(a(linear(X)), expected, rtol=1e-5)
    assert linear(X).requires_grad is False


def test_trainable_linear_gets_gradients(layers):
    X, frozen, live = layers["trainable"]
    assert frozen.weight.grad is None and frozen.bias.grad is None
    active = (a(X) @ a(live.weight) + a(live.bias) > 0).astype(np.float64)
    np.testing.assert_allclose(a(live.weight.grad), a(X).T @ active, rtol=1e-5)
    np.testing.assert_allclose(a(live.bias.grad), active.sum(0), rtol=1e-5)


def test_backward_of_data_only_output_says_why(capsys):
    custom_layers.trainable()
    assert "does not require grad" in capsys.readouterr().out


# ---- d2l: file I/O ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def saved():
    torch.manual_seed(0)
    return save_load.main()


def test_tensors_round_trip(saved):
    t = saved["tensors"]
    x, y = t["saved"]
    for got, want in (*zip(t["list"], (x, y)), (t["dict"]["x"], x), (t["dict"]["y"], y)):
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(a(got), a(want))
    assert list(t["dict"]) == ["x", "y"]


def test_state_dict_clone_gives_equal_outputs(saved):
    Y, Y_clone = saved["mlp"]
    np.testing.assert_array_equal(a(Y), a(Y_clone))


def test_whole_module_and_truncated_file_errors(saved):
    model, errors = saved["refusals"]
    assert isinstance(model, save_load.MLP)
    assert isinstance(errors["whole_module"], pickle.UnpicklingError)
    assert "weights_only=False" in str(errors["whole_module"])
    assert isinstance(errors["truncated"], RuntimeError) and "truncated" in str(errors["truncated"])
    assert not os.path.exists(saved["folder"])


# ---- fine-tuning with a frozen backbone ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def finetuned():
    torch.manual_seed(0)
    return finetune_frozen.main()


def test_frozen_backbone_untouched_and_head_accurate(finetuned):
    assert finetuned["unchanged"] and finetuned["no_grads"]
    assert finetuned["accuracy"] > 0.85
    assert all(p.requires_grad for p in finetuned["model"].head.parameters())


def test_compiled_backward_has_head_gradients_only(finetuned):
    backward, pruned = finetuned["backward"], finetuned["pruned"]
    assert len(backward.outputs) == 2 and set(backward.meta["grads"]) == {"head.weight", "head.bias"}
    assert set(pruned.meta["autodiff"]["grads"]) == {"head.weight", "head.bias"}
    report = pruned.meta["prune_grads"]
    assert report["nodes_removed"] > 0 and report["saved_bytes_avoided"] > 0
    assert set(backward.meta["saved"]) == set(report["saved_after"])


def test_compiled_head_gradients_match_eager(finetuned):
    model, compiled = finetuned["model"], finetuned["compiled"]
    x, y = (t[:100] for t in finetuned["test_set"].tensors)
    grads = []
    for m in (compiled, model):
        model.zero_grad()
        torch.nn.functional.cross_entropy(m(x), y).backward()
        grads.append([a(p.grad) for p in model.head.parameters()])
        assert all(p.grad is None for p in model.backbone.parameters())
    for got, want in zip(*grads):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)


# ---- devices ------------------------------------------------------------------------------------------------------
def test_gpu_placement(capsys):
    placed = gpu_placement.main()
    out = capsys.readouterr().out
    cuda = torch.cuda.is_available()
    assert placed["device"].type == ("cuda" if cuda else "cpu")
    assert placed["loss"].device == placed["x"].device and placed["logits"].device.type == "cpu"
    assert placed["net"][0].weight.grad.device.type == placed["device"].type
    net_cpu = copy.deepcopy(placed["net"]).cpu()
    np.testing.assert_allclose(a(placed["logits"]), linear_np(net_cpu[2], np.maximum(
        linear_np(net_cpu[0], a(placed["x"])), 0)), rtol=1e-4, atol=1e-6)
    if cuda:
        assert "same device" in str(placed["mixing_error"])
    else:
        assert placed["mixing_error"] is None and "running on the CPU" in out


# ---- the main job, end to end -------------------------------------------------------------------------------------
def test_train_lenet_one_epoch(tmp_path):
    """examples/train_lenet.py, one eager epoch: it reports an accuracy and writes the checkpoint and both graphs."""
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "examples", "train_lenet.py"), "--epochs", "1",
                           "--no-compile", "--out", str(tmp_path)], capture_output=True, text=True, timeout=900,
                          cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    accuracy = re.search(r"test accuracy (\d+(?:\.\d+)?)%", proc.stdout)
    assert accuracy and float(accuracy.group(1)) > 50, proc.stdout[-2000:]
    assert (tmp_path / "lenet.pth").stat().st_size > 0
    if shutil.which("dot") is None:
        pytest.skip("graphviz `dot` is not installed: the PDFs are not drawn")
    for name in ("lenet_autograd.pdf", "lenet_fused.pdf"):
        assert (tmp_path / name).read_bytes().startswith(b"%PDF")


def test_train_resnet_smoke(tmp_path):
    """examples/train_resnet.py as a narrow ResNet-8, compiled, on 128 digits: it trains, reports an accuracy, saves a
    checkpoint that reloads to the same accuracy and draws the fused graph."""
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "examples", "train_resnet.py"), "--epochs", "1",
                           "--limit", "128", "--batch-size", "32", "--width", "4", "--blocks", "1",
                           "--out", str(tmp_path)], capture_output=True, text=True, timeout=900, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert re.search(r"ResNet-8 on 128 training / 128 test digits, compiled", proc.stdout), proc.stdout[-2000:]
    accuracy = re.search(r"test accuracy (\d+(?:\.\d+)?)%", proc.stdout)
    assert accuracy and "(matches)" in proc.stdout, proc.stdout[-2000:]
    assert (tmp_path / "resnet20.pth").stat().st_size > 0
    if shutil.which("dot") is not None:
        assert (tmp_path / "resnet20_fused.pdf").read_bytes().startswith(b"%PDF")


@pytest.mark.parametrize("model", ["gpt", "lstm"])
def test_train_charlm_smoke(tmp_path, model):
    """examples/train_charlm.py at a tiny size, compiled, for the GPT and the LSTM: it trains, reports a validation
    loss below the uniform log(65), saves and reloads the checkpoint to the same loss, and samples text."""
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "examples", "train_charlm.py"), "--iters", "60",
                           "--model", model, "--hidden", "32",
                           "--n-layer", "1", "--n-head", "2", "--n-embd", "32", "--block-size", "16",
                           "--batch-size", "8", "--lr", "3e-3", "--warmup", "5", "--eval-interval", "30",
                           "--eval-iters", "4", "--sample-chars", "40", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=900, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    val = re.search(r"validation loss (\d+\.\d+) after 60 iterations", proc.stdout)
    assert val and float(val.group(1)) < 4.17, proc.stdout[-2000:]  # log(65) = 4.17: better than uniform
    assert "(matches)" in proc.stdout and "---- sample ----" in proc.stdout
    assert (tmp_path / f"charlm_{model}.pth").stat().st_size > 0


def test_dcgan_mnist_smoke(tmp_path):
    """examples/dcgan_mnist.py at a tiny size, compiled: two D/G steps, a 64-digit PNG grid of 28x28 images (8x8 with
    2-pixel padding: 242x242) and a checkpoint whose generator reloads to the same samples."""
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "examples", "dcgan_mnist.py"), "--epochs", "1",
                           "--limit", "16", "--batch-size", "8", "--width", "4", "--nz", "8", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=900, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "reloaded generator matches" in proc.stdout, proc.stdout[-2000:]
    with Image.open(tmp_path / "epoch_001.png") as im:
        assert im.format == "PNG" and im.size == (242, 242) and im.mode == "RGB"
    assert (tmp_path / "dcgan.pth").stat().st_size > 0


def test_dcgan_compiled_steps_match_eager():
    """The DCGAN's two compiled steps (shared modules, two Adams, detach() between, BatchNorm in train mode) give
    eager's losses, weights and BatchNorm running statistics over three iterations."""
    results = []
    for compiled in (False, True):
        torch.manual_seed(0)
        gen, disc = dcgan_mnist.generator(8, 4), dcgan_mnist.discriminator(4)
        gen.apply(dcgan_mnist.init_weights)
        disc.apply(dcgan_mnist.init_weights)
        opts = [torch.optim.Adam(m.parameters(), lr=2e-4, betas=(0.5, 0.999)) for m in (gen, disc)]
        d_step, g_step = dcgan_mnist.make_steps(gen, disc, *opts)
        if compiled:
            d_step, g_step = torch.compile(d_step), torch.compile(g_step)
        losses = []
        for _ in range(3):
            losses.append(d_step(torch.rand(6, 1, 28, 28) * 2 - 1, torch.randn(6, 8, 1, 1)).item())
            losses.append(g_step(torch.randn(6, 8, 1, 1)).item())
        results.append((losses, [a(t) for m in (gen, disc) for t in m.state_dict().values()]))
    np.testing.assert_allclose(results[1][0], results[0][0], rtol=1e-4)
    for got, want in zip(results[1][1], results[0][1]):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)

"""What scripts query even on a CPU: torch.backends.cuda/cudnn/mps, torch.accelerator, Tensor.is_cuda/is_mps/is_xpu and
nn.DataParallel / nn.parallel.data_parallel, answering as PyTorch does on a machine without an accelerator."""
import numpy as np
import pytest

import graphnet as gn
import graphnet.nn as nn

no_gpu = pytest.mark.skipif(gn.cuda.is_available(), reason="checks the CPU-only answers")


def test_cudnn_flags_have_pytorchs_defaults_and_can_be_set(monkeypatch):
    cudnn = gn.backends.cudnn
    assert (cudnn.benchmark, cudnn.deterministic, cudnn.enabled, cudnn.allow_tf32) == (False, False, True, True)
    assert cudnn.is_available() is False and cudnn.version() is None
    monkeypatch.setattr(cudnn, "benchmark", True)
    assert gn.backends.cudnn.benchmark is True


def test_cuda_matmul_flags_match_pytorch_defaults_setting_and_unknown_names(monkeypatch):
    torch = pytest.importorskip("torch")
    mine, ref = gn.backends.cuda.matmul, torch.backends.cuda.matmul
    for name in ("allow_tf32", "allow_fp16_reduced_precision_reduction", "allow_bf16_reduced_precision_reduction"):
        assert getattr(mine, name) == getattr(ref, name), name
    assert gn.backends.cuda.is_built() is False
    monkeypatch.setitem(mine._flags, "allow_tf32", False)
    mine.allow_tf32 = True
    assert gn.backends.cuda.matmul.allow_tf32 is True
    for obj in (mine, ref):
        with pytest.raises(AttributeError, match="Unknown attribute allow_tf33"):
            obj.allow_tf33 = True
        with pytest.raises(AttributeError, match="Unknown attribute allow_tf33"):
            getattr(obj, "allow_tf33")  # noqa: B009  (the read itself is what raises)


def test_mps_is_neither_built_nor_available():
    assert gn.backends.mps.is_available() is False and gn.backends.mps.is_built() is False


@no_gpu
def test_accelerator_on_a_cpu_only_machine_matches_pytorch():
    torch = pytest.importorskip("torch")
    if torch.accelerator.is_available():
        pytest.skip("the oracle has an accelerator")
    got = (gn.accelerator.is_available(), gn.accelerator.current_accelerator(), gn.accelerator.device_count())
    assert got == (False, None, 0)
    assert gn.accelerator.current_accelerator(check_available=True) is None


def test_tensor_device_kind_properties():
    t = gn.zeros(2)
    assert (t.is_cuda, t.is_mps, t.is_xpu) == (False, False, False)


@no_gpu
def test_data_parallel_on_cpu_runs_the_module_and_keys_its_state_under_module():
    torch = pytest.importorskip("torch")
    gn.manual_seed(0)
    lin = nn.Linear(3, 2)
    dp = nn.DataParallel(lin)
    assert nn.parallel.DataParallel is nn.DataParallel
    assert dp.module is lin and dp.device_ids == []
    x = gn.randn(4, 3)
    np.testing.assert_array_equal(dp(x).detach().numpy(), lin(x).detach().numpy())
    ref = torch.nn.DataParallel(torch.nn.Linear(3, 2))
    assert list(dp.state_dict()) == list(ref.state_dict()) == ["module.weight", "module.bias"]
    assert repr(dp).splitlines()[:2] == repr(ref).splitlines()[:2]
    dp(x).sum().backward()
    assert lin.weight.grad is not None


@no_gpu
def test_functional_data_parallel_needs_an_accelerator_as_in_pytorch():
    torch = pytest.importorskip("torch")
    with pytest.raises(RuntimeError, match="device type could not be determined"):
        torch.nn.parallel.data_parallel(torch.nn.Linear(3, 2), torch.ones(1, 3))
    with pytest.raises(RuntimeError, match="device type could not be determined"):
        nn.parallel.data_parallel(nn.Linear(3, 2), gn.ones(1, 3))


@pytest.mark.skipif(not gn.cuda.is_available(), reason="needs a GPU")
def test_data_parallel_on_a_gpu_moves_the_inputs_to_device_ids_0():
    lin = nn.Linear(3, 2)
    with pytest.raises(RuntimeError, match=r"module must have its parameters and buffers on device cuda:0"):
        nn.DataParallel(lin)
    dp = nn.DataParallel(lin.cuda())
    assert dp.device_ids == list(range(gn.cuda.device_count())) and dp.output_device == 0
    out = dp(gn.ones(1, 3))
    assert out.is_cuda
    assert nn.parallel.data_parallel(lin, gn.ones(1, 3)).is_cuda


def test_cuda_device_selection_and_seeding_calls_work_without_a_gpu():
    """minGPT's set_seed calls torch.cuda.manual_seed_all(seed) on any machine, as PyTorch allows."""
    import graphnet as torch

    torch.cuda.manual_seed_all(7)
    torch.cuda.seed_all()
    assert isinstance(torch.cuda.initial_seed(), int)
    torch.cuda.set_device(0)  # the only device graphnet addresses: accepted as PyTorch accepts it
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError):
            torch.cuda.set_device(1)


def test_cuda_manual_seed_without_a_gpu_is_silently_ignored_as_in_pytorch():
    torch = pytest.importorskip("torch")
    for lib in (gn, torch):
        lib.manual_seed(3)
        first = lib.randn(4).numpy()
        lib.manual_seed(3)
        lib.randn(2)
        lib.cuda.manual_seed(3)
        lib.cuda.manual_seed_all(3)
        np.testing.assert_array_equal(lib.randn(2).numpy(), first[2:])

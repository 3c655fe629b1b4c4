"""graphnet.multiprocessing (torch.multiprocessing): shared-memory tensors seen and written by other processes under
every start method (Hogwild: model.share_memory(), processes stepping one model), spawn's error reporting."""
import numpy as np
import pytest

import graphnet as torch
import graphnet.multiprocessing as mp
import graphnet.nn as nn

METHODS = ["spawn", "fork", "forkserver"]


def _add_one(t, done):
    t.add_(1.0)
    done.put(t.is_shared())


def _sgd_steps(model, steps):
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = torch.ones(4, 3), torch.zeros(4, 2)
    for _ in range(steps):
        opt.zero_grad()
        ((model(x) - y) ** 2).mean().backward()
        opt.step()


@pytest.mark.parametrize("method", METHODS)
def test_a_shared_tensor_is_written_by_the_child(method):
    ctx = mp.get_context(method)
    t = torch.zeros(3, 2).share_memory_()
    assert t.is_shared() and not torch.zeros(2).is_shared()
    done = ctx.SimpleQueue()
    p = ctx.Process(target=_add_one, args=(t, done))
    p.start()
    p.join(60)
    assert p.exitcode == 0 and done.get() is True
    np.testing.assert_array_equal(t.numpy(), np.ones((3, 2), np.float32))


def test_an_unshared_tensor_is_copied():
    ctx = mp.get_context("spawn")
    t = torch.zeros(2)
    done = ctx.SimpleQueue()
    p = ctx.Process(target=_add_one, args=(t, done))
    p.start()
    p.join(60)
    assert p.exitcode == 0 and done.get() is False
    np.testing.assert_array_equal(t.numpy(), [0.0, 0.0])


def test_hogwild_processes_train_one_shared_model():
    """pytorch/examples' mnist_hogwild: the parent's model holds what the children's optimizers did."""
    torch.manual_seed(0)
    model = nn.Linear(3, 2)
    model.share_memory()
    assert all(p.is_shared() and isinstance(p, nn.Parameter) for p in model.parameters())
    twin = nn.Linear(3, 2)
    twin.load_state_dict(model.state_dict())
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_sgd_steps, args=(model, 3)) for _ in range(2)]
    for p in procs:
        p.start()
        p.join(60)  # one after the other: the result is deterministic
    assert [p.exitcode for p in procs] == [0, 0]
    _sgd_steps(twin, 6)
    for p, q in zip(model.parameters(), twin.parameters()):
        np.testing.assert_allclose(p.detach().numpy(), q.detach().numpy(), rtol=1e-6)


def _worker(i, out):
    out[i] = float(i + 1)


def _fails(i):
    if i == 1:
        raise ValueError("bad rank")


def test_spawn_runs_fn_with_the_process_index():
    out = torch.zeros(3).share_memory_()
    assert mp.spawn(_worker, args=(out,), nprocs=3) is None
    np.testing.assert_array_equal(out.numpy(), [1.0, 2.0, 3.0])


def test_spawn_raises_the_failing_process_traceback():
    with pytest.raises(mp.ProcessRaisedException, match=r"-- Process 1 terminated with the following error:"
                                                         r"(.|\n)*ValueError: bad rank"):
        mp.spawn(_fails, nprocs=2)
    with pytest.raises(ValueError, match="shares tensors by file descriptor only"):
        mp.set_sharing_strategy("file_system")
    assert mp.get_sharing_strategy() == "file_descriptor" and mp.cpu_count() >= 1

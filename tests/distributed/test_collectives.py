"""graphnet.distributed's collectives on 2 MPI ranks: values, async Work, and the errors torch.distributed raises."""
import re

import pytest

import graphnet.distributed as dist

COLLECTIVES = """
import warnings
import numpy as np
import graphnet as gn, graphnet.distributed as dist
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    dist.init_process_group("gloo")
assert "runs on MPI" in str(caught[0].message)
import os
r, n = dist.get_rank(), dist.get_world_size()
assert (n, os.environ["RANK"], os.environ["WORLD_SIZE"]) == (2, str(r), "2"), os.environ
base = gn.tensor([[1.0, -2.0], [3.0, 4.0]])

t = base * (r + 1); dist.all_reduce(t)
assert t.tolist() == (base * 3).tolist()
t = base * (r + 1); dist.all_reduce(t, op=dist.ReduceOp.AVG)
assert t.tolist() == (base * 1.5).tolist()
t = base * (r + 1); dist.all_reduce(t, op=dist.ReduceOp.MAX)
assert t.tolist() == gn.maximum(base, base * 2).tolist()
t = base * (r + 1); dist.all_reduce(t, op=dist.ReduceOp.MIN)
assert t.tolist() == gn.minimum(base, base * 2).tolist()
t = base * (r + 1); dist.all_reduce(t, op=dist.ReduceOp.PRODUCT)
assert t.tolist() == (base * base * 2).tolist()
t = gn.arange(4, dtype=gn.int64) + r; work = dist.all_reduce(t, async_op=True); work.wait()
assert t.tolist() == [1, 3, 5, 7] and work.is_completed()
t = gn.arange(6.0).reshape(2, 3).t() * (r + 1); dist.all_reduce(t)   # a non-contiguous view is written back
assert t.tolist() == (gn.arange(6.0).reshape(2, 3).t() * 3).tolist()

t = gn.full((3,), float(r)); dist.broadcast(t, src=1)
assert t.tolist() == [1.0, 1.0, 1.0]
parts = [gn.zeros(2) for _ in range(n)]; dist.all_gather(parts, gn.tensor([r, 10.0 * r]))
assert [p.tolist() for p in parts] == [[0.0, 0.0], [1.0, 10.0]]
out = gn.zeros(4); dist.all_gather_into_tensor(out, gn.tensor([r, r + 0.5]))
assert out.tolist() == [0.0, 0.5, 1.0, 1.5]
out = gn.zeros(2); dist.reduce_scatter_tensor(out, gn.arange(4.0) * (r + 1))
assert out.tolist() == ([0.0, 3.0] if r == 0 else [6.0, 9.0])
if r == 0:
    dist.send(gn.tensor([7, 8], dtype=gn.int32), dst=1)
else:
    got = gn.zeros(2, dtype=gn.int32); assert dist.recv(got, src=0) == 0 and got.tolist() == [7, 8]
gathered = [gn.zeros(1) for _ in range(n)] if r == 0 else None
dist.gather(gn.tensor([r + 1.0]), gathered, dst=0)
assert r != 0 or [g.item() for g in gathered] == [1.0, 2.0]
mine = gn.zeros(2); dist.scatter(mine, [gn.tensor([1.0, 2.0]), gn.tensor([3.0, 4.0])] if r == 0 else None, src=0)
assert mine.tolist() == ([1.0, 2.0] if r == 0 else [3.0, 4.0])
objs = [None, None]; dist.all_gather_object(objs, {"rank": r})
assert objs == [{"rank": 0}, {"rank": 1}]
dist.barrier()
print(f"rank {r} ok")
"""

ERRORS = """
import graphnet as gn, graphnet.distributed as dist
dist.init_process_group("mpi", world_size=2)
r = dist.get_rank()

def message(fn):
    try:
        fn()
    except (RuntimeError, ValueError) as exc:
        return f"{type(exc).__name__}: {exc}"
    raise AssertionError("no error")

print(r, "shape", message(lambda: dist.all_reduce(gn.zeros(2 + r))))
print(r, "dtype", message(lambda: dist.broadcast(gn.zeros(2, dtype=gn.float32 if r == 0 else gn.float64), 0)))
print(r, "twice", message(lambda: dist.init_process_group("mpi")))
print(r, "avg", message(lambda: dist.all_reduce(gn.zeros(2, dtype=gn.int64), op=dist.ReduceOp.AVG)))
t = gn.ones(2); dist.all_reduce(t)   # the group still works after the errors
assert t.tolist() == [2.0, 2.0]
dist.destroy_process_group()
print(r, "after destroy", message(dist.get_rank))
"""


def test_collectives_give_torch_distributed_values(ranks):
    _, output, _ = ranks(COLLECTIVES)
    assert "rank 0 ok" in output and "rank 1 ok" in output


def test_collective_errors_name_both_ranks(ranks):
    _, output, _ = ranks(ERRORS)
    for r in (0, 1):
        assert (f"{r} shape RuntimeError: all_reduce: tensors differ across ranks: rank 0 has shape [2] dtype "
                "graphnet.float32, rank 1 has shape [3] dtype graphnet.float32") in output
        assert (f"{r} dtype RuntimeError: broadcast: tensors differ across ranks: rank 0 has shape [2] dtype "
                "graphnet.float32, rank 1 has shape [2] dtype graphnet.float64") in output
        assert f"{r} twice ValueError: trying to initialize the default process group twice!" in output
        assert f"{r} avg ValueError: ReduceOp.AVG needs a floating-point tensor" in output
        assert f"{r} after destroy ValueError: Default process group has not been initialized" in output


def test_collective_before_init_raises_torchs_error():
    import graphnet as gn
    with pytest.raises(ValueError, match="Default process group has not been initialized, please make sure to "
                                         "call init_process_group."):
        dist.all_reduce(gn.ones(2))
    with pytest.raises(ValueError, match="Default process group has not been initialized"):
        dist.get_world_size()
    assert not dist.is_initialized()


def test_unknown_backend_is_refused():
    with pytest.raises(ValueError, match="Invalid backend: 'ucc'"):
        dist.init_process_group("ucc")
    with pytest.raises(ValueError, match="Invalid backend: 'cpu:gloo,cuda:ucc'"):
        dist.init_process_group("cpu:gloo,cuda:ucc")


TRACED = """
import warnings
import graphnet as gn, graphnet.distributed as dist
from graphnet.core.bind import bind
dist.init_process_group("mpi")
r = dist.get_rank()

state = gn.full((2,), float(r + 10))          # a concrete tensor the traced function broadcasts in place

def f(x):
    y = x * 2
    dist.all_reduce(y)                         # in place on a traced tensor: an all_reduce node
    dist.broadcast(state, src=1)               # a broadcast node, and a write-back into `state`
    return y + state[0]

compiled = gn.compile(f)
with warnings.catch_warnings():
    warnings.simplefilter("error")
    for k in range(3):                         # eager first call, then the compiled Program
        x = gn.full((3,), float(r + k))
        state.fill_(float(r + 10))
        got = compiled(x)
        assert state.tolist() == [11.0, 11.0], state
        state.fill_(float(r + 10))
        assert got.tolist() == f(x.clone()).tolist() == [2.0 * (1 + 2 * k) + 11] * 3
ops = [n.op for n in compiled.graph().nodes]
assert ops.count("all_reduce") == 1 and ops.count("broadcast") == 1, ops

def g(x):
    dist.all_reduce(x, op=dist.ReduceOp.MAX)   # not a graph reduction: the call runs eagerly, saying why
    return x
compiled_g = gn.compile(g)
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    for _ in range(3):
        assert compiled_g(gn.full((2,), float(r))).tolist() == [1.0, 1.0]
assert any("all_reduce(op=MAX, async_op=False) while tracing" in str(w.message) for w in caught), caught

x = gn.full((2,), float(r + 1), requires_grad=True)   # y = x0 + x1 on both ranks; loss = sum over ranks of c_r . y
(bind("all_reduce", x, reduce_op="SUM") * (r + 1)).sum().backward()
assert x.grad.tolist() == [3.0, 3.0], x.grad       # d loss / d x_r = c_0 + c_1
print("traced-ok", r)
"""


def test_all_reduce_node_traced_compiled_and_differentiated(ranks):
    _, out, _ = ranks(TRACED, timeout=120)
    assert out.count("traced-ok") == 2, out


def test_all_reduce_node_errors():
    import graphnet as gn
    from graphnet.core.bind import bind
    with pytest.raises(RuntimeError, match=r"all_reduce: reduce_op must be one of \['SUM', 'AVG'\] in a graph, "
                                           r"got 'MAX'"):
        bind("all_reduce", gn.ones(2), reduce_op="MAX")
    with pytest.raises(RuntimeError, match="all_reduce: a graph all-reduces floating-point tensors, got int64"):
        bind("all_reduce", gn.ones(2, dtype=gn.int64), reduce_op="SUM")
    with pytest.raises(RuntimeError, match="broadcast: src must be a non-negative rank, got -1"):
        bind("broadcast", gn.ones(2), src=-1)
    for name, attrs in (("all_reduce", {"reduce_op": "SUM"}), ("broadcast", {"src": 0})):
        with pytest.raises(ValueError, match="Default process group has not been initialized"):
            bind(name, gn.ones(2), **attrs)


CUDA = """
import os, warnings
import numpy as np
import graphnet as gn, graphnet.distributed as dist
from graphnet import nn
assert os.environ["LOCAL_RANK"] in ("0", "1")   # set by the launcher before init, as torchrun does
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    dist.init_process_group(backend="nccl")   # what GPU scripts pass: an alias, run by MPI with host staging
assert "backend 'nccl' runs on MPI (mpi4py); CUDA tensors are staged through host memory" in str(caught[0].message)
r, n = dist.get_rank(), dist.get_world_size()
base = gn.tensor([[1.0, -2.0], [3.0, 4.0]])
t = (base * (r + 1)).cuda(); dist.all_reduce(t)
assert t.is_cuda and t.cpu().tolist() == (base * 3).tolist()
t = (base * (r + 1)).cuda(); dist.all_reduce(t, op=dist.ReduceOp.AVG, async_op=True).wait()
assert t.is_cuda and t.cpu().tolist() == (base * 1.5).tolist()
t = gn.full((3,), float(r), device="cuda"); dist.broadcast(t, src=1)
assert t.cpu().tolist() == [1.0, 1.0, 1.0]
parts = [gn.zeros(2, device="cuda") for _ in range(n)]; dist.all_gather(parts, gn.tensor([r, 10.0 * r]).cuda())
assert [p.is_cuda for p in parts] == [True, True] and [p.cpu().tolist() for p in parts] == [[0.0, 0.0], [1.0, 10.0]]
out = gn.zeros(4, device="cuda"); dist.all_gather_into_tensor(out, gn.tensor([r, r + 0.5], device="cuda"))
assert out.cpu().tolist() == [0.0, 0.5, 1.0, 1.5]
out = gn.zeros(2, device="cuda"); dist.reduce_scatter_tensor(out, (gn.arange(4.0) * (r + 1)).cuda())
assert out.cpu().tolist() == ([0.0, 3.0] if r == 0 else [6.0, 9.0])
if r == 0:
    dist.send(gn.tensor([7, 8], dtype=gn.int32, device="cuda"), dst=1)
else:
    got = gn.zeros(2, dtype=gn.int32, device="cuda"); dist.recv(got, src=0); assert got.cpu().tolist() == [7, 8]
mine = gn.zeros(2, device="cuda")
dist.scatter(mine, [gn.tensor([1.0, 2.0]).cuda(), gn.tensor([3.0, 4.0]).cuda()] if r == 0 else None, src=0)
assert mine.cpu().tolist() == ([1.0, 2.0] if r == 0 else [3.0, 4.0])

def trained(device, compiled=False):   # DDP from rank-dependent starts: rank 0's weights, averaged gradients
    gn.manual_seed(r)
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)).to(device)
    ddp = nn.parallel.DistributedDataParallel(model)
    opt = gn.optim.SGD(ddp.parameters(), lr=0.1)
    x, y = gn.arange(12.0).reshape(4, 3).div(10) * (r + 1), gn.ones(4, 2)
    def step(x, y):
        opt.zero_grad()
        ((ddp(x) - y) ** 2).mean().backward()
        opt.step()
    step = gn.compile(step) if compiled else step
    for _ in range(3):
        step(x.to(device), y.to(device))
    assert all(p.device.type == device for p in model.parameters())
    return gn.cat([p.detach().cpu().reshape(-1) for p in model.parameters()])
cuda, cpu, compiled = trained("cuda"), trained("cpu"), trained("cuda", compiled=True)
both = [gn.zeros_like(cuda) for _ in range(n)]
dist.all_gather(both, compiled)
print(r, "cuda ddp vs cpu ddp", (cuda - cpu).abs().max().item(), "compiled", (compiled - cpu).abs().max().item(),
      "ranks differ", (both[0] - both[1]).abs().max().item())
"""


def test_cuda_tensors_are_staged_through_host_buffers(ranks):
    """Under the CUDA simulator, with backend="nccl" (accepted, with a warning): every collective on CUDA tensors
    gives the CPU results and leaves them on the device, and DDP of a CUDA model, eager and compiled (its
    all_reduce node runs on the host), trains as the CPU one does, identically on both ranks."""
    _, out, _ = ranks(CUDA, timeout=180, env={"NUMBA_ENABLE_CUDASIM": "1"})
    for r in (0, 1):
        found = re.search(rf"{r} cuda ddp vs cpu ddp (\S+) compiled (\S+) ranks differ (\S+)", out)
        assert found and max(map(float, found.groups()[:2])) < 1e-6 and float(found.group(3)) == 0.0, out

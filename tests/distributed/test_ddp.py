"""DistributedDataParallel on 2 MPI ranks: same parameters on both ranks, equal to one process on the whole batch."""
import re

import pytest

TRAIN = """
import copy
import numpy as np
import graphnet as gn, graphnet.distributed as dist
from graphnet import nn

dist.init_process_group("mpi")
r, w = dist.get_rank(), dist.get_world_size()
gn.manual_seed(r)   # each rank starts from other weights: DDP must broadcast rank 0's

def mlp():
    return nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 8), nn.Tanh(), nn.Linear(8, 2))

model = mlp()
ddp = nn.parallel.DistributedDataParallel(model, bucket_cap_mb={cap})
assert ddp.module is model and list(ddp.state_dict())[0] == "module.0.weight"
start = copy.deepcopy(model.state_dict())
rng = np.random.default_rng(0)
X = gn.tensor(rng.standard_normal((3, 6, 4)).astype("float32"))
Y = gn.tensor(rng.standard_normal((3, 6, 2)).astype("float32"))
opt = gn.optim.SGD(ddp.parameters(), lr=0.1, momentum=0.9)
for step in range(3):
    opt.zero_grad()
    mine = slice(3 * r, 3 * r + 3)
    if {no_sync}:   # 1 + 2 rows on each rank, the first without synchronising (sum / 6 = its 3 rows' mean)
        with ddp.no_sync():
            ((ddp(X[step, 3 * r:3 * r + 1]) - Y[step, 3 * r:3 * r + 1]) ** 2).sum().div(3 * 2).backward()
        ((ddp(X[step, 3 * r + 1:3 * r + 3]) - Y[step, 3 * r + 1:3 * r + 3]) ** 2).sum().div(3 * 2).backward()
    else:
        ((ddp(X[step, mine]) - Y[step, mine]) ** 2).mean().backward()
    opt.step()

flat = gn.cat([p.detach().reshape(-1) for p in model.parameters()])
both = [gn.zeros_like(flat) for _ in range(w)]
dist.all_gather(both, flat)
if r == 0:
    ref = mlp()
    ref.load_state_dict(start)
    ref_opt = gn.optim.SGD(ref.parameters(), lr=0.1, momentum=0.9)
    for step in range(3):
        ref_opt.zero_grad()
        ((ref(X[step]) - Y[step]) ** 2).mean().backward()
        ref_opt.step()
    expected = gn.cat([p.detach().reshape(-1) for p in ref.parameters()])
    print("ranks differ by", (both[0] - both[1]).abs().max().item())
    print("reference differs by", (both[0] - expected).abs().max().item())
"""

MISMATCH = """
import graphnet as gn, graphnet.distributed as dist
from graphnet import nn
dist.init_process_group("mpi")
r = dist.get_rank()
model = nn.Sequential(nn.Linear(4, 3), nn.Linear(3, 2)) if r == 0 else nn.Sequential(nn.Linear(4, 3), nn.Linear(4, 2))
try:
    nn.parallel.DistributedDataParallel(model)
except RuntimeError as exc:
    print(r, "error:", exc)
unused = nn.ModuleDict({"used": nn.Linear(2, 2), "spare": nn.Linear(2, 2)})
class Partial(nn.Module):
    def __init__(self):
        super().__init__()
        self.inner = unused
    def forward(self, x):
        return self.inner["used"](x)
ddp = nn.parallel.DistributedDataParallel(Partial())
ddp(gn.ones(1, 2)).sum().backward()
try:
    ddp(gn.ones(1, 2))
except RuntimeError as exc:
    print(r, "unused:", exc)
found = nn.parallel.DistributedDataParallel(Partial(), find_unused_parameters=True)
for _ in range(2):
    found.zero_grad()
    found(gn.ones(1, 2) * (r + 1)).sum().backward()
assert found.module.inner["spare"].weight.grad is None
print(r, "found grad", found.module.inner["used"].weight.grad.tolist())
"""


def _check(output):
    differ = float(output.split("ranks differ by ")[1].split()[0])
    ref = float(output.split("reference differs by ")[1].split()[0])
    assert differ == 0.0 and ref < 1e-6, output


def test_ddp_matches_one_process_on_the_whole_batch(ranks):
    _check(ranks(TRAIN.format(cap=25, no_sync=False))[1])


def test_ddp_small_buckets_and_no_sync(ranks):
    _check(ranks(TRAIN.format(cap=0.0002, no_sync=True))[1])


def test_ddp_refuses_different_models_and_reports_unused_parameters(ranks):
    _, output, _ = ranks(MISMATCH)
    for r in (0, 1):
        assert (f"{r} error: DDP expects same model across all ranks, but rank 1's parameter 2 is '1.weight' with "
                "shape [2, 4] and dtype graphnet.float32, while rank 0's is '1.weight' with shape [2, 3]") in output
        assert (f"{r} unused: Expected to have finished reduction in the prior iteration before starting a new "
                "one.") in output
        assert "did not receive a gradient: ['inner.spare.weight', 'inner.spare.bias']" in output
        assert f"{r} found grad [[1.5, 1.5], [1.5, 1.5]]" in output


COMPILED = """
import copy, os, warnings
import numpy as np
import graphnet as gn, graphnet.distributed as dist
from graphnet import nn

os.environ["GRAPHNET_DRIVER_COLLECTIVES"] = "{native}"   # 1: MPI called from the driver; 0: the split design
dist.init_process_group("mpi")
r, w = dist.get_rank(), dist.get_world_size()
gn.manual_seed(r)

def mlp():
    norm = [nn.BatchNorm1d(8)] if {batch_norm} else []   # buffers: broadcast from rank 0 before each forward
    return nn.Sequential(nn.Linear(4, 8), *norm, nn.Tanh(), nn.Linear(8, 2))

def trainer(compiled):
    model = mlp()
    gn.manual_seed(0)   # the same start on both ranks and for both trainers (DDP broadcasts it anyway)
    for p in model.parameters():
        p.data.copy_(gn.randn(*p.shape))
    ddp = nn.parallel.DistributedDataParallel(model, bucket_cap_mb=1e-4 if {batch_norm} else 25)   # 3 or 1 buckets
    opt = gn.optim.SGD(ddp.parameters(), lr=0.1, momentum=0.9)
    def step(x, y):
        opt.zero_grad()
        loss = ((ddp(x) - y) ** 2).mean()
        loss.backward()
        opt.step()
        return loss
    return model, ddp, (gn.compile(step) if compiled else step)

rng = np.random.default_rng(0)
X = gn.tensor(rng.standard_normal((4, 6, 4)).astype("float32"))
Y = gn.tensor(rng.standard_normal((4, 6, 2)).astype("float32"))
(eager_model, _, eager), (compiled_model, compiled_ddp, compiled) = trainer(False), trainer(True)
start = copy.deepcopy(eager_model.state_dict())
with warnings.catch_warnings():
    warnings.simplefilter("error")   # no fallback to eager
    for step in range(4):
        mine = slice(3 * r, 3 * r + 3)
        eager(X[step, mine], Y[step, mine])
        compiled(X[step, mine], Y[step, mine])
ops = [n.op for n in compiled.graph().nodes]
print(r, "all_reduce nodes", ops.count("all_reduce"), "broadcast nodes", ops.count("broadcast"), "buckets",
      len(compiled_ddp._buckets))
print(r, "matmuls after the first all_reduce", ops[ops.index("all_reduce"):].count("matmul"))
(program,) = compiled._last.programs
print(r, "parts", len(program.parts), "one driver", program.parts == [program.driver])
flat = lambda ts: gn.cat([t.detach().reshape(-1).float() for t in ts])
params = flat(compiled_model.parameters())   # buffers differ until the next forward broadcasts rank 0's, as in torch
both = [gn.zeros_like(params) for _ in range(w)]
dist.all_gather(both, params)
ref = mlp()
ref.load_state_dict(start)
ref_opt = gn.optim.SGD(ref.parameters(), lr=0.1, momentum=0.9)
for step in range(4):
    ref_opt.zero_grad()
    ((ref(X[step]) - Y[step]) ** 2).mean().backward()
    ref_opt.step()
print(r, "ranks differ by", (both[0] - both[1]).abs().max().item())
everything = lambda m: flat([*m.parameters(), *m.buffers()])
print(r, "compiled vs eager", (everything(compiled_model) - everything(eager_model)).abs().max().item())
print(r, "compiled vs one process", (everything(compiled_model) - everything(ref)).abs().max().item())

def backward(x, y):   # no_sync() and synced backward passes: the guard on require_backward_grad_sync keeps
    ((compiled_ddp(x) - y) ** 2).mean().backward()   # a variant for each
compiled_backward = gn.compile(backward)
nodes = []
with warnings.catch_warnings():
    warnings.simplefilter("error")
    for step in range(3):
        for sync in (False, True):
            compiled_model.zero_grad()
            compiled_ddp.require_backward_grad_sync = sync
            compiled_backward(X[step, 3 * r:3 * r + 3], Y[step, 3 * r:3 * r + 3])
            if step == 2:
                nodes.append([n.op for n in compiled_backward.graph().nodes].count("all_reduce"))
print(r, "no_sync / synced variants' all_reduce nodes", *nodes)
dist.destroy_process_group()
try:
    compiled(X[0, :3], Y[0, :3])
except ValueError as exc:
    print(r, "after destroy_process_group:", exc)
"""


def _figure(output, rank, what):
    return float(re.search(rf"{rank} {what} (\S+)", output).group(1))


@pytest.mark.parametrize("batch_norm, native", [(False, True), (True, True), (True, False)])
def test_a_compiled_ddp_step_all_reduces_in_the_graph(ranks, batch_norm, native):
    """graphnet.compile(step) on a DDP model: no fallback, one all_reduce node per bucket in the Program, each as
    early as the backward allows (and a broadcast node per buffer), the ranks' parameters stay equal, and after 4
    steps the parameters and buffers match the eager DDP run, and (without BatchNorm, whose batch statistics are
    per rank) one process on both halves. `native`: the driver calls MPI itself and the step is one call, or (the
    split design) the Program stops at each collective. Either way, a call after destroy_process_group raises."""
    _, out, _ = ranks(COMPILED.replace("{batch_norm}", str(batch_norm)).replace("{native}", str(int(native))),
                      timeout=120)
    for r in (0, 1):
        nodes = re.search(rf"{r} all_reduce nodes (\d+) broadcast nodes (\d+) buckets (\d+)", out)
        buckets = 3 if batch_norm else 1
        assert nodes and nodes.groups() == (str(buckets), "3" if batch_norm else "0", str(buckets)), out
        assert _figure(out, r, "ranks differ by") == 0.0, out
        assert re.search(rf"{r} no_sync / synced variants' all_reduce nodes 0 {buckets}", out), out
        # each bucket is all-reduced as soon as its gradients are ready: with 3 buckets, the first layer's
        # weight gradient (a matmul) is still to come after the first all_reduce; with 1, none is
        assert _figure(out, r, "matmuls after the first all_reduce") == (1 if batch_norm else 0), out
        assert _figure(out, r, "compiled vs eager") < 1e-6, out
        assert batch_norm or _figure(out, r, "compiled vs one process") < 1e-6, out
        one_call = re.search(rf"{r} parts (\d+) one driver (\w+)", out)
        assert one_call and (one_call.groups() == ("1", "True") if native else int(one_call.group(1)) > 1), out
        assert (f"{r} after destroy_process_group: Default process group has not been initialized, please make "
                "sure to call init_process_group.") in out, out


NO_SYNC = """
import warnings
import graphnet as gn, graphnet.distributed as dist
from graphnet import nn

dist.init_process_group("mpi")
r = dist.get_rank()

def trainer(compiled):
    gn.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 2))
    ddp = nn.parallel.DistributedDataParallel(model)
    opt = gn.optim.SGD(ddp.parameters(), lr=0.1, momentum=0.9)
    def micro_step(x, y):   # backward only: the caller zeroes, accumulates under no_sync(), then steps
        ((ddp(x) - y) ** 2).mean().backward()
    return model, opt, ddp, (gn.compile(micro_step) if compiled else micro_step)

gn.manual_seed(1 + r)
rounds = [[(gn.randn(3, 4), gn.randn(3, 2)) for _ in range(3)] for _ in range(4)]
runs = [trainer(False), trainer(True)]
with warnings.catch_warnings():
    warnings.simplefilter("error")   # no fallback to eager
    for batches in rounds:
        for model, opt, ddp, micro_step in runs:
            opt.zero_grad(set_to_none=True)
            with ddp.no_sync():
                for x, y in batches[:-1]:
                    micro_step(x, y)
            micro_step(*batches[-1])
            opt.step()
flat = lambda m: gn.cat([p.detach().reshape(-1) for p in m.parameters()])
both = [gn.zeros_like(flat(runs[1][0])) for _ in range(2)]
dist.all_gather(both, flat(runs[1][0]))
print(r, "accumulated compiled vs eager", (flat(runs[0][0]) - flat(runs[1][0])).abs().max().item())
print(r, "ranks differ by", (both[0] - both[1]).abs().max().item())
print(r, "variants", runs[1][3].stats()["variants"])
"""


def test_compiled_no_sync_accumulation_matches_eager(ranks):
    """Micro-batches accumulated under no_sync() by a compiled backward-only function, the last one synchronised,
    zero_grad(set_to_none=True) between rounds: parameters equal eager DDP's and both ranks', with one variant per
    case (fresh gradient, accumulating, accumulating and all-reducing)."""
    _, out, _ = ranks(NO_SYNC, timeout=120)
    for r in (0, 1):
        assert _figure(out, r, "accumulated compiled vs eager") < 1e-6, out
        assert _figure(out, r, "ranks differ by") == 0.0, out
        assert _figure(out, r, "variants") <= 3, out


EACH_STEP = """
import copy, warnings
import graphnet as gn, graphnet.distributed as dist
from graphnet import nn
from examples.lenet import LeNet

dist.init_process_group("mpi")
r, w = dist.get_rank(), dist.get_world_size()

def build(name):
    return LeNet() if name == "lenet" else nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))

gn.manual_seed(0)
shape = (1, 32, 32) if "{model}" == "lenet" else (1, 8, 8)
X, Y = gn.randn(3, 2 * w, *shape), gn.randint(0, 10, (3, 2 * w))
for compiled in (False, True):
    gn.manual_seed(r)   # each rank starts elsewhere: DDP broadcasts rank 0's weights
    model = build("{model}")
    ddp = nn.parallel.DistributedDataParallel(model)
    ref = copy.deepcopy(model)   # after DDP's broadcast: rank 0's start
    opt, ref_opt = (gn.optim.SGD(m.parameters(), lr=0.05, momentum=0.9) for m in (ddp, ref))
    def step(x, y):
        opt.zero_grad()
        nn.functional.cross_entropy(ddp(x), y).backward()
        opt.step()
    step = gn.compile(step) if compiled else step
    worst_ranks = worst_ref = 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")   # no fallback to eager
        for k in range(3):
            step(X[k, 2 * r:2 * r + 2], Y[k, 2 * r:2 * r + 2])
            ref_opt.zero_grad()
            nn.functional.cross_entropy(ref(X[k]), Y[k]).backward()   # one process, the concatenated batch
            ref_opt.step()
            flat = gn.cat([p.detach().reshape(-1) for p in model.parameters()])
            both = [gn.zeros_like(flat) for _ in range(w)]
            dist.all_gather(both, flat)
            expected = gn.cat([p.detach().reshape(-1) for p in ref.parameters()])
            worst_ranks = max(worst_ranks, (both[0] - both[1]).abs().max().item())
            worst_ref = max(worst_ref, (flat - expected).abs().max().item())
    print(r, "compiled" if compiled else "eager", "ranks differ by", worst_ranks, "reference differs by", worst_ref)
"""


@pytest.mark.parametrize("model", ["lenet", "mlp"])
def test_lenet_and_mlp_match_one_process_after_every_step_eager_and_compiled(ranks, model):
    """2 ranks x 2 samples against one process on the 4 concatenated samples, 3 SGD-momentum steps from rank 0's
    weights: after each step both ranks hold the same parameters, equal to the single process's to float32
    round-off, eagerly and compiled (one compiled call per step, no fallback)."""
    _, out, _ = ranks(EACH_STEP.replace("{model}", model), timeout=180)
    for r in (0, 1):
        for mode in ("eager", "compiled"):
            found = re.search(rf"{r} {mode} ranks differ by (\S+) reference differs by (\S+)", out)
            assert found and float(found.group(1)) == 0.0 and float(found.group(2)) < 2e-6, out

"""The launcher: a failing or killed rank ends the job quickly, naming the rank; thread counts split between ranks."""
import os
import subprocess
import sys

import pytest

import graphnet.distributed.run as run

FAIL = """
import graphnet as gn, graphnet.distributed as dist
dist.init_process_group("mpi")
if dist.get_rank() == 1:
    raise RuntimeError("rank one gives up")
dist.all_reduce(gn.ones(2))   # rank 0 waits here until the abort stops it
"""


def test_a_failing_rank_aborts_the_job_and_is_named(ranks):
    code, output, seconds = ranks(FAIL, timeout=30, check=False)
    assert code != 0 and seconds < 30
    assert "graphnet.distributed.run: rank 1 (of 2) failed:" in output
    assert "RuntimeError: rank one gives up" in output


KILLED = """
import os, signal
import graphnet as gn, graphnet.distributed as dist
from graphnet import nn
dist.init_process_group("mpi")
model = nn.Sequential(nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, 2))
ddp = nn.parallel.DistributedDataParallel(model, bucket_cap_mb=0.01)
step = [0]
if dist.get_rank() == {victim}:   # layer 0's gradient comes last: the other buckets' all-reduces are in flight
    model[0].weight.register_hook(lambda g: os.kill(os.getpid(), signal.SIGKILL) if step[0] == 2 else None)
x = gn.randn(8, 64)
for step[0] in range(10 ** 6):   # the survivor waits in its all-reduce for the dead rank, until mpiexec stops it
    ddp(x).sum().backward()
"""


@pytest.mark.parametrize("victim", [0, 1])
def test_a_rank_killed_mid_backward_ends_the_job_naming_rank_and_signal(ranks, victim):
    code, output, seconds = ranks(KILLED.format(victim=victim), timeout=30, check=False)
    assert code == 128 + 9 and seconds < 30, output
    assert f"process rank {victim} with PID" in output and "signal 9" in output, output
    assert "a rank was killed by SIGKILL (signal 9); the other ranks were stopped" in output


def test_as_rank_under_an_outside_mpiexec(ranks, tmp_path):
    """srun / a cluster's mpirun start the ranks; `run --as-rank` runs the script in each, aborting on a failure."""
    script = tmp_path / "as_rank.py"
    script.write_text(FAIL)
    root = ["--allow-run-as-root"] if os.geteuid() == 0 else []
    cmd = [run.find_mpiexec(), *root, "--oversubscribe", "-n", "2", sys.executable, "-m", "graphnet.distributed.run",
           "--as-rank", str(script)]
    proc = subprocess.run(cmd, env=ranks.environment(), capture_output=True, text=True, timeout=30)
    assert proc.returncode != 0 and "graphnet.distributed.run: rank 1 (of 2) failed:" in proc.stderr


def test_describe_failure():
    assert run.describe_failure(0) is None
    assert run.describe_failure(1) == "graphnet.distributed.run: job failed with exit status 1"
    assert "a rank was killed by SIGTERM (signal 15)" in run.describe_failure(128 + 15)
    assert "mpiexec was killed by SIGKILL" in run.describe_failure(-9)


def test_ranks_see_the_launcher_environment(ranks):
    _, output, _ = ranks("""
        import os
        before = [os.environ[k] for k in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE")]  # as torchrun
        import graphnet.distributed as dist
        dist.init_process_group()
        assert before == [str(dist.get_rank()), str(dist.get_rank()), "2", "2"], before
        print("rank", dist.get_rank(), os.environ["LOCAL_RANK"], os.environ["OMP_NUM_THREADS"])
    """)
    threads = str(max(1, (os.cpu_count() or 1) // 2))
    assert f"rank 0 0 {threads}" in output and f"rank 1 1 {threads}" in output


def test_command_and_environment():
    cmd = run.command(3, "train.py", ["--lr", "0.1"], mpiexec="/x/mpiexec")
    assert cmd[0] == "/x/mpiexec" and cmd[cmd.index("-n") + 1] == "3" and "--oversubscribe" in cmd
    assert cmd[-6:] == [run.sys.executable, "-m", "graphnet.distributed._bootstrap", "train.py", "--lr", "0.1"]
    assert ("--allow-run-as-root" in cmd) == (os.geteuid() == 0)
    env = run.environment(2, base={"OMP_NUM_THREADS": "7"})
    assert env["OMP_NUM_THREADS"] == "7" and env["OMPI_MCA_mpi_yield_when_idle"] == "1"
    assert run.environment(2, base={"OMPI_MCA_mpi_yield_when_idle": "0"})["OMPI_MCA_mpi_yield_when_idle"] == "0"
    assert env["NUMBA_NUM_THREADS"] == env["OPENBLAS_NUM_THREADS"] == str(max(1, (os.cpu_count() or 1) // 2))

"""The launcher: a failing rank aborts the job quickly, naming the rank; thread counts split between ranks."""
import os

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


def test_ranks_see_the_launcher_environment(ranks):
    _, output, _ = ranks("""
        import os
        import graphnet.distributed as dist
        dist.init_process_group()
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
    assert env["OMP_NUM_THREADS"] == "7"
    assert env["NUMBA_NUM_THREADS"] == env["OPENBLAS_NUM_THREADS"] == str(max(1, (os.cpu_count() or 1) // 2))

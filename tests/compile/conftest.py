"""Compiled tests share one kernel cache directory per session (as a user's ~/.cache/graphnet would)."""
import pytest


@pytest.fixture(autouse=True)
def _kernel_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("GRAPHNET_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "kernel-cache"))

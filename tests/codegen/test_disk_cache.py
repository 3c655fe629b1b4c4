"""The on-disk cache (codegen/disk_cache.py) survives what it finds: a damaged kernel file, Numba cache file or
call-site record is rebuilt with one warning, a planted record runs no code, an unwritable directory is replaced by a
private one, and temp files of interrupted writes are swept. A "later run" is a fresh process over the same cache."""
import os
import pickle
import shutil
import stat
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from numba import njit, types

from graphnet.codegen import calls, cpu, disk_cache

_KERNEL = textwrap.dedent("""
    import numpy as np
    from graphnet.codegen import cpu

    fn = cpu.load('''import numpy as np
    from numba import njit


    @njit(cache=True)
    def kernel(a, out):
        for i in range(a.size):
            out[i] = a[i] * 2.0 + 1.0
    ''')
    out = np.zeros(4)
    fn(np.arange(4.0), out)
    print(repr((out.tolist(), sum(fn.stats.cache_hits.values()))))
""")

_DRIVER = textwrap.dedent("""
    import graphnet as torch

    f = torch.compile(lambda a: torch.sigmoid(a * 2).sum(0) + 1)
    torch.manual_seed(0)
    a = torch.randn(5, 3)
    got = [f(a).numpy().tolist() for _ in range(3)][-1]
    (prog,) = f._last.programs
    typed = sum(prog.driver.fn.stats.cache_misses.values())  # compiled here, not loaded from Numba's cache
    print(repr((got, prog.parts == [prog.driver], typed)))
""")


def _run(script, cache):
    """(the repr the script prints last, its stderr) for a fresh process over the cache at `cache`."""
    env = dict(os.environ, GRAPHNET_CACHE_DIR=str(cache))
    env.pop("NUMBA_CACHE_DIR", None)  # Numba's files go next to the kernel files, in the cache under test
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return eval(proc.stdout.strip().splitlines()[-1]), proc.stderr


def _damage(path, how):
    """Cut `path` in half ("truncated"), or flip 64 of its bytes at its start or middle ("garbled-head"/"-middle")."""
    data = path.read_bytes()
    if how == "truncated":
        path.write_bytes(data[:len(data) // 2])
    else:
        at = 0 if how == "garbled-head" else len(data) // 2
        path.write_bytes(data[:at] + bytes(b ^ 0x5A for b in data[at:at + 64]) + data[at + 64:])


def _warnings(stderr):
    return [line for line in stderr.splitlines() if "UserWarning: graphnet" in line]


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    """Every test's own cache directory, for this process and the ones it starts."""
    monkeypatch.setenv("GRAPHNET_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.mark.parametrize("how", ["truncated", "garbled-middle"])
def test_a_damaged_kernel_file_is_rebuilt_with_one_warning(cache, how):
    (want, _), _ = _run(_KERNEL, cache)
    (path,) = (cache / "kernels").glob("k_*.py")
    source = path.read_bytes()
    _damage(path, how)
    (got, _), stderr = _run(_KERNEL, cache)
    assert got == want and path.read_bytes() == source
    (warning,) = _warnings(stderr)
    assert str(path) in warning and "rebuilt" in warning
    assert _warnings(_run(_KERNEL, cache)[1]) == []


@pytest.mark.parametrize("suffix, how", [(".nbi", "truncated"), (".nbi", "garbled-head"), (".nbc", "truncated"),
                                         (".nbc", "garbled-head"), (".nbc", "garbled-middle")])
def test_a_damaged_numba_cache_file_is_rebuilt_with_one_warning(cache, suffix, how):
    (want, _), _ = _run(_KERNEL, cache)
    numba_cache = cache / "kernels" / "__pycache__"
    (path,), (index,) = numba_cache.glob("*" + suffix), numba_cache.glob("*.nbi")
    _damage(path, how)
    (got, _), stderr = _run(_KERNEL, cache)
    assert got == want
    (warning,) = _warnings(stderr)
    assert str(index) in warning and "rebuilt" in warning
    (got, hits), stderr = _run(_KERNEL, cache)
    assert got == want and hits == 1 and _warnings(stderr) == []  # the next run loads the rebuilt entry


@pytest.mark.parametrize("how", ["truncated", "garbled-middle"])
def test_a_damaged_call_site_record_is_rebuilt_with_one_warning(cache, how):
    (want, one_call, _), _ = _run(_DRIVER, cache)
    (record,) = (cache / "kernels").glob("*.sites*")
    _damage(record, how)
    (got, one_call, typed), stderr = _run(_DRIVER, cache)
    assert got == want and one_call and typed > 0  # typed again, so the record is rebuilt
    (warning,) = _warnings(stderr)
    assert str(record) in warning and "rebuilt" in warning
    (got, one_call, typed), stderr = _run(_DRIVER, cache)
    assert got == want and one_call and typed == 0 and _warnings(stderr) == []


def test_a_driver_cached_without_its_record_is_typed_again_and_the_record_rebuilt(cache):
    (want, _, _), _ = _run(_DRIVER, cache)
    (record,) = (cache / "kernels").glob("*.sites*")
    record.unlink()  # as if the process was killed between Numba saving the driver and graphnet its record
    (got, one_call, typed), stderr = _run(_DRIVER, cache)
    assert got == want and one_call and typed > 0 and record.exists() and _warnings(stderr) == []
    (got, one_call, typed), _ = _run(_DRIVER, cache)
    assert got == want and one_call and typed == 0


class _Planted:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return open, (self.marker, "w")


def test_a_planted_pickle_record_runs_no_code(cache, tmp_path):
    (want, _, _), _ = _run(_DRIVER, cache)
    (record,) = (cache / "kernels").glob("*.sites*")
    marker = tmp_path / "planted-code-ran"
    record.write_bytes(pickle.dumps(_Planted(str(marker))))
    (got, one_call, _), stderr = _run(_DRIVER, cache)
    assert not marker.exists()
    assert got == want and one_call and len(_warnings(stderr)) == 1


@njit(cache=False)
def _axpy(a, x, y):
    for i in range(x.size):
        y[i] += a * x[i]


@njit(cache=False)
def _driver_d0(x, y, addresses):
    calls.call_compiled("d0:0:_axpy", _axpy, addresses[0], np.float32(2.0), x, y)
    return y


@njit(cache=False)
def _driver_d1(x, y, addresses):  # its own token: Numba caches the typing of a site literal per process
    calls.call_compiled("d1:0:_axpy", _axpy, addresses[0], np.float32(2.0), x, y)
    return y


@pytest.mark.parametrize("token, driver, sites", [("d0", _driver_d0, {}),
                                                  ("d1", _driver_d1, {0: ("np.save", (types.float32[::1],))})])
def test_a_record_that_does_not_name_the_drivers_kernels_is_rebuilt(tmp_path, token, driver, sites):
    """Intact JSON under a valid hash, but wrong: a missing site, or a callee that is no kernel."""
    x, y = np.arange(3, dtype=np.float32), np.ones(3, np.float32)
    record = str(tmp_path / "d.py.sites.json")
    sig = (types.float32[::1], types.float32[::1], types.int64[::1])
    calls._write(record, sig, sites)
    with pytest.warns(UserWarning, match="d.py.sites.json was damaged .* rebuilt"):
        addresses = calls.link(driver, str(tmp_path / "d.py"), token, 1, [x, y])
    np.testing.assert_array_equal(driver(x, y.copy(), addresses), y + 2 * x)
    assert calls._read(record, sig, 1, globals())[0][0] == "_axpy"


@njit(cache=False)
def _driver_d2(x, y, addresses):
    calls.call_compiled("d2:0:_axpy", _axpy, addresses[0], np.float32(2.0), x, y)
    return y


def test_a_record_for_other_argument_types_is_replaced_without_a_warning(tmp_path, recwarn):
    x, y = np.arange(3, dtype=np.float32), np.ones(3, np.float32)
    record = str(tmp_path / "d.py.sites.json")
    sig = (types.float32[::1], types.float32[::1], types.int64[::1])
    other = (types.float64[::1], types.float64[::1], types.int64[::1])
    calls._write(record, other, {0: ("_axpy", (types.float32, types.float64[::1], types.float64[::1]))})
    addresses = calls.link(_driver_d2, str(tmp_path / "d.py"), "d2", 1, [x, y])
    np.testing.assert_array_equal(_driver_d2(x, y.copy(), addresses), y + 2 * x)
    assert calls._read(record, sig, 1, globals())[0][0] == "_axpy" and len(recwarn) == 0


def _fallback_warnings(stderr, path):
    found = [w for w in _warnings(stderr) if "cannot write the cache directory" in w]
    assert len(found) == 1 and str(path) in found[0]


def test_an_uncreatable_cache_directory_falls_back_to_a_private_one(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    (want, _), _ = _run(_KERNEL, tmp_path / "ok")
    (got, _), stderr = _run(_KERNEL, blocker / "cache")
    assert got == want
    _fallback_warnings(stderr, blocker / "cache" / "kernels")


def _make_read_only(path):
    """Make `path` unwritable even for root (chattr +i); False where this system cannot."""
    path.chmod(0o555)
    if os.access(path, os.W_OK) and os.geteuid() == 0 and shutil.which("chattr"):
        subprocess.run(["chattr", "+i", str(path)], capture_output=True)
    try:
        (path / "probe").write_text("")
    except OSError:
        return True
    (path / "probe").unlink()
    return False


def test_a_read_only_cache_directory_falls_back_to_a_private_one(tmp_path):
    kernels = tmp_path / "cache" / "kernels"
    kernels.mkdir(parents=True)
    try:
        if not _make_read_only(kernels):
            pytest.skip("cannot make a read-only directory here")
        (want, _), _ = _run(_KERNEL, tmp_path / "ok")
        (got, _), stderr = _run(_KERNEL, tmp_path / "cache")
        assert got == want and list(kernels.iterdir()) == []
        _fallback_warnings(stderr, kernels)
    finally:
        if shutil.which("chattr"):
            subprocess.run(["chattr", "-i", str(kernels)], capture_output=True)
        kernels.chmod(0o755)


def test_the_cache_directory_is_created_user_only(cache):
    cpu.source_path("")
    for path in (cache, cache / "kernels"):
        assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, oct(path.stat().st_mode)


def _dead_pid():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_temp_files_of_interrupted_writes_are_removed_by_the_next_run(cache):
    kernels = cache / "kernels"
    kernels.mkdir(parents=True)
    dead = _dead_pid()
    interrupted = [kernels / f"k_0.py.{dead}.tmp", kernels / f"k_1.py.sites.json.0123abcd.{dead}.tmp"]
    live = kernels / f"k_2.py.0123abcd.{os.getpid()}.tmp"  # a write still under way in a running process
    for p in [*interrupted, live]:
        p.write_text("partial")
    _run(_KERNEL, cache)
    assert not any(p.exists() for p in interrupted) and live.exists()


def test_a_failed_write_leaves_the_old_file_and_no_temp_file(tmp_path, monkeypatch):
    path = tmp_path / "entry"
    path.write_text("old")

    def fail(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        disk_cache.write(str(path), "new")
    assert path.read_text() == "old" and os.listdir(tmp_path) == ["entry"]


def test_an_entry_is_verified_once_per_process(tmp_path):
    path, text = str(tmp_path / "entry"), "# some kernel\n"
    with open(path, "w") as f:
        f.write(text)
    assert disk_cache.read(path, disk_cache.digest(text)) == text
    os.unlink(path)  # read again, it would be missing
    assert disk_cache.read(path, disk_cache.digest(text)) == text

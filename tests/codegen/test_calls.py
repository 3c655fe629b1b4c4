"""A driver's calls into kernels through their entry points (codegen/calls.py): values, errors, the record of call
sites that lets a second process use the cached driver, and the fallback when that record is missing."""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from numba import errors, njit, types

from graphnet.codegen import calls


@njit(cache=False)
def _axpy(a, x, y):
    for i in range(x.size):
        y[i] += a * x[i]


@njit(cache=False)
def _checked(x):
    if x.size == 0:
        raise ValueError("checked: empty input")


@njit(cache=False)
def _driver(x, y, addresses):
    calls.call_compiled("t0:0:_axpy", _axpy, addresses[0], np.float32(2.0), calls.flat(x), y)
    return y


@njit(cache=False)
def _driver_t2(x, y, addresses):  # its own token: Numba caches the typing of a site literal per process
    calls.call_compiled("t2:0:_axpy", _axpy, addresses[0], np.float32(2.0), calls.flat(x), y)
    return y


@njit(cache=False)
def _failing(x, addresses):
    calls.call_compiled("t1:0:_checked", _checked, addresses[0], x)


def _link(fn, token, n, args, tmp_path):
    return calls.link(fn, str(tmp_path / f"{token}.py"), token, n, args)


def test_a_call_through_the_entry_point_equals_the_direct_call(tmp_path):
    x, y = np.arange(6, dtype=np.float32).reshape(2, 3), np.ones(6, np.float32)
    addresses = _link(_driver, "t0", 1, [x, y], tmp_path)
    got = _driver(x, y.copy(), addresses)
    want = y.copy()
    _axpy(np.float32(2.0), x.reshape(-1), want)
    np.testing.assert_array_equal(got, want)
    assert (tmp_path / "t0.py.sites.json").exists()


def test_an_exception_in_the_callee_reaches_the_caller(tmp_path):
    x = np.zeros(0, np.float32)
    addresses = _link(_failing, "t1", 1, [x], tmp_path)
    with pytest.raises(ValueError, match="checked: empty input"):
        _failing(x, addresses)


def test_flat_views_a_c_array_and_rejects_other_layouts():
    @njit
    def flat_of(a):
        return calls.flat(a)

    a = np.arange(24, dtype=np.float64).reshape(2, 3, 4)
    out = flat_of(a)
    assert out.shape == (24,) and np.shares_memory(out, a)
    np.testing.assert_array_equal(out, a.reshape(-1))
    with pytest.raises(errors.TypingError):
        flat_of(a.transpose(2, 0, 1))


def test_link_with_a_compiled_driver_but_no_record_returns_none(tmp_path):
    """As for a driver Numba loads from its cache after the record was deleted: nothing is typed, nothing known."""
    x, y = np.ones(3, np.float32), np.ones(3, np.float32)
    fn = njit(_driver.py_func)
    fn.compile((types.float32[::1], types.float32[::1], types.int64[::1]))
    calls._SITES.clear()
    assert calls.link(fn, str(tmp_path / "x.py"), "t0", 1, [x, y]) is None
    assert not (tmp_path / "x.py.sites.json").exists()


def test_a_driver_typed_again_rewrites_a_stale_record(tmp_path):
    x, y = np.arange(3, dtype=np.float32), np.ones(3, np.float32)
    record = str(tmp_path / "t2.py.sites.json")
    sig = (types.float32[::1], types.float32[::1], types.int64[::1])
    calls._write(record, sig, {0: ("_axpy", (types.float64, types.float64[::1], types.float64[::1]))})
    got = _driver_t2(x, y.copy(), calls.link(_driver_t2, str(tmp_path / "t2.py"), "t2", 1, [x, y]))
    np.testing.assert_array_equal(got, y + 2 * x)
    assert calls._read(record, sig, 1, globals())[0] == ("_axpy", (types.float32, types.float32[::1],
                                                                   types.float32[::1]))


def test_a_program_whose_driver_cannot_be_linked_runs_its_steps_from_python(monkeypatch):
    import graphnet as torch
    from graphnet.codegen import driver

    monkeypatch.setattr(driver.calls, "link", lambda *args: None)
    f = torch.compile(lambda a: torch.sigmoid(a * 2).sum(0) + 1)
    a = torch.randn(5, 3)
    for _ in range(3):
        got = f(a)
    np.testing.assert_allclose(got.numpy(), (torch.sigmoid(a * 2).sum(0) + 1).numpy(), rtol=1e-6)
    (prog,) = f._last.programs
    assert prog.parts == prog.steps


_SECOND_PROCESS = textwrap.dedent("""
    import numpy as np
    import graphnet as torch
    from graphnet.codegen import calls

    class Counting(dict):  # counts call sites typed in this process
        typed = 0

        def setdefault(self, key, default=None):
            Counting.typed += 1
            return super().setdefault(key, default)

    calls._SITES = Counting()
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(5, 4), torch.nn.ReLU(), torch.nn.Linear(4, 3))
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    x, y = torch.randn(8, 5), torch.randint(0, 3, (8,))

    def step():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss

    cstep = torch.compile(step)
    losses = [cstep().item() for _ in range(3)]
    (prog,) = cstep._last.programs
    print(repr((losses, prog.parts == [prog.driver], Counting.typed)))
""")


def test_a_second_process_uses_the_cached_driver_through_its_record(tmp_path):
    env = dict(os.environ, GRAPHNET_CACHE_DIR=str(tmp_path), NUMBA_CACHE_DIR=str(tmp_path / "numba"))
    runs = [eval(subprocess.run([sys.executable, "-c", _SECOND_PROCESS], env=env, capture_output=True, text=True,
                                check=True).stdout.strip().splitlines()[-1]) for _ in range(2)]
    (losses1, one_call1, typed1), (losses2, one_call2, typed2) = runs
    assert one_call1 and one_call2 and list(tmp_path.glob("kernels/*.sites.json"))
    assert typed1 > 0 and typed2 == 0  # the second process loaded the driver and read the record
    np.testing.assert_allclose(losses2, losses1, rtol=1e-6)

"""Compile a Program's new kernels in worker processes before it loads them: Numba compiles one function at a time
per process, and a model's training step has dozens of distinct kernels (a 4-layer GPT: 53, ~0.45 s each). The
workers fill the on-disk cache (cpu.load, cache=True); the Program then loads machine code. Forked workers start
in milliseconds; where fork is unavailable, or there is one core or few kernels, nothing happens here."""
import glob
import multiprocessing
import os

from . import cpu

MIN_KERNELS = 8  # fewer new kernels than this compile faster in-process than a pool starts and joins


def _cores():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def _cached(source):
    """Whether Numba's cache already holds machine code for `source` (its index file exists)."""
    path = cpu.source_path(source)
    stem = os.path.splitext(os.path.basename(path))[0]
    return bool(glob.glob(os.path.join(os.path.dirname(path), "__pycache__", glob.escape(stem) + ".*.nbi")))


def _compile(sources):
    for source in sources:
        cpu.load(source)


def precompile(sources):
    """Compile the `sources` whose machine code is not cached yet, spread over the cores; return how many."""
    new = [s for s in dict.fromkeys(sources) if not _cached(s)]
    workers = min(_cores(), len(new) // 2)
    if len(new) < MIN_KERNELS or workers < 2 or "fork" not in multiprocessing.get_all_start_methods():
        return 0
    for s in new:  # written once by this process, so workers never race on a kernel file
        cpu.load_source_file(s)
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_compile, args=(new[k::workers],), daemon=True) for k in range(workers)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    return len(new)

"""Compile a Program's new kernels in worker processes before it loads them: Numba compiles one function at a time
per process, and a model's training step has dozens of distinct kernels (a 4-layer GPT: 53, ~0.45 s each). The
workers fill the on-disk cache (cpu.load, cache=True); the Program then loads machine code. Forked workers start
in milliseconds; where fork is unavailable, or there is one core or few kernels, nothing happens here."""
import multiprocessing
import os

from numba.core import caching

from . import cpu

MIN_KERNELS = 8  # fewer new kernels than this compile faster in-process than a pool starts and joins


def _cores():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def _uncached(sources):
    """The `sources` with no machine code yet: neither imported by this process nor with an index file in Numba's
    cache (one listing of the cache folder, which holds thousands of files, rather than one per kernel)."""
    sources = [s for s in dict.fromkeys(sources) if not cpu.is_loaded(s)]
    if not sources:
        return []
    folder = numba_cache_folder(cpu.source_path(sources[0]))
    try:
        indexed = {name.split(".", 1)[0] for name in os.listdir(folder) if name.endswith(".nbi")}
    except FileNotFoundError:
        indexed = set()
    return [s for s in sources if os.path.splitext(os.path.basename(cpu.source_path(s)))[0] not in indexed]


def numba_cache_folder(py_file):
    """Where Numba caches the machine code of functions defined in `py_file`: the first of its own locators that
    applies (NUMBA_CACHE_DIR when set, else the file's __pycache__, ...), so the check sees what Numba will load."""
    for locator in caching.CacheImpl._locator_classes:
        found = locator.from_function(numba_cache_folder, py_file)
        if found is not None:
            return found.get_cache_path()
    return os.path.join(os.path.dirname(py_file), "__pycache__")


def _compile(sources):
    for source in sources:
        cpu.load(source)


def precompile(sources):
    """Compile the `sources` whose machine code is not cached yet, spread over the cores; return how many."""
    new = _uncached(sources)
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

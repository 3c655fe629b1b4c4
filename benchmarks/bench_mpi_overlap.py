"""Does the MPI library move a non-blocking all-reduce's data while the rank computes without calling MPI?

    python -m graphnet.distributed.run --nproc-per-node 2 benchmarks/bench_mpi_overlap.py [--mb 3.2] [--ms 10]

Times, as medians over --repeats barriers-separated rounds: a blocking Allreduce of --mb megabytes (float32, the
GPT's gradients by default), --ms of NumPy compute, the two one after the other, and Iallreduce / the same compute
/ Wait. If the library progressed the all-reduce in the background, the last would approach the compute alone; if
it only progresses inside MPI calls, it costs at least the blocking sum. This is what decides whether a compiled
DDP step should start its bucket all-reduces non-blocking (docs/distributed.md).
"""
import argparse
import time

import numpy as np


def median_ms(comm, fn, repeats):
    times = []
    for _ in range(repeats):
        comm.Barrier()
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times)) * 1e3


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mb", type=float, default=3.2)
    p.add_argument("--ms", type=float, default=10.0)
    p.add_argument("--repeats", type=int, default=15)
    args = p.parse_args(argv)
    from mpi4py import MPI

    comm = MPI.COMM_WORLD
    buf = np.ones(int(args.mb * 1e6 / 4), np.float32)
    a = np.random.default_rng(0).random((300, 300))

    def compute():
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < args.ms / 1e3:
            a @ a

    def blocking():
        comm.Allreduce(MPI.IN_PLACE, buf)

    def overlapped():
        request = comm.Iallreduce(MPI.IN_PLACE, buf)
        compute()
        request.Wait()

    rows = {"Allreduce": blocking, "compute": compute, "Allreduce + compute": lambda: (blocking(), compute()),
            "Iallreduce, compute, Wait": overlapped}
    results = {name: median_ms(comm, fn, args.repeats) for name, fn in rows.items()}
    if comm.Get_rank() == 0:
        print(f"{comm.Get_size()} ranks, {args.mb} MB float32, {MPI.Get_library_version().splitlines()[0]}")
        for name, ms in results.items():
            print(f"{name:28s} {ms:8.2f} ms")


if __name__ == "__main__":
    main()

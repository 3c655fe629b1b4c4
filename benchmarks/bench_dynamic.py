"""What changing batch sizes cost a compiled training step: dynamic=False (a Program per size) vs dynamic=None
(shape-generic after the second size), and the step time of a shape-generic Program against a static one.

    python benchmarks/bench_dynamic.py [--sizes 30] [--repeats 3] [--workload mlp_train|lenet_train]

Each configuration runs in a fresh process with empty kernel caches and 2 threads. `sizes`: the step is called
twice at each of batch sizes 33, 34, ... (the first call of a size may run eagerly); the row gives the total
seconds, the peak RSS growth and the variants kept. `steady`: median ms of 200 steps at batch 64 once compiled.
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from workloads import LR, MOMENTUM, THREADS, cap_threads  # noqa: E402


def _step(workload, dynamic):
    import graphnet as g

    nn, F = g.nn, g.nn.functional
    g.manual_seed(0)
    if workload == "mlp_train":
        model = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10))
        shape = (784,)
    else:
        model = nn.Sequential(nn.Conv2d(1, 6, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 16, 5), nn.ReLU(),
                              nn.MaxPool2d(2), nn.Flatten(), nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84),
                              nn.ReLU(), nn.Linear(84, 10))
        shape = (1, 32, 32)
    opt = g.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)

    @g.compile(dynamic=dynamic)
    def step(x, y):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss

    def batch(n):
        return g.randn(n, *shape), g.randint(0, 10, (n,))
    return step, batch


def _child(args):
    """One configuration, in this (fresh) process; prints a JSON row."""
    import warnings

    cap_threads(THREADS)
    warnings.simplefilter("ignore")
    dynamic = {"none": None, "false": False, "true": True}[args.dynamic]
    step, batch = _step(args.workload, dynamic)
    if args.mode == "sizes":
        rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        t0 = time.perf_counter()
        for n in range(33, 33 + args.sizes):
            x, y = batch(n)
            step(x, y).item()
            step(x, y).item()
        row = {"seconds": time.perf_counter() - t0, "variants": step.stats()["variants"],
               "rss_mb": (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) / 1024}
    else:
        if dynamic is None:  # two other sizes first, so batch 64 runs a shape-generic Program
            for n in (62, 63):
                step(*batch(n))
                step(*batch(n))
        x, y = batch(64)
        for _ in range(12):
            step(x, y).item()
        times = []
        for _ in range(200):
            t = time.perf_counter()
            step(x, y).item()
            times.append(time.perf_counter() - t)
        row = {"ms": statistics.median(times) * 1e3, "generic": bool(step._last.generic)}
    print(json.dumps(row))


def _run(args, mode, dynamic):
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, GRAPHNET_CACHE_DIR=cache, NUMBA_CACHE_DIR=os.path.join(cache, "numba"))
        cmd = [sys.executable, __file__, "--child", "--mode", mode, "--dynamic", dynamic, "--workload",
               args.workload, "--sizes", str(args.sizes)]
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, default=30)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--workload", default="mlp_train", choices=["mlp_train", "lenet_train"])
    p.add_argument("--child", action="store_true")
    p.add_argument("--mode", default="sizes")
    p.add_argument("--dynamic", default="none")
    args = p.parse_args()
    if args.child:
        return _child(args)
    print(f"{args.workload}: {args.sizes} batch sizes, each called twice; {args.repeats} runs per row")
    for dynamic in ("false", "none"):
        rows = [_run(args, "sizes", dynamic) for _ in range(args.repeats)]
        print(f"  sizes   dynamic={dynamic:5s} seconds " + " ".join(f"{r['seconds']:6.1f}" for r in rows)
              + "  rss +MB " + " ".join(f"{r['rss_mb']:5.0f}" for r in rows)
              + f"  variants kept {rows[-1]['variants']}")
    steady = {d: [_run(args, "steady", d)["ms"] for _ in range(args.repeats)] for d in ("false", "none")}
    for d, ms in steady.items():
        print(f"  steady  dynamic={d:5s} batch 64 ms/step " + " ".join(f"{m:6.3f}" for m in ms)
              + f"  median {statistics.median(ms):.3f}")
    ratio = statistics.median(steady["none"]) / statistics.median(steady["false"])
    print(f"  shape-generic / static step time: {ratio:.2f}")


if __name__ == "__main__":
    main()

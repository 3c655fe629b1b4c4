"""graphnet on an NVIDIA GPU vs PyTorch CUDA: fused-chain bandwidth, GEMM TFLOP/s, LeNet/MLP train steps.

Run on a machine with a GPU (the issue's targets: fused chain >= 70% of the device-to-device copy bandwidth, GEMM
>= 40% of PyTorch's FP32 matmul at 4096, LeNet train step at batch 256 <= 1.5x PyTorch CUDA eager):

    .venv/bin/python benchmarks/bench_gpu.py [--torch-python /path/to/venv-with-cuda-torch/bin/python]

`--smoke` runs tiny sizes (no train steps), e.g. under NUMBA_ENABLE_CUDASIM=1, to check the script itself. Each
framework runs in its own subprocess; every time is a median over synchronised repetitions.
"""
import argparse
import json
import os
import subprocess
import sys
import textwrap

HERE = os.path.dirname(os.path.abspath(__file__))
CASE_CODE = textwrap.dedent("""
    import importlib, json, statistics, sys, time
    sys.path.insert(0, {here!r})
    import numpy as np
    from bench_cpu import _chain, _model, train_step
    from workloads import make_data
    fw = {framework!r}
    g = importlib.import_module(fw)
    sync = g.cuda.synchronize

    def median_s(fn, reps):
        fn(); sync()
        times = []
        for _ in range(reps):
            t0 = time.perf_counter(); fn(); sync(); times.append(time.perf_counter() - t0)
        return statistics.median(times)

    out, n, reps = {{}}, {n}, {reps}
    x = g.from_numpy(np.random.default_rng(0).standard_normal(n, dtype=np.float32)).cuda()
    chain = g.compile(lambda t: _chain(g, t)) if fw == "graphnet" else (lambda t: _chain(g, t))
    out["copy_GBps"] = 8 * n / median_s(lambda: x.clone(), reps) / 1e9
    out["chain_GBps"] = 8 * n / median_s(lambda: chain(x), reps) / 1e9
    for size in {gemm_sizes}:
        a, b = (g.from_numpy(np.random.default_rng(s).standard_normal((size, size), dtype=np.float32)).cuda()
                for s in (1, 2))
        out[f"gemm{{size}}_TFLOPs"] = 2 * size ** 3 / median_s(lambda: a @ b, max(3, reps // 10)) / 1e12
    for workload, batch in {train}:
        data = make_data(workload)
        model = _model(g, workload, data["params"]).cuda()
        xs = g.from_numpy(np.random.default_rng(3).standard_normal((batch,) + data["x"].shape[1:],
                                                                   dtype=np.float32)).cuda()
        ys = g.from_numpy(np.random.default_rng(4).integers(0, 10, batch)).cuda()
        step = train_step(g, model, xs, ys)
        run = g.compile(step) if fw == "graphnet" else step
        run(); run()
        out[f"{{workload}}_b{{batch}}_ms"] = median_s(run, reps) * 1e3
    print(json.dumps(out))
""")


def run(framework, python, smoke):
    """The cases for one framework in a fresh interpreter; None (with the reason on stderr) when it fails there."""
    sizes = dict(n=1 << 12, reps=3, gemm_sizes=(32,), train=()) if smoke else dict(
        n=1 << 26, reps=50, gemm_sizes=(1024, 2048, 4096),
        train=(("mlp_train", 64), ("mlp_train", 256), ("lenet_train", 64), ("lenet_train", 256)))
    code = CASE_CODE.format(here=HERE, framework=framework, **sizes)
    proc = subprocess.run([python, "-c", code], capture_output=True, text=True)
    if proc.returncode != 0:
        print(f"{framework}: {(proc.stderr.strip().splitlines() or ['failed'])[-1]}", file=sys.stderr)
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--torch-python", help="interpreter with a CUDA build of torch (omit to skip PyTorch)")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, no train steps")
    args = parser.parse_args(argv)
    ours = run("graphnet", sys.executable, args.smoke) or {}
    theirs = (run("torch", args.torch_python, args.smoke) if args.torch_python else None) or {}
    print("| case | graphnet | PyTorch | graphnet / PyTorch |\n|---|---:|---:|---:|")
    for case, value in ours.items():
        other = theirs.get(case)
        ratio = f"{value / other:.2f}" if other else "—"
        print(f"| {case} | {value:.3g} | {other if other is None else f'{other:.3g}'} | {ratio} |")
    if ours:
        print(f"\nfused chain at {ours['chain_GBps'] / ours['copy_GBps']:.0%} of graphnet's own copy bandwidth")


if __name__ == "__main__":
    main()

"""Eager per-op overhead: `a + b` on 10-element tensors and a 64x256 @ 256x256 matmul, graphnet vs NumPy vs PyTorch.

Run: python benchmarks/bench_eager_overhead.py [--torch-python /path/to/venv-with-torch/bin/python]
Each framework is timed in its own subprocess (PyTorch usually lives in another venv); medians over many calls.
"""
import argparse
import json
import os
import subprocess
import sys
import textwrap

SETUP = {
    "numpy": "import numpy as np\nmk = lambda *s: np.random.default_rng(0).standard_normal(s, dtype=np.float32)",
    "graphnet": "import numpy as np, graphnet as g\n"
                "mk = lambda *s: g.from_numpy(np.random.default_rng(0).standard_normal(s, dtype=np.float32))",
    "torch": "import numpy as np, torch\ntorch.set_num_threads(2)\n"
             "mk = lambda *s: torch.from_numpy(np.random.default_rng(0).standard_normal(s, dtype=np.float32))",
}
CASES = {"add_10": ("a, b = mk(10), mk(10)", "a + b", 20000), "matmul_64x256x256": ("a, b = mk(64, 256), mk(256, 256)",
                                                                                    "a @ b", 2000)}
TIMER = textwrap.dedent("""
    import json, statistics, time
    out = {{}}
    for name, (prep, stmt, n) in {cases!r}.items():
        exec(prep)
        fn = eval("lambda: " + stmt)
        for _ in range(n // 10):
            fn()
        times = []
        for _ in range(15):
            t0 = time.perf_counter()
            for _ in range(n // 15):
                fn()
            times.append((time.perf_counter() - t0) / (n // 15))
        out[name] = statistics.median(times) * 1e6
    print(json.dumps(out))
""")


def run(framework, python):
    """Time every case for one framework in a fresh interpreter; None when it is not installed there."""
    env = dict(os.environ, OMP_NUM_THREADS="2", OPENBLAS_NUM_THREADS="2", MKL_NUM_THREADS="2")
    code = SETUP[framework] + "\n" + TIMER.format(cases=CASES)
    proc = subprocess.run([python, "-c", code], capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--torch-python", default=sys.executable, help="interpreter that has torch installed")
    args = parser.parse_args()
    results = {"numpy": run("numpy", sys.executable), "graphnet": run("graphnet", sys.executable),
               "torch": run("torch", args.torch_python)}
    print("| case | " + " | ".join(f"{k} µs" for k in results) + " | graphnet / numpy | graphnet / torch |")
    print("|---|" + "---:|" * (len(results) + 2))
    for case in CASES:
        vals = {k: (v or {}).get(case) for k, v in results.items()}
        cells = " | ".join(f"{v:.2f}" if v else "not installed" for v in vals.values())
        print(f"| {case} | {cells} | {_ratio(vals, 'numpy')} | {_ratio(vals, 'torch')} |")


def _ratio(vals, other):
    return f"{vals['graphnet'] / vals[other]:.2f}" if vals["graphnet"] and vals[other] else "n/a"


if __name__ == "__main__":
    main()

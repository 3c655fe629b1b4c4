"""graphnet vs PyTorch / JAX / tinygrad on the four CPU workloads, side by side in one run.

    python benchmarks/bench_cpu.py [--workloads all] [--steps 50] [--peers-python /path/to/python] [--no-peers]
    python benchmarks/bench_cpu.py --workloads gpt_train,lstm_train,gpt_generate   (W5/W7/W8: bench_models.py's rows)

Every row runs in a fresh process with 2 threads. graphnet's compiled rows start from empty kernel caches (a new
NUMBA_CACHE_DIR and GRAPHNET_CACHE_DIR), and a second "compiled (warm cache)" row reuses them, to show the
compile time a user sees once the disk cache is filled. For compiled graphnet, first-call is the time until the
first compiled step has run: call 1 runs eagerly (lazily created optimizer state appears), call 2 traces,
compiles and runs.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from workloads import BATCH, LR, MOMENTUM, THREADS, WARMUP_STEPS, WORKLOADS, Case, cap_threads, make_data, measure  # noqa: E402,I001
import bench_models  # noqa: E402


ONNX = ("lenet_infer",)  # workloads that also get an ONNX Runtime row (graphnet's export run by ORT)


def _chain(g, x):
    return g.sigmoid(g.relu(x * 2 + 1) * x - 0.5) * g.tanh(x)


def _model(g, workload, params):
    """The workload's network in graphnet, holding exactly the shared NumPy weights."""
    nn, F = g.nn, g.nn.functional
    if workload == "mlp_train":
        model = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10))
        layers = [model[0], model[2]]
        keys = ["fc1", "fc2"]
    else:
        class LeNet(nn.Module):
            def __init__(self):
                super().__init__()
                self.c1, self.c2 = nn.Conv2d(1, 6, 5), nn.Conv2d(6, 16, 5)
                self.f1, self.f2, self.f3 = nn.Linear(400, 120), nn.Linear(120, 84), nn.Linear(84, 10)

            def forward(self, x):
                x = F.max_pool2d(F.relu(self.c1(x)), 2)
                x = F.max_pool2d(F.relu(self.c2(x)), 2)
                return self.f3(F.relu(self.f2(F.relu(self.f1(x.flatten(1))))))

        model = LeNet()
        keys = ["c1", "c2", "f1", "f2", "f3"]
        layers = [getattr(model, k) for k in keys]
    with g.no_grad():
        for k, layer in zip(keys, layers):
            layer.weight.copy_(g.from_numpy(params[k + ".w"]))
            layer.bias.copy_(g.from_numpy(params[k + ".b"]))
    return model


def train_step(g, model, x, y):
    """The benchmarks' training step: mean cross-entropy, backward, SGD with momentum (PyTorch semantics)."""
    opt = g.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)

    def step():
        opt.zero_grad()
        loss = g.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss
    return step


class _Timed:
    """Wraps a step to record how long its second call took (the compiling call of graphnet.compile)."""

    def __init__(self, step, compiled=None):
        self.step, self.calls, self.second_s = step, 0, 0.0
        self.compiled = compiled  # the graphnet.compile object, for its Programs

    def __call__(self):
        t0 = time.perf_counter()
        out = self.step()
        self.calls += 1
        if self.calls == 2:
            self.second_s = time.perf_counter() - t0
        return out


def graphnet_case(workload, variant, data):
    import graphnet as g

    compiled = variant == "compiled"
    if workload == "eltwise_chain":
        x = g.from_numpy(data["x"])
        fn = g.compile(lambda t: _chain(g, t)) if compiled else (lambda t: _chain(g, t))
        return _Timed(lambda: fn(x), fn if compiled else None), "compile(fn) of the chain" if compiled else "eager ops"
    model = _model(g, workload, data["params"])
    x = g.from_numpy(data["x"])
    if variant == "onnxruntime":
        return _onnxruntime_case(g, model.eval(), x)
    if workload == "lenet_infer":
        model.eval()
        fwd = g.compile(model) if compiled else model

        def infer():
            with g.no_grad():
                return fwd(x)
        return _Timed(infer, fwd if compiled else None), "compile(model); no_grad" if compiled else "nn.Module; no_grad"
    step = train_step(g, model, x, g.from_numpy(data["y"].astype("int64")))
    step = g.compile(step) if compiled else step
    return _Timed(step, step if compiled else None), ("compile(train_step): one Program" if compiled else
                                                      "nn.Module + optim.SGD")


def _onnxruntime_case(g, model, x):
    """The same model exported by graphnet.onnx and run by ONNX Runtime on THREADS threads (the deployment route)."""
    import io

    import onnxruntime as ort

    buf = io.BytesIO()
    g.onnx.export(model, (x,), buf, input_names=["x"], output_names=["y"])
    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = THREADS, 1
    session = ort.InferenceSession(buf.getvalue(), opts, providers=["CPUExecutionProvider"])
    feed = {"x": x.numpy()}
    return _Timed(lambda: g.from_numpy(session.run(None, feed)[0])), f"graphnet.onnx.export + ORT {ort.__version__}"


def run_graphnet_row(variant, workload, steps):
    """Measure one graphnet row in this process (the child side of the subprocess protocol)."""
    import graphnet

    data = make_data(workload)
    timed, notes = graphnet_case(workload, "compiled" if variant.startswith("compiled") else variant, data)
    case = Case(lambda: timed(), to_host=lambda r: r.detach().numpy(), notes=notes)
    rec = dict(framework="onnxruntime" if variant == "onnxruntime" else "graphnet", variant=variant,
               workload=workload, version=graphnet.__version__)
    rec.update(measure(case, workload, data, WARMUP_STEPS["compiled" if "compiled" in variant else "eager"], steps))
    if variant.startswith("compiled"):
        rec["first_call_s"] += timed.second_s
        programs = timed.compiled._last.programs if timed.compiled._last else []
        steps = sum(len(p.steps) for p in programs)
        calls = sum(len(p.parts) for p in programs)
        drivers = sum(len(p.driver_sources) for p in programs)
        rec["notes"] += f"; {steps} steps in {calls} calls ({drivers} njit drivers)"
    return rec


def _graphnet_rows(workloads, steps, threads):
    rows = []
    with tempfile.TemporaryDirectory(prefix="gn_cache_") as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=os.path.join(cache, "numba"), GRAPHNET_CACHE_DIR=cache,
                   NUMBA_NUM_THREADS=str(threads))
        for wl in workloads:
            for variant in ("eager", "compiled", "compiled (warm cache)") + (("onnxruntime",) if wl in ONNX else ()):
                cmd = [sys.executable, os.path.abspath(__file__), "--row", f"{variant}:{wl}", "--steps", str(steps)]
                proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
                line = next((ln for ln in reversed(proc.stdout.splitlines()) if ln.startswith("{")), None)
                rec = json.loads(line) if line else dict(framework="graphnet", variant=variant, workload=wl,
                                                         error=(proc.stderr.strip().splitlines() or ["?"])[-1])
                rows.append(rec)
                print(f"graphnet {variant:22s} {wl:14s} "
                      f"{rec.get('median_ms', float('nan')):.3f} ms  first {rec.get('first_call_s', 0):.2f} s "
                      f"{rec.get('notes', rec.get('error', ''))}", file=sys.stderr, flush=True)
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", default="all")
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--peers-python", default=None, help="interpreter with torch/jax/tinygrad installed")
    parser.add_argument("--no-peers", action="store_true")
    parser.add_argument("--row", help=argparse.SUPPRESS)
    parser.add_argument("--out", help="also save the rows as JSON here")
    args = parser.parse_args(argv)
    cap_threads(THREADS)
    if args.row:
        variant, workload = args.row.split(":")
        print(json.dumps(run_graphnet_row(variant, workload, args.steps)))
        return
    workloads = list(WORKLOADS) if args.workloads == "all" else args.workloads.split(",")
    language = [w for w in workloads if w in bench_models.WORKLOADS]
    if language:  # the language-model rows, against PyTorch eager and torch.compile on the peers' own models
        bench_models.main(["--workloads", ",".join(language), "--steps", str(min(args.steps, 30))]
                      + (["--peers-python", args.peers_python] if args.peers_python else []))
        workloads = [w for w in workloads if w not in language]
        if not workloads:
            return
    rows = _graphnet_rows(workloads, args.steps, THREADS)
    if not args.no_peers:
        from peers import run_peer_rows

        rows += run_peer_rows(workloads, args.steps, python=args.peers_python)
    from report import markdown_table, save_json

    print(markdown_table(rows))
    if args.out:
        save_json(rows, args.out, meta={"batch": BATCH, "argv": sys.argv[1:]})


if __name__ == "__main__":
    main()

"""The model workloads (W5 gpt_train, W7 lstm_train, W8 gpt_generate, W6 resnet20_train, W9 resnet20_infer):
graphnet against PyTorch eager and torch.compile in one run.

    python benchmarks/bench_models.py [--workloads gpt_train,lstm_train,gpt_generate,resnet20_train,resnet20_infer]
                                      [--steps 30] [--peers-python /path/to/python-with-torch]
                                      [--shared ../shared/bench]

The models, their weights, data, optimizers and step come from the peers' benchmark (`bench_peers.py` in
--shared: `define_models`, run here with `torch` = graphnet or PyTorch), so every row times the same definition:
opt.zero_grad(set_to_none=True); loss = cross_entropy(model(x)); loss.backward(); clip_grad_norm_; opt.step().
gpt_generate samples 500 tokens (batch 1, top-k 40, temperature 0.8) from the GPT, with no key/value cache: each
token runs the model on the last <= 64 ids. resnet20_infer is the eval-mode forward under no_grad, with an extra
row for graphnet's ONNX export run by ONNX Runtime (the deployment route). Every row is a fresh process with 2
threads and empty compile caches; graphnet's "warm" row reuses the first row's kernel cache. Rates: GFLOP/s of the
step's model FLOPs, against this machine's measured float32 GEMM rate (NumPy 1024^3, same threads); FLOPs count a
multiply-add as 2.
"""
import argparse
import importlib.util
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from workloads import THREADS, cap_threads, time_steps  # noqa: E402

WORKLOADS = ("gpt_train", "lstm_train", "gpt_generate", "resnet20_train", "resnet20_infer")
GEN_TOKENS, GEN_TOP_K, GEN_TEMPERATURE = 500, 40, 0.8
ROWS = [("graphnet", "compiled"), ("graphnet", "compiled-warm"), ("graphnet", "eager"), ("torch", "eager"),
        ("torch", "compiled")]
INFER_ROWS = {"resnet20_infer": [("graphnet", "onnxruntime")]}  # rows only a forward-only workload has


def load_peers(shared):
    spec = importlib.util.spec_from_file_location("bench_peers", os.path.join(shared, "bench_peers.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def resnet20_flops(peers, batch):
    """Forward FLOPs of ResNet-20 on batch 3x32x32 images: 2 per multiply-add of every conv and the Linear."""
    convs = [(3, 16, 32, 1)]  # (in, out, input size, stride) of each 3x3 conv; 1x1 projections below
    for cin, cout, size, stride in [(16, 16, 32, 1), (16, 32, 32, 2), (32, 64, 16, 2)]:
        convs += [(cin, cout, size, stride), (cout, cout, size // stride, 1)]
        convs += [(cout, cout, size // stride, 1)] * 4
    macs = sum(9 * cin * cout * (size // stride) ** 2 for cin, cout, size, stride in convs)
    macs += 16 * 32 * 16 ** 2 + 32 * 64 * 8 ** 2 + 64 * peers.NUM_CLASSES  # the projections and fc
    return 2 * macs * batch


def step_flops(peers, workload):
    """Model FLOPs of one step: 6 per parameter per token (+ attention) for training, 2 for generation; for the
    ResNet 3x its forward in training (forward, input and weight gradients), 1x in inference."""
    if workload in peers.RESNET_BATCH:
        return resnet20_flops(peers, peers.RESNET_BATCH[workload]) * (3 if workload.endswith("_train") else 1)
    if workload == "lstm_train":
        c = peers.LSTM_CFG
        per_token = 2 * 4 * c["nhid"] * (c["ninp"] + c["nhid"]) * c["nlayers"] + 2 * c["nhid"] * c["ntoken"]
        return 3 * per_token * peers.LSTM_SEQ * peers.LSTM_BATCH
    c = peers.GPT_CFG
    n = 12 * c["n_layer"] * c["n_embd"] ** 2 + c["vocab"] * c["n_embd"]  # blocks + the tied head
    attention = lambda t: 4 * c["n_layer"] * t * c["n_embd"]  # noqa: E731  q@k^T and att@v, per token over t

    if workload == "gpt_train":
        return 3 * (2 * n + attention(c["block"])) * c["block"] * peers.GPT_BATCH
    windows = [min(t, c["block"]) for t in range(1, GEN_TOKENS + 1)]  # generation: every token's forward
    return sum(w * (2 * n + attention(w)) for w in windows)


def _framework(name):
    if name == "graphnet":
        import graphnet
        return graphnet
    import torch
    torch.set_num_threads(THREADS)
    return torch


def _train_case(torch, peers, workload, variant):
    data = peers.make_data(workload)
    model = peers.build_model(torch, workload, data["params"])
    opt = peers.make_optimizer(torch, workload, model)
    loss_fn, update = peers.model_step_fns(torch, workload, model, opt)
    x, y = torch.from_numpy(data["x"]), torch.from_numpy(data["y"])

    def step():
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(x, y)
        loss.backward()
        update()
        return loss

    if variant.startswith("compiled"):
        step = torch.compile(step)
    return lambda: float(step())


def _infer_case(torch, peers, workload, variant):
    """The eval-mode forward under no_grad; `onnxruntime`: graphnet's ONNX export of it, run by ONNX Runtime."""
    data = peers.make_data(workload)
    model = peers.build_model(torch, workload, data["params"])
    x = torch.from_numpy(data["x"])
    if variant == "onnxruntime":
        import io

        import onnxruntime as ort

        buf = io.BytesIO()
        torch.onnx.export(model, (x,), buf, input_names=["x"], output_names=["y"])
        opts = ort.SessionOptions()
        opts.intra_op_num_threads, opts.inter_op_num_threads = THREADS, 1
        session = ort.InferenceSession(buf.getvalue(), opts, providers=["CPUExecutionProvider"])
        feed = {"x": data["x"]}
        return lambda: float(session.run(None, feed)[0].sum())
    forward = torch.compile(model) if variant.startswith("compiled") else model

    def step():
        with torch.no_grad():
            return float(forward(x).sum())

    return step


def generate(torch, forward, idx, n, block):
    """n ids appended to idx (1, T): the last <= block ids through `forward`, top-k, temperature, multinomial."""
    F = torch.nn.functional
    with torch.no_grad():
        for _ in range(n):
            logits = forward(idx[:, -block:])[:, -1, :] / GEN_TEMPERATURE
            kth = torch.topk(logits, GEN_TOP_K).values[:, -1:]
            probs = F.softmax(logits.masked_fill(logits < kth, float("-inf")), dim=-1)
            idx = torch.cat((idx, torch.multinomial(probs, num_samples=1)), dim=1)
    return idx


def _generate_case(torch, peers):
    data = peers.make_data("gpt_train")
    model = peers.build_model(torch, "gpt_train", data["params"]).eval()
    return model, lambda forward: generate(torch, forward, torch.zeros((1, 1), dtype=torch.long), GEN_TOKENS,
                                           peers.GPT_CFG["block"])


def gemm_rate():
    a, b = (np.random.default_rng(0).standard_normal((1024, 1024), dtype=np.float32) for _ in range(2))
    a @ b
    times = []
    for _ in range(10):
        t0 = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - t0)
    return 2 * 1024 ** 3 / min(times) / 1e9


def child(framework, variant, workload, steps, shared):
    """One row in this process: {'first_call_s', 'median_ms', 'min_ms', ...} as a JSON line."""
    cap_threads(THREADS)
    peers = load_peers(shared)
    torch = _framework(framework)
    torch.manual_seed(0)
    out = dict(framework=framework, variant=variant, workload=workload, gemm_gflops=gemm_rate())
    if workload == "gpt_generate":
        model, run = _generate_case(torch, peers)
        forward = torch.compile(model) if variant.startswith("compiled") else model
        t0 = time.perf_counter()
        run(forward)
        out["first_call_s"] = time.perf_counter() - t0
        times = [time_steps(lambda: run(forward), 0, 1)[0] for _ in range(3)]
        out.update(median_ms=statistics.median(times) * 1e3, min_ms=min(times) * 1e3, steps=len(times),
                   tokens_per_s=GEN_TOKENS / statistics.median(times))
    else:
        case = _infer_case if workload.endswith("_infer") else _train_case
        step = case(torch, peers, workload, variant)
        t0 = time.perf_counter()
        losses = [step()]
        out["first_call_s"] = time.perf_counter() - t0
        losses.append(step())  # graphnet: the call that traces and compiles
        out["second_call_s"] = time.perf_counter() - t0 - out["first_call_s"]
        losses.append(step())
        times = time_steps(step, 5, steps)
        out.update(median_ms=statistics.median(times) * 1e3, min_ms=min(times) * 1e3, steps=len(times),
                   loss1=losses[0], loss3=losses[2])
        if workload.endswith("_infer"):
            out["output_sum"] = out.pop("loss1")
            del out["loss3"]
    out["gflops"] = step_flops(peers, workload) / (out["median_ms"] / 1e3) / 1e9
    print(json.dumps(out))


def run_row(python, framework, variant, workload, steps, shared, cache):
    env = dict(os.environ, TORCHINDUCTOR_CACHE_DIR=os.path.join(cache, "inductor"),
               GRAPHNET_CACHE_DIR=os.path.join(cache, "graphnet"), NUMBA_CACHE_DIR=os.path.join(cache, "numba"))
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[var] = str(THREADS)
    cmd = [python, os.path.abspath(__file__), "--child", framework, variant, workload, "--steps", str(steps),
           "--shared", shared]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1800, check=False)
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    tail = [ln for ln in (proc.stderr or proc.stdout).splitlines() if ln.strip()]
    return dict(framework=framework, variant=variant, workload=workload,
                error=tail[-1][:200] if tail else f"exit {proc.returncode}")


def table(rows):
    lines = ["| workload | framework | variant | first call s | median ms | min ms | vs fastest peer | GFLOP/s "
             "(% of GEMM) | notes |", "|---|---|---|---|---|---|---|---|---|"]
    for workload in dict.fromkeys(r["workload"] for r in rows):
        mine = [r for r in rows if r["workload"] == workload]
        peers = [r["median_ms"] for r in mine if r["framework"] != "graphnet" and "median_ms" in r]
        best = min(peers) if peers else math.nan
        for r in mine:
            if "error" in r:
                lines.append(f"| {workload} | {r['framework']} | {r['variant']} | | | | | | {r['error']} |")
                continue
            first = r["first_call_s"] + r.get("second_call_s", 0.0)
            note = f"{r['tokens_per_s']:.0f} tokens/s" if "tokens_per_s" in r else \
                f"output sum {r['output_sum']:.4f}" if "output_sum" in r else \
                f"loss@1 {r['loss1']:.4f}, loss@3 {r['loss3']:.4f}"
            lines.append(f"| {workload} | {r['framework']} | {r['variant']} | {first:.1f} | {r['median_ms']:.1f} | "
                         f"{r['min_ms']:.1f} | {r['median_ms'] / best:.2f}x | {r['gflops']:.1f} "
                         f"({100 * r['gflops'] / r['gemm_gflops']:.0f}%) | {note} |")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workloads", default=",".join(WORKLOADS))
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--peers-python", default=sys.executable)
    p.add_argument("--shared", default=os.path.join(HERE, "..", "..", "shared", "bench"))
    default_rows = ",".join(f"{f}:{v}" for f, v in ROWS)
    p.add_argument("--rows", default=default_rows)
    p.add_argument("--child", nargs=3, metavar=("FRAMEWORK", "VARIANT", "WORKLOAD"))
    p.add_argument("--out", help="also write the rows as JSON")
    args = p.parse_args(argv)
    args.shared = os.path.abspath(args.shared)
    if args.child:
        return child(*args.child, args.steps, args.shared)
    rows = []
    for workload in args.workloads.split(","):
        with tempfile.TemporaryDirectory(prefix="bench_models_") as cache:
            extra = [f"{f}:{v}" for f, v in INFER_ROWS.get(workload, ())] if args.rows == default_rows else []
            for spec in args.rows.split(",") + extra:
                framework, variant = spec.split(":")
                python = sys.executable if framework == "graphnet" else args.peers_python
                row = run_row(python, framework, variant, workload, args.steps, args.shared, cache)
                print(json.dumps(row), file=sys.stderr, flush=True)
                rows.append(row)
    print(table(rows))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()

"""Data-parallel training: graphnet DDP (MPI) against PyTorch DDP (gloo) on the same models, 1 rank vs 2 ranks.

    python benchmarks/bench_ddp.py [--models lenet,mlp,gpt] [--steps 40] [--batch 64] [--repeats 1]
                                   [--frameworks graphnet,graphnet-compiled,graphnet-compiled-split,torch]
                                   [--configs 1x1,1x2,2x1]
                                   [--peers-python /path/to/python-with-torch] [--shared ../shared/bench]

Per framework and model, three fresh runs: one process with 1 thread and with 2 threads (no process group, no
DDP), and 2 ranks x 1 thread under DistributedDataParallel (graphnet: `graphnet.distributed.run`, i.e. mpiexec;
PyTorch: two processes on gloo over localhost). The batch is per rank (64; the GPT: the peers' W5 batch of 12 x 64
tokens, its model from the peers' define_models), so 2 ranks do twice the samples of one (a GPT sample is one
64-token window). The step is opt.zero_grad(); cross_entropy(model(x), y).backward(); opt.step() with
SGD(lr=0.01, momentum=0.9), eager, and for graphnet also graphnet.compile'd: its all-reduces are nodes of the
Program, and the kernels are cached in a temporary directory shared by the invocation's runs, so only a model's
first compiled run compiles cold. Two designs of the compiled step on 2 ranks: "graphnet-compiled" calls
MPI_Allreduce from the generated driver, so the step is one call; "graphnet-compiled-split"
(GRAPHNET_DRIVER_COLLECTIVES=0) stops the driver at each all-reduce, which mpi4py runs from Python, and goes on in
the next driver ("calls" in the table: driver calls and Python steps per training step). The 2-rank run also times
steps under `no_sync()` (no all-reduce; a compiled variant of its own), in blocks of 5 alternating with the synced
ones, after 5 warm-up steps of each kind: the difference of the medians is what the all-reduce costs a step beyond
what backward hides. A row's time is the slowest rank's median over the timed steps (min: its fastest step);
samples/s = ranks x batch / median. With --repeats, the configurations are measured round after round and the last
table takes each row's median over the rounds.
"scaling" is 2-rank samples/s over twice the 1x1-thread rate; "vs 1x2" over the one process with both cores
(the issue's target: >= 0.9); "vs torch" divides graphnet's samples/s by PyTorch's on the same row and run.
"""
import argparse
import importlib.util
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
MODELS = ("lenet", "mlp", "gpt")
SHARED = os.path.join(REPO, "..", "shared", "bench")
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS")
CONFIGS = (("1x1", 1, 1), ("1x2", 1, 2), ("2x1", 2, 1))  # (name, ranks, threads per rank)
FRAMEWORKS = ("graphnet", "graphnet-compiled", "graphnet-compiled-split", "torch")
SPLIT = "graphnet-compiled-split"  # on one rank there is no collective to split at: the same as graphnet-compiled


def _peers(shared):
    spec = importlib.util.spec_from_file_location("bench_peers", os.path.join(shared, "bench_peers.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def build(torch, name, shared=SHARED):
    """The LeNet of examples/lenet.py (1x32x32 inputs), an MLP 784-256-10 or the peers' W5 GPT, in either
    framework's nn."""
    nn = torch.nn
    if name == "gpt":
        peers = _peers(shared)
        return peers.define_models(torch)["GPT"](**peers.GPT_CFG)
    if name == "lenet":
        return nn.Sequential(nn.Conv2d(1, 6, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 16, 5), nn.ReLU(),
                             nn.MaxPool2d(2), nn.Flatten(), nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84),
                             nn.ReLU(), nn.Linear(84, 10))
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10))


def _framework(name, threads, world):
    """Import the framework and start its process group when world > 1: (torch-like module, dist module)."""
    if name.startswith("graphnet"):
        import graphnet as torch
        import graphnet.distributed as dist
        if world > 1:
            dist.init_process_group("mpi")
    else:
        import torch
        import torch.distributed as dist
        torch.set_num_threads(threads)
        if world > 1:
            dist.init_process_group("gloo")
    return torch, dist


def _inputs(torch, model_name, batch, shared):
    """A random batch for the model: images and labels, or token windows and their next tokens."""
    if model_name == "gpt":
        cfg = _peers(shared).GPT_CFG
        return (torch.randint(0, cfg["vocab"], (batch, cfg["block"])),
                torch.randint(0, cfg["vocab"], (batch, cfg["block"])))
    shape = (batch, 1, 32, 32) if model_name == "lenet" else (batch, 1, 28, 28)
    return torch.randn(*shape), torch.randint(0, 10, (batch,))


def batch_of(model_name, batch, shared):
    """The per-rank batch: --batch, but the GPT's is the peers' W5 batch."""
    return _peers(shared).GPT_BATCH if model_name == "gpt" else batch


def worker(framework, model_name, world, threads, steps, batch, shared=SHARED):
    """One rank: time `steps` synced steps (and, on several ranks, `steps` no_sync steps); print a JSON line."""
    torch, dist = _framework(framework, threads, world)
    rank = dist.get_rank() if world > 1 else 0
    torch.manual_seed(rank)
    x, y = _inputs(torch, model_name, batch, shared)
    model = build(torch, model_name, shared)
    if world > 1:
        model = torch.nn.parallel.DistributedDataParallel(model)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    F = torch.nn.functional

    def train(x, y):
        opt.zero_grad()
        logits = model(x)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
        loss.backward()
        opt.step()
        return loss

    train = torch.compile(train) if framework.startswith("graphnet-compiled") else train

    def step():
        return train(x, y)

    def block(n):
        times = []
        for _ in range(n):
            t0 = time.perf_counter()
            step()
            times.append(time.perf_counter() - t0)
        return times

    block(5)  # a compiled step runs eagerly once, then traces and compiles
    calls = sum(len(p.parts) for p in train._last.programs) if framework.startswith("graphnet-compiled") else None
    if world > 1:
        with model.no_sync():
            block(5)
        dist.barrier()
    synced, unsynced = [], []
    for _ in range(max(1, steps // 5)):  # blocks of 5 synced and 5 no_sync steps share the machine's noise
        synced += block(5)
        if world > 1:
            with model.no_sync():
                unsynced += block(5)
    out = {"median_s": statistics.median(synced), "min_s": min(synced)}
    if calls is not None:
        out["calls"] = calls  # of the synced step
    if world > 1:
        out["no_sync_median_s"] = statistics.median(unsynced)
        dist.destroy_process_group()
    print("RESULT " + json.dumps(dict(out, rank=rank)), flush=True)


def _environment(threads):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([REPO, os.environ.get("PYTHONPATH", "")]))
    for var in THREAD_VARIABLES:
        env[var] = str(threads)
    return env


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_config(python, framework, model, ranks, threads, steps, batch, cache, shared=SHARED):
    """Start the ranks of one configuration; return the slowest rank's medians (dict) or {'error': ...}."""
    args = ["--worker", framework, model, str(ranks), str(threads), "--steps", str(steps), "--batch", str(batch),
            "--shared", shared]
    script, env = os.path.abspath(__file__), dict(_environment(threads), GRAPHNET_CACHE_DIR=cache)
    if framework == SPLIT:
        env["GRAPHNET_DRIVER_COLLECTIVES"] = "0"
    if framework.startswith("graphnet") and ranks > 1:
        procs = [subprocess.Popen([python, "-m", "graphnet.distributed.run", "--nproc-per-node", str(ranks), script,
                                   *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)]
    else:
        port = str(_free_port())
        procs = [subprocess.Popen([python, script, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  text=True, env=dict(env, RANK=str(r), WORLD_SIZE=str(ranks), LOCAL_RANK=str(r),
                                                      MASTER_ADDR="127.0.0.1", MASTER_PORT=port))
                 for r in range(ranks)]
    output = "".join(p.communicate(timeout=1800)[0] for p in procs)
    results = [json.loads(line[7:]) for line in output.splitlines() if line.startswith("RESULT ")]
    if len(results) != ranks:
        tail = [ln for ln in output.splitlines() if ln.strip()]
        return {"error": tail[-1][:200] if tail else "no output"}
    return {key: max(r[key] for r in results) for key in results[0] if key != "rank"}


def measure(python_of, models, steps, batch, cache, shared=SHARED, frameworks=FRAMEWORKS, configs=CONFIGS):
    """Every (model, config, framework) once: rows of dicts with median_s, samples_s and no_sync_median_s."""
    rows = []
    for model in models:
        per_rank = batch_of(model, batch, shared)
        for name, ranks, threads in configs:
            for framework in frameworks:
                if framework == SPLIT and ranks == 1:
                    continue
                python = python_of["torch" if framework == "torch" else "graphnet"]
                row = dict(model=model, config=name, framework=framework, ranks=ranks, load=os.getloadavg()[0],
                           **run_config(python, framework, model, ranks, threads, steps, per_rank, cache, shared))
                if "median_s" in row:
                    row["samples_s"] = ranks * per_rank / row["median_s"]
                print(json.dumps(row), file=sys.stderr, flush=True)
                rows.append(row)
    return rows


def median_rows(runs):
    """Each row's median over the rounds (a row that failed in any round keeps its first error)."""
    merged = []
    for rows in zip(*runs):
        errors = [r for r in rows if "error" in r]
        if errors:
            merged.append(errors[0])
            continue
        merged.append(dict(rows[0], **{k: statistics.median(r[k] for r in rows) for k in rows[0]
                                       if k.endswith("_s") or k == "load"}))
    return merged


def table(rows):
    """The markdown table: per model and framework, the three configs, scaling and the ratio to PyTorch."""
    get = {(r["model"], r["config"], r["framework"]): r for r in rows}
    lines = ["| model | framework | ranks x threads | ms/step | min ms | samples/s | all-reduce cost ms | scaling "
             "| vs 1x2 | vs torch | calls | load |", "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for (model, config, framework), r in get.items():
        if "error" in r:
            lines.append(f"| {model} | {framework} | {config} | | | | | | | | | {r['error']} |")
            continue
        comm = scaling = vs12 = ""
        if config == "2x1":
            comm = f"{(r['median_s'] - r['no_sync_median_s']) * 1e3:.2f}"
            same = "graphnet-compiled" if framework == SPLIT else framework
            one, both = get.get((model, "1x1", same), {}), get.get((model, "1x2", same), {})
            scaling = f"{r['samples_s'] / (2 * one['samples_s']):.2f}" if "samples_s" in one else ""
            vs12 = f"{r['samples_s'] / both['samples_s']:.2f}" if "samples_s" in both else ""
        peer = get.get((model, config, "torch"), {})
        vs_torch = f"{r['samples_s'] / peer['samples_s']:.2f}" if framework != "torch" and "samples_s" in peer \
            else ""
        lines.append(f"| {model} | {framework} | {config} | {r['median_s'] * 1e3:.2f} | {r['min_s'] * 1e3:.2f} | "
                     f"{r['samples_s']:,.0f} | {comm} | {scaling} | {vs12} | {vs_torch} | {r.get('calls', '')} | "
                     f"{r['load']:.1f} |")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default=",".join(MODELS))
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--batch", type=int, default=64, help="per rank")
    p.add_argument("--repeats", type=int, default=1, help="whole measurements, one table each")
    p.add_argument("--frameworks", default=",".join(FRAMEWORKS))
    p.add_argument("--configs", default=",".join(c[0] for c in CONFIGS))
    p.add_argument("--peers-python", default=sys.executable)
    p.add_argument("--worker", nargs=4, metavar=("FRAMEWORK", "MODEL", "RANKS", "THREADS"))
    p.add_argument("--shared", default=SHARED, help="the peers' benchmark folder (the GPT's definition)")
    p.add_argument("--out", help="also write the rows as JSON")
    args = p.parse_args(argv)
    if args.worker:
        framework, model, ranks, threads = args.worker
        return worker(framework, model, int(ranks), int(threads), args.steps, args.batch, args.shared)
    python_of = {"graphnet": sys.executable, "torch": args.peers_python}
    runs = []
    with tempfile.TemporaryDirectory(prefix="bench_ddp_") as cache:  # compiled rows: the first one compiles cold
        for _ in range(args.repeats):
            configs = [c for c in CONFIGS if c[0] in args.configs.split(",")]
            runs.append(measure(python_of, args.models.split(","), args.steps, args.batch, cache,
                                os.path.abspath(args.shared), args.frameworks.split(","), configs))
            print(table(runs[-1]) + "\n", flush=True)
    if len(runs) > 1:
        print(f"median over {len(runs)} rounds:\n" + table(median_rows(runs)))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(runs, f, indent=1)


if __name__ == "__main__":
    main()

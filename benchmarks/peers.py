"""Peer frameworks (PyTorch, JAX, tinygrad) on the workloads of ``workloads.py``, one fresh process per row.

Variants: ``eager`` (torch eager, JAX op by op, tinygrad without TinyJit) and ``compiled``
(torch.compile, jax.jit of the whole step, TinyJit). A framework that cannot be imported is reported
as "not installed" and skipped.

    python benchmarks/peers.py --workloads mlp_train,lenet_train --steps 20 --peers-python /path/to/python
    python benchmarks/peers.py --row torch:compiled:lenet_train --steps 50      # one row, one JSON line
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
from workloads import LR, MOMENTUM, THREADS, WARMUP_STEPS, WORKLOADS, Case, cap_threads, make_data, measure

FRAMEWORKS = ("torch", "jax", "tinygrad")
VARIANTS = ("eager", "compiled")


def _check_variant(variant):
    """Reject anything but eager/compiled."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}")


# ---------------------------------------------------------------- torch
def _torch_model(workload, params):
    """nn.Sequential MLP or LeNet loaded with ``params`` (same order and layout as the module's parameters)."""
    import torch
    nn = torch.nn
    if workload == "mlp_train":
        model = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10))
    else:
        model = nn.Sequential(
            nn.Conv2d(1, 6, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))
    with torch.no_grad():
        for t, a in zip(model.parameters(), params.values(), strict=True):
            t.copy_(torch.from_numpy(a))
    return model


def torch_case(workload, variant, data):
    """nn.Module steps: train via F.cross_entropy + optim.SGD, else under no_grad; compiled = torch.compile."""
    import torch
    _check_variant(variant)
    torch.set_num_threads(THREADS)
    compiled = variant == "compiled"
    x = torch.from_numpy(data["x"])
    if workload == "eltwise_chain":
        def fn(x):
            return torch.sigmoid(torch.relu(x * 2 + 1) * x - 0.5) * torch.tanh(x)
    elif workload == "lenet_infer":
        fn = _torch_model(workload, data["params"]).eval()
    else:
        return _torch_train_case(_torch_model(workload, data["params"]), x, data["y"], compiled)
    fn = torch.compile(fn) if compiled else fn

    def step():
        with torch.no_grad():
            return fn(x)
    return Case(step, to_host=lambda t: t.numpy(), notes="torch.compile; no_grad" if compiled else "no_grad")


def _torch_train_case(model, x, y, compiled):
    """One step: zero_grad, loss, backward, opt.step()."""
    import torch
    y = torch.from_numpy(y).long()
    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)

    def loss_fn(x, y):
        return torch.nn.functional.cross_entropy(model(x), y)

    def opt_step():
        opt.step()

    if compiled:
        loss_fn, opt_step = torch.compile(loss_fn), torch.compile(opt_step)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(x, y)
        loss.backward()
        opt_step()
        return loss.detach()
    notes = "torch.compile(model+loss) + torch.compile(opt.step)" if compiled else "nn.Module + optim.SGD"
    return Case(step, to_host=lambda t: t.numpy(), notes=notes)


# ---------------------------------------------------------------- jax
def _jax_mlp(p, x):
    """MLP logits; Linear weights stored (in, out)."""
    import jax.numpy as jnp
    h = jnp.maximum(x @ p["fc1.w"] + p["fc1.b"], 0)
    return h @ p["fc2.w"] + p["fc2.b"]


def _jax_lenet(p, x):
    """LeNet logits with lax.conv_general_dilated (NCHW/OIHW) and lax.reduce_window max-pool."""
    import jax.numpy as jnp
    from jax import lax

    def conv(h, w, b):
        out = lax.conv_general_dilated(h, w, (1, 1), "VALID", dimension_numbers=("NCHW", "OIHW", "NCHW"))
        return out + b.reshape(1, -1, 1, 1)

    def pool(h):
        return lax.reduce_window(h, -jnp.inf, lax.max, (1, 1, 2, 2), (1, 1, 2, 2), "VALID")

    h = pool(jnp.maximum(conv(x, p["c1.w"], p["c1.b"]), 0))
    h = pool(jnp.maximum(conv(h, p["c2.w"], p["c2.b"]), 0))
    h = h.reshape(h.shape[0], -1)
    h = jnp.maximum(h @ p["f1.w"] + p["f1.b"], 0)
    h = jnp.maximum(h @ p["f2.w"] + p["f2.b"], 0)
    return h @ p["f3.w"] + p["f3.b"]


def _jax_cross_entropy(logits, y):
    """Mean cross-entropy via a stable log-softmax."""
    import jax.numpy as jnp
    from jax import lax
    m = lax.stop_gradient(jnp.max(logits, axis=1, keepdims=True))
    logp = logits - (m + jnp.log(jnp.sum(jnp.exp(logits - m), axis=1, keepdims=True)))
    return -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=1))


def jax_case(workload, variant, data):
    """Functional step; compiled = jax.jit of the whole step (params donated), eager = the same code unjitted."""
    import jax
    import jax.numpy as jnp
    from jax import lax
    _check_variant(variant)
    wrap = (lambda f, **kw: jax.jit(f, **kw)) if variant == "compiled" else (lambda f, **kw: f)
    notes = "jax.jit" if variant == "compiled" else "no jit: op-by-op dispatch"
    x = jnp.asarray(data["x"])
    if workload == "eltwise_chain":
        fn = wrap(lambda x: lax.logistic(jnp.maximum(x * 2 + 1, 0) * x - 0.5) * jnp.tanh(x))
        return Case(lambda: jax.block_until_ready(fn(x)), notes=notes)
    params = {k: jnp.asarray(v.T if v.ndim == 2 else v) for k, v in data["params"].items()}  # Linear: (in, out)
    forward = _jax_mlp if workload == "mlp_train" else _jax_lenet
    if workload == "lenet_infer":
        fn = wrap(forward)
        return Case(lambda: jax.block_until_ready(fn(params, x)), notes=notes)
    y = jnp.asarray(data["y"], dtype=jnp.int32)

    def train_step(p, b, x, y):
        loss, g = jax.value_and_grad(lambda p: _jax_cross_entropy(forward(p, x), y))(p)
        b = jax.tree.map(lambda b_, g_: MOMENTUM * b_ + g_, b, g)
        return jax.tree.map(lambda p_, b_: p_ - LR * b_, p, b), b, loss

    train_step = wrap(train_step, donate_argnums=(0, 1))
    state = [params, jax.tree.map(jnp.zeros_like, params)]

    def step():
        state[0], state[1], loss = jax.block_until_ready(train_step(state[0], state[1], x, y))
        return loss
    return Case(step, notes=notes + ("; params donated" if variant == "compiled" else ""))


# ---------------------------------------------------------------- tinygrad
class _TgModel:
    """tinygrad MLP or LeNet whose layers are loaded from ``params`` in order."""

    def __init__(self, workload, params):
        from tinygrad import Tensor, nn
        if workload == "mlp_train":
            self.layers = [nn.Linear(784, 256), nn.Linear(256, 10)]
        else:
            self.layers = [nn.Conv2d(1, 6, 5), nn.Conv2d(6, 16, 5), nn.Linear(400, 120), nn.Linear(120, 84),
                           nn.Linear(84, 10)]
        values = list(params.values())
        for i, layer in enumerate(self.layers):
            layer.weight = Tensor(values[2 * i]).contiguous().realize()
            layer.bias = Tensor(values[2 * i + 1]).contiguous().realize()

    def __call__(self, x):
        if len(self.layers) == 2:
            return self.layers[1](self.layers[0](x).relu())
        c1, c2, f1, f2, f3 = self.layers
        x = c1(x).relu().max_pool2d(2)
        x = c2(x).relu().max_pool2d(2).flatten(1)
        return f3(f2(f1(x).relu()).relu())


def _tg_train_step(model, labels):
    """Step function: zero_grad, sparse cross-entropy, backward, SGD momentum update, all realised."""
    from tinygrad import Tensor, nn
    from tinygrad.helpers import Context
    y = Tensor(labels.astype(np.int32)).contiguous().realize()
    opt = nn.optim.SGD(nn.state.get_parameters(model), lr=LR, momentum=MOMENTUM)

    def train_step(x):
        with Context(TRAINING=1):
            opt.zero_grad()
            x.grad = None  # backward() fills .grad of every float tensor in the graph; don't let it chain
            loss = model(x).sparse_categorical_crossentropy(y).backward()
            return loss.realize(*opt.schedule_step())
    return train_step


def tinygrad_case(workload, variant, data):
    """Lazy graph realised every call (eager) or replayed by TinyJit (compiled); train uses nn.optim.SGD."""
    from tinygrad import Device, Tensor, TinyJit
    _check_variant(variant)
    x = Tensor(data["x"]).contiguous().realize()
    if workload == "eltwise_chain":
        def fn(x):
            return (((x * 2 + 1).relu() * x - 0.5).sigmoid() * x.tanh()).realize()
    elif workload == "lenet_infer":
        model = _TgModel(workload, data["params"])

        def fn(x):
            return model(x).realize()
    else:
        fn = _tg_train_step(_TgModel(workload, data["params"]), data["y"])
    fn = TinyJit(fn) if variant == "compiled" else fn
    dev = Device[Device.DEFAULT]

    def step():
        out = fn(x)
        dev.synchronize()
        return out
    notes = "TinyJit" if variant == "compiled" else "no TinyJit: lazy graph scheduled every call"
    return Case(step, to_host=lambda t: t.numpy(), notes=notes)


# ---------------------------------------------------------------- rows
BUILDERS = {"torch": torch_case, "jax": jax_case, "tinygrad": tinygrad_case}


def framework_version(framework):
    """Import ``framework`` and return its version string; raises if it is missing or unusable."""
    from importlib.metadata import version
    if framework == "jax":
        import jax  # noqa: F401
        return f"{version('jax')} (jaxlib {version('jaxlib')})"
    if framework == "tinygrad":
        import shutil

        from tinygrad import Device
        try:
            return f"{version('tinygrad')} (DEV={Device.DEFAULT})"
        except RuntimeError as exc:
            if shutil.which(os.environ.get("CC", "clang")) is None:
                raise RuntimeError(f"{exc} (tinygrad's CPU device needs clang on PATH)") from exc
            raise
    return __import__(framework).__version__


def _first_line(exc):
    """``Type: message``, first non-empty line, at most 300 characters."""
    lines = [ln.strip() for ln in f"{type(exc).__name__}: {exc}".splitlines() if ln.strip()]
    return lines[0][:300]


def probe(framework):
    """{framework, version} if importable, else {framework, error} ("not installed: ..." when missing)."""
    try:
        return dict(framework=framework, version=framework_version(framework))
    except ModuleNotFoundError as exc:
        return dict(framework=framework, error=f"not installed ({exc})")
    except Exception as exc:  # installed but broken, e.g. tinygrad without clang
        return dict(framework=framework, error="import failed: " + _first_line(exc))


def run_row(framework, variant, workload, steps):
    """Build and measure one row in this process; returns its record (``error`` set on failure)."""
    rec = dict(framework=framework, variant=variant, workload=workload) | probe(framework)
    if "error" in rec:
        return rec
    try:
        data = make_data(workload)
        rec.update(measure(BUILDERS[framework](workload, variant, data), workload, data, WARMUP_STEPS[variant], steps))
    except Exception as exc:
        rec["error"] = _first_line(exc)
    return rec


def _child_env(tmpdir, threads):
    """Environment of a row process: thread caps, CPU-only JAX, cold compile caches."""
    env = dict(os.environ, JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="2", CCACHE="0",
               JAX_ENABLE_COMPILATION_CACHE="false", TORCHINDUCTOR_CACHE_DIR=os.path.join(tmpdir, "inductor"))
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUM_CPU_THREADS"):
        env[var] = str(threads)
    return env


def _run_child(args, python, threads, timeout):
    """Run this file with ``args`` under ``python`` in a fresh process; return its last JSON line."""
    cmd = [python, os.path.abspath(__file__), *args, "--threads", str(threads)]
    try:
        with tempfile.TemporaryDirectory(prefix="peers_") as tmp:
            env = _child_env(tmp, threads)
            proc = subprocess.run(cmd, check=False, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return dict(error=f"timed out after {timeout} s")
    except OSError as exc:
        return dict(error=f"cannot run {python}: {_first_line(exc)}")
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    tail = [ln for ln in (proc.stderr or proc.stdout).splitlines() if ln.strip()]
    return dict(error=f"exited {proc.returncode}: {tail[-1][:300] if tail else 'no output'}")


def run_peer_rows(workloads, steps, python=None, frameworks=FRAMEWORKS, variants=VARIANTS, threads=THREADS,
                  timeout=1800):
    """Measure every (framework, variant, workload) row, each in a fresh ``python`` process; return records.

    A framework that fails to import gives one record with variant and workload "-" and its ``error``.
    """
    python = python or sys.executable
    rows = []
    for fw in frameworks:
        found = dict(framework=fw) | _run_child(["--probe", fw], python, threads, timeout)
        if "error" in found:
            rows.append(dict(found, variant="-", workload="-"))
            print(f"{fw:9s} skipped: {found['error']}", file=sys.stderr, flush=True)
            continue
        for wl in workloads:
            for var in variants:
                t0 = time.perf_counter()
                rec = dict(framework=fw, variant=var, workload=wl)
                rec.update(_run_child(["--row", f"{fw}:{var}:{wl}", "--steps", str(steps)], python, threads, timeout))
                rows.append(rec)
                summary = (f"median {rec['median_ms']:.3f} ms, first call {rec['first_call_s']:.2f} s; {rec['notes']}"
                           if "median_ms" in rec else "FAILED: " + rec.get("error", "?"))
                print(f"[{time.perf_counter() - t0:5.1f}s] {fw:9s} {var:9s} {wl:14s} {summary}", file=sys.stderr,
                      flush=True)
    return rows


def _csv(value, allowed):
    """Split a comma list ('all' = every allowed item) and validate it."""
    items = list(allowed) if value == "all" else [s.strip() for s in value.split(",") if s.strip()]
    bad = [s for s in items if s not in allowed]
    if bad:
        raise SystemExit(f"unknown {', '.join(bad)} (choose from {', '.join(allowed)})")
    return items


def main(argv=None):
    """CLI: all peer rows as a Markdown table, or (``--row`` / ``--probe``) one record as a JSON line."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workloads", default="all", help="comma list or 'all': " + ",".join(WORKLOADS))
    ap.add_argument("--frameworks", default="all", help="comma list or 'all': " + ",".join(FRAMEWORKS))
    ap.add_argument("--variants", default="all", help="comma list or 'all': " + ",".join(VARIANTS))
    ap.add_argument("--steps", type=int, default=50, help="timed steps per row (default 50)")
    ap.add_argument("--threads", type=int, default=THREADS, help=f"thread cap (default {THREADS})")
    ap.add_argument("--peers-python", help="interpreter with the peer frameworks (default: this one)")
    ap.add_argument("--timeout", type=int, default=1800, help="seconds per row process (default 1800)")
    ap.add_argument("--out", help="also save the records as JSON here")
    ap.add_argument("--row", metavar="FW:VARIANT:WORKLOAD", help="run one row in this process, print JSON")
    ap.add_argument("--probe", metavar="FW", help="print the framework's version (or error) as JSON")
    args = ap.parse_args(argv)
    if args.row or args.probe:
        cap_threads(args.threads)
        rec = probe(args.probe) if args.probe else run_row(*args.row.split(":"), args.steps)
        print(json.dumps(rec), flush=True)
        return 0
    from report import machine_info, markdown_table, save_json
    rows = run_peer_rows(_csv(args.workloads, WORKLOADS), args.steps, args.peers_python,
                         _csv(args.frameworks, FRAMEWORKS), _csv(args.variants, VARIANTS), args.threads, args.timeout)
    print(markdown_table(rows))
    if args.out:
        save_json(rows, args.out, dict(machine_info(), steps=args.steps, threads=args.threads))
    return 0


if __name__ == "__main__":
    sys.exit(main())

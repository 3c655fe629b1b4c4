"""Markdown table and JSON file of benchmark records (one dict per framework, variant and workload)."""

import json
import os
import platform
import time

from workloads import LOSS_TOL, WORKLOADS


def machine_info():
    """CPU model, core count, Python, platform and date of this run."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return dict(cpu=cpu, cores=os.cpu_count(), python=platform.python_version(), platform=platform.platform(),
                date=time.strftime("%Y-%m-%d %H:%M:%S %Z"))


def _ms(v):
    """Milliseconds with about four significant digits."""
    return f"{v:.3f}" if v < 10 else f"{v:.2f}" if v < 100 else f"{v:.1f}"


def fastest_peers(rows, own="graphnet"):
    """Lowest median ms per workload over the rows whose framework is not ``own``."""
    best = {}
    for r in rows:
        if r["framework"] != own and "median_ms" in r:
            best[r["workload"]] = min(best.get(r["workload"], r["median_ms"]), r["median_ms"])
    return best


def _loss3_note(row, rows, own):
    """Flag a training row whose loss@3 differs from the peers' (all start from the same weights and batch)."""
    peers = sorted(r["loss3"] for r in rows if r["framework"] != own and r["workload"] == row["workload"]
                   and "loss3" in r)
    if "loss3" not in row or not peers or abs(row["loss3"] - peers[len(peers) // 2]) <= LOSS_TOL:
        return ""
    return f"; loss@3 differs from the peers' {peers[len(peers) // 2]:.5f}"


def markdown_table(rows, own="graphnet"):
    """Rows grouped by workload; the ratio column is median / fastest peer's median on that workload."""
    best = fastest_peers(rows, own)
    order = {wl: i for i, wl in enumerate(WORKLOADS)}
    lines = ["| framework | variant | workload | median ms | min ms | first-call s | × fastest peer | notes |",
             "|---|---|---|---:|---:|---:|---:|---|"]
    for r in sorted(rows, key=lambda r: order.get(r["workload"], len(order))):
        head = f"| {r['framework']} | {r['variant']} | {r['workload']} |"
        if "median_ms" not in r:
            lines.append(f"{head} — | — | — | — | {r.get('error', 'no result')} |")
            continue
        ratio = f"{r['median_ms'] / best[r['workload']]:.2f}" if r["workload"] in best else "—"
        lines.append(f"{head} {_ms(r['median_ms'])} | {_ms(r['min_ms'])} | {r['first_call_s']:.2f} | {ratio} | "
                     f"{r.get('notes', '')}{_loss3_note(r, rows, own)} |")
    return "\n".join(lines)


def save_json(rows, path, meta=None):
    """Write ``{"meta": meta, "rows": rows}`` to ``path``."""
    with open(path, "w") as f:
        json.dump(dict(meta=meta or machine_info(), rows=rows), f, indent=1)

"""pipeline: the default pass list, run with timing, optional verification and printing after every pass.

    graph, report = run_pipeline(graph)       # DEFAULT_PASSES
    print(format_report(report))              # nodes before/after, time and each pass's own report

verify=None means: on when GRAPHNET_VERIFY=1 or under pytest (off when GRAPHNET_VERIFY=0); debug=None means:
GRAPHNET_DEBUG_PASSES=1, which prints the graph after each pass to stderr. Node counts exclude the graph inputs
and the output node (they are the calling convention, no pass changes them).
"""
import importlib.util
import os
import sys
import time
from collections import namedtuple

from ..ir.verify import VerifyError
from ..ir.verify import verify as verify_graph
from .cse import cse
from .dce import dce
from .fold import fold
from .fuse import fuse
from .hfuse import hfuse
from .prune_grads import prune_grads
from .simplify import simplify

Pass = namedtuple("Pass", "name fn skip")  # skip(graph) -> None to run, or the reason the pass does not apply


def _not_joint(graph):
    if "autodiff" not in graph.meta:
        return "not a joint graph"
    return "already pruned" if "prune_grads" in graph.meta else None


def _no_plan_memory(graph):
    return None if importlib.util.find_spec(f"{__package__}.plan_memory") else "passes/plan_memory.py not present"


def _plan_memory(graph):
    from .plan_memory import plan_memory

    return plan_memory(graph)


DEFAULT_PASSES = (Pass("prune_grads", prune_grads, _not_joint), Pass("dce", dce, None), Pass("cse", cse, None),
                  Pass("fold", fold, None), Pass("simplify", simplify, None), Pass("dce", dce, None),
                  Pass("fuse", fuse, None), Pass("hfuse", hfuse, None),
                  Pass("plan_memory", _plan_memory, _no_plan_memory))
KNOWN = {p.name: p for p in DEFAULT_PASSES}


def _as_pass(item):
    if isinstance(item, Pass):
        return item
    if isinstance(item, str):
        if item not in KNOWN:
            raise ValueError(f"run_pipeline: unknown pass {item!r}; known passes: {sorted(KNOWN)} (or pass a "
                             "function Graph -> Graph)")
        return KNOWN[item]
    if callable(item):
        return Pass(getattr(item, "__name__", type(item).__name__), item, None)
    raise TypeError(f"run_pipeline: a pass must be a name, a Pass or a function Graph -> Graph, got {item!r}")


def _flag(name, default):
    value = os.environ.get(name)
    return default if value in (None, "") else value not in ("0", "false", "False", "no")


def count_nodes(graph):
    """Nodes a pass can add or remove: constants and compute nodes."""
    return sum(1 for n in graph.nodes if n.op not in ("input", "output"))


def run_pipeline(graph, passes=None, verify=None, debug=None):
    """Run `passes` (default DEFAULT_PASSES) in order; returns (final graph, report: one dict per pass with name,
    nodes_before, nodes_after, seconds, report (the pass's graph.meta entry) and skipped (reason or None))."""
    passes = [_as_pass(p) for p in (DEFAULT_PASSES if passes is None else passes)]
    verify = _flag("GRAPHNET_VERIFY", "PYTEST_CURRENT_TEST" in os.environ) if verify is None else verify
    debug = _flag("GRAPHNET_DEBUG_PASSES", False) if debug is None else debug
    if verify:
        _verify(graph, "the input graph")
    report = []
    for p in passes:
        before = count_nodes(graph)
        reason = p.skip(graph) if p.skip is not None else None
        entry = {"name": p.name, "nodes_before": before, "nodes_after": before, "seconds": 0.0, "report": None,
                 "skipped": reason}
        report.append(entry)
        if reason is not None:
            continue
        start = time.perf_counter()
        graph = p.fn(graph)
        entry.update(seconds=time.perf_counter() - start, nodes_after=count_nodes(graph), report=graph.meta.get(p.name))
        if verify:
            _verify(graph, f"pass {p.name!r}")
        if debug:
            print(f"=== after {p.name}: {before} -> {entry['nodes_after']} nodes, {entry['seconds'] * 1e3:.2f} ms ===\n"
                  f"{graph}", file=sys.stderr)
    return graph, report


def _verify(graph, what):
    try:
        verify_graph(graph)
    except VerifyError as e:
        raise VerifyError(f"run_pipeline: {what} is malformed: {e}") from e


# ---- the report as a table ----------------------------------------------------------------------------------------
def format_report(report):
    """A fixed-width table: one row per pass (nodes before -> after, milliseconds, the pass's report), a total."""
    rows = [("pass", "nodes before", "after", "ms", "notes")]
    for e in report:
        notes = f"skipped: {e['skipped']}" if e.get("skipped") else _notes(e.get("report"))
        rows.append((e["name"], str(e["nodes_before"]), str(e["nodes_after"]), f"{e['seconds'] * 1e3:.2f}", notes))
    if report:
        rows.append(("total", str(report[0]["nodes_before"]), str(report[-1]["nodes_after"]),
                     f"{sum(e['seconds'] for e in report) * 1e3:.2f}", ""))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = [f"{r[0]:<{widths[0]}}  {r[1]:>{widths[1]}}  {r[2]:>{widths[2]}}  {r[3]:>{widths[3]}}  {r[4]}".rstrip()
             for r in rows]
    lines.insert(1, "-" * max(len(line) for line in lines))
    return "\n".join(lines)


def _notes(report):
    """`key=value` pairs of a pass report: byte counts in KiB/MiB, lists by length, nested dicts in parentheses."""
    if not isinstance(report, dict):
        return "" if report is None else str(report)
    parts = []
    for key, value in report.items():
        if isinstance(value, dict):
            parts.append(f"{key}=({', '.join(f'{k}={v}' for k, v in value.items())})")
        elif isinstance(value, (list, tuple)):
            parts.append(f"{key}=[{len(value)}]")
        elif "bytes" in key and isinstance(value, int):
            parts.append(f"{key}={format_bytes(value)}")
        else:
            parts.append(f"{key}={value}")
    return " ".join(parts)


def format_bytes(n):
    """1536 -> '1.5 KiB'."""
    if abs(n) < 1024:
        return f"{n} B"
    for unit in ("KiB", "MiB", "GiB"):
        n /= 1024
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.1f} {unit}"

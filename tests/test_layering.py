"""The package's layering, read from its own import statements (module level and inside functions alike).

Layers, lowest first: core -> ir -> passes -> codegen -> runtime -> frontend -> the user-facing packages -> viz and
the top level. A module may import its own layer or lower ones, never a higher one, and no import cycle may join
modules (docs/architecture.md draws the same picture).
"""
import ast
import pathlib

import networkx as nx
import pytest

import graphnet

ROOT = pathlib.Path(graphnet.__file__).parent
LAYERS = [("core",), ("ir",), ("passes",), ("codegen",), ("runtime",), ("frontend",),
          ("nn", "optim", "data", "autograd", "utils", "serialization", "serialization_torch", "multiprocessing", "amp",
           "serialization_torch_legacy", "cuda", "distributed",
           "onnx", "backends", "accelerator"),
          ("viz", "")]
RANK = {pkg: rank for rank, pkgs in enumerate(LAYERS) for pkg in pkgs}


def module_name(path):
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in ROOT.rglob("*.py")}


def imports(name, path):
    """(line, imported module) for every graphnet import in the module: `from pkg import sub` names the submodule."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from ((node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "graphnet")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "graphnet":
                continue
            for a in node.names:
                sub = f"{target}.{a.name}"
                yield node.lineno, sub if sub in MODULES else target


def layer(module):
    """The layer a module belongs to: its top-level subpackage or file ('' for graphnet/__init__.py)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


GRAPH = nx.DiGraph()
EDGES = []
for _name, _path in MODULES.items():
    GRAPH.add_node(_name)
    for _line, _target in imports(_name, _path):
        if _target != _name:
            GRAPH.add_edge(_name, _target)
            EDGES.append((_name, _line, _target))


def test_every_subpackage_has_a_layer():
    unknown = sorted({layer(m) for m in MODULES} - set(RANK))
    assert not unknown, f"add these subpackages to LAYERS (and to docs/architecture.md): {unknown}"


def test_imports_only_run_down():
    upward = [f"{m}:{line} imports {t} ({layer(m) or 'top level'} -> {layer(t) or 'top level'})"
              for m, line, t in EDGES if RANK[layer(t)] > RANK[layer(m)]]
    assert not upward, "imports that run upward:\n" + "\n".join(upward)


def test_no_import_cycles():
    cycles = [sorted(c) for c in nx.strongly_connected_components(GRAPH) if len(c) > 1]
    assert not cycles, f"import cycles: {cycles}"


def test_core_imports_nothing_else_from_graphnet():
    outside = [f"{m}:{line} imports {t}" for m, line, t in EDGES if layer(m) == "core" and layer(t) != "core"]
    assert not outside, outside


@pytest.mark.parametrize("source, target, expected", [
    ("graphnet.ir.graph", "graphnet.frontend.tensor", True),   # the shape of the old cycle
    ("graphnet.codegen.cuda", "graphnet.runtime.storage", True),
    ("graphnet.passes.fuse", "graphnet.codegen.cpu", True),
    ("graphnet.nn.module", "graphnet.frontend.tensor", False),
    ("graphnet.serialization", "graphnet.nn.module", False),  # peers may import each other (without a cycle)
])
def test_the_rule_catches_upward_imports(source, target, expected):
    assert (RANK[layer(target)] > RANK[layer(source)]) is expected

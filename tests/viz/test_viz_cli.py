"""python -m graphnet.viz: end to end through a subprocess, and each user mistake's error message."""
import os
import re
import shutil
import subprocess
import sys
import textwrap

import pytest

from graphnet.viz.__main__ import main

HAVE_DOT = shutil.which("dot") is not None
MODEL = textwrap.dedent("""
    import graphnet
    import graphnet.nn as nn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1, self.fc2 = nn.Linear(6, 5), nn.Linear(5, 2)

        def forward(self, x):
            return self.fc2(graphnet.relu(self.fc1(x)))

    class NeedsArgs(nn.Module):
        def __init__(self, width):
            super().__init__()

    def pair(a, b):
        return (a * b).sum()

    net = Net()
    nested = type("Box", (), {"model": net})
    NOT_A_MODEL = 3
""")


@pytest.fixture()
def workdir(tmp_path, monkeypatch):
    """A directory holding models_<test>.py, made the current directory; sys.path restored afterwards."""
    name = "vizmodels_" + re.sub(r"\W", "_", os.environ["PYTEST_CURRENT_TEST"].split("::")[-1].split(" ")[0])
    (tmp_path / f"{name}.py").write_text(MODEL)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    return tmp_path, name


def run_main(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.skipif(not HAVE_DOT, reason="Graphviz 'dot' is not installed")
def test_cli_end_to_end_in_a_subprocess(workdir):
    tmp_path, name = workdir
    cmd = [sys.executable, "-m", "graphnet.viz", f"{name}:Net", "--input", "3,6", "--stage", "fused", "-o", "net.pdf"]
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "wrote net.pdf"
    assert (tmp_path / "net.pdf").read_bytes().startswith(b"%PDF")
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == sorted([f"{name}.py", "net.pdf"])


@pytest.mark.skipif(not HAVE_DOT, reason="Graphviz 'dot' is not installed")
@pytest.mark.parametrize("target, extra, out, magic", [
    ("pair", ["--input", "2,3", "--input", "2,3", "--dtype", "float64"], "pair.svg", b"<svg"),
    ("net", ["--input", "1,6", "--collapse-depth", "0", "--stage", "joint"], "net.png", b"\x89PNG"),
    ("nested.model", ["--input", "1,6", "--no-shapes"], "box.pdf", b"%PDF"),
])
def test_functions_instances_and_formats(workdir, capsys, target, extra, out, magic):
    tmp_path, name = workdir
    code, stdout, err = run_main(capsys, f"{name}:{target}", *extra, "-o", out)
    assert code == 0, err
    assert stdout.strip() == f"wrote {out}"
    assert magic in (tmp_path / out).read_bytes()[:400]


def test_format_dot_writes_the_source_and_default_name(workdir, capsys):
    tmp_path, name = workdir
    code, stdout, err = run_main(capsys, f"{name}:Net", "--input", "2,6", "--format", "dot", "--stage", "optimized")
    assert code == 0, err
    assert stdout.strip() == "wrote Net_optimized.dot"
    source = (tmp_path / "Net_optimized.dot").read_text()
    assert source.startswith("digraph {") and "fc1.weight" in source and "Net: optimized graph" in source


@pytest.mark.parametrize("argv, message", [
    (["nocolon", "--input", "1,6"], r"expected MODULE:ATTR \(e.g. examples.lenet:LeNet\), got 'nocolon'"),
    (["no_such_module_xyz:Net"], r"cannot import module 'no_such_module_xyz'"),
    (["{name}:Nett"], r"'{name}' has no attribute 'Nett'"),
    (["{name}:NOT_A_MODEL"], r"{name}:NOT_A_MODEL is a int; expected a Module class, a Module instance or a function"),
    (["{name}:NeedsArgs", "--input", "1,6"], r"cannot build {name}:NeedsArgs with no arguments .*width"),
    (["{name}:Net", "--input", "1,a"], r"bad --input shape '1,a': expected comma-separated positive integers"),
    (["{name}:Net", "--input", "0,6"], r"bad --input shape '0,6'"),
    (["{name}:Net", "--input", "1,6", "--dtype", "float31"], r"unknown --dtype 'float31'"),
    (["{name}:Net", "--input", "1,6", "-o", "x.jpg"], r"cannot tell the output format from 'x.jpg'"),
    (["{name}:Net", "--input", "1,6", "-o", "x.pdf", "--format", "svg"], r"-o x.pdf ends in .pdf but --format is svg"),
    (["{name}:Net", "--input", "1,7"], r"tracing {name}:Net on inputs of shape \(1, 7\) failed: .*7"),
])
def test_user_mistakes_get_one_line_errors(workdir, capsys, argv, message):
    _, name = workdir
    code, out, err = run_main(capsys, *[a.format(name=name) for a in argv])
    assert code == 1 and out == ""
    assert re.search(r"python -m graphnet.viz: error: " + message.format(name=name), err), err
    assert "Traceback" not in err


def test_negative_collapse_depth_is_refused(workdir, capsys):
    _, name = workdir
    code, _, err = run_main(capsys, f"{name}:Net", "--input", "1,6", "--collapse-depth", "-1")
    assert code == 2 and "--collapse-depth must be >= 0" in err


def test_missing_dot_program_is_explained(workdir, capsys, monkeypatch):
    tmp_path, name = workdir
    monkeypatch.setenv("PATH", str(tmp_path))
    code, out, err = run_main(capsys, f"{name}:Net", "--input", "1,6", "-o", "net.pdf")
    assert code == 1 and out == ""
    assert "needs the Graphviz 'dot' program" in err and "--format dot" in err
    assert not (tmp_path / "net.pdf").exists()

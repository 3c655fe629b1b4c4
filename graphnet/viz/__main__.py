"""python -m graphnet.viz MODULE:ATTR --input 1,1,32,32 [--stage fused] [-o lenet.pdf]: draw a model's IR graph.

ATTR is a Module class (built with no arguments), a Module instance or a function, imported from the current
directory or sys.path; it is traced on random inputs of the given shapes and drawn with draw_graph.
"""
import argparse
import importlib
import os
import sys

import graphnet

from ..core.dtype import DType
from ..frontend.tracer import trace
from ..nn import Module
from . import style
from .draw_graph import STAGES, draw_graph

FORMATS = ("pdf", "svg", "png", "dot")


class CLIError(Exception):
    """A user mistake on the command line: printed as one line, exit status 1."""


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m graphnet.viz", description=__doc__.splitlines()[0])
    p.add_argument("target", help="MODULE:ATTR, e.g. examples.lenet:LeNet (a Module class or instance, or a function)")
    p.add_argument("--input", action="append", default=[], metavar="SHAPE",
                   help="comma-separated shape of one example input, e.g. 1,1,32,32 (repeat for more inputs)")
    p.add_argument("--dtype", default="float32", help="dtype of the example inputs (default float32)")
    p.add_argument("--stage", default="traced", choices=STAGES)
    p.add_argument("-o", "--output", help="output file; its extension picks the format (default ATTR_STAGE.pdf)")
    p.add_argument("--format", choices=FORMATS, help="pdf, svg, png, or dot (DOT source, needs no Graphviz)")
    p.add_argument("--collapse-depth", type=int, metavar="K", help="fold module subtrees deeper than K into boxes")
    p.add_argument("--no-shapes", action="store_true", help="do not label edges with tensor types")
    return p.parse_args(argv)


def load_target(spec):
    """The object named by 'module:attr' (attr may be dotted), importing from the current directory first."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise CLIError(f"expected MODULE:ATTR (e.g. examples.lenet:LeNet), got {spec!r}")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        obj = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise CLIError(f"cannot import module {module_name!r} ({exc}); run from the directory that holds it or "
                       f"add that directory to PYTHONPATH") from exc
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise CLIError(f"{module_name!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    return obj


def build_model(obj, spec):
    """A Module class is instantiated with no arguments; Module instances and functions are used as they are."""
    if isinstance(obj, type) and issubclass(obj, Module):
        try:
            return obj()
        except TypeError as exc:
            raise CLIError(f"cannot build {spec} with no arguments ({exc}); point at a Module instance or a "
                           f"function instead") from exc
    if isinstance(obj, Module) or (callable(obj) and not isinstance(obj, type)):
        return obj
    raise CLIError(f"{spec} is a {type(obj).__name__}; expected a Module class, a Module instance or a function")


def parse_shape(text):
    try:
        shape = tuple(int(s) for s in text.split(","))
    except ValueError:
        shape = ()
    if not shape or any(n < 1 for n in shape):
        raise CLIError(f"bad --input shape {text!r}: expected comma-separated positive integers, e.g. 1,1,32,32")
    return shape


def make_inputs(shapes, dtype_name):
    dtype = getattr(graphnet, dtype_name, None)
    if not isinstance(dtype, DType):
        raise CLIError(f"unknown --dtype {dtype_name!r}; use a graphnet dtype name such as float32 or float64")
    shapes = [parse_shape(s) for s in shapes]
    if dtype.is_floating_point:
        return [graphnet.randn(*s, dtype=dtype) for s in shapes]
    return [graphnet.zeros(*s, dtype=dtype) for s in shapes]


def output_path(args, default_name):
    """(path, format): --format wins; else -o's extension; else pdf. A contradicting extension is an error."""
    path = args.output or f"{default_name}_{args.stage}.{args.format or 'pdf'}"
    ext = os.path.splitext(path)[1].lstrip(".").lower()
    fmt = args.format or ext
    if fmt not in FORMATS:
        raise CLIError(f"cannot tell the output format from {path!r}; end -o in .pdf, .svg, .png or .dot, or pass "
                       f"--format")
    if ext in FORMATS and ext != fmt:
        raise CLIError(f"-o {path} ends in .{ext} but --format is {fmt}")
    return path, fmt


def run(args):
    model = build_model(load_target(args.target), args.target)
    path, fmt = output_path(args, args.target.rpartition(":")[2].replace(".", "_"))
    inputs = make_inputs(args.input, args.dtype)
    try:
        traced = trace(model, *inputs)
    except Exception as exc:
        shapes = ", ".join(str(tuple(t.shape)) for t in inputs) or "no inputs"
        raise CLIError(f"tracing {args.target} on inputs of shape {shapes} failed: {type(exc).__name__}: {exc}") \
            from exc
    dot = draw_graph(traced, stage=args.stage, collapse_depth=args.collapse_depth, show_shapes=not args.no_shapes)
    if fmt == "dot":
        return dot.save(path)
    try:
        return style.render(dot, path, format=fmt, cleanup=True)
    except style.GraphvizNotFoundError as exc:
        raise CLIError(f"{exc} (or write the DOT source with --format dot)") from exc


def main(argv=None):
    args = parse_args(argv)
    if args.collapse_depth is not None and args.collapse_depth < 0:
        print("python -m graphnet.viz: error: --collapse-depth must be >= 0", file=sys.stderr)
        return 2
    try:
        path = run(args)
    except CLIError as exc:
        print(f"python -m graphnet.viz: error: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

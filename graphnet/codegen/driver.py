"""Render a whole Program as one generated `njit` function, so a compiled step costs one Python call.

Each step of a Program lowers itself to a line of Python source through a `Driver`: values become locals, the
arrays a step owns (arena blocks, im2col scratch, constants) become parameters bound once, kernels become
module globals loaded by content hash. The source goes through cpu.load's hashed-file cache with cache=True,
so a second process loads the machine code instead of compiling it.
"""
from . import calls, cpu

_HEADER = """import numpy as np
from numba import njit

from graphnet.codegen.calls import call_c, call_compiled, flat
from graphnet.codegen.cpu import load_digest
from graphnet.codegen.templates import conv, embedding, gemm, pool, recurrent, softmax
"""
_LIBRARY_MODULES = {"conv", "embedding", "gemm", "pool", "recurrent", "softmax"}


class NoDriverForm(Exception):  # noqa: N818 - a signal, not an error the user sees
    """A step has no njit form; its Program then runs its steps from Python."""


class Driver:
    """Collects the body, parameters and kernel globals of one driver function. Slots read before the driver
    defines them (the Program's inputs) become its parameters, in order of first use."""

    def __init__(self, contiguous, generic=False):
        self.generic = generic  # sizes are parameters, not literals (a shape-generic Program's driver)
        self.contiguous = set(contiguous)  # slots statically known to be C-contiguous arrays
        self.transposed = {}  # slot -> the C-contiguous 2-d slot it is the transpose of
        self.batch_transposed = {}  # slot -> the C-contiguous N-d slot it swaps the last two dims of
        self.reads, self.defined = [], set()
        self.bound, self._bound_ids = [], {}
        self.kernels, self.lines = {}, []
        self.sites = 0  # kernel calls, each through calls.call_compiled
        self.origin = {}  # local name -> the name it was defined as (a parameter when the chain starts at one)
        self.passed = []  # (export slot, parameter position): exports that are a parameter, put back from Python
        self.returned = []  # the export slots the driver returns, in order

    def var(self, slot):
        if slot not in self.defined and slot not in self.reads:
            self.reads.append(slot)
        return f"v{slot}"

    def dense(self, slot):
        """The slot as a C-contiguous array expression (a copy only where it is a strided view)."""
        return self.var(slot) if slot in self.contiguous else f"np.ascontiguousarray({self.var(slot)})"

    def define(self, slot, expr, contiguous=True):
        self.lines.append(f"v{slot} = {expr}")
        self.defined.add(slot)
        if expr.isidentifier():  # another name for a value: remember the first one (a parameter, maybe)
            self.origin[f"v{slot}"] = self.origin.get(expr, expr)
        (self.contiguous.add if contiguous else self.contiguous.discard)(slot)

    def emit(self, line):
        self.lines.append(line)

    def call(self, callee, args):
        """Emit callee(*args) (a library kernel's or generated kernel's source name) as a call through its entry
        point, so the driver's module never links the kernel's code (see codegen/calls.py)."""
        site = calls.site(self.sites, callee)
        self.lines.append(f"call_compiled({site}, {callee}, addresses[{self.sites}], {', '.join(args)})")
        self.sites += 1

    def bind(self, array):
        """A parameter name for a fixed array (arena block, scratch, constant), passed on every call."""
        return self._parameter(id(array), array)

    def value(self, v):
        """A parameter name for a Python scalar or tuple argument of a library kernel. Written into the source as a
        literal, Numba would type it Literal[...] and compile the kernel once per value (gemm once per transpose-flag
        pair, conv once per geometry: +7 s of cold compile for LeNet); passed in, it has the plain type the
        Python-side calls use, so one compiled specialisation serves both. In a shape-generic driver each size has a
        parameter of its own (so does each number): shared by equal value, the source would change when two sizes
        happen to coincide."""
        sized = self.generic and not isinstance(v, bool) and isinstance(v, (int, float, tuple))
        return self._parameter(("size", len(self.bound)) if sized else (type(v), v), v)

    def literal(self, v):
        """Source for a size or shape in a step's line: a literal, or in a shape-generic driver a parameter, so the
        driver's source (and its compiled code) is the same for every size."""
        return self.value(v) if self.generic and v is not None else repr(v)

    def _parameter(self, key, obj):
        name = self._bound_ids.get(key)
        if name is None:
            name = self._bound_ids[key] = f"b{len(self.bound)}"
            self.bound.append(obj)
        return name

    def function(self, fn):
        """The source name of a library kernel (a function of a module the driver imports)."""
        module = fn.__module__.rsplit(".", 1)[1]
        if module not in _LIBRARY_MODULES:
            raise NoDriverForm(f"{fn.__module__}.{fn.__name__} is not a library kernel")
        return f"{module}.{fn.__name__}"

    def kernel(self, source):
        """A global name for a generated kernel, loaded from the kernel cache by its digest."""
        digest = cpu.digest(source)
        cpu.load(source)
        return self.kernels.setdefault(digest, f"k{len(self.kernels)}")

    def lower(self, step):
        """Append `step`; False, with nothing of it kept, when it has no njit form."""
        mark = self._mark()
        try:
            step.lower(self)
            return True
        except NoDriverForm:
            self._rollback(mark)
            return False

    _STATE = ("contiguous", "transposed", "batch_transposed", "defined", "_bound_ids", "kernels", "origin")

    def _mark(self):
        return (len(self.lines), len(self.reads), len(self.bound), self.sites,
                [getattr(self, name).copy() for name in self._STATE])

    def _rollback(self, mark):
        n_lines, n_reads, n_bound, self.sites, state = mark
        del self.lines[n_lines:], self.reads[n_reads:], self.bound[n_bound:]
        for name, value in zip(self._STATE, state):
            setattr(self, name, value)

    def source(self, exports):
        """The module source: `program(reads..., bound..., addresses)` returning the tuple of the `exports` slots
        it computes; exports that are one of its parameters (a parameter updated in place, an arena block) are
        listed in `passed` instead: each returned array costs the driver's wrapper code to compile."""
        for s in exports:  # an export no step defines (an output that is an input) is a parameter too
            self.var(s)
        names = [f"v{s}" for s in self.reads] + [f"b{i}" for i in range(len(self.bound))]
        self.passed = [(s, names.index(self.origin[self.var(s)])) for s in exports
                       if self.origin.get(self.var(s)) in names]
        self.returned = [s for s in exports if s not in dict(self.passed)]
        ret = ", ".join(self.var(s) for s in self.returned) + ("," if self.returned else "")
        params = ", ".join(names + ["addresses"])
        globs = [f"{name} = load_digest({digest!r})" for digest, name in self.kernels.items()]
        body = [f"    {line}" for line in self.lines] + [f"    return ({ret})"]
        return "\n".join([_HEADER, *globs, "", "", "@njit(cache=True)", f"def program({params}):", *body, ""])


def compile_driver(source, n_sites, args):
    """(driver function, the entry-point addresses it takes last) for `source` and its first call's leading `args`,
    through the same hashed-file cache as the kernels; (None, None) if its call sites are unknown (calls.link)."""
    token = cpu.digest(source)
    source = source.replace(calls.TOKEN, token)
    fn = cpu.load(source, attr="program")
    addresses = calls.link(fn, cpu.source_path(source), token, n_sites, args)
    return (None, None) if addresses is None else (fn, addresses)

"""What a compiled variant depends on beyond its arguments, checked before every call (torch.compile's guards).

A trace bakes in the modules' `training` flags and their other plain Python attributes (numbers, strings, None and
tuples of them: an Embedding's padding_idx), the plain values in the compiled function's closure cells and the
globals it names (a max_norm captured from a variable), which parameter and buffer tensors it read, their
`requires_grad` flags, each optimizer's structure (groups, state tensors, flags) and whether each .grad the trace
read before writing it was None (backward assigns a fresh gradient or accumulates into the one there). A Guard
snapshots those values when the variant is built; `check()` recomputes them (a few lists of flags, values and
ids), and a change makes graphnet.compile build another variant instead of running a program that would silently
compute something else.
"""
import types
from operator import attrgetter

from .tensor import Tensor

_TRAINING, _REQUIRES_GRAD = attrgetter("training"), attrgetter("_requires_grad")
_PLAIN = (bool, int, float, complex, str, bytes, type(None))
_MISSING = object()


def _plain(value):
    return isinstance(value, _PLAIN) or isinstance(value, tuple) and all(map(_plain, value))


def _is_module(obj):
    return hasattr(obj, "_parameters") and hasattr(obj, "_modules") and hasattr(obj, "training")


def module_refs(fn):
    """The Modules a function can reach without calling them: its bound `self`, closure cells and the globals its
    code names (a parameter used as `model.weight` is read through them)."""
    found = []
    if _is_module(getattr(fn, "__self__", None)):
        found.append(fn.__self__)
    fn = getattr(fn, "__func__", fn)
    code = getattr(fn, "__code__", None)
    if isinstance(code, types.CodeType):
        cells = [c.cell_contents for c in (fn.__closure__ or ()) if _filled(c)]
        names = [fn.__globals__.get(n) for n in code.co_names]
        found.extend(obj for obj in cells + names if _is_module(obj))
    return found


def plain_reads(fn):
    """(closure cells, (globals, name) pairs) of `fn` that hold plain Python values now: what its code may read and
    a trace would bake in as constants."""
    fn = getattr(fn, "__func__", fn)
    code = getattr(fn, "__code__", None)
    if not isinstance(code, types.CodeType):
        return [], []
    cells = [c for c in (fn.__closure__ or ()) if _filled(c) and _plain(c.cell_contents)]
    names = [(fn.__globals__, n) for n in code.co_names if n in fn.__globals__ and _plain(fn.__globals__[n])]
    return cells, names


def _filled(cell):
    try:
        cell.cell_contents  # noqa: B018 - an empty cell raises
    except ValueError:
        return False
    return True


class Guard:
    """The values a traced variant read (flags, tensor identities, optimizer structure) and a cheap re-check."""

    def __init__(self, traced, roots=(), fn=None):
        modules, seen = [], set()
        for root in [*roots, *traced.modules]:
            for m in root.modules():
                if id(m) not in seen:
                    seen.add(id(m))
                    modules.append(m)
        self.modules = modules
        self._dicts = [d for m in modules for d in (m._parameters, m._buffers)]
        self._attrs = [(m.__dict__, n) for m in modules for n, v in m.__dict__.items()
                       if n != "training" and not n.startswith("_") and _plain(v)]
        self._cells, self._globals = plain_reads(fn) if fn is not None else ([], [])
        self.tensors = [t for _, t in traced._state if isinstance(t, Tensor)]
        self.optimizers = list(traced.optimizers)
        self.grad_owners = [t for t, _ in traced.grad_reads]
        self.expected = self.values()[:-1] + ([none for _, none in traced.grad_reads],)  # as the trace found them

    def values(self):
        """(training flags, parameter/buffer identities, plain Python values read, requires_grad flags, optimizer
        structures, .grad presence) now; a few microseconds per call for a small model (maps and comprehensions, no
        calls)."""
        return (list(map(_TRAINING, self.modules)),
                [id(t) for d in self._dicts for t in d.values()],
                [d.get(n, _MISSING) for d, n in self._attrs] + [c.cell_contents for c in self._cells]
                + [g.get(n, _MISSING) for g, n in self._globals],
                list(map(_REQUIRES_GRAD, self.tensors)),
                [o.compile_guard() for o in self.optimizers],
                [t._grad is None for t in self.grad_owners])

    def check(self):
        return self.values() == self.expected

    def explain(self, expected):
        """Which guard differs between `expected` (another variant's) and now, in words."""
        now = self.values()
        what = ("a module's training flag (train()/eval())", "a module's parameters or buffers were replaced",
                "a plain Python value the trace read (a module attribute, closure variable or global)",
                "a tensor's requires_grad flag", "an optimizer's param_groups, state or flags",
                "whether a .grad the trace read is None (it assigns that gradient fresh or accumulates into it)")
        return next((w for w, a, b in zip(what, expected, now) if a != b), "the arguments changed")

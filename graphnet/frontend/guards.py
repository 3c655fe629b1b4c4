"""What a compiled variant depends on beyond its arguments, checked before every call (torch.compile's guards).

A trace bakes in the modules' `training` flags, which parameter and buffer tensors it read, their `requires_grad`
flags and each optimizer's structure (groups, state tensors, flags). A Guard snapshots those values when the variant
is built; `check()` recomputes them (a few tuples of flags and ids), and a change makes graphnet.compile build
another variant instead of running a program that would silently compute something else.
"""
import types
from operator import attrgetter

from .tensor import Tensor

_TRAINING, _REQUIRES_GRAD = attrgetter("training"), attrgetter("_requires_grad")


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


def _filled(cell):
    try:
        cell.cell_contents  # noqa: B018 - an empty cell raises
    except ValueError:
        return False
    return True


class Guard:
    """The values a traced variant read (flags, tensor identities, optimizer structure) and a cheap re-check."""

    def __init__(self, traced, roots=()):
        modules, seen = [], set()
        for root in [*roots, *traced.modules]:
            for m in root.modules():
                if id(m) not in seen:
                    seen.add(id(m))
                    modules.append(m)
        self.modules = modules
        self._dicts = [d for m in modules for d in (m._parameters, m._buffers)]
        self.tensors = [t for _, t in traced._state if isinstance(t, Tensor)]
        self.optimizers = list(traced.optimizers)
        self.expected = self.values()

    def values(self):
        """(training flags, parameter/buffer identities, requires_grad flags, optimizer structures) now; a few
        microseconds per call for a small model (maps over attribute getters, no per-item Python frames)."""
        return (list(map(_TRAINING, self.modules)),
                [id(t) for d in self._dicts for t in d.values()],
                list(map(_REQUIRES_GRAD, self.tensors)),
                [o.compile_guard() for o in self.optimizers])

    def check(self):
        return self.values() == self.expected

    def explain(self, expected):
        """Which guard differs between `expected` (another variant's) and now, in words."""
        now = self.values()
        what = ("a module's training flag (train()/eval())", "a module's parameters or buffers were replaced",
                "a tensor's requires_grad flag", "an optimizer's param_groups, state or flags")
        return next((w for w, a, b in zip(what, expected, now) if a != b), "the arguments changed")

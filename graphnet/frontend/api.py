"""One decorator turns a function into a public `graphnet.<name>`, a Tensor method, and optionally its `name_` twin."""
import functools

FUNCTIONS = {}


def export(*names, method=True, inplace=False, out=False, function=True):
    """Publish `fn` under `names`: as graphnet.<name> (function=True), Tensor.<name> (method=True), Tensor.<name>_
    (inplace=True: compute out of place, then write into self), and with PyTorch's `out=` keyword (out=True)."""

    def deco(fn):
        from .tensor import Tensor

        public = _with_out(fn) if out else fn
        for name in names:
            if function:
                FUNCTIONS[name] = public
            if method:
                setattr(Tensor, name, public)
            if inplace:
                setattr(Tensor, name + "_", _inplace_method(fn, name + "_"))
        return fn

    return deco


def _with_out(fn):
    @functools.wraps(fn)
    def wrapped(*args, out=None, **kwargs):
        result = fn(*args, **kwargs)
        if out is None:
            return result
        from .autograd import is_grad_enabled

        if out.requires_grad and is_grad_enabled():
            raise RuntimeError(f"{fn.__name__}(): functions with out=... arguments don't support automatic "
                               "differentiation, but one of the arguments requires grad.")
        out._set_storage(result.detach())
        return out

    return wrapped


def _inplace_method(fn, name):
    def method(self, *args, **kwargs):
        return self._assign_inplace(fn(self, *args, **kwargs), name)

    method.__name__ = name
    method.__doc__ = f"In-place version of {fn.__name__}."
    return method

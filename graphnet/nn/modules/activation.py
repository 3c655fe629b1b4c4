"""Activation layers: thin Modules over nn.functional, generated from one table where they only differ by name;
PReLU holds its learnt slope."""
from ...frontend.autograd import no_grad
from ...frontend.creation import empty
from .. import functional as F
from ..module import Module
from ..parameter import Parameter


class _Inplace(Module):
    """An activation with an `inplace` flag and keyword parameters `_defaults` ((name, default), ...) in its repr."""

    _fn = None
    _defaults = ()

    def __init__(self, *args, **kwargs):
        super().__init__()
        values = dict(self._defaults, inplace=False)
        names = list(values)
        unknown = set(kwargs) - set(names)
        if len(args) > len(names) or unknown:
            raise TypeError(f"{type(self).__name__}() takes arguments {names}, got {args} {kwargs}")
        values.update(zip(names, args))
        values.update(kwargs)
        for name, value in values.items():
            setattr(self, name, value)

    def forward(self, input):
        kwargs = {name: getattr(self, name) for name, _ in self._defaults}
        return type(self)._fn(input, inplace=self.inplace, **kwargs)

    def extra_repr(self):
        parts = [f"{name}={getattr(self, name)}" for name, _ in self._defaults]
        return ", ".join(parts + (["inplace=True"] if self.inplace else []))


def _activation(name, fn, defaults=()):
    return type(name, (_Inplace,), {"_fn": staticmethod(fn), "_defaults": defaults,
                                    "__doc__": f"Applies F.{fn.__name__} elementwise."})


ReLU = _activation("ReLU", F.relu)
ReLU6 = _activation("ReLU6", F.relu6)
SiLU = _activation("SiLU", F.silu)
Mish = _activation("Mish", F.mish)
Hardsigmoid = _activation("Hardsigmoid", F.hardsigmoid)
Hardswish = _activation("Hardswish", F.hardswish)
LeakyReLU = _activation("LeakyReLU", F.leaky_relu, (("negative_slope", 0.01),))
ELU = _activation("ELU", F.elu, (("alpha", 1.0),))
Hardtanh = _activation("Hardtanh", F.hardtanh, (("min_val", -1.0), ("max_val", 1.0)))


class _Plain(Module):
    """An activation with no arguments."""

    _fn = None

    def forward(self, input):
        return type(self)._fn(input)


def _plain(name, fn):
    return type(name, (_Plain,), {"_fn": staticmethod(fn), "__doc__": f"Applies F.{fn.__name__} elementwise."})


Sigmoid = _plain("Sigmoid", F.sigmoid)
Tanh = _plain("Tanh", F.tanh)
LogSigmoid = _plain("LogSigmoid", F.logsigmoid)
Softsign = _plain("Softsign", F.softsign)


class GLU(Module):
    """Gated linear unit: first half * sigmoid(second half) along dim."""

    def __init__(self, dim=-1):
        super().__init__()
        self.dim = dim

    def forward(self, input):
        return F.glu(input, self.dim)

    def extra_repr(self):
        return f"dim={self.dim}"


class PReLU(Module):
    """Leaky ReLU with a learnt slope: one for all channels or one per channel (num_parameters), starting at init."""

    def __init__(self, num_parameters=1, init=0.25, device=None, dtype=None):
        super().__init__()
        self.num_parameters, self.init = num_parameters, init
        self.weight = Parameter(empty(num_parameters, device=device, dtype=dtype))
        self.reset_parameters()

    def reset_parameters(self):
        with no_grad():
            self.weight.fill_(self.init)

    def forward(self, input):
        return F.prelu(input, self.weight)

    def extra_repr(self):
        return f"num_parameters={self.num_parameters}"


class GELU(Module):
    """x * Phi(x); approximate='tanh' for the tanh formula."""

    def __init__(self, approximate="none"):
        super().__init__()
        self.approximate = approximate

    def forward(self, input):
        return F.gelu(input, approximate=self.approximate)

    def extra_repr(self):
        return f"approximate={self.approximate!r}"


class Softplus(Module):
    def __init__(self, beta=1.0, threshold=20.0):
        super().__init__()
        self.beta, self.threshold = beta, threshold

    def forward(self, input):
        return F.softplus(input, self.beta, self.threshold)

    def extra_repr(self):
        return f"beta={self.beta}, threshold={self.threshold}"


class _SoftmaxBase(Module):
    _fn = None

    def __init__(self, dim=None):
        super().__init__()
        self.dim = dim

    def forward(self, input):
        return type(self)._fn(input, self.dim, _stacklevel=5)

    def extra_repr(self):
        return f"dim={self.dim}"


Softmax = type("Softmax", (_SoftmaxBase,), {"_fn": staticmethod(F.softmax), "__doc__": "Softmax along dim."})
LogSoftmax = type("LogSoftmax", (_SoftmaxBase,), {"_fn": staticmethod(F.log_softmax),
                                                  "__doc__": "log(softmax(x)) along dim, computed stably."})
Softmin = type("Softmin", (_SoftmaxBase,), {"_fn": staticmethod(F.softmin), "__doc__": "Softmax of -x along dim."})


from .attention import MultiheadAttention  # noqa: E402,F401 - PyTorch's path: nn.modules.activation

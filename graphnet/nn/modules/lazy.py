"""Lazy layers: in_features / in_channels / num_features are read from the first input; parameters (and running
statistics) stay uninitialised until then."""
from ..module import Module
from ..parameter import UninitializedBuffer, UninitializedParameter, is_lazy
from .conv import Conv1d, Conv2d
from .linear import Linear
from .normalization import BatchNorm1d, BatchNorm2d, _BatchNorm


class LazyModuleMixin:
    """Holds UninitializedParameters/Buffers; a forward pre-hook materialises them from the first input, then the module
    becomes `cls_to_become` (e.g. LazyLinear -> Linear) and the hook is removed."""

    cls_to_become = None

    def _lazy_setup(self):
        self._initialize_hook = self.register_forward_pre_hook(LazyModuleMixin._infer_parameters)

    def has_uninitialized_params(self):
        return any(is_lazy(t) for t in (*self._parameters.values(), *self._buffers.values()))

    def _infer_parameters(self, args):
        self.initialize_parameters(*args)
        if self.has_uninitialized_params():
            raise RuntimeError(f"module {self._get_name()} has not been fully initialized")
        self._initialize_hook.remove()
        del self._initialize_hook
        if self.cls_to_become is not None:
            self.__class__ = self.cls_to_become

    def _materialize_all(self, weight_shape):
        self.weight.materialize(weight_shape)
        if self.bias is not None:
            self.bias.materialize((weight_shape[0],))
        self.reset_parameters()


class LazyLinear(LazyModuleMixin, Linear):
    """A Linear whose in_features is inferred from input.shape[-1] at the first call."""

    cls_to_become = Linear

    def __init__(self, out_features, bias=True, device=None, dtype=None):
        Module.__init__(self)
        self.in_features, self.out_features = 0, out_features
        self.weight = UninitializedParameter(device=device, dtype=dtype)
        self.bias = UninitializedParameter(device=device, dtype=dtype) if bias else None
        self._lazy_setup()

    def reset_parameters(self):
        if not self.has_uninitialized_params() and self.in_features != 0:
            super().reset_parameters()

    def initialize_parameters(self, input):
        if self.has_uninitialized_params():
            self.in_features = input.shape[-1]
            self._materialize_all((self.out_features, self.in_features))


class _LazyConvMixin(LazyModuleMixin):
    def __init__(self, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1, bias=True,
                 padding_mode="zeros", device=None, dtype=None):
        super().__init__(0, 0, kernel_size, stride, padding, dilation, 1, bias, padding_mode, device, dtype)
        self.out_channels, self.groups = out_channels, groups
        self.weight = UninitializedParameter(device=device, dtype=dtype)
        self.bias = UninitializedParameter(device=device, dtype=dtype) if bias else None
        self._lazy_setup()

    def _make_parameters(self, bias, device, dtype):
        """Nothing to allocate before the first input (the lazy __init__ installs UninitializedParameters)."""

    def reset_parameters(self):
        if not self.has_uninitialized_params() and self.in_channels != 0:
            super().reset_parameters()

    def initialize_parameters(self, input):
        if self.has_uninitialized_params():
            self.in_channels = input.shape[1 if input.ndim == self._n + 2 else 0]
            if self.in_channels % self.groups:
                raise ValueError("in_channels must be divisible by groups")
            self._materialize_all((self.out_channels, self.in_channels // self.groups) + self.kernel_size)


class LazyConv2d(_LazyConvMixin, Conv2d):
    """A Conv2d whose in_channels is inferred from the first input."""

    cls_to_become = Conv2d


class LazyConv1d(_LazyConvMixin, Conv1d):
    cls_to_become = Conv1d


class _LazyBatchNorm(LazyModuleMixin, _BatchNorm):
    """BatchNorm whose num_features is input.shape[1] at the first call (weight, bias and running stats wait)."""

    def __init__(self, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True, device=None, dtype=None):
        super().__init__(0, eps, momentum, affine, track_running_stats, device, dtype)
        if affine:
            self.weight = UninitializedParameter(device=device, dtype=dtype)
            self.bias = UninitializedParameter(device=device, dtype=dtype)
        if track_running_stats:
            self.running_mean = UninitializedBuffer(device=device, dtype=dtype)
            self.running_var = UninitializedBuffer(device=device, dtype=dtype)
        self._lazy_setup()

    def reset_parameters(self):
        if not self.has_uninitialized_params() and self.num_features != 0:
            super().reset_parameters()

    def initialize_parameters(self, input):
        if self.num_features == 0:  # also without affine/running stats, so BatchNorm's feature check holds
            self.num_features = input.shape[1]
        if self.has_uninitialized_params():
            for t in (*self._parameters.values(), *self._buffers.values()):
                if is_lazy(t):
                    t.materialize((self.num_features,))
            self.reset_parameters()


class LazyBatchNorm1d(_LazyBatchNorm):
    """A BatchNorm1d whose num_features is inferred from the first input."""

    _dims = BatchNorm1d._dims
    cls_to_become = BatchNorm1d


class LazyBatchNorm2d(_LazyBatchNorm):
    """A BatchNorm2d whose num_features is inferred from the first input."""

    _dims = BatchNorm2d._dims
    cls_to_become = BatchNorm2d

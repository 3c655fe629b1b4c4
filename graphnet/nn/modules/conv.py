"""Conv1d and Conv2d on the conv2d primitive: zero padding ('same' and 'valid' too) inside the conv, and PyTorch's
other padding modes (reflect, replicate, circular) as an F.pad in front of it. ConvTranspose1d/2d on
F.conv_transpose1d/2d, with forward's output_size turned into an output_padding as PyTorch does."""
from ...frontend.creation import empty
from .. import functional as F
from ..module import Module
from ..parameter import Parameter
from .linear import reset_weight_and_bias


def _ntuple(v, n):
    return tuple(v) if isinstance(v, (tuple, list)) else (v,) * n


class _ConvNd(Module):
    """Shared argument checking, parameters and repr of the N-d convolutions."""

    _n = 2
    transposed = False

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1, bias=True,
                 padding_mode="zeros", device=None, dtype=None):
        super().__init__()
        if groups <= 0:
            raise ValueError("groups must be a positive integer")
        if in_channels % groups:
            raise ValueError("in_channels must be divisible by groups")
        if out_channels % groups:
            raise ValueError("out_channels must be divisible by groups")
        if isinstance(padding, str):
            if padding not in ("same", "valid"):
                raise ValueError(f"Invalid padding string {padding!r}, should be one of {{'valid', 'same'}}")
            if padding == "same" and any(s != 1 for s in _ntuple(stride, self._n)):
                raise ValueError("padding='same' is not supported for strided convolutions")
        modes = {"zeros", "reflect", "replicate", "circular"}
        if padding_mode not in modes:
            raise ValueError(f"padding_mode must be one of {modes}, but got padding_mode='{padding_mode}'")
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size, self.stride = _ntuple(kernel_size, self._n), _ntuple(stride, self._n)
        self.padding = padding if isinstance(padding, str) else _ntuple(padding, self._n)
        self.dilation, self.output_padding = _ntuple(dilation, self._n), (0,) * self._n
        self.padding_mode = padding_mode
        self._reversed_padding_repeated_twice = self._pad_widths()
        self._make_parameters(bias, device, dtype)

    def _pad_widths(self):
        """F.pad's widths (last dim first) for a non-zeros padding_mode, 'same' split as PyTorch splits it."""
        if self.padding == "valid":
            return [0, 0] * self._n
        if self.padding == "same":
            widths = []
            for d, k in reversed(list(zip(self.dilation, self.kernel_size))):
                total = d * (k - 1)
                widths += [total // 2, total - total // 2]
            return widths
        return [p for p in reversed(self.padding) for _ in range(2)]

    def _padded(self, input):
        """(input, padding for the conv itself): zeros pad inside the conv, other modes through F.pad first."""
        if self.padding_mode == "zeros":
            return input, self.padding
        return F.pad(input, self._reversed_padding_repeated_twice, mode=self.padding_mode), (0,) * self._n

    def _make_parameters(self, bias, device, dtype):
        channels = ((self.in_channels, self.out_channels // self.groups) if self.transposed else
                    (self.out_channels, self.in_channels // self.groups))
        self.weight = Parameter(empty(*channels, *self.kernel_size, device=device, dtype=dtype))
        self.bias = Parameter(empty(self.out_channels, device=device, dtype=dtype)) if bias else None
        self.reset_parameters()

    def reset_parameters(self):
        reset_weight_and_bias(self.weight, self.bias)

    def extra_repr(self):
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != (0,) * len(self.padding):
            s += f", padding={self.padding}"
        if self.dilation != (1,) * len(self.dilation):
            s += f", dilation={self.dilation}"
        if self.output_padding != (0,) * len(self.output_padding):
            s += f", output_padding={self.output_padding}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode}"
        return s


class Conv2d(_ConvNd):
    """2-d convolution over (N, C, H, W) (or unbatched (C, H, W)) input."""

    def forward(self, input):
        input, padding = self._padded(input)  # noqa: A001 (PyTorch's argument name)
        return F.conv2d(input, self.weight, self.bias, self.stride, padding, self.dilation, self.groups)


class Conv1d(_ConvNd):
    """1-d convolution over (N, C, L) (or unbatched (C, L)) input."""

    _n = 1

    def forward(self, input):
        input, padding = self._padded(input)  # noqa: A001 (PyTorch's argument name)
        return F.conv1d(input, self.weight, self.bias, self.stride, padding, self.dilation, self.groups)


class _ConvTransposeNd(_ConvNd):
    """Transposed convolutions: PyTorch's argument order, weight (in_channels, out_channels/groups, *kernel_size)."""

    transposed = True

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, output_padding=0, groups=1,
                 bias=True, dilation=1, padding_mode="zeros", device=None, dtype=None):
        if padding_mode != "zeros":
            raise ValueError(f'Only "zeros" padding mode is supported for {type(self).__name__}')
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias, padding_mode,
                         device, dtype)
        self.output_padding = _ntuple(output_padding, self._n)

    def _output_padding(self, input, output_size):
        """forward's output_size (spatial, or with the batch/channel dims) as the output_padding that reaches it."""
        if output_size is None:
            return self.output_padding
        n, lead = self._n, 2 if input.ndim == self._n + 2 else 1
        output_size = tuple(int(v) for v in output_size)
        if len(output_size) == lead + n:
            output_size = output_size[lead:]
        if len(output_size) != n:
            raise ValueError(f"ConvTranspose{n}D: for {input.ndim}D input, output_size must have {n} or {lead + n} "
                             f"elements (got {len(output_size)})")
        spatial = input.shape[lead:]
        mins = [(spatial[d] - 1) * self.stride[d] - 2 * self.padding[d] + self.dilation[d] * (self.kernel_size[d] - 1)
                + 1 for d in range(n)]
        maxs = [lo + s - 1 for lo, s in zip(mins, self.stride)]
        if any(not lo <= v <= hi for v, lo, hi in zip(output_size, mins, maxs)):
            raise ValueError(f"requested an output size of {output_size}, but valid sizes range from {mins} to {maxs} "
                             f"(for an input of {spatial})")
        return tuple(v - lo for v, lo in zip(output_size, mins))


class ConvTranspose2d(_ConvTransposeNd):
    """2-d transposed convolution over (N, C, H, W) (or unbatched (C, H, W)) input: the gradient of a Conv2d."""

    def forward(self, input, output_size=None):
        return F.conv_transpose2d(input, self.weight, self.bias, self.stride, self.padding,
                                  self._output_padding(input, output_size), self.groups, self.dilation)


class ConvTranspose1d(_ConvTransposeNd):
    """1-d transposed convolution over (N, C, L) (or unbatched (C, L)) input."""

    _n = 1

    def forward(self, input, output_size=None):
        return F.conv_transpose1d(input, self.weight, self.bias, self.stride, self.padding,
                                  self._output_padding(input, output_size), self.groups, self.dilation)

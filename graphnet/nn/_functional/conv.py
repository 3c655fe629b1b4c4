"""nn.functional convolution and pooling: argument normalisation around the conv2d / max_pool2d / avg_pool2d
primitives (1-d forms run as 2-d with a unit height; biases are broadcast adds)."""
from ...core.bind import bind
from ...ir.ops.nn import check_conv


def _pair(v, name="argument"):
    if isinstance(v, (tuple, list)):
        if len(v) == 1:
            return (int(v[0]),) * 2
        if len(v) != 2:
            raise ValueError(f"expected {name} to be a single int or a pair, got {tuple(v)}")
        return tuple(int(i) for i in v)
    return (int(v), int(v))


def _single(v):
    return int(v[0]) if isinstance(v, (tuple, list)) else int(v)


def _same_padding(x, weight, stride, dilation):
    """PyTorch's padding='same': total padding d*(k-1) per dim; an odd total puts the extra row/col at the end."""
    if stride != (1, 1):
        raise ValueError("padding='same' is not supported for strided convolutions")
    totals = [dilation[i] * (weight.shape[2 + i] - 1) for i in range(2)]
    extra = [t % 2 for t in totals]
    if any(extra):
        x = bind("pad", x, pad=(0, extra[1], 0, extra[0]), value=0)
    return x, (totals[0] // 2, totals[1] // 2)


def _batched(input, op_name, ndim):
    """Unbatched (C, H, W) input becomes (1, C, H, W); returns the input and whether to squeeze back."""
    if input.ndim == ndim - 1:
        return input.unsqueeze(0), True
    if input.ndim != ndim:
        raise RuntimeError(f"Expected {ndim - 1}D (unbatched) or {ndim}D (batched) input to {op_name}, but got input "
                           f"of size: {list(input.shape)}")
    return input, False


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """2-d cross-correlation; padding may be an int, a pair, 'valid' or 'same'."""
    x, unbatched = _batched(input, "conv2d", 4)
    stride, dilation = _pair(stride, "stride"), _pair(dilation, "dilation")
    if isinstance(padding, str):
        if padding not in ("same", "valid"):
            raise ValueError(f"Invalid padding string {padding!r}, should be one of {{'valid', 'same'}}")
        x, padding = _same_padding(x, weight, stride, dilation) if padding == "same" else (x, (0, 0))
    out = bind("conv2d", x, weight, stride=stride, padding=_pair(padding, "padding"), dilation=dilation,
               groups=int(groups))
    if bias is not None:
        out = out + bias.reshape(1, -1, 1, 1)
    return out.squeeze(0) if unbatched else out


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """1-d cross-correlation over (N, C, L), run as conv2d on (N, C, 1, L)."""
    x, unbatched = _batched(input, "conv1d", 3)
    if weight.ndim == 3 and int(groups) >= 1:  # PyTorch's 1-d wording, before the conv2d it runs as
        check_conv(x.shape, weight.shape, int(groups), None if padding == "same" else
                   ((0,) if padding == "valid" else (_single(padding),)), (_single(dilation),))
    pad2 = padding if isinstance(padding, str) else (0, _single(padding))
    out = conv2d(x.unsqueeze(2), weight.unsqueeze(2), bias, (1, _single(stride)), pad2, (1, _single(dilation)),
                 groups).squeeze(2)
    return out.squeeze(0) if unbatched else out


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    k = _pair(kernel_size, "kernel_size")
    s = k if stride is None or (isinstance(stride, (tuple, list)) and not stride) else _pair(stride, "stride")
    values, indices = bind("max_pool2d", input, kernel_size=k, stride=s, padding=_pair(padding, "padding"),
                           dilation=_pair(dilation, "dilation"), ceil_mode=bool(ceil_mode))
    return (values, indices) if return_indices else values


def max_pool1d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    s = _single(kernel_size if stride is None else stride)
    out = max_pool2d(input.unsqueeze(-2), (1, _single(kernel_size)), (1, s), (0, _single(padding)),
                     (1, _single(dilation)), ceil_mode, return_indices)
    return tuple(o.squeeze(-2) for o in out) if return_indices else out.squeeze(-2)


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    k = _pair(kernel_size, "kernel_size")
    s = k if stride is None or (isinstance(stride, (tuple, list)) and not stride) else _pair(stride, "stride")
    return bind("avg_pool2d", input, kernel_size=k, stride=s, padding=_pair(padding, "padding"),
                ceil_mode=bool(ceil_mode), count_include_pad=bool(count_include_pad),
                divisor_override=divisor_override)


def avg_pool1d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
    s = _single(kernel_size if stride is None else stride)
    return avg_pool2d(input.unsqueeze(-2), (1, _single(kernel_size)), (1, s), (0, _single(padding)), ceil_mode,
                      count_include_pad).squeeze(-2)


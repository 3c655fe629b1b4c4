"""nn.functional convolution and pooling: argument normalisation around the conv2d / max_pool2d / avg_pool2d
primitives (1-d forms run as 2-d with a unit height; biases are broadcast adds). A transposed convolution is the
input gradient of a convolution, so conv_transpose2d runs the conv2d_input_grad primitive (its CPU and CUDA kernels
and gradient rules included)."""
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


def _no_padding_string(op_name, padding):
    """Transposed convolutions take no 'same'/'valid' padding (PyTorch's TypeError)."""
    if isinstance(padding, str):
        raise TypeError(f"{op_name}(): argument 'padding' must be tuple of ints, not str")


def _transpose_geometry(x, weight, stride, padding, output_padding, dilation, groups):
    """PyTorch's conv_transpose checks; returns the output (H, W)."""
    if weight.ndim != 4:
        raise RuntimeError(f"expected stride to be a single integer value or a list of {weight.ndim - 2} values to "
                           f"match the convolution dimensions, but got stride={list(stride)}")
    for name, v in (("stride", stride), ("padding", padding), ("output_padding", output_padding)):
        if min(v) < (1 if name == "stride" else 0):
            raise RuntimeError(f"non-positive {name} is not supported" if name == "stride" else
                               f"negative {name} is not supported")
    if any(o >= max(s, d) for o, s, d in zip(output_padding, stride, dilation)):
        raise RuntimeError(f"output padding must be smaller than either stride or dilation, but got "
                           f"output_padding_height: {output_padding[0]} output_padding_width: {output_padding[1]} "
                           f"stride_height: {stride[0]} stride_width: {stride[1]} dilation_height: {dilation[0]} "
                           f"dilation_width: {dilation[1]}")
    size = f"[{', '.join(str(d) for d in weight.shape)}]"
    if groups < 1 or weight.shape[0] % groups:
        raise RuntimeError(f"Given groups={groups}, expected weight to be divisible by {groups} at dimension 0, but "
                           f"got weight of size [{size}] instead")
    if x.shape[1] != weight.shape[0]:
        raise RuntimeError(f"Given transposed=1, weight of size {size}, expected input{list(x.shape)} to have "
                           f"{weight.shape[0]} channels, but got {x.shape[1]} channels instead")
    out = tuple((x.shape[2 + a] - 1) * stride[a] - 2 * padding[a] + dilation[a] * (weight.shape[2 + a] - 1)
                + output_padding[a] + 1 for a in range(2))
    if min(out) < 1:
        raise RuntimeError(f"Given input size per channel: ({x.shape[2]} x {x.shape[3]}). Calculated output size per "
                           f"channel: ({out[0]} x {out[1]}). Output size is too small")
    return out


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """2-d transposed convolution, weight (in_channels, out_channels/groups, kH, kW): conv2d's input gradient."""
    x, unbatched = _batched(input, "conv_transpose2d", 4)
    _no_padding_string("conv_transpose2d", padding)
    stride, padding, dilation = _pair(stride, "stride"), _pair(padding, "padding"), _pair(dilation, "dilation")
    output_padding, groups = _pair(output_padding, "output_padding"), int(groups)
    out_hw = _transpose_geometry(x, weight, stride, padding, output_padding, dilation, groups)
    channels = weight.shape[1] * groups
    if bias is not None and tuple(bias.shape) != (channels,):
        raise RuntimeError(f"Given transposed=1, weight of size [{', '.join(str(d) for d in weight.shape)}], "
                           f"expected bias to be 1-dimensional with {channels} elements, but got bias of size "
                           f"{list(bias.shape)} instead")
    geometry = dict(stride=stride, dilation=dilation, groups=groups)
    if all(o < s for o, s in zip(output_padding, stride)):
        out = bind("conv2d_input_grad", x, weight, input_shape=(x.shape[0], channels) + out_hw, padding=padding,
                   **geometry)
    else:  # output_padding >= stride (allowed below dilation): the unpadded result, then cropped / zero-extended
        full = tuple(out_hw[a] + 2 * padding[a] - output_padding[a] for a in range(2))
        out = bind("conv2d_input_grad", x, weight, input_shape=(x.shape[0], channels) + full, padding=(0, 0),
                   **geometry)
        out = out[:, :, padding[0]:padding[0] + out_hw[0], padding[1]:padding[1] + out_hw[1]]
        out = bind("pad", out, pad=(0, out_hw[1] - out.shape[3], 0, out_hw[0] - out.shape[2]), value=0)
    if bias is not None:
        out = out + bias.reshape(1, -1, 1, 1)
    return out.squeeze(0) if unbatched else out


def conv_transpose1d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """1-d transposed convolution over (N, C, L), run as conv_transpose2d on (N, C, 1, L)."""
    x, unbatched = _batched(input, "conv_transpose1d", 3)
    _no_padding_string("conv_transpose1d", padding)
    if weight.ndim != 3:
        raise RuntimeError(f"expected stride to be a single integer value or a list of {weight.ndim - 2} values to "
                           f"match the convolution dimensions, but got stride=[{_single(stride)}]")
    out = conv_transpose2d(x.unsqueeze(2), weight.unsqueeze(2), bias, (1, _single(stride)), (0, _single(padding)),
                           (0, _single(output_padding)), groups, (1, _single(dilation))).squeeze(2)
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


"""nn.functional normalisation: batch_norm and instance_norm (running statistics), layer_norm, rms_norm,
group_norm, local_response_norm and Lp normalize."""
import numpy as np

from ...frontend.autograd import no_grad
from .shape import pad


def _channel_view(t, ndim):
    return t.reshape((1, -1) + (1,) * (ndim - 2))


def _affine(out, weight, bias, view):
    out = out if weight is None else out * view(weight)
    return out if bias is None else out + view(bias)


def _centre(input, dims):
    """(mean, input - mean) over `dims` by the corrected two-pass algorithm: the mean of the first deviations is
    the first mean's rounding error, so it is added back; float32 batch statistics of large-mean, small-variance
    data (two values per channel after a 1x1 stage) then come out as accurate as float64 sums."""
    first = input.mean(dims, keepdim=True)
    deviation = input - first
    residual = deviation.mean(dims, keepdim=True)
    return first + residual, deviation - residual


def _check_channels(input, **tensors):
    for name, t in tensors.items():
        if t is not None and t.numel() != input.shape[1]:
            raise RuntimeError(f"{name} should contain {input.shape[1]} elements not {t.numel()}")


def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1, eps=1e-5):
    """Normalise over every dim but the channel dim 1; in training, batch stats (running stats updated with
    the unbiased variance under no_grad; `momentum` may be a 0-d tensor), otherwise the running stats."""
    if input.ndim < 2:
        raise ValueError(f"batch_norm: expected 2D or higher input (got {input.ndim}D input)")
    if (running_mean is None) != (running_var is None):
        raise ValueError("running_mean and running_var must either both be None or neither be None")
    _check_channels(input, running_mean=running_mean, running_var=running_var, weight=weight, bias=bias)
    dims = (0,) + tuple(range(2, input.ndim))
    count = input.numel() // input.shape[1]
    view = lambda t: _channel_view(t, input.ndim)  # noqa: E731
    if training:
        if count <= 1:
            raise ValueError(f"Expected more than 1 value per channel when training, got input size "
                             f"torch.Size({list(input.shape)})")
        mean, centred = _centre(input, dims)
        var = (centred * centred).mean(dims)
        if running_mean is not None:
            with no_grad():
                running_mean.mul_(1.0 - momentum).add_(mean.detach().reshape(-1) * momentum)
                running_var.mul_(1.0 - momentum).add_(var.detach() * (momentum * count / (count - 1)))
        out = centred * view((var + eps).rsqrt())
    else:
        if running_mean is None:
            raise RuntimeError("running_mean must be defined in evaluation mode")
        out = (input - view(running_mean)) * view((running_var + eps).rsqrt())
    return _affine(out, weight, bias, view)


def _check_affine_shape(shape, **tensors):
    for name, t in tensors.items():
        if t is not None and tuple(t.shape) != shape:
            raise RuntimeError(f"Expected {name} to be of same shape as normalized_shape, but got {name} of shape "
                               f"{list(t.shape)} and normalized_shape = {list(shape)}")


def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5):
    """Normalise over the trailing `normalized_shape` dims (biased variance), then scale and shift."""
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    if tuple(input.shape[input.ndim - len(shape):]) != shape or len(shape) > input.ndim:
        raise RuntimeError(f"Given normalized_shape={list(shape)}, expected input with shape [*, "
                           f"{', '.join(map(str, shape))}], but got input of size{list(input.shape)}")
    _check_affine_shape(shape, weight=weight, bias=bias)
    dims = tuple(range(input.ndim - len(shape), input.ndim))
    _, centred = _centre(input, dims)
    out = centred * ((centred * centred).mean(dims, keepdim=True) + eps).rsqrt()
    return _affine(out, weight, bias, lambda t: t)


def group_norm(input, num_groups, weight=None, bias=None, eps=1e-5):
    """Normalise each of `num_groups` channel groups of every sample (biased variance), then a per-channel affine."""
    if input.ndim < 2:
        raise RuntimeError(f"Expected at least 2 dimensions for input tensor but received {input.ndim}")
    n, c = input.shape[0], input.shape[1]
    if c % num_groups:
        raise RuntimeError(f"Expected number of channels in input to be divisible by num_groups, but got input of "
                           f"shape {list(input.shape)} and num_groups={num_groups}")
    for name, t in (("weight", weight), ("bias", bias)):
        if t is not None and (t.ndim != 1 or t.numel() != c):
            raise RuntimeError(f"Expected {name} to be a vector of size equal to the number of channels in input, "
                               f"but got {name} of shape {list(t.shape)} and input of shape {list(input.shape)}")
    grouped = input.reshape(n, num_groups, -1)
    _, centred = _centre(grouped, (-1,))
    out = (centred * ((centred * centred).mean(-1, keepdim=True) + eps).rsqrt()).reshape(tuple(input.shape))
    return _affine(out, weight, bias, lambda t: _channel_view(t, input.ndim))


def instance_norm(input, running_mean=None, running_var=None, weight=None, bias=None, use_input_stats=True,
                  momentum=0.1, eps=1e-5):
    """Normalise each channel of each sample over its spatial dims; with use_input_stats, running stats (if given)
    take the batch average of the per-sample statistics (unbiased variance), otherwise they normalise."""
    if (running_mean is None) != (running_var is None):
        raise ValueError("running_mean and running_var must either both be None or neither be None")
    n = input.shape[0]
    for name, t in (("running_mean", running_mean), ("running_var", running_var), ("weight", weight),
                    ("bias", bias)):
        if t is not None and t.numel() != input.shape[1]:
            raise RuntimeError(f"{name} should contain {n * input.shape[1]} elements not {n * t.numel()}")
    dims = tuple(range(2, input.ndim))
    count = input.numel() // max(n * input.shape[1], 1)
    view = lambda t: _channel_view(t, input.ndim)  # noqa: E731
    if use_input_stats:
        if count <= 1:
            raise ValueError(f"Expected more than 1 spatial element when training, got input size "
                             f"torch.Size({list(input.shape)})")
        mean, centred = _centre(input, dims)
        var = (centred * centred).mean(dims, keepdim=True)
        if running_mean is not None:
            with no_grad():
                running_mean.mul_(1.0 - momentum).add_(mean.detach().mean(0).reshape(-1) * momentum)
                running_var.mul_(1.0 - momentum).add_(var.detach().mean(0).reshape(-1)
                                                      * (momentum * count / (count - 1)))
        out = centred * (var + eps).rsqrt()
    else:
        if running_mean is None:
            raise RuntimeError("Expected running_mean and running_var to be defined when use_input_stats is false")
        out = (input - view(running_mean)) * view((running_var + eps).rsqrt())
    return _affine(out, weight, bias, view)


def local_response_norm(input, size, alpha=1e-4, beta=0.75, k=1.0):
    """input / (k + alpha * mean of x^2 over a window of `size` neighbouring channels, zero-padded) ** beta."""
    if input.ndim < 3:
        raise ValueError(f"Expected 3D or higher dimensionality                          input (got {input.ndim} "
                         f"dimensions)")
    if input.numel() == 0:
        return input
    c = input.shape[1]
    square = (input * input).reshape(input.shape[0], c, -1)
    padded = pad(square, (0, 0, size // 2, (size - 1) // 2))
    window = padded[:, 0:c]
    for j in range(1, size):
        window = window + padded[:, j:j + c]
    div = (window * (alpha / size) + k) ** beta
    return input / div.reshape(tuple(input.shape))


def normalize(input, p=2.0, dim=1, eps=1e-12):
    """input / max(||input||_p along dim, eps)."""
    norm = (input.abs() ** p).sum(dim, keepdim=True) ** (1.0 / p)
    return input / norm.clamp(min=eps)



def rms_norm(input, normalized_shape, weight=None, eps=None):
    """x / sqrt(mean(x^2 over the trailing normalized_shape dims) + eps) * weight; eps=None is the dtype's
    machine epsilon, as in PyTorch."""
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    if len(shape) > input.ndim:
        raise ValueError(f"Input tensor must have at least {len(shape)} dimensions, but got {input.ndim}")
    if tuple(input.shape[input.ndim - len(shape):]) != shape:
        raise RuntimeError(f"Given normalized_shape={list(shape)}, expected input with shape [*"
                           f"{', '.join(map(str, shape))}], but got input of size{list(input.shape)}")
    if weight is not None and tuple(weight.shape) != shape:
        raise RuntimeError(f"Expected weight to be of same shape as normalized_shape, but got weight of shape "
                           f"{list(weight.shape)} and normalized_shape = {list(shape)}")
    eps = float(np.finfo(input.dtype.np).eps) if eps is None else eps
    dims = tuple(range(input.ndim - len(shape), input.ndim))
    out = input * ((input * input).mean(dims, keepdim=True) + eps).rsqrt()
    return out if weight is None else out * weight

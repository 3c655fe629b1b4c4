"""Helpers shared by the nn.functional families: whether a tensor holds real values, and PyTorch's `inplace=`."""


def concrete(t):
    """True when `t` holds real values (not a symbolic tracer tensor), so data-dependent checks may run."""
    return t._proxy is None


def maybe_inplace(input, result, inplace):
    """`result` written into `input` (returned) when `inplace`, else `result` itself."""
    return input.copy_(result) if inplace else result

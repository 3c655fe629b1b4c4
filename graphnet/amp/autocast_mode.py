"""torch.autocast: a region where PyTorch runs matmuls and convolutions in a lower precision. graphnet runs them in
the tensors' own precision (its compiled kernels have no half-precision types), so results are at least as precise
as PyTorch's but not bit-equal to them; entering an enabled region warns once saying so."""
import functools
import warnings

from ..core import dtype as dt

_STATE = []   # (device_type, dtype, enabled) of the regions entered, innermost last
_WARNED = set()


def is_autocast_available(device_type):
    return device_type in ("cpu", "cuda")


def is_autocast_enabled(device_type=None):
    """Whether the innermost autocast region (of `device_type`, default "cuda" as in PyTorch) is enabled."""
    device_type = device_type or "cuda"
    return next((on for dev, _, on in reversed(_STATE) if dev == device_type), False)


def get_autocast_dtype(device_type):
    return next((d for dev, d, _ in reversed(_STATE) if dev == device_type),
                dt.bfloat16 if device_type == "cpu" else dt.float16)


class autocast:  # noqa: N801 - PyTorch's name
    """`with graphnet.autocast("cpu", dtype=graphnet.bfloat16):` or as a decorator; see the module docstring."""

    def __init__(self, device_type, dtype=None, enabled=True, cache_enabled=None):
        if not isinstance(device_type, str):
            raise ValueError(f"Expected `device_type` of type `str`, got: `{type(device_type)}`")
        if not is_autocast_available(device_type):
            raise RuntimeError(f"User specified an unsupported autocast device_type '{device_type}'")
        self.device = device_type
        self.fast_dtype = dtype if dtype is not None else get_autocast_dtype(device_type)
        self._enabled = bool(enabled)
        if self._enabled and device_type == "cuda":
            from ..runtime.cuda_runtime import is_available

            if not is_available():
                warnings.warn("User provided device_type of 'cuda', but CUDA is not available. Disabling",
                              stacklevel=2)
                self._enabled = False

    def __enter__(self):
        if self._enabled and self.device not in _WARNED:
            _WARNED.add(self.device)
            warnings.warn(f"graphnet.autocast: ops in this region run in their inputs' precision, not "
                          f"{self.fast_dtype.name} (graphnet has no mixed-precision kernels); results are at least as "
                          "precise as PyTorch's autocast gives", stacklevel=2)
        _STATE.append((self.device, self.fast_dtype, self._enabled))
        return self

    def __exit__(self, *exc):
        _STATE.pop()
        return False

    def __call__(self, func):
        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            with autocast(self.device, self.fast_dtype, self._enabled):
                return func(*args, **kwargs)
        return wrapper

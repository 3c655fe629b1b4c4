"""Tensor creation: from data, filled, random (seeded by manual_seed), ranges, and the *_like twins."""
import numpy as np

from ..core import dtype as dt
from ..core.device import CPU, as_device
from .api import export
from .tensor import Tensor


class Generator:
    """A seedable random source, for DataLoader(generator=...), random_split and the random ops.

    Two parts reseeded together by manual_seed: a NumPy generator (rand, randn, init, shuffling) and an explicit
    int64 state tensor [seed, offset] that counter-based ops (dropout, bernoulli, rand_like) read and advance, so a
    traced graph takes it as a 'state' input and a compiled model draws fresh, reproducible values on every call.
    """

    def __init__(self, device="cpu"):
        self.rng = np.random.default_rng()
        self._seed = None
        self._state = Tensor._wrap(np.array([_fresh_seed(), 0], np.int64), dt.int64)

    def manual_seed(self, seed):
        self._seed = int(seed)
        self.rng = np.random.default_rng(self._seed & _U64)
        self._set_state(self._seed, 0)
        return self

    def seed(self):
        """Reseed from a non-deterministic source and return the new seed."""
        return self.manual_seed(_fresh_seed()).initial_seed()

    def initial_seed(self):
        return self._seed

    def state_tensor(self):
        """The live int64 tensor [seed, offset] the counter-based random ops read and advance in place."""
        return self._state

    def get_offset(self):
        """How many counter-based values this generator has drawn since it was seeded."""
        return int(self._state._host()[1])

    def set_offset(self, offset):
        """Move the counter-based stream to `offset` (e.g. back to 0 to replay the same dropout masks)."""
        if int(offset) < 0:
            raise ValueError(f"Generator.set_offset: offset must be non-negative, got {offset}")
        self._set_state(int(self._state._host()[0]), int(offset))
        return self

    def _set_state(self, seed, offset):
        """Rewrite the state tensor in place (compiled graphs hold this very tensor as an input)."""
        np.copyto(self._state._data, np.array([seed & _U64, offset], np.uint64).view(np.int64))
        self._state._version[0] += 1


_U64 = (1 << 64) - 1


def _fresh_seed():
    return int(np.random.SeedSequence().entropy) & ((1 << 63) - 1)


default_generator = Generator()


def manual_seed(seed):
    """Seed graphnet's default generator (creation ops, dropout, init, DataLoader shuffling)."""
    return default_generator.manual_seed(seed)


def default_rng(generator=None):
    return (generator or default_generator).rng


def _finish(arr, dtype, device, requires_grad):
    d = dt.as_dtype(dtype) if dtype is not None else dt.as_dtype(arr.dtype)
    t = Tensor._wrap(dt.to_storage(arr, d), d)
    dev = as_device(device)
    if dev != CPU:
        t = t.to(dev)
    if requires_grad:
        t.requires_grad = True
    return t


def _shape(size):
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = size[0]
    return tuple(int(s) for s in size)


def _infer_data_dtype(data):
    arr = np.asarray(data)
    if arr.dtype.kind == "f":
        return dt.get_default_dtype()
    if arr.dtype.kind in "iu":
        return dt.int64
    if arr.dtype.kind == "b":
        return dt.bool_
    raise TypeError(f"tensor(): could not infer a dtype for data of type {type(data).__name__}")


@export("tensor", method=False)
def tensor(data, dtype=None, device=None, requires_grad=False):
    """A new tensor holding a copy of `data` (nested lists, numbers, NumPy arrays or tensors)."""
    if isinstance(data, Tensor):
        arr = data._host().copy()
        dtype = dtype or data.dtype
    elif isinstance(data, np.ndarray):
        arr = data.copy()
    else:
        try:
            arr = np.array(data)
        except ValueError as e:
            raise ValueError(f"tensor(): data is ragged or not numeric ({e})") from None
        if dtype is None:
            dtype = _infer_data_dtype(arr)
    return _finish(arr, dtype, device, requires_grad)


@export("as_tensor", method=False)
def as_tensor(data, dtype=None, device=None):
    """Share memory with `data` when it is already a tensor/ndarray of the right dtype and device."""
    if isinstance(data, Tensor):
        out = data if dtype is None else data.to(dtype)
        return out if device is None else out.to(device)
    if isinstance(data, np.ndarray) and (dtype is None or dt.as_dtype(dtype).np == data.dtype):
        return _finish(data, dtype, device, False)
    if hasattr(data, "__cuda_array_interface__"):
        from .interop import from_cuda_array
        return from_cuda_array(data)
    return tensor(data, dtype=dtype, device=device)


@export("from_numpy", method=False)
def from_numpy(ndarray):
    """A tensor sharing memory with `ndarray` (writes through either are seen by both)."""
    if not isinstance(ndarray, np.ndarray):
        raise TypeError(f"from_numpy(): expected np.ndarray (got {type(ndarray).__name__})")
    return Tensor._wrap(ndarray, dt.as_dtype(ndarray.dtype))


def _filled(fill):
    def make(*sizes, size=None, dtype=None, device=None, requires_grad=False):
        shape = _shape(sizes if size is None else (size,))
        arr = fill(shape, (dt.as_dtype(dtype) if dtype else dt.get_default_dtype()).np)
        return _finish(arr, dtype or dt.get_default_dtype(), device, requires_grad)

    return make


empty = export("empty", method=False, out=True)(_filled(lambda s, d: np.empty(s, d)))
zeros = export("zeros", method=False, out=True)(_filled(lambda s, d: np.zeros(s, d)))
ones = export("ones", method=False, out=True)(_filled(lambda s, d: np.ones(s, d)))


@export("full", method=False)
def full(size, fill_value, dtype=None, device=None, requires_grad=False):
    dtype = dtype or (dt.scalar_dtype(fill_value) if not isinstance(fill_value, float) else dt.get_default_dtype())
    return _finish(np.full(_shape((size,)), fill_value, dt.as_dtype(dtype).np), dtype, device, requires_grad)


def _random(sample):
    def make(*sizes, size=None, dtype=None, device=None, requires_grad=False, generator=None):
        d = dt.as_dtype(dtype) if dtype else dt.get_default_dtype()
        if not d.is_floating_point:
            raise RuntimeError(f"{sample.__name__}: expected a floating-point dtype, got {d.name}")
        arr = sample(default_rng(generator), _shape(sizes if size is None else (size,))).astype(d.np)
        return _finish(arr, d, device, requires_grad)

    return make


def rand_sample(rng, shape):
    return rng.random(shape, dtype=np.float64)


def randn_sample(rng, shape):
    return rng.standard_normal(shape)


rand = export("rand", method=False)(_random(rand_sample))
randn = export("randn", method=False)(_random(randn_sample))


@export("normal", method=False)
def normal(mean=0.0, std=1.0, size=None, generator=None, dtype=None, device=None, requires_grad=False):
    """Samples from N(mean, std); mean/std may be tensors (their broadcast shape is the output shape)."""
    m = mean._host() if isinstance(mean, Tensor) else mean
    s = std._host() if isinstance(std, Tensor) else std
    shape = _shape((size,)) if size is not None else np.broadcast(np.asarray(m), np.asarray(s)).shape
    arr = default_rng(generator).normal(m, s, shape)
    return _finish(np.asarray(arr), dtype or dt.get_default_dtype(), device, requires_grad)


@export("randint", method=False)
def randint(low, high=None, size=None, generator=None, dtype=None, device=None):
    """PyTorch's two overloads: randint(high, size) and randint(low, high, size), size also by keyword."""
    if size is None:
        if high is None:
            raise TypeError("randint() received an invalid combination of arguments: it needs a size, as in "
                            "randint(high, size) or randint(low, high, size)")
        if not isinstance(high, (tuple, list)):
            raise TypeError(f"randint(): argument 'size' (position 2) must be tuple of ints, not {type(high).__name__}")
        low, high, size = 0, low, high
    elif high is None:
        low, high = 0, low
    return _finish(default_rng(generator).integers(low, high, _shape((size,))), dtype or dt.int64, device, False)


@export("randperm", method=False)
def randperm(n, generator=None, dtype=None, device=None):
    return _finish(default_rng(generator).permutation(n), dtype or dt.int64, device, False)


@export("arange", method=False)
def arange(start, end=None, step=1, dtype=None, device=None, requires_grad=False):
    if end is None:
        start, end = 0, start
    if dtype is None:
        dtype = dt.int64 if all(isinstance(v, int) for v in (start, end, step)) else dt.get_default_dtype()
    return _finish(np.arange(start, end, step), dtype, device, requires_grad)


@export("linspace", method=False)
def linspace(start, end, steps, dtype=None, device=None, requires_grad=False):
    return _finish(np.linspace(start, end, int(steps)), dtype or dt.get_default_dtype(), device, requires_grad)


@export("eye", method=False)
def eye(n, m=None, dtype=None, device=None, requires_grad=False):
    return _finish(np.eye(n, m), dtype or dt.get_default_dtype(), device, requires_grad)


def _like(make):
    def like(input, dtype=None, device=None, requires_grad=False):
        return make(*input.shape, dtype=dtype or input.dtype, device=device or input.device,
                    requires_grad=requires_grad)

    return like


zeros_like = export("zeros_like", method=False)(_like(zeros))
ones_like = export("ones_like", method=False)(_like(ones))
empty_like = export("empty_like", method=False)(_like(empty))


@export("full_like", method=False)
def full_like(input, fill_value, dtype=None, device=None, requires_grad=False):
    return full(tuple(input.shape), fill_value, dtype=dtype or input.dtype, device=device or input.device,
                requires_grad=requires_grad)


def _legacy(d):
    def ctor(*args):
        if len(args) == 1 and not isinstance(args[0], int):
            return tensor(args[0], dtype=d)
        return empty(*args, dtype=d)

    return ctor


FloatTensor = _legacy(dt.float32)
DoubleTensor = _legacy(dt.float64)
LongTensor = _legacy(dt.int64)
IntTensor = _legacy(dt.int32)
BoolTensor = _legacy(dt.bool_)
ByteTensor = _legacy(dt.uint8)


def _new(make):
    """Tensor.new_<kind>(size, ...): a new tensor with self's dtype and device unless given (PyTorch's new_* family)."""
    def new(self, *size, dtype=None, device=None, requires_grad=False, **kwargs):
        return make(*size, **kwargs, dtype=dtype or self.dtype, device=device or self.device,
                    requires_grad=requires_grad)

    return new


for _name, _make in {"new_empty": empty, "new_zeros": zeros, "new_ones": ones, "new_full": full,
                     "new_tensor": tensor}.items():
    setattr(Tensor, _name, _new(_make))

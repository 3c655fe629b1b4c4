"""dtypes and PyTorch's type-promotion rules (tensors outrank 0-d tensors, which outrank Python scalars)."""
import numpy as np


class DType:
    """A tensor element type; wraps the NumPy dtype of its storage and prints as `graphnet.float32`.

    `itemsize` is the storage's bytes per element, `element_size` PyTorch's (bfloat16: 4 and 2); `round` is None, or
    the function that rounds a storage array to the type's precision (bfloat16 lives in float32 storage)."""

    __slots__ = ("name", "np", "is_floating_point", "is_signed", "itemsize", "element_size", "round", "_rank")

    def __init__(self, name, np_dtype, rank, element_size=None, round=None):  # noqa: A002
        self.name = name
        self.np = np.dtype(np_dtype)
        self.is_floating_point = self.np.kind == "f"
        self.is_signed = self.np.kind in "fi"
        self.itemsize = self.np.itemsize
        self.element_size = element_size or self.itemsize
        self.round = round
        self._rank = rank

    @property
    def category(self):
        """0 bool, 1 integer, 2 floating: the order PyTorch promotes across."""
        return 0 if self.np.kind == "b" else (2 if self.is_floating_point else 1)

    @property
    def legacy_name(self):
        """The old tensor-type name, e.g. FloatTensor for float32 (used in messages and Tensor.type())."""
        return _LEGACY[self.name]

    def __repr__(self):
        return f"graphnet.{self.name}"

    def __reduce__(self):
        return (from_name, (self.name,))


def round_to_bfloat16(a):
    """float32 values rounded to bfloat16 (the top 16 bits), to nearest with ties to even as PyTorch; NaN stays a
    quiet NaN, overflow gives inf. Float64 input goes through float32 first (as PyTorch's double -> bfloat16)."""
    shape = np.shape(a)
    a = np.ascontiguousarray(a, dtype=np.float32).reshape(shape)
    u = a.view(np.uint32)
    r = (u + np.uint32(0x7FFF) + ((u >> np.uint32(16)) & np.uint32(1))) & np.uint32(0xFFFF0000)
    r = np.where(np.isnan(a), np.uint32(0x7FC00000), r)
    return r.view(np.float32).reshape(shape)


bool_ = DType("bool", np.bool_, 0)
uint8 = DType("uint8", np.uint8, 1)
int8 = DType("int8", np.int8, 2)
int16 = DType("int16", np.int16, 3)
int32 = DType("int32", np.int32, 4)
int64 = DType("int64", np.int64, 5)
float16 = DType("float16", np.float16, 6)
bfloat16 = DType("bfloat16", np.float32, 6, element_size=2, round=round_to_bfloat16)
float32 = DType("float32", np.float32, 7)
float64 = DType("float64", np.float64, 8)

ALL = (bool_, uint8, int8, int16, int32, int64, float16, bfloat16, float32, float64)
_LEGACY = {"bool": "BoolTensor", "uint8": "ByteTensor", "int8": "CharTensor", "int16": "ShortTensor",
           "int32": "IntTensor", "int64": "LongTensor", "float16": "HalfTensor", "bfloat16": "BFloat16Tensor",
           "float32": "FloatTensor", "float64": "DoubleTensor"}
HALF = (float16, bfloat16)  # eager-only: Numba's CPU kernels have no float16, and none round to bfloat16
_BY_NP = {d.np: d for d in ALL if d.round is None}  # a float32 array is float32, never bfloat16
_BY_NAME = {d.name: d for d in ALL}
ALIASES = {"float": float32, "double": float64, "half": float16, "int": int32, "long": int64,
           "short": int16, "bool": bool_}
_BY_NAME.update(ALIASES)

_default_dtype = [float32]


def get_default_dtype():
    return _default_dtype[0]


def set_default_dtype(d):
    if not as_dtype(d).is_floating_point:
        raise TypeError(f"set_default_dtype: only floating-point types are supported as the default type, got {d}")
    _default_dtype[0] = as_dtype(d)


def from_name(name):
    return _BY_NAME[name]


def as_dtype(d):
    """Accept a DType, a NumPy dtype/type, a Python type or a name and return the DType."""
    if isinstance(d, DType):
        return d
    if d is float:
        return get_default_dtype()
    if d is int:
        return int64
    if d is bool:
        return bool_
    if isinstance(d, str) and d in _BY_NAME:
        return _BY_NAME[d]
    try:
        return _BY_NP[np.dtype(d)]
    except (TypeError, KeyError):
        raise TypeError(f"unsupported dtype {d!r}; graphnet supports {', '.join(x.name for x in ALL)}") from None


def promote_types(a, b):
    """The smallest dtype both can be cast to, as torch.promote_types (uint8 with int8 gives int16, bfloat16 with
    float16 gives float32)."""
    a, b = as_dtype(a), as_dtype(b)
    if a is b:
        return a
    if a.category != b.category:
        return a if a.category > b.category else b
    return _BY_NP[np.promote_types(a.np, b.np)]


def to_storage(arr, d):
    """`arr` as the storage of a `d` tensor: cast to its NumPy dtype, rounded to its precision (bfloat16)."""
    if d.round is not None:
        return d.round(arr)
    if arr.dtype == d.np:
        return arr
    with np.errstate(over="ignore"):  # overflow to inf is the IEEE answer, as PyTorch gives
        return arr.astype(d.np)


def scalar_dtype(value):
    """The dtype a bare Python scalar would have as a tensor."""
    if isinstance(value, (bool, np.bool_)):
        return bool_
    if isinstance(value, (int, np.integer)):
        return int64
    if isinstance(value, (float, np.floating)):
        return get_default_dtype()
    raise TypeError(f"expected a number, got {type(value).__name__}")


def result_type(*operands):
    """PyTorch's result_type: dimensioned tensors > 0-d tensors > Python scalars, a higher category wins."""
    tiers = ([], [], [])
    for x in operands:
        if hasattr(x, "dtype") and hasattr(x, "ndim"):
            tiers[0 if x.ndim > 0 else 1].append(as_dtype(x.dtype))
        else:
            tiers[2].append(scalar_dtype(x))
    result = None
    for tier in tiers:
        if not tier:
            continue
        best = tier[0]
        for d in tier[1:]:
            best = promote_types(best, d)
        if result is None:
            result = best
        elif best.category > result.category:
            result = best
    return result

"""PyTorch-style text of a tensor: `tensor([[1., 2.]], grad_fn=<MulBackward0>)`."""
import numpy as np

from ..core import dtype as dt

_IMPLICIT = {dt.float32, dt.int64, dt.bool_}


def _float_formatter(values):
    finite = values[np.isfinite(values)]
    if finite.size and np.all(finite == np.round(finite)) and np.abs(finite).max() < 1e8:
        return lambda v: (f"{v:.0f}." if np.isfinite(v) else str(v)).replace("inf.", "inf")
    if finite.size:
        big, small = np.abs(finite).max(), np.abs(finite[finite != 0]).min() if np.any(finite != 0) else 1.0
        if big >= 1e8 or small < 1e-4:
            return lambda v: f"{v:.4e}"
    return lambda v: f"{v:.4f}"


def format_data(arr):
    """The bracketed values part, with PyTorch's number formatting and summarisation of big tensors."""
    if arr.dtype.kind == "f":
        flat = arr.astype(np.float64).ravel()
        fmt = _float_formatter(flat)
        width = max((len(fmt(v)) for v in flat[:2000]), default=1)
        formatter = {"float_kind": lambda v: fmt(v).rjust(width)}
    elif arr.dtype.kind == "b":
        width = 5 if arr.any() and not arr.all() else 4
        formatter = {"bool": lambda v: ("True" if v else "False").rjust(width)}
    else:
        formatter = None
    if arr.ndim == 0:
        return (formatter["float_kind"](arr.item()).strip() if arr.dtype.kind == "f"
                else ("True" if arr.item() else "False") if arr.dtype.kind == "b" else str(arr.item()))
    return np.array2string(arr, separator=", ", prefix="tensor(", formatter=formatter, threshold=1000, edgeitems=3,
                           max_line_width=80)


def tensor_repr(t, prefix="tensor("):
    parts = [format_data(t._data if t._device.type == "cpu" else t.cpu()._data)]
    if t.numel() == 0 and t.ndim == 1:
        parts = ["[]"]
    if t._device.type != "cpu":
        parts.append(f"device='{t._device}'")
    if t.numel() == 0 and t.ndim != 1:
        parts.append(f"size={tuple(t.shape)}")
    if t.dtype not in _IMPLICIT or (t.numel() == 0 and t.dtype is not dt.float32):
        parts.append(f"dtype={t.dtype!r}")
    if t.grad_fn is not None:
        parts.append(f"grad_fn=<{t.grad_fn.name()}>")
    elif t.requires_grad:
        parts.append("requires_grad=True")
    return prefix + ", ".join(parts) + ")"

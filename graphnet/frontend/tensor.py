"""Tensor: a storage (NumPy array on the CPU, device array on a GPU) plus dtype, device and autograd state.

Ops are not methods written here: each API module publishes its functions as Tensor methods through
`frontend.api.export`, and every op goes through `core.bind`.
"""
import numpy as np

from ..core import dtype as dt
from ..core.device import CPU, as_device
from ..core.types import TensorType
from . import autograd
from .printing import tensor_repr


class Size(tuple):
    """A shape: a tuple that prints as `graphnet.Size([5, 3])`."""

    def __repr__(self):
        return f"graphnet.Size({list(self)})"

    def numel(self):
        n = 1
        for s in self:
            n *= s
        return n


GRAD_WATCH = []  # the active tracer's hook, called as hook(tensor, is_write) on every .grad read and write


class Tensor:
    """A multi-dimensional array with autograd. `Tensor(5, 3)` makes an uninitialised float32 tensor."""

    __slots__ = ("_data", "_dtype", "_device", "_requires_grad", "_grad", "grad_fn", "_output_nr", "_version", "_base",
                 "_volatile", "_hooks", "_accumulator", "_proxy", "__dict__", "__weakref__")

    def __new__(cls, *args, **kwargs):
        return object.__new__(cls)

    def __init__(self, *sizes, dtype=None, device=None, requires_grad=False):
        if len(sizes) == 1 and not isinstance(sizes[0], (int, np.integer)):
            data = sizes[0]
            arr = data._data if isinstance(data, Tensor) else np.array(data, dtype=(dtype or dt.float32).np)
        else:
            shape = sizes[0] if len(sizes) == 1 and isinstance(sizes[0], tuple) else sizes
            arr = np.empty(tuple(int(s) for s in shape), dtype=(dt.as_dtype(dtype) if dtype else dt.float32).np)
        self._init(arr, dt.as_dtype(arr.dtype), CPU)
        if device is not None and as_device(device) != CPU:
            self._set_storage(self.to(device))
        if requires_grad:
            self.requires_grad = True

    def _init(self, arr, dtype, device):
        self._data, self._dtype, self._device = arr, dtype, device
        self._requires_grad, self._grad, self.grad_fn, self._output_nr = False, None, None, 0
        self._version, self._base, self._volatile = [0], None, False
        self._hooks = self._accumulator = self._proxy = None

    @classmethod
    def _wrap(cls, arr, dtype, device=CPU):
        """Fast internal constructor around an existing buffer (no copy, no checks)."""
        t = object.__new__(cls)
        t._init(arr, dtype, device)
        return t

    @classmethod
    def _scalar(cls, value, dtype, device=None):
        arr = np.asarray(value, dtype=dtype.np)
        t = cls._wrap(arr if dtype.round is None else dtype.round(arr), dtype)  # a bfloat16 scalar is rounded
        return t if device is None or device == CPU else t.to(device)

    def _type(self):
        # tuple(): the CUDA simulator's FakeShape; tuple.__new__: TensorType's own __new__ is a Python function
        return tuple.__new__(TensorType, (tuple(self._data.shape), self._dtype, self._device))

    # ---- attributes ---------------------------------------------------------------------------------------------
    @property
    def shape(self):
        return Size(self._data.shape)

    def size(self, dim=None):
        if dim is None:
            return Size(self._data.shape)
        from ..ir.ops.util import norm_dim

        return self._data.shape[norm_dim("size", dim, self.ndim)]

    @property
    def dtype(self):
        return self._dtype

    @property
    def device(self):
        return self._device

    @property
    def is_cuda(self):
        return self._device.type == "cuda"

    @property
    def is_mps(self):
        return self._device.type == "mps"

    @property
    def is_xpu(self):
        return self._device.type == "xpu"

    @property
    def ndim(self):
        return self._data.ndim

    def dim(self):
        return self._data.ndim

    ndimension = dim

    def numel(self):
        return int(self._data.size)

    nelement = numel

    def element_size(self):
        return self._dtype.element_size

    def is_floating_point(self):
        return self._dtype.is_floating_point

    def is_contiguous(self):
        return bool(self._data.flags.c_contiguous)

    def stride(self, dim=None):
        strides = tuple(s // self._dtype.itemsize for s in self._data.strides)
        return strides if dim is None else strides[dim]

    @property
    def is_leaf(self):
        return self.grad_fn is None

    @property
    def requires_grad(self):
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, flag):
        if self.grad_fn is not None and not flag:
            raise RuntimeError("you can only change requires_grad flags of leaf variables. If you want to use a "
                               "computed variable in a subgraph that doesn't require differentiation use "
                               "var_no_grad = var.detach().")
        if flag and not (self._dtype.is_floating_point):
            raise RuntimeError(f"only Tensors of floating point dtype can require gradients (got {self._dtype.name})")
        self._requires_grad = bool(flag)

    def requires_grad_(self, requires_grad=True):
        self.requires_grad = requires_grad
        return self

    def requires_grad_from(self, fn, output_nr):
        """Make this tensor the `output_nr`-th output of autograd node `fn`."""
        self.grad_fn, self._output_nr, self._requires_grad = fn, output_nr, True

    @property
    def volatile(self):
        return self._volatile

    @property
    def data(self):
        """The same storage, detached from autograd (changes to it are not tracked)."""
        out = Tensor._wrap(self._data, self._dtype, self._device)
        out._proxy = self._proxy
        return out

    @data.setter
    def data(self, other):
        self._data, self._dtype, self._device = other._data, other._dtype, other._device
        self._proxy = other._proxy

    @property
    def grad(self):
        """The accumulated gradient (None until a backward reaches this leaf). A trace notes each tensor's first
        read or write of it: a compiled variant is only valid while the .grad it first read is None or not alike."""
        if GRAD_WATCH:
            GRAD_WATCH[-1](self, False)
        return self._grad

    @grad.setter
    def grad(self, value):
        if GRAD_WATCH:
            GRAD_WATCH[-1](self, True)
        self._grad = value

    @property
    def T(self):  # noqa: N802
        return self.permute(*reversed(range(self.ndim)))

    @property
    def mT(self):  # noqa: N802
        return self.transpose(-2, -1)

    # ---- autograd ----------------------------------------------------------------------------------------------
    def backward(self, gradient=None, retain_graph=None, create_graph=False, inputs=None):
        from .engine import run_backward

        if gradient is None:
            if self.numel() != 1:
                raise RuntimeError(f"grad can be implicitly created only for scalar outputs (this tensor has shape "
                                   f"{tuple(self.shape)}); pass backward(gradient=...) with a tensor of that shape")
            gradient = Tensor._scalar(np.ones(self._data.shape, self._dtype.np), self._dtype, self._device)
        elif not isinstance(gradient, Tensor):
            gradient = Tensor._scalar(np.asarray(gradient, dtype=self._dtype.np), self._dtype, self._device)
        if tuple(gradient.shape) != tuple(self.shape):
            raise RuntimeError(f"backward: gradient has shape {tuple(gradient.shape)} but the tensor has shape "
                               f"{tuple(self.shape)}; they must match")
        retain = create_graph if retain_graph is None else retain_graph
        if isinstance(inputs, Tensor):
            inputs = [inputs]
        run_backward([self], [gradient], retain, create_graph, inputs=inputs)

    def detach(self):
        """A tensor sharing storage (and version counter) with this one, cut from the graph. Traced, it records a
        `detach` node, so a graph's own autodiff stops there too."""
        if self._proxy is not None:
            from ..core.bind import bind
            from .autograd import no_grad

            with no_grad():
                return bind("detach", self)
        out = Tensor._wrap(self._data, self._dtype, self._device)
        out._version, out._base = self._version, self._base if self._base is not None else self
        out._proxy = self._proxy
        return out

    def detach_alias(self):
        """Alias for saving outputs for backward without a reference cycle through grad_fn."""
        out = self.detach()
        out._base = None
        return out

    def detach_(self):
        if self._base is not None and self._base.requires_grad:
            raise RuntimeError("Can't detach views in-place. Use detach() instead.")
        self.grad_fn, self._requires_grad, self._output_nr = None, False, 0
        return self

    def retain_grad(self):
        if self.grad_fn is None:
            return
        if not getattr(self, "_retains_grad", False):
            self._retains_grad = True
            self.register_hook(self._store_retained_grad)

    def _store_retained_grad(self, grad):
        self.grad = grad.detach().clone() if self.grad is None else self.grad + grad.detach()

    @property
    def retains_grad(self):
        return getattr(self, "_retains_grad", False)

    def register_hook(self, hook):
        """hook(grad) -> new grad or None, called when this tensor's gradient is computed."""
        if not self._requires_grad:
            raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
        if self.grad_fn is None:
            self._hooks = self._hooks or []
            self._hooks.append(hook)
            return autograd._Handle(self._hooks, hook)
        hooks = self.grad_fn._out_hooks = self.grad_fn._out_hooks or {}
        lst = hooks.setdefault(self._output_nr, [])
        lst.append(hook)
        return autograd._Handle(lst, hook)

    # ---- conversion --------------------------------------------------------------------------------------------
    def numpy(self, force=False):
        if self._proxy is not None:
            self._graph_break(".numpy()")
        if self._requires_grad and not force:
            raise RuntimeError("Can't call numpy() on Tensor that requires grad. Use tensor.detach().numpy() instead.")
        if self._device.type != "cpu":
            raise TypeError(f"can't convert {self._device} device type tensor to numpy. Use Tensor.cpu() to copy "
                            "the tensor to host memory first.")
        return self._data

    @property
    def __cuda_array_interface__(self):
        """The CUDA Array Interface of a CUDA tensor's storage (zero-copy sharing with numba, CuPy, ...)."""
        if self._device.type != "cuda":
            raise AttributeError(f"Can't get __cuda_array_interface__ on non-CUDA tensor (device {self._device}). "
                                 "If CUDA data is required use tensor.cuda() to copy tensor to device memory.")
        if self._requires_grad:
            raise RuntimeError("Can't get __cuda_array_interface__ on Variable that requires grad. If gradients "
                               "aren't required, use var.detach() to get Variable that doesn't require grad.")
        from ..runtime.storage import cuda_array_interface

        return cuda_array_interface(self._data)

    def item(self):
        if self._proxy is not None:
            self._graph_break(".item()")
        if self.numel() != 1:
            raise RuntimeError(f"a Tensor with {self.numel()} elements cannot be converted to Scalar")
        return self._host().item()

    def tolist(self):
        if self._proxy is not None:
            self._graph_break(".tolist()")
        return self._host().tolist()

    def _host(self):
        """The values as a NumPy array (a device-to-host copy for GPU tensors)."""
        if self._proxy is not None:
            self._graph_break("reading the values")
        if self._device.type == "cpu":
            return self._data
        from ..runtime.storage import to_host  # not .cpu(): while tracing that would record (and lift) again

        return to_host(self._data)

    def __array__(self, dtype=None, copy=None):
        arr = self._host()
        return arr if dtype is None else arr.astype(dtype)

    def _set_storage(self, other):
        """Write `other`'s values into this tensor's storage (same shape), bumping the version counter."""
        if tuple(other.shape) != tuple(self.shape):
            raise RuntimeError(f"output with shape {list(self.shape)} doesn't match the broadcast shape "
                               f"{list(other.shape)}")
        if other._dtype is not self._dtype:
            if other._dtype.category > self._dtype.category:
                raise RuntimeError(f"result type {other._dtype.legacy_name[:-6]} can't be cast to the desired "
                                   f"output type {self._dtype.legacy_name[:-6]}")
            other = other.to(self._dtype)
        if self._device != other._device:
            other = other.to(self._device)
        if self._proxy is not None or other._proxy is not None:
            (self._proxy or other._proxy).tracer.assign(self, other)
        elif self._device.type == "cpu":
            if not self._data.flags.writeable:
                raise RuntimeError("unsupported operation: more than one element of the written-to tensor refers "
                                   "to a single memory location (an expanded tensor). Call .clone() before writing.")
            np.copyto(self._data, other._data)
        else:
            self._data.copy_to_device(other._data)
        self._version[0] += 1

    def _assign_inplace(self, result, name):
        """Finish an in-place op: check autograd rules, write the result, and adopt its grad_fn."""
        grad_on = autograd.is_grad_enabled()
        if grad_on and self.grad_fn is None and self._requires_grad:
            raise RuntimeError(f"{name}: a leaf Variable that requires grad is being used in an in-place operation. "
                               "Wrap the update in `with graphnet.no_grad():` or operate on a clone.")
        if grad_on and self._base is not None and self._base.requires_grad and result.requires_grad:
            raise RuntimeError(f"{name}: in-place modification of a view of a tensor that requires grad is not "
                               "supported; use an out-of-place op (or index assignment on the base tensor)")
        self._set_storage(result)
        if grad_on and result.grad_fn is not None:
            self.grad_fn, self._output_nr, self._requires_grad = result.grad_fn, result._output_nr, True
        return self

    # ---- Python protocol ---------------------------------------------------------------------------------------
    def __repr__(self):
        if self._proxy is not None:
            return f"tensor(<traced %{self._proxy.value.name}: {self._proxy.value.type}>)"
        return tensor_repr(self)

    def __format__(self, format_spec):
        """A 0-d tensor formats as its Python number (f"{loss:.4f}"), any other with an empty spec as its repr."""
        if self.ndim == 0 and self._proxy is None:
            return self.item().__format__(format_spec)
        return object.__format__(self, format_spec)

    def _graph_break(self, what):
        """Reading a symbolic (traced) tensor's values: raise GraphBreak naming the user's file:line."""
        self._proxy.graph_break(what)

    def __len__(self):
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self._data.shape[0]

    def __iter__(self):
        if self.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(len(self)))

    def __bool__(self):
        if self._proxy is not None:
            self._graph_break("bool()")
        if self.numel() != 1:
            raise RuntimeError(f"Boolean value of Tensor with more than one value is ambiguous (shape "
                               f"{tuple(self.shape)}); use .any() or .all()")
        return bool(self.item())

    def __float__(self):
        return float(self.item())

    def __int__(self):
        return int(self.item())

    def __index__(self):
        if self._dtype.is_floating_point or self.numel() != 1:
            raise TypeError("only integer tensors of a single element can be converted to an index")
        return int(self.item())

    __hash__ = object.__hash__

    def __reduce_ex__(self, protocol):
        return (_rebuild, (self._host().copy(), self._dtype.name, str(self._device), self._requires_grad))


def _rebuild(arr, dtype_name, device_str, requires_grad):
    t = Tensor._wrap(arr, dt.from_name(dtype_name))
    if device_str != "cpu":
        t = t.to(device_str)
    t.requires_grad = requires_grad
    return t

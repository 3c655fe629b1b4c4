"""Parameter: a Tensor that a Module registers as learnable; UninitializedParameter/Buffer for lazy modules."""
from ..core import dtype as dt
from ..core.device import as_device
from ..frontend.tensor import Tensor, _rebuild


class Parameter(Tensor):
    """A leaf tensor sharing `data`'s storage, registered by a Module when assigned as an attribute."""

    def __new__(cls, *args, **kwargs):
        return object.__new__(cls)

    def __init__(self, data=None, requires_grad=True):
        if data is None:
            from ..frontend.creation import empty

            data = empty(0)
        if not isinstance(data, Tensor):
            raise TypeError(f"Parameter(): data must be a Tensor, got {type(data).__name__}")
        self._init(data._data, data._dtype, data._device)
        if requires_grad:
            self.requires_grad = True

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()

    def __reduce_ex__(self, protocol):
        return (_rebuild_parameter, (self._host().copy(), self._dtype.name, str(self._device), self._requires_grad))


def _rebuild_parameter(arr, dtype_name, device_str, requires_grad):
    return Parameter(_rebuild(arr, dtype_name, device_str, False), requires_grad)


_UNINIT_MSG = ("Attempted to use an uninitialized parameter. This error happens when you are using a `LazyModule` or "
               "explicitly manipulating `graphnet.nn.parameter.UninitializedParameter` objects. When using LazyModules "
               "call `forward` with a dummy batch to initialize the parameters before calling graphnet functions "
               "(or building an optimizer over them).")


class _UninitializedTensorMixin:
    """Storage-less until `materialize(shape)`, which allocates it and turns the object into `cls_to_become` in
    place (so modules and optimizers holding it see the change); any earlier read of the data raises."""

    cls_to_become = None

    def _init_uninitialized(self, requires_grad, device, dtype):
        self._init(None, dt.as_dtype(dtype) if dtype is not None else dt.get_default_dtype(), as_device(device))
        self._requires_grad = bool(requires_grad)

    @property
    def _data(self):
        raise ValueError(_UNINIT_MSG)

    @_data.setter
    def _data(self, value):
        Tensor._data.__set__(self, value)

    def materialize(self, shape, device=None, dtype=None):
        """Allocate storage of `shape` (uninitialised values) and become `cls_to_become` in place."""
        from ..frontend.creation import empty

        data = empty(*shape, dtype=dtype or self._dtype, device=device or self._device)
        self.__class__ = self.cls_to_become
        self._data, self._dtype, self._device = data._data, data._dtype, data._device

    def __repr__(self):
        return f"<{type(self).__name__}>"

    def __reduce_ex__(self, protocol):
        raise ValueError(_UNINIT_MSG)


class UninitializedParameter(_UninitializedTensorMixin, Parameter):
    """A parameter whose shape is not known yet; `materialize(shape)` turns it into a plain Parameter."""

    cls_to_become = Parameter

    def __init__(self, requires_grad=True, device=None, dtype=None):
        self._init_uninitialized(requires_grad, device, dtype)


class UninitializedBuffer(_UninitializedTensorMixin, Tensor):
    """A buffer whose shape is not known yet (a lazy module's running statistics); materializes to a Tensor."""

    cls_to_become = Tensor

    def __init__(self, requires_grad=False, device=None, dtype=None):
        self._init_uninitialized(requires_grad, device, dtype)


def is_lazy(param):
    """True for an UninitializedParameter or UninitializedBuffer (torch.nn.parameter.is_lazy)."""
    return isinstance(param, _UninitializedTensorMixin)

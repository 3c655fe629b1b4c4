"""torch.nn.DataParallel over at most one device: on a CPU-only machine it calls the module as is (as PyTorch does);
with a GPU it moves the inputs to device_ids[0] and runs the module there, with PyTorch's device checks."""
from ... import cuda
from ...core.device import device
from ...frontend.tensor import Tensor
from ..module import Module


def _device_ids(device_ids):
    """The GPU indices to use (all by default), as ints."""
    ids = range(cuda.device_count()) if device_ids is None else device_ids
    return [d if isinstance(d, int) else (device(d).index or 0) for d in ids]


def _check_on(module, src):
    for t in (*module.parameters(), *module.buffers()):
        if (t.device.type, t.device.index or 0) != (src.type, src.index):
            raise RuntimeError(f"module must have its parameters and buffers on device {src} (device_ids[0]) but "
                               f"found one of them on device: {t.device}")


def _to(obj, dev):
    """Tensors inside (nested tuples, lists, dicts of) `obj` moved to `dev`: scatter onto a single device."""
    if isinstance(obj, Tensor):
        return obj.to(dev)
    if isinstance(obj, (tuple, list)):
        return type(obj)(_to(o, dev) for o in obj)
    if isinstance(obj, dict):
        return {k: _to(v, dev) for k, v in obj.items()}
    return obj


def _run(module, inputs, kwargs, src):
    _check_on(module, src)
    return module(*_to(tuple(inputs), src), **_to(dict(kwargs or {}), src))


class DataParallel(Module):
    """Wraps `module` (reachable as `.module`, so state_dict keys read 'module.<name>' as in PyTorch)."""

    def __init__(self, module, device_ids=None, output_device=None, dim=0):
        super().__init__()
        self.module = module
        if not cuda.is_available():
            self.device_ids = []
            return
        self.device_ids = _device_ids(device_ids)
        self.dim = dim
        self.output_device = self.device_ids[0] if output_device is None else output_device
        self.src_device_obj = device("cuda", self.device_ids[0])
        _check_on(module, self.src_device_obj)

    def forward(self, *inputs, **kwargs):
        if not self.device_ids:
            return self.module(*inputs, **kwargs)
        return _run(self.module, inputs, kwargs, self.src_device_obj)


def data_parallel(module, inputs, device_ids=None, output_device=None, dim=0, module_kwargs=None):
    """module(*inputs) on device_ids[0]; like PyTorch, it needs an accelerator."""
    if not cuda.is_available():
        raise RuntimeError("device type could not be determined")
    ids = _device_ids(device_ids)
    if not ids:
        raise RuntimeError("no available devices were found")
    inputs = inputs if isinstance(inputs, tuple) else (() if inputs is None else (inputs,))
    return _run(module, inputs, module_kwargs, device("cuda", ids[0]))

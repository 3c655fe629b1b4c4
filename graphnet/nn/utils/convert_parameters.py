"""All parameters as one flat vector and back (torch.nn.utils.parameters_to_vector / vector_to_parameters)."""
from ...frontend.api_movement import cat
from ...frontend.tensor import Tensor


def _check_device(param, device):
    if device is not None and param.device != device:
        raise TypeError("Found two parameters on different devices, this is currently not supported.")
    return param.device


def parameters_to_vector(parameters):
    """The parameters flattened and concatenated into one 1-D tensor (a copy)."""
    device, flat = None, []
    for param in parameters:
        device = _check_device(param, device)
        flat.append(param.view(-1))
    return cat(flat)


def vector_to_parameters(vec, parameters):
    """Point each parameter's data at its slice of `vec` (reshaped to the parameter's shape)."""
    if not isinstance(vec, Tensor):
        raise TypeError(f"expected graphnet.Tensor, but got: {type(vec).__name__}")
    device, pointer = None, 0
    for param in parameters:
        device = _check_device(param, device)
        n = param.numel()
        param.data = vec[pointer:pointer + n].view_as(param).data
        pointer += n

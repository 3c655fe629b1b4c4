"""One flat vector from a model's parameters, and back (torch.nn.utils.parameters_to_vector and its inverse)."""
from ...frontend.api_movement import cat
from ...frontend.autograd import no_grad


def parameters_to_vector(parameters):
    return cat([p.reshape(-1) for p in parameters])


@no_grad()
def vector_to_parameters(vec, parameters):
    if vec.ndim != 1:
        raise TypeError(f"expected torch.Tensor, but got: {type(vec).__name__}")
    offset = 0
    for p in parameters:
        n = p.numel()
        p.copy_(vec[offset:offset + n].view_as(p))
        offset += n

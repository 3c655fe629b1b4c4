"""graphnet.autograd: the functional `grad`, `backward`, `gradcheck`, and the legacy `Variable`."""
from ..frontend.autograd import (enable_grad, inference_mode, is_grad_enabled, no_grad,  # noqa: F401
                                 set_grad_enabled)
from .functional import backward, grad
from .gradcheck import gradcheck
from .variable import Variable

__all__ = ["Variable", "backward", "enable_grad", "grad", "gradcheck", "inference_mode", "is_grad_enabled", "no_grad",
           "set_grad_enabled"]

"""torch.backends.cudnn's flags with PyTorch's defaults; graphnet has no cuDNN, so they are accepted and unused."""
benchmark = False
deterministic = False
enabled = True
allow_tf32 = True

__all__ = ["allow_tf32", "benchmark", "deterministic", "enabled", "is_available", "version"]


def is_available():
    """False: graphnet's GPU kernels are its own (numba.cuda), never cuDNN's."""
    return False


def version():
    """None, as PyTorch answers where cuDNN is not available."""
    return None

"""torch.backends.mps: graphnet has no Apple-GPU backend, so MPS is neither built nor available."""
__all__ = ["is_available", "is_built"]


def is_available():
    return False


def is_built():
    return False

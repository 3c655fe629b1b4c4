"""torch.backends.cuda's matmul precision flags with PyTorch's defaults; graphnet's GEMMs ignore them (no cuBLAS)."""
__all__ = ["is_built", "matmul"]

_MATMUL_FLAGS = {"allow_tf32": False, "allow_fp16_reduced_precision_reduction": True,
                 "allow_bf16_reduced_precision_reduction": True}


class _MatmulFlags:
    """torch.backends.cuda.matmul: settable known flags; an unknown name is an AttributeError, as in PyTorch."""

    def __init__(self):
        object.__setattr__(self, "_flags", dict(_MATMUL_FLAGS))

    def __getattr__(self, name):
        try:
            return self._flags[name]
        except KeyError:
            raise AttributeError(f"Unknown attribute {name}") from None

    def __setattr__(self, name, value):
        if name not in self._flags:
            raise AttributeError(f"Unknown attribute {name}")
        self._flags[name] = value


matmul = _MatmulFlags()


def is_built():
    """False: graphnet is not built against PyTorch's CUDA libraries (its GPU kernels are numba.cuda's)."""
    return False

"""graphnet.amp: torch.amp's GradScaler (dynamic loss scaling) for scripts written against mixed-precision training."""
from .grad_scaler import GradScaler

__all__ = ["GradScaler"]

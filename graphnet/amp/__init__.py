"""graphnet.amp: torch.amp's GradScaler (dynamic loss scaling) and autocast, for scripts written against
mixed-precision training (autocast regions run in full precision: see autocast_mode)."""
from .autocast_mode import autocast, get_autocast_dtype, is_autocast_available, is_autocast_enabled
from .grad_scaler import GradScaler

__all__ = ["GradScaler", "autocast", "get_autocast_dtype", "is_autocast_available", "is_autocast_enabled"]

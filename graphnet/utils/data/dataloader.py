"""PyTorch's `torch.utils.data.dataloader` path for DataLoader and its collate functions."""
from ...data import get_worker_info
from ...data.dataloader import DataLoader, default_collate, default_convert

__all__ = ["DataLoader", "default_collate", "default_convert", "get_worker_info"]

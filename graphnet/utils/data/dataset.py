"""PyTorch's `torch.utils.data.dataset` path for the dataset classes."""
from ...data.dataset import ConcatDataset, Dataset, Subset, TensorDataset, random_split

__all__ = ["ConcatDataset", "Dataset", "Subset", "TensorDataset", "random_split"]

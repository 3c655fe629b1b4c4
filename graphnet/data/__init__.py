"""graphnet.data: datasets, samplers, DataLoader, transforms and image grids (torch.utils.data + the torchvision parts
we need)."""
from . import datasets, text, transforms, utils
from ._worker import WorkerInfo, get_worker_info
from .collate import default_collate, default_convert
from .dataloader import DataLoader
from .dataset import ConcatDataset, Dataset, Subset, TensorDataset, random_split
from .sampler import BatchSampler, RandomSampler, Sampler, SequentialSampler, SubsetRandomSampler, WeightedRandomSampler

__all__ = ["BatchSampler", "ConcatDataset", "DataLoader", "Dataset", "RandomSampler", "Sampler", "SequentialSampler",
           "Subset", "SubsetRandomSampler", "TensorDataset", "WeightedRandomSampler", "WorkerInfo", "datasets",
           "default_collate", "default_convert", "get_worker_info", "random_split", "text", "transforms",
           "utils"]

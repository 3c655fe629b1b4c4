"""PyTorch's `torch.utils.data.sampler` path (pytorch/examples' mnist_hogwild imports Sampler from it)."""
from ...data.sampler import BatchSampler, RandomSampler, Sampler, SequentialSampler  # noqa: I001
from ...data.sampler import SubsetRandomSampler, WeightedRandomSampler

__all__ = ["BatchSampler", "RandomSampler", "Sampler", "SequentialSampler", "SubsetRandomSampler",
           "WeightedRandomSampler"]

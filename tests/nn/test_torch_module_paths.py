"""Layer classes are reachable by PyTorch's module paths (`torch.nn.modules.batchnorm._BatchNorm`,
`torch.nn.modules.container.ModuleList`, `torch.nn.modules.activation.MultiheadAttention`, ...), which real code
imports, subclasses, isinstance-checks and names in `torch.serialization.safe_globals`."""
import importlib

import pytest

import graphnet.nn as nn
from graphnet.nn.modules import batchnorm, container, module, utils

SUBMODULES = ["activation", "batchnorm", "container", "conv", "dropout", "flatten", "instancenorm", "lazy", "linear",
              "loss", "module", "normalization", "padding", "pixelshuffle", "pooling", "rnn", "sparse", "transformer",
              "upsampling"]


def test_the_paths_real_code_uses():
    assert container.ModuleList is nn.ModuleList and module.Module is nn.Module
    assert isinstance(nn.BatchNorm2d(3), batchnorm._BatchNorm) and not isinstance(nn.LayerNorm(3),
                                                                                 batchnorm._BatchNorm)
    activation = importlib.import_module("graphnet.nn.modules.activation")
    assert activation.MultiheadAttention is nn.MultiheadAttention
    linear = importlib.import_module("graphnet.nn.modules.linear")
    assert type(nn.MultiheadAttention(8, 2).out_proj) is linear.NonDynamicallyQuantizableLinear
    assert utils._pair(3) == (3, 3) and utils._pair((1, 2)) == (1, 2) and utils._single(4) == (4,)
    assert utils._triple([1, 2, 3]) == (1, 2, 3) and utils._quadruple(0) == (0, 0, 0, 0)


@pytest.mark.parametrize("sub", SUBMODULES)
def test_every_class_graphnet_has_sits_where_pytorch_puts_it(sub):
    torch_nn = pytest.importorskip("torch.nn")
    theirs = importlib.import_module(f"torch.nn.modules.{sub}")
    ours = importlib.import_module(f"graphnet.nn.modules.{sub}")
    names = [n for n, v in vars(theirs).items() if isinstance(v, type) and v.__module__ == theirs.__name__
             and hasattr(nn, n) and hasattr(torch_nn, n) and not n.startswith("Lazy")]
    # the Lazy classes live in graphnet.nn.modules.lazy, which imports conv/linear (PyTorch defines them there)
    missing = [n for n in names if getattr(ours, n, None) is not getattr(nn, n)]
    assert not missing, f"graphnet.nn.modules.{sub} lacks {missing}"


@pytest.mark.parametrize("sub", ["sampler", "dataset", "dataloader"])
def test_data_classes_sit_where_torch_utils_data_puts_them(sub):
    import graphnet.data as data

    ours = importlib.import_module(f"graphnet.utils.data.{sub}")
    expected = {"sampler": ["Sampler", "RandomSampler", "BatchSampler", "SubsetRandomSampler"],
                "dataset": ["Dataset", "TensorDataset", "Subset", "random_split"],
                "dataloader": ["DataLoader", "default_collate", "get_worker_info"]}[sub]
    assert all(getattr(ours, n) is getattr(data, n) for n in expected)
    torch_data = pytest.importorskip("torch.utils.data")
    theirs = importlib.import_module(f"torch.utils.data.{sub}")
    missing = [n for n in getattr(theirs, "__all__", []) if hasattr(data, n) and hasattr(torch_data, n)
               and getattr(ours, n, None) is not getattr(data, n)]
    assert not missing, f"graphnet.utils.data.{sub} lacks {missing}"

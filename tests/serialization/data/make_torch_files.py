"""Writes the small torch.save files the torch-free reader tests load, and expected.npz with their values.

Run from the repository root with PyTorch installed: python tests/serialization/data/make_torch_files.py
(the files are committed, so the tests need no PyTorch). legacy_<name>.pt hold the same objects in the pre-1.6
non-zip format (torch.save(..., _use_new_zipfile_serialization=False)); their values are <name>'s in expected.npz.
"""
import collections
import pathlib
import sys

import numpy as np
import torch

sys.path.insert(0, str(pathlib.Path(__file__).parent.parent))
from torch_twins import small  # noqa: E402

HERE = pathlib.Path(__file__).parent
DTYPES = ["bool", "uint8", "int8", "int16", "int32", "int64", "float16", "bfloat16", "float32", "float64"]
LEGACY = ["views", "dtypes"]  # also written in the legacy format




def objects():
    """name -> object saved as <name>.pt."""
    torch.manual_seed(0)
    model = small(torch.nn)
    model.bn(torch.randn(3, 2, 4, 4))  # running statistics and num_batches_tracked move off their defaults
    opt = torch.optim.Adam(model.fc.parameters(), lr=0.01)
    model.fc(torch.randn(2, 3)).sum().backward()
    opt.step()
    x = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    views = {"x": x, "t": x.t(), "row": x[2], "col": x[:, 3], "strided": x[::2, 1::2], "scalar": x[1, 1]}
    dtypes = {d: (torch.arange(-3, 5) % 3).to(getattr(torch, d)) for d in DTYPES}
    dtypes["float32_values"] = torch.tensor([1.5, -0.25, float("inf"), float("nan")])
    dtypes["bfloat16_values"] = torch.tensor([1.5, -0.25, 3.140625, 1e30]).to(torch.bfloat16)
    misc = {"param": torch.nn.Parameter(torch.ones(2)), "grad": torch.zeros(3, requires_grad=True),
            "dtype": torch.float16, "device": torch.device("cpu"), "size": torch.Size([2, 3]),
            "nested": [1, 2.5, "s", None, (True, b"by"), {"k": collections.OrderedDict(a=torch.tensor([7]))}],
            "empty": torch.zeros(0, 3)}
    return {"state_dict": model.state_dict(), "optimizer": opt.state_dict(), "views": views, "dtypes": dtypes,
            "misc": misc}


def flatten(obj, prefix, out):
    """Every tensor in `obj` as out['prefix/key/...'] = values (bfloat16 as float32)."""
    if isinstance(obj, torch.Tensor):
        t = obj.detach()
        out[prefix] = (t.float() if t.dtype == torch.bfloat16 else t).numpy().copy()
    elif isinstance(obj, dict):
        for k, v in obj.items():
            flatten(v, f"{prefix}/{k}", out)
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            flatten(v, f"{prefix}/{i}", out)


def main():
    expected = {}
    for name, obj in objects().items():
        torch.save(obj, HERE / f"{name}.pt")
        if name in LEGACY:
            torch.save(obj, HERE / f"legacy_{name}.pt", _use_new_zipfile_serialization=False)
        flatten(obj, name, expected)
    np.savez(HERE / "expected.npz", **expected)


if __name__ == "__main__":
    main()

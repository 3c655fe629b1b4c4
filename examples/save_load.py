"""d2l.ai "Builders' guide: file I/O", run on graphnet, plus what the safe checkpoint format refuses.

    python examples/save_load.py

Everything is written into a temporary directory that is removed at the end.
"""
import os
import tempfile

import graphnet as torch
import graphnet.nn as nn
import graphnet.nn.functional as F


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.hidden = nn.Linear(20, 256)
        self.output = nn.Linear(256, 10)

    def forward(self, x):
        return self.output(F.relu(self.hidden(x)))


def tensors(folder):
    """A tensor, a list of tensors and a dict of tensors, each saved and read back."""
    x = torch.arange(4)
    torch.save(x, os.path.join(folder, "x-file"))
    x2 = torch.load(os.path.join(folder, "x-file"))
    print(x2)
    y = torch.zeros(4)
    torch.save([x, y], os.path.join(folder, "x-files"))
    x2, y2 = torch.load(os.path.join(folder, "x-files"))
    print((x2, y2))
    mydict = {"x": x, "y": y}
    torch.save(mydict, os.path.join(folder, "mydict"))
    mydict2 = torch.load(os.path.join(folder, "mydict"))
    print(mydict2)
    return {"saved": (x, y), "list": (x2, y2), "dict": mydict2}


def model_parameters(folder):
    """state_dict into a file, then into a fresh MLP: the clone computes the same outputs."""
    net = MLP()
    X = torch.randn(size=(2, 20))
    Y = net(X)
    torch.save(net.state_dict(), os.path.join(folder, "mlp.params"))
    clone = MLP()
    clone.load_state_dict(torch.load(os.path.join(folder, "mlp.params")))
    clone.eval()
    Y_clone = clone(X)
    print(Y_clone == Y)
    return Y, Y_clone


def refusals(folder):
    """A whole pickled module loads only with weights_only=False; a truncated file is reported, not unpickled."""
    path = os.path.join(folder, "whole-model.pt")
    torch.save(MLP(), path)
    errors = {}
    try:
        torch.load(path)
    except Exception as e:  # noqa: BLE001 - shown to the reader, whatever its type
        errors["whole_module"] = e
        print(f"torch.load(whole module) -> {type(e).__name__}: {e}")
    model = torch.load(path, weights_only=False)
    print(f"with weights_only=False: {type(model).__name__} restored")
    with open(path, "rb") as f:
        head = f.read(os.path.getsize(path) // 2)
    with open(path, "wb") as f:
        f.write(head)
    try:
        torch.load(path, weights_only=False)
    except Exception as e:  # noqa: BLE001
        errors["truncated"] = e
        print(f"torch.load(truncated file) -> {type(e).__name__}: {e}")
    return model, errors


def main():
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory(prefix="graphnet-save-load-") as folder:
        return {"tensors": tensors(folder), "mlp": model_parameters(folder), "refusals": refusals(folder),
                "folder": folder}


if __name__ == "__main__":
    main()

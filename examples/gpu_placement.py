"""Putting a model and its data on a device, the PyTorch way; runs on the CPU (and says so) when there is no GPU.

    python examples/gpu_placement.py
"""
import graphnet as torch
import graphnet.nn as nn
import graphnet.nn.functional as F


def place():
    """A model and a batch moved to `device`; one training step there; the result brought back to the CPU."""
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type == "cuda":
        print(f"running on {device}: {torch.cuda.get_device_name(0)}")
    else:
        print("no CUDA GPU found: running on the CPU")
    net = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3)).to(device)
    x, y = torch.randn(4, 8).to(device), torch.tensor([0, 1, 2, 1]).to(device)
    loss = F.cross_entropy(net(x), y)
    loss.backward()
    print(f"parameters on {next(net.parameters()).device}, input on {x.device}, loss on {loss.device}, "
          f"gradient on {net[0].weight.grad.device}")
    logits = net(x).cpu()
    print(f"logits back on {logits.device}:\n{logits}")
    return {"device": device, "net": net, "x": x, "y": y, "loss": loss, "logits": logits}


def mixing_devices(net):
    """A CPU tensor fed to a GPU model is refused with a clear error (shown only where a GPU exists)."""
    try:
        net(torch.randn(4, 8))
    except RuntimeError as e:
        print(f"mixing devices -> RuntimeError: {e}")
        return e
    return None


def main():
    torch.manual_seed(0)
    placed = place()
    placed["mixing_error"] = mixing_devices(placed["net"]) if placed["device"].type == "cuda" else None
    if placed["mixing_error"] is None:
        print("(the mixed-device error is shown only when a GPU is present)")
    return placed


if __name__ == "__main__":
    main()

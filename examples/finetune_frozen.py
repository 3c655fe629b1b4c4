"""Fine-tuning with a frozen backbone on the 8x8 Digits: only the new head trains, and the compiler drops the rest.

    python examples/finetune_frozen.py

1. Pretrain backbone + head on the digits 0-4 (the "source task").
2. Freeze the backbone (requires_grad=False), put a fresh 10-way head on it, train only the head on all ten digits.
3. The frozen parameters keep their values and get no .grad; the compiled backward graph computes gradients for the
   head alone (no backward work through the backbone), and the head reaches > 85% on held-out digits.
"""
import time

import graphnet as torch
import graphnet.nn as nn
import graphnet.nn.functional as F
from graphnet.data import DataLoader, TensorDataset
from graphnet.data.datasets import Digits
from graphnet.passes import autodiff, prune_grads


class Classifier(nn.Module):
    def __init__(self, classes):
        super().__init__()
        self.backbone = nn.Sequential(nn.Linear(64, 256), nn.ReLU())
        self.head = nn.Linear(256, classes)

    def forward(self, x):
        return self.head(self.backbone(x))


def digits(n_train=1400):
    """Digits as (N, 64) float32 rows in [0, 1], shuffled once, split into train / held-out test."""
    images, labels = Digits().as_tensors()
    order = torch.randperm(len(labels))
    x, y = images.view(len(labels), -1)[order], labels[order]
    return TensorDataset(x[:n_train], y[:n_train]), TensorDataset(x[n_train:], y[n_train:])


def fit(model, params, dataset, epochs, lr, batch_size=100):
    """Plain SGD with momentum on `params`; returns the last loss."""
    opt = torch.optim.SGD(params, lr=lr, momentum=0.9)
    for _ in range(epochs):
        for x, y in DataLoader(dataset, batch_size=batch_size, shuffle=True):
            opt.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
    return loss.item()


def accuracy(model, dataset):
    x, y = dataset.tensors
    with torch.no_grad():
        return (model(x).argmax(1) == y).float().mean().item()


def pretrain(train_set):
    """Backbone + a 5-way head on the digits 0-4 only."""
    x, y = train_set.tensors
    source = y < 5
    model = Classifier(5)
    loss = fit(model, model.parameters(), TensorDataset(x[source], y[source]), epochs=5, lr=0.1)
    print(f"pretrained on digits 0-4 ({int(source.sum())} images): last loss {loss:.3f}")
    return model


def freeze(model):
    """Frozen backbone, fresh 10-way head; returns a copy of the backbone's weights to compare with later."""
    for p in model.backbone.parameters():
        p.requires_grad = False
    model.head = nn.Linear(256, 10)
    model.zero_grad()
    return {k: v.clone() for k, v in model.backbone.state_dict().items()}


def report_backward(compiled):
    """What the compiled backward computes (gradients for the head only), and what pruning the gradients of a
    graph differentiated w.r.t. every parameter removes (passes.prune_grads keeps those that require grad)."""
    backward = compiled.graph("backward")
    print(f"compiled backward graph: {len(backward.outputs)} outputs, gradients for {sorted(backward.meta['grads'])}, "
          f"saved activations {backward.meta['saved']}")
    print(backward)
    traced = compiled.graph("traced")
    everything = autodiff(traced, wrt=[v.name for v in traced.inputs if v.role == "param"])
    pruned = prune_grads(everything)
    report = pruned.meta["prune_grads"]
    print(f"prune_grads on the graph differentiated w.r.t. all {len(everything.meta['autodiff']['grads'])} "
          f"parameters: keeps {sorted(pruned.meta['autodiff']['grads'])}, removes {report['nodes_removed']} "
          f"backward nodes, saves {report['saved_after']} instead of {report['saved_before']} "
          f"({report['saved_bytes_avoided']:,} bytes less kept for backward)")
    return backward, pruned


def main():
    torch.manual_seed(0)
    start = time.perf_counter()
    train_set, test_set = digits()
    model = pretrain(train_set)
    before = freeze(model)
    compiled = torch.compile(model)
    loss = fit(compiled, model.head.parameters(), train_set, epochs=6, lr=0.1)
    acc = accuracy(model, test_set)
    print(f"head trained on all ten digits: last loss {loss:.3f}, held-out accuracy {acc:.1%} "
          f"({time.perf_counter() - start:.1f} s in all)")
    unchanged = all(bool((before[k] == v).all()) for k, v in model.backbone.state_dict().items())
    no_grads = all(p.grad is None for p in model.backbone.parameters())
    print(f"backbone unchanged: {unchanged}; backbone .grad all None: {no_grads}")
    backward, pruned = report_backward(compiled)
    return {"accuracy": acc, "unchanged": unchanged, "no_grads": no_grads, "backward": backward, "pruned": pruned,
            "model": model, "compiled": compiled, "test_set": test_set}


if __name__ == "__main__":
    main()

"""d2l.ai "Builders' guide: parameter management and initialization", run on graphnet.

    python examples/parameters.py
"""
import graphnet as torch
import graphnet.nn as nn


def access(net, X):
    """Parameters of one layer, their data and grad, all of them by name, and one deep inside nested blocks."""
    net(X)
    print(net[2].state_dict())
    print(type(net[2].bias), net[2].bias.data)
    print(net[2].weight.grad is None)
    names = [(name, param.shape) for name, param in net.named_parameters()]
    print(*names)
    return names


def block1():
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 4), nn.ReLU())


def block2():
    net = nn.Sequential()
    for i in range(4):
        net.add_module(f"block {i}", block1())  # nested
    return net


def nested(X):
    rgnet = nn.Sequential(block2(), nn.Linear(4, 1))
    print(rgnet(X))
    print(rgnet)
    print(rgnet[0][1][0].bias.data)
    return rgnet


def init_normal(module):
    if type(module) is nn.Linear:
        nn.init.normal_(module.weight, mean=0, std=0.01)
        nn.init.zeros_(module.bias)


def init_constant(module):
    if type(module) is nn.Linear:
        nn.init.constant_(module.weight, 1)
        nn.init.zeros_(module.bias)


def init_xavier(module):
    if type(module) is nn.Linear:
        nn.init.xavier_uniform_(module.weight)


def init_42(module):
    if type(module) is nn.Linear:
        nn.init.constant_(module.weight, 42)


def my_init(module):
    """d2l's custom init: U(-10, 10), then every weight with |w| < 5 set to zero."""
    if type(module) is nn.Linear:
        print("Init", *[(name, param.shape) for name, param in module.named_parameters()][0])
        nn.init.uniform_(module.weight, -10, 10)
        module.weight.data *= module.weight.data.abs() >= 5


def initialize(net):
    """Built-in initializers through net.apply, per-layer initializers, a custom one, and direct edits of .data."""
    seen = {}
    net.apply(init_normal)
    print(net[0].weight.data[0], net[0].bias.data[0])
    seen["normal"] = (net[0].weight.data.clone(), net[0].bias.data.clone())
    net.apply(init_constant)
    print(net[0].weight.data[0], net[0].bias.data[0])
    seen["constant"] = (net[0].weight.data.clone(), net[0].bias.data.clone())
    net[0].apply(init_xavier)
    net[2].apply(init_42)
    print(net[0].weight.data[0])
    print(net[2].weight.data)
    seen["xavier"], seen["42"] = net[0].weight.data.clone(), net[2].weight.data.clone()
    net.apply(my_init)
    print(net[0].weight[:2])
    seen["custom"] = net[0].weight.data.clone()
    net[0].weight.data[:] += 1
    net[0].weight.data[0, 0] = 42
    print(net[0].weight.data[0])
    seen["edited"] = net[0].weight.data.clone()
    return seen


def tied(X):
    """One Linear used twice: a change to one is a change to the other, and both uses add to one gradient."""
    shared = nn.Linear(8, 8)
    net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), shared, nn.ReLU(), shared, nn.ReLU(), nn.Linear(8, 1))
    net(X).sum().backward()
    print(net[2].weight.data[0] == net[4].weight.data[0])
    net[2].weight.data[0, 0] = 100
    print(net[2].weight.data[0] == net[4].weight.data[0])
    print(f"{len(list(net.parameters()))} parameter tensors (the shared layer counts once)")
    return net


def main():
    torch.manual_seed(0)
    X = torch.rand(size=(2, 4))
    net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))
    return {"X": X, "net": net, "names": access(net, X), "rgnet": nested(X), "init": initialize(net),
            "tied": tied(X)}


if __name__ == "__main__":
    main()

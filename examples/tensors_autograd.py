"""The PyTorch 60-minute blitz, parts 1 and 2 (tensors, autograd), run unchanged on graphnet.

    python examples/tensors_autograd.py
"""
import numpy as np

import graphnet as torch
from graphnet.autograd import Variable


def tensors():
    """Creation, operations, in-place ops, indexing and reshaping."""
    x = torch.empty(5, 3)
    print(x.shape)
    x = torch.rand(5, 3)
    print(x)
    x = torch.zeros(5, 3, dtype=torch.long)
    print(x)
    x = torch.tensor([5.5, 3])
    print(x)
    x = x.new_ones(5, 3, dtype=torch.double)
    print(x)
    x = torch.randn_like(x, dtype=torch.float)
    print(x)
    print(x.size())

    y = torch.rand(5, 3)
    print(x + y)
    print(torch.add(x, y))
    result = torch.empty(5, 3)
    torch.add(x, y, out=result)
    print(result)
    sums = {"x": x, "y": y.clone(), "out": result}
    y.add_(x)  # any method ending in _ changes its tensor in place
    print(y)
    sums["y_after_add_"] = y
    print(x[:, 1])

    x = torch.randn(4, 4)
    y = x.view(16)
    z = x.view(-1, 8)  # -1: inferred from the other dimensions
    print(x.size(), y.size(), z.size())
    one = torch.randn(1)
    print(one, one.item())
    return {**sums, "x44": x, "view16": y, "sizes": (x.size(), y.size(), z.size()), "one": one}


def numpy_bridge():
    """Tensor.numpy() and torch.from_numpy share memory: a change to one shows in the other."""
    a = torch.ones(5)
    b = a.numpy()
    a.add_(1)
    print(a, b)
    c = np.ones(5)
    d = torch.from_numpy(c)
    np.add(c, 1, out=c)
    print(c, d)
    return b, d


def autograd_walkthrough():
    """out = mean(3 (x + 2)^2) for x = ones(2, 2), so d(out)/dx = 3 (x + 2) / 2 = 4.5 everywhere."""
    x = Variable(torch.ones(2, 2), requires_grad=True)
    y = x + 2
    print(y)
    print(y.grad_fn)
    z = y * y * 3
    out = z.mean()
    print(z, out)
    out.backward()
    print(x.grad)
    return x.grad, y.grad_fn


def norm_loop():
    """Doubling until the norm passes 1000 makes y = x * 2^k; a vector-Jacobian product gives v * 2^k."""
    x = torch.randn(3)
    x = Variable(x, requires_grad=True)
    y = x * 2
    while y.data.norm() < 1000:
        y = y * 2
    print(y)
    gradients = torch.FloatTensor([0.1, 1.0, 0.0001])
    y.backward(gradients)
    print(x.grad)
    return x, y, gradients


def grad_modes():
    """no_grad, requires_grad_ and the legacy volatile Variable all stop the recording of history."""
    x = torch.randn(3, requires_grad=True)
    print(x.requires_grad)
    print((x ** 2).requires_grad)
    with torch.no_grad():
        in_no_grad = (x ** 2).requires_grad
    print(in_no_grad)

    a = torch.randn(2, 2)
    a = ((a * 3) / (a - 1))
    print(a.requires_grad)
    a.requires_grad_(True)
    print(a.requires_grad)
    b = (a * a).sum()
    print(b.grad_fn)

    v = Variable(torch.randn(5, 5), volatile=True)
    w = (v * 2 + 1).relu().sum()
    print(w.grad_fn, w.requires_grad)
    return {"no_grad": in_no_grad, "requires_grad_": a.requires_grad, "b_grad_fn": b.grad_fn,
            "volatile_grad_fn": w.grad_fn, "volatile_requires_grad": w.requires_grad}


def main():
    torch.manual_seed(0)
    return {"tensors": tensors(), "numpy": numpy_bridge(), "autograd": autograd_walkthrough(),
            "norm_loop": norm_loop(), "grad_modes": grad_modes()}


if __name__ == "__main__":
    main()

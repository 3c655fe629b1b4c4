"""The tutorial's autograd walk-through, run unchanged with `import graphnet as torch`."""
import numpy as np

import graphnet as torch
from graphnet.autograd import Variable


def test_mean_of_squares_gradient_is_4_5():
    x = Variable(torch.ones(2, 2), requires_grad=True)
    y = x + 2
    z = y * y * 3
    out = z.mean()
    out.backward()
    np.testing.assert_allclose(x.grad.numpy(), np.full((2, 2), 4.5))
    assert y.grad_fn is not None and x.grad_fn is None
    assert out.grad_fn.next_functions[0][0] is not None

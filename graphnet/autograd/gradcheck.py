"""gradcheck: compare autograd's Jacobian with central finite differences (use float64 inputs)."""
import numpy as np

from ..frontend.autograd import no_grad
from ..frontend.tensor import Tensor
from .functional import grad


class GradcheckError(RuntimeError):
    """The analytical and numerical Jacobians disagree."""


def _outputs(fn, inputs):
    out = fn(*inputs)
    return [out] if isinstance(out, Tensor) else [o for o in out if isinstance(o, Tensor)]


def _numerical(fn, inputs, i, eps):
    """d outputs / d inputs[i] by central differences, one column per element of the input."""
    x = inputs[i]
    flat = x._data.reshape(-1)
    cols = []
    for k in range(flat.size):
        orig = flat[k]
        with no_grad():
            flat[k] = orig + eps
            plus = [o._data.astype(np.float64).ravel().copy() for o in _outputs(fn, inputs)]
            flat[k] = orig - eps
            minus = [o._data.astype(np.float64).ravel().copy() for o in _outputs(fn, inputs)]
        flat[k] = orig
        cols.append(np.concatenate([(p - m) / (2 * eps) for p, m in zip(plus, minus)]))
    return np.stack(cols, axis=1) if cols else np.zeros((0, 0))


def _analytical(fn, inputs, i):
    outs = [o for o in _outputs(fn, inputs) if o.requires_grad]
    rows = []
    for o in outs:
        for k in range(o.numel()):
            seed = np.zeros(o.shape, o.dtype.np)
            seed.reshape(-1)[k] = 1
            (g,) = grad([o], [inputs[i]], [Tensor._wrap(seed, o.dtype, o.device)], retain_graph=True,
                        allow_unused=True)
            rows.append(np.zeros(inputs[i].numel()) if g is None else g._data.astype(np.float64).ravel())
    return np.stack(rows, axis=0) if rows else np.zeros((0, inputs[i].numel()))


def gradcheck(func, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, raise_exception=True):
    """True when every input that requires grad has matching analytical and numerical Jacobians."""
    inputs = (inputs,) if isinstance(inputs, Tensor) else tuple(inputs)
    for i, x in enumerate(inputs):
        if not (isinstance(x, Tensor) and x.requires_grad):
            continue
        if x.dtype.name != "float64":
            raise GradcheckError(f"gradcheck: input {i} is {x.dtype.name}; finite differences need float64 inputs")
        num, ana = _numerical(func, inputs, i, eps), _analytical(func, inputs, i)
        if num.shape != ana.shape or not np.allclose(ana, num, rtol=rtol, atol=atol):
            if not raise_exception:
                return False
            err = np.abs(ana - num).max() if num.shape == ana.shape else "shape mismatch"
            raise GradcheckError(f"Jacobian mismatch for output 0 with respect to input {i} (max abs error {err}),\n"
                                 f"numerical:{num}\nanalytical:{ana}\n")
    return True

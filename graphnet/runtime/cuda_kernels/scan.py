"""cumsum / cumprod on device arrays: codegen's cuda_scan kernels launched over the rows along the scanned dim."""
import numpy as np

from ...codegen.cuda import grid_for
from ...codegen.templates.cuda_scan import kernel
from ...ir.ops.util import norm_dim
from .. import storage


def _scan(name):
    def run(arrays, attrs, types):
        x = arrays[0]
        out = storage.empty(types[0].shape, types[0].dtype.np)
        if x.size:
            d = norm_dim(name, attrs["dim"], x.ndim) if x.ndim else 0
            r = x.shape[d] if x.ndim else 1
            inner = int(np.prod(x.shape[d + 1:], dtype=np.int64))
            rows = x.size // r
            kernel(f"{name}_rows")[grid_for(rows)](storage.flat(x), storage.flat(out), rows, r, inner)
        return [out]

    return run


HANDLERS = {"cumsum": _scan("cumsum"), "cumprod": _scan("cumprod")}

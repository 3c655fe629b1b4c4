"""rand_uniform / rand_normal / rng_advance on device arrays: codegen's Philox kernels launched on the state tensor."""
import numpy as np

from ...codegen.cuda import grid_for
from ...codegen.templates.cuda_random import KINDS, kernel
from ...ir.ops import OPS
from .. import cuda_backend, storage


def _draw(name):
    def run(arrays, attrs, types):
        out = storage.empty(types[0].shape, types[0].dtype.np)
        per, kind = KINDS.get((name, types[0].dtype.name), (None, None))
        if per is None:  # float16: no device store path; the host op draws it
            return cuda_backend._fallback(OPS[name], arrays, attrs, types)
        if out.size:
            kernel("draw")[grid_for(-(-out.size // per) + 1)](storage.flat(arrays[0]), storage.flat(out), out.size,
                                                               per, kind)
        return [out]

    return run


def rng_advance(arrays, attrs, types):
    out = storage.empty((2,), np.int64)
    kernel("advance")[1, 1](arrays[0], out, int(attrs["n"]))
    return [out]


HANDLERS = {"rand_uniform": _draw("rand_uniform"), "rand_normal": _draw("rand_normal"), "rng_advance": rng_advance}

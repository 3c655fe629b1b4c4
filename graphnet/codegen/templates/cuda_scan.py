"""cumsum / cumprod on the GPU: one thread per scanned row (outer x inner rows of length r, stride inner), the
running value kept in the output's dtype (int64 for integer inputs, as on the CPU). This is the kernel source;
the launches are runtime/cuda_kernels/scan.py's."""
import functools

from ..cuda import load

_SCAN = '''

@cuda.jit(cache=True)
def {name}_rows(x, out, rows, r, inner):
    for t in range(cuda.grid(1), rows, cuda.gridsize(1)):
        base = (t // inner) * r * inner + t % inner
        out[base] = x[base]
        acc = out[base]
        for j in range(1, r):
            acc = acc {op} x[base + j * inner]
            out[base + j * inner] = acc
'''
SOURCE = "from numba import cuda\n\n" + "\n".join(_SCAN.format(name=name, op=op)
                                                  for name, op in (("cumsum", "+"), ("cumprod", "*")))


@functools.lru_cache(maxsize=None)
def kernel(name):
    return load(SOURCE, name)

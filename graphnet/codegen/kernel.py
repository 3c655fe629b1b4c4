"""The backend-neutral description of a fused loop kernel, produced by `passes/fuse.py`, rendered by cpu.py/cuda.py.

A kernel runs over an iteration `domain` (a shape). Each input is read through a strided `Access` (offset + strides
per domain dim, 0 for a broadcast dim), so broadcasting, permutes, expands and slices cost no copies. The body is a
list of SSA scalar statements; outputs are written contiguously over the domain, or — for a reduction — over the
domain with the reduced axes removed.
"""
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Access:
    """How to read a buffer at domain index (i0, i1, ...): flat offset + sum(i_d * strides[d])."""

    buffer: str
    strides: tuple
    offset: int = 0


@dataclass(frozen=True)
class Stmt:
    """`var = op(args...)`: op is an elementwise OpDef name, or 'load' (args = (input index,)) or 'const'."""

    var: str
    op: str
    args: tuple
    attrs: tuple = ()  # sorted (key, value) pairs

    def attr_dict(self):
        return dict(self.attrs)


@dataclass
class LoopKernel:
    """Elementwise (reduce_axes empty) or reduction kernel over `domain`.

    inputs/outputs: buffer names, with dtypes by name in `dtypes`; reads: one Access per load; results: the body
    vars stored to each output. For reductions, `reduce_op` is 'sum' | 'max' | 'min' and the outputs have the
    domain's shape without `reduce_axes`; `post` statements (e.g. a mean's division) apply to the reduced value.
    """

    name: str
    domain: tuple
    inputs: list
    outputs: list
    dtypes: dict
    body: list
    results: list
    reads: list = field(default_factory=list)
    reduce_axes: tuple = ()
    reduce_op: str = ""
    post: list = field(default_factory=list)

    @property
    def is_reduction(self):
        return bool(self.reduce_axes)


def contiguous_strides(shape):
    strides, acc = [0] * len(shape), 1
    for d in range(len(shape) - 1, -1, -1):
        strides[d] = acc if shape[d] != 1 else 0
        acc *= shape[d]
    return tuple(strides)


def broadcast_access(buffer, shape, domain):
    """The Access reading a contiguous buffer of `shape` broadcast over `domain` (NumPy alignment)."""
    own = contiguous_strides(shape)
    lead = len(domain) - len(shape)
    return Access(buffer, (0,) * lead + tuple(0 if s == 1 else st for s, st in zip(shape, own)))

"""The backend-neutral description of a fused loop kernel, produced by `passes/fuse.py`, rendered by cpu.py/cuda.py.

A kernel runs over an iteration `domain` (a shape). Each input is read through a strided `Access` (offset + strides
per domain dim, 0 for a broadcast dim), so broadcasting, permutes, expands and slices cost no copies. The body is a
list of SSA scalar statements; outputs are written contiguously over the domain, or — for a reduction — over the
domain with the reduced axes removed. A HorizontalKernel is several independent elementwise LoopKernels run in turn
by one function (passes/hfuse.py); both expose `members`, so renderers and the memory planner treat them alike.
"""
from dataclasses import dataclass, field, replace


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

    @property
    def members(self):
        """The loop nests this kernel runs, in order: itself (a HorizontalKernel runs several)."""
        return [self]

    def member_of(self, buffer):
        """The loop nest that reads or writes `buffer`: this one."""
        return self


@dataclass(repr=False)
class HorizontalKernel:
    """Independent elementwise LoopKernels run one after another by one function (horizontal fusion, made by
    passes/hfuse.py): one compile and one call instead of one per member. Member buffers carry the merged names."""

    members: list
    inputs: list
    outputs: list
    dtypes: dict
    name: str = "horizontal"

    is_reduction = False

    def __repr__(self):
        domains = ", ".join(str(tuple(m.domain)) for m in self.members)
        return f"HorizontalKernel(loops over {domains}; {len(self.inputs)} inputs, {len(self.outputs)} outputs)"

    def member_of(self, buffer):
        """The member reading or writing `buffer` first (outputs belong to exactly one member)."""
        return next(m for m in self.members if buffer in m.outputs or buffer in m.inputs)

    @classmethod
    def of(cls, kernels, input_maps):
        """Merge `kernels`; input_maps[m][k] is the merged input index of member m's k-th input. Outputs are
        numbered in member order; each member's scalar variables get a 'h<m>_' prefix so no two members share one."""
        members, dtypes, n_in, n_out = [], {}, 0, 0
        for m, (kernel, in_map) in enumerate(zip(kernels, input_maps)):
            names = {b: f"in{j}" for b, j in zip(kernel.inputs, in_map)}
            names.update({b: f"out{n_out + k}" for k, b in enumerate(kernel.outputs)})
            member = _renamed(kernel, names, f"h{m}_")
            members.append(member)
            dtypes.update(member.dtypes)
            n_in, n_out = max([n_in, *(j + 1 for j in in_map)]), n_out + len(kernel.outputs)
        return cls(members, [f"in{j}" for j in range(n_in)], [f"out{k}" for k in range(n_out)], dtypes)


def _renamed(kernel, names, prefix):
    """`kernel` with buffers renamed by `names` and every scalar variable prefixed."""
    def var(s):
        return names.get(s, f"{prefix}{s}")

    body = [replace(st, var=var(st.var), args=st.args if st.op in ("load", "const") else tuple(map(var, st.args)))
            for st in kernel.body]
    return replace(kernel, inputs=[names[b] for b in kernel.inputs], outputs=[names[b] for b in kernel.outputs],
                   dtypes={var(k): t for k, t in kernel.dtypes.items()}, body=body,
                   results=list(map(var, kernel.results)),
                   reads=[replace(a, buffer=names[a.buffer]) for a in kernel.reads])


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

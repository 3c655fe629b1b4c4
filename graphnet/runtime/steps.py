"""The generic steps of a Program: constants, NumPy impls and views, collectives, generated fused kernels, aliases.

Every step runs from Python over an `env` list of arrays (`step(env)`) and lowers itself into a generated driver
(`step.lower(d)`, see codegen/driver.py); a step with no njit form raises driver.NoDriverForm.
"""
import numpy as np

from ..codegen import cpu, driver
from ..core import collective
from ..ir.ops.indexing import basic_index


class Const:
    def __init__(self, slot, value):
        self.slot, self.value = slot, value

    def __call__(self, env):
        env[self.slot] = self.value

    def lower(self, d):
        value = np.asarray(self.value)
        d.define(self.slot, d.bind(value), contiguous=value.flags.c_contiguous)


class Impl:
    """Any op through its NumPy impl (views stay views); results copied into planned buffers when given."""

    def __init__(self, node, ins, outs, bufs):
        self.impl, self.attrs, self.ins, self.outs, self.bufs = node.opdef.impl, dict(node.attrs), ins, outs, bufs
        self.multi = node.opdef.n_outputs != 1
        self.op, self.shapes = node.op, (node.inputs[0].type.shape if node.inputs else (), node.outputs[0].type.shape)
        self.in_shapes = [tuple(v.type.shape) for v in node.inputs]

    def __call__(self, env):
        res = self.impl(*(env[i] for i in self.ins), **self.attrs)
        res = res if self.multi else (res,)
        for k, (slot, r) in enumerate(zip(self.outs, res)):
            if self.bufs is None:
                env[slot] = r
            else:
                dst = resolve(self.bufs[k], env)
                np.copyto(dst, r, casting="unsafe")
                env[slot] = dst

    def lower(self, d):
        """Views lower to their NumPy-in-Numba forms, a slice's adjoint to two assignments; any other op has no njit
        form here."""
        if self.op == "getitem_backward" and self.bufs is not None and self.bufs[0][0] != "input":
            (out,) = write_outputs(d, self.outs, self.bufs)
            for line in _getitem_backward_lines(d, self.ins[0], out, self.attrs, *self.shapes):
                d.emit(line)
            return
        if self.op == "cat" and self.bufs is not None:
            (out,) = write_outputs(d, self.outs, self.bufs)
            for line in _cat_lines(d, self.ins, out, self.attrs["dim"], self.in_shapes):
                d.emit(line)
            return
        if self.bufs is not None or self.op not in _VIEW_SOURCE:
            raise driver.NoDriverForm(self.op)
        (x,), (out,) = self.ins, self.outs
        expr, contiguous = _VIEW_SOURCE[self.op](d, x, self.attrs, *self.shapes)
        d.define(out, expr, contiguous)
        dims = tuple(self.attrs.get("dims", ()))
        if self.op == "permute" and x in d.contiguous and len(dims) >= 2 and \
                dims == tuple(range(len(dims) - 2)) + (len(dims) - 1, len(dims) - 2):
            (d.transposed if len(dims) == 2 else d.batch_transposed)[out] = x


class Collective(Impl):
    """An all_reduce or broadcast node. From Python it runs its impl (the group's mpi4py call); in a driver it calls
    the MPI library itself when the group registered a native entry (collective.Native), in place on its output
    buffer, so a DDP training step stays one call. The driver raises as the host path does once the group is gone,
    and on a failed MPI call."""

    def __init__(self, node, ins, outs, bufs):
        super().__init__(node, ins, outs, bufs)
        self.dtype = np.dtype(node.outputs[0].type.dtype.np).name
        self.size = int(np.prod(self.shapes[1], dtype=np.int64))

    def lower(self, d):
        native = collective.native()
        if native is None or self.dtype not in native.datatypes:
            raise driver.NoDriverForm(f"{self.op} of {self.dtype} without the MPI library's entry points")
        (x,), (out,) = self.ins, write_outputs(d, self.outs, self.bufs)
        d.emit(f"if {d.bind(collective.LIVE)}[0] == 0:")
        d.emit(f"    raise ValueError({collective.NOT_INITIALIZED!r})")
        if self.bufs[0] != ("input", x):
            d.emit(f"{out}[...] = {d.dense(x)}")
        handle = native.handle_type
        count, datatype, comm = (d.value(v) for v in (np.int32(self.size), handle(native.datatypes[self.dtype]),
                                                       handle(native.comm)))
        if self.op == "all_reduce":
            call, name = native.allreduce, "MPI_Allreduce"
            args = [d.value(np.int64(native.in_place)), out, count, datatype, d.value(handle(native.sum)), comm]
        else:
            call, name = native.bcast, "MPI_Bcast"
            args = [out, count, datatype, d.value(np.int32(self.attrs["src"])), comm]
        d.emit(f"if call_c({d.value(np.int64(call))}, {', '.join(args)}) != 0:")
        d.emit(f"    raise RuntimeError('{self.op}: {name} failed')")
        if self.op == "all_reduce" and self.attrs["reduce_op"] == "AVG":
            d.emit(f"{out} /= {d.value(np.int64(native.world))}")


class SliceAdjoint(Impl):
    """A slice's adjoint (a split's backward) from Python: its planned buffer zero-filled and the gradient assigned
    into the slice, where the NumPy impl builds a fresh zero array that is then copied in. It lowers as Impl does."""

    def __init__(self, node, ins, outs, bufs):
        super().__init__(node, ins, outs, bufs)
        self.index = basic_index(tuple(self.attrs["shape"]), self.attrs["index"])[0]

    def __call__(self, env):
        dst = resolve(self.bufs[0], env)
        dst.fill(0)
        dst[self.index] = env[self.ins[0]]
        env[self.outs[0]] = dst


class Cat(Impl):
    """cat from Python: each input assigned to its slice of the planned buffer, one copy, where the impl's fresh
    np.concatenate result is then copied in. It lowers as Impl does (_cat_lines)."""

    def __init__(self, node, ins, outs, bufs):
        super().__init__(node, ins, outs, bufs)
        dim, start = self.attrs["dim"] % len(self.in_shapes[0]), 0
        self.slices = []
        for shape in self.in_shapes:
            self.slices.append((slice(None),) * dim + (slice(start, start + shape[dim]),))
            start += shape[dim]

    def __call__(self, env):
        dst = resolve(self.bufs[0], env)
        for x, where in zip(self.ins, self.slices):
            dst[where] = env[x]
        env[self.outs[0]] = dst


def _permute_source(d, x, attrs, in_shape, shape):
    dims = tuple(attrs["dims"])
    if dims == tuple(range(len(dims))):
        return d.var(x), x in d.contiguous
    if dims == (1, 0):
        return f"{d.var(x)}.T", False
    return f"np.transpose({d.var(x)}, {dims})", False


def _basic_index_source(d, attrs, in_shape, shape):
    """`[...]` source of a basic index with concrete bounds; None (new axes) and 0-d results stay in Python."""
    index, _ = basic_index(in_shape, attrs["index"])
    if any(i is None for i in index) or not shape:
        raise driver.NoDriverForm("getitem")
    parts = [d.literal(i % in_shape[k]) if isinstance(i, int) else ":".join(map(d.literal, i.indices(in_shape[k])))
             for k, i in enumerate(i for i in index if i is not Ellipsis)]
    return f"[{', '.join(parts)}]"


def _getitem_source(d, x, attrs, in_shape, shape):
    return f"{d.var(x)}{_basic_index_source(d, attrs, in_shape, shape)}", False


def _getitem_backward_lines(d, g, out, attrs, g_shape, shape):
    """The adjoint of a slice: zeros, and the gradient written into the slice (a split's backward)."""
    return [f"{out}[...] = 0", f"{out}{_basic_index_source(d, attrs, tuple(shape), g_shape)} = {d.var(g)}"]


def _cat_lines(d, ins, out, dim, in_shapes):
    """cat into its planned buffer: each input assigned to its slice along `dim`."""
    dim = dim % len(in_shapes[0])
    lines, start = [], 0
    for x, shape in zip(ins, in_shapes):
        stop = start + shape[dim]
        lines.append(f"{out}[{':, ' * dim}{d.literal(start)}:{d.literal(stop)}] = {d.var(x)}")
        start = stop
    return lines


_VIEW_SOURCE = {  # view op -> (driver, input slot, attrs, in shape, out shape) -> (expression, statically contiguous)
    "reshape": lambda d, x, attrs, in_shape, shape: (f"{d.dense(x)}.reshape({d.literal(tuple(shape))})", True),
    "permute": _permute_source,
    "expand": lambda d, x, attrs, in_shape, shape: (f"np.broadcast_to({d.var(x)}, {d.literal(tuple(shape))})",
                                                    False),
    "getitem": _getitem_source,
}


def buffer_source(d, buf):
    """Source for the array a step writes: a bound arena block, the input it overwrites, or a fresh array."""
    kind, ref = buf
    if kind == "fresh":
        return f"np.empty({d.literal(tuple(ref[0]))}, np.{np.dtype(ref[1]).name})"
    return d.var(ref) if kind == "input" else d.bind(ref)


def write_outputs(d, outs, bufs):
    """Define each output slot as its buffer; returns the buffers' names."""
    names = []
    for slot, buf in zip(outs, bufs):
        d.define(slot, buffer_source(d, buf))
        names.append(d.var(slot))
    return names


def resolve(buf, env):
    kind, ref = buf
    if kind == "fresh":
        return np.empty(*ref)
    return env[ref] if kind == "input" else ref


class Fused:
    """A generated kernel over flat arrays. Outputs that live in the arena have their flat views made once: this
    step runs every training step, so per-call Python work is what it costs beyond the kernel. `generic`: the
    kernel takes its sizes as arguments (cpu.render_generic), so it is compiled once for every size; `serial`: no
    prange, for a Program that runs its own threads."""

    def __init__(self, node, ins, outs, bufs, generic=False, serial=False):
        kernel = node.attrs["kernel"]
        inplace = {kernel.outputs[k]: kernel.inputs[ins.index(ref)] for k, (kind, ref) in enumerate(bufs)
                   if kind == "input"}
        render = cpu.render_generic if generic else cpu.render_sized
        self.source, self.extents = render(kernel, False if serial else None, inplace=inplace)
        self.fn = None  # load(): after the Program has its kernels compiled together (codegen/precompile.py)
        self.ins, self.outs, self.bufs = ins, outs, bufs
        self.passed = [k for k, (kind, _) in enumerate(bufs) if kind != "input"]  # outputs that are parameters
        self.fixed = all(kind == "arena" for kind, _ in bufs)
        if self.fixed:
            self.flat_dsts = [ref.reshape(-1) for _, ref in bufs]
            self.results = list(zip(outs, (ref for _, ref in bufs)))

    def load(self):
        self.fn = cpu.load(self.source)

    def __call__(self, env):
        if self.fixed:
            self.fn(*[env[i].reshape(-1) for i in self.ins], *self.flat_dsts, *self.extents)
            for slot, d in self.results:
                env[slot] = d
            return
        dsts = [resolve(b, env) for b in self.bufs]
        self.fn(*(env[i].reshape(-1) for i in self.ins), *(dsts[k].reshape(-1) for k in self.passed), *self.extents)
        for slot, d in zip(self.outs, dsts):
            env[slot] = d

    def lower(self, d):
        outs = write_outputs(d, self.outs, self.bufs)
        args = [f"flat({d.dense(i)})" for i in self.ins] + [f"flat({outs[k]})" for k in self.passed]
        d.call(d.kernel(self.source), args + [d.value(n) for n in self.extents])


class Alias:
    """A fused epilogue absorbed by its conv2d: its output is the conv's (already in place) output."""

    def __init__(self, src, dst):
        self.src, self.dst = src, dst

    def __call__(self, env):
        env[self.dst] = env[self.src]

    def lower(self, d):
        d.define(self.dst, d.var(self.src), self.src in d.contiguous)



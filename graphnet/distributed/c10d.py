"""torch.distributed's default process group and collectives, run by MPI (mpi4py) on the tensors' NumPy buffers.

Every collective first allgathers each rank's (shape, dtype) — a few bytes — so tensors that differ across ranks
fail on every rank with an error naming both, instead of reducing mismatched buffers into garbage.
"""
import ctypes
import importlib.util
import os
import warnings

import numpy as np

from ..core import collective
from ..core.bind import bind
from ..frontend import tracer
from ..frontend.creation import from_numpy
from ..frontend.tracer import GraphBreak

_STATE = {"comm": None, "warned": set()}
_BACKENDS = ("mpi", "gloo", "nccl")  # gloo and nccl are aliases: PyTorch scripts name them, MPI runs them


class ReduceOp:
    """Reduction operators (torch.distributed.ReduceOp); AVG is a SUM divided by the world size."""

    SUM, AVG, PRODUCT, MIN, MAX = "SUM", "AVG", "PRODUCT", "MIN", "MAX"


class Work:
    """A pending asynchronous collective: `wait()` completes it (and copies results back where needed)."""

    def __init__(self, request, finish=None):
        self._request, self._finish, self._done = request, finish, False

    def wait(self, timeout=None):
        if not self._done:
            self._request.Wait()
            if self._finish is not None:
                self._finish()
            self._done = True
        return True

    def is_completed(self):
        if not self._done and self._request.Test():
            self.wait()
        return self._done


def is_available():
    """True when mpi4py can be imported (it is the `distributed` extra)."""
    return importlib.util.find_spec("mpi4py") is not None


def is_initialized():
    return _STATE["comm"] is not None


def is_mpi_available():
    return is_available()


def _mpi():
    from mpi4py import MPI
    return MPI


def init_process_group(backend="mpi", init_method=None, timeout=None, world_size=-1, rank=-1, store=None,
                       group_name="", pg_options=None, device_id=None):
    """Start the default group over MPI.COMM_WORLD: ranks come from mpiexec (or graphnet.distributed.run)."""
    if is_initialized():
        raise ValueError("trying to initialize the default process group twice!")
    backend = "mpi" if backend is None else str(backend).lower()
    names = [part.split(":")[-1] for part in backend.split(",")]  # also torch's "cpu:gloo,cuda:nccl" form
    if not all(name in _BACKENDS for name in names):
        raise ValueError(f"Invalid backend: '{backend}'; graphnet.distributed supports {list(_BACKENDS)} (all run "
                         "on MPI)")
    for name in sorted(set(names) - {"mpi"} - _STATE["warned"]):
        _STATE["warned"].add(name)
        staged = "; CUDA tensors are staged through host memory" if name == "nccl" else ""
        warnings.warn(f"graphnet.distributed: backend '{name}' runs on MPI (mpi4py){staged}; launch the ranks with "
                      "mpiexec or `python -m graphnet.distributed.run`", stacklevel=2)
    if not is_available():
        raise RuntimeError("graphnet.distributed needs mpi4py: pip install 'graphnet[distributed]'")
    comm = _mpi().COMM_WORLD
    size, me = comm.Get_size(), comm.Get_rank()
    if world_size not in (-1, None) and world_size != size:
        raise ValueError(f"init_process_group: world_size={world_size} but MPI started {size} processes")
    if rank not in (-1, None) and rank != me:
        raise ValueError(f"init_process_group: rank={rank} but MPI gives this process rank {me}")
    set_environment(comm)
    _STATE["comm"] = comm
    collective.register("all_reduce", _host_all_reduce)
    collective.register("broadcast", _host_broadcast)
    collective.register_native(_native(comm))


_NATIVE_TYPES = {"float32": "FLOAT", "float64": "DOUBLE", "int64": "INT64_T", "int32": "INT32_T", "uint8": "UINT8_T",
                 "bool": "C_BOOL"}


def _native(comm):
    """The MPI library's MPI_Allreduce and MPI_Bcast and the handles they take, for compiled drivers to call: found
    through mpi4py's extension module (dlsym searches the libraries it links). None where they are not found, or
    when GRAPHNET_DRIVER_COLLECTIVES=0 asks for the split design (the driver stops at each collective, which
    mpi4py runs from Python)."""
    if os.environ.get("GRAPHNET_DRIVER_COLLECTIVES", "1") == "0":
        return None
    MPI = _mpi()
    try:
        lib = ctypes.CDLL(MPI.__file__)
        allreduce, bcast = (ctypes.cast(getattr(lib, name), ctypes.c_void_p).value
                            for name in ("MPI_Allreduce", "MPI_Bcast"))
    except (OSError, AttributeError):
        return None
    width = MPI._sizeof(MPI.Comm)  # bytes of a handle: 8 in Open MPI (pointers), 4 in MPICH (ints)
    if width not in (4, 8):
        return None
    handle_type, bits = (np.int64 if width == 8 else np.int32), 8 * width

    def handle(obj):  # the handle's bits as a signed integer of its width
        value = MPI._handleof(obj)
        return value - (1 << bits) if value >= 1 << (bits - 1) else value

    return collective.Native(allreduce, bcast, handle(comm), handle(MPI.SUM),
                             {name: handle(getattr(MPI, t)) for name, t in _NATIVE_TYPES.items()}, int(MPI.IN_PLACE),
                             handle_type, comm.Get_size())


def set_environment(comm):
    """RANK, WORLD_SIZE, LOCAL_RANK and LOCAL_WORLD_SIZE as torchrun sets them, unless already set."""
    local = comm.Split_type(_mpi().COMM_TYPE_SHARED)
    values = {"RANK": comm.Get_rank(), "WORLD_SIZE": comm.Get_size(), "LOCAL_RANK": local.Get_rank(),
              "LOCAL_WORLD_SIZE": local.Get_size()}
    local.Free()
    for key, value in values.items():
        os.environ.setdefault(key, str(value))


def destroy_process_group(group=None):
    """Forget the default group (MPI itself stays up until the process exits)."""
    _group(group)
    _STATE["comm"] = None
    collective.register("all_reduce", None)
    collective.register("broadcast", None)
    collective.register_native(None)


def _group(group):
    if group is not None and group is not _STATE["comm"]:
        raise NotImplementedError("graphnet.distributed supports only the default group (group=None)")
    comm = _STATE["comm"]
    if comm is None:
        raise ValueError("Default process group has not been initialized, please make sure to call "
                         "init_process_group.")
    return comm


def get_rank(group=None):
    return _group(group).Get_rank()


def get_world_size(group=None):
    return _group(group).Get_size()


def get_backend(group=None):
    _group(group)
    return "mpi"


def barrier(group=None, async_op=False, device_ids=None):
    comm = _group(group)
    if async_op:
        return Work(comm.Ibarrier())
    comm.Barrier()


# ---- buffers ------------------------------------------------------------------------------------------------------
def _buffer(tensor):
    """(target, buf): MPI reads and writes `buf`, a C-contiguous array; `_write_back(target, buf)` puts the result
    into the tensor. A contiguous CPU tensor's buf is its own array (in place); a CUDA tensor is staged through a
    host copy (the MPI wheels are not CUDA-aware)."""
    target = _target(tensor)
    if not isinstance(target, np.ndarray):
        return target, np.ascontiguousarray(tensor.detach().cpu().numpy())
    return target, (target if target.flags.c_contiguous and target.flags.writeable else np.ascontiguousarray(target))


def _target(tensor):
    """What a result is written into: a CPU tensor's own array, or the CUDA tensor itself."""
    if tensor.device.type == "cuda":
        return tensor
    if tensor.device.type != "cpu":
        raise RuntimeError(f"graphnet.distributed runs on CPU and CUDA tensors; got a tensor on {tensor.device}")
    return tensor.detach().numpy()


def _write_back(target, buf):
    if isinstance(target, np.ndarray):
        if buf is not target:
            target[...] = buf
    else:
        target.detach().copy_(from_numpy(np.ascontiguousarray(buf)))


def _describe(tensor):
    return tuple(tensor.shape), str(tensor.dtype)


def _check_same(comm, name, tensor):
    """Allgather (shape, dtype) and fail on every rank, naming the first two that differ."""
    metas = comm.allgather(_describe(tensor))
    for r, meta in enumerate(metas):
        if meta != metas[0]:
            raise RuntimeError(f"{name}: tensors differ across ranks: rank 0 has shape {list(metas[0][0])} dtype "
                               f"{metas[0][1]}, rank {r} has shape {list(meta[0])} dtype {meta[1]}")


def _mpi_op(op):
    MPI = _mpi()
    ops = {ReduceOp.SUM: MPI.SUM, ReduceOp.AVG: MPI.SUM, ReduceOp.PRODUCT: MPI.PROD, ReduceOp.MIN: MPI.MIN,
           ReduceOp.MAX: MPI.MAX}
    if op not in ops:
        raise ValueError(f"unsupported ReduceOp {op!r}; expected one of {list(ops)}")
    return ops[op]


def _average(buf, op, size):
    if op == ReduceOp.AVG:
        if np.issubdtype(buf.dtype, np.integer) or buf.dtype == np.bool_:
            raise ValueError("ReduceOp.AVG needs a floating-point tensor (as PyTorch's backends)")
        buf /= size


def _run(comm, async_op, blocking, nonblocking, finish):
    """A collective as a Work (async_op) or done now."""
    if async_op:
        return Work(nonblocking(), finish)
    blocking()
    finish()


# ---- collectives --------------------------------------------------------------------------------------------------
def _host_all_reduce(buf, reduce_op):
    """What an `all_reduce` graph node runs: `buf` reduced in place over the default group."""
    comm = _group(None)
    comm.Allreduce(_mpi().IN_PLACE, buf, _mpi_op(reduce_op))
    _average(buf, reduce_op, comm.Get_size())


def _host_broadcast(buf, src):
    """What a `broadcast` graph node runs: rank src's `buf` copied into every rank's."""
    _group(None).Bcast(buf, root=src)


def all_reduce(tensor, op=ReduceOp.SUM, group=None, async_op=False):
    """Reduce `tensor` over all ranks, in place on every rank (Iallreduce when async_op). On a traced tensor it
    records an `all_reduce` node while tracing (SUM or AVG, synchronous), so a compiled function keeps it."""
    comm = _group(group)
    mpi_op = _mpi_op(op)
    _check_same(comm, "all_reduce", tensor)
    if tracer.active() is not None:
        if async_op or op not in (ReduceOp.SUM, ReduceOp.AVG):
            raise GraphBreak(f"all_reduce(op={op}, async_op={async_op}) while tracing: a graph all-reduces with "
                             "SUM or AVG, synchronously; this call runs eagerly")
        tensor.copy_(bind("all_reduce", tensor, reduce_op=op))
        return None
    array, buf = _buffer(tensor)
    MPI = _mpi()

    def finish():
        _average(buf, op, comm.Get_size())
        _write_back(array, buf)
    return _run(comm, async_op, lambda: comm.Allreduce(MPI.IN_PLACE, buf, mpi_op),
                lambda: comm.Iallreduce(MPI.IN_PLACE, buf, mpi_op), finish)


def broadcast(tensor, src, group=None, async_op=False):
    """Copy rank `src`'s tensor into every rank's tensor (a `broadcast` node while tracing, synchronous)."""
    comm = _group(group)
    _check_same(comm, "broadcast", tensor)
    if tracer.active() is not None:
        if async_op:
            raise GraphBreak("broadcast(async_op=True) while tracing: a graph broadcasts synchronously; this call "
                             "runs eagerly")
        tensor.copy_(bind("broadcast", tensor, src=src))
        return None
    array, buf = _buffer(tensor)
    return _run(comm, async_op, lambda: comm.Bcast(buf, root=src), lambda: comm.Ibcast(buf, root=src),
                lambda: _write_back(array, buf))


def all_gather_into_tensor(output_tensor, input_tensor, group=None, async_op=False):
    """Every rank's input, concatenated (or stacked) in rank order into `output_tensor`."""
    comm = _group(group)
    _check_same(comm, "all_gather_into_tensor", input_tensor)
    n = comm.Get_size()
    if output_tensor.numel() != n * input_tensor.numel() or output_tensor.dtype != input_tensor.dtype:
        raise RuntimeError(f"all_gather_into_tensor: output tensor must have {n} x the input's {input_tensor.numel()}"
                           f" elements and dtype {input_tensor.dtype}; got {output_tensor.numel()} elements of "
                           f"{output_tensor.dtype}")
    _, send = _buffer(input_tensor)
    array, recv = _buffer(output_tensor)
    return _run(comm, async_op, lambda: comm.Allgather(send, recv), lambda: comm.Iallgather(send, recv),
                lambda: _write_back(array, recv))


def all_gather(tensor_list, tensor, group=None, async_op=False):
    """tensor_list[r] receives rank r's tensor."""
    comm = _group(group)
    n = comm.Get_size()
    if len(tensor_list) != n:
        raise ValueError(f"all_gather: tensor_list must hold world_size={n} tensors, got {len(tensor_list)}")
    _check_same(comm, "all_gather", tensor)
    for t in tensor_list:
        if _describe(t) != _describe(tensor):
            raise RuntimeError(f"all_gather: output tensors must match the input (shape {list(tensor.shape)} dtype "
                               f"{tensor.dtype}); got shape {list(t.shape)} dtype {t.dtype}")
    _, send = _buffer(tensor)
    recv = np.empty((n,) + send.shape, send.dtype)

    def finish():
        for t, part in zip(tensor_list, recv):
            _write_back(_target(t), part)
    return _run(comm, async_op, lambda: comm.Allgather(send, recv), lambda: comm.Iallgather(send, recv), finish)


def reduce_scatter_tensor(output, input, op=ReduceOp.SUM, group=None, async_op=False):
    """Reduce `input` over ranks, then rank r keeps the r-th of world_size equal chunks (in `output`)."""
    comm = _group(group)
    mpi_op = _mpi_op(op)
    _check_same(comm, "reduce_scatter_tensor", input)
    n = comm.Get_size()
    if input.numel() != n * output.numel() or output.dtype != input.dtype:
        raise RuntimeError(f"reduce_scatter_tensor: input must have world_size={n} x the output's {output.numel()} "
                           f"elements and the same dtype; got {input.numel()} elements of {input.dtype} (output "
                           f"{output.dtype})")
    _, send = _buffer(input)
    array, recv = _buffer(output)

    def finish():
        _average(recv, op, n)
        _write_back(array, recv)
    return _run(comm, async_op, lambda: comm.Reduce_scatter_block(send, recv, mpi_op),
                lambda: comm.Ireduce_scatter_block(send, recv, mpi_op), finish)


def gather(tensor, gather_list=None, dst=0, group=None, async_op=False):
    """Rank `dst` receives every rank's tensor into gather_list (other ranks pass None)."""
    comm = _group(group)
    _check_same(comm, "gather", tensor)
    me, n = comm.Get_rank(), comm.Get_size()
    if me == dst and (gather_list is None or len(gather_list) != n):
        raise ValueError(f"gather: the destination rank needs a gather_list of world_size={n} tensors")
    _, send = _buffer(tensor)
    recv = np.empty((n,) + send.shape, send.dtype) if me == dst else None

    def finish():
        if me == dst:
            for t, part in zip(gather_list, recv):
                _write_back(_target(t), part)
    return _run(comm, async_op, lambda: comm.Gather(send, recv, root=dst),
                lambda: comm.Igather(send, recv, root=dst), finish)


def scatter(tensor, scatter_list=None, src=0, group=None, async_op=False):
    """Rank r receives scatter_list[r] from rank `src` into `tensor`."""
    comm = _group(group)
    _check_same(comm, "scatter", tensor)
    me, n = comm.Get_rank(), comm.Get_size()
    send = None
    array, recv = _buffer(tensor)
    if me == src:
        if scatter_list is None or len(scatter_list) != n:
            raise ValueError(f"scatter: the source rank needs a scatter_list of world_size={n} tensors")
        send = np.stack([_buffer(t)[1] for t in scatter_list]).astype(recv.dtype, copy=False)
    return _run(comm, async_op, lambda: comm.Scatter(send, recv, root=src),
                lambda: comm.Iscatter(send, recv, root=src), lambda: _write_back(array, recv))


def send(tensor, dst, group=None, tag=0):
    """Send `tensor` to rank `dst` (blocking)."""
    comm = _group(group)
    comm.Send(_buffer(tensor)[1], dest=dst, tag=tag)


def recv(tensor, src=None, group=None, tag=0):
    """Receive into `tensor` from `src` (any rank when None); returns the sender's rank."""
    comm = _group(group)
    MPI = _mpi()
    status = MPI.Status()
    comm.Probe(source=MPI.ANY_SOURCE if src is None else src, tag=tag, status=status)
    array, buf = _buffer(tensor)
    if status.Get_count(MPI.BYTE) != buf.nbytes:
        raise RuntimeError(f"recv: rank {status.Get_source()} sent {status.Get_count(MPI.BYTE)} bytes but the "
                           f"receiving tensor (shape {list(tensor.shape)} dtype {tensor.dtype}) holds {buf.nbytes}")
    comm.Recv(buf, source=status.Get_source(), tag=status.Get_tag())
    _write_back(array, buf)
    return status.Get_source()


def isend(tensor, dst, group=None, tag=0):
    return Work(_group(group).Isend(_buffer(tensor)[1], dest=dst, tag=tag))


def irecv(tensor, src=None, group=None, tag=0):
    comm = _group(group)
    array, buf = _buffer(tensor)
    source = _mpi().ANY_SOURCE if src is None else src
    return Work(comm.Irecv(buf, source=source, tag=tag), lambda: _write_back(array, buf))


def all_gather_object(object_list, obj, group=None):
    """object_list[r] receives rank r's picklable `obj` (for small metadata, not tensors)."""
    gathered = _group(group).allgather(obj)
    if len(object_list) != len(gathered):
        raise ValueError(f"all_gather_object: object_list must hold world_size={len(gathered)} entries, got "
                         f"{len(object_list)}")
    object_list[:] = gathered


def broadcast_object_list(object_list, src=0, group=None, device=None):
    """Rank src's picklable objects replace object_list's entries on every rank."""
    object_list[:] = _group(group).bcast(list(object_list), root=src)


def _iallreduce_sum(buf):
    """An Iallreduce(SUM) of a contiguous NumPy buffer already known to match on all ranks (DDP's buckets)."""
    comm = _group(None)
    return Work(comm.Iallreduce(_mpi().IN_PLACE, buf, _mpi().SUM))

"""DistributedDataParallel: one model replica per MPI rank, gradients averaged over ranks during backward.

Each parameter's gradient hook (it runs just before the gradient is accumulated into `.grad`) copies the
accumulated gradient into its bucket; a full bucket starts an Iallreduce, and the last gradient of the backward pass
waits for all buckets and writes the averages into every `.grad`. While graphnet.compile traces a training step,
the hook that completes a bucket records one `all_reduce` node (AVG) over the bucket's flattened gradients instead,
so the compiled Program averages over the ranks itself, each bucket as early in the backward as its gradients
allow, and the buffers' broadcast before each forward becomes `broadcast` nodes.
"""
import contextlib

import numpy as np

from ... import distributed as dist
from ...core.bind import bind
from ...distributed import c10d
from ...frontend.api_movement import cat
from ...frontend.autograd import AccumulateGrad, is_grad_enabled
from ...frontend.creation import from_numpy
from ...frontend.tracer import GraphBreak
from ..module import Module

_UNFINISHED = ("Expected to have finished reduction in the prior iteration before starting a new one. This error "
               "indicates that your module has parameters that were not used in producing loss. You can enable "
               "unused parameter detection by passing the keyword argument `find_unused_parameters=True` to "
               "`graphnet.nn.parallel.DistributedDataParallel`, and by making sure all `forward` function outputs "
               "participate in calculating loss. Parameters that did not receive a gradient: {}")


class _Bucket:
    """A flat buffer over some parameters of one dtype, all-reduced as soon as each of them has its gradient."""

    def __init__(self, indices, params):
        self.indices = indices
        sizes = [params[i].numel() for i in indices]
        self.offsets = dict(zip(indices, np.cumsum([0] + sizes[:-1]).tolist()))
        self.flat = np.zeros(sum(sizes), params[indices[0]].detach().cpu().numpy().dtype)
        self.waiting, self.work = set(), None

    def view(self, i, param):
        start = self.offsets[i]
        return self.flat[start:start + param.numel()].reshape(tuple(param.shape))


class DistributedDataParallel(Module):
    """torch.nn.parallel.DistributedDataParallel over graphnet.distributed (MPI); CPU tensors, and CUDA tensors
    staged through host buffers."""

    def __init__(self, module, device_ids=None, output_device=None, dim=0, broadcast_buffers=True,
                 process_group=None, bucket_cap_mb=25, find_unused_parameters=False, check_reduction=False,
                 gradient_as_bucket_view=False, static_graph=False, **kwargs):
        super().__init__()
        if process_group is not None:
            raise NotImplementedError("DistributedDataParallel: only the default process group is supported")
        self.module = module
        self.broadcast_buffers, self.find_unused_parameters = broadcast_buffers, find_unused_parameters
        self.require_backward_grad_sync = True
        self._world = dist.get_world_size()
        named = [(n, p) for n, p in module.named_parameters() if p.requires_grad]
        _check_same_model(named)
        self._names = [n for n, _ in named]
        self._params = [p for _, p in named]
        self._sync_module_states()
        self._buckets, self._bucket_of = _make_buckets(self._params, bucket_cap_mb * 2 ** 20)
        self._armed, self._fired = False, set()
        self._expected = set()
        for i, p in enumerate(self._params):
            p.register_hook(self._grad_hook(i))

    def _sync_module_states(self):
        for t in [p for p in self.module.parameters()] + [b for b in self.module.buffers()]:
            dist.broadcast(t, src=0)

    # ---- forward -------------------------------------------------------------------------------------------------
    def forward(self, *inputs, **kwargs):
        if self.broadcast_buffers and self._world > 1:   # while tracing: broadcast nodes
            for b in self.module.buffers():
                dist.broadcast(b, src=0)
        unfinished = self._expected - self._fired
        if self._armed and self._fired and unfinished:
            raise RuntimeError(_UNFINISHED.format([self._names[i] for i in sorted(unfinished)]))
        output = self.module(*inputs, **kwargs)
        self._armed = is_grad_enabled() and self.require_backward_grad_sync and bool(self._params)
        self._fired = set()
        self._expected = set(range(len(self._params)))
        for bucket in self._buckets:
            bucket.waiting, bucket.work = set(bucket.indices), None
        if self._armed and self.find_unused_parameters:
            used = _reachable_leaves(output)
            for i, p in enumerate(self._params):
                if id(p) not in used:
                    self._mark_ready(i, p.grad)
        return output

    @contextlib.contextmanager
    def no_sync(self):
        """Backward passes in this block accumulate local gradients only; the next synced one averages them all."""
        previous, self.require_backward_grad_sync = self.require_backward_grad_sync, False
        try:
            yield
        finally:
            self.require_backward_grad_sync = previous

    # ---- gradient reduction --------------------------------------------------------------------------------------
    def _grad_hook(self, i):
        def hook(grad):
            if not self._armed or i in self._fired:
                return None
            p = self._params[i]
            prev = p.grad
            if grad._proxy is not None:
                return self._traced_average(i, grad, prev)
            total = grad if prev is None else prev.detach() + grad.detach()
            self._mark_ready(i, total)
            if self._fired != self._expected:
                return None
            averaged = self._finish(skip=i)
            return averaged if prev is None else averaged - prev.detach()
        return hook

    def _traced_average(self, i, grad, prev):
        """While tracing: as soon as the last gradient of a bucket arrives (backward produces them in about reverse
        order), that bucket's gradients are flattened into one `all_reduce` node (AVG) and the averages replace
        their `.grad` (param i's is returned), so the node sits in the graph where the backward allows it, not after
        the whole backward. The averaged totals include a no_sync() accumulation, as eagerly."""
        if self.find_unused_parameters:
            raise GraphBreak("DistributedDataParallel(find_unused_parameters=True) finds the unused parameters on "
                             "the autograd graph in Python: a graphnet.compile'd step with it runs eagerly")
        self._fired.add(i)
        bucket = self._buckets[self._bucket_of[i]]
        bucket.waiting.discard(i)
        if self._fired == self._expected:
            self._armed = False
        if bucket.waiting:
            return None
        total = grad if prev is None else prev.detach() + grad
        totals = {j: total if j == i else self._params[j].grad for j in bucket.indices}
        flat = bind("all_reduce", cat([totals[j].detach().reshape(-1) for j in bucket.indices]), reduce_op="AVG")
        result = None
        for j in bucket.indices:
            start, p = bucket.offsets[j], self._params[j]
            avg = flat[start:start + p.numel()].reshape(tuple(p.shape))
            if j == i:
                result = avg
            else:
                p.grad = avg
        return result if prev is None else result - prev.detach()

    def _mark_ready(self, i, grad):
        """Copy param i's accumulated gradient (None: zero) into its bucket; launch the bucket when it is full."""
        bucket = self._buckets[self._bucket_of[i]]
        view = bucket.view(i, self._params[i])
        view[...] = 0 if grad is None else grad.detach().cpu().numpy()  # a CUDA gradient is staged on the host
        self._fired.add(i)
        bucket.waiting.discard(i)
        if not bucket.waiting:
            bucket.work = c10d._iallreduce_sum(bucket.flat)

    def _finish(self, skip):
        """Wait for every bucket, write the averages into `.grad` (except param `skip`'s, which is returned)."""
        self._armed = False
        for bucket in self._buckets:
            bucket.work.wait()
            bucket.flat /= self._world
        result = None
        for i, p in enumerate(self._params):
            avg = self._buckets[self._bucket_of[i]].view(i, p)
            if i == skip:
                result = from_numpy(avg.copy()).to(p.device)
            elif p.grad is not None:
                c10d._write_back(c10d._target(p.grad), avg)  # in place; a CUDA .grad is copied back
            elif avg.any():
                p.grad = from_numpy(avg.copy()).to(p.device)
        return result


def _make_buckets(params, cap_bytes):
    """Parameters in reverse order (roughly the order backward produces their gradients), cut at cap_bytes."""
    groups, current, size, dtype = [], [], 0, None
    for i in reversed(range(len(params))):
        nbytes = params[i].numel() * params[i].element_size()
        if current and (size + nbytes > cap_bytes or params[i].dtype != dtype):
            groups.append(current)
            current, size = [], 0
        current.append(i)
        size, dtype = size + nbytes, params[i].dtype
    if current:
        groups.append(current)
    buckets = [_Bucket(g, params) for g in groups]
    return buckets, {i: b for b, g in enumerate(groups) for i in g}


def _check_same_model(named):
    """Every rank must hold the same parameters (names, shapes, dtypes); fail on all ranks naming the first change."""
    mine = [(n, list(p.shape), str(p.dtype)) for n, p in named]
    everyone = [None] * dist.get_world_size()
    dist.all_gather_object(everyone, mine)
    ref = everyone[0]
    for r, theirs in enumerate(everyone):
        for k, (a, b) in enumerate(zip(ref, theirs)):
            if a != b:
                raise RuntimeError(f"DDP expects same model across all ranks, but rank {r}'s parameter {k} is "
                                   f"'{b[0]}' with shape {b[1]} and dtype {b[2]}, while rank 0's is '{a[0]}' with "
                                   f"shape {a[1]} and dtype {a[2]}.")
        if len(theirs) != len(ref):
            first = (theirs if len(theirs) > len(ref) else ref)[min(len(ref), len(theirs))][0]
            raise RuntimeError(f"DDP expects same model across all ranks, but Rank {r} has {len(theirs)} params, "
                               f"while rank 0 has {len(ref)} params (the first unmatched one is '{first}').")


def _reachable_leaves(output):
    """ids of the leaf tensors the autograd graph of `output` (tensors in nested tuples/lists/dicts) reaches."""
    stack, seen, leaves = list(_tensors(output)), set(), set()
    stack = [t.grad_fn for t in stack if t.grad_fn is not None]
    while stack:
        node = stack.pop()
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, AccumulateGrad):
            leaves.add(id(node.variable))
        stack.extend(child for child, _ in node.next_functions)
    return leaves


def _tensors(obj):
    if isinstance(obj, (list, tuple)):
        for x in obj:
            yield from _tensors(x)
    elif isinstance(obj, dict):
        for x in obj.values():
            yield from _tensors(x)
    elif hasattr(obj, "grad_fn"):
        yield obj

"""simplify: algebraic identities, applied to a fixed point.

  mul_one/add_zero/sub_zero/div_one/pow_one   x*1, 1*x, x+0, 0+x, x-0, x/1, x**1 -> x (when the result has x's
      dtype; a result broadcast to a bigger shape becomes expand(x)). x*0 is kept: it is not 0 for inf/nan.
      x+0 -> x follows PyTorch's own no-op removal (it differs only in the sign of a zero: -0.0 + 0.0 = 0.0).
  permute_identity, permute_permute            identity permutes vanish, permute(permute(x)) is one permute
  reshape_same, reshape_reshape                reshape to x's shape vanishes, reshape(reshape(x)) is one reshape
  neg_neg, cast_same, expand_same              neg(neg(x)), cast to x's dtype, expand to x's shape -> x
  copy                                         copy(x) -> x: values are immutable in the graph (in-place updates are
      write-backs), so a copy only costs a pass over memory (eager AccumulateGrad's clone leaves these)
  detach                                       detach(x) -> x: it only cuts gradients, which are built by now
  transpose_matmul                             permute(matmul(a, b)) swapping the last two dims, when the product has
      no other reader -> matmul(b^T, a^T): a weight gradient is produced in the weight's layout, not transposed
  slice_adjoint_sum                            a sum of adjoints of step-1 slices along one dim (same shape and
      type, summed in any order) -> per run of adjacent slices x[..., a:b], y[..., b:c], ... the adjoint of
      cat(x, y, ...)[..., a:c]: a split's backward (q, k, v of an attention's c_attn) becomes one cat instead of
      zero-filled full-size arrays summed
  slice_adjoint_whole                          the adjoint of a slice that is the whole array is its gradient
  scalar_constant                              an elementwise operand that is a one-element constant, or a
      broadcast of one, is replaced by a 0-d constant when the result type is unchanged (elementwise ops broadcast,
      and fusion inlines 0-d constants as literals)
Nodes a rewrite leaves unused are erased. Report: graph.meta['simplify'] = {rewrites, rounds, rules: {rule: count}}.
"""
from collections import Counter

import numpy as np

from ..core.types import TensorType
from ..ir.ops.indexing import basic_index
from .cse import array_key
from .fold import erase_dead

IDENTITIES = (("mul_one", "mul", 1, 1), ("mul_one", "mul", 0, 1), ("add_zero", "add", 1, 0),
              ("add_zero", "add", 0, 0), ("sub_zero", "sub", 1, 0), ("div_one", "div", 1, 1),
              ("pow_one", "pow", 1, 1))  # (rule, op, position of the identity constant, its value)


def simplify(graph):
    """A copy of `graph` with the identities above rewritten until none applies."""
    s = _Simplifier(graph.copy())
    rounds, changed = 0, True
    while changed:
        rounds += 1
        changed = False
        for node in s.graph.nodes:
            if node.graph is not None and node.users and s.rewrite(node):
                changed = True
    counts = s.counts
    s.graph.meta["simplify"] = {"rewrites": sum(counts.values()), "rounds": rounds, "rules": dict(counts)}
    return s.graph


class _Simplifier:
    """The graph being rewritten, the rule counts, and the 0-d constants made so far (shared, not duplicated)."""

    def __init__(self, graph):
        self.graph, self.counts = graph, Counter()
        self._scalars = {array_key(v.producer.attrs["value"]): v for v in graph.constants if not v.shape}

    def rewrite(self, node):
        """Apply the first rule that matches `node`; True if the graph changed."""
        rules = RULES.get(node.op, ())
        if node.op not in ("input", "constant", "output") and node.opdef.kind == "elementwise":
            rules = rules + (("scalar_constant", _scalar_operands),)
        for name, rule in rules:
            new = rule(self, node)
            if new is not None:
                self.graph.replace_all_uses(node.outputs[0], new)
                erase_dead(self.graph, [node])
                self.counts[name] += 1
                return True
        return False

    def add(self, op, inputs, attrs, like):
        """A new node computing op(inputs) placed before `like`, carrying its meta (phase, source)."""
        return self.graph.add_node(op, inputs, attrs, meta=dict(like.meta), before=like).outputs[0]

    def scalar(self, value):
        """The 0-d constant holding the single element of constant `value`."""
        array = value.producer.attrs["value"].reshape(())
        key = array_key(array)
        known = self._scalars.get(key)
        if known is None or known.producer.graph is None:
            self._scalars[key] = known = self.graph.add_constant(array.copy(), meta=dict(value.producer.meta))
        return known


# ---- rules: each returns the Value to use instead of node's output, or None --------------------------------------
def _const(value):
    return value.producer.attrs["value"] if value.producer.op == "constant" else None


def _as_result(s, node, x):
    """`x` standing for node's result: itself if the types agree, an expand if only the shape grew, else None."""
    out = node.outputs[0].type
    if x.type == out:
        return x
    if x.type.with_(shape=out.shape) == out:
        return s.add("expand", [x], {"shape": out.shape}, node)
    return None


def _identity(position, identity):
    def rule(s, node):
        c = _const(node.inputs[position])
        if c is None or not np.all(c == identity):
            return None
        return _as_result(s, node, node.inputs[1 - position])

    return rule


def _permute_identity(s, node):
    dims = tuple(node.attrs["dims"])
    return node.inputs[0] if dims == tuple(range(len(dims))) else None


def _permute_permute(s, node):
    inner = node.inputs[0].producer
    if inner.op != "permute":
        return None
    dims = tuple(inner.attrs["dims"][d] for d in node.attrs["dims"])
    return s.add("permute", [inner.inputs[0]], {"dims": dims}, node)


def _same_shape(s, node):
    return _as_result(s, node, node.inputs[0]) if tuple(node.attrs["shape"]) == node.inputs[0].shape else None


def _reshape_reshape(s, node):
    inner = node.inputs[0].producer
    if inner.op != "reshape":
        return None
    return s.add("reshape", [inner.inputs[0]], {"shape": tuple(node.attrs["shape"])}, node)


def _neg_neg(s, node):
    inner = node.inputs[0].producer
    return inner.inputs[0] if inner.op == "neg" else None


def _cast_same(s, node):
    x = node.inputs[0]
    return x if node.attrs["dtype"] is x.dtype and x.type == node.outputs[0].type else None


def _copy(s, node):
    return node.inputs[0]


def _transpose_matmul(s, node):
    inner, dims = node.inputs[0].producer, tuple(node.attrs["dims"])
    n = len(dims)
    swap = tuple(range(n - 2)) + (n - 1, n - 2)
    if inner.op != "matmul" or dims != swap or len(node.inputs[0].users) != 1:
        return None
    a, b = inner.inputs
    bt = s.add("permute", [b], {"dims": tuple(range(b.type.ndim - 2)) + (b.type.ndim - 1, b.type.ndim - 2)}, node)
    at = s.add("permute", [a], {"dims": tuple(range(a.type.ndim - 2)) + (a.type.ndim - 1, a.type.ndim - 2)}, node)
    out = s.add("matmul", [bt, at], {}, node)
    return out if out.type == node.outputs[0].type else None


def _slice_span(node):
    """(dim, start, stop) of a getitem_backward whose index is start:stop with step 1 along one dim and whole along
    the others (the whole array: dim None); None for any other index."""
    shape = tuple(node.attrs["shape"])
    index = basic_index(shape, node.attrs["index"])[0][:-1]  # positional over the leading dims, then `...`
    if not all(isinstance(i, slice) for i in index):
        return None
    spans = [i.indices(n) for i, n in zip(index, shape)]
    cut = [d for d, (span, n) in enumerate(zip(spans, shape)) if span != (0, n, 1)]
    if len(cut) > 1:
        return None
    if not cut:
        return None, 0, 0
    start, stop, step = spans[cut[0]]
    return (cut[0], start, stop) if step == 1 and stop >= start else None


def _slice_adjoints(node):
    """The operands of the tree of same-typed adds rooted at `node` (an inner add read only by the tree is part of
    it) when they are all slice adjoints of its type, else None (as soon as one is not: a long chain of other sums
    costs one look)."""
    t, leaves, todo = node.outputs[0].type, [], list(node.inputs)
    while todo:
        v = todo.pop()
        if v.producer.op == "add" and len(v.users) == 1 and v.type == t:
            todo += v.producer.inputs
        elif v.producer.op == "getitem_backward" and v.type == t:
            leaves.append(v)
        else:
            return None
    return leaves


def _slice_adjoint_sum(s, node):
    out = node.outputs[0]
    users = list(out.users)
    if len(users) == 1 and users[0].op == "add" and users[0].outputs[0].type == out.type \
            and _slice_adjoints(users[0]) is not None:
        return None  # an inner add of a bigger sum of slice adjoints: that sum is rewritten as a whole
    leaves = _slice_adjoints(node)
    if leaves is None:
        return None
    shape = tuple(leaves[0].producer.attrs["shape"])
    spans = [_slice_span(v.producer) for v in leaves]
    if any(span is None or span[0] is None or span[0] != spans[0][0] for span in spans) \
            or any(tuple(v.producer.attrs["shape"]) != shape for v in leaves):
        return None
    d = spans[0][0]
    runs = []  # [start, stop, gradients] of adjacent slices, in order
    for (_, start, stop), v in sorted(zip(spans, leaves), key=lambda sv: sv[0][1:]):
        if runs and runs[-1][1] == start:
            runs[-1][1:] = [stop, runs[-1][2] + [v.producer.inputs[0]]]
        else:
            runs.append([start, stop, [v.producer.inputs[0]]])
    if len(runs) == len(leaves):
        return None
    total = None
    for start, stop, grads in runs:
        g = s.add("cat", grads, {"dim": d}, node) if len(grads) > 1 else grads[0]
        index = (("slice", None, None, None),) * d + (("slice", start, stop, 1),)
        g = s.add("getitem_backward", [g], {"shape": shape, "index": index}, node)
        total = g if total is None else s.add("add", [total, g], {}, node)
    return total


def _slice_adjoint_whole(s, node):
    span = _slice_span(node)
    g = node.inputs[0]
    return g if span is not None and span[0] is None and g.type == node.outputs[0].type else None


def _scalar_operands(s, node):
    """Swap one-element constant operands (or broadcasts of them) for 0-d constants where the result type holds."""
    types, picked = [v.type for v in node.inputs], {}
    for i, v in enumerate(node.inputs):
        base = v.producer.inputs[0] if v.producer.op == "expand" else v
        c = _const(base)
        if c is None or c.size != 1 or (base is v and not v.shape):
            continue
        trial = types[:i] + [TensorType((), base.dtype, base.type.device)] + types[i + 1:]
        res = node.opdef.infer(*trial, **node.attrs)
        if ([res] if isinstance(res, TensorType) else list(res)) == [o.type for o in node.outputs]:
            types, picked[i] = trial, base
    if not picked:
        return None
    inputs = [s.scalar(picked[i]) if i in picked else v for i, v in enumerate(node.inputs)]
    return s.add(node.op, inputs, node.attrs, node)


def _rules():
    """op -> ((rule name, rule), ...), tried in order."""
    rules = {
        "permute": (("permute_identity", _permute_identity), ("permute_permute", _permute_permute),
                    ("transpose_matmul", _transpose_matmul)),
        "copy": (("copy", _copy),),
        "detach": (("detach", _copy),),
        "reshape": (("reshape_same", _same_shape), ("reshape_reshape", _reshape_reshape)),
        "expand": (("expand_same", _same_shape),),
        "neg": (("neg_neg", _neg_neg),),
        "cast": (("cast_same", _cast_same),),
        "add": (("slice_adjoint_sum", _slice_adjoint_sum),),
        "getitem_backward": (("slice_adjoint_whole", _slice_adjoint_whole),),
    }
    for name, op, position, value in IDENTITIES:
        rules[op] = rules.get(op, ()) + ((name, _identity(position, value)),)
    return rules


RULES = _rules()

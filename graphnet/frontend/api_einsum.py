"""einsum as a composite: diagonals by a strided slice, labels no later term needs summed away, and each pair of
operands contracted left to right by permute + reshape + one batched matmul (so it traces, differentiates and runs
on every device through graphnet's matmul).

Labels are ints: a letter is its code point; the k-th of the E dims of the broadcast ellipsis is k - E (so they
sort first, in order).
"""
import math

from ..core.bind import bind
from .api import export
from .api_linalg import matmul
from .api_reduce import sum as _sum
from .tensor import Tensor

_ARROW = "->"


def _fail(message):
    raise RuntimeError(f"einsum(): {message}")


def _check_chars(equation):
    arrow = equation.find(_ARROW)
    for i, c in enumerate(equation):
        if not (c.isascii() and c.isalpha()) and c not in ",. " and not (arrow >= 0 and i in (arrow, arrow + 1)):
            _fail(f"invalid subscript given at index {i} in the equation string, subscripts must be in [a-zA-Z]")


def _term(text, k):
    """One operand's subscripts as a list of letters and at most one '...'."""
    out, i = [], 0
    while i < len(text):
        if text[i] == ".":
            if "..." in out:
                _fail(f"found '.' for operand {k} for which an ellipsis was already found")
            if text[i:i + 3] != "...":
                _fail(f"found '.' for operand {k} that is not part of any ellipsis")
            out.append("...")
            i += 3
        else:
            out.append(text[i])
            i += 1
    return out


def _expand(term, ndim, ell, k, output=False):
    """Subscripts as int labels, the ellipsis standing for the last dims of the `ell`-dim broadcast ellipsis."""
    letters = [s for s in term if s != "..."]
    if "..." not in term and not output and len(letters) != ndim:
        _fail(f"the number of subscripts in the equation ({len(letters)}) does not match the number of dimensions "
              f"({ndim}) for operand {k} and no ellipsis was given")
    if "..." in term and not output and len(letters) > ndim:
        _fail(f"the number of subscripts in the equation ({len(letters)}) is more than the number of dimensions "
              f"({ndim}) for operand {k}")
    n = ell if output else ndim - len(letters)
    labels = []
    for s in term:
        labels.extend([j - ell for j in range(ell - n, ell)] if s == "..." else [ord(s)])
    return labels


def _name(label):
    return "..." if label < 0 else chr(label)


def parse(equation, shapes):
    """(labels of each operand, output labels, label -> broadcast size) with PyTorch's checks."""
    _check_chars(equation)
    eq = equation.replace(" ", "")
    lhs, arrow, rhs = eq.partition(_ARROW)
    texts = lhs.split(",")
    if len(texts) > len(shapes):
        _fail("fewer operands were provided than specified in the equation")
    if len(texts) < len(shapes):
        _fail("more operands were provided than specified in the equation")
    terms = [_term(t, k) for k, t in enumerate(texts)]
    ell = max((len(s) - (len(t) - 1) for t, s in zip(terms, shapes) if "..." in t), default=0)
    ins = [_expand(t, len(s), ell, k) for k, (t, s) in enumerate(zip(terms, shapes))]
    sizes = {}
    for k, (labels, shape) in enumerate(zip(ins, shapes)):
        own = {}
        for label, n in zip(labels, shape):
            if label in own and own[label] != n:
                _fail(f"subscript {_name(label)} is repeated for operand {k} but the sizes don't match, {n} != "
                      f"{own[label]}")
            own[label] = n
        for label, n in own.items():
            seen = sizes.get(label, 1)
            if n != 1 and seen not in (1, n):
                _fail(f"subscript {_name(label)} has size {n} for operand {k} which does not broadcast with "
                      f"previously seen size {seen}")
            sizes[label] = max(seen, n) if n != 1 else seen
    if arrow:
        out = _expand(_term(rhs, len(ins)), 0, ell, 0, output=True)
        for i, label in enumerate(out):
            if label >= 0 and label not in sizes:
                _fail(f"output subscript {chr(label)} does not appear in the equation for any input operand")
            if label in out[:i]:
                _fail(f"output subscript {_name(label)} appears more than once in the output")
    else:
        counts = [label for labels in ins for label in labels]
        out = sorted(label for label in set(counts) if label < 0 or counts.count(label) == 1)
    return ins, out, sizes


def _diagonal(x, labels):
    """Take the diagonal over each repeated label (x[..., i, i] -> x[..., i]) by a strided slice of a merged dim."""
    labels = list(labels)
    while len(set(labels)) < len(labels):
        label = next(lb for i, lb in enumerate(labels) if lb in labels[:i])
        p = labels.index(label)
        q = labels.index(label, p + 1)
        rest = [i for i in range(len(labels)) if i not in (p, q)]
        n = x.shape[p]
        x = bind("permute", x, dims=tuple(rest + [p, q]))
        x = bind("reshape", x, shape=tuple(x.shape[:-2]) + (n * n,))
        x = bind("getitem", x, index=(("slice", None, None, None),) * (x.ndim - 1) + (("slice", None, None, n + 1),))
        labels = [labels[i] for i in rest] + [label]
    return x, labels


def _sum_out(x, labels, keep):
    """Sum over the labels not in `keep`."""
    dims = [i for i, label in enumerate(labels) if label not in keep]
    if not dims:
        return x, labels
    return _sum(x, tuple(dims)), [label for label in labels if label in keep]


def _arrange(x, labels, groups):
    """x permuted to the label groups' order and reshaped to (*first group's dims, prod(group), ...)."""
    sizes = dict(zip(labels, x.shape))
    order = [labels.index(label) for group in groups for label in group]
    x = bind("permute", x, dims=tuple(order)) if order != list(range(len(order))) else x
    shape = tuple(sizes[label] for label in groups[0]) + tuple(
        math.prod(sizes[label] for label in group) for group in groups[1:])
    return bind("reshape", x, shape=shape), sizes


def _contract(a, la, b, lb, keep):
    """The pair's product summed over the shared labels not in `keep`, as one batched matmul."""
    a, la = _sum_out(a, la, set(lb) | keep)
    b, lb = _sum_out(b, lb, set(la) | keep)
    shared = [label for label in la if label in lb and label not in keep]
    a_sizes, b_sizes = dict(zip(la, a.shape)), dict(zip(lb, b.shape))
    uneven = {label for label in shared if a_sizes[label] != b_sizes[label]}  # one of them is 1: sum each side
    if uneven:
        a, la = _sum_out(a, la, set(la) - uneven)
        b, lb = _sum_out(b, lb, set(lb) - uneven)
        shared = [label for label in shared if label not in uneven]
    batch = [label for label in la if label in lb and label in keep]
    m = [label for label in la if label not in lb]
    n = [label for label in lb if label not in la]
    a2, a_sizes = _arrange(a, la, [batch, m, shared])
    b2, b_sizes = _arrange(b, lb, [batch, shared, n])
    out = matmul(a2, b2)
    shape = tuple(out.shape[:len(batch)]) + tuple(a_sizes[label] for label in m) + tuple(b_sizes[label] for label in n)
    return bind("reshape", out, shape=shape), batch + m + n


@export("einsum", method=False)
def einsum(equation, *operands):
    """Sums of products over the subscripts of `equation` (PyTorch's einsum: '...' broadcasting, implicit output,
    repeated subscripts as diagonals); operands may also be passed as one list."""
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    if not isinstance(equation, str):
        raise TypeError("einsum(): the sublist form einsum(op1, sublist1, ...) is not supported; pass an equation "
                        "string")
    for k, t in enumerate(operands):
        if not isinstance(t, Tensor):
            raise TypeError(f"einsum(): argument 'operands' must be tuple of Tensors, but found element of type "
                            f"{type(t).__name__} at pos {k}")
    ins, out, _ = parse(equation, [tuple(t.shape) for t in operands])
    terms = [_diagonal(t, labels) for t, labels in zip(operands, ins)]
    x, labels = terms[0]
    for k, (y, ly) in enumerate(terms[1:], 1):
        keep = set(out).union(*(terms[j][1] for j in range(k + 1, len(terms))))
        x, labels = _contract(x, labels, y, ly, keep)
    x, labels = _sum_out(x, labels, set(out))
    order = tuple(labels.index(label) for label in out)
    return bind("permute", x, dims=order) if order != tuple(range(len(order))) else x

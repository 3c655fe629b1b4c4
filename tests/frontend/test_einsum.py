"""einsum (a composite over permute / reshape / sum / batched matmul) vs PyTorch: values and gradients for the
usual equations, ellipsis broadcasting, implicit output, diagonals, three operands; compiled runs; every error."""
import numpy as np
import pytest

import graphnet
from graphnet.autograd import gradcheck

torch = pytest.importorskip("torch")

CASES = [
    ("ij,jk->ik", [(2, 3), (3, 4)]),
    ("bij,bjk->bik", [(2, 2, 3), (2, 3, 4)]),
    ("bhqd,bhkd->bhqk", [(2, 3, 4, 5), (2, 3, 6, 5)]),
    ("i,i->", [(4,), (4,)]),
    ("ij->ji", [(2, 3)]),
    ("ii->i", [(3, 3)]),
    ("ii", [(3, 3)]),
    ("iij->ji", [(3, 3, 2)]),
    ("...ij,...jk", [(2, 1, 2, 3), (4, 3, 5)]),
    ("i...j,j...->...i", [(2, 3, 4), (4, 1)]),
    ("...->", [(2, 3)]),
    ("bi,bj->bij", [(2, 3), (2, 4)]),
    ("ij->", [(2, 3)]),
    ("i,j->ij", [(3,), (4,)]),
    ("i,j", [(3,), (4,)]),
    ("ba,ab", [(2, 3), (3, 2)]),
    ("ij,jk,kl->il", [(2, 3), (3, 4), (4, 5)]),
    ("bn,anm,bm->ba", [(2, 3), (4, 3, 5), (2, 5)]),
    ("ij,ij->i", [(1, 3), (2, 3)]),  # size-1 dims broadcast
    ("ij,ij->i", [(2, 1), (2, 3)]),
    ("ij,kl->", [(2, 3), (4, 5)]),
    ("Ab, bC -> AC", [(2, 3), (3, 4)]),
]


@pytest.mark.parametrize("equation, shapes", CASES)
def test_values_and_gradients_match_torch(equation, shapes):
    rng = np.random.default_rng(len(equation))
    arrays = [rng.standard_normal(s) for s in shapes]
    ours = [graphnet.tensor(a, requires_grad=True) for a in arrays]
    ref = [torch.tensor(a, requires_grad=True) for a in arrays]
    out, want = graphnet.einsum(equation, *ours), torch.einsum(equation, *ref)
    np.testing.assert_allclose(out.detach().numpy(), want.detach().numpy(), rtol=1e-10, atol=1e-12)
    assert out.dtype is graphnet.float64
    g = rng.standard_normal(tuple(want.shape))
    out.backward(graphnet.tensor(g))
    want.backward(torch.tensor(g))
    for a, b in zip(ours, ref):
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_list_form_float32_and_gradcheck():
    a, b = graphnet.randn(2, 3), graphnet.randn(3, 4)
    np.testing.assert_allclose(graphnet.einsum("ij,jk->ik", [a, b]).numpy(), (a @ b).numpy(), rtol=1e-6)
    assert graphnet.einsum("ij,jk", (a, b)).dtype is graphnet.float32
    x = graphnet.randn(3, 3, dtype=graphnet.float64, requires_grad=True)
    y = graphnet.randn(3, 2, dtype=graphnet.float64, requires_grad=True)
    assert gradcheck(lambda p, q: graphnet.einsum("ii,ij->j", p, q), [x, y])
    assert graphnet.einsum("...", graphnet.ones(())).item() == 1.0


def test_contraction_is_a_batched_matmul_and_compiles():
    def attention(q, k):
        return graphnet.einsum("bhqd,bhkd->bhqk", q, k).softmax(-1)

    q, k = graphnet.randn(2, 3, 4, 5), graphnet.randn(2, 3, 6, 5)
    graph = graphnet.trace(attention, q, k).graph
    assert [n.op for n in graph.nodes].count("matmul") == 1
    compiled = graphnet.compile(attention)
    for _ in range(3):
        np.testing.assert_allclose(compiled(q, k).numpy(), attention(q, k).numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("equation, operands, message", [
    ("ij,jk->ik", [(2, 3)], "einsum(): fewer operands were provided than specified in the equation"),
    ("ij->ik", [(2, 3)], "einsum(): output subscript k does not appear in the equation for any input operand"),
    ("ij,jk->ik", [(2, 3), (3, 4), (3, 4)], "einsum(): more operands were provided than specified in the equation"),
    ("ij,jk->ii", [(2, 3), (3, 4)], "einsum(): output subscript i appears more than once in the output"),
    ("ijk,jk->ik", [(2, 3), (3, 4)], "einsum(): the number of subscripts in the equation (3) does not match the number "
                                     "of dimensions (2) for operand 0 and no ellipsis was given"),
    ("ij,ik->jk", [(2, 3), (3, 4)], "einsum(): subscript i has size 3 for operand 1 which does not broadcast with "
                                    "previously seen size 2"),
    ("ii->i", [(2, 3)], "einsum(): subscript i is repeated for operand 0 but the sizes don't match, 3 != 2"),
    ("i1->i", [(2, 3)], "einsum(): invalid subscript given at index 1 in the equation string, subscripts must be in "
                        "[a-zA-Z]"),
    ("ij->>j", [(2, 3)], "einsum(): invalid subscript given at index 4 in the equation string"),
    ("i....j->j", [(2, 3)], "einsum(): found '.' for operand 0 for which an ellipsis was already found"),
    ("i..j->j", [(2, 3)], "einsum(): found '.' for operand 0 that is not part of any ellipsis"),
])
def test_errors_match_torch(equation, operands, message):
    with pytest.raises(RuntimeError) as ours:
        graphnet.einsum(equation, *(graphnet.ones(s) for s in operands))
    assert str(ours.value).startswith(message)
    if "not part of any" not in message:  # the wording PyTorch gives for the same call
        with pytest.raises(RuntimeError) as ref:
            torch.einsum(equation, *(torch.ones(s) for s in operands))
        assert str(ref.value).startswith(message)


def test_type_errors():
    with pytest.raises(TypeError, match="found element of type int at pos 1"):
        graphnet.einsum("i,i", graphnet.ones(2), 3)
    with pytest.raises(TypeError, match="sublist form"):
        graphnet.einsum(graphnet.ones(2), [0])

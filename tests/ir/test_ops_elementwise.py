"""Every elementwise op: values vs NumPy (with broadcasting and dtypes) and gradients vs finite differences."""
import numpy as np
import pytest

import graphnet as torch
from graphnet.autograd import gradcheck

RNG = np.random.default_rng(0)
POS = lambda s: RNG.uniform(0.5, 2.0, s)  # noqa: E731  (domains where log/sqrt/pow are smooth)
ANY = lambda s: RNG.uniform(-2.0, 2.0, s)  # noqa: E731
AWAY0 = lambda s: np.where(RNG.random(s) < 0.5, -1, 1) * RNG.uniform(0.2, 2.0, s)  # noqa: E731

UNARY = [
    ("neg", np.negative, ANY), ("abs", np.abs, AWAY0), ("exp", np.exp, ANY), ("log", np.log, POS),
    ("sqrt", np.sqrt, POS), ("rsqrt", lambda x: 1 / np.sqrt(x), POS), ("sin", np.sin, ANY), ("cos", np.cos, ANY),
    ("tanh", np.tanh, ANY), ("sigmoid", lambda x: 1 / (1 + np.exp(-x)), ANY),
    ("relu", lambda x: np.maximum(x, 0), AWAY0),
    ("square", np.square, ANY), ("reciprocal", lambda x: 1 / x, AWAY0),
    ("log1p", np.log1p, POS), ("expm1", np.expm1, ANY), ("log2", np.log2, POS), ("log10", np.log10, POS),
]
BINARY = [
    ("add", np.add, ANY, ANY), ("sub", np.subtract, ANY, ANY), ("mul", np.multiply, ANY, ANY),
    ("div", np.divide, ANY, AWAY0), ("pow", np.power, POS, ANY), ("maximum", np.maximum, ANY, ANY),
    ("minimum", np.minimum, ANY, ANY),
]
COMPARE = [("eq", np.equal), ("ne", np.not_equal), ("lt", np.less), ("le", np.less_equal), ("gt", np.greater),
           ("ge", np.greater_equal)]
SHAPES = [((3, 4), (3, 4)), ((2, 3, 4), (4,)), ((3, 1), (1, 5)), ((), (2, 3))]


@pytest.mark.parametrize("name,ref,dom", UNARY, ids=[u[0] for u in UNARY])
def test_unary_value_and_grad(name, ref, dom):
    x = dom((3, 4))
    out = getattr(torch, name)(torch.tensor(x, dtype=torch.float32))
    assert out.dtype is torch.float32
    np.testing.assert_allclose(out.numpy(), ref(x.astype(np.float32)), rtol=1e-5, atol=1e-6)
    x64 = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    assert gradcheck(lambda t: getattr(torch, name)(t), (x64,))


@pytest.mark.parametrize("name,ref,da,db", BINARY, ids=[b[0] for b in BINARY])
@pytest.mark.parametrize("sa,sb", SHAPES)
def test_binary_broadcast_value_and_grad(name, ref, da, db, sa, sb):
    a, b = np.asarray(da(sa)), np.asarray(db(sb))
    out = getattr(torch, name)(torch.tensor(a), torch.tensor(b))
    np.testing.assert_allclose(out.numpy(), ref(a, b).astype(np.float32), rtol=1e-5, atol=1e-6)
    ta = torch.tensor(a, dtype=torch.float64, requires_grad=True)
    tb = torch.tensor(b, dtype=torch.float64, requires_grad=True)
    assert gradcheck(lambda x, y: getattr(torch, name)(x, y), (ta, tb))


@pytest.mark.parametrize("name,ref", COMPARE)
def test_comparisons_give_bool(name, ref):
    a, b = RNG.integers(0, 3, (4, 5)), RNG.integers(0, 3, (5,))
    out = getattr(torch, name)(torch.tensor(a), torch.tensor(b))
    assert out.dtype is torch.bool
    np.testing.assert_array_equal(out.numpy(), ref(a, b))
    assert not out.requires_grad


def test_operators_with_scalars_on_either_side():
    x = torch.tensor([1.0, 2.0, 4.0])
    np.testing.assert_allclose((2 - x).numpy(), [1, 0, -2])
    np.testing.assert_allclose((2 / x).numpy(), [2, 1, 0.5])
    np.testing.assert_allclose((x ** 2).numpy(), [1, 4, 16])
    np.testing.assert_allclose((2 ** x).numpy(), [2, 4, 16])
    np.testing.assert_allclose((-x + 1).numpy(), [0, -1, -3])
    np.testing.assert_allclose((x // 3).numpy(), [0, 0, 1])
    np.testing.assert_array_equal((x >= 2).numpy(), [False, True, True])


def test_clamp_where_and_gradients():
    x = torch.tensor([-2.0, -0.5, 0.5, 2.0], dtype=torch.float64, requires_grad=True)
    np.testing.assert_allclose(x.clamp(-1, 1).detach().numpy(), [-1, -0.5, 0.5, 1])
    np.testing.assert_allclose(torch.clamp(x, min=0).detach().numpy(), [0, 0, 0.5, 2])
    assert gradcheck(lambda t: t.clamp(-1, 1), (x,))
    y = torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=torch.float64, requires_grad=True)
    assert gradcheck(lambda a, b: torch.where(a > 0, a, b), (x, y))
    with pytest.raises(RuntimeError, match="At least one of 'min' or 'max'"):
        x.clamp()


def test_inplace_forms_and_out():
    x = torch.tensor([1.0, 2.0])
    x.add_(1).mul_(3).clamp_(max=7).sub_(1, alpha=2)
    np.testing.assert_allclose(x.numpy(), [4, 5])
    out = torch.empty(2)
    torch.add(torch.ones(2), 1, out=out)
    np.testing.assert_allclose(out.numpy(), [2, 2])
    x += 1
    np.testing.assert_allclose(x.numpy(), [5, 6])


def test_inplace_into_int_from_float_is_refused():
    x = torch.tensor([1, 2])
    with pytest.raises(RuntimeError, match="result type Float can't be cast to the desired output type Long"):
        x.add_(1.5)


def test_neg_of_bool_and_where_condition_errors():
    with pytest.raises(RuntimeError, match="Negation, the `-` operator, on a bool tensor is not supported"):
        -torch.tensor([True])
    with pytest.raises(RuntimeError, match="where: expected condition to be a boolean tensor"):
        torch.where(torch.tensor([1.0]), torch.ones(1), torch.zeros(1))


def test_broadcast_mismatch_names_op_and_shapes():
    with pytest.raises(RuntimeError, match=r"mul: The size of tensor a \(3\) must match the size of tensor b \(4\) "
                                           r"at non-singleton dimension 1 \(shapes \(2, 3\) and \(4,\)\)"):
        torch.ones(2, 3) * torch.ones(4)


def test_non_number_operand_is_a_type_error():
    with pytest.raises(TypeError, match="argument 1 must be a Tensor or a number, not str"):
        torch.ones(2) + "a"


def test_floating_point_errors_are_ieee_results_without_warnings_in_every_thread():
    """Eager ops give inf/nan as PyTorch does, silently; NumPy's own error state outside graphnet is untouched."""
    import threading
    import warnings

    big = torch.tensor([3e38, 1.0], dtype=torch.float32)
    results = {}

    def run(key):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            results[key] = ((big + big).tolist(), (big / 0.0).tolist(), torch.log(-big).tolist())

    run("main")
    worker = threading.Thread(target=run, args=("thread",))
    worker.start()
    worker.join()
    inf = float("inf")
    for key in ("main", "thread"):
        assert results[key][:2] == ([inf, 2.0], [inf, inf]), key
        assert all(v != v for v in results[key][2]), key  # log of negatives is NaN
    with pytest.warns(RuntimeWarning, match="overflow"):
        np.add(np.float32(3e38), np.float32(3e38))


@pytest.mark.parametrize("name", ["log1p", "expm1", "log2", "log10"])
def test_log_exp_family_compiled_matches_eager_and_torch(name):
    """Precise near 0 (log1p/expm1 of 1e-10 are not 0), exact at powers of the base, compiled as eagerly."""
    x = np.array([1e-10, 1e-4, 0.5, 1.0, 8.0, 100.0, 0.0])
    eager = getattr(torch, name)(torch.tensor(x))
    compiled = torch.compile(lambda t: getattr(torch, name)(t) * 1.0)
    for _ in range(3):
        got = compiled(torch.tensor(x))
    np.testing.assert_allclose(got.numpy(), eager.numpy(), rtol=1e-14)
    assert getattr(torch, name)(torch.tensor([8])).dtype is torch.float32  # integers promote to float
    tt = pytest.importorskip("torch")
    np.testing.assert_allclose(eager.numpy(), getattr(tt, name)(tt.tensor(x)).numpy(), rtol=1e-15, atol=0)

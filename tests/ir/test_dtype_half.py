"""float16 and bfloat16 storage and casting vs PyTorch: bfloat16 lives in float32 storage rounded to nearest-even
bfloat16 after every op, so casts round like PyTorch and arithmetic computes in float32 and returns the low dtype."""
import numpy as np
import pytest

import graphnet

torch = pytest.importorskip("torch")
RNG = np.random.default_rng(5)
SPECIAL = np.array([0.0, -0.0, np.nan, np.inf, -np.inf, 3.4e38, -3.39e38, 1e-40, 1.00390625, 1.01171875, 65504.0,
                    65520.0, 1e-8, 6e-5], np.float32)
VALUES = np.concatenate([SPECIAL, RNG.standard_normal(2000).astype(np.float32) * np.float32(300.0)])


def _low(name):
    return getattr(graphnet, name), getattr(torch, name)


@pytest.mark.parametrize("name", ["bfloat16", "float16"])
def test_cast_round_trips_match_torch(name):
    ours, ref = _low(name)
    got = graphnet.tensor(VALUES).to(ours)
    want = torch.tensor(VALUES).to(ref)
    assert got.dtype is ours and got.element_size() == want.element_size() == 2
    np.testing.assert_array_equal(got.float().numpy(), want.float().numpy())
    np.testing.assert_array_equal(got.double().numpy(), want.double().numpy())
    wide = VALUES.astype(np.float64) * 1.0000001  # from float64, as PyTorch
    np.testing.assert_array_equal(graphnet.tensor(wide).to(ours).float().numpy(),
                                  torch.tensor(wide).to(ref).float().numpy())
    np.testing.assert_array_equal(graphnet.tensor(VALUES.tolist(), dtype=ours).float().numpy(), want.float().numpy())


def test_methods_aliases_and_names():
    x = graphnet.tensor([1.1, -2.7])
    assert x.bfloat16().dtype is graphnet.bfloat16 and x.half().dtype is graphnet.float16 is graphnet.half
    assert x.to(dtype=graphnet.bfloat16).dtype is graphnet.bfloat16
    assert x.bfloat16().type() == "graphnet.BFloat16Tensor" and x.half().type() == "graphnet.HalfTensor"
    assert repr(x.bfloat16()) == "tensor([ 1.1016, -2.7031], dtype=graphnet.bfloat16)"
    assert repr(torch.tensor([1.1, -2.7]).bfloat16()) == "tensor([ 1.1016, -2.7031], dtype=torch.bfloat16)"
    assert graphnet.zeros(2, dtype=graphnet.bfloat16).to(graphnet.int64).dtype is graphnet.int64
    assert graphnet.bfloat16.is_floating_point and "bfloat16" in graphnet.__all__


@pytest.mark.parametrize("a", ["bfloat16", "float16", "float32", "float64", "int64", "int32", "bool"])
@pytest.mark.parametrize("b", ["bfloat16", "float16"])
def test_promotion_matches_torch(a, b):
    ours = graphnet.promote_types(getattr(graphnet, a), getattr(graphnet, b))
    assert ours.name == str(torch.promote_types(getattr(torch, a), getattr(torch, b))).split(".")[1]


ARITH = [
    lambda t: t * t,
    lambda t: t + 1.1,  # the Python scalar is rounded to the tensor's dtype, as PyTorch's wrapped numbers
    lambda t: t * t - 0.3,
    lambda t: t / 7,
    lambda t: t.sum(),
    lambda t: (t * 3).mean(0),
    lambda t: t.reshape(20, 100) @ t.reshape(100, 20),
    lambda t: t.exp(),
    lambda t: t.softmax(0),
    lambda t: t.abs().sqrt(),
]


@pytest.mark.parametrize("name", ["bfloat16", "float16"])
@pytest.mark.parametrize("fn", ARITH)
def test_arithmetic_returns_the_low_dtype_and_matches_torch(name, fn):
    ours, ref = _low(name)
    x = RNG.standard_normal(2000).astype(np.float32) * np.float32(4.0)
    got, want = fn(graphnet.tensor(x).to(ours)), fn(torch.tensor(x).to(ref))
    assert got.dtype is ours and want.dtype is ref
    g, w = got.float().numpy(), want.float().numpy()
    eps = 2.0 ** -7 if name == "bfloat16" else 2.0 ** -10  # at most one low-precision ulp apart (libm differences)
    np.testing.assert_allclose(g, w, rtol=eps, atol=1e-6)
    if fn in ARITH[:5]:  # plain IEEE ops: bit-exact
        np.testing.assert_array_equal(g, w)


def test_mixed_precision_and_gradients():
    a = graphnet.tensor([1.5, 2.25], dtype=graphnet.bfloat16, requires_grad=True)
    h = graphnet.tensor([1.5, 2.25], dtype=graphnet.float16)
    assert (a + h).dtype is graphnet.float32
    assert (a + graphnet.ones(2)).dtype is graphnet.float32
    assert (graphnet.tensor([1, 2]) * a).dtype is graphnet.bfloat16
    (a * a * 1.01).sum().backward()
    assert a.grad.dtype is graphnet.bfloat16
    ta = torch.tensor([1.5, 2.25], dtype=torch.bfloat16, requires_grad=True)
    (ta * ta * 1.01).sum().backward()
    np.testing.assert_array_equal(a.grad.float().numpy(), ta.grad.float().numpy())


@pytest.mark.parametrize("name", ["bfloat16", "float16"])
def test_compile_runs_half_precision_eagerly_with_a_warning(name):
    ours, ref = _low(name)
    x = RNG.standard_normal(50).astype(np.float32)
    fn = graphnet.compile(lambda a: (a * a + 1.1).sum())
    with pytest.warns(UserWarning, match=f"falling back to eager: mul gives a {name} result .* run eagerly only"):
        for _ in range(2):
            got = fn(graphnet.tensor(x).to(ours))
    assert got.dtype is ours
    np.testing.assert_array_equal(got.float().numpy(), (torch.tensor(x).to(ref) ** 2 + 1.1).sum().float().numpy())

"""Library kernels (conv2d, pooling) vs the NumPy reference implementations of the same ops, and the compiled
Program's use of them (im2col columns shared by conv2d and its weight gradient)."""
import numpy as np
import pytest

import graphnet as torch
import graphnet.nn as nn
import graphnet.nn.functional as F
from graphnet.codegen.templates import conv, pool
from graphnet.ir.ops import OPS
from graphnet.ir.ops.nn import _im2col
from graphnet.runtime import library
from graphnet.runtime import steps as program_steps

RNG = np.random.default_rng(0)
CONV_CASES = [  # (N, C, H, W), (O, kh, kw), stride, padding, dilation, groups
    ((2, 1, 9, 8), (3, 3, 3), (1, 1), (0, 0), (1, 1), 1),
    ((3, 4, 7, 10), (6, 3, 2), (2, 1), (1, 2), (1, 2), 2),
    ((1, 3, 6, 6), (3, 1, 1), (1, 1), (0, 0), (1, 1), 3),
    ((2, 2, 11, 9), (4, 5, 5), (3, 2), (2, 2), (2, 1), 1),
    ((2, 3, 13, 7), (4, 2, 3), (4, 3), (1, 1), (1, 1), 1),  # stride > kernel: input rows/cols skipped
    ((1, 4, 5, 6), (4, 3, 3), (1, 1), (3, 2), (2, 2), 4),  # padding wider than the dilated reach; depthwise
    ((1, 2, 8, 7), (3, 3, 3), (2, 2), (1, 0), (1, 1), 1),  # batch 1, stride 2, padding along one axis only
]


def _out_hw(h, w, k, s, p, d):
    return tuple((size + 2 * p[i] - d[i] * (k[i] - 1) - 1) // s[i] + 1 for i, size in enumerate((h, w)))


@pytest.mark.parametrize("xs,ws,stride,padding,dilation,groups", CONV_CASES)
def test_conv2d_kernels_match_reference(xs, ws, stride, padding, dilation, groups):
    n, c, h, w = xs
    o, kh, kw = ws
    x = RNG.standard_normal(xs).astype(np.float32)
    weight = RNG.standard_normal((o, c // groups, kh, kw)).astype(np.float32)
    bias = RNG.standard_normal(o).astype(np.float32)
    attrs = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    oh, ow = _out_hw(h, w, (kh, kw), stride, padding, dilation)
    geo = (kh, kw, *stride, *padding, *dilation)
    cols = np.empty((n, c * kh * kw, oh * ow), np.float32)
    out = np.empty((n, o, oh, ow), np.float32)
    conv.conv2d_forward(x, weight, bias, True, True, geo, groups, cols, out)
    ref = OPS["conv2d"].impl(x, weight, **attrs) + bias.reshape(1, -1, 1, 1)
    np.testing.assert_allclose(out, np.maximum(ref, 0), rtol=1e-4, atol=1e-4)

    g = RNG.standard_normal((n, o, oh, ow)).astype(np.float32)
    want_dw = OPS["conv2d_weight_grad"].impl(x, g, weight_shape=weight.shape, **attrs)
    acc = np.empty((c // groups * kh * kw, o // groups), np.float32)
    for unfold, given_cols in ((False, cols), (True, np.full_like(cols, np.nan)),  # the forward's columns, or none
                               (True, np.full_like(cols[:1], np.nan))):  # one plane every sample reuses
        dw = np.empty_like(weight)
        conv.conv2d_weight_grad(x, g, geo, groups, unfold, given_cols, acc, dw)
        np.testing.assert_allclose(dw, want_dw, rtol=1e-4, atol=1e-3)
    dx = np.empty_like(x)
    conv.conv2d_input_grad(g, weight, geo, groups, np.empty_like(cols[0]), dx)
    np.testing.assert_allclose(dx, OPS["conv2d_input_grad"].impl(g, weight, input_shape=x.shape, **attrs),
                               rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("xs,ws,stride,padding,dilation,groups", CONV_CASES)
def test_im2col_matches_reference_columns(xs, ws, stride, padding, dilation, groups):
    (n, c, h, w), (_, kh, kw) = xs, ws
    x = RNG.standard_normal(xs).astype(np.float32)
    oh, ow = _out_hw(h, w, (kh, kw), stride, padding, dilation)
    cols = np.full((n, c * kh * kw, oh * ow), np.nan, np.float32)
    conv.im2col(x, (kh, kw, *stride, *padding, *dilation), cols)
    ref = _im2col(x, (kh, kw), (oh, ow), stride, padding, dilation, 1).reshape(cols.shape)
    np.testing.assert_array_equal(cols, ref)


POOL_CASES = [((2, 3, 8, 8), (2, 2), (2, 2), (0, 0), (1, 1)), ((1, 2, 7, 9), (3, 2), (2, 1), (1, 1), (1, 1)),
              ((2, 1, 10, 10), (3, 3), (1, 2), (1, 0), (2, 1)),
              ((2, 3, 7, 9), (2, 2), (2, 2), (0, 0), (1, 1))]  # the 2x2 fast path with odd sizes


@pytest.mark.parametrize("xs,k,s,p,d", POOL_CASES)
def test_max_pool_kernels_match_reference(xs, k, s, p, d):
    x = RNG.standard_normal(xs).astype(np.float32)
    x[..., ::3, :] = 0  # ties (as after a ReLU): the first tap in window order wins
    x[0, 0, 1, 1], x[-1, -1, 0, 1] = np.nan, np.nan  # NaN wins its window
    ref, ref_idx = OPS["max_pool2d"].impl(x, kernel_size=k, stride=s, padding=p, dilation=d, ceil_mode=False)
    out, idx = np.empty(ref.shape, np.float32), np.empty(ref.shape, np.int64)
    pool.max_pool2d_forward(x, *k, *s, *p, *d, out, idx)
    np.testing.assert_array_equal(out, ref)  # NaNs compare equal here
    np.testing.assert_array_equal(idx, ref_idx)
    g = RNG.standard_normal(ref.shape).astype(np.float32)
    dx = np.empty_like(x)
    pool.max_pool2d_backward(g, idx, dx)
    # overlapping windows sum their gradients in another order than the reference: float32 round-off
    np.testing.assert_allclose(dx, OPS["max_pool2d_backward"].impl(g, ref_idx, input_shape=x.shape), rtol=1e-5,
                               atol=1e-6)


@pytest.mark.parametrize("include_pad", [True, False])
@pytest.mark.parametrize("xs,k,s,p", [((2, 3, 8, 8), (2, 2), (2, 2), (0, 0)), ((1, 2, 7, 9), (3, 3), (2, 1), (1, 1))])
def test_avg_pool_kernels_match_reference(xs, k, s, p, include_pad):
    x = RNG.standard_normal(xs).astype(np.float32)
    attrs = dict(kernel_size=k, stride=s, padding=p, ceil_mode=False, count_include_pad=include_pad,
                 divisor_override=None)
    ref = OPS["avg_pool2d"].impl(x, **attrs)
    out = np.empty(ref.shape, np.float32)
    pool.avg_pool2d_forward(x, *k, *s, *p, include_pad, 0, out)
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-6)
    g = RNG.standard_normal(ref.shape).astype(np.float32)
    dx = np.empty_like(x)
    pool.avg_pool2d_backward(g, *k, *s, *p, include_pad, 0, dx)
    np.testing.assert_allclose(dx, OPS["avg_pool2d_backward"].impl(g, input_shape=x.shape, **attrs), rtol=1e-5,
                               atol=1e-6)


def _conv_net(stride, padding, groups):
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(4, 6, 3, stride=stride, padding=padding, groups=groups), nn.ReLU(),
                         nn.Conv2d(6, 3, 2, bias=False), nn.ReLU(), nn.Flatten())


def _compiled_matches_eager(model, x):
    """compile() a step of sum(model(x)**2) with its backward; after two calls its loss and gradients equal eager's.
    Returns the compiled step."""
    loss = (model(x) ** 2).sum()
    loss.backward()
    want = [p.grad.numpy().copy() for p in model.parameters()]

    def step(x):
        model.zero_grad()
        loss = (model(x) ** 2).sum()
        loss.backward()
        return loss

    cstep = torch.compile(step)
    for _ in range(2):
        got = cstep(x)
    np.testing.assert_allclose(got.item(), loss.item(), rtol=1e-4)
    for p, w in zip(model.parameters(), want):
        np.testing.assert_allclose(p.grad.numpy(), w, rtol=1e-3, atol=1e-4)
    return cstep


@pytest.mark.parametrize("stride,padding,groups", [((1, 1), (0, 0), 1), ((2, 1), (1, 2), 2)])
def test_compiled_conv_step_shares_columns_and_matches_eager(stride, padding, groups):
    x = torch.randn(3, 4, 9, 11)
    model = _conv_net(stride, padding, groups)
    cstep = _compiled_matches_eager(model, x)
    steps = [s for prog in cstep._last.programs for s in prog.steps if isinstance(s, library.Template)]
    weight_grads = [s for s in steps if s.fn is conv.conv2d_weight_grad]
    # each forward leaves its input's columns behind; both weight grads reuse them instead of unfolding again
    assert len(weight_grads) == 2 and not any(s.scratch[2] for s in weight_grads)
    forward_cols = {id(s.scratch[0]) for s in steps if s.fn is conv.conv2d_forward}
    assert {id(s.scratch[0]) for s in weight_grads} == forward_cols
    # the bias + ReLU after the first conv and the bare ReLU after the second run inside the conv kernels
    epilogues = [s.attrs["epilogue"] for s in steps if s.fn is conv.conv2d_forward]
    assert epilogues == [(True, True), (False, True)]
    assert sum(isinstance(s, program_steps.Alias) for prog in cstep._last.programs for s in prog.steps) == 2


def test_conv_and_pool_steps_split_the_batch_over_two_threads(monkeypatch):
    """A compiled module's forward and backward Programs write nothing back, so their conv/pool steps split."""
    monkeypatch.setattr(library, "SPLIT_MIN", 0)
    monkeypatch.setattr(library, "THREADS", 2)
    x = torch.randn(3, 4, 10, 12)  # an odd batch: halves of 1 and 2 samples
    model = nn.Sequential(_conv_net((1, 1), (1, 1), 2), nn.Unflatten(1, (3, 9, 11)), nn.MaxPool2d(2))
    (model(x) ** 2).sum().backward()
    want = [p.grad.numpy().copy() for p in model.parameters()]
    cm = torch.compile(model)
    for _ in range(2):
        model.zero_grad()
        (cm(x) ** 2).sum().backward()
    for p, w in zip(model.parameters(), want):
        np.testing.assert_allclose(p.grad.numpy(), w, rtol=1e-3, atol=1e-4)
    split = {s.fn for prog in cm._last.programs for s in prog.steps if isinstance(s, library.Template) and s.split}
    assert split == {conv.conv2d_forward, conv.conv2d_weight_grad, conv.conv2d_input_grad, pool.max_pool2d_forward,
                     pool.max_pool2d_backward}
    assert all(prog.driver is None for prog in cm._last.programs)  # split steps keep the Python step loop


def test_a_training_step_writing_back_gradients_never_splits(monkeypatch):
    monkeypatch.setattr(library, "SPLIT_MIN", 0)
    monkeypatch.setattr(library, "THREADS", 2)
    model = nn.Sequential(_conv_net((1, 1), (1, 1), 2), nn.Unflatten(1, (3, 9, 11)), nn.MaxPool2d(2))
    cstep = _compiled_matches_eager(model, torch.randn(3, 4, 10, 12))
    (prog,) = cstep._last.programs
    assert not any(isinstance(s, library.Template) and s.split for s in prog.steps) and prog.driver is not None


@pytest.mark.parametrize("split", [False, True])
@pytest.mark.parametrize("groups", [1, 2])
def test_weight_grad_without_a_forward_in_its_program_unfolds_into_private_planes(monkeypatch, split, groups):
    monkeypatch.setattr(library, "SPLIT_MIN", 0 if split else library.SPLIT_MIN)
    x = torch.randn(5, 4, 8, 8)  # odd: halves of 2 and 3 samples
    model = _conv_net((1, 1), (1, 1), groups)
    F.relu(model(x)).sum().backward()
    want = [p.grad.numpy().copy() for p in model.parameters()]
    model.zero_grad()
    cm = torch.compile(model)
    F.relu(cm(x)).sum().backward()  # forward and backward are separate Programs here
    for p, w in zip(model.parameters(), want):
        np.testing.assert_allclose(p.grad.numpy(), w, rtol=1e-3, atol=1e-4)
    forward, backward = cm._last.programs
    weight_grads = [s for s in backward.steps if isinstance(s, library.Template) and s.fn is conv.conv2d_weight_grad]
    assert len(weight_grads) == 2 and all(s.scratch[2] and s.attrs["private_cols"] for s in weight_grads)
    convs = [s for s in forward.steps if isinstance(s, library.Template) and s.fn is conv.conv2d_forward]
    assert [(s.attrs["private_cols"], s.scratch[0].shape[0], s.split) for s in convs] == [(True, 2, split)] * 2


def test_conv_output_with_two_users_keeps_its_fused_consumers():
    x, w = torch.randn(2, 2, 6, 6), torch.randn(3, 2, 3, 3)

    def f(x):
        y = F.conv2d(x, w)
        return F.relu(y), y * 2  # the raw output is needed twice: no epilogue may overwrite it

    cf = torch.compile(f)
    with torch.no_grad():
        for _ in range(2):
            got = cf(x)
        want = f(x)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g.numpy(), w.numpy(), rtol=1e-5, atol=1e-5)
    steps = [s for prog in cf._last.programs for s in prog.steps]
    assert not any(isinstance(s, program_steps.Alias) for s in steps)
    assert [s.attrs["epilogue"] for s in steps if getattr(s, "fn", None) is conv.conv2d_forward] == [(False, False)]

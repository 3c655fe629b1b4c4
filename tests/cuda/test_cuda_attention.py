"""Attention on a CUDA device (simulator-tested): scaled_dot_product_attention (causal, bool and float masks),
MultiheadAttention (batch_first, key_padding_mask), TransformerEncoderLayer (norm_first both ways, gelu) and a tiny
GPT-like stack: eager and compiled forward and backward on the device equal the CPU run's outputs and gradients."""
import copy
import warnings

import numpy as np
import pytest

import graphnet as torch
import graphnet.nn as nn
import graphnet.nn.functional as F

pytestmark = pytest.mark.cuda


def _host(t):
    return t.detach().cpu().numpy()


class SDPA(nn.Module):
    """F.scaled_dot_product_attention as a module, so compile(module) gives it a compiled backward."""

    def __init__(self, is_causal=False):
        super().__init__()
        self.is_causal = is_causal

    def forward(self, q, k, v, mask=None):
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=self.is_causal)


class Block(nn.Module):
    """A pre-norm GPT block: causal self-attention and a GELU MLP, each with a residual."""

    def __init__(self, d, heads, mask):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.attn = nn.MultiheadAttention(d, heads, batch_first=True)
        self.mlp = nn.Sequential(nn.Linear(d, 2 * d), nn.GELU(approximate="tanh"), nn.Linear(2 * d, d))
        self.register_buffer("mask", mask)

    def forward(self, x):
        h = self.ln1(x)
        x = x + self.attn(h, h, h, attn_mask=self.mask, need_weights=False)[0]
        return x + self.mlp(self.ln2(x))


class TinyGPT(nn.Module):
    def __init__(self, vocab=5, d=4, heads=2, t=3, layers=2):
        super().__init__()
        self.tok, self.pos = nn.Embedding(vocab, d), nn.Parameter(torch.randn(t, d) * 0.1)
        causal = torch.triu(torch.full((t, t), float("-inf")), diagonal=1)
        self.blocks = nn.Sequential(*(Block(d, heads, causal) for _ in range(layers)))
        self.ln, self.head = nn.LayerNorm(d), nn.Linear(d, vocab)

    def forward(self, ids):
        return self.head(self.ln(self.blocks(self.tok(ids) + self.pos)))


def _run(model, inputs, compiled):
    """Every output, the gradients of the floating inputs and of every parameter, for a loss touching each output."""
    inputs = [x.detach().requires_grad_(True) if x.dtype.is_floating_point else x for x in inputs]
    outs = (torch.compile(model) if compiled else model)(*inputs)
    outs = [o for o in (outs if isinstance(outs, tuple) else (outs,)) if o is not None]
    sum((o * o).sum() for o in outs).backward()
    grads = [x.grad for x in inputs if x.dtype.is_floating_point] + [p.grad for p in model.parameters()]
    assert all(g is not None for g in grads)
    model.zero_grad()
    return [_host(r) for r in outs + grads]


def _check_on_device(make, inputs, modes=(False, True)):
    """The CPU eager run against eager and/or compiled runs (`modes`: compiled or not) of a copy of the model on the
    device (no eager fallback). The layers built of attention run compiled only: each launch costs the simulator
    ~30 ms, and their eager device path is the ops' own, tested by the SDPA and MultiheadAttention cases."""
    torch.manual_seed(0)
    cpu = make()
    want = _run(cpu, inputs, compiled=False)
    dev = copy.deepcopy(cpu).cuda()
    assert all(p.is_cuda for p in dev.parameters())
    for compiled in modes:
        with warnings.catch_warnings():
            warnings.filterwarnings("error", message=".*eager.*", module="graphnet")
            got = _run(dev, [x.cuda() for x in inputs], compiled)
        assert len(got) == len(want)
        for g, w in zip(got, want):
            np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-5)


def _qkv():
    torch.manual_seed(1)
    return [torch.randn(1, 2, 3, 4) for _ in range(3)]


@pytest.mark.parametrize("mask", ["causal", "bool", "float"])
def test_sdpa_on_device_matches_cpu(mask):
    masks = {"causal": [], "bool": [torch.tensor([[True, False, True], [True, True, False], [False, True, True]])],
             "float": [torch.randn(3, 3)]}
    _check_on_device(lambda: SDPA(is_causal=mask == "causal"), _qkv() + masks[mask])


@pytest.mark.parametrize("batch_first", [True, False])
def test_multihead_attention_with_key_padding_mask_on_device_matches_cpu(batch_first):
    torch.manual_seed(2)
    x = torch.randn(2, 3, 4) if batch_first else torch.randn(3, 2, 4)
    pad = torch.tensor([[False, False, True], [False, False, False]])

    class SelfAttention(nn.Module):
        def __init__(self):
            super().__init__()
            self.mha = nn.MultiheadAttention(4, 2, batch_first=batch_first)

        def forward(self, x, pad):
            return self.mha(x, x, x, key_padding_mask=pad)

    _check_on_device(SelfAttention, [x, pad], modes=(False, True) if batch_first else (True,))


@pytest.mark.parametrize("norm_first", [False, True])
def test_transformer_encoder_layer_on_device_matches_cpu(norm_first):
    torch.manual_seed(3)
    _check_on_device(lambda: nn.TransformerEncoderLayer(4, 2, dim_feedforward=8, dropout=0.0, activation="gelu",
                                                        batch_first=True, norm_first=norm_first),
                     [torch.randn(2, 3, 4)], modes=(True,))


def test_tiny_gpt_stack_on_device_matches_cpu():
    _check_on_device(TinyGPT, [torch.tensor([[1, 4, 3], [0, 2, 2]])], modes=(True,))

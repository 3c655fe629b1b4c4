"""nn.Transformer and its encoder/decoder layers and stacks vs PyTorch: torch's state_dict loads (same parameter
names), outputs and parameter gradients match (post- and pre-norm, relu/gelu/callable, masks, batch_first,
unbatched), compiled forward and a compiled training step match eager, and the error paths."""
import re
import warnings

import numpy as np
import pytest

import graphnet as gn
import graphnet.nn as nn
import graphnet.nn.functional as F

torch = pytest.importorskip("torch")
TOL = {"rtol": 1e-5, "atol": 2e-5}
D, H, FF, L, S, N = 16, 2, 32, 5, 4, 3


@pytest.fixture(autouse=True)
def _kernel_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("GRAPHNET_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "kernel-cache"))


def to_gn(t):
    return gn.tensor(t.detach().numpy())


def close(got, want):
    np.testing.assert_allclose(got.detach().numpy(), want.detach().numpy(), **TOL)


def copy_module(gm, tm):
    assert list(gm.state_dict()) == list(tm.state_dict())
    gm.load_state_dict({k: to_gn(v) for k, v in tm.state_dict().items()})
    return gm.eval(), tm.eval()


def check_grads(gm, tm, got, want):
    close(got, want)
    want.square().sum().backward()
    got.square().sum().backward()
    grads = dict(gm.named_parameters())
    for name, p in tm.named_parameters():
        close(grads[name].grad, p.grad)


def _seq(*shape, seed=0):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


SRC, TGT = _seq(L, N, D), _seq(S, N, D, seed=1)
KPM = torch.tensor([[False] * 4 + [True], [False] * 5, [False, True, False, False, False]])
ACTIVATIONS = {"relu": ("relu", "relu"), "gelu": (torch.nn.functional.gelu, F.gelu),
               "module": (torch.nn.GELU(), nn.GELU()), "callable": (torch.tanh, gn.tanh)}


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("act", list(ACTIVATIONS))
def test_encoder_layer_matches_torch(norm_first, act):
    t_act, g_act = ACTIVATIONS[act]
    torch.manual_seed(0)
    tm = torch.nn.TransformerEncoderLayer(D, H, FF, activation=t_act, norm_first=norm_first)
    gm, tm = copy_module(nn.TransformerEncoderLayer(D, H, FF, activation=g_act, norm_first=norm_first), tm)
    mask = torch.nn.Transformer.generate_square_subsequent_mask(L)
    want = tm(SRC, src_mask=mask, src_key_padding_mask=KPM)
    got = gm(to_gn(SRC), src_mask=to_gn(mask), src_key_padding_mask=to_gn(KPM))
    check_grads(gm, tm, got, want)
    assert gm.activation_relu_or_gelu == tm.activation_relu_or_gelu


def test_encoder_stack_deep_copies_its_layer_and_matches_torch_batch_first():
    torch.manual_seed(0)
    layer = torch.nn.TransformerEncoderLayer(D, H, FF, batch_first=True, bias=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's nested-tensor notice
        tm = torch.nn.TransformerEncoder(layer, 2, norm=torch.nn.LayerNorm(D, bias=False))
    g_layer = nn.TransformerEncoderLayer(D, H, FF, batch_first=True, bias=False)
    gm = nn.TransformerEncoder(g_layer, 2, norm=nn.LayerNorm(D, bias=False), enable_nested_tensor=False)
    assert gm.layers[0] is not g_layer and gm.layers[0].self_attn is not gm.layers[1].self_attn
    np.testing.assert_array_equal(gm.layers[0].linear1.weight.detach().numpy(), g_layer.linear1.weight.detach().numpy())
    assert "layers.1.self_attn.in_proj_weight" in gm.state_dict() and gm.use_nested_tensor is False
    gm, tm = copy_module(gm, tm)
    src = SRC.transpose(0, 1).contiguous()
    mask = torch.nn.Transformer.generate_square_subsequent_mask(L)
    check_grads(gm, tm, gm(to_gn(src), mask=to_gn(mask)), tm(src, mask=mask))


def test_encoder_is_causal_hint_matches_the_explicit_mask_and_unbatched_input():
    torch.manual_seed(0)
    tm = torch.nn.TransformerEncoder(torch.nn.TransformerEncoderLayer(D, H, FF), 2, enable_nested_tensor=False)
    gm, tm = copy_module(nn.TransformerEncoder(nn.TransformerEncoderLayer(D, H, FF), 2), tm)
    mask = torch.nn.Transformer.generate_square_subsequent_mask(L)
    want = tm(SRC, mask=mask, is_causal=True)
    close(gm(to_gn(SRC), mask=to_gn(mask), is_causal=True), want)
    close(gm(to_gn(SRC), mask=to_gn(mask)), want)  # detected as causal
    close(gm(to_gn(SRC[:, 0]), mask=to_gn(mask)), tm(SRC[:, 0], mask=mask))


@pytest.mark.parametrize("norm_first", [False, True])
def test_decoder_layer_and_stack_match_torch(norm_first):
    torch.manual_seed(0)
    tm = torch.nn.TransformerDecoder(torch.nn.TransformerDecoderLayer(D, H, FF, norm_first=norm_first), 2,
                                     norm=torch.nn.LayerNorm(D))
    gm, tm = copy_module(nn.TransformerDecoder(nn.TransformerDecoderLayer(D, H, FF, norm_first=norm_first), 2,
                                               norm=nn.LayerNorm(D)), tm)
    tgt_mask = torch.nn.Transformer.generate_square_subsequent_mask(S)
    mem_kpm = KPM
    want = tm(TGT, SRC, tgt_mask=tgt_mask, memory_key_padding_mask=mem_kpm)
    got = gm(to_gn(TGT), to_gn(SRC), tgt_mask=to_gn(tgt_mask), memory_key_padding_mask=to_gn(mem_kpm))
    check_grads(gm, tm, got, want)


def test_full_transformer_matches_torch_and_its_square_subsequent_mask():
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tm = torch.nn.Transformer(D, H, 2, 1, FF, activation="gelu")
    gm, tm = copy_module(nn.Transformer(D, H, 2, 1, FF, activation="gelu"), tm)
    assert (gm.d_model, gm.nhead, gm.batch_first) == (D, H, False)
    tgt_mask = torch.nn.Transformer.generate_square_subsequent_mask(S)
    got = gm(to_gn(SRC), to_gn(TGT), tgt_mask=to_gn(tgt_mask), src_key_padding_mask=to_gn(KPM),
             memory_key_padding_mask=to_gn(KPM))
    check_grads(gm, tm, got, tm(SRC, TGT, tgt_mask=tgt_mask, src_key_padding_mask=KPM, memory_key_padding_mask=KPM))
    mask = nn.Transformer.generate_square_subsequent_mask(4)
    assert mask.dtype is gn.float32
    np.testing.assert_array_equal(mask.numpy(), torch.nn.Transformer.generate_square_subsequent_mask(4).numpy())
    assert nn.Transformer.generate_square_subsequent_mask(2, dtype=gn.float64).dtype is gn.float64


def test_transformer_defaults_init_and_custom_parts():
    big = nn.Transformer(num_encoder_layers=1, num_decoder_layers=1)
    assert big.d_model == 512 and big.encoder.layers[0].linear1.out_features == 2048
    assert big.encoder.layers[0].dropout.p == 0.1 and big.encoder.layers[0].norm1.eps == 1e-5
    w = big.encoder.layers[0].self_attn.in_proj_weight.detach().numpy()  # xavier_uniform_ over the whole model
    assert np.abs(w).max() <= np.sqrt(6 / (512 + 1536)) and big.encoder.layers[0].self_attn.in_proj_bias.sum() == 0
    enc = nn.TransformerEncoder(nn.TransformerEncoderLayer(D, H, FF), 1)
    dec = nn.TransformerDecoder(nn.TransformerDecoderLayer(D, H, FF), 1)
    model = nn.Transformer(D, H, custom_encoder=enc, custom_decoder=dec)
    assert model.encoder is enc and model.decoder is dec
    assert tuple(model(gn.randn(L, N, D), gn.randn(S, N, D)).shape) == (S, N, D)


def test_compiled_forward_matches_eager():
    model = nn.Transformer(D, H, 1, 1, FF).eval()
    src, tgt = gn.randn(L, N, D), gn.randn(S, N, D)
    mask = nn.Transformer.generate_square_subsequent_mask(S)
    with gn.no_grad():
        want = model(src, tgt, None, mask).numpy()
        compiled = gn.compile(model)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            for _ in range(2):
                np.testing.assert_allclose(compiled(src, tgt, None, mask).numpy(), want, **TOL)


def test_compiled_training_step_matches_eager_steps():
    def run(compiled):
        gn.manual_seed(2)
        enc = nn.TransformerEncoder(nn.TransformerEncoderLayer(D, H, FF, dropout=0.1, batch_first=True), 2)
        head = nn.Linear(D, 7)
        params = list(enc.parameters()) + list(head.parameters())
        opt = gn.optim.Adam(params, lr=1e-2)
        x, y = gn.randn(N, L, D), gn.randint(0, 7, (N, L))
        mask = nn.Transformer.generate_square_subsequent_mask(L)

        def step(x, y):
            opt.zero_grad()
            loss = F.cross_entropy(head(enc(x, mask)).transpose(1, 2), y)
            loss.backward()
            opt.step()
            return loss

        fn = gn.compile(step) if compiled else step
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            return [fn(x, y).item() for _ in range(3)], enc.layers[1].linear2.weight.detach().numpy()

    (eager, w_e), (comp, w_c) = run(False), run(True)
    np.testing.assert_allclose(comp, eager, rtol=1e-4)
    np.testing.assert_allclose(w_c, w_e, rtol=1e-4, atol=1e-5)
    assert eager[-1] < eager[0]


ERRORS = [
    (lambda: nn.TransformerEncoderLayer(D, H, FF, activation="tanh"), RuntimeError,
     "activation should be relu/gelu, not tanh"),
    (lambda: nn.TransformerDecoderLayer(D, H, FF, activation="swish"), RuntimeError,
     "activation should be relu/gelu, not swish"),
    (lambda: nn.TransformerEncoderLayer(D, 3, FF), AssertionError, "embed_dim must be divisible by num_heads"),
    (lambda: nn.Transformer(D, H, 1, 1, FF)(gn.randn(L, N, D), gn.randn(S, 2, D)), RuntimeError,
     "the batch number of src and tgt must be equal"),
    (lambda: nn.Transformer(D, H, 1, 1, FF, batch_first=True)(gn.randn(N, L, D), gn.randn(2, S, D)), RuntimeError,
     "the batch number of src and tgt must be equal"),
    (lambda: nn.Transformer(D, H, 1, 1, FF)(gn.randn(L, N, D), gn.randn(S, N, 8)), RuntimeError,
     "the feature number of src and tgt must be equal to d_model"),
    (lambda: nn.TransformerEncoderLayer(D, H, FF)(gn.randn(L, N, D), is_causal=True), RuntimeError,
     "Need attn_mask if specifying the is_causal hint"),
]


@pytest.mark.parametrize("i", range(len(ERRORS)))
def test_errors_are_worded_like_torch(i):
    fn, exc, message = ERRORS[i]
    with pytest.raises(exc, match=re.escape(message)):
        fn()

"""The second main job: a character-level GPT (or, with --model lstm, an LSTM) trained, compiled, on tiny Shakespeare.

    python examples/train_charlm.py [--model gpt|lstm] [--iters 2000] [--device cpu|cuda] [--no-compile]
                                    [--out DIR] [--eval-iters 100] [--sample-chars 300]

The GPT: 4 layers, 4 heads, 128 wide, context 64, batch 12, AdamW (lr 1e-3, 100 warm-up steps, cosine decay to
1e-4, weight decay 0.1 on matrices only, gradients clipped to norm 1.0), dropout 0, on the split graphnet ships
(first 90% of the characters train, last 10% validation). A progress bar shows the loss and tokens/s; the
validation loss is estimated every --eval-interval steps on --eval-iters random batches; the model is saved,
reloaded and checked, and --sample-chars characters are sampled at the end (temperature, top-k). --model lstm
trains, with the same recipe and data, an embedding (--n-embd) into a --lstm-layers LSTM of --hidden units and a
Linear decoder, for comparison.
"""
import argparse
import math
import os
import sys
import time

import numpy as np
from tqdm import tqdm

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import graphnet as torch  # noqa: E402
from examples.charlm import GPT, LSTMLM, GPTConfig, lm_loss, sample  # noqa: E402
from graphnet.data.text import shakespeare_split  # noqa: E402


class Batches:
    """Random (x, y) windows of `block` ids, y shifted by one, from a fixed-seed NumPy generator."""

    def __init__(self, ids, block, batch, seed, device):
        self.ids, self.block, self.batch, self.device = ids.numpy(), block, batch, device
        self.rng = np.random.default_rng(seed)

    def __call__(self):
        starts = self.rng.integers(0, len(self.ids) - self.block - 1, self.batch)
        rows = starts[:, None] + np.arange(self.block + 1)
        xy = torch.from_numpy(self.ids[rows]).to(self.device)
        return xy[:, :-1].contiguous(), xy[:, 1:].contiguous()


def make_model(args, vocab):
    if args.model == "lstm":
        return LSTMLM(vocab, args.n_embd, args.hidden, args.lstm_layers, args.dropout)
    return GPT(GPTConfig(vocab, args.block_size, args.n_layer, args.n_head, args.n_embd, args.dropout, args.bias))


def make_optimizer(model, args):
    """AdamW with weight decay on the matrices (>= 2-d) only, as GPT training recipes do."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": args.weight_decay},
              {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=args.lr, betas=(0.9, 0.99))


def lr_factor(args):
    """Linear warm-up to lr, then cosine decay to min_lr at the last iteration (a multiple of lr, for LambdaLR)."""
    def factor(it):
        if it < args.warmup:
            return (it + 1) / args.warmup
        progress = min(1.0, (it - args.warmup) / max(1, args.iters - args.warmup))
        return (args.min_lr + 0.5 * (1.0 + math.cos(math.pi * progress)) * (args.lr - args.min_lr)) / args.lr
    return factor


@torch.no_grad()
def estimate_loss(forward, batches, iters):
    """Mean loss over `iters` batches (a fixed-seed stream, so every estimate sees the same windows)."""
    total = 0.0
    for _ in range(iters):
        x, y = batches()
        total += lm_loss(forward(x), y).item()
    return total / iters


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="gpt", choices=["gpt", "lstm"])
    p.add_argument("--iters", type=int, default=2000)
    p.add_argument("--batch-size", type=int, default=12)
    p.add_argument("--block-size", type=int, default=64)
    p.add_argument("--n-layer", type=int, default=4)
    p.add_argument("--n-head", type=int, default=4)
    p.add_argument("--n-embd", type=int, default=128)
    p.add_argument("--hidden", type=int, default=256, help="LSTM units per layer (--model lstm)")
    p.add_argument("--lstm-layers", type=int, default=2)
    p.add_argument("--dropout", type=float, default=0.0)
    p.add_argument("--bias", action=argparse.BooleanOptionalAction, default=True,
                   help="biases in the GPT's Linears and LayerNorms")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--min-lr", type=float, default=1e-4)
    p.add_argument("--warmup", type=int, default=100)
    p.add_argument("--weight-decay", type=float, default=0.1)
    p.add_argument("--grad-clip", type=float, default=1.0)
    p.add_argument("--eval-interval", type=int, default=500)
    p.add_argument("--eval-iters", type=int, default=100)
    p.add_argument("--sample-chars", type=int, default=300)
    p.add_argument("--temperature", type=float, default=0.8)
    p.add_argument("--top-k", type=int, default=40)
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--compile", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--out", default=".")
    p.add_argument("--seed", type=int, default=1337)
    args = p.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    torch.manual_seed(args.seed)
    device = torch.device(args.device)

    train_ids, val_ids, vocab = shakespeare_split()
    model = make_model(args, len(vocab)).to(device)
    opt = make_optimizer(model, args)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_factor(args))

    def step(x, y):
        loss = lm_loss(model(x), y)
        loss.backward()
        if args.grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), args.grad_clip)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss

    train_step = torch.compile(step) if args.compile else step
    forward = torch.compile(model) if args.compile else model
    n_params = sum(p.numel() for p in model.parameters())
    print(f"{type(model).__name__} ({n_params / 1e6:.2f}M parameters) on tiny Shakespeare: {len(train_ids):,} train / "
          f"{len(val_ids):,} validation characters, vocab {len(vocab)}, {args.device}, "
          f"{'compiled' if args.compile else 'eager'}, {args.iters} iterations")

    train_batches = Batches(train_ids, args.block_size, args.batch_size, args.seed, device)
    tokens, t_train, t_compile, warm = args.batch_size * args.block_size, 0.0, 0.0, 2  # step 2 on: compiled
    bar = tqdm(range(args.iters), desc="train", unit="it", file=sys.stdout, mininterval=1.0)
    for it in bar:
        x, y = train_batches()
        t0 = time.perf_counter()
        loss = train_step(x, y)
        sched.step()
        if it % 10 == 0 or it == args.iters - 1:
            loss_value = loss.item()
        if it < warm:
            t_compile += time.perf_counter() - t0
        else:
            t_train += time.perf_counter() - t0
        if it % 10 == 0 and it >= warm:
            bar.set_postfix(loss=f"{loss_value:.3f}", tok_s=f"{tokens * (it + 1 - warm) / t_train:,.0f}")
        if (it + 1) % args.eval_interval == 0 and it + 1 < args.iters:
            model.eval()
            val = estimate_loss(forward, Batches(val_ids, args.block_size, args.batch_size, 0, device),
                                args.eval_iters)
            model.train()
            bar.write(f"step {it + 1}: validation loss {val:.4f}")
    bar.close()
    model.eval()
    val = estimate_loss(forward, Batches(val_ids, args.block_size, args.batch_size, 0, device), args.eval_iters)
    steady = max(1, args.iters - warm)
    rate = tokens * steady / max(t_train, 1e-9)
    print(f"validation loss {val:.4f} after {args.iters} iterations; training {rate:,.0f} tokens/s "
          f"({t_train / steady * 1e3:.1f} ms/iteration; first {warm} iterations, tracing and compiling "
          f"included: {t_compile:.1f} s)")

    path = os.path.join(args.out, f"charlm_{args.model}.pth")
    torch.save({"model": model.state_dict(), "args": vars(args), "chars": vocab.chars}, path)
    fresh = make_model(args, len(vocab)).to(device)
    fresh.load_state_dict(torch.load(path)["model"])
    fresh.eval()
    reloaded = estimate_loss(fresh, Batches(val_ids, args.block_size, args.batch_size, 0, device), args.eval_iters)
    print(f"checkpoint {path}: reloaded validation loss {reloaded:.4f} "
          f"({'matches' if abs(reloaded - val) < 1e-4 else 'DIFFERS'})")

    if args.sample_chars:
        torch.manual_seed(args.seed)
        context = torch.from_numpy(vocab.encode("\n")[None, :]).to(device)
        out = sample(fresh, context, args.sample_chars, args.temperature, args.top_k, args.block_size)
        print("---- sample ----")
        print(vocab.decode(out[0].tolist()[1:]))
    return val


if __name__ == "__main__":
    main()

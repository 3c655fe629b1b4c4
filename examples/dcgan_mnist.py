"""The vision GAN job: a small DCGAN learns to draw MNIST digits, with a compiled discriminator step and a compiled
generator step over the same modules.

    python examples/dcgan_mnist.py [--epochs 10] [--width 32] [--nz 64] [--limit N] [--device cpu|cuda] [--out DIR]

The generator maps noise (nz, 1, 1) through ConvTranspose2d + BatchNorm2d + ReLU to 7x7 and 14x14, then to a
28x28 Tanh image; the discriminator mirrors it with Conv2d + BatchNorm2d + LeakyReLU(0.2) and returns a logit
(BCEWithLogitsLoss). Two Adam optimizers (lr 2e-4, betas (0.5, 0.999)) as in the DCGAN paper; the discriminator
step sees the generator's samples through detach(). Trains on the MNIST split graphnet ships (10,000 digits);
after every epoch it writes a grid of 64 digits drawn from fixed noise (epoch_NNN.png, save_image) and a checkpoint
(dcgan.pth, both networks and optimizers), into --out.
"""
import argparse
import os
import sys
import time

from tqdm import tqdm

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import graphnet as torch  # noqa: E402
import graphnet.nn as nn  # noqa: E402
from graphnet.data import DataLoader, TensorDataset  # noqa: E402
from graphnet.data.datasets import mnist_split  # noqa: E402
from graphnet.data.utils import save_image  # noqa: E402


def generator(nz, width):
    """(N, nz, 1, 1) noise -> (N, 1, 28, 28) images in [-1, 1]."""
    return nn.Sequential(
        nn.ConvTranspose2d(nz, 2 * width, 7, bias=False), nn.BatchNorm2d(2 * width), nn.ReLU(),  # 7x7
        nn.ConvTranspose2d(2 * width, width, 4, 2, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(),  # 14x14
        nn.ConvTranspose2d(width, 1, 4, 2, 1), nn.Tanh())  # 28x28


def discriminator(width):
    """(N, 1, 28, 28) images -> (N,) logits of 'real'."""
    return nn.Sequential(
        nn.Conv2d(1, width, 4, 2, 1), nn.LeakyReLU(0.2),  # 14x14
        nn.Conv2d(width, 2 * width, 4, 2, 1, bias=False), nn.BatchNorm2d(2 * width), nn.LeakyReLU(0.2),  # 7x7
        nn.Conv2d(2 * width, 1, 7), nn.Flatten(0))


def init_weights(m):
    """The DCGAN paper's init: conv weights N(0, 0.02), BatchNorm scales N(1, 0.02) and zero shifts."""
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(m.weight, 0.0, 0.02)
    elif isinstance(m, nn.BatchNorm2d):
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)


def make_steps(gen, disc, opt_g, opt_d):
    """(discriminator step, generator step): each (real, noise) -> its loss; both train on the shared modules."""
    criterion = nn.BCEWithLogitsLoss()

    def d_step(real, z):
        opt_d.zero_grad()
        fake = gen(z).detach()  # the generator gets no gradient from the discriminator's loss
        real_logits, fake_logits = disc(real), disc(fake)
        loss = criterion(real_logits, torch.ones_like(real_logits)) + criterion(fake_logits,
                                                                                 torch.zeros_like(fake_logits))
        loss.backward()
        opt_d.step()
        return loss

    def g_step(z):
        opt_g.zero_grad()
        logits = disc(gen(z))
        loss = criterion(logits, torch.ones_like(logits))  # the generator wants its samples called real
        loss.backward()
        opt_g.step()
        return loss

    return d_step, g_step


def samples(gen, noise, path):
    """A grid of the generator's digits for fixed noise, in eval mode (BatchNorm's running statistics)."""
    gen.eval()
    with torch.no_grad():
        images = gen(noise).cpu()
    gen.train()
    save_image(images, path, nrow=8, normalize=True, value_range=(-1.0, 1.0))
    return path


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--width", type=int, default=32, help="the discriminator's first and generator's last width")
    parser.add_argument("--nz", type=int, default=64, help="noise size")
    parser.add_argument("--lr", type=float, default=2e-4)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--compile", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--limit", type=int, help="train on the first N digits only (smoke runs)")
    parser.add_argument("--out", default=os.path.join("runs", "dcgan"), help="where the PNGs and checkpoint go")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    torch.manual_seed(args.seed)
    device = torch.device(args.device)

    train, _ = mnist_split(as_tensors=True)
    images = train.tensors[0][:args.limit] if args.limit else train.tensors[0]
    loader = DataLoader(TensorDataset(images * 2 - 1), batch_size=args.batch_size, shuffle=True, drop_last=True)
    gen, disc = generator(args.nz, args.width).to(device), discriminator(args.width).to(device)
    gen.apply(init_weights)
    disc.apply(init_weights)
    opt_g = torch.optim.Adam(gen.parameters(), lr=args.lr, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(disc.parameters(), lr=args.lr, betas=(0.5, 0.999))
    d_step, g_step = make_steps(gen, disc, opt_g, opt_d)
    if args.compile:
        d_step, g_step = torch.compile(d_step), torch.compile(g_step)
    fixed_noise = torch.randn(64, args.nz, 1, 1, device=device)
    print(f"DCGAN on {len(images):,} digits, width {args.width}, nz {args.nz}, {args.device}, "
          f"{'compiled' if args.compile else 'eager'}, {args.epochs} epochs")

    for epoch in range(1, args.epochs + 1):
        bar = tqdm(loader, desc=f"epoch {epoch}/{args.epochs}", unit="batch", leave=True, file=sys.stdout)
        t0 = time.perf_counter()
        for i, (real,) in enumerate(bar):
            real = real.to(device)
            loss_d = d_step(real, torch.randn(args.batch_size, args.nz, 1, 1, device=device))
            loss_g = g_step(torch.randn(args.batch_size, args.nz, 1, 1, device=device))
            if i % 10 == 0:
                bar.set_postfix(loss_d=f"{loss_d.item():.3f}", loss_g=f"{loss_g.item():.3f}")
        seconds = time.perf_counter() - t0
        path = samples(gen, fixed_noise, os.path.join(args.out, f"epoch_{epoch:03d}.png"))
        checkpoint = os.path.join(args.out, "dcgan.pth")
        torch.save({"generator": gen.state_dict(), "discriminator": disc.state_dict(), "opt_g": opt_g.state_dict(),
                    "opt_d": opt_d.state_dict(), "epoch": epoch, "args": vars(args)}, checkpoint)
        print(f"epoch {epoch}: {seconds:.1f} s, loss_d {loss_d.item():.3f}, loss_g {loss_g.item():.3f}; wrote {path}, "
              f"{checkpoint}")

    fresh = generator(args.nz, args.width).to(device)
    fresh.load_state_dict(torch.load(checkpoint)["generator"])
    fresh.eval()
    gen.eval()
    with torch.no_grad():
        same = bool((fresh(fixed_noise) == gen(fixed_noise)).all())
    print(f"checkpoint {checkpoint}: reloaded generator {'matches' if same else 'DIFFERS'}")
    return path


if __name__ == "__main__":
    main()

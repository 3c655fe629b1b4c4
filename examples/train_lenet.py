"""The main job: train the tutorial LeNet on real MNIST digits, compiled, and show the whole product.

    python examples/train_lenet.py [--epochs 10] [--device cpu|cuda] [--no-compile] [--data DIR] [--out DIR]
                                   [--limit N]

Trains on the fixed split shipped with graphnet (10,000 training images; the harder 5,000 of the official test
set for testing) or on a full MNIST folder (--data), with a progress bar per epoch; reports test accuracy and
images/s; saves a checkpoint, reloads it into a fresh model and checks the accuracy again; draws the autograd
graph (lenet_autograd.pdf) and the compiled, fused IR graph (lenet_fused.pdf).
"""
import argparse
import os
import sys
import time

from tqdm import tqdm

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import graphnet as torch  # noqa: E402
import graphnet.nn.functional as F  # noqa: E402
from examples.lenet import LeNet  # noqa: E402
from graphnet.data import DataLoader, TensorDataset  # noqa: E402
from graphnet.data.datasets import MNIST, mnist_split  # noqa: E402


def load_data(root):
    """(train, test) TensorDatasets of 1x32x32 float images in [0, 1] (28x28 padded by 2) and int64 labels."""
    if root:
        train, test = (MNIST(root, train=flag) for flag in (True, False))
        train, test = (TensorDataset(d.data.float().unsqueeze(1) / 255.0, d.targets) for d in (train, test))
    else:
        train, test = mnist_split(as_tensors=True)
    pad = lambda ds: TensorDataset(F.pad(ds.tensors[0], (2, 2, 2, 2)), ds.tensors[1])  # noqa: E731
    return pad(train), pad(test)


def evaluate(model, dataset, device, batch_size=500):
    model.eval()
    correct = 0
    with torch.no_grad():
        for x, y in DataLoader(dataset, batch_size=batch_size):
            correct += (model(x.to(device)).argmax(1) == y.to(device)).sum().item()
    model.train()
    return correct / len(dataset)


def train(model, step, loader, epochs, device, writer):
    images, seconds = 0, 0.0
    for epoch in range(1, epochs + 1):
        bar = tqdm(loader, desc=f"epoch {epoch}/{epochs}", unit="batch", leave=True, file=sys.stdout)
        t0 = time.perf_counter()
        for i, (x, y) in enumerate(bar):
            loss = step(x.to(device), y.to(device))
            if i % 10 == 0:
                rate = (i + 1) * loader.batch_size / (time.perf_counter() - t0)
                bar.set_postfix(loss=f"{loss.item():.4f}", img_s=f"{rate:,.0f}")
            if writer is not None:
                writer.add_scalar("train/loss", loss.item(), (epoch - 1) * len(loader) + i)
        seconds += time.perf_counter() - t0
        images += len(loader.dataset)
    return images / seconds


def make_writer(out):
    try:
        from graphnet.utils.tensorboard import SummaryWriter

        return SummaryWriter(os.path.join(out, "runs", "lenet"))
    except ImportError:
        return None


def draw(model, x, y, out, name="lenet"):
    """<name>_autograd.pdf (make_dot of one eager loss) and <name>_fused.pdf (the compiled forward after fusion)."""
    from graphnet.viz import draw_graph, make_dot, render

    loss = F.cross_entropy(model(x), y)
    written = [render(make_dot(loss, params=dict(model.named_parameters())), os.path.join(out, f"{name}_autograd"))]
    compiled = torch.compile(model.eval())
    with torch.no_grad():
        compiled(x)
    model.train()
    written.append(render(draw_graph(compiled, stage="optimized"), os.path.join(out, f"{name}_fused")))
    return written


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--compile", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--data", help="a folder with the full MNIST IDX files (default: the split graphnet ships)")
    parser.add_argument("--out", default=".", help="where the checkpoint, PDFs and TensorBoard logs go")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit", type=int, help="use only the first N training and N test digits (smoke runs)")
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    torch.manual_seed(args.seed)
    device = torch.device(args.device)

    train_set, test_set = load_data(args.data)
    if args.limit:
        train_set, test_set = (TensorDataset(*(t[:args.limit] for t in ds.tensors)) for ds in (train_set, test_set))
    loader = DataLoader(train_set, batch_size=args.batch_size, shuffle=True, drop_last=True)
    model = LeNet().to(device)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)

    def step(x, y):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss

    cstep = torch.compile(step) if args.compile else None
    print(f"LeNet on {len(train_set):,} training / {len(test_set):,} test digits, {args.device}, "
          f"{'compiled' if args.compile else 'eager'}, {args.epochs} epochs")
    writer = make_writer(args.out)
    rate = train(model, cstep or step, loader, args.epochs, device, writer)
    accuracy = evaluate(model, test_set, device)
    print(f"test accuracy {accuracy:.2%}, training throughput {rate:,.0f} images/s")
    if writer is not None:
        writer.add_scalar("test/accuracy", accuracy, args.epochs)
        writer.close()

    path = os.path.join(args.out, "lenet.pth")
    torch.save(model.state_dict(), path)
    fresh = LeNet().to(device)
    fresh.load_state_dict(torch.load(path))
    reloaded = evaluate(fresh, test_set, device)
    print(f"checkpoint {path}: reloaded accuracy {reloaded:.2%} ({'matches' if reloaded == accuracy else 'DIFFERS'})")

    x, y = next(iter(DataLoader(test_set, batch_size=args.batch_size)))
    for pdf in draw(model, x.to(device), y.to(device), args.out):
        print(f"wrote {pdf}")
    return accuracy


if __name__ == "__main__":
    main()

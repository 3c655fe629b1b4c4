"""Train a ResNet-20 on real MNIST digits, compiled: random-crop augmentation, SGD with Nesterov momentum and
weight decay, a one-cycle learning rate.

    python examples/train_resnet.py [--epochs 12] [--batch-size 64] [--no-compile] [--data DIR] [--out DIR]
                                    [--limit N] [--width 16] [--blocks 3]

The digits are graphnet's fixed split (10,000 training images; the harder 5,000 of the official test set for
testing) padded to 1x32x32. Each batch is shifted by up to 2 pixels, every image by its own random offset
(transforms.random_crop_batch). Reports test accuracy and images/s, saves a checkpoint (resnet20.pth), reloads it
and checks the accuracy again, and draws the compiled, fused forward graph (resnet20_fused.pdf). --width and
--blocks shrink the net for smoke runs (--blocks 1 is a ResNet-8).
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import graphnet as torch  # noqa: E402
import graphnet.nn.functional as F  # noqa: E402
from examples.resnet import ResNet20  # noqa: E402
from examples.train_lenet import draw, evaluate, load_data, train  # noqa: E402
from graphnet.data import DataLoader, TensorDataset  # noqa: E402
from graphnet.data.transforms import random_crop_batch  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=0.1, help="the one-cycle schedule's peak learning rate")
    parser.add_argument("--shift", type=int, default=2, help="random-crop padding: the largest shift in pixels")
    parser.add_argument("--compile", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--data", help="a folder with the full MNIST IDX files (default: the split graphnet ships)")
    parser.add_argument("--out", default=".", help="where the checkpoint and the PDF go")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit", type=int, help="use only the first N training and N test digits (smoke runs)")
    parser.add_argument("--width", type=int, default=16, help="the first stage's channels (doubled per stage)")
    parser.add_argument("--blocks", type=int, default=3, help="BasicBlocks per stage")
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    torch.manual_seed(args.seed)

    train_set, test_set = load_data(args.data)
    if args.limit:
        train_set, test_set = (TensorDataset(*(t[:args.limit] for t in ds.tensors)) for ds in (train_set, test_set))
    loader = DataLoader(train_set, batch_size=args.batch_size, shuffle=True, drop_last=True)
    net = lambda: ResNet20(in_channels=1, widths=(args.width, 2 * args.width, 4 * args.width), blocks=args.blocks)  # noqa: E731
    model = net()
    opt = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9, nesterov=True, weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, epochs=args.epochs, steps_per_epoch=len(loader),
                                                cycle_momentum=False)

    def step(x, y):
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss

    compiled = torch.compile(step) if args.compile else step

    def augmented_step(x, y):
        loss = compiled(random_crop_batch(x, 32, padding=args.shift) if args.shift else x, y)
        sched.step()
        return loss

    print(f"ResNet-{6 * args.blocks + 2} on {len(train_set):,} training / {len(test_set):,} test digits, "
          f"{'compiled' if args.compile else 'eager'}, {args.epochs} epochs")
    rate = train(model, augmented_step, loader, args.epochs, torch.device("cpu"), None)
    accuracy = evaluate(model, test_set, torch.device("cpu"))
    print(f"test accuracy {accuracy:.2%}, training throughput {rate:,.0f} images/s")

    path = os.path.join(args.out, "resnet20.pth")
    torch.save(model.state_dict(), path)
    fresh = net()
    fresh.load_state_dict(torch.load(path))
    reloaded = evaluate(fresh, test_set, torch.device("cpu"))
    print(f"checkpoint {path}: reloaded accuracy {reloaded:.2%} ({'matches' if reloaded == accuracy else 'DIFFERS'})")

    x, y = next(iter(DataLoader(test_set, batch_size=args.batch_size)))
    for pdf in draw(model, x, y, args.out, name="resnet20"):
        print(f"wrote {pdf}")
    return accuracy


if __name__ == "__main__":
    main()

"""The data-parallel job: the LeNet of train_lenet.py (or the char GPT of train_charlm.py) on several MPI ranks.

    python -m graphnet.distributed.run --nproc-per-node 2 examples/train_ddp.py [--epochs 10] [--limit N]
    python -m graphnet.distributed.run --nproc-per-node 2 examples/train_ddp.py --model gpt [--iters 500]
    ... examples/train_ddp.py --compile      # the training step as one graphnet.compile'd call per rank

LeNet: each rank reads its shard of the MNIST split (DistributedSampler), gradients are averaged over the ranks in
buckets during backward, and rank 0 evaluates, prints throughput per rank and in total, and saves the checkpoint
(atomically); every rank then loads it and checks it holds the trained weights. GPT: each rank draws its own random
windows of tiny Shakespeare (seed + rank), trains with AdamW and gradient clipping, and the ranks compare their
final parameters. With --compile the step is graphnet.compile'd: the gradient average is an all_reduce node of each
rank's Program.
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import graphnet as torch  # noqa: E402
import graphnet.distributed as dist  # noqa: E402
import graphnet.nn.functional as F  # noqa: E402
from examples.charlm import GPT, GPTConfig, lm_loss  # noqa: E402
from examples.lenet import LeNet  # noqa: E402
from examples.train_charlm import Batches, make_optimizer  # noqa: E402
from examples.train_lenet import evaluate, load_data  # noqa: E402
from graphnet.data import DataLoader, TensorDataset  # noqa: E402
from graphnet.data.text import shakespeare_split  # noqa: E402
from graphnet.nn.parallel import DistributedDataParallel  # noqa: E402
from graphnet.utils.data import DistributedSampler  # noqa: E402


def train_lenet(args, rank, world):
    train_set, test_set = load_data(None)
    if args.limit:
        train_set, test_set = (TensorDataset(*(t[:args.limit] for t in ds.tensors)) for ds in (train_set, test_set))
    sampler = DistributedSampler(train_set, shuffle=True, seed=args.seed, drop_last=True)
    batch = args.batch_size or 64
    loader = DataLoader(train_set, batch_size=batch, sampler=sampler, drop_last=True)
    model = DistributedDataParallel(LeNet())
    opt = torch.optim.Adam(model.parameters(), lr=args.lr or 1e-3)
    if rank == 0:
        print(f"LeNet on {world} ranks: {len(sampler):,} of {len(train_set):,} training digits per rank, batch "
              f"{batch} per rank, {args.epochs} epochs, {'compiled' if args.compile else 'eager'}", flush=True)

    def step(x, y):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss

    step = torch.compile(step) if args.compile else step
    images, seconds = 0, 0.0
    for epoch in range(args.epochs):
        sampler.set_epoch(epoch)
        dist.barrier()
        t0 = time.perf_counter()
        for x, y in loader:
            loss = step(x, y)
            images += x.shape[0]
        seconds += time.perf_counter() - t0
        if rank == 0:
            print(f"epoch {epoch + 1}: loss {loss.item():.4f}", flush=True)
    rate = torch.tensor([images / seconds])
    dist.all_reduce(rate)
    path = os.path.join(args.out, "lenet_ddp.pth")
    if rank == 0:
        accuracy = evaluate(model.module, test_set, torch.device("cpu"))
        print(f"test accuracy {accuracy:.2%}; throughput {images / seconds:,.0f} images/s on rank 0, "
              f"{rate.item():,.0f} images/s in total over {world} ranks", flush=True)
        torch.save(model.module.state_dict(), path)  # rank 0 only; save writes a temp file and renames it
    dist.barrier()
    fresh = LeNet()
    fresh.load_state_dict(torch.load(path))
    same = all(bool((a == b).all()) for a, b in zip(fresh.state_dict().values(), model.module.state_dict().values()))
    print(f"rank {rank}: checkpoint {path} {'holds the trained weights' if same else 'DIFFERS'}", flush=True)


def train_gpt(args, rank, world):
    train_ids, _, vocab = shakespeare_split()
    batch = args.batch_size or 12
    model = DistributedDataParallel(GPT(GPTConfig(len(vocab), args.block_size, args.n_layer, args.n_head,
                                                  args.n_embd)))
    args.weight_decay = 0.1
    args.lr = args.lr or 1e-3
    opt = make_optimizer(model.module, args)
    batches = Batches(train_ids, args.block_size, batch, args.seed + rank, torch.device("cpu"))
    if rank == 0:
        n_params = sum(p.numel() for p in model.parameters())
        print(f"GPT ({n_params / 1e6:.2f}M parameters) on {world} ranks: batch {batch} x {args.block_size} "
              f"characters per rank, {args.iters} iterations, {'compiled' if args.compile else 'eager'}", flush=True)

    def step(x, y):
        loss = lm_loss(model(x), y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss

    step = torch.compile(step) if args.compile else step
    losses, t0 = [], time.perf_counter()
    for _ in range(args.iters):
        losses.append(step(*batches()).item())
    rate = torch.tensor([args.iters * batch * args.block_size / (time.perf_counter() - t0)])
    dist.all_reduce(rate)
    mean = torch.tensor([sum(losses[:5]) / len(losses[:5]), sum(losses[-5:]) / len(losses[-5:])])
    dist.all_reduce(mean, op=dist.ReduceOp.AVG)
    flat = torch.cat([p.detach().reshape(-1) for p in model.module.parameters()])
    everyone = [torch.zeros_like(flat) for _ in range(world)]
    dist.all_gather(everyone, flat)
    if rank == 0:
        spread = max((t - everyone[0]).abs().max().item() for t in everyone)
        print(f"loss (mean over ranks) {mean[0].item():.4f} over the first 5 iterations, {mean[1].item():.4f} over "
              f"the last 5; ranks' parameters differ by at most {spread:.3g}; {rate.item():,.0f} characters/s in "
              f"total over {world} ranks", flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="lenet", choices=["lenet", "gpt"])
    parser.add_argument("--epochs", type=int, default=10, help="LeNet")
    parser.add_argument("--iters", type=int, default=500, help="GPT")
    parser.add_argument("--batch-size", type=int, help="per rank (LeNet 64, GPT 12)")
    parser.add_argument("--lr", type=float, help="LeNet 1e-3 (Adam), GPT 1e-3 (AdamW)")
    parser.add_argument("--limit", type=int, help="LeNet: only the first N training and N test digits (smoke runs)")
    parser.add_argument("--block-size", type=int, default=64)
    parser.add_argument("--n-layer", type=int, default=4)
    parser.add_argument("--n-head", type=int, default=4)
    parser.add_argument("--n-embd", type=int, default=128)
    parser.add_argument("--compile", action="store_true", help="graphnet.compile the training step")
    parser.add_argument("--out", default=".")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    dist.init_process_group(backend="mpi")
    torch.manual_seed(args.seed)
    (train_gpt if args.model == "gpt" else train_lenet)(args, dist.get_rank(), dist.get_world_size())
    dist.destroy_process_group()


if __name__ == "__main__":
    main()

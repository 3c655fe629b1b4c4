"""The data-parallel job: the LeNet of train_lenet.py trained on several MPI ranks with DistributedDataParallel.

    python -m graphnet.distributed.run --nproc-per-node 2 examples/train_ddp.py [--epochs 10] [--limit N]

Each rank reads its shard of the MNIST split (DistributedSampler), gradients are averaged over the ranks in
buckets during backward, and rank 0 evaluates, prints throughput per rank and in total, and saves the checkpoint
(atomically); every rank then loads it and checks it holds the trained weights. The step runs eagerly: a compiled
step does not all-reduce yet.
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import graphnet as torch  # noqa: E402
import graphnet.distributed as dist  # noqa: E402
import graphnet.nn.functional as F  # noqa: E402
from examples.lenet import LeNet  # noqa: E402
from examples.train_lenet import evaluate, load_data  # noqa: E402
from graphnet.data import DataLoader, TensorDataset  # noqa: E402
from graphnet.nn.parallel import DistributedDataParallel  # noqa: E402
from graphnet.utils.data import DistributedSampler  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=64, help="per rank")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--limit", type=int, help="use only the first N training and N test digits (smoke runs)")
    parser.add_argument("--out", default=".")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    dist.init_process_group(backend="mpi")
    rank, world = dist.get_rank(), dist.get_world_size()
    torch.manual_seed(args.seed)
    train_set, test_set = load_data(None)
    if args.limit:
        train_set, test_set = (TensorDataset(*(t[:args.limit] for t in ds.tensors)) for ds in (train_set, test_set))
    sampler = DistributedSampler(train_set, shuffle=True, seed=args.seed, drop_last=True)
    loader = DataLoader(train_set, batch_size=args.batch_size, sampler=sampler, drop_last=True)
    model = DistributedDataParallel(LeNet())
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    if rank == 0:
        print(f"LeNet on {world} ranks: {len(sampler):,} of {len(train_set):,} training digits per rank, batch "
              f"{args.batch_size} per rank, {args.epochs} epochs", flush=True)
    images, seconds = 0, 0.0
    for epoch in range(args.epochs):
        sampler.set_epoch(epoch)
        dist.barrier()
        t0 = time.perf_counter()
        for x, y in loader:
            opt.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
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
    dist.destroy_process_group()


if __name__ == "__main__":
    main()

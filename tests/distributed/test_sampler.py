"""DistributedSampler: torch's split (padding, drop_last, striding), a shuffle shared by the ranks, set_epoch."""
import pytest

from graphnet.utils.data import DistributedSampler
from graphnet.utils.data.distributed import DistributedSampler as FromSubmodule


@pytest.mark.parametrize("n", [1, 5, 10, 11])
@pytest.mark.parametrize("replicas", [1, 2, 3, 4])
@pytest.mark.parametrize("drop_last", [False, True])
def test_split_equals_torchs(n, replicas, drop_last):
    torch_data = pytest.importorskip("torch.utils.data")
    for rank in range(replicas):
        ours = DistributedSampler(range(n), replicas, rank, shuffle=False, drop_last=drop_last)
        theirs = torch_data.DistributedSampler(range(n), replicas, rank, shuffle=False, drop_last=drop_last)
        assert list(ours) == list(theirs) and len(ours) == len(theirs)


def test_shuffled_shares_cover_the_dataset_and_change_with_the_epoch():
    shares = [DistributedSampler(range(10), 2, r, seed=3) for r in range(2)]
    first = [list(s) for s in shares]
    assert sorted(first[0] + first[1]) == list(range(10))
    assert first == [list(s) for s in shares]
    for s in shares:
        s.set_epoch(1)
    assert [list(s) for s in shares] != first
    assert FromSubmodule is DistributedSampler


def test_invalid_rank():
    with pytest.raises(ValueError, match=r"Invalid rank 2, rank should be in the interval \[0, 1\]"):
        DistributedSampler(range(4), num_replicas=2, rank=2)


def test_defaults_come_from_the_process_group(ranks):
    _, output, _ = ranks("""
        import graphnet.distributed as dist
        from graphnet.utils.data import DistributedSampler
        dist.init_process_group()
        print("share", dist.get_rank(), list(DistributedSampler(range(5), shuffle=False)))
    """)
    assert "share 0 [0, 2, 4]" in output and "share 1 [1, 3, 0]" in output

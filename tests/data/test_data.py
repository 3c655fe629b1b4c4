"""graphnet.data: datasets, samplers, DataLoader (batching, shuffling, collate, workers); transforms are in
test_transforms.py."""
import collections
import contextlib
import os
import pickle
import signal
import time

import numpy as np
import pytest

import graphnet
from graphnet.data import (
    BatchSampler,
    ConcatDataset,
    DataLoader,
    Dataset,
    RandomSampler,
    SequentialSampler,
    Subset,
    SubsetRandomSampler,
    TensorDataset,
    WeightedRandomSampler,
    default_collate,
    get_worker_info,
    random_split,
)
from graphnet.data.dataloader import _Fetcher


def _xy(n=10):
    x = graphnet.from_numpy(np.arange(n * 3, dtype=np.float32).reshape(n, 3))
    y = graphnet.from_numpy(np.arange(n, dtype=np.int64) % 3)
    return x, y


def _batches(loader):
    """Each batch as a tuple of nested Python lists (comparable with ==)."""
    return [tuple(part.tolist() for part in batch) for batch in loader]


# ---- datasets ---------------------------------------------------------------------------------------------------
def test_tensor_dataset_items_and_len():
    x, y = _xy()
    ds = TensorDataset(x, y)
    assert len(ds) == 10
    xi, yi = ds[4]
    assert xi.tolist() == [12.0, 13.0, 14.0] and yi.item() == 1


def test_tensor_dataset_errors():
    with pytest.raises(ValueError, match="Size mismatch between tensors.*\\(10, 3\\), \\(9,\\)"):
        TensorDataset(graphnet.zeros(10, 3), graphnet.zeros(9))
    with pytest.raises(TypeError, match="TensorDataset expects tensors, got ndarray"):
        TensorDataset(np.zeros(3))


def test_subset_and_concat():
    x, y = _xy()
    ds = TensorDataset(x, y)
    sub = Subset(ds, [7, 2])
    assert len(sub) == 2 and sub[0][1].item() == 1 and sub[1][0].tolist() == [6.0, 7.0, 8.0]
    cat = ConcatDataset([sub, ds])
    assert len(cat) == 12 and cat[2][0].tolist() == [0.0, 1.0, 2.0] and cat[-1][1].item() == 0
    assert len(sub + ds) == 12
    with pytest.raises(IndexError, match="out of range"):
        cat[12]


def test_random_split_lengths_and_fractions():
    ds = TensorDataset(*_xy(11))
    a, b = random_split(ds, [4, 7], generator=graphnet.Generator().manual_seed(0))
    assert (len(a), len(b)) == (4, 7)
    assert sorted(a.indices + b.indices) == list(range(11))
    parts = random_split(ds, [0.5, 0.3, 0.2])
    assert [len(p) for p in parts] == [6, 3, 2]  # floor(5.5, 3.3, 2.2) = 10; the remainder goes to the first
    assert sorted(i for p in parts for i in p.indices) == list(range(11))
    with pytest.raises(ValueError, match="Sum of input lengths \\(10\\) does not equal the length of the input "
                                         "dataset \\(11\\)"):
        random_split(ds, [5, 5])


def test_random_split_reproducible():
    ds = TensorDataset(*_xy(20))
    first = random_split(ds, [10, 10], generator=graphnet.Generator().manual_seed(3))[0].indices
    again = random_split(ds, [10, 10], generator=graphnet.Generator().manual_seed(3))[0].indices
    other = random_split(ds, [10, 10], generator=graphnet.Generator().manual_seed(4))[0].indices
    assert first == again and first != other


# ---- samplers ---------------------------------------------------------------------------------------------------
def test_samplers():
    data = list(range(7))
    assert list(SequentialSampler(data)) == data
    perm = list(RandomSampler(data))
    assert sorted(perm) == data and len(RandomSampler(data)) == 7
    long = list(RandomSampler(data, num_samples=16))
    assert len(long) == 16 and sorted(long[:7]) == data and sorted(long[7:14]) == data
    assert all(0 <= i < 7 for i in RandomSampler(data, replacement=True, num_samples=30))
    assert sorted(SubsetRandomSampler([5, 1, 3])) == [1, 3, 5]
    picks = list(WeightedRandomSampler([0.0, 1.0, 0.0, 2.0], 50))
    assert set(picks) <= {1, 3} and len(picks) == 50
    assert list(BatchSampler(SequentialSampler(data), 3, False)) == [[0, 1, 2], [3, 4, 5], [6]]
    assert list(BatchSampler(SequentialSampler(data), 3, True)) == [[0, 1, 2], [3, 4, 5]]
    assert len(BatchSampler(data, 3, False)) == 3 and len(BatchSampler(data, 3, True)) == 2


def test_sampler_errors():
    with pytest.raises(ValueError, match="batch_size should be a positive integer value, but got batch_size=0"):
        BatchSampler(range(3), 0, False)
    with pytest.raises(ValueError, match="num_samples should be a positive integer"):
        RandomSampler([], num_samples=None)
    with pytest.raises(ValueError, match="weights should be a 1-d sequence of non-negative numbers"):
        WeightedRandomSampler([-1.0, 2.0], 3)


# ---- DataLoader -------------------------------------------------------------------------------------------------
def test_batching_len_and_drop_last():
    x, y = _xy(10)
    loader = DataLoader(TensorDataset(x, y), batch_size=4)
    batches = list(loader)
    assert len(loader) == 3 and [tuple(b[0].shape) for b in batches] == [(4, 3), (4, 3), (2, 3)]
    assert batches[1][0].tolist() == x.numpy()[4:8].tolist() and batches[2][1].tolist() == y.numpy()[8:].tolist()
    dropped = DataLoader(TensorDataset(x, y), batch_size=4, drop_last=True)
    assert len(dropped) == 2 and len(list(dropped)) == 2


def test_shuffle_reproducible_with_seed_and_generator():
    ds = TensorDataset(*_xy(30))
    graphnet.manual_seed(1)
    a = _batches(DataLoader(ds, batch_size=8, shuffle=True))
    graphnet.manual_seed(1)
    b = _batches(DataLoader(ds, batch_size=8, shuffle=True))
    c = _batches(DataLoader(ds, batch_size=8, shuffle=True))
    assert a == b and a != c
    assert sorted(v for batch in a for v in batch[1]) == sorted(np.arange(30) % 3)
    g1 = _batches(DataLoader(ds, batch_size=8, shuffle=True, generator=graphnet.Generator().manual_seed(9)))
    g2 = _batches(DataLoader(ds, batch_size=8, shuffle=True, generator=graphnet.Generator().manual_seed(9)))
    assert g1 == g2


def test_epochs_reshuffle():
    loader = DataLoader(TensorDataset(*_xy(30)), batch_size=30, shuffle=True)
    assert _batches(loader) != _batches(loader)


class _Records(Dataset):
    """Samples mixing every type default_collate handles."""

    Point = collections.namedtuple("Point", "x y")

    def __len__(self):
        return 5

    def __getitem__(self, i):
        return {"t": graphnet.full((2,), float(i)), "pair": (i, i / 2), "name": f"s{i}", "flag": i % 2 == 0,
                "arr": np.full((3,), i, dtype=np.int32), "pt": self.Point(i, [i, -i]), "np": np.float64(i)}


def test_default_collate_nested_structures():
    batch = next(iter(DataLoader(_Records(), batch_size=3)))
    assert batch["t"].tolist() == [[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]]
    ints, halves = batch["pair"]
    assert ints.dtype is graphnet.int64 and ints.tolist() == [0, 1, 2]
    assert halves.dtype is graphnet.float64 and halves.tolist() == [0.0, 0.5, 1.0]
    assert batch["name"] == ["s0", "s1", "s2"]
    assert batch["flag"].dtype is graphnet.bool and batch["flag"].tolist() == [True, False, True]
    assert batch["arr"].dtype is graphnet.int32 and tuple(batch["arr"].shape) == (3, 3)
    assert isinstance(batch["pt"], _Records.Point) and batch["pt"].x.tolist() == [0, 1, 2]
    assert [v.tolist() for v in batch["pt"].y] == [[0, 1, 2], [0, -1, -2]]
    assert batch["np"].dtype is graphnet.float64 and batch["np"].tolist() == [0.0, 1.0, 2.0]


def test_default_collate_errors():
    with pytest.raises(RuntimeError, match="stack expects each tensor to be equal size, but got \\[2\\] at entry 0 "
                                           "and \\[3\\] at entry 1"):
        default_collate([graphnet.zeros(2), graphnet.zeros(3)])
    with pytest.raises(RuntimeError, match="each element in list of batch should be of equal size"):
        default_collate([[1, 2], [1]])
    with pytest.raises(TypeError, match="default_collate: batch must contain tensors.*found <class 'object'>"):
        default_collate([object()])


def test_batch_size_none_converts_without_batching():
    ds = _Records()
    items = list(DataLoader(ds, batch_size=None))
    assert len(items) == 5 and isinstance(items[2]["arr"], graphnet.Tensor) and items[2]["arr"].tolist() == [2, 2, 2]
    assert items[2]["pair"] == [2, 1.0]


def test_custom_collate_and_fast_path_agree():
    ds = TensorDataset(*_xy(13))
    fast = _batches(DataLoader(ds, batch_size=5, shuffle=True, generator=graphnet.Generator().manual_seed(2)))
    slow = _batches(DataLoader(ds, batch_size=5, shuffle=True, generator=graphnet.Generator().manual_seed(2),
                               collate_fn=lambda b: default_collate(b)))
    assert fast == slow
    sub = Subset(ds, [12, 0, 5])
    assert _batches(DataLoader(sub, batch_size=2)) == _batches(DataLoader(sub, batch_size=2,
                                                                          collate_fn=lambda b: default_collate(b)))
    assert _Fetcher(sub, True, default_collate).fast and not _Fetcher(sub, True, list).fast
    assert not _Fetcher(Subset(_Records(), [0]), True, default_collate).fast


def test_loader_argument_errors():
    ds = TensorDataset(*_xy())
    with pytest.raises(ValueError, match="sampler option is mutually exclusive with shuffle"):
        DataLoader(ds, sampler=SequentialSampler(ds), shuffle=True)
    with pytest.raises(ValueError, match="batch_sampler option is mutually exclusive"):
        DataLoader(ds, batch_sampler=BatchSampler(range(10), 2, False), batch_size=4)
    with pytest.raises(ValueError, match="num_workers option should be non-negative"):
        DataLoader(ds, num_workers=-1)
    with pytest.raises(ValueError, match="persistent_workers option needs num_workers > 0"):
        DataLoader(ds, persistent_workers=True)
    with pytest.raises(ValueError, match="mutually exclusive with drop_last"):
        DataLoader(ds, batch_size=None, drop_last=True)


def test_pin_memory_and_batch_sampler_accepted():
    ds = TensorDataset(*_xy(6))
    loader = DataLoader(ds, batch_sampler=[[5, 0], [2]], pin_memory=True)
    assert _batches(loader) == [([[15.0, 16.0, 17.0], [0.0, 1.0, 2.0]], [2, 0]), ([[6.0, 7.0, 8.0]], [2])]


# ---- worker processes -------------------------------------------------------------------------------------------
class _Squares(Dataset):
    """A pure-Python dataset (exercises per-item fetching and collate inside the workers)."""

    def __init__(self, n=23, fail_at=None, exit_at=None, sleep=0.0):
        self.n, self.fail_at, self.exit_at, self.sleep = n, fail_at, exit_at, sleep

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        if i == self.fail_at:
            raise ValueError(f"bad index {i}")
        if i == self.exit_at:
            os._exit(3)
        time.sleep(self.sleep)
        info = get_worker_info()
        return graphnet.tensor([float(i), float(i * i)]), (-1 if info is None else info.id)


def test_workers_match_single_process():
    for ds in (_Squares(), TensorDataset(*_xy(23))):
        graphnet.manual_seed(5)
        serial = [b[0].tolist() for b in DataLoader(ds, batch_size=4, shuffle=True)]
        graphnet.manual_seed(5)
        parallel = [b[0].tolist() for b in DataLoader(ds, batch_size=4, shuffle=True, num_workers=2, timeout=30)]
        assert parallel == serial


def test_worker_info_and_init_fn():
    seen = DataLoader(_Squares(8), batch_size=2, num_workers=2, worker_init_fn=lambda wid: None)
    ids = [b[1].tolist() for b in seen]
    assert ids == [[0, 0], [1, 1], [0, 0], [1, 1]]  # batches go round-robin to the two workers
    assert get_worker_info() is None


def test_worker_error_reraised_with_traceback():
    loader = DataLoader(_Squares(fail_at=9), batch_size=4, num_workers=2)
    with pytest.raises(ValueError, match="(?s)Caught ValueError in DataLoader worker process 0.*Traceback.*"
                                         "bad index 9"):
        list(loader)


def test_worker_init_fn_error_reraised():
    def init(wid):
        raise KeyError("no config")

    with pytest.raises(KeyError, match="(?s)Caught KeyError in worker_init_fn.*no config") as err:
        list(DataLoader(_Squares(4), batch_size=2, num_workers=1, worker_init_fn=init))
    assert "\n  File" in str(err.value)  # the traceback prints as text, not as an escaped repr


def test_dead_worker_and_timeout_raise_instead_of_hanging():
    with pytest.raises(RuntimeError, match="DataLoader worker \\(pid\\(s\\) \\d+\\) exited unexpectedly"):
        list(DataLoader(_Squares(8, exit_at=2), batch_size=2, num_workers=1))
    with pytest.raises(RuntimeError, match="DataLoader timed out after 0.3 seconds"):
        list(DataLoader(_Squares(4, sleep=1.0), batch_size=2, num_workers=1, timeout=0.3))


@contextlib.contextmanager
def _hang_guard(seconds=10):
    """Turn a hang inside the block into a TimeoutError after `seconds` (SIGALRM), so the test fails instead."""
    def expire(signum, frame):
        raise TimeoutError(f"still waiting after {seconds} s: the DataLoader hangs")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


class _WithLambda(_Squares):
    """Sample 3 holds a lambda, which the worker cannot pickle to send it back."""

    def __getitem__(self, i):
        x, _ = super().__getitem__(i)
        return (x, lambda: i) if i == 3 else (x, i)


@pytest.mark.parametrize("num_workers", [1, 2])
@pytest.mark.parametrize("batch_size, samples", [(None, "the sample at index 3"),
                                                 (2, "the samples at indices \\[2, 3\\]")])
def test_unpicklable_sample_raises_naming_it(num_workers, batch_size, samples):
    loader = DataLoader(_WithLambda(6), batch_size=batch_size, num_workers=num_workers, collate_fn=list)
    with _hang_guard(), pytest.raises(pickle.PicklingError,
                                      match=f"(?s)Caught PicklingError in DataLoader worker process.*DataLoader "
                                            f"worker \\d: {samples} cannot be sent to the main process: "
                                            "AttributeError: Can't pickle local object.*lambda.*num_workers=0"):
        list(loader)
    with _hang_guard():
        assert len(list(DataLoader(_Squares(8), batch_size=2, num_workers=num_workers))) == 4


def test_worker_exception_of_a_local_class_raises_as_runtime_error():
    class LocalError(Exception):
        """Defined in a function, so it cannot be pickled to the main process."""

    class Failing(_Squares):
        def __getitem__(self, i):
            raise LocalError(f"bad sample {i}")

    with _hang_guard(), pytest.raises(RuntimeError, match="(?s)Caught LocalError in DataLoader worker.*bad sample 0"):
        list(DataLoader(Failing(4), batch_size=2, num_workers=1))


def test_persistent_workers_across_epochs():
    loader = DataLoader(_Squares(9), batch_size=4, num_workers=2, persistent_workers=True)
    first, second = _batches(loader), _batches(loader)
    assert first == second and len(first) == 3
    it = iter(loader)
    next(it)  # abandon an epoch half-way: the next one starts cleanly
    assert _batches(loader) == first
    loader._iterator._shutdown()


def test_utils_data_exposes_the_same_names():
    import graphnet.utils.data as ud

    assert ud.DataLoader is DataLoader and ud.TensorDataset is TensorDataset and ud.random_split is random_split


def test_collate_keeps_autograd_for_tensors_that_require_grad():
    w = graphnet.randn(3, dtype=graphnet.float64, requires_grad=True)
    batch = default_collate([w * 2, w * 3])
    batch.sum().backward()
    np.testing.assert_allclose(w.grad.numpy(), np.full(3, 5.0))


def test_random_sampler_draws_lazily_so_an_endless_num_samples_works():
    """minGPT's trainer: RandomSampler(ds, replacement=True, num_samples=int(1e10)) and next(iter(loader))."""
    ds = TensorDataset(graphnet.arange(10))
    it = iter(RandomSampler(ds, replacement=True, num_samples=int(1e10)))
    draws = [next(it) for _ in range(3000)]
    assert set(draws) == set(range(10))
    assert len(RandomSampler(ds, replacement=True, num_samples=int(1e10))) == int(1e10)
    x, = next(iter(DataLoader(ds, batch_size=4, sampler=RandomSampler(ds, replacement=True, num_samples=int(1e10)))))
    assert x.shape == (4,)
    no_rep = list(RandomSampler(ds, num_samples=25))  # without replacement: whole permutations, then part of one
    assert len(no_rep) == 25 and sorted(no_rep[:10]) == list(range(10)) and sorted(no_rep[10:20]) == list(range(10))
    assert len(set(no_rep[20:])) == 5

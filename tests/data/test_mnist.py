"""MNIST from IDX/CSV files (the packaged real data, and tiny synthetic files), the fixed split, and Digits."""
import csv
import gzip
import hashlib
import shutil
import sys

import numpy as np
import pytest

import graphnet
from graphnet.data import DataLoader
from graphnet.data import transforms as T
from graphnet.data.datasets import MNIST, PACKAGED_MNIST, Digits, mnist_split
from graphnet.data.idx import read_idx, read_mnist_csv

# From /work/shared/data/README.md (the files as distributed).
SHA256 = {
    "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
    "mnist_5k.csv.gz": "846f6cad587fea3877f6e0fe0a1968dfc68867ce170d3bc9fc2dccdbed17961d",
}
# Published facts about the official MNIST test set: its per-class counts and its first ten labels.
T10K_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
T10K_FIRST_LABELS = [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]


def _raw_t10k():
    """The t10k arrays read independently of graphnet: gunzip, skip the 16/8-byte headers."""
    with gzip.open(PACKAGED_MNIST / "t10k-images-idx3-ubyte.gz") as f:
        images = np.frombuffer(f.read(), np.uint8, offset=16).reshape(10000, 28, 28)
    with gzip.open(PACKAGED_MNIST / "t10k-labels-idx1-ubyte.gz") as f:
        labels = np.frombuffer(f.read(), np.uint8, offset=8)
    return images, labels


def _csv_row(index):
    with gzip.open(PACKAGED_MNIST / "mnist_5k.csv.gz", "rt") as f:
        for i, row in enumerate(csv.reader(f)):
            if i == index:
                return np.array(row[:-1], dtype=np.uint8).reshape(28, 28), int(row[-1])


def _write_idx(path, arr, magic, gz=False):
    header = int(magic).to_bytes(4, "big") + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    payload = header + np.ascontiguousarray(arr, dtype=">u1").tobytes()
    (gzip.open if gz else open)(path, "wb").write(payload)


def test_packaged_files_are_the_published_ones():
    for name, digest in SHA256.items():
        assert hashlib.sha256((PACKAGED_MNIST / name).read_bytes()).hexdigest() == digest
    assert "CC BY-SA 3.0" in (PACKAGED_MNIST / "README.md").read_text()


def test_read_idx_packaged_t10k():
    images = read_idx(PACKAGED_MNIST / "t10k-images-idx3-ubyte.gz", 2051)
    labels = read_idx(PACKAGED_MNIST / "t10k-labels-idx1-ubyte.gz", 2049)
    raw_images, raw_labels = _raw_t10k()
    assert images.shape == (10000, 28, 28) and images.dtype == np.uint8
    assert np.array_equal(images, raw_images) and int(images.sum(dtype=np.int64)) == int(raw_images.sum(dtype=np.int64))
    assert labels.tolist()[:10] == T10K_FIRST_LABELS
    assert np.bincount(labels, minlength=10).tolist() == T10K_COUNTS and np.array_equal(labels, raw_labels)


def test_mnist_split_shapes_counts_and_pixels():
    train, test = mnist_split()
    assert (len(train), len(test)) == (10000, 5000)
    assert tuple(train.data.shape) == (10000, 28, 28) and train.data.dtype is graphnet.uint8
    assert train.targets.dtype is graphnet.int64
    raw_images, raw_labels = _raw_t10k()
    train_counts = np.bincount(train.targets.numpy(), minlength=10)
    test_counts = np.bincount(test.targets.numpy(), minlength=10)
    assert (train_counts - np.bincount(raw_labels[:5000], minlength=10)).tolist() == [500] * 10  # 500 per class CSV
    assert (train_counts - 500 + test_counts).tolist() == T10K_COUNTS
    image, label = train[0]
    csv_image, csv_label = _csv_row(0)
    assert tuple(image.shape) == (1, 28, 28) and image.dtype is graphnet.float32 and label == csv_label
    np.testing.assert_allclose(image.numpy()[0], csv_image / 255.0, rtol=1e-6)
    assert np.array_equal(train.data.numpy()[5000], raw_images[0]) and train[5000][1] == T10K_FIRST_LABELS[0]
    assert np.array_equal(test.data.numpy(), raw_images[5000:]) and test.targets.tolist() == raw_labels[5000:].tolist()


def test_mnist_split_as_tensors_matches_items():
    train, _ = mnist_split()
    fast_train, fast_test = mnist_split(as_tensors=True)
    x, y = fast_train.tensors
    assert tuple(x.shape) == (10000, 1, 28, 28) and x.dtype is graphnet.float32 and y.dtype is graphnet.int64
    assert len(fast_test) == 5000
    for i in (0, 4999, 5000, 9999):
        image, label = train[i]
        assert np.array_equal(x.numpy()[i], image.numpy()) and y[i].item() == label


def test_loader_fast_path_equals_transform_path():
    plain, _ = mnist_split()
    with_transform, _ = mnist_split(transform=T.ToTensor())
    a = next(iter(DataLoader(plain, batch_size=64, shuffle=True, generator=graphnet.Generator().manual_seed(1))))
    b = next(iter(DataLoader(with_transform, batch_size=64, shuffle=True,
                             generator=graphnet.Generator().manual_seed(1))))
    assert np.array_equal(a[0].numpy(), b[0].numpy()) and a[1].tolist() == b[1].tolist()


def test_split_transform_and_target_transform():
    train, _ = mnist_split(transform=T.Compose([T.ToTensor(), T.Normalize((0.5,), (0.5,))]),
                           target_transform=lambda y: y + 100)
    image, label = train[5000]
    raw_images, _ = _raw_t10k()
    np.testing.assert_allclose(image.numpy()[0], (raw_images[0] / 255.0 - 0.5) / 0.5, rtol=1e-5, atol=1e-6)
    assert label == 107


def test_split_with_augmentation_in_a_dataloader():
    augment = T.Compose([T.ToTensor(), T.RandomCrop(28, padding=2), T.RandomHorizontalFlip(p=1.0)])
    train, _ = mnist_split(transform=augment)
    graphnet.manual_seed(0)
    x, y = next(iter(DataLoader(graphnet.data.Subset(train, range(5000, 5008)), batch_size=8, num_workers=0)))
    raw_images, _ = _raw_t10k()
    assert tuple(x.shape) == (8, 1, 28, 28) and y.tolist() == T10K_FIRST_LABELS[:8]
    for k in range(8):  # the mirrored image is the padded t10k image sliced at some offset
        padded = np.pad(raw_images[k].astype(np.float32) / np.float32(255), 2)
        window = np.flip(x.numpy()[k, 0], -1)
        assert any(np.array_equal(padded[i:i + 28, j:j + 28], window) for i in range(5) for j in range(5))


@pytest.mark.parametrize("gz", [False, True])
def test_mnist_folder_raw_or_gz(tmp_path, gz):
    suffix = ".gz" if gz else ""
    for name in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        src = PACKAGED_MNIST / f"{name}.gz"
        if gz:
            shutil.copy(src, tmp_path / f"{name}{suffix}")
        else:
            (tmp_path / name).write_bytes(gzip.decompress(src.read_bytes()))
    ds = MNIST(tmp_path, train=False)
    raw_images, raw_labels = _raw_t10k()
    assert len(ds) == 10000 and np.array_equal(ds.data.numpy(), raw_images)
    assert ds.targets.tolist() == raw_labels.tolist() and ds.classes[7] == "7 - seven"


def test_synthetic_tiny_idx_torchvision_layout(tmp_path):
    folder = tmp_path / "MNIST" / "raw"
    folder.mkdir(parents=True)
    images = np.arange(3 * 4 * 5, dtype=np.uint8).reshape(3, 4, 5) * 4
    _write_idx(folder / "train-images-idx3-ubyte", images, 2051)
    _write_idx(folder / "train-labels-idx1-ubyte.gz", np.array([3, 1, 4], np.uint8), 2049, gz=True)
    ds = MNIST(tmp_path, train=True)
    assert len(ds) == 3 and ds.targets.tolist() == [3, 1, 4]
    image, label = ds[2]
    assert tuple(image.shape) == (1, 4, 5) and label == 4
    np.testing.assert_allclose(image.numpy()[0], images[2] / 255.0, rtol=1e-6)


def test_missing_file_names_file_folder_and_expected(tmp_path):
    with pytest.raises(FileNotFoundError, match="(?s)train-images-idx3-ubyte.*not found in folder.*"
                                                f"{tmp_path.name}.*Expected the standard IDX files.*t10k-labels"):
        MNIST(tmp_path)


def test_bad_magic_truncation_and_bad_gzip(tmp_path):
    labels = np.array([1, 2], np.uint8)
    _write_idx(tmp_path / "wrong.idx", labels, 2049)
    with pytest.raises(ValueError, match="bad IDX magic number 2049 \\(expected 2051, an image file"):
        read_idx(tmp_path / "wrong.idx", 2051)
    (tmp_path / "junk.idx").write_bytes(b"GIF89a junk")
    with pytest.raises(ValueError, match="bad IDX magic number"):
        read_idx(tmp_path / "junk.idx")
    _write_idx(tmp_path / "short.idx", np.zeros((2, 3, 3), np.uint8), 2051)
    (tmp_path / "short.idx").write_bytes((tmp_path / "short.idx").read_bytes()[:-5])
    with pytest.raises(ValueError, match="header says shape \\(2, 3, 3\\) \\(18 bytes of data\\).*truncated"):
        read_idx(tmp_path / "short.idx", 2051)
    (tmp_path / "bad.gz").write_bytes(gzip.compress(b"\0\0\x08\x01" + b"\0" * 40)[:-10])
    with pytest.raises(ValueError, match="gzip stream is truncated or corrupted"):
        read_idx(tmp_path / "bad.gz")


def test_csv_reader_checks_columns(tmp_path):
    (tmp_path / "rows.csv").write_text("1,2,3\n4,5,6\n")
    with pytest.raises(ValueError, match="expected 785 columns per row .* got 3"):
        read_mnist_csv(tmp_path / "rows.csv")
    (tmp_path / "tiny.csv").write_text("7,3\n255,6\n")
    images, labels = read_mnist_csv(tmp_path / "tiny.csv", side=1)
    assert images.dtype == np.uint8 and images.tolist() == [[[7]], [[255]]] and labels.tolist() == [3, 6]
    (tmp_path / "big.csv").write_text("256,3\n")
    with pytest.raises(ValueError, match="pixel values must lie in 0..255"):
        read_mnist_csv(tmp_path / "big.csv", side=1)


def test_digits():
    from sklearn.datasets import load_digits

    ds = Digits()
    reference = load_digits()
    assert len(ds) == 1797
    image, label = ds[10]
    assert tuple(image.shape) == (1, 8, 8) and image.dtype is graphnet.float32 and label == reference.target[10]
    np.testing.assert_allclose(image.numpy()[0], reference.images[10] / 16.0, rtol=1e-6)
    batch = next(iter(DataLoader(ds, batch_size=32)))
    assert tuple(batch[0].shape) == (32, 1, 8, 8) and batch[1].tolist() == reference.target[:32].tolist()


def test_digits_without_sklearn(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(ImportError, match="pip install scikit-learn.*graphnet\\[datasets\\]"):
        Digits()

"""SummaryWriter writes TensorBoard event files that TensorBoard's own reader reads back (tags, steps, values)."""
import builtins
import importlib
import io
import os
import re
import socket

import numpy as np
import pytest

import graphnet
import graphnet.utils.tensorboard as gtb
from graphnet.utils.tensorboard import SummaryWriter

try:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
except ImportError:
    EventAccumulator = None

needs_tb = pytest.mark.skipif(EventAccumulator is None, reason="the 'tensorboard' package is not installed "
                              "(pip install 'graphnet[tensorboard]')")


def read(path):
    acc = EventAccumulator(str(path), size_guidance={"images": 0, "scalars": 0, "histograms": 0, "tensors": 0})
    acc.Reload()
    return acc


@needs_tb
def test_scalars_from_tensors_arrays_and_numbers(tmp_path):
    values = [graphnet.tensor(0.5), np.float32(0.25), 3, np.array([1.5]), graphnet.tensor([[2.0]], requires_grad=True)]
    with SummaryWriter(tmp_path) as writer:
        for step, value in enumerate(values):
            writer.add_scalar("loss/train", value, step, walltime=100.0 + step)
    events = read(tmp_path).Scalars("loss/train")
    assert [e.step for e in events] == [0, 1, 2, 3, 4]
    assert [e.value for e in events] == pytest.approx([0.5, 0.25, 3.0, 1.5, 2.0])
    assert [e.wall_time for e in events] == [100.0, 101.0, 102.0, 103.0, 104.0]


@needs_tb
def test_scalar_errors(tmp_path):
    with SummaryWriter(tmp_path) as writer:
        with pytest.raises(ValueError, match=r"add_scalar: the value for 'x' should contain one element.*size: 3"):
            writer.add_scalar("x", graphnet.ones(3), 0)
        with pytest.raises(TypeError, match="scalar_value must be a graphnet tensor, a numpy array or a number, got"):
            writer.add_scalar("x", "1.0", 0)


@needs_tb
def test_new_style_scalar_is_a_tensor_summary(tmp_path):
    with SummaryWriter(tmp_path) as writer:
        writer.add_scalar("acc", 0.75, 7, new_style=True, double_precision=True)
    acc = read(tmp_path)
    event = acc.Tensors("acc")[0]
    assert event.step == 7 and list(event.tensor_proto.double_val) == [0.75]
    assert acc.SummaryMetadata("acc").plugin_data.plugin_name == "scalars"


@needs_tb
def test_add_scalars_writes_one_run_per_key(tmp_path):
    with SummaryWriter(tmp_path) as writer:
        for step in range(3):
            writer.add_scalars("run/loss", {"train": step * 1.0, "val": graphnet.tensor(step * 2.0)}, step)
    assert sorted(d for d in os.listdir(tmp_path) if (tmp_path / d).is_dir()) == ["run_loss_train", "run_loss_val"]
    for key, scale in (("train", 1.0), ("val", 2.0)):
        events = read(tmp_path / f"run_loss_{key}").Scalars("run/loss")
        assert [(e.step, e.value) for e in events] == [(0, 0.0), (1, scale), (2, 2 * scale)]


@needs_tb
def test_histogram_statistics_and_buckets(tmp_path):
    values = np.random.randn(1000)
    with SummaryWriter(tmp_path) as writer:
        writer.add_histogram("w", graphnet.tensor(values), 3)
        writer.add_histogram("small", np.array([0.0, 1.0, 1.0, 3.0]), 1, bins=4)
        writer.add_histogram("auto", values, 1, bins="auto", max_bins=5)
    acc = read(tmp_path)
    event = acc.Histograms("w")[0]
    h = event.histogram_value
    assert event.step == 3 and h.num == 1000 and sum(h.bucket) == 1000
    assert (h.min, h.max) == pytest.approx((values.min(), values.max()), rel=1e-6)
    assert (h.sum, h.sum_squares) == pytest.approx((values.sum(), values @ values), rel=1e-5)
    assert len(h.bucket) > 50 and np.all(np.diff(h.bucket_limit) > 0)
    small = acc.Histograms("small")[0].histogram_value
    # np.histogram edges 0, .75, 1.5, 2.25, 3 with counts 1, 2, 0, 1, plus TensorFlow's leading empty bucket
    assert list(small.bucket_limit) == [0.0, 0.75, 1.5, 2.25, 3.0]
    assert list(small.bucket) == [0, 1, 2, 0, 1]
    auto = acc.Histograms("auto")[0].histogram_value
    n_auto = len(np.histogram(values, bins="auto")[0])
    merged = -(-n_auto // (n_auto // 5))  # PyTorch merges groups of n // max_bins neighbouring bins
    assert sum(auto.bucket) == 1000 and len(auto.bucket) <= merged + 1 < n_auto


@needs_tb
def test_histogram_of_nothing_raises(tmp_path):
    with SummaryWriter(tmp_path) as writer, pytest.raises(ValueError, match="add_histogram: the input has no element"):
        writer.add_histogram("w", np.array([]), 0)


def decode(image_event):
    pil = pytest.importorskip("PIL.Image", reason="Pillow is needed to decode the PNG independently")
    return np.asarray(pil.open(io.BytesIO(image_event.encoded_image_string)).convert("RGB"))


@needs_tb
def test_images_in_each_layout(tmp_path):
    chw = np.random.rand(3, 4, 5).astype(np.float32)
    hw = np.random.rand(4, 5)
    hwc = np.random.randint(0, 256, (4, 5, 3), dtype=np.uint8)
    batch = np.stack([np.zeros((1, 2, 2)), np.ones((1, 2, 2))]).astype(np.float32)
    with SummaryWriter(tmp_path) as writer:
        writer.add_image("chw", graphnet.tensor(chw), 1)
        writer.add_image("hw", hw, 2, dataformats="HW")
        writer.add_image("hwc", hwc, 3, dataformats="HWC")
        writer.add_images("batch", batch, 4)
    acc = read(tmp_path)
    image = acc.Images("chw")[0]
    assert (image.step, image.width, image.height) == (1, 5, 4)
    np.testing.assert_array_equal(decode(image), (chw.transpose(1, 2, 0) * 255).astype(np.uint8))
    grey = (hw * 255).astype(np.uint8)
    np.testing.assert_array_equal(decode(acc.Images("hw")[0]), np.stack([grey] * 3, 2))
    np.testing.assert_array_equal(decode(acc.Images("hwc")[0]), hwc)
    grid = decode(acc.Images("batch")[0])
    assert grid.shape == (2, 4, 3) and grid[:, :2].max() == 0 and grid[:, 2:].min() == 255


@needs_tb
def test_bad_dataformats_raise(tmp_path):
    with SummaryWriter(tmp_path) as writer:
        with pytest.raises(ValueError, match=r"add_image: dataformats 'CHW' does not fit .*\(4, 5\)"):
            writer.add_image("x", np.zeros((4, 5)), 0)


@needs_tb
def test_text(tmp_path):
    with SummaryWriter(tmp_path) as writer:
        writer.add_text("notes", "lr = 0.1 ✓", 2)
    acc = read(tmp_path)
    event = acc.Tensors("notes/text_summary")[0]
    assert event.step == 2 and list(event.tensor_proto.string_val) == ["lr = 0.1 ✓".encode()]
    assert acc.SummaryMetadata("notes/text_summary").plugin_data.plugin_name == "text"


@needs_tb
def test_default_log_dir_like_pytorch(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    writer = SummaryWriter(comment="_lr0.1")
    writer.close()
    pattern = r"runs/[A-Z][a-z]{2}\d{2}_\d{2}-\d{2}-\d{2}_" + re.escape(socket.gethostname()) + r"_lr0\.1"
    assert re.fullmatch(pattern, writer.log_dir) and writer.get_logdir() == writer.log_dir
    assert any(name.startswith("events.out.tfevents.") for name in os.listdir(writer.log_dir))


@needs_tb
def test_flush_close_and_reopen(tmp_path):
    writer = SummaryWriter(tmp_path, filename_suffix=".gn")
    writer.add_scalar("a", 1.0, 0)
    writer.flush()
    assert [e.value for e in read(tmp_path).Scalars("a")] == [1.0]
    writer.close()
    writer.close()
    writer.add_scalar("a", 2.0, 1)  # PyTorch reopens a closed writer on the next add
    writer.close()
    assert [(e.step, e.value) for e in read(tmp_path).Scalars("a")] == [(0, 1.0), (1, 2.0)]
    assert all(name.endswith(".gn") for name in os.listdir(tmp_path))


@needs_tb
def test_purge_step_discards_later_events(tmp_path):
    with SummaryWriter(tmp_path) as writer:
        for step in range(5):
            writer.add_scalar("loss", float(step), step)
    with SummaryWriter(tmp_path, purge_step=2) as writer:
        for step in (2, 3):
            writer.add_scalar("loss", 10.0 + step, step)
    events = read(tmp_path).Scalars("loss")
    assert [(e.step, e.value) for e in events] == [(0, 0.0), (1, 1.0), (2, 12.0), (3, 13.0)]


def test_missing_tensorboard_package(monkeypatch):
    real_import = builtins.__import__

    def no_tensorboard(name, *args, **kwargs):
        if name == "tensorboard" or name.startswith("tensorboard."):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_tensorboard)
    module = importlib.reload(gtb)
    with pytest.raises(ImportError, match=r"graphnet.utils.tensorboard needs the 'tensorboard' package: "
                                          r"pip install 'graphnet\[tensorboard\]'"):
        module.SummaryWriter("unused")

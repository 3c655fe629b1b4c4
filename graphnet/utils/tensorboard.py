"""SummaryWriter: PyTorch's torch.utils.tensorboard API, writing real TensorBoard event files.

Events go through the `tensorboard` package's EventFileWriter and protobufs, as in PyTorch; importing this module
never needs tensorboard, constructing a SummaryWriter does. Images are PNG-encoded here with zlib (no Pillow).
"""
import functools
import os
import socket
import struct
import time
import zlib
from datetime import datetime

import numpy as np

_MISSING = "graphnet.utils.tensorboard needs the 'tensorboard' package: pip install 'graphnet[tensorboard]'"
_PNG_COLOR_TYPE = {1: 0, 2: 4, 3: 2, 4: 6}  # channels -> PNG colour type (grey, grey+alpha, RGB, RGBA)


def _tb():
    """The tensorboard pieces this module uses, imported on demand (an ImportError with the fix if missing)."""
    try:
        from tensorboard.compat.proto import event_pb2, summary_pb2, tensor_pb2, tensor_shape_pb2
        from tensorboard.plugins.text.plugin_data_pb2 import TextPluginData
        from tensorboard.summary.writer.event_file_writer import EventFileWriter
    except ImportError as exc:
        raise ImportError(_MISSING) from exc
    return dict(event=event_pb2, summary=summary_pb2, tensor=tensor_pb2, shape=tensor_shape_pb2,
                TextPluginData=TextPluginData, EventFileWriter=EventFileWriter)


def default_log_dir(comment=""):
    """runs/<Mon><day>_<H>-<M>-<S>_<hostname><comment>, PyTorch's default."""
    return os.path.join("runs", datetime.now().strftime("%b%d_%H-%M-%S") + "_" + socket.gethostname() + comment)


def make_np(x, what="value"):
    """A NumPy array from a graphnet tensor (detached, on the host), a NumPy array or a Python/NumPy number."""
    from ..frontend.tensor import Tensor

    if isinstance(x, Tensor):
        return np.asarray(x.detach()._host())
    if isinstance(x, np.ndarray):
        return x
    if np.isscalar(x) and not isinstance(x, (str, bytes)):
        return np.array([x])
    raise TypeError(f"SummaryWriter: {what} must be a graphnet tensor, a numpy array or a number, "
                    f"got {type(x).__name__}")


# ---- summaries ---------------------------------------------------------------------------------------------------
def scalar_summary(tb, tag, value, new_style=False, double_precision=False):
    arr = make_np(value, "scalar_value").squeeze()
    if arr.ndim != 0:
        raise ValueError(f"add_scalar: the value for {tag!r} should contain one element (0 dimensions). "
                         f"Was given size: {arr.size} and {arr.ndim} dimensions.")
    value, summary = float(arr), tb["summary"].Summary
    if not new_style:
        return summary(value=[summary.Value(tag=tag, simple_value=value)])
    kind = ("double_val", "DT_DOUBLE") if double_precision else ("float_val", "DT_FLOAT")
    proto = tb["tensor"].TensorProto(**{kind[0]: [value]}, dtype=kind[1])
    meta = tb["summary"].SummaryMetadata(plugin_data=tb["summary"].SummaryMetadata.PluginData(plugin_name="scalars"))
    return summary(value=[summary.Value(tag=tag, tensor=proto, metadata=meta)])


@functools.lru_cache(maxsize=1)
def _tensorflow_bins():
    """TensorFlow's default histogram edges: +-1e-12 growing by 10% up to 1e20, and 0 (PyTorch's default_bins)."""
    pos, v = [], 1e-12
    while v < 1e20:
        pos.append(v)
        v *= 1.1
    return [-x for x in reversed(pos)] + [0.0] + pos


def histogram_proto(tb, values, bins, max_bins=None):
    """HistogramProto of `values`, trimmed to the bins holding data (PyTorch's make_histogram)."""
    values = values.reshape(-1).astype(float)
    if values.size == 0:
        raise ValueError("add_histogram: the input has no element.")
    counts, limits = np.histogram(values, bins=_tensorflow_bins() if isinstance(bins, str) and bins == "tensorflow"
                                  else bins)
    if max_bins is not None and len(counts) > max_bins:
        step = len(counts) // max_bins
        counts = np.pad(counts, (0, (-len(counts)) % step)).reshape(-1, step).sum(axis=-1)
        limits = np.append(limits[:-1:step][:counts.size], limits[-1])
    cum = np.cumsum(counts > 0)
    start, end = np.searchsorted(cum, [0, cum[-1] - 1], side="right")
    start, end = int(start), int(end) + 1
    counts = counts[start - 1:end] if start > 0 else np.concatenate([[0], counts[:end]])
    limits = limits[start:end + 1]
    return tb["summary"].HistogramProto(min=values.min(), max=values.max(), num=len(values), sum=values.sum(),
                                        sum_squares=values.dot(values), bucket_limit=limits.tolist(),
                                        bucket=counts.tolist())


def make_grid(images, ncols=8):
    """Tile N images (NCHW, 1 or 3 channels) into one CHW canvas, ncols per row."""
    if images.shape[1] == 1:
        images = np.concatenate([images] * 3, 1)
    n, c, h, w = images.shape
    ncols = min(n, ncols)
    nrows = -(-n // ncols)
    canvas = np.zeros((c, h * nrows, w * ncols), dtype=images.dtype)
    for i in range(n):
        y, x = divmod(i, ncols)
        canvas[:, y * h:(y + 1) * h, x * w:(x + 1) * w] = images[i]
    return canvas


def to_hwc(arr, dataformats):
    """Reorder an image array given in `dataformats` (NCHW, NHWC, CHW, HWC, HW, ...) to HWC."""
    fmt = dataformats.upper()
    if len(set(fmt)) != len(fmt) or arr.ndim != len(fmt) or set(fmt) - set("NCHW"):
        raise ValueError(f"add_image: dataformats {dataformats!r} does not fit an image of shape {arr.shape}; use "
                         "one of 'CHW', 'HWC', 'HW' (or 'NCHW', 'NHWC' for a batch)")
    if len(fmt) == 4:
        return make_grid(arr.transpose([fmt.find(c) for c in "NCHW"])).transpose(1, 2, 0)
    if len(fmt) == 2:
        return np.stack([arr.transpose([fmt.find(c) for c in "HW"])] * 3, 2)
    hwc = arr.transpose([fmt.find(c) for c in "HWC"])
    return np.concatenate([hwc] * 3, 2) if hwc.shape[2] == 1 else hwc


def encode_png(img):
    """PNG bytes of an HxWxC uint8 array (C in 1..4), written with zlib only."""
    h, w, c = img.shape
    raw = np.concatenate([np.zeros((h, 1), np.uint8), np.ascontiguousarray(img).reshape(h, w * c)], axis=1)

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", w, h, 8, _PNG_COLOR_TYPE[c], 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw.tobytes(), 6))
            + chunk(b"IEND", b""))


def image_summary(tb, tag, img, dataformats):
    """uint8 images are taken as 0..255, anything else as 0..1 (scaled by 255), as PyTorch does."""
    arr = to_hwc(make_np(img, "img_tensor"), dataformats)
    scale = 1 if arr.dtype == np.uint8 else 255
    arr = (arr.astype(np.float32) * scale).clip(0, 255).astype(np.uint8)
    h, w, c = arr.shape
    summary = tb["summary"].Summary
    image = summary.Image(height=h, width=w, colorspace=c, encoded_image_string=encode_png(arr))
    return summary(value=[summary.Value(tag=tag, image=image)])


def text_summary(tb, tag, text):
    meta = tb["summary"].SummaryMetadata(plugin_data=tb["summary"].SummaryMetadata.PluginData(
        plugin_name="text", content=tb["TextPluginData"](version=0).SerializeToString()))
    shape = tb["shape"].TensorShapeProto(dim=[tb["shape"].TensorShapeProto.Dim(size=1)])
    proto = tb["tensor"].TensorProto(dtype="DT_STRING", string_val=[text.encode("utf_8")], tensor_shape=shape)
    summary = tb["summary"].Summary
    return summary(value=[summary.Value(tag=tag + "/text_summary", metadata=meta, tensor=proto)])


# ---- the writer --------------------------------------------------------------------------------------------------
class _FileWriter:
    """One event file: stamps wall time and step on each event."""

    def __init__(self, tb, log_dir, max_queue, flush_secs, filename_suffix):
        self.tb = tb
        self.writer = tb["EventFileWriter"](str(log_dir), max_queue, flush_secs, filename_suffix)

    def add_event(self, event, step=None, walltime=None):
        event.wall_time = time.time() if walltime is None else walltime
        if step is not None:
            event.step = int(step)
        self.writer.add_event(event)

    def add_summary(self, summary, step=None, walltime=None):
        self.add_event(self.tb["event"].Event(summary=summary), step, walltime)


class SummaryWriter:
    """Writes scalars, histograms, images and text for TensorBoard under `log_dir` (PyTorch's API)."""

    def __init__(self, log_dir=None, comment="", purge_step=None, max_queue=10, flush_secs=120, filename_suffix=""):
        self._tb = _tb()
        self.log_dir = str(log_dir) if log_dir else default_log_dir(comment)
        self.purge_step, self._options = purge_step, (max_queue, flush_secs, filename_suffix)
        self.file_writer = self.all_writers = None
        self._writer()

    def _writer(self):
        """The main event file, (re)opened on first use after close(), as PyTorch does."""
        if self.file_writer is None:
            self.file_writer = _FileWriter(self._tb, self.log_dir, *self._options)
            self.all_writers = {self.log_dir: self.file_writer}
            if self.purge_step is not None:
                event, step = self._tb["event"], self.purge_step
                self.file_writer.add_event(event.Event(step=step, file_version="brain.Event:2"))
                self.file_writer.add_event(event.Event(step=step,
                                                       session_log=event.SessionLog(status=event.SessionLog.START)))
                self.purge_step = None
        return self.file_writer

    def get_logdir(self):
        return self.log_dir

    def add_scalar(self, tag, scalar_value, global_step=None, walltime=None, new_style=False,
                   double_precision=False):
        summary = scalar_summary(self._tb, tag, scalar_value, new_style, double_precision)
        self._writer().add_summary(summary, global_step, walltime)

    def add_scalars(self, main_tag, tag_scalar_dict, global_step=None, walltime=None):
        """Each key goes to its own run `<log_dir>/<main_tag>_<key>`, under the tag `main_tag` (one chart)."""
        walltime = time.time() if walltime is None else walltime
        self._writer()  # reopens after close(), so all_writers exists
        for tag, value in tag_scalar_dict.items():
            path = os.path.join(self.log_dir, main_tag.replace("/", "_") + "_" + tag)
            if path not in self.all_writers:
                self.all_writers[path] = _FileWriter(self._tb, path, *self._options)
            self.all_writers[path].add_summary(scalar_summary(self._tb, main_tag, value), global_step, walltime)

    def add_histogram(self, tag, values, global_step=None, bins="tensorflow", walltime=None, max_bins=None):
        proto = histogram_proto(self._tb, make_np(values, "values"), bins, max_bins)
        summary = self._tb["summary"].Summary
        self._writer().add_summary(summary(value=[summary.Value(tag=tag, histo=proto)]), global_step, walltime)

    def add_image(self, tag, img_tensor, global_step=None, walltime=None, dataformats="CHW"):
        self._writer().add_summary(image_summary(self._tb, tag, img_tensor, dataformats), global_step, walltime)

    def add_images(self, tag, img_tensor, global_step=None, walltime=None, dataformats="NCHW"):
        """A batch of images tiled into one grid (8 per row)."""
        self.add_image(tag, img_tensor, global_step, walltime, dataformats)

    def add_text(self, tag, text_string, global_step=None, walltime=None):
        self._writer().add_summary(text_summary(self._tb, tag, text_string), global_step, walltime)

    def flush(self):
        for writer in (self.all_writers or {}).values():
            writer.writer.flush()

    def close(self):
        """Flush and close every event file; a second close does nothing."""
        for writer in (self.all_writers or {}).values():
            writer.writer.flush()
            writer.writer.close()
        self.file_writer = self.all_writers = None

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc_val, exc_tb):
        self.close()

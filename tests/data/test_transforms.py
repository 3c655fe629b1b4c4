"""graphnet.data.transforms: torchvision's names, defaults, reprs and error wording; crops and flips against NumPy
slicing of the padded input (random offsets from graphnet.manual_seed, shared by a batch), Resize against
torch.nn.functional.interpolate (what torchvision runs for tensors), the per-sample *_batch functions, and the
transforms inside a DataLoader through a dataset's transform=."""
import numpy as np
import pytest

import graphnet
from graphnet.data import DataLoader
from graphnet.data import transforms as T
from graphnet.data.datasets import ImageDataset
from graphnet.data.transforms import functional as TF


def _image(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _offset_of(window, padded):
    """Every (top, left) where `window` (..., th, tw) equals the padded image's slice."""
    th, tw = window.shape[-2:]
    return [(i, j) for i in range(padded.shape[-2] - th + 1) for j in range(padded.shape[-1] - tw + 1)
            if np.array_equal(padded[..., i:i + th, j:j + tw], window)]


# ---- ToTensor, Normalize, Lambda, Compose -------------------------------------------------------------------------


def test_to_tensor():
    img = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    t = T.ToTensor()(img)
    assert t.dtype is graphnet.float32 and tuple(t.shape) == (1, 3, 4)
    np.testing.assert_allclose(t.numpy()[0], img / 255.0, rtol=1e-6)
    hwc = np.random.default_rng(0).integers(0, 256, (5, 6, 3), dtype=np.uint8)
    np.testing.assert_allclose(T.ToTensor()(hwc).numpy(), hwc.transpose(2, 0, 1) / 255.0, rtol=1e-6)
    floats = np.full((2, 2), 7.5, np.float32)
    assert T.ToTensor()(floats).tolist() == [[[7.5, 7.5], [7.5, 7.5]]]
    with pytest.raises(ValueError, match="pic should be 2 or 3 dimensional"):
        T.ToTensor()(np.zeros(4, np.uint8))
    with pytest.raises(TypeError, match="already a tensor"):
        T.ToTensor()(graphnet.zeros(1, 2, 2))


def test_normalize_compose_lambda():
    img = np.random.default_rng(1).integers(0, 256, (4, 4, 2), dtype=np.uint8)
    pipeline = T.Compose([T.ToTensor(), T.Normalize((0.5, 0.25), (0.5, 2.0)), T.Lambda(lambda t: t * 2)])
    mean, std = np.array([0.5, 0.25])[:, None, None], np.array([0.5, 2.0])[:, None, None]
    np.testing.assert_allclose(pipeline(img).numpy(), (img.transpose(2, 0, 1) / 255.0 - mean) / std * 2, rtol=1e-5,
                               atol=1e-6)
    assert "Normalize(mean=(0.5, 0.25), std=(0.5, 2.0))" in repr(pipeline)
    t = graphnet.ones(1, 2, 2)
    assert T.Normalize([1.0], [2.0], inplace=True)(t) is t and t.tolist() == [[[0.0, 0.0], [0.0, 0.0]]]
    batch = _image(5, 2, 3, 3)  # a batch (N, C, H, W) normalises per channel too
    np.testing.assert_allclose(T.Normalize((1.0, -1.0), (2.0, 4.0))(graphnet.from_numpy(batch)).numpy(),
                               (batch - np.array([1.0, -1.0])[:, None, None]) / np.array([2.0, 4.0])[:, None, None],
                               rtol=1e-6)


def test_normalize_and_lambda_errors():
    with pytest.raises(ValueError, match="std evaluated to zero after conversion to graphnet.float32"):
        T.Normalize((0.0,), (0.0,))(graphnet.ones(1, 2, 2))
    with pytest.raises(TypeError, match="img should be Tensor Image. Got <class 'numpy.ndarray'>: apply ToTensor"):
        T.Normalize((0.0,), (1.0,))(np.zeros((1, 2, 2)))
    with pytest.raises(ValueError, match="mean has 2 and std 2 values but the image has 3 channels"):
        T.Normalize((0.0, 0.0), (1.0, 1.0))(graphnet.ones(3, 2, 2))
    with pytest.raises(TypeError, match=r"Input tensor should be a float tensor. Got graphnet.int64."):
        T.Normalize((0.0,), (1.0,))(graphnet.ones(1, 2, 2, dtype=graphnet.int64))
    with pytest.raises(ValueError, match=r"Expected tensor to be a tensor image of size \(..., C, H, W\)"):
        T.Normalize((0.0,), (1.0,))(graphnet.ones(2, 2))
    with pytest.raises(TypeError, match="Argument lambd should be callable"):
        T.Lambda(3)


# ---- Pad, crop, flips ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["constant", "edge", "reflect", "symmetric"])
def test_pad_matches_numpy(mode):
    img = np.arange(12, dtype=np.float32).reshape(3, 4)
    kw = {"constant_values": 9} if mode == "constant" else {}
    out = T.Pad((1, 2), fill=9, padding_mode=mode)(graphnet.from_numpy(img[None]))
    np.testing.assert_array_equal(out.numpy()[0], np.pad(img, ((2, 2), (1, 1)), mode=mode, **kw))
    arr = T.Pad((1, 0, 2, 3), fill=9, padding_mode=mode)(img)
    np.testing.assert_array_equal(arr, np.pad(img, ((0, 3), (1, 2)), mode=mode, **kw))
    batch = _image(2, 3, 4, 5)
    np.testing.assert_array_equal(T.Pad(2, 9, mode)(graphnet.from_numpy(batch)).numpy(),
                                  np.pad(batch, ((0, 0), (0, 0), (2, 2), (2, 2)), mode=mode, **kw))


def test_pad_negative_widths_crop_and_errors():
    img = _image(2, 5, 6)
    np.testing.assert_array_equal(TF.pad(graphnet.from_numpy(img), (-1, 2, 0, -3)).numpy(),
                                  np.pad(img[:, :2, 1:], ((0, 0), (2, 0), (0, 0))))
    with pytest.raises(ValueError, match="Padding must be an int or a 1, 2, or 4 element tuple, not a 3 element tuple"):
        T.Pad((1, 2, 3))
    with pytest.raises(ValueError, match="Padding mode should be either constant, edge, reflect or symmetric"):
        T.Pad(1, padding_mode="wrap")
    with pytest.raises(TypeError, match="Got inappropriate padding arg"):
        T.Pad("1")
    with pytest.raises(TypeError, match="Got inappropriate fill arg"):
        T.Pad(1, fill="red")
    with pytest.raises(TypeError, match="Tensor is not a torch image."):
        TF.pad(graphnet.ones(3), 1)


def test_random_crop_is_a_slice_of_the_padded_image_at_a_seeded_offset():
    img = _image(3, 8, 9)
    crop = T.RandomCrop(8, padding=2)
    padded = np.pad(img, ((0, 0), (2, 2), (2, 2)))
    offsets = set()
    for seed in range(30):
        graphnet.manual_seed(seed)
        out = crop(graphnet.from_numpy(img)).numpy()
        found = _offset_of(out, padded)
        assert out.shape == (3, 8, 8) and found
        graphnet.manual_seed(seed)
        assert np.array_equal(crop(graphnet.from_numpy(img)).numpy(), out)  # reproducible from the global seed
        offsets.add(found[0])
    assert len(offsets) > 15 and all(0 <= i <= 4 and 0 <= j <= 5 for i, j in offsets)


def test_random_crop_of_a_batch_shares_one_window_and_ndarrays_crop_hwc():
    batch = _image(6, 2, 10, 10)
    graphnet.manual_seed(3)
    out = T.RandomCrop((6, 7), padding=(1, 2), fill=0.5, padding_mode="constant")(graphnet.from_numpy(batch)).numpy()
    padded = np.pad(batch, ((0, 0), (0, 0), (2, 2), (1, 1)), constant_values=0.5)
    (i, j), = _offset_of(out[0], padded[0])
    np.testing.assert_array_equal(out, padded[..., i:i + 6, j:j + 7])
    hwc = np.random.default_rng(0).integers(0, 256, (9, 9, 3), dtype=np.uint8)
    graphnet.manual_seed(0)
    arr = T.RandomCrop(5, padding=1, padding_mode="reflect")(hwc)
    assert isinstance(arr, np.ndarray) and arr.shape == (5, 5, 3) and arr.dtype == np.uint8
    assert _offset_of(arr.transpose(2, 0, 1), np.pad(hwc, ((1, 1), (1, 1), (0, 0)), "reflect").transpose(2, 0, 1))


def test_random_crop_pad_if_needed_get_params_and_errors():
    img = graphnet.from_numpy(_image(1, 5, 7))
    out = T.RandomCrop((9, 9), pad_if_needed=True)(img).numpy()  # torchvision pads both sides by the shortfall
    assert out.shape == (1, 9, 9) and _offset_of(out, np.pad(img.numpy(), ((0, 0), (4, 4), (2, 2))))
    edge = T.RandomCrop((9, 9), padding=(-1, 0, 0, 0), pad_if_needed=True, padding_mode="edge")(img).numpy()
    once = np.pad(img.numpy()[..., 1:], ((0, 0), (0, 0), (3, 3)), "edge")  # padding first, then the shortfall
    assert _offset_of(edge, np.pad(once, ((0, 0), (4, 4), (0, 0)), "edge"))
    cut = T.RandomCrop((5, 8), padding=(-1, 0, 0, 0), pad_if_needed=True, fill=2.0)(img).numpy()
    assert _offset_of(cut, np.pad(img.numpy()[..., 1:], ((0, 0), (0, 0), (2, 2)), constant_values=2.0))
    assert T.RandomCrop(5).get_params(graphnet.ones(1, 5, 5), (5, 5)) == (0, 0, 5, 5)
    i, j, h, w = T.RandomCrop.get_params(graphnet.ones(1, 6, 9), (4, 4))
    assert (h, w) == (4, 4) and 0 <= i <= 2 and 0 <= j <= 5
    assert repr(T.RandomCrop(32, padding=4)) == "RandomCrop(size=(32, 32), padding=4)"
    with pytest.raises(ValueError, match=r"Required crop size \(40, 40\) is larger than input image size \(32, 32\)"):
        T.RandomCrop(40)(graphnet.zeros(3, 32, 32))
    with pytest.raises(ValueError, match=r"Required crop size \(8, 8\) is larger than input image size \(6, 6\)"):
        T.RandomCrop.get_params(graphnet.zeros(1, 6, 6), (8, 8))
    with pytest.raises(ValueError, match=r"Please provide only two dimensions \(h, w\) for size."):
        T.RandomCrop((1, 2, 3))


def test_center_crop_rounds_as_torchvision_and_pads_small_images():
    img = _image(2, 17, 23)
    out = T.CenterCrop((10, 12))(graphnet.from_numpy(img)).numpy()
    np.testing.assert_array_equal(out, img[:, 4:14, 6:18])  # round(3.5) = 4, round(5.5) = 6
    np.testing.assert_array_equal(T.CenterCrop([3])(graphnet.from_numpy(_image(1, 8, 8))).numpy(),
                                  _image(1, 8, 8)[:, 2:5, 2:5])  # round(2.5) = 2
    np.testing.assert_array_equal(T.CenterCrop((20, 24))(graphnet.from_numpy(img)).numpy(),
                                  np.pad(img, ((0, 0), (1, 2), (0, 1))))
    assert repr(T.CenterCrop(5)) == "CenterCrop(size=(5, 5))"


def test_flips_equal_np_flip_with_probability_p_for_the_whole_batch():
    batch = _image(4, 3, 5, 6)
    x = graphnet.from_numpy(batch)
    np.testing.assert_array_equal(T.RandomHorizontalFlip(p=1.0)(x).numpy(), np.flip(batch, -1))
    np.testing.assert_array_equal(T.RandomVerticalFlip(p=1.0)(x).numpy(), np.flip(batch, -2))
    assert T.RandomHorizontalFlip(p=0.0)(x) is x
    np.testing.assert_array_equal(TF.hflip(batch[0].transpose(1, 2, 0)), np.flip(batch[0].transpose(1, 2, 0), 1))
    graphnet.manual_seed(0)
    flipped = [not np.array_equal(T.RandomHorizontalFlip()(x).numpy(), batch) for _ in range(200)]
    assert 70 < sum(flipped) < 130
    assert repr(T.RandomHorizontalFlip()) == "RandomHorizontalFlip(p=0.5)"
    assert repr(T.RandomVerticalFlip(0.3)) == "RandomVerticalFlip(p=0.3)"


# ---- Resize -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["bilinear", "bicubic", "nearest", "nearest-exact"])
@pytest.mark.parametrize("antialias", [True, False])
@pytest.mark.parametrize("size", [(9, 10), (31, 40), 7])
def test_resize_matches_torch_interpolate(mode, antialias, size):
    torch = pytest.importorskip("torch")
    img = _image(2, 3, 17, 23)
    out = T.Resize(size, T.InterpolationMode(mode), antialias=antialias)(graphnet.from_numpy(img)).numpy()
    hw = size if isinstance(size, tuple) else (7, int(7 * 23 / 17))  # an int sets the smaller edge
    kw = {"align_corners": False, "antialias": antialias} if mode in ("bilinear", "bicubic") else {}
    want = torch.nn.functional.interpolate(torch.from_numpy(img), size=hw, mode=mode, **kw).numpy()
    assert out.shape == want.shape
    np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-5)


def test_resize_sizes_dtypes_and_kinds():
    torch = pytest.importorskip("torch")
    img = graphnet.from_numpy(_image(3, 20, 10))
    assert tuple(T.Resize(5)(img).shape) == (3, 10, 5) and tuple(T.Resize([5])(img).shape) == (3, 10, 5)
    assert tuple(T.Resize(5, max_size=8)(img).shape) == (3, 8, 4)
    assert T.Resize((20, 10))(img) is img
    u8 = np.random.default_rng(0).integers(0, 256, (1, 12, 12), dtype=np.uint8)
    out = T.Resize((5, 7))(graphnet.from_numpy(u8))
    want = torch.nn.functional.interpolate(torch.from_numpy(u8[None].astype(np.float32)), size=(5, 7),
                                           mode="bilinear", antialias=True).round().numpy()[0]
    assert out.dtype is graphnet.uint8 and np.abs(out.numpy().astype(int) - want).max() <= 1
    hwc = _image(12, 12, 3)
    np.testing.assert_allclose(T.Resize((6, 4))(hwc), T.Resize((6, 4))(graphnet.from_numpy(
        np.ascontiguousarray(hwc.transpose(2, 0, 1)))).numpy().transpose(1, 2, 0), rtol=1e-6, atol=1e-6)
    assert T.Resize(4, interpolation=2).interpolation is T.InterpolationMode.BILINEAR  # Pillow's code
    assert repr(T.Resize(32)) == "Resize(size=32, interpolation=bilinear, max_size=None, antialias=True)"


def test_resize_errors():
    with pytest.raises(TypeError, match="Size should be int or sequence. Got <class 'float'>"):
        T.Resize(3.5)
    with pytest.raises(ValueError, match="If size is a sequence, it should have 1 or 2 values"):
        T.Resize((1, 2, 3))
    with pytest.raises(TypeError, match="Argument interpolation should be a InterpolationMode or a corresponding "
                                        "Pillow integer constant"):
        T.Resize(3, interpolation="bilinear")
    with pytest.raises(ValueError, match="max_size should only be passed if size specifies the length of the "
                                         "smaller edge"):
        TF.resize(graphnet.ones(1, 4, 4), (2, 2), max_size=5)
    with pytest.raises(ValueError, match=r"max_size = 4 must be strictly greater than the requested size for the "
                                         r"smaller edge size = \[4\]"):
        T.Resize(4, max_size=4)(graphnet.ones(1, 8, 8))
    with pytest.raises(ValueError, match="Interpolation mode 'lanczos' is unsupported with Tensor input"):
        T.Resize(4, T.InterpolationMode.LANCZOS)(graphnet.ones(1, 8, 8))


# ---- per-sample batch functions -----------------------------------------------------------------------------------


def test_random_crop_batch_draws_a_window_per_sample():
    batch = _image(32, 3, 8, 8)
    out = T.random_crop_batch(graphnet.from_numpy(batch), 8, padding=2, generator=graphnet.Generator().manual_seed(1))
    again = T.random_crop_batch(batch, 8, padding=2, generator=graphnet.Generator().manual_seed(1))
    assert tuple(out.shape) == (32, 3, 8, 8) and isinstance(again, np.ndarray)
    np.testing.assert_array_equal(out.numpy(), again)
    padded = np.pad(batch, ((0, 0), (0, 0), (2, 2), (2, 2)))
    offsets = [_offset_of(o, p) for o, p in zip(out.numpy(), padded)]
    assert all(offsets) and len({o[0] for o in offsets}) > 10
    graphnet.manual_seed(5)  # the default generator is graphnet's global one
    a = T.random_crop_batch(batch, (5, 6), pad_if_needed=True)
    graphnet.manual_seed(5)
    np.testing.assert_array_equal(a.shape, (32, 3, 5, 6))
    np.testing.assert_array_equal(T.random_crop_batch(batch, (5, 6)), a)
    with pytest.raises(ValueError, match=r"Required crop size \(10, 10\) is larger than input image size \(8, 8\)"):
        T.random_crop_batch(batch, 10)
    with pytest.raises(ValueError, match=r"random_crop_batch: expected a batch of images \(N, ..., H, W\)"):
        T.random_crop_batch(np.zeros((4, 4)), 2)


def test_random_flip_batch_flips_each_sample_or_not():
    batch = _image(64, 2, 4, 5)
    out = T.random_horizontal_flip_batch(graphnet.from_numpy(batch), generator=graphnet.Generator().manual_seed(0))
    flipped = [np.array_equal(o, np.flip(b, -1)) for o, b in zip(out.numpy(), batch)]
    kept = [np.array_equal(o, b) for o, b in zip(out.numpy(), batch)]
    assert all(f != k for f, k in zip(flipped, kept)) and 16 < sum(flipped) < 48
    out = T.random_vertical_flip_batch(batch, p=1.0)
    np.testing.assert_array_equal(out, np.flip(batch, -2))
    np.testing.assert_array_equal(T.random_vertical_flip_batch(batch, p=0.0), batch)


# ---- in a DataLoader ----------------------------------------------------------------------------------------------


def test_augmenting_dataset_in_a_dataloader_is_reproducible():
    images = np.random.default_rng(0).integers(0, 256, (10, 12, 12), dtype=np.uint8)
    augment = T.Compose([T.ToTensor(), T.RandomCrop(12, padding=2), T.RandomHorizontalFlip(),
                         T.Normalize((0.5,), (0.25,))])
    data = ImageDataset(images, np.arange(10), transform=augment)

    def epoch():
        graphnet.manual_seed(7)
        return [(x.numpy(), y.tolist()) for x, y in DataLoader(data, batch_size=4, num_workers=0)]

    first, second = epoch(), epoch()
    assert [x.shape for x, _ in first] == [(4, 1, 12, 12), (4, 1, 12, 12), (2, 1, 12, 12)]
    assert all(np.array_equal(a, b) for (a, _), (b, _) in zip(first, second))
    x, labels = first[0]
    assert labels == [0, 1, 2, 3]
    for k in range(4):  # each sample: the normalised padded image, sliced at some offset, maybe mirrored
        padded = (np.pad(images[k].astype(np.float32) / np.float32(255), 2) - np.float32(0.5)) / np.float32(0.25)
        assert any(_offset_of(np.flip(x[k, 0], -1) if f else x[k, 0], padded) for f in (0, 1))

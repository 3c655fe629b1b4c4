"""graphnet.data.utils.make_grid / save_image as torchvision.utils has them: grid shape and layout, padding and
pad_value, grey images as RGB, normalize (global, value_range, scale_each), a PNG written atomically and read back
with Pillow, and the errors (non-tensor, wrong rank, bad value_range, unknown extension)."""
import os

import numpy as np
import pytest

import graphnet as gn
from graphnet.data.utils import make_grid, save_image

Image = pytest.importorskip("PIL.Image")


def test_grid_layout_padding_and_pad_value():
    imgs = gn.tensor(np.arange(5, dtype=np.float32).reshape(5, 1, 1, 1) + np.zeros((5, 3, 2, 3), np.float32))
    grid = make_grid(imgs, nrow=3, padding=1, pad_value=-1.0).numpy()
    assert grid.shape == (3, 2 * (2 + 1) + 1, 3 * (3 + 1) + 1)
    for k in range(5):
        y, x = (k // 3) * 3 + 1, (k % 3) * 4 + 1
        assert (grid[:, y:y + 2, x:x + 3] == k).all()
        grid[:, y:y + 2, x:x + 3] = -1.0
    assert (grid == -1.0).all()  # everything else (borders and the sixth, empty cell) is pad_value


def test_grey_images_become_rgb_and_a_single_image_is_returned_unpadded():
    g = make_grid(gn.ones(4, 1, 5, 5), nrow=2, padding=0)
    assert tuple(g.shape) == (3, 10, 10) and (g.numpy() == 1).all()
    assert tuple(make_grid(gn.zeros(1, 5, 4)).shape) == (3, 5, 4)
    assert tuple(make_grid(gn.zeros(5, 4)).shape) == (3, 5, 4)
    assert tuple(make_grid([gn.zeros(3, 5, 4), gn.ones(3, 5, 4)]).shape) == (3, 9, 14)


def test_normalize_global_value_range_and_scale_each():
    x = gn.tensor(np.array([[[[0.0, 2.0]]], [[[4.0, 8.0]]]], np.float32))  # two 1x1x2 images
    row = make_grid(x, padding=0, normalize=True).numpy()[0, 0]
    np.testing.assert_allclose(row, [0, 0.25, 0.5, 1])
    row = make_grid(x, padding=0, normalize=True, value_range=(2.0, 4.0)).numpy()[0, 0]
    np.testing.assert_allclose(row, [0, 0, 1, 1])
    row = make_grid(x, padding=0, normalize=True, scale_each=True).numpy()[0, 0]
    np.testing.assert_allclose(row, [0, 1, 0, 1])
    assert x.numpy()[1, 0, 0, 1] == 8.0  # the input is left alone


def test_save_image_writes_a_png_that_reads_back(tmp_path):
    x = gn.tensor(np.linspace(0, 1, 2 * 4 * 4, dtype=np.float32).reshape(2, 1, 4, 4))
    path = tmp_path / "grid.png"
    save_image(x, path, nrow=2, padding=1)
    with Image.open(path) as im:
        assert im.format == "PNG" and im.size == (2 * 5 + 1, 5 + 1) and im.mode == "RGB"
        got = np.asarray(im)
    want = np.clip(make_grid(x, nrow=2, padding=1).numpy() * 255 + 0.5, 0, 255).astype(np.uint8).transpose(1, 2, 0)
    np.testing.assert_array_equal(got, want)
    assert got[1, 1, 0] == 0 and got[4, 9, 0] == 255
    assert os.listdir(tmp_path) == ["grid.png"]  # no temp file left


def test_save_image_to_a_stream_with_a_format(tmp_path):
    with open(tmp_path / "out.bin", "wb") as f:
        save_image(gn.rand(3, 6, 7), f, format="PNG")
    with Image.open(tmp_path / "out.bin") as im:
        assert im.format == "PNG" and im.size == (7, 6)


def test_errors():
    with pytest.raises(TypeError, match="tensor or list of tensors expected, got <class 'numpy.ndarray'>"):
        make_grid(np.zeros((2, 3, 4, 4)))
    with pytest.raises(TypeError, match="got a list containing <class 'int'>"):
        make_grid([gn.zeros(3, 4, 4), 1])
    with pytest.raises(ValueError, match=r"make_grid expects a 2-d .* got shape \[2, 2, 3, 4, 4\]"):
        make_grid(gn.zeros(2, 2, 3, 4, 4))
    with pytest.raises(ValueError, match=r"got shape \[4\]"):
        make_grid(gn.zeros(4))
    with pytest.raises(TypeError, match="value_range has to be a tuple"):
        make_grid(gn.zeros(2, 3, 4, 4), normalize=True, value_range=[0, 1])


def test_save_image_refuses_an_unknown_extension_and_writes_nothing(tmp_path):
    with pytest.raises(ValueError, match=r"unknown file extension: \.xyz"):
        save_image(gn.zeros(3, 4, 4), tmp_path / "grid.xyz")
    assert os.listdir(tmp_path) == []

"""randint's PyTorch overloads: (high, size) positionally, as nanoGPT's get_batch calls it, (low, high, size), and
size by keyword; values stay in [low, high), and a missing size is a TypeError as in PyTorch."""
import numpy as np
import pytest

import graphnet as gn

torch = pytest.importorskip("torch")


@pytest.mark.parametrize("args, kwargs, low, high", [((10, (3, 4)), {}, 0, 10), ((5, 10, (6,)), {}, 5, 10),
                                                     ((10,), {"size": (2, 2)}, 0, 10), ((5, 10), {"size": [7]}, 5, 10)])
def test_randint_overloads_match_pytorch_shape_dtype_and_range(args, kwargs, low, high):
    ref = torch.randint(*args, **kwargs)
    got = gn.randint(*args, **kwargs)
    assert tuple(got.shape) == tuple(ref.shape) and str(got.dtype).split('.')[-1] == str(ref.dtype).split('.')[-1]
    vals = got.numpy()
    assert np.all((vals >= low) & (vals < high)) and len(np.unique(gn.randint(low, high, (400,)).numpy())) > 1


@pytest.mark.parametrize("args, message", [((10,), r"randint\(\) received an invalid combination of arguments"),
                                           ((0, 10), r"randint\(\): argument 'size' \(position 2\) must be tuple of "
                                                     r"ints, not int")])
def test_randint_without_size_is_a_type_error_like_pytorch(args, message):
    for lib in (torch, gn):
        with pytest.raises(TypeError, match=message):
            lib.randint(*args)

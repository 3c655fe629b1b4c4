"""Test set-up: a fixed seed per test, and float64 finite-difference helpers shared by the op tests."""
import numpy as np
import pytest

import graphnet


@pytest.fixture(autouse=True)
def _seed():
    graphnet.manual_seed(0)
    np.random.seed(0)

"""NumPy behaviour funcgrad.numpy gained: gradient's edge_order=2 and coordinates,
array_split with a 0-d count, and the functions added below."""
import numpy as np
import pytest

import funcgrad
import funcgrad.numpy as fnp
from funcgrad.test_util import check_grads

R = np.random.RandomState(0)


# ---- gradient ----------------------------------------------------------------------------
@pytest.mark.parametrize("edge_order", [1, 2])
@pytest.mark.parametrize("spacing", ["none", "scalar", "coords", "mixed"])
def test_gradient_spacings_and_edge_order(edge_order, spacing):
    f = R.rand(5, 6)
    x, y = np.cumsum(R.rand(6)) + 0.1, np.cumsum(R.rand(5))
    args = {"none": (), "scalar": (0.3,), "coords": (y, x), "mixed": (0.7, x)}[spacing]
    got = fnp.gradient(f, *args, edge_order=edge_order)
    want = np.gradient(f, *args, edge_order=edge_order)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-12)
    check_grads(lambda f: fnp.gradient(f, *args, edge_order=edge_order), (f,), order=1)


def test_gradient_coordinates_are_differentiable():
    f = R.rand(6)
    x = np.cumsum(R.rand(6)) + 0.1
    check_grads(lambda x: fnp.gradient(f, x, edge_order=2), (x,), order=1)
    np.testing.assert_allclose(fnp.gradient(f, x, axis=0), np.gradient(f, x, axis=0))


def test_gradient_errors():
    with pytest.raises(ValueError, match="edge_order=2"):
        fnp.gradient(np.ones(2), edge_order=2)
    with pytest.raises(ValueError, match="coordinates"):
        fnp.gradient(np.ones(4), np.arange(3.0))
    with pytest.raises(TypeError):
        fnp.gradient(np.ones(4), edge_order=3)


# ---- array_split / split with a 0-d count ----------------------------------------------------
@pytest.mark.parametrize("name,n", [("array_split", 7), ("split", 6)])
def test_split_with_0d_array_count(name, n):
    a = np.arange(float(n))
    got = getattr(fnp, name)(a, np.array(3))
    want = getattr(np, name)(a, np.array(3))
    assert len(got) == len(want) == 3
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)

"""The optional Numba pooling kernels (windows_numba.py) give exactly the NumPy path's
results; skipped where Numba is not installed."""
import contextlib

import numpy as np
import pytest

import funcgrad
import funcgrad.lax as lax
from funcgrad._src.prims import windows_kernels as K
from funcgrad._src.prims import windows_numba as nb

pytest.importorskip("numba")


@pytest.fixture(scope="module", autouse=True)
def compiled():
    old = nb.set_enabled(True)
    assert nb.kernels(wait=True) is not None
    yield
    nb.set_enabled(old)


@contextlib.contextmanager
def numpy_path():
    old = nb.set_enabled(False)
    try:
        yield
    finally:
        nb.set_enabled(old)


def pool_params(nd):
    return dict(window_dimensions=(1,) * (nd - 2) + (2, 2),
                window_strides=(1,) * (nd - 2) + (2, 2), padding=((0, 0),) * nd,
                base_dilation=(1,) * nd, window_dilation=(1,) * nd)


def same(a, b):
    assert a.dtype == b.dtype and a.shape == b.shape
    assert np.array_equal(a, b, equal_nan=True)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(4, 3, 8, 8), (2, 5, 7, 9), (3, 6, 6), (5, 4),
                                   (1, 1, 2, 3), (2, 2, 2, 3, 4)])
def test_max_and_scatter_equal_the_numpy_path(dtype, shape):
    rng = np.random.default_rng(sum(shape))
    # small integers: many ties, which must go to the first element in row-major order
    x = rng.integers(-3, 4, shape).astype(dtype)
    flat = x.reshape(-1)
    flat[rng.integers(0, flat.size, 3)] = np.nan
    flat[rng.integers(0, flat.size, 2)] = -np.inf
    p = pool_params(len(shape))
    assert K._numba_pool(x, p) is not None
    m, idx = K._window_max_impl(x, **p)
    g = rng.standard_normal(m.shape).astype(dtype)
    g.reshape(-1)[0] = np.inf                     # non-finite cotangents behave the same
    out = K._window_scatter_impl(g, idx, operand_shape=x.shape, **p)
    with numpy_path(), np.errstate(invalid="ignore"):     # (inf * 0 in the products)
        assert K._numba_pool(x, p) is None
        m0, idx0 = K._window_max_impl(x, **p)
        out0 = K._window_scatter_impl(g, idx0, operand_shape=x.shape, **p)
    same(m, m0)
    same(idx, idx0)
    same(out, out0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_max_of_every_window_of_ties_nans_and_infinities_equals_the_numpy_path(dtype):
    # each of the 5**4 windows over {nan, -inf, 0, 1, inf}: the kernel compares pairwise
    # without branches, so every order of ties and NaNs is checked, not sampled
    import itertools
    vals = np.array([np.nan, -np.inf, 0.0, 1.0, np.inf], dtype)
    combos = np.array(list(itertools.product(range(5), repeat=4)))
    x = vals[combos].reshape(25, 25, 2, 2).transpose(0, 2, 1, 3).reshape(1, 50, 50)
    p = pool_params(3)
    assert K._numba_pool(x, p) is not None
    m, idx = K._window_max_impl(x, **p)
    with numpy_path():
        m0, idx0 = K._window_max_impl(x, **p)
    same(m, m0)
    same(idx, idx0)
    assert np.isnan(m).sum() == 5 ** 4 - 4 ** 4 and (idx[np.isnan(m)] == 3).all()


def test_other_windows_take_the_numpy_path():
    x = np.ones((2, 3, 6, 6), np.float32)
    for p in [dict(pool_params(4), window_dimensions=(1, 1, 3, 3),
                   window_strides=(1, 1, 3, 3)),
              dict(pool_params(4), window_strides=(1, 1, 1, 1)),
              dict(pool_params(4), padding=((0, 0), (0, 0), (1, 1), (0, 0)))]:
        assert K._numba_pool(x, p) is None
    assert K._numba_pool(x.astype(np.int32), pool_params(4)) is None
    assert K._numba_pool(np.ones((2, 3, 6, 6), np.float32)[:, :, ::-1], pool_params(4)) is None
    frozen = np.ones((2, 3, 6, 6), np.float32)
    frozen.flags.writeable = False           # (would need a signature not compiled ahead)
    assert K._numba_pool(frozen, pool_params(4)) is None
    m, idx = K._window_max_impl(frozen, **pool_params(4))
    assert m.shape == (2, 3, 3, 3) and not idx.any()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gradient_through_max_pool_equals_the_numpy_path(dtype):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 2, 9, 10)).astype(dtype)
    w = rng.standard_normal((3, 2, 4, 5)).astype(dtype)

    def f(x):
        return funcgrad.numpy.sum(lax.max_pool(x, (2, 2)) * w)

    val, grad = funcgrad.value_and_grad(f)(x)
    jval, jgrad = funcgrad.jit(funcgrad.value_and_grad(f))(x)
    with numpy_path():
        val0, grad0 = funcgrad.value_and_grad(f)(x)
    same(np.asarray(grad), np.asarray(grad0))
    same(np.asarray(jgrad), np.asarray(grad0))
    assert float(val) == float(val0) == float(jval)

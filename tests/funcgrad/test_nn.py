"""funcgrad.nn: relu, a primitive with all its rules."""
import numpy as np
from hypothesis import given
from hypothesis import strategies as st

import funcgrad
import funcgrad.nn as fnn
import funcgrad.numpy as fnp
from funcgrad.test_util import check_grads


@given(st.integers(1, 5), st.integers(1, 4), st.integers(0, 2**32 - 1))
def test_relu_values_and_derivatives_to_second_order(m, n, seed):
    x = np.random.default_rng(seed).normal(size=(m, n))
    x[np.abs(x) < 1e-3] = 0.5                   # (finite differences away from the kink)
    np.testing.assert_array_equal(fnn.relu(x), np.maximum(x, 0))
    check_grads(fnn.relu, (x,), order=2)


def test_relu_specials_dtypes_and_transformations():
    x = np.array([-np.inf, -2.0, -0.0, 0.0, 3.0, np.inf, np.nan], np.float32)
    y = fnn.relu(x)
    assert y.dtype == np.float32
    np.testing.assert_array_equal(y[:6], [0, 0, 0, 0, 3, np.inf])
    assert np.isnan(y[6]) and not np.signbit(y[:4]).any()       # +0, never -0
    g = funcgrad.grad(lambda v: fnp.sum(fnn.relu(v)))(x)
    assert g.dtype == np.float32
    np.testing.assert_array_equal(g, [0, 0, 0, 0, 1, 1, 0])
    np.testing.assert_array_equal(funcgrad.jit(funcgrad.grad(lambda v: fnp.sum(fnn.relu(v))))(x), g)
    np.testing.assert_array_equal(funcgrad.vmap(fnn.relu)(np.stack([x[:6], -x[:6]]))[1],
                                  np.maximum(-x[:6], 0))
    assert fnn.relu(np.array([-3, 4])).tolist() == [0, 4]


def test_relu_runs_on_slices_of_a_batch_under_jit(monkeypatch):
    from funcgrad._src import rows, threads
    monkeypatch.setattr(rows, "MIN_ROW_WORK", 0)
    calls = []
    real = threads.map_bounds
    monkeypatch.setattr(rows._threads, "map_bounds",
                        lambda fn, bounds, flatten=False: calls.append(len(bounds))
                        or real(fn, bounds, flatten))
    w = np.random.default_rng(0).normal(size=(8, 3))
    x = np.random.default_rng(1).normal(size=(64, 8))
    f = funcgrad.grad(lambda w, x: fnp.sum(fnn.relu(x @ w) ** 2))
    with funcgrad.config.override(num_threads=2):
        jf = funcgrad.jit(f)
        jf(w, x)
        np.testing.assert_allclose(jf(w, x), f(w, x), rtol=1e-12)
    assert calls                               # relu has a row rule: the step was split


def test_relu_of_large_arrays_matches_maximum_bit_for_bit():
    # large float arrays take the fast path (maximum against cached zeros of a trailing
    # block): the same bits as maximum(x, 0), NaN, infinities and signed zeros included
    rng = np.random.default_rng(0)
    for shape, dtype in [((5000,), np.float32), ((64, 1568), np.float32),
                         ((8, 16, 28, 28), np.float32), ((3, 70000), np.float64),
                         ((2, 3, 4, 700), np.float64)]:
        x = rng.normal(size=shape).astype(dtype)
        x.flat[:5] = [np.nan, -np.inf, np.inf, -0.0, 0.0]
        y = np.asarray(fnn.relu(x))
        ref = np.maximum(x, 0)
        assert y.dtype == ref.dtype and y.shape == ref.shape
        np.testing.assert_array_equal(y.view(np.uint8), ref.view(np.uint8))
        y[...] = 1.0                          # the result is the caller's, never shared
        np.testing.assert_array_equal(fnn.relu(x).view(np.uint8), ref.view(np.uint8))

"""Edge inputs NumPy/SciPy accept: an axis on a 0-d array, empty arrays, p-norms at 0."""
import numpy as np
import pytest

import funcgrad
import funcgrad.numpy as fnp
import funcgrad.scipy.special as fsp
from funcgrad.test_util import check_grads

scipy_special = pytest.importorskip("scipy.special")


# ---- axis 0 / -1 on a 0-d array ----------------------------------------------------------
@pytest.mark.parametrize("name", ["max", "min", "amax", "amin", "prod", "sum", "cumsum",
                                  "cumprod", "argsort"])
@pytest.mark.parametrize("axis", [0, -1])
def test_axis_on_0d_array_as_numpy(name, axis):
    x = np.array(2.0)
    want = getattr(np, name)(x, axis=axis)
    got = getattr(fnp, name)(x, axis=axis)
    assert np.shape(got) == np.shape(want)
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("name", ["max", "prod", "sum", "cumsum", "cumprod"])
def test_axis_on_0d_array_derivatives(name):
    check_grads(lambda x: getattr(fnp, name)(x, axis=0), (np.array(1.5),), order=2)


@pytest.mark.parametrize("name", ["softmax", "log_softmax", "logsumexp"])
@pytest.mark.parametrize("axis", [0, -1])
def test_special_axis_on_0d_array(name, axis):
    x = np.array(2.0)
    np.testing.assert_allclose(getattr(fsp, name)(x, axis=axis),
                               getattr(scipy_special, name)(x, axis=axis))
    check_grads(lambda v: getattr(fsp, name)(v, axis=axis), (x,), order=1)


def test_axis_out_of_range_on_0d_array_still_raises():
    with pytest.raises(ValueError):
        fnp.sum(np.array(2.0), axis=1)
    with pytest.raises(ValueError):
        fnp.sum(np.array(2.0), axis=(0,))      # NumPy refuses a tuple here too
    with pytest.raises(ValueError):
        fnp.sort(np.array(2.0), axis=0)        # and np.sort any axis


# ---- empty inputs ------------------------------------------------------------------------
def test_logsumexp_of_empty_is_minus_inf():
    assert fsp.logsumexp(np.zeros(0)) == scipy_special.logsumexp(np.zeros(0)) == -np.inf
    np.testing.assert_array_equal(
        fsp.logsumexp(np.zeros((2, 0)), axis=1), scipy_special.logsumexp(np.zeros((2, 0)), axis=1))
    assert funcgrad.grad(fsp.logsumexp)(np.zeros(0)).shape == (0,)


@pytest.mark.parametrize("ord", [2, 1, np.inf, "fro", "nuc"])
def test_matrix_norm_of_empty_is_zero(ord):
    assert fnp.linalg.norm(np.zeros((0, 0)), ord) == np.linalg.norm(np.zeros((0, 0)), ord) == 0


@pytest.mark.parametrize("ord", [np.inf, 2, 1, 0.5])
def test_vector_norm_of_empty_is_zero(ord):
    assert fnp.linalg.vector_norm(np.zeros(0), ord=ord) == 0
    assert funcgrad.grad(lambda v: fnp.linalg.vector_norm(v, ord=ord))(np.zeros(0)).shape == (0,)


def test_max_with_initial_over_empty():
    np.testing.assert_array_equal(fnp.max(np.zeros((2, 0)), axis=1, initial=-3.0),
                                  np.max(np.zeros((2, 0)), axis=1, initial=-3.0))
    np.testing.assert_array_equal(fnp.min(np.zeros(0), initial=5.0), 5.0)


# ---- p-norms with 0 < p < 1 at zero: both modes give the subgradient 0 -----------------------
@pytest.mark.parametrize("p", [0.5, 0.3, 1.5])
@pytest.mark.parametrize("v", [np.zeros(3), np.array([0.0, 2.0, -1.0])])
def test_p_norm_at_zero_modes_agree(p, v):
    f = lambda v: fnp.linalg.norm(v, p)
    fwd = funcgrad.jacfwd(f)(v)
    rev = funcgrad.grad(f)(v)
    assert np.all(np.isfinite(fwd)) and np.all(np.isfinite(rev))
    np.testing.assert_allclose(fwd, rev)
    np.testing.assert_array_equal(rev[v == 0], 0.0)
    np.testing.assert_allclose(f(v), np.linalg.norm(v, p))


def test_p_norm_below_one_away_from_zero():
    check_grads(lambda v: fnp.linalg.vector_norm(v, ord=0.5), (np.array([0.5, -2.0, 1.5]),),
                order=2)

"""Derivatives at the edges of their domains: logaddexp/logaddexp2 at large magnitudes,
std/nanstd where they are identically zero (one value per result)."""
import math

import numpy as np
import pytest

import funcgrad
import funcgrad.numpy as fnp
from funcgrad.test_util import check_grads


# ---------------------------------------------------------------- logaddexp

@pytest.mark.parametrize("f", [fnp.logaddexp, fnp.logaddexp2])
@pytest.mark.parametrize("v", [1e11, 1e15, 1e20, -1e20, 1e300])
def test_logaddexp_gradient_at_equal_large_arguments_is_one_half(f, v):
    gx, gy = funcgrad.grad(f, argnums=(0, 1))(v, v)
    assert gx == 0.5 and gy == 0.5


@pytest.mark.parametrize("f, scale", [(fnp.logaddexp, 1.0), (fnp.logaddexp2, math.log(2))])
def test_logaddexp_gradient_is_the_logistic_of_the_difference(f, scale):
    x = np.array([1e20, 1e20 + 2 ** 67, -3.0, 40.0, -800.0, 0.0])
    y = np.array([1e20, 1e20, 2.0, -40.0, 800.0, -np.inf])
    gx, gy = funcgrad.grad(lambda a, b: fnp.sum(f(a, b)), argnums=(0, 1))(x, y)
    d = (x - y) * scale
    with np.errstate(over="ignore"):
        expect = 1.0 / (1.0 + np.exp(-d))
    np.testing.assert_allclose(gx, expect, rtol=1e-15, atol=0)
    np.testing.assert_allclose(gx + gy, 1.0, rtol=1e-15)
    assert np.isfinite(gx).all() and np.isfinite(gy).all()


@pytest.mark.parametrize("f, scale", [(fnp.logaddexp, 1.0), (fnp.logaddexp2, math.log(2))])
def test_logaddexp_second_derivative_is_stable(f, scale):
    # d2/dx2 = scale * s (1 - s) with s = logistic(scale (x - y)): 1/4 scale at ties
    for v in (0.0, 1e20):
        h = funcgrad.grad(funcgrad.grad(f))(v, v)
        np.testing.assert_allclose(h, 0.25 * scale, rtol=1e-15)
    h = funcgrad.grad(funcgrad.grad(f))(-800.0, 800.0)
    assert h == 0.0
    check_grads(f, (np.array([0.3, -2.0, 5.0]), np.array([1.0, -2.0, -4.0])), order=3)


def test_logaddexp_keeps_float32():
    x = np.array([1.0, 2.0], np.float32)
    g = funcgrad.grad(lambda a: fnp.sum(fnp.logaddexp(a, a)))(x)
    assert g.dtype == np.float32
    np.testing.assert_array_equal(g, [1.0, 1.0])


# ---------------------------------------------------------------- std of one value

def test_grad_of_std_of_a_single_value_is_zero():
    assert funcgrad.grad(fnp.std)(3.0) == 0.0
    assert funcgrad.grad(lambda x: fnp.std(x))(np.array([3.0]))[0] == 0.0


@pytest.mark.parametrize("std", [fnp.std, fnp.nanstd])
def test_std_over_a_length_one_axis_has_zero_gradient(std):
    g = funcgrad.grad(lambda x: fnp.sum(std(x, axis=0)))(np.ones((1, 3)))
    np.testing.assert_array_equal(g, np.zeros((1, 3)))
    # the other terms of a sum keep their gradient
    x = np.array([[1.0, 2.0, 4.0]])
    g = funcgrad.grad(lambda x: fnp.sum(std(x, axis=0)) + fnp.sum(std(x, axis=1)))(x)
    expect = (x - x.mean()) / (3 * x.std())
    np.testing.assert_allclose(g, expect, rtol=1e-14)


def test_nanstd_with_one_valid_value_has_zero_gradient():
    x = np.array([[2.0, np.nan], [1.0, 3.0]])
    g = funcgrad.grad(lambda x: fnp.sum(fnp.nanstd(x, axis=1)))(x)
    np.testing.assert_allclose(g, [[0.0, 0.0], [-0.5, 0.5]])
    np.testing.assert_array_equal(fnp.nanstd(x, axis=1), np.nanstd(x, axis=1))


@pytest.mark.parametrize("std", [fnp.std, fnp.nanstd])
def test_std_of_one_value_keeps_value_dtype_and_higher_orders(std):
    x = np.array([[1.5], [2.5]], np.float32)
    y = std(x, axis=1)
    assert y.dtype == np.float32
    np.testing.assert_array_equal(y, [0.0, 0.0])
    h = funcgrad.hessian(lambda v: fnp.sum(std(v, axis=1)))(x.astype(np.float64))
    assert np.all(h == 0)
    # ddof=1 of one value is NaN, as in NumPy
    with np.errstate(invalid="ignore", divide="ignore"):
        assert np.isnan(std(np.array([1.0]), ddof=1))


def test_std_with_a_given_mean_keeps_its_gradient():
    # with mean= the result is |x - mean|, not identically zero
    g = funcgrad.grad(lambda x: fnp.sum(fnp.std(x, axis=0, mean=np.array([[1.0]]))))(
        np.array([[3.0]]))
    np.testing.assert_allclose(g, [[1.0]])


def test_plain_numpy_std_routed_to_funcgrad_has_zero_gradient_for_one_value():
    assert funcgrad.grad(np.std)(3.0) == 0.0
    g = funcgrad.grad(lambda x: np.sum(np.nanstd(x, axis=0)))(np.ones((1, 3)))
    np.testing.assert_array_equal(g, np.zeros((1, 3)))


def test_std_of_one_value_under_jit_and_vmap():
    f = lambda x: fnp.sum(fnp.std(x, axis=1))
    g = funcgrad.jit(funcgrad.grad(f))(np.ones((3, 1)))
    np.testing.assert_array_equal(g, np.zeros((3, 1)))
    gn = funcgrad.jit(funcgrad.grad(lambda x: fnp.sum(fnp.nanstd(x, axis=1))))(
        np.array([[1.0, np.nan], [1.0, 2.0]]))
    np.testing.assert_allclose(gn, [[0.0, 0.0], [-0.5, 0.5]])
    v = funcgrad.vmap(funcgrad.grad(lambda x: fnp.std(x)))(np.array([[2.0], [5.0]]))
    np.testing.assert_array_equal(v, np.zeros((2, 1)))

"""funcgrad.scipy.special against SciPy: limits and the functions added below."""
import numpy as np
import pytest

import funcgrad
import funcgrad.scipy.special as fsp
from funcgrad.test_util import check_grads

ss = pytest.importorskip("scipy.special")


@pytest.mark.parametrize("n", [0, 1, 2, 3, 4])
def test_polygamma_limits_and_poles(n):
    x = np.array([np.inf, -np.inf, 2.5, -1.5, -2.0, 0.0, -0.0])
    got, want = fsp.polygamma(n, x), ss.polygamma(n, x)
    np.testing.assert_allclose(got, want, rtol=1e-10)
    np.testing.assert_array_equal(np.signbit(got), np.signbit(want))


# ---- new functions: values against SciPy, derivatives by finite differences -------------------
UNARY = {
    "ndtr": (np.array([-40.0, -8.0, -1.0, 0.0, 0.7, 6.0, 40.0]), np.array([-3.0, -0.4, 1.2])),
    "log_ndtr": (np.array([-1e5, -40.0, -29.0, -5.0, -1.0, 0.0, 5.0, 10.0, 40.0]),
                 np.array([-45.0, -3.0, -0.4, 1.2, 6.0])),
    "erfinv": (np.array([-1.0, -0.999999, -0.5, -1e-20, 0.0, 1e-8, 0.3, 0.5, 0.9, 1 - 1e-15,
                         1.0, 1.5]),
               np.array([-0.9, -0.2, 0.1, 0.7])),
    "erfcinv": (np.array([0.0, 1e-300, 1e-20, 0.01, 0.5, 1.0, 1.3, 1.9999, 2.0, 2.5]),
                np.array([0.05, 0.6, 1.2, 1.8])),
    "ndtri": (np.array([0.0, 1e-300, 1e-10, 0.3, 0.5, 0.8, 1 - 1e-12, 1.0, -1.0]),
              np.array([0.01, 0.4, 0.93])),
    "i0e": (np.array([0.0, -0.5, 3.0, 31.0, -100.0, 1e4]), np.array([-2.0, 0.5, 40.0])),
    "i1": (np.array([0.0, -0.5, 3.0, 31.0, -100.0]), np.array([-2.0, 0.0, 0.5, 40.0])),
    "i1e": (np.array([0.0, -0.5, 3.0, 31.0, -100.0, 1e4]), np.array([-2.0, 0.5, 40.0])),
    "entr": (np.array([-1.0, 0.0, 1e-300, 0.5, 3.0, np.inf]), np.array([0.2, 1.0, 4.0])),
    "gamma": (np.array([0.0, -0.0, -1.0, -0.5, -1.5, 0.1, 2.5, 20.0, 171.0, 200.0]),
              np.array([-2.5, -0.3, 0.7, 3.2])),
    "gammasgn": (np.array([0.0, -0.0, -1.0, -0.5, -1.5, -2.5, 2.5, np.inf, -np.inf]), None),
    "rgamma": (np.array([0.0, -0.0, -1.0, -2.0, -0.5, -1.5, 2.5, 20.0, 200.0]),
               np.array([-2.5, -0.3, 0.7, 3.2])),
}


@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_against_scipy(name):
    values, at = UNARY[name]
    f = getattr(fsp, name)
    with np.errstate(all="ignore"):
        want = getattr(ss, name)(values)
    # gamma is exp(gammaln): relative error about gammaln(x) * 1e-16 near overflow
    np.testing.assert_allclose(f(values), want, rtol=5e-13 if name == "gamma" else 1e-13,
                               atol=0)
    np.testing.assert_array_equal(np.signbit(f(values)), np.signbit(want))
    assert f(values.astype(np.float32)).dtype == np.float32
    if at is not None:
        check_grads(f, (at,), order=2)


def test_rgamma_slope_at_poles():
    x = np.array([0.0, -1.0, -2.0, -3.0])
    g = funcgrad.vmap(funcgrad.grad(fsp.rgamma))(x)
    np.testing.assert_allclose(g, [1.0, -1.0, 2.0, -6.0])
    h = 1e-7
    np.testing.assert_allclose(g, (ss.rgamma(x + h) - ss.rgamma(x - h)) / (2 * h), rtol=1e-6)


def test_gammasgn_has_zero_derivative():
    np.testing.assert_array_equal(funcgrad.grad(lambda x: fsp.gammasgn(x) * x)(-0.5), -1.0)


@pytest.mark.parametrize("name", ["beta", "betaln"])
def test_beta_and_betaln(name):
    a = np.array([1.0, 2.0, -0.5, -1.5, 0.0, 200.0, 0.3])
    b = np.array([2.0, 3.0, 2.0, 0.7, 1.0, 300.0, 4.5])
    with np.errstate(all="ignore"):
        want = getattr(ss, name)(a, b)
    np.testing.assert_allclose(getattr(fsp, name)(a, b), want, rtol=1e-12)
    check_grads(getattr(fsp, name), (np.array([0.7, 2.5, -0.5]), np.array([1.3, 0.4, 2.2])),
                order=2)


def test_multigammaln():
    for d in (1, 2, 3, 5):
        a = np.array([3.5, 7.0, 12.25])
        np.testing.assert_allclose(fsp.multigammaln(a, d), ss.multigammaln(a, d), rtol=1e-13)
        check_grads(lambda a: fsp.multigammaln(a, d), (a,), order=2)
    with pytest.raises(ValueError, match="a > "):
        fsp.multigammaln(np.array([0.5]), 3)


A_VALUES = np.array([0.0, 0.1, 0.5, 1.0, 2.5, 10.0, 100.0, 1000.0, 3.0, -1.0, 2.0])
X_VALUES = np.array([1.0, 0.01, 3.0, 0.0, 2.0, 15.0, 90.0, 1010.0, np.inf, 1.0, -1.0])


@pytest.mark.parametrize("name", ["gammainc", "gammaincc"])
def test_incomplete_gamma(name):
    a, x = np.meshgrid(A_VALUES, X_VALUES)
    got = getattr(fsp, name)(a, x)
    want = getattr(ss, name)(a, x)
    np.testing.assert_allclose(got, want, rtol=1e-11, atol=1e-300)
    check_grads(lambda x: getattr(fsp, name)(np.array([0.5, 2.0, 30.0]), x),
                (np.array([0.3, 4.0, 25.0]),), order=2)
    with pytest.raises(ValueError, match="no derivative with respect to a"):
        funcgrad.grad(lambda a: getattr(fsp, name)(a, 2.0))(1.5)


def test_betainc():
    rng = np.random.default_rng(0)
    a = np.concatenate([rng.uniform(0.1, 20, 40), [0.0, 1.0, 2.0, 0.5, -1.0, 1.0]])
    b = np.concatenate([rng.uniform(0.1, 20, 40), [1.0, 0.0, 3.0, 0.5, 1.0, 1.0]])
    x = np.concatenate([rng.uniform(0, 1, 40), [0.3, 0.3, 1.0, 0.0, 0.5, 1.5]])
    np.testing.assert_allclose(fsp.betainc(a, b, x), ss.betainc(a, b, x), rtol=1e-11,
                               atol=1e-300)
    check_grads(lambda x: fsp.betainc(np.array([0.5, 2.0, 8.0]), np.array([3.0, 2.0, 0.7]), x),
                (np.array([0.2, 0.5, 0.9]),), order=2)
    with pytest.raises(ValueError, match="no derivative with respect to b"):
        funcgrad.grad(lambda b: fsp.betainc(2.0, b, 0.3))(1.5)


def test_xlogy_xlog1py_listed():
    x, y = np.array([0.0, 1.5, 2.0]), np.array([0.0, 2.0, 0.5])
    np.testing.assert_allclose(fsp.xlogy(x, y), ss.xlogy(x, y))
    np.testing.assert_allclose(fsp.xlog1py(x, y), ss.xlog1py(x, y))

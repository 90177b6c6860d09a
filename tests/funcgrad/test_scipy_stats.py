"""funcgrad.scipy.stats against scipy.stats (issue 17, item 12): log-densities, densities,
distribution functions on points inside and outside the support, and derivatives to second
order in x and the parameters (finite differences in float64)."""
from __future__ import annotations

import numpy as np
import pytest

import funcgrad
import funcgrad.scipy.stats as fst
from funcgrad.test_util import check_grads

sst = pytest.importorskip("scipy.stats")

RNG = np.random.default_rng(0)
X = np.array([-3.0, -0.5, 0.0, 0.3, 0.9, 1.0, 2.5, 7.0])

# name, parameters (after x), functions, the x used, differentiable parameter positions
DISTS = [
    ("norm", (0.3, 1.7), ["logpdf", "pdf", "cdf", "logcdf", "sf", "logsf"], X, (0, 1, 2)),
    ("t", (3.5, 0.35, 1.7), ["logpdf", "pdf", "cdf", "sf"], X, (0, 2, 3)),
    ("gamma", (2.5, -0.2, 1.3), ["logpdf", "pdf", "cdf", "sf"], X, (0, 2, 3)),
    ("chi2", (3.0, 0.1, 0.8), ["logpdf", "pdf", "cdf", "sf"], X, (0, 2, 3)),
    ("beta", (2.5, 1.5, -0.5, 2.0), ["logpdf", "pdf", "cdf", "sf"], X, (0, 3, 4)),
    ("expon", (0.2, 1.5), ["logpdf", "pdf", "cdf", "sf", "logsf"], X, (0, 1, 2)),
    ("laplace", (0.2, 1.5), ["logpdf", "pdf", "cdf", "sf"], X, (0, 1, 2)),
    ("logistic", (0.2, 1.5), ["logpdf", "pdf", "cdf", "sf"], X, (0, 1, 2)),
    ("uniform", (-1.0, 3.0), ["logpdf", "pdf", "cdf", "sf"], X, (0,)),
    ("cauchy", (0.2, 1.5), ["logpdf", "pdf", "cdf", "sf"], X, (0, 1, 2)),
]


def _interior(name, x, params):
    """Points away from the support's edges and the kinks (for finite differences)."""
    lo = {"gamma": params[1], "chi2": params[1], "expon": params[0]}.get(name)
    keep = np.ones(x.shape, bool)
    if lo is not None:
        keep &= x > lo + 0.1
    if name == "beta":
        keep &= (x > params[2] + 0.1) & (x < params[2] + params[3] - 0.1)
    if name == "uniform":
        keep &= (x > params[0] + 0.1) & (x < params[0] + params[1] - 0.1)
    if name == "laplace":
        keep &= np.abs(x - params[0]) > 0.1
    return x[keep]


@pytest.mark.parametrize("name, params, fns, x, diff", DISTS, ids=[d[0] for d in DISTS])
def test_values_and_derivatives_as_scipy(name, params, fns, x, diff):
    ours, theirs = getattr(fst, name), getattr(sst, name)
    for fn in fns:
        got = getattr(ours, fn)(x, *params)
        want = getattr(theirs, fn)(x, *params)
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12, err_msg=f"{name}.{fn}")
        assert getattr(ours, fn)(x.astype(np.float32), *params).dtype == np.float32
        xi = _interior(name, x, params)
        args = (xi,) + tuple(np.float64(p) for p in params)
        # second order in every parameter for the closed-form logpdf; first order in x
        # for the rest (the incomplete gamma/beta kernels have their own tests; keeping
        # this file fast)
        for i in (diff if fn == "logpdf" else (0,)):
            def f(v, i=i, fn=fn):
                full = list(args)
                full[i] = v
                return getattr(ours, fn)(*full)
            check_grads(f, (args[i],), order=2 if fn == "logpdf" else 1, rtol=1e-5,
                        atol=1e-6)


def test_poisson_as_scipy():
    k = np.array([-1.0, 0.0, 1.0, 2.0, 3.5, 7.0, 20.0])
    for fn in ("logpmf", "pmf", "cdf", "sf"):
        np.testing.assert_allclose(getattr(fst.poisson, fn)(k, 3.2),
                                   getattr(sst.poisson, fn)(k, 3.2), rtol=1e-10, atol=1e-14)
        check_grads(lambda mu, fn=fn: getattr(fst.poisson, fn)(k[[1, 2, 3, 5, 6]], mu), (3.2,),
                    order=2)


def test_multivariate_normal_as_scipy():
    d = 3
    m = RNG.standard_normal((d, d))
    cov = m @ m.T + np.eye(d)
    mean = RNG.standard_normal(d)
    x = RNG.standard_normal((5, d))
    np.testing.assert_allclose(fst.multivariate_normal.logpdf(x, mean, cov),
                               sst.multivariate_normal.logpdf(x, mean, cov), rtol=1e-12)
    np.testing.assert_allclose(fst.multivariate_normal.pdf(x[0], mean, cov),
                               sst.multivariate_normal.pdf(x[0], mean, cov), rtol=1e-12)
    np.testing.assert_allclose(fst.multivariate_normal.entropy(mean, cov),
                               sst.multivariate_normal.entropy(mean, cov), rtol=1e-12)
    check_grads(lambda v, mu, c: fst.multivariate_normal.logpdf(v, mu, c),
                (x, mean, cov), order=2)
    # a singular covariance (rank 2): pseudo-inverse and pseudo-determinant, as SciPy
    u = RNG.standard_normal((d, 2))
    sing = u @ u.T
    xs = RNG.standard_normal((4, 2)) @ u.T + mean     # points in the support
    np.testing.assert_allclose(
        fst.multivariate_normal.logpdf(xs, mean, sing, allow_singular=True),
        sst.multivariate_normal.logpdf(xs, mean, sing, allow_singular=True), rtol=1e-8)
    np.testing.assert_allclose(
        fst.multivariate_normal.entropy(mean, sing, allow_singular=True),
        sst.multivariate_normal(mean, sing, allow_singular=True).entropy(), rtol=1e-8)
    g = funcgrad.grad(lambda v: fst.multivariate_normal.logpdf(v, mean, sing,
                                                               allow_singular=True))(xs[0])
    assert np.all(np.isfinite(g))
    # diagonal and scalar covariances
    np.testing.assert_allclose(fst.multivariate_normal.logpdf(x, mean, np.array([1., 2., 3.])),
                               sst.multivariate_normal.logpdf(x, mean, np.diag([1., 2., 3.])),
                               rtol=1e-12)


def test_dirichlet_as_scipy():
    alpha = np.array([1.5, 2.0, 0.7])
    x = np.array([0.2, 0.5, 0.3])
    np.testing.assert_allclose(fst.dirichlet.logpdf(x, alpha), sst.dirichlet.logpdf(x, alpha),
                               rtol=1e-12)
    np.testing.assert_allclose(fst.dirichlet.pdf(x, alpha), sst.dirichlet.pdf(x, alpha),
                               rtol=1e-12)
    check_grads(lambda v, a: fst.dirichlet.logpdf(v, a), (x, alpha), order=2)


def test_t_cdf_at_its_centre():
    """At x = loc the betainc form's slope is 0 * inf: the density is used there."""
    g = funcgrad.grad(lambda v: fst.t.cdf(v, 3.5, 0.3, 1.7))(0.3)
    np.testing.assert_allclose(g, sst.t.pdf(0.3, 3.5, 0.3, 1.7), rtol=1e-13)
    np.testing.assert_allclose(fst.t.cdf(0.3, 3.5, 0.3, 1.7), 0.5)


def test_norm_ppf_isf_entropy_and_bad_scale():
    q = np.array([0.01, 0.3, 0.5, 0.99])
    np.testing.assert_allclose(fst.norm.ppf(q, 1.0, 2.0), sst.norm.ppf(q, 1.0, 2.0),
                               rtol=1e-12)
    np.testing.assert_allclose(fst.norm.isf(q, 1.0, 2.0), sst.norm.isf(q, 1.0, 2.0),
                               rtol=1e-12)
    np.testing.assert_allclose(fst.norm.entropy(0.0, 2.0), sst.norm.entropy(0.0, 2.0))
    assert np.isnan(fst.norm.logpdf(0.0, 0.0, -1.0)) and np.isnan(sst.norm.logpdf(0, 0, -1))
    check_grads(lambda v: fst.norm.ppf(v, 1.0, 2.0), (q,), order=2)

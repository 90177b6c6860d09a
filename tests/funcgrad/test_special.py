"""funcgrad.scipy.special: values against SciPy (accuracy of our own erf, gammaln,
digamma, polygamma), derivatives to order 2 (order 3 for the gamma family), stability of
logsumexp/softmax/log_softmax at huge and -inf inputs, float32, and that the library does
not import SciPy."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import funcgrad
import funcgrad.numpy as fnp
import funcgrad.scipy.special as fsp
from funcgrad._src.errors import FuncgradTypeError, FuncgradValueError
from funcgrad.test_util import check_grads

sp = pytest.importorskip("scipy.special", reason="SciPy is needed to compare values")

seeds = st.integers(0, 2**32 - 1)
shapes = st.lists(st.integers(1, 4), min_size=0, max_size=3).map(tuple)


def _close(got, want, rtol, atol=0.0):
    np.testing.assert_allclose(got, want, rtol=rtol, atol=atol)


# ---- accuracy of the numerical kernels -----------------------------------------------------
def test_erf_erfc_accuracy():
    x = np.concatenate([np.linspace(-7, 7, 14001), [0.0, 1e-300, 1e-8, -1e-8, 2.5, 27.0]])
    _close(fsp.erf(x), sp.erf(x), rtol=1e-14)
    _close(fsp.erfc(x), sp.erfc(x), rtol=1e-14, atol=1e-300)   # SciPy flushes subnormals
    tail = np.linspace(1, 26, 5001)                 # erfc stays relatively accurate when tiny
    _close(fsp.erfc(tail), sp.erfc(tail), rtol=1e-14)
    np.testing.assert_array_equal(fsp.erf(np.array([np.inf, -np.inf])), [1.0, -1.0])
    np.testing.assert_array_equal(fsp.erfc(np.array([np.inf, -np.inf])), [0.0, 2.0])
    assert np.isnan(fsp.erf(np.nan)) and np.isnan(fsp.erfc(np.nan))


def test_gammaln_accuracy():
    rng = np.random.default_rng(0)
    x = np.concatenate([np.linspace(1e-3, 40, 40001), 10.0 ** rng.uniform(-12, 12, 2000)])
    # relative 1e-13, except right next to the zeros at 1 and 2 (absolute there)
    _close(fsp.gammaln(x), sp.gammaln(x), rtol=1e-13, atol=1e-15)
    neg = -rng.uniform(0, 40, 3000)
    neg = neg[np.abs(neg - np.round(neg)) > 1e-3]
    _close(fsp.gammaln(neg), sp.gammaln(neg), rtol=1e-12, atol=1e-14)
    _close(fsp.gammaln(np.arange(1.0, 30.0)), np.log(np.cumprod(np.r_[1.0, np.arange(1.0, 29.0)])),
           rtol=1e-14, atol=1e-15)
    assert np.all(fsp.gammaln(np.array([0.0, -1.0, -5.0, np.inf])) == np.inf)


def test_digamma_polygamma_accuracy():
    rng = np.random.default_rng(1)
    x = np.concatenate([np.linspace(1e-3, 40, 40001), 10.0 ** rng.uniform(-12, 12, 2000),
                        [1.4616321449683622]])
    _close(fsp.digamma(x), sp.digamma(x), rtol=1e-13, atol=1e-16)
    neg = -rng.uniform(0, 40, 3000)
    neg = neg[np.abs(neg - np.round(neg)) > 1e-3]
    _close(fsp.digamma(neg), sp.digamma(neg), rtol=1e-11, atol=1e-14)
    for n in (1, 2, 3, 6):
        xs = x[x < 1e6]
        _close(fsp.polygamma(n, xs), sp.polygamma(n, xs), rtol=1e-13)
        _close(fsp.polygamma(n, neg), sp.polygamma(n, neg), rtol=1e-11, atol=1e-12)
    _close(fsp.polygamma(0, x), fsp.digamma(x), rtol=0)
    got = fsp.digamma(np.array([0.0, -0.0, -2.0]))
    assert got[0] == -np.inf and got[1] == np.inf and np.isnan(got[2])


@given(shapes, seeds)
def test_elementwise_values_match_scipy(shape, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=shape) * 4
    p = rng.uniform(0.01, 0.99, size=shape)
    y = rng.uniform(0.0, 3.0, size=shape)
    _close(fsp.expit(x * 50), sp.expit(x * 50), rtol=1e-14)
    _close(fsp.log_expit(x * 50), sp.log_expit(x * 50), rtol=1e-12)
    _close(fsp.logit(p), sp.logit(p), rtol=1e-12, atol=1e-14)
    _close(fsp.xlogy(x, y), sp.xlogy(x, y), rtol=1e-14)
    _close(fsp.xlog1py(x, y), sp.xlog1py(x, y), rtol=1e-14)
    _close(fsp.psi(np.abs(x) + 0.1), sp.psi(np.abs(x) + 0.1), rtol=1e-13, atol=1e-16)


def test_xlogy_at_zero():
    np.testing.assert_array_equal(fsp.xlogy(np.array([0.0, 0.0]), np.array([0.0, 2.0])), [0, 0])
    np.testing.assert_array_equal(fsp.xlog1py(0.0, -1.0), 0.0)
    # d/dy is 0 where x == 0 (identically zero there); d/dx is log(y)
    with np.errstate(divide="ignore"):            # d/dx = log(0) = -inf, as it should be
        gx, gy = funcgrad.grad(lambda a, b: fnp.sum(fsp.xlogy(a, b)), argnums=(0, 1))(
            np.array([0.0, 0.0, 2.0]), np.array([0.0, 3.0, 4.0]))
    np.testing.assert_allclose(gy, [0.0, 0.0, 0.5])
    np.testing.assert_allclose(gx, [-np.inf, np.log(3.0), np.log(4.0)])
    assert fsp.xlogy(2, 3).dtype == np.float64
    assert fsp.xlogy(np.float32(2), 3.0).dtype == np.float32


# ---- derivatives ------------------------------------------------------------------------------
ELEMENTWISE = {
    "erf": (fsp.erf, lambda rng, s: rng.normal(size=s) * 1.5),
    "erfc": (fsp.erfc, lambda rng, s: rng.normal(size=s) * 2),
    "gammaln": (fsp.gammaln, lambda rng, s: rng.uniform(0.2, 9.0, size=s)),
    "gammaln_negative": (fsp.gammaln,
                         lambda rng, s: -rng.uniform(0.1, 0.9, size=s) - rng.integers(0, 4, size=s)),
    "digamma": (fsp.digamma, lambda rng, s: rng.uniform(0.2, 9.0, size=s)),
    "polygamma1": (lambda v: fsp.polygamma(1, v), lambda rng, s: rng.uniform(0.3, 9.0, size=s)),
    "polygamma2_negative": (lambda v: fsp.polygamma(2, v),
                            lambda rng, s: -rng.uniform(0.2, 0.8, size=s) - 1),
    "expit": (fsp.expit, lambda rng, s: rng.normal(size=s) * 4),
    "log_expit": (fsp.log_expit, lambda rng, s: rng.normal(size=s) * 4),
    "logit": (fsp.logit, lambda rng, s: rng.uniform(0.1, 0.9, size=s)),
}


@pytest.mark.parametrize("name", sorted(ELEMENTWISE))
@given(shapes, seeds)
def test_elementwise_grads(name, shape, seed):
    f, draw = ELEMENTWISE[name]
    x = np.asarray(draw(np.random.default_rng(seed), shape), dtype=np.float64)
    check_grads(f, (x,), order=2)


def test_gamma_family_third_order_and_known_derivatives():
    x = np.array([0.7, 1.0, 2.5, 6.0])
    check_grads(fsp.gammaln, (x,), order=3)
    np.testing.assert_allclose(funcgrad.grad(lambda v: fnp.sum(fsp.gammaln(v)))(x),
                               sp.digamma(x), rtol=1e-13)
    np.testing.assert_allclose(funcgrad.grad(lambda v: fnp.sum(fsp.digamma(v)))(x),
                               sp.polygamma(1, x), rtol=1e-13)
    np.testing.assert_allclose(funcgrad.grad(lambda v: fnp.sum(fsp.erf(v)))(x),
                               2 / np.sqrt(np.pi) * np.exp(-x ** 2), rtol=1e-14)
    h = funcgrad.hessian(lambda v: fsp.gammaln(v[0]))(np.array([3.0]))
    np.testing.assert_allclose(h, [[sp.polygamma(1, 3.0)]], rtol=1e-13)


@given(shapes, shapes, seeds)
def test_xlogy_xlog1py_grads_broadcast(sx, sy, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=sx)
    y = rng.uniform(0.5, 3.0, size=sy)
    try:
        np.broadcast_shapes(sx, sy)
    except ValueError:
        return
    check_grads(fsp.xlogy, (x, y), order=2)
    check_grads(fsp.xlog1py, (x, y - 0.4), order=2)


# ---- logsumexp, softmax, log_softmax ---------------------------------------------------------
def _axes(data, ndim):
    return data.draw(st.one_of(st.none(), st.integers(-max(ndim, 1), max(ndim, 1) - 1)
                               if ndim else st.none(),
                               st.permutations(list(range(ndim))).map(lambda p: tuple(p[:2]))))


@given(shapes.filter(lambda s: len(s) > 0), st.data(), st.booleans(), seeds)
def test_logsumexp(shape, data, keepdims, seed):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=shape) * 3
    axis = _axes(data, len(shape))
    _close(fsp.logsumexp(a, axis=axis, keepdims=keepdims),
           sp.logsumexp(a, axis=axis, keepdims=keepdims), rtol=1e-13)
    check_grads(lambda v: fsp.logsumexp(v, axis=axis, keepdims=keepdims), (a,), order=2)
    b = rng.uniform(0.2, 2.0, size=shape[-1:])
    _close(fsp.logsumexp(a, axis=axis, b=b), sp.logsumexp(a, axis=axis, b=b), rtol=1e-13)
    check_grads(lambda v, w: fsp.logsumexp(v, axis=axis, b=w), (a, b), order=2)
    bs = b - 1.0                                  # signed terms
    r, sign = fsp.logsumexp(a, axis=axis, b=bs, return_sign=True)
    r_ref, sign_ref = sp.logsumexp(a, axis=axis, b=bs, return_sign=True)
    np.testing.assert_array_equal(sign, sign_ref)
    _close(r, r_ref, rtol=1e-10, atol=1e-12)


@given(shapes.filter(lambda s: len(s) > 0), st.data(), seeds)
def test_softmax_log_softmax(shape, data, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=shape) * 3
    axis = _axes(data, len(shape))
    _close(fsp.softmax(x, axis=axis), sp.softmax(x, axis=axis), rtol=1e-13, atol=1e-300)
    _close(fsp.log_softmax(x, axis=axis), sp.log_softmax(x, axis=axis), rtol=1e-12,
           atol=1e-14)
    check_grads(lambda v: fsp.softmax(v, axis=axis), (x,), order=2)
    check_grads(lambda v: fsp.log_softmax(v, axis=axis), (x,), order=2)


def test_stability_at_huge_and_minus_inf_inputs():
    huge = np.array([1e308, 1e308, -1e308])
    with np.errstate(over="ignore"):
        v, g = funcgrad.value_and_grad(fsp.logsumexp)(huge)
        assert np.isfinite(v) and np.all(np.isfinite(g))
        np.testing.assert_allclose(g, [0.5, 0.5, 0.0])
        p = fsp.softmax(np.array([1000.0, 1000.0, 0.0]))
        np.testing.assert_allclose(p, [0.5, 0.5, 0.0])
        g = funcgrad.grad(lambda v: fnp.sum(fsp.log_softmax(v)[:2]))(huge)
        assert np.all(np.isfinite(g))
    with_inf = np.array([-np.inf, 0.0, 1.0])
    for f in (fsp.logsumexp, lambda v: fsp.softmax(v)[1], lambda v: fsp.log_softmax(v)[2],
              lambda v: fsp.logsumexp(v, b=np.array([1.0, 2.0, 3.0]))):
        g = funcgrad.grad(f)(with_inf)
        assert np.all(np.isfinite(g)) and g[0] == 0
        h = funcgrad.hessian(f)(with_inf)
        assert np.all(np.isfinite(h))
    all_inf = np.full(3, -np.inf)
    v, g = funcgrad.value_and_grad(fsp.logsumexp)(all_inf)
    assert v == -np.inf
    np.testing.assert_array_equal(g, np.zeros(3))
    g = funcgrad.grad(lambda v: fnp.sum(fsp.expit(v)))(np.array([-1e4, 1e4, 0.0]))
    np.testing.assert_allclose(g, [0.0, 0.0, 0.25])


# ---- dtypes, errors, optional SciPy ------------------------------------------------------------
@pytest.mark.parametrize("f", [fsp.erf, fsp.erfc, fsp.gammaln, fsp.digamma, fsp.expit,
                               fsp.logit, fsp.log_expit, lambda v: fsp.polygamma(1, v),
                               lambda v: fsp.logsumexp(v, axis=0), lambda v: fsp.softmax(v),
                               lambda v: fsp.log_softmax(v, axis=0),
                               lambda v: fsp.xlogy(v, v), lambda v: fsp.xlog1py(v, v)])
def test_float32_stays_float32(f):
    x = np.array([0.3, 0.6, 0.9], dtype=np.float32)
    assert f(x).dtype == np.float32
    g = funcgrad.grad(lambda v: fnp.sum(f(v)))(x)
    assert g.dtype == np.float32
    _, t = funcgrad.jvp(f, (x,), (np.ones_like(x),))
    assert t.dtype == np.float32
    g64 = funcgrad.grad(lambda v: fnp.sum(f(v)))(x.astype(np.float64))
    np.testing.assert_allclose(g, g64, rtol=1e-5, atol=1e-6)


def test_integer_input_and_errors():
    assert fsp.gammaln(np.array([1, 2, 3])).dtype == np.float64
    np.testing.assert_allclose(fsp.gammaln(np.array([1, 2, 4])), [0, 0, np.log(6)], atol=1e-15)
    with pytest.raises(FuncgradTypeError, match="complex"):
        fsp.gammaln(np.array([1j]))  # complex erf is supported (with SciPy)
    with pytest.raises(FuncgradValueError, match="non-negative integer"):
        fsp.polygamma(1.5, 2.0)
    with pytest.raises(FuncgradValueError, match="non-negative integer"):
        fsp.polygamma(-1, 2.0)


def test_library_does_not_import_scipy():
    code = ("import sys, numpy as np, funcgrad, funcgrad.scipy.special as s; "
            "s.logsumexp(np.ones(3)); s.gammaln(np.ones(2)); s.erf(np.ones(2)); "
            "import funcgrad.numpy.linalg, funcgrad.numpy.fft; "
            "assert 'scipy' not in sys.modules, 'scipy was imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_vmap_uses_batching_rules():
    import warnings
    rng = np.random.default_rng(4)
    x = rng.normal(size=(3, 4))
    y = rng.uniform(0.5, 2.0, size=(4, 2, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_allclose(funcgrad.vmap(fsp.erf, in_axes=1)(x), sp.erf(x.T), rtol=1e-14)
        got = funcgrad.vmap(fsp.xlogy, in_axes=(1, 0))(x, y)
        want = np.stack([sp.xlogy(x[:, i], y[i]) for i in range(4)])
        np.testing.assert_allclose(got, want, rtol=1e-14)
        g = funcgrad.vmap(funcgrad.grad(lambda v: fnp.sum(fsp.gammaln(v))))(np.abs(x) + 0.5)
    np.testing.assert_allclose(g, sp.digamma(np.abs(x) + 0.5), rtol=1e-13)

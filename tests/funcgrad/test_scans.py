"""funcgrad.numpy's scans, sorting and statistics (funcgrad/_src/prims/scans.py): cumsum,
cumprod, diff, ediff1d, sort/argsort/partition, median, quantile/percentile, average,
ptp, count_nonzero, the nan* reductions, cov and corrcoef.

Each ``Case`` draws its arguments with hypothesis and runs through the table checks of
``tests/funcgrad/table.py``; then targeted tests: ties, zeros in cumprod, NaN positions,
errors, Tracer methods, jit and vmap.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import strategies as st

import funcgrad
import funcgrad.numpy as fnp
from funcgrad.test_util import check_grads

from . import table
from .table import _axis, _eager_and_traced, _normal, _rng, _shape, _with_nans


def Case(*args, **kw):
    """A table case; these composites are compared with NumPy to 1e-10."""
    return table.Case(*args, **{"rtol": 1e-10, **kw})


def _ax_case(*args, **kw):
    return table._ax_case(*args, **{"rtol": 1e-10, **kw})


# ---- scans, sorting and statistics -----------------------------------------------------------


def _draw_diff(d):
    shape = _shape(d)
    rng = _rng(d)
    axis = _axis(d, len(shape))
    kw = {}
    args = [rng.standard_normal(shape)]
    if d.draw(st.booleans()):
        kw["prepend"] = 0.5
    if d.draw(st.booleans()):
        ashape = list(shape)
        ashape[axis] = 2
        args.append(rng.standard_normal(tuple(ashape)))
    return tuple(args), {"axis": axis, "n": d.draw(st.integers(0, 3)), "kw": kw}


def _diff(m, x, *app, axis, n, kw):
    if app:
        kw = dict(kw, append=app[0])
    return m.diff(x, n=n, axis=axis, **kw)


def _draw_partition(d):
    shape = _shape(d)
    axis = _axis(d, len(shape), allow_none=True)
    n = int(np.prod(shape)) if axis is None else shape[axis]
    kth = d.draw(st.one_of(st.integers(-n, n - 1),
                           st.lists(st.integers(0, n - 1), min_size=1, max_size=3)))
    return (_normal(_rng(d), shape),), {"axis": axis, "kth": kth}


_QMETHODS = ["linear", "lower", "higher", "nearest", "midpoint", "inverted_cdf",
             "averaged_inverted_cdf", "closest_observation", "interpolated_inverted_cdf",
             "hazen", "weibull", "median_unbiased", "normal_unbiased"]


def _draw_axes(d, nd):
    return d.draw(st.one_of(st.none(), st.integers(-nd, nd - 1),
                            st.sets(st.integers(0, nd - 1), min_size=1).map(tuple)))


def _draw_quantile(nan, percent=False):
    def draw(d):
        shape = _shape(d)
        rng = _rng(d)
        axis = _draw_axes(d, len(shape))
        qs = st.floats(0, 1)
        q = d.draw(st.one_of(qs, st.lists(qs, min_size=1, max_size=3).map(np.asarray)))
        if percent:
            q = q * 100
        x = rng.standard_normal(shape)
        if nan:
            x = x.ravel()
            x[rng.random(x.size) < 0.3] = np.nan
            x = x.reshape(shape)
            axes = range(len(shape)) if axis is None else np.atleast_1d(axis)
            first = tuple(0 if i in [a % len(shape) for a in axes] else slice(None)
                          for i in range(len(shape)))
            x[first] = rng.standard_normal(x[first].shape)    # one valid value per slice
        return (x,), {"axis": axis, "q": q, "method": d.draw(st.sampled_from(_QMETHODS)),
                      "keepdims": d.draw(st.booleans())}
    return draw


def _draw_median(nan):
    def draw(d):
        (x,), kw = _draw_quantile(nan)(d)
        return (x,), {"axis": kw["axis"], "keepdims": kw["keepdims"]}
    return draw


def _draw_average(d):
    shape = _shape(d)
    rng = _rng(d)
    nd = len(shape)
    form = d.draw(st.sampled_from(["none", "full", "axis"]))
    x = rng.standard_normal(shape)
    if form == "none":
        return (x,), {"axis": _draw_axes(d, nd), "returned": d.draw(st.booleans())}
    if form == "full":
        return (x, rng.uniform(0.5, 2, shape)), {"axis": _draw_axes(d, nd),
                                                  "returned": d.draw(st.booleans())}
    axis = d.draw(st.lists(st.integers(0, nd - 1), min_size=1, max_size=nd, unique=True))
    axis = tuple(axis) if len(axis) > 1 else axis[0]
    wshape = tuple(shape[a] for a in np.atleast_1d(axis))
    return (x, rng.uniform(0.5, 2, wshape)), {"axis": axis, "returned": d.draw(st.booleans())}


def _draw_nan_reduce(d):
    shape = _shape(d)
    axis = _axis(d, len(shape), allow_none=True)
    return (_with_nans(_rng(d), shape, axis=0 if axis is None else axis),), {
        "axis": axis, "keepdims": d.draw(st.booleans())}


def _draw_nan_std(d):
    """At least two valid values per slice (std has an infinite derivative at 0)."""
    shape = list(_shape(d))
    axis = _axis(d, len(shape), allow_none=True)
    shape[0 if axis is None else axis] = max(2, shape[0 if axis is None else axis])
    x = _with_nans(_rng(d), tuple(shape), axis=0 if axis is None else axis)
    second = [slice(None)] * len(shape)
    second[0 if axis is None else axis] = 1
    x[tuple(second)] = np.arange(1.0, 1.0 + x[tuple(second)].size).reshape(x[tuple(second)].shape)
    return (x,), {"axis": axis, "keepdims": d.draw(st.booleans())}


def _draw_cov(d):
    rng = _rng(d)
    nvar = d.draw(st.integers(1, 3))
    nobs = d.draw(st.integers(3, 5))
    rowvar = d.draw(st.booleans())
    m = rng.standard_normal((nvar, nobs) if rowvar else (nobs, nvar))
    if d.draw(st.booleans()) and nvar == 1:
        m = m.ravel()
    kw = {"rowvar": rowvar, "bias": d.draw(st.booleans())}
    if d.draw(st.booleans()):
        kw["ddof"] = d.draw(st.integers(0, 2))
    if d.draw(st.booleans()):
        kw["fweights"] = rng.integers(1, 3, nobs)
    args = [m]
    if d.draw(st.booleans()):
        args.append(rng.uniform(0.5, 2.0, nobs))
    return tuple(args), {"kw": kw}


def _cov(m, x, *aw, kw):
    if aw:
        kw = dict(kw, aweights=aw[0])
    return m.cov(x, **kw)


def _draw_corrcoef(d):
    rng = _rng(d)
    nvar = d.draw(st.integers(2, 3))
    nobs = d.draw(st.integers(3, 5))
    args = [rng.standard_normal((nvar, nobs))]
    if d.draw(st.booleans()):
        args.append(rng.standard_normal((1, nobs)))
    return tuple(args), {}


def _cummul_domain(rng, shape):
    return rng.choice([-1.0, 1.0], shape) * rng.uniform(0.5, 1.5, shape)


CASES = [
    # scans
    _ax_case("cumsum", lambda m, x, axis: m.cumsum(x, axis=axis)),
    _ax_case("cumprod", lambda m, x, axis: m.cumprod(x, axis=axis), domain=_cummul_domain),
    Case("cumulative_sum", lambda d: ((_normal(_rng(d), _shape(d, max_nd=1)),), {}),
         lambda m, x: m.cumulative_sum(x, include_initial=True)),
    Case("diff", _draw_diff, _diff),
    Case("ediff1d", lambda d: ((_normal(_rng(d), _shape(d)),), {}),
         lambda m, x: m.ediff1d(x, to_begin=[-1.0, 2.0], to_end=3.0)),
    # sorting
    _ax_case("sort", lambda m, x, axis: m.sort(x, axis=axis)),
    _ax_case("argsort", lambda m, x, axis: m.argsort(x, axis=axis, kind="stable"), diff=False),
    Case("partition", _draw_partition, lambda m, x, axis, kth: m.partition(x, kth, axis=axis)),
    Case("argpartition", _draw_partition,
         lambda m, x, axis, kth: m.argpartition(x, kth, axis=axis), diff=False),
    # statistics
    Case("median", _draw_median(False),
         lambda m, x, axis, keepdims: m.median(x, axis=axis, keepdims=keepdims)),
    Case("quantile", _draw_quantile(False),
         lambda m, x, **kw: m.quantile(x, kw.pop("q"), **kw)),
    Case("percentile", _draw_quantile(False, percent=True),
         lambda m, x, **kw: m.percentile(x, kw.pop("q"), **kw)),
    Case("nanmedian", _draw_median(True),
         lambda m, x, axis, keepdims: m.nanmedian(x, axis=axis, keepdims=keepdims)),
    Case("nanquantile", _draw_quantile(True),
         lambda m, x, **kw: m.nanquantile(x, kw.pop("q"), **kw)),
    Case("nanpercentile", _draw_quantile(True, percent=True),
         lambda m, x, **kw: m.nanpercentile(x, kw.pop("q"), **kw)),
    Case("average", _draw_average,
         lambda m, x, *w, axis, returned: m.average(x, axis=axis, weights=w[0] if w else None,
                                                    returned=returned)),
    _ax_case("ptp", lambda m, x, axis: m.ptp(x, axis=axis)),
    _ax_case("count_nonzero", lambda m, x, axis: m.count_nonzero(np.round(x) if m is np else
                                                                 fnp.round(x), axis=axis),
             diff=False),
    *[Case(name, _draw_nan_std if name == "nanstd" else _draw_nan_reduce,
           (lambda name: lambda m, x, axis, keepdims:
            getattr(m, name)(x, axis, keepdims=keepdims))(name))
      for name in ("nansum", "nanprod", "nanmean", "nanvar", "nanstd", "nanmax", "nanmin")],
    Case("nanargmax", _draw_nan_reduce,
         lambda m, x, axis, keepdims: m.nanargmax(x, axis, keepdims=keepdims), diff=False),
    Case("nancumsum", _draw_nan_reduce, lambda m, x, axis, keepdims: m.nancumsum(x, axis)),
    Case("nancumprod", _draw_nan_reduce, lambda m, x, axis, keepdims: m.nancumprod(x, axis)),
    Case("cov", _draw_cov, _cov),
    Case("corrcoef", _draw_corrcoef, lambda m, *xs: m.corrcoef(*xs)),
]

(test_values_match_numpy, test_grads, test_float32, test_mixed_precision,
 test_numpy_dispatch) = table.table_tests(CASES, values=12, grads=12, float32=4, dispatch=2)
test_jit_matches = table.jit_table_test(CASES)


def _jac(f, x):
    return funcgrad.jacfwd(f)(x)


def test_cumprod_with_zeros_is_exact_to_first_order():
    x = np.array([[2.0, 0.0, 3.0, 0.0, 5.0], [0.0, 1.5, -2.0, 4.0, 0.5]])
    f = lambda x: fnp.cumprod(x, axis=-1)  # noqa: E731
    # the Jacobian of a multilinear map: central differences are exact up to rounding
    check_grads(f, (x,), order=1)
    j = _jac(f, x[0])
    want = np.zeros((5, 5))
    for i in range(5):
        for k in range(i + 1):
            want[i, k] = np.prod([x[0, m] for m in range(i + 1) if m != k])
    np.testing.assert_allclose(j, want)
    np.testing.assert_allclose(funcgrad.jacrev(f)(x[0]), want)


def test_cumprod_second_order_without_zeros():
    x = np.array([1.5, -0.7, 2.0, 0.9])
    h = funcgrad.hessian(lambda x: fnp.sum(fnp.cumprod(x)))(x)
    want = np.zeros((4, 4))
    for a in range(4):
        for b in range(4):
            if a != b:
                for i in range(max(a, b), 4):
                    want[a, b] += np.prod([x[m] for m in range(i + 1) if m not in (a, b)])
    np.testing.assert_allclose(h, want, atol=1e-12)


def test_sort_ties_route_to_the_stable_order():
    x = np.array([1.0, 0.0, 1.0])
    j = _jac(fnp.sort, x)
    np.testing.assert_array_equal(j, [[0, 1, 0], [1, 0, 0], [0, 0, 1]])
    np.testing.assert_array_equal(funcgrad.jacrev(fnp.sort)(x), j)


def test_partition_gradient_is_a_permutation():
    x = np.array([3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0])
    f = lambda x: fnp.partition(x, 3)  # noqa: E731
    j = _jac(f, x)
    np.testing.assert_array_equal(j.sum(0), np.ones(8))
    np.testing.assert_array_equal(j @ x, np.partition(x, 3))


def test_sort_kind_and_order_arguments():
    x = np.array([2.0, 1.0])
    np.testing.assert_array_equal(fnp.sort(x, kind="mergesort"), [1.0, 2.0])
    with pytest.raises(ValueError, match="kind"):
        fnp.sort(x, kind="bogo")
    with pytest.raises(TypeError, match="order"):
        fnp.argsort(x, order="f")
    with pytest.raises(ValueError, match="kth"):
        fnp.partition(x, 2)


def test_median_and_quantile_gradients_interpolate():
    x = np.array([4.0, 1.0, 3.0, 2.0])
    np.testing.assert_allclose(funcgrad.grad(fnp.median)(x), [0.0, 0.0, 0.5, 0.5])
    g = funcgrad.grad(lambda x: fnp.quantile(x, 0.1))(x)      # virtual index 0.3
    np.testing.assert_allclose(g, [0.0, 0.7, 0.0, 0.3])


def test_quantile_is_differentiable_in_q():
    x = np.array([4.0, 1.0, 3.0, 2.0])
    g = funcgrad.grad(lambda q: fnp.quantile(x, q))(0.4)
    np.testing.assert_allclose(g, 3.0)    # slope (n - 1) * (x[2] - x[1]) of sorted x


def test_nan_aware_functions_give_zero_gradient_to_nans():
    x = np.array([[1.0, np.nan, 3.0], [np.nan, np.nan, np.nan]])
    for f in (fnp.nansum, fnp.nanmean, fnp.nanmax, fnp.nanmin, fnp.nanprod, fnp.nanvar,
              fnp.nanstd, fnp.nanmedian, lambda x, axis: fnp.nanquantile(x, 0.3, axis=axis)):
        with np.errstate(all="ignore"):     # the all-NaN row divides 0 by 0, as NumPy
            g = funcgrad.grad(lambda x: fnp.nansum(f(x, axis=1)))(x)
        assert np.all(g[np.isnan(x)] == 0), f
        assert np.all(np.isfinite(g))


def test_all_nan_slices_give_nan_like_numpy():
    x = np.array([[1.0, np.nan], [np.nan, np.nan]])
    with np.errstate(all="ignore"), pytest.warns(RuntimeWarning):
        for name in ("nanmean", "nanmax", "nanmin", "nanmedian", "nanvar"):
            np.testing.assert_array_equal(getattr(fnp, name)(x, axis=1),
                                          getattr(np, name)(x, axis=1))
    with pytest.raises(ValueError, match="All-NaN"):
        fnp.nanargmax(x, axis=1)


def test_nan_propagates_in_median_and_quantile():
    x = np.array([[1.0, np.nan, 3.0], [1.0, 2.0, 3.0]])
    np.testing.assert_array_equal(fnp.median(x, axis=1), np.median(x, axis=1))
    np.testing.assert_array_equal(fnp.quantile(x, [0.2], axis=1), np.quantile(x, [0.2], axis=1))


@pytest.mark.parametrize("method", ["linear", "midpoint", "hazen", "weibull",
                                    "interpolated_inverted_cdf", "median_unbiased"])
@pytest.mark.parametrize("name", ["quantile", "nanquantile"])
def test_float32_quantile_with_an_array_q_interpolates_as_numpy(name, method):
    # float32 a, float64 q: a float64 result whose neighbours' difference NumPy takes in
    # float32 (_lerp's b - a) before promoting; traced (jvp, jit's trace and replay) the
    # same, not a float32-rounding away (the difference was taken in float64)
    x = np.array([[-0.1321, 0.6404, 0.1049, -0.5357],
                  [1.2345, -0.3333, 0.7071, 0.0101]], np.float32)
    q = np.array([0.9127, 0.6066, 0.1])
    want = getattr(np, name)(x, q, axis=-1, method=method)

    def f(x):
        return getattr(fnp, name)(x, q, axis=-1, method=method)
    got = [funcgrad.jvp(f, (x,), (x,))[0]]
    jf = funcgrad.jit(f)
    got += [jf(x) for _ in range(3)]
    for g in got:
        assert g.dtype == np.float64
        np.testing.assert_array_equal(g, want)


@pytest.mark.parametrize("wdtype", [np.float32, np.int64, np.float64])
def test_cov_weights_are_float64_as_numpy(wdtype):
    # NumPy's cov takes its weights as float64 whatever their dtype: float32 aweights
    # traced (jvp, jit's trace and replay) were summed in float32
    x = np.array([[0.3, -1.2, 0.7, 2.1, -0.4]], np.float32)
    aw = np.array([0.51, 1.73, 0.92, 1.37, 1.11]).astype(wdtype) + (wdtype == np.int64)
    fw = np.array([1, 2, 1, 1, 2])
    for kw in [dict(aweights=aw), dict(aweights=aw, fweights=fw, ddof=2)]:
        want = np.cov(x, **kw)
        got = [funcgrad.jvp(lambda x: fnp.cov(x, **kw), (x,), (x,))[0]]
        jf = funcgrad.jit(lambda x: fnp.cov(x, **kw))
        got += [jf(x) for _ in range(3)]
        for g in got:
            assert g.dtype == want.dtype == np.float64
            np.testing.assert_allclose(g, want, rtol=1e-15, atol=0)


def test_quantile_errors():
    cases = [(lambda x: fnp.quantile(x, 1.5), ValueError, "range"),
             (lambda x: fnp.percentile(x, -1), ValueError, "range"),
             (lambda x: fnp.quantile(x, 0.5, method="bogus"), ValueError, "method"),
             (lambda x: fnp.quantile(x, 0.5, weights=np.ones(3)), TypeError, "weights"),
             (lambda x: fnp.quantile(x + 1j, 0.5), TypeError, "real")]
    for f, err, match in cases:
        for run in _eager_and_traced(f, np.arange(3.0)):
            with pytest.raises(err, match=match):
                run()


def test_average_zero_weights_and_shape_errors():
    cases = [(lambda x: fnp.average(x, weights=np.zeros(3)), np.ones(3), ZeroDivisionError,
              "(?i)weights sum to zero"),
             (lambda x: fnp.average(x, weights=np.ones(3)), np.ones((2, 3)), TypeError,
              "(?i)axis must be specified"),
             (lambda x: fnp.average(x, axis=0, weights=np.ones(3)), np.ones((2, 3)),
              ValueError, "consistent")]
    for f, x, err, match in cases:
        for run in _eager_and_traced(f, x):
            with pytest.raises(err, match=match):
                run()


def test_count_nonzero_matches_numpy():
    x = np.array([[0.0, 1.0, 2.0], [0.0, 0.0, 3.0]])
    assert fnp.count_nonzero(x) == 3
    np.testing.assert_array_equal(fnp.count_nonzero(x, axis=0, keepdims=True),
                                  np.count_nonzero(x, axis=0, keepdims=True))


def test_tracer_methods():
    """x.cumsum(), x.sort(), ... on tracers call funcgrad.numpy (NumPy's x.sort() is
    in-place, so compare with the function spellings rather than with finite differences)."""
    x = np.array([[3.0, 1.0], [2.0, 5.0]])
    w = np.arange(1.0, 5.0)

    def methods(x):
        return (fnp.sum(x.cumsum(axis=0) * x.cumprod()[:2]) + x.trace() + fnp.sum(x.diagonal())
                + fnp.sum(x.sort(axis=None) * w) + fnp.sum(x.take([0, 3, 3]))
                + fnp.sum(x.repeat(2, axis=1) * w[:, None].reshape(2, 2).repeat(2, axis=1))
                + x.ravel()[x.argsort(axis=None)[1]])

    def functions(x):
        return (fnp.sum(fnp.cumsum(x, axis=0) * fnp.cumprod(x)[:2]) + fnp.trace(x)
                + fnp.sum(fnp.diagonal(x)) + fnp.sum(fnp.sort(x, axis=None) * w)
                + fnp.sum(fnp.take(x, [0, 3, 3]))
                + fnp.sum(fnp.repeat(x, 2, axis=1) * fnp.repeat(w.reshape(2, 2), 2, axis=1))
                + fnp.ravel(x)[fnp.argsort(x, axis=None)[1]])
    np.testing.assert_allclose(funcgrad.grad(methods)(x), funcgrad.grad(functions)(x))
    np.testing.assert_allclose(funcgrad.hessian(methods)(x), funcgrad.hessian(functions)(x))
    rows = lambda x: fnp.sum(x.nonzero()[0] * x[0, 0])  # noqa: E731
    assert funcgrad.grad(rows)(x)[0, 0] == 2.0     # row indices 0 + 0 + 1 + 1


@pytest.mark.filterwarnings("ignore:vmap. primitive:RuntimeWarning")
def test_under_jit_and_vmap():
    x = np.array([[3.0, 1.0, 2.0], [0.5, -1.0, 4.0]])

    def f(x):
        return (fnp.sum(fnp.sort(x, axis=1) * np.arange(3.0)) + fnp.sum(fnp.cumprod(x, axis=1))
                + fnp.sum(fnp.roll(x, 1, axis=1) * x) + fnp.median(x)
                + fnp.sum(fnp.partition(x, 1, axis=1)[:, 0]))
    want = f(x)
    np.testing.assert_allclose(funcgrad.jit(f)(x), want)
    np.testing.assert_allclose(funcgrad.jit(funcgrad.grad(f))(x), funcgrad.grad(f)(x))
    per_row = lambda r: fnp.sum(fnp.cumsum(fnp.sort(r)) * fnp.cumprod(r))  # noqa: E731
    np.testing.assert_allclose(funcgrad.vmap(per_row)(x), [per_row(r) for r in x])
    np.testing.assert_allclose(funcgrad.vmap(funcgrad.grad(per_row))(x),
                               [funcgrad.grad(per_row)(r) for r in x])

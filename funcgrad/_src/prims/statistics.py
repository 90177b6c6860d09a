"""Statistics built on sorting and reductions, all composites: ``median``/``quantile``/
``percentile`` (a sort, a gather and a linear interpolation), ``average``, the ``nan*``
reductions (``where`` replaces NaN first, so NaN positions get a zero gradient), ``cov``,
``corrcoef``. On plain NumPy inputs the composites whose NumPy twin gives the same result
(median, quantile, percentile and their nan versions, average, ptp, cov, corrcoef) call
NumPy directly, after funcgrad's own argument checks.
"""
from __future__ import annotations

import math

import numpy as np

from ..backend import dtype_name
from ..core import Tracer
from ..errors import FuncgradError, FuncgradTypeError, FuncgradValueError
from . import reductions as _red
from . import shape as _s
from .contractions import dot as _dot
from .elementwise import ceil as _ceil
from .elementwise import clip as _clip
from .elementwise import conj as _conj
from .elementwise import floor as _floor
from .elementwise import imag as _imag
from .elementwise import isnan as _isnan
from .elementwise import logical_not as _logical_not
from .elementwise import real as _real
from .elementwise import rint as _rint
from .elementwise import sqrt as _sqrt
from .elementwise import where as _where
from .indexing import _getitem
from .indexing_ops import _as_array, _eager
from .indexing_ops import take_along_axis as _take_along_axis
from .manipulation import diag as _diag
from .reductions import _no_out
from .scans import _any_true, _concrete_or_none, _nan_to, sort

__all__ = [
    "median", "quantile", "percentile", "nanmedian", "nanquantile", "nanpercentile",
    "average", "ptp", "count_nonzero",
    "nansum", "nanprod", "nanmean", "nanvar", "nanstd", "nanmax", "nanmin",
    "nanargmax", "nanargmin",
    "cov", "corrcoef",
]


class _ZeroWeightsError(FuncgradError, ZeroDivisionError):
    """Weights that sum to zero (NumPy raises ZeroDivisionError)."""


# ---------------------------------------------------------------------------------------
# Order statistics: median, quantile, percentile (and their nan versions)

def _gather_axes(a, axis, op):
    """``a`` with the reduced axes merged into one last axis; also the kept shape."""
    nd = _s._ndim(a)
    axes = _s.normalize_axes(axis, nd, op)
    rest = [i for i in range(nd) if i not in axes]
    x = _s.transpose(a, rest + list(axes))
    other = tuple(a.shape[i] for i in rest)
    n = 1
    for i in axes:
        n *= a.shape[i]
    if n == 0:
        raise FuncgradValueError(f"{op}: cannot reduce over an empty axis ({dtype_name(a)})")
    kept = tuple(1 if i in axes else d for i, d in enumerate(a.shape))
    return _s.reshape(x, other + (n,)), other, kept, n


def _finish(res, other, qshape, kept, keepdims):
    """``res`` of shape ``other + qshape`` reordered to ``qshape + kept-or-other``."""
    nq, no = len(qshape), len(other)
    res = _s.transpose(res, tuple(range(no, no + nq)) + tuple(range(no)))
    if keepdims:
        res = _s.reshape(res, qshape + kept)
    return res


_ALPHA_BETA = {"interpolated_inverted_cdf": (0.0, 1.0), "hazen": (0.5, 0.5),
               "weibull": (0.0, 0.0), "median_unbiased": (1 / 3.0, 1 / 3.0),
               "normal_unbiased": (3 / 8.0, 3 / 8.0)}
_METHODS = ("linear", "lower", "higher", "nearest", "midpoint", "inverted_cdf",
            "averaged_inverted_cdf", "closest_observation") + tuple(_ALPHA_BETA)


def _boundary(index, take_previous):
    prev = _floor(index)
    res = _s.astype(_where(take_previous(index - prev, index), prev, prev + 1), np.intp)
    return _where(res < 0, 0, res)


def _virtual_index(method, n, q):
    """NumPy's (Hyndman & Fan) virtual index of quantile ``q`` in ``n`` sorted values;
    integer for the methods that do not interpolate."""
    if method == "linear":
        return (n - 1) * q
    if method in _ALPHA_BETA:
        al, be = _ALPHA_BETA[method]
        return n * q + (al + q * (1 - al - be)) - 1
    if method == "lower":
        return _s.astype(_floor((n - 1) * q), np.intp)
    if method == "higher":
        return _s.astype(_ceil((n - 1) * q), np.intp)
    if method == "nearest":
        return _s.astype(_rint((n - 1) * q), np.intp)
    if method == "midpoint":
        return 0.5 * (_floor((n - 1) * q) + _ceil((n - 1) * q))
    if method == "averaged_inverted_cdf":
        return n * q - 1
    if method == "inverted_cdf":
        return _boundary(n * q - 1, lambda g, i: g == 0)
    return _boundary(n * q - 1.5,              # closest_observation
                     lambda g, i: (g == 0) & (_floor(i) % 2 == 1))


def _quantile_entry(op, a, q, axis, out, method, keepdims, weights, interpolation):
    """Argument checks and NumPy's own function on plain inputs; None when traced."""
    _no_out(op, out)
    if weights is not None:
        raise FuncgradTypeError(f"{op}: weights= is not supported")
    if interpolation is not None:
        raise FuncgradTypeError(f"{op}: interpolation= was removed from NumPy; use method=")
    if method not in _METHODS:
        raise FuncgradValueError(f"{op}: method {method!r} is not one of {_METHODS}")
    if _eager(a, q):
        return getattr(np, op)(a, q, axis=axis, method=method, keepdims=keepdims)
    return None


def _quantile(op, a, q, axis, method, keepdims, weak_q, omit_nan):
    a = _as_array(a)
    if a.dtype.kind == "c":
        raise FuncgradTypeError(f"{op}: a must be an array of real numbers, got {dtype_name(a)}")
    q = q if isinstance(q, Tracer) else np.asarray(q)
    if q.ndim > 2:
        raise FuncgradValueError(f"{op}: q must be a scalar or 1d (or 2d), got shape {q.shape}")
    qv = _concrete_or_none(q)
    if qv is not None and not (np.all(0 <= qv) and np.all(qv <= 1)):
        raise FuncgradValueError(f"{op}: quantiles must be in the range [0, 1] "
                                 "(percentiles in [0, 100])")
    x, other, kept, n = _gather_axes(a, axis, op)
    s = sort(x, axis=-1)
    inexact = s.dtype.kind == "f"
    qshape = tuple(q.shape)
    if omit_nan and inexact:
        valid = _logical_not(_isnan(x))
        count = _red.sum(valid, axis=-1)                       # shape `other`
        n = _s.reshape(count, other + (1,) * len(qshape))
        s = _where(_isnan(s), 0, s)                            # no gradient to NaN slots
    vi = _virtual_index(method, n, q)
    vi = _s.broadcast_to(vi, np.broadcast_shapes(_s._shape(vi), _s._shape(n)))
    lead = (1,) * len(other) if vi.ndim == len(qshape) else other

    def gather(idx):
        flat = _s.reshape(idx, lead + (-1,))
        return _s.reshape(_take_along_axis(s, flat, axis=-1), other + qshape)

    if vi.dtype.kind in "iu":
        res = gather(vi)
    else:
        prev = _floor(vi)
        gamma = vi - prev
        if method == "midpoint":
            gamma = _where(vi % 1 == 0, 0.0, 0.5)
        elif method == "averaged_inverted_cdf":
            gamma = _where(gamma == 0, 0.5, 1.0)
        last = n - 1
        lo = _s.astype(_clip(prev, 0, last), np.intp)
        hi = _s.astype(_clip(prev + 1, 0, last), np.intp)
        if weak_q:
            dtype = np.result_type(s.dtype, 0.5)
        else:
            dtype = np.result_type(s.dtype, gamma.dtype)
        if gamma.dtype != dtype:
            gamma = _s.astype(gamma, dtype)
        below, above = gather(lo), gather(hi)
        d = above - below      # in a's dtype, then promoted, as NumPy's _lerp does
        if s.dtype != dtype:
            below, above, d = (_s.astype(v, dtype) for v in (below, above, d))
        res = _where(gamma >= 0.5, above - d * (1 - gamma), below + d * gamma)
    if inexact:
        if omit_nan:
            empty = _s.reshape(count == 0, other + (1,) * len(qshape))
            if _any_true(empty):
                res = _where(empty, math.nan, res)
        else:
            has_nan = _red.any(_isnan(x), axis=-1)
            if _any_true(has_nan):
                res = _where(_s.reshape(has_nan, other + (1,) * len(qshape)), math.nan, res)
    return _finish(res, other, qshape, kept, keepdims)


def quantile(a, q, axis=None, out=None, overwrite_input=False, method="linear",
             keepdims=False, *, weights=None, interpolation=None):
    """The ``q``-th quantile(s) of ``a`` over ``axis`` (an int, a tuple, or all axes).

    ``q`` in [0, 1] is a scalar or an array (its dimensions lead the result's) and may
    be traced (then the result is differentiable in ``q`` too, for the interpolating
    methods). ``method``: every NumPy method ('linear' default, 'lower', 'higher',
    'nearest', 'midpoint', 'inverted_cdf', 'averaged_inverted_cdf',
    'closest_observation', 'interpolated_inverted_cdf', 'hazen', 'weibull',
    'median_unbiased', 'normal_unbiased'). A NaN along the axis gives NaN (with zero
    gradient). An empty axis, ``weights=``, ``interpolation=`` and ``out=`` raise;
    ``overwrite_input`` is ignored. The result dtype follows NumPy (a float32 ``a`` with
    a Python-float ``q`` stays float32; an array ``q`` promotes).

    Gradient: the two sorted neighbours of the virtual index share it with the
    interpolation weights; among ties, the element a stable sort puts at that rank.

    Example:
        >>> import funcgrad.numpy as fnp
        >>> fnp.quantile(fnp.array([1., 2., 3., 4.]), [0.25, 0.5])
        array([1.75, 2.5 ])
    """
    return _quantile_api("quantile", a, q, axis, out, method, keepdims, weights,
                         interpolation, percent=False, omit_nan=False)


def _quantile_api(op, a, q, axis, out, method, keepdims, weights, interpolation, *,
                  percent, omit_nan):
    """The body of quantile, percentile and their NaN-ignoring forms: the eager and
    refused cases, then the traced quantile of ``q`` (``q / 100`` when ``percent``)."""
    r = _quantile_entry(op, a, q, axis, out, method, keepdims, weights, interpolation)
    if r is not None:
        return r
    weak = type(q) in (int, float)     # NumPy: a Python-scalar q does not promote
    if percent:
        q = q / 100 if isinstance(q, Tracer) else np.true_divide(q, 100)
    return _quantile(op, a, q, axis, method, keepdims, weak, omit_nan)


def percentile(a, q, axis=None, out=None, overwrite_input=False, method="linear",
               keepdims=False, *, weights=None, interpolation=None):
    """The ``q``-th percentile(s), ``q`` in [0, 100]: :func:`quantile` of ``q / 100``."""
    return _quantile_api("percentile", a, q, axis, out, method, keepdims, weights,
                         interpolation, percent=True, omit_nan=False)


def nanquantile(a, q, axis=None, out=None, overwrite_input=False, method="linear",
                keepdims=False, *, weights=None, interpolation=None):
    """:func:`quantile` ignoring NaNs (each slice uses its own count of valid values;
    an all-NaN slice gives NaN). NaN positions get a zero gradient."""
    return _quantile_api("nanquantile", a, q, axis, out, method, keepdims, weights,
                         interpolation, percent=False, omit_nan=True)


def nanpercentile(a, q, axis=None, out=None, overwrite_input=False, method="linear",
                  keepdims=False, *, weights=None, interpolation=None):
    """:func:`percentile` ignoring NaNs (see :func:`nanquantile`)."""
    return _quantile_api("nanpercentile", a, q, axis, out, method, keepdims, weights,
                         interpolation, percent=True, omit_nan=True)


def _median(op, a, axis, keepdims, omit_nan, out):
    _no_out(op, out)
    if _eager(a):
        return getattr(np, op)(a, axis=axis, keepdims=keepdims)
    a = _as_array(a)
    x, other, kept, n = _gather_axes(a, axis, op)
    if x.dtype.kind not in "fc":
        x = _s.astype(x, np.float64)
    if omit_nan:
        count = _red.sum(_logical_not(_isnan(x)), axis=-1, keepdims=True)
        s = sort(x, axis=-1)
        s = _where(_isnan(s), 0, s)
        k1 = _s.astype(_clip((count - 1) // 2, 0, None), np.intp)
        k2 = _s.astype(_clip(count // 2, 0, n - 1), np.intp)
        lo = _take_along_axis(s, k1, axis=-1)
        hi = _take_along_axis(s, k2, axis=-1)
        res = _s.reshape((lo + hi) / 2, other)
        empty = _s.reshape(count == 0, other)
        if _any_true(empty):
            res = _where(empty, math.nan, res)
    else:
        # (plain inputs took NumPy's partition-based median above; traced ones sort, whose
        # derivative rules are cheaper than partition's)
        k1, k2 = (n - 1) // 2, n // 2
        p = sort(x, axis=-1)
        lo = _getitem(p, (Ellipsis, k1))
        res = lo if k1 == k2 else (lo + _getitem(p, (Ellipsis, k2))) / 2
        has_nan = _red.any(_isnan(x), axis=-1)
        if _any_true(has_nan):
            res = _where(has_nan, math.nan, res)
    return _finish(res, other, (), kept, keepdims)


def median(a, axis=None, out=None, overwrite_input=False, keepdims=False):
    """Median over ``axis`` (an int, a tuple, or all axes): the middle element, or the
    mean of the two middle ones (computed as NumPy does, from a partition). Integers
    give float64. A NaN along the axis gives NaN (zero gradient). ``out=`` raises;
    ``overwrite_input`` is ignored.

    Gradient: goes to the middle element(s) (each gets 1/2 for an even count); among
    ties, to the ones a stable sort places in the middle.

    Example:
        >>> import funcgrad, funcgrad.numpy as fnp
        >>> funcgrad.grad(fnp.median)(fnp.array([4., 1., 3., 2.]))
        array([0. , 0. , 0.5, 0.5])
    """
    return _median("median", a, axis, keepdims, False, out)


def nanmedian(a, axis=None, out=None, overwrite_input=False, keepdims=False):
    """:func:`median` ignoring NaNs (an all-NaN slice gives NaN). NaN positions get a
    zero gradient."""
    return _median("nanmedian", a, axis, keepdims, True, out)


# ---------------------------------------------------------------------------------------
# Averages and nan-aware reductions

def average(a, axis=None, weights=None, returned=False, *, keepdims=False):
    """Weighted average over ``axis`` (an int, a tuple, or all axes).

    ``weights`` has ``a``'s shape, or the shape of the reduced axes (in the order given);
    it is differentiable too. Integer ``a`` averages in float64. With ``returned=True``
    the result is ``(average, sum_of_weights)``, the sum broadcast to the average's
    shape. Weights summing to zero raise ``ZeroDivisionError`` (when concrete).

    Example:
        >>> import funcgrad.numpy as fnp
        >>> print(fnp.average(fnp.array([1., 2., 4.]), weights=fnp.array([1., 1., 2.])))
        2.75
    """
    if _eager(a, weights):
        return np.average(a, axis=axis, weights=weights, returned=returned, keepdims=keepdims)
    a = _as_array(a)
    nd = _s._ndim(a)
    if axis is not None:
        given = tuple(_s.normalize_axis(ax, nd, "average") for ax in
                      (axis if isinstance(axis, (tuple, list)) else (axis,)))
    axes = _s.normalize_axes(axis, nd, "average")
    if weights is None:
        avg = _red.mean(a, axis=axes, keepdims=keepdims)
        count = 1
        for i in axes:
            count *= a.shape[i]
        scl = np.asarray(count, dtype=avg.dtype)
    else:
        w = _as_array(weights)
        if w.shape != a.shape:
            if axis is None:
                raise FuncgradTypeError(
                    "average: axis must be specified when shapes of a and weights differ")
            if w.shape != tuple(a.shape[i] for i in given):
                raise FuncgradValueError(
                    f"average: shape of weights {w.shape} must be consistent with shape of "
                    f"a {a.shape} along axis {axis}")
            w = _s.transpose(w, tuple(np.argsort(given).tolist()))
            w = _s.reshape(w, tuple(d if i in axes else 1 for i, d in enumerate(a.shape)))
        if a.dtype.kind in "iub":
            rdt = np.result_type(a.dtype, w.dtype, "f8")
        else:
            rdt = np.result_type(a.dtype, w.dtype)
        scl = _red.sum(_s.astype(w, rdt), axis=axes, keepdims=keepdims)
        sv = _concrete_or_none(scl)
        if sv is not None and np.any(sv == 0):
            raise _ZeroWeightsError("average: weights sum to zero, can't be normalized")
        avg = _red.sum(_s.astype(a, rdt) * _s.astype(w, rdt), axis=axes, keepdims=keepdims) / scl
    if returned:
        if _s._shape(scl) != _s._shape(avg):
            scl = _s.broadcast_to(scl, _s._shape(avg))
        return avg, scl
    return avg


def ptp(a, axis=None, out=None, keepdims=False):
    """Range ``max - min`` over ``axis`` (ties share the gradient as in max/min)."""
    _no_out("ptp", out)
    if _eager(a):
        return np.ptp(a, axis=axis, keepdims=keepdims)
    return _red.max(a, axis=axis, keepdims=keepdims) - _red.min(a, axis=axis, keepdims=keepdims)


def count_nonzero(a, axis=None, *, keepdims=False):
    """Number of non-zero values over ``axis`` (an integer result, no derivative)."""
    a = _as_array(a)
    return _red.sum(a != 0, axis=axis, keepdims=keepdims)


def nansum(a, axis=None, dtype=None, out=None, keepdims=False, initial=None, where=None):
    """:func:`sum` treating NaN as zero; NaN positions get a zero gradient."""
    return _red.sum(_nan_to(a, 0), axis=axis, dtype=dtype, out=out, keepdims=keepdims,
                    initial=initial, where=where)


def nanprod(a, axis=None, dtype=None, out=None, keepdims=False, initial=None, where=None):
    """:func:`prod` treating NaN as one; NaN positions get a zero gradient."""
    return _red.prod(_nan_to(a, 1), axis=axis, dtype=dtype, out=out, keepdims=keepdims,
                     initial=initial, where=where)


def _valid(a, where):
    valid = _logical_not(_isnan(a))
    if where is not None:
        valid = valid & _s.broadcast_to(_as_array(where), a.shape)
    return valid


def nanmean(a, axis=None, dtype=None, out=None, keepdims=False, *, where=None):
    """Mean of the non-NaN values (NaN for an all-NaN slice); NaN positions get a zero
    gradient. ``where=`` restricts the values further; ``out=`` raises."""
    _no_out("nanmean", out)
    a = _as_array(a)
    if a.dtype.kind not in "fc":
        return _red.mean(a, axis=axis, dtype=dtype, keepdims=keepdims, where=where)
    if dtype is not None:
        a = _s.astype(a, dtype)
    valid = _valid(a, where)
    count = _red.sum(valid, axis=axis, keepdims=keepdims)
    total = _red.sum(_where(valid, a, 0), axis=axis, keepdims=keepdims)
    return total / _s.astype(count, _real(total).dtype if total.dtype.kind == "c" else total.dtype)


def nanvar(a, axis=None, dtype=None, out=None, ddof=0, keepdims=False, *, where=None,
           mean=None, correction=None):
    """Variance of the non-NaN values with ``ddof`` (or ``correction``) removed from the
    count; NaN where the count is not above ``ddof``. NaN positions get a zero gradient.
    ``out=`` and ``mean=`` raise."""
    _no_out("nanvar", out)
    if mean is not None:
        raise FuncgradTypeError("nanvar: mean= is not supported")
    if correction is not None:
        ddof = correction
    a = _as_array(a)
    if a.dtype.kind not in "fc":
        return _red.var(a, axis=axis, dtype=dtype, ddof=ddof, keepdims=keepdims, where=where)
    if dtype is not None:
        a = _s.astype(a, dtype)
    axes = _s.normalize_axes(axis, _s._ndim(a), "nanvar", scalar_axis=True)
    valid = _valid(a, where)
    count = _red.sum(valid, axis=axes, keepdims=True)
    rdt = _real(a).dtype if a.dtype.kind == "c" else a.dtype
    a0 = _where(valid, a, 0)
    avg = _red.sum(a0, axis=axes, keepdims=True) / _s.astype(count, rdt)
    d = _where(valid, a0 - avg, 0)
    sq = _real(d * _conj(d)) if d.dtype.kind == "c" else d * d
    dof = _red.sum(valid, axis=axes, keepdims=keepdims) - ddof
    res = _red.sum(sq, axis=axes, keepdims=keepdims) / _s.astype(dof, rdt)
    bad = dof <= 0
    if _any_true(bad):
        res = _where(bad, math.nan, res)
    return res


def nanstd(a, axis=None, dtype=None, out=None, ddof=0, keepdims=False, *, where=None,
           mean=None, correction=None):
    """``sqrt(nanvar(...))``: standard deviation of the non-NaN values. Where a result has
    one non-NaN value (and ddof < 1) it is identically 0 and its gradient is 0."""
    v = nanvar(a, axis=axis, dtype=dtype, out=out, ddof=ddof, keepdims=keepdims,
               where=where, mean=mean, correction=correction)
    a = _as_array(a)
    if a.dtype.kind not in "fc" or (ddof if correction is None else correction) >= 1:
        return _sqrt(v)
    one = _red.sum(_valid(a, where), axis=axis, keepdims=keepdims) == 1
    if not _any_true(one):
        return _sqrt(v)
    # v * 0 has the derivative 0 there, where sqrt'(0) * 0 would be NaN
    return _where(one, v * 0.0, _sqrt(_where(one, 1.0, v)))


def _nan_extreme(op, reduce, fill, a, axis, out, keepdims, initial, where):
    _no_out(op, out)
    a = _as_array(a)
    if a.dtype.kind not in "fc":
        return reduce(a, axis=axis, keepdims=keepdims, initial=initial, where=where)
    nan = _isnan(a)
    res = reduce(_where(nan, fill, a), axis=axis, keepdims=keepdims, initial=initial,
                 where=where)
    if initial is None:
        all_nan = _red.all(nan, axis=axis, keepdims=keepdims)
        if _any_true(all_nan):
            res = _where(all_nan, math.nan, res)
    return res


def nanmax(a, axis=None, out=None, keepdims=False, initial=None, where=None):
    """Maximum ignoring NaNs (NaN for an all-NaN slice); ties share the gradient, NaN
    positions get none."""
    return _nan_extreme("nanmax", _red.max, -math.inf, a, axis, out, keepdims, initial, where)


def nanmin(a, axis=None, out=None, keepdims=False, initial=None, where=None):
    """Minimum ignoring NaNs (NaN for an all-NaN slice); ties share the gradient, NaN
    positions get none."""
    return _nan_extreme("nanmin", _red.min, math.inf, a, axis, out, keepdims, initial, where)


def _nan_arg(op, f, fill, a, axis, out, keepdims):
    _no_out(op, out)
    a = _as_array(a)
    if a.dtype.kind not in "fc":
        return f(a, axis=axis, keepdims=keepdims)
    nan = _isnan(a)
    v = _concrete_or_none(_red.all(nan, axis=axis))
    if v is not None and np.any(v):
        raise FuncgradValueError(f"{op}: All-NaN slice encountered")
    return f(_where(nan, fill, a), axis=axis, keepdims=keepdims)


def nanargmax(a, axis=None, out=None, *, keepdims=False):
    """Index of the maximum ignoring NaNs; an all-NaN slice raises. No derivative."""
    return _nan_arg("nanargmax", _red.argmax, -math.inf, a, axis, out, keepdims)


def nanargmin(a, axis=None, out=None, *, keepdims=False):
    """Index of the minimum ignoring NaNs; an all-NaN slice raises. No derivative."""
    return _nan_arg("nanargmin", _red.argmin, math.inf, a, axis, out, keepdims)


# ---------------------------------------------------------------------------------------
# Covariance and correlation

def _weights_1d(w, n, name):
    w = _as_array(w)
    if w.dtype.kind != "c" and w.dtype != np.float64:
        w = _s.astype(w, np.float64)   # NumPy's cov: np.asarray(weights, dtype=float)
    if _s._ndim(w) > 1:
        raise FuncgradValueError(f"cov: cannot handle multidimensional {name}")
    if w.shape[0] != n:
        raise FuncgradValueError(f"cov: incompatible numbers of samples ({n}) and {name}")
    v = _concrete_or_none(w)
    if v is not None and np.any(v < 0):
        raise FuncgradValueError(f"cov: {name} cannot be negative")
    return w, v


def cov(m, y=None, rowvar=True, bias=False, ddof=None, fweights=None, aweights=None, *,
        dtype=None):
    """Covariance matrix of the variables in the rows of ``m`` (columns when
    ``rowvar=False``), with ``y`` as extra variables, as NumPy: ``bias``/``ddof``,
    integer frequency weights ``fweights`` and observation weights ``aweights`` (both
    1-D and differentiable here). The result is at least float64 unless ``dtype`` says
    otherwise (as NumPy). With too few degrees of freedom the result is inf/NaN.
    """
    if ddof is not None and ddof != int(ddof):
        raise FuncgradValueError("cov: ddof must be integer")
    if _eager(m, y, fweights, aweights):
        return np.cov(m, y, rowvar, bias, ddof, fweights, aweights, dtype=dtype)
    m = _as_array(m)
    if _s._ndim(m) > 2:
        raise FuncgradValueError("cov: m has more than 2 dimensions")
    if y is not None:
        y = _as_array(y)
        if _s._ndim(y) > 2:
            raise FuncgradValueError("cov: y has more than 2 dimensions")
    if dtype is None:
        dtype = np.result_type(m.dtype, np.float64) if y is None else \
            np.result_type(m.dtype, y.dtype, np.float64)
    X = _s.astype(_s.atleast_2d(m), dtype)
    if not rowvar and _s._ndim(m) != 1:
        X = _s.transpose(X)
    if X.shape[0] == 0:
        return np.array([]).reshape(0, 0)
    if y is not None:
        Y = _s.astype(_s.atleast_2d(y), dtype)
        if not rowvar and Y.shape[0] != 1:
            Y = _s.transpose(Y)
        X = _s.concatenate([X, Y], axis=0)
    if ddof is None:
        ddof = 1 if bias == 0 else 0
    w = None
    aw = None
    if fweights is not None:
        w, fv = _weights_1d(fweights, X.shape[1], "fweights")
        if fv is not None and not np.all(fv == np.around(fv)):
            raise FuncgradTypeError("cov: fweights must be integer")
    if aweights is not None:
        aw, _ = _weights_1d(aweights, X.shape[1], "aweights")
        w = aw if w is None else w * aw
    avg, w_sum = average(X, axis=1, weights=w, returned=True)
    w_sum = _getitem(w_sum, 0)
    if w is None:
        fact = X.shape[1] - ddof
    elif ddof == 0:
        fact = w_sum
    elif aw is None:
        fact = w_sum - ddof
    else:
        fact = w_sum - ddof * _red.sum(w * aw) / w_sum
    fv = _concrete_or_none(fact)
    if fv is not None and fv <= 0:
        fact = 0.0
    X = X - _s.expand_dims(avg, 1)
    X_T = _s.transpose(X) if w is None else _s.transpose(X * _s.astype(w, X.dtype))
    c = _dot(X, _conj(X_T))
    if isinstance(fact, Tracer):
        c = c * (1 / _s.astype(fact, _real(c).dtype if c.dtype.kind == "c" else c.dtype))
    else:
        with np.errstate(divide="ignore"):
            c = c * float(np.true_divide(1, fact))
    return _s.squeeze(c)


def corrcoef(x, y=None, rowvar=True, *, dtype=None):
    """Pearson correlation coefficients, ``cov / (std_i std_j)`` clipped to [-1, 1] (the
    clipped entries, e.g. a rounded 1.0000000002, get zero gradient). A scalar
    covariance gives ``c / c``."""
    if _eager(x, y):
        return np.corrcoef(x, y, rowvar, dtype=dtype)
    c = cov(x, y, rowvar, dtype=dtype)
    if _s._ndim(c) != 2:
        return c / c
    d = _diag(c)
    sd = _sqrt(_real(d))
    c = c / _s.expand_dims(sd, 1)
    c = c / _s.expand_dims(sd, 0)
    if c.dtype.kind == "c":
        return _clip(_real(c), -1, 1) + _clip(_imag(c), -1, 1) * 1j
    return _clip(c, -1, 1)

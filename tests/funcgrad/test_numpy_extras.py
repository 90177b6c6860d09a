"""funcgrad.numpy's indexing helpers, joining/reordering, scans, sorting and statistics
(``funcgrad/_src/prims/indexing_ops.py``, ``manipulation.py``, ``scans.py`` and
``statistics.py``).

A table of cases: each ``Case`` draws its differentiable float64 arguments and its static
arguments (shapes, axes, indices...) with hypothesis, and its ``fn(m, *args, **static)``
takes the namespace ``m`` first (``numpy`` or ``funcgrad.numpy``). Every case is run
through:

* values: ``fn(funcgrad.numpy, ...)`` equals ``fn(numpy, ...)``, eagerly and under ``jvp``
  (where the composites take their traced path);
* ``check_grads(order=2)`` in float64, forward and reverse (differentiable cases);
* float32: the output dtype equals NumPy's for float32 input, and cotangents are float32;
* dispatch: the plain NumPy spelling ``fn(numpy, tracer)`` reaches funcgrad.numpy.

Then targeted tests: ties, zeros in cumprod, NaN positions, errors, Tracer methods.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import funcgrad
import funcgrad.numpy as fnp
from funcgrad.test_util import check_grads

# ---------------------------------------------------------------------------------------
# Drawing helpers


def _shape(d, min_nd=1, max_nd=3, lo=1, hi=4):
    return tuple(d.draw(st.lists(st.integers(lo, hi), min_size=min_nd, max_size=max_nd)))


def _axis(d, nd, allow_none=False):
    s = st.integers(-nd, nd - 1)
    return d.draw(st.one_of(st.none(), s) if allow_none else s)


def _rng(d):
    return np.random.default_rng(d.draw(st.integers(0, 2**31 - 1)))


def _normal(rng, shape):
    return rng.standard_normal(shape)


def _with_nans(rng, shape, axis=-1):
    """Normal values with some NaNs, keeping at least one finite value per slice."""
    x = rng.standard_normal(shape)
    mask = rng.random(shape) < 0.3
    first = [slice(None)] * len(shape)
    first[axis] = 0
    mask[tuple(first)] = False
    x[mask] = np.nan
    return x


@dataclasses.dataclass
class Case:
    name: str
    draw: Callable[[Any], tuple]        # data -> (args, static kwargs)
    fn: Callable                        # fn(m, *args, **static)
    diff: bool = True                   # differentiable (run check_grads)
    order: int = 2


def _ax_case(name, fn, min_nd=1, allow_none=True, domain=_normal, **kw):
    """A case over one array of a drawn shape and a drawn axis."""
    def draw(d):
        shape = _shape(d, min_nd=min_nd)
        return (domain(_rng(d), shape),), {"axis": _axis(d, len(shape), allow_none)}
    return Case(name, draw, fn, **kw)


# ---- indexing ------------------------------------------------------------------------------


def _draw_take(mode):
    def draw(d):
        shape = _shape(d)
        axis = _axis(d, len(shape), allow_none=True)
        n = int(np.prod(shape)) if axis is None else shape[axis]
        lo, hi = (-n, n - 1) if mode == "raise" else (-2 * n, 2 * n)
        ishape = _shape(d, min_nd=0, max_nd=2, hi=3)
        idx = np.asarray(d.draw(st.lists(st.integers(lo, hi), min_size=int(np.prod(ishape)),
                                         max_size=int(np.prod(ishape))))).reshape(ishape)
        return (_normal(_rng(d), shape),), {"axis": axis, "idx": idx}
    return draw


def _draw_along(d):
    shape = _shape(d)
    axis = _axis(d, len(shape))
    rng = _rng(d)
    ishape = [s if d.draw(st.booleans()) else 1 for s in shape]
    ishape[axis] = d.draw(st.integers(1, 4))
    n = shape[axis]
    idx = rng.integers(-n, n, size=ishape)
    return (rng.standard_normal(shape),), {"axis": axis, "idx": idx}


def _draw_put(d):
    (x,), st_ = _draw_along(d)
    idx = st_["idx"]
    full = np.broadcast_shapes(idx.shape, tuple(
        1 if i == st_["axis"] % x.ndim else s for i, s in enumerate(x.shape)))
    v = _rng(d).standard_normal(full)
    return (x, v), st_


def _put_along(m, x, v, idx, axis):
    if m is np:
        x = np.array(x, copy=True)
        np.put_along_axis(x, idx, v, axis)
        return x
    return fnp.put_along_axis(x, idx, v, axis)


def _draw_compress(d):
    shape = _shape(d)
    axis = _axis(d, len(shape), allow_none=True)
    n = int(np.prod(shape)) if axis is None else shape[axis]
    cond = np.asarray(d.draw(st.lists(st.booleans(), min_size=1, max_size=n)))
    return (_normal(_rng(d), shape),), {"axis": axis, "cond": cond}


def _draw_choose(d):
    shape = _shape(d, max_nd=2)
    rng = _rng(d)
    mode = d.draw(st.sampled_from(["raise", "wrap", "clip"]))
    a = rng.integers(0, 3, shape) if mode == "raise" else rng.integers(-4, 7, shape)
    cshape = tuple(s if d.draw(st.booleans()) else 1 for s in shape)
    return (rng.standard_normal(shape), rng.standard_normal(cshape),
            rng.standard_normal(shape[-1:])), {"a": a, "mode": mode}


def _draw_select(d):
    shape = _shape(d, max_nd=2)
    rng = _rng(d)
    conds = [rng.random(shape) < 0.4, rng.random(shape[-1:]) < 0.5]
    return (rng.standard_normal(shape), rng.standard_normal(shape)), {"conds": conds}


# ---- joining and reshaping -------------------------------------------------------------------


def _draw_tile(d):
    shape = _shape(d, min_nd=0)
    reps = tuple(d.draw(st.lists(st.integers(1, 3), min_size=1, max_size=3)))
    return (_normal(_rng(d), shape),), {"reps": reps}


def _draw_repeat(d):
    shape = _shape(d)
    axis = _axis(d, len(shape), allow_none=True)
    n = int(np.prod(shape)) if axis is None else shape[axis]
    if d.draw(st.booleans()):
        rep = d.draw(st.integers(0, 3))
    else:
        rep = np.asarray(d.draw(st.lists(st.integers(0, 3), min_size=n, max_size=n)))
    return (_normal(_rng(d), shape),), {"axis": axis, "rep": rep}


_PAD_MODES = [("constant", {"constant_values": 1.5}), ("constant", {"constant_values": ((1, 2),)}),
              ("edge", {}), ("reflect", {}), ("reflect", {"reflect_type": "odd"}),
              ("symmetric", {}), ("symmetric", {"reflect_type": "odd"}), ("wrap", {}),
              ("linear_ramp", {"end_values": (-1.0, 2.0)}), ("maximum", {}),
              ("minimum", {"stat_length": 2}), ("mean", {"stat_length": ((1, 3),)}),
              ("median", {}), ("empty", {})]


def _draw_pad(d):
    shape = _shape(d, max_nd=2)
    mode, kw = d.draw(st.sampled_from(_PAD_MODES))
    form = d.draw(st.integers(0, 2))
    if form == 0:
        width = d.draw(st.integers(0, 5))
    elif form == 1:
        width = tuple(d.draw(st.lists(st.integers(0, 5), min_size=2, max_size=2)))
    else:
        width = tuple(tuple(d.draw(st.lists(st.integers(0, 5), min_size=2, max_size=2)))
                      for _ in shape)
    if mode == "mean":
        kw = {"stat_length": ((1, 3),) * len(shape)}
    if mode == "constant" and "constant_values" in kw and kw["constant_values"] != 1.5:
        kw = {"constant_values": ((1, 2),) * len(shape)}
    return (_normal(_rng(d), shape),), {"width": width, "mode": mode, "kw": kw}


def _draw_pad_traced_constant(d):
    shape = _shape(d, max_nd=2)
    width = d.draw(st.integers(0, 3))
    rng = _rng(d)
    return (rng.standard_normal(shape), rng.standard_normal(())), {"width": width}


def _draw_flip(d):
    shape = _shape(d)
    nd = len(shape)
    axis = d.draw(st.one_of(st.none(), st.integers(-nd, nd - 1),
                            st.sets(st.integers(0, nd - 1)).map(tuple)))
    return (_normal(_rng(d), shape),), {"axis": axis}


def _draw_roll(d):
    shape = _shape(d)
    nd = len(shape)
    if d.draw(st.booleans()):
        axis, shift = None, d.draw(st.integers(-7, 7))
    else:
        k = d.draw(st.integers(1, 3))
        axis = tuple(d.draw(st.lists(st.integers(-nd, nd - 1), min_size=k, max_size=k)))
        shift = tuple(d.draw(st.lists(st.integers(-7, 7), min_size=k, max_size=k)))
    return (_normal(_rng(d), shape),), {"axis": axis, "shift": shift}


def _draw_rot90(d):
    shape = _shape(d, min_nd=2)
    nd = len(shape)
    a0 = d.draw(st.integers(-nd, nd - 1))
    a1 = d.draw(st.integers(-nd, nd - 1).filter(lambda a: a % nd != a0 % nd))
    return (_normal(_rng(d), shape),), {"k": d.draw(st.integers(-3, 5)), "axes": (a0, a1)}


def _draw_diagonal(d):
    shape = _shape(d, min_nd=2)
    nd = len(shape)
    a1 = d.draw(st.integers(-nd, nd - 1))
    a2 = d.draw(st.integers(-nd, nd - 1).filter(lambda a: a % nd != a1 % nd))
    return (_normal(_rng(d), shape),), {"offset": d.draw(st.integers(-3, 3)), "a1": a1, "a2": a2}


def _draw_diag(d):
    shape = _shape(d, max_nd=2)
    return (_normal(_rng(d), shape),), {"k": d.draw(st.integers(-3, 3))}


def _draw_tri(d):
    shape = _shape(d, max_nd=3)
    return (_normal(_rng(d), shape),), {"k": d.draw(st.integers(-3, 3))}


def _draw_meshgrid(d):
    n = d.draw(st.integers(1, 3))
    rng = _rng(d)
    xs = tuple(rng.standard_normal(d.draw(st.integers(1, 4))) for _ in range(n))
    return xs, {"indexing": d.draw(st.sampled_from(["xy", "ij"])), "sparse": d.draw(st.booleans())}


def _draw_append(d):
    shape = _shape(d)
    rng = _rng(d)
    axis = _axis(d, len(shape), allow_none=True)
    if axis is None:
        vshape = _shape(d, min_nd=0)
    else:
        vshape = list(shape)
        vshape[axis] = d.draw(st.integers(1, 3))
    return (rng.standard_normal(shape), rng.standard_normal(tuple(vshape))), {"axis": axis}


def _draw_insert(d):
    shape = _shape(d)
    rng = _rng(d)
    axis = _axis(d, len(shape), allow_none=True)
    n = int(np.prod(shape)) if axis is None else shape[axis]
    kind = d.draw(st.sampled_from(["int", "list", "slice"]))
    if kind == "int":
        obj = d.draw(st.integers(-n, n))
        vshape = () if d.draw(st.booleans()) else (1,)
    elif kind == "list":
        k = d.draw(st.integers(1, 3))
        obj = d.draw(st.lists(st.integers(0, n), min_size=k, max_size=k))
        vshape = (k,) if axis is None else ()
    else:
        obj = slice(0, n, 2)
        vshape = ()
    return (rng.standard_normal(shape), rng.standard_normal(vshape)), {"obj": obj, "axis": axis}


def _draw_delete(d):
    shape = _shape(d)
    axis = _axis(d, len(shape), allow_none=True)
    n = int(np.prod(shape)) if axis is None else shape[axis]
    kind = d.draw(st.sampled_from(["int", "list", "slice", "mask"]))
    if kind == "int":
        obj = d.draw(st.integers(-n, n - 1))
    elif kind == "list":
        obj = d.draw(st.lists(st.integers(0, n - 1), max_size=3))
    elif kind == "slice":
        obj = slice(d.draw(st.integers(0, n)), None, d.draw(st.integers(1, 2)))
    else:
        obj = np.asarray(d.draw(st.lists(st.booleans(), min_size=n, max_size=n)))
    return (_normal(_rng(d), shape),), {"obj": obj, "axis": axis}


def _draw_resize(d):
    return (_normal(_rng(d), _shape(d)),), {"new": _shape(d, min_nd=0)}


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
    # indexing
    Case("take", _draw_take("raise"), lambda m, x, axis, idx: m.take(x, idx, axis=axis)),
    Case("take_wrap", _draw_take("wrap"),
         lambda m, x, axis, idx: m.take(x, idx, axis=axis, mode="wrap")),
    Case("take_clip", _draw_take("clip"),
         lambda m, x, axis, idx: m.take(x, idx, axis=axis, mode="clip")),
    Case("take_along_axis", _draw_along,
         lambda m, x, axis, idx: m.take_along_axis(x, idx, axis=axis)),
    _ax_case("take_along_axis_argsort",
             lambda m, x, axis: m.take_along_axis(x, m.argsort(x, axis=axis), axis=axis)),
    Case("put_along_axis", _draw_put, _put_along),
    Case("compress", _draw_compress, lambda m, x, axis, cond: m.compress(cond, x, axis=axis)),
    Case("choose", _draw_choose, lambda m, x, y, z, a, mode: m.choose(a, [x, y, z], mode=mode)),
    Case("select", _draw_select, lambda m, x, y, conds: m.select(conds, [x, y], default=0.5)),
    # joining and reshaping
    Case("tile", _draw_tile, lambda m, x, reps: m.tile(x, reps)),
    Case("repeat", _draw_repeat, lambda m, x, axis, rep: m.repeat(x, rep, axis=axis)),
    Case("pad", _draw_pad, lambda m, x, width, mode, kw: m.pad(x, width, mode=mode, **kw)),
    Case("pad_traced_constant", _draw_pad_traced_constant,
         lambda m, x, c, width: m.pad(x, width, constant_values=c)),
    Case("flip", _draw_flip, lambda m, x, axis: m.flip(x, axis=axis)),
    Case("fliplr", lambda d: ((_normal(_rng(d), _shape(d, min_nd=2)),), {}),
         lambda m, x: m.fliplr(x)),
    Case("flipud", lambda d: ((_normal(_rng(d), _shape(d)),), {}), lambda m, x: m.flipud(x)),
    Case("roll", _draw_roll, lambda m, x, axis, shift: m.roll(x, shift, axis=axis)),
    Case("rot90", _draw_rot90, lambda m, x, k, axes: m.rot90(x, k, axes)),
    Case("diag", _draw_diag, lambda m, x, k: m.diag(x, k)),
    Case("diagflat", _draw_diag, lambda m, x, k: m.diagflat(x, k)),
    Case("diagonal", _draw_diagonal,
         lambda m, x, offset, a1, a2: m.diagonal(x, offset, a1, a2)),
    Case("trace", _draw_diagonal, lambda m, x, offset, a1, a2: m.trace(x, offset, a1, a2)),
    Case("tril", _draw_tri, lambda m, x, k: m.tril(x, k)),
    Case("triu", _draw_tri, lambda m, x, k: m.triu(x, k)),
    Case("meshgrid", _draw_meshgrid,
         lambda m, *xs, indexing, sparse: m.meshgrid(*xs, indexing=indexing, sparse=sparse)),
    Case("append", _draw_append, lambda m, x, v, axis: m.append(x, v, axis=axis)),
    Case("insert", _draw_insert, lambda m, x, v, obj, axis: m.insert(x, obj, v, axis=axis)),
    Case("delete", _draw_delete, lambda m, x, obj, axis: m.delete(x, obj, axis=axis)),
    Case("resize", _draw_resize, lambda m, x, new: m.resize(x, new)),
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

_BY_NAME = {c.name: c for c in CASES}
_DIFF = [c for c in CASES if c.diff]


def _assert_tree_close(got, want, rtol=1e-10, atol=1e-12):
    if isinstance(want, tuple):
        assert isinstance(got, (tuple, list)) and len(got) == len(want)
        for g, w in zip(got, want):
            _assert_tree_close(g, w, rtol, atol)
        return
    got = np.asarray(got)
    want = np.asarray(want)
    assert got.shape == want.shape, (got.shape, want.shape)
    assert got.dtype == want.dtype, (got.dtype, want.dtype)
    np.testing.assert_allclose(got, want, rtol=rtol, atol=atol, equal_nan=True)


def _primal_under_jvp(f, args):
    tangents = tuple(np.zeros_like(a) for a in args)
    return funcgrad.jvp(f, args, tangents)[0]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
@settings(max_examples=12)
@given(data=st.data())
def test_values_match_numpy(case, data):
    args, static = case.draw(data)
    want = case.fn(np, *args, **static)
    _assert_tree_close(case.fn(fnp, *args, **static), want)
    if case.diff:
        traced = _primal_under_jvp(lambda *a: case.fn(fnp, *a, **static), args)
        _assert_tree_close(traced, want)


@pytest.mark.parametrize("case", _DIFF, ids=lambda c: c.name)
@settings(max_examples=12)
@given(data=st.data())
def test_grads(case, data):
    args, static = case.draw(data)
    check_grads(lambda *a: case.fn(fnp, *a, **static), args, order=case.order)


def _leaves(tree):
    return list(tree) if isinstance(tree, (tuple, list)) else [tree]


@pytest.mark.parametrize("case", _DIFF, ids=lambda c: c.name)
@settings(max_examples=4)
@given(data=st.data())
def test_float32(case, data):
    args, static = case.draw(data)
    args32 = tuple(a.astype(np.float32) for a in args)
    with np.errstate(all="ignore"):
        want = case.fn(np, *args32, **static)
    f = lambda *a: case.fn(fnp, *a, **static)  # noqa: E731
    out, f_vjp = funcgrad.vjp(f, *args32)
    for o, w in zip(_leaves(out), _leaves(want)):
        assert np.asarray(o).dtype == np.asarray(w).dtype
    cts = f_vjp(out)
    for c, a in zip(_leaves(cts), args32):
        assert c.dtype == np.float32
        assert c.shape == a.shape


@pytest.mark.parametrize("case", _DIFF, ids=lambda c: c.name)
@settings(max_examples=2)
@given(data=st.data())
def test_numpy_dispatch(case, data):
    """The plain NumPy spelling on traced values reaches funcgrad.numpy."""
    if case.name == "put_along_axis":      # NumPy's is in-place; ours is functional
        return
    args, static = case.draw(data)
    tangents = tuple(np.ones_like(a) for a in args)
    out_np, t_np = funcgrad.jvp(lambda *a: case.fn(np, *a, **static), args, tangents)
    out_f, t_f = funcgrad.jvp(lambda *a: case.fn(fnp, *a, **static), args, tangents)
    _assert_tree_close(out_np, out_f)
    _assert_tree_close(t_np, t_f)


# ---------------------------------------------------------------------------------------
# Targeted tests


def _jac(f, x):
    return funcgrad.jacfwd(f)(x)


def _eager_and_traced(f, x):
    """``f(x)`` on the plain array (NumPy's own function may run) and on a tracer (the
    composite runs): both must raise alike."""
    return [lambda: f(x), lambda: funcgrad.jvp(f, (x,), (np.ones_like(x),))]


def test_take_repeated_indices_accumulate():
    g = funcgrad.grad(lambda x: fnp.sum(fnp.take(x, [0, 0, 2, -1])))(np.arange(4.0))
    np.testing.assert_array_equal(g, [2.0, 0.0, 1.0, 1.0])


def test_take_out_of_range_raises_index_error():
    for run in _eager_and_traced(lambda x: fnp.take(x, [3]), np.arange(3.0)):
        with pytest.raises(IndexError, match="out of bounds"):
            run()
    for run in _eager_and_traced(lambda x: fnp.take(x, [0], out=np.zeros(1)), np.arange(3.0)):
        with pytest.raises(TypeError, match="out="):
            run()


def test_put_along_axis_last_write_wins_and_gets_the_gradient():
    x = np.zeros((1, 3))
    v = np.array([[1.0, 2.0, 3.0]])
    idx = np.array([[1, 1, 2]])
    f = lambda x, v: fnp.put_along_axis(x, idx, v, axis=1)  # noqa: E731
    np.testing.assert_array_equal(f(x, v), [[0.0, 2.0, 3.0]])
    gx, gv = funcgrad.grad(lambda x, v: fnp.sum(f(x, v) * np.array([1.0, 10.0, 100.0])),
                           argnums=(0, 1))(x, v)
    np.testing.assert_array_equal(gx, [[1.0, 0.0, 0.0]])
    np.testing.assert_array_equal(gv, [[0.0, 10.0, 100.0]])


def test_index_passthroughs_match_numpy():
    ones = np.ones
    pairs = [(fnp.diag_indices(3), np.diag_indices(3)),
             (fnp.tril_indices(4, -1), np.tril_indices(4, -1)),
             (fnp.triu_indices(3, 1, 5), np.triu_indices(3, 1, 5)),
             (fnp.tril_indices_from(ones((3, 4))), np.tril_indices_from(ones((3, 4)))),
             (fnp.triu_indices_from(ones((3, 3)), 1), np.triu_indices_from(ones((3, 3)), 1)),
             (fnp.diag_indices_from(ones((2, 2, 2))), np.diag_indices_from(ones((2, 2, 2)))),
             (fnp.unravel_index([5, 7], (3, 4)), np.unravel_index([5, 7], (3, 4))),
             ((fnp.ravel_multi_index(([1, 2], [0, 3]), (3, 4)),),
              (np.ravel_multi_index(([1, 2], [0, 3]), (3, 4)),))]
    for got, want in pairs:
        for g, w in zip(got, want):
            np.testing.assert_array_equal(g, w)


def test_index_helpers_work_on_tracers():
    x = np.arange(9.0).reshape(3, 3)

    def f(x):
        rows, cols = fnp.triu_indices_from(x, 1)
        return fnp.sum(x[rows, cols] ** 2)
    g = funcgrad.grad(f)(x)
    np.testing.assert_array_equal(g, np.triu(2 * x, 1))


def test_pad_traced_constant_gets_the_gradient():
    g = funcgrad.grad(lambda c: fnp.sum(fnp.pad(np.ones((2, 3)), 1, constant_values=c)))(0.5)
    assert g == 4 * 5 - 6


def test_pad_rejects_unsupported_arguments():
    with pytest.raises(ValueError, match="mode"):
        fnp.pad(np.ones(3), 1, mode=lambda *a: None)
    with pytest.raises(ValueError, match="keyword"):
        fnp.pad(np.ones(3), 1, mode="edge", constant_values=2)
    with pytest.raises(ValueError, match="empty axis"):
        funcgrad.grad(lambda x: fnp.sum(fnp.pad(x, ((0, 0), (1, 1)), mode="edge")))(np.ones((2, 0)))


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

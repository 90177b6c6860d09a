"""Joining and reordering: tile, repeat, pad, roll, flip, diag, tril, insert, delete, ...
(the gathers and index constructors are in ``indexing_ops.py``).

Every differentiable function here is a composite of existing primitives (getitem and
scatter from ``indexing``, reshape/broadcast/concatenate from ``shape``, ``where``,
``tensordot``), so each inherits forward and reverse rules of every order from them:

* gathers (``take``, ``take_along_axis``, ``flip``, ``diagonal``, ``repeat`` with an array,
  ``pad`` in the edge/reflect/symmetric/wrap modes, ``insert``, ``delete``) send the
  cotangent back with a scatter-add, so repeated indices accumulate;
* ``tile`` and scalar ``repeat`` are broadcasts (the cotangent is summed);
* ``tril``/``triu`` are ``where`` with a constant mask.

On plain NumPy inputs (nothing traced) most functions call NumPy's own function: the
same result with less overhead. Under a transformation the composite runs.

Index-like arguments (indices, shifts, repeats, pad widths, ``obj`` of insert/delete)
must be concrete: they decide the shape of the result. Only ``take``,
``take_along_axis``, ``put_along_axis`` and ``choose`` also accept traced integer indices.
"""
from __future__ import annotations

import builtins
import operator

import numpy as np

from .. import rows as _rows
from ..backend import array_module, dtype_name
from ..core import Primitive, Tracer, bind, def_rules
from ..core import _np    # statistics, a family above this one (see _pad_stat)
from ..errors import FuncgradTypeError, FuncgradValueError
from . import reductions as _red
from . import shape as _s
from .contractions import tensordot as _tensordot
from .creation import _xp_of
from .creation import full_like as _full_like
from .creation import zeros as _zeros
from .creation import zeros_like as _zeros_like
from .elementwise import where as _where
from .indexing import _getitem, _scatter
from .indexing_ops import _as_array, _concrete, _eager, _int_array, _lead, _to_int
from .reductions import _no_out
from .reductions import sum as _sum

__all__ = [
    "tile", "repeat", "pad", "flip", "fliplr", "flipud", "roll", "rot90", "diag",
    "diagonal", "diagflat", "trace", "tril", "triu", "meshgrid", "append", "insert",
    "delete", "resize", "rollaxis",
]

# ---------------------------------------------------------------------------------------
# Joining, reshaping, reordering


def tile(A, reps):
    """``A`` repeated ``reps`` times along each axis (a broadcast, so the gradient sums the
    copies). ``reps`` is an int or a tuple of ints (concrete).

    Example:
        >>> import funcgrad.numpy as fnp
        >>> fnp.tile(fnp.array([1., 2.]), (2, 2))
        array([[1., 2., 1., 2.],
               [1., 2., 1., 2.]])
    """
    if _eager(A, reps):
        return np.tile(A, reps)
    A = _as_array(A)
    reps = tuple(np.atleast_1d(_int_array(reps, "tile", "reps")).tolist())
    if builtins.any(r < 0 for r in reps):
        raise FuncgradValueError(f"tile: reps must be non-negative, got {reps}")
    d = builtins.max(len(reps), _s._ndim(A))
    shape = (1,) * (d - _s._ndim(A)) + _s._shape(A)
    reps = (1,) * (d - len(reps)) + reps
    if builtins.all(r == 1 for r in reps):
        return _s.reshape(A, shape)
    x = _s.reshape(A, tuple(v for s in shape for v in (1, s)))
    x = _s.broadcast_to(x, tuple(v for r, s in zip(reps, shape) for v in (r, s)))
    return _s.reshape(x, tuple(r * s for r, s in zip(reps, shape)))


def repeat(a, repeats, axis=None):
    """Repeat each element of ``a`` along ``axis`` (flattened when None). ``repeats`` is an
    int or (concrete) array of per-element counts, broadcast to the axis length.

    Example:
        >>> import funcgrad.numpy as fnp
        >>> fnp.repeat(fnp.array([1., 2.]), [1, 3])
        array([1., 2., 2., 2.])
    """
    if _eager(a, repeats):
        return np.repeat(a, repeats, axis=axis)
    a = _as_array(a)
    if axis is None:
        a = _s.ravel(a)
        axis = 0
    axis = _s.normalize_axis(axis, _s._ndim(a), "repeat")
    rep = _int_array(repeats, "repeat", "repeats")
    if (rep < 0).any():
        raise FuncgradValueError("repeat: repeats may not contain negative values")
    shape = a.shape
    n = shape[axis]
    if rep.size == 1:
        r = int(rep.reshape(()))
        x = _s.expand_dims(a, axis + 1)
        x = _s.broadcast_to(x, shape[:axis + 1] + (r,) + shape[axis + 1:])
        return _s.reshape(x, shape[:axis] + (n * r,) + shape[axis + 1:])
    if rep.ndim != 1 or rep.size != n:
        raise FuncgradValueError(
            f"repeat: repeats of shape {rep.shape} do not match axis {axis} of length {n}")
    return _getitem(a, _lead(axis) + (np.repeat(np.arange(n), rep),))


def _pairs(x, ndim, what, as_index):
    """NumPy's (before, after) pairs for each axis from the many accepted forms."""
    x = np.asarray(x)
    if as_index:
        if x.dtype.kind not in "iu":
            raise FuncgradTypeError(f"pad: `{what}` must be of integral type, got {x.dtype}")
        if x.size and x.min() < 0:
            raise FuncgradValueError(f"pad: `{what}` can't contain negative values")
    if x.ndim < 3:
        if x.size == 1:
            v = x.ravel()[0]
            return [(v, v)] * ndim
        if x.size == 2 and x.shape != (2, 1):
            v = x.ravel()
            return [(v[0], v[1])] * ndim
    try:
        return [tuple(p) for p in np.broadcast_to(x, (ndim, 2))]
    except ValueError:
        raise FuncgradValueError(
            f"pad: `{what}` of shape {x.shape} cannot be broadcast to ({ndim}, 2)") from None


def _pair_values(v, ndim, what):
    """Like :func:`_pairs`, for values that may be traced: pairs of 0-d (traced) values."""
    if not isinstance(v, Tracer):
        return _pairs(v, ndim, what, False)
    labels = _pairs(np.arange(v.size).reshape(v.shape), ndim, what, False)
    flat = _s.ravel(v)
    return [tuple(_getitem(flat, int(i)) for i in p) for p in labels]


def _axis_shape(x, axis, n):
    s = list(x.shape)
    s[axis] = n
    return tuple(s)


def _scalar_like(v, dtype):
    """A fill value cast to ``dtype`` without letting a NumPy float64 promote float32."""
    if isinstance(v, Tracer):
        return _s.astype(v, dtype)
    return np.asarray(v).astype(dtype)


_PAD_KWARGS = {"constant": {"constant_values"}, "empty": set(), "edge": set(),
               "wrap": set(), "reflect": {"reflect_type"}, "symmetric": {"reflect_type"},
               "linear_ramp": {"end_values"}, "maximum": {"stat_length"},
               "minimum": {"stat_length"}, "mean": {"stat_length"},
               "median": {"stat_length"}}


def pad(array, pad_width, mode="constant", **kwargs):
    """Pad ``array`` with ``pad_width`` (an int, ``(before, after)``, or one pair per axis,
    as NumPy) in one of NumPy's modes:

    ``'constant'`` (``constant_values``, which may be traced and then gets a gradient),
    ``'edge'``, ``'reflect'`` and ``'symmetric'`` (``reflect_type`` 'even' or 'odd'),
    ``'wrap'``, ``'linear_ramp'`` (``end_values``), ``'maximum'``, ``'minimum'``,
    ``'mean'``, ``'median'`` (``stat_length``) and ``'empty'`` (zeros here). A callable
    ``mode`` or a keyword that the mode does not take raises.

    Gradients: the padded border copies values, so their cotangents add back to the
    elements they came from (and, in the statistic modes, through max/min/mean/median).

    Example:
        >>> import funcgrad.numpy as fnp
        >>> fnp.pad(fnp.array([1., 2., 3.]), (2, 1), mode="reflect")
        array([3., 2., 1., 2., 3., 2.])
    """
    if callable(mode) or mode not in _PAD_KWARGS:
        raise FuncgradValueError(
            f"pad: mode {mode!r} is not supported; use one of {sorted(_PAD_KWARGS)}")
    extra = set(kwargs) - _PAD_KWARGS[mode]
    if extra:
        raise FuncgradValueError(
            f"pad: unsupported keyword arguments for mode {mode!r}: {sorted(extra)}")
    if _eager(array, pad_width, tuple(kwargs.values())):
        return np.pad(array, pad_width, mode=mode, **kwargs)
    x = _as_array(array)
    nd = _s._ndim(x)
    widths = _pairs(_concrete(pad_width, "pad", "pad_width"), nd, "pad_width", True)
    if mode in ("constant", "empty"):
        cv = _pair_values(kwargs.get("constant_values", 0) if mode == "constant" else 0,
                          nd, "constant_values")
    elif mode == "linear_ramp":
        ev = _pair_values(kwargs.get("end_values", 0), nd, "end_values")
    elif mode in ("maximum", "minimum", "mean", "median"):
        sl = _pairs(kwargs.get("stat_length") if kwargs.get("stat_length") is not None
                    else np.array(-1), nd, "stat_length", False)
    reflect_type = kwargs.get("reflect_type", "even")
    if reflect_type not in ("even", "odd"):
        raise FuncgradValueError(f"pad: reflect_type must be 'even' or 'odd', got {reflect_type!r}")
    for axis in range(nd):
        b, e = (int(w) for w in widths[axis])
        if b == 0 and e == 0:
            continue
        n = x.shape[axis]
        if n == 0 and mode not in ("constant", "empty"):
            raise FuncgradValueError(
                f"pad: can't extend empty axis {axis} using modes other than 'constant' "
                "or 'empty'")
        if mode in ("constant", "empty"):
            parts = [x]
            if b:
                parts.insert(0, _full_like(x, _scalar_like(cv[axis][0], x.dtype),
                                           shape=_axis_shape(x, axis, b)))
            if e:
                parts.append(_full_like(x, _scalar_like(cv[axis][1], x.dtype),
                                        shape=_axis_shape(x, axis, e)))
            x = _s.concatenate(parts, axis=axis)
        elif mode in ("edge", "wrap") or (mode in ("reflect", "symmetric")
                                          and reflect_type == "even"):
            src = np.pad(np.arange(n), (b, e), mode=mode)
            x = _getitem(x, _lead(axis) + (src,))
        elif mode in ("reflect", "symmetric"):     # odd reflection: a linear map, not a gather
            m = np.pad(np.eye(n), ((b, e), (0, 0)), mode=mode, reflect_type="odd")
            x = _apply_along(m.astype(x.dtype), x, axis)
        elif mode == "linear_ramp":
            # Linear in x (ramps toward the edges) plus linear in the two end values.
            m = np.pad(np.eye(n), ((b, e), (0, 0)), mode="linear_ramp", end_values=0)
            ramp_b = np.pad(np.zeros(n), (b, e), mode="linear_ramp", end_values=(1, 0))
            ramp_e = np.pad(np.zeros(n), (b, e), mode="linear_ramp", end_values=(0, 1))
            bshape = (-1,) + (1,) * (nd - axis - 1)
            x = (_apply_along(m.astype(x.dtype), x, axis)
                 + _scalar_like(ev[axis][0], x.dtype) * ramp_b.astype(x.dtype).reshape(bshape)
                 + _scalar_like(ev[axis][1], x.dtype) * ramp_e.astype(x.dtype).reshape(bshape))
        else:
            x = _pad_stat(x, axis, b, e, sl[axis], mode)
    return x


def _apply_along(m, x, axis):
    """``m @ x`` along ``axis`` (``m`` is a constant (new_n, n) matrix)."""
    return _s.moveaxis(_tensordot(m, x, axes=([1], [axis])), 0, axis)


def _pad_stat(x, axis, b, e, lengths, mode):
    stat = {"maximum": _red.max, "minimum": _red.min, "mean": _red.mean,
            "median": _np().median}[mode]
    n = x.shape[axis]
    parts = [x]
    for width, length, before in ((b, lengths[0], True), (e, lengths[1], False)):
        if not width:
            continue
        length = n if length is None or int(length) < 0 else builtins.min(int(length), n)
        if length == 0:
            raise FuncgradValueError("pad: stat_length of 0 yields no value for padding")
        region = _getitem(x, _lead(axis) + (slice(0, length) if before else slice(n - length, n),))
        v = stat(region, axis=axis, keepdims=True)
        if v.dtype != x.dtype:
            v = _s.astype(v, x.dtype)
        block = _s.broadcast_to(v, _axis_shape(x, axis, width))
        parts.insert(0, block) if before else parts.append(block)
    return _s.concatenate(parts, axis=axis)


def flip(m, axis=None):
    """Reverse the order of elements along ``axis`` (an int, a tuple, or all axes).

    Example:
        >>> import funcgrad.numpy as fnp
        >>> fnp.flip(fnp.array([[1., 2.], [3., 4.]]), axis=-1)
        array([[2., 1.],
               [4., 3.]])
    """
    if _eager(m):
        return np.flip(m, axis)
    m = _as_array(m)
    axes = _s.normalize_axes(axis, _s._ndim(m), "flip")
    if not axes:
        return m
    return _getitem(m, tuple(slice(None, None, -1) if i in axes else slice(None)
                             for i in range(_s._ndim(m))))


def fliplr(m):
    """Reverse the columns (axis 1); ``m`` must be at least 2-D."""
    m = _as_array(m)
    if _s._ndim(m) < 2:
        raise FuncgradValueError(f"fliplr: input must be >= 2-d, got {dtype_name(m)}")
    return flip(m, 1)


def flipud(m):
    """Reverse the rows (axis 0); ``m`` must be at least 1-D."""
    m = _as_array(m)
    if _s._ndim(m) < 1:
        raise FuncgradValueError("flipud: input must be >= 1-d")
    return flip(m, 0)


# ---- roll: one primitive ---------------------------------------------------------------
def _roll_impl(x, shift, axis):
    return array_module(x).roll(x, shift, axis)


roll_p = Primitive("roll", _roll_impl)


def _roll_back(g, shift, axis):
    return bind(roll_p, g, shift=tuple(-s for s in shift), axis=axis)


def _roll_batch(vals, dims, shift, axis):
    d = dims[0]                 # the batch axis sits at d: the rolled axes after it move
    return bind(roll_p, vals[0], shift=shift, axis=tuple(a + (a >= d) for a in axis)), d


def _roll_rows(kinds, invars, outvars, params, batch):
    k = kinds[0]
    if k is _rows.PARTIAL:            # linear: a partial sum rolls into a partial sum
        return [_rows.PARTIAL], None, {}
    if k.axis in params["axis"]:  # rolling the batch axis mixes the slices
        return None
    return [k], None, {}


def_rules(roll_p,
          jvp=(lambda t, ans, x, shift, axis: bind(roll_p, t, shift=shift, axis=axis),),
          vjp=(lambda g, ans, x, shift, axis: _roll_back(g, shift, axis),),
          batch=_roll_batch, rows=_roll_rows)


def rollaxis(a, axis, start=0):
    """Move ``axis`` to the position before ``start`` (NumPy's older spelling of
    :func:`moveaxis`, with its rules: ``start`` may be ``ndim``; moving an axis before
    itself or the next one leaves ``a`` as it is). Derivative: the inverse move."""
    a = _as_array(a)
    nd = _s._ndim(a)
    axis = _s.normalize_axis(axis, nd, "rollaxis")
    start = operator.index(start)
    if start < 0:
        start += nd
    if not 0 <= start <= nd:
        raise FuncgradValueError(
            f"rollaxis: start {start} is out of bounds for an array of {nd} dimension(s); "
            f"it must be in {-nd}..{nd}")
    if axis < start:
        start -= 1
    return a if axis == start else _s.moveaxis(a, axis, start)


def roll(a, shift, axis=None):
    """Shift elements cyclically by ``shift`` along ``axis`` (the flattened array when
    None). ``shift`` and ``axis`` may be tuples, broadcast against each other; shifts on a
    repeated axis add up. One primitive (``roll``): its derivative rolls back.

    Example:
        >>> import funcgrad.numpy as fnp
        >>> fnp.roll(fnp.array([1., 2., 3., 4.]), 1)
        array([4., 1., 2., 3.])
    """
    if _eager(a, shift):
        return np.roll(a, shift, axis)
    a = _as_array(a)
    if axis is None:
        shape = _s._shape(a)
        return _s.reshape(roll(_s.ravel(a), shift, 0), shape)
    shifts = np.atleast_1d(_int_array(shift, "roll", "shift"))
    axes = np.atleast_1d(np.asarray(axis))
    try:
        shifts, axes = np.broadcast_arrays(shifts, axes)
    except ValueError:
        raise FuncgradValueError(
            "roll: 'shift' and 'axis' should be scalars or 1D sequences") from None
    if shifts.ndim > 1:
        raise FuncgradValueError("roll: 'shift' and 'axis' should be scalars or 1D sequences")
    nd = _s._ndim(a)
    total = {}
    for s, ax in zip(shifts.tolist(), axes.tolist()):
        ax = _s.normalize_axis(ax, nd, "roll")
        total[ax] = total.get(ax, 0) + s
    # shifts reduced modulo the length, zero ones dropped: equal rolls share one key
    kept = [(ax, s % a.shape[ax]) for ax, s in sorted(total.items())
            if a.shape[ax] and s % a.shape[ax]]
    if not kept:
        return a
    return bind(roll_p, a, shift=tuple(s for _, s in kept), axis=tuple(ax for ax, _ in kept))


def rot90(m, k=1, axes=(0, 1)):
    """Rotate by 90 degrees ``k`` times in the plane of ``axes`` (from the first axis
    toward the second), as flips and a transpose."""
    if _eager(m, k):
        return np.rot90(m, k, axes)
    m = _as_array(m)
    axes = tuple(axes)
    nd = _s._ndim(m)
    if len(axes) != 2:
        raise FuncgradValueError("rot90: len(axes) must be 2")
    if nd < 2:
        raise FuncgradValueError(f"rot90: input must be >= 2-d, got {dtype_name(m)}")
    a0, a1 = (_s.normalize_axis(ax, nd, "rot90") for ax in axes)
    if a0 == a1:
        raise FuncgradValueError("rot90: axes must be different")
    k = _to_int(k, "rot90", "k") % 4
    if k == 0:
        return m
    if k == 2:
        return flip(flip(m, a0), a1)
    perm = list(range(nd))
    perm[a0], perm[a1] = perm[a1], perm[a0]
    if k == 1:
        return _s.transpose(flip(m, a1), perm)
    return flip(_s.transpose(m, perm), a1)


def diagonal(a, offset=0, axis1=0, axis2=1):
    """The diagonal of ``a`` in the plane ``(axis1, axis2)`` shifted by ``offset``; the
    diagonal becomes the last axis, as in NumPy. Gradient: scattered back onto it."""
    if _eager(a):
        return np.diagonal(a, offset, axis1, axis2)
    a = _as_array(a)
    nd = _s._ndim(a)
    if nd < 2:
        raise FuncgradValueError(f"diagonal: array must be at least 2-d, got {dtype_name(a)}")
    i = _s.normalize_axis(axis1, nd, "diagonal")
    j = _s.normalize_axis(axis2, nd, "diagonal")
    if i == j:
        raise FuncgradValueError("diagonal: axis1 and axis2 cannot be the same")
    offset = _to_int(offset, "diagonal", "offset")
    x = _s.moveaxis(a, (i, j), (-2, -1))
    n1, n2 = x.shape[-2:]
    if offset >= 0:
        d = builtins.max(0, builtins.min(n1, n2 - offset))
        rows, cols = np.arange(d), np.arange(d) + offset
    else:
        d = builtins.max(0, builtins.min(n1 + offset, n2))
        rows, cols = np.arange(d) - offset, np.arange(d)
    return _getitem(x, (Ellipsis, rows, cols))


def diag(v, k=0):
    """The ``k``-th diagonal of a 2-D ``v``, or a 2-D array with the 1-D ``v`` on its
    ``k``-th diagonal (zeros elsewhere).

    Example:
        >>> import funcgrad.numpy as fnp
        >>> fnp.diag(fnp.array([1., 2.]), k=1)
        array([[0., 1., 0.],
               [0., 0., 2.],
               [0., 0., 0.]])
    """
    if _eager(v, k):
        return np.diag(v, k)
    v = _as_array(v)
    k = _to_int(k, "diag", "k")
    nd = _s._ndim(v)
    if nd == 2:
        return diagonal(v, k)
    if nd != 1:
        raise FuncgradValueError(f"diag: input must be 1- or 2-d, got {dtype_name(v)}")
    n = v.shape[0]
    size = n + builtins.abs(k)
    rows = np.arange(n) + builtins.max(-k, 0)
    cols = np.arange(n) + builtins.max(k, 0)
    return _scatter(_zeros_like(v, shape=(size, size)), (rows, cols), v, "set")


def diagflat(v, k=0):
    """A 2-D array with the flattened ``v`` on its ``k``-th diagonal."""
    return diag(_s.ravel(_as_array(v)), k)


def trace(a, offset=0, axis1=0, axis2=1, dtype=None, out=None):
    """Sum along a diagonal (see :func:`diagonal`); ``dtype`` as in ``sum``. ``out=``
    raises."""
    _no_out("trace", out)
    if _eager(a):
        return np.trace(a, offset, axis1, axis2, dtype)
    return _sum(diagonal(a, offset, axis1, axis2), axis=-1, dtype=dtype)


def _tri_mask(shape, k, lower, xp=np):
    if len(shape) == 0:
        raise FuncgradValueError("tril/triu: input must be at least 1-d")
    rows, cols = (shape[-2], shape[-1]) if len(shape) >= 2 else (shape[-1], shape[-1])
    t = xp.tri(rows, cols, k if lower else k - 1, dtype=bool)
    return t if lower else ~t


def tril(m, k=0):
    """``m`` with the elements above the ``k``-th diagonal zeroed (on the last two axes;
    a 1-D ``m`` is first broadcast to a square, as NumPy does)."""
    m = _as_array(m)
    k = _to_int(k, "tril", "k")
    return _where(_tri_mask(_s._shape(m), k, True, _xp_of(m)), m, np.zeros((), m.dtype))


def triu(m, k=0):
    """``m`` with the elements below the ``k``-th diagonal zeroed (see :func:`tril`)."""
    m = _as_array(m)
    k = _to_int(k, "triu", "k")
    return _where(_tri_mask(_s._shape(m), k, False, _xp_of(m)), m, np.zeros((), m.dtype))


def meshgrid(*xi, copy=True, sparse=False, indexing="xy"):
    """Coordinate arrays from 1-D coordinate vectors (a tuple, as NumPy 2).
    ``indexing='xy'`` (Cartesian, the default) or ``'ij'`` (matrix); ``sparse=True``
    returns broadcastable arrays instead of full ones. ``copy`` is accepted and ignored
    (arrays are immutable)."""
    if indexing not in ("xy", "ij"):
        raise FuncgradValueError("meshgrid: valid values for `indexing` are 'xy' and 'ij'")
    xs = [_s.ravel(_as_array(x)) for x in xi]
    nd = len(xs)
    out = []
    for i, x in enumerate(xs):
        pos = i
        if indexing == "xy" and nd > 1 and i < 2:
            pos = 1 - i
        out.append(_s.reshape(x, (1,) * pos + (-1,) + (1,) * (nd - pos - 1)))
    if not sparse and nd:
        shape = np.broadcast_shapes(*[_s._shape(o) for o in out])
        out = [_s.broadcast_to(o, shape) for o in out]
    return tuple(out)


def append(arr, values, axis=None):
    """``arr`` with ``values`` appended along ``axis`` (both flattened when None)."""
    if _eager(arr, values):
        return np.append(arr, values, axis)
    arr = _as_array(arr)
    values = _as_array(values)
    if axis is None:
        if _s._ndim(arr) != 1:
            arr = _s.ravel(arr)
        values = _s.ravel(values)
        axis = _s._ndim(arr) - 1
    return _s.concatenate([arr, values], axis=axis)


def _labels(shape):
    return np.arange(int(np.prod(shape, dtype=np.int64))).reshape(shape)


def insert(arr, obj, values, axis=None):
    """``arr`` with ``values`` inserted before the index or indices ``obj`` along ``axis``
    (of the flattened array when None), with NumPy's rules for ``obj`` (an int, a slice,
    or a sequence of ints) and for broadcasting ``values``. ``values`` is cast to
    ``arr``'s dtype. ``obj`` must be concrete. Gradients flow to ``arr`` and ``values``.

    Example:
        >>> import funcgrad.numpy as fnp
        >>> fnp.insert(fnp.array([1., 2., 3.]), 1, 9.0)
        array([1., 9., 2., 3.])
    """
    if _eager(arr, obj, values):
        return np.insert(arr, obj, values, axis=axis)
    arr = _as_array(arr)
    values = _as_array(values)
    obj = _concrete(obj, "insert", "obj")
    if axis is None:
        arr = _s.ravel(arr)
        axis = 0
    axis = _s.normalize_axis(axis, _s._ndim(arr), "insert")
    n_arr = arr.size
    try:
        src = np.insert(_labels(arr.shape), obj, n_arr + _labels(_s._shape(values)), axis=axis)
    except (IndexError, ValueError, TypeError) as e:
        raise FuncgradValueError(f"insert: {e}") from None
    if values.dtype != arr.dtype:
        values = _s.astype(values, arr.dtype)
    pool = _s.concatenate([_s.ravel(arr), _s.ravel(values)])
    return _getitem(pool, (src,))


def delete(arr, obj, axis=None):
    """``arr`` without the sub-arrays at ``obj`` (an int, a slice, a sequence of ints or a
    boolean mask; concrete) along ``axis`` (of the flattened array when None)."""
    if _eager(arr, obj):
        return np.delete(arr, obj, axis=axis)
    arr = _as_array(arr)
    obj = _concrete(obj, "delete", "obj")
    if axis is None:
        arr = _s.ravel(arr)
        axis = 0
    axis = _s.normalize_axis(axis, _s._ndim(arr), "delete")
    try:
        src = np.delete(_labels(arr.shape), obj, axis=axis)
    except (IndexError, ValueError, TypeError) as e:
        raise FuncgradValueError(f"delete: {e}") from None
    return _getitem(_s.ravel(arr), (src,))


def resize(a, new_shape):
    """An array of ``new_shape`` filled by repeating the flattened ``a`` cyclically (zeros
    when ``a`` is empty), as ``numpy.resize``."""
    if _eager(a):
        return np.resize(a, new_shape)
    a = _as_array(a)
    new_shape = (new_shape,) if isinstance(new_shape, (int, np.integer)) else tuple(new_shape)
    if builtins.any(d < 0 for d in new_shape):
        raise FuncgradValueError("resize: all elements of `new_shape` must be non-negative")
    if a.size == 0:
        return _zeros(new_shape, a.dtype)
    src = np.resize(np.arange(a.size), new_shape)
    return _getitem(_s.ravel(a), (src,))

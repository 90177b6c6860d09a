"""Indexing built on the ``getitem`` and ``scatter`` primitives: take, take_along_axis,
put_along_axis, compress, choose, select, and the index constructors (tril_indices,
unravel_index, ix_, ...); also the argument helpers that manipulation.py, scans.py and
statistics.py share.

Every differentiable function here is a composite: gathers send the cotangent back with
a scatter-add, so repeated indices accumulate. On plain NumPy inputs (nothing traced)
most functions call NumPy's own function. Index arguments must be concrete, except the
indices of ``take``, ``take_along_axis``, ``put_along_axis`` and ``choose``, which may be
traced integers.
"""
from __future__ import annotations

import builtins
import operator

import numpy as np

from ..backend import dtype_name
from ..core import Tracer
from ..errors import FuncgradTypeError, FuncgradValueError, IndexOutOfBoundsError
from . import shape as _s
from .creation import asarray as _asarray
from .elementwise import clip as _clip
from .elementwise import remainder as _remainder
from .elementwise import where as _where
from .indexing import _getitem, _scatter
from .reductions import _no_out

__all__ = [
    "take", "take_along_axis", "put_along_axis", "compress", "choose", "select",
    "diag_indices", "diag_indices_from", "tril_indices", "tril_indices_from",
    "triu_indices", "triu_indices_from", "unravel_index", "ravel_multi_index", "indices",
    "ix_",
]


def _eager(*xs):
    """True when every argument is a plain NumPy value (no tracer, no GPU array): NumPy's
    own function then gives the same result, faster than the composite."""
    for x in xs:
        if x is None or isinstance(x, (np.ndarray, np.generic, int, float, complex, str, slice)):
            continue
        if isinstance(x, (list, tuple)):
            if not _eager(*x):
                return False
            continue
        return False
    return True


def _as_array(a):
    return _asarray(a) if isinstance(a, (list, tuple)) else _s._as_array(a)


def _concrete(v, op, what):
    """A concrete NumPy value for an argument that decides a shape or a static index."""
    if isinstance(v, Tracer):
        v = v._concrete(f"{op}: {what} (it decides the result's shape)")
    return v


def _int_array(v, op, what, allow_bool=False):
    a = _concrete(v, op, what)
    if not (hasattr(a, "dtype") and hasattr(a, "shape")):   # arrays of any module stay
        a = np.asarray(a)
    if a.dtype.kind in "iu" or (allow_bool and a.dtype.kind == "b"):
        return a
    if a.size == 0:
        return a.astype(np.intp)
    raise FuncgradTypeError(f"{op}: {what} must be integers, got {dtype_name(a)}")


def _to_int(v, op, what):
    v = _concrete(v, op, what)
    try:
        return operator.index(v)
    except TypeError:
        raise FuncgradTypeError(f"{op}: {what} must be an integer, got {v!r}") from None


def _index_arg(indices, op):
    """Indices as they travel into getitem: traced integers pass, the rest become arrays."""
    if isinstance(indices, Tracer):
        if indices.dtype.kind not in "iu":
            raise FuncgradTypeError(
                f"{op}: indices must be integers, got a traced {dtype_name(indices)}")
        return indices
    return _int_array(indices, op, "indices")


def _lead(axis):
    return (slice(None),) * axis


# ---------------------------------------------------------------------------------------
# Indexing


def take(a, indices, axis=None, out=None, mode="raise"):
    """Elements of ``a`` at ``indices`` along ``axis`` (of the flattened array when None).

    ``mode`` is ``'raise'`` (negative indices count from the end; out-of-range ones raise
    an ``IndexError`` when the indices are concrete), ``'wrap'`` (modulo the axis length)
    or ``'clip'`` (clamped to the valid range; negative indices become 0, as in NumPy).
    ``indices`` may be traced integers. ``out=`` raises.

    Gradient: the cotangent is scattered back and repeated indices accumulate.

    Example:
        >>> import funcgrad.numpy as fnp
        >>> fnp.take(fnp.array([[1., 2.], [3., 4.]]), [1, 1, 0], axis=1)
        array([[2., 2., 1.],
               [4., 4., 3.]])
    """
    _no_out("take", out)
    if mode not in ("raise", "wrap", "clip"):
        raise FuncgradValueError(f"take: mode must be 'raise', 'wrap' or 'clip', got {mode!r}")
    if _eager(a, indices):
        return np.take(a, indices, axis=axis, mode=mode)
    a = _as_array(a)
    if axis is None:
        a = _s.ravel(a)
        axis = 0
    axis = _s.normalize_axis(axis, _s._ndim(a), "take")
    n = a.shape[axis]
    idx = _index_arg(indices, "take")
    if mode != "raise" and n == 0 and idx.size:
        raise FuncgradValueError("take: cannot do a non-empty take from an empty axis")
    if mode == "wrap":
        idx = _remainder(idx, n) if isinstance(idx, Tracer) else np.remainder(idx, n)
    elif mode == "clip":
        idx = _clip(idx, 0, n - 1) if isinstance(idx, Tracer) else np.clip(idx, 0, n - 1)
    elif not isinstance(idx, Tracer) and idx.size and (idx.min() < -n or idx.max() >= n):
        bad = idx.min() if idx.min() < -n else idx.max()
        raise IndexOutOfBoundsError(
            f"take: index {bad} is out of bounds for axis {axis} with size {n} (of "
            f"{dtype_name(a)}); use mode='wrap' or mode='clip' to map it into range")
    return _getitem(a, _lead(axis) + (idx,))


def _along_axis_index(arr, indices, axis, op):
    """The advanced index that pairs ``indices`` on ``axis`` with every other position."""
    nd = _s._ndim(arr)
    ishape = _s._shape(indices)
    if len(ishape) != nd:
        raise FuncgradValueError(
            f"{op}: indices ({len(ishape)}-d) and arr ({dtype_name(arr)}) must have the "
            "same number of dimensions")
    shape = arr.shape
    idx = []
    for i in range(nd):
        if i == axis:
            idx.append(indices)
        else:
            if ishape[i] != shape[i] and ishape[i] != 1 and shape[i] != 1:
                raise FuncgradValueError(
                    f"{op}: shape mismatch: indices of shape {ishape} do not broadcast "
                    f"against {dtype_name(arr)} outside axis {axis}")
            idx.append(np.arange(shape[i]).reshape((1,) * i + (-1,) + (1,) * (nd - i - 1)))
    return tuple(idx)


def take_along_axis(arr, indices, axis=-1):
    """``arr`` gathered at ``indices`` along ``axis`` (``indices`` has ``arr``'s number of
    dimensions and broadcasts against it elsewhere; ``axis=None`` uses the flattened
    ``arr`` and 1-D indices). The usual partner of ``argsort``/``argmax(keepdims=True)``.

    Gradient: scattered back; repeated indices accumulate.

    Example:
        >>> import funcgrad.numpy as fnp
        >>> x = fnp.array([[3., 1., 2.]])
        >>> fnp.take_along_axis(x, fnp.argsort(x, axis=1), axis=1)
        array([[1., 2., 3.]])
    """
    if _eager(arr, indices):
        return np.take_along_axis(arr, indices, axis=axis)
    arr = _as_array(arr)
    indices = _index_arg(indices, "take_along_axis")
    if axis is None:
        if indices.ndim != 1:
            raise FuncgradValueError(
                "take_along_axis: when axis=None, indices must be 1-D, got shape "
                f"{indices.shape}")
        arr = _s.ravel(arr)
        axis = 0
    axis = _s.normalize_axis(axis, _s._ndim(arr), "take_along_axis")
    return _getitem(arr, _along_axis_index(arr, indices, axis, "take_along_axis"))


def put_along_axis(arr, indices, values, axis):
    """A copy of ``arr`` with ``values`` written at ``indices`` along ``axis`` (functional:
    NumPy's version works in place and returns None; this one returns the new array).

    ``values`` broadcasts against ``indices``, and is cast to ``arr``'s dtype. Where an
    index repeats, the last write wins (as NumPy does in practice) and only that value
    receives a gradient; the overwritten entries of ``arr`` get zero gradient.

    Example:
        >>> import funcgrad.numpy as fnp
        >>> fnp.put_along_axis(fnp.zeros((2, 2)), fnp.array([[1], [0]]), 5.0, axis=1)
        array([[0., 5.],
               [5., 0.]])
    """
    arr = _as_array(arr)
    indices = _index_arg(indices, "put_along_axis")
    if axis is None:
        if indices.ndim != 1:
            raise FuncgradValueError("put_along_axis: when axis=None, indices must be 1-D")
        shape = arr.shape
        return _s.reshape(put_along_axis(_s.ravel(arr), indices, values, 0), shape)
    axis = _s.normalize_axis(axis, _s._ndim(arr), "put_along_axis")
    values = _as_array(values)
    idx = _along_axis_index(arr, indices, axis, "put_along_axis")
    if isinstance(indices, Tracer):
        return _scatter(arr, idx, values, "set")
    full = np.broadcast_arrays(*idx)
    bshape = full[0].shape
    try:
        np.broadcast_shapes(_s._shape(values), bshape)
    except ValueError:
        raise FuncgradValueError(
            f"put_along_axis: values of shape {_s._shape(values)} do not broadcast to the "
            f"indexed shape {bshape}") from None
    n = arr.shape[axis]
    if full[0].size and (indices.min() < -n or indices.max() >= n):
        raise IndexOutOfBoundsError(
            f"put_along_axis: an index is out of bounds for axis {axis} with size {n}")
    lin = np.ravel_multi_index(tuple(np.remainder(i, d) for i, d in zip(full, arr.shape)),
                               arr.shape).ravel()
    rev_first = np.unique(lin[::-1], return_index=True)[1]
    if rev_first.size == lin.size:
        return _scatter(arr, idx, values, "set")
    # Keep only the last write to each position, so the gradient reaches only it.
    keep = np.sort(lin.size - 1 - rev_first)
    kept_idx = tuple(i.ravel()[keep] for i in full)
    kept_vals = _getitem(_s.ravel(_s.broadcast_to(values, bshape)), (keep,))
    return _scatter(arr, kept_idx, kept_vals, "set")


def compress(condition, a, axis=None, out=None):
    """The slices of ``a`` along ``axis`` (flattened when None) where the 1-D boolean
    ``condition`` is true; a shorter ``condition`` covers only the leading slices.
    ``condition`` must be concrete (it decides the shape); ``out=`` raises."""
    _no_out("compress", out)
    if _eager(condition, a):
        return np.compress(condition, a, axis=axis)
    cond = np.asarray(_concrete(condition, "compress", "condition"))
    if cond.ndim != 1:
        raise FuncgradValueError(f"compress: condition must be 1-D, got shape {cond.shape}")
    a = _as_array(a)
    if axis is None:
        a = _s.ravel(a)
        axis = 0
    axis = _s.normalize_axis(axis, _s._ndim(a), "compress")
    if cond.size > a.shape[axis]:
        raise FuncgradValueError(
            f"compress: condition of length {cond.size} is longer than axis {axis} of "
            f"{dtype_name(a)}")
    return _getitem(a, _lead(axis) + (np.nonzero(cond)[0],))


def choose(a, choices, out=None, mode="raise"):
    """Build an array from the index array ``a`` and the list ``choices``:
    ``result[i] = choices[a[i]][i]``, broadcasting ``a`` and every choice together.

    ``mode``: ``'raise'`` (indices must lie in ``[0, len(choices))``; checked when concrete),
    ``'wrap'`` or ``'clip'``. Gradients flow to the chosen entries of each choice; ``a``
    has none. ``out=`` raises.
    """
    _no_out("choose", out)
    if _eager(a, choices):
        return np.choose(a, choices, mode=mode)
    if isinstance(choices, Tracer) or hasattr(choices, "shape"):
        choices = [choices[i] for i in range(len(choices))]
    choices = [_as_array(c) for c in choices]
    n = len(choices)
    if n == 0:
        raise FuncgradValueError("choose: choices must not be empty")
    a = _index_arg(a, "choose")
    shape = np.broadcast_shapes(_s._shape(a), *[_s._shape(c) for c in choices])
    if mode == "wrap":
        a = _remainder(a, n) if isinstance(a, Tracer) else np.remainder(a, n)
    elif mode == "clip":
        a = _clip(a, 0, n - 1) if isinstance(a, Tracer) else np.clip(a, 0, n - 1)
    elif mode != "raise":
        raise FuncgradValueError(f"choose: mode must be 'raise', 'wrap' or 'clip', got {mode!r}")
    elif not isinstance(a, Tracer) and a.size and (a.min() < 0 or a.max() >= n):
        raise FuncgradValueError(
            f"choose: invalid entry in the index array: entries must lie in [0, {n}) for "
            f"{n} choices; use mode='wrap' or mode='clip'")
    stacked = _s.stack([_s.broadcast_to(c, shape) for c in choices])
    nd = len(shape)
    grids = tuple(np.arange(d).reshape((1,) * i + (-1,) + (1,) * (nd - i - 1))
                  for i, d in enumerate(shape))
    return _getitem(stacked, (_s.broadcast_to(a, shape),) + grids)


def select(condlist, choicelist, default=0):
    """``choicelist[k]`` where ``condlist[k]`` is the first true condition, ``default``
    where none is (all broadcast together). Gradients flow to the selected entries."""
    if len(condlist) != len(choicelist):
        raise FuncgradValueError("select: condlist and choicelist must be of the same length")
    if len(condlist) == 0:
        raise FuncgradValueError("select: select with an empty condition list is not possible")
    conds = [_as_array(c) for c in condlist]
    for i, c in enumerate(conds):
        if c.dtype != np.bool_:
            raise FuncgradTypeError(
                f"select: invalid entry {i} in condlist: should be boolean ndarray, got "
                f"{dtype_name(c)}")
    choices = [_as_array(c) for c in choicelist]
    shape = np.broadcast_shapes(*[_s._shape(c) for c in conds + choices], _s._shape(default))
    res = default
    for c, v in zip(reversed(conds), reversed(choices)):
        res = _where(c, v, res)
    return _s.broadcast_to(_as_array(res), shape)


def diag_indices(n, ndim=2):
    """Indices of the main diagonal of an ``(n,) * ndim`` array (NumPy's, unchanged)."""
    return np.diag_indices(n, ndim)


def diag_indices_from(arr):
    """Indices of the main diagonal of ``arr`` (square in every dimension)."""
    shape = _s._shape(arr)
    if len(shape) < 2:
        raise FuncgradValueError("diag_indices_from: input array must be at least 2-d")
    if builtins.any(d != shape[0] for d in shape):
        raise FuncgradValueError(
            "diag_indices_from: all dimensions of input must be of equal length")
    return np.diag_indices(shape[0], len(shape))


def tril_indices(n, k=0, m=None):
    """Indices of the lower triangle of an ``(n, m)`` array (NumPy's, unchanged)."""
    return np.tril_indices(n, k, m)


def triu_indices(n, k=0, m=None):
    """Indices of the upper triangle of an ``(n, m)`` array (NumPy's, unchanged)."""
    return np.triu_indices(n, k, m)


def tril_indices_from(arr, k=0):
    """Indices of the lower triangle of the 2-D ``arr`` (only its shape is used)."""
    shape = _s._shape(arr)
    if len(shape) != 2:
        raise FuncgradValueError("tril_indices_from: input array must be 2-d")
    return np.tril_indices(shape[0], k, shape[1])


def triu_indices_from(arr, k=0):
    """Indices of the upper triangle of the 2-D ``arr`` (only its shape is used)."""
    shape = _s._shape(arr)
    if len(shape) != 2:
        raise FuncgradValueError("triu_indices_from: input array must be 2-d")
    return np.triu_indices(shape[0], k, shape[1])


def unravel_index(indices, shape, order="C"):
    """Flat indices to a tuple of coordinate arrays (NumPy's; integers, not
    differentiable; traced indices must be concrete)."""
    return np.unravel_index(_int_array(indices, "unravel_index", "indices"), shape, order)


def ravel_multi_index(multi_index, dims, mode="raise", order="C"):
    """Coordinate arrays to flat indices (NumPy's; integers, not differentiable)."""
    mi = tuple(_int_array(i, "ravel_multi_index", "multi_index") for i in multi_index)
    return np.ravel_multi_index(mi, dims, mode=mode, order=order)


def indices(dimensions, dtype=int, sparse=False):
    """A grid of indices (NumPy's; a constant)."""
    return np.indices(dimensions, dtype=dtype, sparse=sparse)


def ix_(*args):
    """An open mesh from 1-D integer or boolean sequences, for cross-product indexing
    ``x[ix_(rows, cols)]`` (NumPy's; the sequences must be concrete)."""
    return np.ix_(*[np.asarray(_concrete(a, "ix_", "its arguments")) for a in args])

"""Indexing: ``x[idx]`` (getitem) and its functional updates ``x.at[idx].set/add`` (scatter).

An index is split into a static, hashable description (ints, slices, None, Ellipsis and
placeholders) and the index arrays, which travel as ordinary (non-differentiable)
arguments of the primitive. Integer arrays, boolean masks and lists follow NumPy's
advanced-indexing rules.
"""
from __future__ import annotations

import operator

import numpy as np

from .. import rows as _rows
from ..backend import array_module, dtype_name, scatter_add
from ..batching import _fallback, bdim_size, move_to_front
from ..core import Primitive, Tracer, bind, def_rules, _IndexUpdateRef, xp_of
from ..errors import FuncgradTypeError, FuncgradValueError, IndexOutOfBoundsError
from . import shape as _shape
from .creation import zeros_like
from .elementwise import where
from .shape import broadcast_to, reshape

_ARRAY = "<array>"


def _split_index(idx):
    """(static description, index arrays) for a user's index."""
    if not isinstance(idx, tuple):
        idx = (idx,)
    static = []
    arrays = []
    for item in idx:
        if item is None or item is Ellipsis:
            static.append(item)
        elif isinstance(item, slice):
            static.append(("slice",) + tuple(
                None if v is None else _as_int(v, "a slice bound") for v in
                (item.start, item.stop, item.step)))
        elif isinstance(item, (bool, np.bool_)):
            static.append(_ARRAY)
            arrays.append(np.asarray(item))
        elif isinstance(item, (int, np.integer)):
            static.append(int(item))
        else:
            if isinstance(item, Tracer):
                if item.dtype.kind not in "biu":
                    raise FuncgradTypeError(
                        f"indexing with a traced {dtype_name(item)}: index arrays must be "
                        "integers or booleans")
                arr = item
            else:
                arr = item if hasattr(item, "dtype") and hasattr(item, "shape") else np.asarray(item)
                if arr.dtype.kind not in "biu":
                    if arr.size == 0:
                        arr = arr.astype(np.intp)
                    else:
                        raise FuncgradTypeError(
                            f"indexing with {dtype_name(arr)}: only integers, slices, None, "
                            "Ellipsis and integer or boolean arrays are valid indices")
            static.append(_ARRAY)
            arrays.append(arr)
    return tuple(static), arrays


def _as_int(v, what):
    if isinstance(v, Tracer):
        v = v._concrete(what)
    try:
        return operator.index(v)
    except TypeError:
        raise FuncgradTypeError(f"indexing: {what} must be an integer, got {v!r}") from None


def _rebuild(static, arrays):
    it = iter(arrays)
    out = []
    for s in static:
        if s is _ARRAY or (isinstance(s, str) and s == _ARRAY):
            out.append(next(it))
        elif isinstance(s, tuple):
            out.append(slice(*s[1:]))
        else:
            out.append(s)
    return tuple(out)


def _has_arrays(static):
    return any(isinstance(s, str) for s in static)


def _getitem_impl(x, *arrays, index):
    return x[_rebuild(index, arrays)]


def _scatter_impl(x, v, *arrays, index, mode):
    xp = array_module(x, v)
    out = xp.array(x, copy=True)
    idx = _rebuild(index, arrays)
    if mode == "set":
        out[idx] = v
    elif not _has_arrays(index):
        out[idx] += v          # basic indices never repeat an element
    elif xp is np:
        if not _add_rows(out, idx, v):
            np.add.at(out, idx, v)
    else:
        scatter_add(out, idx, v)
    return out


def _add_rows(out, idx, v):
    """``out[i] += v`` summing repeated rows, for one integer array ``i`` indexing the
    first axis (an embedding's gradient): the rows sorted by index (stably, so each
    row's terms are added in their order, as ``np.add.at`` does) and summed per index by
    ``add.reduceat``, 3-4x faster than ``np.add.at``. False where it does not apply."""
    if len(idx) != 1 or not isinstance(idx[0], np.ndarray) or idx[0].dtype.kind not in "iu":
        return False
    i = idx[0]
    if v.shape != i.shape + out.shape[1:] or i.size == 0 or out.ndim == 0:
        return False
    n = out.shape[0]
    i = i.ravel()
    if i.dtype.kind == "i" and i.min() < 0:
        i = np.where(i < 0, i + n, i)           # -1 and n - 1 are one row
    order = np.argsort(i, kind="stable")
    si = i[order]
    starts = np.flatnonzero(np.concatenate(([True], si[1:] != si[:-1])))
    rows = v.reshape((i.size,) + out.shape[1:])[order]
    out[si[starts]] += np.add.reduceat(rows, starts, axis=0)   # (indices out of range raise)
    return True


getitem_p = Primitive("getitem", _getitem_impl)


def _getitem_batch(vals, dims, index):
    x, *arrays = vals
    dx, *darrays = dims
    if any(d is not None for d in darrays):
        size = bdim_size(vals, dims)
        r = _batched_advanced(x, dx, arrays, darrays, index, size)
        if r is None:
            return _fallback(getitem_p, vals, dims, {"index": index}, size)
        xb, new_arrays, new_index = r
        return bind(getitem_p, xb, *new_arrays, index=new_index), 0
    x = move_to_front(x, dx)
    out_dim = 0
    if _advanced_separated(index):
        if any(getattr(a, "dtype", None) == np.bool_ for a in arrays):
            return _fallback(getitem_p, vals, dims, {"index": index}, x.shape[0])
        out_dim = len(np.broadcast_shapes(*[tuple(a.shape) for a in arrays]))
    return bind(getitem_p, x, *arrays, index=(("slice", None, None, None),) + index), out_dim


def _rows_index_axis(kinds, invars, index):
    """For ``x[..., i, ...]`` with one integer index array ``i`` in rows (a batch of
    token ids looking up an embedding table) and full slices everywhere else: the axis of
    ``x[index]`` along which its rows run; None for any other index."""
    if len(kinds) != 2 or not isinstance(kinds[1], _rows.Rows):
        return None
    if np.dtype(invars[1].dtype).kind not in "iu":
        return None                             # (a mask's result length depends on data)
    pos = [j for j, s in enumerate(index) if isinstance(s, str)]
    if len(pos) != 1 or any(s != _FULL for s in index if not isinstance(s, str)):
        return None
    return pos[0] + kinds[1].axis


def _getitem_rows(kinds, invars, outvars, params, batch):
    k = kinds[0]
    if k is _rows.PARTIAL:                      # indexing is linear (index arrays are whole)
        return ([_rows.PARTIAL], None, {}) if all(q is _rows.WHOLE for q in kinds[1:]) else None
    if k is _rows.WHOLE:                        # a whole table, indexed by rows of ids
        axis = _rows_index_axis(kinds, invars, params["index"])
        return None if axis is None else ([_rows.Rows(axis)], None, {})
    if not isinstance(k, _rows.Rows) or len(kinds) > 1:
        return None
    out = _kept_axis(params["index"], invars[0], k.axis)
    return None if out is None else ([_rows.Rows(out)], None, {})


def_rules(getitem_p,
          jvp=(lambda t, ans, x, *arrays, index: bind(getitem_p, t, *arrays, index=index),),
          vjp=(lambda g, ans, x, *arrays, index:
                   bind(scatter_p, _zeros_like(x), g, *arrays, index=index, mode="add"),),
          batch=_getitem_batch,
          rows=_getitem_rows)


scatter_p = Primitive("scatter", _scatter_impl)


def _scatter_jvp(primals, tangents, index, mode):
    x, v, *arrays = primals
    tx, tv = tangents[0], tangents[1]
    out = bind(scatter_p, x, v, *arrays, index=index, mode=mode)
    if tx is None and tv is None:
        return out, None
    if tv is None:
        if mode == "add":
            return out, tx
        tv = 0
    if tx is None:
        tx = _zeros_like(x)
    return out, bind(scatter_p, tx, tv, *arrays, index=index, mode=mode)


def _scatter_vjp(g, ans, args, wanted, index, mode):
    x, v, *arrays = args
    res = []
    for i in wanted:
        if i == 0:
            res.append(g if mode == "add" else bind(scatter_p, g, 0, *arrays, index=index, mode="set"))
        else:
            gv = bind(getitem_p, g, *arrays, index=index)
            if mode == "set" and _has_arrays(index):
                # Repeated indices: only the last write of an element lands (NumPy's order,
                # which the forward pass and jvp follow), so the earlier duplicates must
                # get no cotangent; before, every duplicate got one.
                gv = where(_last_writes(x, arrays, index, gv.shape), gv, 0)
            extra = len(getattr(v, "shape", ())) - len(gv.shape)
            if extra > 0:       # NumPy lets the value carry extra leading axes of length 1
                gv = _shape.reshape(gv, (1,) * extra + tuple(gv.shape))
            res.append(_shape.unbroadcast(gv, v))
    return res


def _scatter_batch(vals, dims, index, mode):
    x, v, *arrays = vals
    dx, dv, *darrays = dims
    size = bdim_size(vals, dims)
    if any(d is not None for d in darrays):
        r = _batched_advanced(x, dx, arrays, darrays, index, size)
        if r is None:
            return _fallback(scatter_p, vals, dims, {"index": index, "mode": mode}, size)
        x, arrays, new_index = r
    elif _advanced_separated(index):
        return _fallback(scatter_p, vals, dims, {"index": index, "mode": mode}, size)
    else:
        x = move_to_front(x, dx) if dx is not None else broadcast_to(x, (size,) + tuple(x.shape))
        new_index = (("slice", None, None, None),) + index
    if dv is not None:
        v = move_to_front(v, dv)
        probe = np.broadcast_to(np.zeros((), np.int8), x.shape)
        region = probe[_rebuild(new_index, [np.zeros(a.shape, a.dtype) for a in arrays])].shape
        extra = len(region) - len(v.shape)
        if extra > 0:
            v = reshape(v, (v.shape[0],) + (1,) * extra + tuple(v.shape[1:]))
    return bind(scatter_p, x, v, *arrays, index=new_index, mode=mode), 0


def _scatter_rows(kinds, invars, outvars, params, batch):
    kx, kv = kinds[0], kinds[1]
    if kx is _rows.PARTIAL and kv is _rows.PARTIAL and len(kinds) == 2:  # linear in (x, v)
        return [_rows.PARTIAL], None, {}
    index = params["index"]
    if (len(kinds) == 3 and params["mode"] == "add" and isinstance(kv, _rows.Rows)
            and kx in (_rows.WHOLE, _rows.PARTIAL)):
        # x.at[ids].add(v), ids and v in rows (an embedding's gradient): each slice adds
        # its rows into its share of x (x itself on one slice), a partial sum
        axis = _rows_index_axis(kinds[::2], invars[::2], index)
        vshape = tuple(getattr(invars[1], "shape", ()))
        rank = len(invars[0].shape) - 1 + len(invars[2].shape)     # x[index]'s
        if axis is None or kv.axis + rank - len(vshape) != axis:
            return None
        return [_rows.PARTIAL], None, ({0: _rows.PARTIAL} if kx is _rows.WHOLE else {})
    if len(kinds) > 2 or _rows.PARTIAL in (kx, kv) or _has_arrays(index):
        return None
    x = invars[0]
    vshape = tuple(getattr(invars[1], "shape", ()))          # (a literal has none)
    axes, rank = _basic_axes(index, len(x.shape))
    vd = None if kv is _rows.WHOLE else kv.axis + rank - len(vshape)   # on x[index]'s axes
    d = kx.axis if isinstance(kx, _rows.Rows) else next((a for a, (item, o) in axes.items()
                                         if o is not None and o == vd), None)
    if d is None or axes[d][0] != _FULL:
        return None
    out = axes[d][1]
    cut = {}
    if kx is _rows.WHOLE:
        if x.shape[d] != batch:
            return None
        cut[0] = d
    if kv is _rows.WHOLE:
        a = out - (rank - len(vshape))            # v broadcasts against x[index]
        if a >= 0 and vshape[a] != 1:
            if vshape[a] != batch:
                return None
            cut[1] = a
    elif vd != out:
        return None
    return [_rows.Rows(d)], None, cut


def_rules(scatter_p,
          jvp=_scatter_jvp,
          vjp=_scatter_vjp,
          batch=_scatter_batch,
          rows=_scatter_rows)


_zeros_like = zeros_like


def _last_writes(x, arrays, index, shape):
    """Boolean mask over the selection ``x[index]`` (of ``shape``): True where that
    position's write survives a scatter-set, i.e. it is the last write to its element."""
    n = 1
    for d in shape:
        n *= d
    xp = xp_of(x)
    ids = xp.arange(n).reshape(shape)
    owner = bind(scatter_p, xp.full(x.shape, -1, ids.dtype), ids, *arrays, index=index,
                 mode="set")
    return bind(getitem_p, owner, *arrays, index=index) == ids


def _check_index(x, static, arrays):
    """Run NumPy's own index validation on a zero-size stand-in to name bad indices early."""
    shape = x.shape
    try:
        probe = np.broadcast_to(np.zeros((), np.int8), shape)
        # Traced and foreign (e.g. CuPy) index arrays are checked by shape only.
        probe[_rebuild(static, [a if isinstance(a, np.ndarray) or not hasattr(a, "shape")
                                else np.zeros(a.shape, a.dtype) for a in arrays])]
    except IndexError as e:
        # An IndexError, as NumPy raises (code that catches IndexError keeps working),
        # that is also the ValueError funcgrad's other indexing errors are.
        raise IndexOutOfBoundsError(f"indexing {dtype_name(x)}: {e}") from None


def _getitem(x, idx):
    static, arrays = _split_index(idx)
    if not arrays and all(isinstance(s, tuple) and s[1:] == (None, None, None) for s in static):
        return x
    if isinstance(x, Tracer):
        _check_index(x, static, arrays)
    return bind(getitem_p, x, *arrays, index=static)


def _scatter(x, idx, values, mode):
    static, arrays = _split_index(idx)
    _check_index(x, static, arrays)
    return bind(scatter_p, x, values, *arrays, index=static, mode=mode)


class _At:
    """``at(x)[idx].set(v)``: functional updates that also work on plain NumPy arrays."""

    def __init__(self, x):
        self.x = x

    def __getitem__(self, idx):
        return _IndexUpdateRef(self.x, idx)


def at(x):
    """Functional index updates for any array: ``at(x)[idx].set(v)`` equals ``x.at[idx].set(v)``
    on a tracer, and works on plain NumPy arrays too (which have no ``.at``).

    Example:
        >>> import funcgrad.numpy as fnp
        >>> fnp.at(fnp.zeros(3))[1].set(5.0)
        array([0., 5., 0.])
    """
    return _At(x)


def nonzero(a):
    """Indices of the non-zero elements (a tuple of arrays). The result's size depends on
    the values, so ``a`` must be concrete: this works under grad/jvp/vjp, not under jit."""
    a = _shape._as_array(a)
    if isinstance(a, Tracer):
        a = a._concrete("nonzero (its output shape depends on the values)")
    return np.nonzero(a)


def flatnonzero(a):
    """Indices of the non-zero elements of ``a.ravel()`` (concrete values only)."""
    a = _shape._as_array(a)
    if isinstance(a, Tracer):
        a = a._concrete("flatnonzero (its output shape depends on the values)")
    return np.flatnonzero(a)


def argwhere(a):
    """Indices of the non-zero elements, one row per element (concrete values only)."""
    a = _shape._as_array(a)
    if isinstance(a, Tracer):
        a = a._concrete("argwhere (its output shape depends on the values)")
    return np.argwhere(a)


# ---- batching rules (vmap) -------------------------------------------------------------
def _advanced_separated(static):
    """True when the advanced indices are not adjacent (NumPy then moves their dimensions
    to the front of the result)."""
    pos = [i for i, s in enumerate(static) if isinstance(s, str)]
    return bool(pos) and pos[-1] - pos[0] + 1 != len(pos)


def _batched_advanced(x, dx, arrays, darrays, index, size):
    """Rewrite a per-example index with batched integer index arrays as one index into
    the batched ``x`` (batch axis first): an ``arange`` over the batch becomes one more
    advanced index. Handles the common layout (advanced indices first and adjacent);
    returns None for others."""
    pos = [i for i, s in enumerate(index) if isinstance(s, str)]
    if not pos or pos[0] != 0 or pos[-1] + 1 != len(pos) or any(
            getattr(a, "dtype", None) == np.bool_ for a in arrays):
        return None
    moved = [move_to_front(a, d) if d is not None else a for a, d in zip(arrays, darrays)]
    rank = len(np.broadcast_shapes(*[tuple(a.shape[1:]) if d is not None else tuple(a.shape)
                                     for a, d in zip(moved, darrays)]))
    moved = [reshape(a, (a.shape[0],) + (1,) * (rank - (len(a.shape) - 1)) + tuple(a.shape[1:]))
             if d is not None else a for a, d in zip(moved, darrays)]
    xb = move_to_front(x, dx) if dx is not None else broadcast_to(x, (size,) + tuple(x.shape))
    batch_index = np.arange(size).reshape((size,) + (1,) * rank)
    return xb, [batch_index] + moved, (_ARRAY,) + index


# ---- helpers of the row rules (jit's batch splitting, see rows.py): basic indices that
# keep the batch axis whole. (Index arrays hold absolute positions: slices of them would
# point at the wrong rows, so advanced indexing is left whole.)
_FULL = ("slice", None, None, None)


def _basic_axes(static, ndim):
    """For an index without arrays: input axis -> (its index item, the output axis it
    becomes, or None when an integer removes it); and the output's rank."""
    used = sum(1 for s in static if s is not None and s is not Ellipsis)
    items = []
    for s in static:
        items.extend([_FULL] * (ndim - used) if s is Ellipsis else [s])
    if Ellipsis not in static:
        items.extend([_FULL] * (ndim - used))
    axes, i, o = {}, 0, 0
    for s in items:
        if s is None:
            o += 1
        elif isinstance(s, tuple):
            axes[i] = (s, o)
            i, o = i + 1, o + 1
        else:
            axes[i] = (s, None)
            i += 1
    return axes, o


def _kept_axis(static, x, d):
    """The output axis of ``x[index]`` that is ``x``'s whole axis ``d``, or None."""
    if _has_arrays(static):
        return None
    item, out = _basic_axes(static, len(x.shape))[0][d]
    return out if item == _FULL else None

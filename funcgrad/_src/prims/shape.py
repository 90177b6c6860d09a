"""Shape primitives (reshape, transpose, broadcast_to, concatenate, astype) and the
composites built on them (squeeze, expand_dims, ravel, moveaxis, stack, split, ...).

Also home of :func:`unbroadcast`, the one helper every binary reverse rule uses to sum a
cotangent back to its input's shape and dtype.

This is the lowest primitive family: every other one builds on it. The few rules here
that need an operation of a family above (a sum, ``real``, indexing) reach it through the
``funcgrad.numpy`` namespace registered in the core (``_np()``), never by an import.
"""
from __future__ import annotations

import builtins
import math
import operator

import numpy as np

from .. import rows as _rows
from ..backend import array_module, dtype_name
from ..batching import bdim_size, move_to_front
from ..core import Primitive, Tracer, bind, def_rules, register_int_cast
from ..core import _np    # families above this one (see the module docstring)
from ..errors import FuncgradTypeError, FuncgradValueError


def _shape(x):
    s = getattr(x, "shape", None)
    if s is None and isinstance(x, (list, tuple)) and _holds_tracer(x):
        return tuple(_as_array(x).shape)
    return np.shape(x) if s is None else tuple(s)


def _ndim(x):
    return len(_shape(x))


def static_shape(shape, op):
    """``shape`` with every traced entry replaced by its concrete value. Under jit there is
    none, and the error names the argument the size came from and ``static_argnums``
    (NumPy would only say "expected a sequence of integers")."""
    def concrete(d):
        if not isinstance(d, Tracer):
            return d
        v = d._concrete(f"using it as a shape in {op}()")
        return tuple(int(e) for e in np.ravel(v)) if np.ndim(v) else operator.index(v)

    if isinstance(shape, (list, tuple)):
        if builtins.any(isinstance(d, Tracer) for d in shape):
            return tuple(concrete(d) for d in shape)
        return shape
    return concrete(shape)


def normalize_axis(axis, ndim, op):
    """An axis as a non-negative int, or a clear error naming ``op``."""
    try:
        a = operator.index(axis)
    except TypeError:
        raise FuncgradTypeError(f"{op}: axis must be an integer, got {axis!r}") from None
    if not -ndim <= a < ndim:
        raise FuncgradValueError(
            f"{op}: axis {a} is out of bounds for an array of {ndim} dimension(s); "
            f"valid axes are {-ndim}..{ndim - 1}" if ndim else
            f"{op}: axis {a} given for a 0-d array, which has no axes")
    return a % ndim if ndim else a


def normalize_axes(axis, ndim, op, *, scalar_axis=False):
    """``None`` -> all axes; an int or a sequence -> a sorted tuple of non-negative ints.

    ``scalar_axis=True`` follows NumPy's ufunc reductions (``np.sum``, ``np.max``...): on
    a 0-d array an integer axis 0 or -1 is accepted and reduces nothing (``()``)."""
    if axis is None:
        return tuple(range(ndim))
    if scalar_axis and ndim == 0 and not isinstance(axis, (tuple, list)):
        try:
            if operator.index(axis) in (0, -1):
                return ()
        except TypeError:
            pass
    if isinstance(axis, (tuple, list)):
        axes = tuple(normalize_axis(a, ndim, op) for a in axis)
        if len(set(axes)) != len(axes):
            raise FuncgradValueError(f"{op}: repeated axis in {axis!r}")
        return tuple(sorted(axes))
    return (normalize_axis(axis, ndim, op),)


def _cast_cotangent(g, dtype):
    if g.dtype.kind == "c" and np.dtype(dtype).kind != "c":
        g = _np().real(g)
    return astype(g, dtype) if g.dtype != dtype else g


def unbroadcast(g, x):
    """Sum ``g`` over the dimensions that broadcasting added to ``x``; match its dtype."""
    xshape = x.shape
    gshape = g.shape
    if gshape != xshape:
        lead = len(gshape) - len(xshape)
        axes = tuple(range(lead)) + tuple(
            lead + i for i, d in enumerate(xshape) if d == 1 and gshape[lead + i] != 1)
        if axes:
            g = _np().sum(g, axis=axes, keepdims=False)
        if g.shape != xshape:
            g = reshape(g, xshape)
    if g.dtype != x.dtype:
        g = _cast_cotangent(g, x.dtype)
    return g


# ---- reshape ---------------------------------------------------------------------------
def _same_type(invars, outvars, params):
    """Whether an equation's result has its operand's shape and dtype (a reshape, a cast
    or a broadcast that changes nothing: the is_noop property), and is a Python number
    exactly when its operand is (a cast of a weakly typed value makes a 0-d array)."""
    src, out = invars[0], outvars[0]
    return (hasattr(src, "shape") and src.shape == out.shape and src.dtype == out.dtype
            and getattr(src, "weak", False) == getattr(out, "weak", False))


def _reshape_impl(x, shape):
    try:
        return x.reshape(shape)
    except AttributeError:          # a Python scalar (a weak value under jit)
        return np.reshape(x, shape)


reshape_p = Primitive("reshape", _reshape_impl, linear_in=((0,),), is_noop=_same_type)


def _reshape_batch(vals, dims, shape):
    v = move_to_front(vals[0], dims[0])
    return bind(reshape_p, v, shape=(v.shape[0],) + tuple(shape)), 0


def _reshape_rows(kinds, invars, outvars, params, batch):
    k = kinds[0]
    if k is _rows.PARTIAL:
        return [_rows.PARTIAL], None, {}
    old, new = tuple(invars[0].shape), tuple(params["shape"])
    d = k.axis
    before = math.prod(old[:d])
    # the batch axis survives when the dimensions before it multiply to the same count
    for d2 in range(len(new)):
        if math.prod(new[:d2]) == before and new[d2] == old[d]:
            return ([_rows.Rows(d2)],
                    lambda c: _rows.with_length(params, "shape", d2, c), {})
        if math.prod(new[:d2]) > before:
            break
    return None


def_rules(reshape_p,
          jvp=(lambda t, ans, x, shape: reshape(t, shape),),
          vjp=(lambda g, ans, x, shape: reshape(g, x.shape),),
          batch=_reshape_batch,
          rows=_reshape_rows)


def _resolve_shape(shape, size, op, x):
    if isinstance(shape, (int, np.integer)):
        shape = (shape,)
    shape = tuple(operator.index(d) for d in shape)
    unknown = [i for i, d in enumerate(shape) if d == -1]
    if len(unknown) > 1:
        raise FuncgradValueError(f"{op}: can only specify one unknown dimension (-1) in {shape}")
    known = 1
    for d in shape:
        if d != -1:
            known *= d
    if unknown:
        if known == 0 or size % known:
            raise FuncgradValueError(
                f"{op}: cannot reshape {dtype_name(x)} (size {size}) into shape {shape}")
        shape = tuple(size // known if d == -1 else d for d in shape)
    elif known != size:
        raise FuncgradValueError(
            f"{op}: cannot reshape {dtype_name(x)} (size {size}) into shape {shape}; the "
            "sizes differ")
    return shape


def reshape(a, shape=None, order="C", *, newshape=None, copy=None):
    """Give ``a`` a new shape (one dimension may be -1). ``order`` is 'C' or 'F'."""
    a = _as_array(a)
    if shape is None:
        shape = newshape
    shape = static_shape(shape, "reshape")
    ashape = _shape(a)
    size = 1
    for d in ashape:
        size *= d
    shape = _resolve_shape(shape, size, "reshape", a)
    if order == "F":
        return transpose(reshape(transpose(a), shape[::-1]))
    if order != "C":
        raise FuncgradValueError(f"reshape: order must be 'C' or 'F', got {order!r}")
    if shape == ashape:
        return a
    return bind(reshape_p, a, shape=shape)


def ravel(a, order="C"):
    """The elements of ``a`` as a 1-D array."""
    return reshape(a, (-1,), order=order)


def squeeze(a, axis=None):
    """Remove axes of length one (all of them, or those in ``axis``, which must be 1)."""
    a = _as_array(a)
    shape = _shape(a)
    if axis is None:
        axes = [i for i, d in enumerate(shape) if d == 1]
    else:
        axes = normalize_axes(axis, len(shape), "squeeze")
        for i in axes:
            if shape[i] != 1:
                raise FuncgradValueError(
                    f"squeeze: cannot select axis {i} of {dtype_name(a)}: its length is "
                    f"{shape[i]}, not 1")
    return reshape(a, tuple(d for i, d in enumerate(shape) if i not in axes))


def expand_dims(a, axis):
    """Insert length-one axes at the positions ``axis`` (an int or a tuple) of the result."""
    a = _as_array(a)
    shape = _shape(a)
    axis = axis if isinstance(axis, (tuple, list)) else (axis,)
    nd = len(shape) + len(axis)
    axes = normalize_axes(axis, nd, "expand_dims")
    it = iter(shape)
    return reshape(a, tuple(1 if i in axes else next(it) for i in range(nd)))


def atleast_1d(*arys):
    """Views with at least one dimension (scalars become shape (1,))."""
    res = [a if _ndim(a) >= 1 else reshape(a, (1,)) for a in map(_as_array, arys)]
    return res[0] if len(res) == 1 else tuple(res)   # a tuple, as NumPy 2


def atleast_2d(*arys):
    """Views with at least two dimensions: (n,) becomes (1, n)."""
    res = []
    for a in map(_as_array, arys):
        nd = _ndim(a)
        res.append(a if nd >= 2 else reshape(a, (1, -1) if nd == 1 else (1, 1)))
    return res[0] if len(res) == 1 else tuple(res)   # a tuple, as NumPy 2


def atleast_3d(*arys):
    """Views with at least three dimensions: (n,) -> (1, n, 1), (m, n) -> (m, n, 1)."""
    res = []
    for a in map(_as_array, arys):
        s = _shape(a)
        if len(s) == 0:
            a = reshape(a, (1, 1, 1))
        elif len(s) == 1:
            a = reshape(a, (1, s[0], 1))
        elif len(s) == 2:
            a = reshape(a, s + (1,))
        res.append(a)
    return res[0] if len(res) == 1 else tuple(res)   # a tuple, as NumPy 2


def strong(x):
    """``x``, or for a Python number traced by jit (a weakly typed tracer) a 0-d array of
    its dtype, as ``numpy.asarray`` makes of a Python number: it then promotes as an
    array does (a float32 array times it is float64), with or without jit."""
    return bind(astype_p, x, dtype=x.dtype) if isinstance(x, Tracer) and x.weak else x


def _as_array(x):
    if type(x) is np.ndarray:
        return x
    if isinstance(x, Tracer):
        return strong(x)
    if isinstance(x, np.ndarray) or hasattr(
            x, "__cuda_array_interface__") or array_module(x) is not np:
        return x
    if isinstance(x, (list, tuple)) and _holds_tracer(x):
        # a (nested) list of traced values is an array-like, as NumPy reads it: stacked,
        # so the derivative flows to each element
        return stack([_as_array(e) for e in x]) if x else np.asarray(x)
    return np.asarray(x)


def _holds_tracer(seq):
    for e in seq:
        if isinstance(e, Tracer) or (isinstance(e, (list, tuple)) and _holds_tracer(e)):
            return True
    return False


# ---- transpose -------------------------------------------------------------------------
def _transpose_impl(x, axes):
    try:
        return x.transpose(axes)
    except AttributeError:          # a Python scalar (a weak value under jit)
        return np.transpose(x, axes)


transpose_p = Primitive("transpose", _transpose_impl, is_noop=lambda ins, outs, params: (
    _same_type(ins, outs, params) and params.get("axes") == tuple(range(len(outs[0].shape)))))


def _transpose_batch(vals, dims, axes):
    return bind(transpose_p, vals[0], axes=_batched_perm(axes, dims[0])), dims[0]


def _transpose_rows(kinds, invars, outvars, params, batch):
    k = kinds[0]
    if k is _rows.PARTIAL:
        return [_rows.PARTIAL], None, {}
    return [_rows.Rows(list(params["axes"]).index(k.axis))], None, {}


def_rules(transpose_p,
          jvp=(lambda t, ans, x, axes: transpose(t, axes),),
          vjp=(lambda g, ans, x, axes: bind(transpose_p, g, axes=_inverse_perm(axes)),),
          batch=_transpose_batch,
          rows=_transpose_rows)


def _inverse_perm(axes):
    inv = [0] * len(axes)
    for i, a in enumerate(axes):
        inv[a] = i
    return tuple(inv)


_REVERSED = {n: tuple(range(n - 1, -1, -1)) for n in range(8)}


def transpose(a, axes=None):
    """Permute the axes (reverse them when ``axes`` is None)."""
    a = _as_array(a)
    nd = _ndim(a)
    if axes is None:
        if nd < 2:
            return a
        axes = _REVERSED.get(nd) or tuple(range(nd - 1, -1, -1))
    else:
        axes = tuple(normalize_axis(ax, nd, "transpose") for ax in axes)
        if sorted(axes) != list(range(nd)):
            raise FuncgradValueError(
                f"transpose: axes {axes} are not a permutation of the {nd} axes of "
                f"{dtype_name(a)}")
    if axes == tuple(range(nd)):
        return a
    return bind(transpose_p, a, axes=axes)


def permute_dims(a, axes=None):
    """Array-API name of :func:`transpose`."""
    return transpose(a, axes)


def swapaxes(a, axis1, axis2):
    """Interchange two axes."""
    a = _as_array(a)
    nd = _ndim(a)
    if nd == 2 and (axis1, axis2) in ((-1, -2), (-2, -1), (0, 1), (1, 0)):
        return bind(transpose_p, a, axes=(1, 0))
    i = normalize_axis(axis1, nd, "swapaxes")
    j = normalize_axis(axis2, nd, "swapaxes")
    perm = list(range(nd))
    perm[i], perm[j] = perm[j], perm[i]
    return transpose(a, perm)


def moveaxis(a, source, destination):
    """Move axes ``source`` to positions ``destination`` (ints or sequences)."""
    a = _as_array(a)
    nd = _ndim(a)
    src = [normalize_axis(s, nd, "moveaxis") for s in np.atleast_1d(source).tolist()]
    dst = [normalize_axis(d, nd, "moveaxis") for d in np.atleast_1d(destination).tolist()]
    if len(src) != len(dst):
        raise FuncgradValueError("moveaxis: source and destination must have the same length")
    order = [i for i in range(nd) if i not in src]
    for d, s in sorted(zip(dst, src)):
        order.insert(d, s)
    return transpose(a, order)


# ---- broadcast_to ----------------------------------------------------------------------
broadcast_to_p = Primitive("broadcast_to", lambda x, shape: np.broadcast_to(x, shape),
                           is_noop=_same_type)


def _broadcast_to_batch(vals, dims, shape):
    v = move_to_front(vals[0], dims[0])
    extra = len(shape) - (len(v.shape) - 1)
    v = reshape(v, (v.shape[0],) + (1,) * extra + tuple(v.shape[1:]))
    return bind(broadcast_to_p, v, shape=(v.shape[0],) + tuple(shape)), 0


def _broadcast_to_rows(kinds, invars, outvars, params, batch):
    k = kinds[0]
    if k is _rows.PARTIAL:                  # broadcasting is linear: partial sums stay partial
        return [_rows.PARTIAL], None, {}
    d = k.axis + len(params["shape"]) - len(invars[0].shape)
    return [_rows.Rows(d)], lambda c: _rows.with_length(params, "shape", d, c), {}


def_rules(broadcast_to_p,
          jvp=(lambda t, ans, x, shape: broadcast_to(t, shape),),
          vjp=(lambda g, ans, x, shape: unbroadcast(g, x),),
          batch=_broadcast_to_batch,
          rows=_broadcast_to_rows)


def broadcast_to(array, shape):
    """Broadcast ``array`` to ``shape`` (a read-only view when concrete)."""
    shape = static_shape(shape, "broadcast_to")
    shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
    ashape = _shape(array)
    try:
        np.broadcast_shapes(ashape, shape)
        if len(ashape) > len(shape) or builtins.any(
                a != 1 and a != s for a, s in zip(ashape[::-1], shape[::-1])):
            raise ValueError
    except ValueError:
        raise FuncgradValueError(
            f"broadcast_to: cannot broadcast {dtype_name(array)} to shape {shape}") from None
    if ashape == shape:
        return array
    return bind(broadcast_to_p, array, shape=shape)


def broadcast_arrays(*args):
    """Broadcast all arguments against each other."""
    args = [_as_array(a) for a in args]
    shape = np.broadcast_shapes(*[_shape(a) for a in args])
    return tuple(broadcast_to(a, shape) for a in args)   # a tuple, as NumPy 2 returns


def broadcast_shapes(*shapes):
    return np.broadcast_shapes(*shapes)


# ---- astype ----------------------------------------------------------------------------
def _astype_impl(x, dtype):
    return x.astype(dtype) if hasattr(x, "astype") else np.asarray(x).astype(dtype)


_astype_impl.fresh_result = True     # astype copies, even to the same dtype
astype_p = Primitive("convert_element_type", _astype_impl, is_noop=_same_type)
register_int_cast(astype_p)     # (jit reads weak bools as Python ints with it)


def _astype_batch(vals, dims, dtype):
    return bind(astype_p, vals[0], dtype=dtype), dims[0]


def _astype_rows(kinds, invars, outvars, params, batch):
    # (a partial sum stays partial only through an exact conversion: rows.py checks)
    return [kinds[0]], None, {}


def_rules(astype_p,
          jvp=(lambda t, ans, x, dtype: astype(t, dtype),),
          vjp=(lambda g, ans, x, dtype: _cast_cotangent(g, x.dtype),),
          batch=_astype_batch,
          rows=_astype_rows)


def astype(x, dtype, /, *, copy=True):
    """``x`` converted to ``dtype``. Converting to an integer or boolean dtype has no
    derivative; complex to real keeps the real part (with its derivative)."""
    dtype = np.dtype(dtype)
    xd = getattr(x, "dtype", None)
    if xd is None:
        return np.asarray(x, dtype=dtype)
    if xd == dtype:
        return x
    if xd.kind == "c" and dtype.kind != "c":
        x = _np().real(x)
        if x.dtype == dtype:
            return x
    return bind(astype_p, x, dtype=dtype)


# ---- concatenate and friends -----------------------------------------------------------
def _concat_impl(*xs, axis, out=None):
    return np.concatenate(xs, axis=axis, out=out)


_concat_impl.writes_out = True      # ``out=``: a scan writes its per-step output in place


def _concat_jvp(primals, tangents, axis):
    zeros_like = _np().zeros_like
    out = bind(concatenate_p, *primals, axis=axis)
    if builtins.all(t is None for t in tangents):
        return out, None
    ts = [zeros_like(p) if t is None else t for p, t in zip(primals, tangents)]
    return out, bind(concatenate_p, *ts, axis=axis)


def _concat_vjp(g, ans, args, wanted, axis):
    _getitem = _np()._getitem
    offsets = np.cumsum([0] + [a.shape[axis] for a in args]).tolist()
    lead = (slice(None),) * axis
    res = []
    for i in wanted:
        # The output has the promoted dtype (float32 with float64 -> float64): each
        # operand's cotangent must come back in that operand's own dtype.
        res.append(_cast_cotangent(_getitem(g, lead + (slice(offsets[i], offsets[i + 1]),)),
                                   args[i].dtype))
    return res


concatenate_p = Primitive("concatenate", _concat_impl)


def _concat_batch(vals, dims, axis):
    size = bdim_size(vals, dims)
    moved = [move_to_front(v, d) if d is not None else broadcast_to(v, (size,) + tuple(v.shape))
             for v, d in zip(vals, dims)]
    return bind(concatenate_p, *moved, axis=axis + 1), 0


def _concat_rows(kinds, invars, outvars, params, batch):
    if all(k is _rows.PARTIAL for k in kinds):          # concatenation is linear
        return [_rows.PARTIAL], None, {}
    axis = params["axis"]
    ds = {k.axis for k in kinds if isinstance(k, _rows.Rows)}
    if _rows.PARTIAL in kinds or len(ds) != 1 or axis in ds:
        return None
    d = ds.pop()
    # whole operands have the batch's length on d too (shapes match off the axis)
    return [_rows.Rows(d)], None, {i: d for i, k in enumerate(kinds) if k is _rows.WHOLE}


def_rules(concatenate_p,
          jvp=_concat_jvp,
          vjp=_concat_vjp,
          batch=_concat_batch,
          rows=_concat_rows)


def concatenate(arrays, axis=0, dtype=None):
    """Join arrays along an existing axis (``axis=None`` flattens them first)."""
    arrays = [_as_array(a) for a in arrays]
    if not arrays:
        raise FuncgradValueError("concatenate: need at least one array to concatenate")
    if axis is None:
        arrays = [ravel(a) for a in arrays]
        axis = 0
    nd = _ndim(arrays[0])
    if nd == 0:
        raise FuncgradValueError("concatenate: zero-dimensional arrays cannot be concatenated")
    axis = normalize_axis(axis, nd, "concatenate")
    for a in arrays[1:]:
        s0, s = _shape(arrays[0]), _shape(a)
        if len(s) != nd or builtins.any(p != q for i, (p, q) in enumerate(zip(s0, s)) if i != axis):
            raise FuncgradValueError(
                f"concatenate: all input shapes must match except along axis {axis}; got "
                f"{dtype_name(arrays[0])} and {dtype_name(a)}")
    if dtype is not None:
        arrays = [astype(a, dtype) for a in arrays]
    if len(arrays) == 1:
        return arrays[0]
    return bind(concatenate_p, *arrays, axis=axis)


concat = concatenate


def stack(arrays, axis=0, dtype=None):
    """Join arrays of one shape along a new axis."""
    arrays = [_as_array(a) for a in arrays]
    if not arrays:
        raise FuncgradValueError("stack: need at least one array to stack")
    shapes = {_shape(a) for a in arrays}
    if len(shapes) != 1:
        raise FuncgradValueError(
            f"stack: all input arrays must have the same shape, got {sorted(shapes)}")
    axis = normalize_axis(axis, _ndim(arrays[0]) + 1, "stack")
    return concatenate([expand_dims(a, axis) for a in arrays], axis=axis, dtype=dtype)


def hstack(tup, dtype=None):
    arrs = atleast_1d(*tup)
    arrs = list(arrs) if isinstance(arrs, tuple) else [arrs]
    return concatenate(arrs, axis=0 if _ndim(arrs[0]) == 1 else 1, dtype=dtype)


def vstack(tup, dtype=None):
    arrs = atleast_2d(*tup)
    return concatenate(arrs if isinstance(arrs, tuple) else [arrs], axis=0, dtype=dtype)


row_stack = vstack


def dstack(tup):
    arrs = atleast_3d(*tup)
    return concatenate(arrs if isinstance(arrs, tuple) else [arrs], axis=2)


def column_stack(tup):
    cols = []
    for a in map(_as_array, tup):
        cols.append(reshape(a, (-1, 1)) if _ndim(a) < 2 else a)
    return concatenate(cols, axis=1)


def _split_points(n, indices_or_sections, op, even):
    if isinstance(indices_or_sections, np.ndarray) and indices_or_sections.ndim == 0:
        indices_or_sections = operator.index(indices_or_sections)   # a count, as NumPy
    if isinstance(indices_or_sections, (int, np.integer)):
        k = int(indices_or_sections)
        if k <= 0:
            raise FuncgradValueError(f"{op}: number of sections must be positive")
        if even and n % k:
            raise FuncgradValueError(
                f"{op}: array of length {n} does not split into {k} equal sections; use "
                "array_split for unequal sections")
        q, r = divmod(n, k)
        sizes = [q + 1] * r + [q] * (k - r)
        return np.cumsum([0] + sizes).tolist()
    pts = [builtins.min(builtins.max(int(i) if i >= 0 else n + int(i), 0), n)
           for i in indices_or_sections]
    return [0] + pts + [n]


def split(ary, indices_or_sections, axis=0):
    """Split into equal sections (an int) or at the given indices along ``axis``."""
    return _split(ary, indices_or_sections, axis, "split", True)


def array_split(ary, indices_or_sections, axis=0):
    """Like :func:`split` but sections may differ in length by one."""
    return _split(ary, indices_or_sections, axis, "array_split", False)


def _split(ary, ios, axis, op, even):
    ary = _as_array(ary)
    nd = _ndim(ary)
    axis = normalize_axis(axis, nd, op)
    pts = _split_points(_shape(ary)[axis], ios, op, even)
    bounds = tuple((a, builtins.max(a, b)) for a, b in zip(pts[:-1], pts[1:]))
    if builtins.any(p[1] != q[0] for p, q in zip(bounds[:-1], bounds[1:])):
        # the parts overlap (indices not increasing): no single concatenate undoes them
        _getitem = _np()._getitem
        lead = (slice(None),) * axis
        return [_getitem(ary, lead + (slice(a, b),)) for a, b in bounds]
    if not isinstance(ary, Tracer):
        return _split_impl(ary, bounds=bounds, axis=axis)
    return bind(split_p, ary, bounds=bounds, axis=axis)


# ---- split: one primitive, so that its cotangent is one concatenate -------------------
# As separate slices, each part's cotangent was a scatter-add into zeros and the parts'
# were added: an LSTM step's four gates cost four zero-filled copies and three additions
# of the whole gate array, where one concatenate writes it once.
_split_indices: dict = {}


def _split_impl(x, *, bounds, axis):
    idx = _split_indices.get((bounds, axis))
    if idx is None:                     # (made once: a scan body splits at every step)
        if len(_split_indices) > 1024:
            _split_indices.clear()
        lead = (slice(None),) * axis
        idx = _split_indices[bounds, axis] = [lead + (slice(a, b),) for a, b in bounds]
    return [x[i] for i in idx]


def _split_vjp(g, ans, args, wanted, bounds, axis):
    # (reverse mode gives zeros for the parts with no cotangent)
    return [bind(concatenate_p, *g, axis=axis)] if len(g) > 1 else [g[0]]


def _split_jvp(primals, tangents, bounds, axis):
    out = bind(split_p, primals[0], bounds=bounds, axis=axis)
    if tangents[0] is None:
        return out, [None] * len(out)
    return out, bind(split_p, tangents[0], bounds=bounds, axis=axis)


def _split_batch(vals, dims, bounds, axis):
    x = move_to_front(vals[0], dims[0])
    out = bind(split_p, x, bounds=bounds, axis=axis + 1)
    return out, [0] * len(out)


def _split_rows(kinds, invars, outvars, params, batch):
    k = kinds[0]
    if k is _rows.PARTIAL:                      # slicing is linear
        return [_rows.PARTIAL] * len(outvars), None, {}
    if not isinstance(k, _rows.Rows) or k.axis == params["axis"]:
        return None
    return [_rows.Rows(k.axis)] * len(outvars), None, {}


split_p = Primitive("split", _split_impl, multiple_results=True)
def_rules(split_p, jvp=_split_jvp, vjp=_split_vjp, batch=_split_batch, rows=_split_rows)


def hsplit(ary, indices_or_sections):
    return split(ary, indices_or_sections, axis=1 if _ndim(ary) > 1 else 0)


def vsplit(ary, indices_or_sections):
    return split(ary, indices_or_sections, axis=0)


def dsplit(ary, indices_or_sections):
    return split(ary, indices_or_sections, axis=2)


def shape(a):
    return _shape(a)


def ndim(a):
    return _ndim(a)


def size(a, axis=None):
    s = _shape(a)
    if axis is not None:
        return s[axis]
    n = 1
    for d in s:
        n *= d
    return n


# ---- shared by the batching rules ----------------------------------------------------
def _batched_perm(axes, d):
    """``axes`` of one example turned into a permutation of the batched array whose batch
    axis ``d`` stays in place."""
    rest = [a if a < d else a + 1 for a in axes]
    return tuple(rest[:d] + [d] + rest[d:])

"""Cumulative operations, differences and sorting (the statistics built on sorting are
in ``statistics.py``).

Primitives, each with its rules side by side:

* ``cumsum`` (with a ``reverse`` flag, so that its reverse rule is itself reversed);
* ``cumprod``, whose rules are exact to first order where the input has zeros;
* ``sort`` and ``partition``, whose rules route tangents and cotangents through the
  permutation that produced the output (found with a stable argsort);
* ``argsort`` and ``argpartition`` (integer results, no derivative).

``diff`` and ``ediff1d`` are composites; on plain NumPy inputs they call NumPy directly,
after funcgrad's own argument checks.
"""
from __future__ import annotations

import numpy as np

from ..backend import dtype_name
from ..batching import move_to_front
from ..core import Primitive, Tracer, bind, def_rules
from ..errors import ConcretizationTypeError, FuncgradTypeError, FuncgradValueError
from . import shape as _s
from .creation import full_like, zeros_like
from .elementwise import isnan as _isnan
from .elementwise import not_equal as _not_equal
from .elementwise import where as _where
from .indexing import _getitem, _scatter
from .indexing_ops import _along_axis_index, _as_array, _eager, _to_int
from .indexing_ops import take_along_axis as _take_along_axis
from .reductions import _no_out

__all__ = [
    "cumsum", "cumprod", "cumulative_sum", "cumulative_prod", "nancumsum", "nancumprod",
    "diff", "ediff1d",
    "sort", "argsort", "partition", "argpartition",
]


def _concrete_or_none(x):
    """``x``'s concrete value, or None under a transformation that has none (jit)."""
    if not isinstance(x, Tracer):
        return x
    try:
        return x._concrete("a value check")
    except ConcretizationTypeError:
        return None


def _any_true(x):
    """True if ``x`` (boolean) may hold a true value (always True when abstract)."""
    v = _concrete_or_none(x)
    return True if v is None else bool(np.any(v))


def _flat_axis(a, axis, op):
    """``(a or its ravel, normalized axis)``: ``axis=None`` means the flattened array."""
    a = _as_array(a)
    if axis is None:
        return _s.ravel(a), 0
    if _s._ndim(a) == 0 and op != "sort":
        # NumPy's cumsum/cumprod/argsort treat a 0-d array as its 1-element ravel (axis
        # 0 or -1); np.sort refuses an axis there
        _s.normalize_axis(axis, 1, op)
        return _s.ravel(a), 0
    return a, _s.normalize_axis(axis, _s._ndim(a), op)


# ---------------------------------------------------------------------------------------
# cumsum and cumprod

def _cumsum_impl(x, axis, reverse):
    if reverse:
        return np.flip(np.cumsum(np.flip(x, axis), axis=axis), axis)
    return np.cumsum(x, axis=axis)


def _cumsum(x, axis, reverse=False):
    return bind(cumsum_p, x, axis=axis, reverse=reverse)


def _along_axis_batch(prim):
    """The batching rule of the primitives here: each acts along one static axis of one
    array."""
    def rule(vals, dims, axis, **params):
        (v,), (d,) = vals, dims
        return bind(prim, move_to_front(v, d), axis=axis + 1, **params), 0
    return rule


cumsum_p = Primitive("cumsum", _cumsum_impl)
def_rules(cumsum_p,
          jvp=(lambda t, ans, x, axis, reverse: _cumsum(t, axis, reverse),),
          vjp=(lambda g, ans, x, axis, reverse: _cumsum(g, axis, not reverse),),
          batch=_along_axis_batch(cumsum_p))


def _zero_masks(x, axis):
    """(positions before the first zero, the first zero) along ``axis``."""
    is_zero = x == 0
    seen = _cumsum(_s.astype(is_zero, np.intp), axis)
    return seen == 0, is_zero & (seen == 1)


def _cumprod_jvp(t, ans, x, axis):
    # d y_i = sum_{j<=i} t_j prod_{k<=i, k!=j} x_k. Before the first zero z this is
    # y_i * sum_j t_j / x_j; the first zero contributes t_z * prod_{k<=i, k!=z} x_k; later
    # positions contribute nothing (their products contain x_z = 0).
    if not _any_true(x == 0):
        return ans * _cumsum(t / x, axis)
    before, first = _zero_masks(x, axis)
    out = ans * _cumsum(_where(before, t / _where(before, x, 1), 0), axis)
    skip_zero = bind(cumprod_p, _where(first, 1, x), axis=axis)
    return out + skip_zero * _cumsum(_where(first, t, 0), axis)


def _cumprod_vjp(g, ans, x, axis):
    # The transpose of _cumprod_jvp.
    if not _any_true(x == 0):
        return _cumsum(g * ans, axis, True) / x
    before, first = _zero_masks(x, axis)
    out = _where(before, _cumsum(g * ans, axis, True) / _where(before, x, 1), 0)
    skip_zero = bind(cumprod_p, _where(first, 1, x), axis=axis)
    return out + _where(first, _cumsum(g * skip_zero, axis, True), 0)


cumprod_p = Primitive("cumprod", lambda x, axis: np.cumprod(x, axis=axis))
def_rules(cumprod_p,
          jvp=(_cumprod_jvp,),
          vjp=(_cumprod_vjp,),
          batch=_along_axis_batch(cumprod_p))


def cumsum(a, axis=None, dtype=None, out=None):
    """Cumulative sum along ``axis`` (of the flattened array when None). Booleans and
    small integers accumulate in NumPy's default integer; ``dtype`` casts first.
    ``out=`` raises.

    Example:
        >>> import funcgrad.numpy as fnp
        >>> fnp.cumsum(fnp.array([[1., 2.], [3., 4.]]), axis=0)
        array([[1., 2.],
               [4., 6.]])
    """
    _no_out("cumsum", out)
    a, axis = _flat_axis(a, axis, "cumsum")
    if dtype is not None:
        a = _s.astype(a, dtype)
    return _cumsum(a, axis)


def cumprod(a, axis=None, dtype=None, out=None):
    """Cumulative product along ``axis`` (of the flattened array when None). ``out=``
    raises.

    Gradient: exact, zeros included, to first order (no division by zero: before the
    first zero along the axis the usual ``y / x`` form is used, the first zero gets the
    product of the other factors, later positions get zero). Higher derivatives are
    exact where the input has no zeros; where it has one, the mixed second derivatives
    between the first zero and later positions are returned as zero.
    """
    _no_out("cumprod", out)
    a, axis = _flat_axis(a, axis, "cumprod")
    if dtype is not None:
        a = _s.astype(a, dtype)
    return bind(cumprod_p, a, axis=axis)


def _cumulative(name, f, x, axis, dtype, include_initial, initial):
    x = _as_array(x)
    if axis is None:
        if _s._ndim(x) > 1:
            raise FuncgradValueError(
                f"{name}: axis must be given for arrays with more than one dimension, got "
                f"{dtype_name(x)}")
        x = _s.ravel(x)
        axis = 0
    r = f(x, axis=axis, dtype=dtype)
    if include_initial:
        axis = _s.normalize_axis(axis, _s._ndim(r), name)
        shape = list(r.shape)
        shape[axis] = 1
        r = _s.concatenate([full_like(r, initial, shape=tuple(shape)), r], axis=axis)
    return r


def cumulative_sum(x, /, *, axis=None, dtype=None, include_initial=False):
    """Array-API cumulative sum: like :func:`cumsum`, but ``axis`` is required beyond 1-D
    and ``include_initial=True`` prepends a zero."""
    return _cumulative("cumulative_sum", cumsum, x, axis, dtype, include_initial, 0)


def cumulative_prod(x, /, *, axis=None, dtype=None, include_initial=False):
    """Array-API cumulative product: like :func:`cumprod`, but ``axis`` is required
    beyond 1-D and ``include_initial=True`` prepends a one."""
    return _cumulative("cumulative_prod", cumprod, x, axis, dtype, include_initial, 1)


def _nan_to(a, value):
    a = _as_array(a)
    if a.dtype.kind not in "fc":
        return a
    return _where(_isnan(a), value, a)


def nancumsum(a, axis=None, dtype=None, out=None):
    """:func:`cumsum` treating NaN as zero (NaN positions get a zero gradient)."""
    return cumsum(_nan_to(a, 0), axis=axis, dtype=dtype, out=out)


def nancumprod(a, axis=None, dtype=None, out=None):
    """:func:`cumprod` treating NaN as one (NaN positions get a zero gradient)."""
    return cumprod(_nan_to(a, 1), axis=axis, dtype=dtype, out=out)


# ---------------------------------------------------------------------------------------
# Differences

class _NoValueType:
    def __repr__(self):
        return "<no value>"


_NoValue = _NoValueType()


def diff(a, n=1, axis=-1, prepend=_NoValue, append=_NoValue):
    """The ``n``-th discrete difference along ``axis``; ``prepend``/``append`` (scalars
    are broadcast) are joined to ``a`` first. Boolean input gives ``a[1:] != a[:-1]``.

    Example:
        >>> import funcgrad.numpy as fnp
        >>> fnp.diff(fnp.array([1., 4., 9., 16.]), n=2)
        array([2., 2.])
    """
    n = _to_int(n, "diff", "n")
    if n < 0:
        raise FuncgradValueError(f"diff: order must be non-negative but got {n}")
    if _eager(a, prepend if prepend is not _NoValue else None,
              append if append is not _NoValue else None):
        kw = {k: v for k, v in (("prepend", prepend), ("append", append)) if v is not _NoValue}
        return np.diff(a, n=n, axis=axis, **kw)
    a = _as_array(a)
    if n == 0:
        return a
    nd = _s._ndim(a)
    if nd == 0:
        raise FuncgradValueError("diff requires input that is at least one dimensional")
    axis = _s.normalize_axis(axis, nd, "diff")
    parts = []
    for extra in (prepend, None, append):
        if extra is None:
            parts.append(a)
        elif extra is not _NoValue:
            extra = _as_array(extra)
            if _s._ndim(extra) == 0:
                shape = list(a.shape)
                shape[axis] = 1
                extra = _s.broadcast_to(extra, tuple(shape))
            parts.append(extra)
    if len(parts) > 1:
        a = _s.concatenate(parts, axis=axis)
    lead = (slice(None),) * axis
    for _ in range(n):
        hi = _getitem(a, lead + (slice(1, None),))
        lo = _getitem(a, lead + (slice(None, -1),))
        a = _not_equal(hi, lo) if a.dtype == np.bool_ else hi - lo
    return a


def ediff1d(ary, to_end=None, to_begin=None):
    """Differences between consecutive elements of the flattened ``ary``, with
    ``to_begin``/``to_end`` (flattened, cast to ``ary``'s dtype under the 'same_kind'
    rule, else a TypeError) joined at the ends."""
    if _eager(ary, to_end, to_begin):
        return np.ediff1d(ary, to_end=to_end, to_begin=to_begin)
    ary = _s.ravel(_as_array(ary))
    parts = [_getitem(ary, (slice(1, None),)) - _getitem(ary, (slice(None, -1),))]
    for extra, where_, name in ((to_begin, 0, "to_begin"), (to_end, None, "to_end")):
        if extra is None:
            continue
        extra = _as_array(extra)
        if not np.can_cast(extra.dtype, ary.dtype, casting="same_kind"):
            raise FuncgradTypeError(
                f"ediff1d: dtype of `{name}` ({extra.dtype}) must be compatible with input "
                f"`ary` ({ary.dtype}) under the `same_kind` rule")
        extra = _s.ravel(_s.astype(extra, ary.dtype))
        if where_ == 0:
            parts.insert(0, extra)
        else:
            parts.append(extra)
    return _s.concatenate(parts) if len(parts) > 1 else parts[0]


# ---------------------------------------------------------------------------------------
# Sorting

argsort_p = Primitive("argsort", lambda x, axis: np.argsort(x, axis=axis, kind="stable"))
def_rules(argsort_p, batch=_along_axis_batch(argsort_p))

argpartition_p = Primitive("argpartition",
                           lambda x, kth, axis: np.argpartition(x, kth, axis=axis))


def_rules(argpartition_p, batch=_along_axis_batch(argpartition_p))


def _perm(x, axis):
    return bind(argsort_p, x, axis=axis)


def _unpermute(v, perm, axis):
    """``u`` with ``u[perm[j]] = v[j]`` along ``axis`` (``perm`` a permutation there): the
    transpose of ``take_along_axis(., perm)``, one scatter instead of an inverse argsort."""
    return _scatter(zeros_like(v), _along_axis_index(v, perm, axis, "sort"), v, "set")


sort_p = Primitive("sort", lambda x, axis: np.sort(x, axis=axis))
def_rules(sort_p,
          jvp=(lambda t, ans, x, axis: _take_along_axis(t, _perm(x, axis), axis),),
          vjp=(lambda g, ans, x, axis: _unpermute(g, _perm(x, axis), axis),),
          batch=_along_axis_batch(sort_p))


def _partition_perm(ans, x, axis):
    """The permutation ``p`` with ``x[p] == ans`` along ``axis``: the stable sort orders
    of the input and of NumPy's partitioned output, matched rank by rank."""
    return _unpermute(_perm(x, axis), _perm(ans, axis), axis)


partition_p = Primitive("partition", lambda x, kth, axis: np.partition(x, kth, axis=axis))
def_rules(partition_p,
          jvp=(lambda t, ans, x, kth, axis:
                   _take_along_axis(t, _partition_perm(ans, x, axis), axis),),
          vjp=(lambda g, ans, x, kth, axis:
                   _unpermute(g, _partition_perm(ans, x, axis), axis),),
          batch=_along_axis_batch(partition_p))


_KINDS = (None, "quicksort", "mergesort", "heapsort", "stable")


def _check_sort_args(op, kind, order, kinds=_KINDS):
    if order is not None:
        raise FuncgradTypeError(
            f"{op}: order= (sorting structured arrays by field) is not supported")
    if kind not in kinds:
        raise FuncgradValueError(f"{op}: kind must be one of {kinds[1:]}, got {kind!r}")


def sort(a, axis=-1, kind=None, order=None, *, stable=None):
    """A sorted copy of ``a`` along ``axis`` (of the flattened array when None). NaNs sort
    to the end, complex numbers lexicographically. ``kind`` is accepted (the values do
    not depend on it); ``order=`` raises.

    Gradient: each output position takes the tangent of the input element that a stable
    sort puts there; among equal values that is the earlier one in the input.

    Example:
        >>> import funcgrad, funcgrad.numpy as fnp
        >>> funcgrad.grad(lambda x: fnp.sort(x)[0])(fnp.array([3., 1., 2.]))
        array([0., 1., 0.])
    """
    _check_sort_args("sort", kind, order)
    a, axis = _flat_axis(a, axis, "sort")
    return bind(sort_p, a, axis=axis)


def argsort(a, axis=-1, kind=None, order=None, *, stable=None):
    """Indices that sort ``a`` along ``axis`` (of the flattened array when None). The
    sort is always stable (equal to NumPy with ``kind='stable'``; NumPy's default
    quicksort may order ties differently). Integer result, no derivative. ``order=``
    raises."""
    _check_sort_args("argsort", kind, order)
    a, axis = _flat_axis(a, axis, "argsort")
    return bind(argsort_p, a, axis=axis)


def _kth(kth, n, op):
    ks = np.atleast_1d(np.asarray(kth))
    if ks.dtype.kind not in "iu" or ks.ndim != 1:
        raise FuncgradTypeError(f"{op}: kth must be an integer or a 1-D sequence of integers")
    out = []
    for k in ks.tolist():
        if not -n <= k < n:
            raise FuncgradValueError(f"{op}: kth(={k}) out of bounds ({n})")
        out.append(k % n)
    return tuple(out)


def partition(a, kth, axis=-1, kind="introselect", order=None):
    """A copy of ``a`` with the element(s) at position(s) ``kth`` where a sort would put
    them, smaller elements before and larger after (NumPy's exact arrangement). Only
    ``kind='introselect'``; ``order=`` raises.

    Gradient: routed through the permutation from the input to the output (ties: matched
    by stable order).
    """
    _check_sort_args("partition", kind, order, (None, "introselect"))
    a, axis = _flat_axis(a, axis, "partition")
    return bind(partition_p, a, kth=_kth(kth, a.shape[axis], "partition"), axis=axis)


def argpartition(a, kth, axis=-1, kind="introselect", order=None):
    """Indices that partition ``a`` (NumPy's); integer result, no derivative."""
    _check_sort_args("argpartition", kind, order, (None, "introselect"))
    a, axis = _flat_axis(a, axis, "argpartition")
    return bind(argpartition_p, a, kth=_kth(kth, a.shape[axis], "argpartition"), axis=axis)

"""Reductions: sum, prod, max, min (primitives) and mean, var, std (composites), plus the
non-differentiable all, any, argmax, argmin.

Every reduction takes ``axis`` (None, an int or a tuple, negative allowed) and
``keepdims``. Gradient convention for ``max``/``min``: the gradient is shared equally
among the elements that attain the extreme value.
"""
from __future__ import annotations

import numpy as np

from .. import rows as _rows
from ..batching import reduction_batch
from ..core import Primitive, bind, def_rules
from ..errors import FuncgradTypeError, FuncgradValueError
from . import shape as _shape
from .elementwise import conj, maximum, minimum, real, sqrt, where
from .elementwise import where as _where


def _kept_shape(shape, axes):
    return tuple(1 if i in axes else d for i, d in enumerate(shape))


def _restore(g, x, axis, keepdims):
    """A reduced cotangent reshaped so that it broadcasts against ``x``."""
    if keepdims:
        return g
    return _shape.reshape(g, _kept_shape(x.shape, axis))


# ---- sum -------------------------------------------------------------------------------
def _reduction(name, impl, *, jvp=None, vjp=None, linear=False):
    """A reduction primitive ``impl(x, axis=, keepdims=)`` with its rules: the batching
    rule shifts the axes past the batch axis; the row rule (jit's batch splitting) lets
    only a ``linear`` reduction (a sum) reduce the batch axis."""
    p = Primitive(name, lambda x, axis, keepdims: impl(x, axis=axis, keepdims=keepdims),
                  reduction=True, linear_in=((0,),) if linear else ())
    return def_rules(p, jvp=jvp, vjp=vjp, batch=reduction_batch(p),
                     rows=_rows.reduction_rows(p))


sum_p = _reduction("sum", np.sum, linear=True,
                   jvp=(lambda t, ans, x, axis, keepdims: sum(t, axis=axis, keepdims=keepdims),),
                   vjp=(lambda g, ans, x, axis, keepdims:
                            _shape.broadcast_to(_restore(g, x, axis, keepdims), x.shape),))


def _initial(initial, r):
    """``initial`` in the reduction's dtype, as NumPy does: without the cast a float64
    scalar promoted a float32 sum to float64, and a float initial turned an integer sum
    into a float one."""
    initial = _shape._as_array(initial)
    return initial if initial.dtype == r.dtype else _shape.astype(initial, r.dtype)


def _no_out(op, out):
    if out is not None:
        raise FuncgradTypeError(
            f"{op}: out= is not supported (funcgrad arrays are immutable); use the result")


def sum(a, axis=None, dtype=None, out=None, keepdims=False, initial=None, where=None):
    """Sum over ``axis`` (all axes when None). ``dtype``, ``initial`` and ``where`` follow
    NumPy; booleans and integers sum to NumPy's default integer."""
    _no_out("sum", out)
    a = _shape._as_array(a)
    if dtype is not None:
        a = _shape.astype(a, dtype)
    if where is not None:
        a = _where(where, a, 0)
    axes = _shape.normalize_axes(axis, _shape._ndim(a), "sum", scalar_axis=True)
    r = bind(sum_p, a, axis=axes, keepdims=bool(keepdims))
    if initial is not None:
        r = r + _initial(initial, r)
    return r


# ---- prod ------------------------------------------------------------------------------
def _prod_grad(ans, x, axis, keepdims):
    """d prod / d x_i = product of the others, exact where x has zeros (first order)."""
    is_zero = x == 0
    zeros = sum(is_zero, axis=axis, keepdims=True)
    safe = where(is_zero, 1, x)
    p_nonzero = prod(safe, axis=axis, keepdims=True)
    return where(zeros == 0, p_nonzero / safe, where((zeros == 1) & is_zero, p_nonzero, 0))


prod_p = _reduction(
    "prod", np.prod,
    jvp=(lambda t, ans, x, axis, keepdims:
         sum(t * _prod_grad(ans, x, axis, keepdims), axis=axis, keepdims=keepdims),),
    vjp=(lambda g, ans, x, axis, keepdims:
         _restore(g, x, axis, keepdims) * _prod_grad(ans, x, axis, keepdims),))


def prod(a, axis=None, dtype=None, out=None, keepdims=False, initial=None, where=None):
    """Product over ``axis``. The gradient is exact where the input has zeros (the product
    of the other elements); second derivatives at zeros are not."""
    _no_out("prod", out)
    a = _shape._as_array(a)
    if dtype is not None:
        a = _shape.astype(a, dtype)
    if where is not None:
        a = _where(where, a, 1)
    axes = _shape.normalize_axes(axis, _shape._ndim(a), "prod", scalar_axis=True)
    r = bind(prod_p, a, axis=axes, keepdims=bool(keepdims))
    if initial is not None:
        r = r * _initial(initial, r)
    return r


# ---- max / min -------------------------------------------------------------------------
def _extreme_weights(ans, x, axis, keepdims):
    """Equal shares among the positions that attain the extreme value."""
    hit = _shape.astype(x == _restore(ans, x, axis, keepdims), ans.dtype)
    return hit / sum(hit, axis=axis, keepdims=True)


def _def_extreme(name, impl):
    return _reduction(
        name, impl,
        jvp=(lambda t, ans, x, axis, keepdims:
             sum(t * _extreme_weights(ans, x, axis, keepdims), axis=axis, keepdims=keepdims),),
        vjp=(lambda g, ans, x, axis, keepdims:
             _restore(g, x, axis, keepdims) * _extreme_weights(ans, x, axis, keepdims),))


max_p = _def_extreme("max", np.max)
min_p = _def_extreme("min", np.min)


def _extreme(p, op, a, axis, out, keepdims, initial, where):
    _no_out(op, out)
    a = _shape._as_array(a)
    if where is not None:
        if initial is None:
            # ValueError, as NumPy raises (it was a TypeError).
            raise FuncgradValueError(f"{op}: where= needs initial= (as in NumPy)")
        a = _where(where, a, initial)
    axes = _shape.normalize_axes(axis, _shape._ndim(a), op, scalar_axis=True)
    if 0 in [a.shape[i] for i in axes]:
        if initial is None:
            raise FuncgradValueError(
                f"{op}: zero-size reduction over axis {axis} of an array of shape {a.shape} "
                "has no identity; pass initial=")
        # NumPy's ufunc reduce over nothing: ``initial`` everywhere (an empty sum keeps
        # the result connected to ``a``, whose gradient is then an empty array)
        r = sum(a * 0, axis=axes, keepdims=bool(keepdims))
        return r + _initial(initial, r)
    r = bind(p, a, axis=axes, keepdims=bool(keepdims))
    if initial is not None:
        r = (maximum if op == "max" else minimum)(r, _initial(initial, r))
    return r


def max(a, axis=None, out=None, keepdims=False, initial=None, where=None):
    """Maximum over ``axis``; ties share the gradient equally."""
    return _extreme(max_p, "max", a, axis, out, keepdims, initial, where)


def min(a, axis=None, out=None, keepdims=False, initial=None, where=None):
    """Minimum over ``axis``; ties share the gradient equally."""
    return _extreme(min_p, "min", a, axis, out, keepdims, initial, where)


amax = max
amin = min


# ---- composites ----------------------------------------------------------------------
def _count(a, axes):
    n = 1
    for i in axes:
        n *= a.shape[i]
    return n


def mean(a, axis=None, dtype=None, out=None, keepdims=False, *, where=None):
    """Arithmetic mean over ``axis``; integer input gives float64 (as NumPy)."""
    _no_out("mean", out)
    a = _shape._as_array(a)
    if dtype is not None:
        a = _shape.astype(a, dtype)
    elif a.dtype.kind not in "fc":
        a = _shape.astype(a, np.float64)
    axes = _shape.normalize_axes(axis, a.ndim, "mean")
    if where is not None:
        s = sum(_where(where, a, 0), axis=axes, keepdims=keepdims)
        n = sum(np.broadcast_to(where, a.shape), axis=axes, keepdims=keepdims)
        return s / _shape.astype(n, a.dtype)
    return sum(a, axis=axes, keepdims=keepdims) / _count(a, axes)


def var(a, axis=None, dtype=None, out=None, ddof=0, keepdims=False, *, where=None,
        mean=None, correction=None):
    """Variance over ``axis`` with ``ddof`` (or ``correction``) degrees of freedom removed."""
    _no_out("var", out)
    if where is not None:
        raise FuncgradTypeError("var: where= is not supported; mask the input first")
    if correction is not None:
        ddof = correction
    a = _shape._as_array(a)
    if dtype is not None:
        a = _shape.astype(a, dtype)
    elif a.dtype.kind not in "fc":
        a = _shape.astype(a, np.float64)
    axes = _shape.normalize_axes(axis, a.ndim, "var")
    m = globals()["mean"](a, axis=axes, keepdims=True) if mean is None else mean
    d = a - m
    if d.dtype.kind == "c":
        sq = real(d * conj(d))
    else:
        sq = d * d
    return sum(sq, axis=axes, keepdims=keepdims) / (_count(a, axes) - ddof)


def std(a, axis=None, dtype=None, out=None, ddof=0, keepdims=False, *, where=None,
        mean=None, correction=None):
    """Standard deviation: ``sqrt(var(...))``. Its gradient is NaN for constant input,
    except with one value per result (and ddof < 1), where std is identically 0 and the
    gradient is 0."""
    v = var(a, axis=axis, dtype=dtype, out=out, ddof=ddof, keepdims=keepdims,
            where=where, mean=mean, correction=correction)
    a = _shape._as_array(a)
    if (mean is None and (ddof if correction is None else correction) < 1
            and _count(a, _shape.normalize_axes(axis, a.ndim, "std")) == 1):
        # identically 0 (each value minus itself): v * 0 has the derivative 0, where
        # sqrt'(0) * 0 would be NaN
        return v * 0.0
    return sqrt(v)


# ---- not differentiable ----------------------------------------------------------------
all_p = _reduction("all", np.all)
any_p = _reduction("any", np.any)
argmax_p = _reduction("argmax", np.argmax)
argmin_p = _reduction("argmin", np.argmin)


def all(a, axis=None, out=None, keepdims=False, *, where=None):
    """True where all elements along ``axis`` are true (no derivative)."""
    _no_out("all", out)
    a = _shape._as_array(a)
    if where is not None:
        a = _where(where, a, True)
    return bind(all_p, a, axis=_shape.normalize_axes(axis, a.ndim, "all", scalar_axis=True), keepdims=bool(keepdims))


def any(a, axis=None, out=None, keepdims=False, *, where=None):
    """True where any element along ``axis`` is true (no derivative)."""
    _no_out("any", out)
    a = _shape._as_array(a)
    if where is not None:
        a = _where(where, a, False)
    return bind(any_p, a, axis=_shape.normalize_axes(axis, a.ndim, "any", scalar_axis=True), keepdims=bool(keepdims))


def _arg_axis(axis, ndim, op):
    """NumPy's argmax/argmin accept axis 0 or -1 on a 0-d array (index 0 of the one
    element): that is the flattened case, ``axis=None``."""
    if ndim == 0 and not isinstance(axis, (tuple, list)) and _shape.normalize_axes(
            axis, 0, op, scalar_axis=True) == ():
        return None
    return _shape.normalize_axis(axis, ndim, op)


def argmax(a, axis=None, out=None, *, keepdims=False):
    """Index of the maximum (flattened when ``axis`` is None); no derivative."""
    _no_out("argmax", out)
    a = _shape._as_array(a)
    if axis is not None:
        axis = _arg_axis(axis, a.ndim, "argmax")
    return bind(argmax_p, a, axis=axis, keepdims=bool(keepdims))


def argmin(a, axis=None, out=None, *, keepdims=False):
    """Index of the minimum (flattened when ``axis`` is None); no derivative."""
    _no_out("argmin", out)
    a = _shape._as_array(a)
    if axis is not None:
        axis = _arg_axis(axis, a.ndim, "argmin")
    return bind(argmin_p, a, axis=axis, keepdims=bool(keepdims))

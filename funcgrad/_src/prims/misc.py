"""More of NumPy's everyday surface, built as composites of the primitives (so every rule
comes from theirs): angle, kron, cross, sinc, interpolation, polynomials, convolution,
numerical integration and differences, closeness tests, and a few utilities.
"""
from __future__ import annotations

import math

import numpy as np

from .. import rows as _rows
from ..batching import broadcasting_batch
from ..core import Primitive, Tracer, bind, def_rules
from ..errors import FuncgradTypeError, FuncgradValueError
from . import contractions as _c
from . import creation as _cr
from . import elementwise as _e
from . import indexing as _ix
from . import reductions as _r
from . import shape as _s

__all__ = ["copy", "frexp", "i0", "isin", "nextafter", "real_if_close", "vander",
           "allclose", "angle", "histogram", "unique", "array_equal", "array_equiv", "bincount", "convolve",
           "correlate", "cross", "digitize", "fabs", "float_power", "gradient", "interp",
           "iscomplex", "iscomplexobj", "isclose", "isreal", "isrealobj", "isscalar", "kron",
           "ldexp", "modf", "nan_to_num", "polyval", "result_type", "searchsorted", "sinc",
           "trapezoid",
           "vecdot"]


def _arr(x):
    return _s._as_array(x)


def angle(z, deg=False):
    """The argument of complex ``z`` (``arctan2(imag, real)``), in radians or degrees.

    Differentiable for complex input away from 0; for real input the result is 0 or pi
    and its derivative is 0.
    """
    z = _arr(z)
    a = _e.arctan2(_e.imag(z), _e.real(z))
    return a * (180.0 / math.pi) if deg else a


def fabs(x, /):
    """Absolute value of real ``x`` (complex input raises, as in NumPy)."""
    x = _arr(x)
    if x.dtype.kind == "c":
        raise FuncgradTypeError("fabs: complex input is not supported (use abs)")
    return _e.abs(x)


def float_power(x1, x2, /):
    """``x1 ** x2`` computed in float64 (complex128 for complex input), as NumPy does."""
    x1, x2 = _arr(x1), _arr(x2)
    dt = np.complex128 if x1.dtype.kind == "c" or x2.dtype.kind == "c" else np.float64
    return _e.power(_s.astype(x1, dt), _s.astype(x2, dt))


def ldexp(x1, x2, /):
    """``x1 * 2**x2`` with integer ``x2``; differentiable in ``x1``."""
    x1, x2 = _arr(x1), _arr(x2)
    if x2.dtype.kind not in "iu":
        raise FuncgradTypeError(f"ldexp: the exponent must be an integer array, got {x2.dtype}")
    dt = x1.dtype if x1.dtype.kind == "f" else np.float64
    return _s.astype(x1, dt) * _e.exp2(_s.astype(x2, dt))


def modf(x, /):
    """``(fractional part, integral part)``; the fractional part has derivative 1.

    As NumPy: the fractional part carries ``x``'s sign, also when it is zero
    (``modf(-1.0)`` is ``(-0.0, -1.0)``), and is ``±0`` for ``±inf``."""
    x = _arr(x)
    if x.dtype.kind in "biu":
        x = _s.astype(x, np.float64)
    i = _e.trunc(x)
    # ±inf -> 0 first (its fraction is ±0; inf - inf would warn and give NaN)
    xs = _e.where(_e.isinf(x), 0.0, x) if x.dtype.kind == "f" else x
    i_s = _e.trunc(xs)
    # -(i - x) is x - i with the sign of a zero result flipped; both have derivative 1
    return _e.where(_e.signbit(x), -(i_s - xs), xs - i_s), i


def sinc(x):
    """``sin(pi x) / (pi x)``, 1 at 0 (its derivative at 0 is 0, without NaN)."""
    x = _arr(x)
    zero = x == 0
    safe = _e.where(zero, 1.0, x) * math.pi
    return _e.where(zero, 1.0, _e.sin(safe) / safe)


def nan_to_num(x, copy=True, nan=0.0, posinf=None, neginf=None):
    """Replace NaN and infinities by finite numbers; derivative 1 where ``x`` is finite,
    0 where it was replaced."""
    x = _arr(x)
    if x.dtype.kind not in "fc":
        return x
    if x.dtype.kind == "c":
        return nan_to_num(_e.real(x), nan=nan, posinf=posinf, neginf=neginf) + 1j * nan_to_num(
            _e.imag(x), nan=nan, posinf=posinf, neginf=neginf)
    info = np.finfo(x.dtype)
    posinf = info.max if posinf is None else posinf
    neginf = info.min if neginf is None else neginf
    y = _e.where(_e.isnan(x), nan, x)
    y = _e.where(y == np.inf, posinf, y)
    return _s.astype(_e.where(y == -np.inf, neginf, y), x.dtype)


def isclose(a, b, rtol=1e-05, atol=1e-08, equal_nan=False):
    """Elementwise ``|a - b| <= atol + rtol |b|`` (boolean result, not differentiable)."""
    a, b = _arr(a), _arr(b)
    close = _e.abs(a - b) <= atol + rtol * _e.abs(b)
    both_inf = _e.isinf(a) & _e.isinf(b)
    close = _e.where(both_inf, a == b, close)
    if equal_nan:
        close = close | (_e.isnan(a) & _e.isnan(b))
    return close


def allclose(a, b, rtol=1e-05, atol=1e-08, equal_nan=False):
    """True when every element is close (a Python bool: needs concrete values)."""
    return bool(_r.all(isclose(a, b, rtol, atol, equal_nan)))


def array_equal(a1, a2, equal_nan=False):
    """True when both have one shape and equal elements (a Python bool)."""
    a1, a2 = _arr(a1), _arr(a2)
    if tuple(a1.shape) != tuple(a2.shape):
        return False
    eq = a1 == a2
    if equal_nan:
        eq = eq | (_e.isnan(a1) & _e.isnan(a2))
    return bool(_r.all(eq))


def array_equiv(a1, a2):
    """True when the arrays broadcast to one shape with equal elements."""
    a1, a2 = _arr(a1), _arr(a2)
    try:
        np.broadcast_shapes(tuple(a1.shape), tuple(a2.shape))
    except ValueError:
        return False
    return bool(_r.all(a1 == a2))


def iscomplexobj(x):
    x = _arr(x) if isinstance(x, (list, tuple)) else x
    d = getattr(x, "dtype", None)
    return np.dtype(d if d is not None else np.asarray(x).dtype).kind == "c"


def result_type(*arrays_and_dtypes):
    """NumPy's ``result_type``, also for traced values (by their dtypes)."""
    return np.result_type(*[a.dtype if isinstance(a, Tracer) else a for a in arrays_and_dtypes])


def isrealobj(x):
    return not iscomplexobj(x)


def iscomplex(x):
    """Elementwise: imaginary part nonzero (boolean)."""
    x = _arr(x)
    return _e.imag(x) != 0 if x.dtype.kind == "c" else _cr.zeros_like(x, dtype=bool)


def isreal(x):
    """Elementwise: imaginary part zero (boolean)."""
    x = _arr(x)
    return _e.imag(x) == 0 if x.dtype.kind == "c" else _cr.ones_like(x, dtype=bool)


def isscalar(element):
    return np.isscalar(element)


def kron(a, b):
    """Kronecker product (any ranks, as NumPy): differentiable in both arguments."""
    a, b = _arr(a), _arr(b)
    nd = max(a.ndim, b.ndim)
    sa = (1,) * (nd - a.ndim) + tuple(a.shape)
    sb = (1,) * (nd - b.ndim) + tuple(b.shape)
    a = _s.reshape(a, tuple(d for p in zip(sa, (1,) * nd) for d in p))
    b = _s.reshape(b, tuple(d for p in zip((1,) * nd, sb) for d in p))
    return _s.reshape(a * b, tuple(x * y for x, y in zip(sa, sb)))


def cross(a, b, axisa=-1, axisb=-1, axisc=-1, axis=None):
    """Cross product of 3-vectors (or 2-vectors: the z component) along an axis, with
    broadcasting over the others."""
    if axis is not None:
        axisa = axisb = axisc = axis
    a = _s.moveaxis(_arr(a), axisa, -1)
    b = _s.moveaxis(_arr(b), axisb, -1)
    na, nb = a.shape[-1], b.shape[-1]
    if na not in (2, 3) or nb not in (2, 3):
        raise FuncgradValueError(
            f"cross: vectors must have 2 or 3 components, got {na} and {nb}")
    a0, a1 = a[..., 0], a[..., 1]
    b0, b1 = b[..., 0], b[..., 1]
    if na == 2 and nb == 2:
        return a0 * b1 - a1 * b0
    a2 = a[..., 2] if na == 3 else None
    b2 = b[..., 2] if nb == 3 else None
    c0 = (a1 * b2 if b2 is not None else 0) - (a2 * b1 if a2 is not None else 0)
    c1 = (a2 * b0 if a2 is not None else 0) - (a0 * b2 if b2 is not None else 0)
    c2 = a0 * b1 - a1 * b0
    c0, c1, c2 = _s.broadcast_arrays(c0, c1, c2)
    c = _s.stack([c0, c1, c2], axis=-1)
    return _s.moveaxis(c, -1, axisc)


def vecdot(x1, x2, /, *, axis=-1):
    """``sum(conj(x1) * x2, axis)``."""
    x1, x2 = _arr(x1), _arr(x2)
    if x1.dtype.kind == "c":
        x1 = _e.conj(x1)
    return _r.sum(x1 * x2, axis=axis)


def polyval(p, x):
    """Evaluate the polynomial with coefficients ``p`` (highest power first) at ``x``
    (Horner's scheme); differentiable in both."""
    p = _arr(p)
    x = _arr(x)
    if p.ndim != 1:
        raise FuncgradValueError(f"polyval: p must be 1-D, got shape {tuple(p.shape)}")
    y = _cr.zeros_like(x, dtype=x.dtype if x.dtype.kind in "fc" else np.float64)
    for i in range(p.shape[0]):
        y = y * x + p[i]
    return y


# ---- searching and interpolation --------------------------------------------------------
searchsorted_p = Primitive("searchsorted", lambda a, v, side: np.searchsorted(a, v, side=side))


def searchsorted(a, v, side="left", sorter=None):
    """Indices where ``v`` would be inserted into sorted ``a`` (no derivative)."""
    if side not in ("left", "right"):
        raise FuncgradValueError(f"searchsorted: side must be 'left' or 'right', got {side!r}")
    a = _arr(a)
    if sorter is not None:
        a = _ix._getitem(a, _arr(sorter))
    return bind(searchsorted_p, a, v, side=side)


def digitize(x, bins, right=False):
    """Indices of the bins that ``x`` falls in (no derivative); bins increasing."""
    bins = _arr(bins)
    return searchsorted(bins, x, side="left" if right else "right")


def interp(x, xp, fp, left=None, right=None, period=None):
    """Piecewise-linear interpolation (NumPy's ``interp``, ``xp`` increasing);
    differentiable in ``x`` and ``fp`` (and ``left``/``right``)."""
    if period is not None:
        raise FuncgradTypeError("interp: period= is not supported")
    x, xp, fp = _arr(x), _arr(xp), _arr(fp)
    n = xp.shape[0]
    if n == 1:
        return _s.broadcast_to(fp[0], x.shape) * 1.0
    idx = _e.clip(searchsorted(xp, x, side="right") - 1, 0, n - 2)
    x0 = _ix._getitem(xp, idx)
    x1 = _ix._getitem(xp, idx + 1)
    y0 = _ix._getitem(fp, idx)
    y1 = _ix._getitem(fp, idx + 1)
    t = (x - x0) / (x1 - x0)
    y = y0 + (y1 - y0) * t
    y = _e.where(x < xp[0], fp[0] if left is None else left, y)
    return _e.where(x > xp[n - 1], fp[n - 1] if right is None else right, y)


def bincount(x, weights=None, minlength=0):
    """Counts of each non-negative integer in ``x`` (concrete); with ``weights``, their
    sums per bin, differentiable in the weights."""
    if isinstance(x, Tracer):
        x = x._concrete("bincount (its output length depends on the values)")
    x = np.asarray(x)
    if weights is None:
        return np.bincount(x, minlength=minlength)
    n = max(int(x.max()) + 1 if x.size else 0, minlength)
    w = _arr(weights)
    return _ix._scatter(_cr.zeros_like(w, shape=(n,)), x, w, "add")


# ---- convolution, integration, differences ---------------------------------------------
def convolve(a, v, mode="full"):
    """Discrete linear convolution of 1-D arrays (modes 'full', 'same', 'valid'),
    differentiable in both."""
    a, v = _arr(a), _arr(v)
    if a.ndim != 1 or v.ndim != 1:
        raise FuncgradValueError("convolve: a and v must be 1-D")
    if a.shape[0] < v.shape[0]:
        a, v = v, a
    n, m = a.shape[0], v.shape[0]
    if m == 0:
        raise FuncgradValueError("convolve: v cannot be empty")
    zeros = _cr.zeros((m - 1,), dtype=a.dtype)
    padded = _s.concatenate([zeros, a, zeros]) if m > 1 else a
    idx = np.arange(n + m - 1)[:, None] + np.arange(m)[None, :]
    full = _c.matmul(_ix._getitem(padded, idx), v[::-1])
    if mode == "full":
        return full
    if mode == "same":
        start = (m - 1) // 2
        return full[start:start + n]
    if mode == "valid":
        return full[m - 1:n]
    raise FuncgradValueError(f"convolve: mode must be 'full', 'same' or 'valid', got {mode!r}")


def correlate(a, v, mode="valid"):
    """Cross-correlation of 1-D arrays: ``convolve(a, conj(v)[::-1], mode)``."""
    a, v = _arr(a), _arr(v)
    if a.ndim != 1 or v.ndim != 1:
        raise FuncgradValueError("correlate: a and v must be 1-D")
    vc = _e.conj(v) if v.dtype.kind == "c" else v
    if a.shape[0] >= v.shape[0]:
        return convolve(a, vc[::-1], mode)
    return convolve(vc[::-1], a, mode)[::-1] if mode != "same" else convolve(a, vc[::-1], mode)


def trapezoid(y, x=None, dx=1.0, axis=-1):
    """Integral by the trapezoidal rule along ``axis`` (sample points ``x`` or spacing
    ``dx``); differentiable in ``y`` and ``x``."""
    y = _arr(y)
    axis = _s.normalize_axis(axis, y.ndim, "trapezoid")
    n = y.shape[axis]
    lo = (slice(None),) * axis + (slice(1, None),)
    hi = (slice(None),) * axis + (slice(None, n - 1),)
    mid = (_ix._getitem(y, lo) + _ix._getitem(y, hi)) / 2.0
    if x is None:
        return _r.sum(mid, axis=axis) * dx
    x = _arr(x)
    if x.ndim == 1:
        d = x[1:] - x[:-1]
        shape = [1] * y.ndim
        shape[axis] = n - 1
        d = _s.reshape(d, tuple(shape))
    else:
        d = _ix._getitem(x, lo) - _ix._getitem(x, hi)
    return _r.sum(mid * d, axis=axis)


def gradient(f, *varargs, axis=None, edge_order=1):
    """NumPy's ``gradient``: second-order central differences inside, one-sided
    differences of order ``edge_order`` (1 or 2) at the edges; a list for several axes.

    ``varargs``: nothing (unit spacing), one spacing for every axis, or one per axis;
    each a scalar (uniform spacing) or a 1-D array of the sample coordinates along its
    axis (non-uniform spacing, NumPy's formulas). The result is differentiable in ``f``
    and in the spacings. Raises FuncgradValueError for an axis with fewer than
    ``edge_order + 1`` samples or coordinates of the wrong length, FuncgradTypeError
    for another ``edge_order`` or a wrong number of spacings.

    Example:
        >>> import numpy as np, funcgrad.numpy as fnp
        >>> fnp.gradient(np.array([1., 4., 9., 16.]), edge_order=2)
        array([2., 4., 6., 8.])
    """
    if edge_order not in (1, 2):
        raise FuncgradTypeError(f"gradient: edge_order must be 1 or 2, got {edge_order!r}")
    f = _arr(f)
    axes = list(range(f.ndim)) if axis is None else (
        [axis] if isinstance(axis, int) else list(axis))
    axes = [_s.normalize_axis(a, f.ndim, "gradient") for a in axes]
    if len(varargs) == 0:
        spacing = [1.0] * len(axes)
    elif len(varargs) == 1:
        spacing = list(varargs) * len(axes)
    else:
        spacing = list(varargs)
    if len(spacing) != len(axes):
        raise FuncgradTypeError(
            f"gradient: give one spacing, or one per axis ({len(axes)}); got {len(spacing)}")
    out = []
    for ax, h in zip(axes, spacing):
        n = f.shape[ax]
        if n < edge_order + 1:
            raise FuncgradValueError(
                f"gradient: axis {ax} has {n} samples; edge_order={edge_order} needs at "
                f"least {edge_order + 1}")
        if np.ndim(h) == 0:
            out.append(_uniform_gradient(f, ax, h, edge_order))
            continue
        h = _arr(h)
        if h.ndim != 1 or h.shape[0] != n:
            raise FuncgradValueError(
                f"gradient: the coordinates along axis {ax} must be 1-D of its length {n}, "
                f"got shape {tuple(h.shape)}")
        out.append(_coordinate_gradient(f, ax, h, edge_order))
    return out[0] if len(out) == 1 else out


def _axis_slicer(f, ax):
    pre = (slice(None),) * ax
    return lambda a, b: _ix._getitem(f, pre + (slice(a, b),))


def _uniform_gradient(f, ax, h, edge_order):
    n = f.shape[ax]
    sl = _axis_slicer(f, ax)
    if edge_order == 1:
        first = (sl(1, 2) - sl(0, 1)) / h
        last = (sl(n - 1, n) - sl(n - 2, n - 1)) / h
    else:
        first = (-1.5 * sl(0, 1) + 2.0 * sl(1, 2) - 0.5 * sl(2, 3)) / h
        last = (0.5 * sl(n - 3, n - 2) - 2.0 * sl(n - 2, n - 1) + 1.5 * sl(n - 1, n)) / h
    parts = [first]
    if n > 2:
        parts.append((sl(2, None) - sl(None, n - 2)) / (2.0 * h))
    parts.append(last)
    return _s.concatenate(parts, axis=ax)


def _coordinate_gradient(f, ax, x, edge_order):
    """Differences over the coordinates ``x``: each value is the derivative at its
    sample of the parabola (or, at order-1 edges, the line) through its neighbours."""
    n = f.shape[ax]
    sl = _axis_slicer(f, ax)

    def col(v):                            # a 1-D weight along ``ax`` of f
        return _s.reshape(v, (1,) * ax + (v.shape[0],) + (1,) * (f.ndim - ax - 1))

    dx = x[1:] - x[:-1]
    if edge_order == 1:
        first = (sl(1, 2) - sl(0, 1)) / col(dx[:1])
        last = (sl(n - 1, n) - sl(n - 2, n - 1)) / col(dx[-1:])
    else:
        d1, d2 = dx[:1], dx[1:2]
        first = (col(-(2.0 * d1 + d2) / (d1 * (d1 + d2))) * sl(0, 1)
                 + col((d1 + d2) / (d1 * d2)) * sl(1, 2)
                 + col(-d1 / (d2 * (d1 + d2))) * sl(2, 3))
        d1, d2 = dx[-2:-1], dx[-1:]
        last = (col(d2 / (d1 * (d1 + d2))) * sl(n - 3, n - 2)
                + col(-(d1 + d2) / (d1 * d2)) * sl(n - 2, n - 1)
                + col((2.0 * d2 + d1) / (d2 * (d1 + d2))) * sl(n - 1, n))
    parts = [first]
    if n > 2:
        hd, hs = dx[:-1], dx[1:]
        parts.append(col(-hs / (hd * (hd + hs))) * sl(None, n - 2)
                     + col((hs - hd) / (hd * hs)) * sl(1, n - 1)
                     + col(hd / (hs * (hd + hs))) * sl(2, None))
    parts.append(last)
    return _s.concatenate(parts, axis=ax)


def unique(ar, return_index=False, return_inverse=False, return_counts=False, axis=None,
           *, equal_nan=True):
    """The sorted unique elements of ``ar`` (NumPy's ``unique``, flattened when ``axis`` is
    None). Which elements are kept depends on the values, so they must be concrete
    (under grad/jvp/vjp, not jit); the returned values are gathered from ``ar``, so they
    carry its derivative. Index, inverse and count outputs are plain integer arrays."""
    a = _arr(ar)
    concrete = a._concrete("unique (its output size depends on the values)") \
        if isinstance(a, Tracer) else a
    res = np.unique(concrete, return_index=True, return_inverse=return_inverse,
                    return_counts=return_counts, axis=axis, equal_nan=equal_nan)
    first = res[1]
    if axis is None:
        values = _ix._getitem(_s.ravel(a), first)
    else:
        values = _ix._getitem(_s.moveaxis(a, axis, 0), first)
        values = _s.moveaxis(values, 0, axis)
    if not (return_index or return_inverse or return_counts):
        return values
    out = [values]
    if return_index:
        out.append(first)
    out.extend(res[2:])
    return tuple(out)


def histogram(a, bins=10, range=None, density=None, weights=None):
    """``(counts, bin_edges)`` as NumPy (concrete ``a``). With ``weights`` the counts are
    sums of the weights per bin and carry their derivative; ``density=True`` divides by
    the total and the bin widths."""
    x = _arr(a)
    xc = x._concrete("histogram (bins depend on the values)") if isinstance(x, Tracer) else x
    edges = np.histogram_bin_edges(np.asarray(xc), bins=bins, range=range)
    if weights is None:
        counts, edges = np.histogram(np.asarray(xc), bins=edges)
        if density:
            counts = counts / counts.sum() / np.diff(edges)
        return counts, edges
    xf = np.asarray(xc).ravel()
    inside = (xf >= edges[0]) & (xf <= edges[-1])
    idx = np.clip(np.searchsorted(edges, xf, side="right") - 1, 0, len(edges) - 2)
    w = _s.ravel(_arr(weights))
    w = _e.where(inside, w, 0)
    counts = _ix._scatter(_cr.zeros_like(w, shape=(len(edges) - 1,)), idx, w, "add")
    if density:
        counts = counts / _r.sum(counts) / np.diff(edges)
    return counts, edges


# ---- copy, isin, real_if_close, vander ---------------------------------------------------
def copy(a, order="K", subok=False):
    """A copy of ``a``. Plain arrays are copied (NumPy's ``copy``); a traced value is
    returned as it is (funcgrad arrays are immutable, so sharing is safe); derivative 1."""
    a = _arr(a)
    return a if isinstance(a, Tracer) else a.copy()


def isin(element, test_elements, assume_unique=False, invert=False, *, kind=None):
    """Whether each entry of ``element`` equals one of ``test_elements`` (any shape,
    flattened), as NumPy's ``isin``: a boolean array of ``element``'s shape, no derivative.
    Works on traced values and under ``jit`` (one comparison of every pair)."""
    e, t = _arr(element), _s.ravel(_arr(test_elements))
    hit = _r.any(_s.expand_dims(e, -1) == t, axis=-1)
    return _e.logical_not(hit) if invert else hit


def real_if_close(a, tol=100):
    """``real(a)`` when ``a`` is complex with every imaginary part below ``tol`` machine
    epsilons (``tol > 1``) or below ``tol`` itself (``tol <= 1``), else ``a``, as NumPy's.
    The choice depends on the values: fine under grad/jvp/vjp (concrete values); under
    ``jit`` it raises ConcretizationTypeError. Derivative: that of ``real`` (or 1)."""
    a = _arr(a)
    if a.dtype.kind != "c":
        return a
    if tol > 1:
        tol = float(np.finfo(a.dtype).eps) * tol
    small = _r.all(_e.abs(_e.imag(a)) < tol)
    if isinstance(small, Tracer):
        small = small._concrete("real_if_close (its result's dtype depends on the values)")
    return _e.real(a) if bool(small) else a


def vander(x, N=None, increasing=False):
    """The Vandermonde matrix of 1-D ``x``: columns ``x**(N-1), ..., x, 1`` (or increasing
    powers), as NumPy's ``vander``. Built by repeated products (one per column), so its
    derivatives are exact to any order at ``x == 0`` too (``x**k`` would give ``0 * inf``
    there)."""
    x = _arr(x)
    if x.ndim != 1:
        raise FuncgradValueError(f"vander: x must be 1-D, got shape {tuple(x.shape)}")
    n = x.shape[0] if N is None else int(N)
    if n < 0:
        raise FuncgradValueError(f"vander: N must be non-negative, got {N}")
    if n == 0:
        return _cr.zeros_like(x, shape=(x.shape[0], 0))
    cols = [_cr.ones_like(x)]
    for _ in range(n - 1):
        cols.append(cols[-1] * x)
    return _s.stack(cols if increasing else cols[::-1], axis=1)


# ---- nextafter and frexp -----------------------------------------------------------------
nextafter_p = Primitive("nextafter", np.nextafter, elementwise=True)
def_rules(nextafter_p,
          jvp=(lambda t, ans, x1, x2: t, None),
          vjp=(lambda g, ans, x1, x2: _s.unbroadcast(_s.broadcast_to(g, ans.shape), x1), None),
          batch=broadcasting_batch(nextafter_p), rows=_rows.broadcasting_rows(nextafter_p))


def nextafter(x1, x2, /):
    """The next floating-point value after ``x1`` towards ``x2``, as NumPy's.

    Derivative: read as ``x1`` plus at most one ulp, so 1 in ``x1`` and none in ``x2``
    (the step to the next float does not change with ``x2`` but at ``x1 == x2``)."""
    x1, x2 = _arr(x1), _arr(x2)
    if x1.dtype.kind != "f" or x2.dtype.kind != "f":
        dt = np.result_type(x1.dtype, x2.dtype, np.float64 if x1.dtype.kind in "biu"
                            and x2.dtype.kind in "biu" else x1.dtype)
        x1, x2 = _s.astype(x1, dt), _s.astype(x2, dt)
    return bind(nextafter_p, x1, x2)


frexp_exponent_p = Primitive("frexp_exponent", lambda x: np.frexp(x)[1], elementwise=True)
def_rules(frexp_exponent_p, batch=broadcasting_batch(frexp_exponent_p),
          rows=_rows.broadcasting_rows(frexp_exponent_p))


def frexp(x, /):
    """``(mantissa, exponent)`` with ``x == mantissa * 2**exponent`` and ``0.5 <=
    |mantissa| < 1`` (0, inf and NaN keep their value, exponent 0), as NumPy's ``frexp``;
    the exponent is int32. Derivative: the mantissa's is ``2**-exponent`` (the exponent
    is piecewise constant), the exponent has none."""
    x = _arr(x)
    if x.dtype.kind != "f":
        x = _s.astype(x, np.float64)
    ex = bind(frexp_exponent_p, x)
    finite = _e.isfinite(x)
    # scaled in two halves: 2**-ex alone overflows for subnormal x (ex down to -1073)
    half = ex // 2
    m = ldexp(ldexp(x, -half), half - ex)
    return _e.where(finite, m, x), ex


# ---- modified Bessel functions of order 0 and 1 (NumPy's i0; scipy.special's i0e, i1,
# i1e come from here too) -------------------------------------------------------------------
def _bessel_scaled_np(nu, x):
    """``exp(-|x|) I_nu(|x|)`` for nu 0 or 1, in float64: the power series (positive
    terms, no cancellation) up to |x| = 30, the asymptotic expansion above (its smallest
    term there is below e^-60)."""
    ax = np.abs(np.asarray(x, dtype=np.float64))
    out = np.empty_like(ax)
    small = ax <= 30
    a = ax[small]
    q = a * a / 4
    term = np.ones_like(a) if nu == 0 else a / 2
    total = term.copy()
    for k in range(1, 90):
        term = term * q / (k * (k + nu))
        total = total + term
    out[small] = total * np.exp(-a)
    a = ax[~small]
    mu = 4.0 * nu * nu
    term = np.ones_like(a)
    total = term.copy()
    for k in range(1, 40):
        term = term * -(mu - (2 * k - 1) ** 2) / (k * 8.0 * a)
        total = total + term
    out[~small] = total / np.sqrt(2 * math.pi * a)
    out[np.isnan(ax)] = np.nan
    return out


def _bessel_impl(nu, scaled):
    def impl(x):
        with np.errstate(all="ignore"):
            r = _bessel_scaled_np(nu, x)
            if not scaled:
                r = r * np.exp(np.abs(x))
            if nu == 1:
                r = np.sign(x) * r
        return np.asarray(r, dtype=x.dtype if x.dtype.kind == "f" else np.float64)
    return impl


def _over_x(v, x):
    """``v / x`` for ``v = I1(x)`` (scaled or not), with its limit 1/2 at ``x == 0``."""
    zero = x == 0
    return _e.where(zero, 0.5, v / _e.where(zero, 1.0, x))


def _bessel(name, nu, scaled, deriv):
    p = Primitive(name, _bessel_impl(nu, scaled), elementwise=True)
    rule = (lambda c, ans, x: c * deriv(ans, x),)
    return def_rules(p, jvp=rule, vjp=rule, batch=broadcasting_batch(p),
                     rows=_rows.broadcasting_rows(p))


# I0' = I1, I1' = I0 - I1/x; the scaled ones add -sign(x) times themselves
bessel_i0_p = _bessel("bessel_i0", 0, False, lambda ans, x: bind(bessel_i1_p, x))
bessel_i1_p = _bessel("bessel_i1", 1, False,
                      lambda ans, x: bind(bessel_i0_p, x) - _over_x(ans, x))
bessel_i0e_p = _bessel("bessel_i0e", 0, True,
                       lambda ans, x: bind(bessel_i1e_p, x) - _e.sign(x) * ans)
bessel_i1e_p = _bessel("bessel_i1e", 1, True,
                       lambda ans, x: bind(bessel_i0e_p, x) - _over_x(ans, x)
                       - _e.sign(x) * ans)


def _real_float(x, op):
    x = _arr(x)
    if x.dtype.kind == "c":
        raise FuncgradTypeError(f"{op}: complex input is not supported, got {x.dtype}")
    return x if x.dtype.kind == "f" else _s.astype(x, np.float64)


def i0(x):
    """The modified Bessel function of the first kind, order 0, as NumPy's ``i0`` (real
    input; complex raises FuncgradTypeError). Derivative ``i1(x)``, to any order."""
    return bind(bessel_i0_p, _real_float(x, "i0"))

"""Linear algebra, part 3: least squares, norms and the composites (``lstsq norm
vector_norm matrix_norm cond matrix_rank matrix_power multi_dot tensorinv tensorsolve
...``), built from the primitives of ``linalg_solve.py`` and ``linalg_decomp.py``."""
from __future__ import annotations

import math
import string

import numpy as np

from ..backend import dtype_name
from ..core import Tracer
from ..errors import FuncgradTypeError, FuncgradValueError
from . import shape as _shape
from .creation import _xp_of
from .contractions import einsum, matmul, outer as _outer
from .elementwise import abs as _abs, conj, real, sqrt, where
from .reductions import max as _max, min as _min, sum as _sum
from .linalg_decomp import svdvals
from .linalg_solve import _T, _as_matrix_stack, _conj, _cplx, _real_dtype, inv, pinv, solve

# ---- least squares ------------------------------------------------------------------
def lstsq(a, b, rcond=None):
    """Least-squares solution of ``a @ x = b`` for a 2-D ``a`` ``(M, N)``.

    Returns ``(x, residuals, rank, s)`` as NumPy does. ``x`` is ``pinv(a, rcond) @ b``
    (differentiable in ``a`` and ``b``; singular values at most ``rcond`` times the
    largest count as zero, default ``max(M, N) * eps``), ``residuals`` the squared
    residual norms (differentiable; empty unless ``M > N`` and ``rank == N``), ``rank`` an
    int, and ``s`` the singular values of ``a`` (differentiable). The rank is computed
    from concrete values.
    """
    a = _as_matrix_stack(a, "lstsq", square=False)
    b = _shape._as_array(b)
    if b.dtype.kind in "biu":
        b = _shape.astype(b, np.float64)
    if a.ndim != 2 or b.ndim not in (1, 2) or b.shape[0] != a.shape[0]:
        raise FuncgradValueError(
            f"linalg.lstsq: a must be 2-D (M, N) and b (M,) or (M, K); got {dtype_name(a)} "
            f"and {dtype_name(b)}")
    m, n = a.shape
    if rcond is None:
        rcond = float(np.finfo(a.dtype).eps) * max(m, n)
    x = matmul(pinv(a, rcond=rcond), b)
    s = svdvals(a)
    s_val = s._concrete("linalg.lstsq (the rank)") if isinstance(s, Tracer) else s
    rank = int(np.sum(s_val > rcond * s_val.max())) if s_val.size else 0
    if m > n and rank == n:
        r = b - matmul(a, x)
        sq = real(r * conj(r)) if _cplx(r) else r * r
        residuals = _sum(sq, axis=0)
        if b.ndim == 1:
            residuals = _shape.reshape(residuals, (1,))
    else:
        residuals = np.empty((0,), dtype=_real_dtype(np.result_type(a.dtype, b.dtype)))
    return x, residuals, rank, s


# ---- norms -------------------------------------------------------------------------------
def _safe_sqrt(s):
    """``sqrt(s)`` whose derivative at ``s == 0`` is taken as 0 instead of infinite."""
    zero = s == 0
    return where(zero, 0, sqrt(where(zero, 1, s)))


def _abs2(x):
    return real(x * conj(x)) if _cplx(x) else x * x


def _cabs(x):
    """``|x|``; for complex ``x`` with derivative 0 at 0 (JAX's pairing convention)."""
    return _safe_sqrt(_abs2(x)) if _cplx(x) else _abs(x)


def _vector_norm(x, ord, axes, keepdims):
    if ord is None or ord == 2:
        return _safe_sqrt(_sum(_abs2(x), axis=axes, keepdims=keepdims))
    if isinstance(ord, str):
        raise FuncgradValueError(f"linalg.norm: invalid norm order {ord!r} for vectors")
    ord = float(ord)
    if ord == math.inf:
        # NumPy gives 0 for an empty vector (norms are non-negative)
        return _max(_cabs(x), axis=axes, keepdims=keepdims, initial=0)
    if ord == -math.inf:
        return _min(_cabs(x), axis=axes, keepdims=keepdims)
    if ord == 0:
        return _shape.astype(_sum(x != 0, axis=axes, keepdims=keepdims),
                             _real_dtype(x.dtype))
    if ord == 1:
        return _sum(_cabs(x), axis=axes, keepdims=keepdims)
    a = _cabs(x)
    if ord > 0:
        # |x|**p has an infinite slope at 0 for p < 1; entries at 0 take the subgradient
        # 0 instead (in both modes, as abs does at 0), so no inf * 0 = NaN appears
        nz = a != 0
        a = where(nz, where(nz, a, 1) ** ord, 0)
    else:
        a = a ** ord
    s = _sum(a, axis=axes, keepdims=keepdims)
    zero = s == 0
    return where(zero, 0, where(zero, 1, s) ** (1.0 / ord))


def _matrix_norm(x, ord, axes, keepdims):
    r, c = axes
    if ord is None or ord == "fro":
        return _safe_sqrt(_sum(_abs2(x), axis=axes, keepdims=keepdims))
    if ord in ("nuc", 2, -2):
        s = svdvals(_shape.moveaxis(x, (r, c), (-2, -1)))
        out = (_sum(s, axis=-1) if ord == "nuc" else
               _max(s, axis=-1, initial=0) if ord == 2 else _min(s, axis=-1))
        return _shape.expand_dims(out, (r, c)) if keepdims else out
    if ord in (1, -1):
        red, keep = r, c
    elif ord in (math.inf, -math.inf):
        red, keep = c, r
    else:
        raise FuncgradValueError(f"linalg.norm: invalid norm order {ord!r} for matrices")
    sums = _sum(_cabs(x), axis=red, keepdims=True)
    out = (_max(sums, axis=keep, keepdims=True, initial=0) if ord in (1, math.inf) else
           _min(sums, axis=keep, keepdims=True))
    return out if keepdims else _shape.squeeze(out, axis=(r, c))


def _as_inexact(x, op):
    x = _shape._as_array(x)
    if x.dtype.kind in "biu":
        x = _shape.astype(x, np.float64)
    elif x.dtype.kind not in "fc":
        raise FuncgradTypeError(f"linalg.{op}: unsupported dtype in {dtype_name(x)}")
    return x


def norm(x, ord=None, axis=None, keepdims=False):
    """Matrix or vector norm, as ``numpy.linalg.norm``.

    Vector norms (``axis`` an int, or ``x`` 1-D): ``ord`` None/2, ``inf``, ``-inf``, 0
    (count of non-zeros, no derivative), 1, or any other number ``p``
    (``sum(|x|**p)**(1/p)``). Matrix norms (``axis`` a pair, or ``x`` 2-D with ``ord``
    given): ``'fro'``, ``'nuc'``, 2, -2 (by singular values), 1, -1, ``inf``, ``-inf``.
    ``axis=None`` with ``ord=None`` is the 2-norm of all elements. ``keepdims`` keeps the
    reduced axes. Complex input gives real norms. Integer input is converted to float64.

    Derivative at zero: the 2-norm, Frobenius norm and p-norms (any ``p > 0``) of a zero
    vector have the subgradient 0 (not NaN), in forward and reverse mode alike; for
    ``0 < p < 1``, where the slope of ``|x_i|**p`` at ``x_i = 0`` is infinite, entries at
    0 get 0 too; ``abs`` gives ``0`` at ``0``; ``max``/``min``
    ties share the gradient. Norms based on singular values use the subgradient the SVD
    picks.

    Example:
        >>> import numpy as np, funcgrad, funcgrad.numpy as fnp
        >>> float(fnp.linalg.norm(np.array([3., 4.])))
        5.0
        >>> funcgrad.grad(fnp.linalg.norm)(np.zeros(2))
        array([0., 0.])
    """
    x = _as_inexact(x, "norm")
    nd = x.ndim
    if axis is None:
        if ord is None:
            out = _vector_norm(_shape.ravel(x), None, (0,), False)
            return _shape.reshape(out, (1,) * nd) if keepdims else out
        if nd == 1:
            return _vector_norm(x, ord, (0,), keepdims)
        if nd == 2:
            return _matrix_norm(x, ord, (0, 1), keepdims)
        raise FuncgradValueError(
            f"linalg.norm: ord={ord!r} with axis=None needs a 1-D or 2-D array, got "
            f"{dtype_name(x)}; pass axis")
    axes = axis if isinstance(axis, (tuple, list)) else (axis,)
    axes = tuple(_shape.normalize_axis(ax, nd, "linalg.norm") for ax in axes)
    if len(axes) == 1:
        return _vector_norm(x, ord, axes, keepdims)
    if len(axes) == 2:
        if axes[0] == axes[1]:
            raise FuncgradValueError(f"linalg.norm: duplicate axes {axis!r}")
        return _matrix_norm(x, ord, axes, keepdims)
    raise FuncgradValueError(f"linalg.norm: axis must be an int or a pair, got {axis!r}")


def vector_norm(x, /, *, axis=None, keepdims=False, ord=2):
    """Vector norm over ``axis`` (all elements when None; an int or a tuple), as NumPy 2's
    ``linalg.vector_norm``. ``ord``: any number, ``inf`` or ``-inf``; see :func:`norm`."""
    x = _as_inexact(x, "vector_norm")
    axes = _shape.normalize_axes(axis, x.ndim, "linalg.vector_norm")
    return _vector_norm(x, ord, axes, keepdims)


def matrix_norm(x, /, *, keepdims=False, ord="fro"):
    """Matrix norm over the last two axes, as NumPy 2's ``linalg.matrix_norm``; see
    :func:`norm` for the orders."""
    x = _as_matrix_stack(x, "matrix_norm", square=False)
    return _matrix_norm(x, ord, (x.ndim - 2, x.ndim - 1), keepdims)


def cond(x, p=None):
    """Condition number. ``p`` None/2/-2 use singular values; other orders compute
    ``norm(x, p) * norm(inv(x), p)``."""
    x = _as_matrix_stack(x, "cond", square=p not in (None, 2, -2))
    if p in (None, 2, -2):
        s = svdvals(x)
        r = s[..., 0] / s[..., -1]
        return r if p != -2 else 1 / r
    return norm(x, p, axis=(-2, -1)) * norm(inv(x), p, axis=(-2, -1))


def matrix_rank(A, tol=None, hermitian=False, *, rtol=None):
    """Rank by SVD (no derivative); ``tol``/``rtol`` as in NumPy."""
    A = _as_inexact(A, "matrix_rank")
    if isinstance(A, Tracer):
        A = A._concrete("linalg.matrix_rank")
    return np.linalg.matrix_rank(A, tol=tol, hermitian=hermitian, rtol=rtol)


# ---- composites --------------------------------------------------------------------------
def matrix_transpose(x, /):
    """Transpose of the last two axes."""
    return _T(_as_matrix_stack(x, "matrix_transpose", square=False))


def diagonal(x, /, *, offset=0):
    """The ``offset`` diagonal of the last two axes (NumPy 2's ``linalg.diagonal``)."""
    x = _as_matrix_stack(x, "diagonal", square=False)
    m, n = x.shape[-2:]
    k = max(0, min(m + min(offset, 0), n - max(offset, 0)))
    i = np.arange(k) + max(-offset, 0)
    return x[..., i, i + offset]


def trace(x, /, *, offset=0, dtype=None):
    """Sum of the ``offset`` diagonal of the last two axes (NumPy 2's ``linalg.trace``)."""
    d = diagonal(x, offset=offset)
    return _sum(d, axis=-1, dtype=dtype)


def matrix_power(a, n):
    """``a`` to the integer power ``n`` by repeated squaring (``n < 0`` inverts first;
    ``n == 0`` gives the identity, a constant)."""
    a = _as_matrix_stack(a, "matrix_power")
    if isinstance(n, Tracer) or not isinstance(n, (int, np.integer)):
        raise FuncgradTypeError(f"linalg.matrix_power: exponent must be an int, got {n!r}")
    n = int(n)
    if n == 0:
        return _xp_of(a).broadcast_to(_xp_of(a).eye(a.shape[-1], dtype=a.dtype), a.shape).copy()
    if n < 0:
        a = inv(a)
        n = -n
    result = None
    base = a
    while True:
        if n & 1:
            result = base if result is None else matmul(result, base)
        n >>= 1
        if not n:
            return result
        base = matmul(base, base)


def multi_dot(arrays, *, out=None):
    """Chained matrix product with the cheapest multiplication order (opt_einsum's path).

    The first array may be 1-D (a row vector) and the last 1-D (a column vector); the
    others are 2-D, as in NumPy."""
    if out is not None:
        raise FuncgradTypeError("linalg.multi_dot: out= is not supported; use the result")
    arrays = [_shape._as_array(a) for a in arrays]
    if len(arrays) < 2:
        raise FuncgradValueError("linalg.multi_dot: needs at least two arrays")
    letters = string.ascii_letters
    subs = []
    for i, a in enumerate(arrays):
        first, last = i == 0, i == len(arrays) - 1
        if a.ndim == 1 and (first or last):
            subs.append(letters[i + 1] if first else letters[i])
        elif a.ndim == 2:
            subs.append(letters[i] + letters[i + 1])
        else:
            raise FuncgradValueError(
                f"linalg.multi_dot: array {i} is {dtype_name(a)}; the first and last may be "
                "1-D, all arrays must otherwise be 2-D")
    out_sub = (subs[0][0] if len(subs[0]) == 2 else "") + (
        subs[-1][-1] if len(subs[-1]) == 2 else "")
    return einsum(",".join(subs) + "->" + out_sub, *arrays)


def vecdot(x1, x2, /, *, axis=-1):
    """``sum(conj(x1) * x2, axis)`` with broadcasting."""
    return _sum(_conj(_shape._as_array(x1)) * x2, axis=axis)


def outer(x1, x2, /):
    """Outer product of two 1-D arrays."""
    x1, x2 = _shape._as_array(x1), _shape._as_array(x2)
    if x1.ndim != 1 or x2.ndim != 1:
        raise FuncgradValueError(
            f"linalg.outer: both inputs must be 1-D, got {dtype_name(x1)} and {dtype_name(x2)}")
    return _outer(x1, x2)


def tensorinv(a, ind=2):
    """Inverse of an N-d array seen as a matrix: the first ``ind`` axes index rows."""
    a = _shape._as_array(a)
    rows = a.shape[:ind]
    cols = a.shape[ind:]
    m = int(np.prod(rows))
    if m != int(np.prod(cols)):
        raise FuncgradValueError(
            f"linalg.tensorinv: {dtype_name(a)} with ind={ind} is not square "
            f"({m} x {int(np.prod(cols))})")
    return _shape.reshape(inv(_shape.reshape(a, (m, -1))), cols + rows)


def tensorsolve(a, b, axes=None):
    """Solve ``tensordot(a, x, axes=x.ndim) = b`` for ``x``."""
    a = _shape._as_array(a)
    b = _shape._as_array(b)
    if axes is not None:
        axes = [_shape.normalize_axis(ax, a.ndim, "linalg.tensorsolve") for ax in axes]
        rest = [i for i in range(a.ndim) if i not in axes]
        a = _shape.transpose(a, rest + axes)
    xshape = a.shape[b.ndim:]
    m = int(np.prod(b.shape))
    k = int(np.prod(xshape))
    if m != k:
        raise FuncgradValueError(
            f"linalg.tensorsolve: a {dtype_name(a)} is not square for b {dtype_name(b)}")
    return _shape.reshape(solve(_shape.reshape(a, (m, k)), _shape.ravel(b)), xshape)

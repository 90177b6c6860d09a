"""SciPy's linear algebra (``funcgrad.scipy.linalg``): the LU primitive with its rules,
and composites of differentiable operations for the rest (their derivatives follow from
their parts). SciPy is not needed; where it is installed, ``lu`` and ``sqrtm`` use its
kernels for the values.

Real float32/float64 matrices (complex where noted); integers become float64. Stacks of
matrices are accepted where NumPy's ``linalg`` accepts them (``lu``, ``expm``,
``solve_triangular`` with a stacked ``a``), otherwise 2-D.
"""
from __future__ import annotations

import math

import numpy as np

from ..core import Primitive, Tracer, bind, def_rules
from ..errors import FuncgradValueError
from . import contractions as _c
from . import creation as _cr
from . import elementwise as _e
from . import misc as _misc
from . import reductions as _r
from . import shape as _s
from .barriers import stop_gradient
from .linalg_decomp import cholesky as _np_cholesky
from .linalg_solve import (_T, _as_matrix_stack, _matrix_batch, _solve, _solve_right, _tril,
                           solve)


def _mat(a, op, square=True):
    a = _as_matrix_stack(a, op, square=square)
    return a


def _vec_or_mat(b, op):
    b = _s._as_array(b)
    if b.dtype.kind not in "fc":
        b = _s.astype(b, np.float64)
    return b


def _rhs(a, b, op):
    """``b`` as a matrix (a vector becomes one column) and whether to drop it again."""
    if b.ndim == 0 or b.shape[0] != a.shape[-1]:
        raise FuncgradValueError(
            f"scipy.linalg.{op}: a of shape {tuple(a.shape)} and b of shape "
            f"{tuple(b.shape)} do not match (b needs {a.shape[-1]} rows)")
    return (b[:, None], True) if b.ndim == 1 else (b, False)


def _common(a, b):
    dt = np.result_type(a.dtype, b.dtype)
    return (_s.astype(a, dt) if a.dtype != dt else a), (_s.astype(b, dt) if b.dtype != dt
                                                       else b)


# ---- triangular solves --------------------------------------------------------------------
def _triangle(a, lower, unit_diagonal):
    n = a.shape[-1]
    t = _tril(a) if lower else _T(_tril(_T(a)))
    if unit_diagonal:
        eye = _cr.eye(n, dtype=a.dtype)
        t = t * (1 - eye) + eye
    return t


def solve_triangular(a, b, trans=0, lower=False, unit_diagonal=False, overwrite_b=False,
                     check_finite=True):
    """Solve ``op(a) x = b`` for a triangular ``a`` (only its ``lower`` or upper triangle
    is read; ``unit_diagonal`` takes the diagonal as ones), as SciPy.

    ``trans``: 0/'N' (``a``), 1/'T' (``a.T``), 2/'C' (``a.conj().T``). ``b``: ``(M,)`` or
    ``(M, K)``. Differentiable in ``a`` (its read triangle only) and ``b``; computed as a
    general solve of the triangle, so it is exact where ``a`` is well conditioned.
    ``overwrite_b``/``check_finite`` are accepted and ignored.

    Raises FuncgradValueError for mismatched shapes or an unknown ``trans``.

    Example:
        >>> import numpy as np
        >>> solve_triangular(np.array([[2.0, 1.0], [0.0, 4.0]]), np.array([3.0, 4.0]))
        array([1., 1.])
    """
    op = "solve_triangular"
    a = _mat(a, op)
    b = _vec_or_mat(b, op)
    a, b = _common(a, b)
    trans = {0: 0, "N": 0, 1: 1, "T": 1, 2: 2, "C": 2}.get(trans)
    if trans is None:
        raise FuncgradValueError(f"scipy.linalg.{op}: trans must be 0, 1, 2, 'N', 'T' or 'C'")
    if a.ndim != 2:
        raise FuncgradValueError(f"scipy.linalg.{op}: a must be 2-D, got shape {tuple(a.shape)}")
    bm, vec = _rhs(a, b, op)
    t = _triangle(a, lower, unit_diagonal)
    if trans:
        t = _T(t)
        if trans == 2 and t.dtype.kind == "c":
            t = _e.conj(t)
    x = solve(t, bm)
    return x[:, 0] if vec else x


# ---- Cholesky -------------------------------------------------------------------------------
def cholesky(a, lower=False, overwrite_a=False, check_finite=True):
    """SciPy's Cholesky factor: upper ``U`` with ``a = U^H U`` by default, lower ``L``
    with ``lower=True``. Differentiable (through ``numpy.linalg.cholesky``)."""
    lo = _np_cholesky(_mat(a, "cholesky"))
    return lo if lower else _e.conj(_T(lo))


def cho_factor(a, lower=False, overwrite_a=False, check_finite=True):
    """``(c, lower)`` for :func:`cho_solve`: ``c`` is the Cholesky factor (the other
    triangle holds zeros, where SciPy leaves arbitrary values)."""
    return cholesky(a, lower=lower), bool(lower)


def cho_solve(c_and_lower, b, overwrite_b=False, check_finite=True):
    """Solve ``a x = b`` from ``cho_factor(a)``'s ``(c, lower)``; differentiable in ``c``
    (its triangle) and ``b``.

    Example:
        >>> import numpy as np
        >>> a = np.array([[4.0, 2.0], [2.0, 3.0]])
        >>> cho_solve(cho_factor(a), np.array([6.0, 5.0]))
        array([1., 1.])
    """
    c, lower = c_and_lower
    if lower:
        y = solve_triangular(c, b, lower=True)
        return solve_triangular(c, y, trans=2, lower=True)
    y = solve_triangular(c, b, trans=2, lower=False)
    return solve_triangular(c, y, lower=False)


# ---- LU --------------------------------------------------------------------------------------
def _lu_np(a):
    """``(perm, L, U)`` of one square matrix by Gaussian elimination with partial pivoting
    (the first largest pivot, as LAPACK): ``a[perm] = L @ U``."""
    n = a.shape[0]
    u = a.copy()
    lo = np.zeros_like(a)
    perm = np.arange(n)
    for k in range(n):
        p = k + int(np.argmax(np.abs(u[k:, k])))
        if p != k:
            u[[k, p]] = u[[p, k]]
            lo[[k, p]] = lo[[p, k]]
            perm[[k, p]] = perm[[p, k]]
        piv = u[k, k]
        if piv != 0:
            f = u[k + 1:, k] / piv
            lo[k + 1:, k] = f
            u[k + 1:, k:] -= f[:, None] * u[k, k:]
    lo += np.eye(n, dtype=a.dtype)
    return perm, lo, np.triu(u)


def _lu_impl(a):
    """``(P, L, U)`` with ``a = P @ L @ U`` (SciPy's convention), for a stack."""
    batch = a.shape[:-2]
    n = a.shape[-1]
    flat = a.reshape((-1, n, n))
    ps, ls, us = [], [], []
    for m in flat:
        perm, lo, up = _lu_np(m)
        p = np.zeros((n, n), a.dtype)
        p[perm, np.arange(n)] = 1           # a[perm] = L U  ->  a = P L U
        ps.append(p)
        ls.append(lo)
        us.append(up)
    shape = batch + (n, n)
    return (np.stack(ps).reshape(shape), np.stack(ls).reshape(shape),
            np.stack(us).reshape(shape))


lu_p = Primitive("lu", _lu_impl, multiple_results=True)


def _strict_lower(x):
    return _tril(x, -1)


def _upper(x):
    return _T(_tril(_T(x)))


def _lu_jvp(primals, tangents):
    (a,), (t,) = primals, tangents
    p, lo, up = bind(lu_p, a)
    if t is None:
        return [p, lo, up], [None, None, None]
    # P^T dA = dL U + L dU  ->  F = L^{-1} P^T dA U^{-1}: dL = L sl(F), dU = u(F) U
    f = _solve_right(_solve(lo, _c.matmul(_T(p), t)), up)
    return [p, lo, up], [_cr.zeros_like(p), _c.matmul(lo, _strict_lower(f)),
                         _c.matmul(_upper(f), up)]


def _lu_vjp(g, ans, args, wanted):
    _, gl, gu = g
    p, lo, up = ans
    m = 0
    if gl is not None:
        m = m + _strict_lower(_c.matmul(_T(lo), gl))
    if gu is not None:
        m = m + _upper(_c.matmul(gu, _T(up)))
    # gA = P L^{-T} M U^{-T}
    return [_c.matmul(p, _solve_right(_solve(_T(lo), m), _T(up)))]


def_rules(lu_p, jvp=_lu_jvp, vjp=_lu_vjp, batch=_matrix_batch(lu_p))


def lu(a, permute_l=False, overwrite_a=False, check_finite=True, p_indices=False):
    """LU decomposition with partial pivoting, as SciPy: ``(P, L, U)`` with ``a = P @ L
    @ U`` (``permute_l=True``: ``(P @ L, U)``; ``p_indices=True``: ``P`` as the row
    indices ``perm`` with ``a = L[perm] @ U``).

    Square matrices or stacks ``(..., N, N)``. Differentiable where ``U`` is invertible
    (``a`` non-singular); the permutation has derivative zero (pivots are fixed by the
    values).

    Example:
        >>> import numpy as np
        >>> p, l, u = lu(np.array([[1.0, 2.0], [3.0, 4.0]]))
        >>> bool(np.allclose(p @ l @ u, [[1, 2], [3, 4]]))
        True
    """
    a = _mat(a, "lu")
    p, lo, up = bind(lu_p, a)
    if permute_l:
        return _c.matmul(p, lo), up
    if p_indices:       # a = L[perm] @ U
        return _r.argmax(stop_gradient(p), axis=-1), lo, up
    return p, lo, up


def lu_factor(a, overwrite_a=False, check_finite=True):
    """``(lu, piv)`` as SciPy: ``L`` (below the diagonal, unit diagonal implied) and
    ``U`` packed in one matrix, and LAPACK's row interchanges ``piv`` (row ``i`` was
    swapped with row ``piv[i]``). Differentiable in ``lu``; ``piv`` is an int array."""
    a = _mat(a, "lu_factor")
    if a.ndim != 2:
        raise FuncgradValueError(
            f"scipy.linalg.lu_factor: a must be 2-D, got shape {tuple(a.shape)}")
    p, lo, up = bind(lu_p, a)
    n = a.shape[-1]
    packed = _strict_lower(lo) + up
    # the permutation as row indices, then as LAPACK's successive interchanges
    pv = np.asarray(p._concrete("lu_factor's pivots") if isinstance(p, Tracer) else p)
    perm = list(np.argmax(pv, axis=0))      # a[perm] = L U
    cur = list(range(n))
    where_ = list(range(n))                 # where_[row] = its position in cur
    piv = np.zeros(n, np.int32)
    for i in range(n):
        j = where_[perm[i]]
        piv[i] = j
        ri, rj = cur[i], cur[j]
        cur[i], cur[j] = rj, ri
        where_[rj], where_[ri] = i, j
    return packed, piv


def lu_solve(lu_and_piv, b, trans=0, overwrite_b=False, check_finite=True):
    """Solve ``a x = b`` (``trans=1``: ``a^T x = b``; 2: ``a^H x = b``) from
    :func:`lu_factor`'s ``(lu, piv)``; differentiable in ``lu`` and ``b``.

    Example:
        >>> import numpy as np
        >>> a = np.array([[1.0, 2.0], [3.0, 4.0]])
        >>> lu_solve(lu_factor(a), np.array([5.0, 11.0]))
        array([1., 2.])
    """
    lu_, piv = lu_and_piv
    lu_ = _mat(lu_, "lu_solve")
    b = _vec_or_mat(b, "lu_solve")
    n = lu_.shape[-1]
    piv = np.asarray(piv)
    perm = np.arange(n)
    for i, j in enumerate(piv):
        perm[[i, j]] = perm[[j, i]]
    trans = {0: 0, "N": 0, 1: 1, "T": 1, 2: 2, "C": 2}[trans]
    if trans == 0:
        y = solve_triangular(lu_, b[perm], lower=True, unit_diagonal=True)
        return solve_triangular(lu_, y, lower=False)
    y = solve_triangular(lu_, b, trans=trans, lower=False)
    x = solve_triangular(lu_, y, trans=trans, lower=True, unit_diagonal=True)
    inv = np.argsort(perm)
    return x[inv]


# ---- matrix functions ---------------------------------------------------------------------
_PADE13 = (64764752532480000., 32382376266240000., 7771770303897600., 1187353796428800.,
           129060195264000., 10559470521600., 670442572800., 33522128640., 1323241920.,
           40840800., 960960., 16380., 182., 1.)
_THETA13 = 5.371920351148152


def expm(A):
    """The matrix exponential, by the scaling-and-squaring Padé(13) method (Higham
    2005): accurate to about 1e-15 relative in float64. ``A``: ``(N, N)`` or a stack.
    Differentiable (the derivative of the same approximant, to any order); the number
    of squarings is chosen from ``A``'s concrete 1-norm (so not under ``jit`` or
    ``vmap``, where it raises on the abstract value). float32 stays float32.

    Example:
        >>> import numpy as np
        >>> float(expm(np.array([[0.0, 1.0], [0.0, 0.0]]))[0, 1])
        1.0
    """
    a = _mat(A, "expm")
    n = a.shape[-1]
    if n == 0:
        return a
    av = stop_gradient(a)
    if isinstance(av, Tracer):
        av = av._concrete("choosing expm's number of squarings")
    norm = float(np.max(np.sum(np.abs(np.asarray(av)), axis=-2))) if av.size else 0.0
    s = max(0, int(math.ceil(math.log2(norm / _THETA13)))) if norm > _THETA13 else 0
    if not math.isfinite(norm):
        s = 0
    a = a * (0.5 ** s) if s else a
    eye = _cr.eye(n, dtype=a.dtype)
    a2 = _c.matmul(a, a)
    a4 = _c.matmul(a2, a2)
    a6 = _c.matmul(a4, a2)
    b = _PADE13
    u = _c.matmul(a, _c.matmul(a6, b[13] * a6 + b[11] * a4 + b[9] * a2)
                  + b[7] * a6 + b[5] * a4 + b[3] * a2 + b[1] * eye)
    v = (_c.matmul(a6, b[12] * a6 + b[10] * a4 + b[8] * a2) + b[6] * a6 + b[4] * a4
         + b[2] * a2 + b[0] * eye)
    r = solve(v - u, v + u)
    for _ in range(s):
        r = _c.matmul(r, r)
    return r


def solve_sylvester(a, b, q):
    """Solve ``a x + x b = q`` for ``x`` (``a``: ``(M, M)``, ``b``: ``(N, N)``, ``q``:
    ``(M, N)``), as one linear system over ``vec(x)``: exact and differentiable in all
    three, but ``O((MN)^3)``: for small matrices.

    Raises FuncgradValueError for mismatched shapes.
    """
    op = "solve_sylvester"
    a, b, q = _mat(a, op), _mat(b, op), _s._as_array(q)
    if a.ndim != 2 or b.ndim != 2 or q.shape != (a.shape[0], b.shape[0]):
        raise FuncgradValueError(
            f"scipy.linalg.{op}: a {tuple(a.shape)}, b {tuple(b.shape)} and q "
            f"{tuple(q.shape)} must be (M, M), (N, N) and (M, N)")
    m, n = a.shape[0], b.shape[0]
    dt = np.result_type(a.dtype, b.dtype, q.dtype)
    if dt.kind not in "fc":
        dt = np.dtype(np.float64)
    a, b, q = (_s.astype(v, dt) if v.dtype != dt else v for v in (a, b, q))
    # row-major vec: vec(a x) = (a kron I) vec(x), vec(x b) = (I kron b^T) vec(x)
    k = _misc.kron(a, _cr.eye(n, dtype=dt)) + _misc.kron(_cr.eye(m, dtype=dt), _T(b))
    return _s.reshape(solve(k, _s.reshape(q, (m * n,))), (m, n))


def _sqrtm_impl(a):
    try:
        import scipy.linalg as sl
        r = sl.sqrtm(a)
    except ImportError:         # pragma: no cover - SciPy is optional
        w, v = np.linalg.eig(a)
        r = (v * np.sqrt(w.astype(complex))) @ np.linalg.inv(v)
    if a.dtype.kind == "f":
        if np.iscomplexobj(r) and np.allclose(r.imag, 0, atol=1e-12 * max(1.0, np.abs(r).max())):
            r = r.real
        if np.iscomplexobj(r):
            raise FuncgradValueError(
                "scipy.linalg.sqrtm: this real matrix has no real square root (a negative "
                "real eigenvalue); pass a complex matrix")
    return np.asarray(r, dtype=a.dtype)


sqrtm_p = Primitive("sqrtm", _sqrtm_impl)
def_rules(sqrtm_p,
          # X dX + dX X = dA
          jvp=(lambda t, ans, a: solve_sylvester(ans, ans, t),),
          # the adjoint: X^T G' + G' X^T = G
          vjp=(lambda g, ans, a: solve_sylvester(_T(ans), _T(ans), g),))


def sqrtm(A, disp=True, blocksize=64):
    """The principal matrix square root ``X`` (``X @ X = A``) of a 2-D matrix (SciPy's
    kernel where installed). Real input must have a real root (FuncgradValueError
    otherwise). Derivative from the Sylvester equation ``X dX + dX X = dA`` (exists where
    no two eigenvalues of ``X`` sum to 0; each solve is ``O(N^6)``: small matrices).
    """
    a = _mat(A, "sqrtm")
    if a.ndim != 2:
        raise FuncgradValueError(f"scipy.linalg.sqrtm: A must be 2-D, got shape {tuple(a.shape)}")
    return bind(sqrtm_p, a)


def solve_banded(l_and_u, ab, b, overwrite_ab=False, overwrite_b=False, check_finite=True):
    """Solve ``a x = b`` for a banded ``a`` in LAPACK's band storage, as SciPy:
    ``ab[u + i - j, j] == a[i, j]`` with ``(l, u)`` sub- and super-diagonals. Expands to
    the dense matrix and solves (differentiable in ``ab`` and ``b``; entries of ``ab``
    outside the band get zero gradient).

    Raises FuncgradValueError when ``ab`` does not have ``l + u + 1`` rows.

    Example:
        >>> import numpy as np
        >>> ab = np.array([[0.0, 1.0, 1.0], [2.0, 2.0, 2.0], [1.0, 1.0, 0.0]])
        >>> solve_banded((1, 1), ab, np.array([3.0, 4.0, 3.0]))
        array([1., 1., 1.])
    """
    lo, up = (int(v) for v in l_and_u)
    ab = _s._as_array(ab)
    if ab.dtype.kind not in "fc":
        ab = _s.astype(ab, np.float64)
    if ab.ndim != 2 or ab.shape[0] != lo + up + 1:
        raise FuncgradValueError(
            f"scipy.linalg.solve_banded: ab of shape {tuple(ab.shape)} must have l + u + 1 "
            f"= {lo + up + 1} rows")
    n = ab.shape[1]
    i, j = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    row = up + i - j
    inside = (row >= 0) & (row <= lo + up)
    dense = _e.where(inside, ab[np.clip(row, 0, lo + up), j], 0)
    b = _vec_or_mat(b, "solve_banded")
    dense, b = _common(dense, b)
    return solve(dense, b)

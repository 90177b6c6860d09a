"""Linear algebra, part 1: the helpers the linear-algebra rules share, and the solves
(``solve inv det slogdet pinv lstsq``), each primitive with its rules side by side. The
decompositions are in ``linalg_decomp.py``, the norms and composites in
``linalg_norms.py``; ``funcgrad.numpy.linalg`` exports the three.

Every function works on stacks of matrices (leading dimensions are batch dimensions, as in
NumPy). The rules are written with funcgrad operations, so derivatives of any order work,
and reverse rules are plain transposes of the forward maps (JAX's convention for complex
numbers: the pairing is ``real(sum(a * b))``, no conjugation).

Where a derivative does not exist, this is what you get (also said in each docstring):

* ``inv solve slogdet pinv qr cholesky`` at a singular (or, for ``cholesky``, not
  positive-definite) matrix: the derivative needs a solve with that matrix, which raises
  ``numpy.linalg.LinAlgError`` (a ``ValueError``). ``det`` is the exception: its
  derivative, the adjugate, exists everywhere and is computed there too (from the SVD);
  only its second derivative at a singular matrix raises.
* ``eigh`` with repeated eigenvalues, ``svd`` with repeated singular values: the
  eigenvectors (singular vectors) are not unique and have no derivative. The terms
  ``1 / (w_j - w_i)`` for equal values are taken as 0, so results stay finite (no inf or
  NaN). What is still exact: the derivatives of the eigenvalues (singular values) along
  perturbations that do not split the repeated ones, e.g. of symmetric functions of them
  such as ``sum(w**2)`` or ``trace``. What is not: anything through the eigenvectors,
  including basis-independent ``V f(w) V^H`` (its coupling inside the repeated eigenspace
  is dropped; the exact derivative there is the divided difference ``f'(w)``).
  ``svd`` also takes ``1/s`` as 0 for zero singular values (this affects only
  ``U``/``Vh`` of a rank-deficient matrix).
* Complex eigenvectors and singular vectors are defined up to a phase; the derivative
  chooses the phase that keeps ``v^H dv`` real on the diagonal (as JAX does).
"""
from __future__ import annotations

from __future__ import annotations

import collections

import numpy as np

from ..backend import array_module, dtype_name
from ..core import Primitive, Tracer, bind, def_rules
from ..errors import FuncgradTypeError, FuncgradValueError
from . import shape as _shape
from .creation import _xp_of
from .contractions import einsum, matmul
from .elementwise import conj, imag, real, where

EighResult = collections.namedtuple("EighResult", ["eigenvalues", "eigenvectors"])
SVDResult = collections.namedtuple("SVDResult", ["U", "S", "Vh"])
QRResult = collections.namedtuple("QRResult", ["Q", "R"])
SlogdetResult = collections.namedtuple("SlogdetResult", ["sign", "logabsdet"])


# ---- small helpers (all funcgrad operations, so rules stay differentiable) -------------
def _T(x):
    return _shape.swapaxes(x, -1, -2)


def _cplx(x):
    return x.dtype.kind == "c"


def _conj(x):
    return conj(x) if _cplx(x) else x


def _H(x):
    return _conj(_T(x))


def _diag(x):
    return einsum("...ii->...i", x)


def _trace(x):
    return einsum("...ii->...", x)


def _diag_embed(v, dtype=None):
    n = v.shape[-1]
    return _shape.expand_dims(v, -1) * _xp_of(v).eye(n, dtype=dtype or v.dtype)


def _tril(x, k=0):
    n, m = x.shape[-2:]
    return where(_xp_of(x).tri(n, m, k, dtype=bool), x, 0)


def _real_dtype(dtype):
    return np.empty(0, dtype).real.dtype


def _col(v):
    """``v[..., None, :]``: scales the columns of a matrix (``M @ diag(v)``)."""
    return _shape.expand_dims(v, -2)


def _row(v):
    """``v[..., :, None]``: scales the rows of a matrix (``diag(v) @ M``)."""
    return _shape.expand_dims(v, -1)


def _i_times(x, cdtype):
    """``1j * x`` for a real ``x``, as the complex dtype ``cdtype`` (a 0-d array factor, so
    that NumPy scalars never meet a Python complex and become a Python ``complex``)."""
    return x * np.array(1j, dtype=cdtype)


def _safe_inv(v):
    """``1/v`` with ``1/0`` taken as 0."""
    zero = v == 0
    return where(zero, 0, 1 / where(zero, 1, v))


def _gap_inverse(d):
    """``1/d`` off the diagonal and where ``d != 0``; 0 elsewhere (repeated values)."""
    return _safe_inv(d)


def _solve(a, b):
    return bind(solve_p, a, b)


def _solve_right(b, a):
    """``b @ inv(a)`` as a solve: ``(a^T)^{-1} b^T`` transposed."""
    return _T(_solve(_T(a), _T(b)))


def _as_matrix_stack(a, op, square=True, min_ndim=2):
    """Check and convert a linear-algebra argument (ints become float64)."""
    a = _shape._as_array(a)
    if a.ndim < min_ndim:
        raise FuncgradValueError(
            f"linalg.{op}: got {dtype_name(a)}; it needs an array of at least {min_ndim} "
            "dimensions (a matrix, or a stack of matrices in the last two axes)")
    if square and a.shape[-1] != a.shape[-2]:
        raise FuncgradValueError(
            f"linalg.{op}: the last two dimensions must be square, got {dtype_name(a)}")
    kind = a.dtype.kind
    if kind in "biu":
        a = _shape.astype(a, np.float64)
    elif kind not in "fc":
        raise FuncgradTypeError(f"linalg.{op}: unsupported dtype in {dtype_name(a)}")
    elif a.dtype.itemsize < 4 or (kind == "c" and a.dtype.itemsize < 8):
        raise FuncgradTypeError(
            f"linalg.{op}: {dtype_name(a)} is not supported by LAPACK; cast it with "
            ".astype(numpy.float32)")
    elif a.dtype.itemsize > 16 or (kind == "f" and a.dtype.itemsize > 8):
        raise FuncgradTypeError(
            f"linalg.{op}: {dtype_name(a)} (extended precision) is not supported; cast it "
            "with .astype(numpy.float64)")
    return a


# ---- batching (vmap): every primitive already works on stacks of matrices ---------------
def _front(v, d):
    return v if d is None or d == 0 else _shape.moveaxis(v, d, 0)


def _matrix_batch(prim):
    def rule(vals, dims, **params):
        (v,), (d,) = vals, dims
        out = bind(prim, _front(v, d), **params)
        return (out, [0] * len(out)) if prim.multiple_results else (out, 0)
    return rule


# ---- solve -------------------------------------------------------------------------------
def _lapack(op, fn, hint):
    """``fn`` with NumPy's terse LinAlgError ("Singular matrix") explained."""
    def impl(*args):
        try:
            return fn(*args)
        except np.linalg.LinAlgError as e:
            raise np.linalg.LinAlgError(
                f"linalg.{op} of {dtype_name(args[0])}: {e}. {hint}") from None
    return impl


_SINGULAR = ("The matrix (or one in the stack) is singular to working precision; this "
             "also happens in the derivatives of inv, solve, det, slogdet, qr and "
             "cholesky, which solve with the same matrix. Regularise it (e.g. add a small "
             "multiple of the identity) or use pinv/lstsq.")

solve_p = Primitive("solve", _lapack("solve", np.linalg.solve, _SINGULAR))


def _solve_vjp(g, x, args, wanted):
    a, b = args
    gb = _solve(_T(a), g)
    res = []
    for i in wanted:
        res.append(_shape.unbroadcast(-matmul(gb, _T(x)), a) if i == 0
                   else _shape.unbroadcast(gb, b))
    return res


def _solve_batch(vals, dims):
    """Batch axis first, per-example batch ranks aligned so that they broadcast."""
    rank = max(len(v.shape) - (d is not None) for v, d in zip(vals, dims))
    moved = []
    for v, d in zip(vals, dims):
        if d is not None:
            v = _front(v, d)
            extra = rank - (len(v.shape) - 1)
            if extra:
                v = _shape.reshape(v, (v.shape[0],) + (1,) * extra + tuple(v.shape[1:]))
        moved.append(v)
    return bind(solve_p, *moved), 0


def_rules(solve_p,
          jvp=(lambda t, x, a, b: -_solve(a, matmul(t, x)),
               lambda t, x, a, b: _solve(a, t)),
          vjp=_solve_vjp,
          batch=_solve_batch)


def solve(a, b):
    """Solve ``a @ x = b`` for ``x``.

    ``a`` has shape ``(..., M, M)``; ``b`` is a vector ``(M,)`` or a stack of matrices
    ``(..., M, K)`` (NumPy 2 semantics); batch dimensions broadcast. Differentiable in
    both arguments; float32 stays float32, complex works. Raises ``LinAlgError`` for a
    singular ``a`` (the derivative needs the same solve).

    Example:
        >>> import numpy as np, funcgrad.numpy as fnp
        >>> fnp.linalg.solve(np.array([[2., 0.], [0., 4.]]), np.array([2., 2.]))
        array([1. , 0.5])
    """
    a = _as_matrix_stack(a, "solve")
    b = _shape._as_array(b)
    if b.dtype.kind in "biu":
        b = _shape.astype(b, np.float64)
    n = a.shape[-1]
    if b.ndim == 1:
        if b.shape[0] != n:
            raise FuncgradValueError(
                f"linalg.solve: a is {dtype_name(a)} but b is {dtype_name(b)}; b needs "
                f"{n} rows")
        x = _solve(a, _shape.reshape(b, (n, 1)))
        return _shape.reshape(x, x.shape[:-1])
    if b.ndim == 0 or b.shape[-2] != n:
        raise FuncgradValueError(
            f"linalg.solve: a is {dtype_name(a)} but b is {dtype_name(b)}; b must be a "
            f"vector of length {n} or a stack of matrices with {n} rows (..., {n}, K)")
    try:
        np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    except ValueError:
        raise FuncgradValueError(
            f"linalg.solve: batch dimensions of a {dtype_name(a)} and b {dtype_name(b)} "
            "do not broadcast") from None
    return _solve(a, b)


# ---- inv ---------------------------------------------------------------------------------
inv_p = Primitive("inv", _lapack("inv", np.linalg.inv, _SINGULAR))
def_rules(inv_p,
          jvp=(lambda t, ainv, a: -matmul(ainv, matmul(t, ainv)),),
          vjp=(lambda g, ainv, a: -matmul(_T(ainv), matmul(g, _T(ainv))),),
          batch=_matrix_batch(inv_p))


def inv(a):
    """Inverse of a square matrix (or of each matrix in a stack ``(..., M, M)``).

    Derivative ``-inv(a) @ da @ inv(a)``. Raises ``LinAlgError`` for a singular matrix.

    Example:
        >>> import numpy as np, funcgrad.numpy as fnp
        >>> fnp.linalg.inv(np.array([[2., 0.], [0., 4.]]))
        array([[0.5 , 0.  ],
               [0.  , 0.25]])
    """
    return bind(inv_p, _as_matrix_stack(a, "inv"))


# ---- det and slogdet ---------------------------------------------------------------------
def _adjugate_svd(a, xp):
    """adj(a) through the SVD ``a = u diag(s) vh``: adj(a) = adj(vh) adj(diag(s)) adj(u),
    where adj(diag(s)) holds the products of all singular values but one (cumulative
    products from both ends: no division, so exact zeros are fine) and a unitary ``m`` has
    adj(m) = det(m) m^H. Well defined at singular matrices."""
    u, s, vh = xp.linalg.svd(a)
    ones = xp.ones(s.shape[:-1] + (1,), dtype=s.dtype)
    left = xp.concatenate([ones, xp.cumprod(s, axis=-1)[..., :-1]], axis=-1)
    right = xp.concatenate([xp.cumprod(s[..., ::-1], axis=-1)[..., :-1][..., ::-1], ones],
                           axis=-1)
    others = (left * right).astype(a.dtype)
    scale = (xp.linalg.det(u) * xp.linalg.det(vh))[..., None, None]
    vh_h, u_h = xp.swapaxes(vh, -1, -2), xp.swapaxes(u, -1, -2)
    if a.dtype.kind == "c":
        vh_h, u_h = xp.conj(vh_h), xp.conj(u_h)
    return scale * ((vh_h * others[..., None, :]) @ u_h)


def _adjugate_impl(a):
    """The adjugate ``det(a) * inv(a)`` (each matrix of a stack), also where ``a`` is
    singular and that product is undefined: there it comes from the SVD."""
    xp = array_module(a)
    d = xp.linalg.det(a)
    if bool(xp.all(d != 0)):
        try:
            with np.errstate(all="ignore"):
                r = d[..., None, None] * xp.linalg.inv(a)
            if bool(xp.all(xp.isfinite(r))):
                return r
        except np.linalg.LinAlgError:
            pass
    return _adjugate_svd(a, xp)


# adj(a) a = det(a) I gives d adj = (tr(adj da) I - adj da) inv(a): the adjugate's own
# derivative needs a solve, so second derivatives of det at a singular matrix still raise
adjugate_p = Primitive("adjugate", _adjugate_impl)
def_rules(adjugate_p,
          jvp=(lambda t, adj, a: _solve_right(
              _row(_row(_trace(matmul(adj, t)))) * _eye_like(a) - matmul(adj, t), a),),
          vjp=(lambda g, adj, a: _row(_row(einsum("...ij,...ij->...", g, bind(inv_p, a))))
               * _T(adj) - matmul(_T(adj), _solve_right(g, _T(a))),),
          batch=_matrix_batch(adjugate_p))


def _eye_like(a):
    return _xp_of(a).eye(a.shape[-1], dtype=a.dtype)


det_p = Primitive("det", np.linalg.det)
def_rules(det_p,
          jvp=(lambda t, d, a: _trace(matmul(bind(adjugate_p, a), t)),),
          vjp=(lambda g, d, a: _row(_row(g)) * _T(bind(adjugate_p, a)),),
          batch=_matrix_batch(det_p))


def det(a):
    """Determinant of a square matrix (or of each matrix in a stack).

    The derivative is the adjugate, ``det(a) * inv(a)^T`` where ``a`` is invertible; at a
    singular matrix it is computed from the SVD, so it exists there too (the derivative
    at ``[[1, 2], [2, 4]]`` is ``[[4, -2], [-2, 1]]``). Second derivatives at a singular
    matrix need a solve with it and raise ``LinAlgError``.

    Example:
        >>> import numpy as np, funcgrad, funcgrad.numpy as fnp
        >>> funcgrad.grad(fnp.linalg.det)(np.array([[1., 2.], [2., 4.]]))
        array([[ 4., -2.],
               [-2.,  1.]])
    """
    return bind(det_p, _as_matrix_stack(a, "det"))


def _slogdet_impl(a):
    sign, logabsdet = np.linalg.slogdet(a)
    return sign, logabsdet


slogdet_p = Primitive("slogdet", _slogdet_impl, multiple_results=True)


def _slogdet_jvp(primals, tangents):
    (a,), (t,) = primals, tangents
    sign, logdet = bind(slogdet_p, a)
    if t is None:
        return [sign, logdet], [None, None]
    tr = _trace(_solve(a, t))
    if _cplx(a):
        return [sign, logdet], [sign * _i_times(imag(tr), a.dtype), real(tr)]
    return [sign, logdet], [None, tr]


def _slogdet_vjp(g, ans, args, wanted):
    (a,) = args
    g_sign, g_logdet = g
    sign = ans[0]
    g_tr = g_logdet
    if _cplx(a):
        g_tr = g_logdet + _i_times(imag(g_sign * sign), a.dtype)
    return [_row(_row(g_tr)) * _T(bind(inv_p, a))]


def_rules(slogdet_p, jvp=_slogdet_jvp, vjp=_slogdet_vjp, batch=_matrix_batch(slogdet_p))


def slogdet(a):
    """Sign (or phase, for complex) and log of the absolute value of the determinant.

    Returns ``SlogdetResult(sign, logabsdet)``; ``sign`` has zero derivative for real
    input. Raises ``LinAlgError`` in the derivative of a singular matrix.

    Example:
        >>> import numpy as np, funcgrad.numpy as fnp
        >>> sign, logdet = fnp.linalg.slogdet(np.array([[-2., 0.], [0., 3.]]))
        >>> float(sign), round(float(logdet), 4)
        (-1.0, 1.7918)
    """
    sign, logabsdet = bind(slogdet_p, _as_matrix_stack(a, "slogdet"))
    return SlogdetResult(sign, logabsdet)


# ---- pinv, lstsq -------------------------------------------------------------------------
pinv_p = Primitive("pinv", lambda a, rcond: np.linalg.pinv(a, rcond=rcond))


def _eye(n, dtype):
    return np.eye(n, dtype=dtype)


def _pinv_jvp(t, p, a, rcond):
    m, n = a.shape[-2:]
    th = _H(t)
    ph = _H(p)
    return (-matmul(p, matmul(t, p))
            + matmul(matmul(p, ph), matmul(th, _eye(m, a.dtype) - matmul(a, p)))
            + matmul(_eye(n, a.dtype) - matmul(p, a), matmul(th, matmul(ph, p))))


def _pinv_vjp(g, p, a, rcond):
    m, n = a.shape[-2:]
    gh = _H(g)
    pt = _T(p)
    pc = _conj(p)
    ac = _conj(a)
    return (-matmul(pt, matmul(g, pt))
            + matmul(_eye(m, a.dtype) - matmul(ac, pc), matmul(gh, matmul(pc, pt)))
            + matmul(matmul(pt, pc), matmul(gh, _eye(n, a.dtype) - matmul(pc, ac))))


def_rules(pinv_p, jvp=(_pinv_jvp,), vjp=(_pinv_vjp,), batch=_matrix_batch(pinv_p))

_NOVALUE = object()


def pinv(a, rcond=None, hermitian=False, *, rtol=_NOVALUE):
    """Moore-Penrose pseudo-inverse (of each matrix in a stack), by SVD.

    Singular values at most ``rcond`` (default 1e-15, NumPy's) times the largest are
    treated as zero; ``rtol`` is the NumPy 2 spelling (``rtol=None`` means
    ``max(M, N) * eps``). Only scalar cutoffs are supported. ``hermitian`` is accepted and
    ignored.

    The derivative is the pseudo-inverse's (Golub and Pereyra's formula); it exists where
    the rank is locally constant, which is always the case for full-rank input.
    """
    a = _as_matrix_stack(a, "pinv", square=False)
    if rtol is not _NOVALUE:
        if rcond is not None:
            raise FuncgradValueError("linalg.pinv: give rcond or rtol, not both")
        rcond = rtol if rtol is not None else max(a.shape[-2:]) * float(
            np.finfo(a.dtype).eps)
    elif rcond is None:
        rcond = 1e-15
    if np.ndim(rcond) != 0 or isinstance(rcond, Tracer):
        raise FuncgradTypeError("linalg.pinv: rcond/rtol must be a Python number")
    return bind(pinv_p, a, rcond=float(rcond))

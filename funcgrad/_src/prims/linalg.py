"""Linear algebra: the factorizations as primitives with their rules side by side, and the
``funcgrad.numpy.linalg`` functions built on them.

Primitives: ``solve inv det slogdet cholesky eigh eigvalsh svd svdvals qr pinv``. Every
function works on stacks of matrices (leading dimensions are batch dimensions, as in
NumPy). The rules are written with funcgrad operations, so derivatives of any order work,
and reverse rules are plain transposes of the forward maps (JAX's convention for complex
numbers: the pairing is ``real(sum(a * b))``, no conjugation).

Where a derivative does not exist, this is what you get (also said in each docstring):

* ``inv solve det slogdet pinv qr cholesky`` at a singular (or, for ``cholesky``, not
  positive-definite) matrix: the derivative needs a solve with that matrix, which raises
  ``numpy.linalg.LinAlgError`` (a ``ValueError``).
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

import collections
import math
import string

import numpy as np

from ..backend import dtype_name
from ..core import Primitive, Tracer, bind, defjvp, defvjp
from ..errors import FuncgradTypeError, FuncgradValueError
from . import shape as _shape
from .creation import _xp_of
from .contractions import einsum, matmul, outer as _outer, tensordot
from .elementwise import abs as _abs, conj, imag, real, sqrt, where
from .reductions import max as _max, min as _min, sum as _sum

__all__ = ["cholesky", "cond", "det", "diagonal", "eigh", "eigvalsh", "inv", "lstsq",
           "matmul", "matrix_norm", "matrix_power", "matrix_rank", "matrix_transpose",
           "multi_dot", "norm", "outer", "pinv", "qr", "slogdet", "solve", "svd",
           "svdvals", "tensordot", "tensorinv", "tensorsolve", "trace", "vecdot",
           "vector_norm"]

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
defjvp(solve_p,
       lambda t, x, a, b: -_solve(a, matmul(t, x)),
       lambda t, x, a, b: _solve(a, t))


def _solve_vjp(g, x, args, wanted):
    a, b = args
    gb = _solve(_T(a), g)
    res = []
    for i in wanted:
        res.append(_shape.unbroadcast(-matmul(gb, _T(x)), a) if i == 0
                   else _shape.unbroadcast(gb, b))
    return res


defvjp(solve_p, full=_solve_vjp)


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
defjvp(inv_p, lambda t, ainv, a: -matmul(ainv, matmul(t, ainv)))
defvjp(inv_p, lambda g, ainv, a: -matmul(_T(ainv), matmul(g, _T(ainv))))


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
det_p = Primitive("det", np.linalg.det)
defjvp(det_p, lambda t, d, a: d * _trace(_solve(a, t)))
defvjp(det_p, lambda g, d, a: _row(_row(g * d)) * _T(bind(inv_p, a)))


def det(a):
    """Determinant of a square matrix (or of each matrix in a stack).

    The derivative ``det(a) * inv(a)^T`` is computed with an inverse, so at an exactly
    singular matrix it raises ``LinAlgError`` (the true derivative, the adjugate, exists
    there; compute ``slogdet`` or regularise if you need it).
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


defjvp(slogdet_p, full=_slogdet_jvp)
defvjp(slogdet_p, full=_slogdet_vjp)


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


# ---- cholesky ----------------------------------------------------------------------------
def _phi(x):
    """Lower triangle of ``x`` with the diagonal halved."""
    n = x.shape[-1]
    xp = _xp_of(x)
    mask = (xp.tri(n, n, -1) + 0.5 * xp.eye(n)).astype(_real_dtype(x.dtype))
    return x * mask


def _cholesky_jvp(t, lo, a):
    x = _solve_right(_solve(lo, t), _H(lo))          # L^{-1} dA L^{-H}
    return matmul(lo, _phi(x))


def _cholesky_vjp(g, lo, a):
    gx = _phi(matmul(_T(lo), g))
    return _solve_right(_solve(_T(lo), gx), _conj(lo))  # L^{-T} gX conj(L)^{-1}


cholesky_p = Primitive("cholesky", _lapack(
    "cholesky", np.linalg.cholesky,
    "The input must be Hermitian positive definite (check its smallest eigenvalue)."))
defjvp(cholesky_p, _cholesky_jvp)
defvjp(cholesky_p, _cholesky_vjp)


def _hermitian_part(a):
    return 0.5 * (a + _H(a))


def _from_triangle(a, lower):
    """The Hermitian matrix that one triangle of ``a`` describes (as LAPACK reads it)."""
    d = _diag_embed(real(_diag(a)), a.dtype) if _cplx(a) else _diag_embed(_diag(a))
    tri = _tril(a, -1) if lower else _tril(_T(a), -1)
    if not lower:
        tri = _conj(tri)
    return tri + _H(tri) + d


def cholesky(a, /, *, upper=False, symmetrize_input=True):
    """Cholesky factor of a Hermitian positive-definite matrix (or stack of them).

    Returns the lower factor ``L`` with ``a = L @ L^H`` (``upper=True``: ``L^H``).
    With ``symmetrize_input=True`` (the default) the factor of ``(a + a^H)/2`` is
    computed, so derivatives are symmetric and well defined for any perturbation; for a
    Hermitian ``a`` this equals NumPy's result. With ``symmetrize_input=False`` the
    lower triangle alone is read, exactly as ``numpy.linalg.cholesky`` does. Raises
    ``LinAlgError`` if the matrix is not positive definite.

    Example:
        >>> import numpy as np, funcgrad.numpy as fnp
        >>> fnp.linalg.cholesky(np.array([[4., 2.], [2., 5.]]))
        array([[2., 0.],
               [1., 2.]])
    """
    a = _as_matrix_stack(a, "cholesky")
    a = _hermitian_part(a) if symmetrize_input else _from_triangle(a, True)
    lo = bind(cholesky_p, a)
    return _H(lo) if upper else lo


# ---- eigh and eigvalsh -------------------------------------------------------------------
def _eigh_impl(a):
    w, v = np.linalg.eigh(a)
    return w, v


eigh_p = Primitive("eigh", _eigh_impl, multiple_results=True)


def _eig_gaps(w):
    """F[i, j] = 1 / (w[j] - w[i]) for distinct values, 0 on the diagonal and at ties."""
    return _gap_inverse(_col(w) - _row(w))


def _eigh_jvp(primals, tangents):
    (a,), (t,) = primals, tangents
    w, v = bind(eigh_p, a)
    if t is None:
        return [w, v], [None, None]
    x = matmul(_H(v), matmul(t, v))
    dw = real(_diag(x))
    dv = matmul(v, _eig_gaps(w) * x)
    return [w, v], [dw, dv]


def _eigh_vjp(g, ans, args, wanted):
    gw, gv = g
    w, v = ans
    gx = _diag_embed(gw, v.dtype) + _eig_gaps(w) * matmul(_T(v), gv)
    return [matmul(_conj(v), matmul(gx, _T(v)))]


defjvp(eigh_p, full=_eigh_jvp)
defvjp(eigh_p, full=_eigh_vjp)


def _hermitian_input(a, UPLO, symmetrize_input, op):
    if UPLO not in ("L", "U"):
        raise FuncgradValueError(f"linalg.{op}: UPLO must be 'L' or 'U', got {UPLO!r}")
    return _hermitian_part(a) if symmetrize_input else _from_triangle(a, UPLO == "L")


def eigh(a, UPLO="L", *, symmetrize_input=True):
    """Eigenvalues (ascending) and eigenvectors of a Hermitian matrix (or stack).

    Returns ``EighResult(eigenvalues, eigenvectors)``. With ``symmetrize_input=True``
    (the default) the decomposition of ``(a + a^H)/2`` is computed, which equals NumPy's
    for Hermitian input and makes the derivative well defined for any perturbation; with
    ``False`` only the ``UPLO`` triangle is read, as in NumPy.

    Derivatives: ``dw = diag(V^H da V)``; ``dV = V (F * (V^H da V))`` with
    ``F[i,j] = 1/(w[j]-w[i])``. For repeated eigenvalues the eigenvectors have no
    derivative; ``F`` is taken as 0 between equal eigenvalues, so results are finite, the
    eigenvalue derivatives stay right for perturbations that keep them equal (and for
    symmetric functions of them), but derivatives through the eigenvectors lose their
    coupling inside the repeated eigenspace (see the module notes).
    """
    a = _as_matrix_stack(a, "eigh")
    w, v = bind(eigh_p, _hermitian_input(a, UPLO, symmetrize_input, "eigh"))
    return EighResult(w, v)


eigvalsh_p = Primitive("eigvalsh", np.linalg.eigvalsh)


def _eigvalsh_jvp(t, w, a):
    _, v = bind(eigh_p, a)
    return real(_diag(matmul(_H(v), matmul(t, v))))


def _eigvalsh_vjp(g, w, a):
    _, v = bind(eigh_p, a)
    return matmul(_conj(v) * _col(g), _T(v))


defjvp(eigvalsh_p, _eigvalsh_jvp)
defvjp(eigvalsh_p, _eigvalsh_vjp)


def eigvalsh(a, UPLO="L", *, symmetrize_input=True):
    """Eigenvalues (ascending) of a Hermitian matrix (or stack); see :func:`eigh`.

    Example:
        >>> import numpy as np, funcgrad.numpy as fnp
        >>> fnp.linalg.eigvalsh(np.array([[2., 1.], [1., 2.]]))
        array([1., 3.])
    """
    a = _as_matrix_stack(a, "eigvalsh")
    return bind(eigvalsh_p, _hermitian_input(a, UPLO, symmetrize_input, "eigvalsh"))


# ---- svd and svdvals ---------------------------------------------------------------------
def _svd_impl(a, full_matrices):
    u, s, vh = np.linalg.svd(a, full_matrices=full_matrices)
    return u, s, vh


svd_p = Primitive("svd", _svd_impl, multiple_results=True)


def _check_svd_derivative(a, full_matrices):
    m, n = a.shape[-2:]
    if full_matrices and m != n:
        raise FuncgradValueError(
            f"linalg.svd: no derivative with full_matrices=True for the non-square "
            f"{dtype_name(a)}: the extra singular vectors are arbitrary. Use "
            "full_matrices=False")


def _svd_jvp(primals, tangents, full_matrices):
    (a,), (t,) = primals, tangents
    u, s, vh = bind(svd_p, a, full_matrices=full_matrices)
    if t is None:
        return [u, s, vh], [None, None, None]
    _check_svd_derivative(a, full_matrices)
    m, n = a.shape[-2:]
    k = min(m, n)
    v = _H(vh)
    dp = matmul(_H(u), matmul(t, v))
    ds = real(_diag(dp))
    f = _eig_gaps(s * s)
    s_inv = _safe_inv(s)
    dps = dp * _col(s)                       # dP S
    sdp = _row(s) * dp                       # S dP
    omega_u = f * (dps + _H(dps))
    if _cplx(a):
        omega_u = omega_u + _diag_embed(_i_times(imag(_diag(dp)) * s_inv, a.dtype))
    du = matmul(u, omega_u)
    dv = matmul(v, f * (sdp + _H(sdp)))
    if m > k:
        du = du + (matmul(t, v) - matmul(u, dp)) * _col(s_inv)
    if n > k:
        dv = dv + (matmul(_H(t), u) - matmul(v, _H(dp))) * _col(s_inv)
    return [u, s, vh], [du, ds, _H(dv)]


def _svd_vjp(g, ans, args, wanted, full_matrices):
    (a,) = args
    _check_svd_derivative(a, full_matrices)
    gu, gs, gvh = g
    u, s, vh = ans
    m, n = a.shape[-2:]
    k = min(m, n)
    v = _H(vh)
    gv = _H(gvh)
    f = _eig_gaps(s * s)
    s_inv = _safe_inv(s)
    gz = matmul(_T(u), gu)
    gw = f * gz
    gp = (gw + _H(gw)) * _col(s)
    if _cplx(a):
        gp = gp + _diag_embed(_i_times(imag(_diag(gz)) * s_inv, a.dtype))
    gp = gp + _diag_embed(gs, a.dtype)
    gw2 = f * matmul(_T(v), gv)
    gp = gp + _row(s) * (gw2 + _H(gw2))
    ga = None
    if m > k:
        ge = gu * _col(s_inv)
        gp = gp - matmul(_T(u), ge)
        ga = matmul(ge, _T(v))
    if n > k:
        ge2 = gv * _col(s_inv)
        gp = gp - matmul(_H(ge2), _conj(v))
        extra = matmul(_conj(u), _H(ge2))
        ga = extra if ga is None else ga + extra
    main = matmul(_conj(u), matmul(gp, _T(v)))
    return [main if ga is None else main + ga]


defjvp(svd_p, full=_svd_jvp)
defvjp(svd_p, full=_svd_vjp)

svdvals_p = Primitive("svdvals", lambda a: np.linalg.svd(a, compute_uv=False))


def _svdvals_jvp(t, s, a):
    u, _, vh = bind(svd_p, a, full_matrices=False)
    return real(_diag(matmul(_H(u), matmul(t, _H(vh)))))


def _svdvals_vjp(g, s, a):
    u, _, vh = bind(svd_p, a, full_matrices=False)
    return matmul(_conj(u) * _col(g), _conj(vh))


defjvp(svdvals_p, _svdvals_jvp)
defvjp(svdvals_p, _svdvals_vjp)


def svd(a, full_matrices=True, compute_uv=True, hermitian=False):
    """Singular value decomposition ``a = U @ diag(S) @ Vh`` (of each matrix in a stack).

    Returns ``SVDResult(U, S, Vh)``, or just ``S`` (descending) when ``compute_uv`` is
    False. ``hermitian`` is accepted for NumPy compatibility and ignored (the general
    algorithm is used).

    Derivatives: ``S`` always (``dS = real(diag(U^H da V))``). ``U`` and ``Vh`` need
    ``full_matrices=False`` or a square matrix (for a non-square matrix the extra vectors
    of the full decomposition are arbitrary; differentiating them raises
    ``FuncgradValueError``). At repeated singular values the vectors have no derivative
    and the diverging terms are taken as 0; ``1/s`` is taken as 0 for zero singular values.
    """
    a = _as_matrix_stack(a, "svd", square=False)
    if not compute_uv:
        return bind(svdvals_p, a)
    u, s, vh = bind(svd_p, a, full_matrices=bool(full_matrices))
    return SVDResult(u, s, vh)


def svdvals(x, /):
    """Singular values (descending) of a matrix or stack; same as ``svd(x,
    compute_uv=False)``."""
    return bind(svdvals_p, _as_matrix_stack(x, "svdvals", square=False))


# ---- qr ----------------------------------------------------------------------------------
def _qr_impl(a, mode):
    q, r = np.linalg.qr(a, mode=mode)
    return q, r


qr_p = Primitive("qr", _qr_impl, multiple_results=True)


def _qr_omega(c):
    """The anti-Hermitian part fixed by ``c = Q^H dA R^{-1}``: strictly lower triangle of
    ``c``, minus its conjugate transpose, plus the imaginary diagonal."""
    low = _tril(c, -1)
    om = low - _H(low)
    if _cplx(c):
        om = om + _diag_embed(_i_times(imag(_diag(c)), c.dtype))
    return om


def _check_qr_derivative(a, mode):
    m, n = a.shape[-2:]
    if mode == "complete" and m > n:
        raise FuncgradValueError(
            f"linalg.qr: no derivative with mode='complete' for the tall {dtype_name(a)}: "
            "the extra columns of Q are arbitrary. Use mode='reduced'")


def _qr_jvp(primals, tangents, mode):
    (a,), (t,) = primals, tangents
    q, r = bind(qr_p, a, mode=mode)
    if t is None:
        return [q, r], [None, None]
    _check_qr_derivative(a, mode)
    m, n = a.shape[-2:]
    t_rinv = _solve_right(t, r)                      # dA R^{-1}
    c = matmul(_H(q), t_rinv)
    om = _qr_omega(c)
    dq = matmul(q, om)
    if m > n:
        dq = dq + t_rinv - matmul(q, c)
    dr = matmul(_H(q), t) - matmul(om, r)
    return [q, r], [dq, dr]


def _qr_vjp(g, ans, args, wanted, mode):
    (a,) = args
    _check_qr_derivative(a, mode)
    gq, gr = g
    q, r = ans
    m, n = a.shape[-2:]
    g_om = matmul(_T(q), gq) - matmul(gr, _T(r))
    low = _tril(g_om, -1) - _tril(_H(g_om), -1)
    gc = low + _diag_embed(_i_times(imag(_diag(g_om)), a.dtype)) if _cplx(a) else low
    right = matmul(_conj(q), gc)                     # multiplies R^{-T}
    if m > n:
        right = right + gq - matmul(_conj(q), matmul(_T(q), gq))
    ga = matmul(_conj(q), gr) + _T(_solve(r, _T(right)))
    return [ga]


defjvp(qr_p, full=_qr_jvp)
defvjp(qr_p, full=_qr_vjp)


def qr(a, mode="reduced"):
    """QR factorization ``a = Q @ R`` of a matrix or stack ``(..., M, N)``.

    ``mode`` is ``'reduced'`` (default), ``'complete'`` or ``'r'`` (returns ``R`` only);
    ``'raw'`` is not supported. Returns ``QRResult(Q, R)``.

    Differentiable when ``R``'s leading square block is invertible (``a`` of full rank).
    For ``M < N`` the first ``M`` columns are factored and ``R``'s remaining columns are
    ``Q^H a[:, M:]``. ``mode='complete'`` with ``M > N`` has no derivative (the extra
    columns of ``Q`` are arbitrary) and raises when differentiated.
    """
    if mode not in ("reduced", "complete", "r"):
        raise FuncgradValueError(
            f"linalg.qr: mode must be 'reduced', 'complete' or 'r', got {mode!r}"
            + (" ('raw' is not supported)" if mode == "raw" else ""))
    a = _as_matrix_stack(a, "qr", square=False)
    m, n = a.shape[-2:]
    if m < n:
        q, r1 = bind(qr_p, a[..., :, :m], mode="reduced")
        r = _shape.concatenate([r1, matmul(_H(q), a[..., :, m:])], axis=-1)
    else:
        q, r = bind(qr_p, a, mode="complete" if mode == "complete" and m > n else "reduced")
    return r if mode == "r" else QRResult(q, r)


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


defjvp(pinv_p, _pinv_jvp)
defvjp(pinv_p, _pinv_vjp)

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
        return _max(_cabs(x), axis=axes, keepdims=keepdims)
    if ord == -math.inf:
        return _min(_cabs(x), axis=axes, keepdims=keepdims)
    if ord == 0:
        return _shape.astype(_sum(x != 0, axis=axes, keepdims=keepdims),
                             _real_dtype(x.dtype))
    if ord == 1:
        return _sum(_cabs(x), axis=axes, keepdims=keepdims)
    s = _sum(_cabs(x) ** ord, axis=axes, keepdims=keepdims)
    zero = s == 0
    return where(zero, 0, where(zero, 1, s) ** (1.0 / ord))


def _matrix_norm(x, ord, axes, keepdims):
    r, c = axes
    if ord is None or ord == "fro":
        return _safe_sqrt(_sum(_abs2(x), axis=axes, keepdims=keepdims))
    if ord in ("nuc", 2, -2):
        s = svdvals(_shape.moveaxis(x, (r, c), (-2, -1)))
        out = (_sum(s, axis=-1) if ord == "nuc" else
               _max(s, axis=-1) if ord == 2 else _min(s, axis=-1))
        return _shape.expand_dims(out, (r, c)) if keepdims else out
    if ord in (1, -1):
        red, keep = r, c
    elif ord in (math.inf, -math.inf):
        red, keep = c, r
    else:
        raise FuncgradValueError(f"linalg.norm: invalid norm order {ord!r} for matrices")
    sums = _sum(_cabs(x), axis=red, keepdims=True)
    ext = _max if ord in (1, math.inf) else _min
    out = ext(sums, axis=keep, keepdims=True)
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

    Derivative at zero: the 2-norm, Frobenius norm and p-norms (``p >= 1``) of a zero
    vector have the subgradient 0 (not NaN); ``abs`` gives ``0`` at ``0``; ``max``/``min``
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



# ---- batching (vmap): every primitive already works on stacks of matrices ---------------
def _front(v, d):
    return v if d is None or d == 0 else _shape.moveaxis(v, d, 0)


def _matrix_batch(prim):
    def rule(vals, dims, **params):
        (v,), (d,) = vals, dims
        out = bind(prim, _front(v, d), **params)
        return (out, [0] * len(out)) if prim.multiple_results else (out, 0)
    return rule


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


for _p in (inv_p, det_p, slogdet_p, cholesky_p, eigh_p, eigvalsh_p, svd_p, svdvals_p, qr_p,
           pinv_p):
    _p.batch = _matrix_batch(_p)
solve_p.batch = _solve_batch

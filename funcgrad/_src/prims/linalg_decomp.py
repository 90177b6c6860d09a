"""Linear algebra, part 2: the decompositions (``cholesky eigh eigvalsh svd svdvals
qr``), each primitive with its rules side by side. See ``linalg_solve.py`` for the
conventions at points where a derivative does not exist."""
from __future__ import annotations

import collections

import numpy as np

from ..backend import dtype_name
from ..core import Primitive, bind, def_rules
from ..errors import FuncgradValueError
from . import shape as _shape
from .creation import _xp_of
from .contractions import matmul
from .elementwise import imag, real
from .linalg_solve import (EighResult, QRResult, SVDResult, _H, _T, _as_matrix_stack, _col,
                           _conj, _cplx, _diag, _diag_embed, _gap_inverse, _i_times,
                           _lapack, _matrix_batch, _real_dtype, _row, _safe_inv, _solve,
                           _solve_right, _tril)

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
def_rules(cholesky_p, jvp=(_cholesky_jvp,), vjp=(_cholesky_vjp,), batch=_matrix_batch(cholesky_p))


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


def_rules(eigh_p, jvp=_eigh_jvp, vjp=_eigh_vjp, batch=_matrix_batch(eigh_p))


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


def_rules(eigvalsh_p, jvp=(_eigvalsh_jvp,), vjp=(_eigvalsh_vjp,), batch=_matrix_batch(eigvalsh_p))


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


def _full_non_square(a, full_matrices):
    m, n = a.shape[-2:]
    return full_matrices and m != n


def _svd_jvp(primals, tangents, full_matrices):
    (a,), (t,) = primals, tangents
    u, s, vh = bind(svd_p, a, full_matrices=full_matrices)
    if t is None:
        return [u, s, vh], [None, None, None]
    if not _full_non_square(a, full_matrices):
        return [u, s, vh], _svd_thin_jvp(a, t, u, s, vh)
    # full_matrices=True, non-square: the thin part's tangents, then the extra vectors
    # (a basis of the complement, arbitrary) follow the least rotation that keeps them
    # orthogonal to the thin ones: dU2 = -U1 (dU1^H U2), likewise for V
    k = s.shape[-1]
    u1, u2 = u[..., :, :k], u[..., :, k:]
    v = _H(vh)
    v1, v2 = v[..., :, :k], v[..., :, k:]
    du1, ds, dvh1 = _svd_thin_jvp(a, t, u1, s, _H(v1))
    dv1 = _H(dvh1)
    du = _shape.concatenate([du1, -matmul(u1, matmul(_H(du1), u2))], axis=-1)
    dv = _shape.concatenate([dv1, -matmul(v1, matmul(_H(dv1), v2))], axis=-1)
    return [u, s, vh], [du, ds, _H(dv)]


def _svd_thin_jvp(a, t, u, s, vh):
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
    return [du, ds, _H(dv)]


def _svd_vjp(g, ans, args, wanted, full_matrices):
    (a,) = args
    gu, gs, gvh = g
    u, s, vh = ans
    if not _full_non_square(a, full_matrices):
        return [_svd_thin_vjp(a, gu, gs, gvh, u, s, vh)]
    # the transpose of the forward rule's extension: the extra vectors' cotangents
    # reach the thin ones through dU2 = -U1 dU1^H U2 (likewise for V)
    k = s.shape[-1]
    u1, u2 = u[..., :, :k], u[..., :, k:]
    v = _H(vh)
    v1, v2 = v[..., :, :k], v[..., :, k:]
    gv = _H(gvh)
    gu1 = gu[..., :, :k] - _conj(matmul(u2, matmul(_T(gu[..., :, k:]), u1)))
    gv1 = gv[..., :, :k] - _conj(matmul(v2, matmul(_T(gv[..., :, k:]), v1)))
    return [_svd_thin_vjp(a, gu1, gs, _H(gv1), u1, s, _H(v1))]


def _svd_thin_vjp(a, gu, gs, gvh, u, s, vh):
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
    return main if ga is None else main + ga


def_rules(svd_p, jvp=_svd_jvp, vjp=_svd_vjp, batch=_matrix_batch(svd_p))

svdvals_p = Primitive("svdvals", lambda a: np.linalg.svd(a, compute_uv=False))


def _svdvals_jvp(t, s, a):
    u, _, vh = bind(svd_p, a, full_matrices=False)
    return real(_diag(matmul(_H(u), matmul(t, _H(vh)))))


def _svdvals_vjp(g, s, a):
    u, _, vh = bind(svd_p, a, full_matrices=False)
    return matmul(_conj(u) * _col(g), _conj(vh))


def_rules(svdvals_p, jvp=(_svdvals_jvp,), vjp=(_svdvals_vjp,), batch=_matrix_batch(svdvals_p))


def svd(a, full_matrices=True, compute_uv=True, hermitian=False):
    """Singular value decomposition ``a = U @ diag(S) @ Vh`` (of each matrix in a stack).

    Returns ``SVDResult(U, S, Vh)``, or just ``S`` (descending) when ``compute_uv`` is
    False. ``hermitian`` is accepted for NumPy compatibility and ignored (the general
    algorithm is used).

    Derivatives: ``S`` always (``dS = real(diag(U^H da V))``), also with NumPy's
    default ``full_matrices=True``. ``U`` and ``Vh`` of a non-square matrix with
    ``full_matrices=True``: their extra vectors (a basis of the complement) are
    arbitrary (NumPy may pick any basis of the complement, not a smooth one), so both
    modes give the thin part's exact derivative and move the extra vectors by the
    least rotation keeping them orthogonal to it (``dU2 = -U1 dU1^H U2``), one valid
    choice among many; the two modes agree. For derivatives of the thin vectors alone
    ``full_matrices=False`` is cheaper. At repeated singular values the vectors have no derivative
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


def_rules(qr_p, jvp=_qr_jvp, vjp=_qr_vjp, batch=_matrix_batch(qr_p))


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


# ---- eig and eigvals (general, non-Hermitian) --------------------------------------------
EigResult = collections.namedtuple("EigResult", ["eigenvalues", "eigenvectors"])


def _eig_impl(a):
    w, v = np.linalg.eig(a)
    cdt = np.result_type(a.dtype, np.complex64)
    return w.astype(cdt, copy=False), v.astype(cdt, copy=False)


eig_p = Primitive("eig", _eig_impl, multiple_results=True)


def _as_complex(x, dtype):
    return x if x.dtype == dtype else _shape.astype(x, dtype)


def _eig_jvp(primals, tangents):
    (a,), (t,) = primals, tangents
    w, v = bind(eig_p, a)
    if t is None:
        return [w, v], [None, None]
    # V^{-1} dA V: its diagonal moves the eigenvalues, its off-diagonal part (over the
    # eigenvalue gaps) the eigenvectors; then the change of each column's norm is removed
    # (NumPy's vectors have unit norm)
    x = _solve(v, matmul(_as_complex(t, v.dtype), v))
    dw = _diag(x)
    dv = matmul(v, _eig_gaps(w) * x)
    dv = dv - v * _col(real(_diag(matmul(_H(v), dv))))
    return [w, v], [dw, dv]


def _eig_vjp(g, ans, args, wanted):
    (a,) = args
    gw, gv = g
    w, v = ans
    gx = 0
    if gw is not None:
        gx = _diag_embed(_as_complex(gw, v.dtype))
    if gv is not None:
        gv = _as_complex(gv, v.dtype)
        # the transpose of dv -> dv - v * Re(diag(v^H dv)), then of dv = V (F * X)
        corr = real(_diag(matmul(_T(v), gv)))          # sum_i v_ij gv_ij per column
        gdv = gv - _conj(v) * _col(corr)
        gx = gx + _eig_gaps(w) * matmul(_T(v), gdv)
    # X = V^{-1} dA V: dA's cotangent is V^{-T} gX V^T
    ga = _solve(_T(v), matmul(gx, _T(v)))
    if a.dtype.kind != "c":
        ga = real(ga)
    return [_shape.astype(ga, a.dtype) if ga.dtype != a.dtype else ga]


def_rules(eig_p, jvp=_eig_jvp, vjp=_eig_vjp, batch=_matrix_batch(eig_p))


def eig(a):
    """Eigenvalues and right eigenvectors of a general square matrix (or stack), as
    ``numpy.linalg.eig``: ``EigResult(w, v)`` with ``a @ v[:, i] = w[i] * v[:, i]``,
    always complex (``complex64`` for float32 input, else ``complex128``; NumPy returns
    real arrays when every eigenvalue happens to be real, funcgrad a fixed dtype), each
    ``v[:, i]`` of unit norm.

    Derivatives (forward and reverse, any order), for distinct eigenvalues:
    ``dw = diag(V^{-1} dA V)``; ``dV = V (F * (V^{-1} dA V))`` with ``F[i, j] = 1 / (w[j] -
    w[i])`` (0 at ties), minus the change of each column's norm. An eigenvector's phase is
    arbitrary (LAPACK fixes it by its own rule), so only phase-invariant functions of
    ``v`` (``|v|``, ``v v^H``, ...) have derivatives that finite differences of NumPy's
    ``eig`` reproduce. Real input gets real cotangents (the real part).

    Example:
        >>> import numpy as np, funcgrad.numpy as fnp
        >>> w, v = fnp.linalg.eig(np.array([[2.0, 0.0], [0.0, 3.0]]))
        >>> w
        array([2.+0.j, 3.+0.j])
    """
    a = _as_matrix_stack(a, "eig")
    w, v = bind(eig_p, a)
    return EigResult(w, v)


def eigvals(a):
    """The eigenvalues of a general square matrix (or stack), complex (see :func:`eig`);
    derivative ``diag(V^{-1} dA V)``, exact for distinct eigenvalues."""
    return eig(a)[0]

"""funcgrad.numpy.linalg: values against NumPy, derivatives to order 2 (forward and
reverse) over random shapes and batch dimensions, float32, complex input, batching,
the documented conventions (norms at zero, repeated eigenvalues) and the errors."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import funcgrad
import funcgrad.numpy as fnp
from funcgrad._src.errors import FuncgradTypeError, FuncgradValueError
from funcgrad.test_util import check_grads
from funcgrad.tree_util import tree_map

L = fnp.linalg

seeds = st.integers(0, 2**32 - 1)
batches = st.sampled_from([(), (1,), (2,), (2, 1), (1, 2)])
sizes = st.integers(1, 4)


# ---- well-conditioned matrices ------------------------------------------------------------
def _orth(rng, shape, dtype=float):
    """Random (batches of) orthogonal/unitary matrices ``(..., n, n)``."""
    a = rng.normal(size=shape)
    if np.dtype(dtype).kind == "c":
        a = a + 1j * rng.normal(size=shape)
    q, _ = np.linalg.qr(a)
    return q


def _general(rng, batch, n, dtype=float):
    """Invertible, well-conditioned: a random matrix plus a multiple of the identity."""
    a = rng.normal(size=batch + (n, n))
    if np.dtype(dtype).kind == "c":
        a = a + 1j * rng.normal(size=batch + (n, n))
    return a + 2.5 * np.sqrt(n) * np.eye(n)


def _spd(rng, batch, n, dtype=float):
    """Hermitian positive definite: ``A A^H + n I``."""
    a = rng.normal(size=batch + (n, n))
    if np.dtype(dtype).kind == "c":
        a = a + 1j * rng.normal(size=batch + (n, n))
    return a @ np.conj(np.swapaxes(a, -1, -2)) + n * np.eye(n)


def _distinct_spectrum(rng, batch, n, dtype=float):
    """Hermitian with eigenvalues at least 0.5 apart."""
    w = np.cumsum(rng.uniform(0.5, 1.5, size=batch + (n,)), axis=-1) - n / 2
    q = _orth(rng, batch + (n, n), dtype)
    return (q * w[..., None, :]) @ np.conj(np.swapaxes(q, -1, -2))


def _distinct_singular(rng, batch, m, n, dtype=float):
    """``U diag(s) V^H`` with singular values at least 0.4 apart and at least 0.5."""
    k = min(m, n)
    s = 0.5 + np.cumsum(rng.uniform(0.4, 1.0, size=batch + (k,)), axis=-1)
    u = _orth(rng, batch + (m, m), dtype)[..., :k]
    v = _orth(rng, batch + (n, n), dtype)[..., :k]
    return (u * s[..., None, :]) @ np.conj(np.swapaxes(v, -1, -2))


# ---- complex checks through real and imaginary parts -----------------------------------------
def _realify(tree):
    return tree_map(lambda z: fnp.stack([fnp.real(z), fnp.imag(z)])
                    if z.dtype.kind == "c" else z, tree)


def check_complex(f, args, order=2):
    """check_grads for a function of complex arrays, through real parts: the complex rules
    are exercised inside, and the check compares real numbers only."""
    def g(*parts):
        zs = [parts[2 * i] + 1j * parts[2 * i + 1] for i in range(len(parts) // 2)]
        return _realify(f(*zs))
    flat = []
    for z in args:
        flat += [np.ascontiguousarray(z.real), np.ascontiguousarray(z.imag)]
    check_grads(g, flat, order=order)


# ---- solve, inv, det, slogdet ---------------------------------------------------------------
@given(batches, sizes, st.integers(1, 3), seeds)
def test_solve(batch, n, k, seed):
    rng = np.random.default_rng(seed)
    a = _general(rng, batch, n)
    b = rng.normal(size=batch + (n, k))
    np.testing.assert_allclose(L.solve(a, b), np.linalg.solve(a, b), rtol=1e-10, atol=1e-12)
    check_grads(L.solve, (a, b), order=2)


@given(batches, sizes, seeds)
def test_solve_vector_and_broadcast(batch, n, seed):
    rng = np.random.default_rng(seed)
    a = _general(rng, batch, n)
    b = rng.normal(size=(n,))
    np.testing.assert_allclose(L.solve(a, b), np.linalg.solve(a, b), rtol=1e-10, atol=1e-12)
    check_grads(L.solve, (a, b), order=2)
    # a single matrix against a batch of right-hand sides
    b2 = rng.normal(size=(3, n, 2))
    np.testing.assert_allclose(L.solve(a[(0,) * len(batch)], b2),
                               np.linalg.solve(a[(0,) * len(batch)], b2), rtol=1e-10)
    check_grads(L.solve, (a[(0,) * len(batch)], b2), order=1)


@given(batches, sizes, seeds)
def test_inv_det_slogdet(batch, n, seed):
    rng = np.random.default_rng(seed)
    a = _general(rng, batch, n)
    np.testing.assert_allclose(L.inv(a), np.linalg.inv(a), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(L.det(a), np.linalg.det(a), rtol=1e-10)
    sign, logdet = L.slogdet(a)
    ref = np.linalg.slogdet(a)
    np.testing.assert_allclose(sign, ref.sign)
    np.testing.assert_allclose(logdet, ref.logabsdet, rtol=1e-10, atol=1e-12)
    check_grads(L.inv, (a,), order=2)
    check_grads(L.det, (a,), order=2)
    check_grads(lambda x: tuple(L.slogdet(x)), (a,), order=2)


def test_det_gradient_is_cofactor_matrix():
    a = np.array([[2.0, 1.0], [0.5, 3.0]])
    np.testing.assert_allclose(funcgrad.grad(L.det)(a), [[3.0, -0.5], [-1.0, 2.0]])
    g = funcgrad.grad(lambda x: L.slogdet(x)[1])(a)
    np.testing.assert_allclose(g, np.linalg.inv(a).T)


# ---- cholesky, eigh ---------------------------------------------------------------------------
@given(batches, sizes, seeds)
def test_cholesky(batch, n, seed):
    rng = np.random.default_rng(seed)
    a = _spd(rng, batch, n)
    np.testing.assert_allclose(L.cholesky(a), np.linalg.cholesky(a), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(L.cholesky(a, upper=True), np.linalg.cholesky(a, upper=True),
                               rtol=1e-10, atol=1e-12)
    check_grads(L.cholesky, (a,), order=2)
    check_grads(lambda x: L.cholesky(x, symmetrize_input=False), (a,), order=1)


def test_cholesky_reads_lower_triangle_without_symmetrizing():
    rng = np.random.default_rng(0)
    a = _spd(rng, (), 3)
    junk = a + np.triu(rng.normal(size=(3, 3)), 1)     # NumPy ignores the upper triangle
    np.testing.assert_allclose(L.cholesky(junk, symmetrize_input=False),
                               np.linalg.cholesky(junk), rtol=1e-12)
    g = funcgrad.grad(lambda x: fnp.sum(L.cholesky(x, symmetrize_input=False)))(junk)
    assert np.all(np.triu(g, 1) == 0)
    g_sym = funcgrad.grad(lambda x: fnp.sum(L.cholesky(x)))(a)
    np.testing.assert_allclose(g_sym, g_sym.T, rtol=1e-12)


@given(batches, sizes, seeds)
def test_eigh(batch, n, seed):
    rng = np.random.default_rng(seed)
    a = _distinct_spectrum(rng, batch, n)
    w, v = L.eigh(a)
    w_ref, v_ref = np.linalg.eigh(a)
    np.testing.assert_allclose(w, w_ref, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(np.abs(v), np.abs(v_ref), rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(L.eigvalsh(a), w_ref, rtol=1e-10, atol=1e-12)
    check_grads(lambda x: tuple(L.eigh(x)), (a,), order=2)
    check_grads(L.eigvalsh, (a,), order=2)
    check_grads(lambda x: L.eigh(x, UPLO="U", symmetrize_input=False)[1], (a,), order=1)


def test_eigh_repeated_eigenvalues_give_finite_gradients():
    a = np.diag([1.0, 1.0, 2.0])
    f = lambda x: fnp.sum(L.eigh(x)[0] ** 2)           # noqa: E731
    g = funcgrad.grad(f)(a)
    assert np.all(np.isfinite(g))
    np.testing.assert_allclose(g, np.diag([2.0, 2.0, 4.0]), atol=1e-12)
    # through the eigenvectors: V exp(w) V^T = expm(a). Finite; the diagonal (which does
    # not split the repeated pair) is exact, the coupling inside the pair is dropped.
    def expm_sum(x):
        w, v = L.eigh(x)
        return fnp.sum(fnp.matmul(v * fnp.exp(w)[None], v.T))
    g = funcgrad.grad(expm_sum)(a)
    assert np.all(np.isfinite(g))
    np.testing.assert_allclose(np.diag(g), [np.e, np.e, np.e ** 2], rtol=1e-12)
    np.testing.assert_allclose(g[0, 2], (np.e ** 2 - np.e), rtol=1e-12)   # divided difference


# ---- svd -------------------------------------------------------------------------------------
@given(batches, sizes, sizes, seeds)
def test_svd_thin(batch, m, n, seed):
    rng = np.random.default_rng(seed)
    a = _distinct_singular(rng, batch, m, n)
    u, s, vh = L.svd(a, full_matrices=False)
    u_ref, s_ref, vh_ref = np.linalg.svd(a, full_matrices=False)
    np.testing.assert_allclose(s, s_ref, rtol=1e-10)
    np.testing.assert_allclose(np.abs(u), np.abs(u_ref), rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(L.svd(a, compute_uv=False), s_ref, rtol=1e-10)
    np.testing.assert_allclose(L.svdvals(a), s_ref, rtol=1e-10)
    check_grads(lambda x: tuple(L.svd(x, full_matrices=False)), (a,), order=2)
    check_grads(lambda x: L.svd(x, compute_uv=False), (a,), order=2)


@given(batches, sizes, seeds)
def test_svd_full_square(batch, n, seed):
    rng = np.random.default_rng(seed)
    a = _distinct_singular(rng, batch, n, n)
    for got, want in zip(L.svd(a), np.linalg.svd(a)):
        np.testing.assert_allclose(np.abs(got), np.abs(want), rtol=1e-8, atol=1e-10)
    check_grads(lambda x: tuple(L.svd(x)), (a,), order=1)


def test_svd_full_matrices_nonsquare_derivative():
    a = np.random.default_rng(0).normal(size=(4, 2))
    u, s, vh = L.svd(a)                      # values are fine
    assert u.shape == (4, 4)
    # the extra vectors follow a documented convention (test_linalg_additions.py)
    assert funcgrad.grad(lambda x: fnp.sum(L.svd(x)[0]))(a).shape == (4, 2)
    # singular values alone are differentiable whatever full_matrices says
    funcgrad.grad(lambda x: fnp.sum(L.svd(x, compute_uv=False)))(a)


# ---- qr, pinv, lstsq ---------------------------------------------------------------------------
@given(batches, sizes, sizes, seeds)
def test_qr(batch, m, n, seed):
    rng = np.random.default_rng(seed)
    a = _distinct_singular(rng, batch, m, n)       # full rank
    q, r = L.qr(a)
    q_ref, r_ref = np.linalg.qr(a)
    np.testing.assert_allclose(q, q_ref, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(r, r_ref, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(L.qr(a, mode="r"), np.linalg.qr(a, mode="r"), rtol=1e-8,
                               atol=1e-10)
    check_grads(lambda x: tuple(L.qr(x)), (a,), order=2)


def test_qr_complete():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(4, 2))
    q, r = L.qr(a, mode="complete")
    np.testing.assert_allclose(q, np.linalg.qr(a, mode="complete")[0], atol=1e-12)
    assert r.shape == (4, 2)
    with pytest.raises(FuncgradValueError, match="mode='reduced'"):
        funcgrad.grad(lambda x: fnp.sum(L.qr(x, mode="complete")[0]))(a)
    check_grads(lambda x: tuple(L.qr(x, mode="complete")), (a.T,), order=1)
    with pytest.raises(FuncgradValueError, match="raw"):
        L.qr(a, mode="raw")


@given(batches, sizes, sizes, seeds)
def test_pinv(batch, m, n, seed):
    rng = np.random.default_rng(seed)
    a = _distinct_singular(rng, batch, m, n)
    np.testing.assert_allclose(L.pinv(a), np.linalg.pinv(a), rtol=1e-8, atol=1e-10)
    check_grads(L.pinv, (a,), order=2)


@given(sizes, sizes, st.sampled_from([(), (2,)]), seeds)
def test_lstsq(m, n, bshape, seed):
    rng = np.random.default_rng(seed)
    a = _distinct_singular(rng, (), m, n)
    b = rng.normal(size=(m,) + bshape)
    x, res, rank, s = L.lstsq(a, b)
    x_ref, res_ref, rank_ref, s_ref = np.linalg.lstsq(a, b)
    np.testing.assert_allclose(x, x_ref, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(res, res_ref, rtol=1e-8, atol=1e-10)
    assert rank == rank_ref
    np.testing.assert_allclose(s, s_ref, rtol=1e-10)
    check_grads(lambda a, b: L.lstsq(a, b)[:2], (a, b), order=2)


# ---- norms -----------------------------------------------------------------------------------
VECTOR_ORDS = [None, 2, 1, np.inf, -np.inf, 3, 0.5, -1.5]
MATRIX_ORDS = [None, "fro", "nuc", 2, -2, 1, -1, np.inf, -np.inf]


@pytest.mark.parametrize("ord", VECTOR_ORDS)
@given(batches, sizes, st.booleans(), seeds)
def test_vector_norms(ord, batch, n, keepdims, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=batch + (n,))
    x = x + 0.2 * np.sign(x)                               # away from kinks and ties
    np.testing.assert_allclose(L.norm(x, ord, axis=-1, keepdims=keepdims),
                               np.linalg.norm(x, ord, axis=-1, keepdims=keepdims), rtol=1e-12)
    gaps = np.diff(np.sort(np.abs(x), axis=-1), axis=-1)
    if ord not in (np.inf, -np.inf) or gaps.size == 0 or gaps.min() > 1e-3:   # no ties
        check_grads(lambda v: L.norm(v, ord, axis=-1, keepdims=keepdims), (x,), order=2)


@pytest.mark.parametrize("ord", MATRIX_ORDS)
@given(batches, sizes, sizes, st.booleans(), seeds)
def test_matrix_norms(ord, batch, m, n, keepdims, seed):
    rng = np.random.default_rng(seed)
    x = _distinct_singular(rng, batch, m, n)
    nd = x.ndim
    axes = (nd - 1, nd - 2) if seed % 2 else (nd - 2, nd - 1)   # either order of the pair
    np.testing.assert_allclose(L.norm(x, ord, axis=axes, keepdims=keepdims),
                               np.linalg.norm(x, ord, axis=axes, keepdims=keepdims),
                               rtol=1e-10)
    if ord in (1, -1, np.inf, -np.inf):
        return      # piecewise: ties between rows/columns make finite differences unreliable
    check_grads(lambda v: L.norm(v, ord, axis=axes, keepdims=keepdims), (x,), order=2)


def test_norm_default_and_axis_none():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(2, 3, 4))
    np.testing.assert_allclose(L.norm(x), np.linalg.norm(x))
    np.testing.assert_allclose(L.norm(x, keepdims=True), np.linalg.norm(x, keepdims=True))
    np.testing.assert_allclose(L.norm(x[0], 1), np.linalg.norm(x[0], 1))
    np.testing.assert_allclose(L.norm(x[0, 0], 3), np.linalg.norm(x[0, 0], 3))
    np.testing.assert_allclose(L.norm(x, 0, axis=1), np.linalg.norm(x, 0, axis=1))
    np.testing.assert_allclose(L.vector_norm(x, axis=(0, 2), ord=1),
                               np.linalg.vector_norm(x, axis=(0, 2), ord=1))
    np.testing.assert_allclose(L.matrix_norm(x, ord="nuc"), np.linalg.matrix_norm(x, ord="nuc"))
    with pytest.raises(FuncgradValueError, match="axis"):
        L.norm(x, 2)
    with pytest.raises(FuncgradValueError, match="vectors"):
        L.norm(x[0, 0], "fro")
    with pytest.raises(FuncgradValueError, match="matrices"):
        L.norm(x[0], 3)


@pytest.mark.parametrize("ord", [None, 2, 1, 3, np.inf])
def test_vector_norm_at_zero_has_zero_subgradient(ord):
    for x in (np.zeros(3), np.zeros(3, complex)):
        g = funcgrad.grad(lambda v: L.norm(v, ord))(x)
        assert g.dtype == x.dtype
        np.testing.assert_array_equal(g, np.zeros(3))
    h = funcgrad.hessian(lambda v: L.norm(v, ord))(np.zeros(2))
    assert not np.any(np.isnan(h))


@pytest.mark.parametrize("ord", [None, "fro", "nuc", 2])
def test_matrix_norm_at_zero_is_finite(ord):
    g = funcgrad.grad(lambda v: L.norm(v, ord))(np.zeros((2, 3)))
    assert np.all(np.isfinite(g))
    assert np.all(np.abs(g) <= 1 + 1e-12)           # a subgradient of a norm


# ---- composites --------------------------------------------------------------------------------
@given(batches, sizes, st.integers(-3, 4), seeds)
def test_matrix_power(batch, n, p, seed):
    rng = np.random.default_rng(seed)
    a = np.eye(n) + 0.3 * rng.normal(size=batch + (n, n)) / np.sqrt(n)
    np.testing.assert_allclose(L.matrix_power(a, p), np.linalg.matrix_power(a, p),
                               rtol=1e-9, atol=1e-12)
    check_grads(lambda x: L.matrix_power(x, p), (a,), order=2)


@given(st.lists(sizes, min_size=3, max_size=5), st.booleans(), st.booleans(), seeds)
def test_multi_dot(dims, vec_first, vec_last, seed):
    rng = np.random.default_rng(seed)
    arrays = [rng.normal(size=(dims[i], dims[i + 1])) for i in range(len(dims) - 1)]
    if vec_first:
        arrays[0] = arrays[0][0]
    if vec_last:
        arrays[-1] = arrays[-1][:, 0]
    np.testing.assert_allclose(L.multi_dot(arrays), np.linalg.multi_dot(arrays), rtol=1e-10)
    check_grads(lambda *xs: L.multi_dot(xs), arrays, order=2)


@given(batches, sizes, sizes, st.integers(-2, 2), seeds)
def test_trace_diagonal_transpose(batch, m, n, offset, seed):
    x = np.random.default_rng(seed).normal(size=batch + (m, n))
    np.testing.assert_allclose(L.trace(x, offset=offset), np.linalg.trace(x, offset=offset),
                               atol=1e-12)
    np.testing.assert_allclose(L.diagonal(x, offset=offset),
                               np.linalg.diagonal(x, offset=offset))
    np.testing.assert_array_equal(L.matrix_transpose(x), np.linalg.matrix_transpose(x))
    check_grads(lambda v: L.trace(v, offset=offset), (x,), order=2)


def test_tensorsolve_tensorinv_cond_rank_vecdot_outer():
    rng = np.random.default_rng(4)
    a = _general(rng, (), 6).reshape(2, 3, 6)
    b = rng.normal(size=(2, 3))
    np.testing.assert_allclose(L.tensorsolve(a, b), np.linalg.tensorsolve(a, b), rtol=1e-10)
    ai = _general(rng, (), 6).reshape(2, 3, 3, 2)
    np.testing.assert_allclose(L.tensorinv(ai), np.linalg.tensorinv(ai), rtol=1e-10)
    check_grads(lambda x, y: L.tensorsolve(x, y), (a, b), order=1)
    m = _distinct_singular(rng, (2,), 3, 3)
    for p in (None, 2, -2, 1, "fro"):
        np.testing.assert_allclose(L.cond(m, p), np.linalg.cond(m, p), rtol=1e-10)
    check_grads(L.cond, (m,), order=1)
    assert L.matrix_rank(m[0]) == 3
    x, y = rng.normal(size=(2, 4)), rng.normal(size=(4,))
    np.testing.assert_allclose(L.vecdot(x, y), np.linalg.vecdot(x, y))
    np.testing.assert_allclose(L.outer(y, y), np.linalg.outer(y, y))


# ---- float32 --------------------------------------------------------------------------------
F32_CASES = {
    "solve": (lambda a, b: L.solve(a, b), "gen", True),
    "inv": (L.inv, "gen", False),
    "det": (L.det, "gen", False),
    "slogdet": (lambda a: L.slogdet(a)[1], "gen", False),
    "cholesky": (L.cholesky, "spd", False),
    "eigh": (lambda a: L.eigh(a)[1], "eig", False),
    "eigvalsh": (L.eigvalsh, "eig", False),
    "svd": (lambda a: L.svd(a)[0], "svd", False),
    "svdvals": (L.svdvals, "svd", False),
    "qr": (lambda a: L.qr(a)[1], "svd", False),
    "pinv": (L.pinv, "svd", False),
    "norm": (lambda a: L.matrix_norm(a, ord="nuc"), "svd", False),
    "matrix_power": (lambda a: L.matrix_power(a, 3), "gen", False),
}


@pytest.mark.parametrize("name", sorted(F32_CASES))
def test_float32_stays_float32(name):
    f, kind, with_b = F32_CASES[name]
    rng = np.random.default_rng(5)
    make = {"gen": lambda: _general(rng, (2,), 3), "spd": lambda: _spd(rng, (2,), 3),
            "eig": lambda: _distinct_spectrum(rng, (2,), 3),
            "svd": lambda: _distinct_singular(rng, (2,), 3, 3)}[kind]
    args = [make().astype(np.float32)]
    if with_b:
        args.append(rng.normal(size=(2, 3, 2)).astype(np.float32))
    out = f(*args)
    assert out.dtype == np.float32
    tangents = [np.ones_like(a) for a in args]
    y, t = funcgrad.jvp(f, args, tangents)
    assert y.dtype == np.float32 and t.dtype == np.float32
    g = funcgrad.grad(lambda *a: fnp.sum(f(*a)), argnums=tuple(range(len(args))))(*args)
    assert all(gi.dtype == np.float32 for gi in g)
    # the float32 derivatives agree with float64 ones
    g64 = funcgrad.grad(lambda *a: fnp.sum(f(*a)), argnums=tuple(range(len(args))))(
        *[a.astype(np.float64) for a in args])
    for gi, gj in zip(g, g64):
        np.testing.assert_allclose(gi, gj, rtol=2e-3, atol=2e-3)


# ---- complex ------------------------------------------------------------------------------------
def _gauge_free(u, vh):
    """Functions of singular/eigen vectors that do not depend on their phases."""
    return fnp.real(u * fnp.conj(u))


@given(st.sampled_from([(), (2,)]), st.integers(1, 3), seeds)
def test_complex(batch, n, seed):
    rng = np.random.default_rng(seed)
    a = _general(rng, batch, n, complex)
    b = rng.normal(size=batch + (n, 2)) + 1j * rng.normal(size=batch + (n, 2))
    np.testing.assert_allclose(L.solve(a, b), np.linalg.solve(a, b), rtol=1e-10)
    check_complex(L.solve, (a, b))
    check_complex(L.inv, (a,))
    check_complex(L.det, (a,))
    check_complex(lambda x: tuple(L.slogdet(x)), (a,))
    h = _spd(rng, batch, n, complex)
    np.testing.assert_allclose(L.cholesky(h), np.linalg.cholesky(h), rtol=1e-10, atol=1e-12)
    check_complex(L.cholesky, (h,))
    e = _distinct_spectrum(rng, batch, n, complex)
    check_complex(L.eigvalsh, (e,))
    # eigenvectors up to phase: V diag(exp(w)) V^H and |V|^2 are phase-free
    check_complex(lambda x: (lambda w, v: (fnp.matmul(v * fnp.exp(w)[..., None, :],
                                                      fnp.conj(fnp.swapaxes(v, -1, -2))),
                                           fnp.real(v * fnp.conj(v))))(*L.eigh(x)), (e,))
    s = _distinct_singular(rng, batch, n + 1, n, complex)
    check_complex(L.svdvals, (s,))
    check_complex(lambda x: (lambda u, sv, vh: (fnp.matmul(u, vh), _gauge_free(u, vh),
                                                _gauge_free(vh, u)))(
        *L.svd(x, full_matrices=False)), (s,))
    check_complex(lambda x: tuple(L.qr(x)), (s,))
    check_complex(L.pinv, (s,))
    check_complex(lambda x: L.norm(x, "nuc", axis=(-2, -1)), (s,))
    check_complex(lambda x: L.norm(x, 3, axis=-1), (s,))


def test_complex_norm_values():
    z = np.array([3 + 4j, 0, 1j])
    for ord in (None, 1, 2, np.inf, 3):
        np.testing.assert_allclose(L.norm(z, ord), np.linalg.norm(z, ord))
        assert L.norm(z, ord).dtype == np.float64


# ---- batching, dispatch, errors ---------------------------------------------------------------
def test_vmap_matches_batched_calls():
    rng = np.random.default_rng(6)
    a = _general(rng, (4,), 3)
    b = rng.normal(size=(3, 4))
    with warnings.catch_warnings():
        warnings.simplefilter("error")            # no fallback loop
        np.testing.assert_allclose(funcgrad.vmap(L.solve, in_axes=(0, 1))(a, b),
                                   np.linalg.solve(a, b.T[..., None])[..., 0], rtol=1e-10)
        np.testing.assert_allclose(funcgrad.vmap(L.inv, in_axes=2)(np.moveaxis(a, 0, 2)),
                                   np.linalg.inv(a), rtol=1e-10)
        np.testing.assert_allclose(funcgrad.vmap(lambda x: L.svd(x)[1])(a),
                                   np.linalg.svd(a)[1], rtol=1e-10)
        g = funcgrad.vmap(funcgrad.grad(lambda x: L.slogdet(x)[1]))(a)
    np.testing.assert_allclose(g, np.swapaxes(np.linalg.inv(a), -1, -2), rtol=1e-10)


def test_plain_numpy_linalg_dispatches():
    rng = np.random.default_rng(7)
    a = _spd(rng, (), 3)
    g = funcgrad.grad(lambda x: np.sum(np.linalg.inv(x)) + np.linalg.slogdet(x)[1]
                      + np.linalg.norm(np.linalg.cholesky(x)))(a)
    g_ref = funcgrad.grad(lambda x: fnp.sum(L.inv(x)) + L.slogdet(x)[1]
                          + L.norm(L.cholesky(x)))(a)
    np.testing.assert_allclose(g, g_ref)


def test_size_one_and_empty_batch():
    a = np.array([[[4.0]]])
    np.testing.assert_allclose(L.cholesky(a), [[[2.0]]])
    np.testing.assert_allclose(funcgrad.grad(lambda x: L.det(x)[0])(a), [[[1.0]]])
    np.testing.assert_allclose(funcgrad.grad(lambda x: fnp.sum(L.eigh(x)[0]))(a), [[[1.0]]])
    e = np.zeros((0, 2, 2))
    assert L.inv(e).shape == (0, 2, 2)


def test_errors():
    with pytest.raises(FuncgradValueError, match="square"):
        L.inv(np.ones((2, 3)))
    with pytest.raises(FuncgradValueError, match="at least 2"):
        L.det(np.ones(3))
    with pytest.raises(FuncgradTypeError, match="float32"):
        L.inv(np.eye(2, dtype=np.float16))
    with pytest.raises(FuncgradValueError, match="rows"):
        L.solve(np.eye(3), np.ones(2))
    with pytest.raises(np.linalg.LinAlgError):
        L.inv(np.zeros((2, 2)))
    with pytest.raises(np.linalg.LinAlgError):      # det's derivative exists there
        funcgrad.grad(lambda a: L.slogdet(a)[1])(np.zeros((2, 2)))
    with pytest.raises(FuncgradTypeError, match="int"):
        L.matrix_power(np.eye(2), 1.5)
    assert L.inv(np.eye(2, dtype=int)).dtype == np.float64

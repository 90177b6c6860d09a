"""The derivative of det is the adjugate, which exists at singular matrices too (JAX
gives it there); slogdet's derivative does not exist there (log|det| = -inf)."""
import numpy as np
import pytest

import funcgrad
import funcgrad.numpy as fnp
from funcgrad.test_util import check_grads

det = fnp.linalg.det


def _adjugate(a):
    """Cofactors, the slow textbook way."""
    n = a.shape[0]
    c = np.empty_like(a)
    for i in range(n):
        for j in range(n):
            minor = np.delete(np.delete(a, i, 0), j, 1)
            c[i, j] = (-1) ** (i + j) * np.linalg.det(minor)
    return c.T


def test_grad_of_det_at_a_singular_matrix_is_the_adjugate_transposed():
    a = np.array([[1., 2.], [2., 4.]])
    np.testing.assert_allclose(funcgrad.grad(det)(a), [[4., -2.], [-2., 1.]])
    np.testing.assert_allclose(funcgrad.jacfwd(det)(a), [[4., -2.], [-2., 1.]])
    np.testing.assert_allclose(funcgrad.jit(funcgrad.grad(det))(a), [[4., -2.], [-2., 1.]])


@pytest.mark.parametrize("a", [
    np.diag([1., 1., 0.]),                                # rank n-1
    np.array([[1., 2., 3.], [2., 4., 6.], [0., 1., 5.]]),  # rank n-1, not diagonal
    np.zeros((3, 3)),                                     # rank 0: zero derivative
    np.outer([1., 2., 3.], [1., -1., 2.]),                # rank 1: zero derivative
])
def test_grad_of_det_at_singular_matrices_matches_the_cofactors(a):
    np.testing.assert_allclose(funcgrad.grad(det)(a), _adjugate(a).T, atol=1e-12)


def test_singular_and_regular_matrices_in_one_stack_under_vmap():
    rng = np.random.default_rng(0)
    stack = np.stack([rng.normal(size=(3, 3)), np.diag([2., 3., 0.]), rng.normal(size=(3, 3))])
    want = np.stack([_adjugate(m).T for m in stack])
    np.testing.assert_allclose(funcgrad.vmap(funcgrad.grad(det))(stack), want, atol=1e-12)
    np.testing.assert_allclose(funcgrad.grad(lambda s: det(s).sum())(stack), want, atol=1e-12)


def test_complex_singular_matrix():
    a = np.array([[1 + 1j, 2.], [2 + 2j, 4.]])
    g = funcgrad.grad(lambda z: det(z).real)(a)
    np.testing.assert_allclose(g, _adjugate(a).T, atol=1e-12)


def test_float32_stays_float32_at_a_singular_matrix():
    a = np.array([[1., 2.], [2., 4.]], dtype=np.float32)
    assert funcgrad.grad(det)(a).dtype == np.float32


def test_regular_matrices_still_check_to_second_order():
    a = np.random.default_rng(1).normal(size=(3, 3))
    check_grads(det, (a,), order=2, modes=("fwd", "rev"))
    b = np.random.default_rng(2).normal(size=(2, 3, 3))
    check_grads(det, (b,), order=2, modes=("fwd", "rev"))


def test_matches_jax_at_a_singular_matrix():
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    a = np.array([[1., 2., 3.], [4., 5., 6.], [7., 8., 9.]])
    np.testing.assert_allclose(funcgrad.grad(det)(a), jax.grad(jax.numpy.linalg.det)(a),
                               atol=1e-10)


def test_slogdet_derivative_is_defined_off_the_singular_matrices_only():
    a = np.array([[2., 1.], [1., 3.]])
    np.testing.assert_allclose(
        funcgrad.grad(lambda m: fnp.linalg.slogdet(m).logabsdet)(a), np.linalg.inv(a).T)
    with pytest.raises(np.linalg.LinAlgError, match="singular"):
        funcgrad.grad(lambda m: fnp.linalg.slogdet(m).logabsdet)(
            np.array([[1., 2.], [2., 4.]]))

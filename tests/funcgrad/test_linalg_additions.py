"""svd with NumPy's default full_matrices=True under differentiation."""
import numpy as np
import pytest

import funcgrad
import funcgrad.numpy as fnp
from funcgrad.test_util import check_grads


@pytest.mark.parametrize("shape", [(3, 5), (5, 3), (2, 4, 3)])
def test_svd_full_matrices_singular_values_differentiable(shape):
    a = np.random.RandomState(0).rand(*shape)
    g = funcgrad.grad(lambda a: fnp.linalg.svd(a)[1].sum())(a)
    g_thin = funcgrad.grad(lambda a: fnp.linalg.svd(a, full_matrices=False)[1].sum())(a)
    np.testing.assert_allclose(g, g_thin, atol=1e-12)
    check_grads(lambda a: fnp.linalg.svd(a)[1], (a,), order=2)


@pytest.mark.parametrize("shape", [(3, 5), (5, 3)])
@pytest.mark.parametrize("cplx", [False, True])
def test_svd_full_matrices_vectors_modes_agree(shape, cplx):
    a = np.random.RandomState(1).rand(*shape)
    if cplx:
        a = a + 1j * np.random.RandomState(2).rand(*shape)
    # the extra vectors are arbitrary: the two modes must agree with each other
    check_grads(lambda a: fnp.linalg.svd(a), (a,), order=1, modes=("rev",))
    u, du = funcgrad.jvp(lambda a: fnp.linalg.svd(a)[0], (a,), (np.ones_like(a),))
    # U stays unitary to first order, and the thin part's tangent is the thin svd's
    skew = np.conj(du).T @ u + np.conj(u).T @ du
    np.testing.assert_allclose(skew, 0, atol=1e-12)
    k = min(shape)

    def phase_fixed(a):                  # each column times its first entry's conjugate
        u1 = fnp.linalg.svd(a)[0][:, :k]
        return u1 * fnp.conj(u1[:1])
    check_grads(phase_fixed, (a,), order=1, modes=("fwd",))

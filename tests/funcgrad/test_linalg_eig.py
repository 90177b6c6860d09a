"""numpy.linalg.eig/eigvals (issue 17, item 12): values as NumPy, derivatives for distinct
eigenvalues to second order (eigenvectors through phase-invariant functions), real and
complex input, float32 kept; hypothesis-drawn matrices through the table harness."""
from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

import funcgrad
import funcgrad.numpy as fnp
from funcgrad.test_util import check_grads

from . import table
from .table import Case


def _draw(data):
    n = data.draw(st.integers(1, 4))
    rng = np.random.default_rng(data.draw(st.integers(0, 2 ** 16)))
    # distinct eigenvalues: a random similarity of a well-spread diagonal
    d = np.arange(n) * 1.5 - n / 2 + rng.uniform(-0.2, 0.2, n)
    s = rng.standard_normal((n, n)) + 2 * np.eye(n)
    return [s @ np.diag(d) @ np.linalg.inv(s) + 0.1 * rng.standard_normal((n, n))], {}


def _sorted_eigvals(m, a):
    w = m.linalg.eigvals(a)
    # NumPy may return a real array; compare sorted complex values
    w = w.astype(np.complex128) if m is np else w
    return m.sort_complex(w) if m is np else w


CASES = [
    Case("eigvals_sym_fn", _draw,
         lambda m, a: m.sum(m.real(m.linalg.eigvals(a)) ** 2 - m.imag(m.linalg.eigvals(a)) ** 2),
         dispatch=False, rtol=1e-9, atol=1e-9),
    Case("eig_vector_moduli", _draw,
         lambda m, a: m.sort(m.abs(m.linalg.eig(a)[1]) ** 2, axis=0).sum(axis=0),
         dispatch=False, rtol=1e-9, atol=1e-9, order=1),
    Case("eig_residual", _draw,
         lambda m, a: m.abs(a @ m.linalg.eig(a)[1]
                            - m.linalg.eig(a)[1] * m.linalg.eig(a)[0]),
         dispatch=False, rtol=1e-9, atol=1e-9, order=1, tol=dict(atol=1e-6, rtol=1e-6)),
]

(test_values_match_numpy, test_grads, test_float32, _, _) = table.table_tests(
    CASES, values=3, grads=3, float32=1, mixed=0, dispatch=0)
test_jit_matches = table.jit_table_test(CASES)


def test_eig_values_and_known_derivatives():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((4, 4))
    w, v = fnp.linalg.eig(a)
    nw, nv = np.linalg.eig(a)
    np.testing.assert_allclose(w, nw, rtol=1e-12)
    np.testing.assert_allclose(v, nv, rtol=1e-12, atol=1e-12)
    assert w.dtype == np.complex128 and fnp.linalg.eig(a.astype(np.float32))[0].dtype == \
        np.complex64
    # the sum of the eigenvalues is the trace: its gradient is the identity
    g = funcgrad.grad(lambda m: fnp.real(fnp.sum(fnp.linalg.eigvals(m))))(a)
    np.testing.assert_allclose(g, np.eye(4), atol=1e-12)
    # the product is the determinant: gradient det(a) inv(a)^T
    g = funcgrad.grad(lambda m: fnp.real(fnp.prod(fnp.linalg.eigvals(m))))(a)
    np.testing.assert_allclose(g, np.linalg.det(a) * np.linalg.inv(a).T, rtol=1e-10)
    # complex input, second order
    c = a + 1j * rng.standard_normal((4, 4))
    check_grads(fnp.linalg.eigvals, (c,), order=2)
    check_grads(lambda m: fnp.abs(fnp.linalg.eig(m)[1]), (c,), order=1)
    # plain numpy.linalg.eig on a tracer routes here
    g2 = funcgrad.grad(lambda m: np.real(np.sum(np.linalg.eigvals(m))))(a)
    np.testing.assert_allclose(g2, np.eye(4), atol=1e-12)

"""jacfwd / jacrev / hessian with holomorphic=True: JAX's semantics (complex inputs and
outputs required; the result is the complex Jacobian df/dz)."""
import numpy as np
import pytest

import funcgrad
import funcgrad.numpy as fnp
from funcgrad.errors import FuncgradTypeError

Z = np.array([0.3 + 0.4j, -1.1 + 0.2j, 0.7 - 0.9j])


def f(z):
    return z ** 2 + fnp.sin(z)


@pytest.mark.parametrize("jac", [funcgrad.jacfwd, funcgrad.jacrev])
def test_complex_jacobian_of_a_holomorphic_function(jac):
    got = jac(f, holomorphic=True)(Z)
    np.testing.assert_allclose(got, np.diag(2 * Z + np.cos(Z)), rtol=1e-12, atol=1e-12)
    assert got.dtype == np.complex128


@pytest.mark.parametrize("jac", [funcgrad.jacfwd, funcgrad.jacrev])
def test_forward_and_reverse_agree_on_a_matrix_function(jac):
    a = np.array([[1 + 1j, 2], [0.5j, -1]])
    got = jac(lambda z: fnp.exp(a @ z), holomorphic=True)(Z[:2])
    np.testing.assert_allclose(got, np.exp(a @ Z[:2])[:, None] * a, rtol=1e-12)


def test_hessian_holomorphic():
    h = funcgrad.hessian(lambda z: fnp.sum(z ** 3), holomorphic=True)(Z)
    np.testing.assert_allclose(h, np.diag(6 * Z), rtol=1e-12)


@pytest.mark.parametrize("jac", [funcgrad.jacfwd, funcgrad.jacrev])
def test_real_inputs_are_refused(jac):
    with pytest.raises(FuncgradTypeError, match="holomorphic=True.*input leaf 0 has dtype float64"):
        jac(f, holomorphic=True)(Z.real)


@pytest.mark.parametrize("jac", [funcgrad.jacfwd, funcgrad.jacrev])
def test_real_outputs_are_refused(jac):
    with pytest.raises(FuncgradTypeError, match="holomorphic=True.*output leaf 0 has dtype float64"):
        jac(lambda z: fnp.abs(z), holomorphic=True)(Z)


def test_without_holomorphic_nothing_changes():
    x = np.array([0.5, -0.2])
    np.testing.assert_allclose(funcgrad.jacfwd(fnp.sin)(x), np.diag(np.cos(x)))
    np.testing.assert_allclose(funcgrad.jacrev(fnp.sin)(x), np.diag(np.cos(x)))

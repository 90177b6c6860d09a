"""funcgrad.scipy.special.erf and erfc of complex input: values from SciPy, holomorphic
derivatives."""
import sys

import numpy as np
import pytest

import funcgrad
import funcgrad.scipy.special as fsp
from funcgrad.errors import FuncgradTypeError
from funcgrad.test_util import check_grads

ss = pytest.importorskip("scipy.special")

Z = np.array([0.5 + 0.3j, 1.0 - 2.0j, -3.0 + 0.1j, 0.0 + 1.5j, 2.5 + 2.5j])


@pytest.mark.parametrize("name", ["erf", "erfc"])
def test_values_match_scipy(name):
    got = getattr(fsp, name)(Z)
    assert got.dtype == np.complex128
    np.testing.assert_allclose(got, getattr(ss, name)(Z), rtol=1e-13)
    z64 = Z.astype(np.complex64)
    assert getattr(fsp, name)(z64).dtype == np.complex64


@pytest.mark.parametrize("name, sign", [("erf", 1.0), ("erfc", -1.0)])
def test_holomorphic_derivative(name, sign):
    f = getattr(fsp, name)
    want = sign * 2 / np.sqrt(np.pi) * np.exp(-Z ** 2)
    _, tangent = funcgrad.jvp(f, (Z,), (np.ones_like(Z),))
    np.testing.assert_allclose(tangent, want, rtol=1e-12)
    g = funcgrad.grad(lambda z: f(z), holomorphic=True)(complex(Z[0]))
    np.testing.assert_allclose(g, want[0], rtol=1e-12)
    check_grads(f, (Z,), order=2)


def test_real_input_unchanged():
    x = np.array([-1.0, 0.2, 3.0])
    np.testing.assert_allclose(fsp.erf(x), ss.erf(x), rtol=1e-14)
    assert fsp.erf(x).dtype == np.float64


def test_complex_without_scipy_raises(monkeypatch):
    monkeypatch.setitem(sys.modules, "scipy.special", None)
    with pytest.raises(FuncgradTypeError, match="needs SciPy"):
        fsp.erf(Z)
    np.testing.assert_allclose(fsp.erfc(np.array([0.5])), [0.4795001221869535], rtol=1e-14)

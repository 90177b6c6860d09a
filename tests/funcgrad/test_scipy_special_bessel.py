"""Bessel functions and Hurwitz zeta in funcgrad.scipy.special (issue 17, item 12): values
as SciPy, derivatives in x to second order (hypothesis through the table harness)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import strategies as st

import funcgrad
import funcgrad.scipy.special as fsp
from funcgrad.errors import FuncgradValueError

from . import table
from .table import Case

ss = pytest.importorskip("scipy.special")


def _lib(m):
    return ss if m is np else fsp


def _draw(lo, hi, orders=(None,)):
    def draw(data):
        shape = table._shape(data, min_nd=0, max_nd=2)
        rng = np.random.default_rng(data.draw(st.integers(0, 2 ** 16)))
        v = data.draw(st.sampled_from(orders))
        x = rng.uniform(lo, hi, shape)
        return ([x] if v is None else [x]), ({} if v is None else {"v": v})
    return draw


CASES = [Case(n, _draw(0.2, 12.0), (lambda n: lambda m, x: getattr(_lib(m), n)(x))(n),
              dispatch=False) for n in ("j0", "j1", "y0", "y1")]
# (SciPy's integer-order loop returns float64 for float32 x; a Python int order keeps
# funcgrad's float32, so SciPy gets the order as a float)
CASES += [Case(n, _draw(0.2, 12.0, (0, 1, 2, 5, -1)),
               (lambda n: lambda m, x, v: getattr(_lib(m), n)(float(v) if m is np else v,
                                                              x))(n), dispatch=False)
          for n in ("jn", "yn")]
CASES += [Case(n, _draw(0.2, 12.0, (0.0, 0.5, 1.0, 2.5, -1.5)),
               (lambda n: lambda m, x, v: getattr(_lib(m), n)(v, x))(n), dispatch=False,
               rtol=1e-11, atol=1e-12)
          for n in ("jv", "yv", "iv")]
CASES += [Case("ive", _draw(-12.0, 12.0, (0.0, 1.0, 2.0, -3.0)),
               lambda m, x, v: _lib(m).ive(v, x), dispatch=False),
          Case("zeta_q", _draw(0.3, 5.0, (2.0, 3.5, 1.5)),
               lambda m, x, v: _lib(m).zeta(v, x), dispatch=False, rtol=1e-11, atol=1e-12)]

(test_values_match_scipy, test_grads, test_float32, _, _) = table.table_tests(
    CASES, values=3, grads=3, float32=1, mixed=0, dispatch=0)
test_jit_matches = table.jit_table_test(CASES)


def test_known_derivatives():
    x = np.array([0.5, 2.0, 7.0])
    np.testing.assert_allclose(funcgrad.vmap(funcgrad.grad(fsp.j0))(x), -ss.j1(x), rtol=1e-13)
    np.testing.assert_allclose(funcgrad.vmap(funcgrad.grad(fsp.y0))(x), -ss.y1(x), rtol=1e-13)
    np.testing.assert_allclose(funcgrad.vmap(funcgrad.grad(lambda t: fsp.iv(0.0, t)))(x),
                               ss.iv(1.0, x), rtol=1e-13)
    np.testing.assert_allclose(funcgrad.vmap(funcgrad.grad(lambda q: fsp.zeta(2.0, q)))(x),
                               -2.0 * ss.zeta(3.0, x), rtol=1e-13)
    assert float(fsp.zeta(2.0)) == pytest.approx(np.pi ** 2 / 6, rel=1e-14)


def test_no_derivative_in_the_order():
    with pytest.raises(FuncgradValueError, match="special.jv: no derivative with respect to"):
        funcgrad.grad(lambda v: fsp.jv(v, 1.0))(1.0)
    with pytest.raises(FuncgradValueError, match="special.zeta: no derivative with respect"):
        funcgrad.grad(lambda s: fsp.zeta(s, 2.0))(3.0)

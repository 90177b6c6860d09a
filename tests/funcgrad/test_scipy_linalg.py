"""funcgrad.scipy.linalg against SciPy (issue 17, item 12): values, derivatives to second
order in float64 (hypothesis-drawn matrices through the table harness), float32 kept."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import strategies as st

import funcgrad
import funcgrad.scipy.linalg as fl
from funcgrad.errors import FuncgradValueError
from funcgrad.test_util import check_grads

from . import table
from .table import Case

sl = pytest.importorskip("scipy.linalg")


def _lib(m):
    """SciPy's linalg for the NumPy run of a case, ours for the funcgrad.numpy run."""
    return sl if m is np else fl


def _draw(make):
    """A case's draw: ``make(rng, n)`` with a drawn size and seed."""
    def draw(data):
        n = data.draw(st.integers(1, 4), label="n")
        rng = np.random.default_rng(data.draw(st.integers(0, 2 ** 16), label="seed"))
        return make(rng, n), {}
    return draw


def _well(rng, n):
    """A well-conditioned matrix (diagonally dominant)."""
    return rng.standard_normal((n, n)) + 3 * n * np.eye(n) * rng.choice([-1, 1])


def _spd(rng, n):
    m = rng.standard_normal((n, n))
    return m @ m.T + n * np.eye(n)


def _tri(m, lower):
    return np.tril(m) if lower else np.triu(m)


CASES = [
    Case(f"solve_triangular_t{tr}_{'low' if lo else 'up'}{'_unit' if ud else ''}",
         _draw(lambda r, n: [_well(r, n), r.standard_normal((n, 2))]),
         (lambda tr, lo, ud: lambda m, a, b: _lib(m).solve_triangular(
             a, b, trans=tr, lower=lo, unit_diagonal=ud))(tr, lo, ud),
         dispatch=False, mixed=True)
    for tr in (0, 1) for lo in (False, True) for ud in (False, True)
] + [
    Case("solve_triangular_vector", _draw(lambda r, n: [_well(r, n), r.standard_normal(n)]),
         lambda m, a, b: _lib(m).solve_triangular(a, b, lower=True), dispatch=False),
    Case("cho_solve_upper", _draw(lambda r, n: [np.linalg.cholesky(_spd(r, n)).T,
                                                r.standard_normal((n, 2))]),
         lambda m, c, b: _lib(m).cho_solve((c, False), b), dispatch=False),
    Case("cho_solve_lower", _draw(lambda r, n: [np.linalg.cholesky(_spd(r, n)),
                                                r.standard_normal(n)]),
         lambda m, c, b: _lib(m).cho_solve((c, True), b), dispatch=False),
    Case("cholesky", _draw(lambda r, n: [_spd(r, n)]),
         lambda m, a: _lib(m).cholesky(a), dispatch=False),
    Case("lu", _draw(lambda r, n: [r.standard_normal((n, n))]),
         lambda m, a: tuple(_lib(m).lu(a)), dispatch=False),
    Case("lu_permute_l", _draw(lambda r, n: [r.standard_normal((n, n))]),
         lambda m, a: tuple(_lib(m).lu(a, permute_l=True)), dispatch=False),
    Case("lu_factor", _draw(lambda r, n: [r.standard_normal((n, n))]),
         lambda m, a: _lib(m).lu_factor(a)[0], dispatch=False,
         jit="piv, LAPACK's interchanges, is built in Python from the concrete permutation: "
             "lu_factor raises ConcretizationTypeError under jit (lu works)"),
    Case("expm", _draw(lambda r, n: [r.standard_normal((n, n)) * r.choice([0.1, 1.0, 4.0])]),
         lambda m, a: _lib(m).expm(a), dispatch=False, rtol=1e-11, atol=1e-11,
         tol=dict(rtol=1e-5, atol=1e-5),
         jit="the number of squarings comes from A's concrete norm: documented to raise "
             "under jit"),
    Case("sqrtm", _draw(lambda r, n: [_spd(r, n)]), lambda m, a: _lib(m).sqrtm(a),
         dispatch=False, rtol=1e-9, atol=1e-9),
    Case("solve_sylvester", _draw(lambda r, n: [_well(r, n), _well(r, 2) * np.sign(
        np.linalg.det(_well(r, 1))), r.standard_normal((n, 2))]),
         lambda m, a, b, q: _lib(m).solve_sylvester(a, b, q), dispatch=False, rtol=1e-10,
         atol=1e-10, f32=False),
    Case("solve_banded", _draw(lambda r, n: [r.standard_normal((3, n)) + np.array(
        [[0.0], [3.0 * n], [0.0]]), r.standard_normal(n)]),
         lambda m, ab, b: _lib(m).solve_banded((1, 1), ab, b), dispatch=False,
         rtol=1e-10, atol=1e-10),
]

(test_values_match_scipy, test_grads, test_float32, test_mixed_precision,
 _) = table.table_tests(CASES, values=3, grads=3, float32=1, mixed=1, dispatch=0)
test_jit_matches = table.jit_table_test(CASES)


def test_lu_factor_pivots_and_lu_solve_as_scipy():
    rng = np.random.default_rng(3)
    for n in (1, 3, 6):
        a = rng.standard_normal((n, n))
        b = rng.standard_normal((n, 2))
        lu, piv = fl.lu_factor(a)
        slu, spiv = sl.lu_factor(a)
        np.testing.assert_array_equal(piv, spiv)
        np.testing.assert_allclose(lu, slu, rtol=1e-12, atol=1e-12)
        for trans in (0, 1, 2):
            np.testing.assert_allclose(fl.lu_solve((lu, piv), b, trans=trans),
                                       sl.lu_solve((slu, spiv), b, trans=trans), rtol=1e-10)
        check_grads(lambda m, v: fl.lu_solve((m, piv), v), (lu, b), order=2)
        p_idx, lo, up = fl.lu(a, p_indices=True)
        np.testing.assert_array_equal(p_idx, sl.lu(a, p_indices=True)[0])


def test_lu_of_a_stack_and_singular_pivot():
    rng = np.random.default_rng(4)
    a = rng.standard_normal((2, 3, 3))
    p, lo, up = fl.lu(a)
    np.testing.assert_allclose(p @ lo @ up, a, atol=1e-12)
    check_grads(lambda m: fl.lu(m)[1:], (a,), order=1)
    # a zero column: U is singular, the factorization still exists
    s = np.array([[0.0, 1.0], [0.0, 2.0]])
    p, lo, up = fl.lu(s)
    np.testing.assert_allclose(p @ lo @ up, s)


def test_expm_large_norm_and_known_values():
    a = np.array([[0.0, -np.pi], [np.pi, 0.0]])     # a rotation by pi
    np.testing.assert_allclose(fl.expm(a), -np.eye(2), atol=1e-14)
    big = np.random.default_rng(5).standard_normal((3, 3)) * 20
    np.testing.assert_allclose(fl.expm(big), sl.expm(big), rtol=1e-11)
    # d/dt expm(t A) at t = 1 is A expm(A)
    b = np.random.default_rng(6).standard_normal((3, 3))
    _, t = funcgrad.jvp(fl.expm, (b,), (b,))
    np.testing.assert_allclose(t, b @ sl.expm(b), rtol=1e-10)
    assert fl.expm(np.zeros((0, 0))).shape == (0, 0)


def test_errors_name_the_function():
    with pytest.raises(FuncgradValueError, match="solve_triangular.*do not match"):
        fl.solve_triangular(np.eye(3), np.ones(2))
    with pytest.raises(FuncgradValueError, match="solve_banded.*l \\+ u \\+ 1"):
        fl.solve_banded((1, 1), np.ones((2, 3)), np.ones(3))
    with pytest.raises(FuncgradValueError, match="solve_sylvester"):
        fl.solve_sylvester(np.eye(2), np.eye(3), np.ones((3, 3)))
    with pytest.raises(FuncgradValueError, match="sqrtm.*no real square root"):
        fl.sqrtm(np.array([[-1.0, 0.0], [0.0, 1.0]]))

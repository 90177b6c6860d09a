"""The composites in funcgrad/_src/prims/misc.py (angle, kron, cross, polyval, interp,
convolve, trapezoid, gradient, unique, histogram...): values against NumPy and
derivatives (check_grads, order 2, float64), float32, dispatch; then their special points
and the non-differentiable helpers."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import funcgrad
import funcgrad.numpy as fnp
from funcgrad.test_util import check_grads

from . import table

R = np.random.default_rng(0)


def rnd(*shape):
    return R.uniform(0.2, 1.5, size=shape)


CASES = {
    "angle": (lambda m, z: m.angle(z), lambda: (rnd(3) + 1j * rnd(3),)),
    "angle_deg": (lambda m, z: m.angle(z, deg=True), lambda: (rnd(2, 2) - 1j * rnd(2, 2),)),
    "fabs": (lambda m, x: m.fabs(x - 0.7), lambda: (rnd(4),)),
    "float_power": (lambda m, x, y: m.float_power(x, y), lambda: (rnd(3), rnd(3))),
    "ldexp": (lambda m, x: m.ldexp(x, np.array([1, -2, 3])), lambda: (rnd(3),)),
    "modf": (lambda m, x: m.modf(x * 3)[0], lambda: (rnd(4),)),
    "sinc": (lambda m, x: m.sinc(x), lambda: (np.array([0.3, -0.6, 1.7]),)),
    "nan_to_num": (lambda m, x: m.nan_to_num(x), lambda: (rnd(4),)),
    "kron_2d": (lambda m, a, b: m.kron(a, b), lambda: (rnd(2, 3), rnd(3, 2))),
    "kron_mixed": (lambda m, a, b: m.kron(a, b), lambda: (rnd(3), rnd(2, 2))),
    "cross3": (lambda m, a, b: m.cross(a, b), lambda: (rnd(4, 3), rnd(3))),
    "cross2": (lambda m, a, b: m.cross(a, b), lambda: (rnd(2), rnd(2))),
    "cross_axis": (lambda m, a, b: m.cross(a, b, axis=0), lambda: (rnd(3, 2), rnd(3, 2))),
    "vecdot": (lambda m, a, b: m.vecdot(a, b), lambda: (rnd(2, 3), rnd(3))),
    "polyval": (lambda m, p, x: m.polyval(p, x), lambda: (rnd(4), rnd(5))),
    "interp": (lambda m, x, fp: m.interp(x, np.array([0.0, 0.5, 1.1, 2.0]), fp),
               lambda: (np.array([-0.3, 0.2, 0.7, 1.4, 2.6]), rnd(4))),
    "convolve_full": (lambda m, a, v: m.convolve(a, v), lambda: (rnd(5), rnd(3))),
    "convolve_same": (lambda m, a, v: m.convolve(a, v, mode="same"), lambda: (rnd(5), rnd(2))),
    "convolve_valid": (lambda m, a, v: m.convolve(a, v, mode="valid"), lambda: (rnd(3), rnd(6))),
    "correlate": (lambda m, a, v: m.correlate(a, v, mode="full"), lambda: (rnd(5), rnd(3))),
    "trapezoid_dx": (lambda m, y: m.trapezoid(y, dx=0.5), lambda: (rnd(3, 4),)),
    "trapezoid_x": (lambda m, y, x: m.trapezoid(y, x, axis=0), lambda: (rnd(4, 2), np.sort(rnd(4)))),
    "gradient": (lambda m, f: m.gradient(f, 0.5), lambda: (rnd(5),)),
    "gradient_2d": (lambda m, f: m.gradient(f, axis=1), lambda: (rnd(3, 4),)),
}


def _numpy_twin(name):
    return not name.startswith("trapezoid") or hasattr(np, "trapezoid")


# Each entry through the table checks of tests/funcgrad/table.py (values against NumPy
# eagerly and under jvp, check_grads to order 2 in the real arguments, float32, mixed
# precision where two real arguments mix, NumPy dispatch); arguments made once, not drawn.
_TABLE = [table.Case(name, table.fixed_args(make), fn,
                     diff=name not in ("angle", "angle_deg"),     # complex arguments only
                     mixed=fn.__code__.co_argcount > 2)           # two real arguments
          for name, (fn, make) in sorted(CASES.items())]

(test_values_match_numpy, test_grads, test_float32, test_mixed_precision,
 test_numpy_dispatch) = table.table_tests(_TABLE, values=1, grads=1, float32=1, mixed=1,
                                          dispatch=1)
test_jit_matches = table.jit_table_test(_TABLE)


@settings(max_examples=8)
@given(st.integers(1, 6), st.integers(1, 4), st.sampled_from(["full", "same", "valid"]))
def test_convolve_shapes(n, m, mode):
    a, v = rnd(n), rnd(m)
    np.testing.assert_allclose(fnp.convolve(a, v, mode), np.convolve(a, v, mode), rtol=1e-12)
    check_grads(lambda a, v: fnp.convolve(a, v, mode), (a, v), order=1)


def test_nondifferentiable_helpers():
    x = np.array([0.1, 0.5, 0.9, 2.0])
    np.testing.assert_array_equal(fnp.searchsorted(x, [0.4, 1.0]), np.searchsorted(x, [0.4, 1.0]))
    np.testing.assert_array_equal(fnp.digitize([0.4, 1.0], x), np.digitize([0.4, 1.0], x))
    np.testing.assert_array_equal(fnp.isclose(x, x + 1e-9), np.isclose(x, x + 1e-9))
    assert fnp.allclose(x, x + 1e-12) and not fnp.allclose(x, x + 1)
    assert fnp.array_equal(x, x.copy()) and not fnp.array_equal(x, x[:2])
    np.testing.assert_array_equal(fnp.bincount(np.array([0, 2, 2])), [1, 0, 2])
    w = np.array([0.5, 1.0, 2.0])
    g = funcgrad.grad(lambda w: fnp.sum(fnp.bincount(np.array([0, 2, 2]), w) ** 2))(w)
    np.testing.assert_allclose(g, [1.0, 6.0, 6.0])
    assert fnp.iscomplexobj(np.ones(2, complex)) and fnp.isrealobj(np.ones(2))
    np.testing.assert_array_equal(fnp.iscomplex(np.array([1, 1j])), [False, True])
    np.testing.assert_allclose(fnp.nan_to_num(np.array([np.nan, np.inf, 1.0]), posinf=9.0),
                               [0.0, 9.0, 1.0])


def test_sinc_and_interp_are_nan_free_at_their_special_points():
    g = funcgrad.grad(lambda x: fnp.sum(fnp.sinc(x)))(np.array([0.0, 1.0]))
    assert np.isfinite(g).all() and g[0] == 0.0
    xp = np.array([0.0, 1.0, 2.0])
    g = funcgrad.grad(lambda x: fnp.sum(fnp.interp(x, xp, xp ** 2)))(np.array([-1.0, 0.5, 3.0]))
    np.testing.assert_allclose(g, [0.0, 1.0, 0.0])


def test_float32_preserved():
    x = rnd(3).astype(np.float32)
    for f in (lambda x: fnp.kron(x, x), lambda x: fnp.cross(x, x[::-1]), fnp.sinc,
              lambda x: fnp.convolve(x, x), lambda x: fnp.interp(x, np.float32([0, 1, 2]), x),
              lambda x: fnp.trapezoid(x), lambda x: fnp.polyval(x, x)):
        assert f(x).dtype == np.float32
        assert funcgrad.grad(lambda x: fnp.sum(f(x)))(x).dtype == np.float32


def test_plain_numpy_calls_dispatch():
    a, b = rnd(3), rnd(3)
    g = funcgrad.grad(lambda a: np.sum(np.cross(a, b) ** 2) + np.sum(np.kron(a, b)))(a)
    g2 = funcgrad.grad(lambda a: fnp.sum(fnp.cross(a, b) ** 2) + fnp.sum(fnp.kron(a, b)))(a)
    np.testing.assert_allclose(g, g2)


def test_unique_values_carry_the_derivative():
    x = np.array([3.0, 1.0, 3.0, 2.0, 1.0])
    np.testing.assert_array_equal(fnp.unique(x), np.unique(x))
    vals, idx, inv, cnt = fnp.unique(x, return_index=True, return_inverse=True, return_counts=True)
    for a, b in zip((vals, idx, inv, cnt), np.unique(x, True, True, True)):
        np.testing.assert_array_equal(a, b)
    g = funcgrad.grad(lambda x: fnp.sum(fnp.unique(x) * np.array([1.0, 10.0, 100.0])))(x)
    np.testing.assert_array_equal(g, [100.0, 1.0, 0.0, 10.0, 0.0])   # first occurrences
    m = np.array([[1.0, 2.0], [1.0, 2.0], [0.0, 5.0]])
    np.testing.assert_array_equal(fnp.unique(m, axis=0), np.unique(m, axis=0))
    with pytest.raises(TypeError, match="unique"):
        funcgrad.jit(fnp.unique)(x)


def test_histogram_counts_and_weighted_derivative():
    x = np.array([0.1, 0.4, 0.45, 0.9, 0.2])
    for kw in ({}, {"bins": 3}, {"bins": [0.0, 0.3, 1.0]}, {"density": True}):
        ours, theirs = fnp.histogram(x, **kw), np.histogram(x, **kw)
        np.testing.assert_allclose(ours[0], theirs[0])
        np.testing.assert_allclose(ours[1], theirs[1])
    w = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    np.testing.assert_allclose(fnp.histogram(x, bins=3, weights=w)[0],
                               np.histogram(x, bins=3, weights=w)[0])
    check_grads(lambda w: fnp.histogram(x, bins=3, weights=w, density=True)[0], (w,), order=2)


def test_at_set_with_a_value_carrying_leading_unit_axes_differentiates():
    # NumPy lets the value of x[idx] = v have extra leading axes of length 1; the
    # cotangent of v must come back in v's shape (it used to fail in a reshape)
    f = lambda v: fnp.sum(fnp.at(np.ones((3, 2)))[:, 0].set(v) ** 2)
    v = np.arange(3.0)[None]
    np.testing.assert_allclose(funcgrad.grad(f)(v), 2 * v)
    check_grads(f, (v,), order=2)

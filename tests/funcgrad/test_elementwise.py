"""Elementwise functions (funcgrad/_src/prims/elementwise.py): unary and binary ufuncs
with broadcasting, operators, where, clip, complex paths as real functions of real
inputs; then the documented conventions at kinks and ties (abs at 0, maximum/minimum
ties, clip boundaries).

Every case runs through the table checks of ``tests/funcgrad/table.py`` (values against
NumPy, check_grads to order 2, float32, mixed precision, NumPy dispatch).
"""
from __future__ import annotations

import numpy as np
import pytest

import funcgrad
import funcgrad.numpy as fnp

from . import table
from .table import (_c, _clip_x, _frac, _grid0, _grid1, _gt1, _hi, _lo, _mask, _mod_x,
                    _mod_y, _nonzero, _pos, _real, _unit, bcast, fixed, same)

# NumPy's own astype(complex -> real) warns; funcgrad's takes the real part on purpose.
pytestmark = pytest.mark.filterwarnings("ignore::numpy.exceptions.ComplexWarning")

CASES: list[table.Case] = []


def spec(name, fn, domains, shapes, **kw):
    CASES.append(table.spec(name, fn, domains, shapes, **kw))


# ---- unary ufuncs ---------------------------------------------------------------------
_UNARY = {
    "negative": _real, "positive": _real, "sin": _real, "cos": _real, "tan": _unit,
    "arcsin": _unit, "arccos": _unit, "arctan": _real, "sinh": _real, "cosh": _real,
    "tanh": _real, "arcsinh": _real, "arccosh": _gt1, "arctanh": _unit, "exp": _real,
    "exp2": _real, "expm1": _real, "log": _pos, "log2": _pos, "log10": _pos, "log1p": _pos,
    "sqrt": _pos, "cbrt": _nonzero, "square": _real, "reciprocal": _nonzero,
    "deg2rad": _real, "radians": _real, "rad2deg": _real, "degrees": _real,
    "abs": _nonzero, "absolute": _nonzero, "real": _real, "imag": _real, "conj": _real,
    "conjugate": _real,
    # piecewise constant: derivative zero away from the jumps
    "sign": _nonzero, "floor": _frac, "ceil": _frac, "trunc": _frac, "fix": _frac,
    "rint": _frac, "round": _frac, "around": _frac,
}
for _n, _d in _UNARY.items():
    spec(_n, (lambda n: lambda m, x: getattr(m, n)(x))(_n), [_d], same(1))

spec("operators_unary", lambda m, x: -x + abs(x) * (+x), [_nonzero], same(1))
spec("round_decimals", lambda m, x: m.round(x * 10.0, 1) * x, [_frac], same(1))

# ---- binary ufuncs (with broadcasting) -------------------------------------------------
_BINARY = {
    "add": (_real, _real), "subtract": (_real, _real), "multiply": (_real, _real),
    "divide": (_real, _nonzero), "true_divide": (_real, _nonzero),
    "power": (_pos, _real), "pow": (_pos, _real),
    "arctan2": (_nonzero, _nonzero), "hypot": (_nonzero, _nonzero),
    "logaddexp": (_real, _real), "logaddexp2": (_real, _real),
    "maximum": (_grid0, _grid1), "minimum": (_grid0, _grid1),
    "fmax": (_grid0, _grid1), "fmin": (_grid0, _grid1),
    "remainder": (_mod_x, _mod_y), "mod": (_mod_x, _mod_y), "fmod": (_mod_x, _mod_y),
    "copysign": (_nonzero, _nonzero), "floor_divide": (_mod_x, _mod_y),
    "heaviside": (_nonzero, _real),
}
for _n, _d in _BINARY.items():
    spec(_n, (lambda n: lambda m, x, y: getattr(m, n)(x, y))(_n), _d, bcast(2))

spec("operators_binary", lambda m, x, y: (x + y) * x - y / (x * x + 1.0) + x ** 2,
     [_real, _real], bcast(2))
spec("numpy_array_on_the_left", lambda m, x: (
    np.full(x.shape, 2.0, x.dtype) * x - np.ones(x.shape, x.dtype) / x + x.dtype.type(1.5) ** x,
    np.ones(x.shape[-2:-1], x.dtype) @ x if x.ndim > 1 else x), [_pos], same(1))
spec("operators_scalars", lambda m, x: 2.0 - x + 3 * x / 2 + 1.5 ** x + x ** 3 - 1 / (x + 3.0),
     [_pos], same(1))
spec("power_int_exponent", lambda m, x: m.power(x, 3) + m.power(x, 0) + m.power(x, -2),
     [_nonzero], same(1))
spec("power_scalar_base", lambda m, y: m.power(2.0, y), [_real], same(1))
spec("power_negative_base_const_array_exponent",
     lambda m, x: m.power(x, np.full(x.shape, 3.0, x.dtype))
     + m.power(x, np.full(x.shape, 2, np.int8)),
     [_nonzero], same(1))
spec("where", lambda m, c, x, y: m.where(c, x, y), [_mask, _real, _real], bcast(3))
spec("where_scalar_branch", lambda m, c, x: m.where(c, x, 0.0) + m.where(c, 1.0, x),
     [_mask, _real], bcast(2))
spec("clip_scalars", lambda m, x: m.clip(x, -1.0, 1.0), [_clip_x], same(1))
spec("clip_arrays", lambda m, x, lo, hi: m.clip(x, lo, hi), [_clip_x, _lo, _hi], bcast(3))
spec("clip_lower_only", lambda m, x, lo: m.clip(x, lo, None), [_clip_x, _lo], bcast(2))
spec("clip_upper_kw", lambda m, x, hi: m.clip(x, max=hi), [_clip_x, _hi], bcast(2))
spec("clip_inverted_bounds", lambda m, x, lo, hi: m.clip(x, hi, lo), [_clip_x, _lo, _hi],
     bcast(3))
spec("clip_method", lambda m, x: x.clip(-1.0, 1.0), [_clip_x], same(1))

# ---- complex paths, as real functions of real inputs -----------------------------------
spec("complex_abs", lambda m, x, y: m.abs(m.astype(x, _c(x)) + 1j * y),
     [_nonzero, _nonzero], bcast(2))
spec("complex_exp_sin", lambda m, x, y: m.real(m.exp(x + 1j * y)) + m.imag(m.sin(x - 1j * y)),
     [_real, _real], bcast(2))
spec("complex_log_sqrt", lambda m, x, y: m.real(m.log(x + 1j * y) * m.sqrt(x + 1j * y)),
     [_pos, _real], bcast(2))
spec("complex_conj_mul", lambda m, x, y: m.imag(m.conj(x + 1j * y) * (y - 2j * x)) + m.real(
    m.conjugate(x * 1j) * m.reciprocal(y + 1j)), [_real, _real], bcast(2))
spec("complex_astype_real", lambda m, x, y: m.astype((x + 1j * y) * (1 - 2j), x.dtype),
     [_real, _real], bcast(2))
spec("complex_sum_matmul", lambda m, a, b: m.real(m.sum(m.matmul(a * (1 + 2j), b - 1j), axis=0)),
     [_real, _real], fixed((2, 3), (3, 2)))
spec("complex_var", lambda m, x, y: m.var(x + 1j * y, axis=-1), [_real, _real],
     same(2, 1, 3, min_side=2))
spec("complex_divide_power", lambda m, x, y: m.abs((x + 1j * y) / (y - 1j) + (x + 1j) ** 2),
     [_real, _real], bcast(2))
spec("complex_sign", lambda m, x, y: m.real(m.sign(x + 1j * y)) + m.imag(m.sign(y - 1j * x)),
     [_nonzero, _nonzero], bcast(2))
spec("complex_attributes", lambda m, x, y: ((x + 1j * y) * x).real * ((x - 1j * y) * y).imag,
     [_real, _real], bcast(2))


(test_values_match_numpy, test_grads, test_float32, test_mixed_precision,
 test_numpy_dispatch) = table.table_tests(CASES)
test_jit_matches = table.jit_table_test(CASES)


# ---- documented conventions at non-differentiable points --------------------------------


def test_abs_grad_at_zero_is_zero():
    g = funcgrad.grad(lambda x: fnp.sum(fnp.abs(x)))(np.array([0.0, -2.0, 3.0]))
    np.testing.assert_array_equal(g, [0.0, -1.0, 1.0])
    _, t = funcgrad.jvp(fnp.abs, (np.array(0.0),), (np.array(1.0),))
    assert t == 0.0
    assert funcgrad.grad(fnp.abs)(np.float32(0.0)) == 0.0


@pytest.mark.parametrize("name", ["maximum", "minimum", "fmax", "fmin"])
def test_elementwise_extremum_ties_split_half(name):
    f = getattr(fnp, name)
    x = np.array([1.0, 2.0, 3.0])
    y = np.array([1.0, 0.0, 3.0])
    gx, gy = funcgrad.grad(lambda x, y: fnp.sum(f(x, y)), argnums=(0, 1))(x, y)
    win = 1.0 if name in ("maximum", "fmax") else 0.0
    np.testing.assert_array_equal(gx, [0.5, win, 0.5])
    np.testing.assert_array_equal(gy, [0.5, 1 - win, 0.5])
    _, t = funcgrad.jvp(f, (x, y), (np.ones(3), np.full(3, 3.0)))
    np.testing.assert_array_equal(t, [2.0, 1.0 if win else 3.0, 2.0])
    # a scalar tied with every element
    g = funcgrad.grad(lambda s: fnp.sum(f(s, np.array([2.0, 2.0]))))(2.0)
    assert g == 1.0


def test_clip_passes_gradient_at_the_boundary():
    x = np.array([-1.0, -0.5, 1.0, 2.0, -3.0])
    g = funcgrad.grad(lambda x: fnp.sum(fnp.clip(x, -1.0, 1.0)))(x)
    np.testing.assert_array_equal(g, [1.0, 1.0, 1.0, 0.0, 0.0])
    lo, hi = np.full(5, -1.0), np.full(5, 1.0)
    gx, glo, ghi = funcgrad.grad(lambda x, lo, hi: fnp.sum(fnp.clip(x, lo, hi)),
                                 argnums=(0, 1, 2))(x, lo, hi)
    np.testing.assert_array_equal(gx, [1.0, 1.0, 1.0, 0.0, 0.0])
    np.testing.assert_array_equal(glo, [0.0, 0.0, 0.0, 0.0, 1.0])
    np.testing.assert_array_equal(ghi, [0.0, 0.0, 0.0, 1.0, 0.0])
    _, t = funcgrad.jvp(lambda x: fnp.clip(x, -1.0, 1.0), (x,), (np.ones(5),))
    np.testing.assert_array_equal(t, [1.0, 1.0, 1.0, 0.0, 0.0])


def test_sigmoid_one_buffer_form_without_warnings():
    """``funcgrad.nn.sigmoid`` on NumPy (1 / (1 + exp(-x)) in one buffer): no overflow
    warning far below zero (the value is 0 or the subnormal it rounds to), float16/32/64
    and 0-d arrays keep their type, close to the two-branch form everywhere, and its
    derivative read from the result matches finite differences."""
    import warnings
    from funcgrad.nn import sigmoid
    from funcgrad.test_util import check_grads
    x = np.array([0.0, -0.0, 1.0, -1.0, 17.0, -17.0, 40.0, -40.0, 100.0, -100.0, 800.0,
                  -800.0, np.inf, -np.inf, np.nan, 1e-30])
    for dt, tol in [(np.float16, 2e-3), (np.float32, 1e-6), (np.float64, 1e-14)]:
        xd = x.astype(dt)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            got = sigmoid(xd)
            e = np.exp(-np.abs(xd))
            want = np.where(xd >= 0, 1 / (1 + e), e / (1 + e))
        assert got.dtype == dt and got.shape == x.shape
        np.testing.assert_allclose(got, want, rtol=tol, atol=np.finfo(dt).tiny)
        z = sigmoid(np.array(-3.0, dt))
        assert isinstance(z, np.ndarray) and z.shape == () and z.dtype == dt
    check_grads(sigmoid, (np.linspace(-6.0, 6.0, 13),), order=2)


def test_sigmoid_and_concatenate_implementations_write_out():
    """The ``out=`` a jitted scan passes (control_flow._inline_loop): the result is
    written into ``out`` and returned, equal to the fresh result, on NumPy and on a
    CuPy-like stand-in."""
    from funcgrad._src.prims.elementwise import _sigmoid_impl
    from funcgrad._src.prims.shape import _concat_impl
    from funcgrad._src.testing_backend import StandInArray, standin_xp
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 4)).astype(np.float32) * 50
    buf = np.empty_like(x)
    assert _sigmoid_impl(x, out=buf) is buf
    np.testing.assert_array_equal(buf, _sigmoid_impl(x))
    sbuf = standin_xp.empty((3, 4), np.float32)
    got = _sigmoid_impl(StandInArray(x), out=sbuf)
    assert got is sbuf
    np.testing.assert_allclose(sbuf.get(), _sigmoid_impl(x), rtol=1e-6)
    cbuf = np.empty((3, 8), np.float32)
    assert _concat_impl(x, x, axis=1, out=cbuf) is cbuf
    np.testing.assert_array_equal(cbuf, np.concatenate([x, x], axis=1))

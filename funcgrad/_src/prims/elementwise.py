"""Elementwise primitives: every ufunc with its forward and reverse rules side by side.

A differentiable unary primitive is defined by its derivative ``d(ans, x)``; the forward
rule is ``t * d`` and the reverse rule ``g * d`` (a plain transpose, no conjugation: JAX's
convention for complex numbers). Binary primitives give one partial derivative per
argument; reverse rules sum broadcast dimensions back with :func:`unbroadcast`.

Conventions at non-differentiable points (documented in ``funcgrad.numpy``):
``abs'(0) = 0``; ``maximum``/``minimum`` split the gradient equally at ties;
``clip`` passes the gradient to ``x`` on the closed interval ``[a_min, a_max]``.
"""
from __future__ import annotations

import functools
import math

import numpy as np

from .. import rows as _rows
from ..backend import array_module
from ..batching import broadcasting_batch
from ..core import Primitive, Tracer, bind, def_rules, install_operators, register_scaling
from ..core import _np
from ..errors import FuncgradTypeError, FuncgradValueError
from . import shape as _shape

unbroadcast = _shape.unbroadcast


def _elementwise(name, impl, *, jvp=None, vjp=None, **properties):
    """An elementwise primitive with its rules and properties (``core.Primitive``). Every
    one broadcasts, so its batching rule and its row rule (jit's batch splitting) are the
    broadcasting ones."""
    p = Primitive(name, impl, elementwise=True, **properties)
    return def_rules(p, jvp=jvp, vjp=vjp, batch=broadcasting_batch(p),
                     rows=_rows.broadcasting_rows(p))


def _unary(name, impl, rule):
    """An elementwise primitive whose derivative scales: ``rule(c, ans, x)`` returns
    ``c * f'(x)`` and serves as both the forward rule (c a tangent) and the reverse rule
    (c a cotangent) — the same function, so the two cannot drift apart."""
    return _elementwise(name, impl, jvp=(rule,), vjp=(rule,))


def _binary(name, impl, dx, dy, **properties):
    """A differentiable binary elementwise primitive from its partial derivatives
    ``dx(ans, x, y)`` and ``dy(ans, x, y)``."""
    return _elementwise(
        name, impl, **properties,
        jvp=(lambda t, ans, x, y: t * dx(ans, x, y), lambda t, ans, x, y: t * dy(ans, x, y)),
        vjp=(lambda g, ans, x, y: unbroadcast(g * dx(ans, x, y), x),
             lambda g, ans, x, y: unbroadcast(g * dy(ans, x, y), y)))


_NO_PARAMS = {}    # shared by parameterless calls; never mutated

# Lists and tuples are array-likes (NumPy reads ``[x, 2 * x]`` as an array); one of
# traced values becomes a stack of them, so its derivative flows (``shape._as_array``).
_SEQUENCES = (list, tuple)


def _seq_as_array(x):
    """A list or tuple as an array; anything else as it is (a Python scalar stays weak)."""
    return _shape._as_array(x) if type(x) in _SEQUENCES else x


# The wrappers and operators hand a call whose tracers all belong to one live trace
# straight to that trace: the same decision `bind` makes, minus its loops (this is the
# hottest path of all). Everything else goes through `bind`.
def _wrap1(p, doc):
    numpy_scalar = _numpy_scalar(p)

    def f(x, /):
        if isinstance(x, Tracer):
            t = x._trace
            if t.alive:
                if numpy_scalar and x.weak:
                    x = _shape.strong(x)
                return t.process(p, (x,), _NO_PARAMS)
        elif type(x) in _SEQUENCES:
            x = _shape._as_array(x)
        return bind(p, x)
    f.__name__ = f.__qualname__ = p.name
    f.__doc__ = doc
    return f


def _numpy_scalar(p):
    """Whether funcgrad.numpy's function of ``p`` gives a NumPy scalar where ``p``'s
    Python operator gives a Python number (a ufunc's: ``np.add(2.0, 1.0)`` is a float64,
    ``2.0 + 1.0`` a float): where all its operands are weak (Python numbers traced by
    jit, or written in place) its traced ones are made strong first, 0-d arrays as
    ``np.asarray`` makes, so that the ufunc gives a NumPy scalar on the trace and on the
    replay, as eagerly (making its weak result strong afterwards gave a 0-d array);
    ``Tracer``'s operators keep Python numbers Python numbers."""
    return p.python_operator and isinstance(p.impl, np.ufunc)


_WEAK = (int, float, complex)     # Python numbers that stay weak (staging's _WEAK)


def _weak_operands(x1, x2):
    """Whether both operands are weak (see :func:`_numpy_scalar`)."""
    return all(v.weak if isinstance(v, Tracer) else type(v) in _WEAK for v in (x1, x2))


def _strong_operands(x1, x2):
    return _shape.strong(x1), _shape.strong(x2)


def _wrap2(p, doc):
    numpy_scalar = _numpy_scalar(p)

    def f(x1, x2, /):
        if isinstance(x1, Tracer):
            t = x1._trace
            if t.alive and (not isinstance(x2, Tracer) or x2._trace is t):
                if numpy_scalar and x1.weak and _weak_operands(x1, x2):
                    x1, x2 = _strong_operands(x1, x2)
                return t.process(p, (x1, x2), _NO_PARAMS)
        elif isinstance(x2, Tracer):
            t = x2._trace
            if t.alive:
                if numpy_scalar and x2.weak and _weak_operands(x1, x2):
                    x1, x2 = _strong_operands(x1, x2)
                return t.process(p, (x1, x2), _NO_PARAMS)
        if type(x1) in _SEQUENCES:
            x1 = _shape._as_array(x1)
        if type(x2) in _SEQUENCES:
            x2 = _shape._as_array(x2)
        return bind(p, x1, x2)
    f.__name__ = f.__qualname__ = p.name
    f.__doc__ = doc
    return f


_LN2 = math.log(2.0)
_LN10 = math.log(10.0)


def _is_number(v):
    """Whether a graph operand is a Python number written in place (a Literal)."""
    return not hasattr(v, "shape") and type(getattr(v, "value", None)) in (
        bool, int, float, complex)


def _times_number(invars):
    """``x * c`` or ``c * x`` with ``c`` a number: ``(position of x, c)``."""
    x, y = invars
    if _is_number(y):
        return 0, y.value
    if _is_number(x):
        return 1, x.value
    return None


def _over_number(invars):
    """``x / c`` with ``c`` a nonzero number: ``(0, 1 / c)``."""
    y = invars[1]
    if _is_number(y) and y.value != 0:
        try:
            return 0, 1 / y.value
        except OverflowError:
            return None
    return None


# ---- unary, differentiable -----------------------------------------------------------
negative_p = _elementwise("negative", np.negative, linear_in=((0,),),
                          python_operator=True, bools_as_ints=True,
                          scalar_multiple=lambda invars: (0, -1),
                          jvp=(lambda t, ans, x: -t,),
                          vjp=(lambda g, ans, x: -g,))

sin_p = _unary("sin", np.sin, lambda c, ans, x: c * cos(x))
cos_p = _unary("cos", np.cos, lambda c, ans, x: -(c * sin(x)))
tan_p = _unary("tan", np.tan, lambda c, ans, x: c * (1 + ans * ans))
arcsin_p = _unary("arcsin", np.arcsin, lambda c, ans, x: c / sqrt(1 - x * x))
arccos_p = _unary("arccos", np.arccos, lambda c, ans, x: -c / sqrt(1 - x * x))
arctan_p = _unary("arctan", np.arctan, lambda c, ans, x: c / (1 + x * x))
sinh_p = _unary("sinh", np.sinh, lambda c, ans, x: c * cosh(x))
cosh_p = _unary("cosh", np.cosh, lambda c, ans, x: c * sinh(x))
tanh_p = _unary("tanh", np.tanh, lambda c, ans, x: c * (1 - ans * ans))
arcsinh_p = _unary("arcsinh", np.arcsinh, lambda c, ans, x: c / sqrt(x * x + 1))
arccosh_p = _unary("arccosh", np.arccosh, lambda c, ans, x: c / sqrt(x * x - 1))
arctanh_p = _unary("arctanh", np.arctanh, lambda c, ans, x: c / (1 - x * x))
exp_p = _unary("exp", np.exp, lambda c, ans, x: c * ans)
exp2_p = _unary("exp2", np.exp2, lambda c, ans, x: c * (ans * _LN2))
# expm1' = exp(x), not ans + 1: that rounds to 0 below x ~ -37 (exp(-40) = 4.2e-18)
expm1_p = _unary("expm1", np.expm1, lambda c, ans, x: c * exp(x))
log_p = _unary("log", np.log, lambda c, ans, x: c / x)
log2_p = _unary("log2", np.log2, lambda c, ans, x: c / (x * _LN2))
log10_p = _unary("log10", np.log10, lambda c, ans, x: c / (x * _LN10))
log1p_p = _unary("log1p", np.log1p, lambda c, ans, x: c / (1 + x))
sqrt_p = _unary("sqrt", np.sqrt, lambda c, ans, x: (0.5 * c) / ans)
cbrt_p = _unary("cbrt", np.cbrt, lambda c, ans, x: c / (3 * ans * ans))
square_p = _unary("square", np.square, lambda c, ans, x: c * (2 * x))
reciprocal_p = _unary("reciprocal", np.reciprocal, lambda c, ans, x: -(c * ans * ans))
deg2rad_p = _unary("deg2rad", np.deg2rad, lambda c, ans, x: c * (math.pi / 180))
rad2deg_p = _unary("rad2deg", np.rad2deg, lambda c, ans, x: c * (180 / math.pi))


def _abs_jvp(t, ans, x):
    if x.dtype.kind == "c":
        return real(conj(x) * t) / where(ans == 0, 1, ans)
    return t * sign(x)


def _abs_vjp(g, ans, x):
    if x.dtype.kind == "c":
        # The transpose of t -> real(conj(x) t) / |x| under the pairing real(ct * t) that
        # every other rule uses is g -> g * conj(x) / |x| (JAX: grad(abs)(3+4j) = 0.6-0.8j).
        # Without the conj, reverse mode disagreed with forward mode for complex inputs.
        return g * conj(x) / where(ans == 0, 1, ans)
    return g * sign(x)


abs_p = _elementwise("absolute", np.abs, python_operator=True, bools_as_ints=True,
                     jvp=(_abs_jvp,),
                     vjp=(_abs_vjp,))

# Complex parts. Reverse rules are transposes of the real-linear maps (JAX's convention).
real_p = _elementwise("real", np.real, linear_in=((0,),), python_operator=True,
                      jvp=(lambda t, ans, x: real(t),),
                      vjp=(lambda g, ans, x: _shape.astype(g, x.dtype),))
imag_p = _elementwise("imag", np.imag, linear_in=((0,),), python_operator=True,
                      jvp=(lambda t, ans, x: imag(t),),
                      vjp=(lambda g, ans, x: g * (-1j) if x.dtype.kind == "c" else None,))
conj_p = _elementwise("conjugate", np.conjugate, linear_in=((0,),),
                      jvp=(lambda t, ans, x: conj(t),),
                      vjp=(lambda g, ans, x: conj(g),))

# ---- unary, zero derivative (piecewise constant) or non-numeric result ---------------
sign_p = _elementwise("sign", np.sign)
floor_p = _elementwise("floor", np.floor)
ceil_p = _elementwise("ceil", np.ceil)
trunc_p = _elementwise("trunc", np.trunc)
rint_p = _elementwise("rint", np.rint)
round_p = _elementwise("round", lambda x, decimals=0: np.round(x, decimals))
logical_not_p = _elementwise("logical_not", np.logical_not)
invert_p = _elementwise("invert", np.invert, python_operator=True, bools_as_ints=True)
isnan_p = _elementwise("isnan", np.isnan)
isinf_p = _elementwise("isinf", np.isinf)
isfinite_p = _elementwise("isfinite", np.isfinite)
signbit_p = _elementwise("signbit", np.signbit)

# ---- binary, differentiable ----------------------------------------------------------
add_p = _elementwise("add", np.add, linear_in=((0, 1),), commutative=True,
                     python_operator=True, bools_as_ints=True,
                     jvp=(lambda t, ans, x, y: t,
                          lambda t, ans, x, y: t),
                     vjp=(lambda g, ans, x, y: unbroadcast(g, x),
                          lambda g, ans, x, y: unbroadcast(g, y)))

subtract_p = _elementwise("subtract", np.subtract, linear_in=((0, 1),),
                          python_operator=True, bools_as_ints=True,
                          jvp=(lambda t, ans, x, y: t,
                               lambda t, ans, x, y: -t),
                          vjp=(lambda g, ans, x, y: unbroadcast(g, x),
                               lambda g, ans, x, y: unbroadcast(-g, y)))

multiply_p = _elementwise("multiply", np.multiply, linear_in=((0,), (1,)),
                          python_operator=True, bools_as_ints=True,
                          commutative=True, scalar_multiple=_times_number,
                          jvp=(lambda t, ans, x, y: t * y,
                               lambda t, ans, x, y: x * t),
                          vjp=(lambda g, ans, x, y: unbroadcast(g * y, x),
                               lambda g, ans, x, y: unbroadcast(x * g, y)))

true_divide_p = _elementwise("true_divide", np.true_divide, linear_in=((0,),),
                             inverse_in=(1,), scalar_multiple=_over_number,
                             python_operator=True, bools_as_ints=True,
                             jvp=(lambda t, ans, x, y: t / y,
                                  lambda t, ans, x, y: -t * ans / y),
                             vjp=(lambda g, ans, x, y: unbroadcast(g / y, x),
                                  lambda g, ans, x, y: unbroadcast(-g * ans / y, y)))


def _pow_dx(ans, x, y):
    if isinstance(y, (int, float)):
        if y == 2:
            return 2 * x
        return y * power(x, y - 1) if y != 0 else 0 * x
    # y * x**(y-1), written so that y == 0 gives 0 even at x == 0
    return y * power(x, where(y == 0, 1, y - 1))


def _pow_dy(ans, x, y):
    safe_x = where(x == 0, 1, x)
    return where(x == 0, 0, ans * log(safe_x))


power_p = _binary("power", np.power, _pow_dx, _pow_dy, python_operator=True, bools_as_ints=True)
arctan2_p = _binary("arctan2", np.arctan2, lambda ans, x, y: y / (x * x + y * y),
                    lambda ans, x, y: -x / (x * x + y * y))
hypot_p = _binary("hypot", np.hypot, lambda ans, x, y: x / ans, lambda ans, x, y: y / ans)


def _logistic(d):
    """``1 / (1 + exp(-d))`` from ``exp(-|d|) <= 1`` (no overflow); ``where`` rather than
    ``abs`` so that higher derivatives are right at ``d = 0`` too."""
    e = exp(where(d >= 0, -d, d))
    return where(d >= 0, 1 / (1 + e), e / (1 + e))


# d/dx log(e^x + e^y) is the logistic of x - y; exp(x - ans) lost it for large |x|,
# where ans rounds to x (gradient (1, 1) at (1e20, 1e20)).
logaddexp_p = _binary("logaddexp", np.logaddexp, lambda ans, x, y: _logistic(x - y),
                      lambda ans, x, y: _logistic(y - x))
logaddexp2_p = _binary("logaddexp2", np.logaddexp2,
                       lambda ans, x, y: _logistic((x - y) * math.log(2)),
                       lambda ans, x, y: _logistic((y - x) * math.log(2)))


def _select_weight(win, tie, dtype):
    """1 where `win`, 0.5 where `tie`, else 0, in `dtype` (a constant)."""
    return _shape.astype(win, dtype) + 0.5 * _shape.astype(tie, dtype)


def _dtype_of(ans):
    return ans.dtype


def _step(d):
    """1 where d > 0, 1/2 where d == 0, 0 below: the weight of one side of a max.
    (``(sign(d) + 1) / 2``: seven times faster than NumPy's ``heaviside``, and under jit
    the halving folds into the products that follow.)"""
    return (sign(d) + 1) * 0.5


def _diff(a, b):
    """``a - b`` for the tie test of max/min, 0 at every tie: infinite ties too, where
    ``inf - inf`` would be NaN (and warn)."""
    if isinstance(b, (int, float)) and b == 0:
        return a
    if isinstance(b, (int, float)) and math.isfinite(b):
        return a - b
    tie = a == b
    return where(tie, 0, a) - where(tie, 0, b)


maximum_p = _binary("maximum", np.maximum,
                    lambda ans, x, y: _step(_diff(x, y)), lambda ans, x, y: _step(_diff(y, x)))
minimum_p = _binary("minimum", np.minimum,
                    lambda ans, x, y: _step(_diff(y, x)), lambda ans, x, y: _step(_diff(x, y)))
fmax_p = _binary("fmax", np.fmax,
                 lambda ans, x, y: _select_weight((x > y) | isnan(y), x == y, _dtype_of(ans)),
                 lambda ans, x, y: _select_weight((y > x) | isnan(x), x == y, _dtype_of(ans)))
fmin_p = _binary("fmin", np.fmin,
                 lambda ans, x, y: _select_weight((x < y) | isnan(y), x == y, _dtype_of(ans)),
                 lambda ans, x, y: _select_weight((y < x) | isnan(x), x == y, _dtype_of(ans)))
remainder_p = _binary("remainder", np.remainder, lambda ans, x, y: 1,
                      lambda ans, x, y: -floor_divide(x, y),
                      python_operator=True, bools_as_ints=True)
fmod_p = _binary("fmod", np.fmod, lambda ans, x, y: 1, lambda ans, x, y: -trunc(x / y))
copysign_p = _elementwise("copysign", np.copysign,
                          jvp=(lambda t, ans, x, y: t * (sign(x) * sign(ans)),
                               None),
                          vjp=(lambda g, ans, x, y: unbroadcast(g * (sign(x) * sign(ans)), x),
                               None))

# ---- binary, no derivative -----------------------------------------------------------
floor_divide_p = _elementwise("floor_divide", np.floor_divide,
                              python_operator=True, bools_as_ints=True)
heaviside_p = _elementwise("heaviside", np.heaviside)
equal_p = _elementwise("equal", np.equal, python_operator=True)
not_equal_p = _elementwise("not_equal", np.not_equal, python_operator=True)
less_p = _elementwise("less", np.less, python_operator=True)
less_equal_p = _elementwise("less_equal", np.less_equal, python_operator=True)
greater_p = _elementwise("greater", np.greater, python_operator=True)
greater_equal_p = _elementwise("greater_equal", np.greater_equal, python_operator=True)
logical_and_p = _elementwise("logical_and", np.logical_and)
logical_or_p = _elementwise("logical_or", np.logical_or)
logical_xor_p = _elementwise("logical_xor", np.logical_xor)
bitwise_and_p = _elementwise("bitwise_and", np.bitwise_and, python_operator=True)
bitwise_or_p = _elementwise("bitwise_or", np.bitwise_or, python_operator=True)
bitwise_xor_p = _elementwise("bitwise_xor", np.bitwise_xor, python_operator=True)
left_shift_p = _elementwise("left_shift", np.left_shift, python_operator=True, bools_as_ints=True)
right_shift_p = _elementwise("right_shift", np.right_shift,
                             python_operator=True, bools_as_ints=True)

# ---- where and clip ------------------------------------------------------------------
where_p = _elementwise("where", np.where,
                       jvp=(None,
                            lambda t, ans, c, x, y: where(c, t, 0),
                            lambda t, ans, c, x, y: where(c, 0, t)),
                       vjp=(None,
                            lambda g, ans, c, x, y: unbroadcast(where(c, g, 0), x),
                            lambda g, ans, c, x, y: unbroadcast(where(c, 0, g), y)))


def _clip_impl(x, lo, hi):
    return np.clip(x, lo, hi)


def _clip_inside(x, lo, hi):
    inside = True
    if lo is not None:
        inside = x >= lo
    if hi is not None:
        inside = inside & (x <= hi) if lo is not None else x <= hi
    return inside


def _clip_at_lo(x, lo, hi):
    # NumPy's clip is minimum(maximum(x, lo), hi): where lo > hi the result is hi, so
    # lo only gets the gradient where it is below hi (before, both bounds got it there).
    return x < lo if hi is None else (x < lo) & (lo <= hi)


def _clip_at_hi(x, lo, hi):
    return x > hi if lo is None else (x > hi) | (lo > hi)


clip_p = _elementwise(
    "clip", _clip_impl,
    jvp=(lambda t, ans, x, lo, hi: where(_clip_inside(x, lo, hi), t, 0),
         lambda t, ans, x, lo, hi: where(_clip_at_lo(x, lo, hi), t, 0),
         lambda t, ans, x, lo, hi: where(_clip_at_hi(x, lo, hi), t, 0)),
    vjp=(lambda g, ans, x, lo, hi: unbroadcast(where(_clip_inside(x, lo, hi), g, 0), x),
         lambda g, ans, x, lo, hi: unbroadcast(where(_clip_at_lo(x, lo, hi), g, 0), lo),
         lambda g, ans, x, lo, hi: unbroadcast(where(_clip_at_hi(x, lo, hi), g, 0), hi)))


# ---- the user-facing functions -------------------------------------------------------
negative = _wrap1(negative_p, "Numerical negative, elementwise.")
sin = _wrap1(sin_p, "Sine, elementwise.")
cos = _wrap1(cos_p, "Cosine, elementwise.")
tan = _wrap1(tan_p, "Tangent, elementwise.")
arcsin = _wrap1(arcsin_p, "Inverse sine, elementwise; derivative infinite at +-1.")
arccos = _wrap1(arccos_p, "Inverse cosine, elementwise; derivative infinite at +-1.")
arctan = _wrap1(arctan_p, "Inverse tangent, elementwise.")
sinh = _wrap1(sinh_p, "Hyperbolic sine, elementwise.")
cosh = _wrap1(cosh_p, "Hyperbolic cosine, elementwise.")
tanh = _wrap1(tanh_p, "Hyperbolic tangent, elementwise.")
arcsinh = _wrap1(arcsinh_p, "Inverse hyperbolic sine, elementwise.")
arccosh = _wrap1(arccosh_p, "Inverse hyperbolic cosine, elementwise.")
arctanh = _wrap1(arctanh_p, "Inverse hyperbolic tangent, elementwise.")
exp = _wrap1(exp_p, "Exponential, elementwise.")
exp2 = _wrap1(exp2_p, "2**x, elementwise.")
expm1 = _wrap1(expm1_p, "exp(x) - 1, accurate near 0.")
log = _wrap1(log_p, "Natural logarithm, elementwise.")
log2 = _wrap1(log2_p, "Base-2 logarithm, elementwise.")
log10 = _wrap1(log10_p, "Base-10 logarithm, elementwise.")
log1p = _wrap1(log1p_p, "log(1 + x), accurate near 0.")
sqrt = _wrap1(sqrt_p, """Square root, elementwise.

The derivative at 0 is infinite. To use sqrt inside a `where` that excludes 0, apply the
double-`where` idiom (see ``where``) so the gradient is not NaN.""")
cbrt = _wrap1(cbrt_p, "Cube root, elementwise.")
square = _wrap1(square_p, "x*x, elementwise.")
reciprocal = _wrap1(reciprocal_p, "1/x, elementwise.")
deg2rad = _wrap1(deg2rad_p, "Degrees to radians.")
radians = deg2rad
rad2deg = _wrap1(rad2deg_p, "Radians to degrees.")
degrees = rad2deg
abs = _wrap1(abs_p, """Absolute value, elementwise.

Derivative convention: ``sign(x)``, so the gradient at exactly 0 is 0 (a subgradient).
For complex ``x`` the derivative of ``|x|`` is taken as a real function of ``x`` (0 at 0).""")
absolute = abs
real = _wrap1(real_p, "Real part (identity on real arrays).")
imag = _wrap1(imag_p, "Imaginary part (zeros for real arrays).")
conj = _wrap1(conj_p, "Complex conjugate (identity on real arrays).")
conjugate = conj
_sign = _wrap1(sign_p, "")


def sign(x, /):
    """Sign of x: -1, 0 or 1 for real x (its derivative is zero); ``x / |x|`` (0 at 0)
    for complex x, as in NumPy 2, differentiable away from 0."""
    if getattr(x, "dtype", None) is not None and x.dtype.kind == "c":
        # The primitive has no rules (right for real x), which gave complex x a zero
        # derivative; x / |x| is smooth off 0, so it is computed, and differentiated, so.
        # At 0 the value and the derivative are 0 (as abs'(0) = 0).
        r = abs(x)
        zero = r == 0
        return where(zero, 0, x / where(zero, 1, r))
    return _sign(x)

floor = _wrap1(floor_p, "Floor; its derivative is zero.")
ceil = _wrap1(ceil_p, "Ceiling; its derivative is zero.")
trunc = _wrap1(trunc_p, "Truncation toward 0; its derivative is zero.")
fix = trunc
rint = _wrap1(rint_p, "Round to nearest integer; its derivative is zero.")
logical_not = _wrap1(logical_not_p, "Logical NOT (boolean result, not differentiable).")
invert = _wrap1(invert_p, "Bitwise NOT (not differentiable).")
bitwise_not = invert
isnan = _wrap1(isnan_p, "Test for NaN (boolean result).")
isinf = _wrap1(isinf_p, "Test for +-inf (boolean result).")
isfinite = _wrap1(isfinite_p, "Test for finiteness (boolean result).")
signbit = _wrap1(signbit_p, "True where the sign bit is set (boolean result).")


def round(a, decimals=0):
    """Round to ``decimals`` places (NumPy's half-to-even); its derivative is zero."""
    return bind(round_p, _seq_as_array(a), decimals=decimals)


around = round


def positive(x, /):
    """+x (returns ``x``; a list or tuple as an array)."""
    return _seq_as_array(x)


add = _wrap2(add_p, "x1 + x2 with broadcasting.")
subtract = _wrap2(subtract_p, "x1 - x2 with broadcasting.")
multiply = _wrap2(multiply_p, "x1 * x2 with broadcasting.")
true_divide = _wrap2(true_divide_p, "x1 / x2 with broadcasting.")
divide = true_divide
power = _wrap2(power_p, """x1 ** x2 with broadcasting.

The derivative in x1 is ``x2 * x1**(x2-1)`` (0 where x2 == 0); in x2 it is
``x1**x2 * log(x1)``, taken as 0 where x1 == 0.""")
pow = power
arctan2 = _wrap2(arctan2_p, "Quadrant-aware arctan(x1/x2).")
hypot = _wrap2(hypot_p, "sqrt(x1**2 + x2**2) without overflow; derivative undefined at (0, 0).")
logaddexp = _wrap2(logaddexp_p, "log(exp(x1) + exp(x2)), computed stably.")
logaddexp2 = _wrap2(logaddexp2_p, "log2(2**x1 + 2**x2), computed stably.")
maximum = _wrap2(maximum_p, """Elementwise maximum (NaN propagates).

At ties (x1 == x2) the gradient is split equally: each input gets half.""")
minimum = _wrap2(minimum_p, """Elementwise minimum (NaN propagates).

At ties (x1 == x2) the gradient is split equally: each input gets half.""")
fmax = _wrap2(fmax_p, "Elementwise maximum ignoring NaN; ties split the gradient equally.")
fmin = _wrap2(fmin_p, "Elementwise minimum ignoring NaN; ties split the gradient equally.")
remainder = _wrap2(remainder_p, "Python-style modulus; d/dx1 = 1, d/dx2 = -floor(x1/x2).")
mod = remainder
fmod = _wrap2(fmod_p, "C-style remainder; d/dx1 = 1, d/dx2 = -trunc(x1/x2).")
copysign = _wrap2(copysign_p, "Magnitude of x1 with the sign of x2.")
floor_divide = _wrap2(floor_divide_p, "x1 // x2; its derivative is zero.")
heaviside = _wrap2(heaviside_p, "Step function: 0 for x1 < 0, x2 at 0, 1 above; its derivative is zero.")
equal = _wrap2(equal_p, "x1 == x2 (boolean result).")
not_equal = _wrap2(not_equal_p, "x1 != x2 (boolean result).")
less = _wrap2(less_p, "x1 < x2 (boolean result).")
less_equal = _wrap2(less_equal_p, "x1 <= x2 (boolean result).")
greater = _wrap2(greater_p, "x1 > x2 (boolean result).")
greater_equal = _wrap2(greater_equal_p, "x1 >= x2 (boolean result).")
logical_and = _wrap2(logical_and_p, "Logical AND (boolean result).")
logical_or = _wrap2(logical_or_p, "Logical OR (boolean result).")
logical_xor = _wrap2(logical_xor_p, "Logical XOR (boolean result).")
bitwise_and = _wrap2(bitwise_and_p, "Bitwise/logical AND of integers or booleans.")
bitwise_or = _wrap2(bitwise_or_p, "Bitwise/logical OR of integers or booleans.")
bitwise_xor = _wrap2(bitwise_xor_p, "Bitwise/logical XOR of integers or booleans.")
left_shift = _wrap2(left_shift_p, "x1 << x2 for integers (not differentiable).")
right_shift = _wrap2(right_shift_p, "x1 >> x2 for integers (not differentiable).")


def where(condition, x=None, y=None, /):
    """Choose ``x`` where ``condition`` is true, else ``y`` (broadcasting all three).

    ``where(condition)`` alone is ``nonzero(condition)`` (concrete values only).

    Gradients flow to ``x`` where the condition holds and to ``y`` elsewhere. The branch
    not taken is still *computed*, and its derivative multiplied by zero: if it is
    infinite or NaN there (``sqrt`` at 0, ``log`` at 0), the gradient becomes NaN. Use
    the double-``where`` idiom so the unused branch sees safe inputs::

        safe = fnp.where(x > 0, x, 1.0)
        y = fnp.where(x > 0, fnp.sqrt(safe), 0.0)
    """
    if x is None and y is None:
        return _np().nonzero(condition)      # the indexing family, above this one
    if x is None or y is None:
        raise FuncgradTypeError("where: give both x and y, or neither")
    return bind(where_p, _seq_as_array(condition), _seq_as_array(x), _seq_as_array(y))


def clip(a, a_min=None, a_max=None, out=None, *, min=None, max=None):
    """Clip values to ``[a_min, a_max]`` (either may be None; ``min``/``max`` are the
    NumPy 2 keyword spellings).

    The gradient passes to ``a`` where ``a_min <= a <= a_max`` (boundaries included, like
    PyTorch's clamp), and to the bound that is active elsewhere.
    """
    if out is not None:
        raise FuncgradTypeError(
            "clip: out= is not supported (arrays are immutable); use the result")
    a_min = min if a_min is None else a_min
    a_max = max if a_max is None else a_max
    if a_min is None and a_max is None:
        raise FuncgradValueError("clip: at least one of a_min or a_max must be given")
    return bind(clip_p, _seq_as_array(a), _seq_as_array(a_min), _seq_as_array(a_max))


_PLAIN_OPERANDS = frozenset({float, int, bool, complex, np.ndarray, np.float64, np.float32,
                             np.int64, np.int32, np.bool_, np.complex128, np.complex64})


def _operand(other):
    """The other operand of a Tracer's operator, or NotImplemented for an array-like
    type funcgrad does not know that takes part in NumPy's protocols (an
    ``xarray.DataArray``, a ``pandas.Series``, a class setting ``__array_ufunc__ =
    None``): as with ``ndarray``'s operators, Python then gives it its turn
    (``other.__radd__``). Lists and tuples are array-likes."""
    if isinstance(other, (list, tuple)):
        return _shape._as_array(other)
    cls = type(other)
    if isinstance(other, (np.ndarray, np.generic)) or hasattr(other, "__cuda_array_interface__"):
        return other
    if getattr(cls, "__array_ufunc__", False) is None:
        return NotImplemented
    if hasattr(cls, "__array_ufunc__") or hasattr(cls, "__array_function__"):
        return other if array_module(other) is not np else NotImplemented
    return other


def _operators():
    """``Tracer``'s operators straight to their primitives (one call less than going
    through the namespace; operators are the hottest path of all)."""
    def forward(p):
        def op(self, other):
            if type(other) not in _PLAIN_OPERANDS and not isinstance(other, Tracer):
                other = _operand(other)
                if other is NotImplemented:
                    return NotImplemented
            t = self._trace
            if t.alive and (not isinstance(other, Tracer) or other._trace is t):
                return t.process(p, (self, other), _NO_PARAMS)
            return bind(p, self, other)
        return op

    def reflected(p):
        def op(self, other):
            if type(other) not in _PLAIN_OPERANDS and not isinstance(other, Tracer):
                other = _operand(other)
                if other is NotImplemented:
                    return NotImplemented
            t = self._trace
            if t.alive and (not isinstance(other, Tracer) or other._trace is t):
                return t.process(p, (other, self), _NO_PARAMS)
            return bind(p, other, self)
        return op

    def unary(p):      # (not negative or abs: those give NumPy scalars of Python numbers)
        def op(self):
            t = self._trace
            return t.process(p, (self,), _NO_PARAMS) if t.alive else bind(p, self)
        return op

    table = {"neg": unary(negative_p), "abs": unary(abs_p), "invert": unary(invert_p)}
    for name, p in [("add", add_p), ("sub", subtract_p), ("mul", multiply_p),
                    ("truediv", true_divide_p), ("floordiv", floor_divide_p),
                    ("mod", remainder_p), ("pow", power_p), ("and", bitwise_and_p),
                    ("or", bitwise_or_p), ("xor", bitwise_xor_p), ("lshift", left_shift_p),
                    ("rshift", right_shift_p)]:
        table[name] = forward(p)
        table[f"r{name}"] = reflected(p)
    for name, p in [("lt", less_p), ("le", less_equal_p), ("gt", greater_p),
                    ("ge", greater_equal_p), ("eq", equal_p), ("ne", not_equal_p)]:
        table[name] = forward(p)
    return table


install_operators(_operators())
# how jit's passes write ``c * x`` for a number c (and ``-x``)
register_scaling(multiply=multiply_p, negate=negative_p)

# ---- relu: one primitive, so that its derivative is one mask product ------------------
def _relu_impl(x):
    if type(x) is np.ndarray and x.dtype.kind == "f" and x.size >= _RELU_FAST_MIN \
            and x.flags.c_contiguous:
        zeros = _relu_zeros(x.shape, x.dtype)
        if zeros is not None:
            return np.maximum(x, zeros)
    return np.maximum(x, 0)      # (NEP 50: the 0 takes x's dtype; NaN propagates)


# NumPy's maximum against a scalar runs a loop 3-4x slower than against an array of the
# same shape (float32 and float64, AVX2; it is the activation of every layer). Zeros of
# the trailing dimensions of x (at least _RELU_BLOCK elements), broadcast over the
# leading ones, keep the fast loop without writing a zero array per call.
_RELU_FAST_MIN = 4096
_RELU_BLOCK = 1024


@functools.lru_cache(maxsize=64)
def _relu_zeros(shape, dtype):
    """Shared read-only zeros of a trailing block of ``shape``, or None for a block that
    would be too large to keep (past 64 Ki elements)."""
    k, n = len(shape), 1
    while k > 1 and n < _RELU_BLOCK:
        k -= 1
        n *= shape[k]
    if n > 1 << 16:
        return None
    z = np.zeros(shape[k:], dtype)
    z.flags.writeable = False
    return z


# The derivative is the mask x > 0: 0 at and below 0 (relu(-inf) = 0 has derivative 0)
# and at NaN (JAX's convention; PyTorch's is 1), one comparison and one product. Read
# from x rather than the result, a gradient under jit needs no forward pass at all.
relu_p = _unary("relu", _relu_impl, lambda c, ans, x: c * greater(x, 0))


def relu(x, /):
    """``max(x, 0)``, elementwise; NaN propagates. The derivative is 1 above 0 and 0 at and
    below 0 (``relu(-inf)`` is 0, with derivative 0) and at NaN, as ``jax.nn.relu``'s
    (PyTorch's is 1 at NaN). Integer inputs give integer results (not differentiable)."""
    return bind(relu_p, x)


# ---- sigmoid: one primitive, so that its derivative reads only its result -------------
def _sigmoid_impl(x, out=None):
    xp = array_module(x)
    if xp is not np:
        e = xp.exp(-xp.abs(x))          # exp(-|x|) <= 1: no overflow for any x
        d = 1 + e
        r = xp.where(x >= 0, 1 / d, e / d)
        if out is None:
            return r
        out[...] = r
        return out
    # 1 / (1 + exp(-x)) in four passes over one buffer, a quarter of the time of the
    # branch-free form above (8 passes, 5 arrays): an LSTM step runs three. For x below
    # about -88 (float32; -709 float64) exp(-x) overflows to inf and the result is 0,
    # the correctly rounded value or the nearest to it, so the warning is silenced.
    with np.errstate(over="ignore"):
        t = np.negative(x, out=out)
        if type(t) is not np.ndarray:   # 0-d: no buffer to reuse
            r = 1 / (1 + np.exp(t))
            return np.asarray(r) if isinstance(x, np.ndarray) else r
        np.exp(t, out=t)
    t += 1
    return np.reciprocal(t, out=t)


_sigmoid_impl.writes_out = True     # ``out=``: a scan writes its per-step output in place


# As a composite (where/exp/divide) its reverse pass kept about a dozen values per call
# and ran twenty operations; as a primitive it keeps its result and runs three. In a
# scanned LSTM cell (three sigmoids a step) that is most of the step's residuals.
sigmoid_p = _unary("sigmoid", _sigmoid_impl, lambda c, ans, x: c * (ans * (1 - ans)))


def sigmoid(x, /):
    """``1 / (1 + exp(-x))``, elementwise, computed without overflow for any x; the
    derivative ``sigmoid(x) * (1 - sigmoid(x))`` is read from the result (``jax.nn.sigmoid``).
    Integer and boolean inputs are first cast to float64; complex ones are refused."""
    kind = np.dtype(getattr(x, "dtype", None) or np.result_type(x)).kind
    if kind == "c":
        raise FuncgradTypeError("sigmoid: complex input is not supported (it needs a real "
                                f"order for its overflow-free form), got {x.dtype}")
    if kind != "f":
        x = _shape.astype(x, np.float64)
    return bind(sigmoid_p, x)


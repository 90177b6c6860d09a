"""Special functions, each primitive with its rules side by side: the implementation of
``funcgrad.scipy.special`` (whose docstring states the accuracy and the derivatives).
The kernels are NumPy code in float64 (series, continued fractions, asymptotic
expansions), so SciPy is not needed."""
from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

from ..backend import dtype_name
from ..batching import broadcasting_batch, unary_batch
from ..core import Primitive, Tracer, bind, def_rules
from ..errors import FuncgradTypeError, FuncgradValueError
from . import creation as _cr
from . import elementwise as _el
from . import reductions as _red
from . import shape as _sh
from .barriers import stop_gradient
from .scans import _any_true
from .misc import bessel_i0e_p, bessel_i1_p, bessel_i1e_p
from .shape import _as_array, normalize_axes, unbroadcast

__all__ = ["beta", "betainc", "betaln", "digamma", "entr", "erf", "erfc", "erfcinv",
           "erfinv", "expit", "gamma", "gammainc", "gammaincc", "gammaln", "gammasgn",
           "i0e", "i1", "i1e", "log_expit", "log_ndtr", "log_softmax", "logit",
           "logsumexp", "multigammaln", "ndtr", "ndtri", "polygamma", "psi", "rgamma",
           "softmax", "xlog1py", "xlogy"]

_SQRT_PI = math.sqrt(math.pi)
_TWO_OVER_SQRT_PI = 2.0 / _SQRT_PI
_EULER = 0.57721566490153286061
_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


# ---- constants computed once: Bernoulli numbers, zeta(k) - 1 -------------------------------
def _bernoulli_even(count):
    """B_2, B_4, ..., B_{2 count} as floats (exact rational recurrence)."""
    n_max = 2 * count
    b = [Fraction(0)] * (n_max + 1)
    b[0] = Fraction(1)
    for m in range(1, n_max + 1):
        s = Fraction(0)
        for k in range(m):
            s += math.comb(m + 1, k) * b[k]
        b[m] = -s / (m + 1)
    return [float(b[2 * k]) for k in range(1, count + 1)]


_B2K = _bernoulli_even(15)


def _hurwitz_zeta_scalar(s, q, n_direct=12):
    """sum_{k>=0} (q + k)**-s for s > 1, q > 0: a direct sum then Euler-Maclaurin."""
    total = sum((q + k) ** -s for k in range(n_direct))
    a = q + n_direct
    total += a ** (1 - s) / (s - 1) + 0.5 * a ** -s
    rising = s          # s (s+1) ... (s + 2j - 2)
    fact = 2.0          # (2j)!
    for j in range(1, len(_B2K) + 1):
        term = _B2K[j - 1] / fact * rising * a ** (-s - 2 * j + 1)
        total += term
        rising *= (s + 2 * j - 1) * (s + 2 * j)
        fact *= (2 * j + 1) * (2 * j + 2)
    return total


# zeta(k) - 1 for k = 2..40, computed without cancellation (the sum starts at 2)
_ZETA_M1 = [_hurwitz_zeta_scalar(k, 2.0) for k in range(2, 41)]

# Taylor coefficients of digamma around its positive zero x0 (x0 split in two doubles)
_X0_HI = 1.4616321449683622
_X0_LO = 9.549995429965697e-17
_DIGAMMA_ROOT_COEFS = [(-1) ** (k + 1) * _hurwitz_zeta_scalar(k + 1, _X0_HI + _X0_LO)
                       for k in range(1, 26)]


# ---- numerical kernels (NumPy, float64) ----------------------------------------------------
def _f64(x):
    return np.asarray(x, dtype=np.float64)


def _erf_series(x):
    """erf(x) = 2/sqrt(pi) exp(-x^2) sum_n 2^n x^(2n+1) / (2n+1)!!; positive terms."""
    x2 = x * x
    term = x.copy()
    total = x.copy()
    for n in range(1, 60):
        term = term * (2.0 * x2 / (2 * n + 1))
        total = total + term
    return _TWO_OVER_SQRT_PI * np.exp(-x2) * total


def _erfc_cf(x, terms):
    """erfc(x), x >= 1: exp(-x^2)/sqrt(pi) / (x + (1/2)/(x + 1/(x + (3/2)/(x + ...))))."""
    f = x.copy()
    for k in range(terms, 0, -1):
        f = x + (0.5 * k) / f
    return np.exp(-x * x) / _SQRT_PI / f


def _erfc_large(ax):
    """erfc for ax >= 1 (continued fraction; more terms close to 1)."""
    out = np.empty_like(ax)
    near = ax < 2.0
    if near.any():
        out[near] = _erfc_cf(ax[near], 200)
    if (~near).any():
        out[~near] = _erfc_cf(ax[~near], 60)
    return out


def _erf_np(x):
    x = _f64(x)
    ax = np.abs(x)
    out = np.empty_like(x)
    small = ax < 2.5
    out[small] = _erf_series(x[small])
    big = ~small & ~np.isnan(x)
    out[big] = np.sign(x[big]) * (1.0 - _erfc_large(ax[big]))
    out[np.isnan(x)] = np.nan
    return out


def _erfc_np(x):
    x = _f64(x)
    out = np.empty_like(x)
    low = x < 1.0
    out[low] = 1.0 - _erf_np(x[low])
    high = ~low & ~np.isnan(x)
    out[high] = _erfc_large(x[high])
    out[np.isnan(x)] = np.nan
    return out


def _lgamma1p_series(z):
    """log Gamma(1 + z) for |z| <= 0.5: -gamma z + (z - log1p z) + sum (-1)^k (zeta(k)-1) z^k/k."""
    total = np.zeros_like(z)
    for k in range(len(_ZETA_M1) + 1, 1, -1):      # Horner, highest power first
        total = total * z + ((-1) ** k) * _ZETA_M1[k - 2] / k
    return -_EULER * z + (z - np.log1p(z)) + total * z * z


def _stirling_lgamma(x):
    """log Gamma(x) for x >= 7 (asymptotic series)."""
    inv = 1.0 / x
    inv2 = inv * inv
    corr = np.zeros_like(x)
    for k in range(12, 0, -1):
        corr = corr * inv2 + _B2K[k - 1] / (2 * k * (2 * k - 1))
    lx = np.log(x)
    return x * (lx - 1.0) - 0.5 * lx + _HALF_LOG_2PI + corr * inv


def _lgamma_positive(x):
    """log Gamma(x) for x > 0."""
    out = np.empty_like(x)
    r1 = (x >= 0.5) & (x < 1.5)
    out[r1] = _lgamma1p_series(x[r1] - 1.0)
    r2 = (x >= 1.5) & (x < 2.5)
    z = x[r2] - 2.0
    out[r2] = np.log1p(z) + _lgamma1p_series(z)
    r0 = x < 0.5
    xs = x[r0]
    out[r0] = _lgamma1p_series(xs) - np.log(xs)
    r3 = x >= 2.5
    xs = x[r3]
    prod = np.ones_like(xs)
    shifted = xs.copy()
    for _ in range(5):
        m = shifted < 7.0
        prod = np.where(m, prod * shifted, prod)
        shifted = np.where(m, shifted + 1.0, shifted)
    out[r3] = _stirling_lgamma(shifted) - np.log(prod)
    return out


def _gammaln_np(x):
    x = _f64(x)
    out = np.full_like(x, np.inf)
    pos = x > 0
    out[pos] = _lgamma_positive(x[pos])
    out[x == np.inf] = np.inf
    neg = (x <= 0) & (x != np.floor(x)) & np.isfinite(x)
    xs = x[neg]
    frac = xs - np.round(xs)
    out[neg] = math.log(math.pi) - np.log(np.abs(np.sin(math.pi * frac))) \
        - _lgamma_positive(1.0 - xs)
    out[np.isnan(x)] = np.nan
    out[x == -np.inf] = np.inf
    return out


def _digamma_asymptotic(x):
    """psi(x) for x >= 7."""
    inv2 = 1.0 / (x * x)
    corr = np.zeros_like(x)
    for k in range(12, 0, -1):
        corr = corr * inv2 + _B2K[k - 1] / (2 * k)
    return np.log(x) - 0.5 / x - corr * inv2


def _digamma1p_series(z):
    """psi(1 + z) for |z| <= 0.5: -gamma + z/(1+z) + sum_k (-1)^k (zeta(k)-1) z^(k-1)."""
    total = np.zeros_like(z)
    for k in range(len(_ZETA_M1) + 1, 1, -1):
        total = total * z + ((-1) ** k) * _ZETA_M1[k - 2]
    return -_EULER + z / (1.0 + z) + total * z


def _digamma_positive(x):
    out = np.empty_like(x)
    root = np.abs(x - _X0_HI) < 0.25
    d = (x[root] - _X0_HI) - _X0_LO
    acc = np.zeros_like(d)
    for c in reversed(_DIGAMMA_ROOT_COEFS):
        acc = (acc + c) * d
    out[root] = acc
    r0 = x < 0.5
    xs = x[r0]
    out[r0] = _digamma1p_series(xs) - 1.0 / xs
    r1 = (x >= 0.5) & ~root & (x < 1.5)
    out[r1] = _digamma1p_series(x[r1] - 1.0)
    r2 = (x >= 1.5) & ~root
    xs = x[r2]
    acc = np.zeros_like(xs)
    shifted = xs.copy()
    for _ in range(6):
        m = shifted < 7.0
        acc = np.where(m, acc + 1.0 / shifted, acc)
        shifted = np.where(m, shifted + 1.0, shifted)
    out[r2] = _digamma_asymptotic(shifted) - acc
    return out


def _cot_derivative_poly(n):
    """Coefficients (lowest power first) of P_n with d^n/dx^n cot(pi x) =
    pi^n P_n(cot(pi x)): P_0(c) = c, P_{k+1}(c) = -(1 + c^2) P_k'(c)."""
    p = np.array([0.0, 1.0])
    for _ in range(n):
        dp = np.polynomial.polynomial.polyder(p)
        p = -np.polynomial.polynomial.polymul([1.0, 0.0, 1.0], dp)
    return p


def _hurwitz_zeta_np(s, q):
    """sum_{k>=0} (q + k)^-s for an integer s >= 2 and q > 0 (arrays)."""
    lim = 10.0 + s
    total = np.zeros_like(q)
    shifted = q.copy()
    steps = int(np.ceil(lim - q.min())) if q.size else 0
    for _ in range(max(steps, 0)):
        m = shifted < lim
        if not m.any():
            break
        total = np.where(m, total + shifted ** -s, total)
        shifted = np.where(m, shifted + 1.0, shifted)
    a = shifted
    total = total + a ** (1 - s) / (s - 1) + 0.5 * a ** -s
    rising = float(s)
    fact = 2.0
    for j in range(1, len(_B2K) + 1):
        total = total + _B2K[j - 1] / fact * rising * a ** (-s - 2 * j + 1)
        rising *= (s + 2 * j - 1) * (s + 2 * j)
        fact *= (2 * j + 1) * (2 * j + 2)
    return total


def _polygamma_np(n, x):
    x = _f64(x)
    if n == 0:
        return _digamma_np(x)
    out = np.full_like(x, np.nan)
    sign = (-1.0) ** (n + 1) * math.factorial(n)
    pos = (x > 0) & (x < np.inf)
    out[pos] = sign * _hurwitz_zeta_np(n + 1, x[pos])
    neg = (x <= 0) & (x != np.floor(x)) & np.isfinite(x)
    if neg.any():
        xs = x[neg]
        c = 1.0 / np.tan(math.pi * (xs - np.round(xs)))
        poly = np.polynomial.polynomial.polyval(c, _cot_derivative_poly(n))
        out[neg] = (-1.0) ** n * sign * _hurwitz_zeta_np(n + 1, 1.0 - xs) \
            - math.pi ** (n + 1) * poly
    pole = (x <= 0) & (x == np.floor(x)) & np.isfinite(x)
    # SciPy's values, sign * zeta(n + 1, x): sign * inf at the poles and at -inf, a
    # signed zero at +inf
    out[pole] = math.copysign(np.inf, sign)
    out[x == np.inf] = math.copysign(0.0, sign)
    out[x == -np.inf] = math.copysign(np.inf, sign)
    return out


def _digamma_np(x):
    x = _f64(x)
    out = np.full_like(x, np.nan)
    pos = x > 0
    out[pos] = _digamma_positive(x[pos])
    neg = (x < 0) & (x != np.floor(x)) & np.isfinite(x)
    xs = x[neg]
    out[neg] = _digamma_positive(1.0 - xs) - math.pi / np.tan(math.pi * (xs - np.round(xs)))
    zero = x == 0
    out[zero] = np.where(np.signbit(x[zero]), np.inf, -np.inf)
    out[x == np.inf] = np.inf
    return out


def _expit_np(x):
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)


# ---- primitives --------------------------------------------------------------------------
def _unary(name, kernel, rule):
    """A primitive computed by the NumPy ``kernel``, with ``rule(c, ans, x)`` returning
    ``c * f'(x)``: the forward rule (c a tangent) and the reverse rule (c a cotangent)."""
    def impl(x):
        with np.errstate(all="ignore"):
            r = kernel(x)
        return np.asarray(r, dtype=x.dtype)
    p = Primitive(name, impl)
    return def_rules(p, jvp=(rule,), vjp=(rule,), batch=unary_batch(p))


def _complex_via_scipy(real_kernel, name):
    """``real_kernel`` for real input; complex input goes to SciPy's Faddeeva-based
    ``scipy.special.<name>`` (the wrappers check SciPy is there before binding)."""
    def kernel(x):
        if x.dtype.kind == "c":
            import scipy.special
            return getattr(scipy.special, name)(x)
        return real_kernel(x)
    return kernel


# erf and erfc are entire: for complex z the same rule is the holomorphic derivative,
# which is what funcgrad's untransposed-conj (JAX) convention wants.
erf_p = _unary("erf", _complex_via_scipy(_erf_np, "erf"), lambda c, ans, x: c * (_TWO_OVER_SQRT_PI * _el.exp(-(x * x))))
erfc_p = _unary("erfc", _complex_via_scipy(_erfc_np, "erfc"),
                lambda c, ans, x: c * (-_TWO_OVER_SQRT_PI * _el.exp(-(x * x))))
gammaln_p = _unary("gammaln", _gammaln_np, lambda c, ans, x: c * bind(digamma_p, x))
digamma_p = _unary("digamma", _digamma_np, lambda c, ans, x: c * bind(polygamma_p, x, n=1))
expit_p = _unary("expit", _expit_np, lambda c, ans, x: c * (ans * (1 - ans)))


def _polygamma_impl(x, n):
    with np.errstate(all="ignore"):
        r = _polygamma_np(n, x)
    return np.asarray(r, dtype=x.dtype)


polygamma_p = Primitive("polygamma", _polygamma_impl)
def_rules(polygamma_p,
          jvp=(lambda t, ans, x, n: t * bind(polygamma_p, x, n=n + 1),),
          vjp=(lambda g, ans, x, n: g * bind(polygamma_p, x, n=n + 1),),
          batch=unary_batch(polygamma_p))


def _xlogy_impl(x, y):
    with np.errstate(all="ignore"):     # 0 where x == 0, but NaN y stays NaN (SciPy)
        return np.where((x == 0) & ~np.isnan(y), np.zeros((), np.result_type(x, y)),
                        x * np.log(y))


def _xlog1py_impl(x, y):
    with np.errstate(all="ignore"):
        return np.where((x == 0) & ~np.isnan(y), np.zeros((), np.result_type(x, y)),
                        x * np.log1p(y))


def _ratio_where_x_nonzero(x, d):
    """``x / d``, taken as 0 where ``x == 0`` (the function is identically 0 there)."""
    zero = x == 0
    return _el.where(zero, 0, x / _el.where(zero, 1, d))


xlogy_p = Primitive("xlogy", _xlogy_impl)
def_rules(xlogy_p,
          jvp=(lambda t, ans, x, y: t * _el.log(y),
               lambda t, ans, x, y: t * _ratio_where_x_nonzero(x, y)),
          vjp=(lambda g, ans, x, y: unbroadcast(g * _el.log(y), x),
               lambda g, ans, x, y: unbroadcast(g * _ratio_where_x_nonzero(x, y), y)),
          batch=broadcasting_batch(xlogy_p))


xlog1py_p = Primitive("xlog1py", _xlog1py_impl)
def_rules(xlog1py_p,
          jvp=(lambda t, ans, x, y: t * _el.log1p(y),
               lambda t, ans, x, y: t * _ratio_where_x_nonzero(x, 1 + y)),
          vjp=(lambda g, ans, x, y: unbroadcast(g * _el.log1p(y), x),
               lambda g, ans, x, y: unbroadcast(g * _ratio_where_x_nonzero(x, 1 + y), y)),
          batch=broadcasting_batch(xlog1py_p))


# ---- argument handling -------------------------------------------------------------------
def _real_input(x, op):
    x = _as_array(x)
    kind = x.dtype.kind
    if kind == "c":
        raise FuncgradTypeError(f"special.{op}: complex input {dtype_name(x)} is not "
                                "supported; pass real values")
    if kind in "biu":
        return _sh.astype(x, np.float64)
    if kind != "f":
        raise FuncgradTypeError(f"special.{op}: unsupported dtype in {dtype_name(x)}")
    if x.dtype.itemsize == 2:
        return _sh.astype(x, np.float32)
    if x.dtype.itemsize > 8:
        return _sh.astype(x, np.float64)
    return x


def _real_or_complex_input(x, op):
    """Like :func:`_real_input`, but complex input is kept (complex64/complex128) when SciPy
    is installed to compute it, and refused with a clear error when it is not."""
    x = _as_array(x)
    if x.dtype.kind != "c":
        return _real_input(x, op)
    try:
        import scipy.special  # noqa: F401
    except ImportError:
        raise FuncgradTypeError(
            f"special.{op}: complex input {dtype_name(x)} needs SciPy (its values come from "
            "scipy.special); install scipy or pass real values") from None
    if x.dtype.itemsize > 16:
        return _sh.astype(x, np.complex128)
    return x


def _common_real(x, y, op):
    """Two real arguments cast to their common floating dtype (Python numbers are weak,
    also when traced by jit)."""
    vals, probe = [], []
    for v in (x, y):
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            vals.append(v)
            probe.append(v)
        elif isinstance(v, Tracer) and v.weak:
            vals.append(v)
            probe.append(v.dtype.type(0).item())     # a Python number of its kind
        else:
            vals.append(_as_array(v))
            probe.append(np.empty((), vals[-1].dtype))
    dt = np.result_type(*probe)
    if dt.kind == "c":
        raise FuncgradTypeError(f"special.{op}: complex input is not supported")
    if dt.kind != "f":
        dt = np.dtype(np.float64)
    return [np.asarray(v, dt) if isinstance(v, (int, float)) else _sh.astype(_sh.strong(v), dt)
            for v in vals]



# ---- inverse error functions, incomplete gamma and beta: NumPy kernels -----------------------
def _erf_inverse_core(r, s):
    """``x >= 0`` with ``erfc(x) == r`` and ``erf(x) == s`` (the caller passes both,
    ``r + s == 1``, each exact where it is used): Winitzki's approximation, then Halley
    steps on ``erf(x) - s`` where ``s <= 0.5`` (small x) and on ``erfc(x) - r`` in the
    tail, so neither side loses digits to cancellation."""
    use_erf = s <= 0.5
    with np.errstate(all="ignore"):
        log_term = np.where(use_erf, np.log1p(-s * s), np.log(r * (2.0 - r)))
        a = 0.147
        t = 2.0 / (math.pi * a) + log_term / 2
        x = np.sqrt(np.maximum(np.sqrt(t * t - log_term / a) - t, 0.0))
        for _ in range(5):
            dens = _TWO_OVER_SQRT_PI * np.exp(-x * x)
            f = np.where(use_erf, _erf_np(x) - s, r - _erfc_np(x))
            u = np.where(dens > 0, f / np.where(dens > 0, dens, 1.0), 0.0)
            x = x - u / (1.0 + x * u)
    return x


def _erfinv_np(y):
    y = _f64(y)
    ay = np.abs(y)
    out = np.sign(y) * _erf_inverse_core(1.0 - ay, ay)
    out = np.where(ay == 1, np.sign(y) * np.inf, out)
    return np.where((ay > 1) | np.isnan(y), np.nan, out)


def _erfcinv_np(q):
    q = _f64(q)
    upper = q > 1                                # erfcinv(q) = -erfcinv(2 - q)
    r = np.where(upper, 2.0 - q, q)
    out = _erf_inverse_core(r, np.where(upper, q - 1.0, 1.0 - q))
    out = np.where(upper, -out, out)
    out = np.where(q == 0, np.inf, np.where(q == 2, -np.inf, out))
    out = np.where(q == 1, -0.0, out)            # SciPy's signed zero (ndtri(0.5) is +0)
    return np.where((q < 0) | (q > 2) | np.isnan(q), np.nan, out)


_LENTZ_TINY = 1e-300
_CF_TERMS = 400


def _gammainc_pair_np(a, x):
    """``(P(a, x), Q(a, x))``, the regularized lower and upper incomplete gamma
    functions: the series for P where ``x < a + 1``, the continued fraction for Q
    elsewhere (modified Lentz), each with a fixed number of terms (enough for ``a`` up
    to about 5e3; above, SciPy's kernel where installed)."""
    a, x = np.broadcast_arrays(_f64(a), _f64(x))
    with np.errstate(all="ignore"):
        series = x < a + 1
        log_pre = a * np.log(x) - x
        # series: P = x^a e^-x / Gamma(a + 1) * sum x^n / ((a + 1)...(a + n))
        term = np.ones_like(x)
        total = np.ones_like(x)
        ap = a.copy()
        for _ in range(_CF_TERMS):
            ap = ap + 1
            term = term * x / ap
            total = total + term
        p_series = np.exp(log_pre - _gammaln_np(a + 1)) * total
        # continued fraction for Q
        b = x + 1 - a
        c = np.full_like(x, 1 / _LENTZ_TINY)
        d = 1 / np.where(np.abs(b) < _LENTZ_TINY, _LENTZ_TINY, b)
        h = d
        for i in range(1, _CF_TERMS):
            an = -i * (i - a)
            b = b + 2
            d = an * d + b
            d = 1 / np.where(np.abs(d) < _LENTZ_TINY, _LENTZ_TINY, d)
            c = b + an / c
            c = np.where(np.abs(c) < _LENTZ_TINY, _LENTZ_TINY, c)
            h = h * d * c
        q_cf = np.exp(log_pre - _gammaln_np(a)) * h
        p = np.where(series, p_series, 1 - q_cf)
        q = np.where(series, 1 - p_series, q_cf)
        # SciPy's values at the edges
        zero_x = x == 0
        p = np.where(zero_x, 0.0, p)
        q = np.where(zero_x, 1.0, q)
        a_zero = (a == 0) & (x > 0)
        inf_x = np.isposinf(x)
        p = np.where(a_zero | inf_x, 1.0, p)
        q = np.where(a_zero | inf_x, 0.0, q)
        bad = (a < 0) | (x < 0) | np.isnan(a) | np.isnan(x) | ((a == 0) & (x == 0))
        p = np.where(bad, np.nan, p)
        q = np.where(bad, np.nan, q)
        # a = inf: SciPy's limits (P = 0 for finite x, NaN at x = inf)
        inf_a = np.isposinf(a) & ~bad
        p = np.where(inf_a, np.where(inf_x, np.nan, 0.0), p)
        q = np.where(inf_a, np.where(inf_x, np.nan, 1.0), q)
    # Past a ~ 5e3 the fixed number of terms no longer converges (at a = x = 1e5 the
    # series gave 0.40 for 0.50): there SciPy's kernel is used when it is installed.
    big = np.isfinite(a) & (a > 5e3) & ~bad
    if np.any(big):
        try:
            import scipy.special as _sc
        except ImportError:     # pragma: no cover - SciPy is an optional extra
            return p, q
        p, q = p.copy(), q.copy()
        p[big], q[big] = _sc.gammainc(a[big], x[big]), _sc.gammaincc(a[big], x[big])
    return p, q


def _betacf(a, b, x):
    """The continued fraction of the regularized incomplete beta (modified Lentz)."""
    qab, qap, qam = a + b, a + 1, a - 1
    c = np.ones_like(x)
    d = 1 - qab * x / qap
    d = 1 / np.where(np.abs(d) < _LENTZ_TINY, _LENTZ_TINY, d)
    h = d
    for m in range(1, _CF_TERMS):
        m2 = 2 * m
        for aa in (m * (b - m) * x / ((qam + m2) * (a + m2)),
                   -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))):
            d = 1 + aa * d
            d = 1 / np.where(np.abs(d) < _LENTZ_TINY, _LENTZ_TINY, d)
            c = 1 + aa / c
            c = np.where(np.abs(c) < _LENTZ_TINY, _LENTZ_TINY, c)
            h = h * d * c
    return h


def _betainc_np(a, b, x):
    a, b, x = np.broadcast_arrays(_f64(a), _f64(b), _f64(x))
    with np.errstate(all="ignore"):
        log_front = (a * np.log(x) + b * np.log1p(-x)
                     - (_gammaln_np(a) + _gammaln_np(b) - _gammaln_np(a + b)))
        front = np.exp(log_front)
        direct = x < (a + 1) / (a + b + 2)
        lo = front * _betacf(a, b, x) / a
        hi = 1 - front * _betacf(b, a, 1 - x) / b
        out = np.where(direct, lo, hi)
        out = np.where(x == 0, 0.0, np.where(x == 1, 1.0, out))
        out = np.where((a == 0) & (b > 0) & (x > 0), 1.0, out)
        out = np.where((b == 0) & (a > 0) & (x < 1), 0.0, out)
        bad = ((a < 0) | (b < 0) | (x < 0) | (x > 1) | ((a == 0) & (b == 0))
               | np.isnan(a) | np.isnan(b) | np.isnan(x))
    return np.where(bad, np.nan, out)


def _gammasgn_np(x):
    x = _f64(x)
    with np.errstate(all="ignore"):
        odd = np.floor(x) % 2 == 1
        out = np.where(x > 0, 1.0, np.where(odd, -1.0, 1.0))
        out = np.where((x < 0) & (x == np.floor(x)), np.nan, out)
        out = np.where(x == 0, np.where(np.signbit(x), -1.0, 1.0), out)
    return np.where(np.isnan(x) | np.isneginf(x), np.nan, out)


def _rgamma_np(x):
    x = _f64(x)
    with np.errstate(all="ignore"):
        out = _gammasgn_np(x) * np.exp(-_gammaln_np(x))
        pole = (x < 0) & (x == np.floor(x))
    return np.where(pole, 0.0, out)


def _kernel_impl(kernel):
    """A NumPy float64 kernel as an implementation: the inputs' floating dtype out."""
    def impl(*args):
        with np.errstate(all="ignore"):
            r = kernel(*args)
        return np.asarray(r, dtype=np.result_type(*[a.dtype for a in args]))
    return impl


def _no_derivative(op, arg):
    def rule(*_, **__):
        raise FuncgradValueError(
            f"special.{op}: no derivative with respect to {arg} (only the last argument "
            f"is differentiable); wrap {arg} in funcgrad.stop_gradient if it should be a "
            "constant")
    return rule


erfinv_p = _unary("erfinv", _erfinv_np,
                  lambda c, ans, x: c * (_SQRT_PI / 2 * _el.exp(ans * ans)))
erfcinv_p = _unary("erfcinv", _erfcinv_np,
                   lambda c, ans, x: c * (-_SQRT_PI / 2 * _el.exp(ans * ans)))
gammasgn_p = _unary("gammasgn", _gammasgn_np, lambda c, ans, x: c * 0)


def _rgamma_slope(ans, x):
    """d/dx 1/Gamma(x): ``-rgamma(x) digamma(x)``, and at the poles ``x = -n`` its limit
    ``(-1)^n n!``."""
    pole = (x <= 0) & (x == _el.floor(x))
    safe = _el.where(pole, 0.5, x)
    n = _el.where(pole, -x, 0.0)
    at_pole = (1 - 2 * _el.remainder(n, 2)) * _el.exp(bind(gammaln_p, n + 1))
    return _el.where(pole, at_pole, -ans * bind(digamma_p, safe))


rgamma_p = _unary("rgamma", _rgamma_np, lambda c, ans, x: c * _rgamma_slope(ans, x))


def _gammainc_slope(a, x):
    """d/dx P(a, x) = x^(a-1) e^-x / Gamma(a) (0 at x = 0 for a > 1)."""
    pos = x > 0
    xs = _el.where(pos, x, 1.0)
    return _el.where(pos, _el.exp((a - 1) * _el.log(xs) - xs - bind(gammaln_p, a)), 0.0)


gammainc_p = Primitive("gammainc", _kernel_impl(lambda a, x: _gammainc_pair_np(a, x)[0]))
def_rules(gammainc_p,
          jvp=(_no_derivative("gammainc", "a"),
               lambda t, ans, a, x: t * _gammainc_slope(a, x)),
          vjp=(_no_derivative("gammainc", "a"),
               lambda g, ans, a, x: unbroadcast(g * _gammainc_slope(a, x), x)),
          batch=broadcasting_batch(gammainc_p))
gammaincc_p = Primitive("gammaincc", _kernel_impl(lambda a, x: _gammainc_pair_np(a, x)[1]))
def_rules(gammaincc_p,
          jvp=(_no_derivative("gammaincc", "a"),
               lambda t, ans, a, x: -t * _gammainc_slope(a, x)),
          vjp=(_no_derivative("gammaincc", "a"),
               lambda g, ans, a, x: unbroadcast(-g * _gammainc_slope(a, x), x)),
          batch=broadcasting_batch(gammaincc_p))


def _betainc_slope(a, b, x):
    """d/dx I_x(a, b) = x^(a-1) (1-x)^(b-1) / B(a, b), inside (0, 1)."""
    inside = (x > 0) & (x < 1)
    xs = _el.where(inside, x, 0.5)
    lb = bind(gammaln_p, a) + bind(gammaln_p, b) - bind(gammaln_p, a + b)
    return _el.where(inside, _el.exp((a - 1) * _el.log(xs) + (b - 1) * _el.log1p(-xs) - lb),
                     0.0)


betainc_p = Primitive("betainc", _kernel_impl(_betainc_np))
def_rules(betainc_p,
          jvp=(_no_derivative("betainc", "a"), _no_derivative("betainc", "b"),
               lambda t, ans, a, b, x: t * _betainc_slope(a, b, x)),
          vjp=(_no_derivative("betainc", "a"), _no_derivative("betainc", "b"),
               lambda g, ans, a, b, x: unbroadcast(g * _betainc_slope(a, b, x), x)),
          batch=broadcasting_batch(betainc_p))

# ---- public functions ----------------------------------------------------------------------
def erf(x):
    """Error function ``2/sqrt(pi) * integral_0^x exp(-t**2) dt``, elementwise.

    Real input (integers become float64, float32 stays float32); relative error about
    1e-15. Derivative ``2/sqrt(pi) * exp(-x**2)``. Complex input (complex64/complex128)
    needs SciPy, which gives the values; the derivative is the same formula, holomorphic
    (``grad`` needs ``holomorphic=True``, as for any complex function).

    Raises:
        FuncgradTypeError: complex input without SciPy installed.

    Example:
        >>> import funcgrad.scipy.special as fsp
        >>> round(float(fsp.erf(1.0)), 12)
        0.842700792950
    """
    return bind(erf_p, _real_or_complex_input(x, "erf"))


def erfc(x):
    """Complementary error function ``1 - erf(x)``, accurate (relative error about 1e-15)
    also where it is tiny (large ``x``). Derivative ``-2/sqrt(pi) * exp(-x**2)``.

    Complex input is supported as for :func:`erf` (values from SciPy, holomorphic
    derivative); without SciPy it raises ``FuncgradTypeError``."""
    return bind(erfc_p, _real_or_complex_input(x, "erfc"))


def gammaln(x):
    """``log|Gamma(x)|``, elementwise, for real ``x`` (``inf`` at 0 and the negative
    integers). Relative error about 1e-15 (absolute about 1e-16 next to its zeros at 1
    and 2). Derivative: :func:`digamma`.

    Example:
        >>> import funcgrad.scipy.special as fsp
        >>> round(float(fsp.gammaln(5.0)), 12)   # log(4!)
        3.178053830348
    """
    return bind(gammaln_p, _real_input(x, "gammaln"))


def digamma(x):
    """The digamma function ``psi(x) = d/dx log Gamma(x)``, elementwise, for real ``x``.

    Relative error about 1e-15, also next to its positive zero (1.4616...). Poles:
    ``-inf`` at ``+0.0``, ``inf`` at ``-0.0``, ``nan`` at the negative integers (as SciPy).
    Derivative: ``polygamma(1, x)``.
    """
    return bind(digamma_p, _real_input(x, "digamma"))


psi = digamma


def polygamma(n, x):
    """The ``n``-th derivative of :func:`digamma`, elementwise (``n`` a non-negative
    Python int; ``polygamma(0, x) == digamma(x)``). Works for negative non-integer ``x``
    (reflection formula). Derivative: ``polygamma(n + 1, x)``."""
    if isinstance(n, Tracer) or np.ndim(n) != 0 or int(n) != n or n < 0:
        raise FuncgradValueError(
            f"special.polygamma: n must be a non-negative integer (a Python int), got {n!r}")
    n = int(n)
    x = _real_input(x, "polygamma")
    return bind(digamma_p, x) if n == 0 else bind(polygamma_p, x, n=n)


def expit(x):
    """Logistic sigmoid ``1 / (1 + exp(-x))``, without overflow for large ``|x|``.
    Derivative ``expit(x) * (1 - expit(x))``.

    Example:
        >>> import funcgrad.scipy.special as fsp
        >>> float(fsp.expit(0.0))
        0.5
    """
    return bind(expit_p, _real_input(x, "expit"))


def log_expit(x):
    """``log(expit(x)) = -log(1 + exp(-x))``, computed stably."""
    x = _real_input(x, "log_expit")
    return -_el.logaddexp(_cr.zeros_like(x), -x)


def logit(p):
    """Inverse of :func:`expit`: ``log(p / (1 - p))``; derivative ``1 / (p (1 - p))``."""
    p = _real_input(p, "logit")
    return _el.log(p) - _el.log1p(-p)


def xlogy(x, y):
    """``x * log(y)``, with 0 where ``x == 0`` (even for ``y == 0``), with broadcasting.

    Derivatives: ``d/dx = log(y)``; ``d/dy = x / y``, taken as 0 where ``x == 0`` (the
    function is identically 0 there), so ``xlogy(p, p)`` style entropies have no NaN
    gradient in ``y`` at ``p == 0``.
    """
    x, y = _common_real(x, y, "xlogy")
    return bind(xlogy_p, x, y)


def xlog1py(x, y):
    """``x * log1p(y)``, with 0 where ``x == 0``; derivatives as :func:`xlogy` (``d/dy =
    x / (1 + y)``, 0 where ``x == 0``)."""
    x, y = _common_real(x, y, "xlog1py")
    return bind(xlog1py_p, x, y)


def _shifted_max(a, axes):
    """The maximum over ``axes`` (kept), without derivative, and 0 where it is infinite."""
    # over nothing (an empty axis) the shift is -inf, then 0 below: the sum is empty
    empty = any(a.shape[i] == 0 for i in axes)
    m = stop_gradient(_red.max(a, axis=axes, keepdims=True,
                               initial=-np.inf if empty else None))
    return _el.where(_el.isfinite(m), m, 0)


def logsumexp(a, axis=None, b=None, keepdims=False, return_sign=False):
    """``log(sum(b * exp(a), axis))``, computed without overflow.

    ``axis`` is None (all), an int or a tuple; ``b`` scales the terms (broadcast against
    ``a``, differentiable); with ``return_sign=True`` it returns ``(log|s|, sign(s))`` so
    negative ``b`` work. All entries ``-inf`` give ``-inf`` with a zero (not NaN) gradient;
    ``-inf`` entries get zero gradient; huge entries do not overflow.

    Example:
        >>> import numpy as np, funcgrad.scipy.special as fsp
        >>> float(fsp.logsumexp(np.array([1000., 1000.])))  # doctest: +ELLIPSIS
        1000.693147...
    """
    a = _real_input(a, "logsumexp")
    if b is not None:
        a, b = _common_real(a, b, "logsumexp")
        a = _sh.broadcast_to(a, np.broadcast_shapes(a.shape, np.shape(b)))
    axes = normalize_axes(axis, a.ndim, "special.logsumexp", scalar_axis=True)
    m = _shifted_max(a, axes)
    e = _el.exp(a - m)
    if b is not None:
        e = e * b
    s = _red.sum(e, axis=axes, keepdims=True)
    sign = None
    if return_sign:
        sign = _el.sign(s)
        s = _el.abs(s)
    zero = s == 0
    out = _el.where(zero, -np.inf, _el.log(_el.where(zero, 1, s))) + m
    if not keepdims:
        out = _sh.squeeze(out, axis=axes)
        if sign is not None:
            sign = _sh.squeeze(sign, axis=axes)
    return (out, sign) if return_sign else out


def softmax(x, axis=None):
    """``exp(x) / sum(exp(x), axis)`` (``axis=None``: over all elements, as SciPy),
    computed after subtracting the maximum, so huge inputs do not overflow. ``-inf``
    entries get probability 0 and zero gradient.

    Example:
        >>> import numpy as np, funcgrad.scipy.special as fsp
        >>> fsp.softmax(np.array([0., np.log(3.)]))
        array([0.25, 0.75])
    """
    x = _real_input(x, "softmax")
    axes = normalize_axes(axis, x.ndim, "special.softmax", scalar_axis=True)
    e = _el.exp(x - _shifted_max(x, axes))
    return e / _red.sum(e, axis=axes, keepdims=True)


def log_softmax(x, axis=None):
    """``x - logsumexp(x, axis)``, computed stably (``axis=None``: over all elements).
    Gradients are finite for huge logits and for ``-inf`` entries (whose output is
    ``-inf``)."""
    x = _real_input(x, "log_softmax")
    axes = normalize_axes(axis, x.ndim, "special.log_softmax", scalar_axis=True)
    shifted = x - _shifted_max(x, axes)
    s = _red.sum(_el.exp(shifted), axis=axes, keepdims=True)
    return shifted - _el.log(s)


# ---- normal distribution, inverse error functions --------------------------------------------
_SQRT_HALF = math.sqrt(0.5)


def ndtr(x):
    """The standard normal CDF ``(1 + erf(x / sqrt(2))) / 2``, computed as ``erfc(-x /
    sqrt(2)) / 2`` (accurate in the lower tail). Derivative ``exp(-x**2/2) / sqrt(2 pi)``."""
    x = _real_input(x, "ndtr")
    return 0.5 * erfc(-x * _SQRT_HALF)


def log_ndtr(x):
    """``log(ndtr(x))`` without underflow: ``log1p(-erfc(x/sqrt 2)/2)`` for ``x > 0``,
    ``log(erfc(-x/sqrt 2)/2)`` down to -30, and the asymptotic series of Mills' ratio
    below (error under 1e-15). Differentiable to any order."""
    x = _real_input(x, "log_ndtr")
    upper = x > 0
    xu = _el.where(upper, x, 1.0)
    up = _el.log1p(-0.5 * erfc(xu * _SQRT_HALF))
    far = x < -30
    xm = _el.where(upper | far, -1.0, x)
    mid = _el.log(0.5 * erfc(-xm * _SQRT_HALF))
    xf = _el.where(far, x, -31.0)
    inv2 = 1.0 / (xf * xf)
    series = 1.0
    term = 1.0
    for k in range(1, 8):                       # 1 - 1/x^2 + 3/x^4 - 15/x^6 ...
        term = term * -(2 * k - 1) * inv2
        series = series + term
    low = -0.5 * xf * xf - _el.log(-xf) - _HALF_LOG_2PI + _el.log(series)
    return _el.where(upper, up, _el.where(far, low, mid))


def erfinv(y):
    """The inverse of :func:`erf` on ``[-1, 1]`` (``+-inf`` at ``+-1``, NaN outside), as
    SciPy's: an approximation refined by Halley steps on ``erf`` (``erfc`` in the tails),
    relative error about 1e-15. Derivative ``sqrt(pi)/2 * exp(erfinv(y)**2)``."""
    return bind(erfinv_p, _real_input(y, "erfinv"))


def erfcinv(y):
    """The inverse of :func:`erfc` on ``[0, 2]`` (``inf`` at 0, ``-inf`` at 2, NaN
    outside); accurate in the tail (``erfcinv(1e-300)``). Derivative ``-sqrt(pi)/2 *
    exp(erfcinv(y)**2)``."""
    return bind(erfcinv_p, _real_input(y, "erfcinv"))


def ndtri(p):
    """The inverse of :func:`ndtr` (the standard normal quantile): ``-sqrt(2) *
    erfcinv(2 p)``; ``-inf`` at 0, ``inf`` at 1, NaN outside ``[0, 1]``. Derivative
    ``sqrt(2 pi) exp(ndtri(p)**2 / 2)``."""
    p = _real_input(p, "ndtri")
    return -math.sqrt(2.0) * bind(erfcinv_p, 2 * p)


# ---- modified Bessel functions -----------------------------------------------------------
def i0e(x):
    """``exp(-|x|) * i0(x)``, without overflow. Derivative ``i1e(x) - sign(x) i0e(x)``
    (0 taken at the kink ``x = 0``)."""
    return bind(bessel_i0e_p, _real_input(x, "i0e"))


def i1(x):
    """The modified Bessel function of the first kind, order 1. Derivative ``i0(x) -
    i1(x)/x`` (1/2 at 0)."""
    return bind(bessel_i1_p, _real_input(x, "i1"))


def i1e(x):
    """``exp(-|x|) * i1(x)``, without overflow. Derivative ``i0e(x) - i1e(x)/x -
    sign(x) i1e(x)``."""
    return bind(bessel_i1e_p, _real_input(x, "i1e"))


# ---- entropy, gamma and beta functions ---------------------------------------------------------
def entr(x):
    """``-x log x`` for ``x > 0``, 0 at 0, ``-inf`` for ``x < 0`` (SciPy's ``entr``).
    Derivative ``-(log x + 1)`` (``+inf`` at 0)."""
    x = _real_input(x, "entr")
    neg = x < 0
    xs = _el.where(neg, 1.0, x)
    return _el.where(neg, -np.inf, 0.0 - xlogy(xs, xs))    # +0 at 0, as SciPy


def gammasgn(x):
    """The sign of the gamma function: 1 for ``x > 0``, +-1 between the negative poles,
    the sign of zero at +-0, NaN at the negative integers and -inf (SciPy's). Derivative
    0 (piecewise constant)."""
    return bind(gammasgn_p, _real_input(x, "gammasgn"))


def gamma(x):
    """The gamma function, as ``gammasgn(x) * exp(gammaln(x))`` (relative error about
    ``gammaln(x) * 1e-16``; ``+-inf`` at +-0, NaN at the negative integers, overflow to
    inf above 171.6). Derivative ``gamma(x) * digamma(x)``."""
    x = _real_input(x, "gamma")
    return gammasgn(x) * _el.exp(gammaln(x))


def rgamma(x):
    """``1 / gamma(x)``, 0 at the poles (0 and the negative integers). Derivative
    ``-rgamma(x) digamma(x)``, and its limit ``(-1)^n n!`` at ``x = -n``: exact to first
    order there (higher derivatives at the poles are not)."""
    return bind(rgamma_p, _real_input(x, "rgamma"))


def betaln(a, b):
    """``log|B(a, b)| = gammaln(a) + gammaln(b) - gammaln(a + b)``, differentiable in both
    arguments (``digamma(a) - digamma(a + b)``...). Where the larger argument exceeds
    1e4, Stirling's series for ``gammaln(b) - gammaln(a + b)`` keeps full precision
    (``betaln(1, 1e20)`` is ``-46.05``, not the 0 the three gammaln terms round to)."""
    a, b = _common_real(a, b, "betaln")
    lo, hi = _el.minimum(a, b), _el.maximum(a, b)
    big = hi > _BETALN_BIG
    if not _any_true(big):
        return gammaln(a) + gammaln(b) - gammaln(a + b)
    # gammaln(hi) - gammaln(lo + hi) cancels catastrophically for a large hi (it gave
    # betaln(1, 1e20) = 0 for -46.05): Stirling's series for the difference instead,
    # -(hi - 1/2) log1p(lo/hi) - lo log(lo + hi) + lo + 1/(12 hi) - 1/(12 (lo + hi)),
    # whose next term is O(hi^-3). Each branch sees safe inputs where it is not taken,
    # so neither sends NaN into the other's gradient.
    inf_hi = _el.isinf(hi)
    use = big & ~inf_hi
    his = _el.where(use, hi, 2.0 * _BETALN_BIG)
    los = _el.where(use, lo, 1.0)
    s = los + his
    asym = (gammaln(los) - (his - 0.5) * _el.log1p(los / his) - los * _el.log(s) + los
            + (1.0 / (12.0 * his) - 1.0 / (12.0 * s)))
    an, bn = _el.where(big, 1.0, a), _el.where(big, 1.0, b)
    naive = gammaln(an) + gammaln(bn) - gammaln(an + bn)
    # betaln(x, inf) is -inf for a finite x > 0, NaN otherwise (SciPy)
    at_inf = _sh.astype(_el.where((lo > 0) & _el.isfinite(lo), -math.inf, math.nan),
                        naive.dtype)
    return _el.where(use, asym, _el.where(big, at_inf, naive))


_BETALN_BIG = 1e4




def beta(a, b):
    """The beta function ``Gamma(a) Gamma(b) / Gamma(a + b)``, as ``sign * exp(betaln)``
    (no overflow of the gammas); differentiable in both arguments."""
    a, b = _common_real(a, b, "beta")
    return gammasgn(a) * gammasgn(b) * gammasgn(a + b) * _el.exp(betaln(a, b))


def multigammaln(a, d):
    """The log of the multivariate gamma function of dimension ``d`` (a Python int):
    ``d(d-1)/4 log(pi) + sum_j gammaln(a - j/2)``, j = 0..d-1. Raises
    FuncgradValueError where ``a <= (d - 1) / 2`` (checked on plain arrays), as SciPy. Differentiable
    in ``a``."""
    if isinstance(d, Tracer) or np.ndim(d) != 0 or int(d) != d or d < 1:
        raise FuncgradValueError(f"special.multigammaln: d must be a positive int, got {d!r}")
    d = int(d)
    a = _real_input(a, "multigammaln")
    if not isinstance(a, Tracer) and np.any(np.asarray(a) <= (d - 1) / 2):
        raise FuncgradValueError(
            f"special.multigammaln: condition a > (d-1)/2 = {(d - 1) / 2} not met")
    out = d * (d - 1) / 4 * math.log(math.pi)
    for j in range(d):
        out = out + gammaln(a - j / 2)
    return out


# ---- incomplete gamma and beta -----------------------------------------------------------
def gammainc(a, x):
    """The regularized lower incomplete gamma function ``P(a, x)`` (``a, x >= 0``; NaN
    outside, as SciPy). Derivative in ``x`` only: ``x^(a-1) e^-x / Gamma(a)``;
    differentiating in ``a`` raises FuncgradValueError."""
    a, x = _common_real(a, x, "gammainc")
    return bind(gammainc_p, a, x)


def gammaincc(a, x):
    """The regularized upper incomplete gamma function ``Q(a, x) = 1 - P(a, x)``,
    computed directly (accurate where it is tiny). Derivative in ``x`` only (minus that of
    :func:`gammainc`); differentiating in ``a`` raises FuncgradValueError."""
    a, x = _common_real(a, x, "gammaincc")
    return bind(gammaincc_p, a, x)


def betainc(a, b, x):
    """The regularized incomplete beta function ``I_x(a, b)`` (``a, b >= 0``, ``0 <= x <=
    1``; NaN outside, as SciPy), by its continued fraction. Derivative in ``x`` only:
    ``x^(a-1) (1-x)^(b-1) / B(a, b)``; differentiating in ``a`` or ``b`` raises
    FuncgradValueError."""
    a, b = _common_real(a, b, "betainc")
    a, x = _common_real(a, x, "betainc")
    b, x = _common_real(b, x, "betainc")
    return bind(betainc_p, a, b, x)


# ---- Bessel functions and Hurwitz zeta: SciPy's kernels, our derivatives -------------------
def _scipy_kernel(name):
    """``scipy.special.<name>`` as a kernel; SciPy is needed for these functions only."""
    def kernel(*args):
        try:
            import scipy.special as sc
        except ImportError:     # pragma: no cover - SciPy is an optional extra
            raise FuncgradValueError(
                f"special.{name}: needs SciPy for its values (pip install scipy); the "
                "derivatives are funcgrad's") from None
        return getattr(sc, name)(*args)
    return kernel


def _order_rule(p, combine):
    """Forward and reverse rules in ``x`` for a Bessel primitive ``p(v, x)`` whose
    derivative is ``combine(p(v - 1, x), p(v + 1, x), ans, v, x)``."""
    def slope(ans, v, x):
        return combine(bind(p, v - 1, x), bind(p, v + 1, x), ans, v, x)
    return slope


def _bessel(name, combine):
    p = Primitive(name, _kernel_impl(_scipy_kernel(name)))
    slope = _order_rule(p, combine)
    def_rules(p,
              jvp=(_no_derivative(name, "the order v"),
                   lambda t, ans, v, x: t * slope(ans, v, x)),
              vjp=(_no_derivative(name, "the order v"),
                   lambda g, ans, v, x: unbroadcast(g * slope(ans, v, x), x)),
              batch=broadcasting_batch(p))
    return p


# J_v' = (J_{v-1} - J_{v+1}) / 2, the same for Y_v; I_v' = (I_{v-1} + I_{v+1}) / 2;
# ive = iv e^{-|x|}: ive' = (ive_{v-1} + ive_{v+1}) / 2 - sign(x) ive
jv_p = _bessel("jv", lambda lo, hi, ans, v, x: 0.5 * (lo - hi))
yv_p = _bessel("yv", lambda lo, hi, ans, v, x: 0.5 * (lo - hi))
iv_p = _bessel("iv", lambda lo, hi, ans, v, x: 0.5 * (lo + hi))
ive_p = _bessel("ive", lambda lo, hi, ans, v, x: 0.5 * (lo + hi) - _el.sign(x) * ans)

zeta_p = Primitive("zeta", _kernel_impl(_scipy_kernel("zeta")))
# d/dq zeta(s, q) = -s zeta(s + 1, q); no derivative in s
def_rules(zeta_p,
          jvp=(_no_derivative("zeta", "s"),
               lambda t, ans, s, q: t * (-s * bind(zeta_p, s + 1, q))),
          vjp=(_no_derivative("zeta", "s"),
               lambda g, ans, s, q: unbroadcast(g * (-s * bind(zeta_p, s + 1, q)), q)),
          batch=broadcasting_batch(zeta_p))


def _bessel_call(p, name, v, x):
    v, x = _common_real(v, x, name)
    return bind(p, v, x)


def jv(v, x):
    """Bessel function of the first kind of real order ``v``, ``J_v(x)``. Values from
    SciPy's kernel (SciPy needed); derivative in ``x``: ``(J_{v-1} - J_{v+1}) / 2`` (to any
    order); differentiating in ``v`` raises FuncgradValueError. float32 stays float32."""
    return _bessel_call(jv_p, "jv", v, x)


def yv(v, x):
    """Bessel function of the second kind ``Y_v(x)``; as :func:`jv` (``Y_v' = (Y_{v-1} -
    Y_{v+1}) / 2``)."""
    return _bessel_call(yv_p, "yv", v, x)


def jn(n, x):
    """``J_n(x)`` for integer order ``n`` (SciPy's alias of :func:`jv`)."""
    return jv(n, x)


def yn(n, x):
    """``Y_n(x)`` for integer order ``n``; as :func:`yv`."""
    return yv(n, x)


def j0(x):
    """``J_0(x)``; derivative ``-J_1(x)``."""
    return jv(0.0, x)


def j1(x):
    """``J_1(x)``; derivative ``(J_0 - J_2) / 2``."""
    return jv(1.0, x)


def y0(x):
    """``Y_0(x)`` (``x > 0``; NaN below, -inf at 0, as SciPy); derivative ``-Y_1(x)``."""
    return yv(0.0, x)


def y1(x):
    """``Y_1(x)``; derivative ``(Y_0 - Y_2) / 2``."""
    return yv(1.0, x)


def iv(v, x):
    """Modified Bessel function of the first kind ``I_v(x)``; derivative in ``x``
    ``(I_{v-1} + I_{v+1}) / 2``; as :func:`jv` otherwise."""
    return _bessel_call(iv_p, "iv", v, x)


def ive(v, x):
    """Exponentially scaled ``I_v(x) exp(-|x|)`` (no overflow for large ``x``);
    derivative ``(ive_{v-1} + ive_{v+1}) / 2 - sign(x) ive_v``."""
    return _bessel_call(ive_p, "ive", v, x)


def zeta(x, q=None):
    """The Hurwitz zeta function ``sum_k (k + q)^-x`` (Riemann's for ``q=None``). Values
    from SciPy's kernel; differentiable in ``q`` (``-x zeta(x + 1, q)``), not in ``x``
    (FuncgradValueError)."""
    if q is None:
        q = 1.0
    x, q = _common_real(x, q, "zeta")
    return bind(zeta_p, x, q)

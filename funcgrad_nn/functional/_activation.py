"""Activation functions, ``softmax``/``softmin``/``log_softmax`` and ``erf``."""
from __future__ import annotations

import math

import numpy as np

import funcgrad
import funcgrad.nn as _fnn
import funcgrad.numpy as fnp
import funcgrad.random as fr
from funcgrad.errors import FuncgradValueError

from ._util import _arr, _axis

try:
    from funcgrad.scipy.special import erf as _special_erf
except ImportError:  # pragma: no cover - a funcgrad without scipy.special
    _special_erf = None


def relu(input):
    """``max(x, 0)``, as PyTorch: ``relu(-inf) = 0``, NaN propagates, and the derivative is
    1 above 0 and 0 at and below 0 (at NaN it is 0, JAX's convention; PyTorch's is 1).

    One primitive (``funcgrad.nn.relu``): NumPy's ``maximum(x, 0)`` forward and one mask
    product backward, eager and under ``jit`` alike.
    """
    return _fnn.relu(_arr(input))


def hardtanh(input, min_val=-1.0, max_val=1.0, inplace=False):
    """``min_val`` where ``x <= min_val``, ``max_val`` where ``x >= max_val``, else ``x``.

    As in PyTorch: NaN propagates; the derivative is 1 strictly inside
    ``(min_val, max_val)`` (and at NaN), 0 elsewhere, the bounds included. Raises
    FuncgradValueError when ``min_val > max_val``. ``inplace`` is accepted and ignored
    (arrays are values).
    """
    x = _arr(input)
    lo, hi = float(min_val), float(max_val)
    if lo > hi:
        raise FuncgradValueError(
            f"hardtanh: min_val={min_val} must not be greater than max_val={max_val}")
    # "x <= lo" and "x >= hi" are False at NaN, so NaN falls through to x
    return fnp.where(x <= lo, lo, fnp.where(x >= hi, hi, x))


def relu6(input):
    """``min(max(x, 0), 6)`` (``hardtanh(x, 0, 6)``): NaN propagates; the derivative is 0
    at 0 and 6, as in PyTorch."""
    return hardtanh(input, 0.0, 6.0)


def leaky_relu(input, negative_slope=0.01):
    """``x`` where ``x > 0``, else ``negative_slope * x``."""
    x = _arr(input)
    return fnp.where(x > 0, x, x * float(negative_slope))


def elu(input, alpha=1.0):
    """``x`` where ``x > 0``, else ``alpha * (exp(x) - 1)``; no overflow for large x."""
    x = _arr(input)
    neg = fnp.where(x > 0, 0.0, x)
    return fnp.where(x > 0, x, float(alpha) * fnp.expm1(neg))


_SQRT_PI = math.sqrt(math.pi)


def _erf_own(x):
    # |x| <= 2: erf(x) = 2/sqrt(pi) exp(-x^2) sum_k (2x^2)^k x / (2k+1)!!, all terms
    # positive (no cancellation); 30 terms reach double precision on [0, 2].
    # |x| > 2: erfc from its continued fraction (40 terms). Each branch sees clamped
    # inputs so the unused one stays finite and gradients never turn into NaN.
    small = fnp.abs(x) <= 2.0
    xs = fnp.where(small, x, 0.0)
    x2 = xs * xs
    term = xs
    s = xs
    for k in range(1, 30):
        term = term * x2 * (2.0 / (2 * k + 1))
        s = s + term
    erf_small = (2.0 / _SQRT_PI) * fnp.exp(-x2) * s
    a = fnp.where(small, 2.0, fnp.abs(x))
    f = a
    for k in range(40, 0, -1):
        f = a + (k / 2.0) / f
    erfc_large = fnp.exp(-a * a) / (_SQRT_PI * f)
    erf_large = fnp.where(x > 0, 1.0 - erfc_large, erfc_large - 1.0)
    return fnp.where(small, erf_small, erf_large)


def erf(input):
    """The error function, accurate to double precision, differentiable to any order.

    Uses ``funcgrad.scipy.special.erf`` when funcgrad provides it, else a series
    (``|x| <= 2``) / continued fraction (``|x| > 2``) evaluation in ``funcgrad.numpy``.
    """
    x = _arr(input)
    if np.dtype(x.dtype).kind not in "f":
        x = fnp.astype(x, np.float64)
    return _special_erf(x) if _special_erf is not None else _erf_own(x)


def gelu(input, approximate="none"):
    """Gaussian error linear unit ``x * Phi(x)``.

    ``approximate='none'`` uses the exact ``erf``; ``'tanh'`` uses
    ``0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))`` (as in PyTorch).
    """
    x = _arr(input)
    if approximate == "none":
        return 0.5 * x * (1.0 + erf(x * (1.0 / math.sqrt(2.0))))
    if approximate == "tanh":
        inner = math.sqrt(2.0 / math.pi) * (x + 0.044715 * x * x * x)
        return 0.5 * x * (1.0 + fnp.tanh(inner))
    raise FuncgradValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")


def sigmoid(input):
    """``1 / (1 + exp(-x))``, computed without overflow for any x.

    One primitive (``funcgrad.nn.sigmoid``) for real inputs: its reverse pass keeps only
    the result (an LSTM step runs three)."""
    x = _arr(input)
    if np.dtype(x.dtype).kind != "c":
        return _fnn.sigmoid(x)
    pos = x >= 0
    e = fnp.exp(fnp.where(pos, -x, x))       # exp(-|x|) <= 1, with the right derivative
    return fnp.where(pos, 1.0 / (1.0 + e), e / (1.0 + e))


def silu(input):
    """``x * sigmoid(x)`` (also called swish)."""
    x = _arr(input)
    return x * sigmoid(x)


def tanh(input):
    """Hyperbolic tangent."""
    return fnp.tanh(_arr(input))


def softplus(input, beta=1.0, threshold=20.0):
    """``log(1 + exp(beta x)) / beta``, linear above ``beta x > threshold`` (PyTorch)."""
    x = _arr(input)
    bx = x * float(beta)
    pos = bx > 0
    sp = fnp.where(pos, bx, 0.0) + fnp.log1p(fnp.exp(fnp.where(pos, -bx, bx)))
    return fnp.where(bx > threshold, x, sp / float(beta))


def logsigmoid(input):
    """``log(sigmoid(x)) = -softplus(-x)``, stable for large ``|x|``."""
    x = _arr(input)
    pos = x > 0
    return fnp.where(pos, 0.0, x) - fnp.log1p(fnp.exp(fnp.where(pos, -x, x)))


def log_softmax(input, axis=None, *, dim=None):
    """``x - logsumexp(x, axis)`` computed stably (max subtracted first).

    ``axis`` (PyTorch: ``dim``) defaults to the last axis.
    """
    x = _arr(input)
    axis = _axis(axis, dim, -1, "log_softmax")
    m = funcgrad.stop_gradient(fnp.max(x, axis=axis, keepdims=True))
    m = fnp.where(fnp.isfinite(m), m, 0.0)
    shifted = x - m
    return shifted - fnp.log(fnp.sum(fnp.exp(shifted), axis=axis, keepdims=True))


def softmax(input, axis=None, *, dim=None):
    """``exp(x) / sum(exp(x), axis)`` computed stably; ``axis`` defaults to the last.

    Example:
        >>> import numpy as np
        >>> softmax(np.array([1000.0, 1000.0]))
        array([0.5, 0.5])
    """
    x = _arr(input)
    axis = _axis(axis, dim, -1, "softmax")
    m = funcgrad.stop_gradient(fnp.max(x, axis=axis, keepdims=True))
    m = fnp.where(fnp.isfinite(m), m, 0.0)
    e = fnp.exp(x - m)
    return e / fnp.sum(e, axis=axis, keepdims=True)


_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def selu(input, inplace=False):
    """Scaled ELU: ``scale * elu(x, alpha)`` with PyTorch's constants (``alpha`` ~ 1.6733,
    ``scale`` ~ 1.0507). ``inplace`` is accepted and ignored (arrays are values)."""
    return _SELU_SCALE * elu(input, _SELU_ALPHA)


def celu(input, alpha=1.0, inplace=False):
    """``x`` where ``x > 0``, else ``alpha * (exp(x / alpha) - 1)``.

    Raises FuncgradValueError for ``alpha == 0``. ``inplace`` is ignored.
    """
    x = _arr(input)
    a = float(alpha)
    if a == 0:
        raise FuncgradValueError("celu: alpha must not be 0")
    neg = fnp.where(x > 0, 0.0, x)       # expm1 of large x is never computed
    return fnp.where(x > 0, x, a * fnp.expm1(neg * (1.0 / a)))


def threshold(input, threshold, value, inplace=False):
    """``x`` where ``x > threshold``, else ``value``; NaN propagates (as in PyTorch) and
    the derivative is 1 where ``x > threshold`` (or NaN), else 0. ``inplace`` is ignored."""
    x = _arr(input)
    return fnp.where(x <= float(threshold), float(value), x)


def glu(input, dim=-1):
    """Gated linear unit: ``a * sigmoid(b)`` where ``a, b`` are the two halves of
    ``input`` along ``dim``. Raises FuncgradValueError when that axis has an odd size (or
    the input is 0-d)."""
    x = _arr(input)
    if x.ndim == 0:
        raise FuncgradValueError("glu: does not support 0-d inputs")
    ax = int(dim) % x.ndim if -x.ndim <= int(dim) < x.ndim else None
    if ax is None:
        raise FuncgradValueError(f"glu: dim={dim} is out of range for shape {tuple(x.shape)}")
    n = x.shape[ax]
    if n % 2:
        raise FuncgradValueError(
            f"glu: halving dimension must be even, but dimension {dim} of the input of shape "
            f"{tuple(x.shape)} has size {n}")
    lead = (slice(None),) * ax
    return x[lead + (slice(0, n // 2),)] * sigmoid(x[lead + (slice(n // 2, n),)])


def softmin(input, axis=None, *, dim=None):
    """``softmax(-x)`` along ``axis`` (PyTorch: ``dim``), default the last axis."""
    x = _arr(input)
    return softmax(-x, axis=_axis(axis, dim, -1, "softmin"))


def softsign(input):
    """``x / (1 + |x|)``."""
    x = _arr(input)
    return x / (1.0 + fnp.abs(x))


def tanhshrink(input):
    """``x - tanh(x)``."""
    x = _arr(input)
    return x - fnp.tanh(x)


def rrelu(input, lower=1.0 / 8, upper=1.0 / 3, training=False, inplace=False, *, key=None):
    """Randomized leaky ReLU: ``x`` where ``x > 0``, else ``a * x``.

    In training, ``a`` is drawn uniformly from ``[lower, upper)`` for each element, from
    ``key`` (a ``funcgrad.random`` key; required); otherwise ``a = (lower + upper) / 2``.
    The derivative is ``a`` at and below 0 (as PyTorch), 1 above. ``inplace`` is
    ignored (arrays are values).

    Raises FuncgradValueError when training without a key.

    Example:
        >>> import numpy as np
        >>> rrelu(np.array([-2.0, 3.0]), 0.25, 0.75)
        array([-1.,  3.])
    """
    x = _arr(input)
    lower, upper = float(lower), float(upper)
    if not training:
        return fnp.where(x > 0, x, x * ((lower + upper) / 2.0))
    if key is None:
        raise FuncgradValueError(
            "rrelu: training=True needs a random key, e.g. key=funcgrad.random.key(0); "
            "pass training=False for evaluation (slope (lower + upper) / 2)")
    dt = x.dtype if x.dtype.kind == "f" else np.float64
    a = fr.uniform(key, tuple(x.shape), dtype=dt, minval=lower, maxval=upper)
    return fnp.where(x > 0, x, x * a)


def hardshrink(input, lambd=0.5):
    """``x`` where ``|x| > lambd``, else 0 (derivative 1 there, else 0; NaN propagates)."""
    x = _arr(input)
    return fnp.where((x >= -lambd) & (x <= lambd), 0.0, x)


def softshrink(input, lambd=0.5):
    """``x - lambd`` above ``lambd``, ``x + lambd`` below ``-lambd``, else 0 (NaN
    propagates). Raises FuncgradValueError for a negative ``lambd``."""
    if lambd < 0:
        raise FuncgradValueError(f"softshrink: lambd must be non-negative, got {lambd}")
    x = _arr(input)
    lam = float(lambd)
    return fnp.where(x > lam, x - lam, fnp.where(x < -lam, x + lam, x * 0.0))


def hardsigmoid(input, inplace=False):
    """``clip(x / 6 + 1/2, 0, 1)``; derivative 1/6 strictly inside ``(-3, 3)``, as PyTorch.
    ``inplace`` is ignored."""
    x = _arr(input)
    return fnp.where(x <= -3.0, 0.0, fnp.where(x >= 3.0, 1.0, x * (1.0 / 6.0) + 0.5))


def hardswish(input, inplace=False):
    """``x * hardsigmoid(x)`` (MobileNetV3); PyTorch's derivative ``x / 3 + 1/2`` on
    ``[-3, 3]``. ``inplace`` is ignored."""
    x = _arr(input)
    inside = ~((x <= -3.0) | (x >= 3.0))        # NaN included: it propagates
    xi = fnp.where(inside, x, 0.0)      # the quadratic never sees inf (no NaN gradient)
    return fnp.where(x <= -3.0, x * 0.0, fnp.where(x >= 3.0, x, xi * (xi + 3.0) * (1.0 / 6.0)))


def mish(input, inplace=False):
    """``x * tanh(softplus(x))``, stable for large ``|x|``. ``inplace`` is ignored."""
    x = _arr(input)
    return x * fnp.tanh(softplus(x))


def prelu(input, weight):
    """``x`` where ``x > 0``, else ``weight * x``; ``weight`` has one entry or one per
    channel (axis 1, or axis 0 of a 1-D input). Differentiable in both.

    Raises FuncgradValueError when ``weight``'s size is neither 1 nor the channels."""
    x, w = _arr(input), _arr(weight)
    if w.size != 1:
        c = x.shape[1] if x.ndim >= 2 else x.shape[0] if x.ndim == 1 else 1
        if w.ndim != 1 or w.shape[0] != c:
            raise FuncgradValueError(
                f"prelu: weight of shape {tuple(w.shape)} must have 1 entry or one per "
                f"channel ({c}) of input of shape {tuple(x.shape)}")
        if x.ndim >= 2:
            w = fnp.reshape(w, (1, -1) + (1,) * (x.ndim - 2))
    else:
        w = fnp.reshape(w, ())
    return fnp.where(x > 0, x, w * x)

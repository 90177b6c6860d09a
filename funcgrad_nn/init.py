"""Parameter initializers with PyTorch's names and fan rules, driven by explicit keys.

Every initializer has the signature ``init(key, shape, *hyperparameters, dtype=float32)``
and returns a new array; ``key`` is a ``funcgrad.random`` key (ignored by the constant
initializers, which take it anyway so that all initializers are interchangeable).
Fans follow PyTorch's ``_calculate_fan_in_and_fan_out``: for a weight of shape
``(out, in, *kernel)``, ``fan_in = in * prod(kernel)`` and ``fan_out = out * prod(kernel)``.

Example:
    >>> import funcgrad.random as fr
    >>> from funcgrad_nn import init
    >>> w = init.kaiming_uniform(fr.key(0), (64, 32), a=5 ** 0.5)   # nn.Linear's default
    >>> w.shape, w.dtype, bool(abs(w).max() <= 1 / 32 ** 0.5)
    ((64, 32), dtype('float32'), True)
"""
from __future__ import annotations

import math

import numpy as np

import funcgrad.numpy as fnp
import funcgrad.random as fr
from funcgrad.errors import FuncgradValueError

__all__ = ["calculate_gain", "fan_in_and_fan_out", "zeros", "ones", "constant", "uniform",
           "normal", "trunc_normal", "xavier_uniform", "xavier_normal", "kaiming_uniform",
           "kaiming_normal", "orthogonal"]


def _shape(shape):
    if isinstance(shape, (int, np.integer)):
        return (int(shape),)
    return tuple(int(s) for s in shape)


def _check_key(key, op):
    if key is None:
        raise FuncgradValueError(
            f"init.{op}: needs a random key, e.g. funcgrad.random.key(0)")


def calculate_gain(nonlinearity, param=None):
    """PyTorch's recommended gain for ``nonlinearity``.

    ``'linear'``, ``'conv*'``, ``'sigmoid'``: 1; ``'tanh'``: 5/3; ``'relu'``: sqrt(2);
    ``'leaky_relu'``: ``sqrt(2 / (1 + param**2))`` (``param`` the negative slope, default
    0.01); ``'selu'``: 3/4.

    Example:
        >>> round(calculate_gain("leaky_relu", 5 ** 0.5), 6)
        0.57735
    """
    linear = ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
              "conv_transpose3d", "sigmoid")
    if nonlinearity in linear:
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else param
        if isinstance(slope, bool) or not isinstance(slope, (int, float)):
            raise FuncgradValueError(f"calculate_gain: negative_slope {slope!r} is not a number")
        return math.sqrt(2.0 / (1 + slope ** 2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise FuncgradValueError(f"calculate_gain: unsupported nonlinearity {nonlinearity!r}")


def fan_in_and_fan_out(shape):
    """``(fan_in, fan_out)`` of a weight shape, as PyTorch computes them.

    Raises FuncgradValueError for fewer than 2 dimensions.

    Example:
        >>> fan_in_and_fan_out((16, 3, 5, 5))
        (75, 400)
    """
    shape = _shape(shape)
    if len(shape) < 2:
        raise FuncgradValueError(
            f"fan_in_and_fan_out: fans need a shape with at least 2 dimensions, got {shape}")
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


def _fan(shape, mode, op):
    fan_in, fan_out = fan_in_and_fan_out(shape)
    if mode == "fan_in":
        return fan_in
    if mode == "fan_out":
        return fan_out
    raise FuncgradValueError(f"init.{op}: mode must be 'fan_in' or 'fan_out', got {mode!r}")


def _filled(key, shape, value, dtype):
    if hasattr(key, "dtype"):     # on the key's device, like the random initialisers
        return fnp.full_like(key, value, dtype=dtype, shape=_shape(shape))
    return fnp.full(_shape(shape), value, dtype=dtype)


def zeros(key, shape, dtype=np.float32):
    """An array of zeros, on ``key``'s device (its values are ignored; ``None`` gives the
    default device)."""
    return _filled(key, shape, 0, dtype)


def ones(key, shape, dtype=np.float32):
    """An array of ones, on ``key``'s device (see :func:`zeros`)."""
    return _filled(key, shape, 1, dtype)


def constant(key, shape, value, dtype=np.float32):
    """An array filled with ``value``, on ``key``'s device (see :func:`zeros`)."""
    return _filled(key, shape, value, dtype)


def uniform(key, shape, a=0.0, b=1.0, dtype=np.float32):
    """Samples of ``U(a, b)``."""
    _check_key(key, "uniform")
    return fr.uniform(key, _shape(shape), dtype=dtype, minval=a, maxval=b)


def normal(key, shape, mean=0.0, std=1.0, dtype=np.float32):
    """Samples of ``N(mean, std**2)``."""
    _check_key(key, "normal")
    return fr.normal(key, _shape(shape), dtype=dtype) * std + mean


def trunc_normal(key, shape, mean=0.0, std=1.0, a=-2.0, b=2.0, dtype=np.float32):
    """Samples of ``N(mean, std**2)`` conditioned on ``a <= x <= b`` (absolute bounds,
    as PyTorch's ``trunc_normal_``)."""
    _check_key(key, "trunc_normal")
    if not a < b:
        raise FuncgradValueError(f"init.trunc_normal: need a < b, got a={a}, b={b}")
    lo, hi = (a - mean) / std, (b - mean) / std
    z = fr.truncated_normal(key, lo, hi, _shape(shape), dtype=dtype)
    return np.clip(z * std + mean, a, b).astype(dtype, copy=False)


def xavier_uniform(key, shape, gain=1.0, dtype=np.float32):
    """Glorot uniform: ``U(-r, r)`` with ``r = gain * sqrt(6 / (fan_in + fan_out))``."""
    fan_in, fan_out = fan_in_and_fan_out(shape)
    r = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform(key, shape, -r, r, dtype)


def xavier_normal(key, shape, gain=1.0, dtype=np.float32):
    """Glorot normal: ``N(0, std**2)`` with ``std = gain * sqrt(2 / (fan_in + fan_out))``."""
    fan_in, fan_out = fan_in_and_fan_out(shape)
    return normal(key, shape, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)), dtype)


def kaiming_uniform(key, shape, a=0.0, mode="fan_in", nonlinearity="leaky_relu",
                    dtype=np.float32):
    """He uniform: ``U(-r, r)`` with ``r = gain * sqrt(3 / fan)``.

    Args:
      key: a ``funcgrad.random`` key.
      shape: the weight's shape, ``(out, in, *kernel)``.
      a: the negative slope of the rectifier after this layer (for ``leaky_relu``).
      mode: ``'fan_in'`` (preserves forward variance) or ``'fan_out'`` (backward).
      nonlinearity: passed to :func:`calculate_gain` with ``a``.
      dtype: the result's dtype (default float32).

    ``kaiming_uniform(key, shape, a=math.sqrt(5))`` is PyTorch's default for Linear and
    convolution weights: ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``.
    """
    fan = _fan(shape, mode, "kaiming_uniform")
    r = calculate_gain(nonlinearity, a) * math.sqrt(3.0 / fan) if fan else 0.0
    return uniform(key, shape, -r, r, dtype)


def kaiming_normal(key, shape, a=0.0, mode="fan_in", nonlinearity="leaky_relu",
                   dtype=np.float32):
    """He normal: ``N(0, std**2)`` with ``std = gain / sqrt(fan)``; arguments as
    :func:`kaiming_uniform`."""
    fan = _fan(shape, mode, "kaiming_normal")
    std = calculate_gain(nonlinearity, a) / math.sqrt(fan) if fan else 0.0
    return normal(key, shape, 0.0, std, dtype)


def orthogonal(key, shape, gain=1.0, dtype=np.float32):
    """A (semi-)orthogonal matrix, flattened over the trailing dimensions as in PyTorch:
    the rows (or columns, whichever are fewer) of ``reshape(w, (shape[0], -1))`` are
    orthonormal, times ``gain``.

    Raises FuncgradValueError for fewer than 2 dimensions.
    """
    shape = _shape(shape)
    if len(shape) < 2:
        raise FuncgradValueError(
            f"init.orthogonal: needs a shape with at least 2 dimensions, got {shape}")
    rows = shape[0]
    cols = math.prod(shape[1:])
    flat = np.asarray(normal(key, (max(rows, cols), min(rows, cols)), dtype=np.float64))
    q, r = np.linalg.qr(flat)
    d = np.sign(np.diag(r))
    q = q * np.where(d == 0, 1.0, d)          # a unique, uniformly distributed Q
    if rows < cols:
        q = q.T
    return (gain * q).reshape(shape).astype(dtype)

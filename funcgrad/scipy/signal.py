"""funcgrad.scipy.signal: differentiable ``convolve`` and ``correlate`` of n-d arrays,
like ``scipy.signal`` (SciPy is not needed)."""
from __future__ import annotations

import numpy as np

import funcgrad.lax as lax
import funcgrad.numpy as fnp
from funcgrad.errors import FuncgradValueError

__all__ = ["convolve", "correlate"]


def _prepare(op, in1, in2, mode):
    a, b = fnp.asarray(in1), fnp.asarray(in2)
    if mode not in ("full", "valid", "same"):
        raise FuncgradValueError(
            f"scipy.signal.{op}: mode must be 'full', 'valid' or 'same', got {mode!r}")
    if a.ndim != b.ndim:
        raise FuncgradValueError(
            f"scipy.signal.{op}: in1 of shape {tuple(a.shape)} and in2 of shape "
            f"{tuple(b.shape)} must have the same number of dimensions")
    if a.dtype.kind == "c" or b.dtype.kind == "c":
        raise FuncgradValueError(f"scipy.signal.{op}: complex input is not supported")
    dt = np.result_type(a.dtype, b.dtype)
    if dt.kind != "f":
        dt = np.dtype(np.float64)
    return fnp.astype(a, dt), fnp.astype(b, dt)


def convolve(in1, in2, mode="full", method="auto"):
    """The n-d convolution of ``in1`` and ``in2`` (same number of dimensions), as
    ``scipy.signal.convolve``.

    ``mode``: ``'full'`` (every overlap), ``'valid'`` (full overlaps only; one input must
    be at least as large as the other along every axis, as SciPy demands), ``'same'``
    (``in1``'s shape, centred). ``method`` is accepted and ignored (one direct
    convolution, ``lax.conv_general_dilated``). Real inputs; integers become float64;
    float32 stays float32. Differentiable in both inputs.

    Raises FuncgradValueError for mismatched ranks, complex input, an unknown mode, or
    ``'valid'`` with neither input the larger.

    Example:
        >>> import numpy as np
        >>> convolve(np.array([1.0, 2.0, 3.0]), np.array([0.0, 1.0, 0.5]))
        array([0. , 1. , 2.5, 4. , 1.5])
    """
    op = "convolve"
    a, b = _prepare(op, in1, in2, mode)
    if a.ndim == 0:
        return a * b
    if a.size == 0 or b.size == 0:
        return fnp.zeros_like(a, shape=(0,) * a.ndim) if mode != "same" else a * 0.0
    s1, s2 = tuple(a.shape), tuple(b.shape)
    if mode == "valid":
        if all(m >= n for m, n in zip(s1, s2)):
            pass
        elif all(n >= m for m, n in zip(s1, s2)):
            a, b, s1, s2 = b, a, s2, s1       # convolution commutes
        else:
            raise FuncgradValueError(
                f"scipy.signal.{op}: for mode='valid' one input must be at least as large "
                f"as the other in every dimension, got {s1} and {s2}")
    nd = a.ndim
    flipped = b[(slice(None, None, -1),) * nd]
    pads = [(0, 0)] * nd if mode == "valid" else [(n - 1, n - 1) for n in s2]
    full = lax.conv_general_dilated(a[None, None], flipped[None, None], (1,) * nd,
                                    tuple(pads))[0, 0]
    if mode != "same":
        return full
    start = [(f - n) // 2 for f, n in zip(full.shape, s1)]
    return full[tuple(slice(st, st + n) for st, n in zip(start, s1))]


def correlate(in1, in2, mode="full", method="auto"):
    """The n-d cross-correlation, as ``scipy.signal.correlate``: :func:`convolve` of
    ``in1`` with ``in2`` reversed along every axis (same modes and errors)."""
    _, b = _prepare("correlate", in1, in2, mode)
    nd = b.ndim
    return convolve(in1, b[(slice(None, None, -1),) * nd] if nd else b, mode, method)

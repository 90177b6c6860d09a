"""Padding: ``pad`` with PyTorch's constant, reflect, replicate and circular modes."""
from __future__ import annotations

import numpy as np

import funcgrad.numpy as fnp
from funcgrad.errors import FuncgradValueError

from ._util import _arr


def _gather_axis(x, idx, axis):
    return x[(slice(None),) * axis + (np.asarray(idx, dtype=np.intp),)]


def _pad_axis(x, axis, lo, hi, mode, value, op):
    n = x.shape[axis]
    if mode == "constant":
        if lo < 0 or hi < 0:     # negative padding crops, as in PyTorch
            x = x[(slice(None),) * axis + (slice(max(-lo, 0), n - max(-hi, 0)),)]
            lo, hi = max(lo, 0), max(hi, 0)
        parts = []
        for k in (lo, None, hi):
            if k is None:
                parts.append(x)
            elif k > 0:
                shape = list(x.shape)
                shape[axis] = k
                parts.append(fnp.full(tuple(shape), value, dtype=x.dtype))
        return parts[0] if len(parts) == 1 else fnp.concatenate(parts, axis=axis)
    # The other modes are slices of x itself (no index arrays: nothing to copy to a
    # device, and the reverse rule is a sum of slices).
    def along(sl):
        return x[(slice(None),) * axis + (sl,)]

    if mode == "reflect":
        if lo >= n or hi >= n:
            raise FuncgradValueError(
                f"{op}: reflect padding ({lo}, {hi}) must be smaller than the padded axis "
                f"(size {n}) of the input of shape {tuple(x.shape)}")
        left = along(slice(lo, 0, -1)) if lo > 0 else None            # x[lo], ..., x[1]
        # x[n-2], ..., x[n-1-hi]; a stop of -1 would mean "the last", so it is None
        stop = n - 2 - hi
        right = along(slice(n - 2, stop if stop >= 0 else None, -1)) if hi > 0 else None
    elif mode == "replicate":
        def edge(i, k):
            e = along(slice(i, i + 1))
            shape = list(e.shape)
            shape[axis] = k
            return fnp.broadcast_to(e, tuple(shape))
        left = edge(0, lo) if lo > 0 else None
        right = edge(n - 1, hi) if hi > 0 else None
    elif mode == "circular":
        # PyTorch crops (negative widths) first, then wraps the cropped axis
        shape = tuple(x.shape)
        x = along(slice(max(-lo, 0), n - max(-hi, 0)))
        lo, hi, n = max(lo, 0), max(hi, 0), x.shape[axis]
        if lo > n or hi > n:
            raise FuncgradValueError(
                f"{op}: circular padding ({lo}, {hi}) must be at most the size ({n}, after "
                f"cropping) of the padded axis of the input of shape {shape}")
        left = along(slice(n - lo, n)) if lo > 0 else None
        right = along(slice(0, hi)) if hi > 0 else None
    else:
        raise FuncgradValueError(
            f"{op}: mode must be 'constant', 'reflect', 'replicate' or 'circular', "
            f"got {mode!r}")
    parts = [p for p in (left, along(slice(max(-lo, 0), n - max(-hi, 0))), right)
             if p is not None]
    return parts[0] if len(parts) == 1 else fnp.concatenate(parts, axis=axis)


def pad(input, pad, mode="constant", value=None):
    """Pad the last ``len(pad) // 2`` axes, PyTorch's way: ``pad = (left_last,
    right_last, left_second_last, right_second_last, ...)``.

    Modes: ``'constant'`` (with ``value``, default 0), ``'reflect'`` (mirror without
    repeating the edge; widths below the axis size), ``'replicate'`` (repeat the edge),
    ``'circular'`` (wrap around; widths at most the axis size). Negative widths crop, as
    in PyTorch: ``'circular'`` crops first and wraps the cropped axis, the other modes
    take their padding from the uncropped input. Differentiable in ``input``. Raises
    FuncgradValueError for widths out of those ranges or an unknown mode.

    Example:
        >>> import numpy as np
        >>> pad(np.array([1.0, 2.0, 3.0]), (2, 1), mode="reflect")
        array([3., 2., 1., 2., 3., 2.])
    """
    x = _arr(input)
    pad = tuple(int(p) for p in pad)
    if len(pad) % 2 or len(pad) // 2 > x.ndim:
        raise FuncgradValueError(
            f"pad: pad={pad} must have an even length of at most 2 * ndim = {2 * x.ndim} for "
            f"an input of shape {tuple(x.shape)}")
    if mode != "constant" and value not in (None, 0):
        raise FuncgradValueError(f"pad: value= is only used with mode='constant', not {mode!r}")
    value = 0 if value is None else value
    for i in range(len(pad) // 2):
        x = _pad_axis(x, x.ndim - 1 - i, pad[2 * i], pad[2 * i + 1], mode, value, "pad")
    return x

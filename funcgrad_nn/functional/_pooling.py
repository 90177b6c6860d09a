"""Pooling: max, average, adaptive average and adaptive max pooling in 1, 2 and 3-D."""
from __future__ import annotations

import itertools
import math
import numbers

import numpy as np

import funcgrad
import funcgrad.lax as lax
import funcgrad.numpy as fnp
from funcgrad.errors import FuncgradValueError

from ._util import _arange_like, _arr, _batched, _float_dtype, _ntuple


def _pool_geometry(op, shape, kernel, stride, padding, dilation, ceil_mode):
    """Per spatial axis: (output size, low pad, high pad) with PyTorch's size rule."""
    out = []
    for n, k, s, p, d in zip(shape, kernel, stride, padding, dilation):
        if p > k // 2:
            raise FuncgradValueError(
                f"{op}: padding {padding} must be at most half the kernel size {kernel}")
        span = n + 2 * p - d * (k - 1) - 1
        if span < 0:
            raise FuncgradValueError(
                f"{op}: the input's spatial shape {tuple(shape)} (padding {padding}) is "
                f"smaller than the kernel {kernel} (dilation {dilation})")
        o = (-(-span // s) if ceil_mode else span // s) + 1
        if ceil_mode and (o - 1) * s >= n + p:   # the last window must start inside
            o -= 1
        hi = max(0, (o - 1) * s + d * (k - 1) + 1 - (n + p))
        out.append((o, p, hi))
    return out


def _empty_pool(x, geo):
    """The pooled output of an empty batch (or no channels), as PyTorch gives: empty, of
    the output shape (``reduce_window`` refuses a window on an axis of size 0)."""
    return fnp.zeros_like(x, shape=tuple(x.shape[:2]) + tuple(o for o, _, _ in geo))


def _pool_args(op, nd, x, kernel_size, stride, padding, dilation):
    kernel = _ntuple(kernel_size, nd, "kernel_size", op)
    stride = kernel if stride is None or stride == () or stride == [] else _ntuple(
        stride, nd, "stride", op)
    padding = _ntuple(padding, nd, "padding", op)
    dilation = _ntuple(dilation, nd, "dilation", op)
    return kernel, stride, padding, dilation


def _max_pool(op, nd, input, kernel_size, stride, padding, dilation, ceil_mode,
              return_indices):
    x = _arr(input)
    x, unbatched = _batched(x, nd, op)
    kernel, stride, padding, dilation = _pool_args(op, nd, x, kernel_size, stride, padding,
                                                   dilation)
    geo = _pool_geometry(op, x.shape[2:], kernel, stride, padding, dilation, ceil_mode)
    if x.size == 0:
        y = _empty_pool(x, geo)
        if return_indices:
            idx = fnp.zeros_like(y, dtype=np.int64)
            return (y[0], idx[0]) if unbatched else (y, idx)
        return y[0] if unbatched else y
    dt = np.dtype(x.dtype)
    init = -math.inf if dt.kind == "f" else int(np.iinfo(dt).min)
    kwargs = {}
    if any(d != 1 for d in dilation):
        kwargs["window_dilation"] = (1, 1) + dilation
    y = lax.reduce_window(x, init, lax.max, (1, 1) + kernel,
                          (1, 1) + stride, ((0, 0), (0, 0)) + tuple((lo, hi) for _, lo, hi in geo),
                          **kwargs)
    if not return_indices:
        return y[0] if unbatched else y
    idx = _max_pool_indices(funcgrad.stop_gradient(x), geo, kernel, stride, dilation)
    return (y[0], idx[0]) if unbatched else (y, idx)


def _max_pool_indices(x, geo, kernel, stride, dilation):
    """PyTorch's ``return_indices``: the flat spatial index of each window's maximum (the
    first one in row-major window order; NaN counts as the maximum). Computed with array
    operations on ``x``'s own device: one strided slice per window offset."""
    nd = len(kernel)
    if x.dtype.kind != "f":
        x = fnp.astype(x, np.float64)
    pads = tuple((lo, hi) for _, lo, hi in geo)
    padded = fnp.pad(x, ((0, 0), (0, 0)) + pads, constant_values=-np.inf)
    spatial = tuple(x.shape[2:])
    # the flat index of every position (made on x's device), -1 in the padding
    ones = fnp.ones_like(x, dtype=np.int64, shape=(math.prod(spatial),))
    where = fnp.pad(fnp.reshape(fnp.cumsum(ones) - 1, spatial), pads, constant_values=-1)
    vals, poss = [], []
    for offs in itertools.product(*[range(k) for k in kernel]):
        sl = tuple(slice(o * d, o * d + (n - 1) * s + 1, s)
                   for o, d, (n, _, _), s in zip(offs, dilation, geo, stride))
        vals.append(padded[(slice(None), slice(None)) + sl])
        poss.append(where[sl])
    arg = fnp.argmax(fnp.stack(vals), axis=0)                    # (N, C, out...)
    poss = fnp.broadcast_to(fnp.reshape(fnp.stack(poss), (len(poss), 1, 1) + arg.shape[2:]),
                            (len(poss),) + arg.shape)
    return fnp.take_along_axis(poss, arg[None], axis=0)[0]


def max_pool1d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    """1-D max pooling; arguments as :func:`max_pool2d`."""
    return _max_pool("max_pool1d", 1, input, kernel_size, stride, padding, dilation,
                     ceil_mode, return_indices)


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    """2-D max pooling over ``(N, C, H, W)`` (or ``(C, H, W)``) inputs.

    ``stride`` defaults to ``kernel_size``; ``padding`` (implicit ``-inf``, at most half
    the kernel), ``dilation`` and ``ceil_mode`` as in PyTorch. With
    ``return_indices=True`` also returns the flat ``h * W + w`` index of each maximum
    (an int64 array, not differentiable; computed from concrete NumPy values, so not
    under ``jit`` nor for device arrays). On ties the gradient goes to the first
    maximum of the window, as in PyTorch.

    Example:
        >>> import numpy as np
        >>> max_pool2d(np.arange(16.0).reshape(1, 1, 4, 4), 2)
        array([[[[ 5.,  7.],
                 [13., 15.]]]])
    """
    return _max_pool("max_pool2d", 2, input, kernel_size, stride, padding, dilation,
                     ceil_mode, return_indices)


def max_pool3d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    """3-D max pooling over ``(N, C, D, H, W)`` (or ``(C, D, H, W)``) inputs; arguments
    as :func:`max_pool2d` (indices are flat ``d * H * W + h * W + w``).

    Example:
        >>> import numpy as np
        >>> max_pool3d(np.arange(8.0).reshape(1, 1, 2, 2, 2), 2).ravel()
        array([7.])
    """
    return _max_pool("max_pool3d", 3, input, kernel_size, stride, padding, dilation,
                     ceil_mode, return_indices)


def _avg_pool(op, nd, input, kernel_size, stride, padding, ceil_mode, count_include_pad,
              divisor_override):
    x = _arr(input)
    x, unbatched = _batched(x, nd, op)
    kernel, stride, padding, _ = _pool_args(op, nd, x, kernel_size, stride, padding, 1)
    geo = _pool_geometry(op, x.shape[2:], kernel, stride, padding, (1,) * nd, ceil_mode)
    dt = _float_dtype(x)
    if np.dtype(x.dtype) != dt:
        x = fnp.astype(x, dt)
    if x.size == 0:
        y = _empty_pool(x, geo)
        return y[0] if unbatched else y
    s = lax.reduce_window(x, 0.0, lax.add, (1, 1) + kernel,
                          (1, 1) + stride,
                          ((0, 0), (0, 0)) + tuple((lo, hi) for _, lo, hi in geo))
    if divisor_override:
        y = s / float(divisor_override)
    else:
        # The divisors are built in x's array module (no host constant meets a device x).
        div = None
        for i, ((o, p, _), k, st) in enumerate(zip(geo, kernel, stride)):
            n = x.shape[2 + i]
            start = _arange_like(x, o) * st - p
            end = fnp.minimum(start + k, n + p)
            if count_include_pad:
                size = end - start
            else:
                size = fnp.minimum(end, n) - fnp.maximum(start, 0)
            div = fnp.expand_dims(div, -1) * size if i else size
        y = s / fnp.astype(div, dt)
    return y[0] if unbatched else y


def avg_pool1d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True):
    """1-D average pooling; arguments as :func:`avg_pool2d`."""
    return _avg_pool("avg_pool1d", 1, input, kernel_size, stride, padding, ceil_mode,
                     count_include_pad, None)


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True, divisor_override=None):
    """2-D average pooling over ``(N, C, H, W)`` inputs.

    ``stride`` defaults to ``kernel_size``; zero ``padding`` is counted in the average
    when ``count_include_pad`` (PyTorch's default); ``divisor_override`` replaces the
    divisor. Integer inputs give float64.

    Example:
        >>> import numpy as np
        >>> avg_pool2d(np.arange(16.0).reshape(1, 1, 4, 4), 2)
        array([[[[ 2.5,  4.5],
                 [10.5, 12.5]]]])
    """
    return _avg_pool("avg_pool2d", 2, input, kernel_size, stride, padding, ceil_mode,
                     count_include_pad, divisor_override)


def avg_pool3d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True, divisor_override=None):
    """3-D average pooling over ``(N, C, D, H, W)`` inputs; arguments as
    :func:`avg_pool2d`."""
    return _avg_pool("avg_pool3d", 3, input, kernel_size, stride, padding, ceil_mode,
                     count_include_pad, divisor_override)


def _adaptive_matrix(n, o, dtype, like):
    """``(o, n)`` averaging matrix of PyTorch's adaptive pooling bins
    ``[floor(i*n/o), ceil((i+1)*n/o))``, built in ``like``'s array module."""
    i = fnp.expand_dims(_arange_like(like, o), 1)
    j = fnp.expand_dims(_arange_like(like, n), 0)
    a, b = (i * n) // o, -((-(i + 1) * n) // o)
    inside = fnp.logical_and(j >= a, j < b)
    return fnp.where(inside, 1.0 / fnp.astype(b - a, dtype), 0.0)


def _output_size(op, nd, x, output_size):
    """PyTorch's ``output_size``: an int or ``nd`` entries, None keeping that size."""
    if isinstance(output_size, numbers.Integral) or output_size is None:
        output_size = (output_size,) * nd
    output_size = tuple(output_size)
    if len(output_size) != nd:
        raise FuncgradValueError(f"{op}: output_size must have {nd} entries, got {output_size}")
    out = tuple(x.shape[2 + i] if o is None else int(o) for i, o in enumerate(output_size))
    if any(o <= 0 for o in out):
        raise FuncgradValueError(f"{op}: output_size entries must be positive, got {output_size}")
    return out


def _adaptive_avg(op, nd, input, output_size):
    x = _arr(input)
    x, unbatched = _batched(x, nd, op)
    output_size = _output_size(op, nd, x, output_size)
    dt = _float_dtype(x)
    letters = "ijk"[:nd]        # apart from the batch and channel letters "nc"
    outs = "xyz"[:nd]
    mats = []
    for i, o in enumerate(output_size):
        mats.append(_adaptive_matrix(x.shape[2 + i], o, dt, x))
    spec = ("nc" + letters + "," + ",".join(f"{outs[i]}{letters[i]}" for i in range(nd))
            + "->nc" + outs)
    y = fnp.einsum(spec, x, *mats)
    return y[0] if unbatched else y


def adaptive_avg_pool1d(input, output_size):
    """1-D adaptive average pooling to ``output_size`` bins (PyTorch's bin edges)."""
    return _adaptive_avg("adaptive_avg_pool1d", 1, input, output_size)


def adaptive_avg_pool2d(input, output_size):
    """2-D adaptive average pooling: bins ``[floor(i*H/oh), ceil((i+1)*H/oh))``.

    ``output_size``: an int, or a pair whose entries may be None (keep that size).

    Example:
        >>> import numpy as np
        >>> adaptive_avg_pool2d(np.ones((2, 3, 7, 5)), (3, None)).shape
        (2, 3, 3, 5)
    """
    return _adaptive_avg("adaptive_avg_pool2d", 2, input, output_size)


def adaptive_avg_pool3d(input, output_size):
    """3-D adaptive average pooling of ``(N, C, D, H, W)`` inputs; ``output_size`` an int
    or a triple whose entries may be None (keep that size)."""
    return _adaptive_avg("adaptive_avg_pool3d", 3, input, output_size)


def _bin_index(x, n, o):
    """``(o, kmax)`` int64 indices of PyTorch's adaptive bins ``[floor(i*n/o),
    ceil((i+1)*n/o))`` along an axis of size ``n``, each row padded by repeating its last
    index (a repeated element changes no maximum); built in ``x``'s array module."""
    kmax = max(-(-(i + 1) * n // o) - (i * n) // o for i in range(o))
    i = fnp.expand_dims(_arange_like(x, o), 1)
    k = fnp.expand_dims(_arange_like(x, kmax), 0)
    a, b = (i * n) // o, -((-(i + 1) * n) // o)
    return fnp.minimum(a + k, b - 1), kmax


def _windows(v, idx):
    """``v`` (``(N, C, *spatial)``) gathered into its adaptive windows:
    ``(N, C, *out, K)`` with ``K = prod(kmax)``, window elements in row-major order."""
    nd = len(idx)
    for d, (ix, kmax) in enumerate(idx):
        axis = 2 + 2 * d
        v = fnp.take(v, fnp.reshape(ix, (-1,)), axis=axis)
        v = fnp.reshape(v, tuple(v.shape[:axis]) + (ix.shape[0], kmax)
                        + tuple(v.shape[axis + 1:]))
    # (N, C, o1, k1, o2, k2, ...) -> (N, C, o1, o2, ..., k1, k2, ...)
    perm = (0, 1) + tuple(2 + 2 * d for d in range(nd)) + tuple(3 + 2 * d for d in range(nd))
    v = fnp.transpose(v, perm)
    return fnp.reshape(v, tuple(v.shape[:2 + nd]) + (-1,))


def _adaptive_max(op, nd, input, output_size, return_indices):
    x = _arr(input)
    x, unbatched = _batched(x, nd, op)
    out = _output_size(op, nd, x, output_size)
    spatial = tuple(x.shape[2:])
    if any(n == 0 for n in spatial):
        raise FuncgradValueError(
            f"{op}: the input's spatial shape {spatial} (input shape {tuple(x.shape)}) has "
            f"an empty axis: no window to take a maximum over")
    if x.size == 0:
        y = fnp.zeros_like(x, shape=tuple(x.shape[:2]) + out)
        idx = fnp.zeros_like(y, dtype=np.int64)
    else:
        bins = [_bin_index(x, n, o) for n, o in zip(spatial, out)]
        w = _windows(x, bins)
        # the first maximum of each window (NaN counts as the maximum), as PyTorch: the
        # gradient goes to that element only
        arg = fnp.expand_dims(fnp.argmax(funcgrad.stop_gradient(w), axis=-1), -1)
        y = fnp.take_along_axis(w, arg, axis=-1)[..., 0]
        if return_indices:
            flat = fnp.reshape(_arange_like(x, math.prod(spatial)), (1, 1) + spatial)
            pos = _windows(flat, bins)
            pos = fnp.broadcast_to(pos, tuple(x.shape[:2]) + tuple(pos.shape[2:]))
            idx = fnp.take_along_axis(pos, arg, axis=-1)[..., 0]
    if not return_indices:
        return y[0] if unbatched else y
    return (y[0], idx[0]) if unbatched else (y, idx)


def adaptive_max_pool1d(input, output_size, return_indices=False):
    """1-D adaptive max pooling; arguments as :func:`adaptive_max_pool2d`."""
    return _adaptive_max("adaptive_max_pool1d", 1, input, output_size, return_indices)


def adaptive_max_pool2d(input, output_size, return_indices=False):
    """2-D adaptive max pooling: the maximum over PyTorch's bins
    ``[floor(i*H/oh), ceil((i+1)*H/oh))`` (bins may overlap).

    ``output_size``: an int, or a pair whose entries may be None (keep that size). With
    ``return_indices=True`` also returns the flat ``h * W + w`` index of each maximum
    (int64, not differentiable). The gradient goes to the first maximum of each window
    (NaN counts as the maximum and propagates), as in PyTorch.

    Example:
        >>> import numpy as np
        >>> adaptive_max_pool2d(np.arange(16.0).reshape(1, 1, 4, 4), 2)
        array([[[[ 5.,  7.],
                 [13., 15.]]]])
    """
    return _adaptive_max("adaptive_max_pool2d", 2, input, output_size, return_indices)


def adaptive_max_pool3d(input, output_size, return_indices=False):
    """3-D adaptive max pooling of ``(N, C, D, H, W)`` inputs; arguments as
    :func:`adaptive_max_pool2d` (indices flat ``d * H * W + h * W + w``)."""
    return _adaptive_max("adaptive_max_pool3d", 3, input, output_size, return_indices)


def _lp_pool(op, nd, input, norm_type, kernel_size, stride, ceil_mode):
    x = _arr(input)
    p = float(norm_type)
    kernel = _ntuple(kernel_size, nd, "kernel_size", op)
    k = math.prod(kernel)
    if p == math.inf:
        return _max_pool(op, nd, x, kernel, stride, 0, 1, ceil_mode, False)
    # PyTorch: (k * average of x^p over the window)^(1/p); a zero window gives 0 with
    # gradient 0 (the root's slope there is infinite), a negative one NaN
    s = _avg_pool(op, nd, x ** p, kernel, stride, 0, ceil_mode, True, None)
    zero = s == 0
    return fnp.where(zero, 0.0, (fnp.where(zero, 1.0, s) * float(k)) ** (1.0 / p))


def lp_pool1d(input, norm_type, kernel_size, stride=None, ceil_mode=False):
    """1-D power-average pooling ``(sum_window x^p)^(1/p)``; arguments as
    :func:`lp_pool2d`."""
    return _lp_pool("lp_pool1d", 1, input, norm_type, kernel_size, stride, ceil_mode)


def lp_pool2d(input, norm_type, kernel_size, stride=None, ceil_mode=False):
    """2-D power-average pooling: ``(sum over each window of x^p)^(1/p)`` (``p = inf``:
    max pooling). A window whose sum of powers is 0 gives 0 (gradient 0), a negative one
    NaN, as PyTorch."""
    return _lp_pool("lp_pool2d", 2, input, norm_type, kernel_size, stride, ceil_mode)


def lp_pool3d(input, norm_type, kernel_size, stride=None, ceil_mode=False):
    """3-D power-average pooling; arguments as :func:`lp_pool2d`."""
    return _lp_pool("lp_pool3d", 3, input, norm_type, kernel_size, stride, ceil_mode)

"""Convolutions and transposed convolutions over ``(N, C, *spatial)`` inputs."""
from __future__ import annotations

import funcgrad.lax as lax
import funcgrad.numpy as fnp
from funcgrad.errors import FuncgradValueError

from ._padding import _pad_axis
from ._util import _arr, _batched, _bcast_channel, _ntuple


_DN = {1: ("NCH", "OIH", "NCH"), 2: ("NCHW", "OIHW", "NCHW"), 3: ("NCDHW", "OIDHW", "NCDHW")}


def _conv(op, nd, input, weight, bias, stride, padding, dilation, groups, padding_mode):
    x, w = _arr(input), _arr(weight)
    x, unbatched = _batched(x, nd, op)
    stride = _ntuple(stride, nd, "stride", op)
    dilation = _ntuple(dilation, nd, "dilation", op)
    groups = int(groups)
    if w.ndim != nd + 2:
        raise FuncgradValueError(
            f"{op}: weight must be {nd + 2}-D (out_channels, in_channels // groups, *kernel), "
            f"got shape {tuple(w.shape)}")
    c_in, c_out, k = x.shape[1], w.shape[0], tuple(w.shape[2:])
    if c_in % groups or c_out % groups or w.shape[1] * groups != c_in:
        raise FuncgradValueError(
            f"{op}: input of shape {tuple(x.shape)} has {c_in} channels, but weight of shape "
            f"{tuple(w.shape)} with groups={groups} expects {w.shape[1] * groups}")
    if isinstance(padding, str):
        if padding == "valid":
            pads = [(0, 0)] * nd
        elif padding == "same":
            if any(s != 1 for s in stride):
                raise FuncgradValueError(f"{op}: padding='same' needs stride 1, got {stride}")
            pads = []
            for kk, d in zip(k, dilation):
                total = d * (kk - 1)
                pads.append((total // 2, total - total // 2))
        else:
            raise FuncgradValueError(
                f"{op}: padding must be an int, a tuple, 'same' or 'valid', got {padding!r}")
    else:
        pads = [(p, p) for p in _ntuple(padding, nd, "padding", op)]
    if padding_mode != "zeros":
        if padding_mode not in ("reflect", "replicate", "circular"):
            raise FuncgradValueError(
                f"{op}: padding_mode must be 'zeros', 'reflect', 'replicate' or 'circular', "
                f"got {padding_mode!r}")
        for i, (lo, hi) in enumerate(pads):
            x = _pad_axis(x, 2 + i, lo, hi, padding_mode, 0, op)
        pads = [(0, 0)] * nd
    for i, (lo, hi) in enumerate(pads):
        if x.shape[2 + i] + lo + hi < dilation[i] * (k[i] - 1) + 1:
            raise FuncgradValueError(
                f"{op}: the (padded) input of shape {tuple(x.shape)} is smaller than the "
                f"dilated kernel {k} (dilation {dilation}) along spatial axis {i}")
    y = lax.conv_general_dilated(
        x, w, window_strides=stride, padding=tuple(pads), lhs_dilation=(1,) * nd,
        rhs_dilation=dilation, dimension_numbers=_DN[nd], feature_group_count=groups)
    if bias is not None:
        y = y + _bcast_channel(bias, y.ndim)
    return y[0] if unbatched else y


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1,
           padding_mode="zeros"):
    """1-D convolution (cross-correlation, as in PyTorch) of ``(N, C_in, L)`` inputs.

    Arguments as :func:`conv2d`.
    """
    return _conv("conv1d", 1, input, weight, bias, stride, padding, dilation, groups,
                 padding_mode)


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1,
           padding_mode="zeros"):
    """2-D convolution (cross-correlation, as in PyTorch) of ``(N, C_in, H, W)`` inputs.

    Args:
      input: ``(N, C_in, H, W)`` or unbatched ``(C_in, H, W)``.
      weight: ``(C_out, C_in // groups, kH, kW)``.
      bias: ``(C_out,)`` or None.
      stride, dilation: an int or a pair.
      padding: an int, a pair, ``'valid'`` (none) or ``'same'`` (output size = input
        size; stride must be 1; odd totals put the extra element at the end).
      groups: split the channels into this many independent convolutions.
      padding_mode: ``'zeros'``, ``'reflect'``, ``'replicate'`` or ``'circular'`` (an
        extension of PyTorch's functional conv2d, matching the Conv2d layer).

    Raises FuncgradValueError naming the shapes on a rank or channel mismatch.

    Example:
        >>> import numpy as np
        >>> conv2d(np.ones((1, 2, 5, 5)), np.ones((3, 2, 3, 3)), padding=1).shape
        (1, 3, 5, 5)
    """
    return _conv("conv2d", 2, input, weight, bias, stride, padding, dilation, groups,
                 padding_mode)


def conv3d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1,
           padding_mode="zeros"):
    """3-D convolution of ``(N, C_in, D, H, W)`` inputs; arguments as :func:`conv2d`."""
    return _conv("conv3d", 3, input, weight, bias, stride, padding, dilation, groups,
                 padding_mode)


def _conv_transpose(op, nd, input, weight, bias, stride, padding, output_padding, groups,
                    dilation):
    x, w = _arr(input), _arr(weight)
    x, unbatched = _batched(x, nd, op)
    stride = _ntuple(stride, nd, "stride", op)
    padding = _ntuple(padding, nd, "padding", op)
    output_padding = _ntuple(output_padding, nd, "output_padding", op)
    dilation = _ntuple(dilation, nd, "dilation", op)
    groups = int(groups)
    if w.ndim != nd + 2 or x.shape[1] != w.shape[0] or w.shape[0] % groups:
        raise FuncgradValueError(
            f"{op}: input of shape {tuple(x.shape)} does not match weight of shape "
            f"{tuple(w.shape)} (expected (C_in, C_out // groups, *kernel) with C_in = "
            f"input.shape[1] divisible by groups={groups})")
    for op_, s, d in zip(output_padding, stride, dilation):
        if op_ >= max(s, d):
            raise FuncgradValueError(
                f"{op}: output_padding {output_padding} must be smaller than stride "
                f"{stride} or dilation {dilation}")
    c_in, c_out_g, k = w.shape[0], w.shape[1], tuple(w.shape[2:])
    # The transpose of a strided convolution is a convolution of the input dilated by
    # the stride, with the kernel flipped and its in/out roles swapped within each group.
    wt = fnp.reshape(w, (groups, c_in // groups, c_out_g) + k)
    wt = fnp.swapaxes(wt, 1, 2)
    wt = fnp.reshape(wt, (groups * c_out_g, c_in // groups) + k)
    wt = wt[(slice(None), slice(None)) + (slice(None, None, -1),) * nd]
    pads, crops = [], []
    for kk, s, p, op_, d in zip(k, stride, padding, output_padding, dilation):
        lo, hi = d * (kk - 1) - p, d * (kk - 1) - p + op_
        pads.append((max(lo, 0), max(hi, 0)))
        crops.append((max(-lo, 0), max(-hi, 0)))
    y = lax.conv_general_dilated(
        x, wt, window_strides=(1,) * nd, padding=tuple(pads), lhs_dilation=stride,
        rhs_dilation=dilation, dimension_numbers=_DN[nd], feature_group_count=groups)
    if any(c != (0, 0) for c in crops):
        y = y[(slice(None), slice(None)) + tuple(
            slice(lo, y.shape[2 + i] - hi) for i, (lo, hi) in enumerate(crops))]
    if bias is not None:
        y = y + _bcast_channel(bias, y.ndim)
    return y[0] if unbatched else y


def conv_transpose1d(input, weight, bias=None, stride=1, padding=0, output_padding=0,
                     groups=1, dilation=1):
    """1-D transposed convolution; arguments as :func:`conv_transpose2d`."""
    return _conv_transpose("conv_transpose1d", 1, input, weight, bias, stride, padding,
                           output_padding, groups, dilation)


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0,
                     groups=1, dilation=1):
    """2-D transposed convolution ("deconvolution"), the gradient of :func:`conv2d`.

    Args (PyTorch's, in PyTorch's order):
      input: ``(N, C_in, H, W)`` or ``(C_in, H, W)``.
      weight: ``(C_in, C_out // groups, kH, kW)``.
      stride, padding, output_padding, dilation: ints or pairs. The output size is
        ``(H - 1) * stride - 2 * padding + dilation * (kH - 1) + output_padding + 1``.

    Example:
        >>> import numpy as np
        >>> conv_transpose2d(np.ones((1, 2, 4, 4)), np.ones((2, 3, 3, 3)), stride=2).shape
        (1, 3, 9, 9)
    """
    return _conv_transpose("conv_transpose2d", 2, input, weight, bias, stride, padding,
                           output_padding, groups, dilation)


def conv_transpose3d(input, weight, bias=None, stride=1, padding=0, output_padding=0,
                     groups=1, dilation=1):
    """3-D transposed convolution of ``(N, C_in, D, H, W)`` inputs with a ``(C_in,
    C_out // groups, kD, kH, kW)`` weight; arguments as :func:`conv_transpose2d`."""
    return _conv_transpose("conv_transpose3d", 3, input, weight, bias, stride, padding,
                           output_padding, groups, dilation)

"""Sliding local blocks: ``unfold`` (im2col) and its adjoint ``fold`` (col2im)."""
from __future__ import annotations

import itertools
import math

import funcgrad.numpy as fnp
from funcgrad.errors import FuncgradValueError

from ._util import _arr, _ntuple


def _blocks(op, spatial, kernel, dilation, padding, stride):
    """The number of blocks along each spatial axis (PyTorch's formula), checked."""
    out = []
    for n, k, d, p, s in zip(spatial, kernel, dilation, padding, stride):
        span = n + 2 * p - d * (k - 1) - 1
        if k <= 0 or d <= 0 or s <= 0 or p < 0:
            raise FuncgradValueError(
                f"{op}: kernel_size {kernel}, dilation {dilation} and stride {stride} must be "
                f"positive and padding {padding} non-negative")
        if span < 0:
            raise FuncgradValueError(
                f"{op}: the (padded) spatial size {tuple(spatial)} (padding {padding}) is "
                f"smaller than the dilated kernel {kernel} (dilation {dilation})")
        out.append(span // s + 1)
    return tuple(out)


def _offsets(kernel, dilation, blocks, stride):
    """For each kernel offset (row-major), the strided slices it reads in the padded
    input."""
    for offs in itertools.product(*[range(k) for k in kernel]):
        yield tuple(slice(o * d, o * d + (b - 1) * s + 1, s)
                    for o, d, b, s in zip(offs, dilation, blocks, stride))


def _window_args(op, kernel_size, dilation, padding, stride):
    """The four window arguments of :func:`unfold`/:func:`fold` as pairs."""
    return tuple(_ntuple(v, 2, name, op) for v, name in (
        (kernel_size, "kernel_size"), (dilation, "dilation"), (padding, "padding"),
        (stride, "stride")))


def unfold(input, kernel_size, dilation=1, padding=0, stride=1):
    """Extract sliding local blocks ("im2col"): ``(N, C, H, W)`` ->
    ``(N, C * kH * kW, L)``, with PyTorch's layout (channel-major, then kernel offsets in
    row-major order; ``L`` blocks in row-major order). Unbatched ``(C, H, W)`` input gives
    ``(C * kH * kW, L)``. Zero ``padding``; ``dilation`` and ``stride`` as in
    :func:`conv2d`. Differentiable (its adjoint is :func:`fold`).

    Raises FuncgradValueError for other ranks or when the kernel does not fit.

    Example:
        >>> import numpy as np
        >>> unfold(np.arange(9.0).reshape(1, 1, 3, 3), 2)[0]
        array([[0., 1., 3., 4.],
               [1., 2., 4., 5.],
               [3., 4., 6., 7.],
               [4., 5., 7., 8.]])
    """
    op = "unfold"
    x = _arr(input)
    if x.ndim not in (3, 4):
        raise FuncgradValueError(
            f"{op}: expected a 4-D (N, C, H, W) or 3-D (C, H, W) input, got shape "
            f"{tuple(x.shape)}")
    unbatched = x.ndim == 3
    if unbatched:
        x = x[None]
    kernel, dilation, padding, stride = _window_args(op, kernel_size, dilation, padding,
                                                     stride)
    blocks = _blocks(op, x.shape[2:], kernel, dilation, padding, stride)
    if any(p for p in padding):
        x = fnp.pad(x, ((0, 0), (0, 0)) + tuple((p, p) for p in padding))
    n, c = x.shape[:2]
    cols = [x[(slice(None), slice(None)) + sl] for sl in _offsets(kernel, dilation, blocks,
                                                                  stride)]
    y = fnp.reshape(fnp.stack(cols, axis=2), (n, c * math.prod(kernel), math.prod(blocks)))
    return y[0] if unbatched else y


def fold(input, output_size, kernel_size, dilation=1, padding=0, stride=1):
    """Combine sliding local blocks into an image ("col2im"), summing overlaps:
    ``(N, C * kH * kW, L)`` -> ``(N, C, H, W)`` with ``(H, W) = output_size``; unbatched
    ``(C * kH * kW, L)`` gives ``(C, H, W)``. The adjoint of :func:`unfold` with the same
    arguments (``fold(unfold(x))`` counts each pixel once per block covering it).

    Raises FuncgradValueError when the channel axis is not a multiple of ``kH * kW`` or
    ``L`` is not the number of blocks of ``output_size``.

    Example:
        >>> import numpy as np
        >>> fold(np.ones((1, 4, 4)), (3, 3), 2)[0, 0]
        array([[1., 2., 1.],
               [2., 4., 2.],
               [1., 2., 1.]])
    """
    op = "fold"
    x = _arr(input)
    if x.ndim not in (2, 3):
        raise FuncgradValueError(
            f"{op}: expected a 3-D (N, C * prod(kernel_size), L) or 2-D input, got shape "
            f"{tuple(x.shape)}")
    unbatched = x.ndim == 2
    if unbatched:
        x = x[None]
    out = _ntuple(output_size, 2, "output_size", op)
    kernel, dilation, padding, stride = _window_args(op, kernel_size, dilation, padding,
                                                     stride)
    blocks = _blocks(op, out, kernel, dilation, padding, stride)
    n, ck, length = x.shape
    k = math.prod(kernel)
    if ck % k:
        raise FuncgradValueError(
            f"{op}: input of shape {tuple(x.shape)}: dimension 1 ({ck}) must be a multiple of "
            f"prod(kernel_size) = {k} (kernel_size {kernel})")
    if length != math.prod(blocks):
        raise FuncgradValueError(
            f"{op}: input of shape {tuple(x.shape)} has {length} blocks, but output_size "
            f"{out} with kernel_size {kernel}, dilation {dilation}, padding {padding} and "
            f"stride {stride} gives {blocks[0]} x {blocks[1]} = {math.prod(blocks)}")
    c = ck // k
    cols = fnp.reshape(x, (n, c, k) + blocks)
    padded = tuple(o + 2 * p for o, p in zip(out, padding))
    y = fnp.zeros_like(x, shape=(n, c) + padded)
    for i, sl in enumerate(_offsets(kernel, dilation, blocks, stride)):
        y = fnp.at(y)[(slice(None), slice(None)) + sl].add(cols[:, :, i])
    if any(p for p in padding):
        y = y[(slice(None), slice(None)) + tuple(slice(p, p + o) for p, o in zip(padding, out))]
    return y[0] if unbatched else y

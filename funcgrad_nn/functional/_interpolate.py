"""Resampling: ``interpolate`` (nearest, linear, cubic and area modes) and the sub-pixel
rearrangements ``pixel_shuffle``/``pixel_unshuffle``."""
from __future__ import annotations

import math
import numbers

import numpy as np

import funcgrad.numpy as fnp
from funcgrad.errors import FuncgradValueError

from ._padding import _gather_axis
from ._pooling import _adaptive_avg
from ._util import _arr, _float_dtype, _ntuple


def _source_index(n_in, n_out, scale_factor, align_corners, cubic=False):
    """PyTorch's area_pixel_compute_source_index for linear/cubic modes."""
    dst = np.arange(n_out, dtype=np.float64)
    if align_corners:
        scale = (n_in - 1) / (n_out - 1) if n_out > 1 else 0.0
        return dst * scale
    scale = 1.0 / scale_factor if scale_factor else n_in / n_out
    src = scale * (dst + 0.5) - 0.5
    return src if cubic else np.maximum(src, 0.0)


def _linear_matrix(n_in, n_out, scale_factor, align_corners):
    src = _source_index(n_in, n_out, scale_factor, align_corners)
    i0 = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
    i1 = np.minimum(i0 + 1, n_in - 1)
    lam = src - i0
    m = np.zeros((n_out, n_in))
    np.add.at(m, (np.arange(n_out), i0), 1.0 - lam)
    np.add.at(m, (np.arange(n_out), i1), lam)
    return m


def _cubic_matrix(n_in, n_out, scale_factor, align_corners, A=-0.75):
    src = _source_index(n_in, n_out, scale_factor, align_corners, cubic=True)
    i = np.floor(src).astype(np.int64)
    t = src - i

    def near(z):       # |z| <= 1
        return ((A + 2) * z - (A + 3)) * z * z + 1

    def far(z):        # 1 < |z| < 2
        return ((A * z - 5 * A) * z + 8 * A) * z - 4 * A

    ws = [far(t + 1), near(t), near(1 - t), far(2 - t)]
    m = np.zeros((n_out, n_in))
    for off, w in zip((-1, 0, 1, 2), ws):
        np.add.at(m, (np.arange(n_out), np.clip(i + off, 0, n_in - 1)), w)
    return m


def _nearest_index(n_in, n_out, scale_factor, exact):
    scale = 1.0 / scale_factor if scale_factor else n_in / n_out
    dst = np.arange(n_out, dtype=np.float64)
    src = np.floor((dst + 0.5) * scale) if exact else np.floor(dst * scale)
    return np.minimum(src.astype(np.int64), n_in - 1)


_MODE_RANK = {"linear": 1, "bilinear": 2, "bicubic": 2, "trilinear": 3}


def interpolate(input, size=None, scale_factor=None, mode="nearest", align_corners=None,
                recompute_scale_factor=None, antialias=False):
    """Resample the spatial axes of ``(N, C, *spatial)`` inputs, as PyTorch does.

    Args:
      size: output spatial size (int or tuple); or
      scale_factor: float or tuple; the output size is ``floor(in * scale_factor)`` and,
        unless ``recompute_scale_factor=True``, ``1 / scale_factor`` is the sampling step.
      mode: ``'nearest'``, ``'nearest-exact'``, ``'linear'`` (3-D input),
        ``'bilinear'``/``'bicubic'`` (4-D), ``'trilinear'`` (5-D), ``'area'``.
      align_corners: for the linear and cubic modes (default False).

    ``antialias=True`` is not supported. Linear, cubic and area modes are separable
    matrix products; nearest modes gather.

    Example:
        >>> import numpy as np
        >>> interpolate(np.array([[[0.0, 1.0]]]), scale_factor=2, mode="linear")
        array([[[0.  , 0.25, 0.75, 1.  ]]])
    """
    x = _arr(input)
    nd = x.ndim - 2
    if nd < 1:
        raise FuncgradValueError(
            f"interpolate: expected an input of shape (N, C, *spatial), got {tuple(x.shape)}")
    if antialias:
        raise FuncgradValueError("interpolate: antialias=True is not supported")
    if mode in _MODE_RANK and _MODE_RANK[mode] != nd:
        raise FuncgradValueError(
            f"interpolate: mode {mode!r} needs a {_MODE_RANK[mode] + 2}-D input, got shape "
            f"{tuple(x.shape)}")
    if mode not in ("nearest", "nearest-exact", "area") and mode not in _MODE_RANK:
        raise FuncgradValueError(f"interpolate: unsupported mode {mode!r}")
    if align_corners is not None and mode not in _MODE_RANK:
        raise FuncgradValueError(
            f"interpolate: align_corners only applies to linear/cubic modes, not {mode!r}")
    if (size is None) == (scale_factor is None):
        raise FuncgradValueError("interpolate: give exactly one of size and scale_factor")
    spatial = tuple(x.shape[2:])
    if size is not None:
        out = _ntuple(size, nd, "size", "interpolate")
        scales = (None,) * nd
    else:
        sf = (float(scale_factor),) * nd if isinstance(scale_factor, numbers.Real) else tuple(
            float(s) for s in scale_factor)
        if len(sf) != nd:
            raise FuncgradValueError(f"interpolate: scale_factor must have {nd} entries")
        out = tuple(int(math.floor(n * s)) for n, s in zip(spatial, sf))
        scales = (None,) * nd if recompute_scale_factor else sf
    if mode == "area":
        return _adaptive_avg("interpolate", nd, x, out)
    dt = _float_dtype(x)
    if mode in ("nearest", "nearest-exact"):
        y = x
        for i in range(nd):
            idx = _nearest_index(spatial[i], out[i], scales[i], mode == "nearest-exact")
            y = _gather_axis(y, idx, 2 + i)
        return y
    if np.dtype(x.dtype) != dt:
        x = fnp.astype(x, dt)
    y = x
    for i in range(nd):
        if mode == "bicubic":
            m = _cubic_matrix(spatial[i], out[i], scales[i], bool(align_corners))
        else:
            m = _linear_matrix(spatial[i], out[i], scales[i], bool(align_corners))
        y = fnp.moveaxis(fnp.tensordot(y, m.astype(dt), axes=([2 + i], [1])), -1, 2 + i)
    return y


def _shuffle_check(op, x, r):
    r = int(r)
    if r < 1:
        raise FuncgradValueError(f"{op}: the factor must be positive, got {r}")
    if x.ndim < 3:
        raise FuncgradValueError(
            f"{op}: expected an input of shape (*, C, H, W), got {tuple(x.shape)}")
    return r


def pixel_shuffle(input, upscale_factor):
    """Rearrange ``(*, C * r^2, H, W)`` into ``(*, C, H * r, W * r)`` (``r`` the
    ``upscale_factor``), PyTorch's order: output ``[c, h * r + i, w * r + j]`` is input
    ``[c * r^2 + i * r + j, h, w]``. Raises FuncgradValueError when the channels are not
    divisible by ``r^2`` or the input has fewer than 3 axes.

    Example:
        >>> import numpy as np
        >>> pixel_shuffle(np.arange(4.0).reshape(4, 1, 1), 2)[0]
        array([[0., 1.],
               [2., 3.]])
    """
    x = _arr(input)
    r = _shuffle_check("pixel_shuffle", x, upscale_factor)
    *lead, cin, h, w = x.shape
    if cin % (r * r):
        raise FuncgradValueError(
            f"pixel_shuffle: the {cin} channels of the input of shape {tuple(x.shape)} are "
            f"not divisible by upscale_factor ** 2 = {r * r}")
    c, b = cin // (r * r), len(lead)
    y = fnp.reshape(x, (*lead, c, r, r, h, w))
    y = fnp.transpose(y, tuple(range(b)) + (b, b + 3, b + 1, b + 4, b + 2))
    return fnp.reshape(y, (*lead, c, h * r, w * r))


def pixel_unshuffle(input, downscale_factor):
    """The inverse of :func:`pixel_shuffle`: ``(*, C, H * r, W * r)`` to
    ``(*, C * r^2, H, W)``. Raises FuncgradValueError when ``H`` or ``W`` is not divisible
    by ``r`` or the input has fewer than 3 axes."""
    x = _arr(input)
    r = _shuffle_check("pixel_unshuffle", x, downscale_factor)
    *lead, c, hin, win = x.shape
    if hin % r or win % r:
        raise FuncgradValueError(
            f"pixel_unshuffle: the spatial size ({hin}, {win}) of the input of shape "
            f"{tuple(x.shape)} is not divisible by downscale_factor = {r}")
    h, w, b = hin // r, win // r, len(lead)
    y = fnp.reshape(x, (*lead, c, h, r, w, r))
    y = fnp.transpose(y, tuple(range(b)) + (b, b + 2, b + 4, b + 1, b + 3))
    return fnp.reshape(y, (*lead, c * r * r, h, w))


def channel_shuffle(input, groups):
    """Rearrange the channels (axis 1) of ``(N, C, *)`` as ``(groups, C / groups)`` ->
    ``(C / groups, groups)`` (ShuffleNet). Raises FuncgradValueError when ``C`` is not a
    multiple of ``groups``."""
    x = _arr(input)
    g = int(groups)
    if x.ndim < 3 or g <= 0 or x.shape[1] % g:
        raise FuncgradValueError(
            f"channel_shuffle: input of shape {tuple(x.shape)} must be (N, C, *) with C "
            f"divisible by groups={groups}")
    n, c = x.shape[:2]
    rest = tuple(x.shape[2:])
    y = fnp.reshape(x, (n, g, c // g) + rest)
    return fnp.reshape(fnp.swapaxes(y, 1, 2), (n, c) + rest)

"""Spatial transformers: ``affine_grid`` and ``grid_sample`` (2-D and 3-D)."""
from __future__ import annotations

import itertools

import numpy as np

import funcgrad
import funcgrad.numpy as fnp
from funcgrad.errors import FuncgradValueError

from ._util import _arange_like, _arr


def _base_coords(x, n, align_corners):
    """The normalized coordinates of ``n`` pixel centres (``align_corners``: -1 and 1 are
    the centres of the corner pixels; otherwise their outer edges)."""
    i = fnp.astype(_arange_like(x, n), x.dtype)
    if align_corners:
        return i * (2.0 / (n - 1)) - 1.0 if n > 1 else i * 0.0
    return (i * 2.0 + 1.0) / n - 1.0


def affine_grid(theta, size, align_corners=False):
    """The sampling grid of a batch of affine maps, for :func:`grid_sample`.

    Args:
      theta: ``(N, 2, 3)`` for a 2-D ``size = (N, C, H, W)``, or ``(N, 3, 4)`` for a 3-D
        ``size = (N, C, D, H, W)``; maps output coordinates ``(x, y[, z], 1)`` (each in
        ``[-1, 1]``) to input coordinates. Differentiable.
      size: the output size, as PyTorch (a tuple or list of ints).
      align_corners: as in :func:`grid_sample` (PyTorch's default, False).

    Returns ``(N, H, W, 2)`` (or ``(N, D, H, W, 3)``) of ``theta``'s dtype.

    Raises FuncgradValueError naming the shapes when ``theta`` does not match ``size``.

    Example:
        >>> import numpy as np
        >>> affine_grid(np.array([[[1.0, 0, 0], [0, 1, 0]]]), (1, 1, 2, 2))[0, :, :, 0]
        array([[-0.5,  0.5],
               [-0.5,  0.5]])
    """
    op = "affine_grid"
    t = _arr(theta)
    size = tuple(int(s) for s in size)
    if len(size) not in (4, 5):
        raise FuncgradValueError(
            f"{op}: size must be (N, C, H, W) or (N, C, D, H, W), got {size}")
    nd = len(size) - 2
    if t.ndim != 3 or tuple(t.shape) != (size[0], nd, nd + 1):
        raise FuncgradValueError(
            f"{op}: for size {size} theta must have shape ({size[0]}, {nd}, {nd + 1}), got "
            f"{tuple(t.shape)}")
    if t.dtype.kind != "f":
        t = fnp.astype(t, np.float64)
    spatial = size[2:]                                  # (H, W) or (D, H, W)
    # coordinate k of the grid runs along spatial axis nd - 1 - k (x along W)
    axes = [_base_coords(t, n, align_corners) for n in spatial]
    mesh = fnp.meshgrid(*axes, indexing="ij")           # each of shape spatial
    base = fnp.stack(list(mesh)[::-1] + [fnp.ones_like(mesh[0])], axis=-1)  # (*spatial, nd+1)
    base = fnp.reshape(base, (-1, nd + 1))
    grid = fnp.einsum("pk,nck->npc", base, t)
    return fnp.reshape(grid, (size[0],) + spatial + (nd,))


def _unnormalize(coord, n, align_corners):
    if align_corners:
        return (coord + 1.0) * ((n - 1) / 2.0)
    return ((coord + 1.0) * n - 1.0) / 2.0


def _reflect(coord, lo2, hi2):
    """PyTorch's reflection of ``coord`` into ``[lo2 / 2, hi2 / 2]`` (twice the bounds)."""
    if lo2 == hi2:
        return coord * 0.0
    mn, span = lo2 / 2.0, (hi2 - lo2) / 2.0
    c = fnp.abs(coord - mn)
    flips = fnp.floor(c / span)
    extra = c - flips * span
    even = fnp.remainder(flips, 2.0) == 0
    return fnp.where(even, extra + mn, span - extra + mn)


def _source(coord, n, padding_mode, align_corners):
    c = _unnormalize(coord, n, align_corners)
    if padding_mode == "border":
        c = fnp.clip(c, 0.0, n - 1.0)
    elif padding_mode == "reflection":
        c = (_reflect(c, 0.0, 2.0 * (n - 1)) if align_corners
             else _reflect(c, -1.0, 2.0 * n - 1.0))
        c = fnp.clip(c, 0.0, n - 1.0)
    return c


def grid_sample(input, grid, mode="bilinear", padding_mode="zeros", align_corners=False):
    """Sample ``input`` at the normalized locations of ``grid`` (PyTorch's semantics).

    Args:
      input: ``(N, C, H, W)`` (or ``(N, C, D, H, W)``).
      grid: ``(N, Ho, Wo, 2)`` (or ``(N, Do, Ho, Wo, 3)``) of ``(x, y[, z])`` in
        ``[-1, 1]``: ``x = -1`` is the left edge of the input, ``x = 1`` the right.
      mode: ``'bilinear'`` (trilinear in 3-D) or ``'nearest'`` (round half to even, as
        PyTorch).
      padding_mode: ``'zeros'``, ``'border'`` or ``'reflection'`` for locations outside.
      align_corners: True: -1 and 1 are the centres of the corner pixels; False
        (PyTorch's default): their outer edges.

    Returns ``(N, C, Ho, Wo)`` (or ``(N, C, Do, Ho, Wo)``). Differentiable in ``input``
    and (bilinear) in ``grid``; a NaN grid location samples as PyTorch's zero padding.

    Raises FuncgradValueError for an unknown mode or padding mode (``'bicubic'`` is not
    implemented) or mismatched shapes.

    Example:
        >>> import numpy as np
        >>> x = np.arange(4.0).reshape(1, 1, 2, 2)
        >>> grid_sample(x, np.zeros((1, 1, 1, 2)), align_corners=True).item()
        1.5
    """
    op = "grid_sample"
    x, g = _arr(input), _arr(grid)
    if mode not in ("bilinear", "nearest"):
        raise FuncgradValueError(
            f"{op}: mode must be 'bilinear' or 'nearest', got {mode!r}"
            + (" (bicubic is not implemented)" if mode == "bicubic" else ""))
    if padding_mode not in ("zeros", "border", "reflection"):
        raise FuncgradValueError(
            f"{op}: padding_mode must be 'zeros', 'border' or 'reflection', got "
            f"{padding_mode!r}")
    if x.ndim not in (4, 5):
        raise FuncgradValueError(
            f"{op}: expected a 4-D (N, C, H, W) or 5-D (N, C, D, H, W) input, got shape "
            f"{tuple(x.shape)}")
    nd = x.ndim - 2
    if g.ndim != nd + 2 or g.shape[0] != x.shape[0] or g.shape[-1] != nd:
        raise FuncgradValueError(
            f"{op}: for input of shape {tuple(x.shape)} the grid must have shape "
            f"({x.shape[0]}, *out, {nd}), got {tuple(g.shape)}")
    if x.dtype.kind != "f":
        x = fnp.astype(x, g.dtype if g.dtype.kind == "f" else np.float64)
    if g.dtype != x.dtype:
        g = fnp.astype(g, x.dtype)
    n, c = x.shape[:2]
    spatial = tuple(x.shape[2:])
    out = tuple(g.shape[1:-1])
    p = int(np.prod(out))
    flat = fnp.reshape(x, (n, c, -1))
    # grid coordinate k runs along spatial axis nd - 1 - k
    src = [_source(fnp.reshape(g[..., nd - 1 - a], (n, p)), spatial[a], padding_mode,
                   align_corners) for a in range(nd)]
    strides = [int(np.prod(spatial[a + 1:])) for a in range(nd)]

    def gather(idx, weight):
        """Sum of ``weight`` times the input at integer positions ``idx`` (one ``(n, p)``
        array per axis), zero where any is out of range (or NaN)."""
        inside = None
        flat_idx = 0
        for a, i in enumerate(idx):
            ok = (i >= 0) & (i <= spatial[a] - 1)
            inside = ok if inside is None else inside & ok
            flat_idx = flat_idx + fnp.astype(fnp.where(ok, i, 0), np.int64) * strides[a]
        vals = fnp.take_along_axis(flat, fnp.broadcast_to(fnp.expand_dims(flat_idx, 1),
                                                          (n, c, p)), axis=2)
        w = fnp.where(inside, weight, 0.0)
        return vals * fnp.expand_dims(w, 1)

    if mode == "nearest":
        idx = [funcgrad.stop_gradient(fnp.rint(s)) for s in src]
        y = gather(idx, fnp.ones_like(src[0]))
    else:
        lo = [funcgrad.stop_gradient(fnp.floor(s)) for s in src]
        frac = [s - f for s, f in zip(src, lo)]
        y = 0.0
        for corner in itertools.product((0, 1), repeat=nd):
            w = None
            for a, cbit in enumerate(corner):
                wa = frac[a] if cbit else 1.0 - frac[a]
                w = wa if w is None else w * wa
            y = y + gather([f + cbit for f, cbit in zip(lo, corner)], w)
    return fnp.reshape(y, (n, c) + out)

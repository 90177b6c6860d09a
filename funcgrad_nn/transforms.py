"""Sample transforms for image data (NumPy arrays), torchvision style.

Every transform is called as ``t(x, rng=None)``. Random transforms draw from ``rng``, a
``numpy.random.Generator``, when one is given; :class:`funcgrad_nn.data.DataLoader` always
gives one, derived from ``(seed, epoch, batch, position)``, so augmented epochs are
reproducible and do not depend on ``num_workers``. With ``rng=None`` a random transform
uses its own generator, ``numpy.random.default_rng(seed)`` from its constructor (a fresh
OS seed when ``seed`` is None).

Images are arrays with height and width as the last two axes (``(C, H, W)`` after
:class:`ToArray`, or ``(H, W)`` grayscale), so the geometric transforms may come before or
after ``ToArray`` for grayscale images, and after it for color ones.

    >>> import numpy as np
    >>> t = Compose([ToArray(), Normalize([0.5], [0.5])])
    >>> t(np.full((2, 2), 255, np.uint8))
    array([[[1., 1.],
            [1., 1.]]], dtype=float32)
"""
from __future__ import annotations

import numbers
from typing import Callable, Sequence

import numpy as np

from funcgrad.errors import FuncgradTypeError, FuncgradValueError

__all__ = ["Compose", "Lambda", "Normalize", "RandomCrop", "RandomHorizontalFlip",
           "ToArray", "Transform"]


class Transform:
    """Base class: ``__call__(x, rng=None)`` returns the transformed sample."""

    def __call__(self, x, rng: np.random.Generator | None = None):
        raise NotImplementedError

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({args})"


class _RandomTransform(Transform):
    def __init__(self, seed):
        self._own_rng = np.random.default_rng(seed)

    def _rng(self, rng):
        return self._own_rng if rng is None else rng


class Compose(Transform):
    """Apply ``transforms`` in order, passing ``rng`` to each :class:`Transform`; plain
    callables in the list are called as ``f(x)``."""

    def __init__(self, transforms: Sequence[Callable]):
        self.transforms = list(transforms)

    def __call__(self, x, rng=None):
        for t in self.transforms:
            x = t(x, rng=rng) if isinstance(t, Transform) else t(x)
        return x


class Lambda(Transform):
    """Wrap a function ``fn(x)`` as a transform (it receives no ``rng``)."""

    def __init__(self, fn: Callable):
        if not callable(fn):
            raise FuncgradTypeError(f"Lambda: expected a callable, got {type(fn).__name__}")
        self.fn = fn

    def __call__(self, x, rng=None):
        return self.fn(x)


class ToArray(Transform):
    """An ``(H, W, C)`` or ``(H, W)`` image to a float32 ``(C, H, W)`` array (torchvision's
    ``ToTensor``).

    ``uint8`` values are scaled to [0, 1] by dividing by 255; booleans become 0/1; other
    numeric dtypes are cast to float32 unscaled. Raises ``ValueError`` for other ranks.
    """

    def __call__(self, x, rng=None):
        x = np.asarray(x)
        if x.ndim == 2:
            x = x[:, :, None]
        if x.ndim != 3:
            raise FuncgradValueError(
                f"ToArray: expected an (H, W, C) or (H, W) image, got shape {x.shape}")
        if x.dtype.kind not in "biuf":
            raise FuncgradTypeError(f"ToArray: unsupported dtype {x.dtype}")
        out = np.ascontiguousarray(x.transpose(2, 0, 1), dtype=np.float32)
        if x.dtype == np.uint8:
            out /= np.float32(255)
        return out


class Normalize(Transform):
    """``(x - mean[c]) / std[c]`` per channel of a ``(..., C, H, W)`` array; the result
    keeps ``x``'s float dtype.

    ``mean`` and ``std`` are sequences of length C (or 1, broadcast to every channel).
    Raises ``ValueError`` for a zero std or a channel-count mismatch.
    """

    def __init__(self, mean, std):
        self.mean = tuple(float(m) for m in np.ravel(mean))
        self.std = tuple(float(s) for s in np.ravel(std))
        if len(self.mean) != len(self.std) or not self.mean:
            raise FuncgradValueError(
                f"Normalize: mean and std need the same, non-zero length; got "
                f"{len(self.mean)} and {len(self.std)}")
        if any(s == 0 for s in self.std):
            raise FuncgradValueError(f"Normalize: std {self.std} contains a zero")

    def __call__(self, x, rng=None):
        x = np.asarray(x)
        if x.dtype.kind != "f":
            x = x.astype(np.float32)
        if x.ndim < 3 or (len(self.mean) not in (1, x.shape[-3])):
            raise FuncgradValueError(
                f"Normalize: expected a (..., C, H, W) array with C={len(self.mean)}, got "
                f"shape {x.shape}")
        mean = np.asarray(self.mean, x.dtype)[:, None, None]
        std = np.asarray(self.std, x.dtype)[:, None, None]
        return (x - mean) / std


def _pair(v, what):
    if isinstance(v, numbers.Integral):
        return int(v), int(v)
    v = tuple(int(a) for a in v)
    if len(v) != 2:
        raise FuncgradValueError(f"{what}: expected an int or a pair, got {v}")
    return v


class RandomCrop(_RandomTransform):
    """Crop a random ``size`` window from the last two axes (H, W).

    Args:
      size: int (square) or ``(h, w)``.
      padding: pad before cropping: an int for all sides, ``(left/right, top/bottom)`` or
        ``(left, top, right, bottom)``.
      pad_if_needed: pad images smaller than ``size`` instead of raising.
      fill: the constant for padding (``padding_mode="constant"``); other modes are
        NumPy's ``"edge"``, ``"reflect"``, ``"symmetric"``.
      seed: seeds the transform's own generator, used when called without ``rng``.

        >>> RandomCrop(2, padding=1, seed=0)(np.ones((1, 3, 3))).shape
        (1, 2, 2)
    """

    def __init__(self, size, padding=None, pad_if_needed: bool = False, fill=0,
                 padding_mode: str = "constant", seed=None):
        super().__init__(seed)
        self.size = _pair(size, "RandomCrop size")
        if padding is None:
            padding = (0, 0, 0, 0)
        elif isinstance(padding, numbers.Integral):
            padding = (int(padding),) * 4
        else:
            padding = tuple(int(p) for p in padding)
            if len(padding) == 2:
                padding = (padding[0], padding[1], padding[0], padding[1])
            elif len(padding) != 4:
                raise FuncgradValueError(f"RandomCrop: padding must have 1, 2 or 4 values, "
                                         f"got {padding}")
        if min(padding) < 0:
            raise FuncgradValueError(f"RandomCrop: negative padding {padding}")
        if padding_mode not in ("constant", "edge", "reflect", "symmetric"):
            raise FuncgradValueError(f"RandomCrop: unknown padding_mode {padding_mode!r}")
        self.padding = padding           # (left, top, right, bottom)
        self.pad_if_needed = bool(pad_if_needed)
        self.fill = fill
        self.padding_mode = padding_mode

    def _pad(self, x, left, top, right, bottom):
        if not (left or top or right or bottom):
            return x
        widths = [(0, 0)] * (x.ndim - 2) + [(top, bottom), (left, right)]
        if self.padding_mode == "constant":
            return np.pad(x, widths, mode="constant", constant_values=self.fill)
        return np.pad(x, widths, mode=self.padding_mode)

    def __call__(self, x, rng=None):
        x = np.asarray(x)
        if x.ndim < 2:
            raise FuncgradValueError(f"RandomCrop: expected (..., H, W), got shape {x.shape}")
        x = self._pad(x, *self.padding)
        th, tw = self.size
        h, w = x.shape[-2:]
        if self.pad_if_needed and (h < th or w < tw):
            x = self._pad(x, max(tw - w, 0), max(th - h, 0), max(tw - w, 0), max(th - h, 0))
            h, w = x.shape[-2:]
        if h < th or w < tw:
            raise FuncgradValueError(
                f"RandomCrop: crop size {(th, tw)} is larger than the (padded) image "
                f"{(h, w)}; pass padding= or pad_if_needed=True")
        rng = self._rng(rng)
        i = int(rng.integers(0, h - th + 1))
        j = int(rng.integers(0, w - tw + 1))
        return x[..., i:i + th, j:j + tw].copy()


class RandomHorizontalFlip(_RandomTransform):
    """Reverse the last axis (W) with probability ``p``."""

    def __init__(self, p: float = 0.5, seed=None):
        super().__init__(seed)
        if not 0.0 <= p <= 1.0:
            raise FuncgradValueError(f"RandomHorizontalFlip: p={p} is not in [0, 1]")
        self.p = float(p)

    def __call__(self, x, rng=None):
        x = np.asarray(x)
        if self._rng(rng).random() < self.p:
            return x[..., ::-1].copy()
        return x

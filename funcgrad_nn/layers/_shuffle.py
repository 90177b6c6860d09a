"""Sub-pixel rearrangement layers: PixelShuffle and PixelUnshuffle."""
from __future__ import annotations

from .. import functional as F
from . import _args
from ._base import _Parameterless


class PixelShuffle(_Parameterless):
    """``(*, C * r^2, H, W)`` to ``(*, C, H * r, W * r)``; see
    :func:`funcgrad_nn.functional.pixel_shuffle`."""

    def __init__(self, upscale_factor):
        self.upscale_factor = _args.size("PixelShuffle", "upscale_factor", upscale_factor)

    def extra_repr(self):
        return f"upscale_factor={self.upscale_factor}"

    def forward(self, params, x):
        self._check(params)
        return F.pixel_shuffle(x, self.upscale_factor)


class PixelUnshuffle(_Parameterless):
    """``(*, C, H * r, W * r)`` to ``(*, C * r^2, H, W)``; see
    :func:`funcgrad_nn.functional.pixel_unshuffle`."""

    def __init__(self, downscale_factor):
        self.downscale_factor = _args.size("PixelUnshuffle", "downscale_factor",
                                           downscale_factor)

    def extra_repr(self):
        return f"downscale_factor={self.downscale_factor}"

    def forward(self, params, x):
        self._check(params)
        return F.pixel_unshuffle(x, self.downscale_factor)

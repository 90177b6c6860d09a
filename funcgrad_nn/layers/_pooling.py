"""Pooling layers: max, average and adaptive average pooling."""
from __future__ import annotations

from .. import functional as F
from . import _args
from ._base import _Parameterless, _shape


class _PoolNd(_Parameterless):
    _nd = 2
    _max = True

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
                 count_include_pad=True, return_indices=False, divisor_override=None):
        name, nd = type(self).__name__, self._nd
        _args.sizes(name, "kernel_size", kernel_size, nd)
        if stride is not None:
            _args.sizes(name, "stride", stride, nd)
        _args.sizes(name, "padding", padding, nd, 0)
        _args.sizes(name, "dilation", dilation, nd)
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.dilation, self.ceil_mode = dilation, ceil_mode
        self.count_include_pad, self.return_indices = count_include_pad, return_indices
        self.divisor_override = divisor_override

    def extra_repr(self):
        s = f"kernel_size={self.kernel_size}, stride={self.stride or self.kernel_size}, " \
            f"padding={self.padding}"
        if self._max:
            s += f", dilation={self.dilation}, ceil_mode={self.ceil_mode}"
        return s

    def forward(self, params, x):
        self._check(params)
        nd = self._nd
        if len(_shape(x)) not in (nd + 1, nd + 2):
            self._bad_input(x, f"a {nd + 2}-D batched or {nd + 1}-D unbatched input")
        if self._max:
            f = F.max_pool1d if nd == 1 else F.max_pool2d
            return f(x, self.kernel_size, self.stride, self.padding, self.dilation,
                     self.ceil_mode, self.return_indices)
        if nd == 1:
            return F.avg_pool1d(x, self.kernel_size, self.stride, self.padding,
                                self.ceil_mode, self.count_include_pad)
        return F.avg_pool2d(x, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                            self.count_include_pad, self.divisor_override)


class MaxPool1d(_PoolNd):
    """1-D max pooling (kernel_size, stride=None, padding=0, dilation=1,
    return_indices=False, ceil_mode=False)."""

    _nd = 1

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1,
                 return_indices=False, ceil_mode=False):
        super().__init__(kernel_size, stride, padding, dilation, ceil_mode,
                         return_indices=return_indices)


class MaxPool2d(_PoolNd):
    """2-D max pooling (kernel_size, stride=None, padding=0, dilation=1,
    return_indices=False, ceil_mode=False), see :func:`functional.max_pool2d`."""

    _nd = 2

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1,
                 return_indices=False, ceil_mode=False):
        super().__init__(kernel_size, stride, padding, dilation, ceil_mode,
                         return_indices=return_indices)


class AvgPool1d(_PoolNd):
    """1-D average pooling (kernel_size, stride=None, padding=0, ceil_mode=False,
    count_include_pad=True)."""

    _nd = 1
    _max = False

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False,
                 count_include_pad=True):
        super().__init__(kernel_size, stride, padding, 1, ceil_mode, count_include_pad)


class AvgPool2d(_PoolNd):
    """2-D average pooling (kernel_size, stride=None, padding=0, ceil_mode=False,
    count_include_pad=True, divisor_override=None)."""

    _nd = 2
    _max = False

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False,
                 count_include_pad=True, divisor_override=None):
        super().__init__(kernel_size, stride, padding, 1, ceil_mode, count_include_pad,
                         divisor_override=divisor_override)


class AdaptiveAvgPool1d(_Parameterless):
    """1-D adaptive average pooling to ``output_size`` bins."""

    def __init__(self, output_size):
        self.output_size = output_size

    def extra_repr(self):
        return f"output_size={self.output_size}"

    def forward(self, params, x):
        self._check(params)
        return F.adaptive_avg_pool1d(x, self.output_size)


class AdaptiveAvgPool2d(_Parameterless):
    """2-D adaptive average pooling to ``output_size`` (an int or a pair; None keeps)."""

    def __init__(self, output_size):
        self.output_size = output_size

    def extra_repr(self):
        return f"output_size={self.output_size}"

    def forward(self, params, x):
        self._check(params)
        return F.adaptive_avg_pool2d(x, self.output_size)

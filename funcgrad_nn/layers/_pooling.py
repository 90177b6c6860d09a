"""Pooling layers: max, average, adaptive average and adaptive max pooling (1-3-D), and
the sliding-block layers Unfold and Fold."""
from __future__ import annotations

from .. import functional as F
from . import _args
from ._base import Module, _Parameterless, _shape


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

    def _runs_before_relu(self):
        """Whether Sequential may run this layer before the ReLU written before it: a max
        pooling (this forward, and Module's apply and __call__) that returns no indices;
        the two commute exactly."""
        cls = type(self)
        return (self._max and not self.return_indices and cls.forward is _PoolNd.forward
                and cls.apply is Module.apply and cls.__call__ is Module.__call__)

    def forward(self, params, x):
        self._check(params)
        nd = self._nd
        if len(_shape(x)) not in (nd + 1, nd + 2):
            self._bad_input(x, f"a {nd + 2}-D batched or {nd + 1}-D unbatched input")
        if self._max:
            f = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}[nd]
            return f(x, self.kernel_size, self.stride, self.padding, self.dilation,
                     self.ceil_mode, self.return_indices)
        if nd == 1:
            return F.avg_pool1d(x, self.kernel_size, self.stride, self.padding,
                                self.ceil_mode, self.count_include_pad)
        f = F.avg_pool2d if nd == 2 else F.avg_pool3d
        return f(x, self.kernel_size, self.stride, self.padding, self.ceil_mode,
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


class MaxPool3d(_PoolNd):
    """3-D max pooling (kernel_size, stride=None, padding=0, dilation=1,
    return_indices=False, ceil_mode=False), see :func:`functional.max_pool3d`."""

    _nd = 3

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1,
                 return_indices=False, ceil_mode=False):
        super().__init__(kernel_size, stride, padding, dilation, ceil_mode,
                         return_indices=return_indices)


class AvgPool3d(_PoolNd):
    """3-D average pooling (kernel_size, stride=None, padding=0, ceil_mode=False,
    count_include_pad=True, divisor_override=None)."""

    _nd = 3
    _max = False

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False,
                 count_include_pad=True, divisor_override=None):
        super().__init__(kernel_size, stride, padding, 1, ceil_mode, count_include_pad,
                         divisor_override=divisor_override)


class _Adaptive(_Parameterless):
    _fn = None

    def __init__(self, output_size, return_indices=False):
        self.output_size, self.return_indices = output_size, return_indices

    def extra_repr(self):
        return f"output_size={self.output_size}"

    def forward(self, params, x):
        self._check(params)
        if self.return_indices:
            return type(self)._fn(x, self.output_size, return_indices=True)
        return type(self)._fn(x, self.output_size)


class AdaptiveAvgPool3d(_Adaptive):
    """3-D adaptive average pooling to ``output_size`` (an int or a triple; None keeps)."""
    _fn = staticmethod(F.adaptive_avg_pool3d)

    def __init__(self, output_size):
        super().__init__(output_size)


class AdaptiveMaxPool1d(_Adaptive):
    """1-D adaptive max pooling (output_size, return_indices=False)."""
    _fn = staticmethod(F.adaptive_max_pool1d)


class AdaptiveMaxPool2d(_Adaptive):
    """2-D adaptive max pooling (output_size, return_indices=False)."""
    _fn = staticmethod(F.adaptive_max_pool2d)


class AdaptiveMaxPool3d(_Adaptive):
    """3-D adaptive max pooling (output_size, return_indices=False)."""
    _fn = staticmethod(F.adaptive_max_pool3d)


class Unfold(_Parameterless):
    """Extract sliding local blocks (kernel_size, dilation=1, padding=0, stride=1); see
    :func:`functional.unfold`."""

    def __init__(self, kernel_size, dilation=1, padding=0, stride=1):
        self.kernel_size, self.dilation, self.padding, self.stride = (kernel_size, dilation,
                                                                      padding, stride)

    def extra_repr(self):
        return (f"kernel_size={self.kernel_size}, dilation={self.dilation}, "
                f"padding={self.padding}, stride={self.stride}")

    def forward(self, params, x):
        self._check(params)
        return F.unfold(x, self.kernel_size, self.dilation, self.padding, self.stride)


class Fold(_Parameterless):
    """Combine sliding local blocks (output_size, kernel_size, dilation=1, padding=0,
    stride=1); see :func:`functional.fold`."""

    def __init__(self, output_size, kernel_size, dilation=1, padding=0, stride=1):
        self.output_size = output_size
        self.kernel_size, self.dilation, self.padding, self.stride = (kernel_size, dilation,
                                                                      padding, stride)

    def extra_repr(self):
        return (f"output_size={self.output_size}, kernel_size={self.kernel_size}, "
                f"dilation={self.dilation}, padding={self.padding}, stride={self.stride}")

    def forward(self, params, x):
        self._check(params)
        return F.fold(x, self.output_size, self.kernel_size, self.dilation, self.padding,
                      self.stride)

"""Convolution layers: ``Conv1d``, ``Conv2d`` and the transposed ones."""
from __future__ import annotations

import math

import numpy as np

import funcgrad.numpy as fnp
from funcgrad.errors import FuncgradValueError

from .. import functional as F
from .. import init as _init
from . import _args
from ._base import Module, _Leaf, _shape, _split
from ._linear import _default_bias


class _ConvNd(_Leaf):
    _nd = 2
    _transposed = False

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 dilation=1, groups=1, bias=True, padding_mode="zeros", dtype=np.float32,
                 output_padding=0):
        nd = self._nd
        name = type(self).__name__
        self.in_channels = _args.size(name, "in_channels", in_channels)
        self.out_channels = _args.size(name, "out_channels", out_channels)
        self.kernel_size = _args.sizes(name, "kernel_size", kernel_size, nd)
        self.stride = _args.sizes(name, "stride", stride, nd)
        self.padding = padding if isinstance(padding, str) else _args.sizes(
            name, "padding", padding, nd, 0)
        self.dilation = _args.sizes(name, "dilation", dilation, nd)
        self.output_padding = _args.sizes(name, "output_padding", output_padding, nd, 0)
        self.groups = _args.size(name, "groups", groups)
        self.bias, self.padding_mode, self.dtype = bool(bias), padding_mode, dtype
        if self.in_channels % self.groups or self.out_channels % self.groups:
            raise FuncgradValueError(
                f"{name}: in_channels={in_channels} and out_channels={out_channels} must be "
                f"divisible by groups={groups}")
        if padding_mode not in ("zeros", "reflect", "replicate", "circular"):
            raise FuncgradValueError(
                f"{name}: padding_mode must be 'zeros', 'reflect', 'replicate' or "
                f"'circular', got {padding_mode!r}")
        if isinstance(padding, str) and padding not in ("same", "valid"):
            raise FuncgradValueError(f"{name}: padding must be 'same', 'valid' or ints")
        if padding == "same" and any(s != 1 for s in self.stride):
            raise FuncgradValueError(f"{name}: padding='same' needs stride 1, got {stride}")

    def extra_repr(self):
        s = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
             f"stride={self.stride}")
        if self.padding != (0,) * self._nd:
            s += f", padding={self.padding!r}"
        if self.dilation != (1,) * self._nd:
            s += f", dilation={self.dilation}"
        if self._transposed and self.output_padding != (0,) * self._nd:
            s += f", output_padding={self.output_padding}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if not self.bias:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode!r}"
        return s

    def _weight_shape(self):
        if self._transposed:
            return (self.in_channels, self.out_channels // self.groups) + self.kernel_size
        return (self.out_channels, self.in_channels // self.groups) + self.kernel_size

    def _expected(self):
        e = {"weight": self._weight_shape()}
        if self.bias:
            e["bias"] = (self.out_channels,)
        return e

    def init(self, key):
        kw, kb = _split(key, 2)
        shape = self._weight_shape()
        p = {"weight": _init.kaiming_uniform(kw, shape, a=math.sqrt(5), dtype=self.dtype)}
        if self.bias:
            fan_in = _init.fan_in_and_fan_out(shape)[0]
            p["bias"] = _default_bias(kb, fan_in, (self.out_channels,), self.dtype)
        return p

    def forward(self, params, x):
        self._check(params)
        self._check_input(x)
        return self._apply(x, params["weight"], params.get("bias"))

    def _bias_movable(self):
        """Whether Sequential may add this layer's bias after the max pooling that follows
        it (see ``_base._bias_after_pooling``): a bias, and this class's forward, a
        built-in layer's ``_apply``, and Module's ``apply`` and ``__call__`` (the move
        calls ``_apply`` itself: a subclass overriding one of them, e.g. ``apply`` for
        state, runs as written)."""
        cls = type(self)
        return (self.bias and cls.forward is _ConvNd.forward and cls._apply in _PLAIN_APPLY
                and cls.apply is Module.apply and cls.__call__ is Module.__call__)

    def _without_bias(self, params, x):
        """``(y, add)``: this layer's output without its bias, and the function that adds
        the bias to it or to its max pooling (over a window of one channel the bias is a
        constant: the maximum of ``y + b`` is exactly the maximum of ``y``, plus ``b``, as
        rounding is monotone)."""
        self._check(params)
        self._check_input(x)
        y = self._apply(x, params["weight"], None)
        bias, nd = params["bias"], self._nd

        def add(z):
            shape = [1] * z.ndim
            shape[z.ndim - nd - 1] = -1             # the channel axis, batched or not
            return z + fnp.reshape(bias, tuple(shape))
        return y, add

    def _check_input(self, x):
        shp, nd, c = _shape(x), self._nd, self.in_channels
        if len(shp) not in (nd + 1, nd + 2) or shp[-nd - 1] != c:
            self._bad_input(x, f"a {nd + 2}-D (N, {c}, ...) or {nd + 1}-D ({c}, ...) input "
                               f"with {c} channels")


class Conv1d(_ConvNd):
    """1-D convolution layer; arguments as :class:`Conv2d`."""

    _nd = 1

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 dilation=1, groups=1, bias=True, padding_mode="zeros", dtype=np.float32):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, padding_mode, dtype)

    def _apply(self, x, weight, bias):
        return F.conv1d(x, weight, bias, self.stride, self.padding,
                        self.dilation, self.groups, self.padding_mode)


class Conv2d(_ConvNd):
    """2-D convolution layer over ``(N, C, H, W)`` (or ``(C, H, W)``) inputs.

    Args (PyTorch's): in_channels, out_channels, kernel_size, stride=1, padding=0 (an int,
    a pair, ``'same'`` or ``'valid'``), dilation=1, groups=1, bias=True,
    padding_mode ``'zeros' | 'reflect' | 'replicate' | 'circular'``, dtype=float32.

    Params: ``weight (out_channels, in_channels // groups, kH, kW)``, ``bias
    (out_channels,)``, initialized as in PyTorch.
    """

    _nd = 2

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 dilation=1, groups=1, bias=True, padding_mode="zeros", dtype=np.float32):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, padding_mode, dtype)

    def _apply(self, x, weight, bias):
        return F.conv2d(x, weight, bias, self.stride, self.padding,
                        self.dilation, self.groups, self.padding_mode)


class ConvTranspose1d(_ConvNd):
    """1-D transposed convolution layer; arguments as :class:`ConvTranspose2d`."""

    _nd = 1
    _transposed = True

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 output_padding=0, groups=1, bias=True, dilation=1, padding_mode="zeros",
                 dtype=np.float32):
        if padding_mode != "zeros":
            raise FuncgradValueError("ConvTranspose1d: only padding_mode='zeros' is supported")
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, padding_mode, dtype, output_padding)

    def _apply(self, x, weight, bias):
        return F.conv_transpose1d(x, weight, bias, self.stride,
                                  self.padding, self.output_padding, self.groups,
                                  self.dilation)


class ConvTranspose2d(_ConvNd):
    """2-D transposed convolution layer (PyTorch's argument order: in_channels,
    out_channels, kernel_size, stride=1, padding=0, output_padding=0, groups=1,
    bias=True, dilation=1).

    Params: ``weight (in_channels, out_channels // groups, kH, kW)``, ``bias
    (out_channels,)``.
    """

    _nd = 2
    _transposed = True

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 output_padding=0, groups=1, bias=True, dilation=1, padding_mode="zeros",
                 dtype=np.float32):
        if padding_mode != "zeros":
            raise FuncgradValueError("ConvTranspose2d: only padding_mode='zeros' is supported")
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, padding_mode, dtype, output_padding)

    def _apply(self, x, weight, bias):
        return F.conv_transpose2d(x, weight, bias, self.stride,
                                  self.padding, self.output_padding, self.groups,
                                  self.dilation)


# the built-in layers' _apply (see _ConvNd._bias_movable)
_PLAIN_APPLY = frozenset(c._apply for c in (Conv1d, Conv2d, ConvTranspose1d, ConvTranspose2d))

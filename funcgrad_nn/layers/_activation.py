"""Activation layers, configuration wrappers of the functional activations."""
from __future__ import annotations

from funcgrad.errors import FuncgradValueError

from .. import functional as F
from ._base import _Parameterless


class _Activation(_Parameterless):
    _fn = None
    _args = ()

    def extra_repr(self):
        return ", ".join(f"{a}={getattr(self, a)!r}" for a in self._args)

    def forward(self, params, x):
        self._check(params)
        return type(self)._fn(x, **{a: getattr(self, a) for a in self._args})


class ReLU(_Activation):
    """``max(x, 0)``."""
    _fn = staticmethod(F.relu)
    _max_pool_commutes = True   # Sequential may pool first (see _base._pool_first)

    def __init__(self, inplace=False):
        pass


class LeakyReLU(_Activation):
    """``x`` if ``x > 0`` else ``negative_slope * x``."""
    _fn = staticmethod(F.leaky_relu)
    _args = ("negative_slope",)

    def __init__(self, negative_slope=0.01, inplace=False):
        self.negative_slope = negative_slope


class ELU(_Activation):
    """``x`` if ``x > 0`` else ``alpha * (exp(x) - 1)``."""
    _fn = staticmethod(F.elu)
    _args = ("alpha",)

    def __init__(self, alpha=1.0, inplace=False):
        self.alpha = alpha


class GELU(_Activation):
    """``x * Phi(x)`` (``approximate='none'`` or ``'tanh'``)."""
    _fn = staticmethod(F.gelu)
    _args = ("approximate",)

    def __init__(self, approximate="none"):
        self.approximate = approximate


class SiLU(_Activation):
    """``x * sigmoid(x)``."""
    _fn = staticmethod(F.silu)

    def __init__(self, inplace=False):
        pass


class Sigmoid(_Activation):
    """``1 / (1 + exp(-x))``."""
    _fn = staticmethod(F.sigmoid)


class Tanh(_Activation):
    """Hyperbolic tangent."""
    _fn = staticmethod(F.tanh)


class Softmax(_Activation):
    """Softmax along ``dim`` (alias ``axis``; default -1, the last axis)."""
    _fn = staticmethod(F.softmax)
    _args = ("axis",)

    def __init__(self, dim=None, *, axis=None):
        self.axis = F._axis(axis, dim, -1, "Softmax")


class LogSoftmax(_Activation):
    """Log-softmax along ``dim`` (alias ``axis``; default -1)."""
    _fn = staticmethod(F.log_softmax)
    _args = ("axis",)

    def __init__(self, dim=None, *, axis=None):
        self.axis = F._axis(axis, dim, -1, "LogSoftmax")


class Hardtanh(_Activation):
    """``x`` clipped to ``[min_val, max_val]`` (NaN propagates)."""
    _fn = staticmethod(F.hardtanh)
    _args = ("min_val", "max_val")

    def __init__(self, min_val=-1.0, max_val=1.0, inplace=False):
        if min_val > max_val:
            raise FuncgradValueError(
                f"Hardtanh: min_val={min_val} must not be greater than max_val={max_val}")
        self.min_val, self.max_val = min_val, max_val


class ReLU6(_Activation):
    """``min(max(x, 0), 6)``."""
    _fn = staticmethod(F.relu6)

    def __init__(self, inplace=False):
        pass


class SELU(_Activation):
    """Scaled ELU with PyTorch's constants."""
    _fn = staticmethod(F.selu)

    def __init__(self, inplace=False):
        pass


class CELU(_Activation):
    """``x`` if ``x > 0`` else ``alpha * (exp(x / alpha) - 1)``."""
    _fn = staticmethod(F.celu)
    _args = ("alpha",)

    def __init__(self, alpha=1.0, inplace=False):
        self.alpha = alpha


class GLU(_Activation):
    """Gated linear unit ``a * sigmoid(b)`` of the two halves along ``dim`` (default -1)."""
    _fn = staticmethod(F.glu)
    _args = ("dim",)

    def __init__(self, dim=-1):
        self.dim = dim


class Softmin(_Activation):
    """Softmin along ``dim`` (alias ``axis``; default -1, the last axis)."""
    _fn = staticmethod(F.softmin)
    _args = ("axis",)

    def __init__(self, dim=None, *, axis=None):
        self.axis = F._axis(axis, dim, -1, "Softmin")


class Softsign(_Activation):
    """``x / (1 + |x|)``."""
    _fn = staticmethod(F.softsign)


class Tanhshrink(_Activation):
    """``x - tanh(x)``."""
    _fn = staticmethod(F.tanhshrink)


class Threshold(_Activation):
    """``x`` if ``x > threshold`` else ``value``."""
    _fn = staticmethod(F.threshold)
    _args = ("threshold", "value")

    def __init__(self, threshold, value, inplace=False):
        self.threshold, self.value = threshold, value


class Hardshrink(_Activation):
    """``x`` where ``|x| > lambd``, else 0."""
    _fn = staticmethod(F.hardshrink)
    _args = ("lambd",)

    def __init__(self, lambd=0.5):
        self.lambd = lambd


class Softshrink(_Activation):
    """``x`` shrunk towards 0 by ``lambd`` (0 inside ``[-lambd, lambd]``)."""
    _fn = staticmethod(F.softshrink)
    _args = ("lambd",)

    def __init__(self, lambd=0.5):
        if lambd < 0:
            raise FuncgradValueError(f"Softshrink: lambd must be non-negative, got {lambd}")
        self.lambd = lambd


class Hardsigmoid(_Activation):
    """``clip(x / 6 + 1/2, 0, 1)``."""
    _fn = staticmethod(F.hardsigmoid)

    def __init__(self, inplace=False):
        pass


class Hardswish(_Activation):
    """``x * hardsigmoid(x)``."""
    _fn = staticmethod(F.hardswish)

    def __init__(self, inplace=False):
        pass


class Mish(_Activation):
    """``x * tanh(softplus(x))``."""
    _fn = staticmethod(F.mish)

    def __init__(self, inplace=False):
        pass

"""Linear layers: ``Linear``, and ``Identity`` (which PyTorch keeps there too)."""
from __future__ import annotations

import math

import numpy as np

from .. import functional as F
from .. import init as _init
from . import _args
from ._base import _Leaf, _Parameterless, _shape, _split


def _default_bias(key, fan_in, shape, dtype):
    bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
    return _init.uniform(key, shape, -bound, bound, dtype)


class Linear(_Leaf):
    """``y = x @ weight.T + bias``; params ``{"weight": (out, in), "bias": (out,)}``,
    initialized as in PyTorch (``U(-1/sqrt(in), 1/sqrt(in))``)."""

    def __init__(self, in_features, out_features, bias=True, dtype=np.float32):
        self.in_features = _args.size("Linear", "in_features", in_features, 0)
        self.out_features = _args.size("Linear", "out_features", out_features, 0)
        self.bias, self.dtype = bool(bias), dtype

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias}"

    def _expected(self):
        e = {"weight": (self.out_features, self.in_features)}
        if self.bias:
            e["bias"] = (self.out_features,)
        return e

    def init(self, key):
        kw, kb = _split(key, 2)
        shape = (self.out_features, self.in_features)
        p = {"weight": _init.kaiming_uniform(kw, shape, a=math.sqrt(5), dtype=self.dtype)}
        if self.bias:
            p["bias"] = _default_bias(kb, self.in_features, (self.out_features,), self.dtype)
        return p

    def forward(self, params, x):
        self._check(params)
        if len(_shape(x)) < 1 or _shape(x)[-1] != self.in_features:
            self._bad_input(x, f"an input whose last axis has size {self.in_features}")
        return F.linear(x, params["weight"], params.get("bias"))


class Identity(_Parameterless):
    """Returns its input."""

    def __init__(self, *args, **kwargs):
        pass

    def forward(self, params, x):
        return x

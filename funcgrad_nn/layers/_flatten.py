"""``Flatten``: merges a range of axes into one."""
from __future__ import annotations

import funcgrad.numpy as fnp

from ._base import _Parameterless, _shape


class Flatten(_Parameterless):
    """Flatten axes ``start_dim..end_dim`` (default 1..-1) into one."""

    def __init__(self, start_dim=1, end_dim=-1):
        self.start_dim, self.end_dim = start_dim, end_dim

    def extra_repr(self):
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"

    def forward(self, params, x):
        self._check(params)
        shp = _shape(x)
        nd = len(shp)
        s, e = self.start_dim % max(nd, 1), self.end_dim % max(nd, 1)
        if nd == 0 or s > e:
            self._bad_input(x, f"an input with axes {self.start_dim}..{self.end_dim}")
        return fnp.reshape(x, shp[:s] + (-1,) + shp[e + 1:])

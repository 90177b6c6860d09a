"""``Dropout``: the random layer, active only in ``apply(..., train=True)``."""
from __future__ import annotations

from funcgrad.errors import FuncgradValueError

from .. import functional as F
from . import _args
from ._base import _Parameterless, _record


class Dropout(_Parameterless):
    """Dropout with probability ``p`` in training (``apply(..., train=True, key=k)``);
    the identity in evaluation."""

    def __init__(self, p=0.5):
        self.p = _args.probability("Dropout", "p", p)

    @property
    def _random(self):
        return self.p > 0

    def extra_repr(self):
        return f"p={self.p}"

    def forward(self, params, x):
        self._check(params)
        return x

    def apply(self, params, state, x, *, train=False, key=None):
        self._check(params)
        if train and self.p > 0 and key is None:
            raise FuncgradValueError(
                f"{self._short()}: train=True needs a random key: "
                "model.apply(params, state, x, train=True, key=funcgrad.random.key(...))")
        y = F.dropout(x, self.p, bool(train), key=key)
        _record(self, y)
        return y, state if state is not None else {}

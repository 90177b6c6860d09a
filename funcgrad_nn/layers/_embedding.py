"""``Embedding``: a lookup table of vectors."""
from __future__ import annotations

import numpy as np

from funcgrad.errors import FuncgradTypeError, FuncgradValueError

from .. import functional as F
from .. import init as _init
from . import _args
from ._base import _Leaf


class Embedding(_Leaf):
    """A lookup table ``weight (num_embeddings, embedding_dim)``, initialized ``N(0, 1)``
    with the ``padding_idx`` row zero (and never updated: it gets no gradient)."""

    def __init__(self, num_embeddings, embedding_dim, padding_idx=None, max_norm=None,
                 norm_type=2.0, dtype=np.float32):
        self.num_embeddings = _args.size("Embedding", "num_embeddings", num_embeddings)
        self.embedding_dim = _args.size("Embedding", "embedding_dim", embedding_dim)
        num_embeddings = self.num_embeddings
        if padding_idx is not None:
            padding_idx = _args.integer("Embedding", "padding_idx", padding_idx)
            if not -num_embeddings <= padding_idx < num_embeddings:
                raise FuncgradValueError(
                    f"Embedding: padding_idx={padding_idx} must be within num_embeddings="
                    f"{num_embeddings}")
            padding_idx = padding_idx % num_embeddings
        self.padding_idx, self.max_norm, self.norm_type = padding_idx, max_norm, norm_type
        self.dtype = dtype

    def extra_repr(self):
        s = f"{self.num_embeddings}, {self.embedding_dim}"
        if self.padding_idx is not None:
            s += f", padding_idx={self.padding_idx}"
        return s

    def _expected(self):
        return {"weight": (self.num_embeddings, self.embedding_dim)}

    def init(self, key):
        w = _init.normal(key, (self.num_embeddings, self.embedding_dim), dtype=self.dtype)
        if self.padding_idx is not None:
            w = np.array(w)
            w[self.padding_idx] = 0
        return {"weight": w}

    def forward(self, params, x):
        self._check(params)
        dt = np.dtype(getattr(x, "dtype", None) or np.asarray(x).dtype)
        if dt.kind not in "iu":
            raise FuncgradTypeError(
                f"{self._short()}: expected integer indices, got dtype {dt}")
        return F.embedding(x, params["weight"], self.padding_idx, self.max_norm,
                           self.norm_type)

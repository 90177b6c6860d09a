"""``MultiheadAttention``, PyTorch's layer and parameter layout."""
from __future__ import annotations

import math

import numpy as np

import funcgrad.numpy as fnp
from funcgrad.errors import FuncgradValueError

from .. import functional as F
from .. import init as _init
from . import _args
from ._base import _Leaf, _record, _shape, _split


class MultiheadAttention(_Leaf):
    """Multi-head attention (embed_dim, num_heads, dropout=0.0, bias=True,
    batch_first=False), PyTorch's parameters ``in_proj_weight (3E, E)``,
    ``in_proj_bias (3E,)``, ``out_proj.weight``, ``out_proj.bias``.

    ``mha(params, query, key, value, key_padding_mask=None, need_weights=True,
    attn_mask=None, average_attn_weights=True, is_causal=False) -> (output, weights)``
    with inputs ``(L, N, E)`` (``(N, L, E)`` if ``batch_first``; or unbatched
    ``(L, E)``). Masks as in PyTorch: boolean True = masked out, or additive floats.
    Pass query, key and value positionally (``key=`` in ``apply`` is the random key).
    """

    def __init__(self, embed_dim, num_heads, dropout=0.0, bias=True, batch_first=False,
                 dtype=np.float32):
        _args.size("MultiheadAttention", "embed_dim", embed_dim)
        _args.size("MultiheadAttention", "num_heads", num_heads)
        if embed_dim % num_heads:
            raise FuncgradValueError(
                f"MultiheadAttention: embed_dim={embed_dim} must be divisible by "
                f"num_heads={num_heads}")
        self.embed_dim, self.num_heads = int(embed_dim), int(num_heads)
        dropout = _args.probability("MultiheadAttention", "dropout", dropout)
        self.dropout, self.bias, self.batch_first, self.dtype = (dropout, bias,
                                                                 batch_first, dtype)

    @property
    def _random(self):
        return self.dropout > 0

    def extra_repr(self):
        return f"embed_dim={self.embed_dim}, num_heads={self.num_heads}"

    def _expected(self):
        E = self.embed_dim
        e = {"in_proj_weight": (3 * E, E), "out_proj": {"weight": (E, E)}}
        if self.bias:
            e["in_proj_bias"] = (3 * E,)
            e["out_proj"]["bias"] = (E,)
        return e

    def init(self, key):
        E = self.embed_dim
        k1, k2 = _split(key, 2)
        p = {"in_proj_weight": _init.xavier_uniform(k1, (3 * E, E), dtype=self.dtype),
             "out_proj": {"weight": _init.kaiming_uniform(k2, (E, E), a=math.sqrt(5),
                                                          dtype=self.dtype)}}
        if self.bias:
            p["in_proj_bias"] = np.zeros(3 * E, self.dtype)
            p["out_proj"]["bias"] = np.zeros(E, self.dtype)
        return p

    def forward(self, params, query, key, value, key_padding_mask=None, need_weights=True,
                attn_mask=None, average_attn_weights=True, is_causal=False):
        return self._run(params, query, key, value, key_padding_mask, need_weights,
                         attn_mask, average_attn_weights, is_causal, False, None)

    def apply(self, params, state, query, key_, value, key_padding_mask=None,
              need_weights=True, attn_mask=None, average_attn_weights=True,
              is_causal=False, *, train=False, key=None):
        y = self._run(params, query, key_, value, key_padding_mask, need_weights, attn_mask,
                      average_attn_weights, is_causal, train, key)
        _record(self, y)
        return y, state if state is not None else {}

    def _run(self, params, q, k, v, key_padding_mask, need_weights, attn_mask,
             average_attn_weights, is_causal, train, rng):
        self._check(params)
        E, H = self.embed_dim, self.num_heads
        for name, t in (("query", q), ("key", k), ("value", v)):
            if len(_shape(t)) not in (2, 3) or _shape(t)[-1] != E:
                self._bad_input(t, f"a 3-D or 2-D {name} whose last axis is {E}")
        unbatched = len(_shape(q)) == 2
        if unbatched:
            q, k, v = q[:, None], k[:, None], v[:, None]
            if key_padding_mask is not None:
                key_padding_mask = key_padding_mask[None]
        elif self.batch_first:
            q, k, v = (fnp.swapaxes(t, 0, 1) for t in (q, k, v))
        L, N = _shape(q)[:2]
        S = _shape(k)[0]
        hd = E // H
        w, b = params["in_proj_weight"], params.get("in_proj_bias")
        bq = bk = bv = None
        if b is not None:
            bq, bk, bv = b[:E], b[E:2 * E], b[2 * E:]
        qp = F.linear(q, w[:E], bq)
        kp = F.linear(k, w[E:2 * E], bk)
        vp = F.linear(v, w[2 * E:], bv)

        def heads(t, n):       # (len, N, E) -> (N, H, len, hd)
            return fnp.transpose(fnp.reshape(t, (n, N, H, hd)), (1, 2, 0, 3))

        qh, kh, vh = heads(qp, L), heads(kp, S), heads(vp, S)
        scores = fnp.matmul(qh * (1.0 / math.sqrt(hd)), fnp.swapaxes(kh, -1, -2))
        neg = -math.inf
        if is_causal and attn_mask is None:
            attn_mask = (fnp.expand_dims(F._arange_like(scores, S), 0)   # j > i, in the
                         > fnp.expand_dims(F._arange_like(scores, L), 1))  # inputs' module
        if attn_mask is not None:
            m = attn_mask
            if len(_shape(m)) == 3:          # (N * H, L, S)
                m = fnp.reshape(m, (N, H, L, S))
            if np.dtype(m.dtype) == np.bool_:
                scores = fnp.where(m, neg, scores)
            else:
                scores = scores + m
        if key_padding_mask is not None:
            kpm = key_padding_mask[:, None, None, :]
            if np.dtype(kpm.dtype) == np.bool_:
                scores = fnp.where(kpm, neg, scores)
            else:
                scores = scores + kpm
        attn = F.softmax(scores, axis=-1)
        if train and self.dropout > 0:
            if rng is None:
                raise FuncgradValueError(
                    f"{self._short()}: train=True with dropout needs a random key")
            attn = F.dropout(attn, self.dropout, True, key=rng)
        out = fnp.matmul(attn, vh)                                  # (N, H, L, hd)
        out = fnp.reshape(fnp.transpose(out, (2, 0, 1, 3)), (L, N, E))
        op = params["out_proj"]
        out = F.linear(out, op["weight"], op.get("bias"))
        if unbatched:
            out = out[:, 0]
        elif self.batch_first:
            out = fnp.swapaxes(out, 0, 1)
        weights = None
        if need_weights:
            weights = fnp.mean(attn, axis=1) if average_attn_weights else attn
            if unbatched:
                weights = weights[0]
        return out, weights

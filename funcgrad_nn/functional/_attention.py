"""Scaled dot-product attention."""
from __future__ import annotations

import math

import numpy as np

import funcgrad.numpy as fnp

from ._activation import softmax
from ._dropout import dropout
from ._util import _arange_like, _arr


def scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p=0.0,
                                 is_causal=False, scale=None, *, dropout_key=None):
    """``softmax(q @ k^T * scale + mask) @ v`` over the last two axes.

    ``attn_mask``: boolean (True = may attend) or additive float, broadcast to
    ``(..., L, S)``. ``is_causal`` masks out future positions. ``scale`` defaults to
    ``1 / sqrt(E)``. ``dropout_p > 0`` drops attention weights with ``dropout_key``
    (the keyword is not ``key``, which is the keys array, as in PyTorch).
    """
    q, k, v = _arr(query), _arr(key), _arr(value)
    L, S, E = q.shape[-2], k.shape[-2], q.shape[-1]
    scale = 1.0 / math.sqrt(E) if scale is None else float(scale)
    scores = fnp.matmul(q * scale, fnp.swapaxes(k, -1, -2))
    if is_causal:
        causal = (fnp.expand_dims(_arange_like(scores, L), 1)      # j <= i, in the
                  >= fnp.expand_dims(_arange_like(scores, S), 0))  # inputs' module
        scores = fnp.where(causal, scores, -math.inf)
    if attn_mask is not None:
        m = _arr(attn_mask)
        if np.dtype(m.dtype) == np.bool_:
            scores = fnp.where(m, scores, -math.inf)
        else:
            scores = scores + m
    w = softmax(scores, axis=-1)
    if dropout_p > 0.0:
        w = dropout(w, dropout_p, True, key=dropout_key)
    return fnp.matmul(w, v)

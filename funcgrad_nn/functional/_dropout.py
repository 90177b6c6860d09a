"""Dropout with an explicit ``funcgrad.random`` key."""
from __future__ import annotations

import funcgrad.numpy as fnp
import funcgrad.random as fr
from funcgrad.errors import FuncgradValueError

from ._util import _arr


def dropout(input, p=0.5, training=True, *, key=None, train=None):
    """Zero each element with probability ``p`` and scale the rest by ``1 / (1 - p)``.

    Args:
      input: any array.
      p: the drop probability, in ``[0, 1]``.
      training: apply dropout (PyTorch's flag); ``train=`` is accepted as an alias.
        When False (or ``p == 0``) the input is returned unchanged and no key is needed.
      key: a ``funcgrad.random`` key; the same key gives the same mask. The mask is
        drawn in the key's array module, so for a device (CuPy) input move the key to
        the device too (a NumPy key there raises a TypeError on mixing arrays).

    Raises FuncgradValueError if ``training`` and ``p > 0`` but no key is given.

    Example:
        >>> import numpy as np, funcgrad.random as fr
        >>> y = dropout(np.ones(1000), 0.25, key=fr.key(0))
        >>> sorted(set(y.tolist()))
        [0.0, 1.3333333333333333]
    """
    if train is not None:
        training = train
    x = _arr(input)
    p = float(p)
    if not 0.0 <= p <= 1.0:
        raise FuncgradValueError(f"dropout: p must be in [0, 1], got {p}")
    if not training or p == 0.0:
        return x
    if key is None:
        raise FuncgradValueError(
            "dropout: training=True needs a random key, e.g. key=funcgrad.random.key(0) "
            "(split it with funcgrad.random.split for each call); pass training=False for "
            "evaluation")
    if p == 1.0:
        return x * 0.0
    keep = fr.bernoulli(key, 1.0 - p, tuple(x.shape))
    return fnp.where(keep, x / (1.0 - p), 0.0)


def _feature_dropout(op, nd, input, p, training, key):
    """Zero whole channels: one draw per ``(N, C)`` (or ``(C,)`` unbatched) entry."""
    x = _arr(input)
    p = float(p)
    if not 0.0 <= p <= 1.0:
        raise FuncgradValueError(f"{op}: p must be in [0, 1], got {p}")
    if x.ndim not in (nd + 1, nd + 2):
        raise FuncgradValueError(
            f"{op}: expected a {nd + 2}-D (N, C, ...) or {nd + 1}-D (C, ...) input, got "
            f"shape {tuple(x.shape)}")
    if not training or p == 0.0:
        return x
    if key is None:
        raise FuncgradValueError(
            f"{op}: training=True needs a random key, e.g. key=funcgrad.random.key(0); "
            f"pass training=False for evaluation")
    if p == 1.0:
        return x * 0.0
    lead = x.ndim - nd
    keep = fr.bernoulli(key, 1.0 - p, tuple(x.shape[:lead]) + (1,) * nd)
    return fnp.where(keep, x / (1.0 - p), 0.0)


def dropout1d(input, p=0.5, training=True, inplace=False, *, key=None):
    """Channel dropout of ``(N, C, L)`` (or ``(C, L)``) inputs: each channel is zeroed
    with probability ``p`` (from ``key``), the rest scaled by ``1 / (1 - p)``."""
    return _feature_dropout("dropout1d", 1, input, p, training, key)


def dropout2d(input, p=0.5, training=True, inplace=False, *, key=None):
    """Channel dropout of ``(N, C, H, W)`` (or ``(C, H, W)``) inputs; as
    :func:`dropout1d`."""
    return _feature_dropout("dropout2d", 2, input, p, training, key)


def dropout3d(input, p=0.5, training=True, inplace=False, *, key=None):
    """Channel dropout of ``(N, C, D, H, W)`` (or ``(C, D, H, W)``) inputs; as
    :func:`dropout1d`."""
    return _feature_dropout("dropout3d", 3, input, p, training, key)

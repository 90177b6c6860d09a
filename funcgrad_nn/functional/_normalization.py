"""Normalization: batch, layer and group normalization."""
from __future__ import annotations

import numbers

import funcgrad
import funcgrad.numpy as fnp
from funcgrad.errors import FuncgradValueError

from ._util import _arr, _bcast_channel


def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False,
               momentum=0.1, eps=1e-5):
    """Batch normalization over every axis but the channel axis 1.

    Unlike PyTorch (which updates ``running_mean``/``running_var`` in place), this returns
    ``(output, new_running_mean, new_running_var)``:

    * ``training=True``: normalizes with the batch statistics; the new running
      statistics are ``(1 - momentum) * running + momentum * batch`` (the batch variance
      unbiased, as in PyTorch), computed without derivative. Running statistics may be
      None (then None is returned for them).
    * ``training=False``: normalizes with the running statistics, returned unchanged.

    Args:
      input: ``(N, C, *spatial)`` (or ``(N, C)``).
      running_mean, running_var: ``(C,)`` or None.
      weight, bias: the affine ``(C,)`` parameters, or None.
      momentum: the weight of the batch statistics in the update: a float, or a 0-d
        array (the BatchNorm layers pass ``1 / num_batches_tracked`` for PyTorch's
        ``momentum=None``); None means 0.1.

    Example:
        >>> import numpy as np
        >>> y, m, v = batch_norm(np.array([[1.0], [3.0]]), np.zeros(1), np.ones(1),
        ...                      training=True)
        >>> y.ravel(), m, v
        (array([-0.99999, 0.99999]), array([0.2]), array([1.1]))
    """
    x = _arr(input)
    if x.ndim < 2:
        raise FuncgradValueError(
            f"batch_norm: expected an input of shape (N, C, ...), got {tuple(x.shape)}")
    c = x.shape[1]
    for name, v in (("running_mean", running_mean), ("running_var", running_var),
                    ("weight", weight), ("bias", bias)):
        if v is not None and tuple(v.shape) != (c,):
            raise FuncgradValueError(
                f"batch_norm: {name} of shape {tuple(v.shape)} does not match the {c} "
                f"channels of the input of shape {tuple(x.shape)}")
    axes = (0,) + tuple(range(2, x.ndim))
    if training:
        n = x.size // c
        if n <= 1:
            raise FuncgradValueError(
                f"batch_norm: expected more than 1 value per channel when training, got "
                f"input of shape {tuple(x.shape)}")
        mean = fnp.mean(x, axis=axes)
        var = fnp.mean(fnp.square(x - _bcast_channel(mean, x.ndim)), axis=axes)
        mom = 0.1 if momentum is None else momentum
        if isinstance(mom, numbers.Real):
            mom = float(mom)
        new_mean, new_var = running_mean, running_var
        if running_mean is not None:
            new_mean = (1 - mom) * running_mean + mom * funcgrad.stop_gradient(mean)
        if running_var is not None:
            new_var = (1 - mom) * running_var + mom * funcgrad.stop_gradient(var) * (n / (n - 1))
    else:
        if running_mean is None or running_var is None:
            raise FuncgradValueError(
                "batch_norm: training=False needs running_mean and running_var")
        mean, var = running_mean, running_var
        new_mean, new_var = running_mean, running_var
    y = (x - _bcast_channel(mean, x.ndim)) / fnp.sqrt(_bcast_channel(var, x.ndim) + eps)
    if weight is not None:
        y = y * _bcast_channel(weight, x.ndim)
    if bias is not None:
        y = y + _bcast_channel(bias, x.ndim)
    return y, new_mean, new_var


def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5):
    """Normalize over the last ``len(normalized_shape)`` axes (biased variance), then
    scale by ``weight`` and shift by ``bias`` (both of shape ``normalized_shape``).

    Example:
        >>> import numpy as np
        >>> layer_norm(np.array([[1.0, 3.0]]), (2,))
        array([[-0.99999,  0.99999]])
    """
    x = _arr(input)
    if isinstance(normalized_shape, numbers.Integral):
        normalized_shape = (int(normalized_shape),)
    normalized_shape = tuple(normalized_shape)
    k = len(normalized_shape)
    if tuple(x.shape[x.ndim - k:]) != normalized_shape or k > x.ndim:
        raise FuncgradValueError(
            f"layer_norm: normalized_shape {normalized_shape} does not match the trailing "
            f"axes of the input of shape {tuple(x.shape)}")
    axes = tuple(range(x.ndim - k, x.ndim))
    mean = fnp.mean(x, axis=axes, keepdims=True)
    xc = x - mean
    var = fnp.mean(fnp.square(xc), axis=axes, keepdims=True)
    y = xc / fnp.sqrt(var + eps)
    if weight is not None:
        y = y * weight
    if bias is not None:
        y = y + bias
    return y


def group_norm(input, num_groups, weight=None, bias=None, eps=1e-5):
    """Normalize ``(N, C, *spatial)`` inputs over groups of ``C // num_groups`` channels
    (and all spatial axes), then apply the per-channel ``weight``/``bias``.

    Raises FuncgradValueError when ``C`` is not divisible by ``num_groups``.
    """
    x = _arr(input)
    if x.ndim < 2 or x.shape[1] % num_groups:
        raise FuncgradValueError(
            f"group_norm: input of shape {tuple(x.shape)} must be (N, C, ...) with C "
            f"divisible by num_groups={num_groups}")
    n, c = x.shape[0], x.shape[1]
    g = fnp.reshape(x, (n, num_groups, -1))
    mean = fnp.mean(g, axis=2, keepdims=True)
    gc = g - mean
    var = fnp.mean(fnp.square(gc), axis=2, keepdims=True)
    y = fnp.reshape(gc / fnp.sqrt(var + eps), x.shape)
    if weight is not None:
        y = y * _bcast_channel(weight, x.ndim)
    if bias is not None:
        y = y + _bcast_channel(bias, x.ndim)
    return y

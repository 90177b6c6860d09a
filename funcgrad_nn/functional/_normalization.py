"""Normalization: batch, layer, group and instance normalization, local response
normalization, RMS normalization and ``normalize`` (unit p-norm vectors)."""
from __future__ import annotations

import numbers

import numpy as np

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
    if x.size == 0 and (x.ndim < 2 or training):
        # PyTorch: an empty batch gives an empty output and leaves the running
        # statistics as they are (even a 1-D ``(0,)`` input, which has no channel axis)
        return x * 1, running_mean, running_var
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
    # the group size spelled out: ``-1`` is ambiguous in a reshape of an empty batch
    g = fnp.reshape(x, (n, num_groups, x.size // max(n * num_groups, 1)))
    mean = fnp.mean(g, axis=2, keepdims=True)
    gc = g - mean
    var = fnp.mean(fnp.square(gc), axis=2, keepdims=True)
    y = fnp.reshape(gc / fnp.sqrt(var + eps), x.shape)
    if weight is not None:
        y = y * _bcast_channel(weight, x.ndim)
    if bias is not None:
        y = y + _bcast_channel(bias, x.ndim)
    return y


def instance_norm(input, running_mean=None, running_var=None, weight=None, bias=None,
                  use_input_stats=True, momentum=0.1, eps=1e-5):
    """Normalize each channel of each sample of ``(N, C, *spatial)`` over its spatial
    axes (biased variance), then apply the per-channel ``weight``/``bias``.

    Like :func:`batch_norm` (and unlike PyTorch, which updates in place) this returns
    ``(output, new_running_mean, new_running_var)``:

    * ``use_input_stats=True``: normalizes with each instance's statistics; given running
      statistics become ``(1 - momentum) * running + momentum * batch``, where ``batch``
      averages the instances' means and unbiased variances over ``N`` (PyTorch's update),
      computed without derivative; None stays None.
    * ``use_input_stats=False``: normalizes with ``running_mean``/``running_var``
      (required), returned unchanged.

    Raises FuncgradValueError for an input of fewer than 3 axes, a ``(C,)`` argument of
    another size, missing running statistics, or one spatial element with input stats.
    """
    x = _arr(input)
    if x.ndim < 3:
        raise FuncgradValueError(
            f"instance_norm: expected an input of shape (N, C, *spatial), got {tuple(x.shape)}")
    c = x.shape[1]
    for name, v in (("running_mean", running_mean), ("running_var", running_var),
                    ("weight", weight), ("bias", bias)):
        if v is not None and tuple(v.shape) != (c,):
            raise FuncgradValueError(
                f"instance_norm: {name} of shape {tuple(v.shape)} does not match the {c} "
                f"channels of the input of shape {tuple(x.shape)}")
    axes = tuple(range(2, x.ndim))
    new_mean, new_var = running_mean, running_var
    if use_input_stats:
        n = x.size // (x.shape[0] * c) if x.size else 0
        if n <= 1:
            raise FuncgradValueError(
                f"instance_norm: expected more than 1 spatial element when using input "
                f"statistics, got input of shape {tuple(x.shape)}")
        mean = fnp.mean(x, axis=axes, keepdims=True)
        xc = x - mean
        var = fnp.mean(fnp.square(xc), axis=axes, keepdims=True)
        y = xc / fnp.sqrt(var + eps)
        mom = 0.0 if momentum is None else momentum   # None keeps them, as torch's InstanceNorm
        if isinstance(mom, numbers.Real):
            mom = float(mom)
        if running_mean is not None:
            bm = funcgrad.stop_gradient(fnp.mean(fnp.reshape(mean, x.shape[:2]), axis=0))
            new_mean = (1 - mom) * running_mean + mom * bm
        if running_var is not None:
            bv = funcgrad.stop_gradient(fnp.mean(fnp.reshape(var, x.shape[:2]), axis=0))
            new_var = (1 - mom) * running_var + mom * bv * (n / (n - 1))
    else:
        if running_mean is None or running_var is None:
            raise FuncgradValueError(
                "instance_norm: use_input_stats=False needs running_mean and running_var")
        y = ((x - _bcast_channel(running_mean, x.ndim))
             / fnp.sqrt(_bcast_channel(running_var, x.ndim) + eps))
    if weight is not None:
        y = y * _bcast_channel(weight, x.ndim)
    if bias is not None:
        y = y + _bcast_channel(bias, x.ndim)
    return y, new_mean, new_var


def local_response_norm(input, size, alpha=1e-4, beta=0.75, k=1.0):
    """Local response normalization across channels (PyTorch's formula):
    ``x / (k + alpha * mean(x^2 over size neighbouring channels)) ** beta``, the window
    ``[c - size // 2, c + (size - 1) // 2]`` zero-padded at the ends and always divided
    by ``size``.

    ``input``: ``(N, C, *)`` with at least 3 axes (FuncgradValueError otherwise, and for
    ``size < 1``).
    """
    x = _arr(input)
    if x.ndim < 3:
        raise FuncgradValueError(
            f"local_response_norm: expected an input of 3 or more dimensions (N, C, *), got "
            f"{tuple(x.shape)}")
    size = int(size)
    if size < 1:
        raise FuncgradValueError(f"local_response_norm: size must be positive, got {size}")
    c = x.shape[1]
    sq = x * x
    lo, hi = size // 2, (size - 1) // 2
    parts = []
    zshape = list(sq.shape)
    if lo:
        zshape[1] = lo
        parts.append(fnp.zeros_like(sq, shape=tuple(zshape)))
    parts.append(sq)
    if hi:
        zshape[1] = hi
        parts.append(fnp.zeros_like(sq, shape=tuple(zshape)))
    padded = fnp.concatenate(parts, axis=1) if len(parts) > 1 else sq
    # a window sum as `size` shifted slices: size is small (a handful of channels)
    s = padded[:, 0:c]
    for i in range(1, size):
        s = s + padded[:, i:i + c]
    div = (s * (float(alpha) / size) + float(k)) ** float(beta)
    return x / div


def normalize(input, p=2.0, dim=1, eps=1e-12, out=None):
    """``x / max(||x||_p, eps)`` along ``dim`` (PyTorch's default: axis 1).

    ``p > 0`` or ``inf``. A zero vector gives zeros with a finite gradient (the norm's
    derivative is taken as 0 at 0, as in PyTorch). ``out=`` raises FuncgradValueError
    (arrays are values), as do ``p <= 0``.
    """
    if out is not None:
        raise FuncgradValueError("normalize: out= is not supported (arrays are values)")
    x = _arr(input)
    p = float(p)
    if not p > 0:
        raise FuncgradValueError(f"normalize: p must be positive, got {p}")
    if p == float("inf"):
        n = fnp.max(fnp.abs(x), axis=dim, keepdims=True)
    else:
        s = fnp.sum(x * x if p == 2 else fnp.abs(x) ** p, axis=dim, keepdims=True)
        pos = s > 0
        n = fnp.where(pos, fnp.where(pos, s, 1.0) ** (1.0 / p), 0.0)
    return x / fnp.maximum(n, float(eps))


def rms_norm(input, normalized_shape, weight=None, eps=None):
    """Root-mean-square normalization over the last ``len(normalized_shape)`` axes:
    ``x / sqrt(mean(x^2) + eps) * weight``. ``eps=None`` is the input dtype's machine
    epsilon (PyTorch's default).

    Raises FuncgradValueError when ``normalized_shape`` does not match the trailing axes.
    """
    x = _arr(input)
    if isinstance(normalized_shape, numbers.Integral):
        normalized_shape = (int(normalized_shape),)
    normalized_shape = tuple(normalized_shape)
    k = len(normalized_shape)
    if k > x.ndim or tuple(x.shape[x.ndim - k:]) != normalized_shape:
        raise FuncgradValueError(
            f"rms_norm: normalized_shape {normalized_shape} does not match the trailing "
            f"axes of the input of shape {tuple(x.shape)}")
    if eps is None:
        eps = float(np.finfo(x.dtype if x.dtype.kind == "f" else np.float64).eps)
    axes = tuple(range(x.ndim - k, x.ndim))
    y = x / fnp.sqrt(fnp.mean(fnp.square(x), axis=axes, keepdims=True) + eps)
    return y if weight is None else y * weight

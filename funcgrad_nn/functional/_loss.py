"""Losses (regression, classification, divergence) and ``cosine_similarity``."""
from __future__ import annotations

import numpy as np

import funcgrad
import funcgrad.numpy as fnp
from funcgrad.errors import FuncgradValueError

from ._activation import log_softmax, logsigmoid
from ._util import _arange_like, _arr, _axis, _bcast_channel, _is_concrete, _reduce


def mse_loss(input, target, reduction="mean"):
    """Mean squared error ``(input - target) ** 2``, reduced."""
    d = _arr(input) - _arr(target)
    return _reduce(d * d, reduction, "mse_loss")


def l1_loss(input, target, reduction="mean"):
    """Mean absolute error ``|input - target|``, reduced (derivative 0 at equality)."""
    return _reduce(fnp.abs(_arr(input) - _arr(target)), reduction, "l1_loss")


def smooth_l1_loss(input, target, reduction="mean", beta=1.0):
    """``0.5 d^2 / beta`` where ``|d| < beta``, else ``|d| - 0.5 beta`` (``beta=0``: L1)."""
    d = fnp.abs(_arr(input) - _arr(target))
    if beta == 0:
        return _reduce(d, reduction, "smooth_l1_loss")
    loss = fnp.where(d < beta, (0.5 / beta) * d * d, d - 0.5 * beta)
    return _reduce(loss, reduction, "smooth_l1_loss")


def huber_loss(input, target, reduction="mean", delta=1.0):
    """``0.5 d^2`` where ``|d| < delta``, else ``delta (|d| - 0.5 delta)``."""
    d = fnp.abs(_arr(input) - _arr(target))
    loss = fnp.where(d < delta, 0.5 * d * d, delta * (d - 0.5 * delta))
    return _reduce(loss, reduction, "huber_loss")


def _class_targets(op, logp, target, cax, ignore_index):
    """Boolean mask (input's shape) of each element's target class; validates targets."""
    c = logp.shape[cax]
    t = _arr(target)
    expected = tuple(logp.shape[:cax]) + tuple(logp.shape[cax + 1:])
    if tuple(t.shape) != expected:
        raise FuncgradValueError(
            f"{op}: target of shape {tuple(t.shape)} does not match input of shape "
            f"{tuple(logp.shape)}; class-index targets have the input's shape without the "
            f"class axis, i.e. {expected}")
    if _is_concrete(t) and t.size:
        # Computed in t's module; only one boolean is read back (and the offending values
        # on the error path), so device targets are not copied to the host. Traced
        # targets (under jit, grad of the targets...) are not validated.
        bad = fnp.logical_and(t != ignore_index, fnp.logical_or(t < 0, t >= c))
        if bool(fnp.any(bad)):
            vals = funcgrad.device_put(t[bad], "cpu")
            raise FuncgradValueError(
                f"{op}: target values must be class indices in [0, {c}) or ignore_index="
                f"{ignore_index}; got {np.ravel(vals)[:5].tolist()}")
    classes = fnp.reshape(_arange_like(t, c, t.dtype),
                          tuple(c if i == cax else 1 for i in range(logp.ndim)))
    valid = t != ignore_index
    return (fnp.expand_dims(t, cax) == classes) & fnp.expand_dims(valid, cax), valid


def _nll(op, logp, target, weight, ignore_index, reduction, label_smoothing=0.0):
    cax = 1 if logp.ndim >= 2 else 0
    c = logp.shape[cax]
    if weight is not None:
        weight = _arr(weight)
        if tuple(weight.shape) != (c,):
            raise FuncgradValueError(
                f"{op}: weight of shape {tuple(weight.shape)} must be ({c},), one per class")
    mask, valid = _class_targets(op, logp, target, cax, ignore_index)
    picked = fnp.sum(fnp.where(mask, logp, 0.0), axis=cax)
    if weight is not None:
        wb = _bcast_channel(weight, logp.ndim, cax)
        wt = fnp.sum(fnp.where(mask, wb, 0.0), axis=cax)      # weight of each target
    else:
        wt = fnp.astype(valid, logp.dtype)
    loss = -picked * wt
    if label_smoothing:
        smooth = -fnp.sum(logp * wb if weight is not None else logp, axis=cax)
        smooth = fnp.where(valid, smooth, 0.0)
        loss = (1.0 - label_smoothing) * loss + (label_smoothing / c) * smooth
    if reduction == "mean":
        return fnp.sum(loss) / fnp.sum(wt)
    return _reduce(loss, reduction, op)


def _check_reduction(op, reduction):
    if reduction not in ("mean", "sum", "none"):
        raise FuncgradValueError(
            f"{op}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def nll_loss(input, target, weight=None, ignore_index=-100, reduction="mean"):
    """Negative log-likelihood of log-probabilities ``input`` ``(N, C, ...)`` or ``(C,)``
    at integer ``target`` ``(N, ...)``.

    ``weight`` ``(C,)`` rescales each class; ``reduction='mean'`` divides by the summed
    weights of the non-ignored targets (PyTorch's rule); targets equal to
    ``ignore_index`` contribute nothing.
    """
    _check_reduction("nll_loss", reduction)
    return _nll("nll_loss", _arr(input), target, weight, ignore_index, reduction)


def cross_entropy(input, target, weight=None, ignore_index=-100, reduction="mean",
                  label_smoothing=0.0):
    """Cross-entropy of logits ``input`` ``(N, C, ...)`` or ``(C,)`` (the class axis is 1,
    or 0 when unbatched) against ``target``:

    * class indices (integers, shape ``(N, ...)``): ``weight``, ``ignore_index`` and
      ``label_smoothing`` as in PyTorch; ``reduction='mean'`` divides by the summed
      weights of the non-ignored targets;
    * class probabilities (floats, the input's shape): ``label_smoothing`` mixes them
      with the uniform distribution; ``'mean'`` averages over the batch elements.

    Stable for extreme logits (log-sum-exp with the max subtracted; gradients stay
    finite). Raises FuncgradValueError for mismatched shapes or out-of-range targets.
    Targets are checked when concrete: on a device (CuPy) array the check runs there and
    reads back one boolean; traced targets (under ``jit``) are not checked.

    Example:
        >>> import numpy as np
        >>> x = np.array([[1e4, 0.0], [0.0, 0.0]])
        >>> cross_entropy(x, np.array([1, 0]), reduction="none")
        array([1.00000000e+04, 6.93147181e-01])
    """
    _check_reduction("cross_entropy", reduction)
    x = _arr(input)
    if x.ndim < 1:
        raise FuncgradValueError("cross_entropy: input must have a class axis")
    ls = float(label_smoothing)
    if not 0.0 <= ls <= 1.0:
        raise FuncgradValueError(f"cross_entropy: label_smoothing must be in [0, 1], got {ls}")
    cax = 1 if x.ndim >= 2 else 0
    logp = log_softmax(x, axis=cax)
    t = _arr(target)
    if np.dtype(t.dtype).kind in "iu":
        return _nll("cross_entropy", logp, t, weight, ignore_index, reduction, ls)
    if tuple(t.shape) != tuple(x.shape):
        raise FuncgradValueError(
            f"cross_entropy: probability targets must have the input's shape "
            f"{tuple(x.shape)}, got {tuple(t.shape)} (integer targets are class indices)")
    c = x.shape[cax]
    if ls:
        t = t * (1.0 - ls) + ls / c
    prod = logp * t
    if weight is not None:
        weight = _arr(weight)
        if tuple(weight.shape) != (c,):
            raise FuncgradValueError(
                f"cross_entropy: weight of shape {tuple(weight.shape)} must be ({c},)")
        prod = prod * _bcast_channel(weight, x.ndim, cax)
    # where(t == 0) keeps -inf logits of zero-probability classes from giving NaN
    loss = -fnp.sum(fnp.where(t == 0, 0.0, prod), axis=cax)
    return _reduce(loss, reduction, "cross_entropy")


def binary_cross_entropy(input, target, weight=None, reduction="mean"):
    """``-(t log p + (1 - t) log(1 - p))`` of probabilities ``p`` in ``[0, 1]``, with the
    logarithms clamped at -100 (as in PyTorch), optionally weighted.

    Prefer :func:`binary_cross_entropy_with_logits` for numerical stability.
    Raises FuncgradValueError for (concrete) probabilities outside ``[0, 1]``.
    """
    p, t = _arr(input), _arr(target)
    if tuple(p.shape) != tuple(t.shape):
        raise FuncgradValueError(
            f"binary_cross_entropy: target of shape {tuple(t.shape)} must have the input's "
            f"shape {tuple(p.shape)}")
    if _is_concrete(p) and p.size and (np.min(p) < 0 or np.max(p) > 1):
        raise FuncgradValueError(
            "binary_cross_entropy: input probabilities must be in [0, 1] (pass logits to "
            "binary_cross_entropy_with_logits instead)")

    def clamped_log(z):
        ok = z > 0
        return fnp.where(ok, fnp.maximum(fnp.log(fnp.where(ok, z, 1.0)), -100.0), -100.0)

    loss = -(t * clamped_log(p) + (1.0 - t) * clamped_log(1.0 - p))
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction, "binary_cross_entropy")


def binary_cross_entropy_with_logits(input, target, weight=None, reduction="mean",
                                     pos_weight=None):
    """Sigmoid + binary cross-entropy in one stable expression:
    ``(1 - t) x + (1 + (pos_weight - 1) t) softplus(-x)``.

    ``weight`` rescales each element; ``pos_weight`` (broadcast along the last axis, as
    in PyTorch) rescales the positive term.

    Example:
        >>> import numpy as np
        >>> binary_cross_entropy_with_logits(np.array([-800.0, 800.0]), np.array([1.0, 1.0]),
        ...                                  reduction="none")
        array([800.,   0.])
    """
    x, t = _arr(input), _arr(target)
    if tuple(x.shape) != tuple(t.shape):
        raise FuncgradValueError(
            f"binary_cross_entropy_with_logits: target of shape {tuple(t.shape)} must have "
            f"the input's shape {tuple(x.shape)}")
    sp_neg = -logsigmoid(x)            # softplus(-x) = -log(sigmoid(x))
    if pos_weight is not None:
        loss = (1.0 - t) * x + (1.0 + (pos_weight - 1.0) * t) * sp_neg
    else:
        loss = (1.0 - t) * x + sp_neg
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction, "binary_cross_entropy_with_logits")


def kl_div(input, target, reduction="mean", log_target=False):
    """Kullback-Leibler divergence pointwise ``target * (log target - input)`` where
    ``input`` holds log-probabilities (PyTorch's convention; ``log_target=True``: the
    target is given as log-probabilities too). Zero targets contribute 0.

    ``reduction``: ``'mean'`` (over all elements, PyTorch's default), ``'batchmean'``
    (sum / batch size: the true KL divergence), ``'sum'``, ``'none'``.
    """
    x, t = _arr(input), _arr(target)
    if log_target:
        loss = fnp.exp(t) * (t - x)
    else:
        pos = t > 0
        loss = fnp.where(pos, t * (fnp.log(fnp.where(pos, t, 1.0)) - x), 0.0 * x)
    if reduction == "batchmean":
        return fnp.sum(loss) / (x.shape[0] if x.ndim else 1)
    return _reduce(loss, reduction, "kl_div")


def cosine_similarity(x1, x2, axis=None, eps=1e-8, *, dim=None):
    """``sum(x1 * x2) / (max(|x1|, eps) * max(|x2|, eps))`` along ``axis`` (PyTorch's
    ``dim``, default 1), broadcasting ``x1`` and ``x2``.

    Values equal PyTorch's. Where a norm is below ``eps`` the gradient is that of the
    clamped function (PyTorch's also differentiates the unclamped norm there); a zero
    vector gets a finite gradient.
    """
    a, b = _arr(x1), _arr(x2)
    axis = _axis(axis, dim, 1, "cosine_similarity")
    a, b = fnp.broadcast_arrays(a, b)
    return fnp.sum((a / _clamped_norm(a, axis, eps)) * (b / _clamped_norm(b, axis, eps)),
                   axis=axis)


def _clamped_norm(a, axis, eps):
    s = fnp.sum(a * a, axis=axis, keepdims=True)
    pos = s > 0      # sqrt's derivative is infinite at 0: keep it out of the gradient
    return fnp.maximum(fnp.where(pos, fnp.sqrt(fnp.where(pos, s, 1.0)), 0.0), eps)

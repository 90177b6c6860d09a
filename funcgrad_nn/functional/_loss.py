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


# --------------------------------------------------------------------------------------
# Margin and embedding losses, Poisson and Gaussian negative log-likelihoods


def _legacy_reduction(size_average, reduce, reduction):
    """PyTorch's deprecated ``size_average``/``reduce`` pair mapped to ``reduction`` (its
    rule: either given overrides ``reduction``; a missing one counts as True)."""
    if size_average is None and reduce is None:
        return reduction
    sa = True if size_average is None else bool(size_average)
    rd = True if reduce is None else bool(reduce)
    return ("mean" if sa else "sum") if rd else "none"


def _clamp_min0(v):
    """``max(v, 0)`` with PyTorch's ``clamp_min`` derivative: 1 where ``v >= 0`` (the
    bound included) or NaN; NaN propagates."""
    return fnp.where(v < 0, 0.0, v)


def _same_shape(op, what, a, b):
    if tuple(a.shape) != tuple(b.shape):
        raise FuncgradValueError(
            f"{op}: {what} of shapes {tuple(a.shape)} and {tuple(b.shape)} must match")


def cosine_embedding_loss(input1, input2, target, margin=0.0, size_average=None, reduce=None,
                          reduction="mean"):
    """``1 - cos(x1, x2)`` where ``target == 1``, ``max(0, cos(x1, x2) - margin)`` where
    ``target == -1`` (0 for other targets), with PyTorch's cosine
    ``sum(x1 x2) / sqrt((|x1|^2 + 1e-12) (|x2|^2 + 1e-12))`` over the last axis.

    Inputs ``(N, D)`` with target ``(N,)``, or ``(D,)`` with a 0-d target. Raises
    FuncgradValueError for other shapes. ``size_average``/``reduce`` are PyTorch's
    deprecated spelling of ``reduction``.
    """
    op = "cosine_embedding_loss"
    reduction = _legacy_reduction(size_average, reduce, reduction)
    _check_reduction(op, reduction)
    a, b, t = _arr(input1), _arr(input2), _arr(target)
    _same_shape(op, "input1 and input2", a, b)
    if a.ndim not in (1, 2) or tuple(t.shape) != tuple(a.shape[:-1]):
        raise FuncgradValueError(
            f"{op}: expected inputs (N, D) with target (N,), or (D,) with a 0-d target; got "
            f"inputs {tuple(a.shape)} and target {tuple(t.shape)}")
    eps = 1e-12
    prod = fnp.sum(a * b, axis=-1)
    mag = (fnp.sum(a * a, axis=-1) + eps) * (fnp.sum(b * b, axis=-1) + eps)
    cos = prod / fnp.sqrt(mag)
    loss = (fnp.where(t == 1, 1.0 - cos, 0.0)
            + fnp.where(t == -1, _clamp_min0(cos - float(margin)), 0.0))
    return _reduce(loss, reduction, op)


def margin_ranking_loss(input1, input2, target, margin=0.0, size_average=None, reduce=None,
                        reduction="mean"):
    """``max(0, -target * (x1 - x2) + margin)`` elementwise (targets are 1 or -1).

    ``input1``, ``input2`` and ``target`` must have the same shape (FuncgradValueError
    otherwise); the derivative is that of PyTorch's ``clamp_min`` (1 at the kink).
    """
    op = "margin_ranking_loss"
    reduction = _legacy_reduction(size_average, reduce, reduction)
    _check_reduction(op, reduction)
    a, b, t = _arr(input1), _arr(input2), _arr(target)
    if not tuple(a.shape) == tuple(b.shape) == tuple(t.shape):
        raise FuncgradValueError(
            f"{op}: input1 {tuple(a.shape)}, input2 {tuple(b.shape)} and target "
            f"{tuple(t.shape)} must have the same shape")
    return _reduce(_clamp_min0(-t * (a - b) + float(margin)), reduction, op)


def hinge_embedding_loss(input, target, margin=1.0, size_average=None, reduce=None,
                         reduction="mean"):
    """``x`` where ``target == 1``, ``max(0, margin - x)`` where ``target == -1`` (PyTorch's
    formula: targets other than 1 add the hinge term and targets other than -1 add
    ``x``). ``input`` and ``target`` broadcast."""
    op = "hinge_embedding_loss"
    reduction = _legacy_reduction(size_average, reduce, reduction)
    _check_reduction(op, reduction)
    x, t = _arr(input), _arr(target)
    loss = (fnp.where(t != 1, _clamp_min0(float(margin) - x), 0.0)
            + fnp.where(t != -1, x, 0.0))
    return _reduce(loss, reduction, op)


def _class_mask(op, x, target):
    """``(N, C)`` boolean one-hot of the class indices ``target`` ``(N,)``; validated when
    concrete."""
    c = x.shape[1]
    t = _arr(target)
    if tuple(t.shape) != (x.shape[0],) or np.dtype(t.dtype).kind not in "iu":
        raise FuncgradValueError(
            f"{op}: target must hold one integer class index per row of the input of shape "
            f"{tuple(x.shape)}, got {t.dtype} of shape {tuple(t.shape)}")
    if _is_concrete(t) and t.size and bool(fnp.any(fnp.logical_or(t < 0, t >= c))):
        raise FuncgradValueError(f"{op}: target values must be class indices in [0, {c})")
    return fnp.expand_dims(t, 1) == fnp.reshape(_arange_like(t, c, t.dtype), (1, c))


def multi_margin_loss(input, target, p=1, margin=1.0, weight=None, size_average=None,
                      reduce=None, reduction="mean"):
    """Multi-class hinge loss: for each row ``x`` with class ``y``,
    ``sum_{j != y} max(0, margin - x[y] + x[j]) ** p / C``, each term scaled by
    ``weight[y]`` when ``weight`` ``(C,)`` is given.

    ``input`` ``(N, C)`` or ``(C,)``; ``target`` ``(N,)`` or 0-d integers. ``p`` is 1 or 2
    (FuncgradValueError otherwise, and for bad shapes or out-of-range targets). The
    derivative at the kink (``margin - x[y] + x[j] == 0``) is 0, as in PyTorch.
    """
    op = "multi_margin_loss"
    reduction = _legacy_reduction(size_average, reduce, reduction)
    _check_reduction(op, reduction)
    if p not in (1, 2):
        raise FuncgradValueError(f"{op}: only p == 1 and p == 2 are supported, got {p}")
    x = _arr(input)
    if x.ndim not in (1, 2):
        raise FuncgradValueError(f"{op}: expected an input (N, C) or (C,), got {tuple(x.shape)}")
    unbatched = x.ndim == 1
    t = _arr(target)
    if unbatched:
        x, t = x[None], fnp.reshape(t, (1,))
    c = x.shape[1]
    mask = _class_mask(op, x, t)
    xy = fnp.sum(fnp.where(mask, x, 0.0), axis=1, keepdims=True)
    z = float(margin) - xy + x
    h = z if p == 1 else z * z
    h = fnp.where(fnp.logical_and(z > 0, fnp.logical_not(mask)), h, 0.0)
    if weight is not None:
        w = _arr(weight)
        if tuple(w.shape) != (c,):
            raise FuncgradValueError(f"{op}: weight of shape {tuple(w.shape)} must be ({c},)")
        h = h * fnp.sum(fnp.where(mask, fnp.reshape(w, (1, c)), 0.0), axis=1, keepdims=True)
    loss = fnp.sum(h, axis=1) / c
    return _reduce(loss[0] if unbatched else loss, reduction, op)


def multilabel_margin_loss(input, target, size_average=None, reduce=None, reduction="mean"):
    """Multi-label hinge loss: for each row ``x`` whose target classes are the entries
    of its ``target`` row before the first -1,
    ``sum_{j target} sum_{i not target} max(0, 1 - (x[j] - x[i])) / C``.

    ``input`` ``(N, C)`` or ``(C,)`` and an integer ``target`` of the same shape. Raises
    FuncgradValueError for other shapes or (concrete) targets outside ``[-1, C)``. The
    derivative at the kink is 0, as in PyTorch.
    """
    op = "multilabel_margin_loss"
    reduction = _legacy_reduction(size_average, reduce, reduction)
    _check_reduction(op, reduction)
    x, t = _arr(input), _arr(target)
    if x.ndim not in (1, 2) or tuple(t.shape) != tuple(x.shape) or \
            np.dtype(t.dtype).kind not in "iu":
        raise FuncgradValueError(
            f"{op}: expected an input (N, C) or (C,) and integer targets of its shape, got "
            f"input {tuple(x.shape)} and target {t.dtype} {tuple(t.shape)}")
    unbatched = x.ndim == 1
    if unbatched:
        x, t = x[None], t[None]
    c = x.shape[1]
    if _is_concrete(t) and t.size and bool(fnp.any(fnp.logical_or(t < -1, t >= c))):
        raise FuncgradValueError(f"{op}: target values must be in [-1, {c}) (-1 ends the list)")
    # the target classes are the entries before the first -1 of each row
    listed = fnp.cumprod(fnp.astype(t != -1, np.int64), axis=1) > 0            # (N, J)
    classes = fnp.reshape(_arange_like(t, c, t.dtype), (1, 1, c))
    onehot = (fnp.expand_dims(t, 2) == classes) & fnp.expand_dims(listed, 2)   # (N, J, C)
    is_target = fnp.any(onehot, axis=1)                                        # (N, C)
    xj = fnp.sum(fnp.where(onehot, fnp.expand_dims(x, 1), 0.0), axis=2)          # (N, J)
    z = 1.0 - fnp.expand_dims(xj, 2) + fnp.expand_dims(x, 1)                   # (N, J, C)
    keep = (fnp.expand_dims(listed, 2) & fnp.expand_dims(fnp.logical_not(is_target), 1)
            & (z > 0))
    loss = fnp.sum(fnp.where(keep, z, 0.0), axis=(1, 2)) / c
    return _reduce(loss[0] if unbatched else loss, reduction, op)


def _pairwise_distance(a, b, p, eps):
    """``||a - b + eps||_p`` over the last axis (PyTorch's pairwise_distance)."""
    d = a - b + eps
    if p == float("inf"):
        return fnp.max(fnp.abs(d), axis=-1)
    s = fnp.sum(fnp.abs(d) ** p if p != 2 else d * d, axis=-1)
    pos = s > 0      # the root's derivative is infinite at 0: keep it out of the gradient
    return fnp.where(pos, fnp.where(pos, s, 1.0) ** (1.0 / p), 0.0)


def triplet_margin_loss(anchor, positive, negative, margin=1.0, p=2, eps=1e-6, swap=False,
                        size_average=None, reduce=None, reduction="mean"):
    """``max(d(a, p) - d(a, n) + margin, 0)`` with ``d(u, v) = ||u - v + eps||_p`` over
    the last axis; ``swap=True`` uses ``min(d(a, n), d(p, n))`` for the negative distance.

    Inputs ``(N, D)`` or ``(D,)``, all of the same shape (FuncgradValueError otherwise);
    ``p > 0`` (``inf`` allowed).
    """
    op = "triplet_margin_loss"
    reduction = _legacy_reduction(size_average, reduce, reduction)
    _check_reduction(op, reduction)
    a, pos, neg = _arr(anchor), _arr(positive), _arr(negative)
    if not (tuple(a.shape) == tuple(pos.shape) == tuple(neg.shape)) or a.ndim not in (1, 2):
        raise FuncgradValueError(
            f"{op}: anchor {tuple(a.shape)}, positive {tuple(pos.shape)} and negative "
            f"{tuple(neg.shape)} must share one shape, (N, D) or (D,)")
    p = float(p)
    if not p > 0:
        raise FuncgradValueError(f"{op}: p must be positive, got {p}")
    d_pos = _pairwise_distance(a, pos, p, eps)
    d_neg = _pairwise_distance(a, neg, p, eps)
    if swap:
        d_neg = fnp.minimum(d_neg, _pairwise_distance(pos, neg, p, eps))
    return _reduce(_clamp_min0(float(margin) + d_pos - d_neg), reduction, op)


def poisson_nll_loss(input, target, log_input=True, full=False, size_average=None, eps=1e-8,
                     reduce=None, reduction="mean"):
    """Poisson negative log-likelihood of ``target`` counts.

    ``log_input=True``: ``exp(input) - target * input`` (``input`` is the log-rate);
    ``False``: ``input - target * log(input + eps)``. ``full=True`` adds Stirling's
    approximation ``t log t - t + 0.5 log(2 pi t)`` where ``target > 1``. ``input`` and
    ``target`` broadcast.
    """
    op = "poisson_nll_loss"
    reduction = _legacy_reduction(size_average, reduce, reduction)
    _check_reduction(op, reduction)
    x, t = _arr(input), _arr(target)
    if log_input:
        loss = fnp.exp(x) - t * x
    else:
        loss = x - t * fnp.log(x + float(eps))
    if full:
        big = t > 1
        ts = fnp.where(big, t, 1.0)
        stirling = ts * fnp.log(ts) - ts + 0.5 * fnp.log(2.0 * np.pi * ts)
        loss = loss + fnp.where(big, stirling, 0.0)
    return _reduce(loss, reduction, op)


def gaussian_nll_loss(input, target, var, full=False, eps=1e-6, reduction="mean"):
    """Gaussian negative log-likelihood ``0.5 (log var + (input - target)^2 / var)``
    (plus ``0.5 log(2 pi)`` when ``full``).

    ``var`` has the input's shape, or the input's shape without its last axis, or that
    of the input with one axis of size 1 (homoscedastic); a float is a constant variance.
    It is clamped below at ``eps`` for the value only: the gradient passes as if
    unclamped, as in PyTorch. Raises FuncgradValueError for another ``var`` shape or
    (concrete) negative variances.
    """
    op = "gaussian_nll_loss"
    _check_reduction(op, reduction)
    x, t = _arr(input), _arr(target)
    if isinstance(var, (int, float)):
        if var < 0:
            raise FuncgradValueError(f"{op}: var has negative entry/entries")
        var = fnp.full_like(x, float(var))
    v = _arr(var)
    if _is_concrete(v) and v.size and bool(fnp.any(v < 0)):
        raise FuncgradValueError(f"{op}: var has negative entry/entries")
    if tuple(v.shape) != tuple(x.shape):
        if tuple(x.shape[:-1]) == tuple(v.shape) and x.ndim:
            v = fnp.expand_dims(v, -1)
        elif not (v.ndim == x.ndim and sum(
                vs for xs, vs in zip(x.shape, v.shape) if xs != vs) == 1):
            raise FuncgradValueError(
                f"{op}: var of shape {tuple(v.shape)} does not fit the input of shape "
                f"{tuple(x.shape)} (same shape, the input's without its last axis, or one "
                f"axis of size 1)")
    # max(var, eps) in value, identity in derivative (PyTorch clamps under no_grad)
    v = v + funcgrad.stop_gradient(fnp.maximum(v, float(eps)) - v)
    d = x - t
    loss = 0.5 * (fnp.log(v) + d * d / v)
    if full:
        loss = loss + 0.5 * float(np.log(2 * np.pi))
    return _reduce(loss, reduction, op)


def _logsumexp3(a, b, c):
    """``log(exp(a) + exp(b) + exp(c))`` elementwise, -inf where all three are -inf, with
    finite gradients there (each branch sees safe values where it is not taken)."""
    m = funcgrad.stop_gradient(fnp.maximum(fnp.maximum(a, b), c))
    finite = fnp.isfinite(m)
    ms = fnp.where(finite, m, 0.0)
    s = fnp.exp(a - ms) + fnp.exp(b - ms) + fnp.exp(c - ms)
    pos = s > 0
    return fnp.where(pos, fnp.log(fnp.where(pos, s, 1.0)) + ms, -np.inf)


def ctc_loss(log_probs, targets, input_lengths, target_lengths, blank=0, reduction="mean",
             zero_infinity=False):
    """Connectionist Temporal Classification loss (PyTorch's arguments and reductions).

    Args:
      log_probs: ``(T, N, C)`` (or unbatched ``(T, C)``) log-probabilities, e.g. the
        output of ``log_softmax(..., axis=2)``. Differentiable.
      targets: ``(N, S)`` padded target indices, or 1-D: all targets concatenated
        (lengths ``target_lengths``). Never the ``blank`` index.
      input_lengths, target_lengths: ``(N,)`` ints (or sequences; a scalar when
        unbatched), ``input_lengths <= T``.
      blank: the blank class index.
      reduction: ``'mean'`` (each loss divided by its target length, then the batch
        mean), ``'sum'`` or ``'none'``.
      zero_infinity: replace infinite losses (no alignment possible) and their gradients
        by 0.

    The forward (alpha) recursion in log space, one vectorized step per time step. The
    gradient is the exact derivative of the loss with respect to ``log_probs``. PyTorch's
    own gradient assumes normalized log-probabilities, so the two agree through a
    ``log_softmax`` (compare gradients with respect to the logits).

    Raises FuncgradValueError naming the shapes for mismatched arguments.

    Example:
        >>> import numpy as np
        >>> lp = np.log(np.full((2, 1, 2), 0.5))
        >>> round(float(ctc_loss(lp, np.array([[1]]), [2], [1], reduction="sum")), 6)
        0.287682
    """
    op = "ctc_loss"
    lp = _arr(log_probs)
    unbatched = lp.ndim == 2
    if unbatched:
        lp = lp[:, None]
    if lp.ndim != 3:
        raise FuncgradValueError(
            f"{op}: log_probs must be (T, N, C) or (T, C), got shape {tuple(lp.shape)}")
    T, N, C = lp.shape
    in_len = np.atleast_1d(np.asarray(input_lengths)).astype(np.int64)
    tg_len = np.atleast_1d(np.asarray(target_lengths)).astype(np.int64)
    tg = np.asarray(targets).astype(np.int64)
    if in_len.shape != (N,) or tg_len.shape != (N,):
        raise FuncgradValueError(
            f"{op}: input_lengths {tuple(in_len.shape)} and target_lengths "
            f"{tuple(tg_len.shape)} must have one entry per batch element ({N})")
    if np.any(in_len > T) or np.any(in_len < 0) or np.any(tg_len < 0):
        raise FuncgradValueError(
            f"{op}: input_lengths {in_len.tolist()} must be in [0, T = {T}] and "
            f"target_lengths {tg_len.tolist()} non-negative")
    L = int(tg_len.max()) if N else 0
    if unbatched and tg.ndim == 1 and tg.shape[0] >= L:
        tg = tg[None]
    if tg.ndim == 1:                    # concatenated targets
        if tg.shape[0] != tg_len.sum():
            raise FuncgradValueError(
                f"{op}: 1-D targets of length {tg.shape[0]} must hold sum(target_lengths) "
                f"= {int(tg_len.sum())} entries")
        padded = np.full((N, max(L, 1)), blank, np.int64)
        start = np.concatenate([[0], np.cumsum(tg_len)[:-1]])
        for i in range(N):
            padded[i, :tg_len[i]] = tg[start[i]:start[i] + tg_len[i]]
        tg = padded
    elif tg.ndim != 2 or tg.shape[0] != N or tg.shape[1] < L:
        raise FuncgradValueError(
            f"{op}: targets of shape {tuple(tg.shape)} must be (N, S) with N = {N} and S >= "
            f"max(target_lengths) = {L}, or 1-D concatenated")
    if np.any((tg < 0) | (tg >= C)):
        raise FuncgradValueError(f"{op}: targets must be class indices in [0, {C})")
    # the extended label sequence: blank, l1, blank, l2, ..., blank
    S = 2 * L + 1
    ext = np.full((N, S), blank, np.int64)
    ext[:, 1::2] = tg[:, :L]
    # the skip from s - 2 to s is allowed onto a label different from the one before
    skip = np.zeros((N, S), bool)
    skip[:, 2:] = (ext[:, 2:] != blank) & (ext[:, 2:] != ext[:, :-2])
    valid = np.arange(S)[None, :] < (2 * tg_len + 1)[:, None]
    neg = np.asarray(-np.inf, lp.dtype) if lp.dtype.kind == "f" else -np.inf
    # log_probs at the extended labels: (T, N, S)
    lpe = fnp.take_along_axis(lp, fnp.broadcast_to(fnp.asarray(ext)[None], (T, N, S)), axis=2)
    init = np.full((N, S), -np.inf)
    init[:, :2] = 0.0
    init = np.where(valid, init, -np.inf).astype(lpe.dtype)
    alpha = fnp.where(fnp.asarray(init) == 0, lpe[0], neg) if T else fnp.asarray(init)
    pad1 = fnp.full((N, 1), neg, dtype=lpe.dtype)
    pad2 = fnp.full((N, 2), neg, dtype=lpe.dtype)
    skip_, valid_ = fnp.asarray(skip), fnp.asarray(valid)
    for t in range(1, T):
        a1 = fnp.concatenate([pad1, alpha[:, :-1]], axis=1)
        a2 = fnp.where(skip_, fnp.concatenate([pad2, alpha[:, :-2]], axis=1), neg)
        new = fnp.where(valid_, _logsumexp3(alpha, a1, a2) + lpe[t], neg)
        alpha = fnp.where(fnp.asarray(t < in_len)[:, None], new, alpha)
    if T == 0:
        alpha = fnp.where(fnp.asarray(init) == 0, 0.0, neg)
    # end in the last label or the final blank
    last = fnp.take_along_axis(alpha, fnp.asarray(2 * tg_len)[:, None], axis=1)[:, 0]
    prev = fnp.take_along_axis(alpha, fnp.asarray(np.maximum(2 * tg_len - 1, 0))[:, None],
                               axis=1)[:, 0]
    prev = fnp.where(fnp.asarray(tg_len > 0), prev, neg)
    ll = _logsumexp3(last, prev, fnp.full_like(last, neg))
    # no frames at all: probability 1 of the empty target, 0 of any other
    ll = fnp.where(fnp.asarray(in_len == 0), fnp.where(fnp.asarray(tg_len == 0), 0.0, neg), ll)
    loss = -ll
    if zero_infinity:
        inf = fnp.isinf(loss)
        loss = fnp.where(inf, 0.0, fnp.where(inf, 0.0, loss))
    if reduction == "mean":
        return fnp.mean(loss / fnp.asarray(np.maximum(tg_len, 1)).astype(loss.dtype))
    if unbatched and reduction == "none":
        return loss[0]
    return _reduce(loss, reduction, op)


def pairwise_distance(x1, x2, p=2.0, eps=1e-6, keepdim=False):
    """``||x1 - x2 + eps||_p`` over the last axis (broadcasting), as PyTorch; the
    gradient at distance 0 is 0."""
    d = _pairwise_distance(_arr(x1), _arr(x2), float(p), eps)
    return fnp.expand_dims(d, -1) if keepdim else d


def pdist(input, p=2):
    """The ``p``-norm distances between all pairs of rows of an ``(N, M)`` input: the
    ``N (N - 1) / 2`` entries above the diagonal of the distance matrix, row by row.
    Raises FuncgradValueError for other ranks."""
    x = _arr(input)
    if x.ndim != 2:
        raise FuncgradValueError(f"pdist: expected a 2-D input (N, M), got shape {tuple(x.shape)}")
    i, j = np.triu_indices(x.shape[0], 1)
    return _pairwise_distance(x[i], x[j], float(p), 0.0)


def soft_margin_loss(input, target, size_average=None, reduce=None, reduction="mean"):
    """``log(1 + exp(-y x))`` for targets ``y`` in {-1, 1}, computed stably, reduced."""
    op = "soft_margin_loss"
    reduction = _legacy_reduction(size_average, reduce, reduction)
    _check_reduction(op, reduction)
    z = -_arr(input) * _arr(target)
    return _reduce(-logsigmoid(-z), reduction, op)


def multilabel_soft_margin_loss(input, target, weight=None, size_average=None, reduce=None,
                                reduction="mean"):
    """Multi-label one-versus-all loss of logits ``(N, C)`` against 0/1 targets: the
    class mean of ``-(y log sigmoid(x) + (1 - y) log sigmoid(-x))`` (times ``weight``),
    reduced over the batch."""
    op = "multilabel_soft_margin_loss"
    reduction = _legacy_reduction(size_average, reduce, reduction)
    _check_reduction(op, reduction)
    x, y = _arr(input), _arr(target)
    loss = -(y * logsigmoid(x) + (1 - y) * logsigmoid(-x))
    if weight is not None:
        loss = loss * _arr(weight)
    return _reduce(fnp.mean(loss, axis=-1), reduction, op)

"""Gradient transformations that rescale updates: the building blocks of optimizers.

Each function returns a :class:`GradientTransformation`; its state is a NamedTuple named
after it. Formulas use ``g`` for the incoming update, ``t`` for the step count after the
increment (the first update has ``t = 1``) and act leafwise.
"""
from typing import NamedTuple

import funcgrad.numpy as fnp
from funcgrad.tree_util import tree_map

from . import _tree
from ._base import EmptyState, GradientTransformation, identity, init_empty_state
from ._combine import masked


def scale(step_size):
    """Multiply updates by ``step_size`` (a number or a 0-d array; state
    :class:`EmptyState`).

        >>> import numpy as np
        >>> scale(-2.0).update(np.array([1.0, 3.0]), EmptyState())[0]
        array([-2., -6.])
    """
    def update_fn(updates, state, params=None):
        del params
        return tree_map(lambda g: _tree.like(step_size, g) * g, updates), state
    return GradientTransformation(init_empty_state, update_fn)


class ScaleByScheduleState(NamedTuple):
    count: object  # int32 number of updates done so far


def scale_by_schedule(step_size_fn):
    """Multiply updates by ``step_size_fn(count)``.

    ``count`` is the number of updates done *before* this one: the first update is
    scaled by ``step_size_fn(0)``, the n-th by ``step_size_fn(n - 1)``.
    """
    def init_fn(params):
        return ScaleByScheduleState(_tree.zero_count(params))

    def update_fn(updates, state, params=None):
        del params
        step_size = step_size_fn(state.count)
        updates = tree_map(lambda g: _tree.like(step_size, g) * g, updates)
        return updates, ScaleByScheduleState(_tree.safe_increment(state.count))
    return GradientTransformation(init_fn, update_fn)


def scale_by_learning_rate(learning_rate, *, flip_sign=True):
    """Multiply updates by ``-learning_rate`` (by ``+learning_rate`` when
    ``flip_sign=False``).

    ``learning_rate`` is a number, a 0-d array, a schedule (a callable of the step count,
    see :func:`scale_by_schedule`: the first update uses ``learning_rate(0)``) or
    ``None`` (the identity).
    """
    if learning_rate is None:
        return identity()
    m = -1 if flip_sign else 1
    if callable(learning_rate):
        return scale_by_schedule(lambda count: m * learning_rate(count))
    return scale(m * learning_rate)


class TraceState(NamedTuple):
    trace: object


def trace(decay, nesterov=False, accumulator_dtype=None):
    """Momentum: ``trace = g + decay * trace``; the update is ``trace``, or
    ``g + decay * trace`` (the new trace) with ``nesterov=True``.

    The trace starts at zero, so the first update is ``g`` (as torch.optim.SGD, whose
    buffer starts at the first gradient; with dampening 0 the two agree step for step).
    """
    def init_fn(params):
        return TraceState(_tree.zeros_like(params, dtype=accumulator_dtype))

    def update_fn(updates, state, params=None):
        del params
        _tree.check_like("trace", updates, state.trace, ref_name="the momentum buffer")
        def f(g, t):
            return g + _tree.like(decay, t) * t
        new_trace = tree_map(f, updates, state.trace)
        updates = tree_map(f, updates, new_trace) if nesterov else new_trace
        return updates, TraceState(_tree.cast(new_trace, accumulator_dtype))
    return GradientTransformation(init_fn, update_fn)


class AddDecayedWeightsState(NamedTuple):
    count: object  # present only when weight_decay is a schedule


def add_decayed_weights(weight_decay=0.0, mask=None):
    """Add ``weight_decay * params`` to the updates (decoupled weight decay when placed
    before the learning-rate scaling, as in :func:`adamw`).

    ``weight_decay`` is a number, a 0-d array or a schedule of the step count (state
    :class:`AddDecayedWeightsState` then; :class:`EmptyState` otherwise). ``mask`` (a
    tree of booleans, a prefix of it, or a callable of the params returning one) limits
    the decay to the ``True`` leaves. ``update`` needs ``params`` (unless
    ``weight_decay`` is the number 0).
    """
    scheduled = callable(weight_decay)

    def init_fn(params):
        return AddDecayedWeightsState(_tree.zero_count(params)) if scheduled else EmptyState()

    def update_fn(updates, state, params=None):
        if scheduled:
            wd = weight_decay(state.count)
            state = AddDecayedWeightsState(_tree.safe_increment(state.count))
        else:
            wd = weight_decay
        if isinstance(wd, (int, float)) and wd == 0:
            return updates, state
        _tree.need_params("add_decayed_weights", params)
        _tree.check_like("add_decayed_weights", updates, params)
        return tree_map(lambda g, p: g + _tree.like(wd, g) * p, updates, params), state

    tx = GradientTransformation(init_fn, update_fn)
    if mask is not None:
        return masked(tx, mask)
    return tx


class ScaleByAdamState(NamedTuple):
    count: object
    mu: object
    nu: object


def scale_by_adam(b1=0.9, b2=0.999, eps=1e-8, eps_root=0.0, mu_dtype=None, *,
                  nesterov=False):
    """Adam's rescaling: ``mu = b1*mu + (1-b1)*g``, ``nu = b2*nu + (1-b2)*g**2``,
    update ``mu_hat / (sqrt(nu_hat + eps_root) + eps)`` with ``mu_hat = mu/(1-b1**t)``,
    ``nu_hat = nu/(1-b2**t)``.

    This is torch.optim.Adam's step written with the bias corrections applied to the
    moments; the two agree to rounding. With ``nesterov=True`` (NAdam, as optax):
    ``mu_hat = b1*mu/(1-b1**(t+1)) + (1-b1)*g/(1-b1**t)`` (torch's NAdam adds a momentum
    decay schedule and differs). ``mu_dtype`` stores ``mu`` in another dtype.
    """
    def init_fn(params):
        return ScaleByAdamState(_tree.zero_count(params), _tree.zeros_like(params, mu_dtype),
                                _tree.zeros_like(params))

    def update_fn(updates, state, params=None):
        del params
        _tree.check_like("scale_by_adam", updates, state.nu, ref_name="the state")
        mu = _tree.update_moment(updates, state.mu, b1, 1)
        nu = _tree.update_moment(updates, state.nu, b2, 2)
        count = _tree.safe_increment(state.count)
        if nesterov:
            mu_hat = tree_map(
                lambda m, g: _tree.like(b1, m) * m + (1 - _tree.like(b1, g)) * g,
                _tree.bias_correction(mu, b1, _tree.safe_increment(count)),
                _tree.bias_correction(updates, b1, count))
        else:
            mu_hat = _tree.bias_correction(mu, b1, count)
        nu_hat = _tree.bias_correction(nu, b2, count)
        updates = tree_map(
            lambda m, v: m / (fnp.sqrt(v + _tree.like(eps_root, v)) + _tree.like(eps, m)),
            mu_hat, nu_hat)
        return updates, ScaleByAdamState(count, _tree.cast(mu, mu_dtype),
                                         _tree.cast_like(nu, state.nu))
    return GradientTransformation(init_fn, update_fn)


class ScaleByAmsgradState(NamedTuple):
    count: object
    mu: object
    nu: object
    nu_max: object


def scale_by_amsgrad(b1=0.9, b2=0.999, eps=1e-8, eps_root=0.0, mu_dtype=None):
    """AMSGrad: Adam with ``nu_max = max(nu_max, nu_hat)`` in the denominator,
    update ``mu_hat / (sqrt(nu_max + eps_root) + eps)``.

    As optax, the running maximum is taken over the *bias-corrected* ``nu_hat``;
    torch.optim.Adam(amsgrad=True) takes it over the raw ``nu`` and bias-corrects after,
    so the two differ in the first steps.
    """
    def init_fn(params):
        return ScaleByAmsgradState(_tree.zero_count(params), _tree.zeros_like(params, mu_dtype),
                                   _tree.zeros_like(params), _tree.zeros_like(params))

    def update_fn(updates, state, params=None):
        del params
        _tree.check_like("scale_by_amsgrad", updates, state.nu, ref_name="the state")
        mu = _tree.update_moment(updates, state.mu, b1, 1)
        nu = _tree.update_moment(updates, state.nu, b2, 2)
        count = _tree.safe_increment(state.count)
        mu_hat = _tree.bias_correction(mu, b1, count)
        nu_max = tree_map(fnp.maximum, state.nu_max, _tree.bias_correction(nu, b2, count))
        updates = tree_map(
            lambda m, v: m / (fnp.sqrt(v + _tree.like(eps_root, v)) + _tree.like(eps, m)),
            mu_hat, nu_max)
        return updates, ScaleByAmsgradState(count, _tree.cast(mu, mu_dtype), nu, nu_max)
    return GradientTransformation(init_fn, update_fn)


class ScaleByAdamaxState(NamedTuple):
    count: object
    mu: object
    nu: object


def scale_by_adamax(b1=0.9, b2=0.999, eps=1e-8):
    """Adamax: ``mu = b1*mu + (1-b1)*g``, ``nu = max(b2*nu, |g| + eps)``, update
    ``mu / (1-b1**t) / nu``; the same formula as torch.optim.Adamax."""
    def init_fn(params):
        return ScaleByAdamaxState(_tree.zero_count(params), _tree.zeros_like(params),
                                  _tree.zeros_like(params))

    def update_fn(updates, state, params=None):
        del params
        _tree.check_like("scale_by_adamax", updates, state.nu, ref_name="the state")
        count = _tree.safe_increment(state.count)
        mu = _tree.update_moment(updates, state.mu, b1, 1)
        nu = tree_map(lambda g, n: fnp.maximum(_tree.like(b2, n) * n,
                                               fnp.abs(g) + _tree.like(eps, n)),
                      updates, state.nu)
        updates = tree_map(lambda m, n: m / n, _tree.bias_correction(mu, b1, count), nu)
        return updates, ScaleByAdamaxState(count, mu, nu)
    return GradientTransformation(init_fn, update_fn)


class ScaleByRmsState(NamedTuple):
    count: object
    nu: object


def scale_by_rms(decay=0.9, eps=1e-8, initial_scale=0.0, eps_in_sqrt=True,
                 bias_correction=False):
    """RMSProp's rescaling: ``nu = decay*nu + (1-decay)*g**2`` from ``initial_scale``,
    update ``g / sqrt(nu + eps)`` (``eps_in_sqrt=True``, optax's default) or
    ``g / (sqrt(nu) + eps)`` (``eps_in_sqrt=False``: torch.optim.RMSprop's placement).
    ``bias_correction=True`` divides ``nu`` by ``1 - decay**t`` first.
    """
    def init_fn(params):
        return ScaleByRmsState(_tree.zero_count(params), _tree.full_like(params, initial_scale))

    def update_fn(updates, state, params=None):
        del params
        _tree.check_like("scale_by_rms", updates, state.nu, ref_name="the state")
        nu = _tree.update_moment(updates, state.nu, decay, 2)
        count = _tree.safe_increment(state.count)
        nu_hat = _tree.bias_correction(nu, decay, count) if bias_correction else nu
        updates = tree_map(lambda g, n: g / _denominator(n, eps, eps_in_sqrt), updates,
                           nu_hat)
        return updates, ScaleByRmsState(count, nu)
    return GradientTransformation(init_fn, update_fn)


def _denominator(n, eps, eps_in_sqrt):
    e = _tree.like(eps, n)
    return fnp.sqrt(n + e) if eps_in_sqrt else fnp.sqrt(n) + e


class ScaleByStddevState(NamedTuple):
    count: object
    mu: object
    nu: object


def scale_by_stddev(decay=0.9, eps=1e-8, initial_scale=0.0, eps_in_sqrt=True,
                    bias_correction=False):
    """Centered RMSProp: ``mu`` and ``nu`` are the moving averages of ``g`` and
    ``g**2``; update ``g / sqrt(nu - mu**2 + eps)`` (``eps_in_sqrt=True``) or
    ``g / (sqrt(nu - mu**2) + eps)`` (torch.optim.RMSprop(centered=True))."""
    def init_fn(params):
        return ScaleByStddevState(_tree.zero_count(params), _tree.zeros_like(params),
                                  _tree.full_like(params, initial_scale))

    def update_fn(updates, state, params=None):
        del params
        _tree.check_like("scale_by_stddev", updates, state.nu, ref_name="the state")
        mu = _tree.update_moment(updates, state.mu, decay, 1)
        nu = _tree.update_moment(updates, state.nu, decay, 2)
        count = _tree.safe_increment(state.count)
        mu_hat, nu_hat = mu, nu
        if bias_correction:
            mu_hat = _tree.bias_correction(mu, decay, count)
            nu_hat = _tree.bias_correction(nu, decay, count)
        updates = tree_map(
            lambda g, m, n: g / _denominator(n - _tree.abs_sq(m), eps, eps_in_sqrt),
            updates, mu_hat, nu_hat)
        return updates, ScaleByStddevState(count, mu, nu)
    return GradientTransformation(init_fn, update_fn)


class ScaleByRssState(NamedTuple):
    sum_of_squares: object


def scale_by_rss(initial_accumulator_value=0.1, eps=1e-7):
    """Adagrad's rescaling: ``s = s + g**2`` from ``initial_accumulator_value``, update
    ``g / sqrt(s + eps)`` where ``s > 0`` and 0 elsewhere.

    optax's definition; torch.optim.Adagrad starts ``s`` at 0 and adds ``eps`` outside
    the root (``g / (sqrt(s) + eps)``): with ``initial_accumulator_value=0`` and
    ``eps=0`` on both sides they agree.
    """
    def init_fn(params):
        return ScaleByRssState(_tree.full_like(params, initial_accumulator_value))

    def update_fn(updates, state, params=None):
        del params
        _tree.check_like("scale_by_rss", updates, state.sum_of_squares, ref_name="the state")
        s = tree_map(lambda g, acc: acc + _tree.abs_sq(g), updates, state.sum_of_squares)

        def rescale(g, t):
            pos = t > 0
            inv = 1 / fnp.sqrt(fnp.where(pos, t, 1) + _tree.like(eps, t))
            return fnp.where(pos, inv, 0) * g
        return tree_map(rescale, updates, s), ScaleByRssState(s)
    return GradientTransformation(init_fn, update_fn)


class ScaleByAdaDeltaState(NamedTuple):
    e_g: object  # moving average of squared gradients
    e_x: object  # moving average of squared updates


def scale_by_adadelta(rho=0.9, eps=1e-6):
    """Adadelta: ``e_g = rho*e_g + (1-rho)*g**2``, update
    ``d = sqrt(e_x + eps) / sqrt(e_g + eps) * g`` then ``e_x = rho*e_x + (1-rho)*d**2``
    (the same formula as torch.optim.Adadelta)."""
    def init_fn(params):
        return ScaleByAdaDeltaState(_tree.zeros_like(params), _tree.zeros_like(params))

    def update_fn(updates, state, params=None):
        del params
        _tree.check_like("scale_by_adadelta", updates, state.e_g, ref_name="the state")
        e_g = _tree.update_moment(updates, state.e_g, rho, 2)
        updates = tree_map(
            lambda g, eg, ex: fnp.sqrt(ex + _tree.like(eps, ex))
            / fnp.sqrt(eg + _tree.like(eps, eg)) * g,
            updates, e_g, state.e_x)
        e_x = _tree.update_moment(updates, state.e_x, rho, 2)
        return updates, ScaleByAdaDeltaState(e_g, e_x)
    return GradientTransformation(init_fn, update_fn)


class ScaleByLionState(NamedTuple):
    count: object
    mu: object


def scale_by_lion(b1=0.9, b2=0.99, mu_dtype=None):
    """Lion: update ``sign((1-b1)*g + b1*mu)``, then ``mu = b2*mu + (1-b2)*g``."""
    def init_fn(params):
        return ScaleByLionState(_tree.zero_count(params), _tree.zeros_like(params, mu_dtype))

    def update_fn(updates, state, params=None):
        del params
        _tree.check_like("scale_by_lion", updates, state.mu, ref_name="the state")
        new_updates = tree_map(
            lambda g, m: fnp.sign((1 - _tree.like(b1, g)) * g + _tree.like(b1, m) * m),
            updates, state.mu)
        mu = _tree.update_moment(updates, state.mu, b2, 1)
        return new_updates, ScaleByLionState(_tree.safe_increment(state.count),
                                             _tree.cast(mu, mu_dtype))
    return GradientTransformation(init_fn, update_fn)


def scale_by_trust_ratio(min_norm=0.0, trust_coefficient=1.0, eps=0.0):
    """LAMB's layerwise trust ratio: each leaf's update is multiplied by
    ``trust_coefficient * ||p|| / (||u|| + eps)`` (norms floored at ``min_norm``), or by
    1 where either norm is zero. ``update`` needs ``params``; state :class:`EmptyState`.
    """
    def update_fn(updates, state, params=None):
        _tree.need_params("scale_by_trust_ratio", params)
        _tree.check_like("scale_by_trust_ratio", updates, params)

        def rescale(u, p):
            p_norm = _tree.safe_norm(p, min_norm)
            u_norm = _tree.safe_norm(u, min_norm)
            zero = fnp.logical_or(p_norm == 0, u_norm == 0)
            ratio = trust_coefficient * p_norm / fnp.where(zero, 1, u_norm + eps)
            return u * fnp.astype(fnp.where(zero, 1, ratio), _tree.dtype_of(u))
        return tree_map(rescale, updates, params), state
    return GradientTransformation(init_empty_state, update_fn)

"""Accumulation over steps: moving averages and gradient accumulation."""
from typing import NamedTuple

import funcgrad.numpy as fnp
from funcgrad.tree_util import tree_map

from . import _tree
from ._base import GradientTransformation


class EmaState(NamedTuple):
    count: object
    ema: object  # the moving average before debiasing


def ema(decay, debias=True, accumulator_dtype=None):
    """Exponential moving average of what it is given:
    ``ema = decay * ema + (1 - decay) * x`` from zero, returned divided by
    ``1 - decay**t`` when ``debias`` (so the first output is ``x`` itself).

    For an average of the parameters (Polyak averaging), feed it the parameters after
    each step: ``params_avg, ema_state = ema_tx.update(params, ema_state)``.

        >>> import numpy as np
        >>> tx = ema(0.5)
        >>> s = tx.init(np.zeros(1))
        >>> a, s = tx.update(np.array([2.0]), s)
        >>> a, tx.update(np.array([4.0]), s)[0]
        (array([2.]), array([3.33333333]))
    """
    def init_fn(params):
        return EmaState(_tree.zero_count(params), _tree.zeros_like(params, accumulator_dtype))

    def update_fn(updates, state, params=None):
        del params
        _tree.check_like("ema", updates, state.ema, "the values", "the state")
        new_ema = _tree.update_moment(updates, state.ema, decay, 1)
        count = _tree.safe_increment(state.count)
        out = _tree.bias_correction(new_ema, decay, count) if debias else new_ema
        return out, EmaState(count, _tree.cast(new_ema, accumulator_dtype))
    return GradientTransformation(init_fn, update_fn)


class ApplyEveryState(NamedTuple):
    count: object     # updates since the last emission, modulo k
    grad_acc: object  # the running sum of updates


def apply_every(k=1):
    """Sum updates over ``k`` steps: the first ``k - 1`` calls return zeros, the k-th
    returns the sum of the ``k`` updates, and the sum restarts.

    Put it after the learning-rate scaling (``chain(sgd(lr), apply_every(k))``) to apply
    the accumulated step every ``k`` calls. To accumulate gradients *before* a stateful
    optimizer (so its moments see one mean gradient per ``k`` micro-batches), use
    :class:`MultiSteps`.
    """
    def init_fn(params):
        return ApplyEveryState(_tree.zero_count(params), _tree.zeros_like(params))

    def update_fn(updates, state, params=None):
        del params
        _tree.check_like("apply_every", updates, state.grad_acc, ref_name="the state")
        c = state.count % k
        keep = c != 0
        acc = tree_map(lambda g, a: fnp.where(keep, a, 0) + g, updates, state.grad_acc)
        emit = c == k - 1
        out = tree_map(lambda a: fnp.where(emit, a, fnp.zeros_like(a)), acc)
        return out, ApplyEveryState(_tree.safe_increment(state.count) % k, acc)
    return GradientTransformation(init_fn, update_fn)


class MultiStepsState(NamedTuple):
    mini_step: object        # micro-batches accumulated since the last inner update
    gradient_step: object    # inner updates done
    inner_opt_state: object
    acc_grads: object


class MultiSteps:
    """Gradient accumulation: run the optimizer ``opt`` once every ``k`` calls, on the
    mean (or, with ``use_grad_mean=False``, the sum) of the ``k`` gradients.

    ``every_k_schedule`` is an int or a schedule of the number of inner updates done.
    Calls that do not complete a group return zero updates and leave the inner state
    untouched. ``init``/``update`` have the GradientTransformation signatures;
    :meth:`gradient_transformation` returns them as one. The accumulator takes the
    params' dtypes unless ``accumulator_dtype`` is given.

    The inner update is computed at every call and kept only at the k-th (selected with
    ``where``), so a step has no Python branch on array values.
    """

    def __init__(self, opt, every_k_schedule, use_grad_mean=True, accumulator_dtype=None):
        self._opt = opt
        if callable(every_k_schedule):
            self._every_k = every_k_schedule
        else:
            self._every_k = lambda step: every_k_schedule
        self._use_grad_mean = use_grad_mean
        self._accumulator_dtype = accumulator_dtype

    @property
    def inner_opt(self):
        return self._opt

    def init(self, params):
        return MultiStepsState(_tree.zero_count(params), _tree.zero_count(params),
                               self._opt.init(params),
                               _tree.zeros_like(params, self._accumulator_dtype))

    def update(self, updates, state, params=None):
        _tree.check_like("MultiSteps", updates, state.acc_grads, ref_name="the state")
        k = self._every_k(state.gradient_step)
        n = state.mini_step
        if self._use_grad_mean:
            acc = tree_map(lambda g, a: a + (g - a) / _tree.like(n + 1, a), updates,
                           state.acc_grads)
        else:
            acc = tree_map(lambda g, a: a + g, updates, state.acc_grads)
        final, new_inner = self._opt.update(_tree.cast_like(acc, updates),
                                            state.inner_opt_state, params)
        emit = n == k - 1

        def select(new, old):
            return fnp.astype(fnp.where(emit, new, old), _tree.dtype_of(old))
        new_state = MultiStepsState(
            mini_step=_tree.safe_increment(n) % k,
            gradient_step=fnp.where(emit, _tree.safe_increment(state.gradient_step),
                                    state.gradient_step),
            inner_opt_state=tree_map(select, new_inner, state.inner_opt_state),
            acc_grads=tree_map(lambda a: fnp.where(emit, fnp.zeros_like(a), a),
                               _tree.cast_like(acc, state.acc_grads)))
        out = tree_map(lambda u: fnp.where(emit, u, fnp.zeros_like(u)), final)
        return out, new_state

    def has_updated(self, state):
        """True when the last call to :meth:`update` ran the inner optimizer."""
        return fnp.logical_and(state.mini_step == 0, state.gradient_step > 0)

    def gradient_transformation(self):
        return GradientTransformation(self.init, self.update)

"""Schedules: functions of the step count that give a hyperparameter's value.

A schedule is called with the number of updates done *before* the current one: inside
an optimizer (``sgd(learning_rate=schedule)``, :func:`scale_by_schedule`,
:func:`inject_hyperparams`) the first update uses ``schedule(0)``, the n-th update
``schedule(n - 1)``. Schedules accept a Python int or an integer array (the int32 counter
of an optimizer state) and return a 0-d float array; they are written with
funcgrad.numpy, so they may be evaluated under a transformation too.
"""
import math

import funcgrad.numpy as fnp
from funcgrad.errors import FuncgradValueError


def constant_schedule(value):
    """``value`` at every step (step 0 and the end alike).

        >>> float(constant_schedule(0.1)(1000))
        0.1
    """
    return lambda count: value


def polynomial_schedule(init_value, end_value, power, transition_steps,
                        transition_begin=0):
    """Polynomial decay from ``init_value`` to ``end_value`` over ``transition_steps``.

    ``init_value`` for ``count <= transition_begin``; then
    ``(init_value - end_value) * (1 - k / transition_steps)**power + end_value`` with
    ``k = count - transition_begin``; ``end_value`` from
    ``count = transition_begin + transition_steps`` on. ``transition_steps <= 0`` gives a
    constant ``init_value``; a negative ``transition_begin`` counts as 0. As every
    schedule here, the n-th optimizer update uses step ``n - 1``.

        >>> s = polynomial_schedule(1.0, 0.0, power=2, transition_steps=4)
        >>> [float(s(i)) for i in range(6)]
        [1.0, 0.5625, 0.25, 0.0625, 0.0, 0.0]
    """
    if transition_steps <= 0:
        return constant_schedule(init_value)
    transition_begin = max(transition_begin, 0)

    def schedule(count):
        k = fnp.clip(count - transition_begin, 0, transition_steps)
        frac = 1 - k / transition_steps
        return (init_value - end_value) * frac ** power + end_value
    return schedule


def linear_schedule(init_value, end_value, transition_steps, transition_begin=0):
    """Linear interpolation from ``init_value`` (at ``count <= transition_begin``) to
    ``end_value`` (at ``count >= transition_begin + transition_steps``); the n-th
    optimizer update uses step ``n - 1``.

        >>> s = linear_schedule(1.0, 0.0, transition_steps=4)
        >>> [float(s(i)) for i in range(6)]
        [1.0, 0.75, 0.5, 0.25, 0.0, 0.0]
    """
    return polynomial_schedule(init_value, end_value, 1, transition_steps,
                               transition_begin)


def piecewise_constant_schedule(init_value, boundaries_and_scales=None):
    """``init_value`` times the product of the scales whose boundary has been reached.

    ``boundaries_and_scales`` maps a step to a non-negative factor; from step ``b`` on
    (``count >= b``) the value is multiplied by ``boundaries_and_scales[b]``. Value at
    step 0: ``init_value`` (unless a boundary is 0); after the last boundary,
    ``init_value`` times all the scales. The n-th optimizer update uses step ``n - 1``.
    Raises ``ValueError`` for a negative scale.

        >>> s = piecewise_constant_schedule(1.0, {2: 0.5, 4: 0.1})
        >>> [float(s(i)) for i in range(6)]
        [1.0, 1.0, 0.5, 0.5, 0.05, 0.05]
    """
    items = sorted((boundaries_and_scales or {}).items())
    if any(s < 0 for _, s in items):
        raise FuncgradValueError(
            f"piecewise_constant_schedule: scales must be non-negative, got {dict(items)}")

    def schedule(count):
        # Starting from the Python number keeps the constants Python floats (a numpy
        # scalar product of constants would be baked into a jit graph as np.float64).
        value = init_value
        for boundary, factor in items:
            value = fnp.where(count < boundary, value, value * factor)
        return value
    return schedule


def exponential_decay(init_value, transition_steps, decay_rate, transition_begin=0,
                      staircase=False, end_value=None):
    """``init_value * decay_rate**((count - transition_begin) / transition_steps)``.

    ``init_value`` for ``count <= transition_begin``; with ``staircase=True`` the exponent
    is floored (the value drops every ``transition_steps``). ``end_value`` bounds the
    value (a floor when ``decay_rate < 1``, a ceiling otherwise); without it there is no
    end. ``transition_steps <= 0`` or ``decay_rate == 0`` give a constant ``init_value``.
    The n-th optimizer update uses step ``n - 1``.

        >>> s = exponential_decay(1.0, transition_steps=2, decay_rate=0.5, staircase=True)
        >>> [float(s(i)) for i in range(5)]
        [1.0, 1.0, 0.5, 0.5, 0.25]
    """
    if transition_steps <= 0 or decay_rate == 0:
        return constant_schedule(init_value)
    transition_begin = max(transition_begin, 0)

    def schedule(count):
        k = count - transition_begin
        p = k / transition_steps
        if staircase:
            p = fnp.floor(p)
        value = fnp.where(k <= 0, init_value, init_value * fnp.power(decay_rate, p))
        if end_value is not None:
            bound = fnp.maximum if decay_rate < 1 else fnp.minimum
            value = bound(value, end_value)
        return value
    return schedule


def cosine_decay_schedule(init_value, decay_steps, alpha=0.0, exponent=1.0):
    """Cosine decay from ``init_value`` (step 0) to ``alpha * init_value`` (step
    ``decay_steps`` and after):
    ``init_value * ((1 - alpha) * (0.5 * (1 + cos(pi * count / decay_steps)))**exponent
    + alpha)``. The n-th optimizer update uses step ``n - 1``. Raises ``ValueError``
    unless ``decay_steps > 0``.

        >>> s = cosine_decay_schedule(1.0, decay_steps=4, alpha=0.1)
        >>> [round(float(s(i)), 4) for i in range(6)]
        [1.0, 0.8682, 0.55, 0.2318, 0.1, 0.1]
    """
    if not decay_steps > 0:
        raise FuncgradValueError(
            f"cosine_decay_schedule: decay_steps must be positive, got {decay_steps}")

    def schedule(count):
        k = fnp.minimum(count, decay_steps)
        cosine = 0.5 * (1 + fnp.cos(math.pi * k / decay_steps))
        return init_value * ((1 - alpha) * cosine ** exponent + alpha)
    return schedule


def join_schedules(schedules, boundaries):
    """Run ``schedules[0]`` until ``boundaries[0]``, then ``schedules[1]`` restarted at
    step 0, and so on: at ``count >= boundaries[i]`` the value is
    ``schedules[i + 1](count - boundaries[i])``. Step 0 gives ``schedules[0](0)``; the
    end is the last schedule's. The n-th optimizer update uses step ``n - 1``.

        >>> s = join_schedules([constant_schedule(1.0), linear_schedule(2.0, 0.0, 2)], [3])
        >>> [float(s(i)) for i in range(6)]
        [1.0, 1.0, 1.0, 2.0, 1.0, 0.0]
    """
    schedules, boundaries = list(schedules), list(boundaries)
    if len(schedules) != len(boundaries) + 1:
        raise FuncgradValueError(
            f"join_schedules: {len(schedules)} schedules need {len(schedules) - 1} "
            f"boundaries, got {len(boundaries)}")

    def schedule(count):
        value = schedules[0](count)
        for boundary, s in zip(boundaries, schedules[1:]):
            value = fnp.where(count < boundary, value, s(count - boundary))
        return value
    return schedule


def warmup_cosine_decay_schedule(init_value, peak_value, warmup_steps, decay_steps,
                                 end_value=0.0, exponent=1.0):
    """Linear warmup from ``init_value`` (step 0) to ``peak_value`` (step
    ``warmup_steps``), then cosine decay to ``end_value``, reached at step
    ``decay_steps`` (which counts the warmup) and kept after. The n-th optimizer update
    uses step ``n - 1``.

        >>> s = warmup_cosine_decay_schedule(0.0, 1.0, warmup_steps=2, decay_steps=4)
        >>> [round(float(s(i)), 4) for i in range(6)]
        [0.0, 0.5, 1.0, 0.5, 0.0, 0.0]
    """
    alpha = 0.0 if peak_value == 0 else end_value / peak_value
    return join_schedules(
        [linear_schedule(init_value, peak_value, warmup_steps),
         cosine_decay_schedule(peak_value, decay_steps - warmup_steps, alpha, exponent)],
        [warmup_steps])


def cosine_onecycle_schedule(transition_steps, peak_value, pct_start=0.3,
                             div_factor=25.0, final_div_factor=1e4):
    """The one-cycle schedule with cosine annealing.

    The shape of ``torch.optim.lr_scheduler.OneCycleLR(anneal_strategy='cos')``, but with
    optax's step placement (torch reaches the peak one step earlier, at
    ``pct_start * transition_steps - 1``, and the end at ``transition_steps - 1``).

    Starts at ``peak_value / div_factor`` (step 0), rises along a half cosine to
    ``peak_value`` at step ``int(pct_start * transition_steps)``, falls along a half
    cosine to ``peak_value / (div_factor * final_div_factor)`` at step
    ``transition_steps`` and stays there. The n-th optimizer update uses step ``n - 1``.
    Raises ``ValueError`` unless ``transition_steps > 0``.

        >>> s = cosine_onecycle_schedule(10, peak_value=1.0, div_factor=10.0,
        ...                              final_div_factor=100.0)
        >>> [round(float(s(i)), 4) for i in (0, 3, 10, 11)]
        [0.1, 1.0, 0.001, 0.001]
    """
    if transition_steps <= 0:
        raise FuncgradValueError(
            f"cosine_onecycle_schedule: transition_steps must be positive, got "
            f"{transition_steps}")
    peak_step = int(pct_start * transition_steps)
    start = peak_value / div_factor
    end = start / final_div_factor

    def interp(a, b, frac):
        return b + (a - b) / 2 * (fnp.cos(math.pi * frac) + 1)

    def schedule(count):
        up = interp(start, peak_value, count / max(peak_step, 1))
        down = interp(peak_value, end,
                      (count - peak_step) / max(transition_steps - peak_step, 1))
        return fnp.where(count < peak_step, up,
                         fnp.where(count < transition_steps, down, end))
    return schedule


one_cycle = cosine_onecycle_schedule

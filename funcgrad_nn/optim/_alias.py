"""Optimizers: chains of the building blocks, with optax's names, signatures and defaults.

``learning_rate`` is a number, a 0-d array or a schedule (a callable of the step count;
the first update uses ``learning_rate(0)``). Each optimizer returns a
:class:`GradientTransformation` whose updates are meant for :func:`apply_updates` (they
already carry the minus sign). Where the definition differs from torch.optim's, the
docstring says how.
"""
from ._base import identity
from ._combine import chain
from ._transform import (add_decayed_weights, scale_by_adadelta, scale_by_adam,
                         scale_by_adamax, scale_by_amsgrad, scale_by_learning_rate,
                         scale_by_lion, scale_by_rms, scale_by_rss, scale_by_stddev,
                         scale_by_trust_ratio, trace)


def sgd(learning_rate, momentum=None, nesterov=False, accumulator_dtype=None):
    """Stochastic gradient descent, with optional (Nesterov) momentum.

    ``update = -learning_rate * g``, or with momentum ``buf = g + momentum * buf`` and
    ``update = -learning_rate * buf`` (``-learning_rate * (g + momentum * buf)`` when
    ``nesterov``). Identical to torch.optim.SGD(lr, momentum, nesterov=...) with
    dampening 0 and no weight decay.

        >>> import numpy as np
        >>> tx = sgd(0.1, momentum=0.9)
        >>> s = tx.init(np.zeros(1))
        >>> u1, s = tx.update(np.ones(1), s)
        >>> u2, s = tx.update(np.ones(1), s)
        >>> u1, u2
        (array([-0.1]), array([-0.19]))
    """
    return chain(
        trace(momentum, nesterov, accumulator_dtype) if momentum is not None else identity(),
        scale_by_learning_rate(learning_rate))


def adam(learning_rate, b1=0.9, b2=0.999, eps=1e-8, eps_root=0.0, mu_dtype=None, *,
         nesterov=False):
    """Adam: ``update = -learning_rate * mu_hat / (sqrt(nu_hat + eps_root) + eps)`` (see
    :func:`scale_by_adam`). Same trajectory as torch.optim.Adam(lr, betas=(b1, b2), eps)
    to rounding. ``nesterov=True`` is :func:`nadam`."""
    return chain(scale_by_adam(b1, b2, eps, eps_root, mu_dtype, nesterov=nesterov),
                 scale_by_learning_rate(learning_rate))


def adamw(learning_rate, b1=0.9, b2=0.999, eps=1e-8, eps_root=0.0, mu_dtype=None,
          weight_decay=1e-4, mask=None, *, nesterov=False):
    """Adam with decoupled weight decay:
    ``update = -learning_rate * (adam_direction + weight_decay * params)``.

    Same trajectory as torch.optim.AdamW(lr, betas, eps, weight_decay) to rounding (torch
    first multiplies params by ``1 - lr * weight_decay``, which is the same step). The
    default ``weight_decay`` is optax's 1e-4 (torch's is 1e-2). ``mask`` limits the decay
    (see :func:`add_decayed_weights`). ``update`` needs ``params``.
    """
    return chain(scale_by_adam(b1, b2, eps, eps_root, mu_dtype, nesterov=nesterov),
                 add_decayed_weights(weight_decay, mask),
                 scale_by_learning_rate(learning_rate))


def nadam(learning_rate, b1=0.9, b2=0.999, eps=1e-8, eps_root=0.0, mu_dtype=None, *,
          nesterov=True):
    """NAdam (Adam with Nesterov momentum), optax's definition (see
    :func:`scale_by_adam`); torch.optim.NAdam also decays ``b1`` over the steps
    (``momentum_decay``) and so gives other trajectories."""
    return adam(learning_rate, b1, b2, eps, eps_root, mu_dtype, nesterov=nesterov)


def amsgrad(learning_rate, b1=0.9, b2=0.999, eps=1e-8, eps_root=0.0, mu_dtype=None):
    """AMSGrad (see :func:`scale_by_amsgrad`: the running max is over the bias-corrected
    second moment, as optax; torch.optim.Adam(amsgrad=True) differs)."""
    return chain(scale_by_amsgrad(b1, b2, eps, eps_root, mu_dtype),
                 scale_by_learning_rate(learning_rate))


def rmsprop(learning_rate, decay=0.9, eps=1e-8, initial_scale=0.0, eps_in_sqrt=True,
            centered=False, momentum=None, nesterov=False, bias_correction=False):
    """RMSProp: ``update = -learning_rate * g / sqrt(nu + eps)`` (see
    :func:`scale_by_rms`; :func:`scale_by_stddev` when ``centered``), then momentum
    ``trace(momentum, nesterov)`` on the scaled update.

    optax's defaults differ from torch.optim.RMSprop's: ``decay=0.9`` (torch's
    ``alpha=0.99``) and ``eps`` inside the square root. ``rmsprop(lr, decay=0.99,
    eps_in_sqrt=False, centered=..., momentum=...)`` follows torch step for step.
    """
    if centered:
        rescale = scale_by_stddev(decay, eps, initial_scale, eps_in_sqrt, bias_correction)
    else:
        rescale = scale_by_rms(decay, eps, initial_scale, eps_in_sqrt, bias_correction)
    return chain(rescale, scale_by_learning_rate(learning_rate),
                 trace(momentum, nesterov) if momentum is not None else identity())


def adagrad(learning_rate, initial_accumulator_value=0.1, eps=1e-7):
    """Adagrad: ``s = s + g**2`` from ``initial_accumulator_value``,
    ``update = -learning_rate * g / sqrt(s + eps)`` (see :func:`scale_by_rss`).

    optax's definition: torch.optim.Adagrad starts ``s`` at 0, puts ``eps=1e-10`` outside
    the root and has an ``lr_decay``; ``adagrad(lr, 0.0, 0.0)`` equals
    ``torch.optim.Adagrad(lr, eps=0.0)`` (for non-zero gradients).
    """
    return chain(scale_by_rss(initial_accumulator_value, eps),
                 scale_by_learning_rate(learning_rate))


def adadelta(learning_rate=None, rho=0.9, eps=1e-6, weight_decay=0.0,
             weight_decay_mask=None):
    """Adadelta (see :func:`scale_by_adadelta`), with optional L2 weight decay added to
    the gradient first; equals torch.optim.Adadelta(lr, rho, eps, weight_decay).

    ``learning_rate=None`` means 1.0 (torch's default): the update is the descent step
    ``-d``. (optax skips the scaling for ``None`` and so returns ``+d``.)
    """
    return chain(add_decayed_weights(weight_decay, weight_decay_mask),
                 scale_by_adadelta(rho, eps),
                 scale_by_learning_rate(1.0 if learning_rate is None else learning_rate))


def adamax(learning_rate, b1=0.9, b2=0.999, eps=1e-8):
    """Adamax (see :func:`scale_by_adamax`); equals torch.optim.Adamax(lr, betas, eps)."""
    return chain(scale_by_adamax(b1, b2, eps), scale_by_learning_rate(learning_rate))


def lamb(learning_rate, b1=0.9, b2=0.999, eps=1e-6, eps_root=0.0, weight_decay=0.0,
         mask=None):
    """LAMB: the Adam direction plus ``weight_decay * params``, rescaled per leaf by the
    trust ratio ``||p|| / ||u||`` (see :func:`scale_by_trust_ratio`), times
    ``-learning_rate``. ``update`` needs ``params``."""
    return chain(scale_by_adam(b1, b2, eps, eps_root),
                 add_decayed_weights(weight_decay, mask),
                 scale_by_trust_ratio(),
                 scale_by_learning_rate(learning_rate))


def lion(learning_rate, b1=0.9, b2=0.99, mu_dtype=None, weight_decay=1e-3, mask=None):
    """Lion: ``update = -learning_rate * (sign((1-b1)*g + b1*mu) + weight_decay * p)``,
    ``mu = b2*mu + (1-b2)*g`` (see :func:`scale_by_lion`). ``update`` needs ``params``
    unless ``weight_decay == 0``."""
    return chain(scale_by_lion(b1, b2, mu_dtype),
                 add_decayed_weights(weight_decay, mask),
                 scale_by_learning_rate(learning_rate))

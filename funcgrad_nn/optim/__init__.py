"""funcgrad_nn.optim: composable, stateless optimizers and schedules (optax's names and
semantics), built on funcgrad's public API.

An optimizer is a :class:`GradientTransformation`, a pair of pure functions::

    tx = optim.adam(1e-3)
    opt_state = tx.init(params)
    for x, y in batches:
        grads = funcgrad.grad(loss)(params, x, y)
        updates, opt_state = tx.update(grads, opt_state, params)
        params = optim.apply_updates(params, updates)

Optimizers are chains of small transformations (``scale_by_adam``, ``trace``,
``add_decayed_weights``, ``clip_by_global_norm``, ...) that can be recombined with
``chain``, restricted with ``masked``, split into parameter groups with
``multi_transform`` and given adjustable hyperparameters with ``inject_hyperparams``
(read and changed by name with ``tree_get`` and ``tree_set``).
Step counts are int32 arrays; the first update uses schedule value ``schedule(0)``.
``update`` and ``apply_updates`` check that the gradients have the parameters' tree
structure and shapes (naming the key path of a mismatch). Coming from ``torch.optim``
(parameter groups, StepLR by epochs, reading the learning rate): see
``docs/pytorch-optimizers.md``.
"""
from ._accumulation import (ApplyEveryState, EmaState, MultiSteps, MultiStepsState,
                            apply_every, ema)
from ._alias import (adadelta, adagrad, adam, adamax, adamw, amsgrad, lamb, lion, nadam,
                     rmsprop, sgd)
from ._base import (EmptyState, GradientTransformation, apply_updates, identity,
                    set_to_zero)
from ._clipping import clip, clip_by_global_norm, global_norm
from ._combine import (MaskedNode, MaskedState, MultiTransformState, chain, freeze, masked,
                       multi_transform)
from ._inject import InjectHyperparamsState, inject_hyperparams
from ._schedule import (constant_schedule, cosine_decay_schedule, cosine_onecycle_schedule,
                        exponential_decay, join_schedules, linear_schedule, one_cycle,
                        piecewise_constant_schedule, polynomial_schedule,
                        warmup_cosine_decay_schedule)
from ._train_state import TrainState
from ._tree_utils import tree_get, tree_set
from ._transform import (AddDecayedWeightsState, ScaleByAdaDeltaState, ScaleByAdamaxState,
                         ScaleByAdamState, ScaleByAmsgradState, ScaleByLionState,
                         ScaleByRmsState, ScaleByRssState, ScaleByScheduleState,
                         ScaleByStddevState, TraceState, add_decayed_weights, scale,
                         scale_by_adadelta, scale_by_adam, scale_by_adamax, scale_by_amsgrad,
                         scale_by_learning_rate, scale_by_lion, scale_by_rms, scale_by_rss,
                         scale_by_schedule, scale_by_stddev, scale_by_trust_ratio, trace)

__all__ = [
    # interface
    "GradientTransformation", "EmptyState", "apply_updates", "TrainState",
    # building blocks
    "identity", "set_to_zero", "scale", "scale_by_adam", "scale_by_amsgrad",
    "scale_by_adamax", "scale_by_rms", "scale_by_stddev", "scale_by_rss",
    "scale_by_adadelta", "scale_by_lion", "scale_by_trust_ratio", "scale_by_schedule",
    "scale_by_learning_rate", "trace", "add_decayed_weights", "clip", "clip_by_global_norm",
    "global_norm", "ema", "apply_every", "MultiSteps",
    # composition
    "chain", "masked", "freeze", "multi_transform", "inject_hyperparams", "MaskedNode",
    # optimizers
    "sgd", "adam", "adamw", "nadam", "amsgrad", "rmsprop", "adagrad", "adadelta", "adamax",
    "lamb", "lion",
    # schedules
    "constant_schedule", "linear_schedule", "polynomial_schedule",
    "piecewise_constant_schedule", "exponential_decay", "cosine_decay_schedule",
    "warmup_cosine_decay_schedule", "join_schedules", "cosine_onecycle_schedule",
    "one_cycle",
    # reading and changing hyperparameters in a state
    "tree_get", "tree_set",
    # states
    "AddDecayedWeightsState", "ApplyEveryState", "EmaState", "InjectHyperparamsState",
    "MaskedState", "MultiStepsState", "MultiTransformState", "ScaleByAdaDeltaState",
    "ScaleByAdamState", "ScaleByAdamaxState", "ScaleByAmsgradState", "ScaleByLionState",
    "ScaleByRmsState", "ScaleByRssState", "ScaleByScheduleState", "ScaleByStddevState",
    "TraceState",
]

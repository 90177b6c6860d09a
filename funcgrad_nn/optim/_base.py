"""The optimizer interface: a pair of pure functions, and how updates reach parameters."""
from typing import Any, Callable, NamedTuple

import numpy as np

import funcgrad.numpy as fnp
from funcgrad.tree_util import tree_map

from . import _tree


class GradientTransformation(NamedTuple):
    """A pair of pure functions ``(init, update)`` that transform gradients into updates.

    ``state = tx.init(params)`` builds the state (a pytree) from the parameters;
    ``updates, state = tx.update(grads, state, params=None)`` maps gradients to the
    updates to add to the parameters (see :func:`apply_updates`) and returns the next
    state. Neither function mutates anything: the caller owns params and state.

        >>> import numpy as np
        >>> from funcgrad_nn import optim
        >>> tx = optim.sgd(learning_rate=0.1)
        >>> params = {"w": np.array([1.0, 2.0])}
        >>> state = tx.init(params)
        >>> updates, state = tx.update({"w": np.array([1.0, -1.0])}, state)
        >>> optim.apply_updates(params, updates)["w"]
        array([0.9, 2.1])
    """
    init: Callable[[Any], Any]
    update: Callable[..., Any]


class EmptyState(NamedTuple):
    """The state of a transformation that keeps none."""


def init_empty_state(params):
    del params
    return EmptyState()


def identity():
    """The transformation that returns the updates unchanged (state: :class:`EmptyState`)."""
    def update_fn(updates, state, params=None):
        del params
        return updates, state
    return GradientTransformation(init_empty_state, update_fn)


def set_to_zero():
    """The transformation that replaces every update by zeros of the same shape and dtype
    (state: :class:`EmptyState`); with :func:`masked` it freezes parameters."""
    def update_fn(updates, state, params=None):
        del params
        return _tree.zeros_like(updates), state
    return GradientTransformation(init_empty_state, update_fn)


def apply_updates(params, updates):
    """``params + updates`` leafwise, each result cast back to its parameter's dtype.

    A float32 parameter stays float32 even when the update was computed in float64 (a
    float64 learning-rate array, a step counter); ``None`` leaves stay ``None``.

        >>> import numpy as np
        >>> p = {"w": np.ones(2, np.float32)}
        >>> apply_updates(p, {"w": np.array([0.5, 0.25])})["w"].dtype
        dtype('float32')

    Raises ``ValueError`` naming the key path when ``updates`` does not have the
    structure of ``params`` or a leaf's shape differs from its parameter's (a
    broadcastable update would otherwise change the parameter's shape).
    """
    _tree.check_like("apply_updates", updates, params)
    def add(p, u):
        dtype = _tree.dtype_of(p)
        s = p + u
        if not hasattr(s, "shape") or isinstance(s, np.generic):   # scalars -> 0-d
            s = fnp.asarray(s)          # (arrays of any module, tracers pass as they are)
        return fnp.astype(s, dtype)
    return tree_map(add, params, updates)

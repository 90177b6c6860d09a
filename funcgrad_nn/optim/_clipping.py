"""Clipping: bound updates elementwise or by their global norm."""
import funcgrad.numpy as fnp
from funcgrad.tree_util import tree_map

from . import _tree
from ._base import GradientTransformation, init_empty_state


def global_norm(tree):
    """The l2 norm of all the leaves of ``tree`` taken together.

        >>> import numpy as np
        >>> float(global_norm({"a": np.array([3.0]), "b": np.array([[4.0]])}))
        5.0
    """
    return fnp.sqrt(_tree.tree_sum_sq(tree))


def clip(max_delta):
    """Clip every update elementwise to ``[-max_delta, max_delta]`` (state
    :class:`EmptyState`)."""
    def update_fn(updates, state, params=None):
        del params
        def f(g):
            m = _tree.like(max_delta, g)
            return fnp.clip(g, -m, m)
        return tree_map(f, updates), state
    return GradientTransformation(init_empty_state, update_fn)


def clip_by_global_norm(max_norm):
    """Rescale all updates together by ``max_norm / global_norm(updates)`` when that
    norm exceeds ``max_norm``; leave them unchanged otherwise (state
    :class:`EmptyState`). Same rule as ``torch.nn.utils.clip_grad_norm_`` without its
    ``1e-6`` in the denominator.
    """
    def update_fn(updates, state, params=None):
        del params
        g_norm = global_norm(updates)
        small = g_norm < _tree.as_number(max_norm)

        def f(t):
            n = fnp.astype(fnp.where(small, 1, g_norm), _tree.dtype_of(t))
            return fnp.where(small, t, t / n * _tree.like(max_norm, t))
        return tree_map(f, updates), state
    return GradientTransformation(init_empty_state, update_fn)

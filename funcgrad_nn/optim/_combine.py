"""Composition: chain transformations, apply one to part of the parameters, or a
different one to each group of parameters."""
from typing import NamedTuple

from funcgrad.errors import FuncgradValueError
from funcgrad.tree_util import tree_leaves, tree_map

from ._base import GradientTransformation, set_to_zero


def chain(*transforms):
    """Apply ``transforms`` one after the other; the state is the tuple of their states.

        >>> import numpy as np
        >>> from funcgrad_nn import optim
        >>> tx = optim.chain(optim.clip(1.0), optim.scale(-0.5))
        >>> tx.update(np.array([4.0, -0.2]), tx.init(None))[0]
        array([-0.5,  0.1])
    """
    inits = tuple(t.init for t in transforms)
    updates_fns = tuple(t.update for t in transforms)

    def init_fn(params):
        return tuple(f(params) for f in inits)

    def update_fn(updates, state, params=None):
        if len(state) != len(updates_fns):
            raise FuncgradValueError(
                f"chain: the state holds {len(state)} inner states but the chain has "
                f"{len(updates_fns)} transformations; build the state with this chain's "
                "init()")
        new_state = []
        for f, s in zip(updates_fns, state):
            updates, s = f(updates, s, params)
            new_state.append(s)
        return updates, tuple(new_state)
    return GradientTransformation(init_fn, update_fn)


class MaskedNode(NamedTuple):
    """An empty subtree standing for a parameter that a :func:`masked` transformation
    does not see."""


class MaskedState(NamedTuple):
    inner_state: object


def _mask_tree(mask, tree, what, tree_name="parameters"):
    try:
        return tree_map(lambda m, p: p if m else MaskedNode(), mask, tree)
    except ValueError as e:
        raise FuncgradValueError(
            f"{what}: the {tree_name} do not match the mask: the mask must have the "
            "structure of the parameters (or be a prefix of it) with booleans at its "
            f"leaves, and the {tree_name} the structure of the parameters: {e}") from None


def masked(inner, mask):
    """Apply ``inner`` only to the leaves where ``mask`` is True; the others pass
    through unchanged and ``inner`` never sees them (its state has no entry for them).

    ``mask`` is a tree of booleans with the structure of the params (or a prefix of it:
    a boolean at a subtree covers the whole subtree), or a callable that returns one given
    the params (at ``init``) or the updates (at ``update``). State: :class:`MaskedState`.

        >>> import numpy as np
        >>> from funcgrad_nn import optim
        >>> tx = optim.masked(optim.scale(10.0), {"w": True, "b": False})
        >>> g = {"w": np.array([1.0]), "b": np.array([1.0])}
        >>> u, _ = tx.update(g, tx.init(g))
        >>> u["w"], u["b"]
        (array([10.]), array([1.]))
    """
    def get_mask(tree):
        return mask(tree) if callable(mask) else mask

    def init_fn(params):
        return MaskedState(inner.init(_mask_tree(get_mask(params), params, "masked")))

    def update_fn(updates, state, params=None):
        m = get_mask(updates)
        masked_updates = _mask_tree(m, updates, "masked", "updates")
        masked_params = None if params is None else _mask_tree(m, params, "masked")
        new_updates, inner_state = inner.update(masked_updates, state.inner_state,
                                                masked_params)
        merged = tree_map(lambda keep, new, old: new if keep else old, m, new_updates,
                          updates)
        return merged, MaskedState(inner_state)
    return GradientTransformation(init_fn, update_fn)


def freeze(mask):
    """Zero the updates of the leaves where ``mask`` is True (``True`` alone freezes
    everything); the others pass through. ``masked(set_to_zero(), mask)``."""
    return masked(set_to_zero(), mask)


class MultiTransformState(NamedTuple):
    inner_states: dict


def multi_transform(transforms, param_labels):
    """Parameter groups: apply ``transforms[label]`` to the leaves labelled ``label``.

    ``transforms`` maps each label to a transformation; ``param_labels`` is a tree of
    labels with the structure of the params (or a prefix of it), or a callable that
    returns one given the params (at ``init``) or the updates (at ``update``). A callable
    can label by key path::

        def labels(params):
            return tree_map_with_path(
                lambda path, _: "bias" if keystr(path).endswith("['bias']") else "weight",
                params)

    Every label must have a transformation, or ``init`` raises. Each transformation
    sees only its group (see :func:`masked`). State: :class:`MultiTransformState`.

        >>> import numpy as np
        >>> from funcgrad_nn import optim
        >>> tx = optim.multi_transform({"slow": optim.sgd(1e-5), "fast": optim.sgd(0.05)},
        ...                            {"weight": "slow", "bias": "fast"})
        >>> g = {"weight": np.ones(1), "bias": np.ones(1)}
        >>> u, _ = tx.update(g, tx.init(g))
        >>> u["weight"], u["bias"]
        (array([-1.e-05]), array([-0.05]))
    """
    transforms = dict(transforms)

    def get_labels(tree):
        return param_labels(tree) if callable(param_labels) else param_labels

    def group_mask(labels, group):
        return tree_map(lambda label: label == group, labels)

    def init_fn(params):
        labels = get_labels(params)
        missing = set(tree_leaves(labels)) - set(transforms)
        if missing:
            raise FuncgradValueError(
                f"multi_transform: the labels {sorted(map(repr, missing))} have no "
                f"transformation; transforms has keys {sorted(map(repr, transforms))}. "
                "Add a transformation for each label (optim.set_to_zero() to freeze).")
        return MultiTransformState({
            group: masked(tx, group_mask(labels, group)).init(params)
            for group, tx in transforms.items()})

    def update_fn(updates, state, params=None):
        labels = get_labels(updates)
        new_states = {}
        for group, tx in transforms.items():
            updates, new_states[group] = masked(tx, group_mask(labels, group)).update(
                updates, state.inner_states[group], params)
        return updates, MultiTransformState(new_states)
    return GradientTransformation(init_fn, update_fn)


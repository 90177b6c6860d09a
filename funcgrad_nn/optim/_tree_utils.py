"""Read and change values by name anywhere in a pytree: hyperparameters in an optimizer
state (optax.tree_utils' ``tree_get`` and ``tree_set``)."""
import numpy as np

from funcgrad.tree_util import DictKey, GetAttrKey, keystr, tree_flatten_with_path


def _children(node):
    """``[(key, child), ...]`` one level down and the node's treedef; ``[]`` for a leaf."""
    pairs, treedef = tree_flatten_with_path(node, is_leaf=lambda x: x is not node)
    if pairs and pairs[0][0] == ():
        return [], treedef
    return [(path[0], child) for path, child in pairs], treedef


def _name(key):
    if isinstance(key, DictKey):
        return key.key
    if isinstance(key, GetAttrKey):
        return key.name
    return None


def _matches(tree, names, filtering):
    """``[(path, value)]`` of every node (leaf or subtree) whose last key is in
    ``names`` and that ``filtering(path, value)`` accepts, outermost first."""
    found = []

    def walk(node, path):
        for key, child in _children(node)[0]:
            p = path + (key,)
            name = _name(key)
            if (isinstance(name, str) and name in names
                    and (filtering is None or filtering(p, child))):
                found.append((p, child))
            walk(child, p)
    walk(tree, ())
    return found


def tree_get(tree, key, default=None, filtering=None):
    """The value stored under the name ``key`` (a dict key or a NamedTuple field)
    anywhere in ``tree``; ``default`` when there is none.

    ``filtering(key_path, value) -> bool`` keeps only some matches (for instance one
    parameter group's). Raises ``KeyError`` when more than one value matches.

        >>> import numpy as np
        >>> from funcgrad_nn import optim
        >>> tx = optim.inject_hyperparams(optim.adam)(learning_rate=1e-3)
        >>> state = tx.init({"w": np.zeros(2)})
        >>> optim.tree_get(state, "learning_rate")
        array(0.001)
    """
    found = _matches(tree, {key}, filtering)
    if not found:
        return default
    if len(found) > 1:
        raise KeyError(
            f"tree_get: {len(found)} values are named {key!r}, at "
            f"{', '.join(keystr(p) for p, _ in found)}; pass filtering=lambda path, value: "
            "... to choose one (e.g. by a parameter group's label in keystr(path))")
    return found[0][1]


def _like(new, old):
    """``new`` with ``old``'s kind: a number replacing a 0-d NumPy array becomes a 0-d
    array of that dtype, so that the state's dtypes (and a jitted step's signature) do
    not change."""
    if (isinstance(old, np.ndarray) and old.ndim == 0
            and isinstance(new, (int, float, complex, np.generic))
            and not isinstance(new, (bool, np.bool_))
            and np.can_cast(np.asarray(new).dtype, old.dtype, "same_kind")):
        return np.asarray(new, dtype=old.dtype)
    return new


def tree_set(tree, filtering=None, /, **values):
    """A copy of ``tree`` where each value named ``name`` (a dict key or a NamedTuple
    field, at any depth) is replaced by ``values[name]``; ``tree`` is not changed.

    ``filtering(key_path, value) -> bool`` limits the replacement to some matches (one
    parameter group, say); without it every match is replaced. A number replacing a 0-d
    array keeps the array's dtype. Raises ``KeyError`` for a name that matches nothing.

        >>> import numpy as np
        >>> from funcgrad_nn import optim
        >>> tx = optim.inject_hyperparams(optim.sgd)(learning_rate=0.1)
        >>> state = optim.tree_set(tx.init({"w": np.zeros(2)}), learning_rate=0.01)
        >>> optim.tree_get(state, "learning_rate")
        array(0.01)
    """
    found = _matches(tree, set(values), filtering)
    missing = set(values) - {_name(p[-1]) for p, _ in found}
    if missing:
        raise KeyError(
            f"tree_set: no value named {', '.join(map(repr, sorted(missing)))} in the "
            f"tree{' (with this filtering)' if filtering is not None else ''}")
    targets = {p: values[_name(p[-1])] for p, _ in found}

    def rebuild(node, path):
        if path in targets:
            return _like(targets[path], node)
        kids, treedef = _children(node)
        if not kids:
            return node
        return treedef.unflatten([rebuild(c, path + (k,)) for k, c in kids])
    return rebuild(tree, ())

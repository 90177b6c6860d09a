"""``summary``, a table of a model's layers, output shapes and parameter counts, and
``count_params``."""
from __future__ import annotations

import numpy as np

import funcgrad.tree_util as tu

from ._base import _child_of, _frames, _shape


def count_params(params):
    """The number of scalars in a parameters pytree."""
    return int(sum(int(np.prod(_shape(x))) for x in tu.tree_leaves(params)))


def _subtree(tree, path):
    for name in path:
        tree = _child_of(tree, name, None) if tree is not None else None
    return tree


def summary(model, params, input_shape, dtype=np.float32, state=None, print_fn=print):
    """Print a table of ``model``'s layers with their output shapes and parameter counts.

    Args:
      model: a Module.
      params: its parameters (from ``init``).
      input_shape: the input's shape including the batch axis; or an example input array.
      dtype: the dtype of the zeros input made from ``input_shape``.
      state: the state (default ``model.init_state()``).
      print_fn: where each line goes (default ``print``).

    The model runs once in evaluation mode (``apply(..., train=False)``). Rows are
    indented by depth; a layer's count includes its children's. Returns None.

    Example:
        >>> import funcgrad.random as fr
        >>> from funcgrad_nn import Linear, ReLU, Sequential
        >>> m = Sequential(Linear(4, 8), ReLU(), Linear(8, 2))
        >>> summary(m, m.init(fr.key(0)), (5, 4))
        Layer (type)            Output shape      Param #
        =================================================
        Sequential              (5, 2)                 58
          0 (Linear)            (5, 8)                 40
          1 (ReLU)              (5, 8)                  0
          2 (Linear)            (5, 2)                 18
        =================================================
        Total params: 58
    """
    if hasattr(input_shape, "shape") and hasattr(input_shape, "dtype"):
        x = input_shape
    else:
        x = np.zeros(tuple(input_shape), dtype=dtype)
    rec = {}
    _frames.recorder = rec
    try:
        model.apply(params, model.init_state() if state is None else state, x)
    finally:
        _frames.recorder = None
    rows = []
    for name, m in model.named_modules():
        path = name.split(".") if name else []
        depth = len(path)
        label = type(m).__name__ if not name else f"{path[-1]} ({type(m).__name__})"
        shape = rec.get(id(m), "-")
        rows.append(("  " * depth + label, str(shape), count_params(_subtree(params, path))))
    w0 = max(24, max(len(r[0]) for r in rows) + 2)
    w1 = max(14, max(len(r[1]) for r in rows) + 2)
    width = w0 + w1 + 11
    print_fn(f"{'Layer (type)':<{w0}}{'Output shape':<{w1}}{'Param #':>11}")
    print_fn("=" * width)
    for label, shape, n in rows:
        print_fn(f"{label:<{w0}}{shape:<{w1}}{n:>11,}")
    print_fn("=" * width)
    print_fn(f"Total params: {count_params(params):,}")

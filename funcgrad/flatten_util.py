"""``ravel_pytree``: a pytree of arrays as one flat vector, and the way back."""
import numpy as np

from . import numpy as fnp
from ._src.tree_util import tree_flatten, tree_unflatten


def ravel_pytree(pytree):
    """Return ``(flat, unravel)``: ``flat`` is a 1-D array of all leaves (in tree order,
    promoted to a common dtype) and ``unravel(flat)`` rebuilds the tree with the original
    shapes and dtypes. Differentiable both ways.

    Example:
        >>> from funcgrad.flatten_util import ravel_pytree
        >>> flat, unravel = ravel_pytree({"a": np.ones(2), "b": np.zeros((1, 2))})
        >>> flat
        array([1., 1., 0., 0.])
        >>> unravel(flat)["b"].shape
        (1, 2)
    """
    leaves, treedef = tree_flatten(pytree)
    leaves = [fnp.asarray(x) for x in leaves]
    shapes = [tuple(x.shape) for x in leaves]
    dtypes = [x.dtype for x in leaves]
    sizes = [int(np.prod(s)) for s in shapes]
    if leaves:
        dtype = np.result_type(*dtypes)
        flat = fnp.concatenate([fnp.astype(fnp.ravel(x), dtype) for x in leaves])
    else:
        dtype = np.float64
        flat = np.zeros(0)
    offsets = np.cumsum([0] + sizes).tolist()

    def unravel(v):
        if tuple(v.shape) != (offsets[-1],):
            raise ValueError(
                f"unravel: expected a vector of shape ({offsets[-1]},), got {tuple(v.shape)}")
        parts = [fnp.astype(fnp.reshape(v[a:b], s), d)
                 for a, b, s, d in zip(offsets[:-1], offsets[1:], shapes, dtypes)]
        return tree_unflatten(treedef, parts)

    return flat, unravel


__all__ = ["ravel_pytree"]

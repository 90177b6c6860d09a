"""Pytree arithmetic shared by the optimizer modules (private).

Every helper is written with funcgrad.numpy so that an optimizer step can itself be
differentiated (a hypergradient through ``update``) and so that float32 trees stay
float32: Python scalars are weak, concrete numpy scalars and 0-d arrays are turned into
Python numbers, and other arrays or traced hyperparameters are cast to the dtype of the
leaf they meet.
"""
import numpy as np

import funcgrad
import funcgrad.numpy as fnp
from funcgrad.errors import FuncgradValueError
from funcgrad.tree_util import (keystr, tree_flatten, tree_flatten_with_path, tree_leaves,
                                tree_map)

_INT32_MAX = int(np.iinfo(np.int32).max)
_PY_SCALARS = (bool, int, float, complex)


def zero_count(like=None):
    """A fresh step counter: a 0-d int32 array, in the array module (NumPy, CuPy, ...)
    of the first array leaf of ``like`` (the parameters), so that a whole optimizer
    state lives on the parameters' device; NumPy when ``like`` has no array leaf."""
    for leaf in tree_leaves(like):
        if hasattr(leaf, "dtype") and hasattr(leaf, "shape"):
            return fnp.zeros_like(leaf, shape=(), dtype=np.int32)
    return np.zeros((), np.int32)


def safe_increment(count):
    """``count + 1``, saturating at the largest int32 instead of wrapping around."""
    return fnp.where(count < _INT32_MAX, count + 1, count)


def dtype_of(x):
    return x.dtype if hasattr(x, "dtype") else np.result_type(x)


def is_inexact(x):
    return fnp.issubdtype(dtype_of(x), fnp.inexact)


def as_number(s):
    """A concrete numpy scalar or 0-d array as a Python number; anything else as is.

    Python numbers are weak (they take the dtype of the array they meet) and are what a
    staged graph keeps as literals, so hyperparameters are best held as such.
    """
    if isinstance(s, np.generic) or (isinstance(s, np.ndarray) and s.ndim == 0):
        return s.item()
    return s


def like(s, x):
    """Hyperparameter ``s`` ready to meet leaf ``x`` without promoting it.

    Concrete scalars become Python numbers (which never promote); arrays and traced
    values are cast to ``x``'s dtype when ``x`` is floating or complex.
    """
    s = as_number(s)
    if isinstance(s, _PY_SCALARS) or not is_inexact(x):
        return s
    return fnp.asarray(s, dtype=dtype_of(x))


def zeros_like(tree, dtype=None):
    return tree_map(lambda x: fnp.zeros_like(x, dtype=dtype), tree)


def full_like(tree, value):
    return tree_map(lambda x: fnp.full_like(x, value), tree)


def cast(tree, dtype):
    """Cast every leaf to ``dtype`` (no-op for ``dtype=None``)."""
    if dtype is None:
        return tree
    return tree_map(lambda x: fnp.astype(x, dtype), tree)


def cast_like(tree, ref):
    return tree_map(lambda x, r: fnp.astype(x, dtype_of(r)), tree, ref)


def abs_sq(x):
    """``|x|**2`` elementwise, real-valued for complex ``x``."""
    if fnp.issubdtype(dtype_of(x), fnp.complexfloating):
        return fnp.real(x * fnp.conj(x))
    return x * x


def update_moment(g_tree, m_tree, decay, order):
    """Exponential moving average ``decay * m + (1 - decay) * g**order`` leafwise."""
    def ewma(g, m):
        d = like(decay, m)
        return (1 - d) * (g if order == 1 else abs_sq(g)) + d * m
    return tree_map(ewma, g_tree, m_tree)


def bias_correction(tree, decay, count):
    """``m / (1 - decay**count)`` leafwise; the correction is computed in the counter's
    precision then cast to each leaf's dtype, so float32 moments stay float32."""
    correction = 1 - as_number(decay) ** count
    return tree_map(lambda t: t / fnp.astype(correction, dtype_of(t)), tree)


def tree_sum_sq(tree):
    leaves = tree_leaves(tree)
    if not leaves:
        return fnp.zeros(())
    total = fnp.sum(abs_sq(leaves[0]))
    for x in leaves[1:]:
        total = total + fnp.sum(abs_sq(x))
    return total


def safe_norm(x, min_norm):
    """``max(||x||, min_norm)`` with a finite derivative at ``x = 0``."""
    sq = fnp.sum(abs_sq(x))
    small = sq <= min_norm * min_norm
    return fnp.where(small, min_norm, fnp.sqrt(fnp.where(small, 1, sq)))


def need_params(name, params):
    if params is None:
        raise FuncgradValueError(
            f"{name}: update() needs the current parameters; call "
            "tx.update(grads, state, params) instead of tx.update(grads, state)")


def shape_of(x):
    shape = getattr(x, "shape", None)
    return np.shape(x) if shape is None else tuple(shape)


def check_like(where, tree, ref, tree_name="updates", ref_name="the parameters"):
    """Raise unless ``tree`` has ``ref``'s structure and each leaf its reference's shape.

    Optimizers call this every step (under ``jit`` only while tracing), so the passing
    case is one walk over both trees that compares container types, keys and shapes;
    only a failure computes key paths to name the offending leaf.
    """
    if not _same_shapes(tree, ref):
        _raise_mismatch(where, tree, ref, tree_name, ref_name)


_LEAVES = (np.ndarray, np.generic, funcgrad.Tracer, bool, int, float, complex)


def _same_shapes(a, b):
    kind = type(a)
    if kind is np.ndarray:                          # the common leaf first
        shape = getattr(b, "shape", None)
        if shape is not None and isinstance(b, _LEAVES[:3]):
            return a.shape == shape
    elif kind is dict:
        if type(b) is not dict or a.keys() != b.keys():
            return False
        for k, v in a.items():
            if not _same_shapes(v, b[k]):
                return False
        return True
    elif kind is list or kind is tuple or (isinstance(a, tuple) and hasattr(a, "_fields")):
        if type(b) is not kind or len(a) != len(b):
            return False
        for x, y in zip(a, b):
            if not _same_shapes(x, y):
                return False
        return True
    elif a is None:
        return b is None
    if isinstance(a, _LEAVES) and isinstance(b, _LEAVES):  # leaves of any kind may meet
        return shape_of(a) == shape_of(b)
    # other containers (registered classes) and arrays of other modules (CuPy)
    leaves, treedef = tree_flatten(a)
    ref_leaves, ref_treedef = tree_flatten(b)
    return (treedef == ref_treedef
            and [shape_of(x) for x in leaves] == [shape_of(x) for x in ref_leaves])


def _raise_mismatch(where, tree, ref, tree_name, ref_name):
    leaves, treedef = tree_flatten(tree)
    ref_pairs, ref_treedef = tree_flatten_with_path(ref)
    if treedef == ref_treedef:
        for (path, r), x in zip(ref_pairs, leaves):
            if shape_of(x) != shape_of(r):
                raise FuncgradValueError(
                    f"{where}: shape mismatch at key path {keystr(path) or '<root>'}: "
                    f"{tree_name} {shape_of(x)}, {ref_name} {shape_of(r)}; the {tree_name} "
                    "must have the shapes of the parameters (did the loss broadcast a "
                    "parameter, or were the gradients taken for another model?)")
        return                          # the fast comparison was too strict: all is well
    detail = ""
    try:
        tree_map(lambda r, x: None, ref, tree)
    except FuncgradValueError as e:
        detail = " " + str(e).split(": ", 1)[1]
    raise FuncgradValueError(
        f"{where}: {tree_name} and {ref_name} have different tree structures:{detail}\n"
        f"  {tree_name}: {treedef}\n  {ref_name}: {ref_treedef}")

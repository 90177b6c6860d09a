"""NumPy 2's array-API names (``acos``, ``bitwise_left_shift``, ``unstack``, ...) and the
few composites that had no home yet (``copy``, ``block``, ``matvec``): each is written
with funcgrad.numpy functions, so it differentiates, batches and stages like them."""
import builtins
import collections

import numpy as np

from .._src.core import Tracer
from .._src.errors import FuncgradTypeError, FuncgradValueError
from .._src.prims.contractions import matmul
from .._src.prims.misc import cross as _cross
from .._src.prims.misc import unique
from .._src.prims.elementwise import (arccos, arccosh, arcsin, arcsinh, arctan, arctan2,
                                      arctanh, conj, invert, left_shift, right_shift)
from .._src.prims.shape import (_as_array, atleast_1d, concatenate, expand_dims, moveaxis,
                                reshape, swapaxes)

# the array API's spellings of the same functions
acos, acosh, asin, asinh = arccos, arccosh, arcsin, arcsinh
atan, atan2, atanh = arctan, arctan2, arctanh
bitwise_left_shift, bitwise_right_shift, bitwise_invert = left_shift, right_shift, invert
isdtype = np.isdtype


def copy(a, order="K", subok=False):
    """A copy of ``a``. A traced value is returned as it is: funcgrad arrays are
    immutable, so a copy could never be told apart (and the derivative flows through)."""
    if isinstance(a, (list, tuple)):
        a = _as_array(a)                 # (a list may hold traced values)
    if isinstance(a, Tracer):
        return a
    xp = type(a).__module__.split(".")[0]
    if xp == "cupy":
        return a.copy()
    return np.copy(a, order=order, subok=subok)


def matrix_transpose(x, /):
    """Swap the last two axes (each matrix of a stack transposed)."""
    x = _as_array(x)
    if np.ndim(x) < 2:
        raise FuncgradValueError(
            f"matrix_transpose: needs at least 2 dimensions, got shape {np.shape(x)}")
    return swapaxes(x, -1, -2)


def unstack(x, /, *, axis=0):
    """The slices of ``x`` along ``axis``, as a tuple (the inverse of ``stack``)."""
    x = moveaxis(x, axis, 0)
    return tuple(x[i] for i in range(x.shape[0]))


def matvec(x1, x2, /):
    """Matrix-vector products over stacks: ``x1[..., M, N] @ x2[..., N]``."""
    return matmul(x1, expand_dims(x2, -1))[..., 0]


def vecmat(x1, x2, /):
    """Vector-matrix products over stacks: ``conj(x1[..., M]) @ x2[..., M, N]``."""
    return matmul(expand_dims(conj(x1), -2), x2)[..., 0, :]


def block(arrays):
    """Assemble an array from nested lists of blocks (NumPy's ``block``): the innermost
    lists are joined along the last axis, the next ones along the axis before, and so on;
    blocks with fewer dimensions get leading axes of length one."""
    def depth_of(a, where):
        if isinstance(a, tuple):
            raise FuncgradTypeError(
                f"block: {where} is a tuple; only lists may be nested (as in NumPy)")
        if isinstance(a, list):
            if not a:
                raise FuncgradValueError(f"block: {where} is an empty list")
            depths = {depth_of(b, f"{where}[{i}]") for i, b in enumerate(a)}
            if len(depths) != 1:
                raise FuncgradValueError(
                    f"block: the lists in {where} are nested to different depths")
            return depths.pop() + 1
        return 0

    def max_ndim(a):
        return builtins.max(max_ndim(b) for b in a) if isinstance(a, list) else np.ndim(a)

    depth = depth_of(arrays, "arrays")
    ndim = builtins.max(depth, max_ndim(arrays))

    def build(a, level):
        if level == depth:
            a = atleast_1d(a) if np.ndim(a) == 0 else a
            shape = np.shape(a)
            return reshape(a, (1,) * (ndim - len(shape)) + tuple(shape))
        return concatenate([build(b, level + 1) for b in a], axis=-(depth - level))

    return build(arrays, 0)


# NumPy 2's unique_* family: flattened input, NaNs kept distinct, results as named tuples
UniqueAllResult = collections.namedtuple(
    "UniqueAllResult", ["values", "indices", "inverse_indices", "counts"])
UniqueCountsResult = collections.namedtuple("UniqueCountsResult", ["values", "counts"])
UniqueInverseResult = collections.namedtuple(
    "UniqueInverseResult", ["values", "inverse_indices"])


def unique_values(x, /):
    """The sorted unique elements of ``x`` (flattened); they carry ``x``'s derivative."""
    return unique(x, equal_nan=False)


def unique_counts(x, /):
    """``(values, counts)`` of the unique elements of ``x``."""
    return UniqueCountsResult(*unique(x, return_counts=True, equal_nan=False))


def unique_inverse(x, /):
    """``(values, inverse_indices)``; ``values[inverse_indices]`` rebuilds ``x`` (the
    indices have ``x``'s shape)."""
    x = _as_array(x)
    values, inverse = unique(x, return_inverse=True, equal_nan=False)
    return UniqueInverseResult(values, np.reshape(inverse, np.shape(x)))


def unique_all(x, /):
    """``(values, indices, inverse_indices, counts)`` of the unique elements of ``x``."""
    x = _as_array(x)
    values, first, inverse, counts = unique(x, return_index=True, return_inverse=True,
                                            return_counts=True, equal_nan=False)
    return UniqueAllResult(values, first, np.reshape(inverse, np.shape(x)), counts)


def linalg_cross(x1, x2, /, *, axis=-1):
    """``numpy.linalg.cross``: the cross product of 3-vectors along ``axis``."""
    if np.shape(x1)[axis] != 3 or np.shape(x2)[axis] != 3:
        raise FuncgradValueError(
            f"linalg.cross: both vectors need 3 components along axis {axis}, got shapes "
            f"{np.shape(x1)} and {np.shape(x2)}")
    return _cross(x1, x2, axis=axis)

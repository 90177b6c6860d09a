"""``r_`` and ``c_``: NumPy's index-trick concatenators, on traced values.

Each entry of the index becomes an array the way NumPy's ``AxisConcatenator`` makes it
(slices become ``arange``/``linspace``, scalars and arrays are raised to ``ndmin``
dimensions and placed by ``trans1d``), all are cast to one result dtype, and the pieces
are joined with ``concatenate`` -- so the derivative flows to every traced entry.
"""
from __future__ import annotations

import numpy as np

from ..core import Tracer
from ..errors import FuncgradTypeError, FuncgradValueError
from . import shape as _s
from .creation import arange as _arange
from .creation import linspace as _linspace

__all__ = ["r_", "c_"]


def _parse_directive(text, axis, ndmin, trans1d):
    """``'axis'`` or ``'axis,ndmin[,trans1d]'`` as integers; the matrix directives
    ``'r'``/``'c'`` (which build ``np.matrix``) and anything else raise."""
    if text in ("r", "c"):
        raise FuncgradValueError(
            f"r_/c_: the matrix directive {text!r} builds an np.matrix, which funcgrad does "
            "not support; use '0,2' (rows) or '1,2,0' (columns) for 2-D arrays instead")
    parts = text.split(",")
    try:
        nums = [int(p) for p in parts]
    except ValueError:
        nums = None
    if nums is None or not 1 <= len(nums) <= 3:
        raise FuncgradValueError(
            f"r_/c_: unknown directive {text!r}; give 'axis', 'axis,ndmin' or "
            "'axis,ndmin,trans1d' with integers, e.g. r_['0,2', a, b]")
    axis = nums[0]
    if len(nums) > 1:
        ndmin = nums[1]
    if len(nums) > 2:
        trans1d = nums[2]
    return axis, ndmin, trans1d


def _from_slice(sl, ndmin, trans1d):
    vals = (sl.start, sl.stop, sl.step)
    if any(isinstance(v, Tracer) for v in vals):
        raise FuncgradTypeError(
            "r_/c_: slice bounds must be concrete numbers (they fix the result's length); "
            "got a traced value in a slice")
    start = 0 if sl.start is None else sl.start
    step = 1 if sl.step is None else sl.step
    if isinstance(step, (complex, np.complexfloating)):
        # an imaginary step is a point count, endpoint included (NumPy's mgrid rule)
        out = _linspace(start, sl.stop, num=int(abs(step)))
    else:
        out = _arange(start, sl.stop, step)
    if ndmin > 1:
        out = _s.reshape(out, (1,) * (ndmin - 1) + (out.shape[0],))
        if trans1d != -1:
            out = _s.swapaxes(out, -1, trans1d)
    return out


def _from_array(item, ndmin, trans1d):
    arr = _s._as_array(item)
    nd = arr.ndim
    if nd < ndmin:
        arr = _s.reshape(arr, (1,) * (ndmin - nd) + tuple(arr.shape))
        if trans1d != -1:
            # the item's own axes move to start at trans1d, the new unit axes fill the rest
            k2 = ndmin - nd
            k1 = trans1d + k2 + 1 if trans1d < 0 else trans1d
            order = list(range(ndmin))
            arr = _s.transpose(arr, order[:k1] + order[k2:] + order[k1:k2])
    return arr


class _Concatenator:
    """Index it to concatenate: ``r_[a, b]``; see the module docstring."""

    def __init__(self, name, axis, ndmin, trans1d):
        self._name = name
        self._defaults = (axis, ndmin, trans1d)

    def __getitem__(self, key):
        key = key if isinstance(key, tuple) else (key,)
        axis, ndmin, trans1d = self._defaults
        pieces, dtypes = [], []
        for k, item in enumerate(key):
            if isinstance(item, str):
                if k != 0:
                    raise FuncgradValueError(
                        f"{self._name}: a string directive must be the first entry, got "
                        f"{item!r} at position {k}")
                axis, ndmin, trans1d = _parse_directive(item, axis, ndmin, trans1d)
                continue
            if isinstance(item, slice):
                piece = _from_slice(item, ndmin, trans1d)
                dtypes.append(piece.dtype)
            elif type(item) in np.ScalarType:
                # Python and NumPy scalars take part in dtype promotion as values
                piece = _s.reshape(np.asarray(item), (1,) * max(ndmin, 1))
                dtypes.append(item)
            else:
                piece = _from_array(item, ndmin, trans1d)
                dtypes.append(piece.dtype)
            pieces.append(piece)
        if not pieces:
            return np.array([])
        dtype = np.result_type(*dtypes)
        pieces = [_s.astype(p, dtype) for p in pieces]
        if ndmin < 1 and any(p.ndim == 0 for p in pieces):
            pieces = [_s.reshape(p, (-1,)) for p in pieces]
        return _s.concatenate(pieces, axis=axis)

    def __len__(self):
        return 0


r_ = _Concatenator("r_", axis=0, ndmin=1, trans1d=-1)
r_.__doc__ = """Concatenate along the first axis by indexing, as ``numpy.r_``.

Supported entries: arrays and traced values (any number of dimensions), Python/NumPy
scalars, concrete slices (``0:3``, ``0:1:5j`` for 5 points with the end included), and a
first-entry string directive ``'axis'``, ``'axis,ndmin'`` or ``'axis,ndmin,trans1d'``.
The result is differentiable in every traced entry.

Raises:
    FuncgradValueError: the matrix directives ``'r'``/``'c'`` (``np.matrix`` is not
        supported), a malformed directive, or a directive that is not the first entry.
    FuncgradTypeError: a traced value inside a slice.

Example:
    >>> import numpy as np, funcgrad.numpy as fnp
    >>> fnp.r_[0:3, np.array([5.0]), 7]
    array([0., 1., 2., 5., 7.])
"""

c_ = _Concatenator("c_", axis=-1, ndmin=2, trans1d=0)
c_.__doc__ = """Stack along the last axis by indexing, as ``numpy.c_``: 1-D entries become
columns (``r_['-1,2,0', ...]``). Same entries, directives and errors as ``r_``.

Example:
    >>> import numpy as np, funcgrad.numpy as fnp
    >>> fnp.c_[np.array([1.0, 2.0]), np.array([3.0, 4.0])]
    array([[1., 3.],
           [2., 4.]])
"""

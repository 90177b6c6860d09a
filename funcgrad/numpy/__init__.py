"""funcgrad.numpy: a NumPy-like namespace whose functions differentiate in forward and
reverse mode, on NumPy (and CuPy) arrays.

Use it as ``import funcgrad.numpy as fnp``. Functions accept plain arrays, Python scalars
and traced values; on plain arrays they return plain arrays. Plain ``numpy`` calls on a
traced value (``np.sin(x)``, ``np.sum(x)``) are routed here too.

Every function not listed in ``__all__`` is unsupported: calling its NumPy twin on a
traced value raises a ``TypeError`` naming it.
"""
import sys as _sys

import numpy as _onp

from .._src import core as _core
from . import _dispatch

from .._src.prims.contractions import (dot, einsum, inner, matmul, outer, tensordot,
                                       vdot)
from .._src.prims.creation import (arange, array, asarray, empty, empty_like, eye, full,
                                   full_like, identity, linspace, logspace, ones, ones_like,
                                   tri, zeros, zeros_like)
from .._src.prims.elementwise import (abs, absolute, add, arccos, arccosh, arcsin,
                                      arcsinh, arctan, arctan2, arctanh, around,
                                      bitwise_and, bitwise_not, bitwise_or, bitwise_xor,
                                      cbrt, ceil, clip, conj, conjugate, copysign, cos, cosh,
                                      deg2rad, degrees, divide, equal, exp, exp2, expm1, fix,
                                      floor, floor_divide, fmax, fmin, fmod, greater,
                                      greater_equal, heaviside, hypot, imag, invert, isfinite, isinf,
                                      isnan, less, less_equal, log, log1p, log2, log10,
                                      logaddexp, logaddexp2, logical_and, logical_not,
                                      logical_or, logical_xor, maximum, minimum, mod,
                                      multiply, negative, not_equal, positive, pow, power,
                                      rad2deg, radians, real, reciprocal, remainder, rint,
                                      round, sign, signbit, sin, sinh, sqrt, square,
                                      subtract, tan, tanh, true_divide, trunc, where)
from .._src.prims.indexing import _getitem, _scatter, argwhere, at, flatnonzero, nonzero
from .._src.prims.reductions import (all, amax, amin, any, argmax, argmin, max, mean, min,
                                     prod, std, sum, var)
from .._src.prims.shape import (array_split, astype, atleast_1d, atleast_2d, atleast_3d,
                                broadcast_arrays, broadcast_shapes, broadcast_to,
                                column_stack, concat, concatenate, dsplit, dstack,
                                expand_dims, hsplit, hstack, moveaxis, ndim, permute_dims,
                                ravel, reshape, row_stack, shape, size, split, squeeze,
                                stack, swapaxes, transpose, vsplit, vstack)

from .._src.prims.index_tricks import c_, r_
from .._src.prims.indexing_ops import *  # noqa: F401,F403  (take, choose, index constructors)
from .._src.prims.manipulation import *  # noqa: F401,F403  (joining, reordering)
from .._src.prims.scans import *  # noqa: F401,F403  (cumulative ops, differences, sorting)
from .._src.prims.statistics import *  # noqa: F401,F403  (quantiles, nan reductions, cov)
from .._src.prims.misc import *  # noqa: F401,F403  (angle, kron, cross, interp, convolve, ...)

# dtypes and constants: NumPy's own objects, so `fnp.float32 is numpy.float32`.
from numpy import (bool_, complex64, complex128, complexfloating, dtype, e, euler_gamma,
                   finfo, float16, float32, float64, floating, generic, iinfo, inexact, inf,
                   int8, int16, int32, int64, integer, issubdtype, nan, ndarray, newaxis,
                   number, pi, promote_types, signedinteger, uint8, uint16,
                   uint32, uint64, unsignedinteger)

bool = bool_

can_cast = _onp.can_cast

# NumPy 2's array-API names and composites (copy, block, unstack, matvec, ...)
from ._numpy2 import (acos, acosh, asin, asinh, atan, atan2, atanh, bitwise_invert,
                      bitwise_left_shift, bitwise_right_shift, block, copy, isdtype,
                      left_shift, matrix_transpose, matvec, right_shift, unique_all,
                      unique_counts, unique_inverse, unique_values, unstack, vecmat)

__all__ = [n for n in dir() if not n.startswith("_")]

# Tracer's methods, the interpreters and the rules reach these functions through the core,
# which imports nothing above it: this namespace registers itself there.
_core.register_namespace(_sys.modules[__name__], _dispatch.array_ufunc,
                         _dispatch.array_function)


def __getattr__(name):
    # funcgrad.numpy.linalg and .fft are imported on first use (keeps the import quick)
    if name in ("fft", "linalg"):
        import importlib
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'funcgrad.numpy' has no attribute {name!r}")

"""Which array module an array belongs to, and dtype helpers.

This is the only layer that knows about CuPy; it never imports it eagerly, so CuPy stays
optional. Everything above asks ``array_module(x)`` instead of importing an array library.
"""
from __future__ import annotations

import sys

import numpy as np

_float0 = np.dtype([("float0", np.void, 0)])
float0 = _float0
"""The dtype of the gradient of an integer input (JAX's ``float0``): it carries no data."""


def array_module(*arrays):
    """Return the array module (``numpy`` or ``cupy``) that ``arrays`` live in.

    Python scalars and NumPy arrays belong to NumPy. Mixing NumPy and CuPy arrays raises
    a ``TypeError`` that says how to move one of them.
    """
    cupy = sys.modules.get("cupy")
    if cupy is None:
        return np
    found = None
    for a in arrays:
        if isinstance(a, cupy.ndarray):
            found = cupy
        elif isinstance(a, np.ndarray) and a.ndim > 0 and found is cupy:
            raise TypeError(
                "cannot mix a NumPy array and a CuPy array in one operation; move one of "
                "them first with funcgrad.device_put(x, 'gpu') or funcgrad.device_put(x, 'cpu')"
            )
    return found or np


def is_inexact(dtype) -> bool:
    """True for floating and complex dtypes: the ones that carry derivatives."""
    return np.dtype(dtype).kind in "fc"


def is_float0(dtype) -> bool:
    return np.dtype(dtype) == _float0


def dtype_name(x) -> str:
    """A short ``float32[3,4]`` description of an array-like, for error messages."""
    shape = getattr(x, "shape", None)
    dtype = getattr(x, "dtype", None)
    if shape is None:
        return type(x).__name__
    return f"{np.dtype(dtype).name}[{','.join(str(d) for d in shape)}]"


def scatter_add(out, idx, values):
    """In-place ``out[idx] += values`` with repeated indices accumulating."""
    xp = array_module(out)
    if xp is np:
        np.add.at(out, idx, values)
    else:
        import cupyx
        cupyx.scatter_add(out, idx, values)

"""Helpers shared by the functional modules: array views, ``axis``/``dim`` and tuple
arguments, reductions, the batch axis, constants in the input's array module."""
from __future__ import annotations

import numbers

import numpy as np

import funcgrad
import funcgrad.numpy as fnp
from funcgrad.errors import FuncgradTypeError, FuncgradValueError


def _arr(x):
    """An array view of ``x`` (tracers and arrays pass through; lists become arrays)."""
    if isinstance(x, funcgrad.Tracer) or (hasattr(x, "shape") and hasattr(x, "dtype")):
        return x
    return fnp.asarray(x)


def _is_concrete(x):
    return not isinstance(x, funcgrad.Tracer)


def _axis(axis, dim, default, op):
    """NumPy's ``axis`` with PyTorch's ``dim`` as an alias."""
    if dim is not None:
        if axis is not None and axis != dim:
            raise FuncgradTypeError(f"{op}: got both axis={axis} and dim={dim}; give one")
        return dim
    return default if axis is None else axis


def _ntuple(v, n, what, op):
    if isinstance(v, numbers.Integral):
        return (int(v),) * n
    v = tuple(int(i) for i in v)
    if len(v) == 1:
        return v * n
    if len(v) != n:
        raise FuncgradValueError(f"{op}: {what} must be an int or a tuple of {n} ints, got {v}")
    return v


def _reduce(loss, reduction, op):
    if reduction == "mean":
        return fnp.mean(loss)
    if reduction == "sum":
        return fnp.sum(loss)
    if reduction == "none":
        return loss
    raise FuncgradValueError(
        f"{op}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def _bcast_channel(v, ndim, axis=1):
    """Reshape a per-channel vector ``(C,)`` to broadcast along ``axis`` of an ``ndim`` array."""
    shape = [1] * ndim
    shape[axis] = -1
    return fnp.reshape(v, tuple(shape))


def _arange_like(x, n, dtype=np.int64):
    """``arange(n)`` of ``dtype`` in ``x``'s array module (NumPy, CuPy, ...), so that the
    constant can meet ``x`` (a device array never mixes with a NumPy array). Built from
    :func:`funcgrad.numpy.ones_like`, a concrete constant even when ``x`` is traced."""
    r = fnp.cumsum(fnp.ones_like(x, shape=(int(n),), dtype=np.int64)) - 1
    return r if np.dtype(dtype) == np.int64 else fnp.astype(r, dtype)


def _float_dtype(x):
    dt = np.dtype(x.dtype)
    return dt if dt.kind in "fc" else np.dtype(np.float64)


def _batched(x, nd, op, what="input"):
    """``(x with a batch axis, whether one was added)``; checks the rank."""
    if x.ndim == nd + 2:
        return x, False
    if x.ndim == nd + 1:
        return x[None], True
    raise FuncgradValueError(
        f"{op}: expected a {nd + 2}-D (batched) or {nd + 1}-D (unbatched) {what}, got shape "
        f"{tuple(x.shape)}")

"""Array creation. Results are constants: they carry no derivative, except ``array`` /
``asarray`` of a traced value, which return it unchanged, and ``full``/``full_like`` with a
traced fill value, which broadcast it (differentiably)."""
from __future__ import annotations

import numpy as np

from ..backend import _default_device, array_module, is_device_array, on_default_device
from ..core import Tracer, xp_of
from ..errors import FuncgradTypeError
from . import shape as _shape
from .elementwise import power


def _contains_tracer(obj):
    if isinstance(obj, Tracer):
        return True
    if isinstance(obj, (list, tuple)):
        return any(_contains_tracer(o) for o in obj)
    return False


def asarray(a, dtype=None, order=None, *, copy=None):
    """``a`` as an array. A traced value is returned as it is (cast to ``dtype`` if given);
    nested lists of traced values are stacked, differentiably. A Python number traced by
    jit (weakly typed) becomes a 0-d array of its dtype, as ``numpy.asarray`` makes one
    (a float32 array times it is then float64, as without jit)."""
    if isinstance(a, Tracer):
        a = _shape.strong(a)
        return a if dtype is None else _shape.astype(a, dtype)
    if isinstance(a, (list, tuple)) and _contains_tracer(a):
        if not a:
            return np.asarray(a, dtype=dtype)
        r = _shape.stack([asarray(x) for x in a])
        return r if dtype is None else _shape.astype(r, dtype)
    if is_device_array(a):
        xp = array_module(a)
        return xp.asarray(a, dtype=dtype)
    if _default_device.get() is not None:
        return on_default_device(lambda xp: xp.asarray(_to_host(a), dtype=dtype))
    return np.asarray(a, dtype=dtype, order=order)


def array(object, dtype=None, *, copy=True, order="K", ndmin=0):
    """Like ``numpy.array``; traced values pass through (arrays are immutable, so no
    copy is needed)."""
    if isinstance(object, Tracer) or (isinstance(object, (list, tuple)) and _contains_tracer(object)):
        r = asarray(object, dtype=dtype)
        while r.ndim < ndmin:
            r = _shape.expand_dims(r, 0)
        return r
    if is_device_array(object):
        xp = array_module(object)
        return xp.array(object, dtype=dtype, copy=copy, ndmin=ndmin)
    if _default_device.get() is not None:
        return on_default_device(lambda xp: xp.array(_to_host(object), dtype=dtype, ndmin=ndmin))
    return np.array(object, dtype=dtype, copy=copy, order=order, ndmin=ndmin)


def _to_host(a):
    """Host data for a device: NumPy arrays as they are, nested sequences as arrays."""
    return a if isinstance(a, (np.ndarray, np.generic, int, float, complex, bool)) else np.asarray(a)


_xp_of = xp_of          # the array module of a value or of the value under a tracer


def zeros(shape, dtype=float):
    """A new array of zeros (float64 by default), on the default device."""
    shape = _shape.static_shape(shape, "zeros")
    return on_default_device(lambda xp: xp.zeros(shape, dtype=dtype))


def ones(shape, dtype=float):
    """A new array of ones (float64 by default), on the default device."""
    shape = _shape.static_shape(shape, "ones")
    return on_default_device(lambda xp: xp.ones(shape, dtype=dtype))


def empty(shape, dtype=float):
    """An uninitialised array (here: zeros, so results are deterministic)."""
    return zeros(shape, dtype)


def full(shape, fill_value, dtype=None):
    """An array of ``shape`` filled with ``fill_value`` (which may be traced)."""
    shape = _shape.static_shape(shape, "full")
    if isinstance(fill_value, Tracer):
        v = fill_value if dtype is None else _shape.astype(fill_value, dtype)
        return _shape.broadcast_to(v, shape)
    return on_default_device(lambda xp: xp.full(shape, fill_value, dtype=dtype))


def _like(a, dtype, shape):
    dtype = a.dtype if dtype is None else np.dtype(dtype)
    shape = a.shape if shape is None else _shape.static_shape(shape, "zeros_like")
    return _xp_of(a), dtype, shape


def zeros_like(a, dtype=None, shape=None):
    """Zeros with ``a``'s shape and dtype (a constant, even if ``a`` is traced)."""
    if not hasattr(a, "dtype"):
        a = _shape._as_array(a)
    xp, dtype, shape = _like(a, dtype, shape)
    return xp.zeros(shape, dtype)


def ones_like(a, dtype=None, shape=None):
    """Ones with ``a``'s shape and dtype (a constant)."""
    if not hasattr(a, "dtype"):
        a = _shape._as_array(a)
    xp, dtype, shape = _like(a, dtype, shape)
    return xp.ones(shape, dtype)


def empty_like(a, dtype=None, shape=None):
    """Like :func:`zeros_like` (funcgrad never hands out uninitialised memory)."""
    return zeros_like(a, dtype, shape)


def full_like(a, fill_value, dtype=None, shape=None):
    """An array like ``a`` filled with ``fill_value`` (which may be traced)."""
    if not hasattr(a, "dtype"):
        a = _shape._as_array(a)
    xp, dtype, shape = _like(a, dtype, shape)
    if isinstance(fill_value, Tracer):
        return _shape.broadcast_to(_shape.astype(fill_value, dtype), shape)
    return xp.full(shape, fill_value, dtype)


def arange(start, stop=None, step=None, dtype=None):
    """Evenly spaced values in ``[start, stop)`` (a constant)."""
    args = [v for v in (start, stop, step) if v is not None]
    if any(isinstance(v, Tracer) for v in args):
        raise FuncgradTypeError(
            "arange: start/stop/step must be concrete numbers, not traced values (the "
            "length of the result would depend on them)")
    if stop is None:
        start, stop = 0, start
    return on_default_device(
        lambda xp: xp.arange(start, stop, 1 if step is None else step, dtype=dtype))


def linspace(start, stop, num=50, endpoint=True, retstep=False, dtype=None, axis=0):
    """``num`` evenly spaced samples from ``start`` to ``stop``; differentiable in
    ``start`` and ``stop``."""
    start, stop = (_shape._as_array(v) if isinstance(v, (list, tuple)) else v
                   for v in (start, stop))
    if not (isinstance(start, Tracer) or isinstance(stop, Tracer)):
        if is_device_array(start) or is_device_array(stop):
            return array_module(start, stop).linspace(
                start, stop, num, endpoint=endpoint, retstep=retstep, dtype=dtype, axis=axis)
        return on_default_device(lambda xp: xp.linspace(
            start, stop, num, endpoint=endpoint, retstep=retstep, dtype=dtype, axis=axis))
    if axis != 0:
        raise FuncgradTypeError("linspace: axis must be 0 when start/stop are traced")
    div = (num - 1) if endpoint else num
    steps = np.arange(num, dtype=np.result_type(start.dtype if hasattr(start, "dtype") else float,
                                                stop.dtype if hasattr(stop, "dtype") else float))
    step = (stop - start) / div if div > 0 else stop - start
    shape = (num,) + (1,) * _shape._ndim(step)
    r = _shape.reshape(steps, shape) * step + start
    if dtype is not None:
        r = _shape.astype(r, dtype)
    return (r, step) if retstep else r


def logspace(start, stop, num=50, endpoint=True, base=10.0, dtype=None, axis=0):
    """``base ** linspace(start, stop, num)``."""
    r = power(base, linspace(start, stop, num, endpoint=endpoint, axis=axis))
    return r if dtype is None else _shape.astype(r, dtype)


def eye(N, M=None, k=0, dtype=float):
    """A 2-D array with ones on the ``k``-th diagonal."""
    N, M = _shape.static_shape((N, M), "eye")
    return on_default_device(lambda xp: xp.eye(N, M, k, dtype=dtype))


def identity(n, dtype=float):
    """The ``n`` by ``n`` identity matrix."""
    return on_default_device(lambda xp: xp.identity(n, dtype=dtype))


def tri(N, M=None, k=0, dtype=float):
    return on_default_device(lambda xp: xp.tri(N, M, k, dtype=dtype))

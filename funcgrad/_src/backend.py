"""Which array module an array belongs to, and dtype helpers.

This is the only layer that knows about CuPy; it never imports it eagerly, so CuPy stays
optional. Everything above asks ``array_module(x)`` instead of importing an array library.
"""
from __future__ import annotations

import contextvars
import sys
import types

import numpy as np

from .errors import FuncgradTypeError
from .tree_util import tree_map

_float0 = np.dtype([("float0", np.void, 0)])
float0 = _float0
"""The dtype of the gradient of an integer input (JAX's ``float0``): it carries no data."""


_FOREIGN = {}
"""Array types of foreign array modules other than CuPy (type -> module); filled by
``_register_array_type`` (the test stand-in in ``testing_backend`` registers itself)."""


def _register_array_type(array_type, module):
    _FOREIGN[array_type] = module


def array_module(*arrays):
    """Return the array module (``numpy`` or ``cupy``) that ``arrays`` live in.

    Python scalars, NumPy scalars and NumPy arrays belong to NumPy. Mixing a NumPy array
    of one or more dimensions with a CuPy array (in any order), or arrays of two foreign
    modules, raises a ``TypeError`` that says how to move one of them.
    """
    cupy = sys.modules.get("cupy")
    if cupy is None and not _FOREIGN:
        return np
    found = host = None
    for a in arrays:
        xp = _FOREIGN.get(type(a))
        if xp is None and cupy is not None and isinstance(a, cupy.ndarray):
            xp = cupy
        if xp is not None:
            if found is not None and xp is not found:
                raise FuncgradTypeError(
                    f"cannot mix arrays of {found.__name__} and {xp.__name__} in one "
                    "operation; move one of them first with funcgrad.device_put")
            found = xp
        elif isinstance(a, np.ndarray) and a.ndim > 0:
            host = a
    if found is not None and host is not None:
        raise FuncgradTypeError(
            f"cannot mix a NumPy array ({dtype_name(host)}) and a {found.__name__} array in "
            "one operation; move one of them first with funcgrad.device_put(x, 'gpu') or "
            "funcgrad.device_put(x, 'cpu')")
    return found or np


def is_inexact(dtype) -> bool:
    """True for floating and complex dtypes: the ones that carry derivatives."""
    return np.dtype(dtype).kind in "fc"


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
    elif hasattr(xp, "scatter_add"):   # a registered foreign module (the test stand-in)
        xp.scatter_add(out, idx, values)
    else:
        import cupyx      # optional: only reached with CuPy arrays
        cupyx.scatter_add(out, idx, values)


# ---- devices -----------------------------------------------------------------------------
def _cupy():
    try:
        import cupy       # optional: funcgrad runs without CuPy
    except ImportError:
        return None
    return cupy


def devices():
    """The devices funcgrad can place arrays on: ``["cpu"]`` plus ``"gpu:N"`` for each
    CUDA device that CuPy sees (``CUDA_VISIBLE_DEVICES`` is respected by CUDA itself)."""
    out = ["cpu"]
    cupy = _cupy()
    if cupy is not None:
        try:
            n = cupy.cuda.runtime.getDeviceCount()
        except Exception:      # CuPy installed without a usable driver
            n = 0
        out += [f"gpu:{i}" for i in range(n)]
    return out


def _parse_device(device, what="device_put"):
    if device is None or device == "cpu":
        return "cpu", None
    if isinstance(device, str) and device.startswith("cuda"):
        device = "gpu" + device[4:]          # PyTorch's name for the same devices
    if isinstance(device, str) and (device == "gpu" or device.startswith("gpu:")):
        try:
            return "gpu", int(device[4:]) if ":" in device else 0
        except ValueError:
            pass
    elif isinstance(device, types.ModuleType) and device in _FOREIGN.values():
        return "foreign", device        # a registered foreign array module (tests)
    else:
        ident = getattr(device, "id", None)
        if isinstance(ident, int):       # a cupy.cuda.Device
            return "gpu", int(ident)
    raise ValueError(f"{what}: unknown device {device!r}; use 'cpu', 'gpu' or 'gpu:N' "
                     "('cuda'/'cuda:N' are aliases; funcgrad.devices() lists them)")


def _check_gpu(index, what):
    cupy = _cupy()
    if cupy is None:
        raise ValueError(
            f"{what}: placing arrays on a GPU needs CuPy (pip install 'funcgrad[gpu]', "
            "or the cupy-cudaXX wheel matching your CUDA); funcgrad.devices() lists what is "
            "available")
    if f"gpu:{index}" not in devices():
        raise ValueError(f"{what}: gpu:{index} is not available; devices: {devices()}")
    return cupy


_default_device = contextvars.ContextVar("funcgrad_default_device", default=None)


class default_device:
    """Context manager: arrays that funcgrad creates from no array argument (``zeros``,
    ``arange``, ``asarray`` of host data, ``random.key``, ...) and ``device_put(x)``
    without a device go to ``device`` ("cpu", "gpu", "gpu:N" or a ``cupy.cuda.Device``;
    "cuda"/"cuda:N" are aliases of "gpu"/"gpu:N") inside the block. Operations on
    existing arrays still run where their inputs live.

    Like ``jax.default_device``; it follows the current thread and asyncio task
    (a context variable), and blocks nest. Raises a ValueError naming the fix when the
    device is unknown or not available.

    Example:
        >>> import funcgrad, funcgrad.numpy as fnp
        >>> with funcgrad.default_device("cpu"):
        ...     type(fnp.zeros(2)).__name__
        'ndarray'
    """

    def __init__(self, device):
        kind, where = _parse_device(device, "default_device")
        if kind == "gpu":
            _check_gpu(where, "default_device")
        self._device = None if kind == "cpu" else (kind, where)
        self._tokens = []

    def __enter__(self):
        self._tokens.append(_default_device.set(self._device))
        return self

    def __exit__(self, *exc):
        _default_device.reset(self._tokens.pop())
        return False


def on_default_device(make):
    """``make(xp)`` with ``xp`` the array module of the default device (NumPy outside any
    :class:`default_device` block), run on that device."""
    d = _default_device.get()
    if d is None:
        return make(np)
    kind, where = d
    if kind == "foreign":
        return make(where)
    cupy = _cupy()
    with cupy.cuda.Device(where):
        return make(cupy)


def device_put(tree, device=None):
    """A copy of ``tree`` (any pytree) with its arrays on ``device``: ``"cpu"`` (NumPy),
    ``"gpu"``/``"gpu:N"`` (CuPy; ``"cuda"``/``"cuda:N"`` are aliases), or a
    ``cupy.cuda.Device``; ``None`` means the default
    device (see :class:`default_device`; the CPU outside any such block). Non-array
    leaves are kept.

    Raises a ValueError naming the fix when CuPy or the device is not available.
    """
    if device is None:
        d = _default_device.get()
        kind, index = ("cpu", None) if d is None else d
    else:
        kind, index = _parse_device(device)
    if kind == "foreign":
        xp = index
        return tree_map(lambda x: xp.asarray(x) if isinstance(x, (np.ndarray, np.generic))
                        else x, tree)
    if kind == "cpu":
        def to_cpu(x):
            if ((hasattr(x, "__cuda_array_interface__") or type(x) in _FOREIGN)
                    and hasattr(x, "get")):
                return x.get()
            return x
        return tree_map(to_cpu, tree)
    cupy = _check_gpu(index, "device_put")
    with cupy.cuda.Device(index):
        return tree_map(lambda x: cupy.asarray(x) if isinstance(x, (np.ndarray, np.generic))
                        or hasattr(x, "__cuda_array_interface__") else x, tree)


def is_device_array(x):
    """True for an array of a non-NumPy module (CuPy, or a registered foreign module)."""
    return type(x) in _FOREIGN or hasattr(x, "__cuda_array_interface__")

"""Routing of plain NumPy calls on traced values (``__array_ufunc__`` and
``__array_function__``) to funcgrad.numpy."""
import sys

import numpy as np

from .._src.core import _np
from .._src.errors import FuncgradTypeError, UnsupportedFunctionError

_HANDLED_FUNCTIONS = {}
_UFUNCS = {}


def _build():
    fnp = _np()
    modules = [(np, fnp, "numpy")]
    for sub in ("linalg", "fft"):
        fsub = getattr(fnp, sub, None)
        if fsub is not None:
            modules.append((getattr(np, sub), fsub, f"numpy.{sub}"))
    for npmod, fmod, _ in modules:
        for name in getattr(fmod, "__all__", dir(fmod)):
            ours = getattr(fmod, name, None)
            theirs = getattr(npmod, name, None)
            if ours is None or theirs is None or not callable(ours) or ours is theirs:
                continue      # NumPy's own object re-exported (dtype helpers): no routing
            if isinstance(theirs, np.ufunc):
                _UFUNCS[theirs.__name__] = ours
            elif callable(theirs) and not isinstance(theirs, type):
                _HANDLED_FUNCTIONS[theirs] = ours
    # ufunc names that differ from the public function names
    for ufunc_name, fname in [("absolute", "abs"), ("divide", "true_divide"),
                              ("conjugate", "conj"), ("bitwise_invert", "invert")]:
        if hasattr(fnp, fname):
            _UFUNCS.setdefault(ufunc_name, getattr(fnp, fname))


def _table():
    if not _UFUNCS:
        _build()
    return _UFUNCS, _HANDLED_FUNCTIONS


_REDUCE = {"add": "sum", "multiply": "prod", "maximum": "max", "minimum": "min",
           "logical_and": "all", "logical_or": "any"}


def array_ufunc(ufunc, method, inputs, kwargs):
    ufuncs, _ = _table()
    name = ufunc.__name__
    if kwargs.get("out") is not None:
        raise FuncgradTypeError(
            f"numpy.{name}(..., out=...) on a traced value: funcgrad arrays are immutable; "
            "use the returned value instead of out=")
    kwargs = {k: v for k, v in kwargs.items() if k != "out"}
    if method == "__call__":
        f = ufuncs.get(name)
        if f is None:
            raise UnsupportedFunctionError(_unsupported_ufunc(ufunc))
        if kwargs:
            raise FuncgradTypeError(
                f"numpy.{name}: keyword arguments {sorted(kwargs)} are not supported on "
                "traced values")
        return f(*inputs)
    if method == "reduce" and name in _REDUCE:
        (x,) = inputs
        return getattr(_np(), _REDUCE[name])(x, **kwargs)
    raise UnsupportedFunctionError(
        f"numpy.{name}.{method} is not supported on traced values by funcgrad "
        f"(only calls{' and ' + name + '.reduce' if name in _REDUCE else ''} are); "
        "for numpy.add.at use x.at[idx].add(v)")


def _unsupported_ufunc(ufunc):
    """The message for a ufunc funcgrad does not route: where it comes from (NumPy, or
    another library's ufunc such as ``scipy.special.expit``) and where to look instead."""
    name = ufunc.__name__
    if getattr(np, name, None) is ufunc:
        return (f"numpy.{name} is not supported on traced values by funcgrad; use a "
                "funcgrad.numpy function, or define it with funcgrad.custom_vjp")
    special = sys.modules.get("scipy.special")
    if special is not None and getattr(special, name, None) is ufunc:
        return (f"scipy.special.{name} is not supported on traced values (SciPy's ufuncs "
                f"need concrete arrays); use funcgrad.scipy.special.{name} (import "
                "funcgrad.scipy.special) where it exists, or define the function with "
                "funcgrad.custom_vjp")
    return (f"the ufunc {name!r} (not NumPy's) is not supported on traced values by "
            "funcgrad; write it with funcgrad.numpy functions or funcgrad.custom_vjp")


def array_function(func, args, kwargs):
    _, handled = _table()
    f = handled.get(func)
    if f is None:
        mod = getattr(func, "__module__", "numpy") or "numpy"
        mod = "numpy" if mod.startswith("numpy") and mod.count(".") > 1 else mod
        raise UnsupportedFunctionError(
            f"{mod}.{func.__name__} is not supported on traced values by funcgrad; use a "
            "supported funcgrad.numpy function, or write it with funcgrad.custom_vjp "
            "(see docs/numpy-coverage.md)")
    return f(*args, **kwargs)

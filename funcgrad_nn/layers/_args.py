"""Checks of layer constructor arguments (sizes, kernel sizes, strides...), so that a
wrong value fails where the layer is built, with the layer, the argument and the value
named, instead of being truncated (``int(2.5)``) or failing in the forward pass."""
from __future__ import annotations

import numbers

from funcgrad.errors import FuncgradTypeError, FuncgradValueError


def _is_int(v):
    # numbers.Integral covers Python ints and NumPy integers; bool is refused (True is
    # almost always a mistake for a size)
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def integer(layer, name, value):
    """``value`` as a Python int (any sign), or a TypeError naming layer and argument."""
    if not _is_int(value):
        raise FuncgradTypeError(
            f"{layer}: {name} must be an int, got {value!r} ({type(value).__name__})")
    return int(value)


def size(layer, name, value, minimum=1):
    """``value`` as a Python int, or TypeError/ValueError naming ``layer`` and ``name``."""
    if not _is_int(value):
        raise FuncgradTypeError(
            f"{layer}: {name} must be an int, got {value!r} ({type(value).__name__})")
    if value < minimum:
        wanted = "positive" if minimum == 1 else f">= {minimum}"
        raise FuncgradValueError(f"{layer}: {name} must be {wanted}, got {value}")
    return int(value)


def sizes(layer, name, value, n, minimum=1):
    """An int or a sequence of ``n`` ints (one int is repeated) as a tuple of ``n``
    ints, each at least ``minimum``."""
    if _is_int(value):
        return (size(layer, name, value, minimum),) * n
    if isinstance(value, (tuple, list)):
        items = tuple(value)
        if len(items) == 1:
            items = items * n
        if len(items) == n:
            return tuple(size(layer, f"{name}", v, minimum) if _is_int(v)
                         else _bad_item(layer, name, value, n) for v in items)
    return _bad_item(layer, name, value, n)


def _bad_item(layer, name, value, n):
    raise FuncgradTypeError(
        f"{layer}: {name} must be an int or a tuple of {n} ints, got {value!r}")


def probability(layer, name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise FuncgradTypeError(f"{layer}: {name} must be a number, got {value!r}")
    if not 0.0 <= value <= 1.0:
        raise FuncgradValueError(f"{layer}: {name} must be in [0, 1], got {value}")
    return float(value)

"""Primitives that stand between a value and the transformations: ``stop_gradient``
(a barrier to derivatives) and ``debug_print`` (an effect that dead-code elimination
keeps)."""
from __future__ import annotations

import numpy as np

from .. import rows as _rows
from ..core import Primitive, Tracer, bind, def_rules
from ..tree_util import tree_map

# ---- stop_gradient: the identity, with no derivative rules (its derivative is zero) ----
stop_gradient_p = Primitive("stop_gradient", lambda x: x)
def_rules(stop_gradient_p,
          batch=lambda vals, dims: (bind(stop_gradient_p, vals[0]), dims[0]),
          rows=_rows.identity_rows)


def stop_gradient(x):
    """The value of ``x`` (any pytree) with its derivative blocked under every transformation.

    Example:
        >>> import funcgrad
        >>> print(funcgrad.grad(lambda x: x * funcgrad.stop_gradient(x))(3.0))
        3.0
    """
    return tree_map(lambda v: bind(stop_gradient_p, v) if isinstance(v, Tracer) else v, x)


# ---- debug_print: an effect, run on every call of a jitted function --------------------
def _print_impl(*args, fmt):
    print(fmt.format(*args))
    return np.zeros((), np.int8)


debug_print_p = Primitive("debug_print", _print_impl, effectful=True)


def debug_print(fmt, *args):
    """Print ``fmt.format(*args)`` when the values are computed: at once in eager code and
    under grad/jvp/vjp, and on every call of a jitted function (not only while tracing)."""
    bind(debug_print_p, *args, fmt=fmt)

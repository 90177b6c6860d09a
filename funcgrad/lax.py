"""funcgrad.lax: JAX's ``jax.lax`` names for convolution and windowed reductions.

    >>> import numpy as np
    >>> import funcgrad.lax as lax
    >>> x = np.ones((1, 1, 4, 4), np.float32)
    >>> w = np.ones((2, 1, 3, 3), np.float32)
    >>> y = lax.conv_general_dilated(x, w, (1, 1), "SAME")
    >>> y.shape, y.dtype
    ((1, 2, 4, 4), dtype('float32'))
    >>> lax.reduce_window(y, -np.inf, lax.max, (1, 1, 2, 2), (1, 1, 2, 2), "VALID")[0, 0]
    array([[9., 9.],
           [9., 9.]], dtype=float32)

Every function differentiates to any order in forward and reverse mode. Layouts are
NumPy arrays in the order the ``dimension_numbers`` say (default N, C, spatial...).

Collectives over a named axis, as in JAX: inside ``funcgrad.vmap(f, axis_name=name)``
``psum``/``pmean``/``pmax``/``pmin``/``all_gather``/``axis_index`` act over the examples;
inside ``funcgrad.distributed.spmd(f, axis_name=name)`` over the processes.

Structured control flow, as in JAX: ``scan``, ``fori_loop``, ``while_loop``, ``cond``,
``switch`` and ``map`` (plain Python loops eagerly; one equation holding the body's graph
under ``jit``, never unrolled).

``max``, ``min`` and ``add`` are the elementwise operations (``funcgrad.numpy.maximum``,
``minimum`` and ``add``); they double as the ``computation`` of :func:`reduce_window`.
"""
from ._src.prims.collectives import all_gather, axis_index, pmax, pmean, pmin, psum
from ._src.prims.control_flow import cond, fori_loop, map, scan, switch, while_loop  # noqa: A004
from ._src.prims.elementwise import add, maximum as max, minimum as min  # noqa: A001
from ._src.prims.windows_lax import (ConvDimensionNumbers, avg_pool, conv,
                                     conv_dimension_numbers, conv_general_dilated,
                                     conv_transpose, conv_with_general_padding, max_pool,
                                     padtype_to_pads, reduce_window)

__all__ = ["ConvDimensionNumbers", "add", "all_gather", "avg_pool", "axis_index", "cond", "conv",
           "conv_dimension_numbers", "conv_general_dilated", "conv_transpose", "conv_with_general_padding", "fori_loop", "map", "max",
           "max_pool", "min", "padtype_to_pads", "pmax", "pmean", "pmin", "psum",
           "reduce_window", "scan", "switch", "while_loop"]

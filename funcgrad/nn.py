"""funcgrad.nn: JAX's ``jax.nn`` names for activation functions that are primitives of
their own (one fused derivative rule instead of a composite's several).

    >>> import numpy as np, funcgrad, funcgrad.nn
    >>> funcgrad.nn.relu(np.array([-np.inf, -1.0, 0.0, 2.0, np.nan]))
    array([ 0.,  0.,  0.,  2., nan])
    >>> print(funcgrad.grad(funcgrad.nn.relu)(0.0), funcgrad.grad(funcgrad.nn.relu)(3.0))
    0.0 1.0
"""
from ._src.prims.elementwise import relu, sigmoid

__all__ = ["relu", "sigmoid"]

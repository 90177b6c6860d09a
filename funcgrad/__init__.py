"""funcgrad: composable, JAX-style automatic differentiation over NumPy (and CuPy) arrays.

    >>> import funcgrad, funcgrad.numpy as fnp
    >>> print(funcgrad.grad(lambda x: fnp.sin(x) * x)(0.0))
    0.0
"""
from . import debug, numpy, tree_util
from ._src import config
from ._src.api import (grad, hessian, jacfwd, jacrev, jvp, linearize, value_and_grad, vjp,
                       vmap)
from ._src.backend import default_device, device_put, devices, float0
from ._src.custom import checkpoint, custom_gradient, custom_jvp, custom_vjp, remat
from ._src.compiler import jit
from ._src.staging import Graph, make_graph, render_graph
from ._src.core import Tracer
from ._src.prims.barriers import stop_gradient
from ._src.tree_util import Partial
from ._src.comm import process_count, process_index

__version__ = "0.1.0"

_LAZY = ("lax", "nn", "random", "scipy", "flatten_util", "test_util", "distributed")


def __getattr__(name):
    # Submodules that most programs never touch are imported on first use, which keeps
    # `import funcgrad` quick.
    if name in _LAZY:
        import importlib
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'funcgrad' has no attribute {name!r}")

__all__ = ["Graph", "Partial", "Tracer", "checkpoint", "config", "custom_gradient",
           "default_device", "device_put", "devices",
           "custom_jvp", "custom_vjp", "debug", "distributed", "float0", "grad", "hessian",
           "jacfwd", "jacrev", "jit", "jvp", "lax", "linearize", "make_graph", "nn", "numpy",
           "process_count", "process_index", "random",
           "remat", "render_graph", "scipy", "stop_gradient", "tree_util",
           "value_and_grad", "vjp", "vmap"]

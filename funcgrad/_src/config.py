"""Global switches: ``funcgrad.config.update(name, value)`` and the context manager
``funcgrad.config.override(**values)``.

Options:
  debug_nans (bool, default False): raise ``FloatingPointError`` at the first primitive
    whose output contains a NaN that its inputs did not have, forward or backward, naming
    the primitive and the user's source line. Under ``jit``, functions run uncompiled
    while it is on. Costs a NaN check per operation.
  keep_freed_memory (bool, default False): ask the C allocator (glibc's malloc, on
    Linux) to keep freed memory for reuse instead of handing it back to the system, and
    to serve arrays up to 32 MiB from its heap. Every fresh NumPy array otherwise risks
    a page fault per 4 KiB page on first touch, which can double the time of a training
    step on mid-sized arrays (see ``benchmarks/RESULTS.md``). Process-wide: the process
    keeps its peak memory. Setting it back to False restores glibc's default thresholds
    (without their dynamic adjustment). Elsewhere it warns and does nothing.
  jit_row_splitting (bool, default True): let ``jit`` run a graph over a batch on slices
    of the batch, one per thread, adding partial sums at the end (see ``jit``). Results
    then depend, in the last bits, on the thread count; set it to False for results that
    do not.
  num_threads (int or None, default None): the process's thread budget: how many threads
    jit's row splitting, the convolution and pooling implementations and the BLAS use at
    once (while funcgrad's own threads run slices of a batch, the BLAS runs on one).
    None means the default: ``FUNCGRAD_NUM_THREADS``, ``OMP_NUM_THREADS``,
    ``OPENBLAS_NUM_THREADS`` or ``MKL_NUM_THREADS`` (the first one set), else the CPUs
    this process may use (affinity mask, cgroup quota). ``read("num_threads")`` gives the
    budget in force. 1 runs everything on the calling thread.
  jit_cache_size (int or None, default 64): how many compiled versions (input
    signatures and static values) each jitted function keeps; beyond that the least
    recently used one is dropped, with the constants it holds. None keeps them all.
  jit_backend ("numpy" or "numba", default "numpy"): how ``jit`` runs graphs on NumPy
    arrays when ``jit(f, backend=...)`` does not say: the NumPy replay, or native loops
    compiled with Numba for its elementwise groups (needs ``pip install
    "funcgrad[compile]"``; see ``jit``). Read when a signature is first compiled.
  adaptive_threads (bool, default True): use fewer threads than the budget while other
    processes keep this process's CPUs busy (sampled at most twice a second from
    ``/proc/stat``), and the full budget again once they are quiet. Off, the budget is
    used as it is, whatever the load.
"""
from __future__ import annotations

import contextlib
import os
import sys

import numpy as np

from . import threads
from .errors import FuncgradValueError

_OPTIONS = {"debug_nans": False, "keep_freed_memory": False, "jit_row_splitting": True,
            "num_threads": None, "adaptive_threads": True, "jit_cache_size": 64,
            "jit_backend": "numpy"}
_HOOKS = {}          # option name -> functions called with its new value (on_update)


def on_update(name, hook):
    """Call ``hook(value)`` now and whenever option ``name`` changes. The layers above
    register here (the core keeps its debug_nans check this way): config imports none
    of them."""
    _HOOKS.setdefault(name, []).append(hook)
    hook(_OPTIONS[name])


def update(name, value):
    """Set option ``name`` (see the module docstring) to ``value``."""
    if name not in _OPTIONS:
        raise FuncgradValueError(
            f"funcgrad.config.update: unknown option {name!r}; known: {sorted(_OPTIONS)}")
    if name == "keep_freed_memory":
        value = bool(value) and _set_malloc(bool(value))
    elif name == "num_threads":
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                  and not hasattr(value, "__index__") or int(value) < 1):
            raise FuncgradValueError(
                f"funcgrad.config.update('num_threads', {value!r}): expected a positive "
                "integer, or None for the default (the CPUs this process may use)")
        value = None if value is None else int(value)
        threads.set_num_threads(value)
    elif name == "jit_cache_size":
        if value is not None and (isinstance(value, bool) or not hasattr(value, "__index__")
                                  or int(value) < 1):
            raise FuncgradValueError(
                f"funcgrad.config.update('jit_cache_size', {value!r}): expected a positive "
                "integer, or None for no bound")
        value = None if value is None else int(value)
    elif name == "jit_backend":
        _check_backend(value)
    elif name == "adaptive_threads":
        value = bool(value)
        threads.set_adaptive(value)
    _OPTIONS[name] = value
    for hook in _HOOKS.get(name, ()):
        hook(value)


def _check_backend(value):
    """jit backends are checked here without importing them (config is imported first):
    the names, and for Numba that it can be imported."""
    import importlib.util
    if value not in ("numpy", "numba"):
        raise FuncgradValueError(
            f"funcgrad.config.update('jit_backend', {value!r}): the backends are "
            "'numpy' and 'numba'")
    try:
        found = importlib.util.find_spec("numba") is not None
    except (ImportError, ValueError):
        found = False
    if value == "numba" and not found:
        raise ImportError(
            "funcgrad.config.update('jit_backend', 'numba'): Numba is not installed: "
            'pip install "funcgrad[compile]"')


_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3      # glibc's mallopt parameters


def _set_malloc(keep):
    """glibc mallopt thresholds for ``keep_freed_memory``; False (with a warning) where
    the allocator is not glibc's or refuses."""
    import ctypes
    import ctypes.util
    import warnings
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.gnu_get_libc_version       # glibc only
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        warnings.warn("funcgrad.config: keep_freed_memory needs glibc's malloc (Linux); "
                      "it has no effect here", RuntimeWarning, stacklevel=3)
        return False
    trim, mmap = (1 << 30, 32 << 20) if keep else (128 << 10, 128 << 10)
    ok = mallopt(_M_TRIM_THRESHOLD, trim) == 1 and mallopt(_M_MMAP_THRESHOLD, mmap) == 1
    if not ok:
        warnings.warn("funcgrad.config: glibc refused the keep_freed_memory thresholds; "
                      "it has no effect", RuntimeWarning, stacklevel=3)
    return ok and keep


def read(name):
    """The value of option ``name``; for ``num_threads``, the budget in force."""
    if name == "num_threads":
        return threads.budget()
    return _OPTIONS[name]


@contextlib.contextmanager
def override(**values):
    """Temporarily set options: ``with funcgrad.config.override(debug_nans=True): ...``."""
    old = {k: _OPTIONS[k] for k in values}
    for k, v in values.items():
        update(k, v)
    try:
        yield
    finally:
        for k, v in old.items():
            update(k, v)


_PKG = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _user_frame():
    f = sys._getframe(2)
    while f is not None and os.path.abspath(f.f_code.co_filename).startswith(_PKG):
        f = f.f_back
    if f is None:
        return "<unknown>"
    return f"{f.f_code.co_filename}:{f.f_lineno} (in {f.f_code.co_name})"


def _has_nan(x):
    dt = getattr(x, "dtype", None)
    return dt is not None and dt.kind in "fc" and bool(np.isnan(x).any())


def check_nans(prim, args, out, where=""):
    """Raise FloatingPointError if ``out`` has a NaN that ``args`` did not have."""
    outs = out if isinstance(out, (list, tuple)) else (out,)
    if any(_has_nan(o) for o in outs) and not any(_has_nan(a) for a in args):
        raise FloatingPointError(
            f"debug_nans: the {where}primitive '{prim.name}' produced a NaN from NaN-free inputs "
            f"({', '.join(getattr(a, 'dtype', type(a)).__str__() for a in args)}), at "
            f"{_user_frame()}. Turn the check off with "
            "funcgrad.config.update('debug_nans', False).")

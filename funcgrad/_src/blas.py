"""The BLAS library's own thread count, read and set through its C API.

NumPy's matrix products run in a BLAS (OpenBLAS in NumPy's wheels; MKL or BLIS in some
builds) that starts threads of its own. funcgrad's thread budget (threads.py) decides how
many it may use: one while funcgrad's own workers run slices of a batch (two threads each
calling a threaded BLAS contend, and its idle threads spin), and the budget otherwise.

The libraries are found once, among those loaded in this process: through threadpoolctl
when it is installed, else (Linux) in ``/proc/self/maps``. Setting a count is one C call
(about 0.2 µs). Where no library is found (Apple's Accelerate, an unknown BLAS, another
platform without threadpoolctl) the functions here do nothing and ``available()`` is
False.
"""
from __future__ import annotations

import ctypes
import os
import threading

# (setter, getter) symbol names by library family; the 64-bit-integer builds add a suffix
# and SciPy's OpenBLAS wheels a prefix.
_SYMBOLS = [
    (f"{pre}openblas_set_num_threads{suf}", f"{pre}openblas_get_num_threads{suf}")
    for pre in ("", "scipy_") for suf in ("", "64_")
] + [("MKL_Set_Num_Threads", "MKL_Get_Max_Threads"),
     ("bli_thread_set_num_threads", "bli_thread_get_num_threads")]
_NAMES = ("openblas", "mkl_rt", "libblis")

_lock = threading.Lock()
_found = None          # [(set, get)] once looked for


def _library_paths():
    try:        # threadpoolctl knows every platform's loaded-library list
        from threadpoolctl import ThreadpoolController   # optional dependency
        return [c.filepath for c in ThreadpoolController().select(user_api="blas").lib_controllers]
    except Exception:      # not installed, or it failed: fall back to Linux's map
        pass
    paths = []
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                path = line.rstrip("\n").split(None, 5)[-1]
                base = os.path.basename(path).lower()
                if path.startswith("/") and ".so" in base and any(n in base for n in _NAMES) \
                        and path not in paths:
                    paths.append(path)
    except OSError:
        pass
    return paths


def _libraries():
    global _found
    if _found is None:
        with _lock:
            if _found is None:
                found = []
                for path in _library_paths():
                    try:
                        lib = ctypes.CDLL(path)
                    except OSError:
                        continue
                    for set_name, get_name in _SYMBOLS:
                        if hasattr(lib, set_name) and hasattr(lib, get_name):
                            setter, getter = getattr(lib, set_name), getattr(lib, get_name)
                            setter.restype = None
                            setter.argtypes = [ctypes.c_int64 if set_name.startswith("bli")
                                               else ctypes.c_int]
                            getter.restype = (ctypes.c_int64 if get_name.startswith("bli")
                                              else ctypes.c_int)
                            found.append((setter, getter))
                            break
                _found = found
    return _found


def available():
    """True when this process's BLAS thread count can be read and set."""
    return bool(_libraries())


def get_threads():
    """The BLAS's thread count (the largest, if several BLAS libraries are loaded); None
    when unknown."""
    counts = [n for n in (get() for _, get in _libraries()) if n > 0]   # (BLIS: -1, unset)
    return max(counts) if counts else None


def set_threads(n):
    """Let the BLAS use ``n`` threads (every BLAS library loaded)."""
    for setter, _ in _libraries():
        setter(int(n))

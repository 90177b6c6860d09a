"""NumPy's own BLAS, called from Numba-compiled code (the matrix products of jit's native
loops, numba_loops.py).

Numba's ``np.dot`` calls SciPy's BLAS: a second library, with a thread pool of its own
that funcgrad's thread budget (threads.py) does not follow, and that spins against
NumPy's between calls. Here a generated function calls the CBLAS functions of the library
NumPy itself is linked with instead: the same code, the same thread pool and thread
count as the NumPy replay's products.

The library is NumPy's multiarray extension's own dependency (looked up through the
extension, so whatever the library's file is called), else a BLAS library shipped inside
NumPy's package (its wheels' ``numpy.libs``, ``numpy/.dylibs``). Its functions are known
by names whose integer width is certain: ``<prefix>cblas_sgemm64_`` (64-bit integers:
NumPy's wheels since 2.0 link ``scipy_cblas_sgemm64_``) and ``scipy_cblas_sgemm`` (32-bit).
Each is declared to LLVM by name, so Numba's disk cache keeps the machine code (the
address is resolved again whenever the code is loaded). Where none is found (a NumPy
built on MKL, Apple's Accelerate or a system BLAS exporting plain ``cblas_sgemm``, whose
integer width cannot be told), ``available()`` is False and native loops keep Numba's
``np.dot``.

A product takes NumPy's matmul's route (numpy/_core/src/umath/matmul.c.src) step for step:
``gemm`` with the transposition flags that avoid copies (an operand whose strides BLAS
cannot take copied first, as NumPy 2 does), ``syrk`` for ``a @ a.T`` of one array,
``gemv`` when either side is one row or column, ``dot`` for one value, and NumPy's plain
loop for those two where strides do not suit BLAS; so the results are NumPy's bit for bit
(tests/funcgrad/test_numba_blas.py checks every route).
"""
from __future__ import annotations

import ctypes
import glob
import os
import threading

import numpy as np

_FUNCS = ("gemm", "gemv", "dot", "syrk")
# (prefix, suffix, integer type): name conventions whose integer width is certain
_CONVENTIONS = (("scipy_", "64_", "int64"), ("", "64_", "int64"), ("scipy_", "", "int32"))

_lock = threading.Lock()
_found = None          # {"int": "int64", "sgemm": "scipy_cblas_sgemm64_", ...} or {} (none)


def _candidates():
    """Libraries that may hold NumPy's BLAS: its multiarray extension (a handle searches
    its dependencies too), then BLAS libraries inside NumPy's package."""
    try:
        from numpy._core import _multiarray_umath
    except ImportError:            # NumPy 1
        from numpy.core import _multiarray_umath
    paths = [_multiarray_umath.__file__]
    root = os.path.dirname(os.path.abspath(np.__file__))
    for pattern in (root + ".libs/*", os.path.join(root, ".dylibs", "*")):
        paths += sorted(p for p in glob.glob(pattern) if "blas" in os.path.basename(p).lower())
    return paths


def _lookup():
    for path in _candidates():
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for pre, suf, itype in _CONVENTIONS:
            names = {x + f: f"{pre}cblas_{x}{f}{suf}" for x in "sd" for f in _FUNCS}
            if all(hasattr(lib, n) for n in names.values()):
                addresses = {n: ctypes.cast(getattr(lib, n), ctypes.c_void_p).value
                             for n in names.values()}
                return dict(names, int=itype), addresses
    return {}, {}


def functions():
    """The CBLAS names of NumPy's BLAS (``{"sgemm": ..., "dgemv": ..., "int": "int64"}``),
    declared to LLVM; ``{}`` where they are not found (or Numba is missing)."""
    global _found
    if _found is None:
        with _lock:
            if _found is None:
                try:
                    import llvmlite.binding as llvm
                    found, addresses = _lookup()
                    for name, address in addresses.items():
                        llvm.add_symbol(name, address)
                except (ImportError, OSError, AttributeError):
                    found = {}
                _found = found
    return _found


def available():
    """True when generated code can call NumPy's own BLAS (:func:`matmul_source`)."""
    return bool(functions())


def matmul_source(dtype):
    """The source of ``_fg_matmul_<dtype>(a, b)``: ``a @ b`` of 1-d or 2-d arrays of
    ``dtype`` (float32 or float64), any strides, as NumPy's matmul computes it, returned
    as a C-ordered 2-d array (``(1, p)`` for a 1-d ``a``, ``(m, 1)`` for a 1-d ``b``).
    Needs :func:`available`."""
    f = functions()
    dt = np.dtype(dtype).name
    x = {"float32": "s", "float64": "d"}[dt]
    sz = np.dtype(dtype).itemsize
    t = "numba.types"
    ii, rr, vp, i32 = f"{t}.{f['int']}", f"{t}.{dt}", f"{t}.voidptr", f"{t}.int32"
    sigs = {
        "gemm": f"{t}.void({i32}, {i32}, {i32}, {ii}, {ii}, {ii}, {rr}, {vp}, {ii}, {vp}, "
                f"{ii}, {rr}, {vp}, {ii})",
        "gemv": f"{t}.void({i32}, {i32}, {ii}, {ii}, {rr}, {vp}, {ii}, {vp}, {ii}, {rr}, "
                f"{vp}, {ii})",
        "dot": f"{rr}({ii}, {vp}, {ii}, {vp}, {ii})",
        "syrk": f"{t}.void({i32}, {i32}, {i32}, {ii}, {ii}, {rr}, {vp}, {ii}, {rr}, {vp}, "
                f"{ii})",
    }
    decls = "".join(f"_fg_{x}{fn} = {t}.ExternalFunction({f[x + fn]!r}, {sigs[fn]})\n"
                    for fn in _FUNCS)
    # CBLAS's enums: RowMajor 101, ColMajor 102, NoTrans 111, Trans 112, Upper 121
    return decls + f'''

@numba.njit(cache=True, nogil=True, error_model="numpy")
def _fg_blasable_{x}(s1, s2, d2):
    return s2 == {sz} and s1 % {sz} == 0 and s1 // {sz} >= d2


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _fg_gemv_{x}(a, s1m, s1n, v, s2n, o, m, n):
    if _fg_blasable_{x}(s1m, s1n, n):
        order, lda = 102, s1m // {sz}
    else:
        order, lda = 101, s1n // {sz}
    _fg_{x}gemv(np.int32(order), np.int32(112), n, m, np.{dt}(1), a.ctypes, lda, v.ctypes,
              s2n // {sz}, np.{dt}(0), o.ctypes, 1)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _fg_matmul_{dt}(a, b):
    A = a if a.ndim == 2 else a[None, :]
    B = b if b.ndim == 2 else b[:, None]
    m, n = A.shape
    p = B.shape[1]
    s1m, s1n = A.strides
    s2n, s2p = B.strides
    if a.ndim == 1:
        s1m = 0
    if b.ndim == 1:
        s2p = 0
    out = np.empty((m, p), np.{dt})
    c1 = _fg_blasable_{x}(s1m, s1n, n)
    c2 = _fg_blasable_{x}(s2n, s2p, p)
    ok1 = c1 or _fg_blasable_{x}(s1n, s1m, m)
    ok2 = c2 or _fg_blasable_{x}(s2p, s2n, n)
    blas = True
    if m == 0 or n == 0 or p == 0:
        blas = False
    elif m == 1 or n == 1 or p == 1:
        if m == 1 and p == 1:
            # (NumPy's dot: BLAS for positive strides, summed in float64)
            if s1n > 0 and s1n % {sz} == 0 and s2n > 0 and s2n % {sz} == 0:
                out[0, 0] = np.{dt}(0.0 + np.float64(_fg_{x}dot(n, A.ctypes, s1n // {sz},
                                                                 B.ctypes, s2n // {sz})))
            else:
                acc = np.{dt}(0)
                for k in range(n):
                    acc += A[0, k] * B[k, 0]
                out[0, 0] = acc
            return out
        elif n == 1 and (p == 1 or m == 1):
            blas = False
        elif m == 1 and ok2 and _fg_blasable_{x}(s1n, {sz}, 1):
            _fg_gemv_{x}(B, s2p, s2n, A, s1n, out, p, n)
        elif p == 1 and ok1 and _fg_blasable_{x}(s2n, {sz}, 1):
            _fg_gemv_{x}(A, s1m, s1n, B, s2n, out, m, n)
        else:
            blas = False
    else:
        # (NumPy 2 copies an operand BLAS cannot take: C order)
        if not ok1:
            A = np.ascontiguousarray(A)
            s1m, s1n = A.strides
            c1 = True
        if not ok2:
            B = np.ascontiguousarray(B)
            s2n, s2p = B.strides
            c2 = True
        if c1:
            t1, lda = 111, s1m // {sz}
        else:
            t1, lda = 112, s1n // {sz}
        if c2:
            t2, ldb = 111, s2n // {sz}
        else:
            t2, ldb = 112, s2p // {sz}
        if (A.ctypes.data == B.ctypes.data and m == p and s1m == s2p and s1n == s2n
                and t1 != t2):
            # a @ a.T: one triangle, then the other copied
            _fg_{x}syrk(np.int32(101), np.int32(121), np.int32(t1), p, n, np.{dt}(1),
                      A.ctypes, lda if t1 == 111 else ldb, np.{dt}(0), out.ctypes, p)
            for i in range(p):
                for j in range(i + 1, p):
                    out[j, i] = out[i, j]
        else:
            _fg_{x}gemm(np.int32(101), np.int32(t1), np.int32(t2), m, p, n, np.{dt}(1),
                      A.ctypes, lda, B.ctypes, ldb, np.{dt}(0), out.ctypes, p)
    if not blas:
        for i in range(m):
            for j in range(p):
                acc = np.{dt}(0)
                for k in range(n):
                    acc += A[i, k] * B[k, j]
                out[i, j] = acc
    return out
'''

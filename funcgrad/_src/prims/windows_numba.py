"""Optional Numba kernels for the commonest pooling: max over 2x2 windows with stride 2
on the last two dimensions, no padding, no dilation (``max_pool(x, (2, 2))`` on NCHW).

NumPy needs about ten passes over the output for the max and its arg-max (one per window
offset for the max, then the arg-max from comparisons, see ``_wmax_core``) and one strided
pass per offset for the scatter back; these kernels do one pass each. They are used
only when Numba can be imported, and only for float32/float64 C-contiguous arrays;
everything else, and every machine without Numba, takes the NumPy path, which they must
match exactly (same maximum, same first-in-row-major arg-max, NaN max -> last offset,
the scatter a product ``g * (offset == arg-max)`` so non-finite ``g`` behaves the same).

Numba is imported on the first pooling call, not with funcgrad, and on a background
thread: importing and compiling take a few seconds (the compiled code is cached on disk
by Numba next to this file when the folder is writable, which shortens later starts),
and until they are done the NumPy path runs, so no call stalls. ``FUNCGRAD_NUMBA_POOLING=0``
in the environment, or :func:`set_enabled` (``False``), keeps the NumPy path.
"""
from __future__ import annotations

import os
import threading

import numpy as np

_state = {"kernels": None, "tried": False, "thread": None,
          "enabled": os.environ.get("FUNCGRAD_NUMBA_POOLING", "1").strip() not in ("0", "")}
_lock = threading.Lock()
_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def set_enabled(on):
    """Use the Numba kernels (when Numba is installed) or not; returns the old setting."""
    old = _state["enabled"]
    _state["enabled"] = bool(on)
    return old


def _build():
    try:
        import numba
    except ImportError:
        return None
    njit = numba.njit(nogil=True, cache=True)

    # Written out for 2x2 windows with stride 2: with the window size a run-time value
    # the loops measured 5-14x slower (Numba cannot unroll them), and 2x2 is the pooling
    # nearly every network uses.
    @njit
    def max_pool(x, m, idx):
        # x (M, H, W); m, idx (M, H // 2, W // 2). Selects, no branches (the NaN case
        # included): the loop then compiles to vector code, measured 1.5-7x faster than
        # the branching form (float64 to float32; constant inputs too, so not only
        # mispredictions). Pairwise, each tie resolved to the earlier offset: the first
        # maximum in row-major order, as the NumPy path.
        for b in range(m.shape[0]):
            for i in range(m.shape[1]):
                r0 = x[b, 2 * i]
                r1 = x[b, 2 * i + 1]
                mrow = m[b, i]
                irow = idx[b, i]
                for j in range(m.shape[2]):
                    a0 = r0[2 * j]
                    a1 = r0[2 * j + 1]
                    a2 = r1[2 * j]
                    a3 = r1[2 * j + 1]
                    up = a1 > a0
                    m01 = a1 if up else a0
                    i01 = np.int8(1) if up else np.int8(0)
                    up = a3 > a2
                    m23 = a3 if up else a2
                    i23 = np.int8(3) if up else np.int8(2)
                    up = m23 > m01
                    best = m23 if up else m01
                    arg = i23 if up else i01
                    # a NaN max (the first NaN) equals no element: offset 3
                    n0 = a0 != a0
                    n1 = a1 != a1
                    n2 = a2 != a2
                    nan = n0 | n1 | n2 | (a3 != a3)
                    first = a0 if n0 else (a1 if n1 else (a2 if n2 else a3))
                    mrow[j] = first if nan else best
                    irow[j] = np.int8(3) if nan else arg

    @njit
    def scatter(g, idx, out):
        # g, idx (M, Ho, Wo); out (M, H, W), H >= 2 Ho, W >= 2 Wo, already zero beyond
        one = g.dtype.type(1)
        zero = g.dtype.type(0)
        for b in range(g.shape[0]):
            for i in range(g.shape[1]):
                gi = g[b, i]
                ii = idx[b, i]
                for di in range(2):             # output rows in memory order
                    orow = out[b, 2 * i + di]
                    for j in range(g.shape[2]):
                        gv = gi[j]
                        a = ii[j] - 2 * di
                        orow[2 * j] = gv * (one if a == 0 else zero)
                        orow[2 * j + 1] = gv * (one if a == 1 else zero)

    return max_pool, scatter


def kernels(wait=False):
    """(max_pool, scatter) compiled functions, or None: no Numba, disabled, or still
    compiling. The first call starts the import and compilation on a background thread
    and returns None (the NumPy path runs meanwhile, with the same results), so no call
    stalls; ``wait=True`` waits for them instead."""
    if not _state["enabled"]:
        return None
    if not _state["tried"]:
        with _lock:
            if not _state["tried"]:
                _state["tried"] = True
                _state["thread"] = threading.Thread(target=_build_in_background,
                                                    name="funcgrad-numba-pooling",
                                                    daemon=True)
                _state["thread"].start()
    if wait and _state["kernels"] is None:
        _state["thread"].join()
    return _state["kernels"]


def _build_in_background():
    try:
        built = _build()
        if built is not None:
            _warm(*built)
        _state["kernels"] = built
    except Exception:        # a broken Numba install: keep the NumPy path
        _state["kernels"] = None


def _warm(max_pool, scatter):
    """Compile (or load from the disk cache) the signatures the common cases use, so the
    first call on the main thread does not compile."""
    for dt in _FLOATS:
        x = np.zeros((1, 2, 2), dt)
        m = np.empty((1, 1, 1), dt)
        idx = np.empty((1, 1, 1), np.int8)      # (4 offsets: always int8)
        max_pool(x, m, idx)
        scatter(m, idx, x)


def pool_geometry(nd, wd, ws, pads, bd, wdl):
    """Whether window params pool only the last two dimensions of an ``nd``-d array with
    2x2 windows and stride 2, no padding and no dilation: the case the kernels cover."""
    return (nd >= 2 and tuple(wd[-2:]) == (2, 2) and tuple(ws[-2:]) == (2, 2) and
            all(w == 1 and s == 1 for w, s in zip(wd[:-2], ws[:-2])) and
            not any(lo or hi for lo, hi in pads) and all(b == 1 for b in bd) and
            all(d == 1 for d in wdl))


def usable(*arrays):
    """Whether the arrays match the signatures compiled ahead (C-contiguous, aligned,
    writeable float32/float64 ndarrays): any other would compile on the caller's thread."""
    return all(type(a) is np.ndarray and a.dtype in _FLOATS and a.size and
               a.flags.c_contiguous and a.flags.aligned and a.flags.writeable
               for a in arrays)


def usable_index(idx):
    """Whether an arg-max array matches the compiled signatures (see :func:`usable`)."""
    return (type(idx) is np.ndarray and idx.dtype == np.int8 and idx.flags.c_contiguous and
            idx.flags.writeable)


def as3d(a):
    """A C-contiguous array viewed as (M, H, W) over its last two dimensions."""
    return a.reshape((-1,) + a.shape[-2:])

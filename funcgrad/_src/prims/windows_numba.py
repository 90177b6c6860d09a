"""Optional Numba kernels for the commonest windows: max pooling over 2x2 windows with
stride 2 on the last two dimensions, no padding, no dilation (``max_pool(x, (2, 2))`` on
NCHW), and 3x3 convolutions with unit strides over few input features (the first layer
of an image network: 1 to 3 features).

Pooling: NumPy needs about ten passes over the output for the max and its arg-max (one
per window offset for the max, then the arg-max from comparisons, see ``_wmax_core``) and
one strided pass per offset for the scatter back; these kernels do one pass each, and
must match the NumPy path exactly (same maximum, same first-in-row-major arg-max, NaN max
-> last offset, the scatter a product ``g * (offset == arg-max)`` so non-finite ``g``
behaves the same).

Convolution (:func:`conv_geometry` says which): the forward pass and the kernel
cotangent computed directly from the zero-padded image, with no im2col buffer and one
call, instead of an im2col copy and a product with only ``C * 9`` terms per output (see
``CONV_MAX_FEATURES`` for the measurements). Each image is copied into zero-padded rows;
the positions run over the padded rows' flat index ("wide", as in windows_kernels.py:
the columns that straddle a row end are computed and dropped), so the inner loops run
over long contiguous runs and compile to vector code. The sums are those of the NumPy
path in another order (equal to rounding); zeros of the padding enter the products as
they do there (``inf`` weights meet them as NaN, as in im2col), and the kernel
cotangent leaves the straddling positions out of its sums by a select, not by a zero
``g`` (``0 * inf`` would add a NaN that the exact sum has not).

They are used only when Numba can be imported, and only for float32/float64
C-contiguous arrays; everything else, and every machine without Numba, takes the NumPy
path. Numba is imported on the first call that could use it, not with funcgrad, and on a
background thread: importing and compiling take a few seconds (the compiled code is
cached on disk by Numba next to this file when the folder is writable, which shortens
later starts), and until they are done the NumPy path runs, so no call stalls.
``FUNCGRAD_NUMBA_POOLING=0`` in the environment (the name predates the convolutions; it
covers them too), or :func:`set_enabled` (``False``), keeps the NumPy path.
"""
from __future__ import annotations

import os
import threading
from typing import NamedTuple

import numpy as np

_state = {"kernels": None, "tried": False, "thread": None,
          "enabled": os.environ.get("FUNCGRAD_NUMBA_POOLING", "1").strip() not in ("0", "")}
_lock = threading.Lock()
_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


# Input features up to which a 3x3 convolution runs on the direct kernels. Measured per
# call on 32-64 images (1 thread, float32, 28x28 and 32x32 images, 8-64 outputs): the
# direct forward pass is about even with im2col + BLAS from 1 to 3 features and slower
# from 4 on (0.7x at 8, 0.5x at 16); the kernel cotangent likewise (0.7-1.5x at 1-3
# features, 0.9x at 4-8). Alone that is no gain: the output's memory traffic dominates
# both. The gain is under jit's row splitting, where each thread's im2col path makes
# a dozen NumPy calls per convolution, each a GIL hand-off, against one call here.
CONV_MAX_FEATURES = 3


class Kernels(NamedTuple):
    max_pool: object
    scatter: object
    conv3x3: object
    conv3x3_kernel_ct: object


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

    # 3x3 windows written out (as the 2x2 pooling above): the nine taps of a position
    # are nine runs of the padded image, shifted; with the kernel size a run-time value
    # the tap loop cannot be unrolled and the vector loop has nine times the loads and
    # stores. ``contract`` lets the products fuse into FMAs, as in BLAS.
    @numba.njit(nogil=True, cache=True, fastmath={"contract"})
    def conv3x3(x, w, out, lo_h, lo_w, dh, dw):
        # x (N, C, H, W), w (O, C, 3, 3), out (N, O, Ho, Wo); padded width Wo + 2 dw
        c_in = x.shape[1]
        o_n = w.shape[0]
        ho, wo = out.shape[2], out.shape[3]
        wp = wo + 2 * dw
        span = (ho - 1) * wp + wo          # wide positions
        r = dh * wp
        pad = np.zeros((c_in, (ho + 2 * dh) * wp), x.dtype)
        acc = np.empty((4, span), out.dtype)
        w9 = w.reshape(o_n, c_in, 9)
        for b in range(x.shape[0]):
            for c in range(c_in):      # the image into the zero-padded rows
                for i in range(x.shape[2]):
                    src = x[b, c, i]
                    row = (i + lo_h) * wp + lo_w
                    dst = pad[c, row:row + x.shape[3]]
                    for j in range(x.shape[3]):
                        dst[j] = src[j]
            # four output features at a time: each loaded window feeds 36 products
            # (measured 1.5x faster than one at a time; 36 weights fit the registers)
            for o0 in range(0, o_n, 4):
                o1 = min(o0 + 1, o_n - 1)
                o2 = min(o0 + 2, o_n - 1)
                o3 = min(o0 + 3, o_n - 1)
                acc[...] = 0
                for c in range(c_in):
                    xf = pad[c]
                    x0 = xf[0:span]
                    x1 = xf[dw:dw + span]
                    x2 = xf[2 * dw:2 * dw + span]
                    x3 = xf[r:r + span]
                    x4 = xf[r + dw:r + dw + span]
                    x5 = xf[r + 2 * dw:r + 2 * dw + span]
                    x6 = xf[2 * r:2 * r + span]
                    x7 = xf[2 * r + dw:2 * r + dw + span]
                    x8 = xf[2 * r + 2 * dw:2 * r + 2 * dw + span]
                    p = w9[o0, c]
                    p0, p1, p2, p3, p4, p5, p6, p7, p8 = (p[0], p[1], p[2], p[3], p[4], p[5],
                                                          p[6], p[7], p[8])
                    p = w9[o1, c]
                    q0, q1, q2, q3, q4, q5, q6, q7, q8 = (p[0], p[1], p[2], p[3], p[4], p[5],
                                                          p[6], p[7], p[8])
                    p = w9[o2, c]
                    u0, u1, u2, u3, u4, u5, u6, u7, u8 = (p[0], p[1], p[2], p[3], p[4], p[5],
                                                          p[6], p[7], p[8])
                    p = w9[o3, c]
                    v0, v1, v2, v3, v4, v5, v6, v7, v8 = (p[0], p[1], p[2], p[3], p[4], p[5],
                                                          p[6], p[7], p[8])
                    # (accumulating, not a select of the first feature: the select
                    # measured 4x slower, not vectorised)
                    for t in range(span):
                        e0 = x0[t]
                        e1 = x1[t]
                        e2 = x2[t]
                        e3 = x3[t]
                        e4 = x4[t]
                        e5 = x5[t]
                        e6 = x6[t]
                        e7 = x7[t]
                        e8 = x8[t]
                        acc[0, t] += (p0 * e0 + p1 * e1 + p2 * e2 + p3 * e3 + p4 * e4 +
                                      p5 * e5 + p6 * e6 + p7 * e7 + p8 * e8)
                        acc[1, t] += (q0 * e0 + q1 * e1 + q2 * e2 + q3 * e3 + q4 * e4 +
                                      q5 * e5 + q6 * e6 + q7 * e7 + q8 * e8)
                        acc[2, t] += (u0 * e0 + u1 * e1 + u2 * e2 + u3 * e3 + u4 * e4 +
                                      u5 * e5 + u6 * e6 + u7 * e7 + u8 * e8)
                        acc[3, t] += (v0 * e0 + v1 * e1 + v2 * e2 + v3 * e3 + v4 * e4 +
                                      v5 * e5 + v6 * e6 + v7 * e7 + v8 * e8)
                for k in range(min(4, o_n - o0)):
                    ak = acc[k]
                    for i in range(ho):
                        src = ak[i * wp:i * wp + wo]
                        dst = out[b, o0 + k, i]
                        for j in range(wo):
                            dst[j] = src[j]

    # ``reassoc`` lets the sums over positions run as vector partial sums (the order of
    # the terms is free: BLAS picks its own too)
    @numba.njit(nogil=True, cache=True, fastmath={"contract", "reassoc"})
    def conv3x3_kernel_ct(x, g, res, lo_h, lo_w, dh, dw):
        # x (N, C, H, W), g (N, O, Ho, Wo) -> res (O, C, 3, 3), the sum over the images
        c_in = x.shape[1]
        o_n = g.shape[1]
        ho, wo = g.shape[2], g.shape[3]
        wp = wo + 2 * dw
        span = (ho - 1) * wp + wo
        r = dh * wp
        pad = np.zeros((c_in, (ho + 2 * dh) * wp), x.dtype)
        gw = np.zeros((2, span), g.dtype)
        valid = np.zeros(span, np.bool_)
        for i in range(ho):
            for j in range(wo):
                valid[i * wp + j] = True
        z = res.dtype.type(0)
        res9 = res.reshape(o_n, c_in, 9)
        res9[...] = 0
        g0 = gw[0]
        g1 = gw[1]
        for b in range(x.shape[0]):
            for c in range(c_in):      # the image into the zero-padded rows
                for i in range(x.shape[2]):
                    src = x[b, c, i]
                    row = (i + lo_h) * wp + lo_w
                    dst = pad[c, row:row + x.shape[3]]
                    for j in range(x.shape[3]):
                        dst[j] = src[j]
            # two output features at a time: 18 sums in registers
            for o0 in range(0, o_n, 2):
                o1 = min(o0 + 1, o_n - 1)
                for i in range(ho):
                    sa = g[b, o0, i]
                    sb = g[b, o1, i]
                    da = g0[i * wp:i * wp + wo]
                    db = g1[i * wp:i * wp + wo]
                    for j in range(wo):
                        da[j] = sa[j]
                        db[j] = sb[j]
                for c in range(c_in):
                    xf = pad[c]
                    x0 = xf[0:span]
                    x1 = xf[dw:dw + span]
                    x2 = xf[2 * dw:2 * dw + span]
                    x3 = xf[r:r + span]
                    x4 = xf[r + dw:r + dw + span]
                    x5 = xf[r + 2 * dw:r + 2 * dw + span]
                    x6 = xf[2 * r:2 * r + span]
                    x7 = xf[2 * r + dw:2 * r + dw + span]
                    x8 = xf[2 * r + 2 * dw:2 * r + 2 * dw + span]
                    a0 = a1 = a2 = a3 = a4 = a5 = a6 = a7 = a8 = z
                    b0 = b1 = b2 = b3 = b4 = b5 = b6 = b7 = b8 = z
                    for t in range(span):
                        m = valid[t]
                        ga = g0[t]
                        gb = g1[t]
                        e0 = x0[t]
                        e1 = x1[t]
                        e2 = x2[t]
                        e3 = x3[t]
                        e4 = x4[t]
                        e5 = x5[t]
                        e6 = x6[t]
                        e7 = x7[t]
                        e8 = x8[t]
                        a0 += ga * e0 if m else z
                        a1 += ga * e1 if m else z
                        a2 += ga * e2 if m else z
                        a3 += ga * e3 if m else z
                        a4 += ga * e4 if m else z
                        a5 += ga * e5 if m else z
                        a6 += ga * e6 if m else z
                        a7 += ga * e7 if m else z
                        a8 += ga * e8 if m else z
                        b0 += gb * e0 if m else z
                        b1 += gb * e1 if m else z
                        b2 += gb * e2 if m else z
                        b3 += gb * e3 if m else z
                        b4 += gb * e4 if m else z
                        b5 += gb * e5 if m else z
                        b6 += gb * e6 if m else z
                        b7 += gb * e7 if m else z
                        b8 += gb * e8 if m else z
                    ra = res9[o0, c]
                    ra[0] += a0
                    ra[1] += a1
                    ra[2] += a2
                    ra[3] += a3
                    ra[4] += a4
                    ra[5] += a5
                    ra[6] += a6
                    ra[7] += a7
                    ra[8] += a8
                    if o1 != o0:
                        rb = res9[o1, c]
                        rb[0] += b0
                        rb[1] += b1
                        rb[2] += b2
                        rb[3] += b3
                        rb[4] += b4
                        rb[5] += b5
                        rb[6] += b6
                        rb[7] += b7
                        rb[8] += b8

    return Kernels(max_pool, scatter, conv3x3, conv3x3_kernel_ct)


def kernels(wait=False):
    """The compiled :class:`Kernels`, or None: no Numba, disabled, or still
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


def _warm(max_pool, scatter, conv3x3, conv3x3_kernel_ct):
    """Compile (or load from the disk cache) the signatures the common cases use, so the
    first call on the main thread does not compile."""
    for dt in _FLOATS:
        x = np.zeros((1, 2, 2), dt)
        m = np.empty((1, 1, 1), dt)
        idx = np.empty((1, 1, 1), np.int8)      # (4 offsets: always int8)
        max_pool(x, m, idx)
        scatter(m, idx, x)
        x = np.zeros((1, 1, 3, 3), dt)
        w = np.zeros((1, 1, 3, 3), dt)
        out = np.empty((1, 1, 3, 3), dt)
        conv3x3(x, w, out, 1, 1, 1, 1)
        conv3x3_kernel_ct(x, out, w, 1, 1, 1, 1)


def pool_geometry(nd, wd, ws, pads, bd, wdl):
    """Whether window params pool only the last two dimensions of an ``nd``-d array with
    2x2 windows and stride 2, no padding and no dilation: the case the kernels cover."""
    return (nd >= 2 and tuple(wd[-2:]) == (2, 2) and tuple(ws[-2:]) == (2, 2) and
            all(w == 1 and s == 1 for w, s in zip(wd[:-2], ws[:-2])) and
            not any(lo or hi for lo, hi in pads) and all(b == 1 for b in bd) and
            all(d == 1 for d in wdl))


def conv_geometry(c, kernel, window_strides, padding, lhs_dilation, feature_group_count):
    """Whether a convolution (canonical layout, ``c`` input features) is one the direct
    kernels cover: 2-D, a 3x3 kernel (any kernel dilation), unit strides, no input
    dilation, one feature group, no negative padding, at most ``CONV_MAX_FEATURES``
    input features."""
    return (len(kernel) == 2 and tuple(kernel) == (3, 3) and 1 <= c <= CONV_MAX_FEATURES
            and feature_group_count == 1 and all(s == 1 for s in window_strides) and
            all(d == 1 for d in lhs_dilation) and
            all(lo >= 0 and hi >= 0 for lo, hi in padding))


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

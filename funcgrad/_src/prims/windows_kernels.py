"""The array implementations of the convolution and window primitives (windows.py):
plain NumPy/CuPy arrays in, arrays out, never tracers.

Convolutions cut the padded (and dilated) input into windows with a strided view, copy
them once into an im2col buffer ``(N, C * prod(kernel), positions)`` and do one small
BLAS product per image; the input cotangent either convolves ``g`` with the flipped
kernel or adds the products back into the input grid (col2im), whichever moves less
memory; the kernel cotangent multiplies the windows by g transposed (a copy) when the
windows are long, so that neither operand of the product is transposed
(``_kernel_ct_transposed``). With unit strides the positions run over the padded
grid's flat index ("wide" rows: the few columns that straddle a row end are computed and
dropped), which turns the copies into long contiguous runs. When rows are padded to
their own width (a "same" 3x3 convolution, say) the input needs no padded copy at all:
each kernel offset reads a shifted run of the input itself, zeros are written where a
run wraps around a row end, and the positions are the output's own, so the product
writes the result in place (``_Shift``). Windowed reductions loop over the few window
offsets, never over pixels; where Numba is installed, 2x2 stride-2 max pooling (forward
and backward) runs as one compiled pass instead (windows_numba.py, same results).

Speed: the batch is split over the process's threads (``funcgrad.config`` option
``num_threads``; see threads.py), because the per-image products are too
small for BLAS to thread, and each thread's share runs in cache-sized blocks;
temporaries live in per-thread work buffers reused across calls (``_scratch``). Under
jit a whole training step is split over the batch instead (rows.py and the row rules in
windows.py), and these implementations then run serially on each slice.

Short windows (a first layer of 1-3 input features and a 3x3 kernel) still go through
im2col: a direct Numba convolution and kernel cotangent (commit a15c4bb, reverted) were
no faster on a 28x28 1->16 float32 layer (per call, as fast as im2col: forward
0.7-1.1x, kernel cotangent 0.7-1.0x; the CNN step's time with them 1.00-1.02x), as
both paths are bound by the output's memory traffic and the products already run near
the BLAS's rate.
"""
from __future__ import annotations

import collections
import functools
import itertools
import math
import threading
from typing import NamedTuple

import numpy as np

from .. import threads as _threads
from ..backend import array_module
from ..errors import FuncgradTypeError
from . import windows_numba as _nb

# =======================================================================================
# Array helpers shared by the implementations (plain arrays only, never tracers).


def _dilated(n, d):
    return 0 if n == 0 else (n - 1) * d + 1


@functools.lru_cache(maxsize=1024)
def _trivial(pads, dil):
    return all(d == 1 for d in dil) and all(lo == 0 and hi == 0 for lo, hi in pads)


@functools.lru_cache(maxsize=1024)
def _embedding(sizes, pads, dil):
    """Where ``x`` lands in its dilated, padded copy, per trailing dimension.

    Returns (padded sizes, destination slices, source slices, whole) where ``whole`` says
    every element of ``x`` is visible (no negative padding cropped it), or ``None`` for
    the slices when nothing of ``x`` is visible.
    """
    padded, dst, src = [], [], []
    whole = True
    for n, d, (lo, hi) in zip(sizes, dil, pads):
        p = _dilated(n, d) + lo + hi
        padded.append(p)
        i0 = 0 if lo >= 0 else (d - 1 - lo) // d          # first index with lo + d*i >= 0
        i1 = min(n - 1, (p - 1 - lo) // d)                # last index with lo + d*i < p
        if i1 < i0:
            return tuple(padded), None, None, False
        whole = whole and i0 == 0 and i1 == n - 1
        dst.append(slice(lo + d * i0, lo + d * i1 + 1, d))
        src.append(slice(i0, i1 + 1))
    return tuple(padded), tuple(dst), tuple(src), whole


class _ScratchPool(threading.local):
    def __init__(self):
        self.bufs = collections.OrderedDict()
        self.nbytes = 0


_pool = _ScratchPool()
_POOL_BYTES = 64 << 20


def _scratch(xp, shape, dtype, tag, fill=0):
    """A work buffer for a temporary that dies inside one implementation call, reused
    across calls (per thread, the least recently used dropped past 64 MiB in all).

    Fresh large arrays cost a page fault per 4 KiB page on first touch, which on small
    networks costs as much as the arithmetic; reusing buffers avoids it. The buffer is
    filled with ``fill`` when created, and otherwise holds whatever the previous call
    with the same ``tag`` left in it: callers pick tags under which every call writes the
    same positions (the rest keep ``fill``), or overwrite the whole buffer.
    """
    if xp is not np:
        return xp.full(shape, fill, dtype)
    key = (tag, shape, dtype)
    buf = _pool.bufs.pop(key, None)
    if buf is None:
        buf = np.zeros(shape, dtype) if fill == 0 else np.full(shape, fill, dtype)
        if buf.nbytes > _POOL_BYTES // 4:
            return buf
        _pool.nbytes += buf.nbytes
        while _pool.nbytes > _POOL_BYTES:
            _pool.nbytes -= _pool.bufs.popitem(last=False)[1].nbytes
    _pool.bufs[key] = buf
    return buf


def _pad_dilate(x, pads, dil, fill=0, scratch=False):
    """``x`` with ``dil - 1`` holes between elements and ``pads`` added (negative pads
    crop) on its trailing ``len(pads)`` dimensions; holes and pads hold ``fill``.

    With ``scratch=True`` the result is a reused work buffer (see :func:`_scratch`): the
    caller must not let it escape."""
    if _trivial(pads, dil):
        return x
    lead = x.ndim - len(pads)
    padded, dst, src, _ = _embedding(tuple(x.shape[lead:]), pads, dil)
    xp = array_module(x)
    shape = x.shape[:lead] + padded
    if scratch:
        out = _scratch(xp, shape, x.dtype, ("pad", pads, dil, fill), fill)
    else:
        out = xp.zeros(shape, x.dtype) if fill == 0 else xp.full(shape, fill, x.dtype)
    if dst is not None:
        keep = (slice(None),) * lead
        out[keep + dst] = x[keep + src]
    return out


def _unpad_undilate(gp, sizes, pads, dil, copy=False):
    """The transpose of :func:`_pad_dilate`: the elements of ``gp`` that came from ``x``
    (always in a new array with ``copy=True``, for a ``gp`` that is a work buffer)."""
    xp = array_module(gp)
    if _trivial(pads, dil):
        return xp.array(gp, copy=True) if copy else gp
    lead = gp.ndim - len(pads)
    _, dst, src, whole = _embedding(tuple(sizes), pads, dil)
    keep = (slice(None),) * lead
    if whole:
        view = gp[keep + dst]
        return xp.array(view, copy=True) if copy else xp.ascontiguousarray(view)
    out = xp.zeros(gp.shape[:lead] + tuple(sizes), gp.dtype)
    if dst is not None:
        out[keep + src] = gp[keep + dst]
    return out


def _as_strided(x, shape, strides, writeable=False):
    """A strided view of the C-contiguous ``x`` (bounds-checked by NumPy)."""
    if isinstance(x, np.ndarray):
        # the ndarray constructor is ~20x cheaper than stride_tricks.as_strided
        return np.ndarray(shape, x.dtype, x, 0, strides)
    return array_module(x).lib.stride_tricks.as_strided(x, shape, strides)


# =======================================================================================
# Convolution


class _Plan(NamedTuple):
    out: tuple        # output spatial sizes
    q: int            # positions per image in the im2col buffer
    qstrides: tuple   # where output position (o_1, ..., o_d) sits among the q positions
    wide: bool        # positions are flat indices into the padded grid


@functools.lru_cache(maxsize=512)
def _plan(padded, kernel, strides, rhs_dilation, wide=True):
    out = tuple((p - _dilated(k, r)) // s + 1
                for p, k, s, r in zip(padded, kernel, strides, rhs_dilation))
    flat = tuple(math.prod(padded[i + 1:]) for i in range(len(padded)))
    n_out = math.prod(out)
    if wide and len(padded) > 1 and all(s == 1 for s in strides):
        q = sum((o - 1) * f for o, f in zip(out, flat)) + 1
        if q <= 1.5 * n_out:   # few wasted row-end columns: take the contiguous copy
            return _Plan(out, q, flat, True)
    return _Plan(out, n_out, tuple(math.prod(out[i + 1:]) for i in range(len(out))), False)


def _wide(o, c, kernel):
    """Whether wide positions pay for a convolution with ``o`` output and ``c`` input
    features: they make the im2col copy of ``c * prod(kernel)`` rows contiguous, but cost
    a copy of ``o`` rows between wide and compact positions (the result, or g). Measured
    on 3x3 kernels (1->8, 3->16, 1->32, 2->8, 4->8, 8->16, 16->8 features): compact wins
    from o >= c * prod(kernel) / 2 on (1->8: 15% faster; 1->32: 40%)."""
    return 2 * o < c * math.prod(kernel)


def _im2col(xpad, kernel, strides, rhs_dilation, plan):
    """The windows of ``xpad`` (N, C, *padded) copied into a work buffer of shape
    (N, C * prod(kernel), q)."""
    xp = array_module(xpad)
    x = xp.ascontiguousarray(xpad)
    shape, st, flat_shape = _im2col_layout(x.shape, x.itemsize, tuple(kernel), strides,
                                           rhs_dilation, plan)
    cols = _scratch(xp, shape, x.dtype, "cols")
    xp.copyto(cols, _as_strided(x, shape, st))
    return cols.reshape(flat_shape)


@functools.lru_cache(maxsize=512)
def _im2col_layout(xshape, isz, kernel, strides, rhs_dilation, plan):
    n, c = xshape[:2]
    flat = tuple(math.prod(xshape[i + 1:]) for i in range(2, len(xshape)))
    image = math.prod(xshape[2:])
    st = (c * image * isz, image * isz) + tuple(
        r * f * isz for r, f in zip(rhs_dilation, flat))
    lead = (n, c) + kernel
    if plan.wide:
        shape, st = lead + (plan.q,), st + (isz,)
    else:
        shape = lead + plan.out
        st = st + tuple(s * f * isz for s, f in zip(strides, flat))
    return shape, st, (n, c * math.prod(kernel), plan.q)


class _Shift(NamedTuple):
    """A convolution whose output rows are as wide as its input rows: stride 1, no input
    dilation, and the last dimension padded by exactly the dilated kernel's width less
    one ("same" along it; the other dimension may be padded anyhow, or not at all). Its
    windows then read, for each kernel offset, one contiguous run of the unpadded input
    (shifted by a constant): no padded copy of the input is needed, only zeros
    written afterwards where a run wraps around a row end or leaves the image. The
    positions are the output's own (compact), so the product writes the result and
    reads g in place."""
    lo: int           # zeros before the input, in flat elements (the most negative shift)
    hi: int           # zeros after it
    shape: tuple      # (C, kh, kw, Ho, W): an image's windows, run by run
    strides: tuple    # element strides of those five axes over the shifted input
    rows: tuple       # (ki, h0, h1): output rows h0:h1 read outside the image at offset ki
    cols: tuple       # (kj, w0, w1): output columns w0:w1 read outside it at offset kj


@functools.lru_cache(maxsize=512)
def _shift_layout(xshape, kernel, strides, padding, lhs_dilation, rhs_dilation):
    """The :class:`_Shift` layout of a convolution of ``xshape`` (N, C, *spatial) inputs,
    or None where it does not apply (see there; 1-D and 2-D convolutions)."""
    if len(kernel) not in (1, 2) or any(s != 1 for s in strides) or \
            any(d != 1 for d in lhs_dilation) or any(lo < 0 or hi < 0 for lo, hi in padding):
        return None
    c = xshape[1]

    def as_2d(v, one):       # a 1-D convolution is a 2-D one over a single row
        return ((one,) + tuple(v))[-2:]
    (h, w), (kh, kw), (dh, dw) = as_2d(xshape[2:], 1), as_2d(kernel, 1), as_2d(rhs_dilation, 1)
    (lh, hh), (lw, hw) = as_2d(padding, (0, 0))
    if lw + hw != (kw - 1) * dw:
        return None
    ho = h + lh + hh - (kh - 1) * dh
    if ho < 1 or h * w == 0:
        return None
    rows = []
    for ki in range(kh):
        r = ki * dh - lh                    # output row t reads input row t + r
        for h0, h1 in ((0, min(ho, -r)), (max(0, h - r), ho)):
            if h1 > h0:
                rows.append((ki, h0, h1))
    cols = []
    for kj in range(kw):
        r = kj * dw - lw
        for w0, w1 in ((0, min(w, -r)), (max(0, w - r), w)):
            if w1 > w0:
                cols.append((kj, w0, w1))
    return _Shift(lh * w + lw, hh * w + hw, (c, kh, kw, ho, w),
                  (h * w, dh * w, dw, w, 1), tuple(rows), tuple(cols))


def _im2col_shifted(x, kernel, layout):
    """The windows of ``x`` (N, C, *spatial), unpadded, in a work buffer of shape
    (N, C * prod(kernel), Ho * W) (see :class:`_Shift`)."""
    xp = array_module(x)
    n = x.shape[0]
    size = math.prod(x.shape)
    # the input between zeros (a contiguous copy), so every run stays inside the buffer
    # (keyed by both margins: they hold zeros that no call may overwrite)
    flat = _scratch(xp, (layout.lo + size + layout.hi,), x.dtype,
                    ("shift", layout.lo, layout.hi))
    flat[layout.lo:layout.lo + size] = x.reshape(-1)
    shape = (n,) + layout.shape
    image = layout.shape[0] * layout.strides[0]
    cols = _scratch(xp, shape, x.dtype, "cols")
    xp.copyto(cols, _as_strided(flat, shape,
                                tuple(x.itemsize * s for s in (image,) + layout.strides)))
    for ki, h0, h1 in layout.rows:
        cols[:, :, ki, :, h0:h1] = 0
    for kj, w0, w1 in layout.cols:
        cols[:, :, :, kj, :, w0:w1] = 0
    return cols.reshape(n, layout.shape[0] * math.prod(kernel), -1)


def _positions_view(buf, plan, writeable=False):
    """View of an (N, O, q) buffer as (N, O, *out): the valid output positions."""
    if not plan.wide:
        return buf.reshape(buf.shape[:2] + plan.out)
    return _as_strided(buf, buf.shape[:2] + plan.out,
                       buf.strides[:2] + _position_strides(plan, buf.itemsize), writeable)


@functools.lru_cache(maxsize=512)
def _position_strides(plan, isz):
    return tuple(s * isz for s in plan.qstrides)


# Both products run one small GEMM per image (a stacked matmul over N): OpenBLAS is
# several times faster that way than with one GEMM whose inner or outer dimension spans
# the whole batch, and the forward result comes out in (N, O, ...) order directly. Those
# GEMMs are too small for OpenBLAS to thread, so the batch is split over worker threads
# instead (see _map_batch), each chunk with its own work buffers.
def _conv_impl(lhs, rhs, *, window_strides, padding, lhs_dilation, rhs_dilation,
               feature_group_count):
    xp = array_module(lhs, rhs)
    kernel = tuple(rhs.shape[2:])
    shift, plan = _conv_layout(lhs, kernel, window_strides, padding, lhs_dilation,
                               rhs_dilation, rhs.shape[0])
    n = lhs.shape[0]
    o = rhs.shape[0]
    grp = feature_group_count
    out = xp.empty((n, o) + plan.out, np.result_type(lhs, rhs))
    w = rhs.reshape(grp, o // grp, -1)

    def chunk(a, b):
        cols = _windows_of(lhs[a:b], kernel, window_strides, padding, lhs_dilation,
                           rhs_dilation, shift, plan)                      # (n, C*K, q)
        cols = cols.reshape(b - a, grp, -1, plan.q)
        if not plan.wide:
            xp.matmul(w, cols, out=out[a:b].reshape(b - a, grp, o // grp, plan.q))
            return
        res = _scratch(xp, (b - a, grp, o // grp, plan.q), out.dtype, "res")
        xp.matmul(w, cols, out=res)
        out[a:b] = _positions_view(res.reshape(b - a, o, plan.q), plan)

    _map_batch(chunk, n, _cols_size(lhs.shape[1], kernel, plan))
    return out


def _conv_layout(lhs, kernel, window_strides, padding, lhs_dilation, rhs_dilation, o):
    """(shift, plan): the :class:`_Shift` layout where it applies (else None) and the
    positions' plan; ``o`` the number of output features."""
    if array_module(lhs) is np and lhs.flags.c_contiguous:
        shift = _shift_layout(lhs.shape, kernel, tuple(window_strides), tuple(padding),
                              tuple(lhs_dilation), tuple(rhs_dilation))
    else:
        shift = None
    padded = _padded_sizes(lhs.shape[2:], padding, lhs_dilation)
    wide = shift is None and _wide(o, lhs.shape[1], kernel)
    return shift, _plan(padded, kernel, window_strides, rhs_dilation, wide)


def _windows_of(x, kernel, window_strides, padding, lhs_dilation, rhs_dilation, shift,
                plan):
    """The im2col buffer (n, C * K, q) of a block ``x`` of the input."""
    if shift is not None:
        return _im2col_shifted(x, kernel, shift)
    xpad = _pad_dilate(x, padding, lhs_dilation, scratch=True)
    return _im2col(xpad, kernel, window_strides, rhs_dilation, plan)


def _cols_size(c, kernel, plan):
    """Elements of one image's im2col buffer: the measure of work used to decide whether
    a batch is worth splitting over threads."""
    return c * math.prod(kernel) * plan.q


def _padded_sizes(sizes, padding, dilation):
    return tuple(_dilated(sz, d) + lo + hi for sz, d, (lo, hi) in zip(sizes, dilation, padding))


def _embed_positions(g, plan):
    """g (N, O, *out) laid out like the im2col positions: (N, O, q), zero elsewhere."""
    n, o = g.shape[:2]
    if not plan.wide:
        return g.reshape(n, o, plan.q)
    # (keyed by the plan: the zeros must sit exactly where this plan never writes)
    g2 = _scratch(array_module(g), (n, o, plan.q), g.dtype, ("positions", plan))
    array_module(g).copyto(_positions_view(g2, plan, writeable=True), g)
    return g2


def _conv_kernel_ct_impl(lhs, g, *, kernel_shape, window_strides, padding, lhs_dilation,
                         rhs_dilation, feature_group_count):
    xp = array_module(lhs, g)
    kernel_shape = tuple(kernel_shape)
    shift, plan = _conv_layout(lhs, kernel_shape, window_strides, padding, lhs_dilation,
                               rhs_dilation, g.shape[1])
    n, c = lhs.shape[:2]
    o = g.shape[1]
    grp = feature_group_count
    dtype = np.result_type(lhs, g)

    k = c // grp * math.prod(kernel_shape)
    transposed = _kernel_ct_transposed(k, o // grp)

    def chunk(a, b):
        nb = b - a
        cols = _windows_of(lhs[a:b], kernel_shape, window_strides, padding, lhs_dilation,
                           rhs_dilation, shift, plan).reshape(nb, grp, k, plan.q)
        g2 = _embed_positions(g[a:b], plan).reshape(nb, grp, o // grp, plan.q)
        if transposed:
            gt = _scratch(xp, (nb, grp, plan.q, o // grp), dtype, "kernel g")
            xp.copyto(gt, xp.swapaxes(g2, 2, 3))
            res = _scratch(xp, (nb, grp, k, o // grp), dtype, "kernel")
            xp.matmul(cols, gt, out=res)
            return xp.swapaxes(res.sum(axis=0), 1, 2)
        res = _scratch(xp, (nb, grp, o // grp, k), dtype, "kernel")
        xp.matmul(g2, xp.swapaxes(cols, 2, 3), out=res)
        return res.sum(axis=0)

    parts = _map_batch(chunk, n, _cols_size(c, kernel_shape, plan))
    total = parts[0]
    for part in parts[1:]:
        total += part
    return xp.ascontiguousarray(total).reshape((o, c // grp) + tuple(kernel_shape))


def _kernel_ct_transposed(k, o):
    """Whether the kernel cotangent's per-image products should run as
    ``cols (k, q) @ g^T (q, o)`` on a transposed copy of g rather than as
    ``g (o, q) @ cols^T (q, k)``: OpenBLAS runs its small-matrix kernel on two untransposed
    operands but packs a transposed one, which costs more than the copy of g once the
    windows are long (``k`` = input features x kernel size) and the outputs few. Measured
    (per-image products, 1 thread, q = 64 to 1024 positions): 1.1-2.5x faster for k = 144
    with 16-32 output features and k = 288 with 8-32; slower for k <= 72 (2-3x for
    k = 9), for 144 x 8, and for 64 outputs at 784-1024 positions (up to 1.4x), about even
    for 64-128 outputs elsewhere."""
    return k >= 128 and o <= 32 and k * o >= 2048


def _conv_lhs_ct_impl(g, rhs, *, lhs_shape, window_strides, padding, lhs_dilation,
                      rhs_dilation, feature_group_count):
    xp = array_module(g, rhs)
    n, o = g.shape[:2]
    i = rhs.shape[1]
    kernel = tuple(rhs.shape[2:])
    grp = feature_group_count
    c = i * grp
    if all(s == 1 for s in window_strides) and (
            o <= 2 * c or any(d > 1 for d in lhs_dilation)):
        # the convolution of g with the flipped kernel: faster unless g has many more
        # features than the input (measured), and it skips the holes of a dilated input
        w = rhs.reshape((grp, o // grp, i) + kernel).swapaxes(1, 2)
        w = w.reshape((c, o // grp) + kernel)[(slice(None),) * 2 + (slice(None, None, -1),)
                                             * len(kernel)]
        return _conv_impl(g, w, **_lhs_ct_params(g.shape[2:], kernel, lhs_shape,
                                                  window_strides, padding, lhs_dilation,
                                                  rhs_dilation, grp))
    # col2im: the products of g with the kernel, added back into the padded input grid
    padded = _padded_sizes(lhs_shape, padding, lhs_dilation)
    plan = _plan(padded, kernel, window_strides, rhs_dilation)
    kp = math.prod(kernel)
    wt = xp.swapaxes(rhs.reshape(grp, o // grp, i * kp), 1, 2)
    dtype = np.result_type(g, rhs)
    out = xp.empty((n, c) + tuple(lhs_shape), dtype)
    flat = tuple(math.prod(padded[j + 1:]) for j in range(len(padded)))

    def chunk(a, b):
        nb = b - a
        g2 = _embed_positions(g[a:b], plan)
        gcols = _scratch(xp, (nb, grp, i * kp, plan.q), dtype, "gcols")
        xp.matmul(wt, g2.reshape(nb, grp, o // grp, plan.q), out=gcols)
        gcols = gcols.reshape(nb, c, kp, plan.q)
        gp = _scratch(xp, (nb, c) + padded, dtype, "grid")
        gp.fill(0)
        gflat = gp.reshape(nb, c, -1)
        for j, offs in enumerate(itertools.product(*[range(k) for k in kernel])):
            if plan.wide:
                off = sum(k * r * f for k, r, f in zip(offs, rhs_dilation, flat))
                t = gflat[:, :, off:off + plan.q]
                xp.add(t, gcols[:, :, j], out=t)
            else:
                t = gp[(slice(None), slice(None)) + tuple(
                    slice(k * r, k * r + (m - 1) * s + 1, s) for k, r, m, s in
                    zip(offs, rhs_dilation, plan.out, window_strides))]
                xp.add(t, gcols[:, :, j].reshape(t.shape), out=t)
        out[a:b] = _unpad_undilate(gp, lhs_shape, padding, lhs_dilation)

    _map_batch(chunk, n, _cols_size(c, kernel, plan))
    return out


# ---- threads (shared with jit's row splitting: see funcgrad/_src/threads.py) -----------
_map_batch = _threads.map_batch


def _lhs_ct_params(out_spatial, kernel, lhs_shape, window_strides, padding, lhs_dilation,
                   rhs_dilation, feature_group_count):
    """The parameters of the convolution of g that computes the input cotangent: strides
    and input dilation swap places, and the padding makes the output the input's size."""
    pads = []
    for s_in, k, s, (lo, _), ld, rd, o in zip(lhs_shape, kernel, window_strides, padding,
                                             lhs_dilation, rhs_dilation, out_spatial):
        ek = (k - 1) * rd
        lo2 = ek - lo
        pads.append((lo2, (s_in - 1) * ld + ek + 1 - ((o - 1) * s + 1) - lo2))
    return dict(window_strides=tuple(lhs_dilation), padding=tuple(pads),
                lhs_dilation=tuple(window_strides), rhs_dilation=tuple(rhs_dilation),
                feature_group_count=feature_group_count)


# =======================================================================================
# Windowed reductions over every dimension of the operand (pooling)
#
# Params shared by the window primitives: window_dimensions, window_strides, padding
# ((lo, hi) per dimension, already explicit), base_dilation, window_dilation.


class _Windows(NamedTuple):
    padded: tuple     # shape of the padded, dilated operand
    out: tuple        # output shape
    views: tuple      # per window offset (row-major order), the slices of the padded
                      # operand that line up with the output
    trivial: bool     # no padding and no base dilation: the operand is used as it is
    disjoint: bool    # no two windows share an element
    tiles: bool       # the windows cover every element exactly once


@functools.lru_cache(maxsize=512)
def _window_views(shape, window_dimensions, window_strides, padding, base_dilation,
                  window_dilation):
    padded = tuple(_dilated(n, b) + lo + hi
                   for n, b, (lo, hi) in zip(shape, base_dilation, padding))
    out = tuple((p - _dilated(w, d)) // s + 1 for p, w, s, d in
                zip(padded, window_dimensions, window_strides, window_dilation))
    views = []
    for offs in itertools.product(*[range(w) for w in window_dimensions]):
        views.append(tuple(slice(k * d, k * d + (o - 1) * s + 1, s) for k, d, o, s in
                           zip(offs, window_dilation, out, window_strides)))
    disjoint = all(s >= _dilated(w, d) for w, s, d in
                   zip(window_dimensions, window_strides, window_dilation))
    tiles = all(s == w and o * s == p and (w == 1 or d == 1) for w, s, d, o, p in
                zip(window_dimensions, window_strides, window_dilation, out, padded))
    return _Windows(padded, out, tuple(views), _trivial(padding, base_dilation), disjoint,
                    tiles)


def _padded_operand(x, p, fill=0):
    """The operand padded and dilated for the windows (a work buffer when it is a copy)."""
    return _pad_dilate(x, p["padding"], p["base_dilation"], fill, scratch=True)


# Each operation has a serial core that writes into given outputs, and an implementation
# that splits the leading (batch) axis over threads when no window spans it.
def _wsum_core(x, out, p):
    views = _window_views(x.shape, **p).views
    xpad = _padded_operand(x, p)
    if len(views) == 1:
        out[...] = xpad[views[0]]
        return
    np.add(xpad[views[0]], xpad[views[1]], out=out)
    for v in views[2:]:
        np.add(out, xpad[v], out=out)


def _accumulation_grid(w, out):
    """A zeroed array of the padded operand's shape to add window contributions into:
    ``out`` itself when there is no padding, else a work buffer."""
    gp = out if w.trivial else _scratch(array_module(out), w.padded, out.dtype, "window grid")
    gp.fill(0)
    return gp


def _finish_grid(gp, out, p):
    if gp is not out:
        out[...] = _unpad_undilate(gp, out.shape, p["padding"], p["base_dilation"])


def _wsum_t_core(g, out, p):
    w = _window_views(out.shape, **p)
    gp = _accumulation_grid(w, out)
    for v in w.views:
        t = gp[v]
        np.add(t, g, out=t)
    _finish_grid(gp, out, p)


@functools.lru_cache(maxsize=64)
def _lowest(dtype):
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        return -np.inf
    if dtype.kind in "iu":
        return np.iinfo(dtype).min
    if dtype.kind == "b":
        return False
    raise FuncgradTypeError(f"reduce_window max: unsupported dtype {dtype.name}")


def _offset_dtype(n):
    return np.int8 if n <= 127 else np.int16 if n <= 32767 else np.int32


def _numba_pool(x, p):
    """The Numba kernels (windows_numba.py) when they apply to ``x``, else None."""
    if not (_nb.usable(x) and _nb_geometry(x.ndim, p["window_dimensions"],
                                           p["window_strides"], p["padding"],
                                           p["base_dilation"], p["window_dilation"])):
        return None
    return _nb.kernels()


_nb_geometry = functools.lru_cache(maxsize=256)(_nb.pool_geometry)


def _wmax_core(x, m, idx, p):
    fast = _numba_pool(x, p)
    if fast is not None and _nb.usable(m) and _nb.usable_index(idx):
        fast[0](_nb.as3d(x), _nb.as3d(m), _nb.as3d(idx))
        return
    views = _window_views(x.shape, **p).views
    xpad = _padded_operand(x, p, _lowest(x.dtype))
    # The maximum, one dimension at a time from the outermost: those passes read whole
    # rows, several times faster than strided passes over every window offset.
    cur = xpad
    dims = [d for d, (w, s) in enumerate(zip(p["window_dimensions"], p["window_strides"]))
            if w > 1 or s > 1 or m.shape[d] != cur.shape[d]]
    for d in dims:
        w = p["window_dimensions"][d]
        s = p["window_strides"][d]
        dil = p["window_dilation"][d]
        o = m.shape[d]
        sl = [(slice(None),) * d + (slice(k * dil, k * dil + (o - 1) * s + 1, s),)
              for k in range(w)]
        if w == 1:
            cur = cur[sl[0]]
            continue
        nxt = m if d == dims[-1] else array_module(cur).empty(cur[sl[0]].shape, cur.dtype)
        np.maximum(cur[sl[0]], cur[sl[1]], out=nxt)
        for v in sl[2:]:
            np.maximum(nxt, cur[v], out=nxt)
        cur = nxt
    if cur is not m:
        np.copyto(m, cur)
    # The arg-max: the first offset, in row-major order, whose element equals the max.
    # Masked NumPy calls (where=, np.where, copyto with a mask) are ~10x slower than
    # arithmetic on random masks, so it is computed with int arithmetic, Horner-style:
    # idx = n_0 * (1 + n_1 * (1 + ... * (1 + n_{K-2}))) where n_k = (x_k != max) is 0 at
    # the offsets holding the max (a NaN max holds nowhere: idx = K - 1).
    last = len(views) - 1
    if last == 0:
        idx.fill(0)
        return
    miss = array_module(m).empty(m.shape, np.bool_)
    np.not_equal(xpad[views[last - 1]], m, out=miss)
    np.copyto(idx, miss.view(np.int8) if idx.dtype == np.int8 else miss)
    for k in range(last - 2, -1, -1):
        idx += 1
        np.not_equal(xpad[views[k]], m, out=miss)
        idx *= miss.view(np.int8) if idx.dtype == np.int8 else miss


# The gather and scatter multiply by the 0/1 window masks (fast; see above): a non-finite
# value at a position that is not the arg-max would turn into NaN, which only happens
# when the tangent or cotangent itself is already non-finite.
def _wgather_core(t, idx, out, p):
    views = _window_views(t.shape, **p).views
    tpad = _padded_operand(t, p)
    np.multiply(tpad[views[0]], idx == 0, out=out)
    for k, v in enumerate(views[1:], 1):
        out += np.multiply(tpad[v], idx == k)


@functools.lru_cache(maxsize=256)
def _tile_layout(shape, window_dimensions):
    """For windows that tile an array of ``shape``: the shape that splits each dimension
    into (window, offset) and the permutation that puts the offsets first."""
    split = tuple(v for n, w in zip(shape, window_dimensions) for v in (n // w, w))
    nd = len(shape)
    return split, tuple(range(1, 2 * nd, 2)) + tuple(range(0, 2 * nd, 2))


def _tile_view(a, window_dimensions):
    """A C-contiguous NumPy array whose windows tile it, as (*offsets, *windows): the
    element at window offset k of output position i is ``view[k][i]``."""
    split, perm = _tile_layout(a.shape, tuple(window_dimensions))
    return a.reshape(split).transpose(perm)


@functools.lru_cache(maxsize=64)
def _offset_grid(window_dimensions, dtype):
    """Offsets in row-major order, shaped (*window, 1, ..., 1) to meet a (*windows)
    array (read-only: shared)."""
    k = np.arange(math.prod(window_dimensions), dtype=dtype).reshape(
        tuple(window_dimensions) + (1,) * len(window_dimensions))
    k.flags.writeable = False
    return k


def _tiled(w, *arrays):
    """Whether the one-call paths for tiling windows apply: windows that cover each
    element once, no padding, and C-contiguous NumPy arrays."""
    return w.tiles and w.trivial and all(type(a) is np.ndarray and a.flags.c_contiguous
                                         for a in arrays)


def _wscatter_core(g, idx, out, p):
    fast = _numba_pool(out, p)
    if fast is not None and _nb.usable(g) and _nb.usable_index(idx):
        if out.shape[-2] % 2 or out.shape[-1] % 2:
            out.fill(0)                     # the odd last row or column is in no window
        fast[1](_nb.as3d(g), _nb.as3d(idx), _nb.as3d(out))
        return
    w = _window_views(out.shape, **p)
    if _tiled(w, out):
        # one comparison and one product for all the offsets (4 calls fewer per offset
        # pair than a loop: under jit's row splitting, each NumPy call is a GIL hand-off)
        wd = tuple(p["window_dimensions"])
        np.multiply(g, np.equal(idx, _offset_grid(wd, idx.dtype)), out=_tile_view(out, wd))
        return
    if w.tiles and w.trivial:      # every element is written below, zero or not
        gp = out
    else:
        gp = _accumulation_grid(w, out)
    for k, v in enumerate(w.views):
        t = gp[v]
        if w.disjoint:
            np.multiply(g, idx == k, out=t)
        else:                                 # overlapping windows accumulate
            np.add(t, np.multiply(g, idx == k), out=t)
    _finish_grid(gp, out, p)


def _over_batch(core, p, args, outs):
    """``core(*args, *outs, p)``, split over threads along axis 0 when no window spans
    it (the outputs' axis 0 then matches the inputs')."""
    n = outs[0].shape[0] if outs[0].ndim else 0
    if (n < 2 or p["window_dimensions"][0] != 1 or p["window_strides"][0] != 1 or
            p["padding"][0] != (0, 0) or p["base_dilation"][0] != 1 or
            any(array_module(a) is not np for a in args)):
        core(*args, *outs, p)
        return
    work = max(o.size for o in outs) // n * math.prod(p["window_dimensions"])

    def chunk(a, b):
        core(*[x[a:b] for x in args], *[o[a:b] for o in outs], p)
    _map_batch(chunk, n, work)


def _window_sum_impl(x, **p):
    out = array_module(x).empty(_window_views(x.shape, **p).out, x.dtype)
    _over_batch(_wsum_core, p, (x,), (out,))
    return out


def _window_sum_t_impl(g, *, operand_shape, **p):
    out = array_module(g).empty(operand_shape, g.dtype)
    _over_batch(_wsum_t_core, p, (g,), (out,))
    return out


def _window_max_impl(x, **p):
    shape = _window_views(x.shape, **p).out
    m = array_module(x).empty(shape, x.dtype)
    idx = array_module(x).empty(shape, _offset_dtype(math.prod(p["window_dimensions"])))
    _over_batch(_wmax_core, p, (x,), (m, idx))
    return m, idx


def _window_gather_impl(t, idx, **p):
    out = array_module(t).empty(idx.shape, t.dtype)
    _over_batch(_wgather_core, p, (t, idx), (out,))
    return out


def _window_scatter_impl(g, idx, *, operand_shape, **p):
    out = array_module(g).empty(operand_shape, g.dtype)
    _over_batch(_wscatter_core, p, (g, idx), (out,))
    return out

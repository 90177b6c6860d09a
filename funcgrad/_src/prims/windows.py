"""Convolution and windowed reductions (pooling), each primitive with all of its rules.

Inside the primitives every array is in the canonical layout: ``lhs`` is
``(N, C, *spatial)``, ``rhs`` is ``(O, I, *kernel)`` and the output is
``(N, O, *out_spatial)``; padding is explicit ``(lo, hi)`` pairs. The public functions
(``conv_general_dilated``, ``reduce_window``, ..., exported by ``funcgrad.lax``) turn
dimension numbers and padding strings into that form with funcgrad transposes, outside
the primitives, so the permutations are differentiated like any other operation.

Two families, each closed under differentiation (every rule binds primitives of its own
family, so derivatives of any order work):

* ``conv``, ``conv_input_cotangent`` and ``conv_kernel_cotangent``: the three partial
  derivatives of the trilinear form ``<conv(x, w), g>``, so the cotangents of each are
  the other two. All three cut the padded (and dilated) input into windows with a
  strided view, copy them once into an im2col buffer ``(N, C * prod(kernel), positions)``
  and do one small BLAS product per image; the input cotangent either convolves ``g``
  with the flipped kernel or adds the products back into the input grid (col2im),
  whichever moves less memory. With unit strides the positions run over the padded
  grid's flat index ("wide" rows: the few columns that straddle a row end are computed
  and dropped), which turns the copies into long contiguous runs.
* ``window_sum`` / ``window_sum_transpose`` (linear, each other's transposes) and
  ``window_max`` -> (max, arg-max offset) with ``window_gather`` / ``window_scatter``
  (linear in the values, each other's transposes) for its derivatives. Loops run over
  the few window offsets, never over pixels.

Speed: the batch is split over ``num_threads()`` threads (NumPy's BLAS thread count by
default; ``set_num_threads``; see threads.py), because the per-image products are too
small for BLAS to thread, and each thread's share runs in cache-sized blocks;
temporaries live in per-thread work buffers reused across calls (``_scratch``). Under
jit a whole training step is split over the batch instead (rows.py: the row rules at the
end of this file), and these implementations then run serially on each slice.
"""
from __future__ import annotations

import collections
import functools
import itertools
import math
import operator
import threading
from typing import NamedTuple

import numpy as np

from .. import rows as _rows
from .. import threads as _threads
from ..backend import array_module, dtype_name
from ..core import Primitive, Tracer, bind, defjvp, defvjp
from ..errors import FuncgradTypeError, FuncgradValueError
from . import shape as _shape
from . import elementwise as _el
from .indexing import _getitem

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
    plan = _plan(_padded_sizes(lhs.shape[2:], padding, lhs_dilation), kernel,
                 window_strides, rhs_dilation, _wide(rhs.shape[0], lhs.shape[1], kernel))
    n = lhs.shape[0]
    o = rhs.shape[0]
    grp = feature_group_count
    out = xp.empty((n, o) + plan.out, np.result_type(lhs, rhs))
    w = rhs.reshape(grp, o // grp, -1)

    def chunk(a, b):
        xpad = _pad_dilate(lhs[a:b], padding, lhs_dilation, scratch=True)
        cols = _im2col(xpad, kernel, window_strides, rhs_dilation, plan)   # (n, C*K, q)
        cols = cols.reshape(b - a, grp, -1, plan.q)
        if not plan.wide:
            xp.matmul(w, cols, out=out[a:b].reshape(b - a, grp, o // grp, plan.q))
            return
        res = _scratch(xp, (b - a, grp, o // grp, plan.q), out.dtype, "res")
        xp.matmul(w, cols, out=res)
        out[a:b] = _positions_view(res.reshape(b - a, o, plan.q), plan)

    _map_batch(chunk, n, _cols_size(lhs.shape[1], kernel, plan))
    return out


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
    plan = _plan(_padded_sizes(lhs.shape[2:], padding, lhs_dilation), kernel_shape,
                 window_strides, rhs_dilation, _wide(g.shape[1], lhs.shape[1], kernel_shape))
    n, c = lhs.shape[:2]
    o = g.shape[1]
    grp = feature_group_count
    dtype = np.result_type(lhs, g)

    def chunk(a, b):
        xpad = _pad_dilate(lhs[a:b], padding, lhs_dilation, scratch=True)
        cols = _im2col(xpad, kernel_shape, window_strides, rhs_dilation, plan)
        g2 = _embed_positions(g[a:b], plan)
        k = cols.shape[1] // grp
        res = _scratch(xp, (b - a, grp, o // grp, k), dtype, "kernel")
        xp.matmul(g2.reshape(b - a, grp, o // grp, plan.q),
                  xp.swapaxes(cols.reshape(b - a, grp, k, plan.q), 2, 3), out=res)
        return res.sum(axis=0)

    parts = _map_batch(chunk, n, _cols_size(c, kernel_shape, plan))
    total = parts[0]
    for part in parts[1:]:
        total += part
    return total.reshape((o, c // grp) + tuple(kernel_shape))


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
set_num_threads = _threads.set_num_threads
num_threads = _threads.num_threads


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


conv_p = Primitive("conv", _conv_impl)
conv_lhs_ct_p = Primitive("conv_input_cotangent", _conv_lhs_ct_impl)
conv_kernel_ct_p = Primitive("conv_kernel_cotangent", _conv_kernel_ct_impl)


def _fit(ct, x):
    return _shape._cast_cotangent(ct, x.dtype) if ct.dtype != x.dtype else ct


def _lhs_ct(g, rhs, lhs, p):
    return _fit(bind(conv_lhs_ct_p, g, rhs, lhs_shape=tuple(lhs.shape[2:]), **p), lhs)


def _kernel_ct(lhs, g, rhs, p):
    return _fit(bind(conv_kernel_ct_p, lhs, g, kernel_shape=tuple(rhs.shape[2:]), **p), rhs)


# conv(x, w), conv_input_cotangent(g, w) and conv_kernel_cotangent(x, g) are the three
# partial derivatives of the trilinear form <conv(x, w), g>: each one's cotangents are the
# other two.
defjvp(conv_p,
       lambda t, ans, lhs, rhs, **p: bind(conv_p, t, rhs, **p),
       lambda t, ans, lhs, rhs, **p: bind(conv_p, lhs, t, **p))
defvjp(conv_p,
       lambda g, ans, lhs, rhs, **p: _lhs_ct(g, rhs, lhs, p),
       lambda g, ans, lhs, rhs, **p: _kernel_ct(lhs, g, rhs, p))
defjvp(conv_lhs_ct_p,
       lambda t, ans, g, rhs, **p: bind(conv_lhs_ct_p, t, rhs, **p),
       lambda t, ans, g, rhs, **p: bind(conv_lhs_ct_p, g, t, **p))
defvjp(conv_lhs_ct_p,
       lambda ct, ans, g, rhs, lhs_shape, **p: _fit(bind(conv_p, ct, rhs, **p), g),
       lambda ct, ans, g, rhs, lhs_shape, **p: _kernel_ct(ct, g, rhs, p))
defjvp(conv_kernel_ct_p,
       lambda t, ans, lhs, g, **p: bind(conv_kernel_ct_p, t, g, **p),
       lambda t, ans, lhs, g, **p: bind(conv_kernel_ct_p, lhs, t, **p))
defvjp(conv_kernel_ct_p,
       lambda ct, ans, lhs, g, kernel_shape, **p: _lhs_ct(g, ct, lhs, p),
       lambda ct, ans, lhs, g, kernel_shape, **p: _fit(bind(conv_p, lhs, ct, **p), g))


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


def _wmax_core(x, m, idx, p):
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


window_sum_p = Primitive("window_sum", _window_sum_impl)
window_sum_t_p = Primitive("window_sum_transpose", _window_sum_t_impl)
window_max_p = Primitive("window_max", _window_max_impl, multiple_results=True)
window_gather_p = Primitive("window_gather", _window_gather_impl)
window_scatter_p = Primitive("window_scatter", _window_scatter_impl)

defjvp(window_sum_p, lambda t, ans, x, **p: bind(window_sum_p, t, **p))
defvjp(window_sum_p, lambda g, ans, x, **p:
       bind(window_sum_t_p, g, operand_shape=tuple(x.shape), **p))
defjvp(window_sum_t_p, lambda t, ans, g, **p: bind(window_sum_t_p, t, **p))
defvjp(window_sum_t_p, lambda ct, ans, g, operand_shape, **p: bind(window_sum_p, ct, **p))


def _window_max_jvp(primals, tangents, **p):
    m, idx = bind(window_max_p, primals[0], **p)
    t = tangents[0]
    return [m, idx], [None if t is None else bind(window_gather_p, t, idx, **p), None]


def _window_max_vjp(g, ans, args, wanted, **p):
    return [bind(window_scatter_p, g[0], ans[1], operand_shape=tuple(args[0].shape), **p)]


defjvp(window_max_p, full=_window_max_jvp)
defvjp(window_max_p, full=_window_max_vjp)
defjvp(window_gather_p, lambda t, ans, x, idx, **p: bind(window_gather_p, t, idx, **p), None)
defvjp(window_gather_p, lambda g, ans, x, idx, **p:
       bind(window_scatter_p, g, idx, operand_shape=tuple(x.shape), **p), None)
defjvp(window_scatter_p, lambda t, ans, g, idx, **p: bind(window_scatter_p, t, idx, **p), None)
defvjp(window_scatter_p, lambda ct, ans, g, idx, operand_shape, **p:
       bind(window_gather_p, ct, idx, **p), None)


# =======================================================================================
# Public functions (exported by funcgrad.lax with JAX's names)


def _ints(v, n, name, op, positive=True):
    """``v`` (None -> all ones; an int -> repeated) as a tuple of ``n`` ints."""
    if v is None:
        return (1,) * n
    if isinstance(v, (int, np.integer)):
        v = (v,) * n
    try:
        t = tuple(operator.index(a) for a in v)
    except TypeError:
        raise FuncgradTypeError(
            f"{op}: {name} must be a sequence of {n} integers, got {v!r}") from None
    if len(t) != n:
        raise FuncgradValueError(
            f"{op}: {name} has {len(t)} entries {t} but there are {n} dimensions to "
            f"apply it to; give one integer per dimension")
    if positive and any(a < 1 for a in t):
        raise FuncgradValueError(f"{op}: {name} must be positive integers, got {t}")
    return t


def padtype_to_pads(in_shape, window_shape, window_strides, padding):
    """Explicit ``(lo, hi)`` pairs for ``padding`` ('VALID', 'SAME', 'SAME_LOWER' or
    already pairs) given the (dilated) input and window sizes and the strides.

    'SAME' pads so that ``out = ceil(in / stride)``, with the odd element of padding at
    the end ('SAME_LOWER': at the start).

        >>> from funcgrad import lax
        >>> lax.padtype_to_pads((5, 6), (3, 3), (2, 2), "SAME")
        ((1, 1), (0, 1))
    """
    n = len(in_shape)
    if isinstance(padding, str):
        mode = padding.upper()
        if mode == "VALID":
            return ((0, 0),) * n
        if mode in ("SAME", "SAME_LOWER"):
            pads = []
            for i, w, s in zip(in_shape, window_shape, window_strides):
                total = max(0, (-(-i // s) - 1) * s + w - i)
                lo = total // 2 if mode == "SAME" else total - total // 2
                pads.append((lo, total - lo))
            return tuple(pads)
        raise FuncgradValueError(
            f"padding must be 'VALID', 'SAME', 'SAME_LOWER' or a sequence of (low, high) "
            f"pairs, got {padding!r}")
    try:
        pads = tuple((operator.index(lo), operator.index(hi)) for lo, hi in padding)
    except (TypeError, ValueError):
        raise FuncgradTypeError(
            f"padding must be 'VALID', 'SAME', 'SAME_LOWER' or a sequence of (low, high) "
            f"integer pairs, got {padding!r}") from None
    if len(pads) != n:
        raise FuncgradValueError(
            f"padding has {len(pads)} (low, high) pairs {pads} but there are {n} "
            "dimensions to pad; give one pair per dimension")
    return pads




class ConvDimensionNumbers(NamedTuple):
    """Which axis is which, as JAX spells it: ``lhs_spec`` = (batch, feature, spatial...),
    ``rhs_spec`` = (out feature, in feature, spatial...), ``out_spec`` = (batch, feature,
    spatial...), each a tuple of axis indices into the respective array."""
    lhs_spec: tuple
    rhs_spec: tuple
    out_spec: tuple


def _spec_perm(spec, first, second, order, what):
    if len(set(spec)) != len(spec) or first not in spec or second not in spec:
        raise FuncgradValueError(
            f"conv dimension_numbers: {what} spec {spec!r} must name each dimension once "
            f"and contain {first!r} and {second!r}")
    spatial = [c for c in spec if c not in (first, second)]
    if sorted(spatial) != sorted(order):
        raise FuncgradValueError(
            f"conv dimension_numbers: {what} spec {spec!r} has spatial dimensions "
            f"{''.join(spatial)!r} but the rhs spec has {''.join(order)!r}; use the same "
            "letters in all three specs")
    return (spec.index(first), spec.index(second)) + tuple(spec.index(c) for c in order)


def conv_dimension_numbers(lhs_shape, rhs_shape, dimension_numbers):
    """A :class:`ConvDimensionNumbers` from None (NC..., OI..., NC...), a triple of spec
    strings such as ``("NHWC", "HWIO", "NHWC")``, or a ConvDimensionNumbers.

    With strings, spatial dimensions are taken in the order they appear in the rhs spec;
    strides, dilations and padding follow that order.
    """
    nd = len(lhs_shape)
    if len(rhs_shape) != nd:
        raise FuncgradValueError(
            f"conv: lhs shape {tuple(lhs_shape)} and rhs shape {tuple(rhs_shape)} have "
            "different numbers of dimensions; both need batch/feature plus the same "
            "spatial dimensions")
    if dimension_numbers is None:
        ident = tuple(range(nd))
        return ConvDimensionNumbers(ident, ident, ident)
    if isinstance(dimension_numbers, ConvDimensionNumbers):
        return dimension_numbers
    try:
        lhs_s, rhs_s, out_s = dimension_numbers
    except (TypeError, ValueError):
        raise FuncgradTypeError(
            "conv: dimension_numbers must be None, a ConvDimensionNumbers or a triple of "
            f"strings like ('NCHW', 'OIHW', 'NCHW'), got {dimension_numbers!r}") from None
    if not all(isinstance(s, str) for s in (lhs_s, rhs_s, out_s)):
        return ConvDimensionNumbers(*(tuple(operator.index(i) for i in s)
                                      for s in (lhs_s, rhs_s, out_s)))
    if not len(lhs_s) == len(rhs_s) == len(out_s) == nd:
        raise FuncgradValueError(
            f"conv: dimension_numbers {dimension_numbers!r} must have {nd} letters each, "
            f"one per dimension of the lhs {tuple(lhs_shape)}")
    order = [c for c in rhs_s if c not in "OI"]
    return ConvDimensionNumbers(_spec_perm(lhs_s, "N", "C", order, "lhs"),
                                _spec_perm(rhs_s, "O", "I", order, "rhs"),
                                _spec_perm(out_s, "N", "C", order, "out"))


def _to_array(x):
    x = _shape._as_array(x)
    if x.dtype.kind not in "biufc":
        raise FuncgradTypeError(f"expected a numeric array, got {dtype_name(x)}")
    return x


def conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation=None,
                         rhs_dilation=None, dimension_numbers=None, feature_group_count=1,
                         batch_group_count=1, precision=None, preferred_element_type=None):
    """General N-d convolution (cross-correlation, like every deep-learning library).

    Args:
      lhs: input, by default (N, C, *spatial).
      rhs: kernel, by default (O, I, *kernel) with ``I * feature_group_count == C``.
      window_strides: one stride per spatial dimension.
      padding: 'VALID', 'SAME', 'SAME_LOWER' or ``((lo, hi), ...)`` per spatial dimension
        (negative values crop).
      lhs_dilation: input dilation (holes between input elements; this is what a
        transposed convolution uses). rhs_dilation: kernel dilation (atrous).
      dimension_numbers: None, a triple of spec strings such as
        ``("NHWC", "HWIO", "NHWC")`` or ``("NCH", "OIH", "NCH")``, or a
        :class:`ConvDimensionNumbers`.
      feature_group_count: grouped convolution (``C`` and ``O`` are split into this many
        groups; ``feature_group_count == C`` is a depthwise convolution).
      batch_group_count: only 1 is supported (other values raise).
      precision: accepted and ignored (NumPy computes in the arrays' precision).
      preferred_element_type: dtype to compute and return in (the inputs are cast).

    Differentiable in ``lhs`` and ``rhs`` to any order, in forward and reverse mode. The
    inputs are promoted to a common dtype; float32 stays float32.

    Raises FuncgradValueError for mismatched feature counts, a window larger than the
    padded input, or malformed strides/padding/dimension numbers.

        >>> import numpy as np
        >>> from funcgrad import lax
        >>> x = np.arange(5.0).reshape(1, 1, 5)
        >>> lax.conv_general_dilated(x, np.ones((1, 1, 2)), (1,), "VALID")
        array([[[1., 3., 5., 7.]]])
    """
    lhs = _to_array(lhs)
    rhs = _to_array(rhs)
    lhs_perm, rhs_perm, out_perm, dtype, params = _cached(
        _conv_setup, tuple(lhs.shape), lhs.dtype, tuple(rhs.shape), rhs.dtype,
        window_strides, padding, lhs_dilation, rhs_dilation, dimension_numbers,
        feature_group_count, batch_group_count, preferred_element_type)
    if lhs_perm is not None:
        lhs = _shape.transpose(lhs, lhs_perm)
    if rhs_perm is not None:
        rhs = _shape.transpose(rhs, rhs_perm)
    if lhs.dtype != dtype:
        lhs = _shape.astype(lhs, dtype)
    if rhs.dtype != dtype:
        rhs = _shape.astype(rhs, dtype)
    out = bind(conv_p, lhs, rhs, **params)
    return out if out_perm is None else _shape.transpose(out, out_perm)


def _freeze(v):
    return tuple(_freeze(a) for a in v) if isinstance(v, (list, tuple)) else v


def _cached(setup, *key):
    """``setup(*key)`` through its lru_cache when the (frozen) arguments are hashable."""
    try:
        hash(key)
    except TypeError:
        key = _freeze(key)
        try:
            hash(key)
        except TypeError:
            return setup.__wrapped__(*key)
    return setup(*key)


def _desc(shape, dtype):
    return f"{np.dtype(dtype).name}[{','.join(str(d) for d in shape)}]"


@functools.lru_cache(maxsize=256)
def _conv_setup(lhs_shape, lhs_dtype, rhs_shape, rhs_dtype, window_strides, padding,
                lhs_dilation, rhs_dilation, dimension_numbers, feature_group_count,
                batch_group_count, preferred_element_type):
    """Validated canonical-layout parameters of a convolution: (lhs permutation, rhs
    permutation, output permutation (each None when the identity), dtype, params)."""
    op = "conv_general_dilated"
    lhs_d, rhs_d = _desc(lhs_shape, lhs_dtype), _desc(rhs_shape, rhs_dtype)
    nd = len(lhs_shape)
    if nd < 3 or nd != len(rhs_shape):
        raise FuncgradValueError(
            f"{op}: lhs {lhs_d} and rhs {rhs_d} must have the same number of dimensions, "
            "at least 3 (batch, feature and one or more spatial dimensions); add a batch "
            "or feature axis with expand_dims")
    if batch_group_count != 1:
        raise FuncgradValueError(
            f"{op}: batch_group_count={batch_group_count} is not supported (only 1); "
            "split the batch and call the convolution per group instead")
    dn = conv_dimension_numbers(lhs_shape, rhs_shape, dimension_numbers)
    nsp = nd - 2
    strides = _ints(window_strides, nsp, "window_strides", op)
    lhs_dil = _ints(lhs_dilation, nsp, "lhs_dilation", op)
    rhs_dil = _ints(rhs_dilation, nsp, "rhs_dilation", op)
    groups = operator.index(feature_group_count)
    ident = tuple(range(nd))
    n, c, *sp = (lhs_shape[d] for d in dn.lhs_spec)
    o, i, *kernel = (rhs_shape[d] for d in dn.rhs_spec)
    if groups < 1 or c != i * groups or o % groups:
        raise FuncgradValueError(
            f"{op}: lhs {lhs_d} has {c} input features and rhs {rhs_d} has {i} input and "
            f"{o} output features, with feature_group_count={groups}. The rhs input "
            f"features times feature_group_count must equal the lhs features "
            f"({i} * {groups} != {c})" + (f" and the output features must be divisible by "
                                          f"feature_group_count ({o} % {groups} != 0)"
                                          if groups >= 1 and o % groups else "") +
            "; fix the kernel shape, the feature_group_count, or the dimension_numbers "
            f"(now {dimension_numbers!r})")
    if isinstance(padding, str):
        pads = padtype_to_pads(tuple(_dilated(s, d) for s, d in zip(sp, lhs_dil)),
                               tuple(_dilated(k, d) for k, d in zip(kernel, rhs_dil)),
                               strides, padding)
    else:
        pads = padtype_to_pads(sp, kernel, strides, padding)
    for s, k, (lo, hi), ld, rd in zip(sp, kernel, pads, lhs_dil, rhs_dil):
        if s == 0 or k == 0 or _dilated(s, ld) + lo + hi < _dilated(k, rd):
            raise FuncgradValueError(
                f"{op}: the (dilated) kernel {rhs_d} does not fit in the padded (dilated) "
                f"input {lhs_d} with padding {pads}: every output dimension would be "
                "empty; pad more or use a smaller kernel")
    dtype = np.dtype(preferred_element_type or np.result_type(lhs_dtype, rhs_dtype))
    out_perm = tuple(np.argsort(dn.out_spec).tolist())
    params = dict(window_strides=strides, padding=pads, lhs_dilation=lhs_dil,
                  rhs_dilation=rhs_dil, feature_group_count=groups)
    return (None if tuple(dn.lhs_spec) == ident else tuple(dn.lhs_spec),
            None if tuple(dn.rhs_spec) == ident else tuple(dn.rhs_spec),
            None if out_perm == ident else out_perm, dtype, params)


def conv(lhs, rhs, window_strides, padding, precision=None, preferred_element_type=None):
    """Convolution in the NC.../OI... layout with strides and padding only (see
    :func:`conv_general_dilated`)."""
    return conv_general_dilated(lhs, rhs, window_strides, padding, precision=precision,
                                preferred_element_type=preferred_element_type)


def conv_with_general_padding(lhs, rhs, window_strides, padding, lhs_dilation,
                              rhs_dilation, precision=None, preferred_element_type=None):
    """Convolution in the NC.../OI... layout with dilations (see
    :func:`conv_general_dilated`)."""
    return conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation,
                                rhs_dilation, precision=precision,
                                preferred_element_type=preferred_element_type)


def _conv_transpose_pads(k, s, padding):
    if padding == "SAME":
        total = k + s - 2
        lo = k - 1 if s > k - 1 else -(-total // 2)
    elif padding == "VALID":
        total = k + s - 2 + max(k - s, 0)
        lo = k - 1
    else:
        raise FuncgradValueError(
            f"conv_transpose: padding must be 'SAME', 'VALID' or (low, high) pairs, got "
            f"{padding!r}")
    return lo, total - lo


_DEFAULT_TRANSPOSE_DN = {3: ("NHC", "HIO", "NHC"), 4: ("NHWC", "HWIO", "NHWC"),
                         5: ("NHWDC", "HWDIO", "NHWDC")}


def conv_transpose(lhs, rhs, strides, padding, rhs_dilation=None, dimension_numbers=None,
                   transpose_kernel=False, precision=None, preferred_element_type=None):
    """Transposed convolution ("deconvolution"): a convolution of ``lhs`` dilated by
    ``strides``, with JAX's semantics.

    Args:
      strides: the upsampling factor per spatial dimension (becomes ``lhs_dilation``).
      padding: 'SAME' (output = input * stride), 'VALID', or explicit ``(lo, hi)`` pairs
        applied to the dilated input.
      dimension_numbers: as in :func:`conv_general_dilated`; the default, as in JAX, is
        channels-last: ('NHC', 'HIO', 'NHC'), ('NHWC', 'HWIO', 'NHWC') or
        ('NHWDC', 'HWDIO', 'NHWDC').
      transpose_kernel: flip the kernel's spatial axes and swap its I/O axes, which makes
        this the exact transpose (gradient) of a ``conv_general_dilated`` with that kernel,
        like ``torch.nn.functional.conv_transpose2d``.
    """
    lhs = _to_array(lhs)
    rhs = _to_array(rhs)
    nd = lhs.ndim
    if dimension_numbers is None:
        if nd not in _DEFAULT_TRANSPOSE_DN:
            raise FuncgradValueError(
                f"conv_transpose: give dimension_numbers for a {nd}-d lhs {dtype_name(lhs)}")
        dimension_numbers = _DEFAULT_TRANSPOSE_DN[nd]
    dn = conv_dimension_numbers(lhs.shape, rhs.shape, dimension_numbers)
    nsp = nd - 2
    strides = _ints(strides, nsp, "strides", "conv_transpose")
    rhs_dil = _ints(rhs_dilation, nsp, "rhs_dilation", "conv_transpose")
    kernel = [rhs.shape[d] for d in dn.rhs_spec[2:]]
    if isinstance(padding, str):
        padding = tuple(_conv_transpose_pads(_dilated(k, r), s, padding.upper())
                        for k, r, s in zip(kernel, rhs_dil, strides))
    if transpose_kernel:
        spatial = set(dn.rhs_spec[2:])
        rhs = _getitem(rhs, tuple(slice(None, None, -1) if d in spatial else slice(None)
                                  for d in range(nd)))
        rhs = _shape.swapaxes(rhs, dn.rhs_spec[0], dn.rhs_spec[1])
    return conv_general_dilated(lhs, rhs, (1,) * nsp, padding, lhs_dilation=strides,
                                rhs_dilation=rhs_dil, dimension_numbers=dn,
                                precision=precision,
                                preferred_element_type=preferred_element_type)


# ---- reduce_window and pooling ---------------------------------------------------------


_KINDS = {"max": "max", "min": "min", "add": "add", np.maximum: "max", np.minimum: "min",
          np.add: "add", operator.add: "add"}


def _computation_kind(computation):
    try:
        kind = _KINDS.get(computation)
    except TypeError:       # unhashable
        kind = None
    if kind is None:
        _KINDS.update({_el.maximum: "max", _el.minimum: "min", _el.add: "add"})
        kind = _KINDS.get(computation)
    if kind is not None:
        return kind
    name = getattr(computation, "__name__", repr(computation))
    raise FuncgradTypeError(
        f"reduce_window: computation {name} is not supported; use funcgrad.lax.max, "
        "funcgrad.lax.min or funcgrad.lax.add (the NumPy/funcgrad.numpy maximum, minimum "
        "and add ufuncs are accepted too)")


@functools.lru_cache(maxsize=256)
def _window_params(op, shape, window_dimensions, window_strides, padding, base_dilation,
                   window_dilation):
    nd = len(shape)
    wd = _ints(window_dimensions, nd, "window_dimensions", op)
    ws = _ints(window_strides, nd, "window_strides", op)
    bd = _ints(base_dilation, nd, "base_dilation", op)
    wdl = _ints(window_dilation, nd, "window_dilation", op)
    if isinstance(padding, str):
        pads = padtype_to_pads(tuple(_dilated(n, b) for n, b in zip(shape, bd)),
                               tuple(_dilated(w, d) for w, d in zip(wd, wdl)), ws, padding)
    else:
        pads = padtype_to_pads(shape, wd, ws, padding)
    for n, w, (lo, hi), b, d in zip(shape, wd, pads, bd, wdl):
        if _dilated(n, b) + lo + hi < _dilated(w, d):
            raise FuncgradValueError(
                f"{op}: window {wd} (dilation {wdl}) does not fit in the padded operand of "
                f"shape {tuple(shape)} with padding {pads}; pad more or use a smaller window")
    return dict(window_dimensions=wd, window_strides=ws, padding=pads, base_dilation=bd,
                window_dilation=wdl)


def reduce_window(operand, init_value, computation, window_dimensions, window_strides,
                  padding, base_dilation=None, window_dilation=None):
    """Reduce every window of ``operand`` with ``computation`` (pooling).

    Args:
      operand: an array; windows span all of its dimensions (use 1 for the batch and
        feature dimensions).
      init_value: a concrete scalar; padding is filled with it and it takes part in every
        window (``-inf`` for max, ``0`` for add, ``inf`` for min are the identities).
      computation: ``funcgrad.lax.max``, ``funcgrad.lax.min`` or ``funcgrad.lax.add``
        (NumPy's and funcgrad.numpy's maximum/minimum/add are accepted). Anything else
        raises FuncgradTypeError.
      window_dimensions, window_strides: one int per dimension.
      padding: 'VALID', 'SAME', 'SAME_LOWER' or ``(lo, hi)`` pairs per dimension.
      base_dilation, window_dilation: dilation of the operand and of the window.

    Derivatives (any order, both modes) flow to ``operand``. For max (and min) the
    gradient of each window goes to its arg-max element; on ties the first one in
    row-major order within the window wins (PyTorch's convention). Overlapping windows
    accumulate their contributions. A window holding a NaN has a NaN maximum, and its
    gradient goes to its last element. A non-identity ``init_value`` is combined with
    ``maximum``/``minimum``/``add`` after the reduction (ties with it share the gradient).

        >>> import numpy as np
        >>> from funcgrad import lax
        >>> x = np.arange(16.0).reshape(1, 1, 4, 4)
        >>> lax.reduce_window(x, -np.inf, lax.max, (1, 1, 2, 2), (1, 1, 2, 2), "VALID")
        array([[[[ 5.,  7.],
                 [13., 15.]]]])
    """
    op = "reduce_window"
    kind = _computation_kind(computation)
    x = _to_array(operand)
    if isinstance(init_value, Tracer):
        raise FuncgradTypeError(
            f"{op}: init_value must be a constant scalar, got a traced {dtype_name(init_value)};"
            " add a traced offset to the result instead")
    init = np.asarray(init_value)
    if init.ndim != 0:
        raise FuncgradValueError(f"{op}: init_value must be a scalar, got shape {init.shape}")
    init = init.item()
    p = _cached(_window_params, op, tuple(x.shape), window_dimensions, window_strides,
                padding, base_dilation, window_dilation)
    if kind == "add":
        out = bind(window_sum_p, x, **p)
        return out if init == 0 else _el.add(out, np.asarray(init, out.dtype))
    if kind == "min":
        return _el.negative(reduce_window(_el.negative(x), -init, "max", window_dimensions,
                                          window_strides, p["padding"], p["base_dilation"],
                                          p["window_dilation"]))
    out = bind(window_max_p, x, **p)[0]
    if x.dtype.kind == "b" or init > _lowest(x.dtype):
        out = _el.maximum(out, np.asarray(init, out.dtype))
    return out


def _pool_params(op, x, window_shape, strides, padding):
    x = _to_array(x)
    return (x,) + _cached(_pool_setup, op, tuple(x.shape), window_shape, strides, padding)


@functools.lru_cache(maxsize=256)
def _pool_setup(op, shape, window_shape, strides, padding):
    k = len(window_shape)
    if k > len(shape):
        raise FuncgradValueError(
            f"{op}: window_shape {tuple(window_shape)} has more dimensions than the input "
            f"of shape {shape}")
    lead = len(shape) - k
    strides = window_shape if strides is None else strides
    ws = (1,) * lead + _ints(window_shape, k, "window_shape", op)
    st = (1,) * lead + _ints(strides, k, "strides", op)
    if not isinstance(padding, str):
        padding = ((0, 0),) * lead + tuple(padding)
    return ws, st, padding


def max_pool(x, window_shape, strides=None, padding="VALID"):
    """Max pooling over the last ``len(window_shape)`` dimensions (so NCHW input pools
    H and W); ``strides`` default to the window shape. See :func:`reduce_window` for the
    gradient's tie convention.

        >>> import numpy as np
        >>> from funcgrad import lax
        >>> lax.max_pool(np.array([[1.0, 3.0, 2.0, 0.0]]), (2,))
        array([[3., 2.]])
    """
    x, ws, st, padding = _pool_params("max_pool", x, window_shape, strides, padding)
    return reduce_window(x, -np.inf if x.dtype.kind in "fc" else _lowest(x.dtype), "max",
                         ws, st, padding)


def avg_pool(x, window_shape, strides=None, padding="VALID", count_include_pad=True):
    """Average pooling over the last ``len(window_shape)`` dimensions; ``strides`` default
    to the window shape. With ``count_include_pad=False`` padded positions are left out of
    each window's count (PyTorch's and Flax's option of the same name).

        >>> import numpy as np
        >>> from funcgrad import lax
        >>> lax.avg_pool(np.array([[1.0, 3.0, 2.0, 0.0]]), (2,))
        array([[2., 1.]])
    """
    x, ws, st, padding = _pool_params("avg_pool", x, window_shape, strides, padding)
    p = _cached(_window_params, "avg_pool", tuple(x.shape), ws, st, padding, None, None)
    total = bind(window_sum_p, x, **p)
    if count_include_pad or all(lo == 0 and hi == 0 for lo, hi in p["padding"]):
        return total / float(math.prod(ws))
    counts = _window_sum_impl(np.ones(x.shape, total.dtype if total.dtype.kind in "fc"
                                      else np.float64), **p)
    return total / counts


# =======================================================================================
# Batching rules (vmap): the mapped axis is folded into the batch or feature axes.


def _batched_front(v, d, size):
    """``v`` with its mapped axis first (broadcast to ``size`` when it has none)."""
    if d is None:
        return _shape.broadcast_to(v, (size,) + tuple(v.shape))
    return _shape.moveaxis(v, d, 0) if d else v


def _fold_into_features(v):
    """(B, N, C, *s) -> (N, B*C, *s): each mapped example becomes a feature group."""
    b, n, c = v.shape[:3]
    v = _shape.swapaxes(v, 0, 1)
    return _shape.reshape(v, (n, b * c) + tuple(v.shape[3:]))


def _conv_batch(vals, dims, **p):
    (lhs, rhs), (dl, dr) = vals, dims
    if dr is None:                        # fold the mapped axis into the batch axis
        x = _batched_front(lhs, dl, None)
        b, n = x.shape[:2]
        out = bind(conv_p, _shape.reshape(x, (b * n,) + tuple(x.shape[2:])), rhs, **p)
        return _shape.reshape(out, (b, n) + tuple(out.shape[1:])), 0
    size = rhs.shape[dr]
    x = _fold_into_features(_batched_front(lhs, dl, size))
    w = _batched_front(rhs, dr, size)
    w = _shape.reshape(w, (size * w.shape[1],) + tuple(w.shape[2:]))
    q = dict(p, feature_group_count=size * p["feature_group_count"])
    out = bind(conv_p, x, w, **q)         # (N, B*O, ...)
    n, bo = out.shape[:2]
    return _shape.reshape(out, (n, size, bo // size) + tuple(out.shape[2:])), 1


def _conv_lhs_ct_batch(vals, dims, lhs_shape, **p):
    (g, rhs), (dg, dr) = vals, dims
    if dr is None:
        gg = _batched_front(g, dg, None)
        b, n = gg.shape[:2]
        out = bind(conv_lhs_ct_p, _shape.reshape(gg, (b * n,) + tuple(gg.shape[2:])), rhs,
                   lhs_shape=lhs_shape, **p)
        return _shape.reshape(out, (b, n) + tuple(out.shape[1:])), 0
    size = rhs.shape[dr]
    gg = _fold_into_features(_batched_front(g, dg, size))
    w = _batched_front(rhs, dr, size)
    w = _shape.reshape(w, (size * w.shape[1],) + tuple(w.shape[2:]))
    q = dict(p, feature_group_count=size * p["feature_group_count"])
    out = bind(conv_lhs_ct_p, gg, w, lhs_shape=lhs_shape, **q)      # (N, B*C, ...)
    n, bc = out.shape[:2]
    return _shape.reshape(out, (n, size, bc // size) + tuple(out.shape[2:])), 1


def _conv_kernel_ct_batch(vals, dims, **p):
    (lhs, g), (dl, dg) = vals, dims
    size = lhs.shape[dl] if dl is not None else g.shape[dg]
    x = _fold_into_features(_batched_front(lhs, dl, size))
    gg = _fold_into_features(_batched_front(g, dg, size))
    q = dict(p, feature_group_count=size * p["feature_group_count"])
    out = bind(conv_kernel_ct_p, x, gg, **q)   # (B*O, I, *kernel)
    return _shape.reshape(out, (size, out.shape[0] // size) + tuple(out.shape[1:])), 0


def _lift_window(p):
    q = dict(p, window_dimensions=(1,) + p["window_dimensions"],
             window_strides=(1,) + p["window_strides"], padding=((0, 0),) + p["padding"],
             base_dilation=(1,) + p["base_dilation"],
             window_dilation=(1,) + p["window_dilation"])
    return q


def _window_batch(prim):
    def rule(vals, dims, **p):
        size = next(v.shape[d] for v, d in zip(vals, dims) if d is not None)
        args = [_batched_front(v, d, size) for v, d in zip(vals, dims)]
        q = _lift_window(p)
        if "operand_shape" in p:
            q["operand_shape"] = (size,) + tuple(p["operand_shape"])
        out = bind(prim, *args, **q)
        return out, ([0, 0] if prim.multiple_results else 0)
    return rule


conv_p.batch = _conv_batch
conv_kernel_ct_p.batch = _conv_kernel_ct_batch
conv_lhs_ct_p.batch = _conv_lhs_ct_batch
for _p in (window_sum_p, window_sum_t_p, window_max_p, window_gather_p, window_scatter_p):
    _p.batch = _window_batch(_p)


# ---- row rules (jit's batch splitting, see rows.py): the batch axis of the canonical
# layout is axis 0; the kernel is whole; the kernel cotangent sums over the batch.
def _conv_rows(kinds, invars, outvars, params, batch):
    if kinds[0] == _rows.R(0) and kinds[1] is _rows.U:
        return [_rows.R(0)], None, {}
    return None


def _conv_kernel_ct_rows(kinds, invars, outvars, params, batch):
    if kinds[0] == _rows.R(0) and kinds[1] == _rows.R(0):
        return [_rows.S], None, {}
    return None


def _window_rows(kinds, invars, outvars, params, batch):
    """Every operand in rows along the same axis, and no window spans that axis."""
    d = kinds[0][1] if kinds[0][0] == "R" else None
    if d is None or any(k != _rows.R(d) for k in kinds) or (
            params["window_dimensions"][d] != 1 or params["window_strides"][d] != 1 or
            tuple(params["padding"][d]) != (0, 0) or params["base_dilation"][d] != 1):
        return None
    resize = None if "operand_shape" not in params else (
        lambda c: _rows.with_length(params, "operand_shape", d, c))
    return [_rows.R(d)] * len(outvars), resize, {}


conv_p.rows = conv_lhs_ct_p.rows = _conv_rows
conv_kernel_ct_p.rows = _conv_kernel_ct_rows
for _p in (window_sum_p, window_sum_t_p, window_max_p, window_gather_p, window_scatter_p):
    _p.rows = _window_rows

"""Convolution and windowed reductions (pooling): the primitives, each with all of its
rules (forward, reverse, batching, row rule) side by side.

Inside the primitives every array is in the canonical layout: ``lhs`` is
``(N, C, *spatial)``, ``rhs`` is ``(O, I, *kernel)`` and the output is
``(N, O, *out_spatial)``; padding is explicit ``(lo, hi)`` pairs. The public functions
(``conv_general_dilated``, ``reduce_window``, ... in ``windows_lax.py``, exported by
``funcgrad.lax``) turn dimension numbers and padding strings into that form with
funcgrad transposes, outside the primitives, so the permutations are differentiated
like any other operation. The implementations on arrays are in ``windows_kernels.py``.

Two families, each closed under differentiation (every rule binds primitives of its own
family, so derivatives of any order work):

* ``conv``, ``conv_input_cotangent`` and ``conv_kernel_cotangent``: the three partial
  derivatives of the trilinear form ``<conv(x, w), g>``, so the cotangents of each are
  the other two.
* ``window_sum`` / ``window_sum_transpose`` (linear, each other's transposes) and
  ``window_max`` -> (max, arg-max offset) with ``window_gather`` / ``window_scatter``
  (linear in the values, each other's transposes) for its derivatives.

Batching rules fold the mapped axis into the batch or feature axes. Row rules (jit's
batch splitting, see rows.py): the batch axis of the canonical layout is axis 0; the
kernel is whole; the kernel cotangent sums over the batch.
"""
from __future__ import annotations

from .. import rows as _rows
from ..core import Primitive, bind, def_rules
from . import shape as _shape
from .windows_kernels import (_conv_impl, _conv_kernel_ct_impl, _conv_lhs_ct_impl,
                              _window_gather_impl, _window_max_impl, _window_scatter_impl,
                              _window_sum_impl, _window_sum_t_impl)


# ---- helpers shared by the batching rules ------------------------------------------------
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


# =======================================================================================
# Convolution: conv(x, w), conv_input_cotangent(g, w) and conv_kernel_cotangent(x, g) are
# the three partial derivatives of the trilinear form <conv(x, w), g>: each one's
# cotangents are the other two.

conv_p = Primitive("conv", _conv_impl)
conv_lhs_ct_p = Primitive("conv_input_cotangent", _conv_lhs_ct_impl)
conv_kernel_ct_p = Primitive("conv_kernel_cotangent", _conv_kernel_ct_impl)


def _fit(ct, x):
    return _shape._cast_cotangent(ct, x.dtype) if ct.dtype != x.dtype else ct


def _lhs_ct(g, rhs, lhs, p):
    return _fit(bind(conv_lhs_ct_p, g, rhs, lhs_shape=tuple(lhs.shape[2:]), **p), lhs)


def _kernel_ct(lhs, g, rhs, p):
    return _fit(bind(conv_kernel_ct_p, lhs, g, kernel_shape=tuple(rhs.shape[2:]), **p), rhs)


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


def _conv_rows(kinds, invars, outvars, params, batch):
    if kinds[0] == _rows.Rows(0) and kinds[1] is _rows.WHOLE:
        return [_rows.Rows(0)], None, {}
    return None


def _conv_kernel_ct_rows(kinds, invars, outvars, params, batch):
    if kinds[0] == _rows.Rows(0) and kinds[1] == _rows.Rows(0):
        return [_rows.PARTIAL], None, {}
    return None


def_rules(conv_p,
          jvp=(lambda t, ans, lhs, rhs, **p: bind(conv_p, t, rhs, **p),
               lambda t, ans, lhs, rhs, **p: bind(conv_p, lhs, t, **p)),
          vjp=(lambda g, ans, lhs, rhs, **p: _lhs_ct(g, rhs, lhs, p),
               lambda g, ans, lhs, rhs, **p: _kernel_ct(lhs, g, rhs, p)),
          batch=_conv_batch, rows=_conv_rows)
def_rules(conv_lhs_ct_p,
          jvp=(lambda t, ans, g, rhs, **p: bind(conv_lhs_ct_p, t, rhs, **p),
               lambda t, ans, g, rhs, **p: bind(conv_lhs_ct_p, g, t, **p)),
          vjp=(lambda ct, ans, g, rhs, lhs_shape, **p: _fit(bind(conv_p, ct, rhs, **p), g),
               lambda ct, ans, g, rhs, lhs_shape, **p: _kernel_ct(ct, g, rhs, p)),
          batch=_conv_lhs_ct_batch, rows=_conv_rows)
def_rules(conv_kernel_ct_p,
          jvp=(lambda t, ans, lhs, g, **p: bind(conv_kernel_ct_p, t, g, **p),
               lambda t, ans, lhs, g, **p: bind(conv_kernel_ct_p, lhs, t, **p)),
          vjp=(lambda ct, ans, lhs, g, kernel_shape, **p: _lhs_ct(g, ct, lhs, p),
               lambda ct, ans, lhs, g, kernel_shape, **p: _fit(bind(conv_p, lhs, ct, **p), g)),
          batch=_conv_kernel_ct_batch, rows=_conv_kernel_ct_rows)


# =======================================================================================
# Windowed reductions over every dimension of the operand (pooling). Params shared by
# the window primitives: window_dimensions, window_strides, padding ((lo, hi) per
# dimension, already explicit), base_dilation, window_dilation.

window_sum_p = Primitive("window_sum", _window_sum_impl)
window_sum_t_p = Primitive("window_sum_transpose", _window_sum_t_impl)
window_max_p = Primitive("window_max", _window_max_impl, multiple_results=True)
window_gather_p = Primitive("window_gather", _window_gather_impl)
window_scatter_p = Primitive("window_scatter", _window_scatter_impl)


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


def _window_rows(kinds, invars, outvars, params, batch):
    """Every operand in rows along the same axis, and no window spans that axis."""
    d = kinds[0].axis if isinstance(kinds[0], _rows.Rows) else None
    if d is None or any(k != _rows.Rows(d) for k in kinds) or (
            params["window_dimensions"][d] != 1 or params["window_strides"][d] != 1 or
            tuple(params["padding"][d]) != (0, 0) or params["base_dilation"][d] != 1):
        return None
    resize = None if "operand_shape" not in params else (
        lambda c: _rows.with_length(params, "operand_shape", d, c))
    return [_rows.Rows(d)] * len(outvars), resize, {}


def _window_max_jvp(primals, tangents, **p):
    m, idx = bind(window_max_p, primals[0], **p)
    t = tangents[0]
    return [m, idx], [None if t is None else bind(window_gather_p, t, idx, **p), None]


def _window_max_vjp(g, ans, args, wanted, **p):
    return [bind(window_scatter_p, g[0], ans[1], operand_shape=tuple(args[0].shape), **p)]


def_rules(window_sum_p,
          jvp=(lambda t, ans, x, **p: bind(window_sum_p, t, **p),),
          vjp=(lambda g, ans, x, **p: bind(window_sum_t_p, g, operand_shape=tuple(x.shape), **p),),
          batch=_window_batch(window_sum_p), rows=_window_rows)
def_rules(window_sum_t_p,
          jvp=(lambda t, ans, g, **p: bind(window_sum_t_p, t, **p),),
          vjp=(lambda ct, ans, g, operand_shape, **p: bind(window_sum_p, ct, **p),),
          batch=_window_batch(window_sum_t_p), rows=_window_rows)
def_rules(window_max_p, jvp=_window_max_jvp, vjp=_window_max_vjp,
          batch=_window_batch(window_max_p), rows=_window_rows)
def_rules(window_gather_p,
          jvp=(lambda t, ans, x, idx, **p: bind(window_gather_p, t, idx, **p), None),
          vjp=(lambda g, ans, x, idx, **p:
               bind(window_scatter_p, g, idx, operand_shape=tuple(x.shape), **p), None),
          batch=_window_batch(window_gather_p), rows=_window_rows)
def_rules(window_scatter_p,
          jvp=(lambda t, ans, g, idx, **p: bind(window_scatter_p, t, idx, **p), None),
          vjp=(lambda ct, ans, g, idx, operand_shape, **p:
               bind(window_gather_p, ct, idx, **p), None),
          batch=_window_batch(window_scatter_p), rows=_window_rows)

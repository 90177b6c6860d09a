"""A table-driven gradient battery for funcgrad.numpy's first families.

Each entry of ``SPECS`` names one function (or one keyword variant of it), how many array
arguments it takes, the domain each argument is drawn from (away from poles, kinks and
ties), and a hypothesis strategy for the argument shapes (size-1 axes, broadcasting
between arguments, 0-d where valid). Every entry is run through:

* ``check_grads(order=2)`` in float64, forward and reverse (``test_grads``);
* a float32 test: float32 in gives float32 out of the function, of ``jvp``, of the ``vjp``
  cotangents and of ``grad`` (``test_float32``);
* a mixed-precision test: float32 and float64 arguments promote as in NumPy and each
  cotangent comes back in its own argument's dtype (``test_mixed_precision``);
* a comparison with plain NumPy: ``fn(numpy, x)`` equals ``fn(funcgrad.numpy, x)`` on
  arrays, and under ``grad``/``jvp`` the plain NumPy spelling dispatches to
  funcgrad.numpy (``test_values_match_numpy``, ``test_numpy_dispatch``).

Then: unsupported NumPy functions raise a TypeError naming them, every differentiable
export of the first-family modules is in the table, and the documented conventions at
kinks and ties (abs at 0, maximum/minimum ties, max/min reductions, clip boundaries).

A spec's ``fn(m, *args)`` takes the namespace ``m`` (``numpy`` or ``funcgrad.numpy``) first,
so one entry serves all these tests.
"""
from __future__ import annotations

import dataclasses
import inspect
import math
import os
from typing import Any, Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import funcgrad
import funcgrad.errors
import funcgrad.numpy as fnp
from funcgrad.test_util import check_grads

# NumPy's own astype(complex -> real) warns; funcgrad's takes the real part on purpose.
pytestmark = pytest.mark.filterwarnings("ignore::numpy.exceptions.ComplexWarning")

# --------------------------------------------------------------------------------------
# Argument domains: ``domain(rng, shape) -> float64 array``. Domains in STATIC are not
# differentiated (boolean masks); the tests close over them.


def _real(rng, s):
    return rng.standard_normal(s)


def _pos(rng, s):
    return rng.uniform(0.5, 2.0, s)


def _unit(rng, s):
    return rng.uniform(-0.8, 0.8, s)


def _gt1(rng, s):
    return rng.uniform(1.3, 3.0, s)


def _nonzero(rng, s):
    return rng.choice([-1.0, 1.0], s) * rng.uniform(0.5, 2.0, s)


def _frac(rng, s):
    """Away from integers and half-integers (floor, ceil, rint, round...)."""
    return rng.integers(-3, 3, s) + rng.uniform(0.1, 0.4, s)


def _grid(r):
    """Values near 3k + r: domains with different r never come within 0.6 of each other
    (maximum/minimum/fmax/fmin/at[].min away from ties)."""
    def dom(rng, s):
        return 3.0 * rng.integers(-2, 3, s) + r + rng.uniform(-0.2, 0.2, s)
    dom.__name__ = f"grid{r}"
    return dom


_grid0, _grid1 = _grid(0), _grid(1)


def _distinct(rng, s):
    """Values at least 0.3 apart (max/min reductions away from ties)."""
    n = math.prod(s)
    v = rng.permutation(n) * 0.5 + rng.uniform(-0.1, 0.1, n) - n / 4
    return v.reshape(s)


def _clip_x(rng, s):
    """Inside [-1, 1] or well outside it, never near the bounds."""
    band = rng.integers(-1, 2, s)
    return band * 2.0 + rng.uniform(-0.5, 0.5, s)


def _lo(rng, s):
    return rng.uniform(-1.2, -0.8, s)


def _hi(rng, s):
    return rng.uniform(0.8, 1.2, s)


def _mod_x(rng, s):
    return rng.choice([-1.0, 1.0], s) * rng.uniform(0.2, 2.3, s)


def _mod_y(rng, s):
    """|x/y| stays in (0.07, 0.92) with _mod_x: floor/trunc of it never jumps."""
    return rng.choice([-1.0, 1.0], s) * rng.uniform(2.5, 3.0, s)


def _mask(rng, s):
    m = np.array(rng.random(s) > 0.4)
    if m.size:
        m.flat[0] = True     # never an empty selection
    return m


STATIC = {_mask}

# --------------------------------------------------------------------------------------
# Shape strategies: each yields a tuple with one shape per argument.


def _shp(min_dims=0, max_dims=3, min_side=1, max_side=3):
    return st.lists(st.integers(min_side, max_side), min_size=min_dims,
                    max_size=max_dims).map(tuple)


def same(n=1, min_dims=0, max_dims=3, min_side=1, max_side=3):
    """``n`` arguments of one shape."""
    return _shp(min_dims, max_dims, min_side, max_side).map(lambda s: (s,) * n)


def fixed(*shapes):
    return st.just(tuple(shapes))


@st.composite
def bcast(draw, n, min_dims=0, max_dims=3):
    """``n`` shapes that broadcast together: leading axes dropped, some axes set to 1."""
    base = draw(_shp(min_dims, max_dims))
    out = []
    for _ in range(n):
        drop = draw(st.integers(0, len(base)))
        out.append(tuple(1 if draw(st.booleans()) else d for d in base[drop:]))
    return tuple(out)


@st.composite
def vary_axis(draw, n, axis, min_dims=1, max_dims=3):
    """``n`` shapes equal except along ``axis`` (for concatenate)."""
    base = list(draw(_shp(min_dims, max_dims)))
    out = []
    for _ in range(n):
        s = list(base)
        s[axis] = draw(st.integers(1, 3))
        out.append(tuple(s))
    return tuple(out)


@st.composite
def matmul_shapes(draw, a_nd, b_nd):
    """Shapes for ``a @ b`` with ``a_nd``/``b_nd`` core dims and broadcast batch dims."""
    m, k, n = draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    batch = draw(bcast(2, 0, 2)) if a_nd == 2 and b_nd == 2 else ((), ())
    a = batch[0] + ((m, k) if a_nd == 2 else (k,))
    b = batch[1] + ((k, n) if b_nd == 2 else (k,))
    return (a, b)


# --------------------------------------------------------------------------------------
# The table


@dataclasses.dataclass
class Spec:
    name: str
    fn: Callable[..., Any]          # fn(m, *args) with m = numpy or funcgrad.numpy
    domains: tuple                  # one per argument
    shapes: Any                     # hypothesis strategy -> tuple of shapes
    numpy: bool = True              # fn(numpy, plain arrays) is valid NumPy
    dispatch: bool = True           # fn(numpy, tracers) routes to funcgrad.numpy
    f32: bool = True                # float32 in -> float32 out applies
    tol: dict = dataclasses.field(default_factory=dict)   # check_grads atol/rtol/eps
    order: int = 2

    def __repr__(self):
        return self.name


SPECS: list[Spec] = []


def spec(name, fn, domains, shapes, **kw):
    SPECS.append(Spec(name, fn, tuple(domains), shapes, **kw))


def _c(x):
    """The complex dtype of x's precision."""
    return np.complex64 if x.dtype == np.float32 else np.complex128


# ---- unary ufuncs ---------------------------------------------------------------------
_UNARY = {
    "negative": _real, "positive": _real, "sin": _real, "cos": _real, "tan": _unit,
    "arcsin": _unit, "arccos": _unit, "arctan": _real, "sinh": _real, "cosh": _real,
    "tanh": _real, "arcsinh": _real, "arccosh": _gt1, "arctanh": _unit, "exp": _real,
    "exp2": _real, "expm1": _real, "log": _pos, "log2": _pos, "log10": _pos, "log1p": _pos,
    "sqrt": _pos, "cbrt": _nonzero, "square": _real, "reciprocal": _nonzero,
    "deg2rad": _real, "radians": _real, "rad2deg": _real, "degrees": _real,
    "abs": _nonzero, "absolute": _nonzero, "real": _real, "imag": _real, "conj": _real,
    "conjugate": _real,
    # piecewise constant: derivative zero away from the jumps
    "sign": _nonzero, "floor": _frac, "ceil": _frac, "trunc": _frac, "fix": _frac,
    "rint": _frac, "round": _frac, "around": _frac,
}
for _n, _d in _UNARY.items():
    spec(_n, (lambda n: lambda m, x: getattr(m, n)(x))(_n), [_d], same(1))

spec("operators_unary", lambda m, x: -x + abs(x) * (+x), [_nonzero], same(1))
spec("round_decimals", lambda m, x: m.round(x * 10.0, 1) * x, [_frac], same(1))

# ---- binary ufuncs (with broadcasting) -------------------------------------------------
_BINARY = {
    "add": (_real, _real), "subtract": (_real, _real), "multiply": (_real, _real),
    "divide": (_real, _nonzero), "true_divide": (_real, _nonzero),
    "power": (_pos, _real), "pow": (_pos, _real),
    "arctan2": (_nonzero, _nonzero), "hypot": (_nonzero, _nonzero),
    "logaddexp": (_real, _real), "logaddexp2": (_real, _real),
    "maximum": (_grid0, _grid1), "minimum": (_grid0, _grid1),
    "fmax": (_grid0, _grid1), "fmin": (_grid0, _grid1),
    "remainder": (_mod_x, _mod_y), "mod": (_mod_x, _mod_y), "fmod": (_mod_x, _mod_y),
    "copysign": (_nonzero, _nonzero), "floor_divide": (_mod_x, _mod_y),
    "heaviside": (_nonzero, _real),
}
for _n, _d in _BINARY.items():
    spec(_n, (lambda n: lambda m, x, y: getattr(m, n)(x, y))(_n), _d, bcast(2))

spec("operators_binary", lambda m, x, y: (x + y) * x - y / (x * x + 1.0) + x ** 2,
     [_real, _real], bcast(2))
spec("numpy_array_on_the_left", lambda m, x: (
    np.full(x.shape, 2.0, x.dtype) * x - np.ones(x.shape, x.dtype) / x + x.dtype.type(1.5) ** x,
    np.ones(x.shape[-2:-1], x.dtype) @ x if x.ndim > 1 else x), [_pos], same(1))
spec("operators_scalars", lambda m, x: 2.0 - x + 3 * x / 2 + 1.5 ** x + x ** 3 - 1 / (x + 3.0),
     [_pos], same(1))
spec("power_int_exponent", lambda m, x: m.power(x, 3) + m.power(x, 0) + m.power(x, -2),
     [_nonzero], same(1))
spec("power_scalar_base", lambda m, y: m.power(2.0, y), [_real], same(1))
spec("power_negative_base_const_array_exponent",
     lambda m, x: m.power(x, np.full(x.shape, 3.0, x.dtype))
     + m.power(x, np.full(x.shape, 2, np.int8)),
     [_nonzero], same(1))
spec("where", lambda m, c, x, y: m.where(c, x, y), [_mask, _real, _real], bcast(3))
spec("where_scalar_branch", lambda m, c, x: m.where(c, x, 0.0) + m.where(c, 1.0, x),
     [_mask, _real], bcast(2))
spec("clip_scalars", lambda m, x: m.clip(x, -1.0, 1.0), [_clip_x], same(1))
spec("clip_arrays", lambda m, x, lo, hi: m.clip(x, lo, hi), [_clip_x, _lo, _hi], bcast(3))
spec("clip_lower_only", lambda m, x, lo: m.clip(x, lo, None), [_clip_x, _lo], bcast(2))
spec("clip_upper_kw", lambda m, x, hi: m.clip(x, max=hi), [_clip_x, _hi], bcast(2))
spec("clip_inverted_bounds", lambda m, x, lo, hi: m.clip(x, hi, lo), [_clip_x, _lo, _hi],
     bcast(3))
spec("clip_method", lambda m, x: x.clip(-1.0, 1.0), [_clip_x], same(1))

# ---- complex paths, as real functions of real inputs -----------------------------------
spec("complex_abs", lambda m, x, y: m.abs(m.astype(x, _c(x)) + 1j * y),
     [_nonzero, _nonzero], bcast(2))
spec("complex_exp_sin", lambda m, x, y: m.real(m.exp(x + 1j * y)) + m.imag(m.sin(x - 1j * y)),
     [_real, _real], bcast(2))
spec("complex_log_sqrt", lambda m, x, y: m.real(m.log(x + 1j * y) * m.sqrt(x + 1j * y)),
     [_pos, _real], bcast(2))
spec("complex_conj_mul", lambda m, x, y: m.imag(m.conj(x + 1j * y) * (y - 2j * x)) + m.real(
    m.conjugate(x * 1j) * m.reciprocal(y + 1j)), [_real, _real], bcast(2))
spec("complex_astype_real", lambda m, x, y: m.astype((x + 1j * y) * (1 - 2j), x.dtype),
     [_real, _real], bcast(2))
spec("complex_sum_matmul", lambda m, a, b: m.real(m.sum(m.matmul(a * (1 + 2j), b - 1j), axis=0)),
     [_real, _real], fixed((2, 3), (3, 2)))
spec("complex_var", lambda m, x, y: m.var(x + 1j * y, axis=-1), [_real, _real],
     same(2, 1, 3, min_side=2))
spec("complex_divide_power", lambda m, x, y: m.abs((x + 1j * y) / (y - 1j) + (x + 1j) ** 2),
     [_real, _real], bcast(2))
spec("complex_sign", lambda m, x, y: m.real(m.sign(x + 1j * y)) + m.imag(m.sign(y - 1j * x)),
     [_nonzero, _nonzero], bcast(2))
spec("complex_attributes", lambda m, x, y: ((x + 1j * y) * x).real * ((x - 1j * y) * y).imag,
     [_real, _real], bcast(2))

# ---- reductions ----------------------------------------------------------------------
_AXES = [  # (label, kwargs, min_dims)
    ("", {}, 0), ("_axis0", {"axis": 0}, 1),
    ("_axis-1_keepdims", {"axis": -1, "keepdims": True}, 1),
    ("_axes(0,-1)", {"axis": (0, -1)}, 2), ("_keepdims", {"keepdims": True}, 0),
    ("_axes(-2,)_keepdims", {"axis": (-2,), "keepdims": True}, 2),
]
_REDUCTIONS = {"sum": _real, "mean": _real, "prod": _nonzero, "max": _distinct,
               "min": _distinct, "amax": _distinct, "amin": _distinct, "var": _real,
               "std": _real}
for _n, _d in _REDUCTIONS.items():
    for _label, _kw, _nd in _AXES:
        if _n in ("amax", "amin") and _label not in ("", "_axes(0,-1)"):
            continue
        spec(_n + _label, (lambda n, kw: lambda m, x: getattr(m, n)(x, **kw))(_n, _kw), [_d],
             # std of a constant (0-d, or length-1 axes) has a NaN gradient (documented)
             same(1, max(_nd, 1) if _n == "std" else _nd, 3,
                  min_side=2 if _n in ("var", "std") else 1))
for _n in ("var", "std"):
    spec(_n + "_ddof1_axis-1", (lambda n: lambda m, x: getattr(m, n)(x, axis=-1, ddof=1))(_n),
         [_real], same(1, 1, 3, min_side=2))
    spec(_n + "_ddof1_axes(0,1)_keepdims", (lambda n: lambda m, x: getattr(m, n)(
        x, axis=(0, 1), ddof=1, keepdims=True))(_n), [_real], same(1, 2, 3, min_side=2))
spec("sum_initial", lambda m, x: m.sum(x, axis=0, initial=1.5), [_real], same(1, 1))
spec("sum_where", lambda m, x, w: m.sum(x, where=w), [_real, _mask], same(2))
spec("prod_where_axis", lambda m, x, w: m.prod(x, axis=-1, where=w), [_nonzero, _mask],
     same(2, 1))
spec("mean_where", lambda m, x, w: m.mean(x, where=w), [_real, _mask], same(2))
spec("max_initial_where", lambda m, x, w: m.max(x, initial=-100.0, where=w),
     [_distinct, _mask], same(2))
spec("min_initial", lambda m, x: m.min(x, axis=-1, initial=100.0), [_distinct], same(1, 1))
spec("reduction_methods", lambda m, x: x.sum(axis=0) * x.mean() + x.prod(axis=-1) + x.var(axis=0)
     + x.max(axis=0) * x.std(axis=-1, ddof=0) + x.min(axis=0), [_distinct], fixed((3, 3)))

# ---- shape ---------------------------------------------------------------------------
spec("reshape_flat", lambda m, x: m.reshape(x, (-1,)), [_real], same(1))
spec("reshape_reversed", lambda m, x: m.reshape(x, x.shape[::-1]), [_real], same(1))
spec("reshape_pad_ones", lambda m, x: m.reshape(x, (1,) + x.shape + (1,)), [_real], same(1))
spec("reshape_F", lambda m, x: m.reshape(x, (x.shape[-1], -1), order="F"), [_real],
     same(1, 1))
spec("reshape_method", lambda m, x: x.reshape(-1, 1) + x.reshape((1, -1)), [_real], same(1))
spec("ravel", lambda m, x: m.ravel(x), [_real], same(1))
spec("transpose", lambda m, x: m.transpose(x), [_real], same(1))
spec("transpose_axes", lambda m, x: m.transpose(x, (1, 2, 0)), [_real], same(1, 3))
spec("transpose_negative_axes", lambda m, x: m.transpose(x, (-1, 0, -2)), [_real], same(1, 3))
spec("permute_dims", lambda m, x: m.permute_dims(x, (1, 0)), [_real], same(1, 2, 2))
spec("transpose_attributes", lambda m, x: x.T * 2.0 + x.mT.sum() + x.transpose(1, 0),
     [_real], same(1, 2, 2, min_side=2).map(lambda s: ((s[0][0], s[0][0]),)))
spec("moveaxis", lambda m, x: m.moveaxis(x, 0, -1), [_real], same(1, 1))
spec("moveaxis_multi", lambda m, x: m.moveaxis(x, (0, 1), (-1, 0)), [_real], same(1, 3))
spec("swapaxes", lambda m, x: m.swapaxes(x, 0, -1), [_real], same(1, 1))
spec("swapaxes_method", lambda m, x: x.swapaxes(-1, 1), [_real], same(1, 2))
spec("expand_dims", lambda m, x: m.expand_dims(x, 0), [_real], same(1))
spec("expand_dims_negative", lambda m, x: m.expand_dims(x, -1), [_real], same(1))
spec("expand_dims_tuple", lambda m, x: m.expand_dims(x, (0, 2)), [_real], same(1, 1))
spec("squeeze", lambda m, x: m.squeeze(x), [_real], same(1))
spec("squeeze_axis", lambda m, x: m.squeeze(x, axis=1), [_real],
     same(1, 1, 2).map(lambda s: (s[0][:1] + (1,) + s[0][1:],)))
spec("squeeze_method", lambda m, x: x.squeeze((0,)), [_real],
     same(1, 0, 2).map(lambda s: ((1,) + s[0],)))
spec("broadcast_to", lambda m, x: m.broadcast_to(x, (2,) + tuple(3 if d == 1 else d
                                                                  for d in x.shape)),
     [_real], same(1))
spec("broadcast_arrays", lambda m, x, y: m.broadcast_arrays(x, y), [_real, _real], bcast(2))
for _k in (1, 2, 3):
    spec(f"atleast_{_k}d", (lambda k: lambda m, x: getattr(m, f"atleast_{k}d")(x))(_k),
         [_real], same(1))
    spec(f"atleast_{_k}d_many", (lambda k: lambda m, x, y: getattr(m, f"atleast_{k}d")(x, y))(_k),
         [_real, _real], bcast(2))
spec("concatenate_axis0", lambda m, x, y, z: m.concatenate([x, y, z]), [_real] * 3,
     vary_axis(3, 0))
spec("concatenate_axis-1", lambda m, x, y: m.concatenate((x, y), axis=-1), [_real] * 2,
     vary_axis(2, -1))
spec("concatenate_axisNone", lambda m, x, y: m.concatenate([x, y], axis=None), [_real] * 2,
     st.tuples(_shp(), _shp()))
spec("concat_one_constant", lambda m, x: m.concat([x, np.ones(x.shape, x.dtype)], axis=0), [_real],
     same(1, 1))
spec("stack", lambda m, x, y: m.stack([x, y]), [_real] * 2, same(2))
spec("stack_axis-1", lambda m, x, y, z: m.stack([x, y, z], axis=-1), [_real] * 3, same(3))
spec("hstack", lambda m, x, y: m.hstack([x, y]), [_real] * 2, vary_axis(2, -1, 1, 2))
spec("vstack", lambda m, x, y: m.vstack([x, y]), [_real] * 2, vary_axis(2, 0, 2, 2))
spec("vstack_1d", lambda m, x, y: m.vstack([x, y]), [_real] * 2, same(2, 1, 1))
spec("hstack_0d", lambda m, x, y: m.hstack([x, y]), [_real] * 2, fixed((), ()))
spec("row_stack", lambda m, x, y: m.vstack((x, y)), [_real] * 2, same(2, 0, 2))
spec("dstack", lambda m, x, y: m.dstack([x, y]), [_real] * 2, same(2, 0, 2))
spec("column_stack", lambda m, x, y: m.column_stack([x, y]), [_real] * 2,
     _shp(1, 1).map(lambda s: (s, s + (2,))))
spec("split_sections", lambda m, x: m.split(x, 2, axis=-1), [_real],
     _shp(0, 2).map(lambda s: (s + (4,),)))
spec("split_indices", lambda m, x: m.split(x, [1, 3]), [_real],
     _shp(0, 2).map(lambda s: ((4,) + s,)))
spec("split_indices_out_of_range", lambda m, x: m.split(x, [2, 10, -1], axis=0), [_real],
     fixed((5, 2)))
spec("array_split", lambda m, x: m.array_split(x, 3, axis=0), [_real],
     _shp(1, 2).map(lambda s: ((5,) + s[1:],)))
spec("hsplit_vsplit_dsplit", lambda m, x: m.hsplit(x, 2) + m.vsplit(x, 2) + m.dsplit(x, [1]),
     [_real], fixed((2, 4, 3)))

# ---- contractions --------------------------------------------------------------------
spec("matmul", lambda m, a, b: m.matmul(a, b), [_real] * 2, matmul_shapes(2, 2))
spec("matmul_vec_vec", lambda m, a, b: m.matmul(a, b), [_real] * 2, matmul_shapes(1, 1))
spec("matmul_vec_mat", lambda m, a, b: m.matmul(a, b), [_real] * 2, matmul_shapes(1, 2))
spec("matmul_mat_vec", lambda m, a, b: m.matmul(a, b), [_real] * 2, matmul_shapes(2, 1))
spec("matmul_batched_vec", lambda m, a, b: a @ b, [_real] * 2, fixed((2, 3), (4, 3, 2)))
spec("matmul_mat_batched_vec", lambda m, a, b: a @ b, [_real] * 2, fixed((2, 1, 3, 4), (4,)))
spec("dot_scalar", lambda m, a, b: m.dot(a, b), [_real] * 2, fixed((), (2, 3)))
spec("dot_1d", lambda m, a, b: m.dot(a, b), [_real] * 2, matmul_shapes(1, 1))
spec("dot_2d", lambda m, a, b: m.dot(a, b), [_real] * 2, fixed((2, 3), (3, 4)))
spec("dot_nd", lambda m, a, b: m.dot(a, b), [_real] * 2, fixed((2, 2, 3), (4, 3, 2)))
spec("dot_nd_1d", lambda m, a, b: m.dot(a, b), [_real] * 2, fixed((2, 2, 3), (3,)))
spec("dot_method", lambda m, a, b: a.dot(b), [_real] * 2, fixed((2, 3), (3,)))
spec("vdot", lambda m, a, b: m.vdot(a, b), [_real] * 2, fixed((2, 3), (3, 2)))
spec("vdot_complex", lambda m, a, b: m.real(m.vdot(a + 1j * b, b - 2j * a)), [_real] * 2,
     fixed((4,), (4,)))
spec("inner_1d", lambda m, a, b: m.inner(a, b), [_real] * 2, fixed((3,), (3,)))
spec("inner_nd", lambda m, a, b: m.inner(a, b), [_real] * 2, fixed((2, 3), (4, 1, 3)))
spec("inner_scalar", lambda m, a, b: m.inner(a, b), [_real] * 2, fixed((), (2, 2)))
spec("outer", lambda m, a, b: m.outer(a, b), [_real] * 2, st.tuples(_shp(), _shp()))
spec("tensordot_0", lambda m, a, b: m.tensordot(a, b, axes=0), [_real] * 2,
     fixed((2, 1), (3,)))
spec("tensordot_1", lambda m, a, b: m.tensordot(a, b, axes=1), [_real] * 2,
     fixed((2, 3), (3, 2)))
spec("tensordot_2", lambda m, a, b: m.tensordot(a, b), [_real] * 2, fixed((4, 2, 3), (2, 3, 2)))
spec("tensordot_pairs", lambda m, a, b: m.tensordot(a, b, axes=([0, -1], [1, 0])),
     [_real] * 2, fixed((2, 3, 4), (4, 2)))
spec("tensordot_int_pair", lambda m, a, b: m.tensordot(a, b, axes=(1, 0)), [_real] * 2,
     fixed((2, 3), (3, 2)))
_EINSUM = [
    ("ij,jk->ik", [(2, 3), (3, 4)]), ("ij,jk", [(2, 3), (3, 2)]), ("ii->i", [(3, 3)]),
    ("ii", [(3, 3)]), ("iij->j", [(2, 2, 3)]), ("iji->ij", [(2, 3, 2)]),
    ("i,i", [(3,), (3,)]), ("i,j->ij", [(2,), (3,)]), ("ij->ji", [(2, 3)]),
    ("ij->", [(2, 3)]), ("ij", [(3, 2)]), ("ji", [(3, 2)]),
    ("bij,bjk->bik", [(2, 2, 3), (2, 3, 2)]),
    ("...ij,...jk->...ik", [(2, 2, 3), (3, 2)]), ("...i,...i->...", [(2, 1, 3), (4, 3)]),
    ("i...->...", [(3, 1, 2)]), ("ij,jk,kl->il", [(2, 3), (3, 2), (2, 2)]),
    ("ii,i->i", [(3, 3), (3,)]), ("ij,ij->ij", [(2, 3), (2, 3)]),
    ("ijk,ik->j", [(2, 3, 2), (2, 2)]),
    ("i,i->", [(1,), (3,)]), ("ij,j->i", [(2, 3), (1,)]), ("i, i ->", [(3,), (3,)]),
]
for _subs, _shapes in _EINSUM:
    spec(f"einsum[{_subs}]", (lambda s: lambda m, *ops: m.einsum(s, *ops))(_subs),
         [_real] * len(_shapes), fixed(*_shapes))

# ---- astype --------------------------------------------------------------------------
spec("astype_roundtrip", lambda m, x: m.astype(m.astype(x, np.float64) ** 2, x.dtype), [_real],
     same(1))
spec("astype_float32", lambda m, x: m.astype(x, np.float32), [_real], same(1), f32=False,
     tol=dict(atol=1e-3, rtol=1e-3, eps=1e-3))
spec("astype_method_float64", lambda m, x: x.astype(np.float64) * x, [_real], same(1),
     f32=False)
spec("astype_complex", lambda m, x, y: m.abs(m.astype(x, _c(x)) * (1 + 1j) + y) ** 2,
     [_real, _real], bcast(2))
spec("astype_same_dtype", lambda m, x: m.astype(x, x.dtype), [_real], same(1))
spec("astype_int_blocks", lambda m, x: m.astype(m.astype(x * 10.0, np.int64), x.dtype) + x,
     [_frac], same(1))

# ---- getitem -------------------------------------------------------------------------
_X = fixed((4, 5, 3))
_dup = np.array([0, 2, 2, 1, 2])
_INDICES = [
    ("int", 1), ("negative_int", -1), ("int_int_int", (1, -2, 0)), ("slice", slice(1, 3)),
    ("negative_step", slice(None, None, -1)), ("negative_step_start", (slice(3, 0, -2), 1)),
    ("step", (slice(None), slice(None, None, 2))), ("none", (None, 1, slice(1, None), None)),
    ("ellipsis", (Ellipsis, 0)), ("ellipsis_none", (0, Ellipsis, None)),
    ("empty_slice", slice(2, 2)), ("int_array_dups", _dup),
    ("int_array_2d", np.array([[0, 3], [3, 3]])), ("list_index", [1, 1, 0]),
    ("negative_int_array", np.array([-1, 0, -1])),
    ("two_arrays", (np.array([0, 1, 1]), slice(None), np.array([2, 0, 2]))),
    ("mixed_basic_advanced", (slice(1, 3), [0, 0, 4])),
    ("mixed_int_array_slice", (0, [1, 1], slice(1, None))),
    ("broadcast_arrays", (np.array([[0], [3]]), np.array([1, 1, 4]))),
    ("array_ellipsis", (Ellipsis, np.array([2, 2]))),
    ("bool_mask_full", np.arange(60).reshape(4, 5, 3) % 3 == 1),
    ("bool_mask_axis0", np.array([True, False, True, True])),
    ("bool_mask_leading2", np.arange(20).reshape(4, 5) % 4 == 1),
    ("bool_mask_middle", (slice(None), np.array([False, True, True, False, True]))),
    ("bool_scalar", True), ("bool_and_int_array", (np.array([True, False, True, False]), [1, 1])),
]
for _label, _idx in _INDICES:
    spec(f"getitem[{_label}]", (lambda i: lambda m, x: x[i])(_idx), [_real], _X)
spec("getitem_1d_to_0d", lambda m, x: x[2] * x[-1], [_real], fixed((4,)))
spec("getitem_0d_ellipsis", lambda m, x: x[...] + x[()], [_real], fixed(()))
spec("getitem_0d_none", lambda m, x: x[None], [_real], fixed(()))
spec("iterate_rows", lambda m, x: m.stack([r * i for i, r in enumerate(x)]), [_real],
     fixed((3, 2)))

# ---- functional updates (funcgrad only: at(x)[idx]) -------------------------------------
_UPDATES = [
    ("set_int", 1, (5, 3)), ("set_slice", (slice(1, 3), 0), (3,)),
    ("set_scalar_broadcast", (Ellipsis, 1), ()), ("set_int_array", np.array([3, 0]), (2, 5, 3)),
    ("set_int_array_dups", np.array([1, 3, 1]), (3, 5, 3)),
    ("set_bool_mask", np.array([True, False, True, False]), (1, 3)),
    ("add_int_array_dups", np.array([0, 2, 2, 2]), (4, 5, 3)),
    ("add_broadcast_dups", (np.array([1, 1]), slice(None), np.array([0, 0])), (1, 5)),
    ("add_slice", slice(None, None, -2), (5, 3)),
    ("add_mixed", (slice(1, 3), [0, 0, 4]), (2, 3, 3)),
]
for _label, _idx, _vshape in _UPDATES:
    _op = _label.split("_")[0]
    spec(f"at[{_label}]", (lambda i, op: lambda m, x, v: getattr(fnp.at(x)[i], op)(v))(_idx, _op),
         [_real, _real], fixed((4, 5, 3), _vshape), numpy=False, dispatch=False)
spec("at_multiply", lambda m, x, v: fnp.at(x)[1:3, [0, 4]].multiply(v), [_real, _real],
     fixed((4, 5, 3), (2, 3)), numpy=False, dispatch=False)
spec("at_multiply_dups", lambda m, x, v: fnp.at(x)[[0, 2, 0]].multiply(v), [_real, _real],
     fixed((4, 5, 3), (3, 5, 3)), numpy=False, dispatch=False)
spec("at_divide_power", lambda m, x, v, w: fnp.at(fnp.at(x)[1].divide(v))[2].power(w),
     [_pos, _nonzero, _real], fixed((4, 3), (3,), ()), numpy=False, dispatch=False)
spec("at_min", lambda m, x, v: fnp.at(x)[:, [1, 2]].min(v), [_grid0, _grid1],
     fixed((4, 5, 3), (3,)), numpy=False, dispatch=False)
spec("at_max_dups", lambda m, x, v: fnp.at(x)[[2, 2]].max(v), [_grid0, _grid1],
     fixed((4, 5, 3), (2, 1, 3)), numpy=False, dispatch=False)
spec("at_get", lambda m, x: fnp.at(x)[::-1, 2].get(), [_real], fixed((4, 5, 3)),
     numpy=False, dispatch=False)

# ---- creation with traced values ----------------------------------------------------------
spec("full_traced", lambda m, x: m.full((2, 3), x) * 2.0, [_real], fixed(()), dispatch=False)
spec("full_like_traced", lambda m, a, x: m.full_like(a, x), [_real, _real], fixed((2, 3), ()),
     dispatch=False)
spec("asarray_list", lambda m, x, y: m.asarray([x, y, x * y]), [_real] * 2, same(2),
     dispatch=False)
spec("array_ndmin", lambda m, x: m.array(x, ndmin=3), [_real], same(1, 0, 2), dispatch=False)
spec("array_nested", lambda m, x, y: m.array([[x, y], [y, x]]), [_real] * 2, fixed((), ()),
     dispatch=False)
spec("linspace", lambda m, a, b: m.linspace(a, b, 5), [_real, _real], fixed((), ()))
spec("linspace_no_endpoint", lambda m, a, b: m.linspace(a, b, 4, endpoint=False), [_real] * 2,
     fixed((), (2,)))
spec("logspace", lambda m, a, b: m.logspace(a, b, 3), [_unit, _unit], fixed((), ()))
spec("zeros_like_is_constant", lambda m, x: m.zeros_like(x) + m.ones_like(x) * x
     + m.full_like(x, 2.0) * x, [_real], same(1))

SPEC_BY_NAME = {s.name: s for s in SPECS}
assert len(SPEC_BY_NAME) == len(SPECS), "duplicate spec names"

# --------------------------------------------------------------------------------------
# Helpers


def _make_args(sp, shapes, seed, dtype=np.float64):
    rng = np.random.default_rng(seed)
    out = []
    for dom, s in zip(sp.domains, shapes):
        v = np.asarray(dom(rng, s))
        out.append(v if dom in STATIC else v.astype(dtype))
    return out


def _closed(sp, args):
    """(function of the differentiable args only, those args) for namespace fnp."""
    dyn = [i for i, d in enumerate(sp.domains) if d not in STATIC]

    def f(*d):
        full = list(args)
        for i, v in zip(dyn, d):
            full[i] = v
        return sp.fn(fnp, *full)
    f.__name__ = sp.name
    return f, [args[i] for i in dyn]


def _leaves(out):
    return funcgrad.tree_util.tree_flatten(out)[0]


def _draw(sp, data):
    shapes = data.draw(sp.shapes, label="shapes")
    seed = data.draw(st.integers(0, 2 ** 16), label="seed")
    return shapes, seed


# --------------------------------------------------------------------------------------
# The tests

# Examples per table entry (the table has ~300 entries; the whole file runs in ~20 s).
# BATTERY_EXAMPLES=50 HYPOTHESIS_PROFILE=thorough hunts further.
_EXAMPLES = int(os.environ.get("BATTERY_EXAMPLES", 6))
_FEW = max(1, _EXAMPLES // 3)


@pytest.mark.parametrize("sp", SPECS, ids=repr)
@settings(max_examples=_EXAMPLES)
@given(data=st.data())
def test_grads(sp, data):
    shapes, seed = _draw(sp, data)
    args = _make_args(sp, shapes, seed)
    f, dyn = _closed(sp, args)
    check_grads(f, dyn, order=sp.order, **sp.tol)


def _is32(dt):
    return np.dtype(dt) in (np.dtype(np.float32), np.dtype(np.complex64))


@pytest.mark.parametrize("sp", [s for s in SPECS if s.f32], ids=repr)
@settings(max_examples=_FEW)
@given(data=st.data())
def test_float32(sp, data):
    shapes, seed = _draw(sp, data)
    args = _make_args(sp, shapes, seed, np.float32)
    f, dyn = _closed(sp, args)
    for o in _leaves(f(*dyn)):
        if o.dtype.kind in "fc":
            assert _is32(o.dtype), f"{sp.name}: output dtype {o.dtype}"

    rng = np.random.default_rng(seed)
    tangents = tuple(rng.standard_normal(np.shape(a)).astype(np.float32) for a in dyn)
    out, t_out = funcgrad.jvp(f, tuple(dyn), tangents)
    for o, t in zip(_leaves(out), _leaves(t_out)):
        if o.dtype.kind in "fc":
            assert _is32(o.dtype) and t.dtype == o.dtype, \
                f"{sp.name}: jvp primal {o.dtype}, tangent {t.dtype}"

    out, f_vjp = funcgrad.vjp(f, *dyn)
    ct = funcgrad.tree_util.tree_map(lambda o: np.ones(o.shape, o.dtype), out)
    for a, g in zip(dyn, f_vjp(ct)):
        assert g.dtype == np.float32 and g.shape == a.shape, \
            f"{sp.name}: cotangent {g.dtype}{g.shape} for input float32{a.shape}"

    def scalar(*d):
        return sum(fnp.sum(fnp.real(o)) for o in _leaves(f(*d)))
    for a, g in zip(dyn, funcgrad.grad(scalar, argnums=tuple(range(len(dyn))))(*dyn)):
        assert g.dtype == np.float32 and g.shape == a.shape, \
            f"{sp.name}: grad {g.dtype}{g.shape} for input float32{a.shape}"


def _n_dyn(sp):
    return sum(d not in STATIC for d in sp.domains)


@pytest.mark.parametrize("sp", [s for s in SPECS if s.f32 and _n_dyn(s) >= 2], ids=repr)
@settings(max_examples=1)
@given(data=st.data())
def test_mixed_precision(sp, data):
    """First argument float32, the others float64: outputs promote as in NumPy, and every
    cotangent comes back in its own input's dtype."""
    shapes, seed = _draw(sp, data)
    args = _make_args(sp, shapes, seed)
    first = next(i for i, d in enumerate(sp.domains) if d not in STATIC)
    args[first] = args[first].astype(np.float32)
    f, dyn = _closed(sp, args)
    out = f(*dyn)
    if sp.numpy:
        for a, b in zip(_leaves(out), _leaves(sp.fn(np, *args))):
            assert np.result_type(a) == np.result_type(b)
    tangents = tuple(np.ones(np.shape(a), a.dtype) for a in dyn)
    _, t_out = funcgrad.jvp(f, tuple(dyn), tangents)
    for o, t in zip(_leaves(out), _leaves(t_out)):
        if o.dtype.kind in "fc":
            assert t.dtype == o.dtype, f"{sp.name}: tangent {t.dtype} for output {o.dtype}"
    out, f_vjp = funcgrad.vjp(f, *dyn)
    ct = funcgrad.tree_util.tree_map(lambda o: np.ones(o.shape, o.dtype), out)
    for a, g in zip(dyn, f_vjp(ct)):
        assert g.dtype == a.dtype and g.shape == a.shape, \
            f"{sp.name}: cotangent {g.dtype}{g.shape} for input {a.dtype}{a.shape}"


@pytest.mark.parametrize("sp", [s for s in SPECS if s.numpy], ids=repr)
@settings(max_examples=_FEW)
@given(data=st.data())
def test_values_match_numpy(sp, data):
    """On plain arrays, fn(funcgrad.numpy, x) computes what fn(numpy, x) computes."""
    shapes, seed = _draw(sp, data)
    args = _make_args(sp, shapes, seed)
    ours, theirs = sp.fn(fnp, *args), sp.fn(np, *args)
    if isinstance(theirs, (list, tuple)):
        assert type(ours) is type(theirs), f"returns a {type(ours).__name__}, NumPy a " \
            f"{type(theirs).__name__}"
    ours, theirs = _leaves(ours), _leaves(theirs)
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs):
        assert np.shape(a) == np.shape(b)
        assert np.result_type(a) == np.result_type(b), f"{np.result_type(a)} vs {np.result_type(b)}"
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("sp", [s for s in SPECS if s.dispatch and s.numpy], ids=repr)
@settings(max_examples=_FEW)
@given(data=st.data())
def test_numpy_dispatch(sp, data):
    """Under grad and jvp, plain NumPy calls on tracers route to funcgrad.numpy."""
    shapes, seed = _draw(sp, data)
    args = _make_args(sp, shapes, seed)
    dyn_idx = [i for i, d in enumerate(sp.domains) if d not in STATIC]

    def scalar(m):
        def f(*d):
            full = list(args)
            for i, v in zip(dyn_idx, d):
                full[i] = v
            return sum(fnp.sum(fnp.sin(o) * o) for o in _leaves(sp.fn(m, *full)))
        return f
    dyn = [args[i] for i in dyn_idx]
    nums = tuple(range(len(dyn)))
    g_np = funcgrad.grad(scalar(np), argnums=nums)(*dyn)
    g_fnp = funcgrad.grad(scalar(fnp), argnums=nums)(*dyn)
    for a, b in zip(g_np, g_fnp):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    t = tuple(np.ones_like(a) for a in dyn)
    _, t_np = funcgrad.jvp(scalar(np), tuple(dyn), t)
    _, t_fnp = funcgrad.jvp(scalar(fnp), tuple(dyn), t)
    np.testing.assert_allclose(t_np, t_fnp, rtol=1e-12, atol=1e-12)


def test_dispatch_example_from_the_docs():
    x = np.array([0.3, -1.2, 2.0])
    g1 = funcgrad.grad(lambda x: np.sum(np.sin(x) * np.mean(x)))(x)
    g2 = funcgrad.grad(lambda x: fnp.sum(fnp.sin(x) * fnp.mean(x)))(x)
    expected = np.cos(x) * np.mean(x) + np.sum(np.sin(x)) / x.size
    np.testing.assert_allclose(g1, expected, rtol=1e-12)
    np.testing.assert_allclose(g2, expected, rtol=1e-12)


# Functions NumPy has and funcgrad.numpy is unlikely ever to support; the test uses the
# first ones not exported so that it keeps testing something as coverage grows.
# (each takes the array as its only required argument)
_UNSUPPORTED_FUNCTIONS = ["unique", "histogram", "poly", "roots", "polyder", "sort_complex",
                          "nanpercentile"]
_UNSUPPORTED_UFUNCS = ["spacing", "nextafter", "frexp", "ldexp", "gcd", "heaviside"]


def test_unsupported_numpy_function_raises_naming_it():
    name = next(n for n in _UNSUPPORTED_FUNCTIONS if not hasattr(fnp, n))
    with pytest.raises(TypeError, match=rf"numpy\.{name}\b"):
        funcgrad.grad(lambda x: getattr(np, name)(x).sum())(np.array([1.0, 2.0, 2.0]))


def test_unsupported_numpy_ufunc_raises_naming_it():
    name = next(n for n in _UNSUPPORTED_UFUNCS if not hasattr(fnp, n))
    uf = getattr(np, name)
    args = (lambda x: (x,)) if uf.nin == 1 else (lambda x: (x, x))
    with pytest.raises(TypeError, match=rf"numpy\.{name}\b"):
        funcgrad.grad(lambda x: fnp.sum(uf(*args(x))))(np.array([1.0, 2.0]))


def test_table_covers_first_families():
    """Every function exported from the first-family modules is in the table (or is known
    to have no derivative / no array argument to differentiate)."""
    not_differentiable = {
        "all", "any", "argmax", "argmin", "equal", "not_equal", "less", "less_equal",
        "greater", "greater_equal", "logical_and", "logical_or", "logical_xor",
        "logical_not", "bitwise_and", "bitwise_or", "bitwise_xor", "bitwise_not", "invert",
        "isnan", "isinf", "isfinite", "signbit", "nonzero", "flatnonzero", "argwhere",
        "arange", "zeros", "ones", "empty", "eye", "identity", "tri", "empty_like",
        "shape", "ndim", "size", "broadcast_shapes",
    }
    modules = {f"funcgrad._src.prims.{m}" for m in
               ("elementwise", "reductions", "shape", "indexing", "contractions", "creation")}
    exported = {n for n in fnp.__all__ if getattr(getattr(fnp, n), "__module__", None) in modules}
    tabled = "\n".join(inspect.getsource(s.fn) for s in SPECS)
    missing = sorted(n for n in exported - not_differentiable
                     if not any(n == t or t.startswith(n + "_") or t.startswith(n + "[")
                                for t in SPEC_BY_NAME))
    # Spellings covered inside another entry's function.
    missing = [n for n in missing if f"m.{n}(" not in tabled]
    assert not missing, f"exported but not in the battery: {missing}"


def test_integer_index_and_mask_get_no_gradient():
    x = np.array([1.5, -2.0], np.float32)
    k = np.array([1, 0])
    g = funcgrad.grad(lambda x, k: fnp.sum(x[k] * fnp.where(x > 0, x, 0)))(x, k)
    assert g.dtype == np.float32
    np.testing.assert_allclose(g, [-2.0, 1.5])  # d/dx of x[1] * x[0] (x[1] < 0 is masked)


def test_errors_are_funcgrad_errors_of_the_builtin_kinds():
    x = np.ones((2, 3))
    with pytest.raises(IndexError, match=r"float64\[2,3\].*out of bounds"):
        funcgrad.grad(lambda x: fnp.sum(x[5]))(x)
    with pytest.raises(IndexError, match="too many indices"):
        funcgrad.grad(lambda x: fnp.sum(x[0, 0, 0]))(x)
    with pytest.raises(funcgrad.errors.FuncgradValueError):
        funcgrad.grad(lambda x: fnp.sum(x[5]))(x)
    with pytest.raises(funcgrad.errors.FuncgradTypeError, match="where: give both"):
        fnp.where(x > 0, x)
    with pytest.raises(funcgrad.errors.FuncgradValueError, match="clip: at least one"):
        fnp.clip(x)
    with pytest.raises(funcgrad.errors.FuncgradTypeError, match="clip: out="):
        fnp.clip(x, 0, 1, out=x)
    with pytest.raises(funcgrad.errors.FuncgradValueError, match="max: where= needs initial"):
        fnp.max(x, where=x > 0)
    with pytest.raises(funcgrad.errors.FuncgradValueError, match="min: zero-size"):
        funcgrad.grad(lambda x: fnp.min(x))(np.ones(0))


# --------------------------------------------------------------------------------------
# Documented conventions at non-differentiable points


def test_abs_grad_at_zero_is_zero():
    g = funcgrad.grad(lambda x: fnp.sum(fnp.abs(x)))(np.array([0.0, -2.0, 3.0]))
    np.testing.assert_array_equal(g, [0.0, -1.0, 1.0])
    _, t = funcgrad.jvp(fnp.abs, (np.array(0.0),), (np.array(1.0),))
    assert t == 0.0
    assert funcgrad.grad(fnp.abs)(np.float32(0.0)) == 0.0


@pytest.mark.parametrize("name", ["maximum", "minimum", "fmax", "fmin"])
def test_elementwise_extremum_ties_split_half(name):
    f = getattr(fnp, name)
    x = np.array([1.0, 2.0, 3.0])
    y = np.array([1.0, 0.0, 3.0])
    gx, gy = funcgrad.grad(lambda x, y: fnp.sum(f(x, y)), argnums=(0, 1))(x, y)
    win = 1.0 if name in ("maximum", "fmax") else 0.0
    np.testing.assert_array_equal(gx, [0.5, win, 0.5])
    np.testing.assert_array_equal(gy, [0.5, 1 - win, 0.5])
    _, t = funcgrad.jvp(f, (x, y), (np.ones(3), np.full(3, 3.0)))
    np.testing.assert_array_equal(t, [2.0, 1.0 if win else 3.0, 2.0])
    # a scalar tied with every element
    g = funcgrad.grad(lambda s: fnp.sum(f(s, np.array([2.0, 2.0]))))(2.0)
    assert g == 1.0


@pytest.mark.parametrize("name", ["max", "min"])
def test_reduction_extremum_ties_share(name):
    f = getattr(fnp, name)
    x = np.array([[3.0, 1.0, 3.0, 3.0], [0.0, 1.0, -1.0, 2.0]])
    if name == "min":
        x = -x
    g = funcgrad.grad(lambda x: f(x))(x)
    np.testing.assert_allclose(g, [[1 / 3, 0, 1 / 3, 1 / 3], [0, 0, 0, 0]])
    g = funcgrad.grad(lambda x: fnp.sum(f(x, axis=1)))(x)
    np.testing.assert_allclose(g, [[1 / 3, 0, 1 / 3, 1 / 3], [0, 0, 0, 1]])
    g = funcgrad.grad(lambda x: fnp.sum(f(x, axis=0) * np.array([1.0, 2.0, 3.0, 4.0])))(x)
    np.testing.assert_allclose(g, [[1, 1, 3, 4], [0, 1, 0, 0]])
    _, t = funcgrad.jvp(lambda x: f(x, axis=1), (x,), (np.arange(8.0).reshape(2, 4),))
    np.testing.assert_allclose(t, [(0 + 2 + 3) / 3, 7])


def test_clip_passes_gradient_at_the_boundary():
    x = np.array([-1.0, -0.5, 1.0, 2.0, -3.0])
    g = funcgrad.grad(lambda x: fnp.sum(fnp.clip(x, -1.0, 1.0)))(x)
    np.testing.assert_array_equal(g, [1.0, 1.0, 1.0, 0.0, 0.0])
    lo, hi = np.full(5, -1.0), np.full(5, 1.0)
    gx, glo, ghi = funcgrad.grad(lambda x, lo, hi: fnp.sum(fnp.clip(x, lo, hi)),
                                 argnums=(0, 1, 2))(x, lo, hi)
    np.testing.assert_array_equal(gx, [1.0, 1.0, 1.0, 0.0, 0.0])
    np.testing.assert_array_equal(glo, [0.0, 0.0, 0.0, 0.0, 1.0])
    np.testing.assert_array_equal(ghi, [0.0, 0.0, 0.0, 1.0, 0.0])
    _, t = funcgrad.jvp(lambda x: fnp.clip(x, -1.0, 1.0), (x,), (np.ones(5),))
    np.testing.assert_array_equal(t, [1.0, 1.0, 1.0, 0.0, 0.0])

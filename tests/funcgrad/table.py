"""One table harness for funcgrad.numpy's per-function checks.

A family's test file (``test_elementwise.py``, ``test_reductions.py``, ...) lists its
functions as ``Case``s and gets its table tests from ``table_tests``::

    CASES = [Case("cumsum", draw, lambda m, x, axis: m.cumsum(x, axis=axis)), ...]
    (test_values_match_numpy, test_grads, test_float32, test_mixed_precision,
     test_numpy_dispatch) = table_tests(CASES, values=12, grads=12, float32=4)

A case's ``fn(m, *args, **static)`` takes the namespace ``m`` (``numpy`` or
``funcgrad.numpy``) first, so one entry serves every check; ``draw(data)`` draws
``(args, static)`` with hypothesis. Its floating-point positional arguments are the
differentiated ones (boolean masks, integer indices and complex constants are closed
over). Every case runs through:

* ``test_values_match_numpy``: ``fn(funcgrad.numpy, ...)`` equals ``fn(numpy, ...)``
  (container type, shapes, dtypes, values, NaNs in place), eagerly and as the primal
  under ``jvp`` (where composites take their traced path);
* ``test_grads``: ``check_grads(order=2)`` in float64, forward and reverse;
* ``test_float32``: float32 in gives float32 (NumPy's dtype) out of the function, of
  ``jvp``'s tangents, of the ``vjp`` cotangents and of ``grad``;
* ``test_mixed_precision``: float32 and float64 arguments promote as in NumPy and each
  cotangent comes back in its own argument's dtype;
* ``test_numpy_dispatch``: under ``jvp`` and ``grad`` the plain NumPy spelling
  ``fn(numpy, tracer)`` reaches funcgrad.numpy and gives the same values and derivatives.

A sixth, ``test_jit_matches`` (``check_jit``: ``funcgrad.jit`` of the case, called three
times so that the compiled replay runs, gives the eager result, in float64, float32 and
with 0-d arguments as Python floats), comes from ``jit_table_test(CASES)``, which a
family's file assigns to ``test_jit_matches``; a case whose result may not match under
jit says why in its ``jit`` field (e.g. it needs concrete values).

Two ways to draw a case's arguments: ``spec(name, fn, domains, shapes)`` draws one
array per domain (``domain(rng, shape)``) over a hypothesis strategy of shapes (the
domains keep away from poles, kinks and ties); ``Case(name, draw, fn)`` takes any
``draw(data) -> (args, static)`` (the helpers ``_shape``, ``_axis``, ``_rng`` below).
``TABLE_EXAMPLES=50 HYPOTHESIS_PROFILE=thorough`` hunts further (``BATTERY_EXAMPLES``, its
old name, still works).
"""
from __future__ import annotations

import dataclasses
import math
import os
from typing import Any, Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import funcgrad
import funcgrad.numpy as fnp
from funcgrad.test_util import check_grads

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


def _c(x):
    """The complex dtype of x's precision."""
    return np.complex64 if x.dtype == np.float32 else np.complex128


# --------------------------------------------------------------------------------------
# Drawing helpers for ``Case(name, draw, fn)``


def _shape(d, min_nd=1, max_nd=3, lo=1, hi=4):
    return tuple(d.draw(st.lists(st.integers(lo, hi), min_size=min_nd, max_size=max_nd)))


def _axis(d, nd, allow_none=False):
    s = st.integers(-nd, nd - 1)
    return d.draw(st.one_of(st.none(), s) if allow_none else s)


def _rng(d):
    return np.random.default_rng(d.draw(st.integers(0, 2**31 - 1)))


def _normal(rng, shape):
    return rng.standard_normal(shape)


def _with_nans(rng, shape, axis=-1):
    """Normal values with some NaNs, keeping at least one finite value per slice."""
    x = rng.standard_normal(shape)
    mask = rng.random(shape) < 0.3
    first = [slice(None)] * len(shape)
    first[axis] = 0
    mask[tuple(first)] = False
    x[mask] = np.nan
    return x

# --------------------------------------------------------------------------------------
# Cases


@dataclasses.dataclass
class Case:
    name: str
    draw: Callable[[Any], tuple]    # data -> (args, static kwargs)
    fn: Callable                    # fn(m, *args, **static), m = numpy or funcgrad.numpy
    diff: bool = True               # differentiable: check_grads, float32, dispatch
    order: int = 2                  # check_grads order
    numpy: bool = True              # fn(numpy, plain arrays) is valid NumPy
    dispatch: bool = True           # fn(numpy, tracers) routes to funcgrad.numpy
    f32: bool = True                # float32 in -> float32 out applies
    mixed: bool = False             # float32 and float64 arguments mix (2+ arguments)
    tol: dict = dataclasses.field(default_factory=dict)   # check_grads atol/rtol/eps
    rtol: float = 1e-12             # values against NumPy
    atol: float = 1e-12
    jit: str = ""                   # why jit's result may differ from eager ("": it may not)

    def __repr__(self):
        return self.name


def spec(name, fn, domains, shapes, **kw):
    """A case over one array per domain, of shapes drawn from ``shapes`` (a strategy for
    a tuple of shapes); ``fn(m, *args)``."""
    domains = tuple(domains)
    kw.setdefault("mixed", kw.get("f32", True) and sum(d not in STATIC for d in domains) >= 2)

    def draw(data):
        shapes_ = data.draw(shapes, label="shapes")
        seed = data.draw(st.integers(0, 2 ** 16), label="seed")
        rng = np.random.default_rng(seed)
        out = []
        for dom, s in zip(domains, shapes_):
            v = np.asarray(dom(rng, s))
            out.append(v if dom in STATIC else v.astype(np.float64))
        return out, {}
    return Case(name, draw, fn, **kw)


def _ax_case(name, fn, min_nd=1, allow_none=True, domain=None, **kw):
    """A case over one array of a drawn shape and a drawn axis."""
    domain = domain or _normal

    def draw(d):
        shape = _shape(d, min_nd=min_nd)
        return (domain(_rng(d), shape),), {"axis": _axis(d, len(shape), allow_none)}
    return Case(name, draw, fn, **kw)


def fixed_args(make):
    """A case's draw for arguments made without hypothesis (``make() -> args``)."""
    return lambda data: (make(), {})


# --------------------------------------------------------------------------------------
# The checks


def _leaves(out):
    return funcgrad.tree_util.tree_flatten(out)[0]


def _dyn(args):
    return [i for i, a in enumerate(args) if np.asarray(a).dtype.kind == "f"]


def _closed(case, args, static):
    """(function of the differentiable args only, those args, their positions)."""
    dyn = _dyn(args)

    def f(*d):
        full = list(args)
        for i, v in zip(dyn, d):
            full[i] = v
        return case.fn(fnp, *full, **static)
    f.__name__ = case.name
    return f, [args[i] for i in dyn], dyn


def _is32(dt):
    return np.dtype(dt) in (np.dtype(np.float32), np.dtype(np.complex64))


def _assert_like(ours, theirs, rtol, atol, what=""):
    """Same containers, leaves of the same shapes and dtypes, values close (NaNs in the
    same places)."""
    if isinstance(theirs, (list, tuple)):
        assert type(ours) is type(theirs), f"{what}returns a {type(ours).__name__}, NumPy a " \
            f"{type(theirs).__name__}"
    ours, theirs = _leaves(ours), _leaves(theirs)
    assert len(ours) == len(theirs), f"{what}{len(ours)} leaves, NumPy {len(theirs)}"
    for a, b in zip(ours, theirs):
        assert np.shape(a) == np.shape(b), f"{what}shape {np.shape(a)} vs {np.shape(b)}"
        assert np.result_type(a) == np.result_type(b), \
            f"{what}{np.result_type(a)} vs {np.result_type(b)}"
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol, equal_nan=True)


def _with_dtype(args, dtype):
    return tuple(np.asarray(a).astype(dtype) if np.asarray(a).dtype.kind == "f" else a
                 for a in args)


def check_values(case, data):
    """On plain arrays, and as jvp's primal, fn(funcgrad.numpy) computes fn(numpy)."""
    args, static = case.draw(data)
    theirs = case.fn(np, *args, **static)
    _assert_like(case.fn(fnp, *args, **static), theirs, case.rtol, case.atol)
    f, dyn, _ = _closed(case, args, static)
    if case.diff and dyn:
        traced = funcgrad.jvp(f, tuple(dyn), tuple(np.zeros_like(a) for a in dyn))[0]
        _assert_like(traced, theirs, case.rtol, case.atol, "under jvp: ")


def check_case_grads(case, data):
    args, static = case.draw(data)
    f, dyn, _ = _closed(case, args, static)
    check_grads(f, dyn, order=case.order, **case.tol)


def check_float32(case, data):
    args, static = case.draw(data)
    args = list(_with_dtype(args, np.float32))
    f, dyn, _ = _closed(case, args, static)
    out = f(*dyn)
    if case.numpy:      # NumPy's dtype for float32 input (float64 where it promotes)
        with np.errstate(all="ignore"):
            want = case.fn(np, *args, **static)
        for o, w in zip(_leaves(out), _leaves(want)):
            assert np.asarray(o).dtype == np.asarray(w).dtype, \
                f"{case.name}: {np.asarray(o).dtype}, NumPy {np.asarray(w).dtype}"
    else:
        for o in _leaves(out):
            if o.dtype.kind in "fc":
                assert _is32(o.dtype), f"{case.name}: output dtype {o.dtype}"
    eager = [o.dtype for o in _leaves(out)]

    rng = np.random.default_rng(0)
    tangents = tuple(rng.standard_normal(np.shape(a)).astype(np.float32) for a in dyn)
    out, t_out = funcgrad.jvp(f, tuple(dyn), tangents)
    for o, t, e in zip(_leaves(out), _leaves(t_out), eager):
        if o.dtype.kind in "fc":
            assert o.dtype == e and t.dtype == o.dtype, \
                f"{case.name}: jvp primal {o.dtype} (eager {e}), tangent {t.dtype}"

    out, f_vjp = funcgrad.vjp(f, *dyn)
    ct = funcgrad.tree_util.tree_map(lambda o: np.ones(o.shape, o.dtype), out)
    for a, g in zip(dyn, f_vjp(ct)):
        assert g.dtype == np.float32 and g.shape == a.shape, \
            f"{case.name}: cotangent {g.dtype}{g.shape} for input float32{a.shape}"

    def scalar(*d):
        return sum(fnp.sum(fnp.real(o)) for o in _leaves(f(*d)))
    for a, g in zip(dyn, funcgrad.grad(scalar, argnums=tuple(range(len(dyn))))(*dyn)):
        assert g.dtype == np.float32 and g.shape == a.shape, \
            f"{case.name}: grad {g.dtype}{g.shape} for input float32{a.shape}"


def check_mixed_precision(case, data):
    """First argument float32, the others float64: outputs promote as in NumPy, and every
    cotangent comes back in its own input's dtype."""
    args, static = case.draw(data)
    args = list(args)
    first = _dyn(args)[0]
    args[first] = args[first].astype(np.float32)
    f, dyn, _ = _closed(case, args, static)
    out = f(*dyn)
    if case.numpy:
        for a, b in zip(_leaves(out), _leaves(case.fn(np, *args, **static))):
            assert np.result_type(a) == np.result_type(b)
    tangents = tuple(np.ones(np.shape(a), a.dtype) for a in dyn)
    _, t_out = funcgrad.jvp(f, tuple(dyn), tangents)
    for o, t in zip(_leaves(out), _leaves(t_out)):
        if o.dtype.kind in "fc":
            assert t.dtype == o.dtype, f"{case.name}: tangent {t.dtype} for output {o.dtype}"
    out, f_vjp = funcgrad.vjp(f, *dyn)
    ct = funcgrad.tree_util.tree_map(lambda o: np.ones(o.shape, o.dtype), out)
    for a, g in zip(dyn, f_vjp(ct)):
        assert g.dtype == a.dtype and g.shape == a.shape, \
            f"{case.name}: cotangent {g.dtype}{g.shape} for input {a.dtype}{a.shape}"


def check_dispatch(case, data):
    """Under jvp and grad, plain NumPy calls on tracers route to funcgrad.numpy."""
    args, static = case.draw(data)
    dyn_idx = _dyn(args)
    dyn = tuple(args[i] for i in dyn_idx)

    def with_(m, scalar):
        def f(*d):
            full = list(args)
            for i, v in zip(dyn_idx, d):
                full[i] = v
            out = case.fn(m, *full, **static)
            return sum(fnp.sum(fnp.sin(o) * o) for o in _leaves(out)) if scalar else out
        return f
    t = tuple(np.ones_like(a) for a in dyn)
    out_np, t_np = funcgrad.jvp(with_(np, False), dyn, t)
    out_f, t_f = funcgrad.jvp(with_(fnp, False), dyn, t)
    _assert_like(out_np, out_f, case.rtol, case.atol, "jvp primal: ")
    _assert_like(t_np, t_f, case.rtol, case.atol, "jvp tangent: ")
    nums = tuple(range(len(dyn)))
    g_np = funcgrad.grad(with_(np, True), argnums=nums)(*dyn)
    g_fnp = funcgrad.grad(with_(fnp, True), argnums=nums)(*dyn)
    for a, b in zip(g_np, g_fnp):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    _, s_np = funcgrad.jvp(with_(np, True), dyn, t)
    _, s_fnp = funcgrad.jvp(with_(fnp, True), dyn, t)
    np.testing.assert_allclose(s_np, s_fnp, rtol=1e-12, atol=1e-12)


def _py_kind(x):
    """What kind of leaf ``x`` is, for :func:`check_jit`: its Python type for a Python
    scalar; "array" for a NumPy scalar or 0-d array (jit may give either: same dtype);
    "ndarray" for an array of one or more dimensions."""
    if type(x) in (bool, int, float, complex):
        return type(x).__name__
    if isinstance(x, np.generic) or (isinstance(x, np.ndarray) and x.ndim == 0):
        return "array"
    return type(x).__name__


def _assert_same(got, want, what):
    """``got`` (jit's) is ``want`` (eager): the same containers and Python scalar types,
    leaves of the same shapes and dtypes, integers and booleans equal, floating values
    equal to a few ulp of the leaf's scale (the passes reassociate), NaNs in place."""
    g_leaves, g_tree = funcgrad.tree_util.tree_flatten(got)
    w_leaves, w_tree = funcgrad.tree_util.tree_flatten(want)
    assert g_tree == w_tree, f"{what}returns {g_tree}, eagerly {w_tree}"
    for k, (a, b) in enumerate(zip(g_leaves, w_leaves)):
        at = f"{what}leaf {k}: "
        assert _py_kind(a) == _py_kind(b), \
            f"{at}a {type(a).__name__} {a!r:.60}, eagerly a {type(b).__name__} {b!r:.60}"
        assert np.shape(a) == np.shape(b), f"{at}shape {np.shape(a)}, eagerly {np.shape(b)}"
        assert np.result_type(a) == np.result_type(b), \
            f"{at}dtype {np.result_type(a)}, eagerly {np.result_type(b)}"
        a, b = np.asarray(a), np.asarray(b)
        if b.dtype.kind not in "fc":
            np.testing.assert_array_equal(a, b, err_msg=at)
            continue
        rtol = 1e-5 if _is32(b.dtype) else 1e-12
        finite = np.abs(b[np.isfinite(b)])
        scale = float(finite.max()) if finite.size else 0.0
        np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * scale + 1e-300,
                                   equal_nan=True, err_msg=at)


def check_jit(case, data):
    """``funcgrad.jit`` of the function (array arguments passed, the rest closed over)
    gives the eager result on its first call (the trace) and on two more (the compiled
    replay, through the passes of compiler.py): the same containers, Python scalar
    types, shapes, dtypes and values; no call changes its inputs, no later call
    changes an earlier call's results, and no replayed result shares memory with an
    argument or another result where the traced call's does not. In float64; in float32 where it applies
    (Python-number constants folded by the passes must not promote it); and with the
    0-d floating arguments passed as Python floats, weakly typed under jit, where the
    function takes them (jit must read them as NumPy does: ``np.sin(2.0)`` is a float64
    that promotes float32, ``2.0 + 1.0`` a Python float)."""
    args, static = case.draw(data)
    _check_jit(case, list(args), static)
    if case.f32 and _dyn(args):
        _check_jit(case, list(_with_dtype(args, np.float32)), static, "float32: ")
    scalars = [i for i, a in enumerate(args)
               if isinstance(a, (np.ndarray, np.generic)) and a.ndim == 0 and a.dtype.kind == "f"]
    if scalars:
        py = [float(a) if i in scalars else a for i, a in enumerate(args)]
        try:
            with np.errstate(all="ignore"):
                case.fn(fnp, *py, **static)
        except Exception:       # noqa: BLE001 - an array method (x.reshape): not for floats
            return
        _check_jit(case, py, static, "Python floats: ", extra=scalars)


def _check_jit(case, args, static, what="", extra=()):
    arrays = sorted({i for i, a in enumerate(args) if isinstance(a, (np.ndarray, np.generic))}
                    | set(extra))
    before = [np.array(args[i], copy=True) for i in arrays]

    def unchanged(when):
        for i, b in zip(arrays, before):
            np.testing.assert_array_equal(args[i], b, err_msg=f"{what}{when} changed "
                                          f"argument {i}")

    with np.errstate(all="ignore"):
        want = case.fn(fnp, *args, **static)
    unchanged("the eager call")
    want_copy = funcgrad.tree_util.tree_map(
        lambda x: x.copy() if isinstance(x, np.ndarray) else x, want)

    def f(*d):
        full = list(args)
        for i, v in zip(arrays, d):
            full[i] = v
        return case.fn(fnp, *full, **static)
    f.__name__ = case.name
    jf = funcgrad.jit(f)
    outs = []
    for call in range(3):
        with np.errstate(all="ignore"):
            outs.append(jf(*[args[i] for i in arrays]))
        unchanged(f"jit's call {call + 1}")
        _assert_same(outs[-1], want, f"{what}jit's call {call + 1}: ")
    assert jf.cache_size() == 1, f"{what}jit compiled nothing: the later calls did not replay"
    for call, out in enumerate(outs):
        _assert_same(out, want_copy, f"{what}jit's call {call + 1}, after the later calls: ")
        _assert_no_new_sharing(out, outs[0], [args[i] for i in arrays],
                               f"{what}jit's call {call + 1}: ")


def _assert_no_new_sharing(out, want, inputs, what):
    """A replayed result of jit shares memory with an argument or with another result
    only where the traced call's does: the passes must not make results share
    (``x * 1.0`` folded to ``x``; two equal products merged), or writing into one would
    change another. (The traced call itself may return an argument where eager NumPy
    copies, ``tile(x, 1)``: funcgrad's arrays are values, a documented choice.)"""
    got = funcgrad.tree_util.tree_leaves(out)
    ref = funcgrad.tree_util.tree_leaves(want)
    if len(got) != len(ref):
        return                  # (_assert_same reports the structure)

    def shares(a, b):
        return (isinstance(a, np.ndarray) and isinstance(b, np.ndarray)
                and np.shares_memory(a, b))
    for j, (g, r) in enumerate(zip(got, ref)):
        for i, x in enumerate(inputs):
            assert not shares(g, x) or shares(r, x), (
                f"{what}result {j} shares memory with argument {i}; eagerly it does not")
        for k in range(j):
            assert not shares(g, got[k]) or shares(r, ref[k]), (
                f"{what}results {k} and {j} share memory; eagerly they do not")


# Examples per case and check; TABLE_EXAMPLES scales them all (default 6, the grads
# count of the first families' table).
_SCALE = int(os.environ.get("TABLE_EXAMPLES", os.environ.get("BATTERY_EXAMPLES", 6))) / 6


def _examples(k):
    return max(1, round(k * _SCALE))


def table_tests(cases, *, values=2, grads=6, float32=2, mixed=1, dispatch=2):
    """The five table tests over ``cases``, each case a parameter (its name the test id),
    with the given numbers of hypothesis examples per case."""
    names = [c.name for c in cases]
    assert len(set(names)) == len(names), "duplicate case names"

    def make(check, selected, examples):
        if not selected:
            return None         # no test rather than a skipped one
        @pytest.mark.parametrize("case", selected, ids=repr)
        @settings(max_examples=_examples(examples))
        @given(data=st.data())
        def test(case, data):
            check(case, data)
        test.__doc__ = check.__doc__
        return test

    diff = [c for c in cases if c.diff]
    return (make(check_values, [c for c in cases if c.numpy], values),
            make(check_case_grads, diff, grads),
            make(check_float32, [c for c in diff if c.f32], float32),
            make(check_mixed_precision, [c for c in diff if c.f32 and c.mixed], mixed),
            make(check_dispatch, [c for c in diff if c.dispatch and c.numpy], dispatch))


def jit_table_test(cases, examples=1):
    """The sixth table test, ``test_jit_matches`` (:func:`check_jit`) over ``cases``
    (those with no ``jit`` reason to differ), ``examples`` hypothesis examples per case:
    a family opts in with ``test_jit_matches = table.jit_table_test(CASES)``."""
    names = [c.name for c in cases]
    assert len(set(names)) == len(names), "duplicate case names"
    selected = [c for c in cases if not c.jit]
    if not selected:
        return None

    @pytest.mark.parametrize("case", selected, ids=repr)
    @settings(max_examples=_examples(examples))
    @given(data=st.data())
    def test_jit_matches(case, data):
        check_jit(case, data)
    test_jit_matches.__doc__ = check_jit.__doc__
    return test_jit_matches


# --------------------------------------------------------------------------------------
# Helpers for targeted tests


def _eager_and_traced(f, x):
    """``f(x)`` on the plain array (NumPy's own function may run) and on a tracer (the
    composite runs): both must raise alike."""
    return [lambda: f(x), lambda: funcgrad.jvp(f, (x,), (np.ones_like(x),))]

"""funcgrad.numpy's indexing helpers and joining/reordering functions
(funcgrad/_src/prims/manipulation.py): take, put_along_axis, compress, choose, select,
tile, repeat, pad, flip, roll, rot90, diag*, tri*, meshgrid, append/insert/delete,
resize.

Each ``Case`` draws its differentiable float64 arguments and its static arguments
(shapes, axes, indices...) with hypothesis and runs through the table checks of
``tests/funcgrad/table.py`` (values against NumPy eagerly and under jvp, check_grads to
order 2, float32, NumPy dispatch); then targeted tests: repeated indices, errors.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import strategies as st

import funcgrad
import funcgrad.numpy as fnp

from . import table
from .table import _axis, _eager_and_traced, _normal, _rng, _shape


def Case(*args, **kw):
    """A table case; these composites are compared with NumPy to 1e-10."""
    return table.Case(*args, **{"rtol": 1e-10, **kw})


def _ax_case(*args, **kw):
    return table._ax_case(*args, **{"rtol": 1e-10, **kw})


# ---- indexing ------------------------------------------------------------------------------


def _draw_take(mode):
    def draw(d):
        shape = _shape(d)
        axis = _axis(d, len(shape), allow_none=True)
        n = int(np.prod(shape)) if axis is None else shape[axis]
        lo, hi = (-n, n - 1) if mode == "raise" else (-2 * n, 2 * n)
        ishape = _shape(d, min_nd=0, max_nd=2, hi=3)
        idx = np.asarray(d.draw(st.lists(st.integers(lo, hi), min_size=int(np.prod(ishape)),
                                         max_size=int(np.prod(ishape))))).reshape(ishape)
        return (_normal(_rng(d), shape),), {"axis": axis, "idx": idx}
    return draw


def _draw_along(d):
    shape = _shape(d)
    axis = _axis(d, len(shape))
    rng = _rng(d)
    ishape = [s if d.draw(st.booleans()) else 1 for s in shape]
    ishape[axis] = d.draw(st.integers(1, 4))
    n = shape[axis]
    idx = rng.integers(-n, n, size=ishape)
    return (rng.standard_normal(shape),), {"axis": axis, "idx": idx}


def _draw_put(d):
    (x,), st_ = _draw_along(d)
    idx = st_["idx"]
    full = np.broadcast_shapes(idx.shape, tuple(
        1 if i == st_["axis"] % x.ndim else s for i, s in enumerate(x.shape)))
    v = _rng(d).standard_normal(full)
    return (x, v), st_


def _put_along(m, x, v, idx, axis):
    if m is np:
        x = np.array(x, copy=True)
        np.put_along_axis(x, idx, v, axis)
        return x
    return fnp.put_along_axis(x, idx, v, axis)


def _draw_compress(d):
    shape = _shape(d)
    axis = _axis(d, len(shape), allow_none=True)
    n = int(np.prod(shape)) if axis is None else shape[axis]
    cond = np.asarray(d.draw(st.lists(st.booleans(), min_size=1, max_size=n)))
    return (_normal(_rng(d), shape),), {"axis": axis, "cond": cond}


def _draw_choose(d):
    shape = _shape(d, max_nd=2)
    rng = _rng(d)
    mode = d.draw(st.sampled_from(["raise", "wrap", "clip"]))
    a = rng.integers(0, 3, shape) if mode == "raise" else rng.integers(-4, 7, shape)
    cshape = tuple(s if d.draw(st.booleans()) else 1 for s in shape)
    return (rng.standard_normal(shape), rng.standard_normal(cshape),
            rng.standard_normal(shape[-1:])), {"a": a, "mode": mode}


def _draw_select(d):
    shape = _shape(d, max_nd=2)
    rng = _rng(d)
    conds = [rng.random(shape) < 0.4, rng.random(shape[-1:]) < 0.5]
    return (rng.standard_normal(shape), rng.standard_normal(shape)), {"conds": conds}


# ---- joining and reshaping -------------------------------------------------------------------


def _draw_tile(d):
    shape = _shape(d, min_nd=0)
    reps = tuple(d.draw(st.lists(st.integers(1, 3), min_size=1, max_size=3)))
    return (_normal(_rng(d), shape),), {"reps": reps}


def _draw_repeat(d):
    shape = _shape(d)
    axis = _axis(d, len(shape), allow_none=True)
    n = int(np.prod(shape)) if axis is None else shape[axis]
    if d.draw(st.booleans()):
        rep = d.draw(st.integers(0, 3))
    else:
        rep = np.asarray(d.draw(st.lists(st.integers(0, 3), min_size=n, max_size=n)))
    return (_normal(_rng(d), shape),), {"axis": axis, "rep": rep}


_PAD_MODES = [("constant", {"constant_values": 1.5}), ("constant", {"constant_values": ((1, 2),)}),
              ("edge", {}), ("reflect", {}), ("reflect", {"reflect_type": "odd"}),
              ("symmetric", {}), ("symmetric", {"reflect_type": "odd"}), ("wrap", {}),
              ("linear_ramp", {"end_values": (-1.0, 2.0)}), ("maximum", {}),
              ("minimum", {"stat_length": 2}), ("mean", {"stat_length": ((1, 3),)}),
              ("median", {}), ("empty", {})]


def _draw_pad(d):
    shape = _shape(d, max_nd=2)
    mode, kw = d.draw(st.sampled_from(_PAD_MODES))
    form = d.draw(st.integers(0, 2))
    if form == 0:
        width = d.draw(st.integers(0, 5))
    elif form == 1:
        width = tuple(d.draw(st.lists(st.integers(0, 5), min_size=2, max_size=2)))
    else:
        width = tuple(tuple(d.draw(st.lists(st.integers(0, 5), min_size=2, max_size=2)))
                      for _ in shape)
    if mode == "mean":
        kw = {"stat_length": ((1, 3),) * len(shape)}
    if mode == "constant" and "constant_values" in kw and kw["constant_values"] != 1.5:
        kw = {"constant_values": ((1, 2),) * len(shape)}
    return (_normal(_rng(d), shape),), {"width": width, "mode": mode, "kw": kw}


def _pad(m, x, width, mode, kw):
    out = m.pad(x, width, mode=mode, **kw)
    if mode == "empty":
        # the padding is uninitialised memory (NumPy's and ours): compare the copy of x
        out = m.where(np.pad(np.ones(x.shape, bool), width), out, 0.0)
    return out


def _draw_pad_traced_constant(d):
    shape = _shape(d, max_nd=2)
    width = d.draw(st.integers(0, 3))
    rng = _rng(d)
    return (rng.standard_normal(shape), rng.standard_normal(())), {"width": width}


def _draw_flip(d):
    shape = _shape(d)
    nd = len(shape)
    axis = d.draw(st.one_of(st.none(), st.integers(-nd, nd - 1),
                            st.sets(st.integers(0, nd - 1)).map(tuple)))
    return (_normal(_rng(d), shape),), {"axis": axis}


def _draw_roll(d):
    shape = _shape(d)
    nd = len(shape)
    if d.draw(st.booleans()):
        axis, shift = None, d.draw(st.integers(-7, 7))
    else:
        k = d.draw(st.integers(1, 3))
        axis = tuple(d.draw(st.lists(st.integers(-nd, nd - 1), min_size=k, max_size=k)))
        shift = tuple(d.draw(st.lists(st.integers(-7, 7), min_size=k, max_size=k)))
    return (_normal(_rng(d), shape),), {"axis": axis, "shift": shift}


def _draw_rot90(d):
    shape = _shape(d, min_nd=2)
    nd = len(shape)
    a0 = d.draw(st.integers(-nd, nd - 1))
    a1 = d.draw(st.integers(-nd, nd - 1).filter(lambda a: a % nd != a0 % nd))
    return (_normal(_rng(d), shape),), {"k": d.draw(st.integers(-3, 5)), "axes": (a0, a1)}


def _draw_diagonal(d):
    shape = _shape(d, min_nd=2)
    nd = len(shape)
    a1 = d.draw(st.integers(-nd, nd - 1))
    a2 = d.draw(st.integers(-nd, nd - 1).filter(lambda a: a % nd != a1 % nd))
    return (_normal(_rng(d), shape),), {"offset": d.draw(st.integers(-3, 3)), "a1": a1, "a2": a2}


def _draw_diag(d):
    shape = _shape(d, max_nd=2)
    return (_normal(_rng(d), shape),), {"k": d.draw(st.integers(-3, 3))}


def _draw_tri(d):
    shape = _shape(d, max_nd=3)
    return (_normal(_rng(d), shape),), {"k": d.draw(st.integers(-3, 3))}


def _draw_meshgrid(d):
    n = d.draw(st.integers(1, 3))
    rng = _rng(d)
    xs = tuple(rng.standard_normal(d.draw(st.integers(1, 4))) for _ in range(n))
    return xs, {"indexing": d.draw(st.sampled_from(["xy", "ij"])), "sparse": d.draw(st.booleans())}


def _draw_append(d):
    shape = _shape(d)
    rng = _rng(d)
    axis = _axis(d, len(shape), allow_none=True)
    if axis is None:
        vshape = _shape(d, min_nd=0)
    else:
        vshape = list(shape)
        vshape[axis] = d.draw(st.integers(1, 3))
    return (rng.standard_normal(shape), rng.standard_normal(tuple(vshape))), {"axis": axis}


def _draw_insert(d):
    shape = _shape(d)
    rng = _rng(d)
    axis = _axis(d, len(shape), allow_none=True)
    n = int(np.prod(shape)) if axis is None else shape[axis]
    kind = d.draw(st.sampled_from(["int", "list", "slice"]))
    if kind == "int":
        obj = d.draw(st.integers(-n, n))
        vshape = () if d.draw(st.booleans()) else (1,)
    elif kind == "list":
        k = d.draw(st.integers(1, 3))
        obj = d.draw(st.lists(st.integers(0, n), min_size=k, max_size=k))
        vshape = (k,) if axis is None else ()
    else:
        obj = slice(0, n, 2)
        vshape = ()
    return (rng.standard_normal(shape), rng.standard_normal(vshape)), {"obj": obj, "axis": axis}


def _draw_delete(d):
    shape = _shape(d)
    axis = _axis(d, len(shape), allow_none=True)
    n = int(np.prod(shape)) if axis is None else shape[axis]
    kind = d.draw(st.sampled_from(["int", "list", "slice", "mask"]))
    if kind == "int":
        obj = d.draw(st.integers(-n, n - 1))
    elif kind == "list":
        obj = d.draw(st.lists(st.integers(0, n - 1), max_size=3))
    elif kind == "slice":
        obj = slice(d.draw(st.integers(0, n)), None, d.draw(st.integers(1, 2)))
    else:
        obj = np.asarray(d.draw(st.lists(st.booleans(), min_size=n, max_size=n)))
    return (_normal(_rng(d), shape),), {"obj": obj, "axis": axis}


def _draw_resize(d):
    return (_normal(_rng(d), _shape(d)),), {"new": _shape(d, min_nd=0)}


CASES = [
    # indexing
    Case("take", _draw_take("raise"), lambda m, x, axis, idx: m.take(x, idx, axis=axis)),
    Case("take_wrap", _draw_take("wrap"),
         lambda m, x, axis, idx: m.take(x, idx, axis=axis, mode="wrap")),
    Case("take_clip", _draw_take("clip"),
         lambda m, x, axis, idx: m.take(x, idx, axis=axis, mode="clip")),
    Case("take_along_axis", _draw_along,
         lambda m, x, axis, idx: m.take_along_axis(x, idx, axis=axis)),
    _ax_case("take_along_axis_argsort",
             lambda m, x, axis: m.take_along_axis(x, m.argsort(x, axis=axis), axis=axis)),
    Case("put_along_axis", _draw_put, _put_along, dispatch=False, mixed=True),
    Case("compress", _draw_compress, lambda m, x, axis, cond: m.compress(cond, x, axis=axis)),
    Case("choose", _draw_choose, lambda m, x, y, z, a, mode: m.choose(a, [x, y, z], mode=mode),
         mixed=True),
    Case("select", _draw_select, lambda m, x, y, conds: m.select(conds, [x, y], default=0.5),
         mixed=True),
    # joining and reshaping
    Case("tile", _draw_tile, lambda m, x, reps: m.tile(x, reps)),
    Case("repeat", _draw_repeat, lambda m, x, axis, rep: m.repeat(x, rep, axis=axis)),
    Case("pad", _draw_pad, _pad),
    Case("pad_traced_constant", _draw_pad_traced_constant,
         lambda m, x, c, width: m.pad(x, width, constant_values=c), mixed=True),
    Case("flip", _draw_flip, lambda m, x, axis: m.flip(x, axis=axis)),
    Case("fliplr", lambda d: ((_normal(_rng(d), _shape(d, min_nd=2)),), {}),
         lambda m, x: m.fliplr(x)),
    Case("flipud", lambda d: ((_normal(_rng(d), _shape(d)),), {}), lambda m, x: m.flipud(x)),
    Case("roll", _draw_roll, lambda m, x, axis, shift: m.roll(x, shift, axis=axis)),
    Case("rot90", _draw_rot90, lambda m, x, k, axes: m.rot90(x, k, axes)),
    Case("diag", _draw_diag, lambda m, x, k: m.diag(x, k)),
    Case("diagflat", _draw_diag, lambda m, x, k: m.diagflat(x, k)),
    Case("diagonal", _draw_diagonal,
         lambda m, x, offset, a1, a2: m.diagonal(x, offset, a1, a2)),
    Case("trace", _draw_diagonal, lambda m, x, offset, a1, a2: m.trace(x, offset, a1, a2)),
    Case("tril", _draw_tri, lambda m, x, k: m.tril(x, k)),
    Case("triu", _draw_tri, lambda m, x, k: m.triu(x, k)),
    Case("meshgrid", _draw_meshgrid,
         lambda m, *xs, indexing, sparse: m.meshgrid(*xs, indexing=indexing, sparse=sparse)),
    Case("append", _draw_append, lambda m, x, v, axis: m.append(x, v, axis=axis), mixed=True),
    Case("insert", _draw_insert, lambda m, x, v, obj, axis: m.insert(x, obj, v, axis=axis),
         mixed=True),
    Case("delete", _draw_delete, lambda m, x, obj, axis: m.delete(x, obj, axis=axis)),
    Case("resize", _draw_resize, lambda m, x, new: m.resize(x, new)),
]

(test_values_match_numpy, test_grads, test_float32, test_mixed_precision,
 test_numpy_dispatch) = table.table_tests(CASES, values=12, grads=12, float32=4, dispatch=2)
test_jit_matches = table.jit_table_test(CASES)


def test_take_repeated_indices_accumulate():
    g = funcgrad.grad(lambda x: fnp.sum(fnp.take(x, [0, 0, 2, -1])))(np.arange(4.0))
    np.testing.assert_array_equal(g, [2.0, 0.0, 1.0, 1.0])


def test_take_out_of_range_raises_index_error():
    for run in _eager_and_traced(lambda x: fnp.take(x, [3]), np.arange(3.0)):
        with pytest.raises(IndexError, match="out of bounds"):
            run()
    for run in _eager_and_traced(lambda x: fnp.take(x, [0], out=np.zeros(1)), np.arange(3.0)):
        with pytest.raises(TypeError, match="out="):
            run()


def test_put_along_axis_last_write_wins_and_gets_the_gradient():
    x = np.zeros((1, 3))
    v = np.array([[1.0, 2.0, 3.0]])
    idx = np.array([[1, 1, 2]])
    f = lambda x, v: fnp.put_along_axis(x, idx, v, axis=1)  # noqa: E731
    np.testing.assert_array_equal(f(x, v), [[0.0, 2.0, 3.0]])
    gx, gv = funcgrad.grad(lambda x, v: fnp.sum(f(x, v) * np.array([1.0, 10.0, 100.0])),
                           argnums=(0, 1))(x, v)
    np.testing.assert_array_equal(gx, [[1.0, 0.0, 0.0]])
    np.testing.assert_array_equal(gv, [[0.0, 10.0, 100.0]])


def test_index_passthroughs_match_numpy():
    ones = np.ones
    pairs = [(fnp.diag_indices(3), np.diag_indices(3)),
             (fnp.tril_indices(4, -1), np.tril_indices(4, -1)),
             (fnp.triu_indices(3, 1, 5), np.triu_indices(3, 1, 5)),
             (fnp.tril_indices_from(ones((3, 4))), np.tril_indices_from(ones((3, 4)))),
             (fnp.triu_indices_from(ones((3, 3)), 1), np.triu_indices_from(ones((3, 3)), 1)),
             (fnp.diag_indices_from(ones((2, 2, 2))), np.diag_indices_from(ones((2, 2, 2)))),
             (fnp.unravel_index([5, 7], (3, 4)), np.unravel_index([5, 7], (3, 4))),
             ((fnp.ravel_multi_index(([1, 2], [0, 3]), (3, 4)),),
              (np.ravel_multi_index(([1, 2], [0, 3]), (3, 4)),))]
    for got, want in pairs:
        for g, w in zip(got, want):
            np.testing.assert_array_equal(g, w)


def test_index_helpers_work_on_tracers():
    x = np.arange(9.0).reshape(3, 3)

    def f(x):
        rows, cols = fnp.triu_indices_from(x, 1)
        return fnp.sum(x[rows, cols] ** 2)
    g = funcgrad.grad(f)(x)
    np.testing.assert_array_equal(g, np.triu(2 * x, 1))


def test_pad_traced_constant_gets_the_gradient():
    g = funcgrad.grad(lambda c: fnp.sum(fnp.pad(np.ones((2, 3)), 1, constant_values=c)))(0.5)
    assert g == 4 * 5 - 6


def test_pad_rejects_unsupported_arguments():
    with pytest.raises(ValueError, match="mode"):
        fnp.pad(np.ones(3), 1, mode=lambda *a: None)
    with pytest.raises(ValueError, match="keyword"):
        fnp.pad(np.ones(3), 1, mode="edge", constant_values=2)
    with pytest.raises(ValueError, match="empty axis"):
        funcgrad.grad(lambda x: fnp.sum(fnp.pad(x, ((0, 0), (1, 1)), mode="edge")))(np.ones((2, 0)))

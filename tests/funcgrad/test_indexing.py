"""Indexing (funcgrad/_src/prims/indexing.py): getitem with every kind of index, and the
functional updates at(x)[idx].set/add/multiply/divide/power/min/max/get.

Every case runs through the table checks of ``tests/funcgrad/table.py`` (values against
NumPy, check_grads to order 2, float32, mixed precision, NumPy dispatch).
"""
from __future__ import annotations

import numpy as np
import pytest

import funcgrad
import funcgrad.numpy as fnp

from . import table
from .table import _grid0, _grid1, _nonzero, _pos, _real, fixed

# NumPy's own astype(complex -> real) warns; funcgrad's takes the real part on purpose.
pytestmark = pytest.mark.filterwarnings("ignore::numpy.exceptions.ComplexWarning")

CASES: list[table.Case] = []


def spec(name, fn, domains, shapes, **kw):
    CASES.append(table.spec(name, fn, domains, shapes, **kw))


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


(test_values_match_numpy, test_grads, test_float32, test_mixed_precision,
 test_numpy_dispatch) = table.table_tests(CASES)
test_jit_matches = table.jit_table_test(CASES)


def test_integer_index_and_mask_get_no_gradient():
    x = np.array([1.5, -2.0], np.float32)
    k = np.array([1, 0])
    g = funcgrad.grad(lambda x, k: fnp.sum(x[k] * fnp.where(x > 0, x, 0)))(x, k)
    assert g.dtype == np.float32
    np.testing.assert_allclose(g, [-2.0, 1.5])  # d/dx of x[1] * x[0] (x[1] < 0 is masked)


def test_scatter_add_rows_as_np_add_at():
    """``x.at[i].add(v)`` with one integer array on the first axis (an embedding's
    gradient: repeated, negative indices) sums as ``np.add.at`` does, in float32 and
    float64, for 1-D and N-D rows; out-of-range indices still raise."""
    import funcgrad
    import funcgrad.numpy as fnp
    rng = np.random.default_rng(0)
    for dt in (np.float32, np.float64):
        for rest in ((), (3,), (2, 3)):
            x = rng.normal(size=(6,) + rest).astype(dt)
            i = rng.integers(-6, 6, size=(4, 5))
            v = rng.normal(size=(4, 5) + rest).astype(dt)
            want = x.copy()
            np.add.at(want, i, v)
            got = funcgrad.jit(lambda x, v: x.at[i].add(v))(x, v)
            assert got.dtype == dt
            tol = 1e-6 if dt == np.float32 else 1e-13     # (x + sum) vs ((x + v1) + v2)
            np.testing.assert_allclose(got, want, rtol=tol, atol=tol)
    # the embedding's gradient: a sum over each row's occurrences
    w = rng.normal(size=(5, 3))
    ids = np.array([[0, 4, 4], [4, -1, 2]])
    g = funcgrad.grad(lambda w: fnp.sum(w[ids] * np.arange(18.0).reshape(2, 3, 3)))(w)
    want = np.zeros_like(w)
    np.add.at(want, ids, np.arange(18.0).reshape(2, 3, 3))
    np.testing.assert_array_equal(g, want)
    with pytest.raises(IndexError):
        funcgrad.jit(lambda x: x.at[np.array([0, 9])].add(1.0))(np.zeros((3, 2)))

"""Reductions (funcgrad/_src/prims/reductions.py): sum, mean, prod, max/min, var/std
over every axis form, keepdims, ddof, initial and where=; then max/min ties.

Every case runs through the table checks of ``tests/funcgrad/table.py`` (values against
NumPy, check_grads to order 2, float32, mixed precision, NumPy dispatch).
"""
from __future__ import annotations

import numpy as np
import pytest

import funcgrad
import funcgrad.numpy as fnp

from . import table
from .table import _distinct, _mask, _nonzero, _real, fixed, same

# NumPy's own astype(complex -> real) warns; funcgrad's takes the real part on purpose.
pytestmark = pytest.mark.filterwarnings("ignore::numpy.exceptions.ComplexWarning")

CASES: list[table.Case] = []


def spec(name, fn, domains, shapes, **kw):
    CASES.append(table.spec(name, fn, domains, shapes, **kw))


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


(test_values_match_numpy, test_grads, test_float32, test_mixed_precision,
 test_numpy_dispatch) = table.table_tests(CASES)
test_jit_matches = table.jit_table_test(CASES)


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

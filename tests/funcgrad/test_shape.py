"""Shape functions (funcgrad/_src/prims/shape.py): reshape, transpose, moveaxis,
expand_dims/squeeze, broadcasting, atleast_*d, joining and splitting, astype.

Every case runs through the table checks of ``tests/funcgrad/table.py`` (values against
NumPy, check_grads to order 2, float32, mixed precision, NumPy dispatch).
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import strategies as st


from . import table
from .table import _c, _frac, _real, _shp, bcast, fixed, same, vary_axis

# NumPy's own astype(complex -> real) warns; funcgrad's takes the real part on purpose.
pytestmark = pytest.mark.filterwarnings("ignore::numpy.exceptions.ComplexWarning")

CASES: list[table.Case] = []


def spec(name, fn, domains, shapes, **kw):
    CASES.append(table.spec(name, fn, domains, shapes, **kw))


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


(test_values_match_numpy, test_grads, test_float32, test_mixed_precision,
 test_numpy_dispatch) = table.table_tests(CASES)
test_jit_matches = table.jit_table_test(CASES)


def test_split_cotangent_is_one_concatenate():
    """``split`` is one primitive: the parts' cotangents are joined by one concatenate
    (not a scatter-add into zeros per part and their sum), parts without one count as
    zeros, and its derivatives agree with finite differences under jvp, vjp and vmap."""
    import funcgrad
    import funcgrad.numpy as fnp
    from funcgrad.test_util import check_grads

    def f(x):
        a, b, c = fnp.split(x, [1, 3], axis=-1)
        return fnp.sum(fnp.sin(a) * 2.0) + fnp.sum(b ** 2)     # c unused: a zero part

    x = np.random.default_rng(0).normal(size=(3, 5))
    check_grads(f, (x,), order=2)
    low = funcgrad.jit(funcgrad.grad(f)).lower(x)
    names = [e.prim.name for e in low.eqns]
    assert names.count("concatenate") == 1 and "scatter" not in names, low.as_text()
    g = funcgrad.grad(f)(x)
    want = np.concatenate([2 * np.cos(x[:, :1]), 2 * x[:, 1:3], np.zeros((3, 2))], axis=-1)
    np.testing.assert_allclose(g, want, rtol=1e-12)
    np.testing.assert_allclose(funcgrad.vmap(funcgrad.grad(f))(x[:, None]), want[:, None],
                               rtol=1e-12)

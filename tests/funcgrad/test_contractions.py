"""Contractions (funcgrad/_src/prims/contractions.py): matmul in every rank
combination, dot, vdot, inner, outer, tensordot and einsum.

Every case runs through the table checks of ``tests/funcgrad/table.py`` (values against
NumPy, check_grads to order 2, float32, mixed precision, NumPy dispatch).
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import strategies as st

import funcgrad
import funcgrad.numpy as fnp
from funcgrad._src.prims import contractions


from . import table
from .table import _real, _shp, fixed, matmul_shapes

# NumPy's own astype(complex -> real) warns; funcgrad's takes the real part on purpose.
pytestmark = pytest.mark.filterwarnings("ignore::numpy.exceptions.ComplexWarning")

CASES: list[table.Case] = []


def spec(name, fn, domains, shapes, **kw):
    CASES.append(table.spec(name, fn, domains, shapes, **kw))


# ---- contractions --------------------------------------------------------------------
spec("matmul", lambda m, a, b: m.matmul(a, b), [_real] * 2, matmul_shapes(2, 2))
spec("matmul_vec_vec", lambda m, a, b: m.matmul(a, b), [_real] * 2, matmul_shapes(1, 1))
spec("matmul_vec_mat", lambda m, a, b: m.matmul(a, b), [_real] * 2, matmul_shapes(1, 2))
spec("matmul_mat_vec", lambda m, a, b: m.matmul(a, b), [_real] * 2, matmul_shapes(2, 1))
# an N-D @ 2-D product runs as one 2-D product over the merged leading axes, in the
# axes' memory order: C-ordered, with the leading axes swapped (a time-major view), and
# with a leading axis that cannot merge (a strided slice: NumPy's stacked product)
spec("matmul_nd_mat", lambda m, a, b: a @ b, [_real] * 2, fixed((2, 3, 4), (4, 2)))
spec("matmul_nd_mat_swapped", lambda m, a, b: m.swapaxes(a, 0, 1) @ b, [_real] * 2,
     fixed((3, 2, 4), (4, 2)))
spec("matmul_nd_mat_permuted", lambda m, a, b: m.transpose(a, (2, 0, 1, 3)) @ b,
     [_real] * 2, fixed((2, 1, 3, 4), (4, 3)))
spec("matmul_nd_mat_strided", lambda m, a, b: a[:, ::2] @ b, [_real] * 2,
     fixed((2, 5, 3), (3, 2)))
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


(test_values_match_numpy, test_grads, test_float32, test_mixed_precision,
 test_numpy_dispatch) = table.table_tests(CASES)
test_jit_matches = table.jit_table_test(CASES)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_nd_at_2d_is_one_product_with_numpys_values(dtype):
    """The merged product gives NumPy's values and dtype for every layout of the leading
    axes: C-ordered, permuted, size 1, broadcast (stride 0, left to NumPy), empty."""
    rng = np.random.default_rng(0)
    b = rng.standard_normal((5, 3)).astype(dtype)
    base = rng.standard_normal((4, 6, 2, 5)).astype(dtype)
    layouts = [base, base.transpose(1, 0, 2, 3), base.transpose(2, 1, 0, 3),
               base[:, :1], np.broadcast_to(base[:1], (3, 6, 2, 5)), base[:0],
               base.reshape(48, 5)[:, None, :]]
    for a in layouts:
        want = np.matmul(a, b)
        got = fnp.matmul(a, b)
        assert got.dtype == want.dtype and got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=1e-5 if dtype == np.float32 else 1e-12)
        jitted = funcgrad.jit(lambda x, y: x @ y)(a, b)
        np.testing.assert_allclose(jitted, want, rtol=1e-5 if dtype == np.float32 else 1e-12)


def test_nd_at_2d_swapped_view_layouts():
    """A (L, N, k) view of an (N, L, k) array times a (k, n) matrix: with k > n it runs as
    one product on the array it views (the result the matching view of an (N, L, n)
    product); with k <= n the view is copied first and the result is C-ordered (a scan
    reading it by rows reads contiguous rows)."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((4, 6, 3))
    for n, contiguous in ((2, False), (3, True), (5, True)):
        w = rng.standard_normal((3, n))
        out = contractions.matmul_p.impl(np.swapaxes(x, 0, 1), w)
        assert out.shape == (6, 4, n) and out.flags.c_contiguous == contiguous
        if not contiguous:
            assert np.swapaxes(out, 0, 1).flags.c_contiguous
        np.testing.assert_allclose(out, np.matmul(np.swapaxes(x, 0, 1), w), rtol=1e-12)


def test_nd_at_2d_on_a_foreign_array_module():
    """The merged product uses array methods only: on a CuPy-like stand-in (which refuses
    any conversion to NumPy) both layouts of a time-major view give NumPy's values."""
    from funcgrad._src.testing_backend import StandInArray, standin_xp
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4, 6, 3))
    for n in (2, 5):
        w = rng.standard_normal((3, n))
        out = contractions.matmul_p.impl(standin_xp.swapaxes(StandInArray(x), 0, 1),
                                         StandInArray(w))
        assert isinstance(out, StandInArray)
        np.testing.assert_allclose(out.get(), np.matmul(np.swapaxes(x, 0, 1), w), rtol=1e-12)

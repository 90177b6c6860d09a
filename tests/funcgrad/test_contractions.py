"""Contractions (funcgrad/_src/prims/contractions.py): matmul in every rank
combination, dot, vdot, inner, outer, tensordot and einsum.

Every case runs through the table checks of ``tests/funcgrad/table.py`` (values against
NumPy, check_grads to order 2, float32, mixed precision, NumPy dispatch).
"""
from __future__ import annotations

import pytest
from hypothesis import strategies as st


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

"""funcgrad.numpy.r_ and c_ against NumPy's, and their derivatives through concatenate."""
import numpy as np
import pytest

import funcgrad
import funcgrad.numpy as fnp
from funcgrad.errors import FuncgradTypeError, FuncgradValueError
from funcgrad.test_util import check_grads

A = np.array([1.0, 2.0])
B = np.array([3.0, 4.0])
M = np.arange(6.0).reshape(2, 3)

CASES = {
    "slice": lambda m, a, b: m.r_[0:3],
    "slice_step": lambda m, a, b: m.r_[5:0:-2],
    "arrays_and_scalar": lambda m, a, b: m.r_[a, b, 1.0],
    "linspace_slice": lambda m, a, b: m.r_[-1:1:6j, a, 0, 0],
    "rows": lambda m, a, b: m.r_["0,2", a, b],
    "columns_by_directive": lambda m, a, b: m.r_["1,2,0", a, b],
    "axis_only": lambda m, a, b: m.r_["-1", M, M],
    "axis_1": lambda m, a, b: m.r_["1", M, M],
    "trans1d_last": lambda m, a, b: m.r_["0,3,-1", a],
    "trans1d_middle": lambda m, a, b: m.r_["0,3,1", a],
    "ndmin_2d_item": lambda m, a, b: m.r_["0,3,0", M],
    "c_vectors": lambda m, a, b: m.c_[a, b],
    "c_matrix_and_vector": lambda m, a, b: m.c_[M, a],
    "c_scalars": lambda m, a, b: m.c_[1.0, 2.0],
    "c_slice": lambda m, a, b: m.c_[0:2, a],
    "scalar_entries": lambda m, a, b: m.r_[a[0], b[1]],
    "list_entry": lambda m, a, b: m.r_[[1, 2], a],
    "int_promotion": lambda m, a, b: m.r_[np.int32(1), np.array([1, 2], np.int8)],
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_values_match_numpy(name):
    want = CASES[name](np, A, B)
    got = CASES[name](fnp, A, B)
    assert got.shape == want.shape and got.dtype == want.dtype
    np.testing.assert_allclose(got, want)


@pytest.mark.parametrize("name", ["arrays_and_scalar", "linspace_slice", "rows",
                                  "columns_by_directive", "trans1d_middle", "c_vectors",
                                  "c_matrix_and_vector", "c_slice", "scalar_entries"])
def test_traced_values_match_and_differentiate(name):
    f = CASES[name]
    np.testing.assert_allclose(funcgrad.jit(lambda a, b: f(fnp, a, b))(A, B), f(np, A, B))
    check_grads(lambda a, b: f(fnp, a, b) ** 2, (A, B), order=2)


def test_grad_collects_from_every_entry():
    g = funcgrad.grad(lambda a: fnp.sum(fnp.r_[a, 2 * a, a[0], 0:2] ** 2))(A)
    np.testing.assert_allclose(g, 2 * A + 8 * A + np.array([2 * A[0], 0.0]))


@pytest.mark.parametrize("key, err, match", [
    (("r", A), FuncgradValueError, "np.matrix"),
    (("c", A), FuncgradValueError, "np.matrix"),
    (("x,y", A), FuncgradValueError, "unknown directive"),
    (("0,1,2,3", A), FuncgradValueError, "unknown directive"),
    ((A, "0"), FuncgradValueError, "first entry"),
])
def test_unsupported_directives_raise(key, err, match):
    with pytest.raises(err, match=match):
        fnp.r_[key]


def test_traced_slice_bound_raises():
    with pytest.raises(FuncgradTypeError, match="slice bounds"):
        funcgrad.grad(lambda x: fnp.sum(fnp.r_[0:x]))(3.0)

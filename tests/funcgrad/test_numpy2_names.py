"""NumPy 2's names (array API aliases and new functions) and copy/block work on traced
values, through funcgrad.numpy and through plain ``numpy`` calls."""
import copy as _copy

import numpy as np
import pytest

import funcgrad
import funcgrad.numpy as fnp
from funcgrad.test_util import check_grads

X = np.random.default_rng(0).uniform(0.2, 0.8, size=(2, 3))

ALIASES = [("acos", "arccos"), ("asin", "arcsin"), ("atan", "arctan"),
           ("acosh", "arccosh"), ("asinh", "arcsinh"), ("atanh", "arctanh")]


@pytest.mark.parametrize("new, old", ALIASES)
def test_trig_aliases(new, old):
    x = X + 1.0 if new == "acosh" else X
    f = getattr(fnp, new)
    np.testing.assert_allclose(f(x), getattr(np, old)(x))
    check_grads(f, (x,), order=1)
    # plain numpy.acos on a tracer is routed too
    np.testing.assert_allclose(funcgrad.grad(lambda v: getattr(np, new)(v).sum())(x),
                               funcgrad.grad(lambda v: f(v).sum())(x))


def test_atan2_pow_concat_permute_dims():
    check_grads(fnp.atan2, (X, X.T.T + 0.1), order=1)
    np.testing.assert_allclose(fnp.pow(X, 2), X ** 2)
    assert fnp.concat([X, X], axis=1).shape == (2, 6)
    assert fnp.permute_dims(X, (1, 0)).shape == (3, 2)


def test_bitwise_names_and_shift_operators():
    i = np.arange(5)
    np.testing.assert_array_equal(fnp.bitwise_left_shift(i, 2), i << 2)
    np.testing.assert_array_equal(fnp.bitwise_right_shift(i, 1), i >> 1)
    np.testing.assert_array_equal(fnp.bitwise_invert(i), ~i)
    f = funcgrad.jit(lambda v: (np.bitwise_left_shift(v, 1), (v << 3) >> 1, 1 << v,
                                np.bitwise_invert(v)))
    for got, want in zip(f(i), (i << 1, (i << 3) >> 1, 1 << i, ~i)):
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(funcgrad.vmap(lambda v: v << 1)(i[:, None]), i[:, None] << 1)


def test_matrix_transpose_unstack_vecdot_cumulative():
    a = np.arange(24.).reshape(2, 3, 4)
    np.testing.assert_array_equal(fnp.matrix_transpose(a), np.matrix_transpose(a))
    for got, want in zip(fnp.unstack(a, axis=1), np.unstack(a, axis=1)):
        np.testing.assert_array_equal(got, want)
    g = funcgrad.grad(lambda v: np.unstack(v)[1].sum())(X)
    np.testing.assert_array_equal(g, [[0, 0, 0], [1, 1, 1]])
    check_grads(lambda v: fnp.matrix_transpose(v) * 2, (a,), order=1)
    np.testing.assert_allclose(fnp.vecdot(X, X), np.vecdot(X, X))
    np.testing.assert_allclose(fnp.cumulative_sum(X, axis=1), np.cumulative_sum(X, axis=1))
    np.testing.assert_allclose(fnp.cumulative_prod(X, axis=1), np.cumulative_prod(X, axis=1))


def test_matvec_vecmat():
    if not hasattr(np, "matvec"):
        pytest.skip("NumPy < 2.2")
    m = np.random.default_rng(1).normal(size=(4, 2, 3))
    v = np.random.default_rng(2).normal(size=(3,))
    w = np.random.default_rng(3).normal(size=(4, 2))
    np.testing.assert_allclose(fnp.matvec(m, v), np.matvec(m, v))
    np.testing.assert_allclose(fnp.vecmat(w, m), np.vecmat(w, m))
    check_grads(fnp.matvec, (m, v), order=1)
    np.testing.assert_allclose(funcgrad.vmap(np.matvec, in_axes=(0, None))(m, v),
                               np.matvec(m, v))


def test_copy_in_every_spelling():
    for f in (lambda x: np.copy(x) * 2, lambda x: fnp.copy(x) * 2,
              lambda x: (x * 1).copy() * 2, lambda x: _copy.deepcopy(x) * 2):
        np.testing.assert_array_equal(funcgrad.grad(lambda x: f(x).sum())(X), 2 * np.ones_like(X))
        np.testing.assert_array_equal(funcgrad.jit(f)(X), 2 * X)
        np.testing.assert_array_equal(funcgrad.vmap(f)(X), 2 * X)
    c = fnp.copy(X)
    assert c is not X and isinstance(c, np.ndarray)
    np.testing.assert_array_equal(c, X)


def test_block_matches_numpy_and_differentiates():
    a, b, c = np.ones((2, 2)), np.zeros((2, 1)), np.arange(3.).reshape(1, 3)
    np.testing.assert_array_equal(fnp.block([[a, b], [c]]), np.block([[a, b], [c]]))
    np.testing.assert_array_equal(fnp.block([1., np.array([2., 3.])]),
                                  np.block([1., np.array([2., 3.])]))
    np.testing.assert_array_equal(fnp.block([[1., 2.], [3., 4.]]), np.block([[1., 2.], [3., 4.]]))
    np.testing.assert_array_equal(fnp.block(a), np.block(a))
    w = np.arange(16.).reshape(4, 4)
    g = funcgrad.grad(lambda x: (np.block([[x, x], [x, x]]) * w).sum())(a)
    np.testing.assert_array_equal(g, w[:2, :2] + w[:2, 2:] + w[2:, :2] + w[2:, 2:])
    check_grads(lambda x, y: fnp.block([[x, y], [y, x]]), (a, a + 1.0), order=1)
    assert funcgrad.jit(lambda x: np.block([[x], [x]]))(a).shape == (4, 2)
    with pytest.raises(TypeError, match="tuple"):
        fnp.block([(a, a)])
    with pytest.raises(ValueError, match="depths"):
        fnp.block([[a], a])


def test_isdtype_is_numpys():
    assert fnp.isdtype is np.isdtype


def test_every_numpy2_alias_is_exported():
    names = ["acos", "acosh", "asin", "asinh", "atan", "atan2", "atanh", "pow", "concat",
             "permute_dims", "bitwise_left_shift", "bitwise_right_shift", "bitwise_invert",
             "matrix_transpose", "vecdot", "unstack", "cumulative_sum", "cumulative_prod",
             "astype", "isdtype", "copy", "block", "left_shift", "right_shift"]
    missing = [n for n in names if n not in fnp.__all__]
    assert not missing


def test_coverage_page_lists_the_aliases_as_supported():
    import pathlib
    page = (pathlib.Path(funcgrad.__file__).parent.parent / "docs" / "numpy-coverage.md")
    if not page.exists():
        pytest.skip("docs not shipped")
    rows = {line.split("|")[1].strip().strip("`"): line for line in page.read_text().splitlines()
            if line.startswith("| `")}
    for n in ("acos", "asin", "atan", "atan2", "copy", "block", "unstack",
              "bitwise_left_shift", "matrix_transpose"):
        assert "| yes |" in rows[n], rows[n]


@pytest.mark.parametrize("name", ["unique_values", "unique_counts", "unique_inverse",
                                  "unique_all"])
def test_unique_family_matches_numpy(name):
    x = np.array([[3., 1.], [1., 2.]])
    got, want = getattr(fnp, name)(x), getattr(np, name)(x)
    got = got if isinstance(got, tuple) else (got,)
    want = want if isinstance(want, tuple) else (want,)
    if len(want) > 1:
        assert got._fields == want._fields
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)
    # the values are gathered from x, so they carry its derivative (plain numpy routed)
    g = funcgrad.grad(lambda v: getattr(np, name)(v)[0].sum() if len(want) > 1
                      else getattr(np, name)(v).sum())(x)
    np.testing.assert_array_equal(g, [[1., 1.], [0., 1.]])


def test_linalg_cross():
    a, b = np.eye(3), np.array([1., 2., 3.])
    np.testing.assert_allclose(fnp.linalg.cross(a, b), np.linalg.cross(a, b))
    g = funcgrad.grad(lambda v: np.linalg.cross(v, np.array([0., 0., 1.])).sum())(b)
    np.testing.assert_allclose(g, [-1., 1., 0.])
    with pytest.raises(ValueError, match="3 components"):
        fnp.linalg.cross(np.ones(2), np.ones(2))

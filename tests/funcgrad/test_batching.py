"""vmap (funcgrad/_src/batching.py): axes and pytrees, per-example gradients, batching
rules against loops, the loop fallback, errors."""
import warnings

import numpy as np
import pytest

import funcgrad as fg
import funcgrad.numpy as fnp
from funcgrad import grad, jacfwd, jacrev, vmap
from funcgrad.errors import ConcretizationTypeError

A = np.random.default_rng(0).normal(size=(3, 3))


# ---- vmap ------------------------------------------------------------------------------
def test_vmap_axes_and_pytrees():
    x = np.arange(24.0).reshape(2, 3, 4)
    np.testing.assert_array_equal(vmap(fnp.sum, in_axes=1)(x), x.sum(axis=(0, 2)))
    np.testing.assert_array_equal(vmap(lambda r: r * 2, in_axes=-1, out_axes=1)(x),
                                  np.moveaxis(x * 2, -1, 1))
    out = vmap(lambda d: {"s": d["a"] + d["b"], "c": 1.0}, in_axes=({"a": 0, "b": None},))(
        {"a": np.ones((5, 2)), "b": np.arange(2.0)})
    assert out["s"].shape == (5, 2) and out["c"].shape == (5,)
    # nesting: outer product table
    t = vmap(vmap(lambda a, b: a * b, in_axes=(None, 0)), in_axes=(0, None))(
        np.arange(3.0), np.arange(4.0))
    np.testing.assert_array_equal(t, np.outer(np.arange(3.0), np.arange(4.0)))
    # axis_size with nothing mapped
    assert vmap(lambda: np.ones(2), axis_size=3)().shape == (3, 2)


def test_vmap_errors():
    with pytest.raises(ValueError, match="different sizes"):
        vmap(lambda a, b: a + b)(np.ones(3), np.ones(4))
    with pytest.raises(ValueError, match="in_axes has 1 entries"):
        vmap(lambda a, b: a + b, in_axes=(0,))(np.ones(3), np.ones(3))
    with pytest.raises(ConcretizationTypeError, match="vmap"):
        vmap(lambda a: a if a > 0 else -a)(np.ones(3))


def test_per_example_gradients():
    rng = np.random.default_rng(2)
    w = rng.normal(size=3)
    xs, ys = rng.normal(size=(6, 3)), rng.normal(size=6)

    def loss(w, x, y):
        return (fnp.dot(x, w) - y) ** 2

    per = vmap(grad(loss), in_axes=(None, 0, 0))(w, xs, ys)
    expected = np.stack([2 * (x @ w - y) * x for x, y in zip(xs, ys)])
    np.testing.assert_allclose(per, expected, rtol=1e-12)


def test_vmap_indexing_and_fallback_warning():
    x = np.arange(12.0).reshape(3, 4)
    np.testing.assert_array_equal(vmap(lambda r: r[np.array([3, 0])])(x), x[:, [3, 0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")         # batched integer indices need no loop
        np.testing.assert_array_equal(vmap(lambda r, i: r[i])(x, np.array([0, 1, 3])), [0, 5, 11])
        np.testing.assert_array_equal(
            vmap(lambda r, i: r[i])(x, np.array([[0, 1], [1, 1], [3, 2]])),
            [[0, 1], [5, 5], [11, 10]])
        np.testing.assert_array_equal(
            vmap(lambda r, i, v: fnp.at(r)[i].add(v))(x, np.array([[0, 0], [1, 2], [3, 3]]),
                                                       np.ones((3, 2))),
            x + np.array([[2, 0, 0, 0], [0, 1, 1, 0], [0, 0, 0, 2]]))
    # other layouts of batched indices fall back to the loop (warning once per primitive)
    from funcgrad._src.batching import fallback_primitives
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got = vmap(lambda r, i: r[:, i])(np.arange(24.0).reshape(2, 3, 4),
                                         np.array([[1, 2], [0, 3]]))
    np.testing.assert_array_equal(got[1], np.arange(12.0, 24.0).reshape(3, 4)[:, [0, 3]])
    assert "getitem" in fallback_primitives()


def test_jacobians_use_one_batched_pass():
    x = np.array([0.3, -0.7, 1.1])
    J = jacrev(lambda x: fnp.tanh(A @ x))(x)
    np.testing.assert_allclose(J, (1 - np.tanh(A @ x) ** 2)[:, None] * A, rtol=1e-12)
    np.testing.assert_allclose(jacfwd(lambda x: fnp.tanh(A @ x))(x), J, rtol=1e-12)


@pytest.mark.parametrize("sa,sb", [((3,), (3,)), ((3,), (3, 4)), ((2, 3), (3,)), ((2, 3), (3, 4)),
                                   ((5, 2, 3), (3,)), ((5, 2, 3), (3, 4)), ((3,), (5, 3, 4)),
                                   ((2, 3), (5, 3, 4)), ((5, 2, 3), (5, 3, 4))])
@pytest.mark.parametrize("axes", [(0, None), (None, 0), (0, 0), (1, None), (None, 1), (1, 1)])
def test_vmap_matmul_every_batching_case_matches_a_loop(sa, sb, axes):
    # the batching rule turns one-sided batches into single BLAS calls; check each case
    rng = np.random.default_rng(0)
    B = 4
    da, db = axes

    def batched(shape, d):
        if d is None:
            return rng.normal(size=shape)
        d = min(d, len(shape))
        return rng.normal(size=shape[:d] + (B,) + shape[d:]), d

    a, b = batched(sa, da), batched(sb, db)
    (a, da) = a if isinstance(a, tuple) else (a, None)
    (b, db) = b if isinstance(b, tuple) else (b, None)
    if da is None and db is None:
        return
    out = vmap(fnp.matmul, in_axes=(da, db))(a, b)
    ref = np.stack([np.matmul(np.take(a, i, da) if da is not None else a,
                              np.take(b, i, db) if db is not None else b) for i in range(B)])
    np.testing.assert_allclose(out, ref, rtol=1e-12, atol=1e-12)
    # and the reverse rule under vmap (per-example gradients of a bilinear form)
    ga = vmap(grad(lambda x, y: fnp.sum(fnp.sin(fnp.matmul(x, y)))), in_axes=(da, db))(a, b)
    ref_ga = np.stack([grad(lambda x, y: fnp.sum(fnp.sin(fnp.matmul(x, y))))(
        np.take(a, i, da) if da is not None else a, np.take(b, i, db) if db is not None else b)
        for i in range(B)])
    np.testing.assert_allclose(ga, ref_ga, rtol=1e-12, atol=1e-12)


def test_vmap_maps_keyword_arguments():
    out = fg.vmap(lambda x, y: x + y)(np.arange(3.0), y=np.arange(3.0))
    np.testing.assert_allclose(out, 2 * np.arange(3.0))


@pytest.mark.parametrize("kwargs", [{"in_axes": 1}, {"in_axes": -2}, {"out_axes": 2}])
def test_vmap_out_of_range_axes_raise(kwargs):
    with pytest.raises(ValueError):
        fg.vmap(lambda a: a * 2, **kwargs)(np.arange(3.0))


def test_vmap_non_integer_in_axes_entry_error():
    with pytest.raises((TypeError, ValueError), match="in_axes"):
        fg.vmap(lambda a: a, in_axes=("x",))(np.arange(3.0))

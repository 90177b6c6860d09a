"""fnp.roll is one primitive with its rules (jvp/vjp roll back, batching, row rule)."""
import numpy as np
import pytest

import funcgrad
import funcgrad.numpy as fnp
from funcgrad.test_util import check_grads

from .test_rows import _check, split  # noqa: F401  (the row-splitting fixture)

X = np.random.default_rng(0).normal(size=(6, 4, 5))


def test_roll_is_one_equation():
    graph = funcgrad.make_graph(lambda x: fnp.roll(x, (1, -2), (0, 2)))(X)
    assert len(graph.eqns) == 1 and "roll" in str(graph), str(graph)


@pytest.mark.parametrize("shift,axis", [(1, None), (-3, 0), ((1, -2), (0, 2)),
                                        ((2, 3), (1, 1)), (7, -1), (0, 1), (4, 1)])
def test_roll_values_and_derivatives(shift, axis):
    f = lambda x: fnp.roll(x, shift, axis)
    np.testing.assert_array_equal(funcgrad.jit(f)(X), np.roll(X, shift, axis))
    check_grads(f, (X,), order=2)


@pytest.mark.parametrize("in_axis", [0, 1, 2])
def test_roll_under_vmap(in_axis):
    f = lambda v: fnp.roll(v, (1, -1), (0, 1))
    got = funcgrad.vmap(f, in_axes=in_axis)(X)
    want = np.stack([np.roll(np.take(X, i, in_axis), (1, -1), (0, 1))
                     for i in range(X.shape[in_axis])])
    np.testing.assert_array_equal(got, want)
    g = funcgrad.vmap(funcgrad.grad(lambda v: fnp.sum(f(v) * np.arange(v.size).reshape(v.shape))),
                      in_axes=in_axis)(X)
    assert g.shape[0] == X.shape[in_axis]


def test_roll_rows_split_when_the_batch_axis_is_not_rolled(split):
    _check(split, lambda x: fnp.sum(fnp.roll(x, 2, 1) * x, axis=1), X)
    jf = funcgrad.jit(lambda x: fnp.roll(x, 2, 0) * 2.0)      # rolls the batch axis
    jf(X)
    np.testing.assert_allclose(jf(X), np.roll(X, 2, 0) * 2.0)
    _check(split, funcgrad.value_and_grad(lambda x: fnp.sum(fnp.roll(x, 1, 2) ** 2)), X)

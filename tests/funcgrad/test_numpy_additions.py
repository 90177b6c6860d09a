"""NumPy behaviour funcgrad.numpy gained: gradient's edge_order=2 and coordinates,
array_split with a 0-d count, and the functions added below."""
import numpy as np
import pytest

import funcgrad
import funcgrad.numpy as fnp
from funcgrad.test_util import check_grads

R = np.random.RandomState(0)


# ---- gradient ----------------------------------------------------------------------------
@pytest.mark.parametrize("edge_order", [1, 2])
@pytest.mark.parametrize("spacing", ["none", "scalar", "coords", "mixed"])
def test_gradient_spacings_and_edge_order(edge_order, spacing):
    f = R.rand(5, 6)
    x, y = np.cumsum(R.rand(6)) + 0.1, np.cumsum(R.rand(5))
    args = {"none": (), "scalar": (0.3,), "coords": (y, x), "mixed": (0.7, x)}[spacing]
    got = fnp.gradient(f, *args, edge_order=edge_order)
    want = np.gradient(f, *args, edge_order=edge_order)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-12)
    check_grads(lambda f: fnp.gradient(f, *args, edge_order=edge_order), (f,), order=1)


def test_gradient_coordinates_are_differentiable():
    f = R.rand(6)
    x = np.cumsum(R.rand(6)) + 0.1
    check_grads(lambda x: fnp.gradient(f, x, edge_order=2), (x,), order=1)
    np.testing.assert_allclose(fnp.gradient(f, x, axis=0), np.gradient(f, x, axis=0))


def test_gradient_errors():
    with pytest.raises(ValueError, match="edge_order=2"):
        fnp.gradient(np.ones(2), edge_order=2)
    with pytest.raises(ValueError, match="coordinates"):
        fnp.gradient(np.ones(4), np.arange(3.0))
    with pytest.raises(TypeError):
        fnp.gradient(np.ones(4), edge_order=3)


# ---- array_split / split with a 0-d count ----------------------------------------------------
@pytest.mark.parametrize("name,n", [("array_split", 7), ("split", 6)])
def test_split_with_0d_array_count(name, n):
    a = np.arange(float(n))
    got = getattr(fnp, name)(a, np.array(3))
    want = getattr(np, name)(a, np.array(3))
    assert len(got) == len(want) == 3
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)


# ---- Python lists of traced values are array-likes everywhere ---------------------------------
LIST_FUNCS = {
    "sum": fnp.sum, "mean": fnp.mean, "std": fnp.std, "var": fnp.var, "prod": fnp.prod,
    "max": fnp.max, "min": fnp.min, "exp": fnp.exp,
    "clip": lambda l: fnp.clip(l, 0.5, 3.0),
    "dot": lambda l: fnp.dot(l, np.array([1.0, -2.0])),
    "where": lambda l: fnp.where(np.array([[True, False]] * 3), l, 0.0),
    "norm": fnp.linalg.norm,
    "det": lambda l: fnp.linalg.det([l[0], l[2]]),
    "add": lambda l: fnp.add(l, 1.0),
    "mul_list": lambda l: fnp.multiply(2.0, l),
    "operator": lambda l: l[0] + [l[1], l[2]],
}


@pytest.mark.parametrize("name", sorted(LIST_FUNCS))
def test_list_of_traced_values(name):
    f = LIST_FUNCS[name]

    def via_list(x):
        return f([x, 2.0 * x, x * x])

    def via_array(x):
        return f(fnp.stack([x, 2.0 * x, x * x]))

    x = np.array([1.1, 0.7])
    np.testing.assert_allclose(via_list(x), via_array(x))
    check_grads(via_list, (x,), order=1)
    np.testing.assert_allclose(funcgrad.jacrev(via_list)(x), funcgrad.jacrev(via_array)(x))


def test_mean_std_var_norm_of_list_of_arrays():
    x = np.array([1.0, 2.0, 4.0])
    for name in ["mean", "std", "var"]:
        g = funcgrad.grad(lambda x: getattr(fnp, name)([x, 3.0 * x]))(x)
        g2 = funcgrad.grad(lambda x: getattr(fnp, name)(fnp.stack([x, 3.0 * x])))(x)
        np.testing.assert_allclose(g, g2)


# ---- operators give unknown array-likes their turn -------------------------------------------
class _DataArrayLike:
    """Stands in for xarray.DataArray: takes part in NumPy's protocols."""

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        return "ufunc"

    def __radd__(self, other):
        return "radd"

    def __rmul__(self, other):
        return "rmul"

    def __rsub__(self, other):
        return "rsub"

    def __gt__(self, other):
        return "gt"


class _OptOut:
    __array_ufunc__ = None

    def __radd__(self, other):
        return "radd"


def test_binary_operators_defer_to_unknown_array_likes():
    seen = {}

    def f(x):
        seen["add"] = x + _DataArrayLike()
        seen["mul"] = x * _DataArrayLike()
        seen["sub"] = x - _DataArrayLike()
        seen["lt"] = x < _DataArrayLike()          # reflected comparison: other.__gt__
        seen["optout"] = x + _OptOut()
        return x.sum()

    funcgrad.grad(f)(np.array([1.0, 2.0]))
    assert seen == {"add": "radd", "mul": "rmul", "sub": "rsub", "lt": "gt",
                    "optout": "radd"}


def test_binary_operators_still_take_lists_and_numpy_scalars():
    def f(x):
        return fnp.sum((x + [1.0, 2.0]) * np.float64(3.0) - [x[1], x[0]])
    check_grads(f, (np.array([1.0, 2.0]),), order=1)

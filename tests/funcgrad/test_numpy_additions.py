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


# ---- new names: copy, isin, nextafter, frexp, i0, vander, rollaxis, real_if_close, einsum ----
def test_copy():
    x = np.array([1.0, 2.0])
    c = fnp.copy(x)
    assert c is not x and np.array_equal(c, x)
    check_grads(lambda v: fnp.copy(v) * v, (x,), order=2)


def test_isin():
    e = np.array([[1, 2], [3, 4]])
    for invert in (False, True):
        np.testing.assert_array_equal(fnp.isin(e, [2, 3], invert=invert),
                                      np.isin(e, [2, 3], invert=invert))
    x = np.array([1.0, np.nan, 3.0])
    np.testing.assert_array_equal(fnp.isin(x, np.array([[3.0, np.nan]])),
                                  np.isin(x, np.array([[3.0, np.nan]])))
    out = funcgrad.jit(lambda v: fnp.isin(v, np.array([3.0])))(x)
    np.testing.assert_array_equal(out, [False, False, True])


def test_nextafter():
    x1, x2 = np.array([1.0, 2.0, -0.0]), np.array([2.0, 0.0, 1.0])
    np.testing.assert_array_equal(fnp.nextafter(x1, x2), np.nextafter(x1, x2))
    np.testing.assert_array_equal(fnp.nextafter(x1.astype(np.float32), np.float32(3)),
                                  np.nextafter(x1.astype(np.float32), np.float32(3)))
    g = funcgrad.grad(lambda a: fnp.sum(fnp.nextafter(a, x2)))(x1)
    np.testing.assert_array_equal(g, np.ones(3))
    check_grads(lambda a: fnp.nextafter(a, x2), (x1 + 0.5,), order=1, modes=("rev",))


def test_frexp():
    x = np.array([3.0, 0.5, 0.0, -7.25, np.inf, np.nan, 1e-310, 5e-324])
    m, e = fnp.frexp(x)
    m2, e2 = np.frexp(x)
    np.testing.assert_array_equal(m, m2)
    np.testing.assert_array_equal(e, e2)
    assert e.dtype == e2.dtype
    y = np.array([3.0, -0.3, 12.5])
    check_grads(lambda v: fnp.frexp(v)[0], (y,), order=2)
    np.testing.assert_array_equal(funcgrad.grad(lambda v: fnp.sum(fnp.frexp(v)[0]))(y),
                                  2.0 ** -np.frexp(y)[1])


def test_i0():
    x = np.array([0.0, 1e-3, -0.5, 3.0, 14.9, 31.0, -45.0, 100.0])
    np.testing.assert_allclose(fnp.i0(x), np.i0(x), rtol=1e-14)
    check_grads(fnp.i0, (np.array([0.0, 0.3, -1.2, 5.0, 35.0]),), order=2)


@pytest.mark.parametrize("n,increasing", [(None, False), (4, True), (2, False), (0, False)])
def test_vander(n, increasing):
    x = np.array([0.0, 2.0, -3.0])
    np.testing.assert_array_equal(fnp.vander(x, n, increasing), np.vander(x, n, increasing))
    if n != 0:
        check_grads(lambda v: fnp.vander(v, n, increasing), (x,), order=2)


def test_rollaxis():
    x = np.zeros((2, 3, 4, 5))
    for axis in range(-4, 4):
        for start in range(-4, 5):
            assert fnp.rollaxis(x, axis, start).shape == np.rollaxis(x, axis, start).shape
    with pytest.raises(ValueError):
        fnp.rollaxis(x, 0, 5)
    y = R.rand(2, 3, 4)
    check_grads(lambda v: fnp.rollaxis(v, 2, 0) * np.arange(4.0)[:, None, None], (y,), order=1)


def test_real_if_close():
    a = np.array([1 + 1e-16j, 2 - 1e-17j])
    np.testing.assert_array_equal(fnp.real_if_close(a), np.real_if_close(a))
    assert fnp.real_if_close(a).dtype == np.real_if_close(a).dtype == np.float64
    b = np.array([1 + 1e-3j])
    assert fnp.real_if_close(b).dtype == np.complex128
    g = funcgrad.grad(lambda v: fnp.sum(fnp.real_if_close(v + 0j) ** 2))(np.array([1.0, 3.0]))
    np.testing.assert_allclose(g, [2.0, 6.0])


@pytest.mark.parametrize("args", [
    lambda a, b, c: (a, [0, 1], b, [1, 2]),
    lambda a, b, c: (a, [0, 1], b, [1, 2], [2, 0]),
    lambda a, b, c: (c, [Ellipsis, 1, 2], b, [2, 3], [Ellipsis, 3]),
    lambda a, b, c: (a, [0, 1], [1]),
])
def test_einsum_sublist_form(args):
    a, b, c = R.rand(2, 3), R.rand(3, 4), R.rand(5, 2, 3)
    np.testing.assert_allclose(fnp.einsum(*args(a, b, c)), np.einsum(*args(a, b, c)))
    check_grads(lambda a, b, c: fnp.einsum(*args(a, b, c)), (a, b, c), order=1)


def test_einsum_sublist_errors():
    with pytest.raises(ValueError, match="sublist"):
        fnp.einsum(np.ones(2), [60])


# every function of funcgrad.numpy that takes an array takes a list of traced rows
# (block: a list is its own nesting of blocks, not one array: [r1, r2] joins the rows)
_SKIP_LIST_SWEEP = {"at", "result_type", "linspace", "logspace", "block"}


def test_every_function_takes_a_list_of_traced_rows():
    x0 = np.array([[1.0, 2.0], [3.0, 5.0]])
    bad = []
    for name in fnp.__all__:
        f = getattr(fnp, name)
        if name in _SKIP_LIST_SWEEP or not callable(f) or isinstance(f, type):
            continue
        for extra in [(), (np.ones((2, 2)),), (1,)]:
            try:
                with np.errstate(all="ignore"):
                    ref = f(x0, *extra)
            except Exception:   # noqa: BLE001  not a call this function takes
                continue
            try:
                with np.errstate(all="ignore"):
                    out = funcgrad.jvp(lambda x: f([x[0], x[1]], *extra), (x0,),
                                       (np.ones((2, 2)),))[0]
                for a, b in zip(funcgrad.tree_util.tree_leaves(out),
                                funcgrad.tree_util.tree_leaves(ref)):
                    if not np.allclose(a, b, equal_nan=True):
                        bad.append(f"{name}: wrong value")
            except Exception as e:   # noqa: BLE001
                bad.append(f"{name}: {type(e).__name__}: {str(e)[:60]}")
            break
    assert not bad, "\n".join(bad)


def test_linspace_with_list_of_traced_bounds():
    def f(x):
        return fnp.linspace([x[0], x[1]], [x[1], 2.0 * x[1]], 3)
    x = np.array([0.5, 1.5])
    np.testing.assert_allclose(f(x), np.linspace([0.5, 1.5], [1.5, 3.0], 3))
    check_grads(f, (x,), order=1)

"""NumPy's own BLAS called from Numba code (funcgrad/_src/numba_blas.py): every route of
NumPy's matmul (gemm with either transposition or a copied operand, syrk, gemv either
way, dot, the plain loop) gives NumPy's values bit for bit; native loops use it; without
it they keep ``np.dot``."""
import glob
import os

import numpy as np
import pytest

import funcgrad
import funcgrad.lax as lax
from funcgrad._src import numba_backend as nb
from funcgrad._src import numba_blas as nblas
from funcgrad._src import numba_loops as nl


def _compiled(dtype):
    """``_fg_matmul_<dtype>`` compiled from its source here (not cached on disk)."""
    name = f"_fg_matmul_{np.dtype(dtype).name}"
    src = nb.module_source(f"def kernel(a, b):\n    return {name}(a, b)\n")
    ns = {}
    exec(compile(src.replace("cache=True", "cache=False"), "<fg_matmul>", "exec"), ns)
    return ns[name]


R = np.random.default_rng(0)


def _cases(dt):
    """(a, b) pairs: views as a step makes them (transposes, gate slices, 1-d)."""
    def r(*s):
        return R.normal(size=s).astype(dt)
    a, b, big = r(7, 5), r(5, 9), r(9, 24)
    sq = r(6, 6)
    return {
        "C @ C": (a, b),
        "C @ transposed": (a, r(9, 5).T),
        "transposed @ C": (r(5, 7).T, b),
        "transposed @ transposed": (r(5, 7).T, r(9, 5).T),
        "gate slice @ C": (big[:, 8:13], b),          # rows apart by more than their length
        "C @ gate slice": (r(6, 9), big[:, 4:12]),
        "every other row": (r(14, 5)[::2], b),
        "every other column (copied)": (a, r(5, 18)[:, ::2]),
        "every other column @ C (copied)": (r(7, 10)[:, ::2], b),
        "reversed rows (copied)": (r(7, 5)[::-1], b),
        "row @ every other column": (r(1, 5), r(5, 18)[:, ::2]),
        "every other column @ vector": (r(7, 10)[:, ::2], r(5)),
        "vector @ every other column": (r(5), r(5, 18)[:, ::2]),
        "reversed matrix @ vector": (r(7, 5)[::-1, ::-1], r(5)),
        "a @ a.T (syrk)": (sq, sq.T),
        "a.T @ a (syrk)": (sq.T, sq),
        "matrix @ vector": (a, r(5)),
        "transposed matrix @ vector": (r(5, 7).T, r(5)),
        "vector @ matrix": (r(7), a),
        "vector @ transposed matrix": (r(5), r(9, 5).T),
        "matrix @ strided vector": (a, r(10)[::2]),
        "row @ matrix": (r(1, 5), b),
        "matrix @ column": (a, r(5, 1)),
        "vector @ vector": (r(5), r(5)),
        "row @ column": (r(1, 5), r(5, 1)),
        "reversed vector @ vector (plain loop)": (r(5)[::-1], r(5)),
        "outer (k = 1)": (r(7, 1), r(1, 9)),
        "k = 0": (r(3, 0), r(0, 4)),
        "m = 0": (r(0, 5), b),
        "one by one": (r(1, 1), r(1, 1)),
        # long enough that BLAS's and the plain loop's sums round apart
        "long: every other column @ vector (plain loop)": (r(7, 600)[:, ::2], r(300)),
        "long: row @ every other column (plain loop)": (r(1, 300), r(300, 14)[:, ::2]),
        "long: reversed vector @ vector (plain loop)": (r(300)[::-1], r(300)),
        "long: vector @ every other element (dot)": (r(300), r(600)[::2]),
        "long: every other column @ every other column (copied)":
            (r(3, 600)[:, ::2], r(300, 16)[:, ::2]),
    }


@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_every_route_equals_numpys_matmul_bit_for_bit(numba, dt):
    if not nblas.available():
        pytest.skip("NumPy's BLAS is not callable here (see numba_blas.py)")
    mm = _compiled(dt)
    for name, (a, b) in _cases(dt).items():
        want = np.matmul(a, b)
        got = mm(a, b)
        assert got.dtype == want.dtype, name
        np.testing.assert_array_equal(got.reshape(want.shape), want, err_msg=name)


def test_the_32_bit_integer_convention(numba, monkeypatch):
    # SciPy's OpenBLAS wheel names its functions scipy_cblas_sgemm (32-bit integers): the
    # same code through that convention (another library: equal to rounding)
    import scipy
    libs = glob.glob(os.path.join(os.path.dirname(os.path.dirname(scipy.__file__)),
                                  "scipy.libs", "*openblas*"))
    if not libs:
        pytest.skip("no SciPy OpenBLAS wheel library")
    monkeypatch.setattr(nblas, "_found", None)
    monkeypatch.setattr(nblas, "_candidates", lambda: libs)
    monkeypatch.setattr(nb, "_helper_source", {})
    if nblas.functions().get("int") != "int32":
        pytest.skip("SciPy's library does not name its functions scipy_cblas_*")
    for dt in (np.float32, np.float64):
        mm = _compiled(dt)
        for name, (a, b) in _cases(dt).items():
            want = np.matmul(a, b)
            np.testing.assert_allclose(mm(a, b).reshape(want.shape), want,
                                       rtol=1e-5 if dt == np.float32 else 1e-13,
                                       atol=1e-5 if dt == np.float32 else 1e-13,
                                       err_msg=name)


def _products(W, U, V, v, xs, h0):
    # transposed operands, a gate slice, matrix @ vector, vector @ matrix, a float64 input
    # against float32 weights: nothing but products, additions and halvings (exact in
    # both), all inside the loop (what feeds no carry would run after it, batched)
    def step(c, x):
        h, s = c
        g = h @ W.T + (x @ U).astype(h.dtype)
        h = g[:, 2:8] + (g[:, :6] @ V.T) * 0.5
        s = s * 0.5 + h @ v + v @ h.T
        return (h, s), s
    return lax.scan(step, (h0, h0[:, 0]), xs)


@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_native_loop_products_equal_the_replay_bit_for_bit(numba, dt):
    if not nblas.available():
        pytest.skip("NumPy's BLAS is not callable here")
    W = (R.normal(size=(10, 6)) * 0.3).astype(dt)
    U = (R.normal(size=(3, 10)) * 0.3).astype(dt)
    V = (R.normal(size=(6, 6)) * 0.3).astype(dt)
    v = (R.normal(size=6) * 0.3).astype(dt)
    xs = R.normal(size=(8, 4, 3))                       # float64: promotes the products
    h0 = np.zeros((4, 6), dt)
    want = funcgrad.jit(_products, backend="numpy")(W, U, V, v, xs, h0)
    jb = funcgrad.jit(_products, backend="numba")
    jb(W, U, V, v, xs, h0)
    jb(W, U, V, v, xs, h0)
    before = nl.stats["runs"]
    got = jb(W, U, V, v, xs, h0)
    assert nl.stats["runs"] > before
    for g, w in zip(funcgrad.tree_util.tree_leaves(got), funcgrad.tree_util.tree_leaves(want)):
        assert np.asarray(g).dtype == np.asarray(w).dtype
        np.testing.assert_array_equal(g, w)


def test_without_numpys_blas_loops_keep_numbas_dot(numba, monkeypatch):
    monkeypatch.setattr(nblas, "_found", {})
    g = funcgrad.make_graph(lambda W, h, x: [W.T @ h + x])(
        np.ones((6, 6)), np.zeros(6), np.zeros(6))
    src = nl.loop_source(g, 1, 1, 1, 0)
    assert "np.dot(" in src and "_fg_matmul" not in src
    # (other sizes than the test above: a loop of its own, compiled with np.dot)
    W, U, V = (R.normal(size=s) * 0.3 for s in ((12, 6), (3, 12), (6, 6)))
    args = (W, U, V, R.normal(size=6) * 0.3, R.normal(size=(5, 3, 3)), np.zeros((3, 6)))
    want = funcgrad.jit(_products, backend="numpy")(*args)
    jb = funcgrad.jit(_products, backend="numba")
    jb(*args)
    jb(*args)
    before = nl.stats["runs"]
    got = jb(*args)
    assert nl.stats["runs"] > before
    for u, w in zip(funcgrad.tree_util.tree_leaves(got), funcgrad.tree_util.tree_leaves(want)):
        np.testing.assert_allclose(u, w, rtol=1e-12, atol=1e-15)
    monkeypatch.setattr(nblas, "_found", None)
    src = nl.loop_source(g, 1, 1, 1, 0)
    assert ("_fg_matmul_float64(" in src) == nblas.available()

"""Whole scan loops as one native function on jit's Numba backend
(funcgrad/_src/numba_loops.py): each equation form a step may hold, against the NumPy
replay; forward and reverse loops, per-step outputs, 0-d and float32 values; steps it
cannot write keep the replay."""
import numpy as np
import pytest

import funcgrad
import funcgrad.lax as lax
import funcgrad.numpy as fnp
from funcgrad._src import numba_backend as nb
from funcgrad._src import numba_blas as nblas
from funcgrad._src import numba_loops as nl


def _check(f, *args, native=True, rtol=1e-12):
    """``f``'s jit on the Numba backend (third call: the scan's loop is split at the
    second and compiled then) equals the NumPy replay's; whether a native loop ran."""
    want = funcgrad.jit(f, backend="numpy")(*args)
    jb = funcgrad.jit(f, backend="numba")
    jb(*args)
    jb(*args)
    before = nl.stats["runs"]
    got = jb(*args)
    ran = nl.stats["runs"] > before
    assert native is None or ran == native, f"native loop ran: {ran}"
    flat_w, _ = funcgrad.tree_util.tree_flatten(want)
    flat_g, _ = funcgrad.tree_util.tree_flatten(got)
    for g, w in zip(flat_g, flat_w):
        assert np.asarray(g).dtype == np.asarray(w).dtype
        assert np.shape(g) == np.shape(w)
        tol = max(rtol, 1e-5) if np.asarray(w).dtype == np.float32 else rtol
        np.testing.assert_allclose(g, w, rtol=tol, atol=0)
    return got


RNG = np.random.default_rng(0)
W = RNG.normal(size=(6, 6)) * 0.4
U = RNG.normal(size=(6, 3)) * 0.4
XS = RNG.normal(size=(7, 2, 3))


def _rnn(W, U, xs, h0, reverse=False):
    def step(h, x):
        h = fnp.tanh(h @ W.T + x @ U.T)
        return h, h.sum(axis=1)
    return lax.scan(step, h0, xs, reverse=reverse)


@pytest.mark.parametrize("reverse", [False, True])
def test_rnn_forward_and_its_gradient_run_natively(numba, reverse):
    h0 = np.zeros((2, 6))
    _check(lambda W, U: _rnn(W, U, XS, h0, reverse), W, U)
    loss = funcgrad.grad(lambda W, U: (_rnn(W, U, XS, h0, reverse)[1] ** 2).sum()
                         + _rnn(W, U, XS, h0, reverse)[0].sum(), argnums=(0, 1))
    _check(loss, W, U)


def test_float32_stays_float32(numba):
    h0 = np.zeros((2, 6), np.float32)
    f32 = [a.astype(np.float32) for a in (W, U, XS)]
    got = _check(lambda W, U, xs: _rnn(W, U, xs, h0), *f32, rtol=1e-5)
    assert got[0].dtype == np.float32 and got[1].dtype == np.float32


def test_zero_d_carries_sums_and_broadcasts(numba):
    def f(x, xs):
        def step(c, row):
            s = fnp.sum(row * x, axis=0, keepdims=True)         # sum over one axis
            t = fnp.broadcast_to(c, (3,)) * row[0] + s          # 0-d carry, broadcast
            return c + fnp.sum(t), (t, fnp.sum(row))             # 0-d carry and y
        return lax.scan(step, fnp.zeros(()), xs)
    _check(f, np.arange(3.0), RNG.normal(size=(5, 4, 3)))


def test_reshape_transpose_concatenate_and_matrix_vector_products(numba):
    A = RNG.normal(size=(4, 4)) * 0.3

    def f(A, xs):
        def step(c, x):
            m = fnp.reshape(x, (2, 2))
            v = fnp.concatenate([fnp.reshape(m.T, (4,)), c[:0]], axis=0)
            t = fnp.transpose(fnp.reshape(c * v, (1, 2, 2)), (2, 0, 1))
            c = fnp.tanh(A @ c + fnp.reshape(t, (4,)))          # matrix @ vector
            return c, c @ c                                     # vector @ vector: 0-d
        return lax.scan(step, fnp.ones(4), xs)
    _check(f, A, RNG.normal(size=(6, 4)))               # (an empty slice, c[:0])

    def g(A, xs):
        def step(c, x):
            m = fnp.reshape(x, (2, 2))
            v = fnp.concatenate([fnp.reshape(m.T, (4,)), c], axis=0)
            t = fnp.transpose(fnp.reshape(c * x, (1, 2, 2)), (2, 0, 1))   # 3-d
            c = fnp.tanh(A @ c + fnp.reshape(t, (4,)) + fnp.sum(v))
            return c, c @ c
        return lax.scan(step, fnp.ones(4), xs)
    _check(g, A, RNG.normal(size=(6, 4)))
    _check(funcgrad.grad(lambda A, xs: g(A, xs)[1].sum()), A, RNG.normal(size=(6, 4)))


def test_where_comparisons_and_captured_constants(numba):
    k = RNG.normal(size=(3,))

    def f(xs):
        def step(c, x):
            y = fnp.where(x > 0, x * k, c - 1.0)
            return fnp.maximum(c, y), fnp.minimum(c, y) > 0.5
        return lax.scan(step, fnp.zeros(3), xs)
    got = _check(f, RNG.normal(size=(8, 3)))
    assert got[1].dtype == np.bool_


def test_unsupported_steps_keep_the_replay(numba):
    def f(xs):
        def step(c, x):
            return fnp.sort(c + x), c[0]                        # sort: not written here
        return lax.scan(step, fnp.zeros(3), xs)
    _check(f, RNG.normal(size=(4, 3)), native=False)
    g = funcgrad.make_graph(lambda c, x: [fnp.sort(c + x)])(np.zeros(3), np.zeros(3))
    with pytest.raises(nl.Unsupported):
        nl.loop_source(g, 0, 1, 1, 0)
    assert nl.start(g, 0, 1, 1, 0) is None


def test_fori_loop_with_a_counter(numba):
    def f(x):
        return lax.fori_loop(0, 10, lambda i, v: fnp.sin(v) * 0.5 + v, x)
    _check(f, np.linspace(-1, 1, 5))
    _check(funcgrad.grad(lambda x: f(x).sum()), np.linspace(-1, 1, 5))


def test_the_generated_source_reads_as_one_loop(numba):
    g = funcgrad.make_graph(lambda W, h, x: [fnp.tanh(W @ h + x)])(
        W, np.zeros(6), np.zeros(6))
    src = nl.loop_source(g, 1, 1, 1, 0)
    prod = "_fg_matmul_float64(k0, c0)" if nblas.available() else "np.dot(k0, c0)"
    assert "for step in range(n):" in src and prod in src
    assert "_tanh64(" in src and src.count("def kernel(") == 1


from tests.funcgrad import test_control_flow  # noqa: E402


@pytest.mark.parametrize("prog", test_control_flow.PROGRAMS, ids=lambda p: p.__name__)
def test_control_flow_programs_called_again_on_numba_match_jax(numba, prog):
    # the loops of jit, jit(grad), jit(vmap(grad)) and jvp of grad, from their third
    # call on natively where the step allows it
    with funcgrad.config.override(jit_backend="numba"):
        test_control_flow.test_repeated_jitted_calls_against_jax(prog)


def test_while_loops_run_natively(numba):
    def f(x, tol):
        def cond(c):
            i, v = c
            return (fnp.sum(v * v) > tol) & (i < 100)
        def body(c):
            i, v = c
            return i + 1, fnp.tanh(v) * 0.9
        return lax.while_loop(cond, body, (np.int64(0), x))
    got = _check(f, np.linspace(-2, 2, 7), np.float64(1e-3))
    assert got[0].dtype == np.int64 and got[0].shape == ()
    # traced bounds: fori_loop is a while loop
    _check(lambda n, x: lax.fori_loop(0, n, lambda i, v: v * 0.5 + fnp.sin(v), x),
           np.int64(6), np.linspace(0, 1, 4))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_lstm_steps_slice_gates_and_scatter_their_cotangents(numba, dtype):
    # an LSTM cell as funcgrad_nn writes it: one product for the four gates, sliced
    # apart; its reverse step adds the gates' cotangents into slices of zeros
    import funcgrad.nn as fnn
    rng = np.random.default_rng(5)
    H = 4
    Wt = (rng.normal(size=(H, 4 * H)) * 0.5).astype(dtype)
    xs = rng.normal(size=(6, 3, 4 * H)).astype(dtype)

    def f(Wt, xs):
        def step(c, x):
            h, cell = c
            z = h @ Wt + x
            i, fg, g, o = (fnn.sigmoid(z[:, :H]), fnn.sigmoid(z[:, H:2 * H]),
                           fnp.tanh(z[:, 2 * H:3 * H]), fnn.sigmoid(z[:, 3 * H:]))
            cell = fg * cell + i * g
            h = o * fnp.tanh(cell)
            return (h, cell), h[0, 1]
        (h, cell), ys = lax.scan(step, (fnp.zeros((3, H), dtype), fnp.zeros((3, H), dtype)), xs)
        return (h ** 2).sum() + cell.sum() + ys.sum()
    g = funcgrad.grad(f)
    # float32 sigmoid is left to NumPy (3 ulp from what Numba can compute): its forward
    # loop keeps the replay (the reverse one, without sigmoid, may not)
    native = dtype == np.float64
    _check(f, Wt, xs, native=native, rtol=1e-12 if native else 1e-5)
    _check(g, Wt, xs, native=True if native else None, rtol=1e-12 if native else 1e-5)


def test_funcgrad_nn_lstm_in_float64_runs_natively(numba):
    # its gates come apart with one split; float32 weights with float64 inputs: NumPy's
    # promotion in the products
    import funcgrad_nn as nn
    lstm = nn.LSTM(3, 5, batch_first=True)
    params = lstm.init(funcgrad.random.PRNGKey(0))
    x = np.random.default_rng(1).normal(size=(2, 4, 3))

    def loss(p, x):
        out = lstm(p, x)
        return ((out[0] if isinstance(out, tuple) else out) ** 2).sum()
    _check(funcgrad.grad(loss), params, x, rtol=1e-10)


def test_cond_and_switch_inside_a_step(numba):
    def f(xs, w):
        def step(c, x):
            c = lax.cond(x.sum() > 0, lambda c: fnp.tanh(c) * w[0], lambda c: c - x, c)
            k = (fnp.sum(x > 0)).astype(np.int32) - 1              # -1..2: clamped
            y = lax.switch(k, [lambda c: c * 2.0, lambda c: fnp.sin(c), lambda c: c @ w.T],
                           c)
            return c, y
        return lax.scan(step, fnp.ones(3), xs)
    xs = RNG.normal(size=(9, 3))
    w = RNG.normal(size=(3, 3)) * 0.5
    _check(f, xs, w)
    _check(funcgrad.grad(lambda xs, w: f(xs, w)[1].sum(), argnums=1), xs, w)


def test_int32_arithmetic_wraps_at_each_operation_and_logical_ops_stay_bool(numba):
    # Numba widens int32 arithmetic to int64: each result is rounded back at once, as
    # NumPy wraps; logical_and/or of integers are not Python's and/or
    def f(a, xs):
        def step(c, x):
            p = (c * x > 0).astype(np.int32)                # 50000 * 50000 wraps negative
            return c + p, p
        return lax.scan(step, a, xs)
    got = _check(f, np.int32(50000), np.full(4, 50000, np.int32))
    assert int(got[0]) == 50000 and not got[1].any()

    def g(a, xs):
        def step(c, x):
            p = fnp.logical_and(c > 0, x > 0).astype(np.int32)
            return c + p, p
        return lax.scan(step, a, xs)
    _check(g, np.int32(3), np.full(4, 5, np.int32))
    h = funcgrad.make_graph(lambda c, x: [fnp.logical_and(c, x)])(np.int32(3), np.int32(5))
    with pytest.raises(nl.Unsupported):
        nl.loop_source(h, 0, 1, 1, 0)

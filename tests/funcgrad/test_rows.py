"""jit's row splitting (funcgrad/_src/rows.py): a graph run on slices of its batch on
several threads must give what the whole graph gives, for every kind of value (rows,
partial sums, whole values) and every way back from slices to whole values."""
import threading
import warnings

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import funcgrad
import funcgrad.lax as lax
import funcgrad.numpy as fnp
from funcgrad import grad, jit, value_and_grad
from funcgrad._src import rows, threads


@pytest.fixture
def split(monkeypatch):
    """Split every graph that can be split (no work threshold) over 2 threads, and count
    the splits: ``split.calls`` lists the batch length of each phase run on slices."""
    monkeypatch.setattr(rows, "MIN_ROW_WORK", 0)
    monkeypatch.setattr(rows, "MAX_JOIN_FRACTION", float("inf"))
    old = threads._state["n"]
    threads.set_num_threads(2)
    calls = []
    real = threads.map_bounds

    def spy(fn, bounds, flatten=False):
        if not threads.in_split():
            calls.append(bounds[-1][1])
        return real(fn, bounds, flatten)
    monkeypatch.setattr(rows._threads, "map_bounds", spy)

    class Split:
        pass
    s = Split()
    s.calls = calls
    s.set_threads = threads.set_num_threads
    try:
        yield s
    finally:
        threads._state["n"] = old


def _same(out, ref, tol):
    assert (funcgrad.tree_util.tree_structure(out)
            == funcgrad.tree_util.tree_structure(ref))
    out_l, ref_l = funcgrad.tree_util.tree_leaves(out), funcgrad.tree_util.tree_leaves(ref)
    assert len(out_l) == len(ref_l)
    for o, r in zip(out_l, ref_l):
        assert np.asarray(o).dtype == np.asarray(r).dtype
        assert np.shape(o) == np.shape(r)
        np.testing.assert_allclose(o, r, rtol=tol, atol=tol)


def _check(split, fun, *args, tol=1e-12, expect_split=True):
    jf = jit(fun)
    first = jf(*args)                    # traced (runs eagerly)
    n = len(split.calls)
    out = jf(*args)                      # compiled
    _same(out, fun(*args), tol)
    _same(first, out, tol)
    if expect_split:
        assert len(split.calls) > n, "the compiled graph did not run on slices"
    else:
        assert len(split.calls) == n
    return jf


def _mlp(params, x, y):
    (w1, b1), (w2, b2) = params
    h = fnp.tanh(x @ w1 + b1)
    logits = h @ w2 + b2
    lse = fnp.log(fnp.sum(fnp.exp(logits), axis=1))
    return fnp.mean(lse - fnp.sum(logits * y, axis=1))


def _mlp_data(batch, dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    params = [(rng.normal(size=(5, 7)).astype(dtype), rng.normal(size=7).astype(dtype)),
              (rng.normal(size=(7, 3)).astype(dtype), rng.normal(size=3).astype(dtype))]
    x = rng.normal(size=(batch, 5)).astype(dtype)
    y = np.eye(3, dtype=dtype)[rng.integers(0, 3, batch)]
    return params, x, y


@pytest.mark.parametrize("batch", [2, 7, 64])
def test_split_training_step_matches_whole_graph(split, batch):
    params, x, y = _mlp_data(batch)
    _check(split, value_and_grad(_mlp), params, x, y)
    assert split.calls[-1] == batch


@pytest.mark.parametrize("nthreads", [2, 3, 5])
def test_split_over_more_threads_and_uneven_slices(split, nthreads):
    split.set_threads(nthreads)
    params, x, y = _mlp_data(11)
    _check(split, value_and_grad(_mlp), params, x, y)


def test_split_keeps_float32(split):
    params, x, y = _mlp_data(16, np.float32)
    loss, g = _check(split, value_and_grad(_mlp), params, x, y, tol=1e-5)(params, x, y)
    assert loss.dtype == np.float32
    assert all(leaf.dtype == np.float32 for leaf in funcgrad.tree_util.tree_leaves(g))


def test_split_convnet_step_matches_whole_graph(split):
    rng = np.random.default_rng(1)
    p = {"w1": rng.normal(size=(4, 2, 3, 3)), "b1": rng.normal(size=4),
         "w2": rng.normal(size=(6, 4, 3, 3)), "w3": rng.normal(size=(6 * 2 * 2, 3))}
    x = rng.normal(size=(6, 2, 9, 9))
    y = np.eye(3)[rng.integers(0, 3, 6)]

    def loss(p, x, y):
        h = lax.conv_general_dilated(x, p["w1"], (1, 1), "SAME")
        h = fnp.maximum(h + fnp.reshape(p["b1"], (1, -1, 1, 1)), 0.0)
        h = lax.max_pool(h, (2, 2))                        # 9x9 -> 4x4
        h = lax.conv_general_dilated(h, p["w2"], (1, 1), ((1, 1), (1, 1)),
                                     dimension_numbers=("NCHW", "OIHW", "NCHW"))
        h = lax.avg_pool(fnp.tanh(h), (2, 2))              # 4x4 -> 2x2
        logits = fnp.reshape(h, (h.shape[0], -1)) @ p["w3"]
        return -fnp.mean(fnp.sum(logits * y, axis=1)) + fnp.mean(logits ** 2)

    _check(split, value_and_grad(loss), p, x, y)


def test_split_nhwc_layout_and_pooling_return_rows(split):
    rng = np.random.default_rng(2)
    w = rng.normal(size=(3, 3, 2, 4))
    x = rng.normal(size=(5, 8, 8, 2))

    def f(x, w):       # per-example outputs (rows, joined by concatenation)
        h = lax.conv_general_dilated(x, w, (1, 1), "SAME",
                                     dimension_numbers=("NHWC", "HWIO", "NHWC"))
        return lax.reduce_window(h, -np.inf, lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")

    _check(split, f, x, w)
    _check(split, grad(lambda x, w: fnp.sum(fnp.sin(f(x, w)))), x, w)


def test_split_with_every_kind_of_output(split):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(8, 4))
    w = rng.normal(size=(4, 4))
    c = rng.normal(size=(8, 4))            # a closed-over constant of the batch's length

    def f(x, w):
        h = fnp.sin(x @ w) * c             # rows (the constant is sliced with them)
        return {"rows": h, "sum": fnp.sum(h, axis=0), "gram": h.T @ h,
                "whole": w * 2.0, "scaled": 3.0 * fnp.sum(h) / 8.0, "count": fnp.sum(h > 0)}

    out = _check(split, f, x, w)(x, w)
    assert out["count"].dtype == np.sum(np.ones(2) > 0).dtype


@pytest.mark.parametrize("kind", ["max_over_batch", "nonlinear_of_sum", "sgd_update",
                                  "flatten_batch", "sum_plus_rows"])
def test_values_that_need_the_whole_batch_run_after_the_split(split, kind):
    rng = np.random.default_rng(4)
    x = rng.normal(size=(6, 3))
    w = rng.normal(size=(3, 3))

    def f(x, w):
        h = fnp.tanh(x @ w)
        if kind == "max_over_batch":
            return h - fnp.max(h, axis=0)
        if kind == "nonlinear_of_sum":
            return fnp.sqrt(fnp.sum(h * h, axis=0))
        if kind == "sgd_update":
            return w - 0.1 * grad(lambda w: fnp.sum(fnp.tanh(x @ w) ** 2))(w)
        if kind == "flatten_batch":
            return fnp.cumsum(fnp.reshape(h, (-1,)))
        return h + fnp.mean(h, axis=0)

    _check(split, f, x, w)
    _check(split, grad(lambda x, w: fnp.sum(f(x, w) ** 2), argnums=(0, 1)), x, w)


def test_stacked_matmuls_split_along_their_stack(split):
    rng = np.random.default_rng(5)
    a = rng.normal(size=(6, 3, 4))
    b = rng.normal(size=(6, 4, 2))
    w = rng.normal(size=(4, 2))

    def f(a, b, w):
        return fnp.sum(fnp.sin(a @ b) ** 2) + fnp.sum((a @ w) * 0.5) + fnp.sum(
            fnp.swapaxes(a, 1, 2) @ a)

    _check(split, value_and_grad(f, argnums=(0, 1, 2)), a, b, w)


def test_no_split_without_a_batch_or_with_effects(split):
    x = np.arange(6.0)

    def printing(x):
        funcgrad.debug.print("x {}", x)
        return x * 2

    jf = jit(printing)
    jf(x)
    jf(x)
    assert split.calls == []
    assert rows.analyze(jit(lambda x: x * 2).lower(x)) is not None   # (without the print)
    assert rows.analyze(jit(lambda x: x * 2).lower(np.float64(2.0))) is None
    split.set_threads(1)
    _check(split, value_and_grad(_mlp), *_mlp_data(8), expect_split=False)


def test_default_threshold_leaves_small_graphs_whole():
    params, x, y = _mlp_data(8)
    graph = jit(value_and_grad(_mlp)).lower(params, x, y)
    assert rows.analyze(graph) is None          # far less work than MIN_ROW_WORK


def test_graphs_of_big_matrix_products_are_left_to_blas():
    # BLAS threads big products itself; two threads each calling it only contend
    rng = np.random.default_rng(8)
    w1, w2 = rng.normal(size=(784, 512)), rng.normal(size=(512, 10))

    def loss(w1, w2, x):
        return fnp.mean(fnp.tanh(fnp.tanh(x @ w1) @ w2) ** 2)

    x = rng.normal(size=(512, 784))
    graph = jit(value_and_grad(loss, argnums=(0, 1))).lower(w1, w2, x)
    saved = threads._state["n"]
    threads.set_num_threads(2)
    try:
        assert rows.analyze(graph) is None
        # the same amount of elementwise work without the products would be split
        big = rng.normal(size=(512, 4096))
        graph = jit(value_and_grad(lambda x: fnp.mean(fnp.tanh(fnp.sin(x)) ** 2))).lower(big)
        assert rows.analyze(graph) is not None
    finally:
        threads._state["n"] = saved


def test_sums_needed_whole_are_joined_and_rows_go_on_in_a_later_phase(split):
    # funcgrad_nn's cross_entropy divides by a sum over the batch (PyTorch's mean over
    # the non-ignored targets), and Adam's update needs whole gradients: three phases
    import funcgrad.random as fr
    import funcgrad_nn as nn
    import funcgrad_nn.functional as F
    from funcgrad_nn import optim
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Flatten(), nn.Linear(4 * 3 * 3, 5))
    params = model.init(fr.key(0))
    tx = optim.adam(1e-2)
    state = tx.init(params)
    rng = np.random.default_rng(6)
    x = rng.normal(size=(9, 1, 6, 6)).astype(np.float32)
    y = rng.integers(0, 5, 9)
    y[3] = -100                                             # an ignored target

    def step(params, state, x, y):
        loss, grads = value_and_grad(lambda p: F.cross_entropy(model(p, x), y))(params)
        updates, state = tx.update(grads, state, params)
        return optim.apply_updates(params, updates), state, loss

    n = len(split.calls)
    _check(split, step, params, state, x, y, tol=1e-5)
    assert len(split.calls) - n >= 2          # (the compiled call ran two row phases)
    plan = rows.analyze(jit(step).lower(params, state, x, y))
    assert plan.phases >= 2 and plan.joins


def test_batch_statistics_split_in_phases(split):
    rng = np.random.default_rng(7)
    x = rng.normal(size=(10, 4))
    w = rng.normal(size=(4, 4))

    def loss(w, x):                 # batch norm's training-mode normalisation, twice
        h = x @ w
        for _ in range(2):
            mu = fnp.mean(h, axis=0)
            var = fnp.mean((h - mu) ** 2, axis=0)
            h = fnp.tanh((h - mu) / fnp.sqrt(var + 1e-5))
        return fnp.mean(h ** 2)

    _check(split, value_and_grad(loss, argnums=(0, 1)), w, x)
    assert rows.analyze(jit(value_and_grad(loss)).lower(w, x)).phases > 2


def test_a_parameter_as_long_as_the_batch_is_read_whole(split):
    params, x, y = _mlp_data(7)        # the hidden layer has 7 units, the batch 7 rows
    plan = rows.analyze(jit(value_and_grad(_mlp)).lower(params, x, y))
    matmuls = [j for j, e in enumerate(jit(value_and_grad(_mlp)).lower(params, x, y).eqns)
               if e.prim.name == "matmul"]
    assert all(plan.where[j][0] == "rows" for j in matmuls)
    _check(split, value_and_grad(_mlp), params, x, y)


def test_partial_sums_are_joined_before_a_narrowing_cast(split):
    # cast one by one, the halves of a sum could lose their cancellation or overflow
    x = np.array([[1e8], [0.3], [-1e8], [0.0]])
    _check(split, lambda x: fnp.sum(x * 1.0, axis=0).astype(np.float32), x, tol=0)
    x16 = np.array([[6e4], [6e4], [-6e4], [-6e4]])
    _check(split, lambda x: fnp.sum(x * 1.0, axis=0).astype(np.float16), x16, tol=0)
    # widening keeps the partial sums partial
    xs = np.arange(8.0, dtype=np.float32).reshape(4, 2)
    _check(split, lambda x: fnp.sum(x * 2.0, axis=0).astype(np.float64), xs)


def test_partial_sums_pass_only_through_exact_conversions(split):
    # int partials turned float (or float64 rounded to float32) one slice at a time do
    # not add up to the whole sum converted: such steps join the sums first
    big = np.array([[2**60 + 1], [0], [-2**60], [0]])
    z = np.zeros((4, 1))
    _check(split, lambda b, z: fnp.sum(b, axis=0) + fnp.sum(z, axis=0), big, z, tol=0)
    _check(split, lambda b, z: fnp.concatenate([fnp.sum(b, axis=0), fnp.sum(z, axis=0)]),
           big, z, tol=0)
    xi, xf = np.array([[3], [2], [7], [1]]), np.array([[0.1], [0.2], [0.3], [0.4]])
    _check(split, lambda xi, xf: fnp.at(fnp.sum(xi, axis=0))[0].set(fnp.sum(xf, axis=0)[0]),
           xi, xf, tol=0)
    a = np.array([[1e10], [1.0], [-1e10], [0.5]])
    _check(split, lambda a: fnp.at(fnp.sum(a.astype(np.float32) * 0.0, axis=0))[0].add(
        fnp.sum(a, axis=0)[0]), a, tol=0)


def test_partial_sums_are_scaled_one_by_one_only_by_finite_constants(split):
    # a partial 0 / 0 or 0 * inf would be NaN where the whole sum gives inf
    x = np.array([[1.0], [2.0], [0.0], [0.0]])
    for d in (0.0, np.inf):
        out = jit(lambda x, d: fnp.sum(x * 1.0, axis=0) / d)
        out(x, np.float64(d))
        with np.errstate(divide="ignore", invalid="ignore"):
            np.testing.assert_array_equal(out(x, np.float64(d)), np.sum(x, axis=0) / d)
        prod = jit(lambda x, d: fnp.sum(x * 1.0, axis=0) * d)
        prod(x, np.float64(d))
        with np.errstate(invalid="ignore"):
            np.testing.assert_array_equal(prod(x, np.float64(d)), np.sum(x, axis=0) * d)


def test_slices_on_workers_follow_the_callers_errstate(split):
    x = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0], [0.0, -1.0]])  # 0 in the worker's half
    jf = jit(lambda x: fnp.log(x) * 2.0)
    with np.errstate(all="ignore"):
        jf(x)
    with np.errstate(all="raise"):
        with pytest.raises(FloatingPointError):
            jf(x)
    with np.errstate(all="ignore"):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            jf(x)                        # no warning from the worker either
    assert split.calls


def test_a_zero_dimensional_partial_sum_stays_an_array(split):
    rng = np.random.default_rng(9)
    X, w, y = rng.normal(size=(6, 3)), rng.normal(size=(3, 1)), rng.normal(size=(6, 1))

    def loss(w, X, y):
        r = X @ w - y
        return fnp.squeeze(r.T @ r)

    out = _check(split, loss, w, X, y)(w, X, y)
    assert type(out) is type(loss(w, X, y)) is np.ndarray


def test_row_splitting_can_be_switched_off(split):
    params, x, y = _mlp_data(8)
    with funcgrad.config.override(jit_row_splitting=False):
        _check(split, value_and_grad(_mlp), params, x, y, expect_split=False)
    assert funcgrad.config.read("jit_row_splitting") is True


def test_the_worker_pool_can_be_replaced_while_another_caller_submits():
    # a caller that needs more workers replaces the pool; one that read the old pool
    # must still get its slices run (it submits under the lock)
    results = {}

    def run(name, k):
        try:
            results[name] = threads.map_bounds(lambda a, b: b - a,
                                               [(j, j + 1) for j in range(k)])
        except Exception as e:                      # noqa: BLE001 - reported below
            results[name] = repr(e)

    saved = threads._state["executor"]
    threads._state["executor"] = None
    try:
        ts = [threading.Thread(target=run, args=(f"t{i}", 2 + i % 4)) for i in range(12)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
    finally:
        if saved is not None:
            threads._state["executor"] = saved
    assert all(isinstance(v, list) and v == [1] * len(v) for v in results.values()), results


def test_basic_indexing_and_concatenation_run_on_slices(split):
    # an LSTM cell cuts its gates with slices on the feature axis: getitem, its
    # cotangent (scatter into zeros) and concatenate all run on the slices, in one phase
    rng = np.random.default_rng(10)
    H = 3
    p = {"W": rng.normal(size=(4, 4 * H)), "U": rng.normal(size=(H, 4 * H)),
         "b": rng.normal(size=4 * H)}
    x, h, c = rng.normal(size=(6, 4)), rng.normal(size=(6, H)), rng.normal(size=(6, H))

    def loss(p, x, h, c):
        z = x @ p["W"] + h @ p["U"] + p["b"]
        i, f, g, o = (fnp.tanh(z[:, k * H:(k + 1) * H]) for k in range(4))
        c2 = f * c + i * g
        h2 = o * fnp.tanh(c2)
        both = fnp.concatenate([h2, c2[..., ::-1]], axis=1)
        return fnp.mean(fnp.at(both)[:, 0].set(1.0) ** 2)

    _check(split, value_and_grad(loss, argnums=(0, 1, 2, 3)), p, x, h, c)
    graph = jit(value_and_grad(loss)).lower(p, x, h, c)
    plan = rows.analyze(graph)
    names = {"getitem", "scatter", "concatenate"}
    placed = [plan.where[j][0] for j, e in enumerate(graph.eqns) if e.prim.name in names]
    assert placed and set(placed) == {"rows"}
    assert sum(1 for kind, _ in plan.where.values() if kind == "rows") > 0
    # index arrays hold absolute row numbers: gathers by them wait for whole values
    g = jit(lambda x, idx: x[fnp.arange(6), idx]).lower(x, np.arange(6) % 4)
    gp = rows.analyze(g)
    assert gp is None or all(gp.where[j][0] == "serial" for j, e in enumerate(g.eqns)
                             if e.prim.name == "getitem")


# ---- random programs: split against whole, value and gradient ----------------------------
_OPS = ["mm", "mmT", "bias", "const", "sin", "relu", "maxf", "sumf", "maxb", "meanb",
        "resh", "flat", "T", "bcast", "where", "gram", "rot", "setcol", "none_int",
        "flip", "rotb", "gather"]


@given(st.lists(st.tuples(st.sampled_from(_OPS), st.integers(0, 5)), min_size=1, max_size=10),
       st.sampled_from([2, 5, 8]), st.sampled_from([2, 3]))
@settings(max_examples=60)
def test_split_matches_whole_graph_on_random_programs(prog, batch, nthreads):
    rng = np.random.default_rng(batch)
    x = rng.normal(size=(batch, 3))
    w = rng.normal(size=(3, 3))
    v = rng.normal(size=3)
    cb = rng.normal(size=(batch, 3))
    idx = rng.integers(0, 3, batch)

    def f(x, w, v):
        vals = [x, fnp.tanh(x)]
        for op, k in prog:
            a, b = vals[k % len(vals)], vals[(k + 1) % len(vals)]
            r = {"mm": lambda: a @ w, "mmT": lambda: a @ w.T, "bias": lambda: a + v,
                 "const": lambda: a * cb, "sin": lambda: fnp.sin(a),
                 "relu": lambda: a * (a > 0),
                 "maxf": lambda: a - fnp.max(a, axis=1, keepdims=True),
                 "sumf": lambda: a / (fnp.sum(fnp.abs(a), axis=1, keepdims=True) + 1),
                 "maxb": lambda: a - fnp.max(a, axis=0),
                 "meanb": lambda: a - fnp.mean(a, axis=0),
                 "resh": lambda: fnp.reshape(fnp.reshape(a, (batch, 3, 1)) * 2.0, (batch, 3)),
                 "flat": lambda: fnp.reshape(fnp.reshape(a, (-1,)) * 1.5, (batch, 3)),
                 "T": lambda: fnp.transpose(fnp.transpose(a) * 2.0),
                 "bcast": lambda: fnp.sum(a[None] * fnp.ones((2, 1, 1)), axis=0),
                 "where": lambda: fnp.where(a > 0, a, 0.1 * b),
                 "gram": lambda: a @ (a.T @ b) / batch,
                 "rot": lambda: fnp.concatenate([a[:, 1:], a[:, :1]], axis=1),
                 "setcol": lambda: fnp.at(a)[:, 0].set(b[:, 1] * 2.0),
                 "none_int": lambda: a[:, None, :][:, 0, :] + a[..., 2:3],
                 "flip": lambda: a[..., ::-1] * 0.5,
                 "rotb": lambda: fnp.concatenate([a[1:], a[:1]], axis=0),
                 "gather": lambda: a[fnp.arange(batch), fnp.asarray(idx)][:, None] * b}[op]()
            vals.append(r)
        return fnp.sum(vals[-1] ** 2) + fnp.mean(vals[-2])

    saved = (rows.MIN_ROW_WORK, rows.MAX_JOIN_FRACTION, threads._state["n"])
    rows.MIN_ROW_WORK, rows.MAX_JOIN_FRACTION = 0, float("inf")
    threads.set_num_threads(nthreads)
    calls = []
    real = threads.map_bounds
    rows._threads.map_bounds = lambda fn, b, flatten=False: calls.append(b) or real(fn, b, flatten)
    try:
        for fun in (f, grad(f, argnums=(0, 1, 2)),
                    lambda x, w, v: jit(lambda x: x)(x) * 0 + f(x, w, v)):
            jf = jit(fun)
            jf(x, w, v)
            _same(jf(x, w, v), fun(x, w, v), 1e-10)
        # the loss's gradient always has row equations (x's cotangent): it was split
        assert calls
    finally:
        rows._threads.map_bounds = real
        rows.MIN_ROW_WORK, rows.MAX_JOIN_FRACTION, threads._state["n"] = saved

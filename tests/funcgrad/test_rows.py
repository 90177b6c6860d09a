"""jit's row splitting (funcgrad/_src/rows.py): a graph run on slices of its batch on
several threads must give what the whole graph gives, for every kind of value (rows,
partial sums, whole values) and every way back from slices to whole values; then each
operation's row rule on its edge cases (reductions, reshapes, casts, matmul, indexing,
windows, layers), batches, threads and callers. Every test forces splitting on small
inputs (no work threshold) and checks that the compiled call did run on slices where a
split is possible."""
import threading
import warnings

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import funcgrad
import funcgrad.lax as lax
import funcgrad.numpy as fnp
from funcgrad import grad, jit, value_and_grad
from funcgrad._src import compiler, rows, threads


@pytest.fixture
def split(monkeypatch):
    """Split every graph that can be split (no work threshold) over 2 threads, and count
    the splits: ``split.calls`` lists the batch length of each phase run on slices."""
    monkeypatch.setattr(rows, "MIN_ROW_WORK", 0)
    monkeypatch.setattr(rows, "MIN_LOOP_ROW_SIZE", 0)
    monkeypatch.setattr(rows, "MAX_JOIN_FRACTION", float("inf"))
    old = threads._state["budget"]
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
        threads._state["budget"] = old


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


def _mlp_data(batch, dtype=np.float64, seed=0, hidden=7):
    rng = np.random.default_rng(seed)
    params = [(rng.normal(size=(5, hidden)).astype(dtype), rng.normal(size=hidden).astype(dtype)),
              (rng.normal(size=(hidden, 3)).astype(dtype), rng.normal(size=3).astype(dtype))]
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
    saved = threads._state["budget"]
    threads.set_num_threads(2)
    try:
        assert rows.analyze(graph) is None
        # the same amount of elementwise work without the products would be split
        big = rng.normal(size=(512, 4096))
        graph = jit(value_and_grad(lambda x: fnp.mean(fnp.tanh(fnp.sin(x)) ** 2))).lower(big)
        assert rows.analyze(graph) is not None
    finally:
        threads._state["budget"] = saved


def _cnn_step_data():
    """A small CNN's Adam training step on cross-entropy with an ignored target: the mean
    loss divides by the count of non-ignored targets (a sum over the batch)."""
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
    return step, (params, state, x, y)


def test_sums_needed_whole_are_joined_and_rows_go_on_in_a_later_phase(split, monkeypatch):
    # without computing the count of targets again, the backward pass waits for its join
    # (a second phase on slices), and Adam's update for the gradients' (serially, after)
    monkeypatch.setattr(rows, "MAX_RECOMPUTE", 0)
    step, args = _cnn_step_data()
    n = len(split.calls)
    _check(split, step, *args, tol=1e-5)
    assert len(split.calls) - n == 2          # (the compiled call ran two row phases)
    plan = rows.analyze(jit(step).lower(*args))
    assert len(rows.row_phases(plan)) == 2 and plan.phases == 3 and not plan.recompute


def test_a_cheap_count_needed_whole_is_computed_again_instead_of_joined(split):
    step, args = _cnn_step_data()
    n = len(split.calls)
    jf = _check(split, step, *args, tol=1e-5)
    assert len(split.calls) - n == 1          # one phase on slices, then Adam serially
    out = jf(*args)
    low = jit(step).lower(*args)
    plan = rows.analyze(low)
    assert len(rows.row_phases(plan)) == 1 and plan.phases == 2
    # what runs twice: the count's not_equal, cast and sum over the labels (9 rows), not
    # the loss (a sum too, but needed whole only as an output)
    assert sorted(low.eqns[j].prim.name for j in plan.recompute) == [
        "convert_element_type", "not_equal", "sum"]
    assert plan.recompute_size == 9 + 9 + 1
    funcgrad.config.update("jit_row_splitting", False)
    try:
        ref = jit(step)(*args)                 # the whole graph, serially
    finally:
        funcgrad.config.update("jit_row_splitting", True)
    _same(out, ref, 1e-5)


def test_values_made_from_joined_sums_are_joined_not_computed_again(split, monkeypatch):
    # c comes from few elements, but reads mu, which is too big to compute again (h: 40
    # elements) and is joined after phase 0: c cannot be made before phase 0, so it is
    # joined in turn, and z / c ** 2 runs in a third phase
    monkeypatch.setattr(rows, "MAX_RECOMPUTE", 30)
    monkeypatch.setattr(rows, "RECOMPUTE_RATIO", 1)
    asked, x_name = {}, []
    real = rows._Analysis.recomputed

    def spy(self, v):                   # (whether this try reads x in rows, the answer)
        ok = real(self, v)
        if x_name:                      # (recorded for the last analysis only)
            asked.setdefault(v.name, set()).add((self.kinds[x_name[0]] == rows.Rows(0), ok))
        return ok
    monkeypatch.setattr(rows._Analysis, "recomputed", spy)
    rng = np.random.default_rng(8)
    x = rng.normal(size=(10, 4))
    w = rng.normal(size=(4, 4))
    y = rng.normal(size=10)

    def loss(w, x, y):
        h = x @ w
        mu = fnp.mean(h, axis=0)                 # joined: the rows below need it whole
        z = fnp.tanh(h - mu)
        c = fnp.sum(y * mu[0]) + 3.0             # made on slices from the joined mu
        return fnp.mean(z / c ** 2) + fnp.mean(fnp.sum(z, axis=1) ** 2)

    f = value_and_grad(loss, argnums=(0, 1, 2))
    _check(split, f, w, x, y)
    low = jit(f).lower(w, x, y)
    x_name.append(low.invars[1].name)
    asked.clear()
    plan = rows.analyze(low)
    c_made = min(j for j, e in enumerate(low.eqns) if e.prim.name == "multiply"
                 and [getattr(v, "shape", None) for v in e.invars] == [(10,), ()])
    (c_sum,) = [e.outvars[0].name for e in low.eqns if e.prim.name == "sum"
                and e.invars[0] is low.eqns[c_made].outvars[0]]
    assert (True, False) in asked[c_sum]      # x in rows: asked, and refused
    assert isinstance(plan.where[c_made], rows.OnRows) and c_made not in plan.recompute
    assert c_sum in {v.name for vs in plan.joins.values() for v in vs}
    assert len(rows.row_phases(plan)) >= 3


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


def _where(w):
    """A plan's place for an equation, as a word."""
    return "rows" if isinstance(w, rows.OnRows) else "serial"


def test_a_parameter_as_long_as_the_batch_is_read_whole(split):
    params, x, y = _mlp_data(7)        # the hidden layer has 7 units, the batch 7 rows
    plan = rows.analyze(jit(value_and_grad(_mlp)).lower(params, x, y))
    matmuls = [j for j, e in enumerate(jit(value_and_grad(_mlp)).lower(params, x, y).eqns)
               if e.prim.name == "matmul"]
    assert all(isinstance(plan.where[j], rows.OnRows) for j in matmuls)
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
    placed = [_where(plan.where[j]) for j, e in enumerate(graph.eqns) if e.prim.name in names]
    assert placed and set(placed) == {"rows"}
    assert sum(1 for w in plan.where.values() if isinstance(w, rows.OnRows)) > 0
    # index arrays hold absolute row numbers: gathers by them wait for whole values
    g = jit(lambda x, idx: x[fnp.arange(6), idx]).lower(x, np.arange(6) % 4)
    gp = rows.analyze(g)
    assert gp is None or all(isinstance(gp.where[j], rows.Serial) for j, e in enumerate(g.eqns)
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

    saved = (rows.MIN_ROW_WORK, rows.MAX_JOIN_FRACTION, threads._state["budget"])
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
        rows.MIN_ROW_WORK, rows.MAX_JOIN_FRACTION, threads._state["budget"] = saved


_RNG = np.random.default_rng(20240601)


_X3 = _RNG.normal(size=(5, 3, 4))


# ---- reductions ------------------------------------------------------------------------
@pytest.mark.parametrize("name", [
    "sum_kd_batch", "sum_neg_kd", "sum_none", "sum_tuple", "sum_neg_tuple_kd", "mean_1",
    "max_neg2", "max_batch", "prod_1", "argmax_none", "argmax_1", "argmax_neg_kd",
    "argmax_batch", "argmin_batch_kd", "all_any", "sum_bool", "sum_int", "count_nonzero",
    "var_std"])
def test_reductions_with_keepdims_negative_and_none_axes(split, name):
    f = {
        "sum_kd_batch": lambda x: fnp.sum(fnp.sin(x), axis=0, keepdims=True),
        "sum_neg_kd": lambda x: fnp.sin(x) - fnp.sum(fnp.sin(x), axis=-1, keepdims=True),
        "sum_none": lambda x: fnp.sum(fnp.sin(x)),
        "sum_tuple": lambda x: fnp.sum(fnp.sin(x), axis=(0, 2)),
        "sum_neg_tuple_kd": lambda x: fnp.sum(fnp.sin(x), axis=(-1, -3), keepdims=True),
        "mean_1": lambda x: fnp.mean(fnp.sin(x), axis=1),
        "max_neg2": lambda x: fnp.max(fnp.sin(x), axis=-2),
        "max_batch": lambda x: fnp.max(fnp.sin(x), axis=0),
        "prod_1": lambda x: fnp.prod(fnp.sin(x), axis=1),
        "argmax_none": lambda x: fnp.argmax(fnp.sin(x)),
        "argmax_1": lambda x: fnp.argmax(fnp.sin(x), axis=1),
        "argmax_neg_kd": lambda x: fnp.argmax(fnp.sin(x), axis=-1, keepdims=True),
        "argmax_batch": lambda x: fnp.argmax(fnp.sin(x), axis=0),
        "argmin_batch_kd": lambda x: fnp.argmin(fnp.sin(x), axis=0, keepdims=True),
        "all_any": lambda x: (fnp.all(x > 0, axis=1), fnp.any(x > 0, axis=0), fnp.any(x > 0)),
        "sum_bool": lambda x: (fnp.sum(x > 0), fnp.sum(x > 0, axis=0)),
        "sum_int": lambda x: fnp.sum((x * 10).astype(np.int32), axis=0),
        "count_nonzero": lambda x: fnp.count_nonzero(x > 0, axis=0),
        "var_std": lambda x: (fnp.var(x, axis=0), fnp.std(x, axis=1)),
    }[name]
    _check(split, f, _X3)


# ---- shape primitives --------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(-1, 2), (5, 12), (15, 4), (1, 5, 12), (5, 1, 3, 4),
                                   (3, 5, 4), (5, 4, 3)])
def test_reshapes_that_keep_or_merge_the_batch_axis(split, shape):
    _check(split, lambda x: fnp.reshape(fnp.sin(x), shape) * 2, _X3)


def test_transpose_broadcast_to_and_batch_axis_moved_last(split):
    x = _X3
    w = _RNG.normal(size=(5, 2))
    _check(split, lambda x: fnp.sum(fnp.transpose(fnp.sin(x), (2, 0, 1)) * 2, axis=1), x)
    _check(split, lambda x: fnp.broadcast_to(fnp.sin(x), (2, 5, 3, 4)) * 2, x)
    _check(split, lambda x: fnp.broadcast_to(fnp.sum(fnp.sin(x), axis=0), (2, 3, 4)) * 2, x)
    # the batch axis last, then contracted by a product: a partial sum
    _check(split, lambda x, w: fnp.transpose(fnp.sin(x), (1, 2, 0)) @ w, x, w)
    _check(split, grad(lambda x, w: fnp.sum(fnp.tanh(fnp.transpose(x, (1, 2, 0)) @ w) ** 2),
                       argnums=(0, 1)), x, w)


def test_casts_of_rows_and_of_partial_sums(split):
    x = _RNG.normal(size=(6, 4))
    _check(split, lambda x: (fnp.sin(x) * 10).astype(np.int64), x)
    _check(split, lambda x: fnp.sum(fnp.sin(x) * 10, axis=0).astype(np.int64), x)
    _check(split, lambda x: (fnp.sum(fnp.sin(x), axis=0) * 0).astype(bool), x)
    _check(split, lambda x: fnp.sum(fnp.sin(x), axis=0).astype(np.complex128), x)
    x32 = x.astype(np.float32)     # widening a partial sum
    _check(split, lambda x: fnp.sum(fnp.sin(x), axis=0).astype(np.float64), x32, tol=1e-6)


# ---- matrix products ---------------------------------------------------------------------
def test_matmul_with_stacked_and_broadcast_operands(split):
    x = _RNG.normal(size=(5, 4))
    w = _RNG.normal(size=(4, 3))
    a3, b3 = _RNG.normal(size=(5, 3, 4)), _RNG.normal(size=(5, 4, 2))
    c4 = _RNG.normal(size=(2, 5, 3, 4))
    _check(split, lambda x, w: w.T @ fnp.sin(x).T, x, w)
    _check(split, lambda x: fnp.sin(x).T @ x, x)                    # contracted batch
    _check(split, lambda x: fnp.sin(x) @ x.T, x)                    # outer over the batch
    _check(split, lambda a, b: fnp.sin(a) @ b, a3, b3)
    _check(split, lambda a: fnp.sin(a) @ fnp.ones((1, 4, 2)), a3)
    _check(split, lambda a, w: w.T @ fnp.swapaxes(fnp.sin(a), 1, 2), a3, w)
    _check(split, lambda c, b: fnp.sin(c) @ b, c4, b3)              # rows on axis 1
    _check(split, lambda c, b: fnp.sin(c) @ b, c4, _RNG.normal(size=(2, 1, 4, 2)))
    _check(split, lambda b: fnp.ones((5, 3, 4)) @ fnp.sin(b), b3)
    _check(split, lambda x: (x.T @ x) @ (x.T @ x), x)               # partial sums joined
    _check(split, lambda x: fnp.sin(x) @ x[0], x)                   # a vector operand


# ---- elementwise with three operands, literals, partial sums --------------------------------
def test_where_clip_and_partial_sums_in_elementwise_operations(split):
    x = _RNG.normal(size=(5, 4))
    y = _RNG.normal(size=(5, 4))
    lo = _RNG.normal(size=(5, 1))
    s = lambda x: fnp.sum(x, axis=0)                                # noqa: E731
    for f, args in [
        (lambda x, y: fnp.where(x > 0, x, y), (x, y)),
        (lambda x: fnp.where(np.array([True, False, True, False]), fnp.sin(x), 0.5), (x,)),
        (lambda x: fnp.where(x > 0, 1.0, -1), (x,)),
        (lambda x, lo: fnp.clip(x, lo, lo + 1), (x, lo)),
        (lambda x: fnp.clip(x, None, 0.3), (x,)),
        (lambda x: fnp.clip(x, np.zeros(4), None), (x,)),
        (lambda x: fnp.where(s(x) > 0, s(x), s(x * x)), (x,)),
        (lambda x: fnp.clip(s(x), -0.5, 0.5), (x,)),
        (lambda x: (s(x) + 1.0, s(x) + x, s(x) * s(x), 1.0 / s(x), s(x) ** 2), (x,)),
        (lambda x: (-s(x), fnp.abs(s(x)), fnp.sign(s(x)), s(x) > 0, s(x) % 1.0), (x,)),
        (lambda x: (s((x > 0).astype(np.int64)) // 2, s((x > 0).astype(np.int64)) / 3,
                    s((x > 0).astype(np.int64)) & 1), (x,)),
        (lambda x: (fnp.real(s(x * 1j + x)), fnp.imag(s(x * (1 + 2j))),
                    fnp.conj(s(x * 1j))), (x,)),
    ]:
        _check(split, f, *args)


# ---- kinds of outputs -------------------------------------------------------------------
def test_outputs_that_are_inputs_constants_literals_none_and_duplicates(split):
    x = _RNG.normal(size=(5, 4))
    w = _RNG.normal(size=(4, 3))
    c = _RNG.normal(size=(5, 4))
    jf = _check(split, lambda x, w: (fnp.sin(x) * 2, x, w, fnp.asarray(c), 3.0, 2, None,
                                     x.shape[0] * 2.0, np.float32(2.0)), x, w)
    out = jf(x, w)
    assert out[1] is x and out[2] is w
    assert out[6] is None and out[4] == 3.0 and type(out[7]) is float
    out[3][...] = 0                                    # a constant handed out is a copy
    np.testing.assert_array_equal(jf(x, w)[3], c)
    _check(split, lambda x: (fnp.sin(x) * 2,) * 2 + (fnp.sum(fnp.sin(x)),) * 2, x)
    _check(split, lambda x: {"a": [x * 2, (fnp.sum(x),)], "b": None}, x)


def test_integer_bool_and_narrow_dtypes(split):
    rng = np.random.default_rng(3)
    _check(split, lambda n: n * 2 + fnp.sum(n, axis=0), rng.integers(0, 10, (5, 4)))
    _check(split, lambda b: fnp.logical_not(b) & (b | True), rng.random((5, 4)) > 0.5)
    _check(split, lambda n: fnp.sum(n, axis=0), rng.integers(0, 255, (5, 4)).astype(np.uint8))
    _check(split, lambda n: fnp.sum(n), rng.integers(-100, 100, (5, 4)).astype(np.int8))
    _check(split, lambda n: fnp.sum(n * 2, axis=0),
           rng.normal(size=(5, 4)).astype(np.float16), tol=1e-2)
    _check(split, lambda x, s: (x * s, s * 3, fnp.sum(x, axis=0) * s),
           rng.normal(size=(5, 3)).astype(np.float32), 2.0, tol=1e-5)


def test_non_contiguous_and_read_only_inputs(split):
    xf = np.asfortranarray(_RNG.normal(size=(6, 4)))
    _check(split, lambda x: fnp.sum(fnp.sin(x) @ fnp.ones((4, 2)), axis=0), xf)
    _check(split, lambda x: fnp.sin(x) * 2, _RNG.normal(size=(12, 4))[::2])
    xr = _RNG.normal(size=(6, 4))
    xr.setflags(write=False)
    _check(split, lambda x: fnp.sin(x) * 2, xr)


# ---- convolutions and windows ------------------------------------------------------------
def test_conv_layouts_groups_and_dilations(split):
    rng = np.random.default_rng(4)

    def nhwc(x, w):
        return lax.conv_general_dilated(x, w, (2, 1), ((1, 2), (0, 1)), rhs_dilation=(1, 2),
                                        dimension_numbers=("NHWC", "HWIO", "NHWC"))

    def hwcn(x, w):
        return lax.conv_general_dilated(x, w, (1, 1), "SAME",
                                        dimension_numbers=("HWCN", "OIHW", "NHWC"))

    def grouped(x, w):
        return lax.conv_general_dilated(x, w, (1, 1), "SAME", lhs_dilation=(2, 1),
                                        feature_group_count=2)

    for f, x, w in [(nhwc, rng.normal(size=(5, 7, 6, 2)), rng.normal(size=(3, 3, 2, 4))),
                    (hwcn, rng.normal(size=(6, 6, 2, 5)), rng.normal(size=(3, 2, 3, 3))),
                    (grouped, rng.normal(size=(5, 4, 6, 6)), rng.normal(size=(6, 2, 3, 3))),
                    # a kernel with as many output channels as the batch has rows
                    (lambda x, w: lax.conv_general_dilated(x, w, (1, 1), "VALID"),
                     rng.normal(size=(5, 4, 6, 6)), rng.normal(size=(5, 4, 3, 3)))]:
        _check(split, f, x, w)
        _check(split, grad(lambda x, w: fnp.sum(fnp.sin(f(x, w))), argnums=(0, 1)), x, w)


def test_pooling_with_padding_strides_and_overlap(split):
    x = np.random.default_rng(5).normal(size=(5, 2, 7, 7))

    def pools(x):
        return (lax.reduce_window(x, -np.inf, lax.max, (1, 1, 3, 3), (1, 1, 2, 2),
                                  ((0, 0), (0, 0), (1, 1), (1, 1))),
                lax.reduce_window(x, 0.0, lax.add, (1, 1, 3, 2), (1, 1, 1, 2), "SAME"),
                lax.reduce_window(x, np.inf, lax.min, (1, 1, 2, 2), (1, 1, 2, 2), "VALID"),
                lax.reduce_window(x, 0.0, lax.add, (1, 1, 2, 2), (1, 1, 1, 1), "VALID",
                                  base_dilation=(1, 1, 2, 1), window_dilation=(1, 1, 1, 2)),
                lax.max_pool(x, (3, 3), (1, 1)), lax.avg_pool(x, (2, 3), (2, 1)))

    _check(split, pools, x)
    _check(split, grad(lambda x: sum(fnp.sum(fnp.sin(p) ** 2) for p in pools(x))), x)
    xn = np.transpose(x, (0, 2, 3, 1)).copy()
    _check(split, grad(lambda x: fnp.sum(fnp.sin(lax.reduce_window(
        x, -np.inf, lax.max, (1, 3, 3, 1), (1, 2, 2, 1), "SAME")) ** 2)), xn)
    # the batch axis second (axis 0 windowed): rows along axis 1
    _check(split, lambda x: lax.reduce_window(fnp.sin(x), 0.0, lax.add, (2, 1, 2), (1, 1, 2),
                                              "VALID"), x[:, 0].transpose(1, 0, 2).copy())


@pytest.mark.parametrize("window", [
    dict(window_dimensions=(2, 1, 2, 2), window_strides=(1, 1, 1, 1), padding="VALID"),
    dict(window_dimensions=(1, 1, 2, 2), window_strides=(2, 1, 1, 1), padding="VALID"),
    dict(window_dimensions=(1, 1, 2, 2), window_strides=(1, 1, 1, 1),
         padding=((1, 0), (0, 0), (0, 0), (0, 0))),
    dict(window_dimensions=(1, 1, 2, 2), window_strides=(1, 1, 1, 1), padding="VALID",
         base_dilation=(2, 1, 1, 1)),
])
def test_windows_over_the_batch_axis_run_whole(split, window):
    x = np.random.default_rng(6).normal(size=(5, 2, 5, 5))
    f = lambda x: lax.reduce_window(x, 0.0, lax.add, **window)   # noqa: E731
    _check(split, f, x, expect_split=False)
    _check(split, grad(lambda x: fnp.sum(fnp.sin(f(x)))), x, expect_split=False)


# ---- funcgrad_nn ------------------------------------------------------------------------
def test_nn_layers_and_losses(split):
    import funcgrad.random as fr
    import funcgrad_nn as nn
    import funcgrad_nn.functional as F
    rng = np.random.default_rng(7)
    f64, b = np.float64, 7
    net = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1, dtype=f64), nn.BatchNorm2d(3, dtype=f64),
                        nn.ReLU(), nn.Flatten(), nn.Linear(3 * 5 * 5, 4, dtype=f64))
    p, s = net.init(fr.key(0)), net.init_state()
    x, y = rng.normal(size=(b, 2, 5, 5)), rng.integers(0, 4, b)

    def bn_step(p, s, x, y):
        def loss(p):
            out, s2 = net.apply(p, s, x, train=True)
            return F.cross_entropy(out, y), s2
        return value_and_grad(loss, has_aux=True)(p)
    _check(split, bn_step, p, s, x, y)

    drop = nn.Sequential(nn.Linear(4, 6, dtype=f64), nn.Dropout(0.3), nn.Linear(6, 3, dtype=f64))
    pd, sd = drop.init(fr.key(1)), drop.init_state()
    xd, yd = rng.normal(size=(b, 4)), rng.integers(0, 3, b)
    _check(split, lambda p, x, y, k: value_and_grad(lambda p: F.cross_entropy(
        drop.apply(p, sd, x, train=True, key=k)[0], y))(p), pd, xd, yd, fr.key(5))

    logits, t = rng.normal(size=(b, 5)), rng.integers(0, 5, b)
    t[2] = -100
    wts = rng.random(5)
    for kw in [dict(), dict(label_smoothing=0.2), dict(weight=wts),
               dict(weight=wts, label_smoothing=0.1), dict(reduction="sum")]:
        _check(split, value_and_grad(lambda lg, t: F.cross_entropy(fnp.sin(lg), t, **kw)),
               logits, t)
    t1 = rng.integers(0, 5, b)
    t1[4] = 1
    _check(split, value_and_grad(lambda lg, t: F.cross_entropy(lg, t, ignore_index=1)),
           logits, t1)

    lstm = nn.LSTM(3, 4, num_layers=2, batch_first=True, dtype=f64)
    pl = lstm.init(fr.key(2))
    xs = rng.normal(size=(b, 6, 3))
    _check(split, value_and_grad(lambda p, x: fnp.mean(lstm(p, x)[0] ** 2)
                                 + fnp.sum(lstm(p, x)[1][1])), pl, xs)

    mha = nn.MultiheadAttention(8, 2, batch_first=True, dtype=f64)
    pm = mha.init(fr.key(4))
    q, kv = rng.normal(size=(b, 5, 8)), rng.normal(size=(b, 6, 8))
    mask = rng.random((b, 6)) > 0.7
    mask[:, 0] = False
    _check(split, grad(lambda p, q, kv: fnp.sum(mha(p, q, kv, kv, key_padding_mask=mask)[0] ** 2),
                       argnums=(0, 1, 2)), pm, q, kv)


@pytest.mark.parametrize("nthreads", [2, 3, 4, 5])
def test_odd_batches_over_more_threads_than_rows(split, nthreads):
    split.set_threads(nthreads)
    for batch in (2, 3, 7):
        _check(split, value_and_grad(_mlp, argnums=(0, 1)), *_mlp_data(batch))


@pytest.mark.parametrize("batch", [3, 5])
def test_parameters_as_long_as_the_batch(split, batch):
    # every parameter's leading length is the batch's (5 inputs, hidden = batch)
    _check(split, value_and_grad(_mlp, argnums=(0, 1)), *_mlp_data(batch, hidden=batch))


def test_one_jitted_function_over_several_batch_sizes(split):
    jf = jit(value_and_grad(_mlp))
    for batch in (4, 9, 4, 2, 9):
        args = _mlp_data(batch, seed=batch)
        jf(*args)
        _same(jf(*args), value_and_grad(_mlp)(*args), 1e-10)
    assert jf.cache_size() == 3


def test_concurrent_callers(split):
    jf = jit(value_and_grad(_mlp))
    argsets = [_mlp_data(b, seed=i) for i, b in enumerate([6, 6, 8, 8, 6, 8])]
    refs = [value_and_grad(_mlp)(*a) for a in argsets]
    for a in argsets:
        jf(*a)
    errors = []

    def worker(i):
        try:
            for _ in range(10):
                _same(jf(*argsets[i]), refs[i], 1e-10)
        except BaseException as e:        # noqa: BLE001 - reported below
            errors.append(e)
    ts = [threading.Thread(target=worker, args=(i,)) for i in range(len(argsets))]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors
    assert not threads.in_split()


@pytest.mark.parametrize("row", [0, 7])
def test_an_exception_in_a_slice_reaches_the_caller(split, row):
    x = np.arange(1, 9).reshape(8, 1).repeat(3, 1).astype(np.int64)
    n = np.ones((8, 3), np.int64)
    f = lambda x, n: (x * 2) ** n + 1                                  # noqa: E731
    jf = _check(split, f, x, n)
    bad = n.copy()
    bad[row, 1] = -1                     # integers to negative powers raise (in either slice)
    with pytest.raises(ValueError, match="negative integer powers"):
        f(x, bad)
    with pytest.raises(ValueError, match="negative integer powers"):
        jf(x, bad)
    assert not threads.in_split()
    _same(jf(x, n), f(x, n), 0)          # and the next call works


# ---- basic indexing, scatter and concatenate on slices -------------------------------------
def _placed(fun, *args, names=("getitem", "scatter", "concatenate")):
    """Where the compiled graph of ``fun`` runs its indexing/concatenation equations."""
    from funcgrad._src import rows
    graph = jit(fun).lower(*args)
    plan = rows.analyze(graph)
    assert plan is not None
    return [_where(plan.where[j]) for j, e in enumerate(graph.eqns) if e.prim.name in names]


_IDX_X = _RNG.normal(size=(5, 4, 3))


@pytest.mark.parametrize("index", [
    (Ellipsis, 1), (slice(None), Ellipsis, -1), (None,), (slice(None), None, 2),
    (None, slice(None), None, Ellipsis, None),
    (slice(None), slice(None, None, -2), slice(2, 0, -1)),
    (Ellipsis,), (slice(None), slice(3, 1)), (slice(None), -1, -2),
    (0,), (-1,), (slice(1, None),), (slice(None, None, -1),), (slice(None, None, 2),),
    (slice(0, 5),)])
def test_basic_indices_on_rows_and_on_the_batch_axis(split, index):
    def f(x):
        return fnp.sin(x)[index] * 2.0
    # (an integer, a partial or a reversed slice on the batch axis: the batch is cut whole)
    on_batch = index[0] != slice(None) and index[0] is not None and index[0] is not Ellipsis
    _check(split, f, _IDX_X)
    _check(split, grad(lambda x: fnp.sum(fnp.sin(f(x)) ** 2)), _IDX_X)
    _check(split, value_and_grad(lambda x: fnp.sum(fnp.sin(x[index]) ** 2)), _IDX_X,
           expect_split=not on_batch)
    assert _placed(f, _IDX_X) == ["serial" if on_batch else "rows"]


@pytest.mark.parametrize("index, where", [
    ((0,), "rows"), ((None, 1), "rows"), ((slice(None), slice(None, None, -1)), "rows"),
    ((Ellipsis, slice(None, None, -1)), "serial"), ((Ellipsis, -1), "serial"),
    ((1, Ellipsis, slice(1, None)), "serial")])
def test_basic_indices_with_the_batch_axis_last(split, index, where):
    def f(x):
        return fnp.transpose(fnp.sin(x), (1, 2, 0))[index] * 2.0
    _check(split, f, _IDX_X)
    _check(split, grad(lambda x: fnp.sum(fnp.sin(f(x)) ** 2)), _IDX_X)
    assert _placed(f, _IDX_X) == [where]


@pytest.mark.parametrize("index", [(None,), (slice(None), None), (Ellipsis, None),
                                   (None, None, Ellipsis, None), (0,), (slice(None, None, -1),)])
def test_basic_indices_of_a_one_dimensional_batch(split, index):
    x = _RNG.normal(size=7)
    f = lambda x: fnp.sin(x)[index] * 2.0                                 # noqa: E731
    _check(split, f, x)
    _check(split, grad(lambda x: fnp.sum(fnp.sin(f(x)) ** 2)), x)


_AT = {
    "set_scalar": lambda x, p: fnp.at(fnp.sin(x))[:, 0].set(2.0),
    "add_scalar_ellipsis": lambda x, p: fnp.at(fnp.sin(x))[..., 1:, -1].add(2.0),
    "set_rows": lambda x, p: fnp.at(fnp.sin(x))[:, 1].set(fnp.cos(x[:, 2])),
    "add_rows_reversed": lambda x, p: fnp.at(fnp.sin(x))[:, ::-1].add(fnp.cos(x)),
    "set_param_broadcast": lambda x, p: fnp.at(fnp.sin(x))[:, 1:].set(p[1:]),
    "set_rows_broadcast": lambda x, p: fnp.at(fnp.sin(x))[:, :, 1:].set(fnp.cos(x[:, :, :1])),
    "set_with_none": lambda x, p: fnp.at(fnp.sin(x))[:, None, 2].set(fnp.cos(x[:, None, 0])),
    "into_constant": lambda x, p: fnp.at(fnp.zeros((5, 4, 3)))[:, 1, ::2].set(fnp.sin(x[:, 0, :2])),
    "into_param_broadcast": lambda x, p: fnp.at(fnp.broadcast_to(p, (5, 4, 3)))[:, 1, 2].add(
        fnp.sin(x[:, 0, 0])),
    "batch_last": lambda x, p: fnp.at(fnp.transpose(fnp.sin(x), (1, 2, 0)))[0].set(
        p[0][:, None] * 3.0),
    "batch_last_into_const": lambda x, p: fnp.at(fnp.ones((4, 3, 5)))[1, 2].set(
        fnp.sin(x[:, 0, 0])),
}


@pytest.mark.parametrize("name", sorted(_AT))
def test_index_updates_run_on_slices(split, name):
    f = _AT[name]
    p = _RNG.normal(size=(4, 3))
    _check(split, f, _IDX_X, p)
    _check(split, grad(lambda x, p: fnp.sum(fnp.sin(f(x, p)) ** 2), argnums=(0, 1)), _IDX_X, p)
    assert _placed(f, _IDX_X, p, names=("scatter",)) == ["rows"]


@pytest.mark.parametrize("index", [(0,), (-1, 1), (slice(1, None),), (slice(None, None, -1),),
                                   (slice(None, None, 2), 0)])
def test_index_updates_on_the_batch_axis_run_whole(split, index):
    def f(x):
        h = fnp.sin(x)
        return fnp.at(h)[index].add(fnp.cos(h[index]))
    _check(split, f, _IDX_X)
    _check(split, grad(lambda x: fnp.sum(fnp.sin(f(x)) ** 2)), _IDX_X)
    assert _placed(f, _IDX_X, names=("scatter",)) == ["serial"]


def test_concatenate_of_rows_with_whole_operands(split):
    x, p, pbb = _RNG.normal(size=(5, 3)), _RNG.normal(size=(2, 5)), _RNG.normal(size=(5, 5))
    cb = _RNG.normal(size=(5, 2))
    cases = [
        (lambda x, p: fnp.concatenate([fnp.sin(x), cb], axis=1), "rows"),
        (lambda x, p: fnp.concatenate([cb, fnp.sin(x), fnp.cos(x)], axis=-1), "rows"),
        (lambda x, p: fnp.concatenate([p, fnp.sin(x).T, p], axis=0) * 2.0, "rows"),
        (lambda x, p: fnp.stack([fnp.sin(x), fnp.cos(x)], axis=-1), "rows"),
        (lambda x, p: fnp.concatenate([fnp.sin(x), fnp.cos(x)], axis=0), "serial"),
        (lambda x, p: fnp.concatenate([fnp.sin(x).T, fnp.cos(x).T], axis=1), "serial"),
        (lambda x, p: fnp.concatenate([fnp.sin(x), x[:2] * 1.0], axis=0), "serial"),
    ]
    for f, where in cases:
        _check(split, f, x, p)
        _check(split, grad(lambda x, p: fnp.sum(fnp.sin(f(x, p)) ** 2), argnums=(0, 1)), x, p)
        assert _placed(f, x, p, names=("concatenate",)) == [where]
    # a parameter as long as the batch on both axes, concatenated with rows
    for axis, t in ((1, False), (0, True)):
        f = lambda x, q: fnp.concatenate(                                  # noqa: E731
            [fnp.sin(x).T if t else fnp.sin(x), q], axis=axis)
        _check(split, f, x, pbb)
        _check(split, grad(lambda x, q: fnp.sum(fnp.sin(f(x, q)) ** 2), argnums=(0, 1)), x, pbb)


def test_indexing_and_concatenation_of_partial_sums(split):
    x, idx = _RNG.normal(size=(7, 5)), _RNG.integers(0, 5, 7)

    def f(x, idx):
        s = fnp.sum(fnp.sin(x), axis=0)            # a partial sum on the slices
        t = fnp.sum(x, axis=0)
        u = fnp.at(s)[1:3].add(t[:2])              # scatter of two partial sums
        return (u[idx % 5], u[None, ::-1], fnp.concatenate([s, t]) * 2.0,
                (fnp.sin(x).T @ fnp.sin(x[:, :1]))[:, 0] * fnp.sin(x[:, :5]).T[:, 0])
    _check(split, f, x, idx)
    _check(split, grad(lambda x: fnp.sum(fnp.sin(f(x, idx)[0])) + fnp.sum(f(x, idx)[2] ** 2)), x)


@pytest.mark.parametrize("nthreads", [2, 3, 4, 5])
def test_slicing_updates_and_concatenation_over_odd_batches(split, nthreads):
    split.set_threads(nthreads)
    rng = np.random.default_rng(nthreads)
    for batch in (2, 3, 5, 7):
        x, p = rng.normal(size=(batch, 6)), rng.normal(size=6)

        def f(x, p, batch=batch):
            h = fnp.at(fnp.sin(x))[:, ::2].add(p[::2])
            h = fnp.concatenate([h[:, 3:], h[:, :3][..., ::-1],
                                 np.arange(batch * 1.0)[:, None]], axis=1)
            h = fnp.at(h)[..., -1].set(h[:, 0] * p[0])
            return h[:, None, 1:5:2] * h[:, None, :2]
        _check(split, f, x, p)
        _check(split, grad(lambda x, p: fnp.sum(fnp.sin(f(x, p)) ** 2), argnums=(0, 1)), x, p)


@pytest.mark.parametrize("mode", ["LSTM", "GRU"])
def test_recurrent_layers_sequence_first_and_bidirectional(split, mode):
    import funcgrad.random as fr
    import funcgrad_nn as nn
    rng = np.random.default_rng(11)
    m = getattr(nn, mode)(3, 4, num_layers=2, bidirectional=True, dtype=np.float64)
    p = m.init(fr.key(1))
    xs = rng.normal(size=(4, 5, 3))          # (L, N, H): the batch is axis 1
    h0 = rng.normal(size=(4, 5, 4))
    hx = (h0, rng.normal(size=(4, 5, 4))) if mode == "LSTM" else h0
    _check(split, value_and_grad(lambda p, x, hx: fnp.mean(m(p, x, hx)[0] ** 2),
                                 argnums=(0, 1, 2)), p, xs, hx)


def test_attention_sequence_first(split):
    import funcgrad.random as fr
    import funcgrad_nn as nn
    rng = np.random.default_rng(12)
    mha = nn.MultiheadAttention(8, 2, dtype=np.float64)
    pm = mha.init(fr.key(4))
    pm["in_proj_bias"] = rng.normal(size=24)
    q, kv = rng.normal(size=(5, 24, 8)), rng.normal(size=(6, 24, 8))   # N = 3 * E
    _check(split, grad(lambda p, q, kv: fnp.sum(mha(p, q, kv, kv)[0] ** 2)
                       + fnp.sum(mha(p, q, kv, kv)[1]), argnums=(0, 1, 2)), pm, q, kv)


def _places(fun, *args, prim):
    """Where each equation of ``prim`` runs in the split plan of ``jit(fun)(*args)``."""
    g = jit(fun).lower(*args).graph()
    plan = rows.analyze(g)
    assert plan is not None
    return [plan.where[j] for j, e in enumerate(g.eqns) if e.prim.name == prim]


def test_embedding_lookups_and_their_gradients_run_on_slices(split):
    rng = np.random.default_rng(21)
    table = rng.normal(size=(9, 4))
    ids = rng.integers(-9, 9, size=(6, 5))
    ids[:, 0] = 3                            # one row looked up by every slice
    cols = ids % 4                           # a second axis's lookup: rows on axis 1 then
    f = value_and_grad(lambda t, ids, cols: fnp.sum(fnp.sin(t[ids]) ** 2)
                       + fnp.sum(t[:, cols][0] * t[1, 0]))
    _check(split, f, table, ids, cols)
    assert all(isinstance(w, rows.OnRows)
               for w in _places(f, table, ids, cols, prim="getitem")[:2])
    # x.at[ids].add(v): a whole start (added on one slice only) and rows of updates
    def add(t, ids, v):
        return fnp.at(t)[ids].add(v * 2.0)
    g = jit(add)
    v = rng.normal(size=(6, 5, 4))
    _check(split, add, table, ids, v)
    assert all(isinstance(w, rows.OnRows) for w in _places(g, table, ids, v, prim="scatter"))


def _rnn(reverse):
    def loss(w, u, table, ids, h0):
        xs = fnp.swapaxes(table[ids], 0, 1)              # (T, N, E)

        def cell(h, x):
            h = fnp.tanh(x @ w + h @ u)
            return h, h * 2.0
        h, hs = lax.scan(cell, h0, xs, reverse=reverse)
        return fnp.mean(hs ** 2) + fnp.sum(fnp.cos(h))
    return loss


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("start", ["zeros", "given"])
def test_scans_over_the_batch_run_on_slices(split, reverse, start):
    rng = np.random.default_rng(22)
    n, t, e, hdim = 6, 5, 3, 4
    w, u = rng.normal(size=(e, hdim)) * 0.5, rng.normal(size=(hdim, hdim)) * 0.5
    table, ids = rng.normal(size=(7, e)), rng.integers(0, 7, size=(n, t))
    loss = _rnn(reverse)
    if start == "zeros":
        f = value_and_grad(lambda w, u, table, ids: loss(w, u, table, ids,
                                                         fnp.zeros((n, hdim))),
                           argnums=(0, 1, 2))
        args = (w, u, table, ids)
    else:
        f = value_and_grad(loss, argnums=(0, 1, 2, 4))
        args = (w, u, table, ids, rng.normal(size=(n, hdim)))
    _check(split, f, *args)
    places = _places(f, *args, prim="scan")
    assert len(places) == 2 and all(isinstance(w_, rows.OnRows) for w_ in places)


def test_a_scan_adding_partial_sums_starts_from_a_share_of_its_start(split):
    rng = np.random.default_rng(23)
    x, w, acc0 = rng.normal(size=(6, 5, 3)), rng.normal(size=(3, 3)), rng.normal(size=(3, 3))

    def f(x, w, acc0):                       # x: (N, T, E), scanned over T
        x = fnp.swapaxes(x, 0, 1)

        def step(c, xt):
            h, acc = c
            h = fnp.tanh(xt + h @ w)
            return (h, acc + xt.T @ h), fnp.sum(h, axis=1)
        (h, acc), s = lax.scan(step, (fnp.zeros((6, 3)), acc0), x)
        return acc, h, s
    _check(split, f, x, w, acc0)
    assert all(isinstance(p, rows.OnRows) for p in _places(f, x, w, acc0, prim="scan"))


def test_scans_that_need_the_whole_batch_run_whole(split):
    rng = np.random.default_rng(24)
    x, w = rng.normal(size=(6, 5, 3)), rng.normal(size=(3, 3))

    def centred(x, w):                       # a mean over the batch inside the step
        x = fnp.swapaxes(x, 0, 1)

        def step(h, xt):
            h = fnp.tanh(xt + h @ w)
            return h - fnp.mean(h, axis=0), fnp.sum(h ** 2)
        return lax.scan(step, fnp.zeros((6, 3)), x)

    def counted(x, w):                       # a whole carry beside one in rows
        x = fnp.swapaxes(x, 0, 1)

        def step(c, xt):
            h, k = c
            h = fnp.tanh(xt + h @ w) * k
            return (h, k + 1.0), h
        return lax.scan(step, (fnp.zeros((6, 3)), 1.0), x)
    for f in (centred, counted):
        jf = jit(f)
        _same(jf(x, w), f(x, w), 1e-12)
        _same(jf(x, w), f(x, w), 1e-12)
        places = _places(f, x, w, prim="scan")     # (the rest of the graph splits)
        assert places and all(isinstance(p, rows.Serial) for p in places)


@pytest.mark.parametrize("batch, splits", [(8, False), (512, True)])
def test_loops_run_on_slices_only_with_big_enough_steps(batch, splits):
    # default thresholds: a step's small operations contend for the GIL on slices
    rng = np.random.default_rng(25)
    x, w = rng.normal(size=(batch, 6, 64)), rng.normal(size=(64, 64)) * 0.1

    def f(x, w):
        def step(h, xt):
            h = fnp.tanh(xt + h @ w)
            return h, h * h
        h, hs = lax.scan(step, fnp.zeros((batch, 64)), fnp.swapaxes(x, 0, 1))
        return fnp.sum(hs) + fnp.sum(h)
    g = jit(grad(f, argnums=(0, 1))).lower(x, w).graph()
    plan = rows.analyze(g)
    on = plan is not None and any(isinstance(plan.where[j], rows.OnRows)
                                  for j, e in enumerate(g.eqns) if e.prim.name == "scan")
    assert on == splits


def test_scans_on_slices_with_the_numba_backend(split, numba):
    rng = np.random.default_rng(26)
    n, t, e, hdim = 8, 5, 3, 4
    w, u = rng.normal(size=(e, hdim)) * 0.5, rng.normal(size=(hdim, hdim)) * 0.5
    table, ids = rng.normal(size=(7, e)), rng.integers(0, 7, size=(n, t))
    f = value_and_grad(lambda w, u, table, ids: _rnn(False)(w, u, table, ids,
                                                            fnp.zeros((n, hdim))),
                       argnums=(0, 1, 2))
    jf = jit(f, backend="numba")
    for _ in range(3):                       # replay, loops split, native loops
        out = jf(w, u, table, ids)
    _same(out, f(w, u, table, ids), 1e-10)
    places = _places(f, w, u, table, ids, prim="scan")
    assert len(places) == 2 and all(isinstance(p, rows.OnRows) for p in places)


def test_sequence_linear_weight_gradient_is_one_product_per_slice(split, monkeypatch):
    """A layer applied at every position of a sequence: under jit its weight's cotangent,
    ``sum(swap(x) @ g)`` over the batch, runs as one product per slice of the batch
    (compiler.product_sums on each slice's program; the row analysis sees the matmul and
    the sum), and the gradients equal the eager ones."""
    calls = []
    real = compiler._product_sum

    def counted(a, b):
        calls.append(a.shape)
        return real(a, b)
    monkeypatch.setattr(compiler, "_product_sum", counted)

    def loss(w, x):
        h = fnp.tanh(x @ w)
        return fnp.sum(fnp.sin(h) * h ** 2 + fnp.cos(x) * h)

    rng = np.random.default_rng(2)
    w = rng.standard_normal((8, 8)).astype(np.float32)
    x = rng.standard_normal((64, 12, 8)).astype(np.float32)
    want = funcgrad.grad(loss, argnums=(0, 1))(w, x)
    step = funcgrad.jit(funcgrad.grad(loss, argnums=(0, 1)))
    step(w, x)                  # (the first call replays the graph; compiled from then on)
    got = step(w, x)
    for g, e in zip(got, want):
        np.testing.assert_allclose(g, e, rtol=2e-4, atol=2e-4)
    assert split.calls == [64]
    # one product per slice, on the slice's rows of swap(x): (32, 8, 12) each
    assert calls == [(32, 8, 12), (32, 8, 12)], calls

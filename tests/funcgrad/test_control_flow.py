"""lax.scan, fori_loop, while_loop, cond, switch and map: values and every
transformation against JAX (where installed), staging as one equation, and errors."""
import numpy as np
import pytest

import funcgrad
import funcgrad.lax as lax
import funcgrad.numpy as fnp
from funcgrad.errors import FuncgradTypeError

from .jax_reference import _assert_trees_close, _jax

RNG = np.random.default_rng(0)
W = RNG.normal(size=(3, 3)) * 0.5
XS = RNG.normal(size=(5, 3))
H0 = RNG.normal(size=3)
XS_BATCH = RNG.normal(size=(6, 2, 3))


# Each program is written once over a (numpy, lax) pair, so the same code runs on
# funcgrad and on JAX; each takes one float64 array and returns a scalar.
def p_scan(np_, lax_):
    def f(w):
        def body(h, x):
            h = np_.tanh(h @ w + x)
            return h, np_.sum(h * h)
        h, ys = lax_.scan(body, np_.asarray(H0), np_.asarray(XS))
        return np_.sum(h) + np_.sum(ys)
    return f


def p_scan_reverse_pytree(np_, lax_):
    def f(w):
        def body(c, x):
            a, (b, k) = c
            a2 = np_.sin(a * x["u"]) + b @ w
            return (a2, (b * 0.9 + x["v"], k + 1)), {"p": a2.sum(), "q": x["u"] * b}
        (a, (b, k)), ys = lax_.scan(body, (np_.asarray(H0), (np_.ones(3), 0)),
                                    {"u": np_.asarray(XS), "v": np_.asarray(XS[::-1])},
                                    reverse=True)
        return np_.sum(a) + np_.sum(b) + np_.sum(ys["p"]) + np_.sum(ys["q"] ** 2)
    return f


def p_scan_closure_consts(np_, lax_):
    def f(w):
        scale = np_.sum(w) * 0.1

        def body(c, _):
            return c * np_.cos(w[0]) + scale, c[1]
        c, ys = lax_.scan(body, np_.asarray(H0), None, length=4)
        return np_.sum(c) + np_.sum(ys)
    return f


def p_nested_scan(np_, lax_):
    def f(w):
        def inner(c, x):
            return np_.tanh(c * x + w[0]), c.sum()

        def outer(c, x):
            c2, ys = lax_.scan(inner, c, np_.stack([x, x * 0.5]))
            return c2, ys.sum()
        c, ys = lax_.scan(outer, np_.asarray(H0), np_.asarray(XS))
        return np_.sum(c) + np_.sum(ys)
    return f


def p_fori(np_, lax_):
    def f(w):
        return np_.sum(lax_.fori_loop(0, 4, lambda i, h: np_.tanh(h @ w) + i, np_.asarray(H0)))
    return f


def p_cond(np_, lax_):
    def f(w):
        s = np_.sum(w)
        y = lax_.cond(s > 0, lambda a, b: np_.sin(a) * b, lambda a, b: a * a - b, w, s)
        return np_.sum(y)
    return f


def p_switch(np_, lax_):
    def f(w):
        i = (np_.sum(w) > 0).astype(np_.int32) + 1
        y = lax_.switch(i, [lambda a: a, lambda a: np_.sin(a) * w[1], lambda a: a ** 3], w[0])
        return np_.sum(y)
    return f


def p_map(np_, lax_):
    def f(w):
        return np_.sum(lax_.map(lambda x: np_.tanh(x @ w), np_.asarray(XS)))
    return f


def p_scan_with_cond(np_, lax_):
    def f(w):
        def body(h, x):
            h = lax_.cond(np_.sum(x) > 0, lambda h: np_.tanh(h @ w), lambda h: h * x, h)
            return h, h[0]
        h, ys = lax_.scan(body, np_.asarray(H0), np_.asarray(XS))
        return np_.sum(h) + np_.sum(ys)
    return f


def p_rnn_batch(np_, lax_):
    """A batch of RNNs (a matrix carry): the reverse pass accumulates ``x.T @ g`` and
    ``h.T @ g`` products over the steps, which the split loop sums as one contraction."""
    xs = np_.asarray(XS_BATCH)

    def f(w):
        def body(h, x):
            g = x @ w.T
            h2 = np_.tanh(h @ w + g + 0.1)
            return h2, (h2 * g).sum(axis=1)
        h, ys = lax_.scan(body, np_.ones((2, 3)) * 0.2, xs)
        h2, ys2 = lax_.scan(body, h, xs, reverse=True)
        return np_.sum(h2 ** 2) + np_.sum(ys * ys2)
    return f


def p_rnn_columns(np_, lax_):
    """W6's RNN: the step reads its carry transposed and returns a transpose."""
    xs = np_.asarray(XS_BATCH)

    def f(w):
        def body(h, x):
            return np_.tanh(w @ h.T + w[:, :1] * x.T).T, None
        h, _ = lax_.scan(body, np_.ones((2, 3)) * 0.3, xs)
        return np_.sum(np_.sin(h))
    return f


PROGRAMS = [p_scan, p_scan_reverse_pytree, p_scan_closure_consts, p_nested_scan, p_fori,
            p_cond, p_switch, p_map, p_scan_with_cond, p_rnn_batch, p_rnn_columns]


def _pair(prog):
    jax = _jax()
    return prog(fnp, lax), prog(jax.numpy, jax.lax), jax


@pytest.mark.parametrize("prog", PROGRAMS, ids=lambda p: p.__name__)
def test_against_jax_values_and_derivatives(prog):
    f, jf, jax = _pair(prog)
    w = W.copy()
    t = RNG.normal(size=W.shape)
    _assert_trees_close(f(w), jf(w), rtol=1e-9, atol=1e-10)
    _assert_trees_close(funcgrad.jit(f)(w), jf(w), rtol=1e-9, atol=1e-10)
    want_g = jax.grad(jf)(w)
    _assert_trees_close(funcgrad.grad(f)(w), want_g, rtol=1e-8, atol=1e-10)
    _assert_trees_close(funcgrad.jit(funcgrad.grad(f))(w), want_g, rtol=1e-8, atol=1e-10)
    _assert_trees_close(funcgrad.grad(funcgrad.jit(f))(w), want_g, rtol=1e-8, atol=1e-10)
    _assert_trees_close(funcgrad.jvp(f, (w,), (t,)), jax.jvp(jf, (w,), (t,)), rtol=1e-8,
                        atol=1e-10)
    ws = np.stack([w, -w, w * 0.3])
    _assert_trees_close(funcgrad.vmap(f)(ws), jax.vmap(jf)(ws), rtol=1e-9, atol=1e-10)
    _assert_trees_close(funcgrad.vmap(funcgrad.grad(f))(ws), jax.vmap(jax.grad(jf))(ws),
                        rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("prog", PROGRAMS, ids=lambda p: p.__name__)
def test_repeated_jitted_calls_against_jax(prog):
    # a scan body's first run is a plain loop; later runs split it (the steps' shared
    # work batched before and after the loop, accumulators summed once): same results
    f, jf, jax = _pair(prog)
    w = W.copy()
    ws = np.stack([w, -w, w * 0.3])
    t = RNG.normal(size=W.shape)
    cases = [(funcgrad.jit(f), jf, (w,)), (funcgrad.jit(funcgrad.grad(f)), jax.grad(jf), (w,)),
             (funcgrad.jit(funcgrad.vmap(funcgrad.grad(f))), jax.vmap(jax.grad(jf)), (ws,)),
             (funcgrad.jit(lambda v: funcgrad.jvp(funcgrad.grad(f), (v,), (t,))[1]),
              lambda v: jax.jvp(jax.grad(jf), (v,), (t,))[1], (w,))]
    for fg, fj, args in cases:
        want = fj(*args)
        for _ in range(4):
            _assert_trees_close(fg(*args), want, rtol=1e-7, atol=1e-9)


def _loop_splits(prog, w):
    """The split scan bodies of ``jit(grad(prog))`` at ``w``, after calls that reuse them
    and give the first call's gradient again."""
    from funcgrad._src.prims.control_flow import _LoopSplit
    g = funcgrad.jit(funcgrad.grad(prog(fnp, lax)))
    first = g(w)
    for _ in range(2):
        np.testing.assert_allclose(g(w), first, rtol=1e-12, atol=1e-14)
    return [s for e in g.lower(w).eqns if e.prim.name == "scan"
            for s in e.params["body"].__dict__.get("_derived", {}).values()
            if isinstance(s, _LoopSplit)]


def test_split_loop_batches_the_shared_work_and_accumulates_once():
    splits = _loop_splits(p_rnn_batch, W.copy())
    assert len(splits) == 4
    # the forward scans' input products run before the loop; the reverse scans sum the
    # weight's gradient after it, as one contraction
    assert sum(s.before is not None for s in splits) >= 2
    assert sum(spec == "matmul" for s in splits for _, _, spec in s.acc) >= 2
    # W6's RNN carries h.T through its loops, forward and reverse
    splits = _loop_splits(p_rnn_columns, W.copy())
    assert [len(s.flips) for s in splits] == [1, 1]


def test_split_loop_writes_per_step_outputs_in_place_without_aliasing(monkeypatch):
    """The replay loop writes a per-step output made by a ufunc, sigmoid or concatenate
    straight into its row of the stacked result (no copy after the call); every row keeps
    its own step's value, and the final carry is not a view of the stacked ys (a carry
    that is also a y is still copied)."""
    import builtins

    from funcgrad._src.prims import control_flow as cf
    sources = []

    def spy_compile(src, filename, mode, *a, **k):
        if filename == "<funcgrad.scan loop>":
            sources.append(src)
        return builtins.compile(src, filename, mode, *a, **k)
    monkeypatch.setattr(cf, "compile", spy_compile, raising=False)

    def run(m, xs, h0):
        def step(h, x):
            g = x + m.concatenate([h, h], axis=-1)
            a, b = m.split(g, 2, axis=-1)
            s = funcgrad.nn.sigmoid(a)
            t = m.tanh(b)
            c = m.concatenate([s, t], axis=-1)
            h2 = c[..., :2] * c[..., 2:]
            return h2, (s, t, c, h2)
        return lax.scan(step, h0, xs)

    rng = np.random.default_rng(0)
    xs = rng.standard_normal((6, 3, 4))
    h0 = rng.standard_normal((3, 2))
    f = funcgrad.jit(lambda xs, h0: run(fnp, xs, h0))
    want = run(fnp, xs, h0)                     # eager: the loop step by step
    for _ in range(3):
        got = f(xs, h0)
    _assert_trees_close(got, want, rtol=1e-12, atol=1e-14)
    h, (s, t, st, hs) = got
    assert len(np.unique(np.round(s[:, 0, 0], 12))) == 6     # one row per step
    assert not np.shares_memory(h, hs)
    loop = [src for src in sources if "out=e" in src]
    assert loop, sources
    # sigmoid, tanh and concatenate write in place; the carry h2 is copied
    assert loop[-1].count("out=e") == 3 and loop[-1].count("] = ") == 1, loop[-1]


@pytest.mark.parametrize("view", [lambda y: y[:, ::-1], lambda y: y.T.reshape(3, 4),
                                  lambda y: fnp.transpose(fnp.transpose(y) * 1.0)],
                         ids=["reversed", "transposed-reshaped", "transpose-pair"])
def test_split_loop_final_carry_viewing_a_per_step_output_is_not_aliased(view):
    """A per-step output written in place by its ufunc must not be one the carry is a
    view of (``c = y[:, ::-1]``): the final carry was a view of the last row of ys, so
    changing one result changed the other."""
    w = np.eye(4) * 0.5

    def f(h, xs):
        def body(c, x):
            y = fnp.tanh(fnp.reshape(c, (3, 4)) @ w + x)
            return view(y), y
        return lax.scan(body, h, xs)

    h0 = np.ones((3, 4))
    xs = np.linspace(0, 1, 60).reshape(5, 3, 4)
    jf = funcgrad.jit(f)
    want = f(h0, xs)
    for _ in range(3):                          # the split loop is built from the 2nd call
        c, ys = jf(h0, xs)
    _assert_trees_close((c, ys), want, rtol=1e-12, atol=1e-14)
    assert not np.shares_memory(c, ys)
    keep = ys.copy()
    c[...] = 7.0
    np.testing.assert_array_equal(ys, keep)


@pytest.mark.parametrize("prog", [p_scan, p_fori, p_cond, p_scan_closure_consts],
                         ids=lambda p: p.__name__)
def test_against_jax_second_order(prog):
    f, jf, jax = _pair(prog)
    w = W.copy()
    t = RNG.normal(size=W.shape)
    hvp = lambda g, x: g(x)  # noqa: E731
    _assert_trees_close(
        funcgrad.jvp(funcgrad.grad(f), (w,), (t,))[1], jax.jvp(jax.grad(jf), (w,), (t,))[1],
        rtol=1e-7, atol=1e-9)
    g2 = funcgrad.grad(lambda v: fnp.sum(funcgrad.grad(f)(v) ** 2))
    jg2 = jax.grad(lambda v: jax.numpy.sum(jax.grad(jf)(v) ** 2))
    _assert_trees_close(hvp(g2, w), jg2(w), rtol=1e-7, atol=1e-9)


def test_while_loop_against_jax():
    jax = _jax()

    def prog(np_, lax_):
        def f(x):
            def body(c):
                i, v = c
                return i + 1, np_.sin(v) * 1.5 + x
            return lax_.while_loop(lambda c: (c[0] < 6) & (np_.sum(c[1]) < 40.0), body,
                                   (0, x))[1].sum()
        return f
    f, jf = prog(fnp, lax), prog(jax.numpy, jax.lax)
    x = np.array([0.3, 1.2, -0.4])
    t = np.array([1.0, 0.5, -2.0])
    _assert_trees_close(f(x), jf(x))
    _assert_trees_close(funcgrad.jit(f)(x), jf(x))
    _assert_trees_close(funcgrad.jvp(f, (x,), (t,)), jax.jvp(jf, (x,), (t,)), rtol=1e-9)
    _assert_trees_close(funcgrad.jacfwd(f)(x), jax.jacfwd(jf)(x), rtol=1e-9)
    xs = np.stack([x, 3 * x, -x, x * 0])
    _assert_trees_close(funcgrad.vmap(f)(xs), jax.vmap(jf)(xs), rtol=1e-9)
    _assert_trees_close(funcgrad.jit(funcgrad.vmap(f))(xs), jax.vmap(jf)(xs), rtol=1e-9)
    _assert_trees_close(funcgrad.vmap(funcgrad.jacfwd(f))(xs), jax.vmap(jax.jacfwd(jf))(xs),
                        rtol=1e-9)


def test_while_loop_grad_names_forward_mode():
    f = lambda x: lax.while_loop(lambda v: v < 10, lambda v: v * 2, x)  # noqa: E731
    with pytest.raises(FuncgradTypeError, match="forward mode"):
        funcgrad.grad(f)(1.0)


def test_vmap_cond_batched_predicate_is_a_select():
    jax = _jax()
    prog = lambda np_, lax_: (lambda x: lax_.cond(x[0] > 0, lambda v: v * 2.0,  # noqa: E731
                                                  lambda v: -v, x))
    xs = RNG.normal(size=(6, 2))
    _assert_trees_close(funcgrad.vmap(prog(fnp, lax))(xs),
                        jax.vmap(prog(jax.numpy, jax.lax))(xs))
    g = funcgrad.make_graph(funcgrad.vmap(prog(fnp, lax)))(xs)
    assert "cond" not in [e.prim.name for e in g.eqns]


def test_switch_clamps_the_index():
    branches = [lambda x: x + 1.0, lambda x: x * 10.0]
    assert lax.switch(-3, branches, 2.0) == 3.0
    assert lax.switch(7, branches, 2.0) == 20.0
    f = funcgrad.jit(lambda i, x: lax.switch(i, branches, x))
    assert float(f(np.int32(9), np.float64(2.0))) == 20.0
    assert float(f(np.int32(-9), np.float64(2.0))) == 3.0


def test_eager_results_and_docs():
    c, ys = lax.scan(lambda c, x: (c + x, c), 0.0, np.arange(4.0))
    assert float(c) == 6.0 and ys.tolist() == [0.0, 0.0, 1.0, 3.0]
    c, ys = lax.scan(lambda c, x: (c + x, c), 0.0, np.arange(4.0), reverse=True)
    assert float(c) == 6.0 and ys.tolist() == [6.0, 5.0, 3.0, 0.0]
    assert lax.fori_loop(0, 5, lambda i, s: s + i, 0) == 10
    assert lax.while_loop(lambda x: x < 10, lambda x: x * 2, 1) == 16
    assert lax.map(lambda x: x * 2, np.arange(3.0)).tolist() == [0.0, 2.0, 4.0]


@pytest.mark.parametrize("length", [10, 1000])
def test_jitted_scan_graph_does_not_grow_with_length(length):
    def f(h, xs):
        return lax.scan(lambda h, x: (fnp.tanh(h * x + 1.0), h.sum()), h, xs)
    g10 = funcgrad.make_graph(f)(np.ones(3), np.ones((10, 3)))
    g = funcgrad.make_graph(f)(np.ones(3), np.ones((length, 3)))
    assert len(g.eqns) == len(g10.eqns)
    gg10 = funcgrad.make_graph(funcgrad.grad(lambda h, xs: f(h, xs)[1].sum()))(
        np.ones(3), np.ones((10, 3)))
    gg = funcgrad.make_graph(funcgrad.grad(lambda h, xs: f(h, xs)[1].sum()))(
        np.ones(3), np.ones((length, 3)))
    assert len(gg.eqns) == len(gg10.eqns)
    assert sum(e.prim.name == "scan" for e in gg.eqns) == 2     # forward and reverse


def test_fori_loop_with_traced_bounds_is_a_while_loop():
    f = funcgrad.jit(lambda n, x: lax.fori_loop(0, n, lambda i, v: v * 2.0, x))
    assert float(f(np.int64(3), np.float64(1.0))) == 8.0
    assert float(f(np.int64(5), np.float64(1.0))) == 32.0
    names = [e.prim.name for e in funcgrad.make_graph(
        lambda n, x: lax.fori_loop(0, n, lambda i, v: v * 2.0, x))(np.int64(3), 1.0).eqns]
    assert "while" in names


def test_carry_type_errors_name_the_leaf():
    with pytest.raises(FuncgradTypeError, match=r"carry\['h'\].*float32\[3\].*float64\[3\]"):
        lax.scan(lambda c, x: ({"h": c["h"].astype(np.float64)}, None),
                 {"h": np.ones(3, np.float32)}, np.ones(4))
    with pytest.raises(FuncgradTypeError, match=r"carry\[0\].*float64\[3\].*float64\[2\]"):
        funcgrad.jit(lambda c: lax.scan(lambda c, x: ((c[0][:2],), None), (c,), None,
                                        length=3))(np.ones(3))
    with pytest.raises(FuncgradTypeError, match="structure"):
        lax.scan(lambda c, x: ((c, c), None), np.ones(3), np.ones(4))
    with pytest.raises(FuncgradTypeError, match="branch 1"):
        funcgrad.jit(lambda x: lax.cond(x.sum() > 0, lambda v: v, lambda v: v[:1], x))(
            np.ones(3))


def test_float32_stays_float32():
    x = np.ones(3, np.float32)
    def f(x):
        return lax.scan(lambda c, v: (c * v + 1, c.sum()), x, np.ones((4, 3), np.float32))
    for fn in (f, funcgrad.jit(f)):
        c, ys = fn(x)
        assert c.dtype == np.float32 and ys.dtype == np.float32
    g = funcgrad.grad(lambda x: f(x)[1].sum())(x)
    assert g.dtype == np.float32


def test_jit_row_splitting_leaves_scan_whole():
    # a batch-shaped graph around a scan: the scan equation runs on whole values
    w = RNG.normal(size=(8, 8))

    def step(w, xs):
        def body(h, x):
            return fnp.tanh(h @ w + x), None
        h, _ = lax.scan(body, fnp.zeros((xs.shape[1], 8)), xs)
        return fnp.mean(h ** 2)
    xs = RNG.normal(size=(5, 64, 8))
    g = funcgrad.jit(funcgrad.grad(step))
    np.testing.assert_allclose(g(w, xs), funcgrad.grad(step)(w, xs), rtol=1e-10)
    np.testing.assert_allclose(g(w, xs), funcgrad.grad(step)(w, xs), rtol=1e-10)


def _count_process(monkeypatch):
    """How many operations reach each interpreter (JVP, VJP, batching) at Python level."""
    from funcgrad._src import ad, batching
    counts = {"n": 0}
    for cls in (ad.JVPTrace, ad.VJPTrace, batching.BatchTrace):
        orig = cls.process

        def process(self, prim, args, params, _orig=orig):
            counts["n"] += 1
            return _orig(self, prim, args, params)
        monkeypatch.setattr(cls, "process", process)
    return counts


def test_grad_vmap_jvp_of_jit_run_one_call_equation(monkeypatch):
    def loss(w, x):
        h = fnp.tanh(x @ w)
        return fnp.sum(fnp.sin(h) * h + h ** 2)
    jl = funcgrad.jit(loss)
    w, x = RNG.normal(size=(3, 2)), RNG.normal(size=(4, 3))
    xs = RNG.normal(size=(5, 4, 3))
    t = RNG.normal(size=(3, 2))
    runs = [lambda f: funcgrad.grad(f)(w, x),
            lambda f: funcgrad.vmap(f, in_axes=(None, 0))(w, xs),
            lambda f: funcgrad.jvp(lambda v: f(v, x), (w,), (t,)),
            lambda f: funcgrad.vmap(funcgrad.grad(f), in_axes=(None, 0))(w, xs)]
    for run in runs:
        want = run(loss)
        run(jl)                                   # traces and compiles once
        counts = _count_process(monkeypatch)
        got = run(jl)
        n_jit = counts["n"]
        counts["n"] = 0
        run(loss)
        assert n_jit <= 3 < counts["n"]     # one call equation per interpreter and pass
        monkeypatch.undo()
        for g_, w_ in zip(funcgrad.tree_util.tree_leaves(got),
                          funcgrad.tree_util.tree_leaves(want)):
            np.testing.assert_allclose(g_, w_, rtol=1e-10)


def test_nested_jit_is_one_call_inlined_by_the_outer_jit():
    inner = funcgrad.jit(lambda x: fnp.sin(x) * 2.0)
    outer = lambda x: inner(x) * 3.0 + inner(x * 0.5)  # noqa: E731
    g = funcgrad.make_graph(outer)(X3 := np.arange(3.0))
    assert [e.prim.name for e in g.eqns].count("jit_call") == 2
    low = funcgrad.jit(outer).lower(X3)
    assert "jit_call" not in low.as_text()
    np.testing.assert_allclose(low.compile()(X3), np.sin(X3) * 6 + np.sin(X3 * 0.5) * 2)
    np.testing.assert_allclose(funcgrad.grad(lambda x: fnp.sum(funcgrad.jit(outer)(x)))(X3),
                               np.cos(X3) * 6 + np.cos(X3 * 0.5))


# ---- jit against eager on random programs with scan, cond and while_loop ---------------
from hypothesis import given, settings, strategies as st  # noqa: E402

_EW = ["neg", "mulc", "mul", "div", "add", "sub", "sin", "exp"]


def _apply(prog, a0, a1):
    vals = [a0, a1, a0 * a1]
    for op, k, c in prog:
        a, b = vals[k % len(vals)], vals[(k + 1) % len(vals)]
        vals.append({"neg": lambda: -a, "mulc": lambda: a * c, "mul": lambda: a * b,
                     "div": lambda: a / (fnp.abs(b) + 1), "add": lambda: a + b,
                     "sub": lambda: a - b, "sin": lambda: fnp.sin(a),
                     "exp": lambda: fnp.exp(-fnp.abs(a))}[op]())
    return vals[-1]


_PROG = st.lists(st.tuples(st.sampled_from(_EW), st.integers(0, 5),
                           st.sampled_from([2.0, -0.5, 0.75])), min_size=1, max_size=6)


@given(_PROG, _PROG, st.sampled_from([np.float64, np.float32]), st.booleans())
@settings(max_examples=30)
def test_jit_matches_eager_on_random_control_flow_programs(body, branch, dtype, rev):
    def f(x, y):
        xs = fnp.stack([y, y * 0.5, -y, y * y])

        def step(c, t):
            n = fnp.tanh(_apply(body, c, t))
            return n, fnp.sum(n * t)
        c, ys = lax.scan(step, x, xs, reverse=rev)
        c = lax.cond(fnp.sum(c) > 0, lambda v: _apply(branch, v, y), lambda v: v * 0.5, c)
        c = lax.fori_loop(0, 2, lambda i, v: fnp.sin(v) + v * 0.5, c)
        return fnp.sum(c * c) + fnp.sum(ys)

    def g(x, y):
        i, v = lax.while_loop(lambda s: (s[0] < 3) & (fnp.sum(s[1]) < 50.0),
                              lambda s: (s[0] + 1, _apply(body, s[1], y) + 1.0), (0, x))
        return fnp.sum(v)

    x = np.linspace(-1, 1, 6).reshape(2, 3).astype(dtype)
    y = np.linspace(0.5, 2, 6).reshape(2, 3).astype(dtype)
    tol = 2e-4 if dtype is np.float32 else 1e-10
    for fun in (f, funcgrad.grad(f, argnums=(0, 1)), g):
        jf = funcgrad.jit(fun)
        jf(x, y)
        ref, out = fun(x, y), jf(x, y)
        for r, o in zip(ref if isinstance(ref, tuple) else (ref,),
                        out if isinstance(out, tuple) else (out,)):
            assert np.asarray(o).dtype == np.asarray(r).dtype
            np.testing.assert_allclose(o, r, rtol=tol, atol=tol)


def test_custom_rules_inside_bodies_and_jitted_functions_are_kept():
    @funcgrad.custom_vjp
    def half_grad(x):
        return x
    half_grad.defvjp(lambda x: (x, None), lambda res, g: (g * 0.5,))
    x = np.ones(2)
    f = lambda x: fnp.sum(half_grad(x) * 3)  # noqa: E731
    for g in (funcgrad.grad(funcgrad.jit(f)), funcgrad.jit(funcgrad.grad(f))):
        np.testing.assert_allclose(g(x), [1.5, 1.5])
    h = lambda x: fnp.sum(lax.scan(lambda c, t: (half_grad(c) * t, None), x,  # noqa: E731
                                   np.ones((2, 2)))[0])
    k = lambda x: fnp.sum(lax.cond(fnp.sum(x) > 0, lambda v: half_grad(v) * 2,  # noqa: E731
                                   lambda v: v, x))
    for fun, want in ((h, 0.25), (k, 1.0)):
        for g in (funcgrad.grad(fun), funcgrad.jit(funcgrad.grad(fun)),
                  funcgrad.grad(funcgrad.jit(fun))):
            np.testing.assert_allclose(g(x), [want, want])


def test_reverse_scan_reads_residuals_instead_of_recomputing():
    def loss(w, xs):
        h, _ = lax.scan(lambda h, x: (fnp.tanh(h @ w + x), None), fnp.zeros(3), xs)
        return fnp.sum(h)
    w, xs = RNG.normal(size=(3, 3)) * 0.5, RNG.normal(size=(6, 3))
    low = funcgrad.jit(funcgrad.grad(loss)).lower(w, xs)
    scans = [e for e in low.eqns if e.prim.name == "scan"]
    assert len(scans) == 2
    assert "tanh" in [e.prim.name for e in scans[0].params["body"].eqns]
    assert "tanh" not in [e.prim.name for e in scans[1].params["body"].eqns]
    jax = _jax()
    jl = lambda w, xs: jax.numpy.sum(jax.lax.scan(  # noqa: E731
        lambda h, x: (jax.numpy.tanh(h @ w + x), None), jax.numpy.zeros(3), xs)[0])
    np.testing.assert_allclose(low.compile()(w, xs), jax.grad(jl)(w, xs), rtol=1e-10)


def _outer_rnn_loss(m, w, xs):
    """An RNN on vectors: the weight's gradient per step is an outer product,
    ``g[:, None] * h`` (a broadcasting multiply, not a matmul)."""
    def body(h, x):
        h = m.tanh(w @ h + x)
        return h, m.sum(h * h)
    h, ys = lax.scan(body, m.zeros(w.shape[0]), xs)
    return m.sum(ys) + m.sum(h)


def test_split_loop_sums_outer_product_terms_as_one_contraction():
    """The reverse pass of a vector RNN accumulates the weight's gradient as an outer
    product per step: summed after the loop as one einsum over the stacked factors, not
    by stacking ``length`` weight-sized terms; the gradient matches the eager one."""
    rng = np.random.default_rng(3)
    n, steps = 16, 9
    w = rng.standard_normal((n, n)) * 0.3
    xs = rng.standard_normal((steps, n))
    want = funcgrad.grad(lambda w: _outer_rnn_loss(fnp, w, xs))(w)
    g = funcgrad.jit(funcgrad.grad(lambda w, xs: _outer_rnn_loss(fnp, w, xs)))
    from funcgrad._src.prims import control_flow as cf
    for _ in range(3):                       # trace, first split run, later runs
        np.testing.assert_allclose(g(w, xs), want, rtol=1e-12, atol=1e-12)
    splits = [s for s in _all_splits(cf) if any(spec not in (None, "matmul")
                                                for _, _, spec in s.acc)]
    assert splits, "the outer-product accumulator was not recognised"
    _, _, (shape_a, shape_b, subscripts) = next(
        a for a in splits[-1].acc if a[2] not in (None, "matmul"))
    assert subscripts.startswith("t") and subscripts.endswith("->ab")
    assert shape_a[0] == shape_b[0] == steps


def test_split_loop_keeps_a_big_accumulator_in_the_loop(monkeypatch):
    """A term that is not a product of two per-step factors is stacked over the steps
    only while that stack stays under ``_STACK_MAX`` bytes; beyond it the carry is
    summed in the loop (constant memory), with the same gradient."""
    from funcgrad._src.prims import control_flow as cf
    monkeypatch.setattr(cf, "_STACK_MAX", 0)
    rng = np.random.default_rng(4)
    w = rng.standard_normal((5, 5)) * 0.3
    xs = rng.standard_normal((7, 5))

    def loss(w, xs):                         # the weight's term per step: tanh(w) * x[0]
        def body(c, x):
            return c, m_sum(fnp.tanh(w) * x[0])
        def m_sum(t):
            return fnp.sum(t * t)
        _, ys = lax.scan(body, fnp.zeros(()), xs)
        return fnp.sum(ys)
    want = funcgrad.grad(loss)(w, xs)
    g = funcgrad.jit(funcgrad.grad(loss))
    for _ in range(3):
        np.testing.assert_allclose(g(w, xs), want, rtol=1e-12)
    assert not any(spec is None for s in _all_splits(cf) for _, _, spec in s.acc
                   if s.length == 7)


def _all_splits(cf):
    import gc
    return [o for o in gc.get_objects() if isinstance(o, cf._LoopSplit)]


def test_eager_reverse_pass_keeps_no_carry_history():
    """Eagerly (concrete values) the reverse scan keeps no history of its carries: the
    weight's gradient, carried through every step, is not kept once per step."""
    import tracemalloc
    rng = np.random.default_rng(5)
    n, steps = 128, 64
    w = rng.standard_normal((n, n)) * 0.05
    xs = rng.standard_normal((steps, n))
    g = funcgrad.grad(lambda w: _outer_rnn_loss(fnp, w, xs))
    g(w)
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        got = g(w)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    one = n * n * 8
    assert peak < 12 * one, (peak, one)      # history alone would be ``steps`` of them
    # and higher order still sees the history it needs: grad of grad through the scan
    v = rng.standard_normal((n, n))
    hv = funcgrad.grad(lambda w: fnp.sum(funcgrad.grad(
        lambda w: _outer_rnn_loss(fnp, w, xs[:3]))(w) * v))(w)
    eps = 1e-6
    fd = (np.sum(funcgrad.grad(lambda w: _outer_rnn_loss(fnp, w, xs[:3]))(w + eps * v) * v)
          - np.sum(funcgrad.grad(lambda w: _outer_rnn_loss(fnp, w, xs[:3]))(w - eps * v) * v)
          ) / (2 * eps)
    np.testing.assert_allclose(np.sum(hv * v), fd, rtol=1e-5)
    assert got.shape == (n, n)



@pytest.mark.parametrize("sa,sb", [((4, 1), (3,)), ((3,), (4, 1)), ((1, 3), (4, 1)),
                                   ((2, 1, 3), (1, 4, 1)), ((2, 4, 1), (2, 1, 3)),
                                   ((4, 1, 1), (1, 2, 3)), ((1, 1), (2, 3)), ((5,), (1,))])
def test_sum_of_products_layouts(sa, sb):
    """``_sum_of_products``'s einsum over the stacked factors (broadcast axes dropped)
    equals the sum over steps of the broadcast products, in every layout; no contraction
    where the product is no bigger than a factor."""
    from funcgrad._src.ir import Eqn, Var
    from funcgrad._src.prims import control_flow as cf
    out_shape = np.broadcast_shapes(sa, sb)
    a, b, o = Var("a", sa, np.float64), Var("b", sb, np.float64), Var("o", out_shape, np.float64)
    e = Eqn(cf.multiply_p, [a, b], {}, [o])
    steps = 7
    spec = cf._sum_of_products(e, {"a": "r", "b": "r"}, steps)
    if np.prod(out_shape) <= max(np.prod(sa), np.prod(sb)):
        assert spec is None
        return
    shape_a, shape_b, subscripts = spec
    rng = np.random.default_rng(7)
    A, B = rng.standard_normal((steps,) + sa), rng.standard_normal((steps,) + sb)
    got = np.einsum(subscripts, A.reshape(shape_a), B.reshape(shape_b), optimize=True)
    def aligned(X, s):                       # the step axis first, then s right-aligned
        return X.reshape((steps,) + (1,) * (len(out_shape) - len(s)) + s)
    want = (aligned(A, sa) * aligned(B, sb)).sum(axis=0)
    np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-13)
    # an invariant factor (kind "k") is not a per-step product
    assert cf._sum_of_products(e, {"a": "k", "b": "r"}, steps) is None

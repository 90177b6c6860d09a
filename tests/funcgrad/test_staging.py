"""Staging (funcgrad/_src/staging.py): make_graph and jit — caching by signature and
static arguments, the graph's printing, its rewrites (dead code, common subexpressions,
scalar folding, buffer reuse) checked against eager evaluation, literals, closures over
outer tracers, and replaying compiled graphs."""
import numpy as np
import pytest

import funcgrad as fg
import funcgrad.numpy as fnp
from funcgrad import grad, jit, make_graph
from funcgrad._src import core
from funcgrad.errors import ConcretizationTypeError
from funcgrad.tree_util import tree_leaves


# ---- jit and the graph --------------------------------------------------------------------
def test_jit_caches_by_signature_and_statics():
    calls = []

    def f(x, n):
        calls.append(1)
        return x ** n

    g = jit(f, static_argnums=1)
    g(np.ones(3), 2)
    g(np.ones(3) * 2, 2)
    assert len(calls) == 1 and g.cache_size() == 1
    g(np.ones(3), 3)
    g(np.ones(4), 3)
    g(np.ones(4, np.float32), 3)
    assert g.cache_size() == 4 and len(calls) == 4
    np.testing.assert_array_equal(g(np.full(4, 2.0, np.float32), 3), np.full(4, 8.0))
    assert g(np.full(4, 2.0, np.float32), 3).dtype == np.float32


def test_jit_branching_error_names_argument():
    def f(x, flag):
        return x * 2 if flag > 0 else x

    with pytest.raises(ConcretizationTypeError, match=r"argument 'flag'.*static_argnums"):
        jit(f)(np.ones(2), 1.0)
    np.testing.assert_array_equal(jit(f, static_argnums=1)(np.ones(2), 1.0), [2.0, 2.0])
    np.testing.assert_array_equal(jit(f, static_argnames="flag")(np.ones(2), flag=-1), [1, 1])


def test_graph_printing_dot_and_backward_pass():
    g = make_graph(lambda x, y: fnp.sin(x) * y)(np.ones(3), 2.0)
    text = str(g)
    assert "sin" in text and "multiply" in text and "float64[3]" in text
    dot = g.to_dot()
    assert "shape=box" in dot and "shape=ellipse" in dot and dot.startswith("digraph")
    gg = make_graph(grad(lambda x: fnp.sum(fnp.sin(x) ** 2)))(np.ones(3))
    assert "cos" in str(gg)               # the backward pass is in the graph


def test_jit_simplifies_dead_code_and_common_subexpressions():
    def f(x):
        unused = fnp.exp(x) * 3          # dead code
        a = fnp.sin(x)
        b = fnp.sin(x)                   # common subexpression
        c = fnp.reshape(a + b, x.shape)  # no-op reshape
        return c

    jf = jit(f)
    x = np.arange(3.0)
    np.testing.assert_allclose(jf(x), 2 * np.sin(x))
    raw = make_graph(f)(x)
    simple = jf.lower(x)
    names = [e.prim.name for e in simple.eqns]
    assert names == ["sin", "add"], names
    assert raw.count() > simple.count()
    np.testing.assert_allclose(jf(x + 1), 2 * np.sin(x + 1))


def test_jit_replay_does_not_mutate_inputs_and_is_repeatable():
    def f(x, y):
        z = x * y + 1.0
        return fnp.exp(z) - z

    jf = jit(f)
    x, y = np.linspace(0, 1, 5), np.linspace(1, 2, 5)
    xc, yc = x.copy(), y.copy()
    first = jf(x, y)
    for _ in range(3):
        np.testing.assert_allclose(jf(x, y), first)
    np.testing.assert_array_equal(x, xc)
    np.testing.assert_array_equal(y, yc)


def test_jit_replays_numpy_scalar_constants_with_their_dtype():
    jf = jit(lambda c: c * np.float64(0.5) + np.float32(1))
    assert float(jf(np.int32(3))) == 2.5
    assert float(jf(np.int32(1))) == 1.5          # replayed, not re-traced
    out = jf(np.ones(2, np.float32))
    assert out.dtype == (np.ones(2, np.float32) * np.float64(0.5)).dtype


def test_jit_buffer_reuse_on_large_arrays_respects_views_and_outputs():
    # Arrays above the out= reuse threshold: temporaries are reused, views never are.
    x = np.linspace(-1, 1, 8192)

    def f(x):
        a = fnp.sin(x) * 2.0          # a temporary...
        view = a[:10]                 # ...with a view that outlives it
        b = fnp.exp(a) + 1.0          # may reuse dead temporaries, never `a`
        c = fnp.tanh(b) * b
        return view, c, fnp.sum(c)

    jf = jit(f)
    ref = f(x)
    x_copy = x.copy()
    for _ in range(3):
        out = jf(x)
        for o, r in zip(out, ref):
            np.testing.assert_allclose(o, r, rtol=1e-15)
    np.testing.assert_array_equal(x, x_copy)
    from funcgrad._src.compiler import compile_graph
    src = compile_graph(jf.lower(x)).source
    assert "out=" in src                          # reuse does happen at this size


# ---- jit: constant folding of scales, 0-d literals, the fast dispatch path ----------------
def _scaled_chain(x):
    for _ in range(6):
        x = -(fnp.sin(x) * 1.5) * (2 * fnp.cos(x)) / 4.0
    return fnp.sum(x * 0.5)


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.complex128])
def test_jit_folds_negations_and_scalar_factors(dtype):
    x = (np.linspace(0.2, 1.4, 7) * (1 + 0.5j if dtype is np.complex128 else 1)).astype(dtype)
    for f in (_scaled_chain, grad(_scaled_chain) if dtype is not np.complex128 else None):
        if f is None:
            continue
        jf = jit(f)
        ref = f(x)
        out = jf(x)
        out = jf(x)                                   # replayed
        assert out.dtype == ref.dtype
        np.testing.assert_allclose(out, ref, rtol=1e-5 if dtype is np.float32 else 1e-12)
        names = [e.prim.name for e in jf.lower(x).eqns]
        assert "negative" not in names and "true_divide" not in names, names
        assert len(names) < make_graph(f)(x).count()


def test_jit_scale_folding_keeps_integers_broadcasts_and_range():
    # integer arrays are left as they are (negation wraps, division changes dtype)
    xi = np.array([1, -2, 3], np.int64)
    fi = jit(lambda x: -(x * 3) * 2)
    np.testing.assert_array_equal(fi(xi), -(xi * 3) * 2)
    assert "negative" in [e.prim.name for e in fi.lower(xi).eqns]
    # a scaled small operand times a large one: the constant is applied to the small one
    s, big = np.array([1.0, 2.0]), np.ones((500, 2))
    fb = jit(lambda s, b: (-s) * b)
    np.testing.assert_array_equal(fb(s, big), -s * big)
    assert [e.prim.name for e in fb.lower(s, big).eqns] == ["negative", "multiply"]
    # constants that would leave float32's safe range are applied, not deferred: deferring
    # 1e-20 here would form x * x = 9e60, which overflows float32 (the result is 9e20)
    x32 = np.full(3, 3e30, np.float32)

    def shrink(x):
        y = x * 1e-20
        return y * y

    js = jit(shrink)
    with np.errstate(all="raise"):
        for _ in range(2):                        # traced, then replayed
            np.testing.assert_allclose(js(x32), shrink(x32), rtol=1e-5)


def test_jit_python_scalar_literals_keep_weak_typing():
    # literals are replayed as 0-d arrays of the promoted dtype: results and dtypes as eager
    cases = [(lambda x: x * 0.1 + 3, np.linspace(0, 1, 4, dtype=np.float32)),
             (lambda x: x / 7 - 1.5, np.arange(4, dtype=np.int32)),
             (lambda x: (x > 2) * 1.5, np.arange(4, dtype=np.uint8)),
             (lambda x: (x < 1000) & (x != -1), np.arange(4, dtype=np.uint8)),
             (lambda x: fnp.maximum(x, 0.5) ** 2, np.linspace(0, 1, 4, dtype=np.float16)),
             (lambda x: x * 1j + 2, np.linspace(0, 1, 4, dtype=np.float32))]
    for f, x in cases:
        jf = jit(f)
        ref = f(x)
        jf(x)
        out = jf(x)
        assert out.dtype == ref.dtype, (f, x.dtype)
        np.testing.assert_array_equal(out, ref)


def test_jit_fast_dispatch_path_and_scalar_signatures():
    calls = []

    def f(x):
        calls.append(1)
        return {"y": x * 2}

    jf = jit(f)
    x = np.arange(3.0)
    for _ in range(3):
        np.testing.assert_array_equal(jf(x)["y"], x * 2)
    assert len(calls) == 1 and jf.cache_size() == 1
    jf(np.arange(3, dtype=np.float32))              # another dtype: a new entry
    assert len(calls) == 2 and jf.cache_size() == 2
    jf.clear_cache()
    jf(x)
    assert len(calls) == 3 and jf.cache_size() == 1
    # a NumPy scalar and a 0-d array share one entry (steps that turn one into the other)
    js = jit(lambda c: c + 1)
    js(np.float64(1.0))
    js(np.array(2.0))
    assert js.cache_size() == 1
    # tracers never take the fast path: grad of the jitted function still differentiates
    np.testing.assert_allclose(grad(lambda x: fnp.sum(jf(x)["y"]))(x), [2.0, 2.0, 2.0])


# ---- jit's graph rewrites against eager evaluation, on random programs ----------------------
from hypothesis import given, settings, strategies as st  # noqa: E402

_OPS = ["neg", "mulc", "rmulc", "divc", "mul", "div", "divs", "add", "sub", "sin", "exp",
        "sum", "reshape", "bcast", "mm", "mmT"]


@given(st.lists(st.tuples(st.sampled_from(_OPS), st.integers(0, 7),
                          st.sampled_from([2.0, -0.5, 3, 1e-3, 0.75, -1.0])),
                min_size=1, max_size=14),
       st.sampled_from([np.float64, np.float32]))
@settings(max_examples=100)     # more than the CI profile's 12: programs are many-shaped
def test_jit_rewrites_match_eager_on_random_programs(prog, dtype):
    def f(x, y):
        vals = [x, y, x * y]
        for op, k, c in prog:
            a, b = vals[k % len(vals)], vals[(k + 1) % len(vals)]
            if a.shape != b.shape:
                b = a
            r = {"neg": lambda: -a, "mulc": lambda: a * c, "rmulc": lambda: c * a,
                 "divc": lambda: a / c,
                 "mul": lambda: a * b, "div": lambda: a / (fnp.abs(b) + 1),
                 "divs": lambda: (a * c) / (fnp.exp(fnp.sin(b)) * -c),
                 "add": lambda: a + b, "sub": lambda: a - b, "sin": lambda: fnp.sin(a),
                 "exp": lambda: fnp.exp(-fnp.abs(a)), "sum": lambda: fnp.sum(a, axis=0),
                 "reshape": lambda: fnp.reshape(a, (-1,)),
                 "bcast": lambda: a * fnp.ones((2,) + a.shape, a.dtype),
                 "mm": lambda: (a @ fnp.swapaxes(b, -1, -2) if a.ndim >= 2 else a @ b)
                 if a.ndim else a,
                 "mmT": lambda: (fnp.swapaxes(a, -1, -2) @ b if a.ndim >= 2 else a @ b)
                 if a.ndim else a}[op]()
            vals.append(r)
        return fnp.sum(vals[-1] * vals[-1]) + fnp.sum(vals[-2])

    x = np.linspace(-1, 1, 6).reshape(2, 3).astype(dtype)
    y = np.linspace(0.5, 2, 6).reshape(2, 3).astype(dtype)
    tol = 1e-4 if dtype is np.float32 else 1e-10
    for fun in (f, grad(f, argnums=(0, 1))):
        jf = jit(fun)
        jf(x, y)
        ref, out = fun(x, y), jf(x, y)
        for r, o in zip(ref if isinstance(ref, tuple) else (ref,),
                        out if isinstance(out, tuple) else (out,)):
            assert np.asarray(o).dtype == np.asarray(r).dtype
            np.testing.assert_allclose(o, r, rtol=tol, atol=tol)


def test_jit_moves_scalar_factors_onto_the_smaller_matmul_operand():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(40, 6)).astype(np.float32)
    b = rng.normal(size=(6, 30)).astype(np.float32)
    w = rng.normal(size=(40, 30)).astype(np.float32)

    def sgd(w, a, b):                      # w - 0.01 * (a @ b): the SGD update's shape
        return w - 0.01 * -(a @ (0.5 * b))

    jf = jit(sgd)
    jf(w, a, b)
    np.testing.assert_allclose(jf(w, a, b), sgd(w, a, b), rtol=1e-6, atol=1e-6)
    eqns = jf.lower(w, a, b).eqns
    scaled = [e for e in eqns if e.prim.name == "multiply"]
    assert len(scaled) == 1 and scaled[0].outvars[0].shape in ((40, 6), (6, 30)), eqns
    assert "negative" not in [e.prim.name for e in eqns]

    # the product is also returned (or used again): the factor is not moved into it
    def both(w, a, b):
        p = a @ b
        return w - 0.01 * p, p

    jb = jit(both)
    jb(w, a, b)
    for o, r in zip(jb(w, a, b), both(w, a, b)):
        np.testing.assert_allclose(o, r, rtol=1e-6, atol=1e-6)
    mults = [e for e in jb.lower(w, a, b).eqns if e.prim.name == "multiply"]
    assert [e.outvars[0].shape for e in mults] == [(40, 30)]


def test_jit_matmul_factor_move_respects_other_uses_of_the_product():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(20, 4))
    b = rng.normal(size=(4, 20))
    w = rng.normal(size=(20, 20))

    def later_use(w, a, b):               # the product is read again after the scaling
        t = a @ b
        u = 0.01 * t
        return (w - u) + fnp.sin(t)

    def shared(w, a, b):                  # two scaled views of one product
        o1 = (a @ b) * 0.5
        o2 = -o1
        return (w - o1) * fnp.exp(o2)

    for f in (later_use, shared):
        jf = jit(f)
        jf(w, a, b)
        np.testing.assert_allclose(jf(w, a, b), f(w, a, b), rtol=1e-12, atol=1e-12)


def test_jit_literal_conversion_checks_the_ufunc_accepts_it():
    # ldexp's exponent must stay an integer: a float 0-d array would be refused
    from funcgrad._src.compiler import Literal, Var, _ufunc_literal
    x, three = Var("a", (3,), np.float32), Literal(3)
    assert _ufunc_literal(np.ldexp, three, [x, three], {}) is None
    ns = {}
    name = _ufunc_literal(np.multiply, three, [x, three], ns)
    assert ns[name].dtype == np.float32 and ns[name] == 3


def test_jit_of_python_scalars_in_lists_stacks_them_as_eager_does():
    # leaves of a nested list are weak Python scalars under jit; reshaping one (inside
    # asarray's stack) used to fail with "'float' object has no attribute 'reshape'"
    f = lambda x: fnp.sum(fnp.asarray(x) * 2.0, axis=0)
    jf = jit(f)
    for _ in range(2):                    # traced, then compiled
        out = jf([[1.0, 2.0], [3.0, 4.0]])
        np.testing.assert_array_equal(out, f([[1.0, 2.0], [3.0, 4.0]]))
        assert out.dtype == np.float64
    g = jit(lambda a, b: fnp.stack([a, b]) + fnp.transpose(a))
    np.testing.assert_array_equal(g(1.0, 2.0), [2.0, 3.0])
    np.testing.assert_array_equal(g(1.0, 2.0), [2.0, 3.0])


def test_vjp_fn_called_twice_and_under_jit():
    f = lambda x: fnp.sin(x)[:3] * fnp.exp(x)[1:]  # noqa: E731
    x = np.linspace(0.1, 1.0, 4)
    _, pull = fg.vjp(f, x)
    ref = pull(np.ones(3))[0]
    np.testing.assert_allclose(pull(np.ones(3))[0], ref)
    jp = fg.jit(pull)
    for _ in range(3):
        np.testing.assert_allclose(jp(np.ones(3))[0], ref)
    np.testing.assert_allclose(pull(np.ones(3))[0], ref)


def test_jit_elementwise_buffer_reuse_is_correct_without_views():
    fns = [lambda x: fnp.sum(fnp.tanh(x) * fnp.tanh(x).T),
           lambda x: fnp.exp(x) / fnp.sum(fnp.exp(x), axis=1, keepdims=True) * x.T,
           lambda x: fnp.sum(fnp.sin(x).reshape(9) * fnp.arange(9.0))]
    x = np.linspace(0.1, 0.9, 9).reshape(3, 3)
    for f in fns:
        for F in (f, fg.grad(lambda x, f=f: fnp.sum(f(x)))):
            jf = fg.jit(F)
            for _ in range(3):
                np.testing.assert_allclose(jf(x), F(x))


def _view_alive(x):
    y = fnp.sin(x)
    z = y[:2]          # a view of y's buffer
    w = y * 2.0        # y dies here: its buffer is reused as out= ...
    return z + w[:2]   # ... but the view z is still needed


def _view_transposed(x):
    y = fnp.sin(x)
    z = y.T
    w = y * 2.0
    return z + w


def _view_returned(x):
    y = fnp.sin(x)
    return y[:2], y * 2.0


@pytest.mark.parametrize("f,x", [(_view_alive, np.arange(4.0)),
                                 (_view_transposed, np.arange(4.0).reshape(2, 2)),
                                 (_view_returned, np.arange(4.0))],
                         ids=["live view", "live transpose", "returned view"])
def test_jit_out_buffer_reuse_respects_views(f, x):
    jf = fg.jit(f)
    want = f(x)
    for _ in range(3):
        for g, w in zip(tree_leaves(jf(x)), tree_leaves(want)):
            np.testing.assert_allclose(g, w)


def test_jit_hessian_with_slices_replays_correctly():
    f = lambda x: fnp.sum(fnp.sin(x)[0] * fnp.cos(x)[:, 0])  # noqa: E731
    x = np.linspace(0.1, 0.9, 9).reshape(3, 3)
    want = fg.hessian(f)(x)
    jh = fg.jit(fg.hessian(f))
    for _ in range(3):
        np.testing.assert_allclose(jh(x), want)


def test_jit_caches_by_shape_dtype_weak_type_and_static():
    f = fg.jit(lambda x, s: fnp.sum(x * s))
    x = np.linspace(0.1, 1.0, 4)
    calls = [(x, 2.0), (x.astype(np.float32), 2.0), (x[:2], 2.0), (x, 3), (x, np.float32(2)),
             (x, 2.0), (x, 5.0), (x.astype(np.float32), 7.0)]
    for a, s in calls:
        r = f(a, s)
        np.testing.assert_allclose(r, np.sum(a * s), rtol=1e-6)
        assert np.asarray(r).dtype == np.asarray(np.sum(a * s)).dtype
    assert f.cache_size() == 5
    g = fg.jit(lambda x, n: x ** n, static_argnums=1)
    for n in (2, 3, 2):
        np.testing.assert_allclose(g(x, n), x ** n)
    assert g.cache_size() == 2


def test_jit_retraces_cleanly_after_an_exception_while_tracing():
    calls = []

    def f(x):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("boom")
        return x * 2

    jf = fg.jit(f)
    with pytest.raises(RuntimeError):
        jf(np.ones(2))
    assert core.trace_depth() == 0 and jf.cache_size() == 0
    for _ in range(2):
        np.testing.assert_allclose(jf(np.ones(2)), 2.0)
    assert jf.cache_size() == 1


def test_jit_static_argnames_key_includes_the_names():
    def f(x, a=0.0, b=0.0):
        return x * a + b
    jf = fg.jit(f, static_argnames=("a", "b"))
    x = np.arange(3.0)
    np.testing.assert_allclose(jf(x, a=2.0), f(x, a=2.0))
    np.testing.assert_allclose(jf(x, b=2.0), f(x, b=2.0))


def _branchy(x, n):
    return x ** 2 if n > 0 else x


@pytest.mark.parametrize("kwargs,call", [
    ({"static_argnames": "n"}, lambda f, x: f(x, 1)),
    ({"static_argnums": 1}, lambda f, x: f(x, n=1)),
    ({"static_argnums": -1}, lambda f, x: f(x, 1)),
], ids=["argname passed positionally", "argnum passed by keyword", "negative argnum"])
def test_jit_static_argument_spellings(kwargs, call):
    x = np.arange(3.0)
    np.testing.assert_allclose(call(fg.jit(_branchy, **kwargs), x), x ** 2)


@pytest.mark.parametrize("f", [
    lambda x: fnp.where(x > 1.5, x, -np.inf),
    lambda x: fnp.where(x > 1.5, x, np.nan),
], ids=["-inf mask", "nan fill"])
def test_jit_replays_non_finite_literals(f):
    x = np.arange(4.0)
    jf = fg.jit(f)
    for _ in range(2):
        np.testing.assert_array_equal(jf(x), f(x))


def test_jit_cse_keeps_signed_zero_literals_apart():
    f = lambda x: (fnp.copysign(x, 0.0), fnp.copysign(x, -0.0))  # noqa: E731
    x = np.arange(1.0, 4.0)
    jf = fg.jit(f)
    for _ in range(2):
        for g, w in zip(jf(x), f(x)):
            np.testing.assert_array_equal(np.signbit(g), np.signbit(w))


def test_jit_closing_over_an_outer_tracer_first_call():
    x = np.linspace(0.1, 1.0, 4)
    g = fg.grad(lambda w: fnp.sum(fg.jit(lambda v: fnp.sin(v * w))(x)))(0.5)
    np.testing.assert_allclose(g, np.sum(x * np.cos(0.5 * x)))


def test_jit_closing_over_an_outer_tracer_called_twice():
    x = np.linspace(0.1, 1.0, 4)

    def loss(w):
        f = fg.jit(lambda v: fnp.sin(v * w) * 2.0)
        return fnp.sum(f(x) + f(x))
    np.testing.assert_allclose(fg.grad(loss)(0.5), np.sum(4.0 * x * np.cos(0.5 * x)))


def test_jit_output_depending_only_on_closure_tracer():
    x = np.linspace(0.1, 1.0, 4)
    assert float(fg.grad(lambda w: fnp.sum(fg.jit(lambda v: w * 2.0)(x)))(1.0)) == 2.0


def test_array_methods_of_traced_values_inside_jit():
    # a tracer class's own attributes must not hide the array methods every Tracer has
    # (GraphTracer's slot ``var`` made ``x.var(axis=0)`` inside jit the graph variable)
    from funcgrad._src import ad, batching, staging  # noqa: F401 - their tracer classes

    def subclasses(c):
        for s in c.__subclasses__():
            yield s
            yield from subclasses(s)
    for cls in subclasses(core.Tracer):
        for name in cls.__dict__.get("__slots__", ()):
            assert not any(name in b.__dict__ for b in cls.__mro__[1:]), (cls, name)
    x = np.arange(6.0).reshape(2, 3) ** 2
    f = jit(lambda x: x.var(axis=0) + x.std(axis=1).sum())
    for _ in range(3):
        np.testing.assert_allclose(f(x), x.var(axis=0) + x.std(axis=1).sum(), rtol=1e-12)


def _jit_gives_eager_types(cases, *extra, check=np.testing.assert_array_equal):
    """Each ``(f, s)``: ``jit(f)(s, *extra)``, traced and replayed, gives
    ``f(s, *extra)``'s leaves with the same Python types and dtypes, values by ``check``."""
    for f, s in cases:
        want = f(s, *extra)
        jf = jit(f)
        for call in range(3):                 # traced, then replayed
            got = jf(s, *extra)
            for g, w in zip(tree_leaves(got), tree_leaves(want)):
                assert type(g) is type(w), (f, call, type(g), type(w))
                assert np.asarray(g).dtype == np.asarray(w).dtype, (f, call)
                check(g, w)


def test_jit_asarray_of_a_python_number_is_a_0d_array_as_eager():
    # a Python number traced by jit is weakly typed; asarray/array make it a 0-d array,
    # as numpy.asarray does, so it promotes a float32 array as it does eagerly. The cast
    # doing it is no no-op for remove_noops (it was dropped: the replay gave the number)
    a32 = np.linspace(-1.0, 1.0, 4, dtype=np.float32)
    cases = [(lambda s, a: fnp.asarray(s), 2.0), (lambda s, a: fnp.array(s), 3),
             (lambda s, a: fnp.asarray(s) * a, 2.0), (lambda s, a: fnp.array(s, ndmin=1), 2.0),
             (lambda s, a: fnp.asarray(s, dtype=np.float64) + a, 2.0),
             (lambda s, a: (s * 2, fnp.asarray(s * 2)), 1.5)]
    _jit_gives_eager_types(cases, a32)


def test_jit_numpy_functions_of_python_numbers_give_numpy_scalars_as_eager():
    # Python's operators on Python numbers give Python numbers (weakly typed under jit);
    # NumPy's functions of them give NumPy scalars, which promote a float32 array. Under
    # jit every primitive of weak values gave a weak Python number: sin(s) * float32 was
    # float32 (float64 eagerly) and sum(s) a Python float
    a32 = np.linspace(-1.0, 1.0, 4, dtype=np.float32)
    cases = [(lambda s, a: fnp.sin(s) * a, 2.0), (lambda s, a: fnp.sum(s) * a, 2.0),
             (lambda s, a: fnp.sqrt(s) * a, 4), (lambda s, a: fnp.maximum(s, 1.0) * a, 3.0),
             (lambda s, a: fnp.exp(s) * a, 1j), (lambda s, a: fnp.sin(s), 2.0),
             (lambda s, a: fnp.floor(s), 2.5),
             # Python's own arithmetic stays Python's
             (lambda s, a: (s * 2, -s, s / 4, s // 2, s % 2, s ** 2, abs(s), s > 1), 3.0),
             (lambda s, a: (s * 2, -s, s // 2, s < 2, s & 6, s << 1), 3),
             (lambda s, a: s * a, 2.0), (lambda s, a: (s * 0.5 + 1) * a, 2.0),
             (lambda s, a: fg.grad(lambda t: fnp.sin(t) * t * 2.0)(s), 1.5)]
    _jit_gives_eager_types(cases, a32, check=lambda g, w: np.testing.assert_allclose(
        g, w, rtol=1e-15))


def test_jit_python_numbers_through_functions_sharing_an_operators_primitive():
    # np.add(2.0, 1.0) is a float64, 2.0 + 1.0 a float: the functions of the primitives
    # behind Python's operators make their weak results strong (the operators do not);
    # .real/.imag stay Python's (np.real(2j) is a float); functions that make arrays of
    # their arguments (np.transpose, scipy.special.jv's order) read a Python number as
    # NumPy does. Under jit these were Python numbers, or failed ('float' has no 'dtype')
    from funcgrad.scipy import special
    a32 = np.linspace(0.5, 1.0, 4, dtype=np.float32)
    cases = [(lambda s, a: fnp.add(s, 1.0) * a, 2.0), (lambda s, a: fnp.negative(s) * a, 2.0),
             (lambda s, a: fnp.abs(s) * a, -3), (lambda s, a: fnp.less(s, 1.0), 2.0),
             (lambda s, a: (-s, abs(s), +s, s.real, s.imag), 2.0),
             (lambda s, a: ((s * 1j).real, (s * 1j).imag, fnp.real(s * 1j)), 2.0),
             (lambda s, a: fnp.transpose(s) * a, 2.0), (lambda s, a: fnp.squeeze(s), 2.0),
             (lambda s, a: special.jv(s, a), 1.5), (lambda s, a: special.jv(s, s), 1.5)]
    for f, s in cases:
        want = f(s, a32)
        jf = jit(f)
        for call in range(3):                 # traced, then replayed
            got = jf(s, a32)
            for g, w in zip(tree_leaves(got), tree_leaves(want)):
                # a NumPy scalar and a 0-d array are alike here; a Python number is not
                kind = [type(v) if type(v) in (bool, int, float, complex) else np.ndim(v)
                        for v in (g, w)]
                assert kind[0] == kind[1], (call, type(g), type(w))
                assert np.asarray(g).dtype == np.asarray(w).dtype, call
                np.testing.assert_allclose(g, w, rtol=1e-15)


def test_jit_numpy_functions_of_operators_give_numpy_scalars_not_0d_arrays():
    # fnp.add(s, 1.0) of a Python number traced by jit was made strong after the ufunc,
    # by a cast that makes a 0-d array: eagerly np.add(3.0, 1.0) is a NumPy scalar
    # (a float subclass, hashable: a dict key, which a 0-d array cannot be). The traced
    # operands are made strong first instead, so the ufunc itself gives the scalar.
    a32 = np.linspace(0.5, 1.0, 4, dtype=np.float32)
    cases = [(lambda s: fnp.add(s, 1.0), 3.0), (lambda s: fnp.multiply(2, s), 3.0),
             (lambda s: fnp.true_divide(s, 2), 3), (lambda s: fnp.less(s, 1.0), 2.0),
             (lambda s: fnp.equal(s, s), 2), (lambda s: fnp.power(s, 2), 3),
             (lambda s: fnp.negative(s), 2.0), (lambda s: fnp.abs(s), -3),
             (lambda s: fnp.bitwise_and(s, 6), 3), (lambda s: fnp.add(s, 1.0) * a32, 2.0),
             (lambda s: fnp.subtract(s, a32), 2.0), (lambda s: (s + 1, fnp.add(s, 1)), 2)]
    _jit_gives_eager_types(cases)


def test_jit_python_bools_of_python_numbers_do_python_arithmetic():
    # a comparison of Python numbers traced by jit is a Python bool; Python's arithmetic
    # reads bools as ints (True + True is 2, -True is -1, ~True is -2) where NumPy's
    # ufuncs, which the replay calls, keep bools (np.add(True, True) is True) or refuse
    # them (np.negative(True) raised); a Python bool written in place (s * True) is weak
    # too, and ~ and divmod go through Python's operators as +, - and abs() do
    x32 = np.ones(2, np.float32)
    cases = [(lambda s: (s > 1) + (s > 2), 3.0), (lambda s: (s > 1) * (s > 2), 3.0),
             (lambda s: (s > 1) - (s > 2), 3.0), (lambda s: -(s > 1), 3.0),
             (lambda s: ~(s > 1), 3.0), (lambda s: abs(s > 1), 3.0),
             (lambda s: sum([s > 0, s > 1, s > 2]), 3.0), (lambda s: (s > 1) * True, 3.0),
             (lambda s: s * True, 5.0), (lambda s: True + s, 5), (lambda s: ~s, 3),
             (lambda s: divmod(s, 2.0), 5.0), (lambda s: divmod(s, 2), 5),
             (lambda s: ((s > 1) & (s > 2), (s > 1) | True, (s > 1) == (s > 2)), 3.0),
             (lambda s: ((s > 1) + (s > 2)) * x32, 3.0),
             (lambda s: fnp.add(s > 1, s > 2), 3.0),       # NumPy's add: NumPy's bools
             # a Python bool passed to jit is weak as a Python int or float is
             (lambda s: (s + s, s * 2.5, s, -s, ~s, s & True), True),
             (lambda s: (fnp.where(s, x32, 0.0), s * x32, fnp.add(s, s)), True)]
    _jit_gives_eager_types(cases)

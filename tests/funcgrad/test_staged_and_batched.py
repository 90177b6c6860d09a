"""vmap, jit/make_graph, custom derivatives, checkpoint and debugging — and a matrix of
compositions of every pair of transformations."""
import itertools
import sys
import warnings

import numpy as np
import pytest

import funcgrad
import funcgrad.numpy as fnp
from funcgrad import (checkpoint, custom_jvp, custom_vjp, grad, jacfwd, jacrev, jit, jvp,
                      make_graph, vjp, vmap)
from funcgrad.errors import ConcretizationTypeError
from funcgrad.test_util import check_grads

A = np.random.default_rng(0).normal(size=(3, 3))


def f_ref(x):
    """A scalar function of a vector exercising several primitive families."""
    y = fnp.tanh(A @ x) * fnp.sin(x) + x ** 2
    return fnp.sum(y[1:] * fnp.exp(-x[:-1])) + fnp.max(y) + fnp.mean(fnp.concatenate([x, y]))


# ---- composition matrix ---------------------------------------------------------------------
def _grad(f):
    return grad(f)


def _jvp_grad(f):            # directional derivative as a "gradient" column by column
    def g(x):
        return fnp.stack([jvp(f, (x,), (e,))[1] for e in np.eye(x.shape[0])])
    return g


def _vjp_grad(f):
    def g(x):
        out, pull = vjp(f, x)
        return pull(fnp.ones_like(out))[0]
    return g


DIFF = {"grad": _grad, "jvp": _jvp_grad, "vjp": _vjp_grad}
WRAP = {"jit": jit, "id": lambda f: f}


@pytest.mark.parametrize("d_outer,d_inner", list(itertools.product(DIFF, DIFF)))
def test_second_derivatives_every_pair(d_outer, d_inner):
    x = np.array([0.3, -0.7, 1.1])
    H_ref = funcgrad.hessian(f_ref)(x)
    inner = DIFF[d_inner](f_ref)
    # Hessian rows: derivative of each gradient component
    H = np.stack([DIFF[d_outer](lambda x, i=i: inner(x)[i])(x) for i in range(3)])
    np.testing.assert_allclose(H, H_ref, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("d,order", list(itertools.product(DIFF, ["jit_outside", "jit_inside"])))
def test_jit_composes_with_derivatives(d, order):
    x = np.array([0.3, -0.7, 1.1])
    ref = grad(f_ref)(x)
    g = jit(DIFF[d](f_ref)) if order == "jit_outside" else DIFF[d](jit(f_ref))
    for _ in range(2):                  # first call traces, second replays
        np.testing.assert_allclose(g(x), ref, rtol=1e-12)


@pytest.mark.parametrize("d", list(DIFF))
@pytest.mark.parametrize("w", list(WRAP))
def test_vmap_composes_with_derivatives_and_jit(d, w):
    xs = np.random.default_rng(1).normal(size=(4, 3))
    ref = np.stack([grad(f_ref)(x) for x in xs])
    np.testing.assert_allclose(WRAP[w](vmap(DIFF[d](f_ref)))(xs), ref, rtol=1e-10)
    np.testing.assert_allclose(vmap(WRAP[w](DIFF[d](f_ref)))(xs), ref, rtol=1e-10)
    # derivative of a vmapped function
    g = grad(lambda xs: fnp.sum(vmap(f_ref)(xs)))(xs)
    np.testing.assert_allclose(g, ref, rtol=1e-10)


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


def test_debug_print_under_jit(capsys):
    def f(x):
        funcgrad.debug.print("x = {}", x)
        return x * 2

    jf = jit(f)
    jf(np.array([1.0]))
    jf(np.array([2.0]))
    out = capsys.readouterr().out
    assert "x = [1.]" in out and "x = [2.]" in out


# ---- custom derivatives --------------------------------------------------------------------
def test_custom_jvp_rule_used_in_both_modes():
    @custom_jvp
    def f(x):
        return fnp.sin(x)

    @f.defjvp
    def f_jvp(primals, tangents):
        (x,), (t,) = primals, tangents
        return f(x), 2.0 * t          # deliberately not cos: proves the rule is used

    x = np.array([0.1, 0.2])
    np.testing.assert_array_equal(jvp(f, (x,), (np.ones(2),))[1], [2.0, 2.0])
    np.testing.assert_array_equal(grad(lambda x: fnp.sum(f(x)))(x), [2.0, 2.0])
    np.testing.assert_array_equal(vmap(grad(f))(x), [2.0, 2.0])
    np.testing.assert_array_equal(jit(grad(lambda x: fnp.sum(f(x))))(x), [2.0, 2.0])


def test_custom_jvp_defjvps_and_nondiff_argnums():
    @custom_jvp
    def mul(x, y):
        return x * y

    mul.defjvps(lambda t, ans, x, y: t * y, lambda t, ans, x, y: x * t)
    check_grads(mul, (np.array([0.5, 1.5]), np.array([2.0, -1.0])), order=2)

    from functools import partial

    @partial(custom_jvp, nondiff_argnums=(0,))
    def apply(fn, x):
        return fn(x)

    @apply.defjvp
    def apply_jvp(fn, primals, tangents):
        (x,), (t,) = primals, tangents
        return apply(fn, x), 3.0 * t

    assert float(grad(lambda x: apply(fnp.sin, x))(0.5)) == 3.0


def test_custom_vjp_and_forward_mode_error():
    @custom_vjp
    def f(x, y):
        return x * y

    def fwd(x, y):
        return x * y, (x, y)

    def bwd(res, g):
        x, y = res
        return g * y, g * x

    f.defvjp(fwd, bwd)
    args = (np.array([0.5, 1.5]), np.array([2.0, -1.0]))
    check_grads(f, args, order=2, modes=("rev",))
    with pytest.raises(TypeError, match="forward-mode.*custom_vjp"):
        jvp(f, args, args)
    np.testing.assert_allclose(vmap(grad(lambda x, y: f(x, y)))(*args), args[1])


def test_custom_vjp_validates_rule_output():
    @custom_vjp
    def f(x):
        return x

    f.defvjp(lambda x: (x, None), lambda res, g: (g, g))
    with pytest.raises(TypeError, match="one cotangent per differentiable argument"):
        grad(lambda x: fnp.sum(f(x)))(np.ones(2))
    f.defvjp(lambda x: (x, None), lambda res, g: (g[:1],))
    with pytest.raises(ValueError, match="shape"):
        grad(lambda x: fnp.sum(f(x)))(np.ones(2))


def test_custom_gradient():
    @funcgrad.custom_gradient
    def f(x):
        return fnp.sin(x), lambda g: (g * 10.0,)

    assert float(grad(f)(0.3)) == 10.0


def test_checkpoint_matches_and_recomputes():
    calls = []

    def block(x):
        calls.append(1)
        return fnp.tanh(x @ A) ** 2

    x = np.array([0.2, -0.4, 0.6])
    plain = grad(lambda x: fnp.sum(block(block(x))))(x)
    calls.clear()
    remat = checkpoint(block)
    g = grad(lambda x: fnp.sum(remat(remat(x))))(x)
    np.testing.assert_allclose(g, plain, rtol=1e-12)
    assert len(calls) == 4           # two forward, two recomputed in the backward pass
    check_grads(remat, (x,), order=2)


def test_checkpoint_stores_fewer_residuals():
    from funcgrad._src import ad
    from funcgrad._src.core import new_trace

    def deep(x):
        for _ in range(10):
            x = fnp.tanh(x) * 1.1
        return fnp.sum(x)

    def tape_len(f):
        with new_trace(ad.VJPTrace) as tr:
            f(tr.new_input(np.ones(4)))
        return len(tr.tape)

    assert tape_len(checkpoint(deep)) < tape_len(deep) // 5


# ---- debug_nans ----------------------------------------------------------------------------
def test_debug_nans_forward_and_backward():
    with funcgrad.config.override(debug_nans=True):
        with pytest.raises(FloatingPointError, match=r"'log'.*test_staged_and_batched.py"):
            fnp.log(np.array([-1.0]))
        # NaN appears only in the backward pass: sqrt'(0) = inf, times a zero cotangent
        with pytest.raises(FloatingPointError, match="reverse rule of primitive .sqrt."):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                grad(lambda x: fnp.sum(fnp.sqrt(x) * 0.0))(np.array([0.0, 1.0]))
        with pytest.raises(FloatingPointError):
            jit(lambda x: fnp.log(x))(np.array([-1.0]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert np.isnan(fnp.log(np.array([-1.0]))).all()     # off again


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


# ---- keep_freed_memory ------------------------------------------------------------------------
_FAULTS = """
import resource, sys
import numpy as np
import funcgrad
funcgrad.config.update("keep_freed_memory", True)
assert funcgrad.config.read("keep_freed_memory") is True
def step():
    arrs = [np.ones(3 << 18) for _ in range(8)]      # 8 arrays of 6 MiB
    del arrs
step()
f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    step()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc only")
def test_keep_freed_memory_stops_page_faults_on_fresh_arrays():
    # in a child process: the option is process-wide. Freed blocks are reused, so 20
    # rounds of 48 MiB of fresh arrays fault far fewer pages than one round has (12288):
    # without the option glibc hands the memory back and every round faults it again.
    import subprocess
    out = subprocess.run([sys.executable, "-c", _FAULTS], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert int(out.stdout.strip()) < 12288 // 2


def test_keep_freed_memory_option_round_trip_and_errors():
    with pytest.raises(ValueError, match="unknown option"):
        funcgrad.config.update("keep_freed_mem", True)
    assert funcgrad.config.read("keep_freed_memory") is False


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

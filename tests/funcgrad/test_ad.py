"""The transformations: the lecture's examples, composition to any order, pytrees in and
out, perturbation confusion, threads."""
import threading
from collections import namedtuple

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import funcgrad
import funcgrad.numpy as fnp
from funcgrad import grad, hessian, jacfwd, jacrev, jvp, linearize, value_and_grad, vjp


def lecture_f(x1, x2):
    return fnp.log(x1) + x1 * x2 - fnp.sin(x2)


# ---- the lecture's examples -----------------------------------------------------------
def test_lecture_forward_traces():
    y, dy = jvp(lecture_f, (2.0, 5.0), (1.0, 0.0))
    assert round(float(y), 3) == 11.652
    assert float(dy) == pytest.approx(5.5)
    # The other partial in forward mode, and both in reverse mode.
    _, dy2 = jvp(lecture_f, (2.0, 5.0), (0.0, 1.0))
    assert float(dy2) == pytest.approx(2.0 - np.cos(5.0))
    g1, g2 = grad(lecture_f, argnums=(0, 1))(2.0, 5.0)
    assert float(g1) == pytest.approx(5.5)
    assert float(g2) == pytest.approx(2.0 - np.cos(5.0))


def test_lecture_mean_example():
    x = np.random.default_rng(0).normal(size=(2, 2))
    temp = np.ones((2, 2))
    g = grad(lambda t: fnp.mean(x + t + 2))(temp)
    np.testing.assert_allclose(g, np.full((2, 2), 0.25))


def test_lecture_rnn_cell():
    rng = np.random.default_rng(1)
    W_h, W_x = rng.normal(size=(20, 20)), rng.normal(size=(20, 10))
    prev_h, x = rng.normal(size=(1, 20)), rng.normal(size=(1, 10))

    def loss(W_h, W_x):
        next_h = fnp.tanh(W_h @ prev_h.T + W_x @ x.T)
        return next_h.sum()

    gh, gx = grad(loss, argnums=(0, 1))(W_h, W_x)
    d = 1 - np.tanh(W_h @ prev_h.T + W_x @ x.T) ** 2     # (20, 1)
    np.testing.assert_allclose(gh, d @ prev_h, rtol=1e-12)
    np.testing.assert_allclose(gx, d @ x, rtol=1e-12)


def test_dynamic_graph_control_flow_and_print(capsys):
    def f(x):
        total = 0.0
        for i in range(3):
            if fnp.sum(x) > 0:
                total = total + fnp.sin(x) * i
            else:
                total = total - x
        print("value:", x)
        return fnp.sum(total)

    x = np.array([0.3, 0.4])
    g = grad(f)(x)
    np.testing.assert_allclose(g, 3 * np.cos(x))
    out = capsys.readouterr().out
    assert "value: [0.3 0.4]" in out
    g_neg = grad(f)(-x)
    np.testing.assert_allclose(g_neg, -3 * np.ones(2))


# ---- composition -------------------------------------------------------------------------
def test_fourth_order_scalar():
    d = fnp.sin
    for _ in range(4):
        d = grad(d)
    assert float(d(0.7)) == pytest.approx(np.sin(0.7), rel=1e-12)
    # mixed: jvp of grad of grad of grad
    d3 = grad(grad(grad(fnp.exp)))
    assert float(jvp(d3, (0.3,), (1.0,))[1]) == pytest.approx(np.exp(0.3), rel=1e-12)


def test_fourth_order_polynomial_all_modes():
    def f(x):
        return x ** 5 / 20.0

    # d^4/dx^4 = 6x ... check fwd^4, rev^4 and alternating
    fwd = f
    for _ in range(4):
        fwd = (lambda g: lambda x: jvp(g, (x,), (1.0,))[1])(fwd)
    rev = f
    for _ in range(4):
        rev = grad(rev)
    alt = grad(lambda x: jvp(grad(lambda y: jvp(f, (y,), (1.0,))[1]), (x,), (1.0,))[1])
    for g in (fwd, rev, alt):
        assert float(g(1.5)) == pytest.approx(6 * 1.5, rel=1e-12)


def test_hessian_vector_product_forward_over_reverse():
    A = np.random.default_rng(2).normal(size=(4, 4))

    def f(x):
        return fnp.sum(fnp.tanh(A @ x) ** 2) + x @ x

    x = np.linspace(-1, 1, 4)
    v = np.array([1.0, -2.0, 0.5, 3.0])
    hvp = jvp(grad(f), (x,), (v,))[1]
    H = hessian(f)(x)
    np.testing.assert_allclose(hvp, H @ v, rtol=1e-10)
    np.testing.assert_allclose(H, H.T, rtol=1e-10)
    np.testing.assert_allclose(jacrev(grad(f))(x), H, rtol=1e-10)
    np.testing.assert_allclose(jacfwd(jacfwd(f))(x), H, rtol=1e-10)


def test_grad_of_function_calling_grad_inside():
    def inner(w, x):
        return fnp.sum(fnp.sin(w * x))

    def outer(w):
        gx = grad(inner, argnums=1)(w, np.array([0.1, 0.2]))
        return fnp.sum(gx ** 2)

    w = np.array([0.5, -1.5])
    x = np.array([0.1, 0.2])
    # gx = w cos(w x); outer = sum(w^2 cos^2(w x)); derivative by hand
    expected = 2 * w * np.cos(w * x) ** 2 - 2 * w ** 2 * np.cos(w * x) * np.sin(w * x) * x
    np.testing.assert_allclose(grad(outer)(w), expected, rtol=1e-12)


def test_perturbation_confusion():
    # d/dx [ x * d/dy (x + y) ] = 1, not 2
    assert float(grad(lambda x: x * grad(lambda y: x + y)(1.0))(2.0)) == 1.0
    # forward mode version
    def inner(x):
        return jvp(lambda y: x * y, (3.0,), (1.0,))[1]   # = x
    assert float(jvp(lambda x: x * inner(x), (2.0,), (1.0,))[1]) == pytest.approx(4.0)
    # closure over an outer tracer inside vjp
    def g(x):
        _, f_vjp = vjp(lambda y: x * y * y, 2.0)
        return f_vjp(1.0)[0]     # = 4x
    assert float(grad(g)(5.0)) == pytest.approx(4.0)


def test_grad_of_vjp_and_jvp_of_vjp():
    def f(x):
        return fnp.sin(x) * x

    def vjp_of_f(x):
        return vjp(f, x)[1](np.ones_like(x))[0]

    x = np.array([0.3, 1.2])
    expected = 2 * np.cos(x) - x * np.sin(x)    # f''
    np.testing.assert_allclose(jvp(vjp_of_f, (x,), (np.ones(2),))[1], expected)
    np.testing.assert_allclose(grad(lambda x: fnp.sum(vjp_of_f(x)))(x), expected)


def test_linearize_matches_jvp():
    f = lambda x: fnp.exp(x) * fnp.cos(x)  # noqa: E731
    x = np.array([0.1, 0.5])
    out, f_jvp = linearize(f, x)
    np.testing.assert_allclose(out, f(x))
    t = np.array([1.0, -1.0])
    np.testing.assert_allclose(f_jvp(t), jvp(f, (x,), (t,))[1])


def test_stop_gradient():
    f = lambda x: x * funcgrad.stop_gradient(x) + funcgrad.stop_gradient(x ** 2)  # noqa: E731
    assert float(grad(f)(3.0)) == 3.0
    assert float(jvp(f, (3.0,), (1.0,))[1]) == 3.0
    assert float(grad(grad(lambda x: funcgrad.stop_gradient(x) * x ** 2))(2.0)) == 4.0
    tree = funcgrad.stop_gradient({"a": np.ones(2), "b": (1.0, None)})
    assert set(tree) == {"a", "b"}


# ---- pytrees in and out ------------------------------------------------------------------
Params = namedtuple("Params", ["w", "b"])


def test_grad_over_pytrees():
    params = {"layers": [Params(np.ones((2, 3)), np.zeros(3)), Params(np.ones((3, 1)), np.zeros(1))],
              "scale": np.array(2.0)}
    x = np.arange(4.0).reshape(2, 2)

    def loss(p, x):
        h = x
        for layer in p["layers"]:
            h = fnp.tanh(h @ layer.w + layer.b)
        return p["scale"] * fnp.sum(h ** 2)

    g = grad(loss)(params, x)
    assert isinstance(g["layers"][0], Params)
    assert g["layers"][0].w.shape == (2, 3)
    (val, aux), g2 = value_and_grad(lambda p, x: (loss(p, x), {"n": 3}), has_aux=True)(params, x)
    assert aux == {"n": 3}
    np.testing.assert_allclose(g2["scale"], g["scale"])
    # jvp/vjp with pytree outputs
    out, t = jvp(lambda p: {"y": loss(p, x), "s": p["scale"] * 2}, (params,),
                 (funcgrad.tree_util.tree_map(np.ones_like, params),))
    assert set(out) == {"s", "y"} and float(t["s"]) == 2.0
    out, f_vjp = vjp(lambda p: (loss(p, x), p["scale"]), params)
    (ct,) = f_vjp((np.array(1.0), np.array(0.0)))
    np.testing.assert_allclose(ct["layers"][1].w, g["layers"][1].w)


def test_argnums_tuple_and_negative():
    f = lambda a, b, c: a * b + c ** 2  # noqa: E731
    ga, gc = grad(f, argnums=(0, -1))(2.0, 3.0, 4.0)
    assert (float(ga), float(gc)) == (3.0, 8.0)


def test_jacobians_shapes_and_values():
    A = np.random.default_rng(3).normal(size=(3, 2))

    def f(x):
        return {"lin": A @ x, "sq": fnp.outer(x, x)}

    x = np.array([1.0, 2.0])
    for jac in (jacfwd, jacrev):
        J = jac(f)(x)
        np.testing.assert_allclose(J["lin"], A)
        assert J["sq"].shape == (2, 2, 2)
        np.testing.assert_allclose(J["sq"][0, 1], [x[1], x[0]])


def test_value_and_grad_with_int_argument_allow_int():
    f = lambda x, n: x * n  # noqa: E731
    g = grad(f, argnums=(0, 1), allow_int=True)(2.0, 3)
    assert float(g[0]) == 3.0
    assert g[1].dtype == funcgrad.float0


# ---- dtypes ------------------------------------------------------------------------------
def test_float32_stays_float32_through_transformations():
    x = np.linspace(0.1, 1, 5, dtype=np.float32)

    def f(x):
        return fnp.sum(fnp.exp(x) * 2.0 + x ** 2 / 3 - fnp.sqrt(x) + fnp.mean(x))

    assert f(x).dtype == np.float32
    assert grad(f)(x).dtype == np.float32
    assert grad(lambda x: fnp.sum(grad(f)(x)))(x).dtype == np.float32
    y, t = jvp(f, (x,), (np.ones_like(x),))
    assert y.dtype == np.float32 and t.dtype == np.float32
    assert hessian(f)(x).dtype == np.float32
    # mixing with a float64 array promotes, and the gradient comes back in float32
    g = grad(lambda x: fnp.sum(x * np.ones(5)))(x)
    assert g.dtype == np.float32


@given(st.integers(1, 4), st.integers(1, 4), st.sampled_from([np.float32, np.float64]))
def test_broadcasting_reverse_rules_sum_back(m, n, dtype):
    rng = np.random.default_rng(m * 10 + n)
    a = rng.normal(size=(m, 1)).astype(dtype)
    b = rng.normal(size=(n,)).astype(dtype)
    ga, gb = grad(lambda a, b: fnp.sum(a * b + a - b), argnums=(0, 1))(a, b)
    assert ga.shape == a.shape and gb.shape == b.shape
    assert ga.dtype == dtype and gb.dtype == dtype
    np.testing.assert_allclose(ga, (b.sum() + n) * np.ones((m, 1)), rtol=1e-5)
    np.testing.assert_allclose(gb, (a.sum() - m) * np.ones(n), rtol=1e-5)


# ---- threads ---------------------------------------------------------------------------
def test_threads_take_gradients_at_once():
    errors = []
    barrier = threading.Barrier(4)

    def work(k):
        try:
            barrier.wait()
            for i in range(30):
                x = np.array([0.1 * k + 0.01 * i, 0.5])
                g = grad(lambda x: fnp.sum(grad(lambda y: fnp.sum(fnp.sin(y) * k))(x) ** 2))(x)
                expected = -2 * k * k * np.cos(x) * np.sin(x)
                np.testing.assert_allclose(g, expected, rtol=1e-12)
        except Exception as e:   # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(1, 5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors

"""funcgrad.scipy.integrate.odeint: values against closed forms and scipy.integrate.odeint,
adjoint gradients against finite differences."""
import numpy as np
import pytest

import funcgrad
import funcgrad.numpy as fnp
from funcgrad.errors import FuncgradTypeError, FuncgradValueError
from funcgrad.scipy.integrate import odeint

T = np.linspace(0.0, 2.0, 5)
LIN = np.array([[-0.5, 1.0], [-1.0, -0.3]])


def decay(y, t, k):
    return -k * y


def driven(y, t, k):
    return -k * y + fnp.sin(t)


def linear(y, t, a, b):
    return fnp.dot(a, y) + b * fnp.cos(t)


def central_diff(fun, x, eps=1e-6):
    x = np.asarray(x, dtype=float)
    out = np.zeros(x.shape)
    for i in np.ndindex(x.shape):
        e = np.zeros(x.shape)
        e[i] = eps
        out[i] = (fun(x + e) - fun(x - e)) / (2 * eps)
    return out


def test_exponential_decay_matches_closed_form():
    ys = odeint(decay, np.array([1.0, 2.0]), T, 0.7)
    assert ys.shape == (5, 2)
    np.testing.assert_allclose(ys, np.exp(-0.7 * T)[:, None] * [1.0, 2.0], rtol=1e-7)


def test_linear_system_matches_scipy():
    si = pytest.importorskip("scipy.integrate")
    b = np.array([0.2, -0.1])
    y0 = np.array([1.0, 0.5])
    t = np.array([0.0, 0.3, 1.1, 2.5, 4.0])
    want = si.odeint(lambda y, t: LIN @ y + b * np.cos(t), y0, t, rtol=1e-11, atol=1e-11)
    got = odeint(linear, y0, t, LIN, b, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(got, want, rtol=1e-8, atol=1e-9)
    np.testing.assert_array_equal(got[0], y0)


def test_grads_of_y0_args_and_t_match_finite_differences():
    y0, k = np.array([1.0, 2.0]), 0.7

    def loss(y0, k, t):
        return fnp.sum(odeint(driven, y0, t, k) ** 2)

    g_y0, g_k, g_t = funcgrad.grad(loss, argnums=(0, 1, 2))(y0, k, T)
    np.testing.assert_allclose(g_y0, central_diff(lambda v: loss(v, k, T), y0), rtol=1e-6)
    np.testing.assert_allclose(g_k, central_diff(lambda v: loss(y0, v, T), k), rtol=1e-6)
    np.testing.assert_allclose(g_t, central_diff(lambda v: loss(y0, k, v), T), rtol=1e-5,
                               atol=1e-7)


def test_grad_of_matrix_args_in_linear_system():
    b = np.array([0.2, -0.1])
    y0 = np.array([1.0, 0.5])
    w = np.array([[1.0, -2.0], [0.5, 3.0], [-1.0, 1.0], [2.0, 0.0], [0.3, 0.7]])

    def loss(y0, a, b):
        return fnp.sum(odeint(linear, y0, T, a, b) * w)

    g_y0, g_a, g_b = funcgrad.grad(loss, argnums=(0, 1, 2))(y0, LIN, b)
    np.testing.assert_allclose(g_y0, central_diff(lambda v: loss(v, LIN, b), y0), rtol=1e-6)
    np.testing.assert_allclose(g_a, central_diff(lambda v: loss(y0, v, b), LIN), rtol=1e-6)
    np.testing.assert_allclose(g_b, central_diff(lambda v: loss(y0, LIN, v), b), rtol=1e-6)


def test_exponential_decay_gradient_closed_form():
    # y(t) = y0 exp(-k t): d y(2)/dk = -2 y0 exp(-2k), d y(2)/dy0 = exp(-2k)
    def end(y0, k):
        return odeint(decay, y0, np.array([0.0, 2.0]), k)[-1]
    g_y0, g_k = funcgrad.grad(end, argnums=(0, 1))(1.5, 0.4)
    np.testing.assert_allclose(g_y0, np.exp(-0.8), rtol=1e-7)
    np.testing.assert_allclose(g_k, -2 * 1.5 * np.exp(-0.8), rtol=1e-7)


def test_jit_and_pytree_state():
    ys = funcgrad.jit(lambda y0, k: odeint(decay, y0, T, k))(np.array([1.0, 2.0]), 0.7)
    np.testing.assert_allclose(ys, np.exp(-0.7 * T)[:, None] * [1.0, 2.0], rtol=1e-7)
    out = odeint(lambda s, t: {"x": s["v"], "v": -s["x"]}, {"x": 1.0, "v": 0.0}, T)
    np.testing.assert_allclose(out["x"], np.cos(T), rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(out["v"], -np.sin(T), rtol=1e-7, atol=1e-9)


def test_mxstep_exhausted_gives_nan():
    ys = odeint(decay, np.array([1.0]), np.array([0.0, 1.0, 2.0]), 50.0, mxstep=3)
    assert np.isnan(ys[1:]).all()


def test_errors():
    with pytest.raises(FuncgradValueError, match="non-decreasing"):
        odeint(decay, np.array([1.0]), np.array([1.0, 0.0]), 1.0)
    with pytest.raises(FuncgradTypeError, match="args"):
        odeint(lambda y, t, fn: fn(y), np.array([1.0]), T, np.sin)
    with pytest.raises(TypeError):
        funcgrad.jvp(lambda y0: odeint(decay, y0, T, 1.0), (np.array([1.0]),),
                     (np.array([1.0]),))


def test_vmap_and_jit_of_grad():
    t = np.linspace(0.0, 1.0, 3)

    def end(k):
        return odeint(decay, np.array([1.0]), t, k)[-1, 0]

    np.testing.assert_allclose(funcgrad.vmap(end)(np.array([1.0, 2.0])), np.exp([-1.0, -2.0]),
                               rtol=1e-7)
    np.testing.assert_allclose(funcgrad.jit(funcgrad.grad(end))(1.0), -np.exp(-1.0), rtol=1e-7)
    with pytest.raises(FuncgradTypeError, match="while_loop"):
        funcgrad.grad(funcgrad.grad(end))(1.0)

"""Custom derivative rules (custom_jvp, custom_vjp, custom_gradient) and checkpoint
(funcgrad/_src/custom.py): rules used in both modes and at every order, composed with
every transformation (against JAX), dtypes, errors."""
import numpy as np
import pytest

import funcgrad
import funcgrad as fg
import funcgrad.numpy as fnp
from funcgrad import checkpoint, custom_jvp, custom_vjp, grad, jit, jvp, vmap
from funcgrad._src import core
from funcgrad.test_util import check_grads

from .jax_reference import _assert_trees_close, _jax, _jax_ref

A = np.random.default_rng(0).normal(size=(3, 3))
X32 = np.linspace(0.1, 1.0, 3).astype(np.float32)


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


def _custom_fns(L, np_):
    @L.custom_jvp
    def cj(x, y):
        return np_.sin(x) * y

    @cj.defjvp
    def _cj_jvp(p, t):
        (x, y), (tx, ty) = p, t
        return cj(x, y), np_.cos(x) * y * tx + np_.sin(x) * ty

    @L.custom_vjp
    def cv(x, y):
        return np_.sin(x) * y

    cv.defvjp(lambda x, y: (cv(x, y), (np_.cos(x), np_.sin(x), y)),
              lambda r, ct: (r[0] * r[2] * ct, r[1] * ct))
    ck = L.checkpoint(lambda x, y: np_.sin(x) * y)
    return {"custom_jvp": cj, "custom_vjp": cv, "checkpoint": ck}


_CX = np.linspace(0.1, 1.0, 3)


_CY = np.linspace(-1.0, 2.0, 3)


def _custom_cases(L, np_, F, kind):
    loss = lambda x, y: np_.sum(F(x, y) ** 2)  # noqa: E731
    cases = {
        "grad": lambda: L.grad(loss, (0, 1))(_CX, _CY),
        "jacrev(jacrev)": lambda: L.jacrev(L.jacrev(loss))(_CX, _CY),
        "grad(grad)": lambda: L.grad(lambda x: L.grad(loss)(x, _CY).sum())(_CX),
        "vmap(grad)": lambda: L.vmap(L.grad(loss), in_axes=(0, None))(
            np.stack([_CX, 2 * _CX]), _CY),
        "vmap(grad) scalar": lambda: L.vmap(L.grad(F))(_CX, _CY),
        "jit(grad) replayed": lambda: [L.jit(L.grad(loss))(_CX, _CY) for _ in range(2)][-1],
        "grad(jit)": lambda: L.grad(L.jit(loss))(_CX, _CY),
        "jit(vmap) replayed": lambda: [L.jit(L.vmap(F))(_CX, _CY) for _ in range(2)][-1],
        "vmap(vmap)": lambda: L.vmap(L.vmap(F, in_axes=(0, None)), in_axes=(None, 0))(_CX, _CY),
        "grad(vmap) all batched": lambda: L.grad(lambda x, y: np_.sum(L.vmap(F)(x, y)))(
            _CX, _CY),
    }
    if kind != "custom_vjp":
        cases.update({
            "hessian": lambda: L.hessian(loss, (0, 1))(_CX, _CY),
            "jvp": lambda: L.jvp(F, (_CX, _CY), (_CY, _CX)),
            "vmap(jvp)": lambda: L.vmap(lambda t: L.jvp(F, (_CX, _CY), (t, _CX))[1])(np.eye(3)),
            "jvp(vmap)": lambda: L.jvp(L.vmap(F), (_CX, _CY), (_CY, _CX)),
            "jvp(grad)": lambda: L.jvp(L.grad(loss), (_CX, _CY), (_CY, _CX)),
            "jacfwd": lambda: L.jacfwd(F, (0, 1))(_CX, _CY),
        })
    return cases


_CUSTOM_IDS = [(k, c) for k in ("custom_jvp", "custom_vjp", "checkpoint")
               for c in _custom_cases(fg, fnp, None, k)]


@pytest.mark.parametrize("kind,case", _CUSTOM_IDS, ids=[f"{k}-{c}" for k, c in _CUSTOM_IDS])
def test_custom_rules_compose_with_every_transformation(kind, case):
    jax = _jax()
    import jax.numpy as jnp
    got = _custom_cases(fg, fnp, _custom_fns(fg, fnp)[kind], kind)[case]()
    want = _jax_ref(_custom_cases(jax, jnp, _custom_fns(jax, jnp)[kind], kind)[case])
    _assert_trees_close(got, want, check_dtype=False)


def test_custom_rules_keep_float32():
    for F in _custom_fns(fg, fnp).values():
        gx, gy = fg.grad(lambda x, y: fnp.sum(F(x, y) ** 2), (0, 1))(X32, X32)
        assert gx.dtype == gy.dtype == np.float32


@pytest.mark.parametrize("kind", ["custom_vjp", "checkpoint"])
def test_grad_of_vmap_of_custom_vjp_with_unbatched_argument(kind):
    F = _custom_fns(fg, fnp)[kind]
    xs = np.stack([_CX, 2 * _CX])
    g = fg.grad(lambda x: fnp.sum(fg.vmap(F, in_axes=(0, None))(x, _CY)))(xs)
    np.testing.assert_allclose(g, np.cos(xs) * _CY)


def _ste():
    @fg.custom_jvp
    def ste_round(x):
        return fnp.round(x)
    ste_round.defjvp(lambda p, t: (ste_round(p[0]), t[0]))   # straight-through estimator
    return ste_round


def test_custom_jvp_rule_used_by_forward_and_reverse_first_order():
    ste = _ste()
    assert float(fg.grad(ste)(1.3)) == 1.0
    assert float(fg.jvp(ste, (1.3,), (1.0,))[1]) == 1.0
    # forward-over-forward is right: d2/dx2 [ste(x) * x] = 2 ste'(x) = 2
    assert float(fg.jacfwd(fg.jacfwd(lambda x: ste(x) * x))(1.3)) == 2.0


@pytest.mark.parametrize("order", ["hessian", "grad(grad)", "jacrev(jacrev)"])
def test_custom_jvp_rule_used_at_second_order(order):
    ste = _ste()
    f = lambda x: ste(x) * x  # noqa: E731
    h = {"hessian": fg.hessian(f), "grad(grad)": fg.grad(fg.grad(f)),
         "jacrev(jacrev)": fg.jacrev(fg.jacrev(f))}[order]
    assert float(h(1.3)) == 2.0


def test_jvp_of_value_and_grad_uses_custom_jvp_rule():
    ste = _ste()
    (_, _), (dvalue, _) = fg.jvp(fg.value_and_grad(ste), (1.3,), (1.0,))
    assert float(dvalue) == 1.0


@pytest.mark.parametrize("kind", ["custom_jvp", "custom_vjp"])
def test_custom_functions_accept_keyword_arguments(kind):
    F = _custom_fns(fg, fnp)[kind]
    assert np.isclose(fg.grad(lambda x: F(x, y=3.0))(0.2), 3.0 * np.cos(0.2))


def test_exception_in_custom_vjp_bwd_leaves_stack_clean():
    @fg.custom_vjp
    def g(x):
        return x

    def bwd(res, ct):
        raise ValueError("bwd")
    g.defvjp(lambda x: (x, None), bwd)
    with pytest.raises(ValueError, match="bwd"):
        fg.grad(g)(1.0)
    assert core.trace_depth() == 0

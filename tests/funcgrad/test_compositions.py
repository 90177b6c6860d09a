"""Adversarial review of funcgrad's core transformations, written as tests.

The tests pin behaviour found wrong by the review and since fixed, and behaviour that
was right all along (compositions to any order, pytrees, dtypes, aliasing safety, clean
trace stack, leak detection, clear errors). A newly found bug is added here as a test
marked ``xfail(strict=True, reason=...)`` until it is fixed.

References are JAX (CPU, x64) where installed, else analytic values / finite differences.
"""
from __future__ import annotations

import concurrent.futures

import numpy as np
import pytest

import funcgrad as fg
import funcgrad.numpy as fnp
from funcgrad._src import core
from funcgrad.errors import UnexpectedTracerError
from funcgrad.tree_util import tree_flatten, tree_leaves

def _jax():
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    return jax


def _jax_ref(thunk):
    """JAX's value for a zero-argument thunk, compiled as one program (JAX's op-by-op
    dispatch is ten times slower here); falls back to eager JAX if it does not jit."""
    jax = _jax()
    try:
        return jax.jit(thunk)()
    except Exception:      # noqa: BLE001 - e.g. float0 outputs; the eager run decides
        return thunk()


def _assert_trees_close(got, want, rtol=1e-7, atol=1e-9, check_dtype=True):
    g_leaves, _ = tree_flatten(got)
    w_leaves = _jax().tree_util.tree_leaves(want)
    assert len(g_leaves) == len(w_leaves), (got, want)
    for g, w in zip(g_leaves, w_leaves):
        g, w = np.asarray(g), np.asarray(w)
        assert g.shape == w.shape, (g.shape, w.shape)
        if check_dtype:
            assert g.dtype == w.dtype, (g.dtype, w.dtype)
        np.testing.assert_allclose(g, w, rtol=rtol, atol=atol)


_RNG = np.random.default_rng(0)
X3 = _RNG.normal(size=3)
Y23 = _RNG.normal(size=(2, 3))
W32 = _RNG.normal(size=(3, 2))
Z43 = _RNG.normal(size=(4, 3))
P = {"w": W32, "b": _RNG.normal(size=2), "s": np.array(1.3)}
X32 = np.linspace(0.1, 1.0, 3).astype(np.float32)


def _funcs(np_):
    """The same test functions written against fnp or jax.numpy."""
    def f_vec(x):
        return np_.sin(x) * np_.sum(x ** 2)

    def f_two(x, y):
        return np_.sum(np_.tanh(y @ x) ** 2) + np_.sum(x ** 3)

    def f_tree(p, z):
        return np_.sum(np_.tanh(z @ p["w"] + p["b"]) ** 2) * p["s"]

    return f_vec, f_two, f_tree


# ======================================================================================
# 1. Compositions to any order, pytrees, has_aux, complex, 0-d/empty, broadcasting
# ======================================================================================


def _composition_cases(L, np_):
    f_vec, f_two, f_tree = _funcs(np_)
    return {
        "jacfwd(jacrev)": lambda: L.jacfwd(L.jacrev(f_vec))(X3),
        "jacrev(jacrev)": lambda: L.jacrev(L.jacrev(f_vec))(X3),
        "jacrev(jacfwd)": lambda: L.jacrev(L.jacfwd(f_vec))(X3),
        "hessian of pytree input": lambda: L.hessian(f_tree)(P, Z43),
        "hessian argnums tuple": lambda: L.hessian(f_two, argnums=(0, 1))(X3, Y23),
        "jacrev argnums tuple of pytrees": lambda: L.jacrev(f_tree, argnums=(0, 1))(P, Z43),
        "jacfwd argnums tuple of pytrees": lambda: L.jacfwd(f_tree, argnums=(0, 1))(P, Z43),
        "grad argnums tuple of pytrees": lambda: L.grad(f_tree, argnums=(0, 1))(P, Z43),
        "grad of vmap of grad": lambda: L.grad(lambda p: np_.sum(
            L.vmap(L.grad(f_tree), in_axes=(None, 0))(p, Z43[:, None, :])["w"] ** 2))(P),
        "jit of hessian (3rd call)": lambda: [L.jit(L.hessian(f_tree))(P, Z43)
                                              for _ in range(3)][-1],
        "vmap of jvp, out_axes=1": lambda: L.vmap(
            lambda t: L.jvp(f_vec, (X3,), (t,))[1], out_axes=1)(np.eye(3)),
        "vmap of jvp, out_axes=(None,-1)": lambda: L.vmap(
            lambda x, t: L.jvp(f_vec, (x,), (t,)), in_axes=(None, 0),
            out_axes=(None, -1))(X3, np.eye(3)),
        "nested vmap": lambda: L.vmap(L.vmap(lambda a, b: a * b, in_axes=(0, None)),
                                      in_axes=(None, 1))(np.arange(3.0), np.ones((2, 4))),
        "vmap dict in_axes prefix": lambda: L.vmap(
            lambda d: d["a"] * d["b"], in_axes=({"a": 0, "b": None},))(
                {"a": np.arange(3.0), "b": np.ones(2)[:, None]}),
        "vmap negative axes": lambda: L.vmap(lambda a: a.sum(0), in_axes=-1, out_axes=-1)(
            np.arange(24.0).reshape(2, 3, 4)),
        "vmap out_axes pytree with None": lambda: L.vmap(
            lambda a: {"x": a * 2, "y": (a.sum(), 3.0)}, in_axes=1,
            out_axes={"x": 1, "y": (0, None)})(np.arange(6.0).reshape(2, 3)),
        "grad has_aux": lambda: L.grad(lambda x: (f_vec(x).sum(), {"a": x * 2}),
                                       has_aux=True)(X3),
        "value_and_grad has_aux": lambda: L.value_and_grad(
            lambda x: (f_vec(x).sum(), x * 2), has_aux=True)(X3),
        "jacfwd has_aux": lambda: L.jacfwd(lambda x: (f_vec(x), x * 2), has_aux=True)(X3),
        "jacrev has_aux": lambda: L.jacrev(lambda x: (f_vec(x), x * 2), has_aux=True)(X3),
        "hessian has_aux": lambda: L.hessian(lambda x: (f_vec(x).sum(), x * 2),
                                             has_aux=True)(X3),
        "jvp has_aux": lambda: L.jvp(lambda x: (f_vec(x), x * 2), (X3,), (X3,),
                                     has_aux=True),
        "vjp has_aux": lambda: (lambda r: (r[0], r[1](X3), r[2]))(
            L.vjp(lambda x: (f_vec(x), x * 2), X3, has_aux=True)),
        "linearize": lambda: L.linearize(f_vec, X3)[1](X3),
        "grad of 0-d": lambda: L.grad(lambda x: x ** 3)(np.array(2.0)),
        "hessian of 0-d": lambda: L.hessian(lambda x: np_.sin(x) * x)(np.array(0.3)),
        "grad of empty": lambda: L.grad(lambda x: np_.sum(x ** 2))(np.zeros((0, 3))),
        "jacfwd empty output": lambda: L.jacfwd(lambda x: x[:0] * 2)(X3),
        "jacrev empty output": lambda: L.jacrev(lambda x: x[:0] * 2)(X3),
        "jacrev empty input": lambda: L.jacrev(lambda x: np_.sum(x) + np.ones(2))(np.zeros(0)),
        "jacfwd empty input": lambda: L.jacfwd(lambda x: np_.sum(x) + np.ones(2))(np.zeros(0)),
        "vmap over size-0 axis": lambda: L.vmap(lambda x: np_.sin(x).sum())(np.zeros((0, 3))),
        "size-1 broadcasting grads": lambda: L.grad(
            lambda a, b: np_.sum(np_.sin(a * b)), argnums=(0, 1))(
                np.full((1, 3), 0.3), np.full((2, 1), 0.7)),
        "vmap of grad, size-1 dims": lambda: L.vmap(
            L.grad(lambda a, b: np_.sum(np_.sin(a * b))), in_axes=(0, None))(
                np.full((1, 1), 0.3), np.full(3, 0.7)),
        "int input mixed with float": lambda: L.grad(lambda x, n: np_.sum(x ** n * n))(
            X3, np.array(3)),
        "jvp with int primal (float0 tangent)": lambda: L.jvp(
            lambda x, n: x * n, (X3, np.array(3)),
            (X3, np.zeros((), fg.float0 if L is fg else L.dtypes.float0)))[0],
        "vmap of grad with batched int arg": lambda: L.vmap(
            L.grad(lambda x, n: np_.sum(x ** n)))(np.ones((2, 3)) * 1.5, np.array([1, 2])),
        "holomorphic grad": lambda: L.grad(lambda z: z ** 2 * np_.sin(z),
                                           holomorphic=True)(1 + 2j),
        "holomorphic grad of grad": lambda: L.grad(L.grad(
            lambda z: z ** 3 * np_.exp(z), holomorphic=True), holomorphic=True)(1 + 1j),
        "holomorphic jacfwd/jacrev/hessian": lambda: (
            L.jacfwd(lambda z: z ** 2, holomorphic=True)(X3 + 1j),
            L.jacrev(lambda z: z ** 2, holomorphic=True)(X3 + 1j),
            L.hessian(lambda z: np_.sum(z ** 3), holomorphic=True)(X3 + 1j)),
        "complex input, real loss (no conjugation)": lambda: (
            L.grad(lambda z: np_.abs(z) ** 2)(3 + 4j),
            L.grad(lambda z: (z * (1 + 2j)).real)(3 + 4j),
            L.grad(lambda z: np_.sum(np_.abs(z * np_.sin(z)) ** 2))(X3 + 2j)),
        "complex intermediates, real loss": lambda: (
            L.grad(lambda x: (np_.exp(1j * x) * (2 - 1j)).real)(0.7),
            L.grad(L.grad(lambda x: np_.real(np_.exp(1j * x * x))))(0.7),
            L.hessian(lambda x: np_.sum(np_.abs(np_.fft.fft(x)) ** 2))(X3),
            L.jacrev(lambda x: np_.abs(np_.exp((1 + 1j) * x)) ** 2)(X3)),
    }


_COMPOSITION_NAMES = list(_composition_cases(fg, fnp))


@pytest.mark.parametrize("name", _COMPOSITION_NAMES)
def test_compositions_match_jax(name):
    jax = _jax()
    import jax.numpy as jnp
    got = _composition_cases(fg, fnp)[name]()
    want = _jax_ref(_composition_cases(jax, jnp)[name])
    _assert_trees_close(got, want)


def _perturbation_cases(L, np_):
    @L.custom_jvp
    def f(x):
        return np_.sin(x)
    f.defjvp(lambda p, t: (f(p[0]), np_.cos(p[0]) * t[0]))

    @L.custom_vjp
    def g(x):
        return np_.sin(x)
    g.defvjp(lambda x: (g(x), np_.cos(x)), lambda c, ct: (c * ct,))
    D = L.grad
    return {
        "grad closure custom_jvp": lambda: D(lambda x: x * D(lambda y: f(x * y))(1.0))(0.5),
        "grad closure custom_vjp": lambda: D(lambda x: x * D(lambda y: g(x * y))(1.0))(0.5),
        "jvp closure": lambda: L.jvp(lambda x: x * L.jvp(
            lambda y: f(x + y) * y, (0.3,), (1.0,))[1], (0.5,), (1.0,))[1],
        "vmap grad closure": lambda: L.vmap(lambda x: D(lambda y: f(x * y) * x)(2.0))(
            np.linspace(0, 1, 3)),
        "grad vmap closure": lambda: D(lambda x: np_.sum(
            L.vmap(lambda y: f(x * y))(np.linspace(0, 1, 3))))(0.7),
        "grad of jvp closure": lambda: D(lambda x: L.jvp(lambda y: f(y * x), (x,), (x,))[1])(0.9),
        "checkpoint closure": lambda: D(lambda x: D(L.checkpoint(
            lambda y: np_.sin(x * y) * x))(1.0))(0.5),
        "hessian of closure": lambda: L.hessian(lambda x: D(lambda y: f(x * y) ** 2)(x))(0.3),
    }


@pytest.mark.parametrize("name", list(_perturbation_cases(fg, fnp)))
def test_no_perturbation_confusion(name):
    jax = _jax()
    import jax.numpy as jnp
    _assert_trees_close(_perturbation_cases(fg, fnp)[name](),
                        _jax_ref(_perturbation_cases(jax, jnp)[name]), check_dtype=False)


# ---- custom_jvp / custom_vjp / checkpoint with every transformation -------------------


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


# ======================================================================================
# 2. dtypes: float32 through everything; Python scalars never promote
# ======================================================================================


_F32 = lambda x: fnp.sum(fnp.tanh(x) ** 2 * 3.0)  # noqa: E731

_F32_CASES = {
    "grad": lambda: fg.grad(_F32)(X32),
    "value_and_grad": lambda: fg.value_and_grad(_F32)(X32),
    "hessian": lambda: fg.hessian(_F32)(X32),
    "jit(hessian) x2": lambda: [fg.jit(fg.hessian(_F32))(X32) for _ in range(2)],
    "vmap(grad)": lambda: fg.vmap(fg.grad(_F32))(np.ones((2, 3), np.float32)),
    "jvp": lambda: fg.jvp(_F32, (X32,), (X32,)),
    "vjp": lambda: fg.vjp(lambda x: fnp.sin(x) * 2, X32)[1](X32),
    "jacfwd": lambda: fg.jacfwd(lambda x: fnp.sin(x) * 2)(X32),
    "jacrev": lambda: fg.jacrev(lambda x: fnp.sin(x) * 2)(X32),
    "linearize": lambda: fg.linearize(lambda x: fnp.sin(x) * 2, X32)[1](X32),
    "jit(grad) x2": lambda: [fg.jit(fg.grad(_F32))(X32) for _ in range(2)],
    "grad(jit)": lambda: fg.grad(fg.jit(_F32))(X32),
    "complex intermediate": lambda: fg.hessian(
        lambda x: fnp.sum(fnp.real(fnp.exp(1j * x) * x)))(X32),
    "fft": lambda: fg.grad(lambda x: fnp.sum(fnp.abs(fnp.fft.fft(x)) ** 2))(X32),
    "python int and float constants": lambda: fg.hessian(
        lambda x: fnp.sum(x ** 3) / 2 + fnp.mean(x) * 0.5)(X32),
}


@pytest.mark.parametrize("name", list(_F32_CASES))
def test_float32_stays_float32(name):
    for leaf in tree_leaves(_F32_CASES[name]()):
        assert np.asarray(leaf).dtype == np.float32, name


def test_complex64_holomorphic_grad_stays_complex64():
    g = fg.grad(lambda z: fnp.sum(z ** 2), holomorphic=True)(X32.astype(np.complex64))
    assert g.dtype == np.complex64


def test_mixed_float32_float64_dtypes_match_jax():
    jax = _jax()
    import jax.numpy as jnp
    y64 = np.linspace(0.2, 2.0, 3)

    def mk(np_):
        return lambda x, y: np_.sum(np_.sin(x) * y) + np_.sum(x ** 2)
    for api in ("grad", "jacfwd", "jacrev", "hessian", "value_and_grad"):
        _assert_trees_close(getattr(fg, api)(mk(fnp), (0, 1))(X32, y64),
                            _jax_ref(lambda: getattr(jax, api)(mk(jnp), (0, 1))(X32, y64)),
                            rtol=1e-5)
    _assert_trees_close(fg.jvp(mk(fnp), (X32, y64), (X32, y64)),
                        _jax_ref(lambda: jax.jvp(mk(jnp), (X32, y64), (X32, y64))), rtol=1e-5)
    for api in ("jacfwd", "jacrev"):
        _assert_trees_close(getattr(fg, api)(lambda x: x * y64)(X32),
                            _jax_ref(lambda: getattr(jax, api)(lambda x: x * y64)(X32)))


def test_python_scalar_does_not_promote_when_not_differentiated():
    assert fg.grad(lambda x, s: fnp.sum(x * s))(X32, 2.0).dtype == np.float32
    assert fg.vmap(lambda x, s: x * s, in_axes=(0, None))(X32, 2.0).dtype == np.float32
    assert fg.jit(lambda x, s: x * s)(X32, 2.0).dtype == np.float32


def test_jit_python_scalar_arithmetic_keeps_float32():
    f = lambda x, s: x * (s * 2.0)  # noqa: E731
    assert f(X32, 3.0).dtype == np.float32          # eager
    jf = fg.jit(f)
    assert [jf(X32, 3.0).dtype for _ in range(2)] == [np.float32, np.float32]


@pytest.mark.parametrize("api", ["value_and_grad", "jvp"])
def test_differentiating_a_python_scalar_does_not_promote_float32(api):
    if api == "jvp":
        out, t = fg.jvp(lambda x, s: x * s, (X32, 2.0), (X32, 1.0))
        assert out.dtype == t.dtype == np.float32
    else:
        value, _ = fg.value_and_grad(lambda s, x: fnp.sum(x * s))(2.0, X32)
        assert value.dtype == np.float32


# ======================================================================================
# 3. Aliasing and mutation
# ======================================================================================


def _read_only(a):
    a = np.array(a)
    a.flags.writeable = False
    return a


_RO_X = _read_only(np.linspace(0.1, 1.0, 6).reshape(2, 3))
_RO_T = _read_only(np.ones((2, 3)))
_RO_XB = _read_only(np.linspace(0.1, 1.0, 24).reshape(4, 2, 3))
_MUT_FNS = {
    "at": lambda x: fnp.sum(fnp.at(x)[0, 1].add(2.0) ** 2 + fnp.at(x)[1].set(3.0)),
    "mix": lambda x: fnp.sum(fnp.tanh(x @ x.T)) + fnp.sum(fnp.sort(x, axis=1) * fnp.cumsum(x, 1)),
    "index": lambda x: fnp.sum(x[:, ::-1] * x[np.array([1, 0])] + fnp.max(x, 0)),
    "linalg": lambda x: fnp.sum(fnp.linalg.inv(x @ x.T + fnp.eye(2))),
    "elementwise chain": lambda x: fnp.sum(fnp.exp(x) * 2.0 + 1.0),
}


@pytest.mark.parametrize("name", list(_MUT_FNS))
def test_no_transformation_writes_into_user_arrays(name):
    f = _MUT_FNS[name]
    runs = [(fg.grad(f), _RO_X), (fg.hessian(f), _RO_X), (fg.jit(f), _RO_X),
            (fg.jit(fg.grad(f)), _RO_X), (fg.vmap(f), _RO_XB), (fg.jacfwd(f), _RO_X),
            (fg.jit(fg.vmap(fg.grad(f))), _RO_XB), (fg.grad(fg.checkpoint(f)), _RO_X),
            (lambda x: fg.jvp(f, (x,), (_RO_T,)), _RO_X),
            (lambda x: fg.vjp(fg.grad(f), x)[1](_RO_T), _RO_X)]
    for F, a in runs:
        for _ in range(2):          # the second jit call replays compiled code
            F(a)                    # read-only inputs: any in-place write would raise


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


# ======================================================================================
# 4. jit: caching, static args, literals, closures
# ======================================================================================


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


# ======================================================================================
# 5. Trace stack hygiene, leaks, threads
# ======================================================================================


def _raises_midway(x):
    _ = x * 2
    raise RuntimeError("midway")


@pytest.mark.parametrize("run", [
    lambda: fg.grad(_raises_midway)(1.0),
    lambda: fg.jvp(_raises_midway, (1.0,), (1.0,)),
    lambda: fg.vmap(_raises_midway)(np.ones(3)),
    lambda: fg.jit(_raises_midway)(np.ones(3)),
    lambda: fg.grad(lambda x: fg.vmap(_raises_midway)(x).sum())(np.ones(3)),
    lambda: fg.hessian(_raises_midway)(np.ones(3)),
    lambda: fg.jit(fg.grad(lambda x: fnp.sum(fg.vmap(_raises_midway)(x))))(np.ones(3)),
])
def test_trace_stack_is_clean_after_an_exception(run):
    with pytest.raises(RuntimeError):
        run()
    assert core.trace_depth() == 0
    assert float(fg.grad(fnp.sin)(0.0)) == 1.0


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


def test_inner_exception_caught_inside_outer_transformation():
    def h(x):
        try:
            fg.grad(lambda y: fnp.sum(y[10]))(x)
        except Exception:
            pass
        return fnp.sum(x * 3)
    np.testing.assert_allclose(fg.grad(h)(np.ones(2)), 3.0)
    assert [float(fg.jit(h)(np.ones(2))) for _ in range(2)] == [6.0, 6.0]


def _leak(transform):
    box = []
    if transform == "grad":
        fg.grad(lambda y: (box.append(y * 3.0), y)[1])(1.0)
    elif transform == "jit":
        fg.jit(lambda y: (box.append(y * 3.0), y)[1])(np.ones(2))
    else:
        fg.vmap(lambda y: (box.append(y * 3.0), y)[1])(np.ones(2))
    return box[0]


@pytest.mark.parametrize("transform", ["grad", "jit", "vmap"])
@pytest.mark.parametrize("use", ["eager", "in grad", "in jit", "in vmap"])
def test_leaked_tracer_is_an_error_when_used(transform, use):
    t = _leak(transform)
    run = {"eager": lambda: t * 2,
           "in grad": lambda: fg.grad(lambda x: fnp.sum(x * t))(1.0),
           "in jit": lambda: fg.jit(lambda x: x * t)(np.ones(2)),
           "in vmap": lambda: fg.vmap(lambda x: x + t)(np.ones(2))}[use]
    with pytest.raises(UnexpectedTracerError):
        run()


@pytest.mark.parametrize("api", ["value_and_grad", "jvp", "vjp", "jacrev"])
def test_returning_a_leaked_tracer_is_an_error(api):
    t = _leak("grad")
    run = {"value_and_grad": lambda: fg.value_and_grad(lambda x: t)(1.0),
           "jvp": lambda: fg.jvp(lambda x: t, (1.0,), (1.0,)),
           "vjp": lambda: fg.vjp(lambda x: t, 1.0),
           "jacrev": lambda: fg.jacrev(lambda x: t)(1.0)}[api]
    with pytest.raises(UnexpectedTracerError):
        run()


def test_threads_run_nested_transformations_independently():
    def work(k):
        return [float(fg.grad(lambda x: fg.grad(lambda y: fnp.sin(y) * x)(x) * x)(0.3 + k))
                for _ in range(20)]
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        results = list(pool.map(work, range(4)))
    for k, r in enumerate(results):
        x = 0.3 + k
        np.testing.assert_allclose(r, [2 * x * np.cos(x) - x * x * np.sin(x)] * 20)


def test_nested_transformation_in_worker_thread_is_not_silently_wrong():
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        def outer(x):
            return pool.submit(lambda: fg.grad(lambda y: x * y * y)(2.0)).result()
        try:
            g = fg.grad(outer)(3.0)
        except UnexpectedTracerError:
            return                                  # a clear error is acceptable
        assert float(g) == 4.0                      # d/dx (2 * x * 2)


# ======================================================================================
# 6. Errors and API semantics
# ======================================================================================


@pytest.mark.parametrize("api", ["grad", "value_and_grad", "jacfwd", "jacrev", "hessian"])
def test_clear_errors_for_every_api(api):
    F = getattr(fg, api)
    x = np.linspace(0.1, 1.0, 3)
    with pytest.raises(TypeError, match="pair"):
        F(lambda x: fnp.sum(x), has_aux=True)(x)
    with pytest.raises(TypeError, match="pair"):
        F(lambda x: (fnp.sum(x), 1, 2), has_aux=True)(x)
    with pytest.raises(ValueError, match="argnums"):
        F(lambda x, y: fnp.sum(x * y), argnums=2)(x, x)
    with pytest.raises(TypeError, match="argnums"):
        F(lambda x, y: fnp.sum(x * y), argnums="x")(x, x)


@pytest.mark.parametrize("api", ["grad", "value_and_grad", "jacfwd", "hessian"])
def test_integer_inputs_raise_unless_allow_int(api):
    with pytest.raises(TypeError):
        getattr(fg, api)(lambda x: fnp.sum(x * 1.0))(np.arange(3))


def test_jacrev_of_integer_input_raises():
    with pytest.raises(TypeError):
        fg.jacrev(lambda x: x * 2.0)(np.arange(3))


def test_float_argnums_error_names_argnums():
    with pytest.raises(TypeError, match="argnums"):
        fg.grad(lambda x, y: fnp.sum(x * y), argnums=1.0)(X3, X3)


def test_tangent_and_cotangent_mismatches_raise():
    x = np.linspace(0.1, 1.0, 3)
    with pytest.raises(ValueError):
        fg.jvp(fnp.sin, (x,), (x[:2],))
    with pytest.raises(TypeError):
        fg.jvp(fnp.sin, (x,), (x.astype(np.float32),))
    with pytest.raises(ValueError):
        fg.jvp(lambda d: d["a"], ({"a": x},), ({"b": x},))
    _, pull = fg.vjp(lambda x: (fnp.sin(x), x * 2), x)
    with pytest.raises(ValueError):
        pull((x,))
    with pytest.raises(ValueError):
        pull((x, x[:2]))
    with pytest.raises(TypeError):
        pull((x, x.astype(np.float32)))


def test_jvp_float_tangent_for_integer_primal_raises():
    with pytest.raises(TypeError):
        fg.jvp(lambda n: n * 2.0, (3,), (1.0,))


def test_grad_of_python_float_constant_is_zero():
    assert float(fg.grad(lambda x: 1.0)(2.0)) == 0.0


def test_vmap_maps_keyword_arguments():
    out = fg.vmap(lambda x, y: x + y)(np.arange(3.0), y=np.arange(3.0))
    np.testing.assert_allclose(out, 2 * np.arange(3.0))


@pytest.mark.parametrize("kwargs", [{"in_axes": 1}, {"in_axes": -2}, {"out_axes": 2}])
def test_vmap_out_of_range_axes_raise(kwargs):
    with pytest.raises(ValueError):
        fg.vmap(lambda a: a * 2, **kwargs)(np.arange(3.0))


def test_vmap_non_integer_in_axes_entry_error():
    with pytest.raises((TypeError, ValueError), match="in_axes"):
        fg.vmap(lambda a: a, in_axes=("x",))(np.arange(3.0))

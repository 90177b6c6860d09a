"""Transformations composed with one another, to any order: every pair of grad/jvp/vjp,
jit and vmap around them, JAX's values for compositions with pytrees, has_aux, complex
numbers, 0-d and empty arrays (JAX, CPU, x64, where installed), no perturbation
confusion, and no transformation writing into the user's arrays.

A newly found bug is added as a test marked ``xfail(strict=True, reason=...)`` until it
is fixed.
"""
from __future__ import annotations

import itertools

import numpy as np
import pytest

import funcgrad
import funcgrad as fg
import funcgrad.numpy as fnp
from funcgrad import grad, jit, jvp, vjp, vmap

from .jax_reference import _assert_trees_close, _jax, _jax_ref

_RNG = np.random.default_rng(0)
X3 = _RNG.normal(size=3)
Y23 = _RNG.normal(size=(2, 3))
W32 = _RNG.normal(size=(3, 2))
Z43 = _RNG.normal(size=(4, 3))
P = {"w": W32, "b": _RNG.normal(size=2), "s": np.array(1.3)}


def _funcs(np_):
    """The same test functions written against fnp or jax.numpy."""
    def f_vec(x):
        return np_.sin(x) * np_.sum(x ** 2)

    def f_two(x, y):
        return np_.sum(np_.tanh(y @ x) ** 2) + np_.sum(x ** 3)

    def f_tree(p, z):
        return np_.sum(np_.tanh(z @ p["w"] + p["b"]) ** 2) * p["s"]

    return f_vec, f_two, f_tree


# ---- Compositions to any order, pytrees, has_aux, complex, 0-d/empty, broadcasting


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


# ---- Aliasing and mutation


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

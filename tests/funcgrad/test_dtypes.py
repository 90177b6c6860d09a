"""dtype in = dtype out through every transformation: float32 stays float32, mixed
float32/float64 promote as in JAX, Python scalars never promote arrays."""
import numpy as np
import pytest

import funcgrad as fg
import funcgrad.numpy as fnp
from funcgrad.tree_util import tree_leaves

from .jax_reference import _assert_trees_close, _jax, _jax_ref

X32 = np.linspace(0.1, 1.0, 3).astype(np.float32)


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

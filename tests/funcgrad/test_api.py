"""The API's argument checking (funcgrad/_src/api.py): has_aux, argnums, integer inputs,
tangent and cotangent structures, each a clear error of a built-in kind."""
import numpy as np
import pytest

import funcgrad as fg
import funcgrad.numpy as fnp

X3 = np.random.default_rng(0).normal(size=3)


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

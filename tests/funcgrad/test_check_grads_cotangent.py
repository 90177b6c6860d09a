"""check_grads at order > 1 differentiates the VJP in its cotangent as well as in the
primals, and the JVP in its tangents: a wrong rule reached only through the derivative
of a VJP with respect to its cotangent (or of a JVP in its tangent) is caught."""
import numpy as np
import pytest

import funcgrad
import funcgrad.numpy as fnp
from funcgrad._src.core import Primitive, bind, def_rules
from funcgrad.test_util import check_grads


def _foo(bar_scale):
    """foo(x) = 2x whose backward pass goes through bar(g) = g, with bar's own reverse
    rule scaled by ``bar_scale`` (1: right)."""
    @funcgrad.custom_vjp
    def bar(x):
        return x
    bar.defvjp(lambda x: (x, None), lambda res, g: (g * bar_scale,))

    @funcgrad.custom_vjp
    def foo(x):
        return x * 2.0
    foo.defvjp(lambda x: (x * 2.0, None), lambda res, g: (bar(g) * 2.0,))
    return foo


def test_wrong_rule_in_the_cotangent_path_of_a_vjp_is_caught():
    foo = _foo(1.001)
    check_grads(foo, (1.0,), order=1, modes=("rev",))     # first order is right
    with pytest.raises(AssertionError):
        check_grads(foo, (1.0,), order=2, modes=("rev",))


def test_right_rule_in_the_cotangent_path_passes():
    check_grads(_foo(1.0), (1.0,), order=2, modes=("rev",))
    check_grads(_foo(1.0), (np.array([0.5, -2.0]),), order=3, modes=("rev",))


def _linear_with_wrong_tangent_derivative():
    """f(x) = 3 x with a forward rule t * 3 whose own jvp in t is wrong: the rule's
    tangent enters through a primitive ``scale3`` whose jvp says 3.01."""
    s = Primitive("scale3_wrong_jvp", lambda t: t * 3.0)
    def_rules(s, jvp=(lambda tt, ans, t: tt * 3.01,), vjp=(lambda g, ans, t: g * 3.0,))
    p = Primitive("times3", lambda x: x * 3.0)
    def_rules(p, jvp=(lambda t, ans, x: bind(s, t),), vjp=(lambda g, ans, x: g * 3.0,))
    return lambda x: bind(p, x)


def test_wrong_rule_in_the_tangent_path_of_a_jvp_is_caught():
    f = _linear_with_wrong_tangent_derivative()
    x = np.array([0.5, 1.5])
    check_grads(f, (x,), order=1, modes=("fwd",))
    with pytest.raises(AssertionError):
        check_grads(f, (x,), order=2, modes=("fwd",))


def test_integer_and_pytree_arguments_still_work_at_higher_order():
    def f(p, k):
        return fnp.sum(p["w"] ** 3) * k + fnp.tanh(p["b"])
    p = {"w": np.array([0.3, -0.7]), "b": np.array(0.2)}
    check_grads(f, (p, np.int64(2)), order=2)


def test_float32_and_complex_at_order_three():
    check_grads(lambda x: fnp.sin(x) * x, (np.array([0.3, 0.9], np.float32),), order=3)
    check_grads(lambda z: fnp.exp(z) * z, (np.array([0.3 + 0.2j, -0.5j]),), order=2)

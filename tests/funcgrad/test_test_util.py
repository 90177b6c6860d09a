"""check_grads must catch wrong rules, in both modes and at higher order."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import funcgrad
import funcgrad.numpy as fnp
from funcgrad._src.core import Primitive, bind, def_rules
from funcgrad.test_util import check_grads, check_jvp, check_vjp


def _make(jvp_scale=1.0, vjp_scale=1.0, second_order_bug=False):
    """x -> x**3 with rules that can be made wrong on purpose."""
    p = Primitive("cube", lambda x: x ** 3)
    # The buggy variant has the right value but a rule that is not itself differentiated
    # correctly (half of it is hidden from higher-order derivatives).
    deriv = (lambda x: 3 * x * x) if not second_order_bug else (
        lambda x: 3 * x * funcgrad.stop_gradient(x))
    def_rules(p, jvp=(lambda t, ans, x: t * deriv(x) * jvp_scale,),
              vjp=(lambda g, ans, x: g * deriv(x) * vjp_scale,))
    return lambda x: bind(p, x)


def test_correct_rules_pass():
    check_grads(_make(), (np.array([0.5, -1.2]),), order=3)


def test_wrong_forward_rule_is_caught():
    with pytest.raises(AssertionError, match="finite differences"):
        check_jvp(_make(jvp_scale=1.01), (np.array([0.5, 1.2]),))


def test_wrong_reverse_rule_is_caught():
    with pytest.raises(AssertionError, match="disagrees with jvp"):
        check_vjp(_make(vjp_scale=0.9), (np.array([0.5, 1.2]),))


def test_wrong_second_derivative_is_caught():
    f = _make(second_order_bug=True)
    check_grads(f, (np.array([0.5, 1.2]),), order=1)      # first order is right
    with pytest.raises(AssertionError):
        check_grads(f, (np.array([0.5, 1.2]),), order=2)


def test_modes_argument():
    check_grads(_make(vjp_scale=0.5), (np.array([0.5]),), order=2, modes=("fwd",))
    with pytest.raises(AssertionError):
        check_grads(_make(vjp_scale=0.5), (np.array([0.5]),), order=1, modes=("rev",))


@given(st.integers(1, 5), st.integers(0, 1000))
def test_documented_property_test_example(n, seed):
    x = np.random.default_rng(seed).normal(size=(n,))
    check_grads(lambda x: fnp.sum(fnp.tanh(x) ** 2), (x,), order=2)


def test_float32_tolerances():
    x = np.array([0.3, 0.8], dtype=np.float32)
    check_grads(lambda x: fnp.exp(x) * fnp.sin(x), (x,), order=2)

"""Error messages a newcomer meets in the first ten minutes: each names the fix, and none
names a private module path or an internal trace object."""
import pickle
import traceback

import numpy as np
import pytest

import funcgrad
import funcgrad.numpy as fnp
from funcgrad.errors import (ConcretizationTypeError, FuncgradTypeError, FuncgradValueError,
                             IndexOutOfBoundsError, TracerArrayConversionError,
                             UnsupportedFunctionError)


def test_jvp_with_integers_names_the_real_float0_and_says_pass_floats():
    with pytest.raises(FuncgradTypeError) as e:
        funcgrad.jvp(lambda x: x * 2, (2,), (5,))
    msg = str(e.value)
    assert "funcgrad.dtypes" not in msg
    assert "funcgrad.float0" in msg and hasattr(funcgrad, "float0")
    assert "pass floats" in msg and "2.0" in msg


def test_scipy_special_ufunc_on_a_tracer_points_to_funcgrad_scipy_special():
    scipy_special = pytest.importorskip("scipy.special")
    with pytest.raises(UnsupportedFunctionError) as e:
        funcgrad.grad(lambda x: scipy_special.expit(x))(1.0)
    msg = str(e.value)
    assert "numpy.expit" not in msg
    assert "scipy.special.expit" in msg and "funcgrad.scipy.special.expit" in msg
    import funcgrad.scipy.special as fss
    assert hasattr(fss, "expit")


def test_numpy_ufunc_message_is_unchanged_for_numpy_ufuncs():
    with pytest.raises(UnsupportedFunctionError, match=r"numpy\.spacing"):
        funcgrad.grad(lambda x: np.spacing(x))(1.0)      # (frexp is supported now)


@pytest.mark.parametrize("make", [
    lambda x, n: fnp.zeros(n) + x,
    lambda x, n: fnp.ones((2, n)) + x,
    lambda x, n: fnp.full(n, 1.0) + x,
    lambda x, n: fnp.reshape(fnp.arange(6.0), (n, -1)) + x,
    lambda x, n: fnp.broadcast_to(x, (n,)),
    lambda x, n: fnp.eye(n) + x,
])
def test_traced_int_as_a_shape_under_jit_names_the_argument_and_static_argnums(make):
    with pytest.raises(ConcretizationTypeError) as e:
        funcgrad.jit(make)(1.0, 3)
    msg = str(e.value)
    assert "shape" in msg and "'n'" in msg and "static_argnums" in msg
    assert "numpy.where" not in msg          # a choice between values cannot fix a size
    # and the fix works
    assert 3 in funcgrad.jit(make, static_argnums=1)(1.0, 3).shape


def test_traced_int_in_range_under_jit_names_static_argnums():
    def f(x, n):
        for _ in range(n):
            x = x * 2
        return x
    with pytest.raises(ConcretizationTypeError, match="static_argnums"):
        funcgrad.jit(f)(1.0, 3)
    assert funcgrad.jit(f, static_argnums=1)(1.0, 3) == 8.0


def test_writing_a_tracer_into_a_numpy_buffer_explains_itself():
    def f(x):
        buf = np.zeros(3)
        buf[0] = x
        return buf.sum()
    with pytest.raises(ValueError) as e:     # NumPy's own error, caused by ours
        funcgrad.grad(f)(1.0)
    text = "".join(traceback.format_exception(e.value))
    assert isinstance(e.value.__cause__, ConcretizationTypeError)
    assert "buf[i] = x" in text and "setting an array element with a sequence" in text
    assert ".at[i].set" in text


def test_from_torch_state_dict_pair_passed_as_params_gets_a_hint():
    import funcgrad.random as fr
    import funcgrad_nn as nn
    x = np.ones((1, 2))
    for model in (nn.Linear(2, 3), nn.Sequential(nn.Linear(2, 3), nn.ReLU())):
        sd = nn.to_torch_state_dict(model.init(fr.key(0)))
        pair = nn.from_torch_state_dict(model, sd)
        with pytest.raises((FuncgradTypeError, FuncgradValueError)) as e:
            model(pair, x)
        assert "(params, state)" in str(e.value) and "params, state =" in str(e.value)
        params, state = pair
        assert model(params, x).shape == (1, 3)


@pytest.mark.parametrize("value", ["tanh", object(), len])
def test_jit_given_a_non_array_argument_says_make_it_static(value):
    def f(x, how):
        return x * 2
    with pytest.raises(FuncgradTypeError) as e:
        funcgrad.jit(f)(1.0, value)
    msg = str(e.value)
    assert "positional argument 1" in msg and "static_argnums" in msg
    assert "len() of unsized" not in msg
    with pytest.raises(FuncgradTypeError, match="argument 'how'.*static_argnames"):
        funcgrad.jit(f)(1.0, how=value)
    assert funcgrad.jit(f, static_argnums=1)(1.0, value) == 2.0


def test_jit_with_a_string_used_in_python_control_flow():
    def act(x, name):
        return fnp.tanh(x) if name == "tanh" else x
    with pytest.raises(FuncgradTypeError, match="static"):
        funcgrad.jit(act)(1.0, "tanh")
    assert funcgrad.jit(act, static_argnames="name")(1.0, "tanh") == np.tanh(1.0)


def test_jit_rejects_unknown_static_argnames():
    with pytest.raises(FuncgradValueError, match=r"\['nn'\].*parameters"):
        funcgrad.jit(lambda x, n: x * n, static_argnames=("nn",))
    # **kwargs accepts any name; keyword-only parameters are parameters
    funcgrad.jit(lambda x, **kw: x, static_argnames=("anything",))
    f = funcgrad.jit(lambda x, *, n: x * n, static_argnames="n")
    assert f(2.0, n=3) == 6.0


def test_messages_name_transformations_not_trace_objects():
    with pytest.raises(TracerArrayConversionError) as e:
        funcgrad.grad(lambda x: np.asarray(x).sum())(1.0)
    msg = str(e.value)
    assert "level=" not in msg and "VJPTrace" not in msg and "grad" in msg
    with pytest.raises(TracerArrayConversionError) as e:
        funcgrad.jit(lambda x: np.asarray(x))(np.ones(2))
    assert "GraphTrace" not in str(e.value) and "jit" in str(e.value)


def test_exceptions_show_their_public_module():
    with pytest.raises(ConcretizationTypeError) as e:
        funcgrad.jit(lambda x: x if x > 0 else -x)(1.0)
    line = traceback.format_exception_only(e.value)[-1]
    assert line.startswith("funcgrad.errors.ConcretizationTypeError:")
    assert "_src" not in line
    for cls in (ConcretizationTypeError, IndexOutOfBoundsError, UnsupportedFunctionError):
        assert type(pickle.loads(pickle.dumps(cls("m")))) is cls

"""The Tracer's ndarray surface, plain-NumPy dispatch, functional updates and errors; the
trace stack: clean after exceptions, leaked tracers detected, one stack per thread."""
import concurrent.futures
import operator

import numpy as np
import pytest

import funcgrad
import funcgrad as fg
import funcgrad.numpy as fnp
from funcgrad import grad, jvp, vjp
from funcgrad._src import core
from funcgrad.errors import (ConcretizationTypeError, FuncgradTypeError, FuncgradValueError,
                             TracerArrayConversionError, UnexpectedTracerError)


# ---- the ndarray surface -----------------------------------------------------------------
def test_tracer_attributes_and_methods():
    seen = {}

    def f(x):
        seen.update(shape=x.shape, dtype=x.dtype, ndim=x.ndim, size=x.size, len=len(x),
                    T=x.T.shape, rows=[r.shape for r in x])
        y = (x.sum(axis=0) + x.mean(1).sum() + x.max() + x.min(axis=1, keepdims=True).sum()
             + x.reshape(-1)[2] + x.reshape(3, 2).transpose()[1, 1] + x.astype(np.complex128).real.sum()
             + x.dot(np.ones(3)).sum() + x.clip(0.1, 0.5).sum() + x.prod() + x.var() + x.std())
        return y.sum()

    x = np.arange(1.0, 7.0).reshape(2, 3) / 10 + 0.013   # away from the clip bounds
    g = grad(f)(x)
    assert seen == dict(shape=(2, 3), dtype=np.float64, ndim=2, size=6, len=2, T=(3, 2),
                        rows=[(3,), (3,)])
    from funcgrad.test_util import check_grads
    check_grads(f, (x,), order=1)
    assert g.shape == x.shape


def test_all_operators_including_reflected():
    def f(x):
        y = 2.0 + x
        y = y - 1.0
        y = 3.0 - y
        y = y * x
        y = 2.0 * y
        y = y / (x + 2)
        y = 1.0 / (y + 5)
        y = y ** 2
        y = 2.0 ** y
        y = -y + (+y)
        y = abs(y - 1) + x @ np.ones((2, 2))
        y = np.ones((2, 2)) @ y
        y = y // 1 + y % 3 + divmod(y, 2)[1]
        return fnp.sum(y)

    from funcgrad.test_util import check_grads
    x = np.array([[0.3, 0.7], [1.1, 0.2]])
    check_grads(f, (x,), order=2)
    comps = []

    def g(x):
        comps.extend([x < 1, x <= 1, x > 1, x >= 1, x == 1, x != 1])
        return fnp.sum(x)

    grad(g)(np.array([0.5, 1.0, 2.0]))
    assert [c.tolist() for c in comps] == [
        [True, False, False], [True, True, False], [False, False, True],
        [False, True, True], [False, True, False], [True, False, True]]


def test_basic_indexing_on_tracers():
    x = np.arange(24.0).reshape(2, 3, 4)

    def f(x):
        return (x[0].sum() + x[1, 2, 3] + x[:, 1:, ::2].sum() + x[..., -1].sum()
                + x[None, 0, :, None].sum() + x[1, ::-1, 1:3].sum())

    g = grad(f)(x)
    expected = np.zeros_like(x)
    expected[0] += 1
    expected[1, 2, 3] += 1
    expected[:, 1:, ::2] += 1
    expected[..., -1] += 1
    expected[0] += 1
    expected[1, ::-1, 1:3] += 1
    np.testing.assert_array_equal(g, expected)


def test_printing_a_tracer_shows_its_value(capsys):
    def f(x):
        print(x)
        print(repr(x))
        print(f"{x[0]:.2f}")
        return fnp.sum(x)

    grad(f)(np.array([1.5, 2.5]))
    out = capsys.readouterr().out
    assert "[1.5 2.5]" in out and "array([1.5, 2.5])" in out and "1.50" in out


# ---- plain NumPy dispatch -------------------------------------------------------------------
def test_plain_numpy_functions_differentiate():
    def f(x):
        return (np.sum(np.sin(x) * np.exp(x)) + np.mean(x ** 2) + np.max(np.tanh(x))
                + np.dot(x, x) + np.prod(np.cos(x)) + np.std(np.reshape(x, (3, 1))))

    def g(x):
        return (fnp.sum(fnp.sin(x) * fnp.exp(x)) + fnp.mean(x ** 2) + fnp.max(fnp.tanh(x))
                + fnp.dot(x, x) + fnp.prod(fnp.cos(x)) + fnp.std(fnp.reshape(x, (3, 1))))

    x = np.array([0.1, -0.4, 0.9])
    np.testing.assert_allclose(grad(f)(x), grad(g)(x))
    np.testing.assert_allclose(jvp(f, (x,), (np.ones(3),))[1], jvp(g, (x,), (np.ones(3),))[1])
    # reductions spelled as ufunc methods, reshapes, transposes, where, clip
    h = lambda x: np.add.reduce(np.where(x > 0, np.clip(x, 0, 0.5), np.transpose(x)))  # noqa
    np.testing.assert_allclose(grad(h)(x), [1.0, 1.0, 0.0])


def test_unsupported_numpy_function_names_itself():
    with pytest.raises(TypeError, match="numpy.poly"):
        grad(lambda x: np.sum(np.poly(x)))(np.ones(3))
    with pytest.raises(TypeError, match="out="):
        grad(lambda x: np.sum(np.sin(x, out=np.empty(3))))(np.ones(3))


def test_asarray_on_a_tracer_raises():
    with pytest.raises(TracerArrayConversionError, match="stop_gradient"):
        grad(lambda x: np.asarray(x).sum())(np.ones(2))
    with pytest.raises(TracerArrayConversionError):
        grad(lambda x: fnp.sum(np.array(x)))(np.ones(2))
    # funcgrad.numpy.asarray keeps the derivative
    np.testing.assert_allclose(grad(lambda x: fnp.sum(fnp.asarray(x) ** 2))(np.ones(2)), [2, 2])


def test_float_of_a_tracer_raises_but_bool_works():
    with pytest.raises(ConcretizationTypeError, match="float"):
        grad(lambda x: float(x) * x)(1.0)
    assert float(grad(lambda x: x * 2 if x > 0 else -x)(1.0)) == 2.0



# ---- conversions to Python and NumPy scalars (issue 17) ----------------------------------
def _record(conv, out):
    def f(x):
        out.append(conv(fnp.argmax(x)))          # an integer tracer: nothing to lose
        out.append(conv(x[1] * 0 + 2.7) if conv in (int, np.int64, np.int32) else None)
        return fnp.sum(x * x)
    return f


@pytest.mark.parametrize("conv", [int, np.int64, np.int32, float, np.float64, np.float32,
                                  complex, lambda v: v.item(), operator.index],
                         ids=["int", "np.int64", "np.int32", "float", "np.float64",
                              "np.float32", "complex", "item", "index"])
def test_integer_results_of_concrete_tracers_convert_under_grad_and_jvp(conv):
    """Where values are concrete (grad, jvp, vjp) a conversion that gives an integer, or
    any conversion of an integer tracer, gives the value: no derivative is lost."""
    x = np.array([1.0, 3.0, 2.0])
    for run in (lambda f: grad(f)(x), lambda f: jvp(f, (x,), (np.ones(3),)),
                lambda f: vjp(f, x)):
        out = []
        run(_record(conv, out))
        assert out[0] == 1 and not isinstance(out[0], core.Tracer)
        if conv in (int, np.int64, np.int32):
            assert out[1] == 2 and type(out[1]) is (int if conv is int else conv)


@pytest.mark.parametrize("conv", [float, np.float64, np.float32, complex,
                                  lambda v: v.item()],
                         ids=["float", "np.float64", "np.float32", "complex", "item"])
def test_a_float_result_of_a_differentiable_tracer_raises(conv):
    """float(x) would drop x's derivative silently: it raises, naming stop_gradient."""
    with pytest.raises((ConcretizationTypeError, TracerArrayConversionError),
                       match="stop_gradient"):
        grad(lambda x: conv(x) * x)(1.5)
    # the explicit way: the derivative blocked first
    assert grad(lambda x: funcgrad.stop_gradient(x).item() * x)(1.5) == 1.5


@pytest.mark.parametrize("conv", [int, np.int64, float, np.float64, np.float32,
                                  lambda v: v.item()],
                         ids=["int", "np.int64", "float", "np.float64", "np.float32", "item"])
@pytest.mark.parametrize("integer", [False, True])
def test_conversions_under_jit_explain_static_arguments(conv, integer):
    def f(x):
        v = fnp.argmax(x) if integer else x[0]
        return x * conv(v)
    for stage in (funcgrad.jit(f), lambda x: funcgrad.make_graph(f)(x)):
        with pytest.raises(ConcretizationTypeError, match="static_argnums"):
            stage(np.array([1.0, 2.0]))
    with pytest.raises(ConcretizationTypeError, match="static_argnums"):
        grad(lambda x: fnp.sum(funcgrad.jit(f)(x)))(np.array([1.0, 2.0]))


def test_a_traced_integer_indexes_a_numpy_array_under_grad_but_not_jit():
    table = np.array([10.0, 20.0, 30.0])
    f = lambda x: x[0] * table[fnp.argmax(x)]          # noqa: E731
    np.testing.assert_allclose(grad(f)(np.array([1.0, 3.0])), [20.0, 0.0])
    with pytest.raises(TracerArrayConversionError, match="traced index"):
        funcgrad.jit(f)(np.array([1.0, 3.0]))


# ---- functional updates -------------------------------------------------------------------
def test_setitem_on_a_tracer_points_to_at():
    def f(x):
        x[0] = 1.0
        return x.sum()

    with pytest.raises(TypeError, match=r"x.at\[idx\].set\(v\)"):
        grad(f)(np.ones(3))


def test_at_updates_are_differentiable():
    def f(x, v):
        y = x.at[1].set(v * 2)
        y = y.at[0, :2].add(v)
        y = y.at[2].multiply(3.0)
        y = y.at[:, -1].max(0.45)
        y = y.at[:, 0].min(v)
        return fnp.sum(y ** 2) + y.at[1].get().sum()

    x = np.arange(9.0).reshape(3, 3) / 10 + 0.05   # no ties at the min/max kinks
    from funcgrad.test_util import check_grads
    gx, gv = grad(lambda x, v: f(x, v), argnums=(0, 1))(x, 0.35)
    # check against finite differences through plain arrays with fnp.at
    def f_plain(x, v):
        y = fnp.at(x)[1].set(v * 2)
        y = fnp.at(y)[0, :2].add(v)
        y = fnp.at(y)[2].multiply(3.0)
        y = fnp.at(y)[:, -1].max(0.45)
        y = fnp.at(y)[:, 0].min(v)
        return fnp.sum(y ** 2) + fnp.at(y)[1].get().sum()
    check_grads(f_plain, (x, np.array(0.35)), order=2)
    gx2, gv2 = grad(f_plain, argnums=(0, 1))(x, 0.35)
    np.testing.assert_allclose(gx, gx2)
    np.testing.assert_allclose(gv, gv2)


def test_at_on_plain_arrays_does_not_mutate():
    x = np.zeros(3)
    y = fnp.at(x)[1].set(5.0)
    assert x.tolist() == [0, 0, 0] and y.tolist() == [0, 5, 0]


# ---- errors people can act on -----------------------------------------------------------
def test_grad_of_non_scalar_output():
    with pytest.raises(TypeError, match=r"float64\[3\].*jacrev"):
        grad(fnp.sin)(np.ones(3))


def test_grad_has_aux_wrong_return():
    with pytest.raises(TypeError, match="pair"):
        grad(lambda x: fnp.sum(x), has_aux=True)(np.ones(3))
    with pytest.raises(TypeError, match="pair"):
        grad(lambda x: (fnp.sum(x), 1, 2), has_aux=True)(np.ones(3))


def test_bad_argnums():
    with pytest.raises(ValueError, match="argnums=2.*2 positional"):
        grad(lambda a, b: a * b, argnums=2)(1.0, 2.0)
    with pytest.raises(TypeError, match="argnums must be an int or a tuple of ints"):
        grad(lambda a: a, argnums="a")(1.0)


def test_grad_of_integer_input():
    with pytest.raises(TypeError, match=r"argument 'n'.*int64.*allow_int"):
        grad(lambda n: n * 2.0)(np.array(3))


def test_jvp_tangent_mismatch():
    with pytest.raises(ValueError, match=r"tangent float64\[2\].*float64\[3\]"):
        jvp(fnp.sin, (np.ones(3),), (np.ones(2),))
    with pytest.raises(TypeError, match="float32.*float64"):
        jvp(fnp.sin, (np.ones(3),), (np.ones(3, np.float32),))
    with pytest.raises(TypeError, match="tuples or lists"):
        jvp(fnp.sin, np.ones(3), np.ones(3))


def test_vjp_cotangent_mismatch():
    _, f_vjp = vjp(fnp.sin, np.ones(3))
    with pytest.raises(ValueError, match=r"cotangent has shape float64\[2\]"):
        f_vjp(np.ones(2))
    with pytest.raises(TypeError, match="float32"):
        f_vjp(np.ones(3, np.float32))
    _, f_vjp2 = vjp(lambda x: (x, x), np.ones(3))
    with pytest.raises(ValueError, match="structure"):
        f_vjp2(np.ones(3))


def test_leaked_tracer_is_detected():
    leaked = []

    def f(x):
        leaked.append(x)
        return fnp.sum(x)

    grad(f)(np.ones(2))
    with pytest.raises(UnexpectedTracerError, match="leaked"):
        grad(lambda y: fnp.sum(y * leaked[0]))(np.ones(2))
    with pytest.raises(UnexpectedTracerError):
        fnp.sin(leaked[0])


def test_complex_output_requires_holomorphic():
    with pytest.raises(TypeError, match="holomorphic"):
        grad(lambda z: z * z)(np.array(1 + 2j))
    g = grad(lambda z: z * z, holomorphic=True)(np.array(1 + 2j))
    assert complex(g) == 2 + 4j


def test_shape_errors_name_the_operation():
    with pytest.raises(FuncgradValueError, match="reshape.*float64\\[2,3\\].*\\(4,\\)"):
        grad(lambda x: fnp.sum(fnp.reshape(x, (4,))))(np.ones((2, 3)))
    with pytest.raises(FuncgradValueError, match="matmul.*3 != 2"):
        grad(lambda x: fnp.sum(x @ np.ones((2, 2))))(np.ones((2, 3)))
    with pytest.raises(FuncgradValueError, match="sum: axis 2 is out of bounds"):
        fnp.sum(np.ones((2, 2)), axis=2)
    with pytest.raises(FuncgradTypeError):
        grad(lambda x: x)("not an array")


def test_unsupported_function_is_also_not_implemented_error():
    with pytest.raises(NotImplementedError, match="numpy.poly.*custom_vjp"):
        grad(lambda x: np.sum(np.poly(x)))(np.ones(3))


# ---- the trace stack: clean after exceptions, leaks detected, one per thread -------------
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

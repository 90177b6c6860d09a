"""CuPy ElementwiseKernel generation (cupy_kernels.py): the generated CUDA C is checked
as text, and run on the CPU stand-in (whose ElementwiseKernel interprets it, strict about
C types) against the NumPy replay; on a GPU, against the CPU."""
import zlib

import numpy as np
import pytest

import funcgrad
from funcgrad._src import numba_backend
import funcgrad.numpy as fnp
from funcgrad._src import compiler as staging
from funcgrad._src import cupy_kernels as ck
from funcgrad._src.testing_backend import (StandInArray, StandInElementwiseKernel,
                                           StandInReductionKernel, standin_xp)


@pytest.fixture
def kernels_xp(monkeypatch):
    """The stand-in module with an ElementwiseKernel (as CuPy has)."""
    monkeypatch.setattr(standin_xp, "ElementwiseKernel", StandInElementwiseKernel,
                        raising=False)
    monkeypatch.setattr(standin_xp, "ReductionKernel", StandInReductionKernel,
                        raising=False)
    StandInElementwiseKernel.calls.clear()
    StandInReductionKernel.calls.clear()
    standin_xp.fused_calls.clear()
    return standin_xp


def _graph(f, *args):
    return staging.simplify(funcgrad.make_graph(f)(*args))


def _source(f, *args):
    g = _graph(f, *args)
    (a, b), = ck.groups(g)
    from funcgrad._src import fusion
    ins, outs = fusion.group_io(g.eqns[a:b], b, fusion.last_uses(g),
                                {v.name for v in g.outvars})
    return ck.kernel_source(g.eqns[a:b], ins, outs)


# ---- the generated source -------------------------------------------------------------
def test_source_float32_keeps_float_and_computes_transcendentals_in_double():
    src = _source(lambda x, y: fnp.exp(x) * y + 1.0, np.ones(3, np.float32),
                  np.ones(3, np.float32))
    assert src.in_params == "float32 a0, float32 a1"
    assert src.out_params == "float32 r0"
    assert src.operation.splitlines() == [
        "float t0 = (float)(exp((double)(a0)));",
        "float t1 = __fmul_rn(t0, a1);",            # never contracted into an FMA
        "float t2 = t1 + (float)(1.0);",
        "r0 = t2;"]


def test_source_nan_correct_maximum_where_and_casts():
    def f(x, y):
        m = fnp.maximum(x, y)
        return fnp.where(m > 0.5, m, fnp.sqrt(y)).astype(np.float32)
    src = _source(f, np.ones(3), np.ones(3))
    lines = src.operation.splitlines()
    assert src.in_params == "float64 a0, float64 a1" and src.out_params == "float32 r0"
    assert lines[0] == "double t0 = ((a0 > a1 || a0 != a0) ? a0 : a1);"
    assert lines[1] == "bool t1 = (t0 > (double)(0.5));"
    assert lines[2] == "double t2 = sqrt(a1);"
    assert lines[3] == "double t3 = (t1 ? t0 : t2);"
    assert lines[4] == "float t4 = (float)(t3);"


def test_source_mixed_dtypes_and_several_outputs():
    def f(x, y):
        h = x * y              # float32 * float64 -> float64: x is cast
        return fnp.sin(h) + 1.0, h
    src = _source(f, np.ones(3, np.float32), np.ones(3))
    assert src.out_params == "float64 r0, float64 r1"
    assert "double t0 = __dmul_rn((double)(a0), a1);" in src.operation
    assert src.operation.splitlines()[-2:] == ["r0 = t0;", "r1 = t2;"]   # in the order made


def test_a_closing_sum_becomes_a_reduction_kernel(kernels_xp):
    x = np.linspace(-1, 1, 6, dtype=np.float32).reshape(2, 3)
    fused = _check(lambda x: fnp.sum(fnp.sin(x) * 2.0 + x), x, exact=False)
    eqn, = fused.eqns
    assert eqn.prim.name == "kernel[sin+multiply+add+sum]"
    src = eqn.prim.impl.source
    assert src.preamble.splitlines() == [
        "__device__ float funcgrad_kernel_0_map(const float a0) {",
        "    float t0 = (float)(sin((double)(a0)));",
        "    float t1 = __fmul_rn(t0, (float)(2.0));",
        "    float t2 = t1 + a0;",
        "    return t2;",
        "}"]
    assert (src.in_params, src.out_params, src.map_expr, src.reduce_expr,
            src.post_map_expr, src.identity, src.reduce_type) == (
        "float32 a0", "float32 r0", "funcgrad_kernel_0_map(a0)", "a + b", "r0 = a", "0",
        "float")
    assert StandInReductionKernel.calls == ["funcgrad_kernel_0"]


def test_only_whole_sums_of_values_read_nowhere_else_join_the_kernel(kernels_xp):
    rng = np.random.default_rng(3)
    x, y = _specials(rng, (4, 1), np.float64), rng.standard_normal(5)
    fused = _check(lambda x, y: fnp.sum(fnp.maximum(x, y) * y - 1.0), x, y, exact=False)
    assert [e.prim.name for e in fused.eqns] == ["kernel[maximum+multiply+subtract+sum]"]
    # not over every axis, keeping dimensions, the value summed read again
    for f in (lambda x, y: fnp.sum(fnp.exp(x * y) * y, axis=0),
              lambda x, y: fnp.sum(fnp.exp(x * y) * y, keepdims=True),
              lambda x, y: (fnp.sum(fnp.exp(x * y) * y), fnp.exp(x * y) * y)):
        fused = _check(f, x, y, exact=False)
        names = [e.prim.name for e in fused.eqns]
        assert "sum" in names and not any(n.endswith("+sum]") for n in names), names


def test_groups_need_two_equations_one_shape_and_float_or_bool():
    x, w = np.ones((3, 4), np.float32), np.ones((4, 2), np.float32)
    g = _graph(lambda x, w: fnp.tanh(fnp.exp(x) @ w) * 2.0 + 1.0, x, w)
    found = ck.groups(g)
    assert [[e.prim.name for e in g.eqns[a:b]] for a, b in found] == [["tanh", "multiply",
                                                                        "add"]]
    ints = _graph(lambda i: (i * 2 + 1) * 3, np.arange(4))
    assert ck.groups(ints) == []


# ---- semantics on the CPU stand-in ----------------------------------------------------
def _check(f, *args, exact=True):
    """f's graph with kernels, on stand-ins, against the NumPy replay."""
    xp = standin_xp
    g = _graph(f, *args)
    fused = staging.fuse_elementwise(g, xp)
    assert any(e.prim.name.startswith("kernel[") for e in fused.eqns), fused
    with np.errstate(all="ignore"):
        want = staging.compile_graph(g, True)(*args)
        got = staging.compile_graph(fused)(*funcgrad.device_put(args, xp))
    for o, r in zip(got, want):
        r = np.asarray(r)
        o = o.get() if isinstance(o, StandInArray) else np.asarray(o)
        assert o.dtype == r.dtype and o.shape == r.shape
        if exact:
            np.testing.assert_array_equal(o, r)
        else:
            np.testing.assert_allclose(o, r, rtol=4e-7 if r.dtype == np.float32 else 1e-15)
    return fused


def _specials(rng, shape, dtype):
    x = rng.standard_normal(shape).astype(dtype)
    flat = x.reshape(-1)
    flat[:6] = [np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0][:flat.size]
    return x


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_kernels_match_numpy_with_nan_inf_and_broadcasting(kernels_xp, dtype):
    rng = np.random.default_rng(0)
    x = _specials(rng, (4, 5), dtype)
    y = _specials(rng, (5,), dtype)[::-1].copy()
    c = rng.standard_normal((4, 1)).astype(dtype)

    def arith(x, y, c):
        m = fnp.maximum(x, y) - fnp.minimum(y, x) * c
        s = fnp.sign(x) * fnp.abs(y) / (c + 2.0)
        r = fnp.where(fnp.isnan(x), y, m) + fnp.square(s) - fnp.negative(c)
        mx, mn = fnp.maximum(x, y), fnp.minimum(x, y)     # NaN on either side wins
        return (r, fnp.floor(m) + fnp.sqrt(fnp.abs(s)), (x > y) & ~fnp.isinf(y),
                mx, mn, mx * c - mn)
    _check(arith, x, y, c)

    def trans(x, y, c):
        return fnp.tanh(x) * fnp.exp(-fnp.abs(y)) + fnp.log1p(fnp.abs(c)) ** 1.5
    _check(trans, x, y, c, exact=dtype == np.float64)
    assert len(StandInElementwiseKernel.calls) >= 2


_UNARY = ["negative", "square", "reciprocal", "absolute", "sqrt", "sign", "floor", "ceil",
          "trunc", "rint", "isnan", "isinf", "isfinite", "sin", "cos", "tan", "arcsin",
          "arccos", "arctan", "sinh", "cosh", "tanh", "arcsinh", "arccosh", "arctanh", "exp",
          "exp2", "expm1", "log", "log2", "log10", "log1p", "cbrt"]
_BINARY = ["add", "subtract", "multiply", "true_divide", "maximum", "minimum", "copysign",
           "greater", "greater_equal", "less", "less_equal", "equal", "not_equal",
           "arctan2", "hypot", "power"]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", _UNARY + _BINARY + ["logical_not"])
def test_every_operation_matches_numpy(kernels_xp, name, dtype):
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    x = _specials(rng, (3, 7), dtype) * dtype(3)
    y = _specials(rng, (7,), dtype)[::-1] * dtype(2)
    op = getattr(fnp, name)
    if name == "logical_not":
        f = lambda x, y: op(x * 1.5 > y)  # noqa: E731
    elif name in _BINARY:
        f = lambda x, y: op(x * 1.5, y)  # noqa: E731
    else:
        f = lambda x, y: op(x - y)  # noqa: E731
    if (name, np.dtype(dtype)) in numba_backend._UNFAITHFUL:
        # left to the array module: the kernels share the Numba backend's typing, and
        # nothing accurate comes within 2 ulp of NumPy's own (numba_backend.py)
        g = _graph(lambda x, y: f(x, y) * 2.0, x, y.copy())
        assert not any(e.prim.name.startswith("kernel[") and name in e.prim.name
                       for e in staging.fuse_elementwise(g, standin_xp).eqns)
        return
    fused = _check(f, x, y.copy(), exact=dtype == np.float64 or name not in ck._MATH)
    assert [e.prim.name for e in fused.eqns][0].startswith("kernel[")


def test_relu_casts_and_signed_zeros(kernels_xp):
    x = np.array([-0.0, 0.0, -1.0, 2.0, np.nan, -np.inf, np.inf], np.float32)
    _check(lambda x: funcgrad.nn.relu(x * 1.0) + (x > 0).astype(np.float32), x)
    _check(lambda x: (fnp.maximum(x, -0.0) * 2.0).astype(np.float64) + 1.0, x)
    _check(lambda x: fnp.sign(x * 3.0) + 0.0, x)


def test_jit_on_the_standin_runs_generated_kernels(kernels_xp):
    def f(x, w):
        h = fnp.tanh(x @ w)
        return fnp.sum(fnp.exp(-(fnp.sin(h) * 2.0 + 1.0) ** 2) * h)

    x = np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 4)
    w = np.linspace(0.5, -0.5, 8, dtype=np.float32).reshape(4, 2)
    g = funcgrad.jit(funcgrad.grad(f, argnums=(0, 1)))
    xs, ws = funcgrad.device_put((x, w), kernels_xp)
    g(xs, ws)
    StandInElementwiseKernel.calls.clear()
    out = g(xs, ws)
    assert StandInElementwiseKernel.calls, "no generated kernel ran"
    ref = funcgrad.grad(f, argnums=(0, 1))(x, w)
    for o, r in zip(out, ref):
        assert type(o) is StandInArray and o.dtype == np.float32
        np.testing.assert_allclose(o.get(), r, rtol=1e-5, atol=1e-6)


def test_runs_without_c_form_still_use_fuse(kernels_xp):
    # integer arithmetic has no C form here: it keeps the xp.fuse path
    g = _graph(lambda i, x: ((i * 2 + 1) * 3, fnp.sin(x) * 2.0 + 1.0), np.arange(4),
               np.ones(4))
    fused = staging.fuse_elementwise(g, kernels_xp)
    names = [e.prim.name for e in fused.eqns]
    assert any(n.startswith("fused[") for n in names)
    assert any(n.startswith("kernel[") for n in names)


def test_a_kernel_failing_at_its_first_call_falls_back_to_the_ops(kernels_xp, monkeypatch):
    class Broken(StandInElementwiseKernel):
        def __call__(self, *args):
            raise RuntimeError("nvrtc: no such function")
    monkeypatch.setattr(standin_xp, "ElementwiseKernel", Broken)
    x = np.linspace(-2, 2, 7)
    jf = funcgrad.jit(lambda x: fnp.tanh(x) * 2.0 + 1.0)
    xs = funcgrad.device_put(x, standin_xp)
    jf(xs)                                              # traced
    with pytest.warns(RuntimeWarning, match="failed .*op by op"):
        out = jf(xs)                                    # the kernel's first call
    np.testing.assert_allclose(out.get(), np.tanh(x) * 2.0 + 1.0)
    np.testing.assert_allclose(jf(xs).get(), np.tanh(x) * 2.0 + 1.0)


def test_inputs_of_another_dtype_than_recorded_are_cast(kernels_xp):
    # (a device module whose promotion differs from NumPy's may hand over float64)
    g = _graph(lambda x: fnp.sin(x) * 2.0 + 1.0, np.ones(3, np.float32))
    eqn, = staging.fuse_elementwise(g, kernels_xp).eqns
    out, = eqn.prim.impl(kernels_xp.asarray(np.full(3, 0.5)))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out.get(), np.sin(np.float32(0.5)) * 2 + 1, rtol=1e-6)


def test_standin_kernel_refuses_uncast_operands():
    k = StandInElementwiseKernel("float32 a0, float64 a1", "float64 r0",
                                 "double t0 = a0 + a1;\nr0 = t0;")
    a = standin_xp.asarray(np.ones(2, np.float32))
    b = standin_xp.asarray(np.ones(2))
    with pytest.raises(TypeError, match="generator must cast"):
        k(a, b)


# ---- on a GPU ---------------------------------------------------------------------------
@pytest.mark.gpu
def test_cupy_elementwise_kernels_compile_and_match_the_cpu():
    import warnings

    import cupy
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # a kernel falling back fails here
        _cupy_kernels_match(cupy)


def _cupy_kernels_match(cupy):
    rng = np.random.default_rng(1)
    for dtype in (np.float32, np.float64):
        x = _specials(rng, (64, 33), dtype)
        y = _specials(rng, (33,), dtype)

        def f(x, y):
            m = fnp.maximum(x, y) * 2.0 - fnp.minimum(x, y)
            return fnp.where(fnp.isnan(x), y, m) + fnp.sign(y) * fnp.abs(x), fnp.tanh(m) + 1.0
        g = _graph(f, x, y)
        fused = staging.fuse_elementwise(g, cupy)
        assert any(e.prim.name.startswith("kernel[") for e in fused.eqns)
        want = staging.compile_graph(g, True)(x, y)
        got = staging.compile_graph(fused)(cupy.asarray(x), cupy.asarray(y))
        np.testing.assert_array_equal(cupy.asnumpy(got[0]), want[0])   # exact (no FMA)
        np.testing.assert_allclose(cupy.asnumpy(got[1]), want[1],
                                   rtol=1e-6 if dtype == np.float32 else 1e-14)
        assert got[0].dtype == dtype
        # a closing sum: one ReductionKernel (the order of the additions is CuPy's)
        g = _graph(lambda x, y: fnp.sum(fnp.tanh(x * y) * 2.0 - y), x, y)
        fused = staging.fuse_elementwise(g, cupy)
        assert [e.prim.name for e in fused.eqns] == ["kernel[multiply+tanh+multiply+"
                                                     "subtract+sum]"]
        x, y = rng.standard_normal((64, 33)).astype(dtype), rng.standard_normal(33)
        y = y.astype(dtype)
        got = staging.compile_graph(fused)(cupy.asarray(x), cupy.asarray(y))[0]
        np.testing.assert_allclose(float(got), float(staging.compile_graph(g, True)(x, y)[0]),
                                   rtol=1e-4 if dtype == np.float32 else 1e-12)

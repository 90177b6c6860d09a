"""Device placement. The GPU tests run where CuPy and a CUDA device exist and skip
cleanly elsewhere."""
import numpy as np
import pytest

import funcgrad
import funcgrad.numpy as fnp


def test_devices_lists_cpu_first():
    assert funcgrad.devices()[0] == "cpu"


def test_device_put_cpu_keeps_structure_and_values():
    tree = {"w": np.ones(3), "meta": ("name", 2), "none": None}
    out = funcgrad.device_put(tree, "cpu")
    assert out["meta"] == ("name", 2) and out["none"] is None
    np.testing.assert_array_equal(out["w"], tree["w"])


def test_device_put_errors_name_the_fix():
    with pytest.raises(ValueError, match="unknown device"):
        funcgrad.device_put(np.ones(2), "tpu")
    if "gpu:0" not in funcgrad.devices():
        with pytest.raises(ValueError, match="CuPy|not available"):
            funcgrad.device_put(np.ones(2), "gpu")


@pytest.mark.gpu
def test_gradients_on_the_gpu_match_the_cpu():
    import cupy
    x = np.linspace(-1, 1, 7)
    xg = funcgrad.device_put(x, "gpu")
    f = lambda x: fnp.sum(fnp.tanh(x) ** 2 * fnp.exp(-x))  # noqa: E731
    g_cpu = funcgrad.grad(f)(x)
    g_gpu = funcgrad.grad(f)(xg)
    assert isinstance(g_gpu, cupy.ndarray)
    np.testing.assert_allclose(cupy.asnumpy(g_gpu), g_cpu, rtol=1e-12)
    back = funcgrad.device_put({"g": g_gpu}, "cpu")
    assert isinstance(back["g"], np.ndarray)


# ---- default_device: checked on the CPU stand-in for a device module --------------------
def test_default_device_places_created_arrays_and_nests():
    import threading

    import funcgrad.random as fr
    from funcgrad._src.testing_backend import StandInArray, standin_xp
    made = lambda: [fnp.zeros(3), fnp.ones((2, 2), np.float32), fnp.empty(2),  # noqa: E731
                    fnp.full(2, 3.0), fnp.arange(4), fnp.linspace(0, 1, 5), fnp.eye(3),
                    fnp.identity(2), fnp.tri(3), fnp.asarray([1.0, 2.0]),
                    fnp.array(np.arange(3)), fr.key(0), funcgrad.device_put(np.ones(2))]
    host = made()
    with funcgrad.default_device(standin_xp):
        dev = made()
        with funcgrad.default_device("cpu"):          # blocks nest
            assert all(type(a) is np.ndarray for a in made())
        # values and dtypes as on the host; random bits from a device key stay there
        seen = {}

        def other_thread():                            # a new thread starts at the default
            seen["type"] = type(fnp.zeros(1))
        t = threading.Thread(target=other_thread)
        t.start()
        t.join()
        sample = fr.normal(fr.key(0), (4,))
    assert seen["type"] is np.ndarray
    for h, d in zip(host, dev):
        assert type(d) is StandInArray, type(d)
        assert d.dtype == h.dtype
        np.testing.assert_array_equal(d.get(), h)
    assert type(sample) is StandInArray
    np.testing.assert_array_equal(sample.get(), fr.normal(fr.key(0), (4,)))
    assert type(fnp.zeros(1)) is np.ndarray                # restored on exit


def test_default_device_trains_a_layer_without_host_arrays():
    import funcgrad.random as fr
    import funcgrad_nn as nn
    from funcgrad._src.testing_backend import StandInArray, standin_xp
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1))
    host_params = model.init(fr.key(0))
    with funcgrad.default_device(standin_xp):
        params = model.init(fr.key(0))
        x = fnp.ones((5, 3), np.float32)
        g = funcgrad.grad(lambda p: fnp.sum(model(p, x) ** 2))(params)
    leaves = funcgrad.tree_util.tree_leaves((params, g))
    assert leaves and all(type(a) is StandInArray for a in leaves)
    for a, b in zip(funcgrad.tree_util.tree_leaves(params),
                    funcgrad.tree_util.tree_leaves(host_params)):
        np.testing.assert_array_equal(a.get(), b)


def test_default_device_errors_name_the_fix():
    with pytest.raises(ValueError, match="default_device: unknown device"):
        funcgrad.default_device("tpu")
    if "gpu:0" not in funcgrad.devices():
        with pytest.raises(ValueError, match="CuPy|not available"):
            funcgrad.default_device("gpu")


@pytest.mark.gpu
def test_default_device_gpu_creates_cupy_arrays():
    import cupy

    import funcgrad.random as fr
    with funcgrad.default_device("gpu"):
        a, k = fnp.zeros(3), fr.key(0)
        s = fr.uniform(k, (3,))
    assert isinstance(a, cupy.ndarray) and isinstance(k, cupy.ndarray)
    assert isinstance(s, cupy.ndarray)
    np.testing.assert_array_equal(cupy.asnumpy(s), fr.uniform(fr.key(0), (3,)))


# ---- jit on a device module: runs of elementwise operations become one fused kernel ------
def test_jit_fuses_elementwise_runs_on_device_modules():
    from funcgrad._src import compiler as staging
    from funcgrad._src.testing_backend import StandInArray, standin_xp

    def f(x, w):
        h = fnp.tanh(x @ w)
        return fnp.sum(fnp.exp(-(fnp.sin(h) * 2.0 + 1.0) ** 2) * h)

    x = np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 4)
    w = np.linspace(0.5, -0.5, 8, dtype=np.float32).reshape(4, 2)
    g = funcgrad.jit(funcgrad.grad(f, argnums=(0, 1)))
    xs, ws = funcgrad.device_put((x, w), standin_xp)
    g(xs, ws)                                           # traced
    standin_xp.fused_calls.clear()
    out = g(xs, ws)                                     # replayed
    assert standin_xp.fused_calls, "no fused kernel ran"
    ref = funcgrad.grad(f, argnums=(0, 1))(x, w)
    for o, r in zip(out, ref):
        assert type(o) is StandInArray and o.dtype == np.float32
        np.testing.assert_allclose(o.get(), r, rtol=1e-5, atol=1e-6)
    plain = g.lower(xs, ws)
    fused = staging.fuse_elementwise(plain, standin_xp)
    names = [e.prim.name for e in fused.eqns]
    assert len(fused.eqns) < len(plain.eqns)
    assert any(n.startswith("fused[") for n in names)
    assert "matmul" in names                            # not elementwise: left alone
    assert not any("matmul" in n for n in names if n.startswith("fused["))
    # host inputs are never fused
    standin_xp.fused_calls.clear()
    gh = funcgrad.jit(funcgrad.grad(f))
    gh(x, w)
    gh(x, w)
    assert standin_xp.fused_calls == []


def test_fused_kernels_cast_results_to_the_recorded_dtypes():
    # a module whose scalar promotion differs from NumPy's (float32 * 2.0 -> float64)
    import types

    from funcgrad._src import compiler as staging
    fake = types.SimpleNamespace(
        multiply=lambda a, b: np.multiply(np.asarray(a, np.float64), b),
        sin=np.sin, add=np.add, fuse=lambda kernel_name=None: (lambda fn: fn))
    graph = funcgrad.make_graph(lambda x: fnp.sin(x) * 2.0 + x)(np.ones(3, np.float32))
    fused = staging.fuse_elementwise(staging.simplify(graph), fake)
    assert len(fused.eqns) == 1
    out = staging.compile_graph(fused)(np.ones(3, np.float32))[0]
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, np.sin(np.float32(1)) * 2 + 1, rtol=1e-6)


@pytest.mark.gpu
def test_jit_on_cupy_runs_fused_kernels_and_matches_the_cpu():
    import cupy
    f = lambda x: fnp.sum(fnp.exp(-(fnp.sin(x) * 2.0 + 1.0) ** 2) * x)  # noqa: E731
    x = np.linspace(-1, 1, 1000, dtype=np.float32)
    g = funcgrad.jit(funcgrad.grad(f))
    xg = funcgrad.device_put(x, "gpu")
    g(xg)
    out = g(xg)                                          # the fused, replayed code
    assert isinstance(out, cupy.ndarray) and out.dtype == np.float32
    np.testing.assert_allclose(cupy.asnumpy(out), funcgrad.grad(f)(x), rtol=1e-5, atol=1e-6)


def test_fusion_keeps_non_finite_literals_out_of_generated_code():
    from funcgrad._src import compiler as staging
    from funcgrad._src.testing_backend import standin_xp
    f = lambda x: fnp.minimum(fnp.exp(x) * 2.0, np.inf) + 1.0  # noqa: E731
    x = np.linspace(0, 1, 4)
    jf = funcgrad.jit(f)
    xs = funcgrad.device_put(x, standin_xp)
    jf(xs)
    np.testing.assert_allclose(jf(xs).get(), f(x))
    fused = staging.fuse_elementwise(jf.lower(xs), standin_xp)
    for e in fused.eqns:
        if e.prim.name.startswith("fused["):
            assert "inf" not in e.prim.impl.source


def test_jit_cache_follows_the_default_device():
    # a jitted function that makes arrays inside: traced again under another default device
    from funcgrad._src.testing_backend import StandInArray, standin_xp
    calls = []

    def f(n):
        calls.append(1)
        return fnp.arange(n) * 2.0

    jf = funcgrad.jit(f, static_argnums=0)
    assert type(jf(3)) is np.ndarray
    with funcgrad.default_device(standin_xp):
        out = jf(3)
        assert type(out) is StandInArray and type(jf(3)) is StandInArray
    assert type(jf(3)) is np.ndarray and len(calls) == 2 and jf.cache_size() == 2
    np.testing.assert_array_equal(out.get(), [0.0, 2.0, 4.0])

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

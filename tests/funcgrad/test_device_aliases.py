"""PyTorch's device names ``"cuda"``/``"cuda:N"`` are aliases of ``"gpu"``/``"gpu:N"``."""
import numpy as np
import pytest

import funcgrad
from funcgrad._src.backend import _parse_device


@pytest.mark.parametrize("name, parsed", [("cuda", ("gpu", 0)), ("cuda:0", ("gpu", 0)),
                                          ("cuda:3", ("gpu", 3)), ("gpu:3", ("gpu", 3))])
def test_cuda_names_parse_as_gpu_names(name, parsed):
    assert _parse_device(name) == parsed


@pytest.mark.parametrize("bad", ["cuda:x", "cudax", "tpu"])
def test_malformed_names_are_still_unknown(bad):
    with pytest.raises(ValueError, match="unknown device.*cuda"):
        funcgrad.device_put(np.ones(2), bad)


def test_cuda_without_a_gpu_gives_the_gpu_error_not_unknown_device():
    if "gpu:0" in funcgrad.devices():
        pytest.skip("a GPU is present")
    for name in ("cuda", "cuda:0"):
        with pytest.raises(ValueError, match="CuPy|not available") as e:
            funcgrad.device_put(np.ones(2), name)
        assert "unknown device" not in str(e.value)
        with pytest.raises(ValueError, match="CuPy|not available"):
            funcgrad.default_device(name)


def test_data_loader_treats_cuda_as_a_gpu():
    from funcgrad_nn.data import _is_gpu
    assert _is_gpu("cuda") and _is_gpu("cuda:1") and _is_gpu("gpu") and not _is_gpu("cpu")


@pytest.mark.gpu
def test_cuda_places_arrays_on_the_gpu():
    cupy = pytest.importorskip("cupy")
    x = funcgrad.device_put(np.ones(2), "cuda:0")
    assert isinstance(x, cupy.ndarray)
    with funcgrad.default_device("cuda"):
        assert isinstance(funcgrad.numpy.zeros(2), cupy.ndarray)

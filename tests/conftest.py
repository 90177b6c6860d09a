"""Shared test configuration: deterministic hypothesis profiles."""
import os

from hypothesis import HealthCheck, settings

import funcgrad

# Tests get the thread counts they set, however busy the machine is (the adaptive policy
# has tests of its own, on simulated loads).
funcgrad.config.update("adaptive_threads", False)

# CI and local runs are repeatable: derandomized, no deadline, bounded examples.
settings.register_profile("ci", derandomize=True, deadline=None, max_examples=12,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", derandomize=True, deadline=None, max_examples=12,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("thorough", deadline=None, max_examples=200,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def _gpu_available():
    try:
        import cupy
        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:
        return False


def pytest_collection_modifyitems(config, items):
    """Tests marked ``gpu`` skip cleanly where there is no CuPy or no CUDA device."""
    import pytest
    if _gpu_available():
        return
    skip = pytest.mark.skip(reason="needs CuPy and a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)

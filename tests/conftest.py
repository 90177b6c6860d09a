"""Shared test configuration: deterministic hypothesis profiles, the ``gpu`` marker, and
a one-line summary of skipped tests."""
import collections
import os

import pytest
from hypothesis import HealthCheck, settings

import funcgrad
from funcgrad._src import compiler
from funcgrad._src import numba_backend as _nb
from funcgrad._src.prims import control_flow as _cf

# Tests get the thread counts they set, however busy the machine is (the adaptive policy
# has tests of its own, on simulated loads).
funcgrad.config.update("adaptive_threads", False)

# Every jit pass's output goes through check_graph (funcgrad/_src/ir.py) during the tests.
compiler.check_passes = True

# A scan body that its split loop (funcgrad/_src/prims/control_flow.py) cannot handle
# fails the test instead of quietly running the plain loop.
_cf._SPLIT_ERRORS = True

# CI and local runs are repeatable: derandomized, no deadline, bounded examples.
settings.register_profile("ci", derandomize=True, deadline=None, max_examples=12,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", derandomize=True, deadline=None, max_examples=12,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("thorough", deadline=None, max_examples=200,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture
def numba(monkeypatch):
    """Numba (or skip); kernels and native loops compile on the calling thread at jit's
    first call, and failures raise. They go to the user's kernel cache
    ($FUNCGRAD_CACHE_DIR or ~/.cache/funcgrad/numba), as they would for any jitted
    function: a second run of the tests compiles nothing (about 60 s less on a 2-core VM);
    the disk-cache test uses a directory of its own."""
    mod = pytest.importorskip("numba")
    monkeypatch.setattr(_nb, "synchronous", True)
    monkeypatch.setattr(_nb, "strict", True)
    return mod


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


def _skip_reason(report):
    longrepr = report.longrepr
    reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
    return reason.removeprefix("Skipped: ")


def pytest_terminal_summary(terminalreporter):
    """Skips in one line, counted by reason (those for a missing optional peer — PyTorch,
    JAX, SciPy, scikit-learn... — are expected without ``pip install -e ".[oracles]"``)."""
    skipped = terminalreporter.stats.get("skipped", [])
    if not skipped:
        return
    counts = collections.Counter(_skip_reason(r) for r in skipped)
    terminalreporter.write_line(
        f"skipped {len(skipped)}: " + "; ".join(f"{n} x {reason}" if n > 1 else reason
                                                for reason, n in counts.most_common()))

"""funcgrad.config: options, errors, and keep_freed_memory's effect on page faults."""
import sys

import pytest

import funcgrad


# ---- keep_freed_memory ------------------------------------------------------------------------
_FAULTS = """
import resource, sys
import numpy as np
import funcgrad
funcgrad.config.update("keep_freed_memory", True)
assert funcgrad.config.read("keep_freed_memory") is True
def step():
    arrs = [np.ones(3 << 18) for _ in range(8)]      # 8 arrays of 6 MiB
    del arrs
step()
f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    step()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc only")
def test_keep_freed_memory_stops_page_faults_on_fresh_arrays():
    # in a child process: the option is process-wide. Freed blocks are reused, so 20
    # rounds of 48 MiB of fresh arrays fault far fewer pages than one round has (12288):
    # without the option glibc hands the memory back and every round faults it again.
    import subprocess
    out = subprocess.run([sys.executable, "-c", _FAULTS], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert int(out.stdout.strip()) < 12288 // 2


def test_keep_freed_memory_option_round_trip_and_errors():
    with pytest.raises(ValueError, match="unknown option"):
        funcgrad.config.update("keep_freed_mem", True)
    assert funcgrad.config.read("keep_freed_memory") is False

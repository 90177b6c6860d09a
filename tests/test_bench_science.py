"""Smoke test of benchmarks/bench_science.py (issue 20's neural ODE workload): tiny sizes,
one round; every installed peer's gradient must match funcgrad's, and the --write
section must come out, with peers and without any (FUNCGRAD_BENCH_PEERS=0)."""
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = ["--batch", "3", "--hidden", "4", "--steps", "5", "--rounds", "1", "--min-time", "0.001",
        "--write"]


@pytest.mark.parametrize("peers", ["installed", "none"])
def test_bench_science_runs_checks_and_prints_its_section(peers):
    env = dict(os.environ)
    if peers == "none":
        env["FUNCGRAD_BENCH_PEERS"] = "0"
    out = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "bench_science.py")]
                         + TINY, capture_output=True, text=True, timeout=300, cwd=ROOT, env=env)
    assert out.returncode == 0, out.stdout + out.stderr
    text = out.stdout
    assert "largest relative difference to funcgrad eager's gradient" in text
    assert "## scientific workload: neural ODE" in text
    assert "| funcgrad jit(grad) numpy |" in text
    if peers == "none":
        assert "| autograd grad |" not in text and "| JAX jit(grad) |" not in text

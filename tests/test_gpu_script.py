"""The GPU benchmark script runs rarely (only where a GPU is lent), so CI runs its code on
the CPU stand-in for a device module: every step it times must run and match the CPU."""
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_bench_gpu_dry_run_on_the_standin():
    out = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "bench_gpu.py"),
                          "--dry-run"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "matched the CPU on the stand-in" in out.stdout



def test_bench_gpu_kernels_dry_run_on_the_standin():
    out = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks",
                                                       "bench_gpu_kernels.py"), "--dry-run"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "every way matched the CPU on the stand-in" in out.stdout


def test_gpu_check_runs_the_kernels_benchmark():
    with open(os.path.join(ROOT, "benchmarks", "gpu_check.sh")) as fh:
        assert "benchmarks/bench_gpu_kernels.py" in fh.read()

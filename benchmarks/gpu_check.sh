#!/usr/bin/env bash
# The GPU check, for a machine with a CUDA device and CuPy (and optionally PyTorch CUDA)
# already installed: runs the GPU-marked tests and the GPU benchmarks, writes
# benchmarks/GPU_REPORT.md, benchmarks/gpu_tests.log and benchmarks/gpu_kernels.log.
# Installs nothing. Aims to finish well under 8 minutes. Written without a GPU at hand:
# its first GPU run is its first test.
set -uo pipefail
cd "$(dirname "$0")/.."
out=benchmarks
python -c "import cupy; print('cupy', cupy.__version__, 'devices', cupy.cuda.runtime.getDeviceCount())" \
  || { echo "gpu_check: CuPy with a CUDA device is needed"; exit 2; }
timeout 300 python -m pytest -q -p no:cacheprovider -m gpu tests 2>&1 | tee "$out/gpu_tests.log" | tail -20
tests_rc=${PIPESTATUS[0]}
timeout 240 python benchmarks/bench_gpu.py   # (its code is checked on the CPU stand-in in CI: --dry-run)
bench_rc=$?
# jit's generated ElementwiseKernels (cupy_kernels.py) against cupy.fuse and one call per
# op; their exactness test ran with the GPU tests above (test_cupy_kernels.py)
timeout 120 python benchmarks/bench_gpu_kernels.py 2>&1 | tee "$out/gpu_kernels.log" | tail -15
kernels_rc=${PIPESTATUS[0]}
echo "gpu_check: tests exit $tests_rc, benchmarks exit $bench_rc, kernels exit $kernels_rc"
exit $(( tests_rc != 0 || bench_rc != 0 || kernels_rc != 0 ))

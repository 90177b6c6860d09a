"""GPU kernels of jit (cupy_kernels.py) against the other ways of running the same graph:
an elementwise chain (W1-like, forward and gradient) on float32 arrays of 1e4 and 1e6
elements, run on CuPy as one call per equation, with ``cupy.fuse`` groups (the fallback)
and with generated ``ElementwiseKernel`` groups (the forward chain's closing sum
joining its group as one ``ReductionKernel``). Every way is checked against the CPU
first. Prints a table (benchmarks/gpu_check.sh keeps it in benchmarks/gpu_kernels.log).

    python benchmarks/bench_gpu_kernels.py              # needs CuPy and a CUDA device
    python benchmarks/bench_gpu_kernels.py --dry-run    # on the CPU stand-in, whose
                                                        # ElementwiseKernel interprets
                                                        # the generated C (no timing)
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import funcgrad  # noqa: E402
import funcgrad.numpy as fnp  # noqa: E402
from funcgrad._src import compiler as staging  # noqa: E402


def chain(x):
    """30 elementwise operations, NaN-free on any input."""
    y = x
    for k in range(5):
        y = fnp.tanh(y * 1.5 + 0.1 * k) * fnp.exp(-y * y) + fnp.maximum(y, 0.0) - 0.5 * y
    return fnp.sum(y)


class _WithoutKernels:
    """The module, less its kernel classes: fuse_elementwise takes its xp.fuse path."""

    def __init__(self, xp):
        self._xp = xp

    def __getattr__(self, name):
        if name in ("ElementwiseKernel", "ReductionKernel"):
            raise AttributeError(name)
        return getattr(self._xp, name)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dry-run", action="store_true")
    args = ap.parse_args(argv)
    if args.dry_run:
        from funcgrad._src.testing_backend import (StandInElementwiseKernel,
                                                   StandInReductionKernel, standin_xp)
        standin_xp.ElementwiseKernel = StandInElementwiseKernel
        standin_xp.ReductionKernel = StandInReductionKernel
        xp, sizes = standin_xp, (100,)

        def sync():
            pass
    else:
        try:
            import cupy
        except ImportError:
            print("bench_gpu_kernels: CuPy is needed (try --dry-run)")
            return 2
        xp, sizes = cupy, (10_000, 1_000_000)

        def sync():
            cupy.cuda.Device().synchronize()
    rows = []
    for n in sizes:
        x = np.linspace(-2, 2, n, dtype=np.float32)
        for what, fun in (("forward", chain), ("grad", funcgrad.grad(chain))):
            want = funcgrad.jit(fun)(x)
            xd = funcgrad.device_put(x, xp)
            plain = funcgrad.jit(fun).lower(xd).graph()
            ways = {"one call per op": plain,
                    "cupy.fuse groups": staging.fuse_elementwise(plain, _WithoutKernels(xp)),
                    "ElementwiseKernel groups": staging.fuse_elementwise(plain, xp)}
            assert any(e.prim.name.startswith("kernel[")
                       for e in ways["ElementwiseKernel groups"].eqns)
            for way, g in ways.items():
                f = staging.compile_graph(g)
                got = funcgrad.device_put(f(xd)[0], "cpu")
                np.testing.assert_allclose(np.asarray(got), want, rtol=2e-5, atol=1e-5,
                                           err_msg=f"{what} {way}")
                if args.dry_run:
                    continue
                f(xd)
                sync()
                best = float("inf")
                for _ in range(5):
                    t0 = time.perf_counter()
                    for _ in range(20):
                        f(xd)
                    sync()
                    best = min(best, (time.perf_counter() - t0) / 20)
                rows.append(f"| {n} | {what} | {way} | {len(g.eqns)} | {best * 1e6:.1f} µs |")
    if args.dry_run:
        print("bench_gpu_kernels --dry-run: every way matched the CPU on the stand-in")
        return 0
    print("| elements | what | how | equations | time |\n| --- | --- | --- | --- | --- |")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark: 10**6 normal samples from funcgrad.random against NumPy's Generator.

Run: ``python benchmarks/bench_random.py [--n N] [--repeat R]``.

funcgrad.random hashes counters with Threefry-2x32 (20 rounds) in vectorised uint32
NumPy operations and turns pairs of uniforms into normals by Box-Muller; NumPy's
``default_rng().normal`` is PCG64 with a ziggurat in C. The headline figure is
``funcgrad float32 normal / numpy normal(size=n)`` (best of ``repeat`` runs each);
the target is at most 3x. Other lines are context: float32 NumPy normals, float64
funcgrad normals, uniforms, and JAX's normals on CPU if JAX is installed.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

# this checkout's funcgrad, not an installed one
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import funcgrad.random as fr  # noqa: E402


def best_of(fn, repeat):
    fn()                                              # warm up (allocations, imports)
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10 ** 6)
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    n, r = args.n, args.repeat
    key = fr.key(0)
    rng = np.random.default_rng()

    rows = []
    t_np = best_of(lambda: rng.normal(size=n), r)
    t_fg = best_of(lambda: fr.normal(key, (n,)), r)
    rows.append(("numpy default_rng().normal(size=n)  [float64]", t_np))
    rows.append(("funcgrad.random.normal(key, (n,))   [float32]", t_fg))
    rows.append(("numpy standard_normal(dtype=float32)", best_of(
        lambda: rng.standard_normal(size=n, dtype=np.float32), r)))
    rows.append(("funcgrad.random.normal float64", best_of(
        lambda: fr.normal(key, (n,), np.float64), r)))
    rows.append(("funcgrad.random.uniform float32", best_of(lambda: fr.uniform(key, (n,)), r)))
    rows.append(("numpy default_rng().random(n, float32)", best_of(
        lambda: rng.random(n, dtype=np.float32), r)))
    try:
        import jax
        jkey = jax.random.PRNGKey(0)
        jnormal = jax.jit(lambda k: jax.random.normal(k, (n,)))
        rows.append(("jax.random.normal (jit, CPU) [float32]", best_of(
            lambda: jnormal(jkey).block_until_ready(), r)))
    except ImportError:
        pass

    print(f"{n} samples, best of {r} runs")
    for name, t in rows:
        print(f"  {name:<48s} {t * 1e3:8.2f} ms")
    ratio = t_fg / t_np
    verdict = "meets" if ratio <= 3 else "misses"
    print(f"ratio funcgrad float32 normal / numpy normal: {ratio:.2f}x "
          f"({verdict} the 3x target)")


if __name__ == "__main__":
    main()

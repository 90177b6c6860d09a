"""jit's Numba backend against the NumPy replay and JAX jit, interleaved in one process.

    python benchmarks/bench_numba.py [ROUNDS]

Prints, per workload, the best time of each variant in each round and the ratio to JAX
jit per round (rounds alternate the variants, so a noisy machine moves them alike):

- W1: jit(grad) of the 300-op elementwise chain of run.py on a length-10 float64 vector
  (per op);
- W2: the jitted train step of run.py's MLP (784-512-512-10, batch 128, float32);
- big: jit(grad) of a 12-op elementwise chain on 10^6 float64 elements (memory passes).

Does not write RESULTS.md.
"""
from __future__ import annotations

import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

import numpy as np  # noqa: E402

import run  # noqa: E402  (benchmarks/run.py: W1, W2 and best_time)
import funcgrad  # noqa: E402
import funcgrad.numpy as fnp  # noqa: E402

jax = run.jax


def _big_chain(x, m):
    for _ in range(2):
        x = m.sin(x) * 1.5 + 0.25
        x = m.exp(-(x * x)) - x * 0.5
    return m.sum(x)


def _variants():
    """workload -> (ops per call or None, {variant: f})"""
    out = {}
    x = np.linspace(0.1, 1.0, 10)
    g = funcgrad.grad(lambda x: run._w1_chain(x, fnp))
    w1 = {"funcgrad jit(grad) numpy": (funcgrad.jit(g, backend="numpy"), (x,)),
          "funcgrad jit(grad) numba": (funcgrad.jit(g, backend="numba"), (x,))}
    params, xb, y, step = run._w2_funcgrad_step()
    w2 = {"funcgrad jit step numpy": (funcgrad.jit(step, backend="numpy"), (params, xb, y)),
          "funcgrad jit step numba": (funcgrad.jit(step, backend="numba"), (params, xb, y))}
    xbig = np.linspace(-1, 1, 10 ** 6)
    gb = funcgrad.grad(lambda x: _big_chain(x, fnp))
    big = {"funcgrad jit(grad) numpy": (funcgrad.jit(gb, backend="numpy"), (xbig,)),
           "funcgrad jit(grad) numba": (funcgrad.jit(gb, backend="numba"), (xbig,))}
    if jax is not None:
        import jax.numpy as jnp
        gj = jax.jit(jax.grad(lambda x: run._w1_chain(x, jnp)))
        w1["JAX jit grad"] = (lambda a: gj(a).block_until_ready(), (jnp.asarray(x),))
        jparams = jax.tree_util.tree_map(jnp.asarray, params)
        vg = jax.value_and_grad(lambda p, a, b: run._w2_loss(p, a, b, jnp))

        def jstep(p, a, b):
            loss, grads = vg(p, a, b)
            return loss, [(w - 0.01 * gw, c - 0.01 * gc) for (w, c), (gw, gc) in zip(p, grads)]
        js = jax.jit(jstep)
        w2["JAX jit step"] = (lambda *a: jax.block_until_ready(js(*a)),
                              (jparams, jnp.asarray(xb), jnp.asarray(y)))
        gbj = jax.jit(jax.grad(lambda x: _big_chain(x, jnp)))
        big["JAX jit grad"] = (lambda a: gbj(a).block_until_ready(), (jnp.asarray(xbig),))
    out["W1"] = (run.W1_OPS, w1)
    out["W2"] = (None, w2)
    out["big"] = (None, big)
    return out


def main(rounds=5):
    work = _variants()
    t0 = time.perf_counter()
    for _, vs in work.values():            # first calls: tracing; kernels start compiling
        for f, args in vs.values():        # (the second makes row splitting's parts)
            f(*args)
            f(*args)
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    for name, (_, vs) in work.items():     # wait for the compiled forms
        for vname, (f, args) in vs.items():
            if vname.endswith("numba"):
                f.lower(*args).compile(wait=True)
    print(f"first calls of every variant: {first:.2f} s; then waiting for the kernels: "
          f"{time.perf_counter() - t0:.2f} s")
    from funcgrad._src import numba_backend
    print("kernels:", numba_backend.stats)
    for name, (ops, vs) in work.items():
        best = {v: [] for v in vs}
        for _ in range(rounds):
            for v, (f, args) in vs.items():
                best[v].append(run.best_time(lambda: f(*args), repeat=3, min_time=0.1))
        unit, scale = ("µs/op", 1e6 / ops) if ops else ("ms", 1e3)
        print(f"\n{name}:")
        for v, ts in best.items():
            line = f"  {v:28s} best {min(ts) * scale:9.3f} {unit}"
            if "JAX jit grad" in best or "JAX jit step" in best:
                ref = best.get("JAX jit grad") or best.get("JAX jit step")
                ratios = [t / r for t, r in zip(ts, ref)]
                line += (f"   / JAX jit per round: median {statistics.median(ratios):.2f}x "
                         f"(range {min(ratios):.2f}-{max(ratios):.2f})")
            print(line)
        if len(vs) >= 2:
            a, b = best["funcgrad jit(grad) numpy" if name != "W2" else "funcgrad jit step numpy"], \
                best["funcgrad jit(grad) numba" if name != "W2" else "funcgrad jit step numba"]
            rs = [x / y for x, y in zip(a, b)]
            print(f"  numba speed-up over the NumPy replay per round: median "
                  f"{statistics.median(rs):.2f}x (range {min(rs):.2f}-{max(rs):.2f})")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)

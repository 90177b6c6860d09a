"""torch.compile next to funcgrad's jit (Numba backend), JAX jit and PyTorch eager, on W1,
W5, W6 (lax.scan) and the neural ODE of bench_science.py: issue 20's "and torch.compile
where it works on this machine".

    python benchmarks/bench_torch_compile.py [--rounds 5] [--write]

Each workload's gradient in each library, checked against funcgrad's, then timed in
interleaved rounds in one process (each round times every variant in turn; best per
round); ratios per round, median and range, against JAX jit (W5: PyTorch eager). torch.compile (inductor,
the default backend) compiles the forward and, through AOTAutograd, the backward at the
first call; that first call's time is printed (it is not in the ratios). A workload
where torch.compile fails on this machine says so and why. PyTorch runs on one thread
here and everything else on the defaults (on 2 shared cores PyTorch's spinning threads
slowed the variants timed after it: see bench_science.py).
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(HERE))

import funcgrad  # noqa: E402
import funcgrad.lax as flax  # noqa: E402
import funcgrad.numpy as fnp  # noqa: E402

import bench_conv  # noqa: E402
import bench_science  # noqa: E402
import run  # noqa: E402

try:
    import torch
except ImportError:                       # pragma: no cover - optional peer
    torch = None
try:
    import jax
    import jax.numpy as jnp
    jax.config.update("jax_enable_x64", True)
except ImportError:                       # pragma: no cover - optional peer
    jax = None


FIRST = {}       # variant -> seconds of its first call, where measured before warming


def _numba_jit(g, *args):
    """``funcgrad.jit(g, backend="numba")``, warm: its kernels and loops compiled (the
    first call's time, tracing and the NumPy replay, is kept in FIRST)."""
    from funcgrad._src import numba_backend
    backend = "numba" if numba_backend.available() else "numpy"
    j = funcgrad.jit(g, backend=backend)
    t0 = time.perf_counter()
    j(*args)
    j.first = time.perf_counter() - t0
    for _ in range(3):                   # (a scan's loop is split at the second call)
        j(*args)
        j.lower(*args).compile(wait=True)
    return j, backend


def w1():
    x = np.linspace(0.1, 1.0, 10)
    g, backend = _numba_jit(funcgrad.grad(lambda x: run._w1_chain(x, fnp)), x)
    out = {f"funcgrad jit(grad) {backend}": (lambda: g(x), lambda: g(x))}
    FIRST[f"funcgrad jit(grad) {backend}"] = g.first
    if jax is not None:
        gj = jax.jit(jax.grad(lambda x: run._w1_chain(x, jnp)))
        xj = jnp.asarray(x)
        out["JAX jit(grad)"] = (lambda: gj(xj).block_until_ready(), lambda: np.asarray(gj(xj)))
    if torch is not None:
        def torch_variant(compiled):
            f = (lambda x: run._w1_chain(x, torch))
            f = torch.compile(f) if compiled else f
            xt = torch.tensor(x, requires_grad=True)

            def step():
                xt.grad = None
                f(xt).backward()
                return xt.grad.numpy()
            return step, step
        out["PyTorch eager"] = torch_variant(False)
        out["torch.compile"] = torch_variant(True)
    return out


def w5():
    params, x, labels = bench_conv.make_problem()
    onehot = np.eye(10, dtype=np.float32)[labels]
    vg = funcgrad.value_and_grad(bench_conv.funcgrad_loss)
    g, backend = _numba_jit(vg, params, x, onehot)
    names = sorted(params)
    out = {f"funcgrad jit(value_and_grad) {backend}":
           (lambda: g(params, x, onehot), lambda: [g(params, x, onehot)[1][k] for k in names])}
    FIRST[f"funcgrad jit(value_and_grad) {backend}"] = g.first
    if torch is not None:
        import torch.nn.functional as F

        def loss(p, xt, yt):
            h = F.max_pool2d(F.relu(F.conv2d(xt, p["w1"], p["b1"], padding=1)), 2)
            h = F.max_pool2d(F.relu(F.conv2d(h, p["w2"], p["b2"], padding=1)), 2)
            return F.cross_entropy(h.reshape(h.shape[0], -1) @ p["w3"] + p["b3"], yt)

        def torch_variant(compiled):
            f = torch.compile(loss) if compiled else loss
            p = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
            xt, yt = torch.tensor(x), torch.tensor(labels)

            def step():
                gs = torch.autograd.grad(f(p, xt, yt), [p[k] for k in names])
                return [t.numpy() for t in gs]
            return step, step
        out["PyTorch eager"] = torch_variant(False)
        out["torch.compile"] = torch_variant(True)
    return out


def w6():
    W_h, W_x, xs, h0 = run._w6_data()
    gs = funcgrad.grad(lambda a, b: run._w6_scan_loss(a, b, xs, h0, fnp, flax), argnums=(0, 1))
    g, backend = _numba_jit(gs, W_h, W_x)
    out = {f"funcgrad lax.scan jit(grad) {backend}": (lambda: g(W_h, W_x),
                                                      lambda: list(g(W_h, W_x)))}
    FIRST[f"funcgrad lax.scan jit(grad) {backend}"] = g.first
    if jax is not None:
        gj = jax.jit(jax.grad(lambda a, b: run._w6_scan_loss(a, b, xs, h0, jnp, jax.lax),
                              argnums=(0, 1)))
        out["JAX jit(grad), lax.scan"] = (
            lambda: jax.block_until_ready(gj(W_h, W_x)),
            lambda: [np.asarray(a) for a in gj(W_h, W_x)])
    if torch is not None:
        def torch_variant(compiled):
            f = (lambda a, b, xs, h0: run._w6_loss(a, b, xs, h0, torch))
            f = torch.compile(f) if compiled else f
            a = torch.tensor(W_h, requires_grad=True)
            b = torch.tensor(W_x, requires_grad=True)
            xst, h0t = torch.tensor(xs), torch.tensor(h0)

            def step():
                a.grad = b.grad = None
                f(a, b, xst, h0t).backward()
                return [a.grad.numpy(), b.grad.numpy()]
            return step, step
        out["PyTorch eager"] = torch_variant(False)
        out["torch.compile"] = torch_variant(True)
    return out


def neural_ode():
    work = bench_science.variants(64, 50, 100, 0.025, backends=("numba",), with_torch=False)
    out = {}
    for name, (f, a) in work.items():
        if name.startswith("funcgrad jit"):
            t0 = time.perf_counter()
            f(*a)
            FIRST[name] = time.perf_counter() - t0
            for _ in range(3):
                f(*a)
                f.lower(*a).compile(wait=True)
        if name.startswith(("funcgrad jit", "JAX")):
            out[name] = (lambda f=f, a=a: f(*a),
                         lambda f=f, a=a: [np.asarray(v) for _, v in sorted(f(*a).items())])
    if torch is not None:
        params, y0, target = bench_science.problem(64, 50, 100, 0.025)
        tloss = bench_science.make_loss(
            torch, lambda f, c, n: bench_science.python_scan(f, c, n, torch.stack), 100, 0.025)

        def torch_variant(compiled):
            f = torch.compile(tloss) if compiled else tloss
            tp = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
            ty, tt = torch.tensor(y0), torch.tensor(target)

            def step():
                for v in tp.values():
                    v.grad = None
                f(tp, ty, tt).backward()
                return [tp[k].grad.numpy() for k in sorted(tp)]
            return step, step
        out["PyTorch eager"] = torch_variant(False)
        out["torch.compile"] = torch_variant(True)
    return out


WORKLOADS = {"W1": w1, "W5": w5, "W6": w6, "neural ODE": neural_ode}


def _close(a, b, rtol):
    for u, v in zip(a, b):
        np.testing.assert_allclose(np.asarray(v, np.float64), np.asarray(u, np.float64),
                                   rtol=rtol, atol=rtol * 1e-3)


def measure(name, make, rounds, min_time):
    variants = make()
    first, failed = {}, {}
    ref = None
    for v, (run_, value) in list(variants.items()):
        t0 = time.perf_counter()
        try:
            got = value()
        except Exception as err:      # noqa: BLE001 - torch.compile may fail here
            failed[v] = f"{type(err).__name__}: {str(err).splitlines()[0][:160]}"
            del variants[v]
            continue
        first[v] = FIRST.pop(v, time.perf_counter() - t0)
        if ref is None:
            ref = got
        else:
            _close(ref, got, 2e-4 if name == "W5" else 1e-7)
    number = {}
    for v, (run_, _) in variants.items():
        n, t0 = 1, time.perf_counter()
        run_()
        dt = max(time.perf_counter() - t0, 1e-7)
        number[v] = max(1, int(min_time / dt))
    times = {v: [] for v in variants}
    for _ in range(rounds):
        for v, (run_, _) in variants.items():
            best = float("inf")
            for _ in range(3):
                t0 = time.perf_counter()
                for _ in range(number[v]):
                    run_()
                best = min(best, (time.perf_counter() - t0) / number[v])
            times[v].append(best)
    return times, first, failed


def _fmt(t):
    return f"{t * 1e6:.1f} µs" if t < 1e-3 else f"{t * 1e3:.2f} ms"


def report(name, times, first, failed):
    jkey = next((k for k in times if k.startswith("JAX")), None)
    if jkey is None and "PyTorch eager" in times:
        jkey = "PyTorch eager"          # (W5: no JAX version here)
    ref = "JAX jit" if jkey is None or jkey.startswith("JAX") else jkey
    lines = [f"### {name}", "", f"| variant | best | / {ref} (median, range) | first call |",
             "| --- | --- | --- | --- |"]
    for v, ts in times.items():
        ratio = ""
        if jkey is not None:
            r = np.array(ts) / np.array(times[jkey])
            ratio = f"{np.median(r):.2f}× ({r.min():.2f}–{r.max():.2f})"
        lines.append(f"| {v} | {_fmt(min(ts))} | {ratio} | {first[v]:.2f} s |")
    for v, why in failed.items():
        lines.append(f"| {v} | failed: {why} | | |")
    return lines


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--min-time", type=float, default=0.05)
    ap.add_argument("--only", nargs="*", choices=list(WORKLOADS))
    ap.add_argument("--write", action="store_true", help="print the markdown section")
    args = ap.parse_args(argv)
    if torch is not None:
        torch.set_num_threads(1)
    out = ["## torch.compile next to funcgrad jit (Numba backend) and JAX jit", ""]
    for name in args.only or WORKLOADS:
        times, first, failed = measure(name, WORKLOADS[name], args.rounds, args.min_time)
        lines = report(name, times, first, failed)
        print("\n".join(lines) + "\n", flush=True)
        out += lines + [""]
    out.append(f"- {args.rounds} interleaved rounds in one process, best of 3 timings per "
               "variant per round; ratios per round; PyTorch on one thread, the others on "
               "their defaults; first call: tracing and compiling (funcgrad's: tracing and "
               "the NumPy replay, while its Numba kernels compile in the background, "
               "waited for before timing); "
               "`python benchmarks/bench_torch_compile.py --write`")
    if args.write:
        print("\n".join(out))


if __name__ == "__main__":
    main()

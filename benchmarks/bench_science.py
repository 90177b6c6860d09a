"""A scientific workload, side by side in one process: the gradient of a neural ODE's loss.

    python benchmarks/bench_science.py [--rounds 5] [--write]
    python benchmarks/bench_science.py --batch 4 --hidden 8 --steps 5 --rounds 1   # smoke

The workload, in the spirit of autograd's examples/ode_net.py (written afresh here): a
small MLP ``f(y) = tanh(y @ W1 + b1) @ W2 + b2`` is the right-hand side of an ODE in the
plane (state dim 2), integrated by fixed-step RK4 from a batch of initial states; the loss
is the mean squared distance of the whole trajectory to a target trajectory (the same
initial states under the cubic spiral ``y' = y**3 @ A`` of that example); the gradient is
taken w.r.t. the MLP's parameter pytree. Default sizes: hidden 50 (torchdiffeq's
ode_demo), a batch of 64 initial states, 100 RK4 steps of 0.025 (t in [0, 2.5]), float64.

The time loop is ``funcgrad.lax.scan`` (JAX: ``jax.lax.scan``); autograd and PyTorch,
which have no scan, run it as a Python loop. Variants, timed in rounds (a round times the
variants in turn, 3 times over, keeping each one's best; the best over rounds is
reported, and the ratios per round, median and range):

- autograd ``grad``; funcgrad eager ``grad``;
- ``funcgrad.jit(grad)`` with ``backend="numpy"`` and ``backend="numba"`` (the latter
  after ``.lower(...).compile(wait=True)``);
- ``jax.jit(jax.grad)``; PyTorch eager (``loss.backward()``, one thread).

Every gradient is checked against funcgrad eager's (rtol 1e-9) before timing. Peers that
are not installed are skipped. ``--write`` prints a markdown section for RESULTS.md (it
writes no file).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

import numpy as np  # noqa: E402

import run  # noqa: E402  (benchmarks/run.py: the peers, thread pinning)
import funcgrad  # noqa: E402
import funcgrad.numpy as fnp  # noqa: E402

jax, autograd, torch = run.jax, run.autograd, run.torch
if torch is not None:
    # (run.py gives it run.THREADS) its operations here are far too small for intra-op
    # threads, which on a shared machine only spin: times of 70 ms and of 1 s alternated,
    # and the spinning slowed the variant timed next
    torch.set_num_threads(1)

# the cubic spiral that makes the target trajectories (autograd's ode_net uses this kind)
SPIRAL = np.array([[-0.1, 2.0], [-2.0, -0.1]])


def rk4_step(f, y, dt):
    """One classical Runge-Kutta step of ``y' = f(y)``."""
    k1 = f(y)
    k2 = f(y + (0.5 * dt) * k1)
    k3 = f(y + (0.5 * dt) * k2)
    k4 = f(y + dt * k3)
    return y + (dt / 6.0) * (k1 + 2.0 * k2 + 2.0 * k3 + k4)


def mlp(params, y, m):
    return m.tanh(y @ params["W1"] + params["b1"]) @ params["W2"] + params["b2"]


def python_scan(step, carry, length, stack):
    """``lax.scan`` over no xs, as a Python loop (for the libraries without a scan)."""
    ys = []
    for _ in range(length):
        carry, y = step(carry, None)
        ys.append(y)
    return carry, stack(ys)


def make_loss(m, scan, steps, dt):
    """``loss(params, y0, target)`` with the array namespace ``m`` and ``scan(step, init,
    length) -> (carry, ys)``."""
    def loss(params, y0, target):
        def step(y, _):
            y = rk4_step(lambda z: mlp(params, z, m), y, dt)
            return y, y
        _, traj = scan(step, y0, steps)
        return m.mean((traj - target) ** 2)
    return loss


def problem(batch, hidden, steps, dt, seed=0):
    """(params, y0, target) as NumPy float64 arrays."""
    rng = np.random.default_rng(seed)
    d = 2
    params = {"W1": rng.normal(0, 1 / np.sqrt(d), (d, hidden)), "b1": np.zeros(hidden),
              "W2": rng.normal(0, 0.1 / np.sqrt(hidden), (hidden, d)), "b2": np.zeros(d)}
    y0 = rng.uniform(-1.5, 1.5, (batch, d))
    y, target = y0, []
    for _ in range(steps):
        y = rk4_step(lambda z: (z ** 3) @ SPIRAL, y, dt)
        target.append(y)
    return params, y0, np.stack(target)


def variants(batch, hidden, steps, dt, backends=("numpy", "numba"), with_torch=True):
    """name -> (grad function of (params, y0, target), its arguments)."""
    params, y0, target = problem(batch, hidden, steps, dt)
    out = {}
    if autograd is not None:
        import autograd.numpy as anp
        out["autograd grad"] = (autograd.grad(make_loss(
            anp, lambda f, c, n: python_scan(f, c, n, anp.stack), steps, dt)),
            (params, y0, target))
    fg = funcgrad.grad(make_loss(fnp, lambda f, c, n: funcgrad.lax.scan(f, c, length=n),
                                 steps, dt))
    out["funcgrad grad"] = (fg, (params, y0, target))
    for b in backends:
        out[f"funcgrad jit(grad) {b}"] = (funcgrad.jit(fg, backend=b), (params, y0, target))
    if jax is not None:
        import jax.numpy as jnp
        gj = jax.jit(jax.grad(make_loss(
            jnp, lambda f, c, n: jax.lax.scan(f, c, length=n), steps, dt)))
        jargs = jax.tree_util.tree_map(jnp.asarray, (params, y0, target))
        out["JAX jit(grad)"] = (lambda *a: jax.block_until_ready(gj(*a)), jargs)
    if torch is not None and with_torch:
        tloss = make_loss(torch, lambda f, c, n: python_scan(f, c, n, torch.stack), steps, dt)
        tp = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
        targs = (tp, torch.tensor(y0), torch.tensor(target))

        def tgrad(p, a, b):
            for v in p.values():
                v.grad = None
            tloss(p, a, b).backward()
            return {k: v.grad for k, v in p.items()}
        out["PyTorch eager"] = (tgrad, targs)
    return out


def check(work, rtol=1e-9):
    """Every variant's gradient against funcgrad eager's; returns the largest relative
    difference per variant (raises AssertionError past ``rtol``)."""
    f, args = work["funcgrad grad"]
    ref = {k: np.asarray(v) for k, v in f(*args).items()}
    scale = {k: np.abs(v).max() for k, v in ref.items()}
    worst = {}
    for name, (g, a) in work.items():
        got = g(*a)
        err = max(float(np.abs(np.asarray(got[k].detach() if hasattr(got[k], "detach")
                                           else got[k]) - ref[k]).max() / scale[k])
                  for k in ref)
        worst[name] = err
        assert err <= rtol, f"{name}: gradient differs from funcgrad eager's by {err:.2e}"
    return worst


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--hidden", type=int, default=50)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--dt", type=float, default=0.025)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--min-time", type=float, default=0.2, help="seconds per timing")
    ap.add_argument("--no-numba", action="store_true")
    ap.add_argument("--no-torch", action="store_true", help="leave PyTorch eager out")
    ap.add_argument("--write", action="store_true",
                    help="print the section '## scientific workload: neural ODE'")
    args = ap.parse_args(argv)
    backends = ("numpy",) if args.no_numba or not _has_numba() else ("numpy", "numba")
    work = variants(args.batch, args.hidden, args.steps, args.dt, backends,
                    not args.no_torch)
    first = {}
    for name, (f, a) in work.items():       # first calls: tracing, compiling, loop splitting
        t0 = time.perf_counter()
        f(*a)
        first[name] = time.perf_counter() - t0
        f(*a)
    t0 = time.perf_counter()
    for name, (f, a) in work.items():
        if name.endswith("numba"):
            f.lower(*a).compile(wait=True)
    print(f"sizes: state dim 2, hidden {args.hidden}, batch {args.batch}, {args.steps} RK4 "
          f"steps of {args.dt}, float64; threads {run.THREADS}")
    print("first call (tracing, compiling): " +
          ", ".join(f"{k} {v:.2f} s" for k, v in first.items()))
    print(f"then waiting for the Numba kernels: {time.perf_counter() - t0:.2f} s")
    worst = check(work)
    print("largest relative difference to funcgrad eager's gradient: " +
          ", ".join(f"{k} {v:.1e}" for k, v in worst.items()))
    load0 = os.getloadavg()[0]
    times = interleaved(work, args.rounds, args.min_time)
    args.load = (load0, os.getloadavg()[0])
    report(times, args)


def interleaved(work, rounds, min_time, repeat=3):
    """name -> per-round best seconds per call. Each variant first gets a call count
    whose timing lasts about ``min_time / repeat``; a round times every variant in turn,
    ``repeat`` times over, so that a busy machine slows them alike within a round."""
    number = {}
    for name, (f, a) in work.items():
        n = 1
        while True:
            t0 = time.perf_counter()
            for _ in range(n):
                f(*a)
            if time.perf_counter() - t0 >= min_time / repeat or n > 10000:
                break
            n *= 2
        number[name] = n
    times = {name: [] for name in work}
    for _ in range(rounds):
        best = dict.fromkeys(work, float("inf"))
        for _ in range(repeat):
            for name, (f, a) in work.items():
                n = number[name]
                t0 = time.perf_counter()
                for _ in range(n):
                    f(*a)
                best[name] = min(best[name], (time.perf_counter() - t0) / n)
        for name in work:
            times[name].append(best[name])
    return times


def _has_numba():
    try:
        import numba  # noqa: F401
    except ImportError:
        return False
    return True


def _ratios(a, b):
    """(median, min, max) of a/b per round."""
    rs = [x / y for x, y in zip(a, b)]
    return statistics.median(rs), min(rs), max(rs)


def report(times, args):
    jref = times.get("JAX jit(grad)")
    aref = times.get("autograd grad")
    rows = []
    print(f"\n{'variant':28s} {'best ms':>9s} {'/ JAX jit':>24s} {'autograd / this':>24s}")
    for name, ts in times.items():
        cells = [f"{min(ts) * 1e3:9.2f}"]
        md = [name, f"{min(ts) * 1e3:.2f}"]
        for ref, inv in ((jref, False), (aref, True)):
            if ref is None:
                cells.append(f"{'n/a':>24s}")
                md.append("n/a")
                continue
            med, lo, hi = _ratios(ref, ts) if inv else _ratios(ts, ref)
            cells.append(f"{med:8.2f}x ({lo:.2f}-{hi:.2f})".rjust(24))
            md.append(f"{med:.2f}× ({lo:.2f}–{hi:.2f})")
        print(f"{name:28s} " + " ".join(cells))
        rows.append(md)
    if not args.write:
        return
    best_fg = min((n for n in times if n.startswith("funcgrad jit")),
                  key=lambda n: min(times[n]))
    lines = ["## scientific workload: neural ODE", "",
             "| variant | ms per gradient | ratio to JAX jit | autograd / this |",
             "| --- | --- | --- | --- |"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    lines.append("")
    if jref is not None:
        med, lo, hi = _ratios(times[best_fg], jref)
        lines.append(f"- {best_fg} / JAX jit(grad) = **{med:.2f}×** per round, median "
                     f"(range {lo:.2f}–{hi:.2f}; target ≤ 2×)")
    if aref is not None:
        med, lo, hi = _ratios(aref, times[best_fg])
        lines.append(f"- autograd grad / {best_fg} = **{med:.1f}×** per round, median "
                     f"(range {lo:.1f}–{hi:.1f}; target ≥ 10×)")
    lines.append(
        f"- gradient of a neural ODE's trajectory loss w.r.t. its MLP (2-{args.hidden}-2, "
        f"tanh), RK4 with {args.steps} steps of {args.dt} from {args.batch} initial states, "
        f"float64; the time loop is `lax.scan` (autograd and PyTorch: a Python loop); ratios "
        f"per round, median and range over {args.rounds} rounds (a round times the variants in "
        f"turn, 3 times over, and keeps each one's best); load average "
        f"{args.load[0]:.1f} before, {args.load[1]:.1f} after, on {os.cpu_count()} cores; "
        f"every gradient matches funcgrad eager's to 1e-9; "
        f"`python benchmarks/bench_science.py --write`")
    print("\n" + "\n".join(lines))


if __name__ == "__main__":
    main()

"""Threads: the mnist example's CNN training step, on a quiet machine and next to another job.

The step is ``examples/mnist.py``'s: conv 1->16 3x3, ReLU, max-pool 2, conv 16->32 3x3,
ReLU, max-pool 2, dense 1568 -> 10, cross-entropy, Adam (lr 1e-3); a batch of 64
1x28x28 float32 images; funcgrad's step under ``jit``. In one process, interleaved round
by round:

- funcgrad default: ``num_threads`` and ``adaptive_threads`` as they come;
- funcgrad on the budget's threads, not adaptive (``adaptive_threads=False``): what the default did
  before it adapted;
- funcgrad single-threaded: ``num_threads=1`` (the BLAS follows);
- PyTorch with its default threads, and PyTorch on one thread: the same model and
  optimizer (``torch.optim.Adam``).

Each configuration runs ``--warmup`` seconds untimed (the adaptive policy samples the
machine's load every half second), then ``--steps`` timed steps; a row's figure is the
median step time of its best round. The conditions: quiet, then "busy": a second process,
started and stopped by this script, multiplies 1000x1000 float64 matrices with NumPy's
default BLAS threads (it stops by itself after ``--busy-limit`` seconds in any case).

    python benchmarks/bench_threads.py             # prints the table
    python benchmarks/bench_threads.py --write     # and writes it into RESULTS.md
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from results_md import write_section  # noqa: E402  (this folder)
sys.path.insert(0, os.path.join(HERE, "..", "examples"))
sys.path.insert(0, os.path.join(HERE, ".."))     # this checkout's funcgrad

import funcgrad                            # noqa: E402
import funcgrad.random as fr               # noqa: E402
import funcgrad_nn.functional as F         # noqa: E402
from funcgrad_nn import optim              # noqa: E402
from mnist import make_model               # noqa: E402

BATCH = 64
BUSY_JOB = """
import os, sys, time
import numpy as np
limit = time.monotonic() + float(sys.argv[1])
a = np.random.default_rng(0).standard_normal((1000, 1000))
while time.monotonic() < limit and os.getppid() != 1:
    a = (a @ a) * 1e-3
"""


def funcgrad_step(x, y):
    model = make_model()
    params = model.init(fr.key(0))
    tx = optim.adam(1e-3)
    state = [params, tx.init(params)]

    @funcgrad.jit
    def step(params, opt_state, x, y):
        loss, grads = funcgrad.value_and_grad(
            lambda p: F.cross_entropy(model(p, x), y))(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optim.apply_updates(params, updates), opt_state, loss

    def run():
        state[0], state[1], loss = step(state[0], state[1], x, y)
        return loss
    return run


def torch_step(x, y):
    import torch
    import torch.nn as tnn
    torch.manual_seed(0)
    model = tnn.Sequential(
        tnn.Conv2d(1, 16, 3, padding=1), tnn.ReLU(), tnn.MaxPool2d(2),
        tnn.Conv2d(16, 32, 3, padding=1), tnn.ReLU(), tnn.MaxPool2d(2),
        tnn.Flatten(), tnn.Linear(32 * 7 * 7, 10))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)

    def run():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(xt), yt)
        loss.backward()
        opt.step()
        return loss
    return run


def configurations(x, y, with_torch):
    fg = funcgrad_step(x, y)
    cfgs = {
        "funcgrad default": (fg, dict(num_threads=None, adaptive_threads=True), None),
        "funcgrad, not adaptive": (fg, dict(num_threads=None, adaptive_threads=False), None),
        "funcgrad single-threaded": (fg, dict(num_threads=1, adaptive_threads=True), None),
    }
    if with_torch:
        import torch
        default = torch.get_num_threads()
        th = torch_step(x, y)
        cfgs["PyTorch default threads"] = (th, dict(num_threads=None, adaptive_threads=True),
                                           default)
        cfgs["PyTorch single-threaded"] = (th, dict(num_threads=None, adaptive_threads=True),
                                           1)
    return cfgs


def measure(cfgs, rounds, steps, warmup):
    best = {}
    for _ in range(rounds):
        for name, (run, options, torch_threads) in cfgs.items():
            for k, v in options.items():
                funcgrad.config.update(k, v)
            if torch_threads is not None:
                import torch
                torch.set_num_threads(torch_threads)
            t_end = time.perf_counter() + warmup
            while time.perf_counter() < t_end:
                run()
            times = []
            for _ in range(steps):
                t0 = time.perf_counter()
                run()
                times.append(time.perf_counter() - t0)
            med = float(np.median(times)) * 1e3
            if med < best.get(name, (np.inf,))[0]:
                best[name] = (med, _threads_in_use() if torch_threads is None else
                              torch_threads)
    for k, v in dict(num_threads=None, adaptive_threads=True).items():
        funcgrad.config.update(k, v)
    return best


def _threads_in_use():
    """The threads funcgrad's splits use now (the budget less the adaptive policy's cut)."""
    from funcgrad._src import threads      # (a private reading, for this report only)
    return threads.num_threads()


def table(results):
    lines = ["| configuration | quiet: ms/step | ratio to funcgrad single | threads | "
             "busy: ms/step | ratio to funcgrad single | threads |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for name in results["quiet"]:
        row = [name]
        for cond in ("quiet", "busy"):
            r = results[cond]
            row += [f"{r[name][0]:.1f}",
                    f"{r[name][0] / r['funcgrad single-threaded'][0]:.2f}×", str(r[name][1])]
        lines.append("| " + " | ".join(row) + " |")
    return lines


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--warmup", type=float, default=1.5, help="seconds per configuration")
    ap.add_argument("--busy-limit", type=float, default=600.0,
                    help="the background job stops by itself after this many seconds")
    ap.add_argument("--no-torch", action="store_true")
    ap.add_argument("--write", action="store_true", help="write the section of RESULTS.md")
    args = ap.parse_args(argv)

    funcgrad.config.update("keep_freed_memory", True)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((BATCH, 1, 28, 28)).astype(np.float32)
    y = rng.integers(0, 10, BATCH)
    with_torch = not args.no_torch and importlib.util.find_spec("torch") is not None
    cfgs = configurations(x, y, with_torch)
    budget = funcgrad.config.read("num_threads")
    print(f"CNN step (examples/mnist.py), batch {BATCH}, jit + Adam; budget {budget} "
          f"threads, {os.cpu_count()} CPUs")

    results = {"quiet": measure(cfgs, args.rounds, args.steps, args.warmup)}
    job = subprocess.Popen([sys.executable, "-c", BUSY_JOB, str(args.busy_limit)])
    try:
        time.sleep(1.0)
        results["busy"] = measure(cfgs, args.rounds, args.steps, args.warmup)
    finally:
        job.kill()
        job.wait()

    lines = table(results)
    q = {k: v[0] for k, v in results["quiet"].items()}
    b = {k: v[0] for k, v in results["busy"].items()}
    notes = [
        "",
        f"- quiet: funcgrad default / single-threaded = "
        f"**{q['funcgrad default'] / q['funcgrad single-threaded']:.2f}×** (target ≤ 0.7×)",
        f"- busy: funcgrad default / single-threaded = "
        f"**{b['funcgrad default'] / b['funcgrad single-threaded']:.2f}×** (target ≤ 1.5×)",
    ]
    if "PyTorch default threads" in b:
        notes.append(f"- busy: funcgrad default / PyTorch default = "
                     f"**{b['funcgrad default'] / b['PyTorch default threads']:.2f}×** "
                     "(target ≤ 1.0×); quiet: "
                     f"{q['funcgrad default'] / q['PyTorch default threads']:.2f}×")
    notes.append(f"- busy: a second process multiplying 1000×1000 float64 matrices with NumPy's "
                 f"default BLAS threads; median step time of the best of {args.rounds} "
                 f"interleaved rounds of {args.steps} steps, after {args.warmup:g} s "
                 "of warm-up per configuration; `python benchmarks/bench_threads.py --write`")
    lines += notes
    print("\n".join(lines))
    if args.write:
        write_section(lines, "threads")


if __name__ == "__main__":
    main()

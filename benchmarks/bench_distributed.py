"""Distributed: funcgrad's collectives against raw mpi4py, and the W2 step on 2 processes.

    python benchmarks/bench_distributed.py             # prints the table (needs the
    python benchmarks/bench_distributed.py --write     #   distributed extra); --write
                                                       #   puts it in RESULTS.md

This script launches itself with ``mpiexec -n N`` (``-n``, default 2) and measures, in
rounds interleaved so that both sides see the same machine:

- a gradient tree of 100 float32 leaves, 10M floats (40 MB) in all, through
  ``funcgrad.distributed.all_reduce`` (sum, and mean), against one raw ``mpi4py``
  ``Comm.Allreduce`` of the same bytes from a send to a receive buffer (the usual call)
  and in place;
- 100 leaves of 10 floats: funcgrad's one bucketed call against 100 raw calls (latency);
- the W2 training step of ``run.py`` (784-512-512-10 MLP, float32, SGD) with a global
  batch of 128: on one process (jit), and data-parallel on N processes (64 rows each,
  the gradients averaged with ``all_reduce`` inside the jitted step), plus the
  all-reduce of W2's gradient alone.

Figures are medians over the rounds (and the best round in brackets), on rank 0.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from results_md import write_section  # noqa: E402  (this folder)
ROOT = os.path.dirname(HERE)


def _stats(ts):
    import numpy as np
    return {"median": float(np.median(ts)), "best": float(np.min(ts))}


def worker(args):
    import numpy as np
    from mpi4py import MPI

    sys.path.insert(0, ROOT)
    import funcgrad
    import funcgrad.distributed as dist
    import funcgrad.numpy as fnp

    dist.initialize()
    comm = MPI.COMM_WORLD
    rank, size = comm.Get_rank(), comm.Get_size()
    rng = np.random.default_rng(0)

    # ---- 10M float32 in 100 leaves of uneven sizes (like a network's layers) ----------
    weights = rng.uniform(0.2, 1.8, 100)
    sizes = np.floor(weights / weights.sum() * 10_000_000).astype(int)
    sizes[0] += 10_000_000 - sizes.sum()
    tree = {f"layer{k:02d}": rng.standard_normal(s).astype(np.float32) for k, s in enumerate(sizes)}
    flat = np.concatenate(list(tree.values()))
    recv = np.empty_like(flat)
    small = [rng.standard_normal(10).astype(np.float32) for _ in range(100)]
    small_out = [np.empty_like(x) for x in small]

    def timed(f):
        comm.Barrier()
        t0 = time.perf_counter()
        f()
        dt = time.perf_counter() - t0
        return comm.allreduce(dt, op=MPI.MAX)        # the slowest rank's time

    def raw_small():
        for x, o in zip(small, small_out):
            comm.Allreduce(x, o)

    big = {"raw Allreduce (send -> recv buffer), 40 MB": lambda: comm.Allreduce(flat, recv),
           "raw Allreduce in place, 40 MB": lambda: comm.Allreduce(MPI.IN_PLACE, recv),
           "funcgrad all_reduce, 100 leaves, 40 MB": lambda: dist.all_reduce(tree),
           "funcgrad all_reduce op=mean, 100 leaves, 40 MB": lambda: dist.all_reduce(tree, "mean"),
           "raw Allreduce x 100 (one per leaf), 100 x 10 floats": raw_small,
           "funcgrad all_reduce, 100 x 10 floats": lambda: dist.all_reduce(small, "mean")}
    res = {k: [] for k in big}
    for f in big.values():
        f()
    for _ in range(args.rounds):
        for name, f in big.items():
            reps = 1 if "40 MB" in name else 20
            res[name].append(min(timed(f) for _ in range(reps)))

    # ---- W2 data-parallel ----------------------------------------------------------------
    sys.path.insert(0, HERE)
    from run import _w2_data, _w2_loss
    params, x, y = _w2_data()
    local = slice(rank * len(x) // size, (rank + 1) * len(x) // size)
    xl, yl = x[local], y[local]
    vg = funcgrad.value_and_grad(lambda p, x, y: _w2_loss(p, x, y, fnp))

    @funcgrad.jit
    def dp_step(p, x, y):
        loss, grads = vg(p, x, y)
        loss, grads = dist.all_reduce((loss, grads), "mean")
        return loss, [(w - 0.01 * gw, b - 0.01 * gb) for (w, b), (gw, gb) in zip(p, grads)]

    _, g = vg(params, xl, yl)
    w2 = {"W2 data-parallel jit step (64 rows per process)": lambda: dp_step(params, xl, yl),
          "W2 gradient all_reduce alone (2.7 MB, 6 leaves)": lambda: dist.all_reduce(g, "mean")}
    for f in w2.values():
        f()
    for name in w2:
        res[name] = []
    for _ in range(args.rounds):
        for name, f in w2.items():
            res[name].append(min(timed(f) for _ in range(10)))
    if rank == 0:
        out = {k: _stats(v) for k, v in res.items()}
        out["_meta"] = {"processes": size, "rounds": args.rounds, "threads per process": funcgrad.config.read("num_threads"),
                        "mpi": MPI.Get_library_version().splitlines()[0].strip(),
                        "mpi4py": __import__("mpi4py").__version__}
        with open(args.json, "w") as f:
            json.dump(out, f)


def single_w2(rounds):
    """W2's jit step, global batch 128, on one process (the full thread budget)."""
    sys.path.insert(0, ROOT)
    sys.path.insert(0, HERE)
    import funcgrad
    import funcgrad.numpy as fnp
    from run import _w2_data, _w2_loss
    params, x, y = _w2_data()
    vg = funcgrad.value_and_grad(lambda p, x, y: _w2_loss(p, x, y, fnp))

    @funcgrad.jit
    def step(p, x, y):
        loss, grads = vg(p, x, y)
        return loss, [(w - 0.01 * gw, b - 0.01 * gb) for (w, b), (gw, gb) in zip(p, grads)]
    step(params, x, y)
    ts = []
    for _ in range(rounds):
        best = float("inf")
        for _ in range(10):
            t0 = time.perf_counter()
            step(params, x, y)
            best = min(best, time.perf_counter() - t0)
        ts.append(best)
    return _stats(ts), funcgrad.config.read("num_threads")


def _fmt(s):
    return f"{s['median'] * 1e3:.2f} ms ({s['best'] * 1e3:.2f})"


def table(r, single, single_threads):
    meta = r.pop("_meta")
    n = meta["processes"]
    lines = [
        f"Written by `python benchmarks/bench_distributed.py --write`: {n} processes launched "
        f"with `mpiexec -n {n}` on this machine ({platform.machine()}, {os.cpu_count()} "
        f"cores, shared memory), {meta['mpi']}, mpi4py {meta['mpi4py']}; "
        f"{meta['threads per process']} funcgrad thread(s) per process; load average before "
        f"the run {os.getloadavg()[0]:.1f} (other jobs share this machine, so single rounds "
        "vary by ±30%). Each figure is the slowest rank's time, median over "
        f"{meta['rounds']} interleaved rounds (best round in brackets).",
        "",
        "| operation | time |",
        "| --- | --- |"]
    for k, v in r.items():
        lines.append(f"| {k} | {_fmt(v)} |")
    lines.append(f"| W2 jit step on one process (128 rows, {single_threads} threads) | "
                 f"{_fmt(single)} |")
    a = r["funcgrad all_reduce, 100 leaves, 40 MB"]
    raw = r["raw Allreduce (send -> recv buffer), 40 MB"]
    inplace = r["raw Allreduce in place, 40 MB"]
    s_f = r["funcgrad all_reduce, 100 x 10 floats"]
    s_r = r["raw Allreduce x 100 (one per leaf), 100 x 10 floats"]
    dp = r["W2 data-parallel jit step (64 rows per process)"]
    lines += [
        "",
        f"- all_reduce of the 40 MB, 100-leaf tree / one raw Allreduce of the same bytes: "
        f"**{a['median'] / raw['median']:.2f}×** (target ≤ 1.1×; best rounds "
        f"{a['best'] / raw['best']:.2f}×); against a raw in-place Allreduce "
        f"{a['median'] / inplace['median']:.2f}×. funcgrad packs the leaves into one "
        "buffer (a 40 MB copy, into a pooled buffer once the previous result is dropped), "
        "checks the tree's fingerprint (one 16-byte all-reduce), and reduces the buffer "
        "in place; the leaves it returns are views of that buffer (0-d and small leaves "
        "are copied out, at most 1/16 of the bytes, so that keeping one does not keep the "
        "buffer).",
        f"- 100 small leaves: one bucketed call {s_f['median'] * 1e6:.0f} µs against "
        f"{s_r['median'] * 1e6:.0f} µs for one raw call per leaf "
        f"({s_f['median'] / s_r['median']:.2f}× their time). Over shared memory a message "
        "costs about 2 µs, as little as funcgrad's Python work per leaf; over a network "
        "each message costs 5-50 µs, and the one bucketed message saves nearly all of it.",
        f"- W2 step: {n} processes of 64 rows {dp['median'] * 1e3:.2f} ms against "
        f"{single['median'] * 1e3:.2f} ms on one process of 128 rows "
        f"({single['median'] / dp['median']:.2f}× the throughput of one process). On this "
        f"{os.cpu_count()}-core machine both runs share the same cores, so this measures "
        "the overhead of going data-parallel, not a speed-up: each process has half the "
        "cores, and the gradient all-reduce "
        f"({r['W2 gradient all_reduce alone (2.7 MB, 6 leaves)']['median'] * 1e3:.2f} ms) "
        "is added to the step.",
        "",
        "**Scaling to many nodes.** Data parallelism adds, per step, one all-reduce of the "
        "gradient (bucketed by dtype: one message for a float32 model) and one 16-byte "
        "fingerprint all-reduce. MPI's and NCCL's large-message all-reduce is bandwidth-"
        "optimal (ring or reduce-scatter + all-gather): each process sends and receives "
        "about 2(p-1)/p times the gradient's bytes, nearly independent of the process "
        "count p, so the time per step stays close to (compute on 1/p of the batch) + "
        "(2 × gradient bytes / link bandwidth) + (latency × log p or p). For W2's 2.7 MB "
        "gradient on a 100 Gb/s link that is about 0.45 ms per step; on 10 Gb/s Ethernet "
        "about 4.5 ms, where a larger per-process batch is needed to keep the compute "
        "dominant. What funcgrad does not do yet: overlap the all-reduce with the "
        "backward pass (PyTorch DDP's bucketed hooks), so the communication time is "
        "added to, not hidden behind, the compute; and it reduces in the gradient's "
        "dtype (no fp16 compression). Within a node, NCCL over NVLink for CuPy arrays "
        "avoids host copies altogether; the NCCL path is tested on a CPU stand-in and "
        "has not been run on GPUs yet.",
    ]
    return lines


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=2, help="processes")
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--write", action="store_true", help="write the section of RESULTS.md")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--json", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        return worker(args)
    exe = next((p for p in (os.path.join(os.path.dirname(sys.executable), "mpiexec"),
                             shutil.which("mpiexec"), shutil.which("mpirun"))
                if p and os.access(p, os.X_OK)), None)
    if exe is None:
        raise SystemExit('needs MPI: pip install -e ".[distributed]"')
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "results.json")
        env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
        subprocess.run([exe, "-n", str(args.n), sys.executable, os.path.abspath(__file__),
                        "--worker", "--json", out, "--rounds", str(args.rounds)],
                       check=True, env=env)
        with open(out) as f:
            r = json.load(f)
    single, threads = single_w2(args.rounds)
    lines = table(r, single, threads)
    print("\n".join(lines))
    if args.write:
        write_section(lines, "distributed")


if __name__ == "__main__":
    main()

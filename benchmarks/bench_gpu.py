"""GPU benchmarks: W2 (MLP train step) at batch 128 and 4096 and W5 (small CNN
value_and_grad) at batch 256, with funcgrad on CuPy arrays (eager and jit) and, when
present, PyTorch on CUDA, in the same run. Writes benchmarks/GPU_REPORT.md.

    python benchmarks/bench_gpu.py              # needs CuPy and a CUDA device
    python benchmarks/bench_gpu.py --dry-run    # the same code on the CPU stand-in for a
                                                # device module (checks the script, not
                                                # the speed; writes no report)

Installs nothing. Every timed step is checked against the same step on the CPU first.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

import funcgrad  # noqa: E402


class Target:
    """Where funcgrad's arrays go, and how to wait for the device."""

    def __init__(self, dry_run):
        self.dry_run = dry_run
        if dry_run:
            from funcgrad._src.testing_backend import standin_xp
            self.device = standin_xp
        else:
            self.device = "gpu"

    def put(self, tree):
        return funcgrad.device_put(tree, self.device)

    def host(self, tree):
        return funcgrad.device_put(tree, "cpu")

    def sync(self):
        if not self.dry_run:
            import cupy
            cupy.cuda.Device().synchronize()


def best_time(f, sync, repeat=5, number=10):
    f()
    sync()
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(number):
            f()
        sync()
        best = min(best, (time.perf_counter() - t0) / number)
    return best


def _torch_cuda():
    try:
        import torch
    except ImportError:
        return None
    return torch if torch.cuda.is_available() else None


def _check(what, dev_tree, host_tree, target, rtol=2e-3, atol=2e-4):
    for a, b in zip(funcgrad.tree_util.tree_leaves(target.host(dev_tree)),
                    funcgrad.tree_util.tree_leaves(host_tree)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=rtol, atol=atol,
                                   err_msg=what)


def _time_funcgrad(what, kind, fun, host_args, rows, target, repeat, number):
    """``fun`` eager and under jit on the device copies of ``host_args``: each checked
    against the CPU result, then timed."""
    dev_args = target.put(host_args)
    jf = funcgrad.jit(fun)
    ref = fun(*host_args)
    _check(f"{what} eager", fun(*dev_args), ref, target)
    jf(*dev_args)
    _check(f"{what} jit", jf(*dev_args), ref, target)
    rows[f"{what}: funcgrad (CuPy) {kind}"] = best_time(
        lambda: fun(*dev_args), target.sync, repeat, number)
    rows[f"{what}: funcgrad jit {kind}"] = best_time(
        lambda: jf(*dev_args), target.sync, repeat, number)


def w2(batch, rows, target, repeat, number):
    import run
    params, _, _, step = run._w2_funcgrad_step()     # the step is generic in (p, x, y)
    rng = np.random.default_rng(1)
    x = rng.normal(size=(batch, 784)).astype(np.float32)
    y = rng.integers(0, 10, batch)
    _time_funcgrad(f"W2 batch {batch}", "train step", step, (params, x, y), rows, target,
                   repeat, number)
    torch = None if target.dry_run else _torch_cuda()
    if torch is None:
        return
    rows[f"W2 batch {batch}: PyTorch CUDA eager train step"] = best_time(
        run.w2_torch_step(torch, params, x, y, "cuda"), torch.cuda.synchronize, repeat,
        number)


def w5(batch, rows, target, repeat, number):
    import bench_conv
    bench_conv.BATCH = batch
    params, x, labels = bench_conv.make_problem()
    onehot = np.eye(10, dtype=np.float32)[labels]
    vg = funcgrad.value_and_grad(bench_conv.funcgrad_loss)
    _time_funcgrad(f"W5 batch {batch}", "value_and_grad", vg, (params, x, onehot), rows,
                   target, repeat, number)
    torch = None if target.dry_run else _torch_cuda()
    if torch is None:
        return
    import torch.nn.functional as F
    p = {k: torch.tensor(v, device="cuda", requires_grad=True) for k, v in params.items()}
    xt, yt = torch.tensor(x, device="cuda"), torch.tensor(labels, device="cuda")

    def tstep():
        h = F.max_pool2d(F.relu(F.conv2d(xt, p["w1"], p["b1"], padding=1)), 2)
        h = F.max_pool2d(F.relu(F.conv2d(h, p["w2"], p["b2"], padding=1)), 2)
        loss = F.cross_entropy(h.reshape(h.shape[0], -1) @ p["w3"] + p["b3"], yt)
        return loss, torch.autograd.grad(loss, list(p.values()))
    rows[f"W5 batch {batch}: PyTorch CUDA eager value_and_grad"] = best_time(
        tstep, torch.cuda.synchronize, repeat, number)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dry-run", action="store_true",
                    help="run on the CPU stand-in for a device module (no GPU needed)")
    args = ap.parse_args(argv)
    if not args.dry_run and "gpu:0" not in funcgrad.devices():
        print("bench_gpu: no CuPy/CUDA device here; nothing to do (try --dry-run)")
        return 1
    target = Target(args.dry_run)
    repeat, number = (1, 1) if args.dry_run else (5, 10)
    rows = {}
    for batch in ((16, 64) if args.dry_run else (128, 4096)):
        w2(batch, rows, target, repeat, number)
    w5(8 if args.dry_run else 256, rows, target, repeat, number)
    lines = ["# GPU benchmark report", "", "Written by `python benchmarks/bench_gpu.py`.", "",
             "| what | time |", "| --- | --- |"]
    lines += [f"| {k} | {v * 1e3:.3f} ms |" for k, v in rows.items()]
    for what in ("W2 batch 4096: funcgrad (CuPy) train step",
                 "W2 batch 4096: funcgrad jit train step"):
        a, b = rows.get(what), rows.get("W2 batch 4096: PyTorch CUDA eager train step")
        if a and b:
            lines += [f"- {what} / PyTorch CUDA eager: **{a / b:.2f}×** (target ≤ 1.3×)"]
    if args.dry_run:
        print("bench_gpu --dry-run: every step ran and matched the CPU on the stand-in")
        return 0
    with open(os.path.join(HERE, "GPU_REPORT.md"), "w") as fh:
        fh.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""GPU benchmarks: W2 (MLP train step) at batch 128 and 4096 and W5 (small CNN
value_and_grad) at batch 256, with funcgrad on CuPy arrays and, when present, PyTorch
on CUDA, in the same run. Writes benchmarks/GPU_REPORT.md.

    python benchmarks/bench_gpu.py

Needs CuPy and a CUDA device (it exits with a message otherwise). Installs nothing.
Written without a GPU at hand: the first run on a GPU machine is its first test.
"""
from __future__ import annotations

import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

import funcgrad  # noqa: E402
import funcgrad.numpy as fnp  # noqa: E402


def _sync():
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


def w2(batch, rows):
    import run
    params, x, y = run._w2_data()
    rng = np.random.default_rng(1)
    x = rng.normal(size=(batch, 784)).astype(np.float32)
    y = rng.integers(0, 10, batch)
    gp, gx, gy = funcgrad.device_put((params, x, y), "gpu")
    vg = funcgrad.value_and_grad(lambda p: run._w2_loss(p, gx, gy, fnp))

    def step():
        loss, grads = vg(gp)
        return [(w - 0.01 * gw, b - 0.01 * gb) for (w, b), (gw, gb) in zip(gp, grads)]
    rows[f"W2 batch {batch}: funcgrad (CuPy) train step"] = best_time(step, _sync)
    sj = funcgrad.jit(lambda p: step())
    rows[f"W2 batch {batch}: funcgrad jit train step"] = best_time(lambda: sj(gp), _sync)
    try:
        import torch
        if not torch.cuda.is_available():
            raise ImportError
    except ImportError:
        return
    tp = [(torch.tensor(w, device="cuda", requires_grad=True),
           torch.tensor(b, device="cuda", requires_grad=True)) for w, b in params]
    xt, yt = torch.tensor(x, device="cuda"), torch.tensor(y, device="cuda")

    def tstep():
        for w, b in tp:
            w.grad = b.grad = None
        h = xt
        for i, (w, b) in enumerate(tp):
            h = h @ w + b
            if i < len(tp) - 1:
                h = torch.relu(h)
        torch.nn.functional.cross_entropy(h, yt).backward()
        with torch.no_grad():
            for w, b in tp:
                w -= 0.01 * w.grad
                b -= 0.01 * b.grad
    rows[f"W2 batch {batch}: PyTorch CUDA eager train step"] = best_time(
        tstep, torch.cuda.synchronize)


def w5(batch, rows):
    import bench_conv
    bench_conv.BATCH = batch
    params, x, labels = bench_conv.make_problem()
    gp, gx, gl = funcgrad.device_put((params, x, labels), "gpu")
    rows[f"W5 batch {batch}: funcgrad (CuPy) value_and_grad"] = best_time(
        bench_conv.funcgrad_step_fn(gp, gx, gl), _sync)


def main():
    if "gpu:0" not in funcgrad.devices():
        print("bench_gpu: no CuPy/CUDA device here; nothing to do")
        return 1
    rows = {}
    for batch in (128, 4096):
        w2(batch, rows)
    w5(256, rows)
    lines = ["# GPU benchmark report", "", "Written by `python benchmarks/bench_gpu.py`.", "",
             "| what | time |", "| --- | --- |"]
    lines += [f"| {k} | {v * 1e3:.3f} ms |" for k, v in rows.items()]
    a = rows.get("W2 batch 4096: funcgrad (CuPy) train step")
    b = rows.get("W2 batch 4096: PyTorch CUDA eager train step")
    if a and b:
        lines += ["", f"- W2 at batch 4096, funcgrad / PyTorch CUDA eager: **{a / b:.2f}×** "
                      "(target ≤ 1.3×)"]
    with open(os.path.join(HERE, "GPU_REPORT.md"), "w") as fh:
        fh.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())

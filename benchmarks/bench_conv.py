"""W5: a small convolutional network's training step, funcgrad vs PyTorch eager (CPU).

conv 1->8 3x3 (SAME), ReLU, max-pool 2, conv 8->16 3x3 (SAME), ReLU, max-pool 2, dense
784 -> 10, softmax cross-entropy; a batch of 64 1x28x28 float32 images. One step is the
loss and its gradient with respect to all six parameter arrays (``value_and_grad``; for
PyTorch a forward pass and ``torch.autograd.grad``). Both run in the same process, with
PyTorch given as many threads as NumPy's BLAS has.

Usage::

    python benchmarks/bench_conv.py                 # ms/step for both and the ratio
    python benchmarks/bench_conv.py --threads 1     # both libraries on one thread
    python benchmarks/bench_conv.py --keep-freed-memory  # glibc keeps freed memory (see below)
    python benchmarks/bench_conv.py --profile       # plus a cProfile of the funcgrad step

Page faults: NumPy allocates every result with malloc, and glibc returns big freed
blocks to the system, so each fresh array costs a page fault per 4 KiB on first touch.
On a virtual machine that can cost as much as the arithmetic of this small network, and
how often it happens depends on the allocator's history (which library ran before).
The faults per step are printed; ``--keep-freed-memory`` turns the trimming off for the whole
process (both libraries; funcgrad.config keep_freed_memory) to compare the work itself.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

# this checkout's funcgrad, not an installed one
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import funcgrad  # noqa: E402
import funcgrad.lax as lax  # noqa: E402
import funcgrad.numpy as fnp  # noqa: E402

BATCH = 64


def make_problem(seed=0):
    rng = np.random.default_rng(seed)
    f32 = np.float32

    def init(shape, fan_in):
        return (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(f32)

    params = {"w1": init((8, 1, 3, 3), 9), "b1": np.zeros(8, f32),
              "w2": init((16, 8, 3, 3), 72), "b2": np.zeros(16, f32),
              "w3": init((16 * 7 * 7, 10), 784), "b3": np.zeros(10, f32)}
    x = rng.standard_normal((BATCH, 1, 28, 28)).astype(f32)
    labels = rng.integers(0, 10, BATCH)
    return params, x, labels


# ---- funcgrad ----------------------------------------------------------------------------
def _relu(h):
    # multiplying by the mask beats fnp.where: NumPy's where is slow on random masks
    return h * (h > 0)


def funcgrad_loss(params, x, onehot):
    h = lax.conv_general_dilated(x, params["w1"], (1, 1), "SAME")
    h = _relu(h + fnp.reshape(params["b1"], (1, -1, 1, 1)))
    h = lax.max_pool(h, (2, 2))
    h = lax.conv_general_dilated(h, params["w2"], (1, 1), "SAME")
    h = _relu(h + fnp.reshape(params["b2"], (1, -1, 1, 1)))
    h = lax.max_pool(h, (2, 2))
    logits = fnp.reshape(h, (h.shape[0], -1)) @ params["w3"] + params["b3"]
    m = funcgrad.stop_gradient(fnp.max(logits, axis=1, keepdims=True))
    lse = fnp.log(fnp.sum(fnp.exp(logits - m), axis=1, keepdims=True)) + m
    return fnp.sum((lse - logits) * onehot) / float(logits.shape[0])


def funcgrad_step_fn(params, x, labels, jit=False):
    onehot = np.eye(10, dtype=np.float32)[labels]
    vg = funcgrad.value_and_grad(funcgrad_loss)
    if jit:
        vg = funcgrad.jit(vg)
    return lambda: vg(params, x, onehot)


# ---- PyTorch -----------------------------------------------------------------------------
def torch_step_fn(params, x, labels):
    import torch
    import torch.nn.functional as F
    p = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    names = list(p)
    xt = torch.tensor(x)
    yt = torch.tensor(labels)

    def step():
        h = F.max_pool2d(F.relu(F.conv2d(xt, p["w1"], p["b1"], padding=1)), 2)
        h = F.max_pool2d(F.relu(F.conv2d(h, p["w2"], p["b2"], padding=1)), 2)
        loss = F.cross_entropy(h.reshape(h.shape[0], -1) @ p["w3"] + p["b3"], yt)
        grads = torch.autograd.grad(loss, [p[k] for k in names])
        return loss, dict(zip(names, grads))
    return step


def time_step(step, repeats, number):
    """Best and median wall ms/step over ``repeats`` runs of ``number`` steps, and the
    process CPU ms and minor page faults per step over all of them."""
    import resource
    for _ in range(3):
        step()
    times = []
    faults0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    cpu0 = time.process_time()
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(number):
            step()
        times.append((time.perf_counter() - t0) / number * 1e3)
    n = repeats * number
    cpu = (time.process_time() - cpu0) / n * 1e3
    faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults0) / n
    return min(times), float(np.median(times)), cpu, faults


def tune_malloc():
    """funcgrad's ``keep_freed_memory`` option: glibc keeps freed memory in its heap, so
    fresh arrays stop costing a page fault per 4 KiB page. Process-wide: it applies to
    both libraries."""
    funcgrad.config.update("keep_freed_memory", True)
    return funcgrad.config.read("keep_freed_memory")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--number", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=2,
                    help="alternate the two libraries this many times (noise hits both)")
    ap.add_argument("--profile", action="store_true", help="cProfile the funcgrad step")
    ap.add_argument("--threads", type=int, default=None,
                    help="give funcgrad (its budget: its threads and NumPy's BLAS) and "
                         "PyTorch this many threads")
    ap.add_argument("--keep-freed-memory", "--malloc-tuned", action="store_true",
                    dest="malloc_tuned",
                    help="funcgrad.config keep_freed_memory: glibc keeps freed memory "
                         "(process-wide, both libraries)")
    args = ap.parse_args()

    if args.malloc_tuned and not tune_malloc():
        print("warning: mallopt failed; running with the default allocator settings")
    import torch
    if args.threads:
        funcgrad.config.update("num_threads", args.threads)   # funcgrad's threads and BLAS
    threads = funcgrad.config.read("num_threads")
    torch.set_num_threads(threads)
    params, x, labels = make_problem()
    fg = funcgrad_step_fn(params, x, labels)
    fj = funcgrad_step_fn(params, x, labels, jit=True)
    th = torch_step_fn(params, x, labels)

    # the two must compute the same thing
    (lf, gf), (lt, gt) = fg(), th()
    lt = lt.detach()
    err = max(float(np.max(np.abs(np.asarray(gf[k]) - gt[k].numpy()))) for k in gf)
    assert gf["w1"].dtype == np.float32, gf["w1"].dtype
    print(f"W5 conv net, batch {BATCH}x1x28x28 float32, value_and_grad over 6 params")
    print(f"threads: funcgrad budget {threads}, torch {torch.get_num_threads()}; malloc "
          f"{'tuned' if args.malloc_tuned else 'default'}; loss funcgrad {float(lf):.6f} "
          f"torch {float(lt):.6f}; max |grad diff| {err:.2e}")

    results = {"funcgrad": [], "funcgrad-jit": [], "pytorch": []}
    for _ in range(args.rounds):
        results["funcgrad"].append(time_step(fg, args.repeats, args.number))
        results["funcgrad-jit"].append(time_step(fj, args.repeats, args.number))
        results["pytorch"].append(time_step(th, args.repeats, args.number))
    summary = {}
    for name, rs in results.items():
        best = min(r[0] for r in rs)
        med = min(r[1] for r in rs)
        cpu = min(r[2] for r in rs)
        faults = min(r[3] for r in rs)
        summary[name] = (best, med, cpu)
        print(f"{name:9s}: {best:7.3f} ms/step (best), {med:7.3f} (median); "
              f"CPU {cpu:7.3f} ms/step; {faults:6.0f} page faults/step")
    for name in ("funcgrad", "funcgrad-jit"):
        (bf, mf, cf), (bt, mt, ct) = summary[name], summary["pytorch"]
        print(f"ratio {name}/pytorch: {bf / bt:.2f}x (best), {mf / mt:.2f}x (median), "
              f"{cf / ct:.2f}x (CPU time)")

    if args.profile:
        import cProfile
        import pstats
        pr = cProfile.Profile()
        pr.enable()
        for _ in range(50):
            fg()
        pr.disable()
        pstats.Stats(pr).sort_stats("tottime").print_stats(25)


if __name__ == "__main__":
    main()

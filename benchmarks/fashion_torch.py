"""examples/mnist.py's CNN in PyTorch: the same data, model, initialisation, optimizer.

    python benchmarks/fashion_torch.py --fashion --root /usr/share/datasets/fashion-mnist

The model (conv 1->16 3x3, ReLU, max-pool 2, conv 16->32 3x3, ReLU, max-pool 2, dense
1568 -> 10), PyTorch's default initialisation (which funcgrad_nn's layers reproduce),
Adam (lr 1e-3), batch 64, the same normalisation, shuffling every epoch and the same
printed lines as ``examples/mnist.py``: one per epoch ending in ``(N s training)``, and
``test accuracy: XX.XX% after E epochs in N s`` last. The IDX files are read with
funcgrad_nn.datasets (reading only; the training is PyTorch's). ``--threads`` sets
PyTorch's thread count (default: PyTorch's own).

Given the same initial weights and batches, the two train alike step for step (float64:
to rounding; float32: until rounding differences grow, as they do between two PyTorch
runs that only sum in another order); tests/funcgrad_nn/test_cnn_torch_parity.py checks
it. A seed draws different weights and batch orders in the two libraries, so the
accuracies of one seed differ by chance; compare means over seeds.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np
import torch
import torch.nn as tnn

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "examples"))

import funcgrad_nn as nn          # noqa: E402  (the IDX reader and the same normalisation)
from mnist import load_split      # noqa: E402


def make_model():
    return tnn.Sequential(
        tnn.Conv2d(1, 16, 3, padding=1), tnn.ReLU(), tnn.MaxPool2d(2),
        tnn.Conv2d(16, 32, 3, padding=1), tnn.ReLU(), tnn.MaxPool2d(2),
        tnn.Flatten(), tnn.Linear(32 * 7 * 7, 10))


def evaluate(model, x, y, batch=500):
    correct, loss_sum = 0, 0.0
    with torch.no_grad():
        for i in range(0, len(x), batch):
            logits = model(x[i:i + batch])
            loss_sum += float(torch.nn.functional.cross_entropy(
                logits, y[i:i + batch], reduction="sum"))
            correct += int((logits.argmax(1) == y[i:i + batch]).sum())
    return loss_sum / len(x), correct / len(x)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", default="data")
    ap.add_argument("--fashion", action="store_true")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--limit-train", type=int, default=None)
    ap.add_argument("--limit-test", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args(argv)
    if args.epochs < 1:          # as examples/mnist.py: the last line needs an epoch
        ap.error("--epochs must be at least 1")
    for flag in ("limit_train", "limit_test"):
        if getattr(args, flag) is not None and getattr(args, flag) < 1:
            ap.error(f"--{flag.replace('_', '-')} must be a positive number of images")
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    cls = nn.datasets.FashionMNIST if args.fashion else nn.datasets.MNIST
    try:
        train = load_split(cls, args.root, True, False, args.limit_train)
        test = load_split(cls, args.root, False, False, args.limit_test)
    except (OSError, ValueError) as e:   # missing or corrupt files: as examples/mnist.py
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(1) from None
    xtr, ytr = torch.from_numpy(train.arrays[0]), torch.from_numpy(train.arrays[1])
    xte, yte = torch.from_numpy(test.arrays[0]), torch.from_numpy(test.arrays[1])
    print(f"{cls.__name__}: {len(xtr)} training and {len(xte)} test images of 28x28 "
          f"(PyTorch {torch.__version__}, {torch.get_num_threads()} threads)")

    model = make_model()
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    gen = torch.Generator().manual_seed(args.seed)
    t0 = time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        running = []
        t_epoch = time.perf_counter()
        model.train()
        for idx in torch.randperm(len(xtr), generator=gen).split(args.batch_size):
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(xtr[idx]), ytr[idx])
            loss.backward()
            opt.step()
            running.append(loss.item())
        t_epoch = time.perf_counter() - t_epoch
        model.eval()
        test_loss, test_acc = evaluate(model, xte, yte)
        print(f"epoch {epoch:2d}: train loss {np.mean(running):.4f}  test loss "
              f"{test_loss:.4f}  test accuracy {test_acc:.2%}  ({t_epoch:.1f} s training)")
    elapsed = time.perf_counter() - t0
    print(f"test accuracy: {test_acc:.2%} after {args.epochs} epochs in {elapsed:.1f} s")
    return test_acc


if __name__ == "__main__":
    # the same glibc allocator thresholds examples/mnist.py sets for its own process
    # (funcgrad.config's keep_freed_memory only calls mallopt): both libraries' steps
    # then run under the same allocator, whatever it does for either
    import funcgrad
    funcgrad.config.update("keep_freed_memory", True)
    main()

"""Train a small CNN on MNIST (or Fashion-MNIST) read from a local folder.

    python examples/mnist.py [--root data] [--download] [--fashion] [--epochs 3]
                             [--batch-size 64] [--lr 1e-3] [--limit-train N]
                             [--limit-test N] [--out DIR] [--no-progress] [--seed 0]
    mpiexec -n 2 python examples/mnist.py ...        # data-parallel over 2 processes

The files are looked for in torchvision's layout, ``ROOT/MNIST/raw/`` (or
``ROOT/FashionMNIST/raw/`` with ``--fashion``), or in ``ROOT`` itself, plain or gzipped::

    train-images-idx3-ubyte  train-labels-idx1-ubyte
    t10k-images-idx3-ubyte   t10k-labels-idx1-ubyte

Real data offline, on Debian or Ubuntu::

    apt-get install dataset-fashion-mnist
    python examples/mnist.py --fashion --root /usr/share/datasets/fashion-mnist

``--download`` fetches the missing ones (MD5-checked). A folder prepared for torchvision
works as it is. When files are missing the script says where it looked and how to get
them, and exits with status 1.

The workflow is that of ``train_digits.py``: a model from funcgrad_nn layers, a pure
training step (value_and_grad + Adam) compiled with jit, a progress bar, evaluation each
epoch, a checkpoint saved and reloaded, the curves saved as a PNG. The images are
converted to normalised float32 arrays once, into an ``ArrayDataset``, so the DataLoader
builds each batch with one indexing operation instead of one transform call per image.
The defaults aim at 98-99% test accuracy on MNIST in 3 epochs (a few minutes on two CPU
cores); use ``--limit-train``/``--limit-test`` for a quick run on a subset. Threads take
care of themselves: funcgrad uses the CPUs this process may run on, and fewer while other
jobs keep them busy (``funcgrad.config`` options ``num_threads``, ``adaptive_threads``).

Under an MPI launcher (or with ``--distributed``) it trains data-parallel, as
``train_digits.py`` does: each process reads its shard of every global batch
(DistributedSampler) and the gradients are averaged over the processes inside the jitted
step, so the global batch stays ``--batch-size``; only process 0 prints and writes files.
On a 2-core machine, 2 processes of one thread each ran the Fashion-MNIST step 1.2-1.4x
faster than one process of 2 threads, and the epochs about 1.15x faster
(``benchmarks/bench_realdata.py --mpi 2``): the threads of one process contend for the
interpreter (its GIL) between NumPy calls, separate processes do not.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

import funcgrad
import funcgrad.distributed as dist
import funcgrad.numpy as fnp
import funcgrad.random as fr
import funcgrad_nn as nn
import funcgrad_nn.functional as F
from funcgrad_nn import optim
from funcgrad_nn.transforms import Compose, Normalize, ToArray

# outputs go next to this script, wherever it is run from
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "out")

# The mean and standard deviation of MNIST's training pixels (in [0, 1]); the usual
# constants, also fine for Fashion-MNIST at this scale.
MEAN, STD = (0.1307,), (0.3081,)


def make_model():
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),     # 16 x 14 x 14
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),    # 32 x 7 x 7
        nn.Flatten(), nn.Linear(32 * 7 * 7, 10))


def make_train_step(model, tx, world=1):
    """The compiled training step: ``(params, opt_state, x, y) -> (params, opt_state,
    loss)``, the mean cross-entropy's gradient (value_and_grad) applied by ``tx``. With
    ``world`` processes (data-parallel) the gradient and loss are the global batch's: each
    process's mean weighted by its share of the batch, summed in one all-reduce."""
    def loss_fn(params, x, y):
        return F.cross_entropy(model(params, x), y)

    @funcgrad.jit
    def train_step(params, opt_state, x, y):
        loss, grads = funcgrad.value_and_grad(loss_fn)(params, x, y)
        if world > 1:
            n = fnp.asarray(x.shape[0], np.float32)
            total = dist.all_reduce({"g": funcgrad.tree_util.tree_map(lambda g: g * n, grads),
                                     "loss": loss * n, "n": n})
            grads = funcgrad.tree_util.tree_map(lambda g: g / total["n"], total["g"])
            loss = total["loss"] / total["n"]
        updates, opt_state = tx.update(grads, opt_state, params)
        return optim.apply_updates(params, updates), opt_state, loss

    return train_step


def load_split(dataset_cls, root, train, download, limit):
    """The split as an ArrayDataset of normalised float32 (N, 1, 28, 28) images and labels.

    Gives exactly what ``transform=Compose([ToArray(), Normalize(MEAN, STD)])`` gives image
    by image, but computed once: the transform is applied to the 256 possible pixel
    values and the images index that table (about 0.15 s for the 60000 training images).
    Batches then come from one indexing operation instead of 64 transform calls.
    """
    ds = dataset_cls(root, train=train, download=download)
    images, labels = ds.data, ds.targets
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    to_array = Compose([ToArray(), Normalize(MEAN, STD)])
    table = to_array(np.arange(256, dtype=np.uint8)[None, :]).reshape(256)
    return nn.data.ArrayDataset(table[images[:, None, :, :]], labels)


def evaluate(predict, params, loader):
    correct = total = 0
    loss_sum = 0.0
    for x, y in loader:
        logits = predict(params, x)
        loss_sum += float(F.cross_entropy(logits, y, reduction="sum"))
        correct += int((np.argmax(logits, axis=1) == y).sum())
        total += len(y)
    return loss_sum / total, correct / total


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", default="data",
                    help="the folder holding MNIST/raw/ (or FashionMNIST/raw/), or the four "
                         "files themselves (default: data)")
    ap.add_argument("--download", action="store_true", help="fetch missing files")
    ap.add_argument("--fashion", action="store_true", help="Fashion-MNIST instead of MNIST")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--limit-train", type=int, default=None, metavar="N",
                    help="train on the first N training images only")
    ap.add_argument("--limit-test", type=int, default=None, metavar="N",
                    help="evaluate on the first N test images only")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=OUT)
    ap.add_argument("--no-progress", action="store_true", help="plain output, no bar")
    ap.add_argument("--distributed", action="store_true",
                    help="data-parallel over the processes of an MPI launch (automatic "
                         "under mpiexec)")
    args = ap.parse_args(argv)
    if args.epochs < 1:
        ap.error("--epochs must be at least 1")
    for flag in ("limit_train", "limit_test"):
        if getattr(args, flag) is not None and getattr(args, flag) < 1:
            ap.error(f"--{flag.replace('_', '-')} must be a positive number of images")

    dist.initialize("mpi" if args.distributed else None)
    world, rank = funcgrad.process_count(), funcgrad.process_index()
    if world > 1 and args.batch_size % world:
        raise SystemExit(f"--batch-size {args.batch_size} must be a multiple of the {world} "
                         "processes")
    log = dist.print0                                       # process 0 logs

    dataset_cls = nn.datasets.FashionMNIST if args.fashion else nn.datasets.MNIST
    name = dataset_cls.__name__
    try:
        # (with several processes, process 0 downloads and the others read after it)
        if rank > 0 and args.download:
            dist.barrier()
        train_set = load_split(dataset_cls, args.root, True, args.download and rank == 0,
                               args.limit_train)
        test_set = load_split(dataset_cls, args.root, False, False, args.limit_test)
        if rank == 0 and args.download and world > 1:
            dist.barrier()
    except (OSError, ValueError) as e:   # missing/corrupt files, failed download
        print(f"error: {e}", file=sys.stderr)
        if isinstance(e, FileNotFoundError) and not args.download:
            print("(or run this script with --download)", file=sys.stderr)
        raise SystemExit(1) from None
    if rank == 0:
        os.makedirs(args.out, exist_ok=True)
    if world > 1:
        # rank r reads every world-th index of the epoch's order: the ranks' local
        # batches k together are the single-process batch k
        sampler = nn.data.DistributedSampler(train_set, shuffle=True, seed=args.seed)
        train_loader = nn.data.DataLoader(train_set, batch_size=args.batch_size // world,
                                          sampler=sampler, seed=args.seed)
    else:
        train_loader = nn.data.DataLoader(train_set, batch_size=args.batch_size,
                                          shuffle=True, seed=args.seed)
    test_loader = nn.data.DataLoader(test_set, batch_size=500)
    log(f"{name}: {len(train_set)} training and {len(test_set)} test images of 28x28"
        + (f"; data-parallel over {world} processes" if world > 1 else ""))

    model = make_model()
    params = model.init(fr.key(args.seed))
    if rank == 0:
        nn.summary(model, params, (1, 1, 28, 28))
    tx = optim.adam(args.lr)
    opt_state = tx.init(params)

    train_step = make_train_step(model, tx, world)
    predict = funcgrad.jit(model)

    history = {"train/loss": [], "test/loss": [], "test/accuracy": []}
    t0 = time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        running = []
        t_epoch = time.perf_counter()
        bar = nn.training.progress(train_loader, desc=f"epoch {epoch:2d}/{args.epochs}",
                                   disable=args.no_progress or rank > 0)
        for x, y in bar:
            params, opt_state, loss = train_step(params, opt_state, x, y)
            running.append(float(loss))
        t_epoch = time.perf_counter() - t_epoch
        test_loss, test_acc = evaluate(predict, params, test_loader)
        history["train/loss"].append((epoch, float(np.mean(running))))   # (x, y) points
        history["test/loss"].append((epoch, test_loss))
        history["test/accuracy"].append((epoch, test_acc))
        log(f"epoch {epoch:2d}: train loss {np.mean(running):.4f}  test loss "
              f"{test_loss:.4f}  test accuracy {test_acc:.2%}  ({t_epoch:.1f} s training)")
    elapsed = time.perf_counter() - t0

    # Checkpoint: save everything, reload it against a template, and check it round-trips.
    stem = "fashion_mnist" if args.fashion else "mnist"
    ckpt = os.path.join(args.out, f"{stem}_cnn.fgck")
    nn.save({"params": params, "opt_state": opt_state, "epoch": args.epochs}, ckpt)
    dist.barrier()                         # process 0 wrote it; the others read it after
    restored = nn.load(ckpt, like={"params": params, "opt_state": opt_state, "epoch": 0})
    _, restored_acc = evaluate(predict, restored["params"], test_loader)
    assert restored_acc == test_acc, "the reloaded checkpoint must give the same accuracy"
    log(f"checkpoint saved to {ckpt} and reloaded (accuracy {restored_acc:.2%})")
    try:
        if rank > 0:
            raise ImportError("curves are plotted by process 0")
        png = nn.training.plot_curves(history, os.path.join(args.out, f"{stem}_curves.png"),
                                      title=f"CNN on {name}", xlabel="epoch")
        log(f"curves saved to {png}")
    except ImportError as e:
        log(f"(curves not plotted: {e})")
    log(f"test accuracy: {test_acc:.2%} after {args.epochs} epochs in {elapsed:.1f} s")
    return test_acc


if __name__ == "__main__":
    # A script's own process: let glibc keep freed memory, so the fresh activation arrays
    # of every step stop page-faulting (about 2x faster steps at this size; see
    # funcgrad.config and benchmarks/RESULTS.md, W5).
    funcgrad.config.update("keep_freed_memory", True)
    main()

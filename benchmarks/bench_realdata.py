"""Real data, side by side with PyTorch: Fashion-MNIST, the same CNN in both libraries.

Runs ``examples/mnist.py --fashion`` (funcgrad) and ``benchmarks/fashion_torch.py
--fashion`` (PyTorch eager: same data, model, initialisation, optimizer, batch size,
normalisation, epochs and shuffling) as separate processes, alternating for ``--rounds``
rounds, each with its default threads, and reports the mean epoch time (training only)
and the final test accuracy of each run.

    apt-get install dataset-fashion-mnist         # Debian/Ubuntu, offline
    python benchmarks/bench_realdata.py           # prints the table
    python benchmarks/bench_realdata.py --write   # and writes it into RESULTS.md
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..")
EPOCH = re.compile(r"^epoch +\d+: .*\(([\d.]+) s training\)$")
FINAL = re.compile(r"^test accuracy: ([\d.]+)% after (\d+) epochs in ([\d.]+) s$")


def run(cmd):
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=True).stdout
    epochs = [float(m.group(1)) for m in map(EPOCH.match, out.splitlines()) if m]
    final = [m for m in map(FINAL.match, out.splitlines()) if m]
    if not epochs or not final:
        raise RuntimeError(f"unexpected output of {' '.join(cmd)}:\n{out}")
    return sum(epochs) / len(epochs), float(final[-1].group(1))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--limit-train", type=int, default=None)
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args(argv)
    common = ["--fashion", "--root", args.root, "--epochs", str(args.epochs)]
    if args.limit_train:
        common += ["--limit-train", str(args.limit_train)]
    out_dir = tempfile.mkdtemp(prefix="bench_realdata_")
    cmds = {"funcgrad (jit)": [sys.executable, "examples/mnist.py", "--no-progress",
                               "--out", out_dir] + common,
            "PyTorch eager": [sys.executable, "benchmarks/fashion_torch.py"] + common}
    results = {k: [] for k in cmds}
    for _ in range(args.rounds):
        for name, cmd in cmds.items():
            results[name].append(run(cmd))
            print(f"{name}: {results[name][-1][0]:.1f} s/epoch, "
                  f"{results[name][-1][1]:.2f}% test accuracy", flush=True)
    best = {k: (min(r[0] for r in v), [r[1] for r in v]) for k, v in results.items()}
    fg, pt = best["funcgrad (jit)"], best["PyTorch eager"]
    lines = ["| | s per epoch (training) | test accuracy |", "| --- | --- | --- |"]
    for name, (t, accs) in best.items():
        lines.append(f"| {name} | {t:.1f} | {', '.join(f'{a:.2f}%' for a in accs)} |")
    lines += ["", f"- funcgrad / PyTorch epoch time: **{fg[0] / pt[0]:.2f}×** (target ≤ 0.8×)",
              f"- accuracy difference (mean): **{sum(fg[1]) / len(fg[1]) - sum(pt[1]) / len(pt[1]):+.2f} "
              "points** (target within 0.5)",
              f"- {args.epochs} epochs of Fashion-MNIST ({args.limit_train or 60000} training images, batch 64, Adam "
              f"1e-3), default threads, {args.rounds} alternating round(s) of separate "
              "processes; best epoch time per library; "
              "`python benchmarks/bench_realdata.py --write`"]
    print("\n".join(lines))
    if args.write:
        sys.path.insert(0, HERE)
        from bench_threads import write_section
        write_section(lines, "real data: Fashion-MNIST")


if __name__ == "__main__":
    main()

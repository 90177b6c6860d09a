"""Real data, side by side with PyTorch: the same models, data and optimizers in both.

- **Fashion-MNIST**: ``examples/mnist.py --fashion`` (funcgrad, jit) against
  ``benchmarks/fashion_torch.py --fashion`` (PyTorch eager: same data, model,
  initialisation, optimizer, batch size, normalisation, epochs and shuffling); the mean
  epoch time (training only) and the final test accuracy of each run.
- **Character LM**: ``examples/char_lm.py`` against ``benchmarks/char_lm_torch.py`` (an
  LSTM on ``/usr/share/dict/words``, the same split, batches and steps); time per step
  and the final validation bits per character.

Each pair runs as separate processes, alternating for ``--rounds`` rounds, each library
with its default threads (Fashion-MNIST: both under the glibc allocator thresholds
``examples/mnist.py`` sets). Round ``k`` runs both libraries with ``--seed k`` (initialisation,
shuffling and, for the LM, the word split): one seed's accuracy differs between libraries
by the luck of the draw (Fashion-MNIST: up to 0.8 points), so the quality figures compare
means over the same seeds.

    apt-get install dataset-fashion-mnist wamerican   # Debian/Ubuntu, offline
    python benchmarks/bench_realdata.py               # prints the tables
    python benchmarks/bench_realdata.py --write       # and writes them into RESULTS.md

``--mpi N`` adds a third Fashion-MNIST row: the same example launched data-parallel with
``mpiexec -n N`` (N processes sharing the machine's cores; the global batch stays 64). It
is another way to run funcgrad, reported beside the target's figure (one process each),
not in its place.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..")
EPOCH = re.compile(r"^epoch +\d+: .*\(([\d.]+) s training\)$")
FINAL = re.compile(r"^test accuracy: ([\d.]+)% after (\d+) epochs in ([\d.]+) s$")
LM_FINAL = re.compile(r"^validation bits per character: ([\d.]+) after (\d+) steps in "
                      r"([\d.]+) s \(([\d.]+) ms/step\)$")


# the scripts import this checkout's funcgrad, not whichever one is installed
_ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(
    [ROOT] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])}


def run_lm(cmd):
    """(ms per step, validation bits per character) of a char_lm run."""
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=True,
                         env=_ENV).stdout
    final = [m for m in map(LM_FINAL.match, out.splitlines()) if m]
    if not final:
        raise RuntimeError(f"unexpected output of {' '.join(cmd)}:\n{out}")
    return float(final[-1].group(4)), float(final[-1].group(1))


def run(cmd):
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=True,
                         env=_ENV).stdout
    epochs = [float(m.group(1)) for m in map(EPOCH.match, out.splitlines()) if m]
    final = [m for m in map(FINAL.match, out.splitlines()) if m]
    if not epochs or not final:
        raise RuntimeError(f"unexpected output of {' '.join(cmd)}:\n{out}")
    return sum(epochs) / len(epochs), float(final[-1].group(1))


def alternate(cmds, rounds, runner, unit):
    results = {k: [] for k in cmds}
    for seed in range(rounds):
        for name, cmd in cmds.items():
            results[name].append(runner(cmd + ["--seed", str(seed)]))
            print(f"{name}: {results[name][-1][0]:.2f} {unit}, {results[name][-1][1]:.3f}",
                  flush=True)
    return {k: (min(r[0] for r in v), [r[1] for r in v]) for k, v in results.items()}


def table(best, time_head, quality_head, time_fmt, quality_fmt, unit=""):
    """Markdown rows: each library's best time and the quality figure of every run."""
    lines = [f"| | {time_head} | {quality_head} |", "| --- | --- | --- |"]
    for name, (t, qs) in best.items():
        quality = ", ".join(format(q, quality_fmt) + unit for q in qs)
        lines.append(f"| {name} | {t:{time_fmt}} | {quality} |")
    return lines


def fashion(args, out_dir):
    common = ["--fashion", "--root", args.root, "--epochs", str(args.epochs)]
    if args.limit_train:
        common += ["--limit-train", str(args.limit_train)]
    cmds = {"funcgrad (jit)": [sys.executable, "examples/mnist.py", "--no-progress",
                               "--out", out_dir] + common,
            "PyTorch eager": [sys.executable, "benchmarks/fashion_torch.py"] + common}
    mpi = f"funcgrad (jit, mpiexec -n {args.mpi})"
    if args.mpi:
        launcher = shutil.which("mpiexec") or shutil.which("mpirun")
        if launcher is None:
            raise SystemExit("--mpi needs an MPI launcher: pip install mpi4py mpich")
        cmds[mpi] = [launcher, "-n", str(args.mpi)] + cmds["funcgrad (jit)"]
    best = alternate(cmds, args.rounds, run, "s/epoch")
    fg, pt = best["funcgrad (jit)"], best["PyTorch eager"]
    extra = [] if not args.mpi else [
        f"- {mpi} / PyTorch epoch time: **{best[mpi][0] / pt[0]:.2f}×**, accuracy difference "
        f"(mean) {np.mean(best[mpi][1]) - np.mean(pt[1]):+.2f} points: data-parallel over "
        f"{args.mpi} processes of one machine (not the target's configuration, which runs "
        "one process of each library)"]
    return table(best, "s per epoch (training)", "test accuracy", ".1f", ".2f", "%") + [
        "", f"- funcgrad / PyTorch epoch time: **{fg[0] / pt[0]:.2f}×** (target ≤ 0.8×)",
        f"- accuracy difference (mean): **{np.mean(fg[1]) - np.mean(pt[1]):+.2f} points** "
        "(target within 0.5)",
        f"- {args.epochs} epochs of Fashion-MNIST ({args.limit_train or 60000} training "
        "images, batch 64, Adam 1e-3), default threads, the same glibc allocator "
        "thresholds in both (funcgrad.config keep_freed_memory), "
        f"{args.rounds} alternating round(s) of separate processes (round k: seed k in "
        "both); best epoch time per library; `python benchmarks/bench_realdata.py --write`"
        + (f" (`--mpi {args.mpi}`)" if args.mpi else "")] + extra


def char_lm(args):
    common = ["--words", args.words, "--steps", str(args.steps), "--eval-every",
              str(args.steps)]
    best = alternate({"funcgrad (jit)": [sys.executable, "examples/char_lm.py"] + common,
                      "PyTorch eager": [sys.executable, "benchmarks/char_lm_torch.py"] + common},
                     args.rounds, run_lm, "ms/step")
    fg, pt = best["funcgrad (jit)"], best["PyTorch eager"]
    return table(best, "ms per step", "validation bits per character", ".2f", ".3f") + [
        "", f"- funcgrad / PyTorch time per step: **{fg[0] / pt[0]:.2f}×** (target ≤ 0.8×)",
        f"- bits per character difference (mean): **{np.mean(fg[1]) - np.mean(pt[1]):+.3f}** "
        "(target within 0.05)",
        f"- LSTM (hidden 128) on {args.words}, {args.steps} steps of 64 words, Adam 3e-3, "
        f"default threads, {args.rounds} alternating round(s) (round k: seed k in both); "
        "best time per library; "
        "`python benchmarks/bench_realdata.py --write`"]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", choices=["fashion", "char_lm"], default=None)
    ap.add_argument("--root", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--limit-train", type=int, default=None)
    ap.add_argument("--words", default="/usr/share/dict/words")
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=3,
                    help="alternating rounds; round k uses seed k in both libraries")
    ap.add_argument("--write", action="store_true")
    ap.add_argument("--mpi", type=int, default=0, metavar="N",
                    help="also run the Fashion-MNIST example data-parallel with mpiexec -n N")
    args = ap.parse_args(argv)
    sections = {}
    if args.only in (None, "fashion"):
        sections["real data: Fashion-MNIST"] = fashion(args, tempfile.mkdtemp(prefix="bench_"))
    if args.only in (None, "char_lm"):
        sections["real data: character LM"] = char_lm(args)
    sys.path.insert(0, HERE)
    from results_md import write_section
    for title, lines in sections.items():
        print(f"## {title}\n\n" + "\n".join(lines))
        if args.write:
            write_section(lines, title)


if __name__ == "__main__":
    main()

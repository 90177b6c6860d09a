"""Smoke tests of the real-data comparison: examples/mnist.py --fashion on a flat root
(Debian's dataset-fashion-mnist layout) and benchmarks/fashion_torch.py print the lines
that benchmarks/bench_realdata.py reads, on small files written here."""
import importlib.util
import os
import sys

import numpy as np
import pytest

from tests.examples.test_mnist_example import ROOT, squares, write_idx


def load(path, name):
    spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, path))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture
def flat_fashion(tmp_path):
    root = tmp_path / "fashion-mnist"
    root.mkdir()
    rng = np.random.default_rng(1)
    for prefix, n in (("train", 320), ("t10k", 100)):
        images, labels = squares(n, rng)
        write_idx(str(root / f"{prefix}-images-idx3-ubyte.gz"), images)
        write_idx(str(root / f"{prefix}-labels-idx1-ubyte.gz"), labels)
    return root


def test_both_scripts_print_what_the_comparison_reads(flat_fashion, tmp_path):
    bench = load("benchmarks/bench_realdata.py", "bench_realdata")
    args = ["--fashion", "--root", str(flat_fashion), "--epochs", "2", "--lr", "3e-3"]
    epoch, acc = bench.run([sys.executable, "examples/mnist.py", "--no-progress",
                            "--out", str(tmp_path / "out")] + args)
    assert epoch > 0 and acc >= 80.0                    # chance is 10%
    if importlib.util.find_spec("torch") is None:
        pytest.skip("torch is not installed: the PyTorch side is not run")
    epoch, acc = bench.run([sys.executable, "benchmarks/fashion_torch.py"] + args)
    assert epoch > 0 and acc >= 80.0

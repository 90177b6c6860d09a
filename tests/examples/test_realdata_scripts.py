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
    assert epoch >= 0 and acc >= 80.0                    # chance is 10%
    if importlib.util.find_spec("torch") is None:
        pytest.skip("torch is not installed: the PyTorch side is not run")
    epoch, acc = bench.run([sys.executable, "benchmarks/fashion_torch.py"] + args)
    assert epoch >= 0 and acc >= 80.0


def test_char_lm_scripts_learn_and_print_what_the_comparison_reads(tmp_path):
    bench = load("benchmarks/bench_realdata.py", "bench_realdata")
    words = tmp_path / "words"
    rng = np.random.default_rng(0)
    # consonant-vowel words over 5 letters: the pattern is worth learning (uniform over the
    # 8 tokens is 3 bits per character; knowing the pattern, under 2)
    made = {"".join(rng.choice(list("bdk" if i % 2 == 0 else "ao")) for i in range(n))
            for n in rng.integers(2, 9, 600)}
    words.write_text("\n".join(sorted(made)) + "\n")
    args = ["--words", str(words), "--steps", "60", "--eval-every", "30",
            "--batch-size", "16", "--hidden", "16", "--lr", "1e-2"]
    ms, bpc = bench.run_lm([sys.executable, "examples/char_lm.py"] + args)
    assert ms > 0 and bpc < 2.0
    if importlib.util.find_spec("torch") is None:
        pytest.skip("torch is not installed: the PyTorch side is not run")
    ms, bpc_torch = bench.run_lm([sys.executable, "benchmarks/char_lm_torch.py"] + args)
    assert ms > 0 and bpc_torch < 2.0


def test_lm_floor_numpy_step_is_the_same_step(tmp_path):
    """bench_lm_floor.py's hand-written NumPy step computes the char LM's loss and
    gradients (its check passes), the check catches a wrong gradient, and its Adam step
    lowers the loss."""
    floor = load("benchmarks/bench_lm_floor.py", "bench_lm_floor")
    char_lm = sys.modules["char_lm"]
    import funcgrad.random as fr
    rng = np.random.default_rng(0)
    words = ["".join(rng.choice(list("bdkao"), rng.integers(2, 7))) for _ in range(200)]
    path = tmp_path / "words"
    path.write_text("\n".join(words) + "\n")
    train, _ = char_lm.load_words(str(path), 0)
    model = char_lm.CharLM(train.vocab, 16)
    params = model.init(fr.key(0))
    ids, tgt = train.inputs[:8], train.targets[:8]
    floor.check_gradients(model, params, ids, tgt)

    class Wrong(floor.NumpyStep):
        def grads(self, ids, tgt):
            loss, g = super().grads(ids, tgt)
            g["lstm"]["weight_hh_l0"] = g["lstm"]["weight_hh_l0"] * 1.01
            return loss, g

    original = floor.NumpyStep
    floor.NumpyStep = Wrong
    try:
        with pytest.raises(AssertionError, match="lstm.weight_hh_l0"):
            floor.check_gradients(model, params, ids, tgt)
    finally:
        floor.NumpyStep = original
    step = floor.NumpyStep(params)
    first = step(ids, tgt)
    for _ in range(20):
        last = step(ids, tgt)
    assert last < first - 0.1

"""Smoke tests of the real-data comparison: examples/mnist.py --fashion on a flat root
(Debian's dataset-fashion-mnist layout) and benchmarks/fashion_torch.py print the lines
that benchmarks/bench_realdata.py reads, on small files written here."""
import importlib.util
import os
import subprocess
import sys
import threading

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


def _char_lm():
    return load("examples/char_lm.py", "char_lm")


def _write_words(path, n, seed=0):
    rng = np.random.default_rng(seed)
    words = set()
    while len(words) < n:
        words.add("".join(rng.choice(list("bdkaoeiu"), rng.integers(2, 9))))
    path.write_text("\n".join(sorted(words)) + "\n")
    return words


def test_char_lm_split_is_held_out_and_drawn_by_the_seed(tmp_path):
    char_lm = _char_lm()
    path = tmp_path / "words"
    words = _write_words(path, 300)
    splits = {}
    for seed in (0, 1):
        train, val = char_lm.load_words(str(path), seed)
        tr = {train.decode(r) for r in train.inputs}
        va = {val.decode(r) for r in val.inputs}
        assert len(va) == 30 and len(tr) == 270           # 10% held out
        assert not tr & va and tr | va == words           # disjoint, every word used
        splits[seed] = va
    again = _char_lm().load_words(str(path), 0)[1]
    assert {again.decode(r) for r in again.inputs} == splits[0]     # seed reproduces
    assert splits[0] != splits[1]                                   # seed changes it


def test_char_lm_batches_larger_than_the_training_set_fail_instead_of_hanging(tmp_path):
    """Fewer training words than a batch made no full batch: batches() looped forever."""
    char_lm = _char_lm()
    result = {}

    def call():
        try:
            char_lm.batches(20, 64, 5, 0)
        except ValueError as e:
            result["error"] = str(e)

    t = threading.Thread(target=call, daemon=True)
    t.start()
    t.join(10)
    assert not t.is_alive(), "batches(20, 64, ...) did not return"
    assert "64" in result["error"] and "20" in result["error"]
    assert [len(b) for b in char_lm.batches(20, 20, 3, 0)] == [20, 20, 20]

    path = tmp_path / "words"
    _write_words(path, 40)                               # 36 training words
    scripts = ["examples/char_lm.py"]
    if importlib.util.find_spec("torch") is not None:
        scripts.append("benchmarks/char_lm_torch.py")
    for script in scripts:
        p = subprocess.run([sys.executable, script, "--words", str(path), "--steps", "3"],
                           cwd=ROOT, capture_output=True, text=True, timeout=300,
                           env={**os.environ, "PYTHONPATH": ROOT})
        assert p.returncode == 1, (script, p.stdout, p.stderr)
        assert "--batch-size 64 is more than the 36 training words" in p.stderr, script


@pytest.mark.parametrize("bad", [["--eval-every", "0"], ["--steps", "0"],
                                 ["--batch-size", "0"], ["--limit", "0"]])
def test_char_lm_rejects_non_positive_counts(tmp_path, bad, capsys):
    with pytest.raises(SystemExit) as e:
        _char_lm().main(["--words", str(tmp_path / "absent")] + bad)
    assert e.value.code == 2
    assert f"{bad[0]} must be at least 1" in capsys.readouterr().err


def test_char_lm_missing_or_short_word_list_says_what_to_do(tmp_path):
    char_lm = _char_lm()
    with pytest.raises(SystemExit, match="apt-get install wamerican"):
        char_lm.load_words(str(tmp_path / "absent"), 0)
    path = tmp_path / "words"
    _write_words(path, 100)
    with pytest.raises(SystemExit, match="10 usable words .--limit 10.; need at least 20"):
        char_lm.load_words(str(path), 0, limit=10)


def test_fashion_torch_rejects_bad_arguments_and_missing_files_like_the_example(tmp_path):
    if importlib.util.find_spec("torch") is None:
        pytest.skip("torch is not installed")
    p = subprocess.run([sys.executable, "benchmarks/fashion_torch.py", "--fashion",
                        "--root", str(tmp_path)], cwd=ROOT, capture_output=True,
                       text=True, timeout=300, env={**os.environ, "PYTHONPATH": ROOT})
    assert p.returncode == 1 and "Traceback" not in p.stderr
    assert os.path.join(str(tmp_path), "train-images-idx3-ubyte.gz") in p.stderr
    mod = load("benchmarks/fashion_torch.py", "fashion_torch")
    with pytest.raises(SystemExit) as e:
        mod.main(["--epochs", "0"])
    assert e.value.code == 2


def test_char_lm_scripts_print_the_same_lines(tmp_path):
    """Both char LM scripts print the per-evaluation lines, the sampled words, then the
    final line bench_realdata.py reads (char_lm_torch.py did not sample)."""
    if importlib.util.find_spec("torch") is None:
        pytest.skip("torch is not installed")
    path = tmp_path / "words"
    _write_words(path, 60)
    args = ["--words", str(path), "--steps", "4", "--eval-every", "2", "--batch-size", "8",
            "--hidden", "8"]
    kinds = {}
    for script in ("examples/char_lm.py", "benchmarks/char_lm_torch.py"):
        p = subprocess.run([sys.executable, script] + args, cwd=ROOT, capture_output=True,
                           text=True, timeout=300, env={**os.environ, "PYTHONPATH": ROOT})
        assert p.returncode == 0, p.stderr
        lines = p.stdout.splitlines()
        kinds[script] = [line.split()[0] for line in lines[1:]]
        assert lines[-2].startswith("sampled words: ")
        assert load("benchmarks/bench_realdata.py", "b").LM_FINAL.match(lines[-1])
    assert kinds["examples/char_lm.py"] == kinds["benchmarks/char_lm_torch.py"] == \
        ["step", "step", "sampled", "validation"]

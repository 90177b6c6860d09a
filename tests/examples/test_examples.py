"""Smoke runs of the examples (each must run in well under two minutes on 2 cores)."""
import importlib.util
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def load(name):
    path = os.path.join(ROOT, "examples", f"{name}.py")
    spec = importlib.util.spec_from_file_location(f"example_{name}", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_quickstart_prints_the_lecture_numbers(capsys):
    load("quickstart").main()
    out = capsys.readouterr().out
    assert "f(2, 5) = 11.652, df/dx1 = 5.500" in out
    assert "[[0.25 0.25]" in out


def test_per_example_gradients(capsys):
    load("per_example_gradients").main()
    assert "gradient of the mean loss: ok" in capsys.readouterr().out


def test_computation_graph(tmp_path, capsys):
    load("computation_graph").main(str(tmp_path))
    out = capsys.readouterr().out
    assert "graph of grad(f)" in out and "cos" in out
    dot = (tmp_path / "grad_f.dot").read_text()
    assert "shape=box" in dot and "shape=ellipse" in dot


def test_train_digits_reaches_97_percent(tmp_path):
    pytest.importorskip("sklearn", reason="the Digits set comes from scikit-learn")
    acc = load("train_digits").main(["--no-progress", "--out", str(tmp_path)])
    assert acc >= 0.97
    assert (tmp_path / "digits_cnn.fgck").exists()

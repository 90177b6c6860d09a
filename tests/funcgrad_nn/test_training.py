"""funcgrad_nn.training: progress bars, metrics logging, curve plots, running metrics."""
import builtins
import io
import json
import math

import numpy as np
import pytest

from funcgrad_nn import training
from funcgrad_nn.training import Accuracy, MetricsLogger, RunningMean, plot_curves, progress


def test_progress_with_tqdm():
    pytest.importorskip("tqdm", reason="tqdm not installed")
    out = io.StringIO()
    bar = progress(range(7), desc="train", file=out, mininterval=0)
    assert list(bar) == list(range(7))
    assert "train" in out.getvalue() and "7/7" in out.getvalue()
    assert list(progress(iter("abc"), disable=True)) == ["a", "b", "c"]


def test_progress_plain_fallback(monkeypatch):
    monkeypatch.setattr(training, "_import_tqdm", lambda: None)
    out = io.StringIO()
    bar = progress(range(4), desc="epoch 1", file=out, mininterval=0)
    assert len(bar) == 4
    seen = []
    for i in bar:
        seen.append(i)
        bar.set_postfix(loss=0.5 / (i + 1))
    text = out.getvalue()
    assert seen == [0, 1, 2, 3]
    last = text.rstrip("\n").split("\r")[-1]
    assert last.startswith("epoch 1: 100%|" + "#" * 30 + "| 4/4")
    assert "loss=0.125" in last and text.endswith("\n")

    out = io.StringIO()
    assert list(progress((x for x in "ab"), file=out, mininterval=0)) == ["a", "b"]
    assert "2it" in out.getvalue()
    out = io.StringIO()
    assert list(progress(range(3), file=out, disable=True)) == [0, 1, 2]
    assert out.getvalue() == ""
    out = io.StringIO()
    with progress(total=10, file=out, mininterval=0) as manual:
        manual.update(4)
    assert "40%" in out.getvalue()


def test_metrics_logger_writes_json_lines(tmp_path):
    with MetricsLogger(tmp_path / "run", tensorboard=False) as log:
        assert not log.tensorboard
        log.log(0, {"train/loss": np.float32(2.5)}, lr=1e-3)
        log.log(10, {"train/loss": np.array(1.25), "val/acc": np.array([0.5])})
        log.log(20, {"train/loss": float("nan")})
        with pytest.raises(ValueError, match=r"shape \(2,\)"):
            log.log(30, {"bad": np.zeros(2)})
        with pytest.raises(TypeError, match="real scalars"):
            log.log(30, {"bad": "x"})
        with pytest.raises(ValueError, match="reserved"):
            log.log(30, {"step": 1})
        assert log.history["train/loss"][:2] == [(0, 2.5), (10, 1.25)]
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 3
    first = json.loads(lines[0])
    assert first["step"] == 0 and first["train/loss"] == 2.5 and first["lr"] == 1e-3
    assert isinstance(first["time"], float)
    hist = MetricsLogger.read(tmp_path / "run")
    assert hist["val/acc"] == [(10, 0.5)] and math.isnan(hist["train/loss"][2][1])
    with pytest.raises(ValueError, match="closed"):
        log.log(40, x=1.0)
    # a second logger appends to the same file
    with MetricsLogger(tmp_path / "run", tensorboard=False) as log2:
        log2.log(40, x=1.0)
    assert len((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()) == 4


def test_metrics_logger_tensorboard_optional(tmp_path, monkeypatch):
    monkeypatch.setattr(training, "_tensorboard_writer_class", lambda: None)
    log = MetricsLogger(tmp_path)
    assert not log.tensorboard
    log.close()
    with pytest.raises(ImportError, match="tensorboardX"):
        MetricsLogger(tmp_path, tensorboard=True)

    calls = []

    class FakeWriter:
        def __init__(self, logdir):
            calls.append(("init", str(logdir)))

        def add_scalar(self, tag, value, step):
            calls.append((tag, value, step))

        def close(self):
            calls.append("close")

    monkeypatch.setattr(training, "_tensorboard_writer_class", lambda: FakeWriter)
    with MetricsLogger(tmp_path) as log:
        assert log.tensorboard
        log.log(3, loss=0.5)
    assert calls == [("init", str(tmp_path)), ("loss", 0.5, 3), "close"]


def test_plot_curves(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib", reason="matplotlib not installed")
    history = {"train/loss": [(0, 2.0), (10, 1.0), (20, 0.5)], "val/loss": [(10, 1.2)],
               "train/accuracy": [0.1, 0.5, 0.8]}
    path = plot_curves(history, tmp_path / "curves.png", title="run")
    data = (tmp_path / "curves.png").read_bytes()
    assert path == str(tmp_path / "curves.png") and data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 1000
    with pytest.raises(ValueError, match="empty"):
        plot_curves({}, tmp_path / "x.png")
    with pytest.raises(TypeError, match="history\\['x'\\]"):
        plot_curves({"x": ["a"]}, tmp_path / "x.png")

    real = builtins.__import__

    def no_mpl(name, *a, **k):
        if name.startswith("matplotlib"):
            raise ImportError("No module named 'matplotlib'")
        return real(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_mpl)
    with pytest.raises(ImportError, match="pip install matplotlib"):
        plot_curves(history, tmp_path / "y.png")


def test_running_metrics():
    acc = Accuracy()
    assert math.isnan(acc.value)
    acc.update(np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]]), np.array([1, 0, 0]))
    acc.update(np.array([2, 2]), np.array([2, 1]))
    assert acc.correct == 3 and acc.count == 5 and acc.value == 0.6
    with pytest.raises(ValueError, match="do not match"):
        acc.update(np.zeros((3, 2)), np.zeros(4, int))
    m = RunningMean()
    for v in (1.0, np.float32(2.0), np.array(3.0)):
        m.update(v)
    m.update(10.0, weight=0)
    assert m.value == 2.0
    m.reset()
    assert math.isnan(m.value)

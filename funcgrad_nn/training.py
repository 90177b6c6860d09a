"""Training-loop tooling: a progress bar, a metrics logger, curve plots, running metrics.

Everything optional stays optional: :func:`progress` uses tqdm when it is installed and a
plain text bar otherwise; :class:`MetricsLogger` always writes JSON lines and also
TensorBoard scalars when tensorboardX (or PyTorch's ``torch.utils.tensorboard`` with the
``tensorboard`` package) is installed; :func:`plot_curves` needs matplotlib.

    >>> acc = Accuracy()
    >>> acc.update(np.array([[0.1, 0.9], [0.8, 0.2]]), np.array([1, 1]))
    >>> acc.value
    0.5
"""
from __future__ import annotations

import importlib.util
import json
import math
import numbers
import os
import sys
import time
import warnings
from typing import Iterable, Mapping

import numpy as np

import funcgrad
from funcgrad.errors import FuncgradTypeError, FuncgradValueError

__all__ = ["Accuracy", "MetricsLogger", "RunningMean", "plot_curves", "progress"]


# ---- progress bar -------------------------------------------------------------------
def _import_tqdm():
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm


class _PlainProgress:
    """A minimal tqdm stand-in: ``desc: 40%|########            | 4/10 [00:02, 2.0it/s]``.

    Supports iteration, ``len``, ``update``, ``set_postfix``, ``close`` and use as a
    context manager. Redraws at most every ``mininterval`` seconds.
    """

    def __init__(self, iterable=None, total=None, desc=None, disable=False, file=None,
                 mininterval=0.1, width=30):
        if total is None and iterable is not None:
            try:
                total = len(iterable)
            except TypeError:
                total = None
        self.iterable, self.total, self.desc = iterable, total, desc
        self.disable, self.file = disable, file
        self.mininterval, self.width = mininterval, width
        self.n, self.postfix = 0, ""
        self._start = self._last = time.monotonic()
        self._closed = False

    def __len__(self):
        if self.total is None:
            raise TypeError("progress: length unknown (pass total=)")
        return self.total

    def __iter__(self):
        if self.iterable is None:
            raise TypeError("progress: nothing to iterate (pass an iterable)")
        try:
            for x in self.iterable:
                yield x
                self.update(1)
        finally:
            self.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def set_postfix(self, ordered_dict=None, refresh=True, **kwargs):
        items = dict(ordered_dict or {}, **kwargs)
        self.postfix = ", ".join(
            f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in items.items())
        if refresh:
            self._draw()

    def set_description(self, desc=None, refresh=True):
        self.desc = desc
        if refresh:
            self._draw()

    def update(self, n=1):
        self.n += n
        now = time.monotonic()
        if now - self._last >= self.mininterval or (self.total is not None and
                                                    self.n >= self.total):
            self._last = now
            self._draw()

    def format(self):
        elapsed = time.monotonic() - self._start
        rate = self.n / elapsed if elapsed > 0 else 0.0
        mins, secs = divmod(int(elapsed), 60)
        prefix = f"{self.desc}: " if self.desc else ""
        if self.total:
            frac = min(self.n / self.total, 1.0)
            filled = int(frac * self.width)
            line = (f"{prefix}{frac:4.0%}|{'#' * filled}{' ' * (self.width - filled)}| "
                    f"{self.n}/{self.total}")
        else:
            line = f"{prefix}{self.n}it"
        line += f" [{mins:02d}:{secs:02d}, {rate:.1f}it/s]"
        return line + (f" {self.postfix}" if self.postfix else "")

    def _draw(self, end=""):
        if self.disable:
            return
        f = self.file if self.file is not None else sys.stderr
        f.write("\r" + self.format() + end)
        f.flush()

    def close(self):
        if not self._closed:
            self._closed = True
            self._draw(end="\n")


def progress(iterable: Iterable | None = None, total: int | None = None,
             desc: str | None = None, disable: bool = False, **kwargs):
    """Wrap ``iterable`` in a progress bar: ``tqdm`` when installed, else a plain bar
    written to stderr.

    Args:
      total: the number of items when ``len(iterable)`` is unknown.
      desc: a label in front of the bar.
      disable: no output at all (e.g. in tests); in a job of several processes the bar
        is shown on process 0 only.
      **kwargs: passed to tqdm (``leave``, ``file``, ``mininterval``...); the fallback
        understands ``file`` and ``mininterval`` and ignores the rest.

    The result iterates like ``iterable`` and has tqdm's ``set_postfix(loss=...)``,
    ``update(n)`` and ``close()``.
    """
    disable = disable or funcgrad.process_index() != 0
    tqdm = _import_tqdm()
    if tqdm is not None:
        return tqdm(iterable, total=total, desc=desc, disable=disable, **kwargs)
    return _PlainProgress(iterable, total=total, desc=desc, disable=disable,
                          file=kwargs.get("file"), mininterval=kwargs.get("mininterval", 0.1))


# ---- metrics ------------------------------------------------------------------------
def _to_float(v, name):
    if hasattr(v, "get") and type(v).__module__.split(".")[0] == "cupy":
        v = v.get()
    if isinstance(v, np.ndarray):
        if v.size != 1:
            raise FuncgradValueError(
                f"MetricsLogger: metric {name!r} has shape {v.shape}; log scalars (reduce it "
                "with .mean() first)")
        v = v.reshape(())[()]
    if isinstance(v, (numbers.Real, np.generic)) and not isinstance(v, complex):
        return float(v)
    raise FuncgradTypeError(
        f"MetricsLogger: metric {name!r} is a {type(v).__name__}; log real scalars")


def _tensorboard_writer_class():
    """SummaryWriter from tensorboardX or torch.utils.tensorboard, or None. Checks that
    the modules exist before importing them (importing torch is slow)."""
    if importlib.util.find_spec("tensorboardX") is not None:
        try:
            from tensorboardX import SummaryWriter
            return SummaryWriter
        except ImportError:
            pass
    if importlib.util.find_spec("torch") is not None and \
            importlib.util.find_spec("tensorboard") is not None:
        try:
            from torch.utils.tensorboard import SummaryWriter
            return SummaryWriter
        except ImportError:
            pass
    return None


_tensorboard_notice_given = False


def _tensorboard_notice():
    """Say once per process that no TensorBoard files are written, and how to get them
    (or silence this): a missing optional package should not fail silently."""
    global _tensorboard_notice_given
    if _tensorboard_notice_given:
        return
    _tensorboard_notice_given = True
    warnings.warn(
        "MetricsLogger: neither tensorboardX nor torch.utils.tensorboard can be imported, "
        "so no TensorBoard event files are written (metrics.jsonl still is). "
        "pip install tensorboardX (or the examples extra: pip install -e '.[examples]'), "
        "or pass tensorboard=False to skip TensorBoard without this notice.",
        UserWarning, stacklevel=3)


class MetricsLogger:
    """Log scalar metrics to ``logdir/metrics.jsonl`` (one JSON object per call), and to
    TensorBoard when available.

    Args:
      logdir: created if missing; lines are appended to an existing ``metrics.jsonl``.
      tensorboard: None (default) writes TensorBoard event files when tensorboardX or
        torch.utils.tensorboard can be imported, and otherwise warns once per process
        that it writes none; True requires it (``ImportError`` otherwise); False never.

    ``log(step, {"train/loss": 0.3}, lr=1e-3)`` writes
    ``{"step": 0, "time": <unix time>, "train/loss": 0.3, "lr": 0.001}``; values are
    Python/NumPy/CuPy real scalars or one-element arrays (``ValueError`` otherwise);
    NaN and infinities are written as the strings ``"nan"``, ``"inf"``, ``"-inf"``
    (strict JSON has no such numbers).
    Each line is flushed, so the file is complete up to the last call even after a
    crash. :attr:`history` maps each name to its ``[(step, value), ...]``, the format
    :func:`plot_curves` takes; :meth:`read` loads it back from a file. In a job of
    several processes only process 0 writes files; every rank keeps its history.
    """

    filename = "metrics.jsonl"

    def __init__(self, logdir, tensorboard: bool | None = None):
        self.logdir = os.fspath(logdir)
        self.path = os.path.join(self.logdir, self.filename)
        self.history: dict[str, list[tuple[int, float]]] = {}
        self._tb = None
        # In a job of several processes only process 0 writes (the others keep history).
        self._writes = funcgrad.process_index() == 0
        self._file = _Discard() if not self._writes else None
        if not self._writes:
            return
        os.makedirs(self.logdir, exist_ok=True)
        self._file = open(self.path, "a", encoding="utf-8")
        if tensorboard or tensorboard is None:
            writer = _tensorboard_writer_class()
            if writer is None and tensorboard:
                raise ImportError("MetricsLogger(tensorboard=True) needs tensorboardX "
                                  "(pip install tensorboardX) or torch with tensorboard")
            if writer is not None:
                self._tb = writer(self.logdir)
            else:
                _tensorboard_notice()

    @property
    def tensorboard(self) -> bool:
        """Whether TensorBoard event files are being written."""
        return self._tb is not None

    def log(self, step: int, metrics: Mapping | None = None, **scalars):
        """Record the scalars of ``metrics`` and ``scalars`` at ``step``."""
        if self._file is None:
            raise FuncgradValueError("MetricsLogger.log: the logger is closed")
        if isinstance(step, bool) or not isinstance(step, numbers.Integral):
            raise FuncgradTypeError(f"MetricsLogger.log: step must be an int, got {step!r}")
        values = {str(k): _to_float(v, k) for k, v in dict(metrics or {}, **scalars).items()}
        if "step" in values or "time" in values:
            raise FuncgradValueError("MetricsLogger.log: 'step' and 'time' are reserved names")
        record = {"step": int(step), "time": time.time()}
        record.update({k: (v if math.isfinite(v) else repr(v)) for k, v in values.items()})
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()
        for k, v in values.items():
            self.history.setdefault(k, []).append((int(step), v))
            if self._tb is not None:
                self._tb.add_scalar(k, v, int(step))

    @staticmethod
    def read(path) -> dict[str, list[tuple[int, float]]]:
        """The history in a ``metrics.jsonl`` file (or a logdir holding one)."""
        path = os.fspath(path)
        if os.path.isdir(path):
            path = os.path.join(path, MetricsLogger.filename)
        history: dict[str, list[tuple[int, float]]] = {}
        with open(path, encoding="utf-8") as f:
            for line in f:
                if not line.strip():
                    continue
                rec = json.loads(line)
                for k, v in rec.items():
                    if k not in ("step", "time"):
                        history.setdefault(k, []).append((rec["step"], float(v)))
        return history

    def close(self):
        if self._file is not None:
            self._file.close()
            self._file = None
        if self._tb is not None:
            self._tb.close()
            self._tb = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class _Discard:
    """The log file of a process other than 0: accepts lines, writes nothing."""

    def write(self, _):
        pass

    def flush(self):
        pass

    def close(self):
        pass


def _series(name, values):
    values = list(values)
    if values and isinstance(values[0], (tuple, list)) and len(values[0]) == 2:
        return [float(s) for s, _ in values], [float(v) for _, v in values]
    try:
        return list(range(len(values))), [float(v) for v in values]
    except (TypeError, ValueError):
        raise FuncgradTypeError(
            f"plot_curves: history[{name!r}] must be a sequence of numbers or of "
            "(step, value) pairs") from None


def plot_curves(history: Mapping, path, title: str | None = None,
                xlabel: str = "step") -> str:
    """Save loss/accuracy curves from ``history`` as a PNG at ``path``; returns ``path``.

    ``history`` maps names to sequences of values (plotted against their index) or of
    ``(step, value)`` pairs (as in :attr:`MetricsLogger.history`). Curves sharing the last
    ``/``-separated part of their name share a panel, so ``"train/loss"`` and
    ``"val/loss"`` are drawn together, ``"train/accuracy"`` next to them; every panel has
    a legend naming its curves. ``xlabel`` names the horizontal axis (``"epoch"`` when the
    points are epochs). Needs matplotlib
    (``ImportError`` otherwise); draws without pyplot, so no GUI backend or global state
    is touched.
    """
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError("plot_curves needs matplotlib: pip install matplotlib") from None
    if not history:
        raise FuncgradValueError("plot_curves: history is empty")
    panels: dict[str, list[str]] = {}
    for name in history:
        panels.setdefault(str(name).rsplit("/", 1)[-1], []).append(name)
    fig = Figure(figsize=(4.5 * len(panels), 3.5))
    FigureCanvasAgg(fig)
    for i, (panel, names) in enumerate(panels.items()):
        ax = fig.add_subplot(1, len(panels), i + 1)
        for name in names:
            xs, ys = _series(name, history[name])
            ax.plot(xs, ys, label=str(name))
        ax.set_title(panel)
        ax.set_xlabel(xlabel)
        ax.grid(True, alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path = os.fspath(path)
    fig.savefig(path, format="png", dpi=100)
    return path


class RunningMean:
    """A weighted running mean: ``update(value, weight=1)``, then ``value``.

        >>> m = RunningMean(); m.update(1.0); m.update(4.0, weight=2); m.value
        3.0
    """

    def __init__(self):
        self.reset()

    def reset(self):
        self.total, self.weight = 0.0, 0.0

    def update(self, value, weight=1.0):
        self.total += _to_float(value, "value") * float(weight)
        self.weight += float(weight)

    @property
    def value(self) -> float:
        """The mean so far (nan before any update)."""
        return self.total / self.weight if self.weight else float("nan")


class Accuracy:
    """Running classification accuracy.

    ``update(predictions, labels)``: ``predictions`` are scores/logits of shape
    ``(N, C)`` (the argmax over the last axis is the prediction) or predicted labels of
    shape ``(N,)``; ``labels`` are integers of shape ``(N,)``. NumPy or CuPy arrays.
    """

    def __init__(self):
        self.reset()

    def reset(self):
        self.correct, self.count = 0, 0

    def update(self, predictions, labels):
        p, y = _host(predictions), _host(labels)
        if p.ndim == y.ndim + 1:
            p = p.argmax(axis=-1)
        if p.shape != y.shape:
            raise FuncgradValueError(
                f"Accuracy.update: predictions of shape {p.shape} do not match labels of "
                f"shape {y.shape}; pass (N, C) scores or (N,) labels")
        self.correct += int(np.sum(p == y))
        self.count += int(y.size)

    @property
    def value(self) -> float:
        """Fraction correct so far (nan before any update)."""
        return self.correct / self.count if self.count else float("nan")


def _host(x):
    if hasattr(x, "get") and type(x).__module__.split(".")[0] == "cupy":
        return x.get()
    return np.asarray(x)

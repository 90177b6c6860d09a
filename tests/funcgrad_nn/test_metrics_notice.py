"""MetricsLogger says once when it cannot write TensorBoard files (instead of silently
writing none), and tensorboardX is in the examples extra."""
import pathlib
import tomllib
import warnings

import pytest

from funcgrad_nn import training
from funcgrad_nn.training import MetricsLogger

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_notice_once_when_tensorboard_is_missing(tmp_path, monkeypatch):
    monkeypatch.setattr(training, "_tensorboard_writer_class", lambda: None)
    monkeypatch.setattr(training, "_tensorboard_notice_given", False)
    with pytest.warns(UserWarning, match=r"TensorBoard.*tensorboardX.*tensorboard=False"):
        MetricsLogger(tmp_path / "a").close()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        MetricsLogger(tmp_path / "b").close()          # one notice per process
        monkeypatch.setattr(training, "_tensorboard_notice_given", False)
        MetricsLogger(tmp_path / "c", tensorboard=False).close()   # asked for none


def test_tensorboardx_in_the_examples_extra():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    extra = meta["project"]["optional-dependencies"]["examples"]
    assert any(req.lower().startswith("tensorboardx") for req in extra)

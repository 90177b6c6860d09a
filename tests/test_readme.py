"""The README's code blocks run as written (so the tour stays true)."""
import os
import re

import pytest

README = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "README.md")


def _blocks():
    text = open(README, encoding="utf-8").read()
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def test_readme_has_the_two_quick_start_commands():
    text = open(README, encoding="utf-8").read()
    assert 'pip install -e ".[examples]" && python examples/train_digits.py' in text
    assert 'pip install -e ".[test]" && python -m pytest -q' in text
    ci = open(os.path.join(os.path.dirname(README), ".ci", "run")).read()
    assert 'pip install -q -e ".[test]"' in ci and "python -m pytest -q" in ci
    # the cross-check peers: optional for users, installed by CI
    assert 'pip install -e ".[test,oracles' in text and '".[oracles' in ci


def test_readme_code_blocks_run():
    blocks = _blocks()
    assert len(blocks) >= 3
    ns = {"__name__": "readme"}
    exec(compile(blocks[0], README, "exec"), ns)
    # the tour's values
    assert round(float(ns["y"]), 3) == 11.652 and float(ns["dy"]) == pytest.approx(5.5)
    assert float(ns["g1"]) == pytest.approx(5.5)
    for code in blocks[1:]:
        exec(compile(code, README, "exec"), ns)
    # the property test defined in the README runs (hypothesis, deterministic profile)
    ns["test_my_loss"]()
    assert float(ns["loss"]) < 1.0       # the training loop trained

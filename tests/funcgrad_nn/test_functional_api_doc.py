"""docs/functional-api.md, written by docs/functional_api.py, lists every function of
funcgrad_nn.functional (rerun the script after adding one)."""
import os

import funcgrad_nn.functional as F

DOC = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "functional-api.md")


def test_every_functional_name_is_listed():
    with open(DOC) as fh:
        text = fh.read()
    missing = [n for n in F.__all__ if f"| `{n}` |" not in text]
    assert not missing, (f"{missing} are not in docs/functional-api.md: run "
                         "python docs/functional_api.py")

"""Every ```python block of README.md runs on its own (imports included, in a fresh
namespace) and prints what its comments claim: for each ``print(...)`` (or
``dist.print0(...)``) statement with a trailing comment, the comment is the line it
prints (``alone:`` before it: when run as a single process). Functions named ``test_*``
that a block defines are called. A block preceded by ``<!-- readme-test: skip (reason)
-->`` is skipped with that reason (for blocks that need MPI or a GPU)."""
import ast
import contextlib
import io
import os
import re
import tokenize

import pytest

README = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "README.md")


def _blocks():
    text = open(README, encoding="utf-8").read()
    out = []
    for m in re.finditer(r"(?:<!--\s*readme-test:\s*skip\s*\((.*?)\)\s*-->\s*\n)?```python\n(.*?)```",
                         text, flags=re.S):
        line = text.count("\n", 0, m.start(2)) + 1
        out.append(pytest.param(m.group(2), line, m.group(1), id=f"line{line}"))
    return out


def _claims(code):
    """The printed lines the comments claim, in the order of the print statements."""
    comments = {}
    for tok in tokenize.generate_tokens(io.StringIO(code).readline):
        if tok.type == tokenize.COMMENT:
            comments[tok.start[0]] = tok.string[1:].strip()
    claims = []
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
            fn = node.value.func
            name = fn.id if isinstance(fn, ast.Name) else getattr(fn, "attr", "")
            if name in ("print", "print0") and node.end_lineno in comments:
                claim = comments[node.end_lineno]
                claims.append((node.lineno, claim[len("alone:"):].strip()
                               if claim.startswith("alone:") else claim))
    return [c for _, c in sorted(claims)]


def test_there_are_blocks_and_claims():
    blocks = _blocks()
    assert len(blocks) >= 4
    assert sum(len(_claims(b.values[0])) for b in blocks) >= 6


@pytest.mark.parametrize("code, line, skip", _blocks())
def test_block_runs_alone_and_prints_what_it_claims(code, line, skip):
    if skip:
        pytest.skip(skip)
    ns = {"__name__": f"readme_line{line}"}
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, f"{README}:{line}", "exec"), ns)
        for name, fn in list(ns.items()):
            if name.startswith("test_") and callable(fn):
                fn()
    printed = out.getvalue().splitlines()
    claims = _claims(code)
    assert len(printed) == len(claims), (printed, claims)
    for got, want in zip(printed, claims):
        assert got == want, f"README line {line}: printed {got!r}, its comment says {want!r}"

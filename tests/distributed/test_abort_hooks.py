"""The hooks that end the job when one rank fails, checked in one process without MPI: a
stand-in engine whose ``abort`` reports its status and exits with it."""
import os
import subprocess
import sys
import textwrap

import pytest

from ._launch import ROOT

SCRIPT = """
import os, sys
from funcgrad._src import comm

class Host:
    rank, size = 1, 2
    def abort(self, code=1):
        print(f"ABORT {{code}}", flush=True)
        os._exit(code)

comm._install_abort_hook(Host())
{prelude}
def main():
{body}

main()
print("ended normally", flush=True)
"""

CASES = {
    # body of main() (after a line "#main": what comes before it runs at module level)
    # -> (exit status, abort reported)
    "raise SystemExit(3)": (3, True),
    "sys.exit(2)": (2, True),
    "sys.exit('a message')": (1, True),
    "raise SystemExit": (0, False),
    "raise SystemExit(0)": (0, False),
    "sys.exit(0)": (0, False),
    "pass": (0, False),
    "try:\n    sys.exit(5)\nexcept SystemExit:\n    pass": (0, False),
    "raise KeyError('k')": (1, True),
    "import threading\nt = threading.Thread(target=lambda: 1 / 0)\nt.start(); t.join()\n"
    "import time; time.sleep(30)": (1, True),
    "import threading\nt = threading.Thread(target=sys.exit, args=(7,))\nt.start(); t.join()":
        (0, False),                 # sys.exit in a thread ends only that thread
    # a SystemExit caught at module level and kept is not the one that ends the script
    "try:\n    sys.exit(5)\nexcept SystemExit as e:\n    kept = e\n#main\npass": (0, False),
    "try:\n    sys.exit(5)\nexcept SystemExit as e:\n    kept = e\n#main\nsys.exit(4)":
        (4, True),
}


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """Every case's script, started at once (each costs an import of funcgrad)."""
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    procs = {}
    for i, body in enumerate(CASES):
        script = tmp_path_factory.mktemp(f"case{i}") / "script.py"
        prelude, _, body_ = body.rpartition("\n#main\n")
        script.write_text(SCRIPT.format(prelude=prelude,
                                        body=textwrap.indent(body_ or "pass", "    ")))
        procs[body] = subprocess.Popen([sys.executable, str(script)], env=env, text=True,
                                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    # python -c: no script file, so the end-of-script flush cannot be watched
    procs["-c"] = subprocess.Popen(
        [sys.executable, "-c", SCRIPT.format(prelude="", body="    sys.exit(6)")], env=env,
        text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out = {}
    for body, p in procs.items():
        try:
            stdout, stderr = p.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            p.kill()
            stdout, stderr = p.communicate()
        out[body] = subprocess.CompletedProcess(p.args, p.returncode, stdout, stderr)
    return out


@pytest.mark.parametrize("body", list(CASES), ids=range(len(CASES)))
def test_exit_status_and_abort(results, body):
    res = results[body]
    status, aborts = CASES[body]
    assert res.returncode == status, res.stderr
    assert ("ABORT" in res.stdout) == aborts, (res.stdout, res.stderr)
    if aborts:
        assert f"ABORT {status}" in res.stdout
        assert "aborting every process of the job" in res.stderr
        assert "ended normally" not in res.stdout
    if body == "sys.exit('a message')":
        assert "a message" in res.stderr


def test_python_c_aborts_on_sys_exit(results):
    """Without a script file (python -c) sys.exit(n) itself aborts."""
    res = results["-c"]
    assert res.returncode == 6 and "ABORT 6" in res.stdout, (res.stdout, res.stderr)

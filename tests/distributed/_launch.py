"""Launching test scripts with ``mpiexec`` from pytest (skipped cleanly without MPI)."""
import os
import shutil
import signal
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HERE = os.path.dirname(os.path.abspath(__file__))


def find_mpiexec():
    """``mpiexec`` next to this Python (a virtual environment's bin, where the mpich
    wheel puts it, even when that bin is not on PATH), else on PATH."""
    for name in ("mpiexec", "mpirun"):
        here = os.path.join(os.path.dirname(sys.executable), name)
        if os.access(here, os.X_OK):
            return here
    return shutil.which("mpiexec") or shutil.which("mpirun")


def mpiexec_or_skip():
    """The ``mpiexec`` to use, or a pytest skip naming what is missing."""
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        pytest.skip('needs mpi4py and MPI: pip install "funcgrad[distributed]"')
    exe = find_mpiexec()
    if exe is None:
        pytest.skip("needs an MPI launcher (mpiexec) on PATH")
    return exe


def launch(script, *args, n=2, timeout=120):
    """Run ``python script args`` in ``n`` processes; returns the CompletedProcess (stdout
    and stderr as text). The worktree comes first on the workers' import path."""
    exe = mpiexec_or_skip()
    env = dict(os.environ)
    env["PYTHONPATH"] = ROOT + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.setdefault("OMP_NUM_THREADS", "1")
    cmd = [exe, "-n", str(n), sys.executable, os.path.join(HERE, script), *args]
    # A session of its own: on a timeout the launcher and every rank are killed together.
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, cwd=ROOT, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"{script} did not end within {timeout} s (a hang)\n{out[-2000:]}\n{err[-2000:]}")
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)

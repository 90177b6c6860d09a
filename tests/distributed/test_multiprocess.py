"""Collectives, sampler and data parallelism across processes: launched with ``mpiexec -n 2``.

Each launch costs about a second, so the checks share one launch (``_worker_checks.py``)
and each becomes a test here. Skipped cleanly without mpi4py or an MPI launcher; CI
installs the ``distributed`` extra and runs them.
"""
import os
import re
import sys
import time

import pytest

from . import _worker_checks
from ._launch import ROOT, launch, mpiexec_or_skip

N = 2
NAMES = [fn.__name__ for fn in _worker_checks.CHECKS]


@pytest.fixture(scope="module")
def check_lines():
    mpiexec_or_skip()
    res = launch("_worker_checks.py", n=N)
    lines = {}
    for m in re.finditer(r"CHECK (\S+) rank=(\d+) (OK|FAIL)(.*?)(?=CHECK |\n|$)", res.stdout):
        lines[(m.group(1), int(m.group(2)))] = (m.group(3), m.group(4).strip())
    return res, lines


@pytest.mark.parametrize("name", NAMES)
def test_check_passes_on_every_rank(check_lines, name):
    res, lines = check_lines
    for rank in range(N):
        got = lines.get((name, rank))
        assert got is not None, (f"rank {rank} did not report {name} (exit {res.returncode})\n"
                                 f"{res.stdout[-3000:]}\n{res.stderr[-3000:]}")
        assert got[0] == "OK", f"rank {rank}: {got[1]}"


def test_the_launch_exits_cleanly(check_lines):
    res, _ = check_lines
    assert res.returncode == 0, res.stderr[-3000:]


# how rank 1 fails -> (exit status of the job or None for any non-zero, what stderr shows)
FAILURES = {
    "raise": (None, "boom on rank 1"),                  # uncaught exception: traceback
    "exit": (None, "boom on rank 1 (sys.exit)"),        # sys.exit("message")
    "exit2": (2, "SystemExit(2)"),
    "systemexit3": (3, "SystemExit(3)"),                # a bare raise, no sys.exit
    "thread": (None, "boom on rank 1 (thread)"),        # uncaught in a thread
    "osexit4": (4, ""),                                 # the launcher ends the job
}


@pytest.mark.parametrize("how", list(FAILURES))
def test_a_failing_rank_ends_the_job_within_30_s(how):
    mpiexec_or_skip()
    t0 = time.perf_counter()
    res = launch("_worker_fail.py", how, n=N, timeout=30)
    elapsed = time.perf_counter() - t0
    assert elapsed < 30, f"the job took {elapsed:.0f} s to end"
    status, shown = FAILURES[how]
    assert res.returncode != 0
    if status is not None:
        assert res.returncode == status, res.stderr[-2000:]
    assert shown in res.stderr
    assert ("Traceback" in res.stderr) == (how in ("raise", "thread"))
    assert "rank 0 was never stopped" not in res.stdout


@pytest.mark.parametrize("how", ["exit0", "caught", "none"])
def test_a_clean_exit_aborts_nothing(how):
    """SystemExit(0) on one rank, a caught sys.exit(5), a normal end: no abort, every
    rank's work done, status 0."""
    mpiexec_or_skip()
    res = launch("_worker_fail.py", how, n=N, timeout=30)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "aborting" not in res.stderr
    ranks = [0] if how == "exit0" else [0, 1]
    for r in ranks:
        assert f"rank {r} finished" in res.stdout, (res.stdout, res.stderr[-2000:])


@pytest.mark.slow
def test_train_digits_data_parallel_matches_one_process(tmp_path):
    """The example on 2 processes (global batch 32) follows the single-process run."""
    pytest.importorskip("sklearn", reason="the Digits set comes from scikit-learn")
    mpiexec_or_skip()
    args = ["--epochs", "3", "--no-progress"]
    res = launch(os.path.join("..", "..", "examples", "train_digits.py"), *args,
                 "--out", str(tmp_path / "two"), n=N, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "data-parallel over 2 processes" in res.stdout
    acc2 = float(re.search(r"test accuracy: ([\d.]+)%", res.stdout).group(1))
    sys.path.insert(0, os.path.join(ROOT, "examples"))
    try:
        import importlib.util
        spec = importlib.util.spec_from_file_location(
            "train_digits_single", os.path.join(ROOT, "examples", "train_digits.py"))
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        acc1 = 100 * mod.main(args + ["--out", str(tmp_path / "one")])
    finally:
        sys.path.pop(0)
    assert abs(acc1 - acc2) <= 0.6, (acc1, acc2)       # 0.6%: two test images of 360
    # only rank 0 printed
    assert res.stdout.count("test accuracy:") == 1


@pytest.mark.slow
def test_mnist_example_data_parallel_matches_one_process(tmp_path):
    """examples/mnist.py on 2 processes (global batch 32, a synthetic MNIST written as IDX
    files) follows the single-process run, and only process 0 prints and writes."""
    mpiexec_or_skip()
    import numpy as np
    from ..examples.test_mnist_example import load_example, squares, write_idx
    raw = tmp_path / "data" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 320), ("t10k", 150)):
        images, labels = squares(n, rng)
        write_idx(str(raw / f"{prefix}-images-idx3-ubyte"), images)
        write_idx(str(raw / f"{prefix}-labels-idx1-ubyte"), labels)
    args = ["--root", str(tmp_path / "data"), "--epochs", "2", "--batch-size", "32",
            "--lr", "3e-3", "--no-progress"]
    res = launch(os.path.join("..", "..", "examples", "mnist.py"), *args,
                 "--out", str(tmp_path / "two"), n=N, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "data-parallel over 2 processes" in res.stdout
    assert res.stdout.count("test accuracy:") == 1 and res.stdout.count("Total params") == 1
    acc2 = float(re.search(r"test accuracy: ([\d.]+)%", res.stdout).group(1))
    assert (tmp_path / "two" / "mnist_cnn.fgck").exists()
    acc1 = 100 * load_example().main(args + ["--out", str(tmp_path / "one")])
    assert acc1 >= 90 and abs(acc1 - acc2) <= 2.0, (acc1, acc2)     # 2%: 3 images of 150


@pytest.mark.gpu
def test_nccl_on_gpus():
    """CuPy arrays through NCCL, one GPU per process (skipped without CuPy and CUDA)."""
    cupy = pytest.importorskip("cupy")
    if cupy.cuda.runtime.getDeviceCount() < 1:
        pytest.skip("needs a CUDA device")
    res = launch("_worker_nccl.py", n=min(N, max(1, cupy.cuda.runtime.getDeviceCount())),
                 timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "NCCL OK rank=0" in res.stdout

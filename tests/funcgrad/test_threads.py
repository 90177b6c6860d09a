"""The process's thread budget: config, BLAS, splits, and the adaptive policy."""
import os
import threading
import time

import numpy as np
import pytest

import funcgrad
import funcgrad.numpy as fnp
from funcgrad._src import blas, threads

needs_blas = pytest.mark.skipif(not blas.available(),
                                reason="no BLAS library with a thread API is loaded")


@pytest.fixture
def budget():
    """Restore the budget, adaptation and monitor state after the test."""
    saved = (threads._state["budget"], threads._state["adaptive"])
    mon = threads._monitor
    saved_mon = (mon.prev, mon.next, mon.quiet, mon.current, mon.broken)
    yield
    threads._state["budget"], threads._state["adaptive"] = saved
    mon.prev, mon.next, mon.quiet, mon.current, mon.broken = saved_mon
    threads._sync_blas(threads.num_threads())


# ---- the option -------------------------------------------------------------------------
@pytest.mark.parametrize("bad", [0, -1, 2.5, "2", True, [2]])
def test_num_threads_rejects_what_is_not_a_positive_integer(bad, budget):
    with pytest.raises(ValueError, match="num_threads.*positive integer"):
        funcgrad.config.update("num_threads", bad)


def test_num_threads_sets_the_budget_and_none_restores_the_default(budget):
    funcgrad.config.update("num_threads", np.int64(3))
    assert funcgrad.config.read("num_threads") == 3 == threads.budget()
    funcgrad.config.update("num_threads", None)
    assert funcgrad.config.read("num_threads") == threads.default_budget()


def test_override_restores_the_budget(budget):
    before = funcgrad.config.read("num_threads")
    with funcgrad.config.override(num_threads=1):
        assert threads.num_threads() == 1
    assert funcgrad.config.read("num_threads") == before


@pytest.mark.parametrize("var, value, expected", [
    ("FUNCGRAD_NUM_THREADS", "5", 5), ("OMP_NUM_THREADS", "3,2", 3),
    ("OPENBLAS_NUM_THREADS", "4", 4), ("MKL_NUM_THREADS", "6", 6)])
def test_default_budget_honours_the_environment(monkeypatch, var, value, expected):
    for v in threads._ENV_VARS:
        monkeypatch.delenv(v, raising=False)
    monkeypatch.setenv(var, value)
    assert threads.default_budget() == expected


def test_default_budget_is_the_cpus_this_process_may_use(monkeypatch):
    for v in threads._ENV_VARS:
        monkeypatch.delenv(v, raising=False)
    monkeypatch.setenv("OMP_NUM_THREADS", "not a number")      # ignored
    n = threads.default_budget()
    assert 1 <= n <= len(os.sched_getaffinity(0))


# ---- BLAS -------------------------------------------------------------------------------
@needs_blas
def test_the_blas_follows_the_budget(budget):
    funcgrad.config.update("num_threads", 1)
    assert blas.get_threads() == 1
    funcgrad.config.update("num_threads", 2)
    assert blas.get_threads() == 2
    funcgrad.config.update("num_threads", None)
    assert blas.get_threads() == min(threads.budget(), threads._state["blas_found"])


@needs_blas
def test_the_blas_runs_one_thread_inside_a_split_and_gets_its_threads_back(budget):
    funcgrad.config.update("num_threads", 2)
    seen = []

    def work(a, b):
        seen.append(blas.get_threads())
        return np.ones((200, 200)) @ np.ones((200, 200))
    threads.map_bounds(work, [(0, 1), (1, 2)])
    assert seen == [1, 1]
    assert blas.get_threads() == 2


@needs_blas
def test_a_blas_count_the_user_set_is_left_alone(budget):
    funcgrad.config.update("num_threads", 2)
    blas.set_threads(1)                   # as threadpoolctl.threadpool_limits(1) would
    try:
        threads._sync_blas(2)            # e.g. the adaptive policy growing back
        assert blas.get_threads() == 1
    finally:
        blas.set_threads(2)


def test_split_workers_wait_without_spinning(budget):
    funcgrad.config.update("num_threads", 2)
    threads.map_bounds(lambda a, b: np.ones((300, 300)) @ np.ones((300, 300)),
                       [(0, 1), (1, 2)])
    time.sleep(0.3)        # (BLAS threads of earlier tests may spin for ~0.1 s)
    cpu = time.process_time()
    time.sleep(0.3)
    assert time.process_time() - cpu < 0.1    # idle workers take no CPU time


def test_a_failing_slice_ends_the_split_after_the_others(budget):
    funcgrad.config.update("num_threads", 2)
    done = threading.Event()

    def work(a, b):
        if a == 0:
            raise ValueError("slice 0")
        time.sleep(0.05)
        done.set()
    with pytest.raises(ValueError, match="slice 0"):
        threads.map_bounds(work, [(0, 1), (1, 2)])
    assert done.is_set() and threads._state["splits"] == 0


# ---- the adaptive policy ----------------------------------------------------------------
def _fake_machine(monkeypatch, cpus=2):
    """A monitor reading a simulated /proc/stat: ``load(x)`` makes other processes keep
    ``x`` CPUs busy for the next half second; returns the clock and ``load``."""
    clock = [1000.0]
    busy = [0.0]
    mon = threads._Monitor(clock=lambda: clock[0])
    monkeypatch.setattr(threads, "_monitor", mon)
    mon.cpus, mon.hz = set(range(cpus)), 100
    monkeypatch.setattr(mon, "_sample", lambda: (busy[0], 0.0))

    def load(others):
        busy[0] += others * mon.PERIOD
        clock[0] += mon.PERIOD
        return threads.num_threads()
    return mon, load


def test_adaptive_policy_drops_at_once_and_grows_after_two_quiet_samples(monkeypatch, budget):
    funcgrad.config.update("num_threads", 2)
    funcgrad.config.update("adaptive_threads", True)
    mon, load = _fake_machine(monkeypatch)
    assert load(0.0) == 2                    # first look: the baseline
    assert load(1.8) == 1                    # another job takes the CPUs: at once
    assert load(1.9) == 1
    assert load(0.1) == 1                    # one quiet sample is not enough
    assert load(1.5) == 1
    assert load(0.1) == 1
    assert load(0.2) == 2                    # two in a row are
    assert load(0.6) == 1                    # 1.4 CPUs left: rounded, 1 thread


def test_adaptive_policy_off_uses_the_budget_whatever_the_load(monkeypatch, budget):
    funcgrad.config.update("num_threads", 2)
    mon, load = _fake_machine(monkeypatch)
    funcgrad.config.update("adaptive_threads", False)
    assert [load(2.0) for _ in range(4)] == [2, 2, 2, 2]


def test_the_first_look_only_sets_the_baseline(monkeypatch, budget):
    funcgrad.config.update("num_threads", 2)
    funcgrad.config.update("adaptive_threads", True)
    mon, load = _fake_machine(monkeypatch)
    mon.prev = None
    assert load(2.0) == 2 and mon.prev is not None      # nothing to compare with yet
    assert load(2.0) == 1


def test_without_proc_stat_the_budget_is_used(monkeypatch, budget):
    funcgrad.config.update("num_threads", 2)
    funcgrad.config.update("adaptive_threads", True)
    mon, load = _fake_machine(monkeypatch)

    def unreadable():
        raise OSError("no /proc here")
    monkeypatch.setattr(mon, "_sample", unreadable)
    assert load(2.0) == 2 and mon.broken


@needs_blas
def test_adaptive_policy_holds_the_blas_to_the_threads_it_uses(monkeypatch, budget):
    funcgrad.config.update("num_threads", 2)
    funcgrad.config.update("adaptive_threads", True)
    mon, load = _fake_machine(monkeypatch)
    load(0.0)
    assert load(2.0) == 1 and blas.get_threads() == 1
    load(0.0)
    assert load(0.0) == 2 and blas.get_threads() == 2


def test_a_busy_machine_runs_a_jit_training_step_unsplit(monkeypatch, budget):
    from funcgrad._src import rows
    monkeypatch.setattr(rows, "MIN_ROW_WORK", 0)
    monkeypatch.setattr(rows, "MAX_JOIN_FRACTION", float("inf"))
    funcgrad.config.update("num_threads", 2)
    funcgrad.config.update("adaptive_threads", True)
    mon, load = _fake_machine(monkeypatch)
    calls = []
    real = threads.map_bounds
    monkeypatch.setattr(rows._threads, "map_bounds",
                        lambda fn, bounds, flatten=False: calls.append(len(bounds))
                        or real(fn, bounds, flatten))
    w = np.random.default_rng(0).normal(size=(8, 3))
    x = np.random.default_rng(1).normal(size=(64, 8))
    step = funcgrad.jit(funcgrad.grad(lambda w, x: fnp.sum(fnp.tanh(x @ w) ** 2)))
    expected = funcgrad.grad(lambda w, x: fnp.sum(fnp.tanh(x @ w) ** 2))(w, x)
    step(w, x)                               # (the first call traces)
    load(0.0)
    np.testing.assert_allclose(step(w, x), expected, rtol=1e-12)
    assert calls == [2]
    load(2.0)
    np.testing.assert_allclose(step(w, x), expected, rtol=1e-12)
    assert calls == [2]                      # one thread: no split


@pytest.mark.skipif(not os.path.exists("/proc/stat"), reason="reads Linux's /proc/stat")
def test_the_real_sample_counts_this_process_among_the_busy():
    mon = threads._Monitor()
    busy0, own0 = mon._sample()
    t_end = time.perf_counter() + 10.0
    while time.process_time() - own0 < 0.2 and time.perf_counter() < t_end:
        pass                                 # burn 0.2 s of CPU time on this thread
    busy1, own1 = mon._sample()
    assert own1 - own0 >= 0.2
    # the machine's busy time on our CPUs includes ours (to the kernel's 10 ms ticks)
    assert busy1 - busy0 >= own1 - own0 - 0.05 * len(mon.cpus)

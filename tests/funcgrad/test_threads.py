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
def test_a_budget_of_one_from_the_environment_reaches_the_blas():
    """FUNCGRAD_NUM_THREADS=1 alone (no adaptive policy to sync it) sets the BLAS to one
    thread at the first jitted step, as the budget's other sources do."""
    import subprocess
    import sys
    code = ("import numpy as np, funcgrad; from funcgrad._src import blas\n"
            "f = funcgrad.jit(lambda a, b: (a @ b).sum())\n"
            "f(np.ones((64, 64)), np.ones((64, 64)))\n"
            "print(blas.get_threads())")
    env = {k: v for k, v in os.environ.items() if k not in threads._ENV_VARS}
    env["FUNCGRAD_NUM_THREADS"] = "1"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, check=True).stdout
    assert out.strip() == "1"


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


def _thread_cpu_ticks(native_id):
    with open(f"/proc/self/task/{native_id}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])        # utime + stime, in clock ticks


@pytest.mark.skipif(not os.path.exists("/proc/self/task"), reason="reads Linux's /proc")
def test_split_workers_wait_without_spinning(budget):
    funcgrad.config.update("num_threads", 2)
    threads.map_bounds(lambda a, b: np.ones((300, 300)) @ np.ones((300, 300)),
                       [(0, 1), (1, 2)])
    workers = [t.native_id for t in threading.enumerate()
               if t.name.startswith("funcgrad-worker")]
    assert workers
    before = [_thread_cpu_ticks(t) for t in workers]
    time.sleep(0.5)
    after = [_thread_cpu_ticks(t) for t in workers]
    # an idle worker takes no CPU time (a tick is 10 ms: spinning would take ~50)
    assert all(b - a <= 1 for a, b in zip(before, after)), (before, after)


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


@pytest.mark.parametrize("failing", [1, 2])
def test_a_failing_worker_slice_ends_the_split_after_the_others(budget, failing):
    funcgrad.config.update("num_threads", 3)
    finished = []

    def work(a, b):
        if a == failing:
            raise ValueError(f"slice {a}")
        time.sleep(0.1)
        finished.append(a)
    with pytest.raises(ValueError, match=f"slice {failing}"):
        threads.map_bounds(work, [(0, 1), (1, 2), (2, 3)])
    assert sorted(finished) == [a for a in (0, 1, 2) if a != failing]
    assert threads._state["splits"] == 0


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


@needs_blas
def test_setting_num_threads_wins_over_a_count_left_by_others(budget):
    funcgrad.config.update("num_threads", 2)
    blas.set_threads(1)                  # left by someone else
    funcgrad.config.update("num_threads", 2)
    assert blas.get_threads() == 2


@needs_blas
def test_a_split_does_not_undo_a_count_set_while_it_ran(budget):
    funcgrad.config.update("num_threads", 2)

    def work(a, b):
        if a == 0:
            time.sleep(0.05)
            blas.set_threads(3)          # as another thread's threadpool_limits(3) would
    threads.map_bounds(work, [(0, 1), (1, 2)])
    try:
        assert blas.get_threads() == 3
    finally:
        blas.set_threads(2)


def test_no_split_while_another_thread_splits(budget):
    funcgrad.config.update("num_threads", 2)
    inside, release, seen = threading.Event(), threading.Event(), []

    def work(a, b):
        if a == 0:
            inside.set()
            release.wait(5)
    t = threading.Thread(target=threads.map_bounds, args=(work, [(0, 1), (1, 2)]))
    t.start()
    assert inside.wait(5)
    seen.append(threads.chunks(64, 1 << 20))
    release.set()
    t.join()
    assert seen == [1] and threads.chunks(64, 1 << 20) == 2


@pytest.mark.skipif(not hasattr(os, "setpriority"), reason="needs per-thread priorities")
def test_a_thread_at_lowered_priority_does_not_split(budget):
    funcgrad.config.update("num_threads", 2)
    seen = []

    def background():
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
        seen.append(threads.chunks(64, 1 << 20))
    t = threading.Thread(target=background)
    t.start()
    t.join()
    assert seen == [1] and threads.chunks(64, 1 << 20) == 2


@needs_blas
@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_child_forked_during_a_split_starts_afresh(budget):
    funcgrad.config.update("num_threads", 2)
    inside, release = threading.Event(), threading.Event()

    def work(a, b):
        if a == 1:
            inside.set()
            release.wait(5)
    t = threading.Thread(target=threads.map_bounds, args=(work, [(0, 1), (1, 2)]))
    t.start()
    try:
        assert inside.wait(5)
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:                                  # the child
            try:
                state = (threads._state["splits"], blas.get_threads(),
                         threads.chunks(64, 1 << 20))
                os.write(w, repr(state).encode())
            finally:
                os._exit(0)
        os.close(w)
        got = os.read(r, 100).decode()
        os.waitpid(pid, 0)
    finally:
        release.set()
        t.join()
    assert got == "(0, 2, 2)"


def test_the_default_adaptive_policy_runs_a_split_training_step(monkeypatch, budget):
    from funcgrad._src import rows
    monkeypatch.setattr(rows, "MIN_ROW_WORK", 0)
    monkeypatch.setattr(rows, "MAX_JOIN_FRACTION", float("inf"))
    funcgrad.config.update("num_threads", None)
    funcgrad.config.update("adaptive_threads", True)      # the real monitor, as shipped
    f = funcgrad.grad(lambda w, x: fnp.sum(fnp.tanh(x @ w) ** 2))
    w = np.random.default_rng(0).normal(size=(8, 3))
    x = np.random.default_rng(1).normal(size=(64, 8))
    step = funcgrad.jit(f)
    for _ in range(3):
        np.testing.assert_allclose(step(w, x), f(w, x), rtol=1e-12)


@needs_blas
def test_unsplit_jit_and_grad_calls_let_the_blas_follow_the_load(monkeypatch, budget):
    funcgrad.config.update("num_threads", 2)
    funcgrad.config.update("adaptive_threads", True)
    mon, load = _fake_machine(monkeypatch)
    looks = []
    real = mon.threads
    monkeypatch.setattr(mon, "threads", lambda b: looks.append(1) or real(b))
    w = np.ones((512, 512), np.float32)
    x = np.ones((64, 512), np.float32)
    step = funcgrad.jit(lambda w, x: x @ w @ w)    # big products: not split, BLAS's
    step(w, x)
    n = len(looks)
    step(w, x)
    assert len(looks) == n + 1                    # each call looks at the load
    funcgrad.grad(lambda w: fnp.sum(x @ w))(w)
    assert len(looks) == n + 2                    # and so does each gradient

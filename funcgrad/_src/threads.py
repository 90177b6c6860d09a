"""One thread budget for the process: funcgrad's workers, BLAS, and how they share it.

The budget (``funcgrad.config`` option ``num_threads``) is the number of threads that
funcgrad keeps busy at once. By default it is the number of CPUs this process may run on
(its affinity mask, capped by a cgroup CPU quota), unless ``FUNCGRAD_NUM_THREADS``,
``OMP_NUM_THREADS``, ``OPENBLAS_NUM_THREADS`` or ``MKL_NUM_THREADS`` (the first one set)
says otherwise. Everything that runs threads draws from it:

- **batch splits**: jit's row splitting (rows.py) and the convolution and pooling
  implementations run slices of a batch on ``num_threads()`` threads, this one included.
  While they do, the BLAS runs single-threaded: each slice's small matrix products gain
  nothing from more threads, and two threads each calling a threaded BLAS contend.
- **BLAS** keeps ``num_threads()`` threads for the matrix products funcgrad does not split.
  funcgrad changes the BLAS's count only while it still holds the value funcgrad left
  (or found), so a user's own ``threadpoolctl.threadpool_limits`` is respected.
- **data loading**: funcgrad_nn's DataLoader worker threads run at background priority,
  so they fill the CPU time the step leaves idle instead of taking it from the step.

Nothing busy-waits: funcgrad's workers block on a queue, and the BLAS (whose idle
threads spin for a while after each call) is held at one thread during splits. Only one
split runs at a time: a thread that asks while another thread's split runs (several user
threads stepping at once), a thread at lowered priority and a worker inside a split run
their work serially, so the process keeps to its budget. A child forked during a split
starts with none.

**Adapting to a busy machine** (``funcgrad.config`` option ``adaptive_threads``, on by
default): every half second at most, when funcgrad is about to decide how many threads
to use, it reads how much CPU time other processes took on this process's CPUs since the
last look (``/proc/stat``, less this process's own CPU time). The CPUs left over,
rounded, become the number of threads used (at least one, at most the budget): it drops
at the first busy sample and comes back after two quiet ones in a row. Below the budget
the BLAS is held to the same count. Where ``/proc/stat`` cannot be read the budget is
used as it is. A hand-off to a worker thread costs 50-80 µs round trip on a 2-core
virtual machine, and on an oversubscribed machine a thread descheduled while it holds
the GIL stalls the others, so one thread is the right answer when the CPUs are taken.
"""
from __future__ import annotations

import contextvars
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor, wait

from . import blas

_lock = threading.Lock()
_local = threading.local()
_state = {
    "budget": None,          # set explicitly (config num_threads), else None: the default
    "default": None,         # the default budget, computed once
    "adaptive": True,        # config adaptive_threads
    "executor": None, "pid": None,
    "splits": 0,             # batch splits running now (BLAS held at one thread meanwhile)
    "blas_saved": None,      # the BLAS count to restore when the last split ends
    "blas_held": False,      # the first split set the BLAS to one thread
    "blas_left": None,       # the BLAS count funcgrad last set or found
    "blas_found": None,      # the BLAS count when first seen: the most it gets from the
}                            # default budget
MIN_CHUNK_WORK = 1 << 16      # elements of work per thread worth a hand-off
# A thread's share is cut into blocks of at most this many elements of work, run one
# after another, so that work buffers (im2col) stay in cache: measured 7% faster on the
# W5 step than whole shares (2-core VM; 1 << 18 and below were slower: per-call costs).
BLOCK_WORK = 1 << 19
_ENV_VARS = ("FUNCGRAD_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
             "MKL_NUM_THREADS")


# ---- the budget -------------------------------------------------------------------------
def set_num_threads(n):
    """Set the budget to ``n`` threads (``None``: the default). The BLAS follows."""
    if n is not None:
        n = max(1, int(n))
    with _lock:
        _state["budget"] = n
    _sync_blas(num_threads(), explicit=True)


def set_adaptive(on):
    with _lock:
        _state["adaptive"] = bool(on)
    _sync_blas(num_threads())


def budget():
    """The thread budget: ``num_threads`` as set, else the default (module docstring)."""
    n = _state["budget"]
    if n is None:
        n = _state["default"]
        if n is None:
            n = _state["default"] = default_budget()
            if n == 1:          # (more threads reach the BLAS through num_threads)
                _sync_blas(1)
    return n


def default_budget():
    for var in _ENV_VARS:
        value = os.environ.get(var, "").split(",")[0].strip()     # OMP allows "4,2"
        if value.isdigit() and int(value) > 0:
            return int(value)
    return _cpus_allowed()


def _cpus_allowed():
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        n = os.cpu_count() or 1
    try:        # cgroup v2 CPU quota ("max 100000" when there is none)
        with open("/sys/fs/cgroup/cpu.max") as f:
            quota, period = f.read().split()[:2]
        if quota != "max":
            n = min(n, max(1, -(-int(quota) // int(period))))
    except (OSError, ValueError):
        pass
    return n


def num_threads():
    """The number of threads to use now: the budget, less the CPUs other processes keep
    busy when ``adaptive_threads`` is on."""
    b = budget()
    if b == 1 or not _state["adaptive"]:
        return b
    return _monitor.threads(b)


def following_load(fn):
    """``fn`` preceded by a look at the machine's load (at most twice a second; see
    ``num_threads``), so that the BLAS thread count the adaptive policy holds follows the
    load in code that funcgrad does not split: a jitted step whose time goes to big
    matrix products."""
    def run(*args):
        num_threads()
        return fn(*args)
    return run


# ---- the machine's load -----------------------------------------------------------------
class _Monitor:
    """Samples the CPU time other processes take on our CPUs (see the module docstring)."""
    PERIOD = 0.5          # seconds between samples at most
    GROW_AFTER = 2        # quiet samples in a row before using more threads again

    def __init__(self, clock=time.monotonic):
        self.clock = clock
        self.lock = threading.Lock()
        self.cpus = None
        self.hz = None
        self.broken = False
        self.reset()

    def reset(self):
        self.prev = None
        self.next = 0.0
        self.quiet = 0
        self.current = None       # threads in use; None: the budget

    def threads(self, b):
        now = self.clock()
        if now >= self.next and not self.broken and self.lock.acquire(blocking=False):
            try:
                if now >= self.next:
                    self.next = now + self.PERIOD
                    self._update(now, b)
            finally:
                self.lock.release()
        c = self.current
        return b if c is None else min(b, c)

    def _sample(self):
        if self.cpus is None:
            try:
                self.cpus = os.sched_getaffinity(0)
            except (AttributeError, OSError):
                self.cpus = set(range(os.cpu_count() or 1))
            self.hz = os.sysconf("SC_CLK_TCK")
        busy = 0
        with open("/proc/stat", "rb") as f:
            for line in f:
                if not line.startswith(b"cpu"):
                    break
                fields = line.split()
                name = fields[0][3:]
                if name and int(name) in self.cpus:
                    # user [nice] system [idle iowait] irq softirq steal (guest is in
                    # user); niced processes (background jobs, funcgrad_nn's DataLoader
                    # workers) give way to ours, so they are not contention
                    busy += int(fields[1]) + int(fields[3]) + sum(int(v) for v in fields[6:9])
        return busy / self.hz, time.process_time()

    def _update(self, now, b):
        try:
            busy, own = self._sample()
        except (OSError, ValueError, IndexError):
            self.broken = True        # no /proc/stat: use the budget as it is
            return
        prev, self.prev = self.prev, (now, busy, own)
        if prev is None:        # the first look only sets the baseline
            return
        others = max(0.0, (busy - prev[1]) - (own - prev[2])) / (now - prev[0])
        self.decide(max(1, min(b, int(len(self.cpus) - others + 0.5))), b)

    def decide(self, target, b):
        """Move to ``target`` threads: down at once, up after GROW_AFTER quiet samples."""
        current = b if self.current is None else self.current
        if target < current:
            new, self.quiet = target, 0
        elif target > current:
            self.quiet += 1
            new = target if self.quiet >= self.GROW_AFTER else current
        else:
            new, self.quiet = current, 0
        if new != current or self.current is None:
            self.current = new
            if new != current:
                self.quiet = 0
                _sync_blas(new)


_monitor = _Monitor()


# ---- BLAS -------------------------------------------------------------------------------
def _sync_blas(n, explicit=False):
    """Give the BLAS ``n`` threads, unless someone else changed its count since funcgrad
    last set it (``explicit``, from setting ``num_threads``, overrides that); more than it
    had when first seen only under a budget set explicitly. During a split the count is
    the one to restore when it ends."""
    with _lock:
        splitting = _state["splits"] > 0
        current = _state["blas_saved"] if splitting else blas.get_threads()
        if current is None:
            return
        if _state["blas_left"] is None:        # first contact
            _state["blas_left"] = _state["blas_found"] = current
        if current != _state["blas_left"] and not explicit:
            return                             # the user set it since: theirs to keep
        target = n if _state["budget"] is not None else min(n, _state["blas_found"])
        if splitting:
            _state["blas_saved"] = target
        elif target != current:
            blas.set_threads(target)
        _state["blas_left"] = target


def _enter_split():
    with _lock:
        _state["splits"] += 1
        if _state["splits"] == 1:
            current = blas.get_threads()
            _state["blas_saved"] = current
            _state["blas_held"] = current is not None and current > 1
            if _state["blas_held"]:
                blas.set_threads(1)


def _exit_split():
    with _lock:
        _state["splits"] -= 1
        if _state["splits"] == 0 and _state["blas_held"]:
            _state["blas_held"] = False
            if blas.get_threads() == 1:        # (else someone set it meanwhile: theirs)
                blas.set_threads(_state["blas_saved"])


def _after_fork_in_child():
    """A child forked while another thread split a batch inherits the split's state but
    not its threads: start afresh (the BLAS gets back the count the split held)."""
    global _lock
    _lock = threading.Lock()
    _monitor.lock = threading.Lock()
    _monitor.reset()
    _local.busy = False
    if _state["splits"] and _state["blas_held"] and blas.get_threads() == 1:
        blas.set_threads(_state["blas_saved"])
    _state.update(splits=0, blas_held=False, executor=None, pid=None)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


# ---- splitting a batch ------------------------------------------------------------------
def in_split():
    """True inside a worker thread or inside a split: work must not be split again."""
    return getattr(_local, "busy", False)


def chunks(n, work_per_item):
    """How many chunks ``map_batch`` would cut ``range(n)`` into: one inside a split, while
    another thread's split runs (the budget is in use), and on a thread running at lowered
    priority (a DataLoader worker: the pool's threads would inherit its priority)."""
    if in_split() or _state["splits"] or _background():
        return 1
    return min(num_threads(), n, max(1, (n * work_per_item) // MIN_CHUNK_WORK))


def _background():
    b = getattr(_local, "background", None)
    if b is None:
        try:
            b = (os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
                 > os.getpriority(os.PRIO_PROCESS, os.getpid()))
        except (AttributeError, OSError):
            b = False
        _local.background = b
    return b


def map_batch(fn, n, work_per_item, blocks=True):
    """``[fn(start, stop) for each chunk of range(n)]``, the chunks run on ``num_threads()``
    threads (this one included) when each gets enough work; serial inside a chunk. With
    ``blocks`` each thread's share is cut further into blocks of ``BLOCK_WORK``."""
    block = max(1, BLOCK_WORK // max(1, work_per_item)) if blocks else n
    k = chunks(n, work_per_item)
    if k <= 1:
        return _blocks(fn, 0, n, block)
    return map_bounds(lambda a, b: _blocks(fn, a, b, block),
                      [(j * n // k, (j + 1) * n // k) for j in range(k)], flatten=True)


def map_bounds(fn, bounds, flatten=False):
    """``[fn(a, b) for (a, b) in bounds]``, the first on this thread and the others on
    worker threads at once (concatenated when ``flatten``: each gives a list). The BLAS
    runs single-threaded meanwhile."""
    k = len(bounds)
    _enter_split()
    try:
        with _lock:      # (submitting under the lock: another caller may replace the pool)
            ex = _state["executor"]
            if ex is None or ex._max_workers < k - 1 or _state["pid"] != os.getpid():
                # (a forked child inherits the executor but not its threads: make a new one)
                if ex is not None and _state["pid"] == os.getpid():
                    ex.shutdown(wait=False)
                ex = _state["executor"] = ThreadPoolExecutor(
                    max(1, k - 1), thread_name_prefix="funcgrad-worker",
                    initializer=_mark_busy)
                _state["pid"] = os.getpid()
            # each slice runs in a copy of the caller's context: NumPy's errstate (a
            # context variable) and funcgrad's default device apply to it as to the caller
            futures = [ex.submit(contextvars.copy_context().run, fn, a, b)
                       for a, b in bounds[1:]]
        _local.busy = True
        try:
            first = fn(*bounds[0])
        finally:
            _local.busy = False
            wait(futures)        # the split ends when every slice has, failed or not
        if not flatten:
            return [first] + [f.result() for f in futures]
        out = first
        for f in futures:
            out += f.result()
        return out
    finally:
        _exit_split()


def _blocks(fn, a, b, block):
    return [fn(i, min(i + block, b)) for i in range(a, b, block)]


def _mark_busy():
    _local.busy = True

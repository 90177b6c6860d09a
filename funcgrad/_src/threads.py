"""The worker threads that split work along a batch axis.

Used by the convolution and pooling implementations (whose per-image matrix products are
too small for BLAS to thread) and by ``jit``'s row splitting (funcgrad/_src/rows.py),
which runs a whole training step on slices of the batch at once.

Handing work to a thread costs a wake-up (50-80 µs round trip measured on a 2-core
virtual machine), so callers split only work that is worth it, and a call made inside a
worker (or inside a split) runs serially instead of splitting again.
"""
from __future__ import annotations

import contextvars
import os
import threading

_state = {"n": None, "executor": None, "pid": None}
_lock = threading.Lock()
_local = threading.local()
MIN_CHUNK_WORK = 1 << 16      # elements of work per thread worth a hand-off
# A thread's share is cut into blocks of at most this many elements of work, run one
# after another, so that work buffers (im2col) stay in cache: measured 7% faster on the
# W5 step than whole shares (2-core VM; 1 << 18 and below were slower: per-call costs).
BLOCK_WORK = 1 << 19


def set_num_threads(n):
    """Use ``n`` threads for the convolution and pooling implementations and for jit's
    row splitting. ``None`` restores the default: the environment variable
    ``FUNCGRAD_NUM_THREADS``, else NumPy's BLAS thread count (through threadpoolctl, when
    installed), else the CPUs this process may run on."""
    with _lock:
        _state["n"] = None if n is None else max(1, int(n))


def num_threads():
    """The number of threads that batch-split work uses."""
    n = _state["n"]
    if n is None:
        n = _state["n"] = _default_threads()
    return n


def _default_threads():
    env = os.environ.get("FUNCGRAD_NUM_THREADS")
    if env and env.isdigit() and int(env) > 0:
        return int(env)
    try:
        from threadpoolctl import threadpool_info
        counts = [i["num_threads"] for i in threadpool_info() if i.get("user_api") == "blas"]
        if counts:
            return max(counts)
    except Exception:      # threadpoolctl is optional; any failure means "unknown"
        pass
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def in_split():
    """True inside a worker thread or inside a split: work must not be split again."""
    return getattr(_local, "busy", False)


def chunks(n, work_per_item):
    """How many chunks ``map_batch`` would cut ``range(n)`` into."""
    if in_split():
        return 1
    return min(num_threads(), n, max(1, (n * work_per_item) // MIN_CHUNK_WORK))


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
    worker threads at once (concatenated when ``flatten``: each gives a list)."""
    k = len(bounds)
    with _lock:      # (submitting under the lock: another caller may replace the pool)
        ex = _state["executor"]
        if ex is None or ex._max_workers < k - 1 or _state["pid"] != os.getpid():
            # (a forked child inherits the executor but not its threads: make a new one)
            from concurrent.futures import ThreadPoolExecutor
            if ex is not None and _state["pid"] == os.getpid():
                ex.shutdown(wait=False)
            ex = _state["executor"] = ThreadPoolExecutor(
                max(1, k - 1), thread_name_prefix="funcgrad-worker", initializer=_mark_busy)
            _state["pid"] = os.getpid()
        # each slice runs in a copy of the caller's context: NumPy's errstate (a context
        # variable) and funcgrad's default device apply to it as to the caller
        futures = [ex.submit(contextvars.copy_context().run, fn, a, b) for a, b in bounds[1:]]
    _local.busy = True
    try:
        first = fn(*bounds[0])
    finally:
        _local.busy = False
    if not flatten:
        return [first] + [f.result() for f in futures]
    out = first
    for f in futures:
        out += f.result()
    return out


def _blocks(fn, a, b, block):
    return [fn(i, min(i + block, b)) for i in range(a, b, block)]


def _mark_busy():
    _local.busy = True

"""funcgrad.distributed: more than one process, on MPI (host arrays) and NCCL (GPU arrays).

Launch the same script in every process (``mpiexec -n 4 python train.py``), call
:func:`initialize` once, then use the collectives on pytrees:

    >>> import numpy as np, funcgrad, funcgrad.distributed as dist
    >>> dist.initialize()                   # one process here: a group of one
    >>> funcgrad.process_index(), funcgrad.process_count()
    (0, 1)
    >>> dist.all_reduce({"w": np.ones(2, np.float32), "n": np.int64(3)}, op="mean")
    {'n': array(3), 'w': array([1., 1.], dtype=float32)}

Collectives (:func:`all_reduce`, :func:`broadcast`, :func:`all_gather`, :func:`barrier`)
take any pytree. Leaves keep their shape and dtype; the leaves of one dtype travel as one
flat buffer (one message per dtype, not one per leaf); CuPy arrays go through NCCL
without a host copy when the group was started with ``backend="nccl"``. Before any data
moves, the ranks compare a fingerprint of the tree (key paths, shapes, dtypes): a
mismatch raises the same ``ValueError`` on every rank, naming the first differing key
path, instead of a hang or garbage.

The collectives are differentiable (the job is read as one program whose result is the
sum of every rank's result: the transpose of a sum-all-reduce is a sum-all-reduce) and
work under ``jit`` as effectful equations, kept in order and never removed.

A failing rank ends the job, never hangs it: after :func:`initialize`, an uncaught
exception (in any thread) prints its traceback, and an uncaught ``SystemExit`` with a
non-zero code (``sys.exit(3)``, ``raise SystemExit(3)``, an argparse error) its message,
then the whole job is aborted (MPI Abort) with that status; ``os._exit(n)`` makes the
launcher end the job. A ``SystemExit`` that is caught, or has code 0 or None, aborts
nothing, and a clean exit finalizes MPI as usual. (Python hands no hook its exit status:
funcgrad finds the SystemExit in the moment between the script's end and the process's
exit, when CPython flushes ``sys.stderr``.) One limit: for a script started with
``python -m`` or ``python -c``, ``sys.exit(n)`` aborts but a bare ``raise SystemExit(n)``
cannot be seen; call :func:`abort` there. ``initialize(abort_on_error=False)`` opts out
of all of it (the job then hangs if a rank fails while others wait).

Every rank must call the same collectives in the same order (SPMD), as with MPI itself.
"""
from __future__ import annotations

import functools

from ._src import comm as _comm
from ._src.prims import collectives as _coll
from ._src.tree_util import keystr, tree_flatten, tree_flatten_with_path, tree_unflatten

__all__ = ["abort", "all_gather", "all_reduce", "barrier", "broadcast", "initialize",
           "is_initialized", "is_main_process", "print0", "process_count", "process_index",
           "spmd"]


def initialize(backend=None, *, abort_on_error=True):
    """Join the processes of this job into one group.

    Args:
      backend: ``None`` (detect: under an MPI launcher such as ``mpiexec``, MPI; started
        alone, a group of one and nothing to set up), ``"mpi"`` (host arrays through
        mpi4py; CuPy arrays by way of a host copy) or ``"nccl"`` (CuPy arrays through
        NCCL, one GPU per process picked by local rank; host arrays still through MPI).
      abort_on_error: end every rank (MPI Abort) when one rank fails: an uncaught
        exception in any thread, or an uncaught ``SystemExit`` with a non-zero code (see
        the module's notes). ``False`` installs no hook (``sys.excepthook``,
        ``threading.excepthook``, ``sys.exit`` and ``sys.stderr.flush`` stay as they were).

    Calling it again is harmless. It also shares the machine's CPUs among the processes
    running on it (each gets its share of funcgrad's thread budget unless a budget was
    chosen with ``config.update("num_threads", ...)`` or ``OMP_NUM_THREADS``).

    Raises:
      ImportError: mpi4py is missing; the message says ``pip install "funcgrad[distributed]"``.
    """
    _comm.initialize(backend, abort_on_error=abort_on_error)


def abort(code=1):
    """End every process of the job at once with exit status ``code`` (MPI Abort).

    An uncaught exception or ``SystemExit`` with a non-zero code does this by itself
    after :func:`initialize`; call it where that cannot be seen (a bare ``raise
    SystemExit(code)`` in a script started with ``python -m`` or ``-c``)."""
    _comm.abort(code)


def is_initialized() -> bool:
    """True once :func:`initialize` has started a group of processes."""
    return _comm.group() is not None


def process_index() -> int:
    """This process's rank: 0 .. process_count() - 1 (0 without a group)."""
    return _comm.process_index()


def process_count() -> int:
    """How many processes the job has (1 without a group)."""
    return _comm.process_count()


def is_main_process() -> bool:
    """True on rank 0, the process that writes checkpoints and logs."""
    return _comm.process_index() == 0


_paths = {}      # treedef -> key path strings (a training loop repeats one structure)


def _flatten(tree):
    leaves, treedef = tree_flatten(tree)
    try:
        paths = _paths.get(treedef)
    except TypeError:                  # unhashable static data in a custom node
        paths, treedef = None, treedef
    if paths is None:
        paths = tuple(keystr(p) for p, _ in tree_flatten_with_path(tree)[0])
        try:
            if len(_paths) > 256:
                _paths.clear()
            _paths[treedef] = paths
        except TypeError:
            pass
    return leaves, paths, treedef


def all_reduce(tree, op="sum"):
    """Every leaf reduced over the processes with ``op``: ``"sum"``, ``"mean"``, ``"max"``
    or ``"min"``; the same result on every rank.

    Integer leaves under ``"mean"`` get the sum divided by ``process_count()`` rounded
    down (so equal values stay equal); booleans reduce as "any" (sum, max) or "all" (min).
    """
    leaves, paths, treedef = _flatten(tree)
    return tree_unflatten(treedef, _coll.all_reduce_leaves(leaves, op, paths))


def broadcast(tree, root=0):
    """Rank ``root``'s tree on every rank (every rank passes a tree of that structure)."""
    leaves, paths, treedef = _flatten(tree)
    return tree_unflatten(treedef, _coll.broadcast_leaves(leaves, root, paths))


def all_gather(tree):
    """Every leaf stacked over the processes on a new leading axis of size
    ``process_count()`` (entry ``r`` is rank ``r``'s leaf)."""
    leaves, paths, treedef = _flatten(tree)
    return tree_unflatten(treedef, _coll.gather_leaves(leaves, paths))


def barrier():
    """Wait until every process reaches this point."""
    _coll.barrier()


def spmd(fun, axis_name):
    """``fun`` with ``axis_name`` naming the processes: inside it, ``funcgrad.lax.psum(x,
    axis_name)`` (and ``pmean``, ``pmax``, ``pmin``, ``all_gather``, ``axis_index``) act
    across processes. The per-example code that ``vmap(fun, axis_name=name)`` runs on one
    process then runs unchanged with one example (or one shard) per process.

        >>> import numpy as np, funcgrad.lax as lax
        >>> spmd(lambda x: lax.pmean(x, "batch"), "batch")(np.array([2.0]))
        array([2.])
    """
    @functools.wraps(fun)
    def wrapped(*args, **kwargs):
        with _coll.bind_process_axis(axis_name):
            return fun(*args, **kwargs)
    return wrapped


def print0(*args, **kwargs):
    """``print`` on rank 0 only (logs are written once, not once per process)."""
    if _comm.process_index() == 0:
        kwargs.setdefault("flush", True)
        print(*args, **kwargs)

"""The process group: which engine moves data between processes, and flat-buffer collectives.

funcgrad writes no networking of its own. Host (NumPy) arrays travel through MPI
(``mpi4py``); device (CuPy) arrays through NCCL (``cupy.cuda.nccl``) when the group was
started with ``backend="nccl"``, else through MPI by way of a host copy. This module
knows the engines; the collective primitives (``prims/collectives.py``) call
:func:`reduce_leaves`, :func:`broadcast_leaves`, :func:`gather_leaves` and
:func:`barrier` with flat lists of arrays.

Bucketing: leaves of one array module and dtype are packed into one flat buffer and
move as one message (many small leaves cost one latency, not one each). Before any data
moves, every rank's description of the leaves (key paths, shapes, dtypes, the operation)
is checked with one small all-reduce of its hash; on a mismatch every rank raises the
same error naming the first differing key path, so no rank is left waiting.

The group is process-wide state (like MPI's own): :func:`initialize` sets it once.
Without it, ``process_index()`` is 0 and ``process_count()`` is 1, and the collectives
return their inputs (a group of one), as in JAX.
"""
from __future__ import annotations

import hashlib
import os
import sys
import threading
import time
import weakref

import numpy as np

from . import backend as _backend
from . import config, threads
from .errors import FuncgradTypeError, FuncgradValueError

INSTALL_HINT = 'pip install "funcgrad[distributed]"  (installs mpi4py and MPICH)'

# Environment variables that MPI launchers set in every process they start.
_LAUNCH_VARS = ("PMI_SIZE", "PMI_RANK", "OMPI_COMM_WORLD_SIZE", "PMIX_RANK",
                "MV2_COMM_WORLD_SIZE", "MPI_LOCALNRANKS", "HYDI_CONTROL_FD")


class _Group:
    """The initialized process group: a host engine and, with NCCL, a device engine."""

    def __init__(self, host, device=None, backend="mpi"):
        self.host = host
        self.device = device
        self.backend = backend
        self.rank = host.rank
        self.size = host.size


_group = None
_checked = {}          # description -> hash (a cache; descriptions repeat every step)
_modules = {}          # leaves' types -> their array modules' names (a cache)


def launched_by_mpi() -> bool:
    """True when an MPI launcher (mpiexec, mpirun, srun with PMI) started this process."""
    return any(v in os.environ for v in _LAUNCH_VARS)


def group():
    return _group


def process_index() -> int:
    return 0 if _group is None else _group.rank


def process_count() -> int:
    return 1 if _group is None else _group.size


def _import_mpi():
    try:
        from mpi4py import MPI
    except ImportError as e:
        raise ImportError(
            f"funcgrad.distributed needs mpi4py and an MPI library ({e}). Install them "
            f"with: {INSTALL_HINT}") from None
    return MPI


def initialize(backend=None, *, abort_on_error=True, _nccl=None, _device_xp=None,
               _device_ptr=None):
    """Start the process group (see ``funcgrad.distributed.initialize``)."""
    global _group
    if backend not in (None, "mpi", "nccl"):
        raise FuncgradValueError(
            f"funcgrad.distributed.initialize: backend must be None, 'mpi' or 'nccl', got "
            f"{backend!r}")
    if _group is not None:
        if backend is not None and backend != _group.backend:
            raise FuncgradValueError(
                f"funcgrad.distributed.initialize: already initialized with backend "
                f"{_group.backend!r}; it cannot change to {backend!r} in this process")
        return _group
    if backend is None and not launched_by_mpi():
        return None                   # one process: nothing to start
    MPI = _import_mpi()
    host = MPIEngine(MPI, MPI.COMM_WORLD)
    device = None
    if backend == "nccl":
        device = NcclEngine.create(host, nccl=_nccl, xp=_device_xp, ptr=_device_ptr)
    _group = _Group(host, device, backend or "mpi")
    if abort_on_error:
        _install_abort_hook(host)
    _share_cpus(host)
    return _group


def shutdown():
    """Forget the group (tests; MPI itself is finalized by mpi4py at exit)."""
    global _group
    _group = None


# ---- failure handling ---------------------------------------------------------------------
# A rank that ends while the others wait in a collective would hang the job: a normal
# Python exit runs MPI_Finalize, which waits for every rank. So, after initialize(), every
# way a process can fail ends the whole job with MPI Abort instead:
#   - an uncaught exception (main thread: sys.excepthook; other threads:
#     threading.excepthook) prints its traceback, then aborts with status 1;
#   - an uncaught SystemExit with a non-zero or non-integer code, however raised
#     (sys.exit(n), raise SystemExit(n), argparse errors), prints its message, then
#     aborts with that status. Python hands no hook the exit status (atexit handlers run
#     after it is forgotten), but when a script file ends it flushes sys.stderr, from C,
#     with the exception still alive: at that moment, and only then, the hook that
#     _install_flush_hook puts on sys.stderr.flush looks for it. A SystemExit that is
#     caught, or whose code is 0 or None, aborts nothing; a clean exit finalizes MPI as
#     usual. Scripts started with -m or -c get no such flush: there sys.exit(n) (main
#     thread) aborts when called, and a bare `raise SystemExit(n)` should be
#     funcgrad.distributed.abort(n);
#   - os._exit(n) needs nothing: a rank that ends without MPI_Finalize makes the
#     launcher (mpiexec) end the job (MPICH's hydra does so even for os._exit(0), and
#     the job's status is then 0).
# initialize(abort_on_error=False) installs none of this.
def _install_abort_hook(host):
    def say(what):
        try:
            sys.stderr.write(f"[funcgrad rank {host.rank}/{host.size}] {what}; aborting "
                             "every process of the job\n")
        finally:
            _flush_std()

    previous = sys.excepthook

    def hook(kind, value, tb):
        try:
            previous(kind, value, tb)
            say(f"uncaught {kind.__name__}")
        finally:
            host.abort(1)

    sys.excepthook = hook
    previous_thread_hook = threading.excepthook

    def thread_hook(args):
        try:
            previous_thread_hook(args)
        finally:
            if args.exc_type is not SystemExit:       # SystemExit ends only its thread
                say(f"uncaught {args.exc_type.__name__} in thread "
                    f"{getattr(args.thread, 'name', '?')}")
                host.abort(1)

    threading.excepthook = thread_hook

    def abort_for(exc):
        status = _exit_status(exc)
        if status == 0:
            return
        if not isinstance(exc.code, int):
            sys.stderr.write(f"{exc.code}\n")       # what Python would have printed
        say(f"SystemExit({exc.code!r})")
        host.abort(status)

    if _install_flush_hook(abort_for):
        # CPython's sys.exit leaves its SystemExit unmade (just the code) when nothing
        # catches it; raised from Python it is a SystemExit the flush hook can find.
        def exit_hook(status=None):
            raise SystemExit(status)
    else:
        # -m / -c: no end-of-script flush to watch, so sys.exit itself (main thread only;
        # in another thread it ends just that thread) aborts for a non-zero status.
        previous_exit = sys.exit

        def exit_hook(status=None):
            if threading.current_thread() is threading.main_thread():
                abort_for(SystemExit(status))
            previous_exit(status)

    exit_hook.__doc__ = sys.exit.__doc__
    sys.exit = exit_hook


# seconds a failing rank waits, after flushing its output, before MPI Abort
ABORT_GRACE_S = 0.5


def _flush_std():
    for f in (sys.stdout, sys.stderr):
        try:
            f.flush()
        except Exception:
            pass


def _exit_status(exc):
    """The status Python exits with for an uncaught SystemExit ``exc``."""
    code = exc.code
    if code is None:
        return 0
    if isinstance(code, int):
        return code if 0 <= code < 256 else 1
    return 1                     # Python prints a non-integer code and exits with 1


def _install_flush_hook(abort_for):
    """Watch the flush of sys.stderr that CPython does, from C, when the main script file
    has ended: if it ended with an uncaught SystemExit, ``abort_for(it)``. False when the
    script is not a file run as ``python script.py`` (or stderr takes no attribute)."""
    main = sys.modules.get("__main__")
    if main is None or getattr(main, "__spec__", None) is not None or not getattr(
            main, "__file__", None) or sys.argv[:1] == ["-c"]:
        return False
    stream = sys.stderr
    original = getattr(stream, "flush", None)
    if original is None:
        return False
    done = []

    def flush():
        result = original()
        if not done:
            try:
                sys._getframe(1)              # a caller in Python: an ordinary flush
            except ValueError:
                done.append(True)
                exc = _uncaught_system_exit(main.__dict__)
                if exc is not None:
                    abort_for(exc)
        return result

    try:
        stream.flush = flush
    except (AttributeError, TypeError):
        return False
    return True


def _uncaught_system_exit(main_globals):
    """The SystemExit that ended the main script, found while CPython holds it between
    the end of the script and its exit, else None. It ended the script's module frame:
    its traceback's entry for that frame is where the frame stopped (a SystemExit caught
    there and kept has an entry where it was raised, and the frame ran on). Python 3.12+
    attaches the traceback to the exception; 3.10 and 3.11 hold the two apart, and a
    SystemExit not yet given a traceback is then the one (a caught one has its own)."""
    import gc
    import types

    def ended_here(tb):
        f = tb.tb_frame
        return (f.f_back is None and f.f_globals is main_globals
                and f.f_code.co_name == "<module>" and tb.tb_lasti == f.f_lasti)

    unattached, ended = None, False
    for o in gc.get_objects():
        if isinstance(o, SystemExit):
            if o.__traceback__ is None:
                unattached = o
            elif ended_here(o.__traceback__):
                return o
        elif type(o) is types.TracebackType and not ended and ended_here(o):
            ended = True
    return unattached if ended else None


def abort(code=1):
    """End every process of the job now with exit status ``code`` (MPI Abort)."""
    _flush_std()
    if _group is None:
        os._exit(code)
    _group.host.abort(code)


def _share_cpus(host):
    """Processes on one machine share its CPUs: each gets its share of the thread budget
    unless the user chose a budget (config or environment)."""
    try:
        if config._OPTIONS.get("num_threads") is not None or any(
                v in os.environ for v in threads._ENV_VARS):
            return
        local = host.local_size()
        if local > 1:
            config.update("num_threads", max(1, threads._cpus_allowed() // local))
    except Exception:       # a budget is a tuning, never a reason to fail a launch
        pass


# ---- engines --------------------------------------------------------------------------------
class MPIEngine:
    """Flat NumPy buffers through mpi4py's buffer interface (no pickling)."""

    name = "mpi"

    def __init__(self, MPI, comm):
        self.MPI = MPI
        self.comm = comm
        self.rank = comm.Get_rank()
        self.size = comm.Get_size()
        self._ops = {"sum": MPI.SUM, "max": MPI.MAX, "min": MPI.MIN,
                     "lor": MPI.BOR, "land": MPI.BAND}

    def local_rank(self):
        try:
            local = self.comm.Split_type(self.MPI.COMM_TYPE_SHARED)
            r = local.Get_rank()
            local.Free()
            return r
        except Exception:
            return self.rank

    def local_size(self):
        try:
            local = self.comm.Split_type(self.MPI.COMM_TYPE_SHARED)
            n = local.Get_size()
            local.Free()
            return n
        except Exception:
            return 1

    def allreduce(self, buf, op):
        """In place: ``buf`` (1-d, contiguous) becomes the reduction over all ranks."""
        self.comm.Allreduce(self.MPI.IN_PLACE, buf, op=self._ops[op])

    def bcast(self, buf, root):
        self.comm.Bcast(buf, root=root)

    def allgather(self, buf):
        out = np.empty((self.size,) + buf.shape, buf.dtype)
        self.comm.Allgather(buf, out)
        return out

    def barrier(self):
        self.comm.Barrier()

    def allgather_obj(self, obj):
        return self.comm.allgather(obj)

    def bcast_obj(self, obj, root=0):
        return self.comm.bcast(obj, root=root)

    def abort(self, code=1):
        # The launcher forwards this rank's output through a pipe, and Abort ends the job
        # with whatever is still in it lost (a traceback cut short, a missing message):
        # flush, and give the launcher a moment to read it first.
        _flush_std()
        time.sleep(ABORT_GRACE_S)
        self.comm.Abort(code)
        os._exit(code)          # MPICH's Abort can return before the launcher ends us


class NcclEngine:
    """Flat device buffers through NCCL: pointers in, the same pointers out, no host copy.

    ``nccl`` is ``cupy.cuda.nccl`` (or a stand-in with the same calls), ``xp`` the device
    array module, ``ptr(a)`` a device array's address. The unique id that joins the
    communicator travels through the host engine (MPI)."""

    name = "nccl"
    _DTYPES = {"int8": "NCCL_INT8", "uint8": "NCCL_UINT8", "int32": "NCCL_INT32",
               "uint32": "NCCL_UINT32", "int64": "NCCL_INT64", "uint64": "NCCL_UINT64",
               "float16": "NCCL_FLOAT16", "float32": "NCCL_FLOAT32",
               "float64": "NCCL_FLOAT64"}

    def __init__(self, host, nccl, xp, ptr, stream):
        self.host = host
        self.nccl = nccl
        self.xp = xp
        self.ptr = ptr
        self.stream = stream
        self.rank, self.size = host.rank, host.size
        uid = nccl.get_unique_id() if host.rank == 0 else None
        uid = host.bcast_obj(uid, 0)
        self.comm = nccl.NcclCommunicator(host.size, uid, host.rank)
        self._ops = {"sum": nccl.NCCL_SUM, "max": nccl.NCCL_MAX, "min": nccl.NCCL_MIN,
                     "lor": nccl.NCCL_MAX, "land": nccl.NCCL_MIN}

    @classmethod
    def create(cls, host, nccl=None, xp=None, ptr=None):
        if nccl is None:
            try:
                import cupy
                from cupy.cuda import nccl as cupy_nccl
            except ImportError as e:
                raise ImportError(
                    f"funcgrad.distributed.initialize(backend='nccl') needs CuPy with NCCL "
                    f"({e}); install the gpu extra (pip install \"funcgrad[gpu,distributed]\")"
                ) from None
            n = cupy.cuda.runtime.getDeviceCount()
            if n == 0:
                raise RuntimeError("initialize(backend='nccl'): no CUDA device is visible")
            cupy.cuda.Device(host.local_rank() % n).use()
            return cls(host, cupy_nccl, cupy, lambda a: a.data.ptr,
                       lambda: cupy.cuda.get_current_stream().ptr)
        return cls(host, nccl, xp, ptr, lambda: 0)

    def _dtype(self, dtype):
        name = self._DTYPES.get(np.dtype(dtype).name)
        if name is None:
            raise FuncgradTypeError(f"NCCL cannot move {np.dtype(dtype).name} arrays")
        return getattr(self.nccl, name)

    def allreduce(self, buf, op):
        p = self.ptr(buf)
        self.comm.allReduce(p, p, buf.size, self._dtype(buf.dtype), self._ops[op],
                            self.stream())

    def bcast(self, buf, root):
        self.comm.bcast(self.ptr(buf), buf.size, self._dtype(buf.dtype), root, self.stream())

    def allgather(self, buf):
        out = self.xp.empty((self.size,) + tuple(buf.shape), buf.dtype)
        self.comm.allGather(self.ptr(buf), self.ptr(out), buf.size, self._dtype(buf.dtype),
                            self.stream())
        return out

    def barrier(self):
        self.host.barrier()


# ---- structure check ------------------------------------------------------------------------
def _describe(paths, leaves, what):
    """What every rank must agree on: the collective, and per leaf its key path, shape,
    dtype and array module. The module matters because it picks the engine: with NCCL a
    NumPy leaf goes through MPI and a CuPy leaf through NCCL, so ranks whose leaves
    differ only in array module would otherwise pass the check and then wait in
    different engines. (The engine follows from the module, the group's engines being
    the same on every rank; the dtype on the wire from the dtype, the operation and the
    engine.)"""
    types = tuple(map(type, leaves))
    modules = _modules.get(types)
    if modules is None:
        if len(_modules) > 1024:
            _modules.clear()
        modules = tuple([_backend.array_module(x).__name__ for x in leaves])
        _modules[types] = modules
    return (what, paths, tuple([tuple(x.shape) for x in leaves]),
            tuple([x.dtype for x in leaves]), modules)


def _route(g, x):
    """How leaf ``x`` travels, in words: its array module and engine."""
    engine, xp, via_host = _engine_for(g, x)
    name = getattr(xp, "__name__", type(x).__name__)
    return f"{name} over {engine.name}" + (" by way of a host copy" if via_host else "")


def _hash(desc):
    h = _checked.get(desc)
    if h is None:
        digest = hashlib.blake2b(repr(desc).encode(), digest_size=8).digest()
        h = int.from_bytes(digest, "little") >> 2        # fits an int64 with its negation
        if len(_checked) > 4096:
            _checked.clear()
        _checked[desc] = h
    return h


def check_structure(g, paths, leaves, what):
    """Raise the same FuncgradValueError on every rank if the ranks' leaves differ."""
    desc = _describe(paths, leaves, what)
    h = _hash(desc)
    probe = np.array([h, -h], np.int64)
    g.host.allreduce(probe, "max")
    if probe[0] == h and -probe[1] == h:
        return
    # each leaf's module with its engine, in words, for the message
    descs = g.host.allgather_obj(desc[:4] + (tuple([_route(g, x) for x in leaves]),))
    raise FuncgradValueError(_first_difference(descs, what))


def _first_difference(descs, what):
    ref = descs[0]

    def leaves(d):
        return [(p, s, np.dtype(t).name, r) for p, s, t, r in zip(d[1], d[2], d[3], d[4])]
    for r, d in enumerate(descs[1:], 1):
        if d == ref:
            continue
        if d[0] != ref[0]:
            return (f"{what}: the processes called different collectives at the same point "
                    f"(rank 0: {ref[0]}; rank {r}: {d[0]}); every rank must run the same "
                    "sequence of collectives")
        a, b = leaves(ref), leaves(d)
        for k in range(min(len(a), len(b))):
            if a[k] != b[k]:
                pa, sa, da, ra = a[k]
                pb, sb, db, rb = b[k]
                path = pa if pa == pb else f"{pa or '<root>'} (rank 0) / {pb or '<root>'} (rank {r})"
                if (pa, sa, da) == (pb, sb, db):
                    return (f"{what}: the leaf at key path {path or '<root>'} is a "
                            f"{da}{list(sa)} array on every rank, but its array module "
                            f"differs: rank 0 has {ra}, rank {r} has {rb}. Every rank must "
                            "pass the leaf as the same kind of array (NumPy or CuPy), so that "
                            "all of them move it through the same engine")
                return (f"{what}: the tree differs between processes at key path "
                        f"{path or '<root>'}: rank 0 has {da}{list(sa)}, rank {r} has "
                        f"{db}{list(sb)}. Every rank must pass a tree of the same structure, "
                        "shapes and dtypes")
        longer, n = (0, len(a)) if len(a) > len(b) else (r, len(b))
        first = (a if longer == 0 else b)[min(len(a), len(b))][0]
        return (f"{what}: the tree differs between processes: rank 0 has {len(a)} leaves, "
                f"rank {r} has {len(b)}; the first leaf only rank {longer} has is at key "
                f"path {first or '<root>'}")
    return f"{what}: the trees differ between processes"


# ---- bucketed collectives -------------------------------------------------------------------
def _engine_for(g, x):
    """(engine, array module, via_host) for leaf ``x``."""
    if type(x) is np.ndarray:
        return g.host, np, False
    xp = _backend.array_module(x)
    if xp is np:
        return g.host, np, False
    if g.device is not None and xp is g.device.xp:
        return g.device, xp, False
    return g.host, xp, True                # a device array under MPI: a host copy


def _as_leaf(x):
    if type(x) is np.ndarray:
        return x
    return x if hasattr(x, "dtype") and hasattr(x, "shape") and not isinstance(
        x, np.generic) else np.asarray(x)


def _wire(dtype, op, engine_name):
    """The dtype a buffer travels as and the engine operation, for ``dtype`` and ``op``."""
    dtype = np.dtype(dtype)
    if dtype.kind == "b":
        return np.dtype(np.uint8), {"sum": "lor", "max": "lor", "min": "land"}.get(op, op)
    if dtype.kind == "c" and op in ("max", "min"):
        raise FuncgradTypeError(f"all_reduce: op={op!r} is not defined for complex leaves")
    if dtype == np.float16 and engine_name == "mpi":
        return np.dtype(np.float32), op       # MPI has no portable half type
    if dtype.kind == "c" and engine_name == "nccl":
        return np.dtype(np.float32 if dtype == np.complex64 else np.float64), op
    if dtype.kind == "V" or dtype.kind == "O":
        raise FuncgradTypeError(f"collectives cannot move {dtype} leaves")
    return dtype, op


def _buckets(g, leaves):
    """Group leaf positions by (engine, module, via_host, dtype), in first-seen order."""
    groups = {}
    for i, x in enumerate(leaves):
        engine, xp, via_host = _engine_for(g, x)
        key = (id(engine), xp, via_host, x.dtype)
        entry = groups.get(key)
        if entry is None:
            entry = groups[key] = (engine, [])
        entry[1].append(i)
    return groups


class _BufferPool:
    """Reuses a host bucket buffer once every array made from it is gone.

    The leaves a collective returns are views of its bucket buffer; when the caller
    has dropped all of them (as a training step does with last step's gradients), the
    next call of the same size writes into the same memory instead of into fresh memory,
    whose first touch costs a page fault per 4 KiB (on a 40 MB gradient that is a third
    of an all-reduce's time). PyTorch's DDP keeps its buckets for the same reason.

    Liveness is known exactly, never from reference counts (which Python 3.14 may report
    lower than the true count: borrowed references, CPython gh-130704, numpy#28681). The
    pool keeps the memory; each call hands out an array made on a fresh ``memoryview``
    of it. NumPy's base chains stop at an object that is not an ndarray, so every view of
    the handed-out array (views of views, reshapes, complex views) holds the handed-out
    array, which holds that memoryview, and the memory is reused only once a weak
    reference to the memoryview is dead."""

    def __init__(self, keep=8):
        self.keep = keep
        self.buffers = {}          # (size, dtype) -> (memory, weakref to its last handout)

    def get(self, size, dtype):
        key = (int(size), np.dtype(dtype))
        entry = self.buffers.pop(key, None)
        if entry is not None and entry[1]() is None:
            mem = entry[0]
        else:
            mem = np.empty(size, dtype)
        buf = np.frombuffer(memoryview(mem), dtype)
        # buf.base is a memoryview (NumPy's own or ours): alive while any view is
        self.buffers[key] = (mem, weakref.ref(buf.base))   # most recently used last
        while len(self.buffers) > self.keep:
            self.buffers.pop(next(iter(self.buffers)))
        return buf


_pool = _BufferPool()


def _pack(xp, leaves, idx, wire, via_host, scale=None):
    """One flat buffer of dtype ``wire`` holding leaves ``idx`` (times ``scale``, when
    given, in the same pass); the engine writes it in place, so it never aliases a
    leaf."""
    parts = []
    for i in idx:
        a = leaves[i]
        if via_host:
            a = a.get()
        a = a.reshape(-1)
        if a.dtype.kind == "c" and wire.kind == "f":
            a = a.view(wire)               # NCCL sums complex numbers as pairs of reals
        parts.append(a)
    if xp is np or via_host:
        buf = _pool.get(sum(p.size for p in parts), wire)
        if scale is not None:
            off = 0
            for p in parts:
                np.multiply(p, scale, out=buf[off:off + p.size], casting="unsafe")
                off += p.size
        elif len(parts) == 1:
            np.copyto(buf, parts[0], casting="unsafe")
        else:
            np.concatenate(parts, out=buf, casting="unsafe")
        return buf
    if len(parts) == 1:
        buf = parts[0].astype(wire, copy=True)
    else:
        buf = xp.concatenate(parts)
        buf = buf if buf.dtype == wire else buf.astype(wire)
    if scale is not None:
        buf *= scale
    return buf


# A returned leaf that is a view of its bucket keeps the whole bucket alive (a kept loss
# would keep a 40 MB gradient buffer). Leaves under 1/_SMALL of their bucket are copied
# out, as long as the copies stay within 1/_COPY_BUDGET of it (so a tree of many similar
# leaves still comes back as views, at no extra copying); 0-d leaves always are. A kept
# leaf that is still a view is then, but for that budget, at least 1/_SMALL of its bucket.
_SMALL = 64
_COPY_BUDGET = 16


def _unpack(buf, xp, leaves, idx, out, via_host, lead=()):
    """Split ``buf`` (last axis) back into leaves ``idx`` of ``out``."""
    total = buf.shape[-1]
    budget = 0 if lead or via_host else total // _COPY_BUDGET    # via_host: copied anyway
    off = 0
    for i in idx:
        x = leaves[i]
        dt = x.dtype
        complex_pairs = dt.kind == "c" and buf.dtype.kind == "f"
        m = 2 * x.size if complex_pairs else x.size                # elements on the wire
        piece = buf[..., off:off + m]
        off += m
        converts = piece.dtype != dt and not complex_pairs         # astype copies
        if lead:
            if not converts:
                piece = piece.copy()       # a strided slice of the gathered rows
        elif not converts and not via_host and (
                x.ndim == 0 or (m * _SMALL <= total and m <= budget)):
            piece = piece.copy()
            budget -= m
        if complex_pairs:
            piece = piece.view(dt)         # NCCL summed the complex numbers as real pairs
        elif converts:
            piece = piece.astype(dt)
        piece = piece.reshape(tuple(lead) + tuple(x.shape))
        if via_host:
            piece = xp.asarray(piece)
        out[i] = piece
    return out


def _each_bucket(g, leaves, op, move, scale=None, lead=()):
    """The loop of every collective: pack each bucket of ``leaves`` (times ``scale(dtype,
    wire)``, when given), ``move(engine, buf, engine_op, dtype) -> buf`` it, and unpack
    the result into a new list of leaves."""
    out = [None] * len(leaves)
    for (_, xp, via_host, dtype), (engine, idx) in _buckets(g, leaves).items():
        wire, eop = _wire(dtype, op, engine.name)
        buf = _pack(xp, leaves, idx, wire, via_host,
                    None if scale is None else scale(dtype, wire))
        buf = move(engine, buf, eop, dtype)
        _unpack(buf, xp, leaves, idx, out, via_host, lead)
    return out


def reduce_leaves(leaves, op, paths):
    """All-reduce each leaf over the processes with ``op`` (sum, mean, max, min)."""
    g = _group
    leaves = [_as_leaf(x) for x in leaves]
    if g is None:
        return leaves
    check_structure(g, paths, leaves, f"all_reduce(op={op!r})")   # also for no leaves
    if not leaves:
        return leaves

    def allreduce(engine, buf, eop, dtype):
        engine.allreduce(buf, eop)
        if op == "mean" and dtype.kind in "iu":
            buf //= g.size
        return buf

    def mean_scale(dtype, wire):
        # a mean of floats is a sum of x / size: the scaling rides along the packing copy
        return wire.type(1.0 / g.size) if dtype.kind in "fc" else None

    if op == "mean":
        return _each_bucket(g, leaves, "sum", allreduce, mean_scale)
    return _each_bucket(g, leaves, op, allreduce)


def broadcast_leaves(leaves, root, paths):
    """Every rank gets rank ``root``'s leaves."""
    g = _group
    leaves = [_as_leaf(x) for x in leaves]
    if g is None:
        return leaves
    if not 0 <= root < g.size:
        raise FuncgradValueError(f"broadcast: root={root} is not a rank of this job "
                                 f"(0..{g.size - 1})")
    check_structure(g, paths, leaves, f"broadcast(root={root})")
    if not leaves:
        return leaves

    def bcast(engine, buf, eop, dtype):
        engine.bcast(buf, root)
        return buf

    out = _each_bucket(g, leaves, "sum", bcast)
    return leaves if g.rank == root else out


def gather_leaves(leaves, paths):
    """Each leaf stacked over the processes on a new leading axis."""
    g = _group
    leaves = [_as_leaf(x) for x in leaves]
    if g is None:
        return [x.reshape((1,) + tuple(x.shape)) for x in leaves]
    check_structure(g, paths, leaves, "all_gather")
    if not leaves:
        return leaves
    return _each_bucket(g, leaves, "sum", lambda engine, buf, eop, dtype: engine.allgather(buf),
                        lead=(g.size,))


def barrier():
    """Every rank waits for the others. The structure probe is an all-reduce, which no
    rank leaves before all have entered it, so it doubles as the barrier and also
    catches a rank that called another collective here."""
    if _group is not None:
        check_structure(_group, (), [], "barrier")

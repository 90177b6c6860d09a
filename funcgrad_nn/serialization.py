"""Checkpoints: ``save(tree, path)`` and ``load(path, like=None, device=None)`` for pytrees
of arrays, without pickle.

What can be saved
-----------------
Leaves: NumPy arrays and NumPy scalars of boolean, integer, unsigned, floating or complex
dtype (CuPy arrays are saved as host data via ``.get()``; object, string and structured
dtypes are refused), Python ``bool``, ``int``, ``float``, ``complex``, ``str`` and
``None``. Containers: ``dict`` and ``OrderedDict`` (keys: ``str``, ``int``, ``float``,
``bool`` or ``None``), ``list``, ``tuple`` and namedtuples. Other classes registered as
pytrees (e.g. dataclass modules) are saved by their children and can only be loaded with
``like=`` a template of the same structure. Arrays that share memory are saved (and
loaded) as separate copies. Without ``like=``, a namedtuple comes back as a new
namedtuple class with the same name and fields; with ``like=`` the template's own
container classes are used.

File format, version 1
----------------------
All integers are little-endian::

    offset  size  content
    0       8     magic: b"FGCKPT" b"\\x00" and the format version, b"\\x01"
    8       8     H: header length in bytes (uint64)
    16      8     P: payload length in bytes (uint64)
    24      32    SHA-256 of the H + P bytes that follow
    56      H     header: JSON (ASCII), padded with spaces so that 56 + H is a multiple of 64
    56 + H  P     payload: the raw C-order bytes of each array, each starting at a multiple
                  of 64 from the payload's start, zero bytes in between

The header is ``{"format": "funcgrad_nn.checkpoint", "version": 1, "tree": NODE}`` where
a NODE is one of::

    {"type": "none"}
    {"type": "bool" | "int" | "str", "value": v}
    {"type": "float", "value": "0x1.8p+1"}          (float.hex: exact, inf and nan too)
    {"type": "complex", "value": [real_hex, imag_hex]}
    {"type": "array" | "numpy_scalar", "dtype": "<f4", "shape": [2, 3],
     "offset": 0, "nbytes": 24}                     (dtype: NumPy's dtype.str)
    {"type": "list" | "tuple", "items": [NODE, ...]}
    {"type": "dict" | "OrderedDict", "keys": [KEY, ...], "items": [NODE, ...]}
                                                    (KEY: a none/bool/int/float/str NODE)
    {"type": "namedtuple", "name": "Point", "fields": ["x", "y"], "items": [...]}
    {"type": "node", "class": "module.QualName", "keys": ["[0]", ".w"], "items": [...]}

Safety: nothing is ever unpickled or evaluated; the header's size and node count are
capped before it is parsed (``load(..., max_header_bytes=, max_nodes=)``), and it is
validated (types, dtypes, shapes, offsets within the payload, dict keys that Python
would merge) before any array is read; every flaw of a crafted file raises
:class:`CheckpointError`; the checksum detects truncation and corruption. ``save`` writes
a new file in the same folder (unnamed until complete on Linux), fsyncs it and renames
it over ``path`` (``os.replace``), so a crash, an error or a SIGKILL mid-write leaves any
previous checkpoint intact and no temporary file behind.

    >>> import numpy as np, os, tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     save({"w": np.ones((2, 2), np.float32), "step": 3}, os.path.join(d, "ckpt"))
    ...     state = load(os.path.join(d, "ckpt"))
    >>> state
    {'w': array([[1., 1.],
           [1., 1.]], dtype=float32), 'step': 3}
"""
from __future__ import annotations

import collections
import hashlib
import json
import os
import re
import secrets
import socket
import stat
import struct
import time

import numpy as np

import funcgrad
from funcgrad import Tracer
from funcgrad.errors import FuncgradTypeError, FuncgradValueError
from funcgrad.tree_util import keystr, tree_flatten_with_path, treedef_is_leaf

__all__ = ["CheckpointError", "load", "save"]

MAGIC = b"FGCKPT\x00"
VERSION = 1
_PREAMBLE = struct.Struct("<8sQQ32s")     # magic+version, H, P, sha256
_ALIGN = 64
_DTYPE_RE = re.compile(r"[<>|][biufc][0-9]{1,2}\Z")
_FORMAT = "funcgrad_nn.checkpoint"
_MAX_HEADER_BYTES = 32 << 20     # load()'s default caps: a crafted header cannot make it
_MAX_NODES = 250_000             # parse gigabytes of JSON (~400 bytes of memory per node)
_MAX_NDIM = 64                   # NumPy's limit
_O_TMPFILE = getattr(os, "O_TMPFILE", None)     # Linux: an unnamed file, linked at the end


class CheckpointError(FuncgradValueError):
    """A file is not a valid checkpoint: wrong format, corrupt, truncated, or not
    matching the ``like=`` template."""


# ---- saving -------------------------------------------------------------------------
def _where(path):
    return keystr(path) or "<root>"


def _encode_key(k, path):
    if k is None or isinstance(k, (bool, int, float, str)):
        return _encode_scalar(k)
    raise FuncgradTypeError(
        f"save: dict key {k!r} ({type(k).__name__}) at {_where(path)} is not supported; "
        "keys may be str, int, float, bool or None")


def _encode_scalar(x):
    if x is None:
        return {"type": "none"}
    if isinstance(x, bool):
        return {"type": "bool", "value": x}
    if isinstance(x, int):
        return {"type": "int", "value": int(x)}
    if isinstance(x, float):
        return {"type": "float", "value": float(x).hex()}
    if isinstance(x, complex):
        return {"type": "complex", "value": [x.real.hex(), x.imag.hex()]}
    if isinstance(x, str):
        return {"type": "str", "value": str(x)}
    return None


class _Writer:
    def __init__(self):
        self.arrays = []          # (offset, uint8 view of a C-contiguous host array)
        self.size = 0

    def add(self, arr, path, kind):
        if arr.dtype.kind not in "biufc" or not _DTYPE_RE.match(arr.dtype.str):
            raise FuncgradTypeError(
                f"save: the array at {_where(path)} has dtype {arr.dtype}; checkpoints hold "
                "only bool, integer, float and complex arrays (object, string and "
                "structured dtypes are refused: they would need pickle)")
        if not arr.flags.c_contiguous:
            arr = arr.copy(order="C")       # (np.ascontiguousarray would turn 0-d into 1-d)
        offset = -(-self.size // _ALIGN) * _ALIGN
        self.arrays.append((offset, arr.reshape(-1).view(np.uint8)))
        self.size = offset + arr.nbytes
        return {"type": kind, "dtype": arr.dtype.str, "shape": list(arr.shape),
                "offset": offset, "nbytes": arr.nbytes}


def _is_device_array(x):
    """A device array (CuPy, or another module funcgrad knows): it has a host copy."""
    return (not isinstance(x, np.ndarray) and hasattr(x, "shape") and hasattr(x, "dtype")
            and hasattr(x, "get"))


def _encode(x, path, w):
    if isinstance(x, Tracer):
        raise FuncgradTypeError(
            f"save: the leaf at {_where(path)} is a funcgrad Tracer (an array being "
            "transformed by grad/jvp/vmap...); save concrete values outside the "
            "transformation")
    if type(x) in (bool, int, float, complex, str) or x is None:
        return _encode_scalar(x)
    if isinstance(x, np.ndarray):
        return w.add(x, path, "array")
    if isinstance(x, np.generic):
        return w.add(np.asarray(x), path, "numpy_scalar")
    if _is_device_array(x):
        return w.add(np.asarray(funcgrad.device_put(x, "cpu")), path, "array")
    if isinstance(x, (dict, collections.OrderedDict)) and type(x) in (
            dict, collections.OrderedDict, collections.defaultdict):
        keys = list(x)
        return {"type": "OrderedDict" if type(x) is collections.OrderedDict else "dict",
                "keys": [_encode_key(k, path) for k in keys],
                "items": [_encode(x[k], path + (_DictKeyStr(k),), w) for k in keys]}
    if type(x) in (list, tuple):
        return {"type": type(x).__name__,
                "items": [_encode(c, path + (_IndexStr(i),), w) for i, c in enumerate(x)]}
    if isinstance(x, tuple) and hasattr(type(x), "_fields"):
        return {"type": "namedtuple", "name": type(x).__name__, "fields": list(x._fields),
                "items": [_encode(c, path + (_AttrStr(f),), w)
                          for f, c in zip(x._fields, x)]}
    if isinstance(x, (bool, int, float, complex, str)):   # subclasses: plain values
        for t in (bool, int, float, complex, str):
            if isinstance(x, t):
                return _encode_scalar(t(x))
    children = _one_level(x)
    if children is not None:
        cls = type(x)
        return {"type": "node", "class": f"{cls.__module__}.{cls.__qualname__}",
                "keys": [keystr(p) for p, _ in children],
                "items": [_encode(c, path + p, w) for p, c in children]}
    raise FuncgradTypeError(
        f"save: cannot save a {type(x).__name__} at {_where(path)}; supported leaves are "
        "NumPy/CuPy arrays and scalars, bool, int, float, complex, str and None, in "
        "dicts, lists, tuples, namedtuples or registered pytree classes")


class _KeyStr:
    """A key-path entry that prints like funcgrad.tree_util's keys."""
    __slots__ = ("s",)

    def __init__(self, s):
        self.s = s

    def __str__(self):
        return self.s


def _DictKeyStr(k):
    return _KeyStr(f"[{k!r}]")


def _IndexStr(i):
    return _KeyStr(f"[{i}]")


def _AttrStr(name):
    return _KeyStr(f".{name}")


def _one_level(x):
    """``[(key_path_of_length_1, child), ...]`` for a pytree container, None for a leaf."""
    pairs, td = tree_flatten_with_path(x, is_leaf=lambda y: y is not x)
    if treedef_is_leaf(td):
        return None
    return [(tuple(p), c) for p, c in pairs]


def _open_exclusive(path):
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    return os.open(path, flags, 0o666)     # the umask applies, as for a plain open()


def _open_unnamed(folder):
    """An unnamed file in ``folder`` (Linux O_TMPFILE): a writer killed before the end
    leaves nothing behind. None where the OS or file system cannot make one."""
    if _O_TMPFILE is None:
        return None
    try:
        return os.open(folder, _O_TMPFILE | os.O_WRONLY, 0o666)
    except OSError:
        return None


def _fsync_dir(folder):
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return                                  # e.g. Windows: directories cannot be opened
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _hostname():
    return re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname() or "host")


def _pid_namespace():
    """The inode of this process's PID namespace (Linux), 0 elsewhere. A PID names a
    process only within its namespace, and containers may share a host name without
    sharing one."""
    try:
        return os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return 0


# A leftover is removed only once it is this old (its writer also being dead): a PID
# test can be fooled (two machines with one host name writing to a shared folder), and
# a writer that is still writing keeps its file's modification time recent.
_STALE_SECONDS = 600


def _temp_name(folder, base):
    """``.BASE.fgtmp.HOST.PIDNS.PID.TOKEN``: who wrote it, so a later save can tell a
    leftover of a dead writer from the file of one still writing."""
    return os.path.join(folder, f".{base}.fgtmp.{_hostname()}.{_pid_namespace()}."
                                f"{os.getpid()}.{secrets.token_hex(6)}")


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:                 # another user's process
        return True
    except (OverflowError, ValueError):     # no process can have this id
        return False
    return True


def _remove_stale_temps(folder, base):
    """Delete the temporary files of earlier saves to ``base`` whose writer is dead: a
    save killed with SIGKILL leaves one behind when the file system has no unnamed files.
    A file is removed only if its writer ran on this machine in this PID namespace, no
    process there has its PID, and it was last written over ``_STALE_SECONDS`` ago.
    Files of live writers, of other machines (a shared folder) or containers, and
    anything that is not a regular file are left alone."""
    pattern = re.compile(
        rf"\.{re.escape(base)}\.fgtmp\.([A-Za-z0-9-]+)\.(\d{{1,20}})\.(\d{{1,10}})\.[0-9a-f]+\Z")
    host, ns = _hostname(), str(_pid_namespace())
    try:
        names = os.listdir(folder)
    except OSError:
        return
    now = time.time()
    for name in names:
        m = pattern.match(name)
        if (m is None or m.group(1) != host or m.group(2) != ns
                or _pid_alive(int(m.group(3)))):
            continue
        full = os.path.join(folder, name)
        try:
            st = os.lstat(full)
            if stat.S_ISREG(st.st_mode) and now - st.st_mtime > _STALE_SECONDS:
                os.unlink(full)
        except OSError:
            pass


def _write(f, header, w):
    digest = hashlib.sha256(header)
    f.write(_PREAMBLE.pack(MAGIC + bytes([VERSION]), len(header), w.size, bytes(32)))
    f.write(header)
    pos = 0
    for offset, data in w.arrays:
        pad = bytes(offset - pos)
        digest.update(pad)
        f.write(pad)
        digest.update(data)
        f.write(data)
        pos = offset + data.size
    f.seek(24)
    f.write(digest.digest())
    f.flush()


def _existing_mode(path):
    try:
        st = os.stat(path)
    except OSError:
        return None
    return stat.S_IMODE(st.st_mode) if stat.S_ISREG(st.st_mode) else None


def _write_and_replace(target, header, w, unnamed=True):
    """Write the checkpoint next to ``target`` and move it into place in one step: into
    an unnamed file, named only for the instant before the rename, where the OS allows
    (``unnamed``), else into a hidden temporary name."""
    folder = os.path.dirname(target) or "."
    base = os.path.basename(target)
    mode = _existing_mode(target)
    if unnamed:
        _remove_stale_temps(folder, base)
    fd = _open_unnamed(folder) if unnamed else None
    tmp = None
    try:
        if fd is None:
            tmp = _temp_name(folder, base)
            fd = _open_exclusive(tmp)
        with os.fdopen(fd, "wb") as f:
            fd = None
            _write(f, header, w)
            if mode is not None:
                os.fchmod(f.fileno(), mode)       # an overwrite keeps the permissions
            os.fsync(f.fileno())
            if tmp is None:
                # name the unnamed file (a name only for the instant before the rename)
                tmp = _temp_name(folder, base)
                try:
                    os.link(f"/proc/self/fd/{f.fileno()}", tmp)
                except OSError:
                    tmp = None
        if tmp is None:                            # no /proc: write it again, named
            return _write_and_replace(target, header, w, unnamed=False)
        os.replace(tmp, target)
    except BaseException:
        if fd is not None:
            os.close(fd)
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass
        raise
    _fsync_dir(folder)


def save(tree, path, *, all_processes: bool = False) -> None:
    """Write the pytree ``tree`` to ``path`` atomically (see the module docstring).

    In a job of several processes (``funcgrad.process_count() > 1``) only process 0
    writes, so that ranks never race on one file; the others return at once (pass
    ``all_processes=True`` to write from every rank, e.g. to per-rank paths). Ranks that
    read the file afterwards should wait for it with ``funcgrad.distributed.barrier()``.

    The file is written beside ``path`` (unnamed until complete where the OS allows,
    Linux's O_TMPFILE, so that even a writer killed with SIGKILL leaves nothing behind;
    elsewhere a hidden temporary name that later saves remove once its writer is dead
    and the file ten minutes old), fsynced and renamed over ``path``. Overwriting keeps
    the old file's permission bits, and a symlink at ``path`` is followed: its target is
    replaced, the link stays.

    Raises ``TypeError`` naming ``path`` and the key path of the first unsupported leaf
    or key (before anything is written) and ``OSError`` naming ``path`` for I/O errors;
    an existing file at ``path`` is left untouched unless the write succeeds completely.
    """
    path = os.fspath(path)
    if not all_processes and funcgrad.process_index() != 0:
        return
    w = _Writer()
    try:
        body = {"format": _FORMAT, "version": VERSION, "tree": _encode(tree, (), w)}
    except FuncgradTypeError as e:
        msg = str(e)
        msg = msg[len("save: "):] if msg.startswith("save: ") else msg
        raise FuncgradTypeError(f"save({path!r}): {msg}") from None
    header = json.dumps(body, separators=(",", ":"), ensure_ascii=True,
                        allow_nan=False).encode("ascii")
    header += b" " * ((-(_PREAMBLE.size + len(header))) % _ALIGN)
    target = os.path.realpath(os.path.abspath(path))   # through symlinks, to the file
    try:
        _write_and_replace(target, header, w)
    except OSError as e:
        if e.errno is None:
            raise OSError(f"save({path!r}): {e}") from e
        raise OSError(e.errno, f"{e.strerror} (while saving a checkpoint)", path) from e


# ---- loading ------------------------------------------------------------------------
def _fail(path, msg):
    raise CheckpointError(f"load({path!r}): {msg}")


def _sniff(head):
    if head[:1] == b"\x80" or head[:1] in (b"(", b"}", b"]") or head[:6] == b"\x93NUMPY":
        return (" It looks like a pickle or .npy file; funcgrad_nn.load never unpickles: "
                "convert it with the tool that wrote it and save it with funcgrad_nn.save.")
    if head[:2] == b"PK":
        return (" It looks like a zip archive (torch.save / numpy.savez); load it with "
                "the tool that wrote it (allow_pickle=False) and save it with "
                "funcgrad_nn.save.")
    return ""


class _Reader:
    """Validates header nodes and builds the Python tree, reading arrays from the file."""

    def __init__(self, f, path, base, payload_size):
        self.f, self.path, self.base, self.payload = f, path, base, payload_size
        self.end = 0

    def bad(self, where, msg):
        _fail(self.path, f"invalid header at {where or '<root>'}: {msg}")

    def node(self, n, where, depth=0):
        if depth > 500:
            self.bad(where, "nesting deeper than 500 levels")
        if not isinstance(n, dict) or not isinstance(n.get("type"), str):
            self.bad(where, "expected an object with a 'type'")
        t = n["type"]
        if t in ("none", "bool", "int", "float", "complex", "str"):
            return self.scalar(n, where)
        if t in ("array", "numpy_scalar"):
            return self.array(n, where)
        if t not in ("list", "tuple", "dict", "OrderedDict", "namedtuple", "node"):
            self.bad(where, f"unknown node type {t!r}")
        items = n.get("items")
        if not isinstance(items, list):
            self.bad(where, f"a {t} node needs a list of items")
        if t in ("list", "tuple"):
            out = [self.node(c, f"{where}[{i}]", depth + 1) for i, c in enumerate(items)]
            return out if t == "list" else tuple(out)
        if t in ("dict", "OrderedDict"):
            keys = n.get("keys")
            if not isinstance(keys, list) or len(keys) != len(items):
                self.bad(where, "a dict node needs as many keys as items")
            keys = [self.scalar(k, where, allowed=("none", "bool", "int", "float", "str"))
                    for k in keys]
            if len(set(map(_hashable_key, keys))) != len(keys):
                self.bad(where, "duplicate dict keys")
            d = {} if t == "dict" else collections.OrderedDict()
            for k, c in zip(keys, items):
                d[k] = self.node(c, f"{where}[{k!r}]", depth + 1)
            if len(d) != len(keys):
                self.bad(where, f"dict keys {keys!r} include keys that Python treats as "
                                "equal (1, True and 1.0; 0.0 and -0.0), which would "
                                "collapse into one")
            return d
        if t == "namedtuple":
            name, fields = n.get("name"), n.get("fields")
            if not (isinstance(name, str) and name.isidentifier() and isinstance(fields, list)
                    and len(fields) == len(items) and
                    all(isinstance(s, str) and s.isidentifier() and not s.startswith("_")
                        for s in fields) and len(set(fields)) == len(fields)):
                self.bad(where, "a namedtuple node needs an identifier name and one "
                                "identifier field per item")
            try:
                cls = collections.namedtuple(name, fields)
            except ValueError as e:
                self.bad(where, f"bad namedtuple: {e}")
            return cls(*[self.node(c, f"{where}.{s}", depth + 1) for s, c in zip(fields, items)])
        if t == "node":
            cls, keys = n.get("class"), n.get("keys")
            if not (isinstance(cls, str) and isinstance(keys, list) and len(keys) == len(items)
                    and all(isinstance(k, str) for k in keys)):
                self.bad(where, "a node needs a class name and one key string per item")
            return _StoredNode(cls, tuple(keys), [self.node(c, f"{where}{k}", depth + 1)
                                                  for k, c in zip(keys, items)])

    def scalar(self, n, where, allowed=("none", "bool", "int", "float", "complex", "str")):
        t = n.get("type") if isinstance(n, dict) else None
        if t not in allowed:
            self.bad(where, f"expected one of {allowed}, got {t!r}")
        if t == "none":
            return None
        v = n.get("value")
        try:
            if t == "bool" and isinstance(v, bool):
                return v
            if t == "int" and isinstance(v, int) and not isinstance(v, bool):
                return v
            if t == "str" and isinstance(v, str):
                return v
            if t == "float" and isinstance(v, str):
                return float.fromhex(v)
            if t == "complex" and isinstance(v, list) and len(v) == 2 and all(
                    isinstance(a, str) for a in v):
                return complex(float.fromhex(v[0]), float.fromhex(v[1]))
        except (ValueError, OverflowError):
            pass
        self.bad(where, f"bad {t} value {v!r}")

    def array(self, n, where):
        dt, shape, offset, nbytes = (n.get(k) for k in ("dtype", "shape", "offset", "nbytes"))
        if not isinstance(dt, str) or not _DTYPE_RE.match(dt):
            self.bad(where, f"dtype {dt!r} is not a bool/int/uint/float/complex dtype string")
        try:
            dtype = np.dtype(dt)
        except TypeError:
            self.bad(where, f"unknown dtype {dt!r}")
        if dtype.kind not in "biufc" or dtype.hasobject:
            self.bad(where, f"dtype {dt!r} is not allowed")
        if not (isinstance(shape, list) and all(isinstance(d, int) and not isinstance(d, bool)
                                                and d >= 0 for d in shape)):
            self.bad(where, f"bad shape {shape!r}")
        if n["type"] == "numpy_scalar" and shape:
            self.bad(where, "a numpy_scalar has shape []")
        if len(shape) > _MAX_NDIM:
            self.bad(where, f"{len(shape)} dimensions; NumPy allows at most {_MAX_NDIM}")
        count = extent = 1                  # Python ints: no wrap-around
        for d in shape:
            count *= d
            extent *= max(d, 1)
        if extent * dtype.itemsize > np.iinfo(np.intp).max:
            self.bad(where, f"shape {shape} is too large for an array, even an empty one")
        if nbytes != count * dtype.itemsize or not isinstance(offset, int) or \
                isinstance(offset, bool) or offset < self.end or offset % _ALIGN or \
                offset + nbytes > self.payload:
            self.bad(where, f"array bytes [{offset}, {offset}+{nbytes}) for shape {shape} "
                            f"{dtype} are inconsistent or outside the payload")
        self.end = offset + nbytes
        arr = np.empty(shape, dtype)
        self.f.seek(self.base + offset)
        got = self.f.readinto(memoryview(arr.reshape(-1).view(np.uint8)))
        if got != nbytes:
            _fail(self.path, f"file truncated while reading the array at {where or '<root>'}")
        return arr[()] if n["type"] == "numpy_scalar" else arr


def _hashable_key(k):
    return (type(k).__name__, k if not (isinstance(k, float) and k != k) else "nan")


class _StoredNode:
    """A registered-pytree node read from a file: rebuilt only through ``like=``."""

    def __init__(self, cls, keys, children):
        self.cls, self.keys, self.children = cls, keys, children


def _container_name(x):
    if x is None:
        return "None"
    if isinstance(x, _StoredNode):
        return x.cls
    if isinstance(x, dict):
        return "dict"
    if isinstance(x, tuple) and hasattr(type(x), "_fields"):
        return f"namedtuple {type(x).__name__}"
    if type(x) in (list, tuple):
        return type(x).__name__
    return f"{type(x).__module__}.{type(x).__qualname__}"


_DICTS = (dict, collections.OrderedDict, collections.defaultdict)


def _children(x):
    """``[(key_path, child)]`` one level down, None for a leaf. Dicts in insertion
    order without funcgrad.tree_util, which sorts keys (and cannot sort int and str
    keys together)."""
    if isinstance(x, _StoredNode):
        return [((_KeyStr(k),), c) for k, c in zip(x.keys, x.children)]
    if type(x) in _DICTS:
        return [((_DictKeyStr(k),), v) for k, v in x.items()]
    if isinstance(x, tuple) and hasattr(type(x), "_fields"):
        return [((_AttrStr(f),), v) for f, v in zip(x._fields, x)]
    if type(x) in (list, tuple):
        return [((_IndexStr(i),), v) for i, v in enumerate(x)]
    if x is None:
        return []
    return _one_level(x)


def _describe(x):
    if x is None or _children(x) is not None:
        return f"a {_container_name(x)}"
    if isinstance(x, (np.ndarray, np.generic)) or (hasattr(x, "shape") and hasattr(x, "dtype")
                                                   and not isinstance(x, (int, float))):
        kind = "scalar " if isinstance(x, np.generic) else ""
        return f"{kind}{np.dtype(x.dtype).name}[{','.join(map(str, x.shape))}]"
    if isinstance(x, (bool, int, float, complex, str)):
        return f"a Python {type(x).__name__}"
    return f"a {type(x).__name__}"


def _compare(ck, lk, path):
    """The first difference between the loaded tree and the template, or None."""
    where = keystr(path) or "<root>"
    ck_kids, lk_kids = _children(ck), _children(lk)
    if ck_kids is None or lk_kids is None:
        if (ck_kids is None) != (lk_kids is None):
            return f"at {where}: the checkpoint has {_describe(ck)}, the template has " \
                   f"{_describe(lk)}"
        if isinstance(ck, (np.ndarray, np.generic)):
            ok = (hasattr(lk, "shape") and hasattr(lk, "dtype")
                  and not isinstance(lk, (bool, int, float, complex, str))
                  and tuple(lk.shape) == ck.shape
                  and np.dtype(lk.dtype).newbyteorder("=") == ck.dtype.newbyteorder("="))
        else:
            ok = type(ck) is type(lk)
        if not ok:
            return f"at {where}: the checkpoint has {_describe(ck)}, the template has " \
                   f"{_describe(lk)}"
        return None
    if _container_name(ck) != _container_name(lk):
        return f"at {where}: the checkpoint has a {_container_name(ck)}, the template has " \
               f"a {_container_name(lk)}"
    ck_keys = [keystr(p) for p, _ in ck_kids]
    lk_keys = [keystr(p) for p, _ in lk_kids]
    if type(lk) in (dict, collections.defaultdict) and isinstance(ck, dict) \
            and sorted(ck_keys) == sorted(lk_keys):
        # plain dicts match by key, in any order: pair the children by key
        by_key = dict(zip(ck_keys, ck_kids))
        ck_kids = [by_key[k] for k in lk_keys]
        ck_keys = lk_keys
    if ck_keys != lk_keys:
        extra = [k for k in ck_keys if k not in lk_keys]
        missing = [k for k in lk_keys if k not in ck_keys]
        if missing:
            return f"at {where}{missing[0]}: in the template but not in the checkpoint " \
                   f"(checkpoint keys: {', '.join(ck_keys) or 'none'})"
        if extra:
            return f"at {where}{extra[0]}: in the checkpoint but not in the template " \
                   f"(template keys: {', '.join(lk_keys) or 'none'})"
        return f"at {where}: keys in a different order: checkpoint {ck_keys}, template " \
               f"{lk_keys}"
    for (p, c), (_, l) in zip(ck_kids, lk_kids):
        msg = _compare(c, l, path + p)
        if msg:
            return msg
    return None


def _loaded_children(x):
    """Children of a container built by _Reader (no tree_util: dict keys may not sort)."""
    if isinstance(x, dict):
        return [((_DictKeyStr(k),), v) for k, v in x.items()]
    if isinstance(x, tuple) and hasattr(type(x), "_fields"):
        return [((_AttrStr(f),), v) for f, v in zip(x._fields, x)]
    if type(x) in (list, tuple):
        return [((_IndexStr(i),), v) for i, v in enumerate(x)]
    return None


def _find_stored(x, path=()):
    if isinstance(x, _StoredNode):
        return path
    for p, c in _loaded_children(x) or ():
        found = _find_stored(c, path + p)
        if found is not None:
            return found
    return None


def _map_loaded(f, x):
    """``f`` applied to the leaves of a loaded tree (dicts without sorting their keys;
    registered classes of a template one level at a time)."""
    if type(x) is collections.defaultdict:
        return collections.defaultdict(x.default_factory,
                                       [(k, _map_loaded(f, v)) for k, v in x.items()])
    if type(x) in _DICTS:
        return type(x)((k, _map_loaded(f, v)) for k, v in x.items())
    if isinstance(x, tuple) and hasattr(type(x), "_fields"):
        return type(x)(*[_map_loaded(f, v) for v in x])
    if type(x) in (list, tuple):
        return type(x)(_map_loaded(f, v) for v in x)
    if x is None or isinstance(x, (np.ndarray, np.generic)):
        return f(x)
    kids = _one_level(x)
    if kids is None:
        return f(x)
    _, treedef = tree_flatten_with_path(x, is_leaf=lambda y: y is not x)
    return treedef.unflatten([_map_loaded(f, c) for _, c in kids])


def _to_device(tree, device):
    if device in (None, "cpu"):
        return tree
    try:
        funcgrad.device_put(np.zeros(0), device)      # a clear error for a bad device
    except ValueError as e:
        raise FuncgradValueError(f"load: {e}") from None

    def move(x):
        return funcgrad.device_put(x, device) if isinstance(x, np.ndarray) else x
    return _map_loaded(move, tree)


def load(path, like=None, device=None, *, max_header_bytes=_MAX_HEADER_BYTES,
         max_nodes=_MAX_NODES):
    """Read a checkpoint written by :func:`save`.

    Args:
      path: the file.
      like: optional template pytree (arrays, or anything with ``.shape`` and ``.dtype``,
        for array leaves). The checkpoint must have the same structure, shapes and
        dtypes; the result is rebuilt with the template's container classes.
      device: ``None`` or ``"cpu"`` for NumPy arrays; ``"gpu"``, ``"gpu:N"`` or a CuPy
        device for CuPy arrays on that device (``funcgrad.device_put``'s devices; a
        ValueError naming the fix if CuPy or the device is missing).
      max_header_bytes, max_nodes: caps on the JSON header, checked before it is parsed
        (defaults 32 MiB and 250,000 nodes: at most about 0.1 GiB and a second to
        parse), so that a crafted file cannot make ``load`` spend gigabytes of memory.
        A node is one leaf, container or dict key; a model's parameters and optimizer
        state take a few per array. Raise them for a checkpoint you trust with more.

    Raises :class:`CheckpointError` (a ``ValueError``) when the file is not a checkpoint,
    is truncated or corrupt (checksum mismatch), has an invalid header, or does not
    match ``like`` (the message names the first differing key path).
    """
    path = os.fspath(path)
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        head = f.read(_PREAMBLE.size)
        if head[:len(MAGIC)] != MAGIC[:len(head)] or not head:
            _fail(path, f"not a funcgrad_nn checkpoint (it starts with {head[:8]!r}, "
                        f"expected {MAGIC!r}).{_sniff(head)}")
        if len(head) < _PREAMBLE.size:
            _fail(path, f"file truncated: {size} bytes is shorter than the "
                        f"{_PREAMBLE.size}-byte preamble")
        magic, hlen, plen, digest = _PREAMBLE.unpack(head)
        if magic[-1] != VERSION:
            _fail(path, f"format version {magic[-1]} is not supported (this funcgrad_nn "
                        f"reads version {VERSION}); upgrade funcgrad_nn")
        if hlen > max_header_bytes:
            _fail(path, f"the header is {hlen} bytes, more than max_header_bytes="
                        f"{max_header_bytes}; pass a larger max_header_bytes= if you trust "
                        "the file")
        expected = _PREAMBLE.size + hlen + plen
        if expected != size:
            what = "truncated" if size < expected else "longer than its header says"
            _fail(path, f"file {what}: {size} bytes, expected {expected}; the checkpoint "
                        "is damaged (an interrupted copy?)")
        h = hashlib.sha256()
        remaining = hlen + plen
        while remaining:
            chunk = f.read(min(remaining, 1 << 22))
            if not chunk:
                _fail(path, "file truncated while reading")
            h.update(chunk)
            remaining -= len(chunk)
        if h.digest() != digest:
            _fail(path, "checksum mismatch: the file is corrupt (SHA-256 of its contents "
                        "differs from the one recorded when it was saved)")
        f.seek(_PREAMBLE.size)
        raw = f.read(hlen)
        nodes = raw.count(b"{")             # every node is a JSON object: an upper bound
        if nodes > max_nodes:
            _fail(path, f"the header has up to {nodes} nodes, more than max_nodes="
                        f"{max_nodes}; pass a larger max_nodes= if you trust the file")
        try:
            body = json.loads(raw.decode("ascii"))
        except (UnicodeDecodeError, ValueError, RecursionError) as e:
            _fail(path, f"unreadable header: {e}")
        if not isinstance(body, dict) or body.get("format") != _FORMAT or \
                body.get("version") != VERSION or "tree" not in body:
            _fail(path, "the header is not a funcgrad_nn checkpoint header")
        try:
            tree = _Reader(f, path, _PREAMBLE.size + hlen, plen).node(body["tree"], "")
        except RecursionError:
            _fail(path, "header nested too deeply")
        except CheckpointError:
            raise
        except (ValueError, TypeError, AttributeError, KeyError, IndexError,
                OverflowError) as e:    # a check the reader lacks: still the file's fault
            _fail(path, f"invalid header: {type(e).__name__}: {e}")
    if like is None:
        stored = _find_stored(tree)
        if stored is not None:
            _fail(path, f"the checkpoint holds a registered pytree class at "
                        f"{keystr(stored) or '<root>'}; pass like= a template of the same "
                        "structure to rebuild it")
    else:
        msg = _compare(tree, like, ())
        if msg:
            raise CheckpointError(f"load({path!r}, like=...): the checkpoint does not match "
                                  f"the template {msg}")
        tree = _rebuild(tree, like)
    return _to_device(tree, device)


def _rebuild(ck, lk):
    """The loaded tree ``ck`` in the containers of the template ``lk`` (their
    structures were compared): dicts in the template's key order."""
    if type(lk) in _DICTS:
        items = [(k, _rebuild(ck[k], v)) for k, v in lk.items()]
        if type(lk) is collections.defaultdict:
            return collections.defaultdict(lk.default_factory, items)
        return type(lk)(items)
    if isinstance(lk, tuple) and hasattr(type(lk), "_fields"):
        return type(lk)(*[_rebuild(c, v) for c, v in zip(ck, lk)])
    if type(lk) in (list, tuple):
        return type(lk)(_rebuild(c, v) for c, v in zip(ck, lk))
    if lk is None:
        return None
    kids = _one_level(lk)
    if kids is None:
        return ck
    stored = ck.children if isinstance(ck, _StoredNode) else [c for _, c in _children(ck)]
    _, treedef = tree_flatten_with_path(lk, is_leaf=lambda y: y is not lk)
    return treedef.unflatten([_rebuild(c, v) for c, (_, v) in zip(stored, kids)])

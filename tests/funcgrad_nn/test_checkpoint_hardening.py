"""Checkpoint hardening: Python-equal dict keys, header size and node caps, overwrites
that keep permissions and follow symlinks, no temporary files after SIGKILL, crafted
files always raising CheckpointError, like= with mixed int/str keys, and save errors
naming the user's path."""
import collections
import hashlib
import json
import os
import signal
import struct
import subprocess
import sys
import textwrap
import time
import types

import numpy as np
import pytest

from funcgrad_nn import serialization
from funcgrad_nn.serialization import CheckpointError, load, save

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def craft(header_tree, payload=b"", header_bytes=None):
    """A structurally valid file (right magic, lengths, checksum) with any header."""
    if header_bytes is None:
        header_bytes = json.dumps({"format": "funcgrad_nn.checkpoint", "version": 1,
                                   "tree": header_tree}).encode()
    header = header_bytes + b" " * ((-(56 + len(header_bytes))) % 64)
    digest = hashlib.sha256(header + payload).digest()
    return (b"FGCKPT\x00\x01" + struct.pack("<QQ", len(header), len(payload)) + digest +
            header + payload)


def key(t, v):
    return {"type": t, "value": v}


NONE = {"type": "none"}


@pytest.mark.parametrize("keys", [
    [key("int", 1), key("bool", True)],
    [key("int", 1), key("float", (1.0).hex())],
    [key("float", (0.0).hex()), key("float", (-0.0).hex())],
    [key("int", 0), key("bool", False)],
])
def test_python_equal_dict_keys_are_rejected(tmp_path, keys):
    path = tmp_path / "c"
    path.write_bytes(craft({"type": "dict", "keys": keys, "items": [NONE, NONE]}))
    with pytest.raises(CheckpointError, match="equal"):
        load(path)


def test_distinct_keys_of_several_types_still_load(tmp_path):
    tree = {1: "a", "1": "b", 2.5: "c", None: "d", False: "e", "True": "f"}
    save(tree, tmp_path / "c")
    assert load(tmp_path / "c") == tree


def test_header_size_and_node_count_are_capped(tmp_path, monkeypatch):
    n = 2_000_000                                  # ~30 MiB of None nodes
    items = b",".join([b'{"type":"none"}'] * n)
    header = (b'{"format":"funcgrad_nn.checkpoint","version":1,"tree":{"type":"list",'
              b'"items":[' + items + b"]}}")
    path = tmp_path / "nones"
    path.write_bytes(craft(None, header_bytes=header))

    def never(*args, **kwargs):
        raise AssertionError("an over-cap header was parsed")
    # refused before parsing (parsing it took ~9 s); the JSON parser is never called
    monkeypatch.setattr(serialization, "json", types.SimpleNamespace(loads=never))
    with pytest.raises(CheckpointError, match="nodes"):
        load(path)
    with pytest.raises(CheckpointError, match="header"):
        load(path, max_header_bytes=1 << 20)
    monkeypatch.undo()
    small = tmp_path / "small"
    small.write_bytes(craft({"type": "list", "items": [NONE] * 50}))
    assert load(small) == [None] * 50
    with pytest.raises(CheckpointError, match="nodes"):
        load(small, max_nodes=20)
    with pytest.raises(CheckpointError, match="header"):
        load(small, max_header_bytes=100)


def test_a_large_legitimate_checkpoint_loads(tmp_path):
    tree = {f"layer{i}": {"w": np.zeros((2, 2), np.float32), "b": np.zeros(2)}
            for i in range(2000)}
    save(tree, tmp_path / "c")
    assert len(load(tmp_path / "c")) == 2000


def test_overwrite_keeps_the_permission_bits(tmp_path):
    path = tmp_path / "c"
    save({"a": 1}, path)
    os.chmod(path, 0o600)
    save({"a": 2}, path)
    assert path.stat().st_mode & 0o777 == 0o600
    os.chmod(path, 0o640)
    save({"a": 3}, path)
    assert path.stat().st_mode & 0o777 == 0o640 and load(path) == {"a": 3}


def test_overwrite_writes_through_a_symlink(tmp_path):
    (tmp_path / "store").mkdir()
    target = tmp_path / "store" / "real"
    save({"a": 1}, target)
    link = tmp_path / "latest"
    link.symlink_to(target)
    save({"a": 2}, link)
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert load(target) == {"a": 2} and load(link) == {"a": 2}
    assert sorted(os.listdir(tmp_path / "store")) == ["real"]
    # a dangling link: the checkpoint is created at the link's target
    os.unlink(target)
    save({"a": 3}, link)
    assert link.is_symlink() and load(target) == {"a": 3}


_KILLED_SAVE = textwrap.dedent("""
    import os, sys, time
    import numpy as np
    from funcgrad_nn import serialization
    if sys.argv[2] == "named":
        serialization._O_TMPFILE = None     # the fallback: a named temporary file
    real_fsync = os.fsync
    def stall(fd):
        print("writing", flush=True)
        time.sleep(60)
    serialization.os.fsync = stall
    serialization.save({"big": np.ones(1 << 20)}, sys.argv[1])
""")


@pytest.mark.parametrize("mode", ["unnamed", "named"])
def test_a_killed_save_leaves_no_temporary_file(tmp_path, mode):
    path = tmp_path / "ckpt"
    save({"v": 1}, path)
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen([sys.executable, "-c", _KILLED_SAVE, str(path), mode],
                            stdout=subprocess.PIPE, env=env, cwd=ROOT)
    try:
        assert proc.stdout.readline().strip() == b"writing"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    if mode == "unnamed" and serialization._O_TMPFILE is not None:
        assert os.listdir(tmp_path) == ["ckpt"]      # nothing was ever named
    save({"v": 2}, path)
    left = [n for n in os.listdir(tmp_path) if n != "ckpt"]
    assert len(left) == (mode == "named")           # too recent to be taken for stale
    for name in left:
        _age(tmp_path / name, serialization._STALE_SECONDS + 60)
    save({"v": 2}, path)                            # a later save cleans up the rest
    assert os.listdir(tmp_path) == ["ckpt"] and load(path) == {"v": 2}


def _age(path, seconds):
    t = time.time() - seconds
    os.utime(path, (t, t))


@pytest.mark.parametrize("how", ["no-proc", "no-unnamed-files"])
def test_every_way_of_writing_keeps_permissions_and_leaves_nothing(tmp_path, monkeypatch, how):
    """The three ways to the file (unnamed then linked; unnamed, then written again
    named where /proc cannot link it; named from the start) are one function."""
    path = tmp_path / "c"
    save({"a": 1}, path)
    os.chmod(path, 0o640)
    if how == "no-proc":
        def no_link(src, dst, *a, **k):
            raise OSError("no /proc")
        monkeypatch.setattr(serialization.os, "link", no_link)
    else:
        monkeypatch.setattr(serialization, "_O_TMPFILE", None)
    calls = []
    real = serialization._write_and_replace
    monkeypatch.setattr(serialization, "_write_and_replace",
                        lambda *a, **k: calls.append(k) or real(*a, **k))
    save({"a": 2}, path)
    assert load(path) == {"a": 2} and path.stat().st_mode & 0o777 == 0o640
    assert os.listdir(tmp_path) == ["c"]
    if how == "no-proc" and serialization._O_TMPFILE is not None:
        assert calls == [{}, {"unnamed": False}]


def test_cleanup_spares_other_files_and_live_writers(tmp_path):
    path = tmp_path / "ckpt"
    host, ns = serialization._hostname(), serialization._pid_namespace()
    keep = [".ckpt.notours.tmp", "ckpt.bak", f".other.fgtmp.{host}.{ns}.1.abc",
            f".ckpt.fgtmp.{host}.{ns}.{os.getpid()}.abc",      # a live process
            f".ckpt.fgtmp.otherhost.{ns}.99999999.abc",        # another machine's writer
            # a container with this host name but its own PID namespace: its PIDs say
            # nothing about this namespace's processes
            f".ckpt.fgtmp.{host}.{ns + 1}.99999999.abc",
            f".ckpt.fgtmp.{host}.99999999.abc"]                # no namespace in the name
    for name in keep:
        (tmp_path / name).write_bytes(b"x")
        _age(tmp_path / name, 3600)
    young = tmp_path / f".ckpt.fgtmp.{host}.{ns}.99999998.abc"     # may still be written
    young.write_bytes(b"x")
    stale = tmp_path / f".ckpt.fgtmp.{host}.{ns}.99999999.abc"
    stale.write_bytes(b"x")
    _age(stale, serialization._STALE_SECONDS + 60)
    save({"v": 1}, path)
    assert sorted(os.listdir(tmp_path)) == sorted(keep + [young.name, "ckpt"])


def test_temporary_names_carry_the_pid_namespace(tmp_path):
    name = os.path.basename(serialization._temp_name(str(tmp_path), "ckpt"))
    host, ns = serialization._hostname(), serialization._pid_namespace()
    assert name.startswith(f".ckpt.fgtmp.{host}.{ns}.{os.getpid()}.")
    if os.path.exists("/proc/self/ns/pid"):
        assert ns == os.stat("/proc/self/ns/pid").st_ino != 0


@pytest.mark.parametrize("node", [
    {"type": "array", "dtype": "<f4", "shape": [1] * 65, "offset": 0, "nbytes": 4},
    {"type": "array", "dtype": "<f4", "shape": [0, 2 ** 62, 2 ** 62], "offset": 0,
     "nbytes": 0},
    {"type": "array", "dtype": "<f4", "shape": [0, 2 ** 70], "offset": 0, "nbytes": 0},
    {"type": "namedtuple", "name": "P", "fields": [["x"]], "items": [NONE]},
    {"type": "namedtuple", "name": "P", "fields": [{"a": 1}], "items": [NONE]},
    {"type": "dict", "keys": [{"type": "float", "value": ["x"]}], "items": [NONE]},
    {"type": "dict", "keys": [[1]], "items": [NONE]},
    {"type": "complex", "value": [1, 2]},
    {"type": "list", "items": [{"type": "array", "dtype": "<f4", "shape": [2],
                                "offset": [0], "nbytes": 8}]},
    {"type": "node", "class": "x.Y", "keys": ["[0]"], "items": [[1]]},
])
def test_crafted_headers_raise_checkpoint_error(tmp_path, node):
    path = tmp_path / "crafted"
    path.write_bytes(craft(node, payload=b"\0" * 64))
    with pytest.raises(CheckpointError):
        load(path)


def test_like_with_mixed_int_and_str_keys(tmp_path):
    tree = {1: np.ones(2), "x": np.zeros(3), "nested": {0: 1, "a": [2, 3]}}
    save(tree, tmp_path / "c")
    out = load(tmp_path / "c", like=tree)
    assert list(out) == [1, "x", "nested"] and out["nested"] == {0: 1, "a": [2, 3]}
    np.testing.assert_array_equal(out[1], np.ones(2))
    bad = {1: np.ones(2), "x": np.zeros(4), "nested": {0: 1, "a": [2, 3]}}
    with pytest.raises(CheckpointError, match=r"\['x'\]"):
        load(tmp_path / "c", like=bad)
    missing = {1: np.ones(2), "x": np.zeros(3), "nested": {0: 1, "b": [2, 3]}}
    with pytest.raises(CheckpointError, match=r"\['nested'\]"):
        load(tmp_path / "c", like=missing)


def test_like_keeps_template_containers(tmp_path):
    Point = collections.namedtuple("Point", "x y")
    tree = {"p": Point(np.ones(1), 2), "d": collections.OrderedDict([("b", 1), ("a", 2)]),
            "dd": collections.defaultdict(list, {"k": 1})}
    save(tree, tmp_path / "c")
    out = load(tmp_path / "c", like=tree)
    assert type(out["p"]) is Point and type(out["d"]) is collections.OrderedDict
    assert list(out["d"]) == ["b", "a"]
    assert type(out["dd"]) is collections.defaultdict and out["dd"].default_factory is list


def test_save_errors_name_the_users_path(tmp_path):
    missing = tmp_path / "no_such_dir" / "ckpt"
    with pytest.raises(OSError) as e:
        save({"a": 1}, missing)
    assert str(missing) in str(e.value) and ".tmp" not in str(e.value)
    with pytest.raises(TypeError, match="ckpt2"):
        save({"a": object()}, tmp_path / "ckpt2")

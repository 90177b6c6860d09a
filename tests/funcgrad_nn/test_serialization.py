"""funcgrad_nn.save / load: round trips, corruption, pickle safety, templates, atomicity."""
import collections
import dataclasses
import hashlib
import json
import math
import os
import pickle
import struct

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import funcgrad
import funcgrad_nn
from funcgrad.tree_util import register_dataclass
from funcgrad_nn import serialization
from funcgrad_nn.serialization import CheckpointError, load, save

Point = collections.namedtuple("Point", "x y")


@register_dataclass
@dataclasses.dataclass
class Linear:
    w: np.ndarray
    b: np.ndarray
    name: str = dataclasses.field(default="lin", metadata={"static": True})


def _assert_same(a, b):
    """Equal values and types, NaN-aware, recursively."""
    assert type(a) is type(b) or (isinstance(a, tuple) and type(a).__name__ ==
                                  type(b).__name__), (type(a), type(b))
    if isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(a, b)
    elif isinstance(a, np.generic):
        assert a.dtype == b.dtype and (a == b or (a != a and b != b))
    elif isinstance(a, dict):
        assert list(a) == list(b)
        for k in a:
            _assert_same(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            _assert_same(x, y)
    elif isinstance(a, float) and math.isnan(a):
        assert math.isnan(b)
    else:
        assert a == b
        if isinstance(a, float):
            assert math.copysign(1, a) == math.copysign(1, b)


DTYPES = [np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32,
          np.uint64, np.float16, np.float32, np.float64, np.complex64, np.complex128]


def everything():
    rng = np.random.default_rng(0)
    arrays = {np.dtype(d).name: (rng.normal(size=(3, 2)) * 100).astype(d) for d in DTYPES}
    return {
        "arrays": arrays,
        "zero_d": np.array(2.5, np.float32),
        "empty": np.zeros((0, 4), np.int32),
        "strided": np.arange(20.0).reshape(4, 5)[::2, ::-2],
        "big_endian": np.arange(4, dtype=">i4"),
        "np_scalars": [np.float32(1.5), np.int64(-3), np.bool_(True), np.complex64(1j)],
        "python": (True, False, 0, -7, 2 ** 100, 1.0 / 3, -0.0, float("inf"), float("nan"),
                   complex(1.5, -2), "héllo ✓", "", None),
        10: "int key", 2.5: "float key", None: "none key", False: "bool key",
        "ordered": collections.OrderedDict([("z", 1), ("a", np.ones(2))]),
        "point": Point(np.ones(3, np.float32), [1, (2, None)]),
        "empties": ([], (), {}, [[]]),
    }


def test_round_trip_every_supported_leaf(tmp_path):
    tree = everything()
    path = tmp_path / "all.fgc"
    save(tree, path)
    got = load(path)
    _assert_same(got["arrays"], tree["arrays"])
    assert got["strided"].flags.c_contiguous
    _assert_same(got["strided"], np.ascontiguousarray(tree["strided"]))
    assert got["big_endian"].dtype == np.dtype(">i4")
    for k in tree:
        if k not in ("strided",):
            _assert_same(got[k], tree[k])
    assert list(got) == list(tree)                   # insertion order kept
    assert got["point"]._fields == ("x", "y") and type(got["point"]).__name__ == "Point"
    assert isinstance(got["ordered"], collections.OrderedDict)
    # with a template, the template's own classes come back (funcgrad.tree_util sorts
    # dict keys, so templates cannot mix key types)
    tree = {k: v for k, v in tree.items() if isinstance(k, str)}
    save(tree, path)
    again = load(path, like=tree)
    assert type(again["point"]) is Point
    _assert_same(again["python"], tree["python"])


@given(arr=hnp.arrays(st.sampled_from(DTYPES), hnp.array_shapes(min_dims=0, max_dims=3,
                                                                 min_side=0, max_side=4)))
def test_round_trip_arrays(tmp_path_factory, arr):
    path = tmp_path_factory.mktemp("h") / "a.fgc"
    save([arr, {"again": arr}], path)
    got = load(path, like=[arr, {"again": arr}])
    for g in (got[0], got[1]["again"]):
        assert g.dtype == arr.dtype and g.shape == arr.shape
        np.testing.assert_array_equal(g, arr)
    assert got[0] is not got[1]["again"]


def test_registered_pytree_classes_need_a_template(tmp_path):
    params = {"layers": [Linear(np.ones((2, 3), np.float32), np.zeros(3, np.float32))]}
    save(params, tmp_path / "p")
    with pytest.raises(CheckpointError, match=r"registered pytree class at \['layers'\]\[0\]"):
        load(tmp_path / "p")
    got = load(tmp_path / "p", like=params)
    layer = got["layers"][0]
    assert type(layer) is Linear and layer.name == "lin" and layer.w.shape == (2, 3)


def test_unsupported_values_are_refused_before_writing(tmp_path):
    path = tmp_path / "x"
    for bad, match in ((np.array([object()]), "object"), (np.array(["a"]), "dtype"),
                       ({"k": {1, 2}}, r"set at \['k'\]"), ({(1, 2): 0}, "dict key"),
                       ({"f": lambda: 0}, "function")):
        with pytest.raises(TypeError, match=match):
            save(bad, path)
    assert not path.exists() and os.listdir(tmp_path) == []


def test_tracers_are_refused(tmp_path):
    def f(x):
        save({"x": x}, tmp_path / "t")
        return (x * x).sum()

    with pytest.raises(TypeError, match="Tracer"):
        funcgrad.grad(f)(np.ones(3))


def _saved(tmp_path):
    path = tmp_path / "c.fgc"
    save({"w": np.arange(100, dtype=np.float32), "step": 5}, path)
    return path, path.read_bytes()


def test_truncated_files_are_rejected(tmp_path):
    path, data = _saved(tmp_path)
    hlen = struct.unpack("<Q", data[8:16])[0]
    for cut in (0, 5, 20, 55, 56 + hlen // 2, 56 + hlen + 10, len(data) - 1):
        path.write_bytes(data[:cut])
        with pytest.raises(CheckpointError, match="truncated|not a funcgrad_nn"):
            load(path)
    path.write_bytes(data + b"\0")
    with pytest.raises(CheckpointError, match="longer than"):
        load(path)


def test_bit_flips_are_detected(tmp_path):
    path, data = _saved(tmp_path)
    hlen = struct.unpack("<Q", data[8:16])[0]
    positions = [0, 7, 9, 17, 30, 60, 56 + hlen // 2, 56 + hlen + 3, len(data) - 1]
    for pos in positions:
        flipped = bytearray(data)
        flipped[pos] ^= 0x04
        path.write_bytes(bytes(flipped))
        with pytest.raises(CheckpointError) as e:
            load(path)
        if pos >= 24:
            assert "checksum mismatch" in str(e.value)
    path.write_bytes(data)
    assert load(path)["step"] == 5


class _MakesMarker:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _craft(header_tree, payload=b""):
    """A structurally valid file (right magic, lengths, checksum) with any header."""
    header = json.dumps({"format": "funcgrad_nn.checkpoint", "version": 1,
                         "tree": header_tree}).encode()
    header += b" " * ((-(56 + len(header))) % 64)
    digest = hashlib.sha256(header + payload).digest()
    return (b"FGCKPT\x00\x01" + struct.pack("<QQ", len(header), len(payload)) + digest +
            header + payload)


def test_pickles_are_never_executed(tmp_path, monkeypatch):
    marker = tmp_path / "marker"
    evil = pickle.dumps({"w": _MakesMarker(str(marker))})
    pickle.loads(evil)                      # sanity: unpickling really creates the marker
    assert marker.exists()
    marker.unlink()

    def forbidden(*a, **k):
        raise AssertionError("load must never unpickle")

    for name in ("load", "loads", "Unpickler"):
        monkeypatch.setattr(pickle, name, forbidden)
    monkeypatch.setattr(np, "load", forbidden)

    path = tmp_path / "evil.pkl"
    path.write_bytes(evil)
    with pytest.raises(CheckpointError, match="never unpickles"):
        load(path)
    np.save(tmp_path / "obj.npy", np.array([_MakesMarker(str(marker))], dtype=object),
            allow_pickle=True)
    with pytest.raises(CheckpointError, match="not a funcgrad_nn checkpoint"):
        load(tmp_path / "obj.npy")
    # valid framing and checksum, but a header asking for objects or unknown node types
    for tree, match in (
            ({"type": "array", "dtype": "|O8", "shape": [1], "offset": 0, "nbytes": 8},
             "dtype"),
            ({"type": "pickle", "data": evil.hex()}, "unknown node type"),
            ({"type": "namedtuple", "name": "os.system", "fields": [], "items": []},
             "identifier"),
            ({"type": "array", "dtype": "<f4", "shape": [4], "offset": 0, "nbytes": 16},
             "outside the payload")):
        crafted = tmp_path / "crafted"
        crafted.write_bytes(_craft(tree, payload=b"\0" * 8))
        with pytest.raises(CheckpointError, match=match):
            load(crafted)
    assert not marker.exists()
    # and a normal round trip works with pickle and np.load unavailable
    save({"x": np.ones(2)}, tmp_path / "ok")
    assert load(tmp_path / "ok")["x"].tolist() == [1.0, 1.0]


def test_like_mismatches_name_the_key_path(tmp_path):
    tree = {"params": [{"w": np.zeros((2, 3), np.float32), "b": np.zeros(3, np.float32)}],
            "step": 3, "opt": (np.zeros(2), None)}
    path = tmp_path / "c"
    save(tree, path)
    assert load(path, like=tree)["step"] == 3
    # templates may be anything with shape and dtype (here: abstract stand-ins)
    class Abstract:
        def __init__(self, shape, dtype):
            self.shape, self.dtype = shape, dtype

    spec = funcgrad.tree_util.tree_map(lambda a: Abstract(a.shape, a.dtype)
                                       if isinstance(a, np.ndarray) else a, tree)
    assert load(path, like=spec)["params"][0]["w"].shape == (2, 3)

    def variant(**changes):
        t = {"params": [dict(tree["params"][0])], "step": 3, "opt": tree["opt"]}
        for k, v in changes.items():
            if k in ("w", "b", "extra"):
                t["params"][0][k] = v
            else:
                t[k] = v
        return t

    cases = [
        (variant(w=np.zeros((3, 2), np.float32)),
         r"\['params'\]\[0\]\['w'\]: the checkpoint has float32\[2,3\], the template has "
         r"float32\[3,2\]"),
        (variant(b=np.zeros(3, np.float64)), r"\['params'\]\[0\]\['b'\].*float64\[3\]"),
        (variant(extra=np.zeros(1)), r"\['params'\]\[0\]\['extra'\]: in the template but not"),
        (variant(step=3.0), r"\['step'\]: the checkpoint has a Python int, the template has "
                            r"a Python float"),
        (variant(opt=[np.zeros(2), None]), r"\['opt'\]: the checkpoint has a tuple, the "
                                           r"template has a list"),
        (variant(opt=(np.zeros(2), np.zeros(1))), r"\['opt'\]\[1\]: the checkpoint has a "
                                                  r"None"),
        ({"params": tree["params"], "step": 3}, r"\['opt'\]: in the checkpoint but not"),
        (variant(params={"w": 1}), r"\['params'\]: the checkpoint has a list"),
    ]
    for like, match in cases:
        with pytest.raises(CheckpointError, match=match):
            load(path, like=like)


def test_failed_writes_leave_the_old_checkpoint_intact(tmp_path, monkeypatch):
    path = tmp_path / "ckpt"
    save({"version": 1}, path)
    before = path.read_bytes()
    with pytest.raises(TypeError):
        save({"version": 2, "bad": object()}, path)

    def boom(fd):
        raise OSError("disk full")

    monkeypatch.setattr(serialization.os, "fsync", boom)
    with pytest.raises(OSError, match="disk full"):
        save({"version": 3, "big": np.ones(10000)}, path)
    monkeypatch.undo()
    assert path.read_bytes() == before and load(path) == {"version": 1}
    assert os.listdir(tmp_path) == ["ckpt"]             # no temporary files left behind
    save({"version": 4}, path)
    assert load(path) == {"version": 4}


def test_file_mode_follows_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        save({"a": 1}, tmp_path / "m")
    finally:
        os.umask(old)
    assert (tmp_path / "m").stat().st_mode & 0o777 == 0o644


def test_devices(tmp_path):
    save({"a": np.ones(2)}, tmp_path / "d")
    assert isinstance(load(tmp_path / "d", device="cpu")["a"], np.ndarray)
    with pytest.raises(ValueError, match="device"):
        load(tmp_path / "d", device="tpu")
    if "gpu:0" not in funcgrad.devices():
        with pytest.raises(ValueError, match="CuPy|not available"):
            load(tmp_path / "d", device="gpu")


def test_load_onto_a_device_module(tmp_path):
    # checked on the CPU stand-in for a device array module: saved as host data, loaded
    # straight onto the chosen device, with or without a template
    from funcgrad._src.testing_backend import StandInArray, standin_xp
    tree = {"w": np.arange(6.0).reshape(2, 3), "step": 3, "name": "run"}
    save(funcgrad.device_put(tree, standin_xp), tmp_path / "s")
    for like in (None, tree):
        out = load(tmp_path / "s", like=like, device=standin_xp)
        assert type(out["w"]) is StandInArray and out["step"] == 3 and out["name"] == "run"
        np.testing.assert_array_equal(out["w"].get(), tree["w"])


@pytest.mark.gpu
def test_cupy_round_trip(tmp_path):
    cupy = pytest.importorskip("cupy", reason="needs CuPy")
    try:
        x = cupy.arange(6, dtype=cupy.float32).reshape(2, 3)
    except Exception as e:  # CuPy installed but no usable device
        pytest.skip(f"no CUDA device: {e}")
    save({"x": x, "n": 1}, tmp_path / "g")
    host = load(tmp_path / "g")
    assert isinstance(host["x"], np.ndarray) and host["x"].tolist() == x.get().tolist()
    dev = load(tmp_path / "g", device="gpu", like={"x": x, "n": 1})
    assert isinstance(dev["x"], cupy.ndarray) and bool((dev["x"] == x).all())


def test_exported_from_package():
    assert funcgrad_nn.save is save and funcgrad_nn.load is load

"""funcgrad_nn.datasets and funcgrad_nn.transforms. Never touches the network: the IDX
files are written here and downloads are served by a stand-in for the fetch function."""
import gzip
import hashlib
import os
import struct
import urllib.error

import numpy as np
import pytest

from funcgrad_nn import datasets, transforms as T
from funcgrad_nn.data import DataLoader
from funcgrad_nn.datasets import (MNIST, Digits, DownloadError, FashionMNIST, make_blobs,
                                  make_circles, make_moons, read_idx)

_CODES = {np.uint8: 0x08, np.int8: 0x09, np.int16: 0x0B, np.int32: 0x0C, np.float32: 0x0D,
          np.float64: 0x0E}


def idx_bytes(arr):
    arr = np.asarray(arr)
    head = bytes([0, 0, _CODES[arr.dtype.type], arr.ndim])
    head += struct.pack(f">{arr.ndim}I", *arr.shape)
    return head + arr.astype(arr.dtype.newbyteorder(">")).tobytes()


def write_mnist(root, folder="MNIST", n_train=12, n_test=5, gz=False, seed=0):
    rng = np.random.default_rng(seed)
    raw = os.path.join(root, folder, "raw")
    os.makedirs(raw, exist_ok=True)
    out = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, size=n).astype(np.uint8)
        for kind, arr in (("images-idx3", images), ("labels-idx1", labels)):
            name = os.path.join(raw, f"{prefix}-{kind}-ubyte")
            data = idx_bytes(arr)
            if gz:
                with gzip.open(name + ".gz", "wb") as f:
                    f.write(data)
            else:
                with open(name, "wb") as f:
                    f.write(data)
        out[prefix] = (images, labels)
    return out


# ---- IDX ----------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", list(_CODES))
@pytest.mark.parametrize("gz", [False, True])
def test_read_idx_round_trip(tmp_path, dtype, gz):
    arr = (np.arange(24).reshape(2, 3, 4) - 5).astype(dtype)
    if dtype == np.uint8:
        arr = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    path = tmp_path / ("a.idx.gz" if gz else "a.idx")
    data = idx_bytes(arr)
    path.write_bytes(gzip.compress(data) if gz else data)
    got = read_idx(path)
    assert got.dtype == np.dtype(dtype) and got.dtype.isnative
    np.testing.assert_array_equal(got, arr)


@pytest.mark.parametrize("data, match", [
    (b"\x00\x00", "too short"),
    (b"\x01\x00\x08\x01" + b"\x00" * 8, "bad magic number 0x01000801"),
    (b"\x00\x00\x07\x01" + b"\x00" * 8, "bad magic number"),
    (b"\x00\x00\x08\x00", "bad magic number"),
    (b"\x00\x00\x08\x03\x00\x00\x00\x02", "announces 3 dimensions"),
    (b"\x00\x00\x08\x01\x00\x00\x00\x05abc", "5 data bytes, but the file has 3"),
    (b"\x00\x00\x0c\x01\x00\x00\x00\x01abcdXY", "4 data bytes, but the file has 6"),
    (b"<html>Not Found</html>", "bad magic number"),
])
def test_read_idx_rejects_bad_headers(tmp_path, data, match):
    path = tmp_path / "bad"
    path.write_bytes(data)
    with pytest.raises(ValueError, match=match) as e:
        read_idx(path)
    assert str(path) in str(e.value)


def test_read_idx_rejects_truncated_gzip(tmp_path):
    path = tmp_path / "x.gz"
    path.write_bytes(gzip.compress(idx_bytes(np.zeros((50, 50), np.uint8)))[:30])
    with pytest.raises(ValueError, match="gzip"):
        read_idx(path)


# ---- MNIST --------------------------------------------------------------------------
@pytest.mark.parametrize("gz", [False, True])
def test_mnist_reads_torchvision_layout(tmp_path, gz):
    ref = write_mnist(tmp_path, gz=gz)
    train, test = MNIST(tmp_path), MNIST(str(tmp_path), train=False)
    assert len(train) == 12 and len(test) == 5
    assert train.data.dtype == np.uint8 and train.data.shape == (12, 28, 28)
    assert train.targets.dtype == np.int64
    img, label = test[3]
    np.testing.assert_array_equal(img, ref["t10k"][0][3])
    assert label == ref["t10k"][1][3] and type(label) is int

    tr = MNIST(tmp_path, transform=T.Compose([T.ToArray(), T.Normalize([0.5], [0.5])]),
               target_transform=lambda y: y + 100)
    x, y = tr[0]
    assert x.shape == (1, 28, 28) and x.dtype == np.float32 and y == ref["train"][1][0] + 100
    np.testing.assert_allclose(x[0], ref["train"][0][0] / 127.5 - 1, atol=1e-6)

    # without transforms the loader's fast path gives exactly the per-sample batches
    x, y = next(iter(DataLoader(train, batch_size=12)))
    np.testing.assert_array_equal(x, ref["train"][0])
    np.testing.assert_array_equal(y, ref["train"][1])
    xs, ys = next(iter(DataLoader(tr, batch_size=4)))
    assert xs.shape == (4, 1, 28, 28) and ys.tolist() == (ref["train"][1][:4] + 100).tolist()


def test_fashion_mnist_uses_its_own_folder(tmp_path):
    write_mnist(tmp_path, folder="FashionMNIST", gz=True)
    ds = FashionMNIST(tmp_path)
    assert len(ds) == 12 and ds.classes[9] == "Ankle boot"
    with pytest.raises(FileNotFoundError, match="MNIST"):
        MNIST(tmp_path)


def test_mnist_missing_files_error_names_paths(tmp_path):
    with pytest.raises(FileNotFoundError) as e:
        MNIST(tmp_path)
    msg = str(e.value)
    raw = os.path.join(str(tmp_path), "MNIST", "raw")
    assert os.path.join(raw, "train-images-idx3-ubyte") in msg
    assert os.path.join(raw, "train-images-idx3-ubyte.gz") in msg
    assert "download=True" in msg and "https://" in msg


def test_mnist_rejects_inconsistent_files(tmp_path):
    write_mnist(tmp_path)
    raw = tmp_path / "MNIST" / "raw"
    (raw / "train-labels-idx1-ubyte").write_bytes(idx_bytes(np.zeros(11, np.uint8)))
    with pytest.raises(ValueError, match="12 images"):
        MNIST(tmp_path)
    (raw / "train-labels-idx1-ubyte").write_bytes(idx_bytes(np.full(12, 10, np.uint8)))
    with pytest.raises(ValueError, match="labels outside"):
        MNIST(tmp_path)


def test_download_offline_says_which_files_to_put_where(tmp_path, monkeypatch):
    tried = []

    def offline(url, timeout):
        tried.append(url)
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(datasets, "_fetch_url", offline)
    with pytest.raises(DownloadError) as e:
        MNIST(tmp_path, download=True)
    msg = str(e.value)
    raw = os.path.join(str(tmp_path), "MNIST", "raw")
    for name, md5 in MNIST.resources.items():
        assert os.path.join(raw, name + ".gz") in msg and md5 in msg
    assert "name resolution" in msg
    # every mirror was tried for the first file, then no more network attempts
    assert tried == [m + "train-images-idx3-ubyte.gz" for m in MNIST.mirrors]


def test_download_checks_md5_and_tries_mirrors(tmp_path, monkeypatch):
    ref = {}
    payloads = {}
    for prefix, n in (("train", 3), ("t10k", 2)):
        images = np.full((n, 28, 28), 7, np.uint8)
        labels = np.arange(n, dtype=np.uint8)
        for kind, arr in (("images-idx3", images), ("labels-idx1", labels)):
            payloads[f"{prefix}-{kind}-ubyte"] = gzip.compress(idx_bytes(arr))
        ref[prefix] = labels
    resources = {k: hashlib.md5(v).hexdigest() for k, v in payloads.items()}
    monkeypatch.setattr(MNIST, "resources", resources)
    mirror1, mirror2 = MNIST.mirrors

    def fetch(url, timeout):
        name = url.rsplit("/", 1)[1][:-3]
        if url.startswith(mirror1):
            return b"corrupted" if "train" in name else payloads[name]
        return payloads[name]

    monkeypatch.setattr(datasets, "_fetch_url", fetch)
    ds = MNIST(tmp_path, download=True)
    assert ds.targets.tolist() == [0, 1, 2]
    assert sorted(os.listdir(tmp_path / "MNIST" / "raw")) == sorted(n + ".gz" for n in payloads)

    def all_bad(url, timeout):
        return b"wrong bytes"

    monkeypatch.setattr(datasets, "_fetch_url", all_bad)
    assert len(MNIST(tmp_path, train=False, download=True)) == 2    # present: no fetch
    with pytest.raises(DownloadError, match="MD5"):
        FashionMNIST(tmp_path, download=True)


# ---- Digits and synthetic sets ------------------------------------------------------
def test_digits():
    pytest.importorskip("sklearn", reason="Digits needs scikit-learn")
    train, test = Digits(train=True), Digits(train=False)
    assert len(train) + len(test) == 1797 and len(test) == round(0.2 * 1797)
    x, y = train[0]
    assert x.shape == (1, 8, 8) and x.dtype == np.float32 and 0 <= x.min() <= x.max() <= 1
    assert isinstance(y, int) and 0 <= y < 10
    assert train.data.max() == 1.0
    again = Digits(train=False)
    np.testing.assert_array_equal(again.data, test.data)
    other = Digits(train=False, seed=1)
    assert not np.array_equal(other.targets, test.targets)
    xb, yb = next(iter(DataLoader(train, batch_size=32, shuffle=True)))
    assert xb.shape == (32, 1, 8, 8) and yb.dtype == np.int64
    with pytest.raises(ValueError, match="test_fraction"):
        Digits(test_fraction=1.0)


def test_digits_without_sklearn(monkeypatch):
    import builtins
    real = builtins.__import__

    def no_sklearn(name, *a, **k):
        if name.startswith("sklearn"):
            raise ImportError("No module named 'sklearn'")
        return real(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_sklearn)
    with pytest.raises(ImportError, match="pip install scikit-learn"):
        Digits()


def test_synthetic_sets():
    x, y = make_moons(101, noise=0.05, seed=1)
    assert x.shape == (101, 2) and x.dtype == np.float32 and y.dtype == np.int64
    assert np.bincount(y).tolist() == [50, 51]
    x2, y2 = make_moons(101, noise=0.05, seed=1)
    np.testing.assert_array_equal(x, x2)
    assert not np.array_equal(x, make_moons(101, noise=0.05, seed=2)[0])
    xc, yc = make_circles(200, factor=0.5, seed=0)
    r = np.linalg.norm(xc, axis=1)
    np.testing.assert_allclose(r[yc == 0], 1.0, atol=1e-6)
    np.testing.assert_allclose(r[yc == 1], 0.5, atol=1e-6)
    xb, yb = make_blobs(50, centers=[[0, 0], [100, 100]], cluster_std=0.1, seed=0)
    assert np.bincount(yb).tolist() == [25, 25]
    np.testing.assert_allclose(xb[yb == 1].mean(0), [100, 100], atol=0.1)
    assert make_blobs(10, centers=4, n_features=3)[0].shape == (10, 3)
    with pytest.raises(ValueError, match="factor"):
        make_circles(10, factor=1.5)
    with pytest.raises(ValueError, match="positive integer"):
        make_moons(0)


# ---- transforms ---------------------------------------------------------------------
def test_to_array_and_normalize():
    img = np.arange(24, dtype=np.uint8).reshape(2, 4, 3) * 10
    x = T.ToArray()(img)
    assert x.shape == (3, 2, 4) and x.dtype == np.float32
    np.testing.assert_allclose(x, img.transpose(2, 0, 1) / 255, rtol=1e-6)
    assert T.ToArray()(np.ones((2, 2), np.float64) * 3).max() == 3.0    # no scaling
    n = T.Normalize([0.5, 0.0, 1.0], [0.5, 2.0, 1.0])(x)
    assert n.dtype == np.float32
    np.testing.assert_allclose(n[1], x[1] / 2, rtol=1e-6)
    np.testing.assert_allclose(n[0], (x[0] - 0.5) / 0.5, rtol=1e-6)
    with pytest.raises(ValueError, match="C=3"):
        T.Normalize([0, 0, 0], [1, 1, 1])(np.zeros((2, 4, 4), np.float32))
    with pytest.raises(ValueError, match="zero"):
        T.Normalize([0], [0])
    with pytest.raises(ValueError, match="image"):
        T.ToArray()(np.zeros(3))


def test_random_crop_and_flip():
    img = np.arange(25, dtype=np.float32).reshape(1, 5, 5)
    crop = T.RandomCrop(3, padding=1)
    outs = {crop(img, rng=np.random.default_rng(s)).tobytes() for s in range(40)}
    assert len(outs) > 10                                   # offsets vary with the rng
    padded = np.pad(img, ((0, 0), (1, 1), (1, 1)))
    windows = {padded[:, i:i + 3, j:j + 3].tobytes() for i in range(5) for j in range(5)}
    assert outs <= windows
    a = crop(img, rng=np.random.default_rng(3))
    np.testing.assert_array_equal(a, crop(img, rng=np.random.default_rng(3)))
    seeded1, seeded2 = T.RandomCrop(2, seed=5), T.RandomCrop(2, seed=5)
    np.testing.assert_array_equal(seeded1(img), seeded2(img))
    with pytest.raises(ValueError, match="larger than"):
        T.RandomCrop(6)(img)
    assert T.RandomCrop(6, pad_if_needed=True)(img).shape == (1, 6, 6)
    assert T.RandomCrop((2, 4), padding=(1, 0))(img).shape == (1, 2, 4)

    flip = T.RandomHorizontalFlip(1.0)
    np.testing.assert_array_equal(flip(img), img[..., ::-1])
    np.testing.assert_array_equal(T.RandomHorizontalFlip(0.0)(img), img)
    flips = [T.RandomHorizontalFlip()(img, rng=np.random.default_rng(s))[0, 0, 0]
             for s in range(30)]
    assert {0.0, 4.0} == set(flips)

    c = T.Compose([T.Lambda(lambda v: v + 1), T.RandomHorizontalFlip(1.0), np.negative])
    np.testing.assert_array_equal(c(img, rng=np.random.default_rng(0)), -(img + 1)[..., ::-1])

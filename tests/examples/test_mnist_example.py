"""Smoke test of examples/mnist.py on a tiny synthetic MNIST written as IDX files."""
import gzip
import importlib.util
import os

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def load_example():
    path = os.path.join(ROOT, "examples", "mnist.py")
    spec = importlib.util.spec_from_file_location("example_mnist", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def write_idx(path, arr):
    """Write a uint8 array in the IDX format (big-endian header), gzipped if ``.gz``."""
    arr = np.ascontiguousarray(arr, dtype=np.uint8)
    data = bytes([0, 0, 0x08, arr.ndim]) + np.asarray(arr.shape, ">u4").tobytes()
    data += arr.tobytes()
    if path.endswith(".gz"):
        data = gzip.compress(data)
    with open(path, "wb") as f:
        f.write(data)


def squares(n, rng):
    """Noisy 28x28 images with a bright 4x4 square whose position (2 rows x 5 columns of
    slots, jittered by a pixel) is the label."""
    labels = np.arange(n) % 10
    rng.shuffle(labels)
    images = rng.integers(0, 60, (n, 28, 28)).astype(np.uint8)
    for img, k in zip(images, labels):
        r = 4 + 12 * (k // 5) + rng.integers(-1, 2)
        c = 2 + 5 * (k % 5) + rng.integers(-1, 2)
        img[r:r + 4, c:c + 4] = rng.integers(200, 256, (4, 4))
    return images, labels.astype(np.uint8)


@pytest.fixture
def fake_mnist(tmp_path):
    raw = tmp_path / "data" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    # the training files gzipped, the test files plain: both are read
    for prefix, n, ext in (("train", 400, ".gz"), ("t10k", 200, "")):
        images, labels = squares(n, rng)
        write_idx(str(raw / f"{prefix}-images-idx3-ubyte{ext}"), images)
        write_idx(str(raw / f"{prefix}-labels-idx1-ubyte{ext}"), labels)
    return tmp_path / "data"


def test_mnist_example_learns_the_synthetic_task(fake_mnist, tmp_path, capsys):
    out = tmp_path / "out"
    acc = load_example().main(["--root", str(fake_mnist), "--epochs", "2", "--batch-size",
                               "32", "--lr", "3e-3", "--limit-train", "320",
                               "--limit-test", "150", "--no-progress", "--out", str(out)])
    assert acc >= 0.9                                 # chance is 0.1
    assert (out / "mnist_cnn.fgck").exists()
    text = capsys.readouterr().out
    assert "MNIST: 320 training and 150 test images" in text
    assert "reloaded" in text


def test_inputs_are_normalized_like_the_transforms(fake_mnist):
    import funcgrad_nn as nn
    from funcgrad_nn.transforms import Compose, Normalize, ToArray

    mod = load_example()
    ds = mod.load_split(nn.datasets.MNIST, str(fake_mnist), False, False, 7)
    raw = nn.datasets.MNIST(str(fake_mnist), train=False)
    t = Compose([ToArray(), Normalize((0.1307,), (0.3081,))])
    x, y = ds.arrays
    assert x.shape == (7, 1, 28, 28) and x.dtype == np.float32
    np.testing.assert_array_equal(x, np.stack([t(raw.data[i]) for i in range(7)]))
    np.testing.assert_array_equal(y, raw.targets[:7])


def test_missing_files_give_the_datasets_message_and_exit_1(tmp_path, capsys):
    missing = tmp_path / "nowhere"
    with pytest.raises(SystemExit) as e:
        load_example().main(["--root", str(missing), "--no-progress",
                             "--out", str(tmp_path / "out")])
    assert e.value.code == 1
    err = capsys.readouterr().err
    assert "train-images-idx3-ubyte not found" in err
    assert os.path.join(str(missing), "MNIST", "raw") in err
    assert "--download" in err
    assert "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_fashion_looks_in_its_own_folder(fake_mnist, capsys):
    with pytest.raises(SystemExit) as e:
        load_example().main(["--root", str(fake_mnist), "--fashion", "--no-progress"])
    assert e.value.code == 1
    assert os.path.join("FashionMNIST", "raw") in capsys.readouterr().err

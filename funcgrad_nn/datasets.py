"""Standard small datasets: MNIST, Fashion-MNIST, scikit-learn's 8x8 digits, and synthetic
2-D sets (moons, circles, blobs).

MNIST and Fashion-MNIST use torchvision's file layout, so a folder prepared for
torchvision works as it is::

    root/MNIST/raw/train-images-idx3-ubyte        (or the same name + ".gz")
    root/MNIST/raw/train-labels-idx1-ubyte
    root/MNIST/raw/t10k-images-idx3-ubyte
    root/MNIST/raw/t10k-labels-idx1-ubyte
    root/FashionMNIST/raw/...                     (the same four names)

A ``root`` that holds the four files itself works too: Debian's package
``dataset-fashion-mnist`` (``apt-get install dataset-fashion-mnist``, offline from the
package archive) puts them in ``/usr/share/datasets/fashion-mnist/``.

The files are read directly in the IDX format (:func:`read_idx`), plain or gzip.
``download=True`` fetches the missing ``.gz`` files from the standard mirrors and checks
their MD5 sums; offline, it raises :class:`DownloadError` saying which files to put where.

Samples are ``(image, label)``: the image a ``uint8`` ``(28, 28)`` array (apply
``transforms.ToArray()`` for float32 ``(1, 28, 28)`` in [0, 1]), the label an ``int``.
Without transforms, :class:`funcgrad_nn.data.DataLoader` batches these datasets by fancy
indexing (no per-sample Python calls).
"""
from __future__ import annotations

import gzip
import hashlib
import math
import os
import struct
import urllib.error
import urllib.request
import zlib

import numpy as np

from funcgrad.errors import FuncgradValueError

from .data import Dataset
from .transforms import Transform

__all__ = ["Digits", "DownloadError", "FashionMNIST", "MNIST", "make_blobs",
           "make_circles", "make_moons", "parse_idx", "read_idx"]


class DownloadError(OSError):
    """A dataset could not be downloaded (offline, mirror down, or checksum mismatch)."""


# ---- IDX files ----------------------------------------------------------------------
# Type codes of the IDX format (third byte of the magic number); data is big-endian.
_IDX_TYPES = {0x08: np.dtype(">u1"), 0x09: np.dtype(">i1"), 0x0B: np.dtype(">i2"),
              0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


def parse_idx(data: bytes, name: str = "<bytes>") -> np.ndarray:
    """Decode the bytes of an (uncompressed) IDX file; see :func:`read_idx`."""
    if len(data) < 4:
        raise FuncgradValueError(
            f"IDX file {name}: {len(data)} bytes is too short for the 4-byte magic number")
    if data[0] != 0 or data[1] != 0 or data[2] not in _IDX_TYPES or data[3] == 0:
        raise FuncgradValueError(
            f"IDX file {name}: bad magic number 0x{data[:4].hex()}; expected 0x0000TTNN with "
            f"type TT in {{{', '.join(f'{t:02x}' for t in _IDX_TYPES)}}} and NN >= 1 "
            "dimensions. Is this really an IDX file (and not, e.g., an HTML error page)?")
    dtype, ndim = _IDX_TYPES[data[2]], data[3]
    start = 4 + 4 * ndim
    if len(data) < start:
        raise FuncgradValueError(
            f"IDX file {name}: the header announces {ndim} dimensions but the file ends "
            f"after {len(data)} bytes")
    dims = tuple(int(d) for d in np.frombuffer(data, ">u4", count=ndim, offset=4))
    expected = _idx_data_bytes(data[:start])
    if len(data) - start != expected:
        raise FuncgradValueError(
            f"IDX file {name}: the header says shape {dims} of {dtype.newbyteorder('=')}, "
            f"i.e. {expected} data bytes, but the file has {len(data) - start} (truncated or "
            "corrupt; delete it and download again)")
    out = np.frombuffer(data, dtype, offset=start).reshape(dims)
    return out.astype(dtype.newbyteorder("="))     # native byte order, writable copy


def _idx_data_bytes(head):
    """The data bytes announced by a complete IDX header, in Python ints (the product
    of up to 255 dimensions below 2**32 would wrap around in int64)."""
    ndim = head[3]
    return math.prod(struct.unpack(f">{ndim}I", head[4:4 + 4 * ndim])) * \
        _IDX_TYPES[head[2]].itemsize


# deflate cannot expand data more than 1032-fold; with gzip framing, bound it generously
_GZIP_MAX_RATIO = 1100


def _read_gzip_idx(f, path):
    """Decompress an IDX file only as far as its header says: the header first, then
    exactly the announced data bytes (plus one, to detect extra data). A small file that
    would decompress to much more (a gzip bomb) is refused without filling memory."""
    compressed = os.fstat(f.fileno()).st_size
    with gzip.GzipFile(fileobj=f) as g:
        head = g.read(4)
        if len(head) < 4 or head[0] or head[1] or head[2] not in _IDX_TYPES or not head[3]:
            return head                     # parse_idx explains what is wrong
        head += g.read(4 * head[3])
        if len(head) < 4 + 4 * head[3]:
            return head
        want = _idx_data_bytes(head)
        if want > _GZIP_MAX_RATIO * compressed:
            raise FuncgradValueError(
                f"IDX file {path}: the header announces {want} data bytes, which a "
                f"{compressed}-byte gzip file cannot hold (corrupt or crafted; delete it "
                "and download it again)")
        data = bytearray(head)
        remaining = want + 1
        while remaining:
            chunk = g.read(min(remaining, 1 << 24))
            if not chunk:
                break
            data += chunk
            remaining -= len(chunk)
        if len(data) > len(head) + want:
            raise FuncgradValueError(
                f"IDX file {path}: the gzip data holds more data than the {want} bytes its "
                f"header's shape announces (corrupt or crafted; delete it and download it "
                "again)")
        return bytes(data)


def read_idx(path) -> np.ndarray:
    """Read an IDX file (the MNIST format), plain or gzip-compressed.

    The header is validated: the magic number (two zero bytes, a known type code, a
    dimension count) and that the data length matches the dimensions exactly. Raises
    ``ValueError`` naming the file otherwise; ``FileNotFoundError`` when it is missing.
    A gzip file is decompressed only up to the size its header announces, so a small
    file that would expand to gigabytes is refused without filling the memory.
    """
    path = os.fspath(path)
    with open(path, "rb") as f:
        if f.read(2) != b"\x1f\x8b":
            f.seek(0)
            return parse_idx(f.read(), path)
        f.seek(0)
        try:
            data = _read_gzip_idx(f, path)
        except (OSError, EOFError, zlib.error) as e:
            raise FuncgradValueError(
                f"IDX file {path}: corrupt or truncated gzip data ({e}); delete it and "
                "download it again") from None
    return parse_idx(data, path)


# ---- MNIST-style datasets -----------------------------------------------------------
def _fetch_url(url: str, timeout: float) -> bytes:
    req = urllib.request.Request(url, headers={"User-Agent": "funcgrad_nn"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return r.read()


def _apply(transform, x, rng):
    if transform is None:
        return x
    return transform(x, rng=rng) if isinstance(transform, Transform) else transform(x)


class MNIST(Dataset):
    """The MNIST handwritten digits: 60000 training and 10000 test 28x28 images.

    Args:
      root: the folder holding ``MNIST/raw/`` (torchvision's layout, see the module
        docstring), or the four files themselves.
      train: the training set (else the test set).
      transform / target_transform: applied to the image / the label; a
        :class:`funcgrad_nn.transforms.Transform` also receives the loader's ``rng``.
      download: fetch missing files from the mirrors (MD5-checked).

    Attributes: ``data`` (uint8, (N, 28, 28)), ``targets`` (int64, (N,)), ``classes``,
    ``class_to_idx`` (torchvision's ``{class name: label}``).
    Raises ``FileNotFoundError`` naming the paths looked at when files are missing,
    ``ValueError`` for corrupt files, :class:`DownloadError` when a download fails.
    """

    mirrors = ("https://ossci-datasets.s3.amazonaws.com/mnist/",
               "http://yann.lecun.com/exdb/mnist/")
    # MD5 of the published .gz files.
    resources = {"train-images-idx3-ubyte": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
                 "train-labels-idx1-ubyte": "d53e105ee54ea40749a09fcbcd1e9432",
                 "t10k-images-idx3-ubyte": "9fb629c4189551a2d022fa330f9573f3",
                 "t10k-labels-idx1-ubyte": "ec29112dd5afa0611ce80d1b7f02629c"}
    classes = ["0 - zero", "1 - one", "2 - two", "3 - three", "4 - four", "5 - five",
               "6 - six", "7 - seven", "8 - eight", "9 - nine"]
    download_timeout = 30.0
    offline_hint = ""

    def __init__(self, root, train: bool = True, transform=None, target_transform=None,
                 download: bool = False):
        self.root = os.path.expanduser(os.fspath(root))
        self.train = bool(train)
        self.transform = transform
        self.target_transform = target_transform
        if download:
            self.download()
        prefix = "train" if self.train else "t10k"
        images_path = self._find(f"{prefix}-images-idx3-ubyte")
        labels_path = self._find(f"{prefix}-labels-idx1-ubyte")
        images, labels = read_idx(images_path), read_idx(labels_path)
        if images.ndim != 3 or images.dtype != np.uint8:
            raise FuncgradValueError(
                f"{type(self).__name__}: {images_path} holds {images.dtype} data of shape "
                f"{images.shape}; expected uint8 images of shape (N, H, W)")
        if labels.ndim != 1 or labels.shape[0] != images.shape[0]:
            raise FuncgradValueError(
                f"{type(self).__name__}: {labels_path} holds shape {labels.shape} but "
                f"{images_path} has {images.shape[0]} images; expected ({images.shape[0]},)")
        if labels.size and (labels.min() < 0 or labels.max() >= len(self.classes)):
            raise FuncgradValueError(
                f"{type(self).__name__}: {labels_path} has labels outside "
                f"0..{len(self.classes) - 1}")
        self.data = images
        self.targets = labels.astype(np.int64)

    @property
    def class_to_idx(self) -> dict:
        return {c: i for i, c in enumerate(self.classes)}

    @property
    def raw_folder(self) -> str:
        return os.path.join(self.root, type(self).__name__, "raw")

    def _candidates(self, name):
        return [os.path.join(folder, name + ext) for folder in (self.raw_folder, self.root)
                for ext in ("", ".gz")]

    def _find(self, name):
        for p in self._candidates(name):
            if os.path.isfile(p):
                return p
        looked = "\n  ".join(self._candidates(name))
        raise FileNotFoundError(
            f"{type(self).__name__}: dataset file {name} not found; looked at:\n  {looked}\n"
            f"Pass download=True, or download {self.mirrors[0]}{name}.gz and put it in "
            f"{self.raw_folder}/ or {self.root}/ (gzip or uncompressed)."
            + self.offline_hint)

    def _missing(self):
        return [n for n in self.resources
                if not any(os.path.isfile(p) for p in self._candidates(n))]

    def download(self):
        """Download the missing files into :attr:`raw_folder` (as ``.gz``), verifying MD5.

        Tries each mirror in turn. Raises :class:`DownloadError` listing, for every file
        still missing, the URLs tried and the exact path where to put it by hand.
        """
        missing = self._missing()
        if not missing:
            return
        os.makedirs(self.raw_folder, exist_ok=True)
        failures, offline = {}, False
        for name in missing:
            errors = []
            if offline:
                failures[name] = ["not attempted: the network is unreachable"]
                continue
            network_only = True
            for base in self.mirrors:
                url = f"{base}{name}.gz"
                try:
                    blob = _fetch_url(url, self.download_timeout)
                except OSError as e:             # URLError, timeouts, HTTP errors
                    if isinstance(e, urllib.error.HTTPError):
                        network_only = False     # the server answered: not offline
                    errors.append(f"{url}: {e}")
                    continue
                digest = hashlib.md5(blob, usedforsecurity=False).hexdigest()
                if digest != self.resources[name]:
                    network_only = False
                    errors.append(f"{url}: MD5 {digest} != expected {self.resources[name]}")
                    continue
                dest = os.path.join(self.raw_folder, name + ".gz")
                tmp = f"{dest}.part{os.getpid()}"
                with open(tmp, "wb") as f:
                    f.write(blob)
                os.replace(tmp, dest)
                break
            else:
                failures[name] = errors
                offline = network_only
        if failures:
            lines = []
            for name, errs in failures.items():
                lines.append(f"  {os.path.join(self.raw_folder, name + '.gz')}  "
                             f"(MD5 {self.resources[name]})")
                lines.extend(f"      {e}" for e in errs)
            urls = ", ".join(self.mirrors)
            raise DownloadError(
                f"{type(self).__name__}: could not download {len(failures)} file(s). "
                f"Download them by hand (from {urls}) and put them at:\n" + "\n".join(lines))

    def __len__(self):
        return len(self.data)

    def __getitem__(self, index):
        return self.get_sample(index, None)

    def get_sample(self, index, rng=None):
        img, target = self.data[index], int(self.targets[index])
        return _apply(self.transform, img, rng), _apply(self.target_transform, target, rng)

    def _get_batch(self, indices):
        if self.transform is not None or self.target_transform is not None:
            return NotImplemented
        return self.data[indices], self.targets[indices]

    def _wants_rng(self):
        return isinstance(self.transform, Transform) or \
            isinstance(self.target_transform, Transform)

    def __repr__(self):
        split = "train" if self.train else "test"
        return f"{type(self).__name__}(root={self.root!r}, split={split!r}, n={len(self)})"


class FashionMNIST(MNIST):
    """Zalando's Fashion-MNIST: MNIST's format and sizes, 10 clothing classes.

    Same arguments as :class:`MNIST`; the files live in ``root/FashionMNIST/raw/`` or in
    ``root`` itself (``root="/usr/share/datasets/fashion-mnist"`` after ``apt-get install
    dataset-fashion-mnist`` on Debian and Ubuntu).
    """
    offline_hint = ("\nOffline on Debian or Ubuntu: apt-get install dataset-fashion-mnist, "
                    "then root='/usr/share/datasets/fashion-mnist'.")

    mirrors = ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
               "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/"
               "data/fashion/")
    resources = {"train-images-idx3-ubyte": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
                 "train-labels-idx1-ubyte": "25c81989df183df01b3e8a0aad5dffbe",
                 "t10k-images-idx3-ubyte": "bef4ecab320f06d8554ea6380940ec79",
                 "t10k-labels-idx1-ubyte": "bb300cfdad3c16e7a12a480ee83cd310"}
    classes = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
               "Sneaker", "Bag", "Ankle boot"]


class Digits(Dataset):
    """scikit-learn's 8x8 handwritten digits (1797 images), with a fixed train/test split.

    Images are float32 ``(1, 8, 8)`` in [0, 1] (the original 0..16 divided by 16); labels
    are ``int`` 0..9. The split permutes the indices with
    ``numpy.random.default_rng(seed)`` and puts the first ``round(test_fraction * N)``
    in the test set (each set then sorted), so it is the same everywhere.

    Args:
      root: unused (scikit-learn ships the data); accepted for a uniform signature.
      transform / target_transform: as for :class:`MNIST` (note the image is already a
        float CHW array: do not apply ``ToArray``).

    Needs scikit-learn; raises ``ImportError`` saying how to install it otherwise.

        >>> ds = Digits(train=False)   # doctest: +SKIP
        >>> len(ds), ds[0][0].shape    # doctest: +SKIP
        (359, (1, 8, 8))
    """

    classes = list(range(10))

    def __init__(self, root=None, train: bool = True, transform=None, target_transform=None,
                 test_fraction: float = 0.2, seed: int = 0):
        try:
            from sklearn.datasets import load_digits
        except ImportError:
            raise ImportError("Digits needs scikit-learn: pip install scikit-learn") from None
        if not 0.0 < test_fraction < 1.0:
            raise FuncgradValueError(f"Digits: test_fraction={test_fraction} is not in (0, 1)")
        bunch = load_digits()
        images = (bunch.images / 16.0).astype(np.float32)[:, None, :, :]
        n = images.shape[0]
        perm = np.random.default_rng(seed).permutation(n)
        n_test = int(round(test_fraction * n))
        idx = np.sort(perm[n_test:] if train else perm[:n_test])
        self.root, self.train = root, bool(train)
        self.transform, self.target_transform = transform, target_transform
        self.data = np.ascontiguousarray(images[idx])
        self.targets = np.asarray(bunch.target, dtype=np.int64)[idx]

    __len__ = MNIST.__len__
    __getitem__ = MNIST.__getitem__
    get_sample = MNIST.get_sample
    _get_batch = MNIST._get_batch
    _wants_rng = MNIST._wants_rng


# ---- synthetic sets -----------------------------------------------------------------
def _check_n(n, what):
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise FuncgradValueError(f"{what}: n must be a positive integer, got {n!r}")
    return int(n)


def _finish(x, y, noise, rng):
    if noise < 0:
        raise FuncgradValueError(f"noise must be non-negative, got {noise}")
    if noise:
        x = x + rng.normal(scale=noise, size=x.shape)
    perm = rng.permutation(len(y))
    return x[perm].astype(np.float32), y[perm].astype(np.int64)


def make_moons(n: int = 100, noise: float = 0.0, seed: int = 0):
    """Two interleaving half circles: ``(X, y)`` with X float32 ``(n, 2)`` and y int64 in
    {0, 1}; Gaussian noise of std ``noise``; rows shuffled. Reproducible from ``seed``.

        >>> X, y = make_moons(6, noise=0.1, seed=0)
        >>> X.shape, X.dtype, sorted(y.tolist())
        ((6, 2), dtype('float32'), [0, 0, 0, 1, 1, 1])
    """
    n = _check_n(n, "make_moons")
    n_out = n // 2
    n_in = n - n_out
    t_out, t_in = np.linspace(0, np.pi, n_out), np.linspace(0, np.pi, n_in)
    x = np.concatenate([np.stack([np.cos(t_out), np.sin(t_out)], 1),
                        np.stack([1 - np.cos(t_in), 0.5 - np.sin(t_in)], 1)])
    y = np.concatenate([np.zeros(n_out), np.ones(n_in)])
    return _finish(x, y, noise, np.random.default_rng(seed))


def make_circles(n: int = 100, noise: float = 0.0, factor: float = 0.8, seed: int = 0):
    """Two concentric circles (radii 1 and ``factor``): ``(X, y)`` as for
    :func:`make_moons`, label 1 for the inner circle. Raises ``ValueError`` unless
    ``0 < factor < 1``."""
    n = _check_n(n, "make_circles")
    if not 0.0 < factor < 1.0:
        raise FuncgradValueError(f"make_circles: factor={factor} is not in (0, 1)")
    n_out = n // 2
    n_in = n - n_out
    t_out = np.linspace(0, 2 * np.pi, n_out, endpoint=False)
    t_in = np.linspace(0, 2 * np.pi, n_in, endpoint=False)
    x = np.concatenate([np.stack([np.cos(t_out), np.sin(t_out)], 1),
                        factor * np.stack([np.cos(t_in), np.sin(t_in)], 1)])
    y = np.concatenate([np.zeros(n_out), np.ones(n_in)])
    return _finish(x, y, noise, np.random.default_rng(seed))


def make_blobs(n: int = 100, centers=3, n_features: int = 2, cluster_std: float = 1.0,
               center_box=(-10.0, 10.0), seed: int = 0):
    """Isotropic Gaussian clusters: ``(X, y)`` with X float32 ``(n, n_features)`` and y
    int64, the cluster of each row.

    ``centers`` is a number of clusters (centers drawn uniformly in ``center_box``) or a
    ``(k, n_features)`` array of centers. Samples are dealt as evenly as possible, the
    first clusters getting the remainder.
    """
    n = _check_n(n, "make_blobs")
    rng = np.random.default_rng(seed)
    if isinstance(centers, (int, np.integer)):
        if centers < 1:
            raise FuncgradValueError(f"make_blobs: centers={centers} must be >= 1")
        c = rng.uniform(center_box[0], center_box[1], size=(int(centers), n_features))
    else:
        c = np.asarray(centers, dtype=np.float64)
        if c.ndim != 2:
            raise FuncgradValueError(
                f"make_blobs: centers must be an int or a (k, n_features) array, got shape "
                f"{c.shape}")
    if cluster_std < 0:
        raise FuncgradValueError(f"make_blobs: cluster_std={cluster_std} is negative")
    k = c.shape[0]
    counts = [n // k + (1 if i < n % k else 0) for i in range(k)]
    y = np.repeat(np.arange(k), counts)
    x = c[y] + rng.normal(scale=cluster_std, size=(n, c.shape[1]))
    perm = rng.permutation(n)
    return x[perm].astype(np.float32), y[perm].astype(np.int64)

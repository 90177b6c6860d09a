"""Datasets, samplers and a ``DataLoader`` with PyTorch's semantics, over NumPy arrays.

Reproducible by construction: every random choice (shuffling, weighted sampling, data
augmentation) comes from a NumPy ``Generator`` seeded from ``(seed, epoch, ...)``, never
from global state. Iterating a :class:`DataLoader` twice gives two different orders
(epoch 0, then epoch 1), and a fresh loader with the same seed replays them exactly.

Per-sample randomness (augmentation)
------------------------------------
A dataset whose samples are random (e.g. with a ``RandomCrop`` transform) defines
``get_sample(index, rng)`` and draws every random number from ``rng``.
:class:`DataLoader` calls ``dataset.get_sample(i, rng)`` with
``rng = numpy.random.default_rng([seed, epoch, k])`` for the epoch's ``k``-th sample, so
the augmented samples depend only on the loader's seed and the epoch: the same with or
without worker threads, whatever the batch size, run after run (and, with a
:class:`DistributedSampler`, whatever the number of processes: ``k`` is then the place
in the whole epoch's order). Datasets that do not
override ``get_sample`` get ``rng=None`` (building a generator costs about 20 us).
``dataset[i]`` is ``get_sample(i, None)``, and the transforms then use their own
generator (see :mod:`funcgrad_nn.transforms`).

Fast path: when the dataset is an :class:`ArrayDataset` (or a :class:`Subset` of one) and
``collate_fn`` is the default, a batch is one fancy-indexing operation per array instead
of one Python call per sample.

    >>> import numpy as np
    >>> from funcgrad_nn.data import ArrayDataset, DataLoader
    >>> ds = ArrayDataset(np.arange(10.0).reshape(5, 2), np.arange(5))
    >>> x, y = next(iter(DataLoader(ds, batch_size=2)))
    >>> x.shape, y.tolist()
    ((2, 2), [0, 1])
"""
from __future__ import annotations

import abc
import bisect
import collections
import concurrent.futures
import math
import multiprocessing
import numbers
import os
import pickle
import threading
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np

import funcgrad

from funcgrad.errors import FuncgradTypeError, FuncgradValueError
from funcgrad.tree_util import keystr, tree_flatten_with_path, tree_map, tree_unflatten

__all__ = ["ArrayDataset", "BatchSampler", "ConcatDataset", "DataLoader", "Dataset",
           "DistributedSampler", "RandomSampler", "Sampler", "SequentialSampler", "Subset",
           "WeightedRandomSampler", "default_collate", "random_split"]


def _is_array(x) -> bool:
    """A NumPy or CuPy array (anything with shape, dtype and fancy indexing)."""
    return isinstance(x, np.ndarray) or (
        hasattr(x, "shape") and hasattr(x, "dtype") and hasattr(x, "__getitem__")
        and type(x).__module__.split(".")[0] == "cupy")


# ---- datasets -----------------------------------------------------------------------
class Dataset(abc.ABC):
    """A map-style dataset: ``len(ds)`` samples, ``ds[i]`` for ``0 <= i < len(ds)``.

    Subclasses define ``__getitem__`` and ``__len__``. A dataset with random samples
    (augmentation) also overrides :meth:`get_sample` and draws its randomness from the
    ``rng`` it receives; ``ds1 + ds2`` concatenates.
    """

    @abc.abstractmethod
    def __getitem__(self, index):
        raise NotImplementedError

    @abc.abstractmethod
    def __len__(self) -> int:
        raise NotImplementedError

    def get_sample(self, index, rng=None):
        """The sample at ``index``, random choices drawn from the NumPy Generator ``rng``
        (None: the transforms' own generators). The default ignores ``rng``."""
        return self[index]

    def _get_batch(self, indices: np.ndarray):
        """The collated batch for ``indices`` in one vectorized step, or ``NotImplemented``
        when the dataset can only be read sample by sample."""
        return NotImplemented

    def _wants_rng(self) -> bool:
        """Whether ``get_sample`` may use its ``rng`` (building one costs ~20 us, so the
        loader passes None to datasets that cannot use it)."""
        return type(self).get_sample is not Dataset.get_sample

    def __add__(self, other):
        return ConcatDataset([self, other])


def _check_index(index, n, what):
    if isinstance(index, (bool, np.bool_)) or not isinstance(index, numbers.Integral):
        raise FuncgradTypeError(f"{what}: index must be an integer, got "
                                f"{type(index).__name__}")
    index = int(index)
    if not -n <= index < n:
        raise IndexError(f"{what}: index {index} is out of range for {n} samples")
    return index + n if index < 0 else index


class ArrayDataset(Dataset):
    """Samples are rows of arrays: ``ds[i] == tuple(tree_map(lambda a: a[i], arg) for arg
    in arrays)`` (PyTorch's ``TensorDataset``, for pytrees).

    Args:
      *arrays: one or more pytrees (arrays, or dicts/tuples/lists of arrays); every leaf
        has the same first dimension, the number of samples. Leaves that are not arrays
        are converted with ``numpy.asarray``; CuPy arrays are kept as they are.

    A sample is always a tuple with one entry per argument, even with one argument
    (``x, = ds[0]``). Raises ``ValueError`` when there is no leaf, a leaf is 0-d, or the
    first dimensions differ (the message names the key path).

        >>> import numpy as np
        >>> ds = ArrayDataset({"x": np.zeros((3, 2)), "y": np.arange(3)})
        >>> len(ds), ds[2]
        (3, ({'x': array([0., 0.]), 'y': np.int64(2)},))
    """

    def __init__(self, *arrays):
        if not arrays:
            raise FuncgradValueError("ArrayDataset() needs at least one array")
        arrays = tree_map(lambda a: a if _is_array(a) else np.asarray(a), tuple(arrays))
        pairs, _ = tree_flatten_with_path(arrays)
        if not pairs:
            raise FuncgradValueError("ArrayDataset: the arguments contain no array")
        n = None
        for path, leaf in pairs:
            if leaf.ndim == 0:
                raise FuncgradValueError(
                    f"ArrayDataset: the array at {keystr(path)} is 0-d; every array needs a "
                    "first dimension indexing the samples")
            if n is None:
                n, first = leaf.shape[0], path
            elif leaf.shape[0] != n:
                raise FuncgradValueError(
                    f"ArrayDataset: arrays have different first dimensions: {n} at "
                    f"{keystr(first)} but {leaf.shape[0]} at {keystr(path)}")
        self.arrays = arrays
        self._n = n

    def __len__(self):
        return self._n

    def __getitem__(self, index):
        i = _check_index(index, self._n, "ArrayDataset")
        return tree_map(lambda a: a[i], self.arrays)

    def _get_batch(self, indices):
        return tree_map(lambda a: a[indices], self.arrays)


class Subset(Dataset):
    """The samples of ``dataset`` at ``indices``, in that order."""

    def __init__(self, dataset, indices: Sequence[int]):
        self.dataset = dataset
        self.indices = np.asarray(indices, dtype=np.intp).reshape(-1)

    def __len__(self):
        return len(self.indices)

    def __getitem__(self, index):
        return self.get_sample(index, None)

    def get_sample(self, index, rng=None):
        i = int(self.indices[_check_index(index, len(self.indices), "Subset")])
        return _get_sample(self.dataset, i, rng)

    def _get_batch(self, indices):
        fast = getattr(self.dataset, "_get_batch", None)
        if fast is None:
            return NotImplemented
        return fast(self.indices[indices])

    def _wants_rng(self):
        return _wants_rng(self.dataset)


class ConcatDataset(Dataset):
    """The samples of several datasets one after the other."""

    def __init__(self, datasets: Iterable):
        self.datasets = list(datasets)
        if not self.datasets:
            raise FuncgradValueError("ConcatDataset: needs at least one dataset")
        self.cumulative_sizes = list(np.cumsum([len(d) for d in self.datasets]).tolist())

    def __len__(self):
        return self.cumulative_sizes[-1]

    def __getitem__(self, index):
        return self.get_sample(index, None)

    def get_sample(self, index, rng=None):
        i = _check_index(index, len(self), "ConcatDataset")
        d = bisect.bisect_right(self.cumulative_sizes, i)
        start = self.cumulative_sizes[d - 1] if d > 0 else 0
        return _get_sample(self.datasets[d], i - start, rng)

    def _wants_rng(self):
        return any(_wants_rng(d) for d in self.datasets)


def _wants_rng(dataset):
    wants = getattr(dataset, "_wants_rng", None)
    return wants is not None and wants()


def _get_sample(dataset, index, rng):
    get = getattr(dataset, "get_sample", None)
    return dataset[index] if get is None else get(index, rng)


def random_split(dataset, lengths: Sequence, seed: int = 0) -> list[Subset]:
    """Split ``dataset`` into non-overlapping random :class:`Subset` s.

    Args:
      lengths: integers summing to ``len(dataset)``, or fractions summing to 1 (each
        part gets ``floor(f * n)`` samples, and the remainder is dealt one by one to
        the parts in order, as PyTorch does).
      seed: the permutation is ``numpy.random.default_rng(seed).permutation(n)``.

    Raises ``ValueError`` when the lengths do not add up.

        >>> [len(s) for s in random_split(ArrayDataset(np.arange(10)), [0.5, 0.3, 0.2])]
        [5, 3, 2]
    """
    n = len(dataset)
    lengths = list(lengths)
    if lengths and all(isinstance(x, float) for x in lengths) and math.isclose(
            sum(lengths), 1.0, abs_tol=1e-6) and sum(lengths) <= 1 + 1e-6:
        if any(f < 0 for f in lengths):
            raise FuncgradValueError(f"random_split: negative fraction in {lengths}")
        counts = [int(math.floor(n * f)) for f in lengths]
        for i in range(n - sum(counts)):
            counts[i % len(counts)] += 1
        lengths = counts
    if any(isinstance(x, float) and not float(x).is_integer() for x in lengths) or \
            any(int(x) < 0 for x in lengths) or sum(int(x) for x in lengths) != n:
        raise FuncgradValueError(
            f"random_split: lengths {lengths} must be non-negative integers summing to the "
            f"dataset's length {n}, or fractions summing to 1")
    perm = np.random.default_rng(seed).permutation(n)
    out, start = [], 0
    for length in lengths:
        out.append(Subset(dataset, perm[start:start + int(length)]))
        start += int(length)
    return out


# ---- samplers -----------------------------------------------------------------------
class Sampler(abc.ABC):
    """An iterable of dataset indices (or, for a batch sampler, of lists of indices)."""

    @abc.abstractmethod
    def __iter__(self) -> Iterator:
        raise NotImplementedError


class SequentialSampler(Sampler):
    """``0, 1, ..., len(data_source) - 1``."""

    def __init__(self, data_source):
        self.data_source = data_source

    def __iter__(self):
        return iter(range(len(self.data_source)))

    def __len__(self):
        return len(self.data_source)


def _check_seed(seed, where):
    """``seed`` as a Python int; None draws one from the operating system (fresh
    randomness each run). Floats, strings and booleans are refused, not truncated."""
    if seed is None:
        return int(np.random.SeedSequence().generate_state(1)[0])
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, numbers.Integral):
        raise FuncgradTypeError(
            f"{where}: seed must be an integer or None, got {seed!r} "
            f"({type(seed).__name__})")
    return int(seed)


class _EpochSeeded(Sampler):
    """A sampler whose epoch-``e`` order comes from ``default_rng([seed, e])``.

    Each iteration uses the current epoch, then advances it; ``set_epoch(e)`` chooses the
    epoch of the next iteration (DataLoader calls it before every epoch).
    """

    def __init__(self, seed):
        self.seed = _check_seed(seed, type(self).__name__)
        self.epoch = 0

    def set_epoch(self, epoch: int):
        self.epoch = int(epoch)

    def _next_rng(self):
        rng = np.random.default_rng([self.seed, self.epoch])
        self.epoch += 1
        return rng


class RandomSampler(_EpochSeeded):
    """A random permutation of the indices each epoch, or with ``replacement=True``,
    ``num_samples`` indices drawn uniformly with replacement.

    Args:
      num_samples: how many indices per epoch (default ``len(data_source)``); without
        replacement, more than ``len(data_source)`` repeats whole permutations.
      seed: epoch ``e`` uses ``numpy.random.default_rng([seed, e])``; None draws a seed
        from the operating system once.
    """

    def __init__(self, data_source, replacement: bool = False, num_samples=None,
                 seed: int | None = 0):
        super().__init__(seed)
        self.data_source = data_source
        self.replacement = bool(replacement)
        self._num_samples = num_samples
        if num_samples is not None and (not isinstance(num_samples, numbers.Integral)
                                        or isinstance(num_samples, bool)
                                        or num_samples <= 0):
            raise FuncgradValueError(
                f"RandomSampler: num_samples must be a positive integer, got {num_samples!r}")
        if num_samples is not None and len(data_source) == 0:
            raise FuncgradValueError(
                f"RandomSampler: cannot draw num_samples={num_samples} indices from an empty "
                "dataset")

    @property
    def num_samples(self) -> int:
        return len(self.data_source) if self._num_samples is None else int(self._num_samples)

    def __len__(self):
        return self.num_samples

    def __iter__(self):
        n, m = len(self.data_source), self.num_samples
        if n == 0 and m > 0:                # the dataset shrank after construction
            raise FuncgradValueError(
                f"RandomSampler: cannot draw num_samples={m} indices from an empty dataset")
        rng = self._next_rng()
        if self.replacement:
            idx = rng.integers(0, n, size=m)
        else:
            reps = -(-m // n) if n else 0
            idx = np.concatenate([rng.permutation(n) for _ in range(reps)] or
                                 [np.zeros(0, np.int64)])[:m]
        return iter(idx.tolist())


class DistributedSampler(_EpochSeeded):
    """This process's share of the dataset's indices, for data-parallel training
    (PyTorch's ``DistributedSampler``).

    Every rank draws the same epoch order (from ``seed`` and the epoch, as
    :class:`RandomSampler`), pads it by wrapping around to ``ceil(N / num_replicas) *
    num_replicas`` indices (or, with ``drop_last``, cuts it to ``N // num_replicas *
    num_replicas``), and keeps every ``num_replicas``-th index from position ``rank``:
    the shards are disjoint and together cover the dataset. Give it to
    ``DataLoader(sampler=...)``, which calls ``set_epoch`` before every epoch.

    Args:
      num_replicas, rank: default ``funcgrad.process_count()`` and
        ``funcgrad.process_index()``.
      shuffle: a new order each epoch (False: ``0 .. N-1``).
      seed: an int, the same on every rank. None is refused: each process would draw
        its own seed, so the shards would overlap (PyTorch's sampler also takes an int).
      drop_last: drop the tail instead of padding, so no sample is seen twice.

        >>> s = DistributedSampler(range(5), num_replicas=2, rank=1, shuffle=False)
        >>> list(s), len(s)
        ([1, 3, 0], 3)
    """

    def __init__(self, dataset, num_replicas=None, rank=None, shuffle: bool = True,
                 seed: int = 0, drop_last: bool = False):
        if seed is None:
            raise FuncgradTypeError(
                "DistributedSampler: seed=None would draw a different seed in each process, "
                "so the ranks' shards would overlap and miss samples; pass the same int "
                "seed on every rank (e.g. seed=0, or a seed broadcast from rank 0 with "
                "funcgrad.distributed.broadcast)")
        super().__init__(seed)
        if num_replicas is None:
            num_replicas = funcgrad.process_count()
        if rank is None:
            rank = funcgrad.process_index()
        if not isinstance(num_replicas, numbers.Integral) or num_replicas < 1:
            raise FuncgradValueError(
                f"DistributedSampler: num_replicas must be a positive integer, got "
                f"{num_replicas!r}")
        if not isinstance(rank, numbers.Integral) or not 0 <= rank < num_replicas:
            raise FuncgradValueError(
                f"DistributedSampler: rank must be in [0, {num_replicas - 1}], got {rank!r}")
        self.dataset = dataset
        self.num_replicas = int(num_replicas)
        self.rank = int(rank)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)

    @property
    def num_samples(self) -> int:
        n, r = len(self.dataset), self.num_replicas
        return n // r if self.drop_last else -(-n // r)

    def __len__(self):
        return self.num_samples

    def global_position(self, k: int) -> int:
        """The place of this rank's ``k``-th index in the (padded) epoch order of all
        ranks. ``DataLoader`` seeds per-sample randomness (augmentation) with it, so a
        sample gets the same random numbers as at that place in a single-process run."""
        return k * self.num_replicas + self.rank

    def __iter__(self):
        n = len(self.dataset)
        rng = self._next_rng()
        order = rng.permutation(n) if self.shuffle else np.arange(n)
        total = self.num_samples * self.num_replicas
        if total > n and n:
            order = np.resize(order, total)       # wraps around, repeating if needed
        order = order[:total]
        return iter(order[self.rank:total:self.num_replicas].tolist())


class WeightedRandomSampler(_EpochSeeded):
    """``num_samples`` indices drawn with probabilities proportional to ``weights``.

    Raises ``ValueError`` for negative or non-finite weights, all-zero weights, or
    ``replacement=False`` with more samples than non-zero weights.
    """

    def __init__(self, weights, num_samples: int, replacement: bool = True, seed=0):
        super().__init__(seed)
        w = np.asarray(weights, dtype=np.float64).reshape(-1)
        if w.size == 0 or not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
            raise FuncgradValueError(
                "WeightedRandomSampler: weights must be finite, non-negative and not all "
                f"zero; got {w.size} weights")
        if not isinstance(num_samples, numbers.Integral) or num_samples <= 0:
            raise FuncgradValueError(
                f"WeightedRandomSampler: num_samples must be a positive integer, got "
                f"{num_samples!r}")
        if not replacement and num_samples > np.count_nonzero(w):
            raise FuncgradValueError(
                f"WeightedRandomSampler: cannot draw {num_samples} samples without "
                f"replacement from {np.count_nonzero(w)} non-zero weights")
        self.weights = w
        self.num_samples = int(num_samples)
        self.replacement = bool(replacement)

    def __len__(self):
        return self.num_samples

    def __iter__(self):
        rng = self._next_rng()
        idx = rng.choice(len(self.weights), size=self.num_samples, replace=self.replacement,
                         p=self.weights / self.weights.sum())
        return iter(idx.tolist())


class BatchSampler(Sampler):
    """Group the indices of ``sampler`` into lists of ``batch_size``; the last, shorter
    list is dropped when ``drop_last``.

        >>> list(BatchSampler(SequentialSampler(range(5)), 2, drop_last=False))
        [[0, 1], [2, 3], [4]]
    """

    def __init__(self, sampler, batch_size: int, drop_last: bool):
        if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) \
                or batch_size <= 0:
            raise FuncgradValueError(
                f"BatchSampler: batch_size must be a positive integer, got {batch_size!r}")
        self.sampler = sampler
        self.batch_size = int(batch_size)
        self.drop_last = bool(drop_last)

    def set_epoch(self, epoch: int):
        if hasattr(self.sampler, "set_epoch"):
            self.sampler.set_epoch(epoch)

    def __iter__(self):
        batch = []
        for i in self.sampler:
            batch.append(i)
            if len(batch) == self.batch_size:
                yield batch
                batch = []
        if batch and not self.drop_last:
            yield batch

    def __len__(self):
        n = len(self.sampler)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)


# ---- collation ----------------------------------------------------------------------
def _collate_leaves(leaves, path):
    first = leaves[0]
    if _is_array(first):
        shapes = {tuple(x.shape) for x in leaves}
        if len(shapes) > 1:
            j = next(j for j, x in enumerate(leaves) if tuple(x.shape) != tuple(first.shape))
            raise FuncgradValueError(
                f"default_collate: samples have different shapes at key path "
                f"{keystr(path) or '<root>'}: {tuple(first.shape)} in sample 0 but "
                f"{tuple(leaves[j].shape)} in sample {j}; pad them to one shape or pass "
                "collate_fn=")
        mod = type(first).__module__.split(".")[0]
        if mod == "cupy":
            import cupy  # only reached when the samples already are CuPy arrays
            return cupy.stack(leaves)
        return np.stack(leaves)
    if isinstance(first, (str, bytes)):
        return list(leaves)
    if isinstance(first, (numbers.Number, np.generic)):
        return np.asarray(leaves)
    raise FuncgradTypeError(
        f"default_collate: cannot batch a {type(first).__name__} at key path "
        f"{keystr(path) or '<root>'}; samples may hold arrays, Python numbers, strings and "
        "dicts/tuples/lists of those, or pass collate_fn=")


def default_collate(samples: Sequence):
    """Stack a list of samples into one batch, leaf by leaf.

    Samples are pytrees of the same structure (dicts, tuples, lists, namedtuples,
    registered classes). NumPy/CuPy arrays are stacked on a new first axis; Python and
    NumPy numbers become a 1-D array (``bool``, ``int64``, ``float64``, ``complex128``
    for Python numbers); strings become a list. Raises ``ValueError`` naming the key
    path when structures or shapes differ.

        >>> b = default_collate([{"x": np.zeros(2), "y": 1}, {"x": np.ones(2), "y": 2}])
        >>> b["x"].shape, b["y"]
        ((2, 2), array([1, 2]))
    """
    samples = list(samples)
    if not samples:
        raise FuncgradValueError("default_collate: no samples to collate")
    pairs0, td = tree_flatten_with_path(samples[0])
    columns = [[leaf] for _, leaf in pairs0]
    for j, s in enumerate(samples[1:], 1):
        pairs, tdj = tree_flatten_with_path(s)
        if tdj != td:
            raise FuncgradValueError(
                f"default_collate: sample {j} has structure {tdj} but sample 0 has {td}")
        for col, (_, leaf) in zip(columns, pairs):
            col.append(leaf)
    return tree_unflatten(td, [_collate_leaves(col, p) for col, (p, _) in
                               zip(columns, pairs0)])


# ---- loader -------------------------------------------------------------------------
class DataLoader:
    """Iterate over a dataset in batches, PyTorch style.

    Args:
      dataset: a :class:`Dataset`, or any object with ``__getitem__`` and ``__len__``.
      batch_size: samples per batch; None yields single samples, uncollated.
      shuffle: a new random order every epoch (a :class:`RandomSampler` with ``seed``).
      sampler / batch_sampler: custom index orders (exclusive with ``shuffle``;
        ``batch_sampler`` also with ``batch_size``, ``sampler`` and ``drop_last``).
      num_workers: > 0 fetches and collates up to ``num_workers * prefetch_factor``
        batches ahead in ``num_workers`` workers. Batches come out in the same order and
        with the same contents as with ``num_workers=0``, whatever the worker type.
        Workers run at background priority (Linux: nice 19), so they use the CPU time
        that the training step (funcgrad's thread budget, ``funcgrad.config``
        ``num_threads``) leaves idle rather than slowing the step down.
      worker_type: ``"thread"`` (the default) or ``"process"``. Threads start at once
        and share the dataset, but run Python one at a time: they pay off when fetching
        releases the GIL (file reads, NumPy copies, large array transforms).
        Processes (PyTorch's only kind) run a CPU-bound, pure-Python ``__getitem__`` in
        parallel; the dataset and ``collate_fn`` are sent to each worker (pickled, unless
        the start method is ``"fork"``), a pool starts at each ``iter(loader)``, and
        batches come back pickled. Copies to ``device`` happen in the main process.
        Each worker process has a thread budget of one (``funcgrad.config``
        ``num_threads``, and with it the BLAS), as in PyTorch, so that the workers do
        not oversubscribe the cores.
      multiprocessing_context: the start method of process workers (``"fork"``,
        ``"spawn"``, ``"forkserver"``, or a ``multiprocessing`` context; default: the
        platform's default). Giving one selects ``worker_type="process"``.
      collate_fn: turns a list of samples into a batch (default :func:`default_collate`).
      pin_memory: with a GPU ``device``, stage each batch in page-locked host memory
        (``cupyx.empty_pinned``) before the copy to the device; otherwise a no-op
        (accepted for PyTorch compatibility).
      device: where batches go (``funcgrad.device_put``: ``"cpu"``, ``"gpu"``,
        ``"gpu:N"``, a CuPy device); None leaves them as collated (NumPy). With
        ``num_workers > 0`` the copies happen in the worker threads, ahead of use.
      drop_last: drop the last, incomplete batch.
      seed: shuffles and per-sample randomness of epoch ``e`` derive from ``(seed, e)``;
        an integer (a float is refused, not truncated). ``None`` draws a seed from the
        operating system when the loader is built: a fresh order each run (the loader
        keeps it in ``loader.seed``, so it can still be replayed).

    An exception raised by the dataset's ``__getitem__`` (in the main thread or a
    worker) reaches the caller with a note giving the sample's index in the dataset.
    Indices from a custom ``sampler``/``batch_sampler`` must be integers.

    Each ``iter(loader)`` runs the current epoch and then advances it, so epochs differ
    but a fresh loader replays them; ``set_epoch(e)`` chooses the next epoch explicitly
    (e.g. when resuming). ``len(loader)`` is the number of batches.

        >>> ds = ArrayDataset(np.arange(6))
        >>> loader = DataLoader(ds, batch_size=4, shuffle=True, seed=1)
        >>> [b.shape[0] for b, in loader], len(loader)
        ([4, 2], 2)
    """

    def __init__(self, dataset, batch_size: int | None = 1, shuffle: bool = False,
                 sampler=None, batch_sampler=None, num_workers: int = 0,
                 collate_fn: Callable | None = None, pin_memory: bool = False,
                 drop_last: bool = False, seed: int | None = 0, prefetch_factor: int = 2,
                 device=None, worker_type: str | None = None,
                 multiprocessing_context=None):
        if not isinstance(num_workers, numbers.Integral) or num_workers < 0:
            raise FuncgradValueError(
                f"DataLoader: num_workers must be a non-negative integer, got {num_workers!r}")
        if not isinstance(prefetch_factor, numbers.Integral) or prefetch_factor < 1:
            raise FuncgradValueError(
                f"DataLoader: prefetch_factor must be a positive integer, got "
                f"{prefetch_factor!r}")
        if sampler is not None and shuffle:
            raise FuncgradValueError(
                "DataLoader: sampler= and shuffle=True are exclusive; shuffle inside the "
                "sampler (e.g. RandomSampler) instead")
        if batch_sampler is not None:
            if batch_size != 1 or shuffle or sampler is not None or drop_last:
                raise FuncgradValueError(
                    "DataLoader: batch_sampler= is exclusive with batch_size, shuffle, "
                    "sampler and drop_last; the batch sampler decides all of them")
            batch_size, drop_last = None, False
        elif batch_size is None and drop_last:
            raise FuncgradValueError(
                "DataLoader: drop_last=True needs a batch_size (batch_size=None yields "
                "single samples)")
        worker_type, multiprocessing_context = _check_workers(worker_type,
                                                              multiprocessing_context)
        self.dataset = dataset
        self.seed = _check_seed(seed, "DataLoader")
        if sampler is None:
            sampler = (RandomSampler(dataset, seed=self.seed) if shuffle
                       else SequentialSampler(dataset))
        if batch_sampler is None and batch_size is not None:
            batch_sampler = BatchSampler(sampler, batch_size, drop_last)
        self.sampler = sampler
        self.batch_sampler = batch_sampler
        self.batch_size = batch_size
        self.drop_last = bool(drop_last)
        self.num_workers = int(num_workers)
        self.prefetch_factor = int(prefetch_factor)
        self.collate_fn = collate_fn
        self.pin_memory = bool(pin_memory)
        self.device = device
        self.worker_type = worker_type
        self.multiprocessing_context = multiprocessing_context
        if device is not None:                    # validate now: a clear error up front
            funcgrad.device_put(np.zeros(0), device)
        self.epoch = 0

    def set_epoch(self, epoch: int):
        """Make the next iteration epoch ``epoch`` (its order and augmentations)."""
        self.epoch = int(epoch)

    def __len__(self):
        return len(self.batch_sampler if self.batch_sampler is not None else self.sampler)

    def _fetcher(self):
        return _Fetcher(self.dataset, self.collate_fn, self.seed, self.batch_sampler is None,
                        getattr(self.sampler, "global_position", None))

    def _to_device(self, batch):
        if self.device is None:
            return batch
        if self.pin_memory and _is_gpu(self.device):
            batch = _pinned(batch)
        return funcgrad.device_put(batch, self.device)

    def _fetch(self, indices, epoch, start, wants_rng):
        """The batch for ``indices`` on the loader's device."""
        return self._to_device(self._fetcher().collate(indices, epoch, start, wants_rng))

    def __iter__(self):
        epoch = self.epoch
        self.epoch += 1
        order = self.batch_sampler if self.batch_sampler is not None else self.sampler
        for s in (order, self.sampler):
            if hasattr(s, "set_epoch"):
                s.set_epoch(epoch)
        jobs = _with_start(order, self.batch_sampler is None)
        wants_rng = _wants_rng(self.dataset)
        if self.num_workers == 0:
            return (self._fetch(idx, epoch, start, wants_rng) for idx, start in jobs)
        if self.worker_type == "process":
            return self._prefetching_processes(jobs, epoch, wants_rng)
        return self._prefetching(jobs, epoch, wants_rng)

    def _prefetching(self, jobs, epoch, wants_rng):
        pool = concurrent.futures.ThreadPoolExecutor(self.num_workers,
                                                     thread_name_prefix="DataLoader",
                                                     initializer=_background_priority)
        return _prefetch(pool, self._fetch, jobs, epoch, wants_rng,
                         self.num_workers * self.prefetch_factor, lambda b: b)

    def _prefetching_processes(self, jobs, epoch, wants_rng):
        ctx = self.multiprocessing_context
        if isinstance(ctx, str) or ctx is None:
            ctx = multiprocessing.get_context(ctx)
        pool = concurrent.futures.ProcessPoolExecutor(
            self.num_workers, mp_context=ctx, initializer=_process_worker_init,
            initargs=(self._fetcher(),))
        batches = _prefetch(pool, _process_worker_fetch, jobs, epoch, wants_rng,
                            self.num_workers * self.prefetch_factor, self._to_device)
        try:
            yield from batches
        except (pickle.PicklingError, AttributeError, TypeError) as e:
            if "pickle" in str(e).lower():
                e.add_note(
                    "DataLoader(worker_type='process'): the dataset and collate_fn go to the "
                    "worker processes, and the batches come back, by pickle; with the "
                    "'spawn' and 'forkserver' start methods define them at module level "
                    "(no lambdas or local classes), or use multiprocessing_context='fork' "
                    "or worker_type='thread'.")
            raise
        finally:
            batches.close()


def _prefetch(pool, fetch, jobs, epoch, wants_rng, ahead, finish):
    """Keep ``ahead`` batches in flight in ``pool``; yield them in order, each through
    ``finish``; the pool is shut down when the epoch ends or the iterator is dropped."""
    pending = collections.deque()
    try:
        for idx, start in jobs:
            pending.append(pool.submit(fetch, idx, epoch, start, wants_rng))
            if len(pending) >= ahead:
                break
        while pending:
            batch = pending.popleft().result()
            nxt = next(jobs, None)
            if nxt is not None:
                pending.append(pool.submit(fetch, nxt[0], epoch, nxt[1], wants_rng))
            yield finish(batch)
    finally:
        for f in pending:
            f.cancel()
        pool.shutdown(wait=True)


class _Fetcher:
    """What a worker needs to build a batch: the dataset, the collate function and the
    seed (picklable, for process workers)."""

    def __init__(self, dataset, collate_fn, seed, single, position=None):
        self.dataset, self.collate_fn, self.seed, self.single = (dataset, collate_fn,
                                                                  seed, single)
        self.position = position      # a shard's map to the place in the whole epoch

    def _rng(self, epoch, k, wanted):
        if not wanted:
            return None
        if self.position is not None:     # a shard: seed by the place in the whole epoch
            k = self.position(k)
        return np.random.default_rng([self.seed, epoch, k])

    def _sample(self, index, epoch, k, wants_rng):
        index = _sample_index(index)
        try:
            return _get_sample(self.dataset, index, self._rng(epoch, k, wants_rng))
        except Exception as e:
            e.add_note(f"DataLoader: raised by the dataset reading the sample at index "
                       f"{index} (sample {k} of epoch {epoch})")
            raise

    def collate(self, indices, epoch, start, wants_rng):
        """The batch for ``indices``, the first being the epoch's ``start``-th sample."""
        if self.single:                           # batch_size=None: single samples
            return self._sample(indices, epoch, start, wants_rng)
        if self.collate_fn is None:
            fast = getattr(self.dataset, "_get_batch", None)
            if fast is not None:
                idx = _batch_indices(indices)
                try:
                    batch = fast(idx)
                except Exception as e:
                    e.add_note(f"DataLoader: raised by the dataset reading the samples at "
                               f"indices {_preview(idx)}")
                    raise
                if batch is not NotImplemented:
                    return batch
        samples = [self._sample(i, epoch, start + j, wants_rng)
                   for j, i in enumerate(indices)]
        return (self.collate_fn or default_collate)(samples)


def _sample_index(i):
    if isinstance(i, (bool, np.bool_)) or not isinstance(i, numbers.Integral):
        raise FuncgradTypeError(
            f"DataLoader: the sampler gave the index {i!r} ({type(i).__name__}); dataset "
            "indices must be integers")
    return int(i)


def _batch_indices(indices):
    idx = np.asarray(indices)
    if idx.size and idx.dtype.kind not in "iu":
        bad = next((i for i in idx.reshape(-1).tolist()
                    if isinstance(i, bool) or not isinstance(i, int)), idx.reshape(-1)[0])
        raise FuncgradTypeError(
            f"DataLoader: the batch sampler gave the index {bad!r} (indices "
            f"{_preview(idx)}); dataset indices must be integers")
    return idx.astype(np.intp, copy=False)


def _preview(idx, n=8):
    items = np.asarray(idx).reshape(-1).tolist()
    return str(items[:n])[:-1] + (", ...]" if len(items) > n else "]")


_worker_fetcher = None


def _process_worker_init(fetcher):
    global _worker_fetcher
    _worker_fetcher = fetcher
    # One thread per worker process, for funcgrad's own workers and the BLAS (which
    # funcgrad's budget sets through its C API, whatever the start method), as PyTorch's
    # workers run torch.set_num_threads(1): N workers that each kept a thread per core
    # next to the training process would oversubscribe the cores N + 1 times over.
    funcgrad.config.update("num_threads", 1)
    _background_priority()


def _process_worker_fetch(indices, epoch, start, wants_rng):
    return _worker_fetcher.collate(indices, epoch, start, wants_rng)


def _check_workers(worker_type, context):
    if worker_type is None:
        worker_type = "thread" if context is None else "process"
    if worker_type not in ("thread", "process"):
        raise FuncgradValueError(
            f"DataLoader: worker_type must be 'thread' or 'process', got {worker_type!r}")
    if context is not None:
        if worker_type == "thread":
            raise FuncgradValueError(
                "DataLoader: multiprocessing_context is for worker_type='process'; thread "
                "workers have no start method")
        if isinstance(context, str):
            methods = multiprocessing.get_all_start_methods()
            if context not in methods:
                raise FuncgradValueError(
                    f"DataLoader: multiprocessing_context must be one of {methods} or a "
                    f"multiprocessing context, got {context!r}")
    return worker_type, context


def _background_priority():
    """Lower this worker thread's priority (Linux: nice 19 for the thread alone), so that
    prefetching takes only CPU time the training step leaves; elsewhere a no-op."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
    except (AttributeError, OSError):
        pass


def _is_gpu(device):
    return (isinstance(device, str) and device.startswith(("gpu", "cuda"))) or isinstance(
        getattr(device, "id", None), int)


def _pinned(batch):
    """The batch's NumPy arrays copied into page-locked host memory (CuPy's allocator)."""
    import cupyx

    def pin(x):
        if isinstance(x, np.ndarray):
            p = cupyx.empty_pinned(x.shape, x.dtype)
            p[...] = x
            return p
        return x
    return tree_map(pin, batch)


def _with_start(order, single):
    """``(indices, k)`` pairs: each batch (or single index) with the position in the
    epoch of its first sample, which seeds the per-sample generators."""
    start = 0
    for idx in order:
        yield idx, start
        start += 1 if single else len(idx)

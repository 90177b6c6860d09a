"""funcgrad_nn.data: datasets, samplers, collation and the DataLoader's semantics."""
import collections
import os
import sys
import threading

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from funcgrad_nn import transforms as T
from funcgrad_nn.data import (ArrayDataset, BatchSampler, ConcatDataset, DataLoader, Dataset,
                              RandomSampler, SequentialSampler, Subset,
                              WeightedRandomSampler, default_collate, random_split)


def _ids(loader):
    """All sample ids of one epoch, batch by batch (datasets hold ids in column 0)."""
    return [np.asarray(b[0] if isinstance(b, (tuple, list)) else b).tolist() for b in loader]


class AugmentedDataset(Dataset):
    """Per-sample Python path with random transforms drawing from the loader's rng."""

    def __init__(self, n, calls=None):
        self.images = np.arange(n * 16, dtype=np.uint8).reshape(n, 4, 4)
        self.t = T.Compose([T.ToArray(), T.RandomCrop(3, padding=1),
                            T.RandomHorizontalFlip(0.5)])
        self.calls = calls

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        return self.get_sample(i, None)

    def get_sample(self, i, rng=None):
        if self.calls is not None:
            self.calls.append(threading.get_ident())
        return {"x": self.t(self.images[i], rng=rng), "id": i, "meta": ("s", float(i))}


# ---- datasets -----------------------------------------------------------------------
def test_array_dataset_pytrees_and_errors():
    ds = ArrayDataset({"a": np.arange(6).reshape(3, 2), "b": [np.zeros(3), np.ones((3, 1))]},
                      np.arange(3.0))
    assert len(ds) == 3
    s = ds[-1]
    assert isinstance(s, tuple) and len(s) == 2
    assert s[0]["a"].tolist() == [4, 5] and s[0]["b"][1].shape == (1,) and s[1] == 2.0
    with pytest.raises(IndexError, match="out of range"):
        ds[3]
    with pytest.raises(ValueError, match=r"different first dimensions: 3 at .* but 4 at "
                                         r"\[1\]\['y'\]"):
        ArrayDataset(np.zeros(3), {"y": np.zeros(4)})
    with pytest.raises(ValueError, match="0-d"):
        ArrayDataset(np.float32(1.0))
    with pytest.raises(TypeError, match="integer"):
        ds[1.0]


def test_subset_concat_and_random_split():
    base = ArrayDataset(np.arange(10))
    sub = Subset(base, [7, 2, 5])
    assert [int(sub[i][0]) for i in range(3)] == [7, 2, 5] and int(sub[-1][0]) == 5
    cat = ConcatDataset([sub, ArrayDataset(np.arange(100, 102))])
    assert len(cat) == 5
    assert [int(cat[i][0]) for i in range(5)] == [7, 2, 5, 100, 101]
    assert int(cat[-1][0]) == 101 and len(sub + sub) == 6
    with pytest.raises(IndexError):
        cat[5]

    parts = random_split(base, [0.5, 0.3, 0.2], seed=3)
    assert [len(p) for p in parts] == [5, 3, 2]
    ids = sorted(int(p[i][0]) for p in parts for i in range(len(p)))
    assert ids == list(range(10))
    again = random_split(base, [5, 3, 2], seed=3)
    assert [p.indices.tolist() for p in parts] == [p.indices.tolist() for p in again]
    assert random_split(base, [5, 5], seed=4)[0].indices.tolist() != \
        random_split(base, [5, 5], seed=5)[0].indices.tolist()
    # remainder dealt to the first parts, as in PyTorch
    assert [len(p) for p in random_split(ArrayDataset(np.arange(7)), [0.5, 0.5])] == [4, 3]
    with pytest.raises(ValueError, match="summing"):
        random_split(base, [5, 4])


# ---- samplers -----------------------------------------------------------------------
def test_samplers():
    assert list(SequentialSampler(range(4))) == [0, 1, 2, 3]
    rs = RandomSampler(range(5), seed=1)
    e0, e1 = list(rs), list(rs)
    assert sorted(e0) == sorted(e1) == list(range(5)) and e0 != e1
    rs.set_epoch(0)
    assert list(rs) == e0
    more = RandomSampler(range(3), num_samples=7, seed=0)
    draw = list(more)
    assert len(draw) == 7 == len(more) and sorted(draw[:3]) == [0, 1, 2]
    rep = list(RandomSampler(range(3), replacement=True, num_samples=50))
    assert len(rep) == 50 and set(rep) <= {0, 1, 2}

    w = WeightedRandomSampler([0.0, 1.0, 3.0], num_samples=400, seed=0)
    counts = np.bincount(list(w), minlength=3)
    assert counts[0] == 0 and 2 * counts[1] < counts[2]
    nr = list(WeightedRandomSampler([1, 0, 1, 1], 3, replacement=False))
    assert sorted(nr) == [0, 2, 3]
    with pytest.raises(ValueError, match="non-zero weights"):
        WeightedRandomSampler([1, 0, 1], 3, replacement=False)
    with pytest.raises(ValueError, match="non-negative"):
        WeightedRandomSampler([1, -1], 2)

    bs = BatchSampler(SequentialSampler(range(7)), 3, drop_last=True)
    assert list(bs) == [[0, 1, 2], [3, 4, 5]] and len(bs) == 2
    assert len(BatchSampler(range(7), 3, drop_last=False)) == 3
    with pytest.raises(ValueError, match="batch_size"):
        BatchSampler(range(3), 0, False)


# ---- loader -------------------------------------------------------------------------
@given(n=st.integers(1, 23), batch_size=st.integers(1, 8), drop_last=st.booleans(),
       shuffle=st.booleans())
def test_loader_batches_cover_each_sample_once(n, batch_size, drop_last, shuffle):
    ds = ArrayDataset(np.arange(n), np.arange(n * 2.0).reshape(n, 2))
    loader = DataLoader(ds, batch_size=batch_size, shuffle=shuffle, drop_last=drop_last)
    batches = list(loader)
    full, rest = divmod(n, batch_size)
    assert len(batches) == len(loader) == full + (rest > 0 and not drop_last)
    for b, (ids, xy) in enumerate(batches):
        expected = batch_size if (b < full) else rest
        assert ids.shape == (expected,) and xy.shape == (expected, 2)
        np.testing.assert_array_equal(xy, 2.0 * ids[:, None] + [0, 1])
    seen = np.concatenate([ids for ids, _ in batches]) if batches else np.zeros(0)
    assert len(set(seen.tolist())) == len(seen)        # never twice
    if not drop_last:
        assert sorted(seen.tolist()) == list(range(n))  # each exactly once
    if not shuffle:
        assert seen.tolist() == list(range(len(seen)))


def test_shuffles_are_reproducible_and_change_every_epoch():
    ds = ArrayDataset(np.arange(50))
    a = DataLoader(ds, batch_size=8, shuffle=True, seed=7)
    b = DataLoader(ds, batch_size=8, shuffle=True, seed=7)
    a0, a1, a2 = _ids(a), _ids(a), _ids(a)
    assert a0 != a1 and a1 != a2
    assert [_ids(b), _ids(b), _ids(b)] == [a0, a1, a2]
    a.set_epoch(1)
    assert _ids(a) == a1 and a.epoch == 2
    assert _ids(DataLoader(ds, batch_size=8, shuffle=True, seed=8)) != a0


def test_workers_give_the_same_batches_as_no_workers():
    ds = ArrayDataset(np.arange(37), np.arange(37.0) ** 2)
    for kw in ({}, {"shuffle": True}, {"shuffle": True, "drop_last": True}):
        serial = [tuple(x.tolist() for x in b) for b in DataLoader(ds, 5, **kw)]
        threaded = [tuple(x.tolist() for x in b)
                    for b in DataLoader(ds, 5, num_workers=3, prefetch_factor=1, **kw)]
        assert threaded == serial

    # per-sample path with random augmentation: identical batches, several threads used
    calls = []
    aug = AugmentedDataset(40, calls)
    ref = list(DataLoader(aug, 4, shuffle=True, seed=3))
    got = list(DataLoader(aug, 4, shuffle=True, seed=3, num_workers=4))
    assert len(ref) == len(got) == 10
    for r, g in zip(ref, got):
        np.testing.assert_array_equal(r["x"], g["x"])
        np.testing.assert_array_equal(r["id"], g["id"])
        assert r["meta"][0] == g["meta"][0] == ["s"] * 4
    assert len(set(calls)) > 1


def test_augmentation_reproducible_and_varies_by_epoch():
    aug = AugmentedDataset(12)
    loader = DataLoader(aug, 12, seed=0)
    e0, e1 = next(iter(loader))["x"], next(iter(loader))["x"]
    assert e0.shape == (12, 1, 3, 3) and e0.dtype == np.float32
    assert not np.array_equal(e0, e1)                    # new crops/flips each epoch
    loader.set_epoch(0)
    np.testing.assert_array_equal(next(iter(loader))["x"], e0)
    # and independent of how samples are grouped into batches
    small = np.concatenate([b["x"] for b in DataLoader(aug, 5, seed=0, num_workers=2)])
    np.testing.assert_array_equal(small, e0)


def test_worker_errors_surface_and_early_exit_does_not_hang():
    class Bad(Dataset):
        def __len__(self):
            return 20

        def __getitem__(self, i):
            if i == 13:
                raise KeyError("sample 13 is broken")
            return np.float32(i)

    it = iter(DataLoader(Bad(), 4, num_workers=2))
    assert next(it).tolist() == [0, 1, 2, 3]
    with pytest.raises(KeyError, match="sample 13"):
        list(it)
    before = threading.active_count()
    for i, _ in enumerate(DataLoader(ArrayDataset(np.arange(1000)), 2, num_workers=2)):
        if i == 3:
            break
    assert threading.active_count() <= before + 2


def test_fast_path_indexes_arrays_instead_of_per_sample_calls():
    class Counting(ArrayDataset):
        n = 0

        def __getitem__(self, i):
            Counting.n += 1
            return super().__getitem__(i)

    ds = Counting({"x": np.random.default_rng(0).normal(size=(30, 3)).astype(np.float32)},
                  np.arange(30))
    parts = random_split(ds, [20, 10], seed=0)
    fast = list(DataLoader(parts[0], 6, shuffle=True))
    assert Counting.n == 0
    slow = list(DataLoader(parts[0], 6, shuffle=True, collate_fn=default_collate))
    assert Counting.n == 20
    for f, s in zip(fast, slow):
        assert f[0]["x"].dtype == s[0]["x"].dtype == np.float32
        np.testing.assert_array_equal(f[0]["x"], s[0]["x"])
        assert f[1].dtype == s[1].dtype and f[1].tolist() == s[1].tolist()


def test_default_collate_pytrees():
    Point = collections.namedtuple("Point", "x y")
    samples = [{"p": Point(np.full(2, i, np.float32), i), "flag": i % 2 == 0,
                "z": complex(i, 1), "name": f"s{i}", "nested": [(1.5 * i,)], "none": None}
               for i in range(3)]
    b = default_collate(samples)
    assert isinstance(b["p"], Point) and b["p"].x.shape == (3, 2)
    assert b["p"].x.dtype == np.float32 and b["p"].y.dtype == np.int64
    assert b["flag"].tolist() == [True, False, True] and b["z"].dtype == np.complex128
    assert b["name"] == ["s0", "s1", "s2"] and b["none"] is None
    assert b["nested"][0][0].tolist() == [0.0, 1.5, 3.0]
    with pytest.raises(ValueError, match=r"different shapes at key path \['x'\].*sample 1"):
        default_collate([{"x": np.zeros(2)}, {"x": np.zeros(3)}])
    with pytest.raises(ValueError, match="sample 1 has structure"):
        default_collate([{"x": 1}, {"y": 1}])
    with pytest.raises(TypeError, match="collate_fn"):
        default_collate([object(), object()])


def test_loader_arguments():
    ds = ArrayDataset(np.arange(10))
    custom = DataLoader(ds, batch_sampler=[[3, 1], [0]])
    assert [b.tolist() for b, in custom] == [[3, 1], [0]]
    singles = DataLoader(ds, batch_size=None)
    assert [int(x) for x, in singles] == list(range(10)) and len(singles) == 10
    sampled = DataLoader(ds, batch_size=4, sampler=RandomSampler(ds, num_samples=6, seed=1))
    assert [len(b) for b, in sampled] == [4, 2]
    assert next(iter(DataLoader(ds, 3, pin_memory=True, collate_fn=len))) == 3
    with pytest.raises(ValueError, match="exclusive"):
        DataLoader(ds, sampler=SequentialSampler(ds), shuffle=True)
    with pytest.raises(ValueError, match="batch_sampler"):
        DataLoader(ds, batch_size=4, batch_sampler=[[0]])
    with pytest.raises(ValueError, match="num_workers"):
        DataLoader(ds, num_workers=-1)
    # any object with __getitem__/__len__ is a dataset
    assert [b.tolist() for b in DataLoader([np.ones(2) * i for i in range(3)], 2)] == \
        [[[0, 0], [1, 1]], [[2, 2]]]


def test_generators_only_for_datasets_that_use_them():
    got = []

    class Random(Dataset):
        def __len__(self):
            return 6

        def __getitem__(self, i):
            return self.get_sample(i)

        def get_sample(self, i, rng=None):
            got.append(rng)
            return i

    class Plain(Dataset):
        def __len__(self):
            return 6

        def __getitem__(self, i):
            got.append("plain")
            return i

    list(DataLoader(ConcatDataset([Plain(), Subset(Random(), [0, 1])]), 4))
    assert got[:6] == ["plain"] * 6
    assert all(isinstance(r, np.random.Generator) for r in got[6:]) and len(got) == 8
    got.clear()
    list(DataLoader(Plain(), 4))
    assert got == ["plain"] * 6


@pytest.mark.parametrize("workers", [0, 2])
def test_dataloader_places_batches_on_a_device(workers):
    # the CPU stand-in for a device module; same batches, now device arrays
    from funcgrad._src.testing_backend import StandInArray, standin_xp
    ds = ArrayDataset(np.arange(20.0).reshape(10, 2), np.arange(10))
    host = list(DataLoader(ds, 4, shuffle=True, seed=3))
    dev = list(DataLoader(ds, 4, shuffle=True, seed=3, num_workers=workers,
                          device=standin_xp, pin_memory=True))
    assert len(dev) == len(host)
    for (xd, yd), (xh, yh) in zip(dev, host):
        assert type(xd) is StandInArray and type(yd) is StandInArray
        np.testing.assert_array_equal(xd.get(), xh)
        np.testing.assert_array_equal(yd.get(), yh)
    with pytest.raises(ValueError, match="unknown device"):
        DataLoader(ds, 4, device="tpu")


@pytest.mark.skipif(not hasattr(os, "setpriority") or not sys.platform.startswith("linux"),
                    reason="per-thread priorities are a Linux feature")
def test_workers_run_at_background_priority_and_the_caller_keeps_its_own():
    seen = []

    class Priorities(Dataset):
        def __len__(self):
            return 8

        def __getitem__(self, i):
            seen.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
            return np.float32(i)
    mine = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    assert [float(b) for b, in zip(DataLoader(Priorities(), batch_size=None, num_workers=2))] \
        == list(range(8))
    assert seen == [19] * 8
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == mine
    seen.clear()
    list(DataLoader(Priorities(), batch_size=None))
    assert seen == [mine] * 8

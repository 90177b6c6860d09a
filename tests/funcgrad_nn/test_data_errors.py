"""DataLoader error reporting and argument checks: the failing sample's index is added
to exceptions from __getitem__ (with and without workers), seed=None draws fresh
randomness, float seeds and indices are refused, RandomSampler on an empty dataset, and
process workers give the batches of num_workers=0."""
import multiprocessing
import os

import numpy as np
import pytest

from funcgrad_nn.data import ArrayDataset, DataLoader, Dataset, RandomSampler


class Failing(Dataset):
    """Sample 7 raises; the others are their index."""

    def __len__(self):
        return 12

    def __getitem__(self, i):
        if i == 7:
            raise KeyError("broken record")
        return np.array([i])


class Squares(Dataset):
    """A CPU-bound-style Python dataset (picklable: defined at module level)."""

    def __len__(self):
        return 23

    def __getitem__(self, i):
        return {"x": np.full(3, float(i * i)), "y": i, "pid": os.getpid()}


class ThreadCounts(Dataset):
    """Each sample reports its process's thread budget and BLAS thread count."""

    def __len__(self):
        return 4

    def __getitem__(self, i):
        import funcgrad
        from funcgrad._src import blas
        return {"budget": funcgrad.config.read("num_threads"),
                "blas": blas.get_threads() or -1, "pid": os.getpid()}


def notes(excinfo):
    return "\n".join(getattr(excinfo.value, "__notes__", []))


@pytest.mark.parametrize("workers", [0, 2])
def test_exception_from_getitem_names_the_sample_index(workers):
    loader = DataLoader(Failing(), batch_size=4, num_workers=workers)
    with pytest.raises(KeyError, match="broken record") as e:
        list(loader)
    assert "index 7" in notes(e)


def test_exception_note_without_batching_and_with_shuffle():
    with pytest.raises(KeyError) as e:
        list(DataLoader(Failing(), batch_size=None))
    assert "index 7" in notes(e)
    with pytest.raises(KeyError) as e:
        list(DataLoader(Failing(), batch_size=3, shuffle=True, seed=0, num_workers=2))
    assert "index 7" in notes(e)


def test_exception_note_from_process_workers():
    loader = DataLoader(Failing(), batch_size=4, num_workers=2, worker_type="process")
    with pytest.raises(KeyError, match="broken record") as e:
        list(loader)
    assert "index 7" in notes(e)


def test_seed_none_draws_fresh_randomness():
    ds = ArrayDataset(np.arange(100))
    orders = {tuple(np.concatenate([b for b, in DataLoader(ds, 10, shuffle=True,
                                                            seed=None)]).tolist())
              for _ in range(3)}
    assert len(orders) == 3
    loader = DataLoader(ds, 10, shuffle=True, seed=None)
    assert isinstance(loader.seed, int)           # drawn once: a loader replays itself
    first = np.concatenate([b for b, in loader])
    loader.set_epoch(0)
    np.testing.assert_array_equal(first, np.concatenate([b for b, in loader]))


@pytest.mark.parametrize("seed", [1.7, "3", 2.0, True])
def test_non_integer_seed_is_refused(seed):
    with pytest.raises(TypeError, match="seed"):
        DataLoader(ArrayDataset(np.arange(4)), 2, shuffle=True, seed=seed)
    with pytest.raises(TypeError, match="seed"):
        RandomSampler(range(4), seed=seed)


def test_numpy_integer_seed_is_accepted():
    loader = DataLoader(ArrayDataset(np.arange(4)), 2, shuffle=True, seed=np.int64(3))
    assert loader.seed == 3 and type(loader.seed) is int
    sampler = RandomSampler(range(4), seed=np.uint8(5))
    assert sampler.seed == 5 and type(sampler.seed) is int


class FloatSampler:
    def __iter__(self):
        return iter([0, 1.7, 2])

    def __len__(self):
        return 3


class ListDataset(Dataset):
    def __len__(self):
        return 5

    def __getitem__(self, i):
        return np.array([i])


@pytest.mark.parametrize("ds", [ArrayDataset(np.arange(5)), ListDataset()])
@pytest.mark.parametrize("batch_size", [None, 2])
def test_float_sampler_indices_are_refused(ds, batch_size):
    loader = DataLoader(ds, batch_size=batch_size, sampler=FloatSampler())
    with pytest.raises(TypeError, match=r"1\.7"):
        list(loader)


def test_random_sampler_on_an_empty_dataset():
    with pytest.raises(ValueError, match="empty"):
        RandomSampler([], num_samples=5)
    with pytest.raises(ValueError, match="empty"):
        RandomSampler([], num_samples=5, replacement=True)
    s = RandomSampler([])
    assert len(s) == 0 and list(s) == []


def test_random_sampler_num_samples_checks():
    with pytest.raises((TypeError, ValueError), match="num_samples"):
        RandomSampler(range(3), num_samples=2.5)


def _batches(loader):
    return [(b["x"].tolist(), b["y"].tolist()) for b in loader]


@pytest.mark.parametrize("shuffle", [False, True])
def test_process_workers_give_the_same_batches(shuffle):
    ref = DataLoader(Squares(), batch_size=4, shuffle=shuffle, seed=5)
    got = DataLoader(Squares(), batch_size=4, shuffle=shuffle, seed=5, num_workers=2,
                     worker_type="process")
    for _ in range(2):                            # two epochs: the orders advance alike
        assert _batches(got) == _batches(ref)
    pids = {int(p) for b in DataLoader(Squares(), batch_size=4, num_workers=2,
                                       worker_type="process") for p in b["pid"]}
    assert os.getpid() not in pids                # the samples were read in other processes


def test_process_workers_with_a_start_method():
    ctx = "spawn"
    ref = DataLoader(Squares(), batch_size=5)
    got = DataLoader(Squares(), batch_size=5, num_workers=1, worker_type="process",
                     multiprocessing_context=ctx)
    assert _batches(got) == _batches(ref)
    got = DataLoader(Squares(), batch_size=5, num_workers=1,
                     multiprocessing_context=multiprocessing.get_context("fork"))
    assert got.worker_type == "process"           # a context alone asks for processes
    assert _batches(got) == _batches(ref)


def test_unpicklable_collate_fn_with_spawn_says_why():
    loader = DataLoader(Squares(), batch_size=5, num_workers=1,
                        multiprocessing_context="spawn", collate_fn=lambda s: s)
    with pytest.raises(Exception, match="pickle") as e:
        list(loader)
    assert "module level" in notes(e)


def test_worker_type_checks():
    ds = ArrayDataset(np.arange(4))
    with pytest.raises(ValueError, match="worker_type"):
        DataLoader(ds, worker_type="fiber")
    with pytest.raises(ValueError, match="multiprocessing_context"):
        DataLoader(ds, num_workers=1, worker_type="thread", multiprocessing_context="spawn")
    with pytest.raises(ValueError, match="multiprocessing_context"):
        DataLoader(ds, num_workers=1, multiprocessing_context="teleport")


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_each_process_worker_runs_on_one_thread(method):
    """N workers must not each start a thread per core (BLAS's or funcgrad's) next to the
    training process: a worker's budget, and its BLAS, is one thread."""
    import funcgrad
    from funcgrad._src import blas
    before = (funcgrad.config.read("num_threads"), blas.get_threads())
    loader = DataLoader(ThreadCounts(), batch_size=1, num_workers=2,
                        multiprocessing_context=method)
    batches = list(loader)
    assert {int(b["pid"][0]) for b in batches}.isdisjoint({os.getpid()})
    assert [int(b["budget"][0]) for b in batches] == [1, 1, 1, 1]
    if blas.available():
        assert [int(b["blas"][0]) for b in batches] == [1, 1, 1, 1]
    # the training process keeps its own budget
    assert (funcgrad.config.read("num_threads"), blas.get_threads()) == before

"""funcgrad.distributed and the named-axis collectives in one process (no MPI needed)."""
import sys

import numpy as np
import pytest

import funcgrad
import funcgrad.distributed as dist
import funcgrad.lax as lax
import funcgrad.numpy as fnp
import funcgrad_nn as nn
from funcgrad.test_util import check_grads


# ---- one process: a group of one, as in JAX --------------------------------------------------
def test_process_index_and_count_without_initialize():
    assert (funcgrad.process_index(), funcgrad.process_count()) == (0, 1)
    assert dist.is_main_process() and not dist.is_initialized()


def test_initialize_outside_a_launch_is_a_group_of_one(monkeypatch):
    for v in ("PMI_SIZE", "PMI_RANK", "OMPI_COMM_WORLD_SIZE", "PMIX_RANK"):
        monkeypatch.delenv(v, raising=False)
    dist.initialize()
    assert not dist.is_initialized() and funcgrad.process_count() == 1


def test_collectives_of_one_process_keep_dtype_shape_and_values():
    tree = {"a": np.ones((2, 3), np.float32), "b": [np.int32(4), np.array([True])], "c": 2.0}
    for op in ("sum", "mean", "max", "min"):
        out = dist.all_reduce(tree, op)
        assert out["a"].dtype == np.float32 and out["a"].shape == (2, 3)
        assert out["b"][0].dtype == np.int32 and int(out["b"][0]) == 4
        assert out["c"].dtype == np.float64
    assert dist.broadcast(tree)["a"].shape == (2, 3)
    g = dist.all_gather(tree)
    assert g["a"].shape == (1, 2, 3) and g["b"][0].shape == (1,)
    dist.barrier()


def test_bad_op_and_backend_are_clear_errors():
    with pytest.raises(ValueError, match="op must be one of"):
        dist.all_reduce(np.ones(2), op="prod")
    with pytest.raises(ValueError, match="backend must be"):
        dist.initialize("gloo")


def test_missing_mpi4py_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "mpi4py", None)
    with pytest.raises(ImportError, match=r'pip install "funcgrad\[distributed\]"'):
        dist.initialize("mpi")


# ---- jit: collectives are effects ----------------------------------------------------------
def test_jit_keeps_unused_collectives_and_does_not_merge_them():
    def f(x):
        dist.all_reduce(x)                   # result unused: kept
        a = dist.all_reduce(x)
        b = dist.all_reduce(x)               # same inputs: not merged (two messages)
        return a + b

    g = funcgrad.jit(f).lower(np.ones(3))
    assert [e.prim.name for e in g.eqns].count("all_reduce") == 3


def test_collective_of_a_constant_is_recorded_by_jit():
    calls = []
    from funcgrad._src.prims import collectives
    impl = collectives.all_reduce_p.impl

    def counting(*a, **k):
        calls.append(1)
        return impl(*a, **k)
    collectives.all_reduce_p.impl = counting
    try:
        f = funcgrad.jit(lambda x: x + dist.all_reduce(np.float64(1.0)))
        for _ in range(3):
            f(np.ones(2))
    finally:
        collectives.all_reduce_p.impl = impl
    assert len(calls) == 3


def test_row_splitting_leaves_graphs_with_collectives_whole():
    from funcgrad._src import rows

    def step(w, x):
        g = funcgrad.grad(lambda w: fnp.sum(fnp.tanh(x @ w) ** 2))(w)
        return dist.all_reduce(g, "mean")

    graph = funcgrad.jit(step).lower(np.ones((8, 4)), np.ones((512, 8)))
    assert any(e.prim.effectful for e in graph.eqns)
    assert rows.analyze(graph) is None


# ---- named axes under vmap --------------------------------------------------------------------
XS = np.array([[1.0, -2.0], [3.0, 0.5], [-1.5, 4.0]])


def test_named_reductions_match_numpy():
    f = funcgrad.vmap(lambda x: (lax.psum(x, "i"), lax.pmean(x, "i"), lax.pmax(x, "i"),
                                 lax.pmin(x, "i"), lax.all_gather(x, "i"),
                                 lax.axis_index("i")), axis_name="i")
    s, m, hi, lo, g, i = f(XS)
    for got, want in ((s, XS.sum(0)), (m, XS.mean(0)), (hi, XS.max(0)), (lo, XS.min(0))):
        np.testing.assert_allclose(got, np.broadcast_to(want, XS.shape))
    assert g.shape == (3, 3, 2) and np.allclose(g, XS[None])
    assert i.tolist() == [0, 1, 2]


def test_named_reduction_of_an_unmapped_value():
    f = funcgrad.vmap(lambda x, c: lax.psum(c, "i") + 0 * x, in_axes=(0, None), axis_name="i")
    np.testing.assert_allclose(f(XS, np.array([1.0, 2.0])), np.tile([3.0, 6.0], (3, 1)))


def test_nested_axes_and_tuples_of_names():
    xs = np.arange(12.0).reshape(3, 2, 2)
    inner = funcgrad.vmap(lambda x: lax.psum(x, ("i", "j")), axis_name="j")
    out = funcgrad.vmap(inner, axis_name="i")(xs)
    np.testing.assert_allclose(out, np.broadcast_to(xs.sum((0, 1)), xs.shape))
    outer_only = funcgrad.vmap(funcgrad.vmap(lambda x: lax.psum(x, "i"), axis_name="j"),
                               axis_name="i")(xs)
    np.testing.assert_allclose(outer_only, np.broadcast_to(xs.sum(0), xs.shape))


def test_unbound_axis_name_is_a_clear_error():
    with pytest.raises(ValueError, match="unbound axis name 'k'"):
        funcgrad.vmap(lambda x: lax.psum(x, "k"), axis_name="i")(XS)


@pytest.mark.parametrize("red", [lax.psum, lax.pmean, lax.pmax, lax.pmin])
def test_named_reduction_derivatives(red):
    def f(xs):
        return funcgrad.vmap(lambda x: fnp.sin(x) * red(x, "i"), axis_name="i")(xs)
    check_grads(f, (XS,), order=2)


def test_all_gather_and_axis_index_derivatives():
    def f(xs):
        return funcgrad.vmap(lambda x: lax.all_gather(x, "i")[2] * x
                             + lax.axis_index("i").astype(x.dtype) * x, axis_name="i")(xs)
    check_grads(f, (XS,), order=2)


def test_per_example_gradients_through_psum():
    # per example i: loss_i = x_i . psum(x); the job's loss is their sum, whose gradient
    # with respect to x_i is psum(x) + sum_j x_j = 2 * psum(x) (psum transposes to psum)
    g = funcgrad.vmap(funcgrad.grad(lambda x: fnp.sum(x * lax.psum(x, "i"))), axis_name="i")(XS)
    np.testing.assert_allclose(g, np.broadcast_to(2 * XS.sum(0), XS.shape))
    total = funcgrad.grad(lambda xs: fnp.sum(xs * xs.sum(0)))(XS)
    np.testing.assert_allclose(g, total)


def test_jit_of_vmap_with_named_axes():
    f = funcgrad.jit(funcgrad.vmap(lambda x: x / lax.psum(x, "i"), axis_name="i"))
    np.testing.assert_allclose(f(XS), XS / XS.sum(0))
    np.testing.assert_allclose(f(2 * XS), XS / XS.sum(0))


def test_spmd_in_one_process_is_a_batch_of_one():
    out = dist.spmd(lambda x: (lax.psum(x, "b"), lax.all_gather(x, "b"), lax.axis_index("b")),
                    "b")(np.array([1.0, 2.0]))
    assert out[0].tolist() == [1.0, 2.0] and out[1].shape == (1, 2) and int(out[2]) == 0


# ---- DistributedSampler -----------------------------------------------------------------------
def _shards(n, replicas, **kw):
    return [list(nn.data.DistributedSampler(range(n), num_replicas=replicas, rank=r, **kw))
            for r in range(replicas)]


@pytest.mark.parametrize("n,replicas", [(10, 2), (11, 2), (7, 3), (2, 4)])
@pytest.mark.parametrize("shuffle", [False, True])
def test_sampler_shards_cover_the_dataset(n, replicas, shuffle):
    shards = _shards(n, replicas, shuffle=shuffle, seed=5)
    per = -(-n // replicas)
    assert all(len(s) == per for s in shards)
    flat = sum(shards, [])
    assert set(flat) == set(range(n)) and len(flat) == per * replicas
    if n % replicas == 0:
        assert len(set(flat)) == n                          # disjoint when even


@pytest.mark.parametrize("n,replicas", [(10, 2), (11, 2), (7, 3)])
def test_sampler_drop_last_is_disjoint(n, replicas):
    shards = _shards(n, replicas, shuffle=True, drop_last=True)
    flat = sum(shards, [])
    assert all(len(s) == n // replicas for s in shards)
    assert len(set(flat)) == len(flat) == n // replicas * replicas


def test_sampler_follows_pytorch_order_without_shuffle():
    assert _shards(5, 2, shuffle=False) == [[0, 2, 4], [1, 3, 0]]
    assert _shards(5, 2, shuffle=False, drop_last=True) == [[0, 2], [1, 3]]


def test_sampler_epochs_and_seed():
    s = nn.data.DistributedSampler(range(20), num_replicas=2, rank=0, seed=1)
    s.set_epoch(0)
    e0 = list(s)
    s.set_epoch(1)
    e1 = list(s)
    s.set_epoch(0)
    assert list(s) == e0 and e0 != e1
    other = nn.data.DistributedSampler(range(20), num_replicas=2, rank=1, seed=1)
    other.set_epoch(1)
    assert not set(e1) & set(other)
    # the epoch order is RandomSampler's: rank r reads every replicas-th index of it
    rs = nn.data.RandomSampler(range(20), seed=1)
    rs.set_epoch(1)
    assert e1 == list(rs)[0::2]


def test_sampler_refuses_seed_none():
    """seed=None draws a seed per process: the ranks' shards would overlap."""
    with pytest.raises(TypeError, match="seed=None .* overlap"):
        nn.data.DistributedSampler(range(20), num_replicas=2, rank=0, seed=None)
    s = nn.data.DistributedSampler(range(20), num_replicas=2, rank=0, seed=np.int64(4))
    assert s.seed == 4 and type(s.seed) is int


def test_sampler_with_dataloader_and_defaults():
    ds = nn.data.ArrayDataset(np.arange(9.0), np.arange(9))
    sampler = nn.data.DistributedSampler(ds, shuffle=False)
    assert (sampler.num_replicas, sampler.rank) == (1, 0)
    ys = np.concatenate([y for _, y in nn.data.DataLoader(ds, batch_size=4, sampler=sampler)])
    assert ys.tolist() == list(range(9))
    with pytest.raises(ValueError, match="rank must be in"):
        nn.data.DistributedSampler(ds, num_replicas=2, rank=2)


class _Noisy(nn.data.Dataset):
    """Sample i is i plus a random number drawn from the loader's generator."""

    def __len__(self):
        return 12

    def __getitem__(self, i):
        return self.get_sample(i)

    def get_sample(self, i, rng=None):
        return np.float64(i + (rng.random() if rng is not None else 0.0))


def test_sharded_augmentation_matches_one_process():
    ds = _Noisy()
    one = nn.data.DataLoader(ds, batch_size=4, shuffle=True, seed=7)
    whole = np.concatenate(list(one))
    shards = []
    for r in range(2):
        loader = nn.data.DataLoader(ds, batch_size=2, seed=7, sampler=nn.data.DistributedSampler(
            ds, num_replicas=2, rank=r, seed=7))
        shards.append(np.concatenate(list(loader)))
    merged = np.empty(12)
    merged[0::2], merged[1::2] = shards
    np.testing.assert_array_equal(merged, whole)


# ---- rank 0 writes ----------------------------------------------------------------------------
def test_other_ranks_do_not_write(tmp_path, monkeypatch):
    monkeypatch.setattr(funcgrad, "process_index", lambda: 1)
    nn.save({"w": np.ones(2)}, tmp_path / "ckpt")
    log = nn.training.MetricsLogger(tmp_path / "logs")
    log.log(0, loss=1.0)
    log.close()
    assert list(tmp_path.iterdir()) == [] and log.history == {"loss": [(0, 1.0)]}
    nn.save({"w": np.ones(2)}, tmp_path / "mine", all_processes=True)
    assert (tmp_path / "mine").exists()


def test_checkpoints_have_one_atomic_writer():
    """Atomic file writing lives in funcgrad_nn.serialization (fsync of file and folder,
    the old file's permissions kept, nothing left behind on SIGKILL); funcgrad.distributed
    had a weaker second copy (files created 0600, no folder fsync) that nothing used."""
    assert not hasattr(dist, "atomic_write") and "atomic_write" not in dist.__all__

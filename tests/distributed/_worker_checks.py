"""Checks run in every process of ``mpiexec -n 2 python _worker_checks.py`` (one launch).

Each check prints ``CHECK <name> rank=<r> OK`` or ``CHECK <name> rank=<r> FAIL <why>``;
``test_multiprocess.py`` launches this once and turns each line into a test. A check must
call the same collectives on every rank (a failing assertion comes after them).
"""
import collections
import os
import sys
import tempfile
import traceback

import numpy as np

CHECKS = []


def check(fn):
    CHECKS.append(fn)
    return fn


Point = collections.namedtuple("Point", "x y")


def _tree(r):
    """A pytree of mixed dtypes whose values depend on the rank."""
    return {
        "w": np.arange(6, dtype=np.float32).reshape(2, 3) * (r + 1),
        "b": np.float64(r + 0.5),
        "steps": np.array([1, 2, 3], np.int32) * (r + 1),
        "count": np.int64(10 * r + 4),
        "mask": np.array([r == 0, r == 1, False]),
        "half": np.full((2,), r + 0.25, np.float16),
        "z": np.array([1 + 1j * r, 2 - r * 1j], np.complex64),
        "nested": [Point(np.ones((1, 2), np.float32) * r, (np.float64(-r),)), None],
    }


def _expect(trees, op):
    from funcgrad.tree_util import tree_map

    def red(*xs):
        xs = [np.asarray(x) for x in xs]
        if op == "sum":
            out = np.sum(xs, axis=0) if xs[0].dtype != bool else np.any(xs, axis=0)
        elif op == "mean":
            if xs[0].dtype.kind in "iu":
                out = np.sum(xs, axis=0) // len(xs)
            elif xs[0].dtype == bool:
                out = np.any(xs, axis=0)
            else:
                out = np.sum(np.asarray(xs, np.complex128 if xs[0].dtype.kind == "c"
                                        else np.float64), axis=0) / len(xs)
        elif op == "max":
            out = np.max(xs, axis=0)
        else:
            out = np.min(xs, axis=0)
        return np.asarray(out).astype(xs[0].dtype)
    return tree_map(red, *trees)


def _same(got, want, tol=1e-6):
    from funcgrad.tree_util import tree_flatten_with_path, keystr
    g, gt = tree_flatten_with_path(got)
    w, wt = tree_flatten_with_path(want)
    assert gt == wt, f"structure {gt} != {wt}"
    for (p, a), (_, b) in zip(g, w):
        a, b = np.asarray(a), np.asarray(b)
        assert a.dtype == b.dtype, f"{keystr(p)}: dtype {a.dtype} != {b.dtype}"
        assert a.shape == b.shape, f"{keystr(p)}: shape {a.shape} != {b.shape}"
        assert np.allclose(a, b, rtol=tol, atol=tol), f"{keystr(p)}: {a} != {b}"


class _Counter:
    """Counts an engine's data messages (the structure probe is left out)."""

    def __init__(self, engine, method="allreduce"):
        self.engine, self.method, self.calls = engine, method, []
        self.orig = getattr(engine, method)

    def __enter__(self):
        def counted(buf, *a):
            if not (buf.dtype == np.int64 and buf.shape == (2,)):
                self.calls.append((buf.dtype, buf.shape))
            return self.orig(buf, *a)
        setattr(self.engine, self.method, counted)
        return self

    def __exit__(self, *exc):
        setattr(self.engine, self.method, self.orig)


# ---- the checks ------------------------------------------------------------------------------
@check
def mixed_dtype_all_reduce(r, n):
    import funcgrad.distributed as dist
    trees = [_tree(k) for k in range(n)]
    for op in ("sum", "mean"):
        _same(dist.all_reduce(_tree(r), op), _expect(trees, op))
    real = [{k: v for k, v in t.items() if k != "z"} for t in trees]
    for op in ("max", "min"):
        _same(dist.all_reduce(real[r], op), _expect(real, op))


@check
def one_message_per_dtype(r, n):
    import funcgrad.distributed as dist
    from funcgrad._src import comm
    tree = {"a": [np.ones(3, np.float32) * r for _ in range(50)],
            "b": [np.ones(2, np.int32) for _ in range(20)]}
    with _Counter(comm.group().host) as c:
        out = dist.all_reduce(tree)
    assert sorted(str(d) for d, _ in c.calls) == ["float32", "int32"], c.calls
    assert out["a"][7].dtype == np.float32 and out["b"][0].tolist() == [n, n]


@check
def broadcast_from_each_root(r, n):
    import funcgrad.distributed as dist
    for root in range(n):
        _same(dist.broadcast(_tree(r), root=root), _tree(root))


@check
def all_gather_stacks_by_rank(r, n):
    import funcgrad.distributed as dist
    from funcgrad.tree_util import tree_map
    got = dist.all_gather(_tree(r))
    want = tree_map(lambda *xs: np.stack([np.asarray(x) for x in xs]), *[_tree(k) for k in range(n)])
    _same(got, want)


@check
def barrier_eager_and_jit(r, n):
    import funcgrad
    import funcgrad.distributed as dist
    dist.barrier()
    f = funcgrad.jit(lambda x: (dist.barrier(), x * 2)[1])
    assert f(np.ones(2)).tolist() == [2.0, 2.0]
    assert "barrier" in str(funcgrad.make_graph(lambda x: (dist.barrier(), x)[1])(np.ones(2)))


@check
def structure_mismatch_names_key_path(r, n):
    import funcgrad.distributed as dist
    cases = [({"a": np.ones(2), "b": np.ones(1)} if r == 0 else {"a": np.ones(2), "c": np.ones(1)},
              "['b']"),
             ({"w": [np.ones(2), np.ones(3 + r)]}, "['w'][1]"),
             ({"p": np.ones(2, np.float32 if r == 0 else np.float64)}, "['p']")]
    for tree, path in cases:
        try:
            dist.all_reduce(tree)
        except ValueError as e:
            assert path in str(e), str(e)
        else:
            raise AssertionError(f"no error for a tree differing at {path}")
    # an empty tree on one rank only
    try:
        dist.all_reduce({} if r == 0 else {"a": np.ones(1)})
    except ValueError as e:
        assert "leaves" in str(e), str(e)
    else:
        raise AssertionError("no error for an empty tree on one rank")
    # a rank calling another collective at the same point
    try:
        dist.barrier() if r == 0 else dist.all_reduce(np.ones(1))
    except ValueError as e:
        assert "different collectives" in str(e), str(e)
    else:
        raise AssertionError("no error for different collectives")
    # the ranks are still in step afterwards
    assert dist.all_reduce(np.ones(1))[0] == n


@check
def jit_keeps_collectives_as_effects(r, n):
    import funcgrad
    import funcgrad.distributed as dist
    from funcgrad._src import comm

    def f(x):
        unused = dist.all_reduce(x * 3.0)          # dead value: kept (an effect)
        del unused
        return dist.all_reduce(x, "mean") + dist.all_reduce(np.float32(r))  # constant input

    jf = funcgrad.jit(f)
    for k in range(3):
        x = np.full(2, float(r + k), np.float32)
        with _Counter(comm.group().host) as c:
            got = jf(x)
        assert len(c.calls) == 3, c.calls          # every collective runs on every call
        want = np.mean([k + q for q in range(n)]) + sum(range(n))
        assert np.allclose(got, want), (got, want)
    graph = str(jf.lower(np.ones(2, np.float32)))
    assert graph.count("all_reduce") == 3, graph


@check
def derivatives_of_collectives(r, n):
    import funcgrad
    import funcgrad.distributed as dist
    import funcgrad.numpy as fnp
    x = np.array([1.0, 2.0]) * (r + 1)
    # f_r(x) = sum(all_reduce(x)^2); d(sum_r f_r)/dx_r = n * 2 * S
    S = sum(np.array([1.0, 2.0]) * (k + 1) for k in range(n))
    g = funcgrad.grad(lambda x: fnp.sum(dist.all_reduce(x) ** 2))(x)
    assert np.allclose(g, n * 2 * S), g
    g = funcgrad.grad(lambda x: fnp.sum(dist.all_reduce({"v": x}, "mean")["v"] ** 2))(x)
    assert np.allclose(g, 2 * S / n), g
    _, t = funcgrad.jvp(lambda x: dist.all_reduce(x), (x,), (np.ones(2),))
    assert np.allclose(t, n)
    # max: the derivative goes to the rank holding the maximum
    g = funcgrad.grad(lambda x: fnp.sum(dist.all_reduce(x, "max")))(x)
    assert np.allclose(g, n if r == n - 1 else 0.0), g
    # broadcast: the root receives every rank's cotangent
    g = funcgrad.grad(lambda x: fnp.sum(dist.broadcast(x, root=0) * (r + 1.0)))(x)
    assert np.allclose(g, sum(range(1, n + 1)) if r == 0 else 0.0), g
    # all_gather: each rank gets the cotangent of its own slice, summed over ranks
    g = funcgrad.grad(lambda x: fnp.sum(dist.all_gather(x)[0] * 1.0 + dist.all_gather(x)[-1] * 2.0))(x)
    want = n * (1.0 if r == 0 else 0.0) + n * (2.0 if r == n - 1 else 0.0)
    assert np.allclose(g, want), g
    # under jit
    jg = funcgrad.jit(funcgrad.grad(lambda x: fnp.sum(dist.all_reduce(x) ** 2)))
    assert np.allclose(jg(x), n * 2 * S)


@check
def forward_and_reverse_rules_are_adjoint_across_ranks(r, n):
    """For the job read as one program (the sum over ranks), <ct, J t> = <J^T ct, t>,
    and J t matches central differences taken on every rank at once."""
    import funcgrad
    import funcgrad.distributed as dist
    rng = np.random.default_rng(100 + r)
    x = rng.normal(size=(3, 2))
    t = rng.normal(size=(3, 2))
    cases = {"sum": lambda x: dist.all_reduce(x),
             "mean": lambda x: dist.all_reduce({"v": x}, "mean")["v"],
             "max": lambda x: dist.all_reduce(x, "max"),
             "min": lambda x: dist.all_reduce(x, "min"),
             "broadcast": lambda x: dist.broadcast(x, root=n - 1),
             "all_gather": lambda x: dist.all_gather(x)}
    for name, f in cases.items():
        y, ty = funcgrad.jvp(f, (x,), (t,))
        ct = rng.normal(size=np.shape(y))
        _, pull = funcgrad.vjp(f, x)
        (g,) = pull(ct)
        eps = 1e-6
        fd = (np.asarray(f(x + eps * t)) - np.asarray(f(x - eps * t))) / (2 * eps)
        lhs, rhs = dist.all_reduce((np.sum(ct * ty), np.sum(g * t)))
        assert np.allclose(ty, fd, atol=1e-6), (name, ty, fd)
        assert np.allclose(lhs, rhs), (name, lhs, rhs)


@check
def vmap_over_collectives(r, n):
    import funcgrad
    import funcgrad.distributed as dist
    xs = np.arange(6.0).reshape(3, 2) * (r + 1)
    got = funcgrad.vmap(lambda x: dist.all_reduce(x))(xs)
    assert np.allclose(got, np.arange(6.0).reshape(3, 2) * sum(range(1, n + 1)))
    got = funcgrad.vmap(lambda x: dist.all_gather(x))(xs)
    assert got.shape == (3, n, 2) and np.allclose(got[:, r], xs)


@check
def data_parallel_gradient_equals_full_batch(r, n):
    import funcgrad
    import funcgrad.distributed as dist
    import funcgrad.numpy as fnp
    rng = np.random.default_rng(0)                 # the same data on every rank
    X = rng.normal(size=(10, 3)).astype(np.float32)   # 10 rows: shards of 5 (even split)
    Y = rng.normal(size=(10,)).astype(np.float32)
    params = {"w": rng.normal(size=(3,)).astype(np.float32), "b": np.float32(0.1)}

    def loss(p, x, y):
        return fnp.mean((fnp.tanh(x @ p["w"]) + p["b"] - y) ** 2)

    full = funcgrad.grad(loss)(params, X, Y)
    mine = slice(r * 10 // n, (r + 1) * 10 // n)

    @funcgrad.jit
    def dp_grad(p, x, y):
        return dist.all_reduce(funcgrad.grad(loss)(p, x, y), "mean")

    for g in (dist.all_reduce(funcgrad.grad(loss)(params, X[mine], Y[mine]), "mean"),
              dp_grad(params, X[mine], Y[mine])):
        _same(g, full, tol=1e-5)


@check
def spmd_runs_the_vmap_code(r, n):
    import funcgrad
    import funcgrad.distributed as dist
    import funcgrad.lax as lax
    import funcgrad.numpy as fnp

    def per_example(x):
        centred = x - lax.pmean(x, "batch")
        top = lax.pmax(x, "batch") - lax.pmin(x, "batch")
        return {"c": centred / top, "s": lax.psum(x, "batch"),
                "g": lax.all_gather(x, "batch"), "i": lax.axis_index("batch")}

    xs = np.array([[1.0, 5.0], [4.0, -2.0]])[:n]
    one = funcgrad.vmap(per_example, axis_name="batch")(xs)
    here = dist.spmd(per_example, "batch")(xs[r])
    for k in ("c", "s", "g"):
        assert np.allclose(here[k], one[k][r]), (k, here[k], one[k][r])
    assert int(here["i"]) == r
    # derivatives agree as well
    loss = lambda x: fnp.sum(x * lax.psum(x, "batch"))
    g_one = funcgrad.vmap(funcgrad.grad(loss), axis_name="batch")(xs)
    g_here = dist.spmd(funcgrad.grad(loss), "batch")(xs[r])
    assert np.allclose(g_here, g_one[r]), (g_here, g_one[r])


@check
def distributed_sampler_on_real_ranks(r, n):
    import funcgrad.distributed as dist
    import funcgrad_nn as nn
    for N, drop in ((10, False), (11, False), (11, True)):
        s = nn.data.DistributedSampler(range(N), shuffle=True, seed=3, drop_last=drop)
        s.set_epoch(2)
        mine = np.array(list(s), np.int64)
        every = dist.all_gather(mine)
        flat = every.reshape(-1)
        if drop:
            assert len(set(flat.tolist())) == len(flat) == N // n * n
        else:
            assert set(flat.tolist()) == set(range(N)) and len(flat) == -(-N // n) * n
    ds = nn.data.ArrayDataset(np.arange(12.0), np.arange(12))
    loader = nn.data.DataLoader(ds, batch_size=2, sampler=nn.data.DistributedSampler(ds))
    seen = np.concatenate([y for _, y in loader])
    every = dist.all_gather(seen).reshape(-1)
    assert sorted(every.tolist()) == list(range(12))


@check
def nccl_path_on_the_stand_in(r, n):
    import funcgrad.distributed as dist
    from funcgrad._src import comm, testing_nccl
    from funcgrad._src.testing_backend import StandInArray, standin_xp
    g = comm.group()
    g.device = comm.NcclEngine.create(g.host, nccl=testing_nccl, xp=standin_xp,
                                      ptr=testing_nccl.address)
    get = StandInArray.get

    def no_host_copy(self):
        raise AssertionError("a device array was copied to the host")
    StandInArray.get = no_host_copy
    try:
        tree = {"a": [standin_xp.ones((2, 3), dtype=np.float32) * (r + 1) for _ in range(4)],
                "i": standin_xp.arange(3, dtype=np.int64) * (r + 1),
                "z": standin_xp.asarray(np.array([1 + 1j * r], np.complex64))}
        testing_nccl.calls.clear()
        out = dist.all_reduce(tree)
        calls = list(testing_nccl.calls)
        mean = dist.all_reduce(tree, "mean")
        bc = dist.broadcast(tree, root=n - 1)
        ga = dist.all_gather(tree)
    finally:
        StandInArray.get = get
        g.device = None
    total = sum(range(1, n + 1))
    assert isinstance(out["a"][0], StandInArray)
    assert len(calls) == 3, calls             # float32, int64, complex64 (as float32 pairs)
    assert np.allclose(out["a"][3].get(), total) and out["a"][3].dtype == np.float32
    assert out["i"].get().tolist() == [0, total, 2 * total]
    assert np.allclose(out["z"].get(), [n + 1j * sum(range(n))]) and out["z"].dtype == np.complex64
    assert np.allclose(mean["a"][0].get(), total / n)
    assert np.allclose(bc["a"][1].get(), n) and bc["i"].get().tolist() == [0, n, 2 * n]
    assert ga["a"][0].shape == (n, 2, 3) and np.allclose(ga["a"][0].get()[r], r + 1)
    # without a device engine (backend "mpi"), device arrays go by way of a host copy
    via_host = dist.all_reduce(tree)
    assert isinstance(via_host["a"][0], StandInArray)
    assert np.allclose(via_host["a"][0].get(), total)


@check
def nccl_module_mismatch_names_key_path(r, n):
    """With NCCL, a leaf that is a NumPy array on one rank and a device array on another
    would go through MPI on one and NCCL on the other (a hang on real GPUs): every rank
    raises, naming the key path and both modules."""
    import funcgrad.distributed as dist
    from funcgrad._src import comm, testing_nccl
    from funcgrad._src.testing_backend import standin_xp
    g = comm.group()
    g.device = comm.NcclEngine.create(g.host, nccl=testing_nccl, xp=standin_xp,
                                      ptr=testing_nccl.address)
    try:
        x = np.ones(3, np.float32) if r == 0 else standin_xp.ones(3, dtype=np.float32)
        tree = {"ok": np.ones(2), "loss": x}
        for collective in (dist.all_reduce, dist.broadcast, dist.all_gather):
            try:
                collective(tree)
            except ValueError as e:
                msg = str(e)
                assert "['loss']" in msg and "numpy over mpi" in msg, msg
                assert "standin_xp over nccl" in msg, msg
            else:
                raise AssertionError(f"{collective.__name__}: no error for a leaf of "
                                     "different array modules")
    finally:
        g.device = None
    assert dist.all_reduce(np.ones(1))[0] == n           # the ranks are still in step


@check
def rank0_writes_checkpoints_and_logs(r, n):
    import funcgrad.distributed as dist
    import funcgrad_nn as nn
    import shutil
    made = tempfile.mkdtemp(prefix="fg-dist-") if r == 0 else ""
    folder = dist.broadcast(np.frombuffer(made.encode().ljust(256, b"\0"), np.uint8))
    folder = folder.tobytes().rstrip(b"\0").decode()
    path = os.path.join(folder, "ckpt")
    nn.save({"w": np.ones(2) * (r + 1)}, path)      # rank 0 alone writes
    dist.barrier()
    assert nn.load(path)["w"].tolist() == [1.0, 1.0]
    log = nn.training.MetricsLogger(os.path.join(folder, f"logs{r}"))
    log.log(0, loss=1.0)
    log.close()
    dist.barrier()
    assert os.path.exists(os.path.join(folder, "logs0", "metrics.jsonl"))
    for k in range(1, n):
        assert not os.path.exists(os.path.join(folder, f"logs{k}"))
    assert [f for f in os.listdir(folder) if f.endswith(".tmp")] == []
    dist.barrier()
    if r == 0:
        shutil.rmtree(folder)


def main():
    import funcgrad
    import funcgrad.distributed as dist
    dist.initialize()
    r, n = funcgrad.process_index(), funcgrad.process_count()
    only = set(sys.argv[1:])
    for fn in CHECKS:
        if only and fn.__name__ not in only:
            continue
        try:
            fn(r, n)
            line = f"CHECK {fn.__name__} rank={r} OK"
        except Exception as e:
            why = "".join(traceback.format_exception_only(type(e), e)).strip().replace("\n", " | ")
            tb = traceback.format_exc().replace("\n", " | ")
            line = f"CHECK {fn.__name__} rank={r} FAIL {why} || {tb}"[:3000]
        sys.stdout.write(line + "\n")         # one write: lines of two ranks never mix
        sys.stdout.flush()
        dist.barrier()


if __name__ == "__main__":
    main()

"""The NCCL path on real GPUs (run where CuPy and CUDA devices are present):

    mpiexec -n 2 python _worker_nccl.py

Prints ``NCCL OK rank=<r>`` on success; raises (aborting the job) otherwise.
"""
import numpy as np


def main():
    import cupy
    import funcgrad
    import funcgrad.distributed as dist
    import funcgrad.numpy as fnp
    dist.initialize("nccl")
    r, n = funcgrad.process_index(), funcgrad.process_count()
    tree = {"a": [cupy.full((3, 4), r + 1, cupy.float32) for _ in range(5)],
            "h": cupy.full((7,), r + 1, cupy.float16),
            "i": cupy.arange(4, dtype=cupy.int64) * (r + 1),
            "host": np.full(2, r + 1.0)}
    total = sum(range(1, n + 1))
    out = dist.all_reduce(tree)
    assert isinstance(out["a"][0], cupy.ndarray) and out["a"][0].dtype == cupy.float32
    assert float(out["a"][4][2, 3]) == total and float(out["h"][6]) == total
    assert out["i"].get().tolist() == [0, total, 2 * total, 3 * total]
    assert isinstance(out["host"], np.ndarray) and out["host"].tolist() == [total, total]
    assert np.allclose(dist.all_reduce(tree, "mean")["a"][0].get(), total / n)
    assert float(dist.broadcast(tree, root=n - 1)["a"][1][0, 0]) == n
    g = dist.all_gather(tree)
    assert g["a"][0].shape == (n, 3, 4) and float(g["a"][0][r, 0, 0]) == r + 1
    x = cupy.ones(3, cupy.float32) * (r + 1)
    grad = funcgrad.jit(funcgrad.grad(lambda x: fnp.sum(dist.all_reduce(x) ** 2)))(x)
    assert np.allclose(grad.get(), n * 2 * total)
    print(f"NCCL OK rank={r}", flush=True)


if __name__ == "__main__":
    main()

"""Per-example gradients with vmap(grad(loss)): one batched pass instead of a loop.

    python examples/per_example_gradients.py

Per-example gradients are what differential privacy (clip each example's gradient) and
influence estimates need. Here: logistic regression on a small synthetic set.
"""
import time

import numpy as np

import funcgrad
import funcgrad.numpy as fnp


def loss(params, x, y):
    """Binary cross-entropy of one example (x: (d,), y: scalar 0/1)."""
    w, b = params
    logit = fnp.dot(x, w) + b
    return fnp.logaddexp(0.0, logit) - y * logit


def best_time(fn, *args, repeat=5):
    """The best of ``repeat`` timed calls of ``fn(*args)`` in seconds, after one untimed
    warm-up call (the first call pays one-time costs: imports, caches, page faults)."""
    fn(*args)
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn(*args)
        best = min(best, time.perf_counter() - t0)
    return best


def main():
    rng = np.random.default_rng(0)
    n, d = 256, 20
    x = rng.normal(size=(n, d))
    y = (x @ rng.normal(size=d) > 0).astype(np.float64)
    params = (np.zeros(d), np.array(0.0))

    per_example = funcgrad.vmap(funcgrad.grad(loss), in_axes=(None, 0, 0))
    gw, gb = per_example(params, x, y)

    def loop(params, x, y):
        return [funcgrad.grad(loss)(params, xi, yi) for xi, yi in zip(x, y)]
    np.testing.assert_allclose(gw, np.stack([g[0] for g in loop(params, x, y)]), rtol=1e-12)
    print(f"per-example gradients: {gw.shape} (weights), {gb.shape} (bias)")
    t_vmap = best_time(per_example, params, x, y)
    t_loop = best_time(loop, params, x, y, repeat=2)
    print(f"vmap: {t_vmap * 1e3:.2f} ms, Python loop: {t_loop * 1e3:.1f} ms "
          f"({t_loop / t_vmap:.0f}x; best of several calls after a warm-up)")

    # DP-SGD style: clip each example's gradient to norm 1, then average.
    norms = np.sqrt((gw ** 2).sum(axis=1) + gb ** 2)
    scale = np.minimum(1.0, 1.0 / norms)
    clipped = (gw * scale[:, None]).mean(axis=0)
    print(f"mean per-example norm {norms.mean():.3f}; clipped mean gradient norm "
          f"{np.linalg.norm(clipped):.3f}")
    # The mean of per-example gradients is the gradient of the mean loss.
    full = funcgrad.grad(lambda p: fnp.mean(funcgrad.vmap(loss, in_axes=(None, 0, 0))(p, x, y)))(params)
    np.testing.assert_allclose(full[0], gw.mean(axis=0), rtol=1e-10)
    print("mean of per-example gradients == gradient of the mean loss: ok")


if __name__ == "__main__":
    main()

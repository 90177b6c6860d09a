"""The cost of the optimizers' gradient checks (structure and shapes, every step).

A small MLP (4-32-32-3, six parameter arrays, batch 64): the eager ``tx.update`` +
``optim.apply_updates`` and the jitted whole train step, with the checks on and with
``_tree.check_like`` replaced by a no-op, interleaved over rounds; each figure is the
best round. Under ``jit`` the checks run only while tracing, so the jitted figures should
agree. Run: ``python benchmarks/bench_optim_checks.py`` from the repository root.
"""
import os
import sys
import timeit

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import funcgrad  # noqa: E402
import funcgrad.random as fr  # noqa: E402
import funcgrad_nn as nn  # noqa: E402
import funcgrad_nn.functional as F  # noqa: E402
from funcgrad_nn import optim  # noqa: E402
from funcgrad_nn.optim import _tree  # noqa: E402


def main(rounds=5):
    model = nn.Sequential(nn.Linear(4, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(),
                          nn.Linear(32, 3))
    params = model.init(fr.key(0))
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(64, 4)).astype(np.float32), np.zeros(64, int)
    vg = funcgrad.value_and_grad(lambda p: F.cross_entropy(model(p, x), y))
    check = _tree.check_like
    _, grads = vg(params)
    one = min(timeit.repeat(lambda: check("bench", grads, params), number=20000,
                            repeat=5)) / 20000 * 1e6
    print(f"one check (grads against params, 6 leaves): {one:.1f} us")
    print("optimizer  checks  eager update+apply_updates  jit train step")
    for name, tx in [("sgd", optim.sgd(0.1)), ("adam", optim.adam(1e-3)),
                     ("adamw", optim.adamw(1e-3))]:
        state = tx.init(params)

        def eager():
            u, _ = tx.update(grads, state, params)
            return optim.apply_updates(params, u)

        @funcgrad.jit
        def step(p, s):
            _, g = vg(p)
            u, s = tx.update(g, s, p)
            return optim.apply_updates(p, u), s

        step(params, state)
        best = {}
        for _ in range(rounds):
            for on in (True, False):
                _tree.check_like = check if on else (lambda *a, **k: None)
                try:
                    te = min(timeit.repeat(eager, number=500, repeat=3)) / 500 * 1e6
                    tj = min(timeit.repeat(lambda: step(params, state), number=200,
                                           repeat=3)) / 200 * 1e6
                finally:
                    _tree.check_like = check
                old = best.get(on, (float("inf"), float("inf")))
                best[on] = (min(old[0], te), min(old[1], tj))
        for on in (True, False):
            print(f"{name:9}  {'on' if on else 'off':6}  {best[on][0]:8.0f} us"
                  f"{'':18}{best[on][1]:6.0f} us")


if __name__ == "__main__":
    main()

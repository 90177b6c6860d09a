"""The computation graph: trace a function, print it, draw it, and jit it.

    python examples/computation_graph.py [out_dir]

Prints the graph of the lecture's example f(x1, x2) = ln(x1) + x1*x2 - sin(x2) and of its
gradient (the backward pass is part of the graph), writes Graphviz sources (operators
as boxes, variables as ellipses) and, when the `graphviz` package is installed, SVGs.
"""
import os
import sys
import time

import numpy as np

import funcgrad
import funcgrad.numpy as fnp

# outputs go next to this script, wherever it is run from
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "out")


def f(x1, x2):
    return fnp.log(x1) + x1 * x2 - fnp.sin(x2)


def main(out_dir=OUT):
    os.makedirs(out_dir, exist_ok=True)
    x1, x2 = np.array(2.0), np.array(5.0)
    g = funcgrad.make_graph(f)(x1, x2)
    print("forward graph:\n" + str(g))
    gg = funcgrad.make_graph(funcgrad.grad(f, argnums=(0, 1)))(x1, x2)
    print("\ngraph of grad(f) (the backward pass, and only the forward values it needs):\n"
          + str(gg))
    for name, graph in [("f", g), ("grad_f", gg)]:
        path = os.path.join(out_dir, f"{name}.dot")
        with open(path, "w") as fh:
            fh.write(graph.to_dot())
        print(f"wrote {path}")
        try:
            print("rendered", funcgrad.render_graph(graph, os.path.join(out_dir, f"{name}.svg")))
        except Exception as e:       # graphviz is optional
            print(f"(not rendered: {e.__class__.__name__}: {str(e).splitlines()[0]})")

    # jit replays the simplified graph as generated code.
    grad_f = funcgrad.grad(f, argnums=(0, 1))
    fast = funcgrad.jit(grad_f)
    fast(x1, x2)
    n = 2000
    t0 = time.perf_counter()
    for _ in range(n):
        grad_f(x1, x2)
    t_eager = (time.perf_counter() - t0) / n
    t0 = time.perf_counter()
    for _ in range(n):
        fast(x1, x2)
    t_jit = (time.perf_counter() - t0) / n
    print(f"\ngrad eager: {t_eager * 1e6:.1f} µs/call, jit: {t_jit * 1e6:.1f} µs/call, "
          f"{len(fast.lower(x1, x2).eqns)} equations after simplification")
    print("gradient at (2, 5):", [float(v) for v in fast(x1, x2)])


if __name__ == "__main__":
    main(*sys.argv[1:])

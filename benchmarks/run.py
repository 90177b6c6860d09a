"""Benchmark runner: funcgrad against autograd, JAX (eager and jit) and PyTorch eager,
whichever are installed, in the same run. Writes benchmarks/RESULTS.md.

    python benchmarks/run.py            # all workloads
    python benchmarks/run.py W1 W2      # some of them

Timings are the best of several repeats (wall clock, one process), over
FUNCGRAD_BENCH_ROUNDS (default 2) rounds of all the selected workloads. Thread counts: NumPy's
BLAS and PyTorch are both pinned to the same number of threads (see the header of
RESULTS.md). Peers that are not installed are reported as "n/a".
"""
from __future__ import annotations

import os
import platform
import subprocess
import sys
import time

THREADS = int(os.environ.get("FUNCGRAD_BENCH_THREADS", "2"))
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, str(THREADS))     # NumPy's BLAS and PyTorch alike

import numpy as np  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

import funcgrad  # noqa: E402
import funcgrad.numpy as fnp  # noqa: E402



def _peer(name):
    if os.environ.get("FUNCGRAD_BENCH_PEERS") == "0":     # a child that measures alone
        return None
    try:
        return __import__(name)
    except Exception:
        return None


torch = _peer("torch")
autograd = _peer("autograd")
jax = _peer("jax")
if torch is not None:
    torch.set_num_threads(THREADS)
if jax is not None:
    jax.config.update("jax_enable_x64", True)


def best_time(f, repeat=7, number=None, min_time=0.2):
    """Best per-call seconds over ``repeat`` rounds of ``number`` calls each."""
    f()
    if number is None:
        number = 1
        while True:
            t0 = time.perf_counter()
            for _ in range(number):
                f()
            if time.perf_counter() - t0 > min_time / 4 or number > 10000:
                break
            number *= 2
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(number):
            f()
        best = min(best, (time.perf_counter() - t0) / number)
    return best


# ---- W1: grad of a chain of 300 elementwise ops on a length-10 float64 vector ------------
W1_OPS = 300


def _w1_chain(x, m):
    for _ in range(W1_OPS // 6):
        x = m.sin(x)
        x = x * 1.0001
        x = x + 0.1
        x = m.square(x)
        x = -x
        x = m.exp(x)
    return m.sum(x)


def bench_w1():
    x = np.linspace(0.1, 1.0, 10)
    rows = {}
    g = funcgrad.grad(lambda x: _w1_chain(x, fnp))
    rows["funcgrad grad"] = best_time(lambda: g(x))
    rows["NumPy forward only"] = best_time(lambda: _w1_chain(x, np))
    from funcgrad._src import numba_backend
    if numba_backend.available():        # jit's compiled backend, next to JAX jit
        gn = funcgrad.jit(g, backend="numba")
        gn.lower(x).compile(wait=True)
        rows["funcgrad jit(grad) numba"] = best_time(lambda: gn(x))
    if autograd is not None:
        import autograd.numpy as anp
        ga = autograd.grad(lambda x: _w1_chain(x, anp))
        rows["autograd grad"] = best_time(lambda: ga(x))
    if torch is not None:
        xt = torch.tensor(x, requires_grad=True)

        def tstep():
            xt.grad = None
            _w1_chain(xt, torch).backward()
        rows["PyTorch eager backward"] = best_time(tstep)
    if jax is not None:
        import jax.numpy as jnp
        gj = jax.grad(lambda x: _w1_chain(x, jnp))
        xj = jnp.asarray(x)
        rows["JAX eager grad"] = best_time(lambda: gj(xj).block_until_ready(), repeat=3)
        gjj = jax.jit(gj)
        rows["JAX jit grad"] = best_time(lambda: gjj(xj).block_until_ready())
    return rows


# ---- W2: value_and_grad + SGD step of a 784-512-512-10 ReLU MLP, batch 128, float32 ------
def _w2_data(seed=0):
    rng = np.random.default_rng(seed)
    sizes = [784, 512, 512, 10]
    params = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        bound = 1 / np.sqrt(a)
        params.append((rng.uniform(-bound, bound, (a, b)).astype(np.float32),
                       rng.uniform(-bound, bound, (b,)).astype(np.float32)))
    x = rng.normal(size=(128, 784)).astype(np.float32)
    y = rng.integers(0, 10, 128)
    return params, x, y


def _w2_loss(params, x, y, m):
    h = x
    for i, (w, b) in enumerate(params):
        h = h @ w + b
        if i < len(params) - 1:
            h = m.maximum(h, 0.0)
    h = h - m.max(h, axis=1, keepdims=True)
    logp = h - m.log(m.sum(m.exp(h), axis=1, keepdims=True))
    return -m.mean(logp[np.arange(len(y)), y])


def _w2_numpy_step(params, x, y, lr=0.01):
    """Hand-written train step in NumPy: value and gradients, then the SGD update."""
    loss, grads = _w2_numpy_value_and_grad(params, x, y)
    return loss, [(w - lr * gw, b - lr * gb) for (w, b), (gw, gb) in zip(params, grads)]


def _w2_numpy_value_and_grad(params, x, y):
    """Hand-written forward and backward in NumPy: the reference for overhead."""
    acts = [x]
    pre = []
    h = x
    for i, (w, b) in enumerate(params):
        z = h @ w + b
        pre.append(z)
        h = np.maximum(z, 0.0) if i < len(params) - 1 else z
        acts.append(h)
    z = h - h.max(axis=1, keepdims=True)
    e = np.exp(z)
    s = e.sum(axis=1, keepdims=True)
    logp = z - np.log(s)
    n = len(y)
    loss = -logp[np.arange(n), y].mean()
    g = e / s
    g[np.arange(n), y] -= 1
    g /= n
    g = g.astype(np.float32)
    grads = []
    for i in range(len(params) - 1, -1, -1):
        w, b = params[i]
        gw = acts[i].T @ g
        gb = g.sum(axis=0)
        if i > 0:
            g = (g @ w.T) * (pre[i - 1] > 0)
        grads.append((gw, gb))
    return loss, grads[::-1]


def bench_w2():
    params, x, y = _w2_data()
    rows = {}
    vg = funcgrad.value_and_grad(lambda p: _w2_loss(p, x, y, fnp))

    def fg_step():
        loss, grads = vg(params)
        return [(w - 0.01 * gw, b - 0.01 * gb) for (w, b), (gw, gb) in zip(params, grads)]

    def fg_value_and_grad():
        return vg(params)

    timed = {
        "funcgrad value_and_grad": fg_value_and_grad,
        "funcgrad train step": fg_step,
        "NumPy forward only": lambda: _w2_loss(params, x, y, np),
        "NumPy hand-written value_and_grad": lambda: _w2_numpy_value_and_grad(params, x, y),
        "NumPy hand-written train step": lambda: _w2_numpy_step(params, x, y),
    }
    # Interleaved rounds, best of each: page-fault costs depend on the allocator's state,
    # which depends on what ran just before; alternating spreads that over every row.
    for _ in range(3):
        for name, f in timed.items():
            rows[name] = min(rows.get(name, float("inf")), best_time(f, repeat=3))
    if torch is not None:
        rows["PyTorch eager train step"] = best_time(w2_torch_step(torch, params, x, y))
    if autograd is not None:
        import autograd.numpy as anp
        ga = autograd.value_and_grad(lambda p: _w2_loss(p, x, y, anp))
        rows["autograd value_and_grad"] = best_time(lambda: ga(params), repeat=3)
    if jax is not None:
        import jax.numpy as jnp
        jparams = jax.tree_util.tree_map(jnp.asarray, params)
        gj = jax.value_and_grad(lambda p: _w2_loss(p, x, y, jnp))
        rows["JAX eager value_and_grad"] = best_time(
            lambda: jax.block_until_ready(gj(jparams)), repeat=3)
        gjj = jax.jit(gj)
        rows["JAX jit value_and_grad"] = best_time(lambda: jax.block_until_ready(gjj(jparams)))
    return rows


# ---- W6: grad of the lecture's RNN cell unrolled for 50 steps (hidden 20, input 10) -----
def _w6_data(seed=0):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(20, 20)) * 0.3, rng.normal(size=(20, 10)) * 0.3,
            rng.normal(size=(50, 1, 10)), rng.normal(size=(1, 20)))


def _w6_loss(W_h, W_x, xs, h0, m):
    h = h0
    for t in range(xs.shape[0]):
        h = m.tanh(W_h @ h.T + W_x @ xs[t].T).T
    return h.sum()


def _w6_scan_loss(W_h, W_x, xs, h0, m, lax):
    """The same RNN with its time loop as ``lax.scan`` (one equation under jit)."""
    def step(h, x):
        return m.tanh(W_h @ h.T + W_x @ x.T).T, None
    return lax.scan(step, h0, xs)[0].sum()


def bench_w6():
    W_h, W_x, xs, h0 = _w6_data()
    rows = {}
    g = funcgrad.grad(lambda a, b: _w6_loss(a, b, xs, h0, fnp), argnums=(0, 1))
    rows["funcgrad grad"] = best_time(lambda: g(W_h, W_x))
    import funcgrad.lax as flax
    gs = funcgrad.grad(lambda a, b: _w6_scan_loss(a, b, xs, h0, fnp, flax), argnums=(0, 1))
    gsj = funcgrad.jit(gs)
    want = g(W_h, W_x)
    for got in (gs(W_h, W_x), gsj(W_h, W_x)):
        for u, v in zip(got, want):
            np.testing.assert_allclose(u, v, rtol=1e-9, atol=1e-12)
    rows["funcgrad lax.scan grad"] = best_time(lambda: gs(W_h, W_x))
    rows["funcgrad lax.scan jit(grad)"] = best_time(lambda: gsj(W_h, W_x))
    from funcgrad._src import numba_backend
    if numba_backend.available():        # the scan loops as native functions
        gsn = funcgrad.jit(gs, backend="numba")
        for _ in range(3):               # the loops split at the second call, compile then
            gsn(W_h, W_x)
            gsn.lower(W_h, W_x).compile(wait=True)
        for u, v in zip(gsn(W_h, W_x), want):
            np.testing.assert_allclose(u, v, rtol=1e-9, atol=1e-12)
        rows["funcgrad lax.scan jit(grad) numba"] = best_time(lambda: gsn(W_h, W_x))
    if torch is not None:
        a = torch.tensor(W_h, requires_grad=True)
        b = torch.tensor(W_x, requires_grad=True)
        xst = torch.tensor(xs)
        h0t = torch.tensor(h0)

        def tstep():
            a.grad = b.grad = None
            _w6_loss(a, b, xst, h0t, torch).backward()
        rows["PyTorch eager backward"] = best_time(tstep)
    if autograd is not None:
        import autograd.numpy as anp
        ga = autograd.grad(lambda a, b: _w6_loss(a, b, xs, h0, anp), argnum=(0, 1))
        rows["autograd grad"] = best_time(lambda: ga(W_h, W_x))
    if jax is not None:
        import jax.numpy as jnp
        gj = jax.grad(lambda a, b: _w6_loss(a, b, xs, h0, jnp), argnums=(0, 1))
        rows["JAX eager grad"] = best_time(lambda: jax.block_until_ready(gj(W_h, W_x)), repeat=3)
        gjj = jax.jit(gj)
        rows["JAX jit grad"] = best_time(lambda: jax.block_until_ready(gjj(W_h, W_x)))
        gjs = jax.jit(jax.grad(lambda a, b: _w6_scan_loss(a, b, xs, h0, jnp, jax.lax),
                               argnums=(0, 1)))
        rows["JAX jit grad, lax.scan"] = best_time(lambda: jax.block_until_ready(gjs(W_h, W_x)))
    return rows


# ---- W4: Hessian of sum(tanh(A@x)**2) + x@x, x in R^100, float64 -------------------------
def _w4_data(n=100, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, n)) / np.sqrt(n), rng.normal(size=n)


def _w4_f(A, x, m):
    return m.sum(m.tanh(A @ x) ** 2) + x @ x


def _w4_closed_form(A, x):
    t = np.tanh(A @ x)
    s2 = 1 - t * t
    d2 = 2 * s2 * (s2 - 2 * t * t)
    return (A.T * d2) @ A + 2 * np.eye(len(x))


def bench_w4():
    A, x = _w4_data()
    rows = {}
    h = funcgrad.hessian(lambda x: _w4_f(A, x, fnp))
    np.testing.assert_allclose(h(x), _w4_closed_form(A, x), rtol=1e-8, atol=1e-10)
    rows["funcgrad hessian (eager)"] = best_time(lambda: h(x), repeat=5)
    hj = funcgrad.jit(h)
    hj(x)
    np.testing.assert_allclose(hj(x), _w4_closed_form(A, x), rtol=1e-8, atol=1e-10)
    rows["funcgrad jit(hessian)"] = best_time(lambda: hj(x))
    rows["NumPy closed-form Hessian"] = best_time(lambda: _w4_closed_form(A, x))
    if torch is not None:
        At = torch.tensor(A)
        xt = torch.tensor(x)
        ht = torch.func.hessian(lambda x: _w4_f(At, x, torch))
        rows["PyTorch torch.func.hessian (eager)"] = best_time(lambda: ht(xt), repeat=5)
    if jax is not None:
        import jax.numpy as jnp
        hjx = jax.hessian(lambda x: _w4_f(jnp.asarray(A), x, jnp))
        rows["JAX hessian (eager)"] = best_time(lambda: jax.block_until_ready(hjx(x)), repeat=3)
        hjj = jax.jit(hjx)
        rows["JAX jit(hessian)"] = best_time(lambda: jax.block_until_ready(hjj(x)))
    return rows


# ---- jit: W1 and W2 under jit, and the first call's tracing time ----------------------------
def bench_jit():
    rows = {}
    x = np.linspace(0.1, 1.0, 10)
    g = funcgrad.grad(lambda x: _w1_chain(x, fnp))
    gj = funcgrad.jit(g)
    t0 = time.perf_counter()
    gj(x)
    rows["W1 jit first call (trace + compile)"] = time.perf_counter() - t0
    np.testing.assert_allclose(gj(x), g(x))
    rows["W1 grad (eager)"] = best_time(lambda: g(x))
    rows["W1 jit(grad)"] = best_time(lambda: gj(x))
    params, xb, y, step = _w2_funcgrad_step()
    sj = funcgrad.jit(step)
    t0 = time.perf_counter()
    sj(params, xb, y)
    rows["W2 jit first call (trace + compile)"] = time.perf_counter() - t0
    rows.update(_w2_eager_and_jit(step, sj, params, xb, y))
    # the same in a fresh process that imports no peer (a user's script): the allocator's
    # history (here shaped by PyTorch and JAX) decides how often fresh arrays page-fault
    out = subprocess.run([sys.executable, os.path.abspath(__file__), "--w2-jit-child"],
                         capture_output=True, text=True,
                         env={**os.environ, "FUNCGRAD_BENCH_PEERS": "0"})
    for line in out.stdout.splitlines():
        key, _, value = line.partition("=")
        if key.startswith("W2 "):
            rows[key + " [fresh process]"] = float(value)
    return rows


_FAULTS = {}


def _w2_eager_and_jit(step, sj, params, xb, y):
    import resource
    rows = {}
    for _ in range(3):      # interleaved rounds (allocator state; see bench_w2)
        for name, f in (("W2 train step (eager)", lambda: step(params, xb, y)),
                        ("W2 jit(train step)", lambda: sj(params, xb, y))):
            f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            for _ in range(5):
                f()
            _FAULTS[name] = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0) / 5
            rows[name] = min(rows.get(name, float("inf")), best_time(f, repeat=3))
    return rows


def w2_torch_step(torch, params, x, y, device="cpu"):
    """W2's PyTorch eager train step (backward, then in-place SGD) on ``device``."""
    tp = [(torch.tensor(w, device=device, requires_grad=True),
           torch.tensor(b, device=device, requires_grad=True)) for w, b in params]
    xt, yt = torch.tensor(x, device=device), torch.tensor(y, device=device)

    def tstep():
        for w, b in tp:
            w.grad = b.grad = None
        h = xt
        for i, (w, b) in enumerate(tp):
            h = h @ w + b
            if i < len(tp) - 1:
                h = torch.relu(h)
        loss = torch.nn.functional.cross_entropy(h, yt)
        loss.backward()
        with torch.no_grad():
            for w, b in tp:
                w -= 0.01 * w.grad
                b -= 0.01 * b.grad
    return tstep


def _w2_funcgrad_step():
    """W2's data and funcgrad train step (value_and_grad, then SGD)."""
    params, xb, y = _w2_data()
    vg = funcgrad.value_and_grad(lambda p, x, y: _w2_loss(p, x, y, fnp))

    def step(p, x, y):
        loss, grads = vg(p, x, y)
        return loss, [(w - 0.01 * gw, b - 0.01 * gb) for (w, b), (gw, gb) in zip(p, grads)]
    return params, xb, y, step


def _w2_jit_child():
    params, xb, y, step = _w2_funcgrad_step()
    sj = funcgrad.jit(step)
    sj(params, xb, y)
    for k, v in _w2_eager_and_jit(step, sj, params, xb, y).items():
        print(f"{k}={v}")


# ---- checkpoint: peak memory of a 32-layer MLP gradient --------------------------------------
def bench_checkpoint():
    import tracemalloc
    rng = np.random.default_rng(0)
    width, depth, batch = 256, 32, 256
    ws = [rng.normal(size=(width, width)).astype(np.float32) / np.sqrt(width) for _ in range(depth)]
    x = rng.normal(size=(batch, width)).astype(np.float32)

    def layer(h, w):
        return fnp.tanh(h @ w)

    remat_layer = funcgrad.checkpoint(layer)

    def loss(ws, layer_fn):
        h = x
        for w in ws:
            h = layer_fn(h, w)
        return fnp.sum(h ** 2)

    rows = {}
    for name, fn in [("plain", layer), ("checkpoint", remat_layer)]:
        g = funcgrad.grad(lambda ws: loss(ws, fn))
        g(ws)
        tracemalloc.start()
        g(ws)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        rows[f"{name}: peak MiB"] = peak / 2 ** 20
        rows[f"{name}: time"] = best_time(lambda: g(ws), repeat=3)
    return rows


# ---- W5: a small CNN's value_and_grad (details in bench_conv.py) ------------------------
def bench_w5():
    """bench_conv.py in two fresh processes: glibc's default allocator settings, and
    funcgrad.config keep_freed_memory (process-wide: PyTorch gets it too). Each process
    times funcgrad eager, funcgrad jit and PyTorch eager in alternating rounds."""
    import bench_conv
    rows = {}
    if torch is None:
        params, x, labels = bench_conv.make_problem()
        rows["funcgrad value_and_grad"] = best_time(bench_conv.funcgrad_step_fn(params, x, labels))
        rows["funcgrad jit(value_and_grad)"] = best_time(
            bench_conv.funcgrad_step_fn(params, x, labels, jit=True))
        return rows
    names = {"funcgrad": "funcgrad value_and_grad", "funcgrad-jit": "funcgrad jit(value_and_grad)",
             "pytorch": "PyTorch eager value_and_grad"}
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bench_conv.py")
    for flag, suffix in (([], ""), (["--keep-freed-memory"], ", keep_freed_memory")):
        out = subprocess.run([sys.executable, script, "--rounds", "2"] + flag,
                             capture_output=True, text=True, env={**os.environ})
        for line in out.stdout.splitlines():
            head, _, rest = line.partition(":")
            if head.strip() in names and "ms/step (best)" in rest:
                rows[names[head.strip()] + suffix] = float(rest.split()[0]) * 1e-3
    if autograd is not None:
        rows["(autograd has no convolution primitive)"] = float("nan")
    return rows


# ---- random: 10^6 normals --------------------------------------------------------------------
def bench_random():
    import funcgrad.random as fr
    key = fr.key(0)
    rng = np.random.default_rng()
    return {"funcgrad.random.normal, 10^6 float32": best_time(lambda: fr.normal(key, (10 ** 6,))),
            "NumPy default_rng().normal(size=10^6)": best_time(lambda: rng.normal(size=10 ** 6))}


# ---- import time ------------------------------------------------------------------------
def bench_import():
    def run(code):
        best = float("inf")
        for _ in range(9):
            out = subprocess.run([sys.executable, "-X", "importtime", "-c", code],
                                 capture_output=True, text=True, env={**os.environ})
            total = 0
            for line in out.stderr.splitlines():
                parts = line.split("|")
                if len(parts) == 3 and parts[2].strip() in ("funcgrad", "numpy"):
                    total = max(total, int(parts[1]))
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], check=True)
            best = min(best, time.perf_counter() - t0)
        return best
    base = run("import numpy")
    full = run("import numpy, funcgrad")
    return {"python -c 'import numpy'": base, "python -c 'import numpy, funcgrad'": full,
            "funcgrad's addition": full - base}


WORKLOADS = {"W1": bench_w1, "W2": bench_w2, "W4": bench_w4, "W5": bench_w5, "W6": bench_w6,
             "random": bench_random,
             "jit": bench_jit, "checkpoint": bench_checkpoint, "import": bench_import}


def _fmt(sec):
    if sec >= 1e-3:
        return f"{sec * 1e3:.2f} ms"
    return f"{sec * 1e6:.1f} µs"


ROUNDS = int(os.environ.get("FUNCGRAD_BENCH_ROUNDS", "2"))


def main(argv):
    """Every selected workload ROUNDS times over (all of them, then all again), keeping
    each row's best: a slow spell of this shared machine then spoils no section alone."""
    names = argv or list(WORKLOADS)
    results = {}
    for r in range(ROUNDS):
        for n in names:
            print(f"running {n} (round {r + 1} of {ROUNDS}) ...", flush=True)
            rows = WORKLOADS[n]()
            best = results.setdefault(n, {})
            for k, v in rows.items():
                best[k] = v if k not in best or not v >= best[k] else best[k]
    for n in names:
        print(n)
        for k, v in results[n].items():
            print(f"  {k:40s} {v:.1f}" if "MiB" in k else f"  {k:40s} {_fmt(v)}")
    write_results(results)


def _ratio(rows, a, b):
    if a in rows and b in rows:
        return f"{rows[a] / rows[b]:.2f}×"
    return "n/a"


def write_results(results):
    path = os.path.join(HERE, "RESULTS.md")
    old = open(path).read() if os.path.exists(path) else ""
    sections = _parse_sections(old)
    from importlib.metadata import version
    peers = ", ".join(f"{m.__name__} {version(m.__name__)}" for m in (torch, autograd, jax) if m)
    header = (f"# Benchmark results\n\nWritten by `python benchmarks/run.py` (and the other "
              f"scripts in this folder for their sections). Machine: {platform.machine()}, "
              f"{os.cpu_count()} cores, Python {platform.python_version()}, NumPy "
              f"{np.__version__}; peers: {peers or 'none'}; BLAS and PyTorch threads: {THREADS}. "
              f"Times are best of several repeats, over {ROUNDS} rounds of all the workloads; "
              "the ratios in a section come from one invocation (sections may come from "
              "different invocations). Workloads on large arrays (W2, W5, checkpoint) vary "
              "by up to 2× between runs: every fresh NumPy array can cost page faults, depending "
              "on the allocator's state (funcgrad.config keep_freed_memory; bench_conv.py --keep-freed-memory).\n")
    for name, rows in results.items():
        lines = [f"## {name}", ""]
        lines += ["| what | time |", "| --- | --- |"]
        lines += [f"| {k} | {v:.1f} |" if "MiB" in k else f"| {k} | {_fmt(v)} |"
                  for k, v in rows.items() if v == v]
        lines.append("")
        if name == "W1":
            per_op = rows["funcgrad grad"] / W1_OPS
            lines.append(f"- funcgrad: **{per_op * 1e6:.2f} µs per op** (target ≤ 6 µs)")
            if "funcgrad jit(grad) numba" in rows:
                lines.append(f"- funcgrad jit(grad), numba backend: "
                             f"{rows['funcgrad jit(grad) numba'] / W1_OPS * 1e6:.3f} µs per op; / "
                             f"JAX jit grad = **{_ratio(rows, 'funcgrad jit(grad) numba', 'JAX jit grad')}"
                             "** (target ≤ 1.5×)")
            for peer in ("autograd grad", "PyTorch eager backward", "JAX eager grad"):
                if peer in rows:
                    lines.append(f"- {peer}: {rows[peer] / W1_OPS * 1e6:.2f} µs per op; "
                                 f"funcgrad / {peer} = **{_ratio(rows, 'funcgrad grad', peer)}**"
                                 + (" (target ≤ 0.3×)" if peer == "autograd grad" else ""))
        if name == "W2":
            lines.append("- funcgrad value_and_grad / NumPy hand-written value_and_grad: **"
                         + _ratio(rows, "funcgrad value_and_grad", "NumPy hand-written value_and_grad")
                         + "** (target ≤ 1.15×)")
            lines.append("- funcgrad train step / NumPy hand-written train step: "
                         + _ratio(rows, "funcgrad train step", "NumPy hand-written train step"))
            lines.append("- funcgrad train step / PyTorch eager train step: **"
                         + _ratio(rows, "funcgrad train step", "PyTorch eager train step")
                         + "** (target ≤ 0.8×)")
            lines.append("- funcgrad value_and_grad / NumPy forward only: "
                         + _ratio(rows, "funcgrad value_and_grad", "NumPy forward only"))
        if name == "W5":
            for suffix, what in (("", "default allocator settings"),
                                 (", keep_freed_memory", "keep_freed_memory on")):
                for fg in ("funcgrad value_and_grad", "funcgrad jit(value_and_grad)"):
                    lines.append(f"- {fg} / PyTorch eager ({what}): **" + _ratio(
                        rows, fg + suffix, "PyTorch eager value_and_grad" + suffix)
                        + "** (target ≤ 1.0×)")
            lines.append("- each pair from one process, in alternating rounds; "
                         "`python benchmarks/bench_conv.py` prints CPU time and page faults")
        if name == "random":
            lines.append("- funcgrad / NumPy: **" + _ratio(
                rows, "funcgrad.random.normal, 10^6 float32", "NumPy default_rng().normal(size=10^6)")
                + "** (target ≤ 3×)")
        if name == "W6":
            lines.append("- funcgrad / PyTorch eager: **"
                         + _ratio(rows, "funcgrad grad", "PyTorch eager backward")
                         + "** (target ≤ 0.5×)")
            lines.append("- funcgrad / autograd: " + _ratio(rows, "funcgrad grad", "autograd grad"))
            lines.append("- funcgrad lax.scan jit(grad) / JAX jit grad (lax.scan): **" + _ratio(
                rows, "funcgrad lax.scan jit(grad)", "JAX jit grad, lax.scan")
                + "** (target ≤ 4×)")
            lines.append("- funcgrad lax.scan jit(grad) / PyTorch eager: **" + _ratio(
                rows, "funcgrad lax.scan jit(grad)", "PyTorch eager backward")
                + "** (target ≤ 0.4×)")
            if "funcgrad lax.scan jit(grad) numba" in rows:
                lines.append("- funcgrad lax.scan jit(grad), numba backend / JAX jit grad "
                             "(lax.scan): **" + _ratio(
                                 rows, "funcgrad lax.scan jit(grad) numba",
                                 "JAX jit grad, lax.scan") + "** (issue 20's target ≤ 2×)")
        if name == "W4":
            lines.append("- funcgrad hessian / torch.func.hessian: **" + _ratio(
                rows, "funcgrad hessian (eager)", "PyTorch torch.func.hessian (eager)")
                + "** (target ≤ 0.25×)")
            lines.append("- funcgrad jit(hessian) / closed-form NumPy: **" + _ratio(
                rows, "funcgrad jit(hessian)", "NumPy closed-form Hessian") + "** (target ≤ 3×)")
        if name == "jit":
            lines.append("- W1 speed-up of jit(grad) over grad: **" + _ratio(
                rows, "W1 grad (eager)", "W1 jit(grad)") + "** (target ≥ 5×)")
            lines.append("- W2 jit step / eager step: **" + _ratio(
                rows, "W2 jit(train step)", "W2 train step (eager)") + "** (target ≤ 0.9×) "
                "in this process, after the peers ran; page faults per step: eager "
                f"{_FAULTS.get('W2 train step (eager)', float('nan')):.0f}, jit "
                f"{_FAULTS.get('W2 jit(train step)', float('nan')):.0f}")
            lines.append("- W2 jit step / eager step in a fresh process without peers: **"
                         + _ratio(rows, "W2 jit(train step) [fresh process]",
                                  "W2 train step (eager) [fresh process]") + "**")
            lines.append(f"- W2 first-call tracing: **{rows['W2 jit first call (trace + compile)'] * 1e3:.0f} ms**"
                         " (target ≤ 50 ms; JAX's first call is about 600 ms)")
        if name == "checkpoint":
            lines.append("- peak memory with checkpoint / without: **" + _ratio(
                rows, "checkpoint: peak MiB", "plain: peak MiB") + "** (32 layers of 256×256, batch 256, float32; tracemalloc)")
        if name == "import":
            added = rows["funcgrad's addition"] * 1e3
            lines.append(f"- `import funcgrad` adds **{added:.0f} ms** "
                         "to `import numpy` (target ≤ 100 ms)")
        sections[name] = "\n".join(lines) + "\n"
    body = header + "\n" + "\n".join(sections[k] for k in sorted(sections, key=_order))
    with open(path, "w") as f:
        f.write(body)
    print(f"wrote {path}")


def _order(name):
    known = ["W1", "W2", "W4", "W5", "W6", "jit", "checkpoint", "random", "import", "GPU"]
    return (known.index(name) if name in known else len(known), name)


def _parse_sections(text):
    sections = {}
    cur = None
    buf = []
    for line in text.splitlines():
        if line.startswith("## "):
            if cur:
                sections[cur] = "\n".join(buf) + "\n"
            cur = line[3:].strip()
            buf = [line]
        elif cur:
            buf.append(line)
    if cur:
        sections[cur] = "\n".join(buf) + "\n"
    return sections


if __name__ == "__main__":
    if sys.argv[1:] == ["--w2-jit-child"]:
        _w2_jit_child()
    else:
        main(sys.argv[1:])

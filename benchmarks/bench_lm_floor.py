"""How fast can a NumPy-based library run the character LM's training step at all?

    python benchmarks/bench_lm_floor.py [--rounds 5] [--blocks 6] [--write]

Issue 19 asks for the char LM (``examples/char_lm.py``: Embedding(V, 32) -> LSTM(32, 128)
-> Linear(128, V), batch 64, Adam) at 0.8x PyTorch eager's time per step. This measures,
on the same batches:

- **funcgrad jit**: the example's jitted training step;
- **NumPy by hand**: the same step written directly in NumPy calls (forward, the LSTM's
  reverse pass, Adam; gradients checked against funcgrad's before timing): what any
  library that runs NumPy operations one by one could reach with no overhead of its own;
- **its products only**: the same step's matrix products alone (the time left if every
  elementwise operation were free);
- **PyTorch eager**: ``benchmarks/char_lm_torch.py`` (its LSTM is one fused oneDNN kernel),
  in a subprocess, so that its thread pool does not run beside NumPy's.

Rounds alternate between them; each in-process figure is the median of ``--blocks``
blocks of 20 steps. Ratios are against PyTorch in the same round, then the median over
rounds. ``--write`` puts the table into RESULTS.md.
"""
from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "examples"))
sys.path.insert(0, ROOT)

import funcgrad  # noqa: E402
import funcgrad.random as fr  # noqa: E402
from funcgrad_nn import optim  # noqa: E402

import char_lm  # noqa: E402

LM_FINAL = re.compile(r"^validation bits per character: .* \(([\d.]+) ms/step\)$")
LR, B1, B2, EPS = 3e-3, 0.9, 0.999, 1e-8


def sigmoid(x):
    t = np.negative(x)
    np.exp(t, out=t)
    t += 1
    return np.reciprocal(t, out=t)


class NumpyStep:
    """The char LM's Adam step in plain NumPy, parameters in funcgrad_nn's layout."""

    def __init__(self, params, gemm_only=False):
        self.p = {k: {n: np.array(a) for n, a in v.items()} for k, v in params.items()}
        self.m = {k: {n: np.zeros_like(a) for n, a in v.items()} for k, v in self.p.items()}
        self.v = {k: {n: np.zeros_like(a) for n, a in v.items()} for k, v in self.p.items()}
        self.t = 0
        self.gemm_only = gemm_only

    def grads(self, ids, tgt):
        """(loss, gradients) of the mean cross-entropy."""
        p = self.p
        E = p["embed"]["weight"]
        lp = p["lstm"]
        w_ih, w_hh = lp["weight_ih_l0"], lp["weight_hh_l0"]
        b = lp["bias_ih_l0"] + lp["bias_hh_l0"]
        w_o, b_o = p["head"]["weight"], p["head"]["bias"]
        nb, L = ids.shape
        H = w_hh.shape[1]
        ids_t = np.ascontiguousarray(ids.T)
        x = E[ids_t]                                        # (L, B, 32)
        xp = (x.reshape(L * nb, -1) @ w_ih.T).reshape(L, nb, 4 * H)
        xp += b
        hs = np.empty((L + 1, nb, H), np.float32)
        hs[0] = 0
        c = np.zeros((nb, H), np.float32)
        keep = []
        for t in range(L):
            g = hs[t] @ w_hh.T
            g += xp[t]
            i, f, gg, o = sigmoid(g[:, :H]), sigmoid(g[:, H:2 * H]), np.tanh(g[:, 2 * H:3 * H]), \
                sigmoid(g[:, 3 * H:])
            c_prev = c
            c = f * c_prev
            c += i * gg
            tc = np.tanh(c)
            np.multiply(o, tc, out=hs[t + 1])
            keep.append((i, f, gg, o, c_prev, tc))
        h2 = hs[1:].reshape(L * nb, H)
        logits = h2 @ w_o.T
        logits += b_o
        tg = np.ascontiguousarray(tgt.T).reshape(-1)
        mask = tg != char_lm.IGNORE
        n = mask.sum()
        z = logits - logits.max(axis=1, keepdims=True)
        ez = np.exp(z)
        s = ez.sum(axis=1, keepdims=True)
        safe = np.where(mask, tg, 0)
        rows = np.arange(len(tg))
        loss = float(((np.log(s[:, 0]) - z[rows, safe]) * mask).sum() / n)
        d = ez / s
        d[rows, safe] -= 1
        d *= (mask / n).astype(np.float32)[:, None]
        gw_o = d.T @ h2
        gb_o = d.sum(axis=0)
        dh_all = (d @ w_o).reshape(L, nb, H)
        G = np.empty((L, nb, 4 * H), np.float32)
        dh = np.zeros((nb, H), np.float32)
        dc = np.zeros((nb, H), np.float32)
        for t in range(L - 1, -1, -1):
            i, f, gg, o, c_prev, tc = keep[t]
            dh += dh_all[t]
            gt = G[t]
            np.multiply(dh * tc, o * (1 - o), out=gt[:, 3 * H:])
            dc += dh * o * (1 - tc * tc)
            np.multiply(dc * gg, i * (1 - i), out=gt[:, :H])
            np.multiply(dc * c_prev, f * (1 - f), out=gt[:, H:2 * H])
            np.multiply(dc * i, 1 - gg * gg, out=gt[:, 2 * H:3 * H])
            dc *= f
            dh = gt @ w_hh
        G2 = G.reshape(L * nb, 4 * H)
        gw_hh = G2.T @ hs[:-1].reshape(L * nb, H)
        gw_ih = G2.T @ x.reshape(L * nb, -1)
        gbias = G2.sum(axis=0)
        dx = G2 @ w_ih
        gE = np.zeros_like(E)
        np.add.at(gE, ids_t.reshape(-1), dx)
        return loss, {"embed": {"weight": gE},
                      "lstm": {"weight_ih_l0": gw_ih, "weight_hh_l0": gw_hh,
                               "bias_ih_l0": gbias, "bias_hh_l0": gbias.copy()},
                      "head": {"weight": gw_o, "bias": gb_o}}

    def products(self, ids):
        """The step's matrix products alone, on the same shapes."""
        p = self.p
        lp = p["lstm"]
        w_ih, w_hh, w_o = lp["weight_ih_l0"], lp["weight_hh_l0"], p["head"]["weight"]
        nb, L = ids.shape
        H = w_hh.shape[1]
        x = np.ones((L * nb, w_ih.shape[1]), np.float32)
        h = np.ones((nb, H), np.float32)
        g = np.ones((nb, 4 * H), np.float32)
        x @ w_ih.T
        for _ in range(L):
            h @ w_hh.T
        h2 = np.ones((L * nb, H), np.float32)
        d = h2 @ w_o.T
        d.T @ h2
        d @ w_o
        for _ in range(L):
            g @ w_hh
        G2 = np.ones((L * nb, 4 * H), np.float32)
        G2.T @ h2
        G2.T @ x
        G2 @ w_ih

    def __call__(self, ids, tgt):
        if self.gemm_only:
            self.products(ids)
            return 0.0
        loss, g = self.grads(ids, tgt)
        self.t += 1
        c1, c2 = 1 - B1 ** self.t, 1 - B2 ** self.t
        for k in self.p:
            for n, gr in g[k].items():
                m, v, w = self.m[k][n], self.v[k][n], self.p[k][n]
                m *= B1
                m += (1 - B1) * gr
                v *= B2
                v += (1 - B2) * gr * gr
                w -= (LR / c1) * m / (np.sqrt(v / c2) + EPS)
        return loss


def check_gradients(model, params, ids, tgt):
    """The hand-written gradients equal funcgrad's (so the floor is the same step)."""
    loss, g = NumpyStep(params).grads(ids, tgt)
    want_loss, want = funcgrad.value_and_grad(
        lambda p: char_lm.loss_fn(model, p, ids, tgt))(params)
    assert abs(loss - float(want_loss)) < 1e-4 * max(1.0, abs(loss)), (loss, want_loss)
    for k in want:
        for n in want[k]:
            np.testing.assert_allclose(g[k][n], np.asarray(want[k][n]), rtol=2e-3, atol=2e-6,
                                       err_msg=f"{k}.{n}")


def torch_ms(steps, seed):
    cmd = [sys.executable, os.path.join(HERE, "char_lm_torch.py"), "--steps", str(steps),
           "--eval-every", str(10 ** 9), "--seed", str(seed)]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=True).stdout
    found = [m for m in map(LM_FINAL.match, out.splitlines()) if m]
    if not found:
        raise RuntimeError(f"unexpected output of {' '.join(cmd)}:\n{out}")
    return float(found[-1].group(1))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--words", default="/usr/share/dict/words")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--blocks", type=int, default=6)
    ap.add_argument("--torch-steps", type=int, default=400)
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args(argv)

    train, _ = char_lm.load_words(args.words, 0)
    model = char_lm.CharLM(train.vocab, 128)
    params = model.init(fr.key(0))
    tx = optim.adam(LR)
    order = char_lm.batches(len(train.inputs), 64, 100000, 0)
    check_gradients(model, params, train.inputs[order[0]], train.targets[order[0]])

    @funcgrad.jit
    def train_step(params, opt_state, inputs, targets):
        loss, grads = funcgrad.value_and_grad(
            lambda p: char_lm.loss_fn(model, p, inputs, targets))(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optim.apply_updates(params, updates), opt_state, loss

    state = {"p": params, "s": tx.init(params), "i": 0}

    def fg_step(ids, tgt):
        state["p"], state["s"], loss = train_step(state["p"], state["s"], ids, tgt)
        return float(loss)

    runners = {"funcgrad jit": fg_step, "NumPy by hand": NumpyStep(params),
               "its products only": NumpyStep(params, gemm_only=True)}
    pos = {k: 0 for k in runners}

    def block(name, n=20):
        fn = runners[name]
        t = time.perf_counter()
        for _ in range(n):
            idx = order[pos[name]]
            pos[name] += 1
            fn(train.inputs[idx], train.targets[idx])
        return (time.perf_counter() - t) / n * 1e3

    for name in runners:
        block(name, 10)                                     # compile, warm caches
    ms = {k: [] for k in list(runners) + ["PyTorch eager"]}
    for r in range(args.rounds):
        ms["PyTorch eager"].append(torch_ms(args.torch_steps, r))
        per = {k: [] for k in runners}
        for _ in range(args.blocks):
            for name in runners:
                per[name].append(block(name))
        for name in runners:
            ms[name].append(statistics.median(per[name]))
        print(f"round {r}: " + ", ".join(f"{k} {v[-1]:.2f}" for k, v in ms.items()),
              flush=True)
    lines = ["| | ms per step (median over rounds) | / PyTorch eager (median of per-round "
             "ratios) |", "| --- | --- | --- |"]
    for name, v in ms.items():
        ratio = statistics.median(a / b for a, b in zip(v, ms["PyTorch eager"]))
        lines.append(f"| {name} | {statistics.median(v):.2f} | {ratio:.2f}x |")
    lines += ["", f"- char LM step (batch 64, hidden 128, sequences of "
              f"{train.inputs.shape[1]}), {args.rounds} rounds of {args.blocks} blocks of 20 "
              "steps each; PyTorch in a subprocess of "
              f"{args.torch_steps} steps per round; `python benchmarks/bench_lm_floor.py "
              "--write`",
              "- \"NumPy by hand\" is the same step's forward, LSTM reverse pass and Adam "
              "written directly in NumPy (gradients checked against funcgrad's first); "
              "\"its products only\" runs just its matrix products."]
    print("\n".join(lines))
    if args.write:
        from results_md import write_section
        write_section(lines, "char LM: the floor of NumPy operations")


if __name__ == "__main__":
    main()

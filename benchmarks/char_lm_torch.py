"""examples/char_lm.py's model in PyTorch: the same words, split, batches and optimizer.

    python benchmarks/char_lm_torch.py [--words /usr/share/dict/words] [--steps 2000]

``Embedding(V, 32) -> LSTM(32, H) -> Linear(H, V)`` with PyTorch's default
initialisation (funcgrad_nn's layers reproduce it), Adam, cross-entropy ignoring the
padding, the batches in the same order (``char_lm.batches``), and the same printed lines
(a few sampled words, then ``validation bits per character: X.XXX after N steps in S s
(T ms/step)`` last).
``--threads`` sets PyTorch's thread count (default: PyTorch's own).
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import time

import torch
import torch.nn as tnn

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "examples"))

from char_lm import (BOS, EOS, IGNORE, batches, check_args,  # noqa: E402
                     check_batch_size, load_words)


class CharLM(tnn.Module):
    def __init__(self, vocab, hidden, embed=32):
        super().__init__()
        self.embed = tnn.Embedding(vocab, embed)
        self.lstm = tnn.LSTM(embed, hidden, batch_first=True)
        self.head = tnn.Linear(hidden, vocab)

    def forward(self, ids, state=None):
        h, state = self.lstm(self.embed(ids), state)
        return self.head(h), state


def sample(model, corpus, seed, n=5, max_len=20, temperature=1.0):
    """``n`` words drawn from the model one character at a time, as ``char_lm.sample``
    does (PyTorch's generator, so not the same words)."""
    gen = torch.Generator().manual_seed(seed)
    words = []
    with torch.no_grad():
        for _ in range(n):
            ids, state, tok = [], None, BOS
            for _ in range(max_len):
                logits, state = model(torch.tensor([[tok]]), state)
                probs = torch.softmax(logits[0, -1] / temperature, dim=-1)
                tok = int(torch.multinomial(probs, 1, generator=gen))
                if tok == EOS or tok < 3:
                    break
                ids.append(tok)
            words.append(corpus.decode(ids))
    return words


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--words", default="/usr/share/dict/words")
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--eval-every", type=int, default=500)
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args(argv)
    check_args(ap, args)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    train, val = load_words(args.words, args.seed, limit=args.limit)
    check_batch_size(args.batch_size, len(train.inputs))
    print(f"{len(train.inputs)} training and {len(val.inputs)} validation words, "
          f"{train.vocab} tokens, sequences of {train.inputs.shape[1]} "
          f"(PyTorch {torch.__version__}, {torch.get_num_threads()} threads)")
    model = CharLM(train.vocab, args.hidden)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    xtr, ytr = torch.from_numpy(train.inputs), torch.from_numpy(train.targets)
    xva, yva = torch.from_numpy(val.inputs), torch.from_numpy(val.targets)
    n_chars = float((val.targets != IGNORE).sum())

    def validate():
        total = 0.0
        with torch.no_grad():
            for i in range(0, len(xva), 1000):
                logits, _ = model(xva[i:i + 1000])
                total += float(torch.nn.functional.cross_entropy(
                    logits.reshape(-1, logits.shape[-1]), yva[i:i + 1000].reshape(-1),
                    ignore_index=IGNORE, reduction="sum"))
        return total / n_chars / math.log(2)

    train_time = 0.0
    for step, idx in enumerate(batches(len(xtr), args.batch_size, args.steps, args.seed), 1):
        idx = torch.from_numpy(idx)
        t0 = time.perf_counter()
        opt.zero_grad()
        logits, _ = model(xtr[idx])
        loss = torch.nn.functional.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), ytr[idx].reshape(-1), ignore_index=IGNORE)
        loss.backward()
        opt.step()
        loss = loss.item()
        train_time += time.perf_counter() - t0
        if step % args.eval_every == 0 or step == args.steps:
            print(f"step {step:5d}: train {loss / math.log(2):.3f} bits/char, validation "
                  f"{validate():.3f} bits/char  ({train_time:.1f} s training)", flush=True)
    print("sampled words:", " ".join(sample(model, train, args.seed + 1)))
    bpc = validate()
    print(f"validation bits per character: {bpc:.3f} after {args.steps} steps in "
          f"{train_time:.1f} s ({train_time / args.steps * 1e3:.2f} ms/step)")
    return bpc


if __name__ == "__main__":
    main()

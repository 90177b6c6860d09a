"""A character-level language model of English words: an LSTM trained on a word list.

    python examples/char_lm.py [--words /usr/share/dict/words] [--steps 2000]
                               [--batch-size 64] [--hidden 128] [--lr 3e-3] [--seed 0]

The words (one per line; ``apt-get install wamerican`` gives ``/usr/share/dict/words``,
about 100k of them, offline) are shuffled with the seed and split 90/10 into training
and validation words. Each word is a sequence ``<w> c1 c2 ... cn </w>``: the model reads
``<w> c1 ... cn`` and predicts ``c1 ... cn </w>`` (padding positions are ignored by the
loss). Model: ``Embedding(V, 32) -> LSTM(32, H) -> Linear(H, V)`` from funcgrad_nn, the
training step (value_and_grad + Adam) under ``jit``. Prints the validation loss in bits
per character every ``--eval-every`` steps, then a few words sampled from the model, and
last ``validation bits per character: X.XXX after N steps in S s (T ms/step)``.
``benchmarks/char_lm_torch.py`` trains the same model in PyTorch on the same batches.
"""
from __future__ import annotations

import argparse
import math
import time

import numpy as np

import funcgrad
import funcgrad.random as fr
import funcgrad_nn as nn
import funcgrad_nn.functional as F
from funcgrad_nn import optim

PAD, BOS, EOS = 0, 1, 2           # token ids; characters start at 3
IGNORE = -100                     # target id the loss ignores (padding)


class Corpus:
    """Words as padded id arrays: ``inputs``/``targets`` ``int64 (N, T)``, ``T`` the longest
    word plus one, targets ``IGNORE`` past each word's end."""

    def __init__(self, words, chars):
        self.chars = chars
        index = {c: i + 3 for i, c in enumerate(chars)}
        t = max(len(w) for w in words) + 1
        self.inputs = np.full((len(words), t), PAD, np.int64)
        self.targets = np.full((len(words), t), IGNORE, np.int64)
        for k, w in enumerate(words):
            ids = [index[c] for c in w]
            self.inputs[k, :len(ids) + 1] = [BOS] + ids
            self.targets[k, :len(ids) + 1] = ids + [EOS]

    @property
    def vocab(self):
        return len(self.chars) + 3

    def decode(self, ids):
        return "".join(self.chars[i - 3] for i in ids if i >= 3)


def load_words(path, seed, max_len=24, val_fraction=0.1, limit=None):
    """(train, validation) Corpus pair from a word list, split by ``seed``."""
    try:
        with open(path, encoding="utf-8") as f:
            words = sorted({w.strip() for w in f if 0 < len(w.strip()) < max_len})
    except OSError as e:
        raise SystemExit(f"error: cannot read the word list {path} ({e.strerror}); on "
                         "Debian or Ubuntu apt-get install wamerican gives "
                         "/usr/share/dict/words") from None
    rng = np.random.default_rng(seed)
    rng.shuffle(words)
    if limit:
        words = words[:limit]
    if len(words) < 20:
        raise SystemExit(f"error: {path} gives {len(words)} usable words"
                         f"{f' (--limit {limit})' if limit else ''}; need at least 20")
    chars = sorted(set("".join(words)))
    n_val = max(1, int(len(words) * val_fraction))
    return Corpus(words[n_val:], chars), Corpus(words[:n_val], chars)


def batches(n, batch_size, steps, seed):
    """``steps`` index arrays: shuffled epochs of ``range(n)``, full batches only (the
    same order in both libraries). Raises ``ValueError`` when ``batch_size`` is not in
    ``1..n`` (no full batch could be made)."""
    if not 1 <= batch_size <= n:
        raise ValueError(f"batch size {batch_size} is not in 1..{n}, the number of "
                         "training words")
    rng = np.random.default_rng(seed + 1)
    out = []
    while len(out) < steps:
        order = rng.permutation(n)
        out += [order[i:i + batch_size] for i in range(0, n - batch_size + 1, batch_size)]
    return out[:steps]


class CharLM(nn.Module):
    def __init__(self, vocab, hidden, embed=32):
        self.embed = nn.Embedding(vocab, embed)
        self.lstm = nn.LSTM(embed, hidden, batch_first=True)
        self.head = nn.Linear(hidden, vocab)

    def forward(self, params, ids, state=None):
        h, state = self.lstm(params["lstm"], self.embed(params["embed"], ids), state)
        return self.head(params["head"], h), state


def loss_fn(model, params, inputs, targets):
    logits, _ = model(params, inputs)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1),
                           ignore_index=IGNORE)


def bits_per_char(total_nats, corpus):
    return total_nats / float((corpus.targets != IGNORE).sum()) / math.log(2)


def sample(model, params, corpus, key, n=5, max_len=20, temperature=1.0):
    """``n`` words drawn from the model, one character at a time."""
    words = []
    for k in fr.split(key, n):
        ids, state, tok = [], None, BOS
        for _ in range(max_len):
            logits, state = model(params, np.array([[tok]]), state)
            k, sub = fr.split(k)
            tok = int(fr.categorical(sub, np.asarray(logits)[0, -1] / temperature))
            if tok == EOS or tok < 3:
                break
            ids.append(tok)
        words.append(corpus.decode(ids))
    return words


def check_args(ap, args):
    """Exit through ``ap.error`` on a count that is not positive (a zero ``--eval-every``
    or ``--steps`` would divide by zero after training, a zero batch never ends)."""
    for flag in ("steps", "batch_size", "hidden", "eval_every", "limit"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            ap.error(f"--{flag.replace('_', '-')} must be at least 1, got {value}")


def check_batch_size(batch_size, n_train):
    """Batches are full (``batches``): more words per batch than there are training
    words would make none."""
    if batch_size > n_train:
        raise SystemExit(f"error: --batch-size {batch_size} is more than the {n_train} "
                         "training words; pass a smaller --batch-size or more words")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--words", default="/usr/share/dict/words")
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--eval-every", type=int, default=500)
    ap.add_argument("--limit", type=int, default=None, help="use the first N shuffled words")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    check_args(ap, args)

    train, val = load_words(args.words, args.seed, limit=args.limit)
    check_batch_size(args.batch_size, len(train.inputs))
    print(f"{len(train.inputs)} training and {len(val.inputs)} validation words, "
          f"{train.vocab} tokens, sequences of {train.inputs.shape[1]}")
    model = CharLM(train.vocab, args.hidden)
    params = model.init(fr.key(args.seed))
    tx = optim.adam(args.lr)
    opt_state = tx.init(params)

    @funcgrad.jit
    def train_step(params, opt_state, inputs, targets):
        loss, grads = funcgrad.value_and_grad(
            lambda p: loss_fn(model, p, inputs, targets))(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optim.apply_updates(params, updates), opt_state, loss

    @funcgrad.jit
    def val_nats(params, inputs, targets):
        logits, _ = model(params, inputs)
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1),
                               ignore_index=IGNORE, reduction="sum")

    def validate():
        total = 0.0
        for i in range(0, len(val.inputs), 1000):
            total += float(val_nats(params, val.inputs[i:i + 1000], val.targets[i:i + 1000]))
        return bits_per_char(total, val)

    train_time = 0.0
    order = batches(len(train.inputs), args.batch_size, args.steps, args.seed)
    for step, idx in enumerate(order, 1):
        t0 = time.perf_counter()
        params, opt_state, loss = train_step(params, opt_state, train.inputs[idx],
                                             train.targets[idx])
        loss = float(loss)
        train_time += time.perf_counter() - t0
        if step % args.eval_every == 0 or step == args.steps:
            print(f"step {step:5d}: train {loss / math.log(2):.3f} bits/char, validation "
                  f"{validate():.3f} bits/char  ({train_time:.1f} s training)", flush=True)
    print("sampled words:", " ".join(sample(model, params, train, fr.key(args.seed + 1))))
    bpc = validate()
    print(f"validation bits per character: {bpc:.3f} after {args.steps} steps in "
          f"{train_time:.1f} s ({train_time / args.steps * 1e3:.2f} ms/step)")
    return bpc


if __name__ == "__main__":
    main()

"""rnnlm's stream LSTM and a PyTorch CPU LSTM, trained one after the other for the same budget.

Same data (tinyshakespeare, nanoGPT's split: first 90 % trains, last 10 % validates, the same
character ids), same sizes (LSTM of 256 units, embedding 64), each with its best documented
settings:

- rnnlm: `rnnlm.training.stream.train_stream`, the README's stream command (128 streams, windows
  of 32, Adam 0.01, clip 1, full BPTT inside a window);
- PyTorch: `nn.Embedding` + `nn.LSTM` + `nn.Linear`, stateful windows of 64, batch 32, Adam 2e-3,
  gradient-norm clip 5 (the settings of docs' PyTorch reference line).

Both are then scored on the whole validation text read as one stream with the state carried
(nats per character), and the characters per second of training are printed, with the load
average before and after. One BLAS thread for rnnlm (rnnlm's own thread policy) and
`torch.set_num_threads(1)` for PyTorch, unless --threads says otherwise.

    python benchmarks/bench_stream.py [--seconds 170] [--data PATH] [--threads 1]

It prints figures; it is not a test. Without PyTorch only the rnnlm line is printed.
"""

import argparse
import os
import sys
import time

DEFAULT_DATA = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "tinyshakespeare.txt")


def _threads_first(argv):
    """Set the BLAS thread variables before NumPy loads (one thread by default)."""
    threads = "1"
    for i, a in enumerate(argv):
        if a == "--threads" and i + 1 < len(argv):
            threads = argv[i + 1]
        elif a.startswith("--threads="):
            threads = a.split("=", 1)[1]
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(name, threads)
    return int(threads)


_threads_first(sys.argv[1:])

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from rnnlm.config import TrainConfig  # noqa: E402
from rnnlm.models.language_model import LanguageModel  # noqa: E402
from rnnlm.training.stream import split_stream, stream_from_text, stream_total_loss, train_stream  # noqa: E402

HIDDEN, EMBED = 256, 64
RNNLM = dict(batch_size=128, seq_length=32, optimizer="adam", learning_rate=0.01, clip=1.0)
TORCH = dict(batch_size=32, seq_length=64, learning_rate=2e-3, clip=5.0)


def load(path):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    corpus = stream_from_text(text, path=path, vocabulary_size=1000, level="char")
    train_ids, valid_ids = split_stream(corpus.ids, 0.1)
    return len(corpus.vocabulary), train_ids, valid_ids


def run_rnnlm(vocab, train_ids, valid_ids, seconds, seed=0):
    model = LanguageModel(vocab, HIDDEN, cell="lstm", embed_size=EMBED, bptt_truncate=None, seed=seed)
    config = TrainConfig(epochs=1000, time_limit=seconds, seed=seed, valid_fraction=0.0, **RNNLM)
    started = time.perf_counter()
    state = train_stream(model, train_ids, valid_ids[:0], config)
    trained = time.perf_counter() - started
    chars = sum(r.tokens for r in state.history)
    seconds_in_batches = sum(r.seconds for r in state.history)
    X, Y = valid_ids[:-1][None, :], valid_ids[1:][None, :]
    loss, _ = stream_total_loss(model, X, Y, 1024)
    return loss / Y.size, chars, chars / max(seconds_in_batches, 1e-9), trained


def run_torch(torch, vocab, train_ids, valid_ids, seconds, seed=0):
    nn = torch.nn
    torch.manual_seed(seed)

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(vocab, EMBED)
            self.lstm = nn.LSTM(EMBED, HIDDEN, batch_first=True)
            self.out = nn.Linear(HIDDEN, vocab)

        def forward(self, x, state):
            h, state = self.lstm(self.embed(x), state)
            return self.out(h), state

    model = Model()
    opt = torch.optim.Adam(model.parameters(), lr=TORCH["learning_rate"])
    B, T = TORCH["batch_size"], TORCH["seq_length"]
    L = (len(train_ids) - 1) // B
    X = torch.from_numpy(train_ids[:-1][:B * L].reshape(B, L).copy())
    Y = torch.from_numpy(train_ids[1:][:B * L].reshape(B, L).copy())
    chars, started, state, a = 0, time.perf_counter(), None, 0
    while time.perf_counter() - started < seconds:
        if a >= L:
            a, state = 0, None
        x, y = X[:, a:a + T], Y[:, a:a + T]
        logits, state = model(x, state)
        state = tuple(s.detach() for s in state)
        loss = nn.functional.cross_entropy(logits.reshape(-1, vocab), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), TORCH["clip"])
        opt.step()
        chars += y.numel()
        a += T
    trained = time.perf_counter() - started
    with torch.no_grad():
        x = torch.from_numpy(valid_ids[:-1][None, :].copy())
        y = torch.from_numpy(valid_ids[1:].copy())
        total, state = 0.0, None
        for s in range(0, x.shape[1], 1024):
            logits, state = model(x[:, s:s + 1024], state)
            total += float(nn.functional.cross_entropy(logits[0], y[s:s + 1024], reduction="sum"))
    return total / len(y), chars, chars / trained, trained


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=170.0, help="training budget of each model (default 170)")
    parser.add_argument("--data", default=DEFAULT_DATA, help="tinyshakespeare.txt")
    parser.add_argument("--threads", type=int, default=1, help="BLAS / torch threads each (default 1)")
    parser.add_argument("--skip-torch", action="store_true")
    args = parser.parse_args(argv)
    vocab, train_ids, valid_ids = load(args.data)
    print(f"tinyshakespeare: {len(train_ids):,} train / {len(valid_ids):,} valid characters, vocabulary {vocab}; "
          f"LSTM {HIDDEN}, embedding {EMBED}; {args.seconds:g} s each; {args.threads} BLAS/torch thread(s) each")
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    rows = []
    loss, chars, rate, took = run_rnnlm(vocab, train_ids, valid_ids, args.seconds)
    rows.append(("rnnlm stream LSTM", loss, chars, rate, took,
                 "B 128, T 32, Adam 0.01, clip 1"))
    try:
        import torch
    except ImportError:
        torch = None
    if torch is not None and not args.skip_torch:
        torch.set_num_threads(args.threads)
        loss, chars, rate, took = run_torch(torch, vocab, train_ids, valid_ids, args.seconds)
        rows.append((f"PyTorch {torch.__version__} nn.LSTM", loss, chars, rate, took,
                     "B 32, T 64, Adam 2e-3, clip 5"))
    print(f"load average after:  {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"{'model':<28} {'valid nats/char':>15} {'chars seen':>11} {'chars/s':>9}  settings")
    for name, loss, chars, rate, took, settings in rows:
        print(f"{name:<28} {loss:>15.3f} {chars:>11,} {rate:>9,.0f}  {settings}")
    if len(rows) == 2:
        print(f"rnnlm - PyTorch: {rows[0][1] - rows[1][1]:+.3f} nats/char; speed ratio {rows[0][3] / rows[1][3]:.2f}x "
              "(target: <= -0.03 and >= 1.5x)")
    print("reference: nanoGPT's documented CPU recipe, 1.898 nats/char on the full validation set in about 3 minutes here")


if __name__ == "__main__":
    main()

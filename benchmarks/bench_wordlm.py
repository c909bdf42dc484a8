"""rnnlm's LSTM against PyTorch's word_language_model on a word-level benchmark, at equal wall-clock time.

Run from the repository root on a directory holding train.txt, valid.txt and test.txt in the standard
format (Mikolov's PTB, WikiText-2: whitespace-separated tokens, <unk> for rare words, one sentence or
paragraph a line; see docs/training.md for where to fetch them):

    python benchmarks/bench_wordlm.py --data /path/to/ptb                 # 120 s per contender
    python benchmarks/bench_wordlm.py --data /path/to/ptb --seconds 60    # shorter
    python benchmarks/bench_wordlm.py --data /path/to/ptb --only rnnlm    # no torch

Contenders, one after the other, each for --seconds of training (evaluation not counted), each on one
BLAS / torch thread, all reading the same token ids (rnnlm's `--format tokens --stream` pipeline:
every whitespace token plus one <eos> per line, as word_language_model's `Corpus.tokenize`):

    rnnlm        LanguageModel 2 x 200 LSTM, embedding 200, dropout 0.2 (`rnnlm train --stream --format
                 tokens --cell lstm --layers 2 --hidden 200 --embed-size 200 --dropout 0.2`)
    rnnlm-tied   the same with --tie-weights
    torch        word_language_model's defaults, written inline below: nn.Embedding(C, 200) -> dropout ->
                 nn.LSTM(200, 200, 2, dropout=0.2) -> dropout -> nn.Linear(200, C), U(-0.1, 0.1) init

Shared protocol (word_language_model's main.py): batch 20 parallel streams, BPTT windows of 35 with the
state carried and detached, the loss the mean cross-entropy of the window, gradient norm clipped at
0.25, plain SGD at lr 20, divided by 4 whenever the validation loss does not improve. word_language_model
checks validation once an epoch; a short budget may not finish one, so here the check also runs every
--check-every seconds of training (default: a quarter of the budget) on the whole validation text.
Printed: the test perplexity (whole test text, one stream, as word_language_model's batch 10 would
read it nearly alike), training tokens per second, and the load average before and after.
This is a script, not a test.
"""

import argparse
import os
import sys
import time
from pathlib import Path

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_name] = "1"  # one BLAS thread each, set before NumPy loads

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rnnlm.models.language_model import LanguageModel  # noqa: E402
from rnnlm.nn.optim import SGD, clip_global_norm, scale_gradients  # noqa: E402
from rnnlm.training.stream import batchify, load_stream, stream_total_loss  # noqa: E402
from rnnlm.config import MAX_VOCABULARY_SIZE  # noqa: E402

SETTINGS = {"hidden": 200, "layers": 2, "embed": 200, "dropout": 0.2, "batch": 20, "bptt": 35, "lr": 20.0,
            "clip": 0.25, "anneal": 4.0}


def read_data(directory):
    """(train, valid, test) id arrays, the vocabulary built on train (closed: every word kept)."""
    directory = Path(directory)
    train = load_stream(directory / "train.txt", vocabulary_size=MAX_VOCABULARY_SIZE, format="tokens")
    vocab = train.vocabulary
    other = [load_stream(directory / f"{n}.txt", format="tokens", vocabulary=vocab).ids for n in ("valid", "test")]
    return train.ids, other[0], other[1], vocab


class Schedule:
    """word_language_model's rule: lr /= 4 when the validation loss did not improve on the best so far."""

    def __init__(self, lr):
        self.lr, self.best, self.checks = lr, None, []

    def check(self, valid_loss):
        self.checks.append((valid_loss, self.lr))
        if self.best is None or valid_loss < self.best:
            self.best = valid_loss
        else:
            self.lr /= SETTINGS["anneal"]


def timed_training(step, windows, valid_loss, seconds, check_every):
    """Run `step(window, lr)` over `windows` (restarting each epoch) for `seconds` of training time.

    Returns (tokens trained, training seconds, schedule). Validation checks are not timed.
    """
    schedule, trained, tokens, next_check = Schedule(SETTINGS["lr"]), 0.0, 0, check_every
    while trained < seconds:
        for window in windows():
            start = time.perf_counter()
            tokens += step(window, schedule.lr)
            trained += time.perf_counter() - start
            if trained >= next_check or trained >= seconds:
                schedule.check(valid_loss())
                next_check += check_every
            if trained >= seconds:
                break
        else:  # an epoch ended: word_language_model's check
            schedule.check(valid_loss())
    return tokens, trained, schedule


def run_rnnlm(data, vocab_size, seconds, check_every, tie):
    train, valid, test = data
    s = SETTINGS
    model = LanguageModel(vocab_size, s["hidden"], cell="lstm", num_layers=s["layers"], embed_size=s["embed"],
                          bptt_truncate=None, dropout=s["dropout"], tie_weights=tie, seed=1, threads=1)
    X, Y = batchify(train, s["batch"])
    state = {"h": None}

    def windows():
        state["h"] = model.start_state(s["batch"])
        return range(0, X.shape[1], s["bptt"])

    def step(a, lr):
        x, y = X[:, a:a + s["bptt"]], Y[:, a:a + s["bptt"]]
        loss, grads, state["h"] = model.window_total_loss_and_gradients(x, y, state["h"], sparse=True)
        grads, _ = clip_global_norm(scale_gradients(grads, 1.0 / x.size), s["clip"])
        SGD(lr).step(model.params, grads)
        return x.size

    def loss_of(ids):
        Xe, Ye = batchify(ids, 1)
        return stream_total_loss(model, Xe, Ye, 256)[0] / Xe.size

    tokens, trained, schedule = timed_training(step, windows, lambda: loss_of(valid), seconds, check_every)
    return {"tokens": tokens, "seconds": trained, "test_loss": loss_of(test), "schedule": schedule,
            "params": sum(p.size for p in model.params.values())}


def torch_model(torch, vocab_size):
    """word_language_model's RNNModel (LSTM, no tying), as its main.py builds it by default."""
    nn, s = torch.nn, SETTINGS

    class RNNModel(nn.Module):
        def __init__(self):
            super().__init__()
            self.drop = nn.Dropout(s["dropout"])
            self.encoder = nn.Embedding(vocab_size, s["embed"])
            self.rnn = nn.LSTM(s["embed"], s["hidden"], s["layers"], dropout=s["dropout"])
            self.decoder = nn.Linear(s["hidden"], vocab_size)
            nn.init.uniform_(self.encoder.weight, -0.1, 0.1)
            nn.init.zeros_(self.decoder.bias)
            nn.init.uniform_(self.decoder.weight, -0.1, 0.1)

        def forward(self, x, hidden):  # x (T, B): word_language_model is time-major
            output, hidden = self.rnn(self.drop(self.encoder(x)), hidden)
            return self.decoder(self.drop(output)), hidden

    return RNNModel()


def run_torch(data, vocab_size, seconds, check_every):
    import torch
    torch.set_num_threads(1)
    torch.manual_seed(1)
    train, valid, test = data
    s = SETTINGS
    model = torch_model(torch, vocab_size)
    X, Y = (torch.from_numpy(np.ascontiguousarray(a.T)) for a in batchify(train, s["batch"]))  # (L, B)
    zeros = lambda b: tuple(torch.zeros(s["layers"], b, s["hidden"]) for _ in range(2))  # noqa: E731
    state = {"h": None}
    criterion = torch.nn.CrossEntropyLoss()

    def windows():
        state["h"] = zeros(s["batch"])
        model.train()
        return range(0, X.shape[0], s["bptt"])

    def step(a, lr):
        model.train()
        x, y = X[a:a + s["bptt"]], Y[a:a + s["bptt"]]
        hidden = tuple(h.detach() for h in state["h"])
        model.zero_grad()
        output, state["h"] = model(x, hidden)
        criterion(output.reshape(-1, vocab_size), y.reshape(-1)).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), s["clip"])
        with torch.no_grad():
            for p in model.parameters():
                p.add_(p.grad, alpha=-lr)
        return x.numel()

    def loss_of(ids):
        model.eval()
        Xe, Ye = (torch.from_numpy(np.ascontiguousarray(a.T)) for a in batchify(ids, 1))
        total, hidden = 0.0, zeros(1)
        with torch.no_grad():
            for a in range(0, Xe.shape[0], 256):
                output, hidden = model(Xe[a:a + 256], hidden)
                total += float(torch.nn.functional.cross_entropy(output.reshape(-1, vocab_size),
                                                                 Ye[a:a + 256].reshape(-1), reduction="sum"))
        return total / Xe.numel()

    tokens, trained, schedule = timed_training(step, windows, lambda: loss_of(valid), seconds, check_every)
    return {"tokens": tokens, "seconds": trained, "test_loss": loss_of(test), "schedule": schedule,
            "params": sum(p.numel() for p in model.parameters())}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="directory with train.txt, valid.txt, test.txt")
    parser.add_argument("--seconds", type=float, default=120.0, help="training time per contender (default 120)")
    parser.add_argument("--check-every", type=float, help="seconds of training between validation checks "
                                                          "(default: a quarter of --seconds)")
    parser.add_argument("--only", nargs="+", choices=("rnnlm", "rnnlm-tied", "torch"),
                        default=("rnnlm", "rnnlm-tied", "torch"))
    args = parser.parse_args(argv)
    check_every = args.check_every or args.seconds / 4
    before = os.getloadavg()
    train, valid, test, vocab = read_data(args.data)
    print(f"data: {args.data}: {len(train):,} train, {len(valid):,} valid, {len(test):,} test tokens "
          f"(<eos> included), vocabulary {len(vocab):,}; {args.seconds:g} s of training each, one thread each")
    print(f"settings: {SETTINGS}")
    print(f"load average before: {before[0]:.2f} {before[1]:.2f} {before[2]:.2f} (1, 5, 15 min; "
          f"{os.cpu_count()} cores)")
    data, results = (train, valid, test), {}
    for name in args.only:
        if name == "torch":
            try:
                import torch  # noqa: F401
            except ImportError:
                print("torch: skipped (PyTorch is not installed)")
                continue
            results[name] = run_torch(data, len(vocab), args.seconds, check_every)
        else:
            results[name] = run_rnnlm(data, len(vocab), args.seconds, check_every, tie=name == "rnnlm-tied")
        r = results[name]
        checks = ", ".join(f"{np.exp(v):.1f}@lr{lr:g}" for v, lr in r["schedule"].checks)
        print(f"{name:11s} test perplexity {np.exp(r['test_loss']):8.2f}   {r['tokens'] / r['seconds']:8,.0f} "
              f"tokens/s   {r['tokens']:,} tokens in {r['seconds']:.1f} s   {r['params']:,} parameters   "
              f"valid checks: {checks}", flush=True)
    after = os.getloadavg()
    print(f"load average after: {after[0]:.2f} {after[1]:.2f} {after[2]:.2f}")
    if "rnnlm" in results and "torch" in results:
        ratio = np.exp(results["rnnlm"]["test_loss"] - results["torch"]["test_loss"])
        print(f"rnnlm / torch test perplexity: {ratio:.3f} (target: below 1)")
    if "rnnlm" in results and "rnnlm-tied" in results:
        ratio = np.exp(results["rnnlm-tied"]["test_loss"] - results["rnnlm"]["test_loss"])
        print(f"tied / untied test perplexity: {ratio:.3f} (target: 0.95 or below)")


if __name__ == "__main__":
    main()

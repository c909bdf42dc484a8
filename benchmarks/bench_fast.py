"""Training throughput: per-sentence reference vs FastRNN vs LanguageModel cells vs PyTorch CPU.

Run from the repository root:

    python benchmarks/bench_fast.py            # full run (a few minutes)
    python benchmarks/bench_fast.py --quick    # fewer repeats, no memory run
    python benchmarks/bench_fast.py --busy     # only the thread policy, quiet and beside a busy process
    python benchmarks/bench_fast.py --grid     # rnn/gru/lstm x H x batch x vocabulary vs PyTorch (--quick: a subset)

Every contender does the same work per batch: loss, gradients and one SGD update, on
batches of 64 sentences x 45 tokens with C = 8000 words and H = 100 hidden units, full
softmax unless the row says "class softmax". Rows: the GEMM-bound limit; the reference;
FastRNN (truncate 4, full BPTT, with the output layer's threads at the default 1 and at 0 = one per core);
FastRNN with the class-based softmax; every LanguageModel cell (embedding E = H, both
biases) against PyTorch's nn.RNN / nn.GRU / nn.LSTM of the same sizes (Jordan has none). The contenders are timed in interleaved rounds (A B C, A B C, ...) and the
medians reported, because a shared machine's speed drifts during a run. See
benchmarks/README.md for what the figures and targets mean. This is a script, not a test.
"""

import argparse
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rnnlm.config import TrainConfig  # noqa: E402
from rnnlm.models.fast import FastRNN  # noqa: E402
from rnnlm.models.language_model import LanguageModel  # noqa: E402
from rnnlm.nn.optim import SGD  # noqa: E402
from rnnlm.nn import threads as thread_policy  # noqa: E402
from rnnlm.nn.threads import resolve_threads  # noqa: E402
from rnnlm.models.reference import RNNNumpy  # noqa: E402
from rnnlm.training.loop import train  # noqa: E402
from rnnlm.training.stream import train_stream  # noqa: E402

C, H, BATCH, LENGTH = 8000, 100, 64, 45
FLOPS_PER_TOKEN = 3 * 2 * C * H  # logits, dV and dS: three C x H multiply-adds per token
LEARNING_RATE = 0.01
REDDIT_SAMPLE = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "reddit-comments-2015-08-sample.csv"


def environment_line():
    parts = [f"python {sys.version.split()[0]}", f"numpy {np.__version__}"]
    try:
        from threadpoolctl import threadpool_info
        parts += [f"BLAS {p['internal_api']} {p.get('version')} threads={p['num_threads']}" for p in threadpool_info()]
    except ImportError:
        blas = np.show_config(mode="dicts").get("Build Dependencies", {}).get("blas", {})
        parts.append(f"BLAS {blas.get('name', '?')} {blas.get('version', '')} (threadpoolctl not installed; "
                     f"{os.cpu_count()} CPUs)")
    for var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
        if var in os.environ:
            parts.append(f"{var}={os.environ[var]}")
    torch = optional_torch()
    parts.append(f"torch {torch.__version__} threads={torch.get_num_threads()}" if torch else "torch not installed")
    return "environment: " + ", ".join(parts)


def optional_torch():
    try:
        import torch
        return torch
    except ImportError:
        return None


def make_batch(rng):
    """64 sentences of 45 words drawn with Zipf's law (P(word i) ~ 1/(i + 1)), like text.

    Only the class-based softmax cares: its cost per token depends on the size of the target's
    class, and with frequency-binned classes frequent words sit in small ones. (Uniformly drawn
    words would make every token a rare word.)
    """
    p = 1.0 / np.arange(1, C + 1)
    p /= p.sum()
    X = [rng.choice(C, LENGTH, p=p) for _ in range(BATCH)]
    Y = [rng.choice(C, LENGTH, p=p) for _ in range(BATCH)]
    return X, Y


# ------------------------------------------------------------------------ contenders
# Each is a function run(rounds) -> tokens processed, doing `rounds` units of training work.

def gemm_contender():
    """The three output-layer products of one batch, alone: the GEMM-bound limit of any implementation."""
    rng = np.random.default_rng(0)
    M = BATCH * LENGTH
    S = rng.standard_normal((M, H)).astype(np.float32)
    V = rng.standard_normal((C, H)).astype(np.float32)
    logits = np.empty((M, C), np.float32)

    def run(rounds):
        for _ in range(rounds):
            np.matmul(S, V.T, out=logits)
            _ = logits.T @ S
            _ = logits @ V
        return rounds * M
    return run


def reference_contender(X, Y):
    model = RNNNumpy(C, H, bptt_truncate=4, seed=0)

    def run(rounds):
        for i in range(rounds):
            model.sgd_step(X[i % len(X)], Y[i % len(Y)], LEARNING_RATE)
        return rounds * LENGTH
    return run


def fast_contender(X, Y, truncate, threads=None, **options):
    model = FastRNN(C, H, bptt_truncate=truncate, seed=0, threads=threads, **options)
    optimizer = SGD(LEARNING_RATE)
    return minibatch_runner(model, optimizer, X, Y)


def minibatch_runner(model, optimizer, X, Y):
    tokens = sum(len(y) for y in Y)

    def run(rounds):
        for _ in range(rounds):
            _, grads = model.total_loss_and_gradients(X, Y, sparse=True)
            grads = {k: (g.scaled(1.0 / tokens) if hasattr(g, "scaled") else g / tokens) for k, g in grads.items()}
            optimizer.step(model.params, grads)
        return rounds * tokens
    return run


def torch_contender(torch, X, Y, cell="rnn", bias=False):
    """PyTorch CPU: nn.Embedding -> nn.RNN/GRU/LSTM -> nn.Linear -> cross_entropy, full BPTT."""
    torch.manual_seed(0)
    embedding = torch.nn.Embedding(C, H)
    recurrent = {"rnn": torch.nn.RNN, "gru": torch.nn.GRU, "lstm": torch.nn.LSTM}[cell]
    rnn = recurrent(H, H, bias=bias, batch_first=True)
    output = torch.nn.Linear(H, C, bias=bias)
    parameters = [*embedding.parameters(), *rnn.parameters(), *output.parameters()]
    optimizer = torch.optim.SGD(parameters, lr=LEARNING_RATE)
    x = torch.as_tensor(np.stack(X))
    y = torch.as_tensor(np.stack(Y)).reshape(-1)

    def run(rounds):
        for _ in range(rounds):
            optimizer.zero_grad()
            hidden, _ = rnn(embedding(x))
            loss = torch.nn.functional.cross_entropy(output(hidden).reshape(-1, C), y)
            loss.backward()
            optimizer.step()
        return rounds * x.numel()
    return run


def cell_contenders(X, Y, torch):
    """LanguageModel per cell (full BPTT, both biases, E = H) and PyTorch's counterpart where it has one.

    bptt_truncate=None: PyTorch's backward is full BPTT, and LanguageModel's default (the tutorial's 4)
    is a different gradient that costs one more product of the batch per step of truncation.
    """
    contenders = {}
    for cell in ("rnn", "gru", "lstm", "jordan"):
        model = LanguageModel(C, H, cell=cell, seed=0, dtype=np.float32, bptt_truncate=None)
        contenders[f"LanguageModel({cell})"] = minibatch_runner(model, SGD(LEARNING_RATE), X, Y)
        if torch is not None and cell != "jordan":
            contenders[f"PyTorch nn.{cell.upper()}"] = torch_contender(torch, X, Y, cell, bias=True)
    return contenders


def interleaved(contenders, repeats, seconds_per_round, pause=0.5):
    """Time each contender `repeats` times, round-robin; returns {name: [tokens/s, ...]}.

    Each contender first runs once (warm-up, and to size its rounds to ~seconds_per_round).
    """
    units = {}
    for name, run in contenders.items():
        started = time.perf_counter()
        run(1)
        units[name] = max(1, int(round(seconds_per_round / max(time.perf_counter() - started, 1e-6))))
    rates = {name: [] for name in contenders}
    for _ in range(repeats):
        for name, run in contenders.items():
            # OpenBLAS and PyTorch's OpenMP threads busy-wait for a while after their last job;
            # let them go to sleep first, or the next contender shares its cores with spinners
            time.sleep(pause)
            started = time.perf_counter()
            tokens = run(units[name])
            rates[name].append(tokens / (time.perf_counter() - started))
    return rates


# ------------------------------------------------------------------------ extra figures

def reddit_epoch_line():
    if not REDDIT_SAMPLE.is_file():
        return f"reddit sample epoch: skipped, {REDDIT_SAMPLE} not found"
    try:
        from rnnlm.data.corpus import load_corpus
    except ImportError as error:
        return f"reddit sample epoch: skipped, data pipeline not importable ({error})"
    corpus = load_corpus(REDDIT_SAMPLE, vocabulary_size=C)
    model = FastRNN(len(corpus.vocabulary), H, bptt_truncate=4, seed=0)
    # the tutorial's plain SGD (the training default is Adam at 0.01, at which a rate of 0.5 diverges)
    config = TrainConfig(epochs=1, learning_rate=0.5, optimizer="sgd", batch_size=BATCH, valid_fraction=0.0)
    record = train(model, corpus.X, corpus.Y, config).history[0]
    return (f"reddit sample epoch: {record.seconds:.2f} s for {len(corpus.X)} sentences, {record.tokens} tokens "
            f"(C = {len(corpus.vocabulary)}, H = {H}, batch {BATCH}, truncate 4; "
            f"{record.tokens_per_second:,.0f} tokens/s; per-word loss {record.train_loss:.3f})")


def peak_resident_mib():
    """This process's peak resident memory. VmHWM, because ru_maxrss survives exec and so
    would report the parent's peak in a child started by subprocess."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


class _Stop(Exception):
    pass


def memory_line(batches=40):
    """Peak resident memory while training a Reddit-sized corpus (80,000 sentences) and evaluating 8,000."""
    rng = np.random.default_rng(1)
    lengths = np.clip(rng.geometric(1 / 22, 80_000), 1, 200)
    X = [rng.integers(0, C, n) for n in lengths]
    Y = [rng.integers(0, C, n) for n in lengths]
    model = FastRNN(C, H, seed=0)

    def stop_early(event):
        if event.kind == "batch" and event.batch + 1 >= batches:
            raise _Stop

    try:
        train(model, X, Y, TrainConfig(epochs=1, batch_size=BATCH, valid_fraction=0.0), callback=stop_early)
    except _Stop:
        pass
    model.total_loss(X[:8000], Y[:8000], batch_size=BATCH)
    peak_mib = peak_resident_mib()
    return (f"memory: peak resident {peak_mib:,.0f} MiB in a fresh process (no torch) training on a Reddit-sized "
            f"corpus (80,000 sentences, {int(lengths.sum()):,} tokens, C = {C}, H = {H}, batch {BATCH}; {batches} "
            f"batches) and evaluating the loss over 8,000 sentences; target < 1024 MiB")


def memory_line_in_fresh_process():
    # a process of its own, so the peak counts FastRNN's training and not this run's torch or other contenders
    done = subprocess.run([sys.executable, __file__, "--memory-only"], capture_output=True, text=True)
    return done.stdout.strip() or f"memory: measurement failed: {done.stderr.strip().splitlines()[-1:]}"


# ------------------------------------------------------------------------ --busy: the thread policy under load

BUSY_CONFIGS = {  # name -> (model threads, rnnlm.nn.threads.BLAS_THREADS); the first is the default
    "default": (None, 1),
    "1 BLAS thread": (1, 1),  # the plain loop, what OPENBLAS_NUM_THREADS=1 used to give
    "threads 0": (0, 1),  # one output-layer worker per core
    "BLAS's own threads": (1, None),  # the old default, for comparison only (not in the best-of)
}
BEST_OF = ("default", "1 BLAS thread", "threads 0")
STREAM_VOCABULARY, STREAM_HIDDEN, STREAM_EMBED, STREAM_BATCH, STREAM_WINDOW = 65, 256, 64, 128, 32


def with_blas_threads(run, blas):
    """`run` with rnnlm.nn.threads.BLAS_THREADS set to `blas` while it runs (None: BLAS's own threads)."""
    def wrapped(rounds):
        saved, thread_policy.BLAS_THREADS = thread_policy.BLAS_THREADS, blas
        try:
            return run(rounds)
        finally:
            thread_policy.BLAS_THREADS = saved
    return wrapped


def stream_runner(threads):
    """Stream training as `rnnlm train --stream --level char --cell lstm` runs it (README): a char LSTM,
    train_stream over `rounds` windows of 128 streams x 32 characters, Adam."""
    model = LanguageModel(STREAM_VOCABULARY, STREAM_HIDDEN, cell="lstm", embed_size=STREAM_EMBED, seed=0,
                          threads=threads)
    ids = np.random.default_rng(0).integers(0, STREAM_VOCABULARY, STREAM_BATCH * (64 * STREAM_WINDOW + 1))

    def run(rounds):
        length = STREAM_BATCH * (rounds * STREAM_WINDOW + 1)
        config = TrainConfig(epochs=1, batch_size=STREAM_BATCH, seq_length=STREAM_WINDOW, optimizer="adam",
                             learning_rate=0.002, valid_fraction=0.0)
        train_stream(model, np.resize(ids, length), ids[:0], config)
        return rounds * STREAM_BATCH * STREAM_WINDOW
    return run


def busy_workloads(X, Y):
    """{workload: {config: run}} for FastRNN, LanguageModel (rnn, gru, lstm), the class softmax and stream training."""
    def minibatch(make):
        return {name: with_blas_threads(minibatch_runner(make(threads), SGD(LEARNING_RATE), X, Y), blas)
                for name, (threads, blas) in BUSY_CONFIGS.items()}
    workloads = {"FastRNN, full BPTT": minibatch(lambda t: FastRNN(C, H, bptt_truncate=None, seed=0, threads=t))}
    for cell in ("rnn", "gru", "lstm"):
        workloads[f"LanguageModel({cell})"] = minibatch(
            lambda t, cell=cell: LanguageModel(C, H, cell=cell, seed=0, dtype=np.float32, threads=t))
    workloads[f"FastRNN, class softmax K={round(C ** 0.5)}"] = minibatch(
        lambda t: FastRNN(C, H, bptt_truncate=None, seed=0, softmax="class", threads=t))
    workloads[f"stream, char LSTM {STREAM_HIDDEN}, {STREAM_BATCH} x {STREAM_WINDOW}"] = {
        name: with_blas_threads(stream_runner(threads), blas) for name, (threads, blas) in BUSY_CONFIGS.items()}
    return workloads


def default_workers():
    """The output-layer workers the default (automatic) resolves to, per workload, in the order of `busy_workloads`."""
    full = resolve_threads(None, work=BATCH * LENGTH * C * H)
    stream = resolve_threads(None, work=STREAM_BATCH * STREAM_WINDOW * STREAM_VOCABULARY * STREAM_HIDDEN)
    return [full] * 4 + [1, stream]  # the class softmax: the plain loop


def load_line(when):
    one, five, fifteen = os.getloadavg()
    return f"load {when}: {one:.2f} {five:.2f} {fifteen:.2f} (1, 5, 15 min) on {os.cpu_count()} CPUs"


def rotated(contenders, repeats, seconds):
    """`interleaved`, with the order rotated every round (A B C, B C A, ...), so no contender always runs first."""
    names = list(contenders)
    rates = {name: [] for name in names}
    for k in range(repeats):
        order = names[k % len(names):] + names[:k % len(names)]
        for name, r in interleaved({n: contenders[n] for n in order}, 1, seconds).items():
            rates[name] += r
    return rates


def policy_table(workloads, repeats, seconds):
    """Medians of interleaved rounds per workload; prints one row each and returns the worst default/best."""
    names = list(BUSY_CONFIGS)
    print(f"{'workload (tokens/s, median)':<40} " + " ".join(f"{n:>18}" for n in names) +
          f" {'default/best':>13} {'(best rounds)':>13}  default's workers")
    worst = float("inf")
    for (workload, contenders), workers in zip(workloads.items(), default_workers()):
        rates = rotated({n: contenders[n] for n in BEST_OF}, repeats, seconds)
        # the old default apart, afterwards: its spinning OpenBLAS threads would slow whichever contender ran next
        rates.update(interleaved({n: run for n, run in contenders.items() if n not in BEST_OF}, repeats, seconds))
        median = {name: float(np.median(r)) for name, r in rates.items()}
        fraction = median["default"] / max(median[n] for n in BEST_OF)
        best_rounds = max(rates["default"]) / max(max(rates[n]) for n in BEST_OF)
        worst = min(worst, fraction)
        print(f"{workload:<40} " + " ".join(f"{median[n]:>18,.0f}" for n in names) +
              f" {fraction:>12.0%} {best_rounds:>13.0%}  {workers}")
    return worst


def busy_main(repeats, seconds):
    """The thread policy's check: the default's tokens/s as a fraction of the best configuration, quiet and
    with one competing busy process (`python -c "while True: pass"`). Target: >= 90% in both."""
    print(environment_line())
    print(f"policy: BLAS threads inside rnnlm's work {thread_policy.BLAS_THREADS}; output-layer workers: default "
          f"automatic (one per core from {thread_policy.AUTO_MIN_WORK:,} multiply-adds per product), threads 0 = "
          f"{resolve_threads(0)}; \"BLAS's own threads\" is the old default (plain loop, BLAS untouched), not in the best-of")
    print(f"setup: C = {C}, H = {H}, batch {BATCH} x {LENGTH}, float32, loss + gradients + SGD update; stream: vocabulary "
          f"{STREAM_VOCABULARY}, LSTM {STREAM_HIDDEN}, embedding {STREAM_EMBED}, Adam; median of {repeats} interleaved rounds")
    workloads = busy_workloads(*make_batch(np.random.default_rng(0)))
    results = {}
    for condition in ("quiet", "busy"):
        competitor = None
        if condition == "busy":
            competitor = subprocess.Popen([sys.executable, "-c", "while True: pass"])
            time.sleep(1.0)
        try:
            print(f"--- {condition}" + (f" (one competing process, pid {competitor.pid})" if competitor else ""))
            print(load_line("before"))
            results[condition] = policy_table(workloads, repeats, seconds)
            print(load_line("after"))
        finally:
            if competitor is not None:
                competitor.kill()
                competitor.wait()
    print("default / best of {" + ", ".join(BEST_OF) + "}, worst workload: " +
          ", ".join(f"{c} {f:.0%}" for c, f in results.items()) + "; target >= 90% in both")


# ------------------------------------------------------------------------ main

# ------------------------------------------------------------------------ --grid: shapes other than the tutorial's

GRID_CELLS = ("rnn", "gru", "lstm")
GRID_HIDDEN = (100, 256, 512)
GRID_BATCH = {32: 64, 128: 32}  # batch -> window length T (as in stream training: B x T tokens per window)
GRID_VOCAB = (65, 8000)  # characters (embedding 64) and words (embedding = H)


def grid_shapes(quick=False):
    """(cell, H, B, T, C, E) of the grid; quick: lstm at every H, gru/rnn at H = 256, B = 128 and C = 8000 once each."""
    if quick:
        return [("lstm", h, 32, 64, 65, 64) for h in GRID_HIDDEN] + [
            (cell, 256, 32, 64, 65, 64) for cell in ("gru", "rnn")] + [
            ("lstm", 256, 128, 32, 65, 64), ("lstm", 100, 32, 64, 8000, 100)]
    return [(cell, h, b, t, c, 64 if c == 65 else h)
            for cell in GRID_CELLS for h in GRID_HIDDEN for b, t in GRID_BATCH.items() for c in GRID_VOCAB]


def grid_window(rng, C, B, T):
    X = rng.integers(0, C, (B, T))
    Y = rng.integers(0, C, (B, T))
    return X, Y


def grid_ours(cell, H, C, E, X, Y, threads=None):
    """LanguageModel `window_total_loss_and_gradients` on one (B, T) window, zero start state, full BPTT.

    bptt_truncate=None, as stream training uses it: the gradient PyTorch's backward computes. (The
    tutorial's truncation, each output's error carried back only 4 steps, is a different gradient
    that costs one extra product over the window per step of truncation.) threads: the output layer's
    workers (None: the automatic default, which runs 2 on this machine for the C = 8000 layers).
    """
    model = LanguageModel(C, H, cell=cell, embed_size=E, seed=0, dtype=np.float32, bptt_truncate=None,
                          threads=threads)
    state = model.start_state(len(X))

    def run(rounds):
        for _ in range(rounds):
            model.window_total_loss_and_gradients(X, Y, state)
        return rounds * X.size
    return run


def grid_products(cell, H, C, E, B, T):
    """Only the matrix products of one `grid_ours` window, in NumPy, at their shapes: a floor for rnnlm.

    G = gates x H (1, 3, 4 for rnn, gru, lstm), M = B T tokens: the input projection (M, E)(E, G) and
    its two backward products, the recurrence (B, H)(H, G) and its backward (B, G)(G, H) at each of the
    T steps, dW_hh (H, M)(M, G), and the output layer (M, H)(H, C) with its two backward products.
    When PyTorch's whole forward + backward is faster than these products alone, no rearrangement of
    rnnlm's elementwise work reaches PyTorch at that shape with this BLAS.
    """
    G = {"rnn": 1, "gru": 3, "lstm": 4}[cell] * H
    M = B * T
    rng = np.random.default_rng(0)

    def m(*shape):
        return rng.standard_normal(shape).astype(np.float32) * 0.1
    x, W_ih, da, h, W, W_T, step = m(M, E), m(E, G), m(M, G), m(M, H), m(H, G), m(G, H), m(B, G)
    h_step, carry, W_out, dlogits = m(B, H), m(B, H), m(H, C), m(M, C)

    def run(rounds):
        for _ in range(rounds):
            x @ W_ih, x.T @ da, da @ W_ih.T, h.T @ da
            for _ in range(T):
                np.matmul(h_step, W, out=step)
                np.matmul(step, W_T, out=carry)
            h @ W_out, h.T @ dlogits, dlogits @ W_out.T
        return rounds * M
    return run


def grid_torch(torch, cell, H, C, E, X, Y):
    """nn.Embedding -> nn.RNN/GRU/LSTM -> nn.Linear -> cross_entropy (summed), forward + backward."""
    torch.manual_seed(0)
    embedding = torch.nn.Embedding(C, E)
    rnn = {"rnn": torch.nn.RNN, "gru": torch.nn.GRU, "lstm": torch.nn.LSTM}[cell](E, H, batch_first=True)
    output = torch.nn.Linear(H, C)
    parameters = [*embedding.parameters(), *rnn.parameters(), *output.parameters()]
    x = torch.as_tensor(X)
    y = torch.as_tensor(Y).reshape(-1)

    def run(rounds):
        for _ in range(rounds):
            for q in parameters:
                q.grad = None
            hidden, _ = rnn(embedding(x))
            loss = torch.nn.functional.cross_entropy(output(hidden).reshape(-1, C), y, reduction="sum")
            loss.backward()
        return rounds * x.numel()
    return run


def grid_table(torch, quick=False, repeats=None, seconds=None, thread_settings=("1", "default")):
    """Print, per thread setting, one row per shape: rnnlm and torch tokens/s (medians of interleaved rounds)."""
    from threadpoolctl import threadpool_limits
    repeats = repeats or (3 if quick else 5)
    seconds = seconds or (0.2 if quick else 0.4)
    default_torch_threads = torch.get_num_threads()
    print(f"grid: LanguageModel.window_total_loss_and_gradients (full BPTT) vs PyTorch layer forward+backward; median of {repeats} "
          f"interleaved rounds of ~{seconds} s; embedding 64 for C = 65, E = H for C = 8000")
    for setting in thread_settings:
        print(f"\nthreads: {setting} (BLAS, rnnlm's output-layer workers and torch)")
        print(f"{'cell':<5} {'H':>4} {'B x T':>8} {'C':>5} {'E':>4} {'rnnlm tok/s':>12} {'torch tok/s':>12} "
              f"{'ratio':>6} {'products':>9}")
        for cell, H, B, T, C, E in grid_shapes(quick):
            X, Y = grid_window(np.random.default_rng(0), C, B, T)
            ours = grid_ours(cell, H, C, E, X, Y, threads=1 if setting == "1" else None)
            contenders = {"ours": ours, "torch": grid_torch(torch, cell, H, C, E, X, Y),
                          "products": grid_products(cell, H, C, E, B, T)}
            limits = threadpool_limits(1, "blas") if setting == "1" else threadpool_limits(None)
            torch.set_num_threads(1 if setting == "1" else default_torch_threads)
            with limits:
                rates = interleaved(contenders, repeats, seconds, pause=0.05 if setting == "1" else 0.5)
            ours, theirs, floor = (float(np.median(rates[k])) for k in ("ours", "torch", "products"))
            print(f"{cell:<5} {H:>4} {f'{B}x{T}':>8} {C:>5} {E:>4} {ours:>12,.0f} {theirs:>12,.0f} "
                  f"{ours / theirs:>5.2f}x {floor / theirs:>8.2f}x", flush=True)
    print("\nproducts: NumPy's matrix products of one window alone (`grid_products`), tokens/s as a multiple of "
          "PyTorch's;\nbelow 1.00x even the products alone are slower than PyTorch's whole step at that shape")
    torch.set_num_threads(default_torch_threads)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 rounds of ~0.3 s each, no memory run")
    parser.add_argument("--repeats", type=int, default=None, help="interleaved rounds (default 5, quick 3)")
    parser.add_argument("--memory-only", action="store_true", help="only the peak-memory measurement")
    parser.add_argument("--busy", action="store_true", help="only the thread policy's check, quiet and with a busy competitor")
    parser.add_argument("--grid", action="store_true", help="rnn/gru/lstm x H x batch x vocabulary against "
                        "PyTorch, one BLAS thread and the default (with --quick: a subset)")
    parser.add_argument("--grid-threads", choices=("1", "default", "both"), default="both",
                        help="which thread settings --grid measures")
    args = parser.parse_args(argv)
    if args.grid:
        torch = optional_torch()
        if torch is None:
            print("--grid: PyTorch not installed, nothing to compare against; skipped")
            return
        settings = ("1", "default") if args.grid_threads == "both" else (args.grid_threads,)
        print(environment_line())
        grid_table(torch, args.quick, args.repeats, thread_settings=settings)
        return
    if args.memory_only:
        print(memory_line())
        return
    repeats = args.repeats or (3 if args.quick else 5)
    seconds = 0.3 if args.quick else 0.6
    if args.busy:
        busy_main(repeats, seconds)
        return
    threads = resolve_threads(0)

    print(environment_line())
    print(f"load: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f} (1, 5, 15 min) on "
          f"{os.cpu_count()} CPUs; BLAS 1 thread inside rnnlm; output-layer workers: default automatic, "
          f"threads 0 = {threads}")
    print(f"setup: C = {C}, H = {H}, batch {BATCH} x {LENGTH} tokens, full softmax unless marked, float32 "
          f"(reference float64, per sentence); loss + gradients + SGD update; median of {repeats} interleaved rounds")
    rng = np.random.default_rng(0)
    X, Y = make_batch(rng)
    torch = optional_torch()
    classes = round(C ** 0.5)
    contenders = {
        "float32 GEMM (3 output products)": gemm_contender(),
        "reference RNNNumpy, truncate 4": reference_contender(X, Y),
        "FastRNN, truncate 4": fast_contender(X, Y, 4),
        "FastRNN, full BPTT": fast_contender(X, Y, None),
        "FastRNN, full BPTT, threads 0 (one per core)": fast_contender(X, Y, None, threads=0),
        f"FastRNN, full BPTT, class softmax K={classes}": fast_contender(X, Y, None, softmax="class"),
    }
    if torch is not None:
        contenders["PyTorch CPU, full BPTT"] = torch_contender(torch, X, Y)
    contenders.update(cell_contenders(X, Y, torch))
    rates = interleaved(contenders, repeats, seconds)
    median = {name: float(np.median(r)) for name, r in rates.items()}

    gemm_rate = median.pop("float32 GEMM (3 output products)")  # tokens/s
    print(f"float32 GEMM: {gemm_rate * FLOPS_PER_TOKEN / 1e9:.1f} GFLOP/s on the model's shapes "
          f"-> GEMM-bound limit {gemm_rate:,.0f} tokens/s ({FLOPS_PER_TOKEN / 1e6:.1f} MFLOP per token)")
    print(f"{'contender':<44} {'tokens/s':>10}   {'min..max':>19}")
    for name, r in rates.items():
        if name in median:
            print(f"{name:<44} {median[name]:>10,.0f}   {min(r):>8,.0f}..{max(r):<8,.0f}")
    fast4, fast_full = median["FastRNN, truncate 4"], median["FastRNN, full BPTT"]

    def ratio(ours, theirs, target=None):
        """Ratio of the medians, and of the best rounds (the least disturbed by other work on the machine)."""
        text = f"{median[ours] / median[theirs]:.2f}x (best rounds {max(rates[ours]) / max(rates[theirs]):.2f}x)"
        return f"  {ours} / {theirs}: {text}" + (f"; target >= {target}x" if target else "")

    print("ratios (measured in this one run):")
    print(ratio("FastRNN, truncate 4", "reference RNNNumpy, truncate 4", 50))
    if torch is not None:
        print(ratio("FastRNN, full BPTT", "PyTorch CPU, full BPTT", 2.0))
        print(ratio("FastRNN, truncate 4", "PyTorch CPU, full BPTT"))
        for cell in ("rnn", "gru", "lstm"):
            print(ratio(f"LanguageModel({cell})", f"PyTorch nn.{cell.upper()}", 1.8))
    else:
        print("  PyTorch not installed: no PyTorch comparison")
    print(ratio("FastRNN, full BPTT, threads 0 (one per core)", "FastRNN, full BPTT") + f" ({threads} workers)")
    print(ratio(f"FastRNN, full BPTT, class softmax K={classes}", "FastRNN, full BPTT", 8))
    print(f"  fraction of the GEMM-bound limit: FastRNN full BPTT {fast_full / gemm_rate:.0%}, "
          f"truncate 4 {fast4 / gemm_rate:.0%}; " + ", ".join(
              f"LanguageModel({cell}) {median[f'LanguageModel({cell})'] / gemm_rate:.0%}"
              for cell in ("rnn", "gru", "lstm", "jordan")))
    print(reddit_epoch_line())
    if not args.quick:
        print(memory_line_in_fresh_process())


if __name__ == "__main__":
    main()

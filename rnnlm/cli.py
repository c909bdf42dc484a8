"""The `rnnlm` command: train, evaluate, generate, gradcheck, export, download.

The only module that prints or exits. Every `RnnlmError` (and any OSError about a file)
becomes one line `rnnlm: error: <message>` on stderr and exit code 2, with no traceback;
so do argparse's usage errors. Ctrl-C during training keeps the last finished epoch's
checkpoint and exits 130. Option names carry the field names of the config dataclasses
(`--hidden` sets `ModelConfig.hidden_size`), and every default comes from those
dataclasses (or `GenerateConfig`): nothing here repeats a default value.
"""

import argparse
import importlib
import math
import sys
import time
from dataclasses import fields, replace
from pathlib import Path

import numpy as np

from . import __version__
from . import checkpoint as ckpt
from .config import CELLS, FORMATS, LEVELS, OPTIMIZERS, SOFTMAXES, ComputeConfig, DataConfig, ModelConfig, TrainConfig
from .errors import ConfigError, DataError, ModelFileError, RnnlmError
from .generate import GenerateConfig, detokenize, generate_sentence, tokenize_prefix, unknown_tokens
from .numerics import perplexity

# the module, not the function `rnnlm.train` that the package namespace exports under the same name
training = importlib.import_module(".train", __package__)

PROG = "rnnlm"
EXIT_ERROR = 2
EXIT_INTERRUPTED = 130
FULL_BPTT = "full"
GRADCHECK_SEED = 10  # the tutorial's np.random.seed(10) before its gradient check


def _default(cls, name):
    return next(f.default for f in fields(cls) if f.name == name)


def _d(cls, name):
    """' (default: X)' for help texts, X read from the dataclass."""
    return f" (default: {_default(cls, name)})"


def _fields(args, cls):
    """The options of `cls` the user actually gave (argparse defaults are None; `--bptt-truncate full` is None too)."""
    given = {f.name: getattr(args, f.name) for f in fields(cls) if getattr(args, f.name, None) is not None}
    if given.get("bptt_truncate") == FULL_BPTT:
        given["bptt_truncate"] = None
    return given


def _threads(args):
    """--threads, validated by `ComputeConfig` (0 or absent: one worker per core)."""
    return ComputeConfig(**_fields(args, ComputeConfig)).threads


def _add_threads_option(parser):
    parser.add_argument("--threads", type=int, metavar="N",
                        help="worker threads for the output layer; 1 = a single loop (BLAS uses every core), 0 = one per core"
                             + _d(ComputeConfig, "threads"))


def _truncation(text):
    """--bptt-truncate: a number of steps, or 'full' for no truncation."""
    if text.strip().lower() in (FULL_BPTT, "none"):
        return FULL_BPTT
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of steps or 'full', got {text!r}") from None


class _Formatter(argparse.RawDescriptionHelpFormatter):
    pass


class _Parser(argparse.ArgumentParser):
    """argparse, with usage errors as the same single line as every other error (still exit 2)."""

    def error(self, message):
        self.exit(EXIT_ERROR, f"{PROG}: error: {_one_line(message)}; see '{self.prog} --help'\n")


# --------------------------------------------------------------------- progress

def _tqdm():
    try:
        from tqdm import tqdm
        return tqdm
    except ImportError:  # tqdm is optional: fall back to a plain line per epoch
        return None


class _TrainingProgress:
    """Turns `train`'s events into a tqdm bar (stderr) and one result line per epoch (stdout)."""

    def __init__(self, show_bar, on_epoch):
        self.tqdm = _tqdm() if show_bar else None
        self.bar = None
        self.on_epoch = on_epoch
        self.tokens = 0
        self.started = None

    def __call__(self, event):
        if event.kind == "batch":
            if self.bar is None and self.tqdm is not None:
                self.bar = self.tqdm(total=event.num_batches, desc=f"epoch {event.epoch}/{event.epochs}",
                                     unit="batch", file=sys.stderr, leave=False, dynamic_ncols=True)
            if self.started is None:
                self.started, self.tokens = time.perf_counter() - event.tokens / event.tokens_per_second, 0
            self.tokens += event.tokens
            if self.bar is not None:
                rate = self.tokens / max(time.perf_counter() - self.started, 1e-9)
                last = event.batch + 1 == event.num_batches
                self.bar.set_postfix_str(f"loss {event.loss:.3f}, {rate:,.0f} tokens/s", refresh=last)
                self.bar.update(1)
        elif event.kind == "epoch":
            self.close()
            self.on_epoch(event)

    def close(self):
        if self.bar is not None:
            self.bar.close()
        self.bar, self.started = None, None


def _download_progress(show):
    tqdm = _tqdm() if show else None
    if tqdm is None:
        return None, lambda: None
    bars = []  # made at the first byte, so a failed connection prints no empty bar

    def update(done, total):
        if not bars:
            bars.append(tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, file=sys.stderr,
                             desc="downloading"))
        bars[0].update(done - bars[0].n)

    return update, lambda: bars and bars[0].close()


# --------------------------------------------------------------------- train

def _check_out(path, option="--out", example="model.npz"):
    out = Path(path)
    if out.is_dir():
        raise DataError(f"{option} {out} is a directory; give a file name such as {out / example}")
    ckpt.ensure_file_writable(out)


def _describe(model_config, level):
    c = model_config
    name = "FastRNN (the tutorial's Elman RNN)" if ckpt.model_kind(c) == "fast-rnn" else f"LanguageModel ({c.cell})"
    extra = f", {c.num_layers} layers" if c.num_layers > 1 else ""
    extra += f", embedding {c.embed_size}" if c.embed_size else ""
    extra += ", peephole" if c.peephole else ""
    extra += ", coupled gates" if c.coupled_gates else ""
    extra += f", class softmax ({c.classes} classes)" if c.softmax == "class" else ""
    return (f"{name}, {level} level, vocabulary {c.vocab_size}, hidden {c.hidden_size}{extra}, "
            f"bptt_truncate {c.bptt_truncate}")


def _loss_text(label, loss):
    """'train loss 4.1234 (perplexity 61.8)', compact when training has blown up."""
    ppl = perplexity(loss)
    if ppl < 1e6:
        return f"{label} loss {loss:.4f} (perplexity {ppl:.1f})"
    return f"{label} loss {loss:.4g} (perplexity {ppl:.3g})"


def _resume_configs(args, checkpoint):
    """Configs for a resumed run: the file's, with the training options the user gave on top."""
    given_model = _fields(args, ModelConfig)
    given_data = _fields(args, DataConfig)
    stored = {**checkpoint.model.config.to_dict(), "level": checkpoint.level,
              "vocabulary_size": len(checkpoint.vocabulary)}
    for name, value in {**given_model, **given_data}.items():
        if name in stored and name != "format" and stored[name] != value:
            raise ConfigError(f"{checkpoint.path} was trained with {name} {stored[name]!r}, not {value!r}; "
                              "a resumed model keeps its shape and vocabulary (drop the option, or train a new model)")
    base = checkpoint.train_config or TrainConfig()
    train_config = replace(base, **_fields(args, TrainConfig))
    if args.no_clip:
        train_config = replace(train_config, clip=None)
    data_config = replace(checkpoint.data_config, **{k: v for k, v in given_data.items() if k == "format"})
    return data_config, checkpoint.model.config, train_config


def _plot(path, history, vocab_size):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    epochs = [r.epoch for r in history]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(epochs, [r.train_loss for r in history], marker="o", label="train")
    if any(r.valid_loss is not None for r in history):
        ax.plot(epochs, [r.valid_loss for r in history], marker="o", label="validation")
    ax.axhline(math.log(vocab_size), color="gray", linestyle="--", label=f"uniform, log({vocab_size})")
    ax.set_xlabel("epoch")
    ax.set_ylabel("cross-entropy per word (nats)")
    ax.set_title("rnnlm training loss")
    ax.legend()
    fig.tight_layout()
    with ckpt.atomic_write(path) as handle:
        fig.savefig(handle, format="png", dpi=100)
    plt.close(fig)


def _interrupted(args, epoch, finished):
    """The Ctrl-C message. The partial epoch is dropped: --resume must replay whole epochs to be exact."""
    if not finished:
        kept = f"{args.out} is as it was" if Path(args.out).exists() else "nothing was saved"
        return f"{PROG}: interrupted during epoch {epoch}, before any epoch finished; {kept}"
    again = f"{PROG} train {args.corpus} --out {args.out} --resume"
    if args.max_records is not None:
        again += f" --max-records {args.max_records}"
    return (f"{PROG}: interrupted during epoch {epoch}; {args.out} holds the model as of epoch "
            f"{finished[-1].epoch} (saved when it finished); continue with: {again}")


def cmd_train(args):
    _check_out(args.out)
    threads = _threads(args)
    if args.plot:
        _check_out(args.plot, "--plot", "loss.png")
    if args.max_records is not None and args.max_records < 1:
        raise ConfigError(f"--max-records must be a positive integer, got {args.max_records}")
    checkpoint = None
    if args.resume:
        checkpoint = ckpt.load_model(args.out if args.resume is True else args.resume, threads=threads)
        if checkpoint.state is None or not checkpoint.metadata.get("resumable", True):
            raise ModelFileError(f"{checkpoint.path} holds no training state to resume from "
                                 "(an untrained or exported model); train a new one instead")
        data_config, model_config, train_config = _resume_configs(args, checkpoint)
        vocabulary = checkpoint.vocabulary
    else:
        data_config = DataConfig(**_fields(args, DataConfig))
        train_config = TrainConfig(**_fields(args, TrainConfig))
        if args.no_clip:
            train_config = replace(train_config, clip=None)
        # validate the model options now, before the corpus is read (its vocabulary size comes later)
        model_config = ModelConfig(**{**_fields(args, ModelConfig), "vocab_size": data_config.vocabulary_size})
        vocabulary = None

    from .corpus import load_corpus
    corpus = load_corpus(args.corpus, vocabulary_size=data_config.vocabulary_size, format=data_config.format,
                         level=data_config.level, vocabulary=vocabulary, max_records=args.max_records)
    for line in corpus.report.lines():
        print(line)
    if checkpoint is None:
        model_config = replace(model_config, vocab_size=len(corpus.vocabulary))
        model = ckpt.build_model(model_config, seed=train_config.seed, counts=corpus.vocabulary.counts,
                                 threads=threads)
        state = training.TrainingState(epoch=0, learning_rate=float(train_config.learning_rate))
    else:
        model, state = checkpoint.model, checkpoint.state
        print(f"Resuming {checkpoint.path} after epoch {state.epoch} (learning rate {state.learning_rate:g}).")
    X, Y, Xv, Yv = training.split_train_valid(corpus.X, corpus.Y, train_config.valid_fraction, train_config.seed)
    num_params = sum(int(p.size) for p in model.params.values())
    print(f"Model: {_describe(model.config, data_config.level)}; {num_params:,} parameters.")
    print(f"Training on {len(X)} sentences ({sum(len(y) for y in Y):,} tokens), validating on {len(Xv)} "
          f"({sum(len(y) for y in Yv):,} tokens); optimizer {train_config.optimizer}, learning rate "
          f"{train_config.learning_rate:g}, batch size {train_config.batch_size}, clip {train_config.clip}.")
    if state.epoch >= train_config.epochs:
        print(f"{checkpoint.path} has already been trained for {state.epoch} epochs; "
              f"ask for more with --epochs (now {train_config.epochs}).")
        return 0

    def save(state_to_save):
        ckpt.save_model(args.out, model, corpus.vocabulary, level=data_config.level, data_config=data_config,
                        train_config=train_config, state=state_to_save)

    def on_epoch(event):
        r = event.record
        valid = "" if r.valid_loss is None else \
            f", {_loss_text('valid', r.valid_loss)}"
        save(event.state)
        finished.append(event.state)
        print(f"epoch {r.epoch}/{event.epochs}: {_loss_text('train', r.train_loss)}"
              f"{valid}, learning rate {r.learning_rate:g}, {r.tokens_per_second:,.0f} tokens/s, {r.seconds:.1f} s"
              f"; saved {args.out}", flush=True)

    finished = []  # states of the epochs finished (and saved) in this run
    progress = _TrainingProgress(show_bar=not args.no_progress, on_epoch=on_epoch)
    try:
        state = training.train(model, X, Y, train_config, X_valid=Xv, Y_valid=Yv, callback=progress, state=state)
    except KeyboardInterrupt:
        progress.close()
        print(_interrupted(args, state.epoch + len(finished) + 1, finished), file=sys.stderr)
        if finished and args.plot:
            _plot(args.plot, finished[-1].history, len(corpus.vocabulary))
        return EXIT_INTERRUPTED
    finally:
        progress.close()
    final = state.history[-1]
    summary = f"Done: {state.epoch} epochs; final {_loss_text('train', final.train_loss)}"
    if final.valid_loss is not None:
        summary += f", {_loss_text('validation', final.valid_loss)}"
    print(summary + f"; model saved to {args.out}.")
    if args.plot:
        _plot(args.plot, state.history, len(corpus.vocabulary))
        print(f"Loss curve written to {args.plot}.")
    return 0


# --------------------------------------------------------------------- evaluate / generate

def _load(path, threads=1):
    if path is None:
        if not ckpt.BUNDLED_MODEL.is_file():
            raise ModelFileError(f"the bundled model {ckpt.BUNDLED_MODEL} is missing from this installation; "
                                 "reinstall rnnlm or pass --model MODEL.npz")
        path = ckpt.BUNDLED_MODEL
    return ckpt.load_model(path, threads=threads)


def cmd_evaluate(args):
    if args.max_records is not None and args.max_records < 1:
        raise ConfigError(f"--max-records must be a positive integer, got {args.max_records}")
    checkpoint = _load(args.model, threads=_threads(args))
    from .corpus import load_corpus
    corpus = load_corpus(args.corpus, format=args.format, level=checkpoint.level, vocabulary=checkpoint.vocabulary,
                         max_records=args.max_records)
    vocab = checkpoint.vocabulary
    for line in corpus.report.lines()[:2]:
        print(line)
    trained = checkpoint.state.epoch if checkpoint.state is not None else 0
    print(f"Model: {checkpoint.path} ({_describe(checkpoint.model.config, checkpoint.level)}), "
          f"trained {trained} epochs.")
    tokens = corpus.num_tokens
    unknown = sum(int(np.sum(y == vocab.unknown_index)) for y in corpus.Y)
    total = float(checkpoint.model.total_loss(corpus.X, corpus.Y))
    loss = total / tokens
    print(f"Predicted tokens: {tokens:,} (SENTENCE_END counted, SENTENCE_START never predicted); "
          f"{unknown / tokens:.1%} of them are UNKNOWN_TOKEN.")
    print(f"Uniform baseline: cross-entropy log({len(vocab)}) = {math.log(len(vocab)):.4f}, perplexity {len(vocab)}.")
    print(f"cross-entropy: {loss:.4f} nats per token")
    ppl = perplexity(loss)
    print(f"perplexity: {ppl:.2f}" if ppl < 1e6 else f"perplexity: {ppl:.6g}")
    return 0


def cmd_generate(args):
    config = GenerateConfig(**{k: v for k, v in {
        "num_sentences": args.n, "min_length": args.min_length, "max_length": args.max_length,
        "temperature": args.temperature}.items() if v is not None})
    if args.seed is not None and args.seed < 0:
        raise ConfigError(f"seed must be a non-negative integer, got {args.seed}")
    checkpoint = _load(args.model)
    prefix = tokenize_prefix(args.prefix, checkpoint.level) if args.prefix else []
    missing = unknown_tokens(prefix, checkpoint.vocabulary)
    if missing:
        print(f"{PROG}: note: not in the model's vocabulary, read as UNKNOWN_TOKEN: "
              f"{', '.join(repr(t) for t in dict.fromkeys(missing))}", file=sys.stderr)
    rng = np.random.default_rng(args.seed)
    for _ in range(config.num_sentences):
        tokens = generate_sentence(checkpoint.model, checkpoint.vocabulary, rng, config.min_length, config.max_length,
                                   config.temperature, prefix, config.max_attempts, checkpoint.level)
        print(detokenize(tokens, checkpoint.level), flush=True)
    return 0


# --------------------------------------------------------------------- gradcheck / download

def cmd_gradcheck(args):
    from .reference import RNNNumpy
    model = RNNNumpy(word_dim=100, hidden_dim=10, bptt_truncate=1000, seed=args.seed)
    print("Gradient check of RNNNumpy (vocabulary 100, hidden 10, bptt_truncate 1000) on x = [0, 1, 2, 3], "
          "y = [1, 2, 3, 4]:")
    report = model.gradient_check(np.array([0, 1, 2, 3]), np.array([1, 2, 3, 4]))
    print(report)
    return 0 if report else 1


def cmd_export(args):
    checkpoint = _load(args.model)
    _check_out(args.out)
    ckpt.save_model(args.out, checkpoint.model, checkpoint.vocabulary, level=checkpoint.level,
                    data_config=checkpoint.data_config, train_config=checkpoint.train_config, state=checkpoint.state,
                    param_dtype=np.dtype(args.dtype), include_optimizer=False)
    before, after = checkpoint.path.stat().st_size, Path(args.out).stat().st_size
    print(f"Wrote {args.out}: {_describe(checkpoint.model.config, checkpoint.level)}, parameters as {args.dtype}, "
          f"no optimizer state; {after:,} bytes (was {before:,}).")
    return 0


def cmd_download(args):
    from .download import DATASETS, download
    dataset = DATASETS[args.dataset]
    url = args.url or dataset.url
    sha1 = args.sha1 or dataset.git_sha1
    destination = Path(args.dir) / dataset.filename
    print(f"Downloading {dataset.description}\n  from {url}\n  to {destination}")
    update, close = _download_progress(not args.no_progress)
    try:
        path, fetched = download(url, destination, sha1, progress=update)
    finally:
        close()
    size = path.stat().st_size
    verb = "Downloaded" if fetched else "Already present:"
    print(f"{verb} {path} ({size:,} bytes), git blob SHA-1 {sha1} verified.")
    print(f"Train on it with: {PROG} train {path} --out model.npz")
    return 0


# --------------------------------------------------------------------- the parser

EXAMPLES = {
    "train": """example:
  rnnlm train data/reddit-comments-2015-08.csv --out model.npz --vocab-size 8000 --hidden 100 --epochs 10
  rnnlm train poems.txt --level char --cell gru --optimizer adam --learning-rate 0.01 --out poems.npz
  rnnlm train data/reddit-comments-2015-08.csv --out model.npz --epochs 20 --resume   # continue to 20 epochs

Prints the tutorial's data report, a progress bar with the loss and tokens/s, and each epoch's
train/validation loss and perplexity; --out is rewritten atomically after every epoch.
Ctrl-C saves the last finished epoch and exits 130; --resume continues exactly where it stopped.""",
    "evaluate": """example:
  rnnlm evaluate --model model.npz data/test-comments.csv

Tokenizes the corpus with the model's own vocabulary and prints the cross-entropy per token,
pooled over every predicted token (SENTENCE_END included), and a line 'perplexity: <number>'.""",
    "generate": """example:
  rnnlm generate                                  # 10 sentences from the bundled Reddit model
  rnnlm generate --model model.npz -n 3 --temperature 0.7 --prefix "i think" --seed 1

One sentence per line. UNKNOWN_TOKEN is never produced; sentences of fewer than --min-length words
are drawn again (at most 100 times, then the longest draw is printed); --max-length ends a sentence;
--temperature 0 always picks the most probable token. Prefix words the model does not know are
read as UNKNOWN_TOKEN but printed as you wrote them.""",
    "gradcheck": """example:
  rnnlm gradcheck

Compares BPTT's gradients with central differences for every entry of U, V and W of a small
RNNNumpy (vocabulary 100, hidden 10, full BPTT). Exit code 0 when every entry passes, 1 when not.""",
    "export": """example:
  rnnlm export model.npz --out small.npz
  rnnlm export model.npz --out small.npz --dtype float16

Writes a copy without the optimizer's state (Adam keeps two arrays per parameter), for
sharing or bundling. The copy generates and evaluates like the original, and keeps its
loss history, but --resume refuses it because the optimizer state is gone.""",
    "download": """example:
  rnnlm download reddit --dir data/

Fetches the tutorial's Reddit comments (about 8 MB) from GitHub with a progress bar, and keeps
the file only if its git blob SHA-1 (what `git hash-object` prints) is the published one.
Offline, it says so and what to do instead.""",
}


def build_parser():
    parser = _Parser(
        prog=PROG, formatter_class=_Formatter,
        description="A from-scratch NumPy recurrent-neural-network language model (the WildML tutorial, and more).",
        epilog="examples:\n  rnnlm generate\n  rnnlm train corpus.csv --out model.npz\n"
               "  rnnlm evaluate --model model.npz corpus.csv\n  rnnlm gradcheck\n  rnnlm download reddit\n\n"
               "Run 'rnnlm COMMAND --help' for each command's options.")
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(name, help):
        return commands.add_parser(name, help=help, description=help, epilog=EXAMPLES[name], formatter_class=_Formatter)

    p = command("train", "train a language model on a corpus (Reddit CSV or plain text)")
    p.add_argument("corpus", help="a UTF-8 CSV with a 'body' column, or a text file (one document per line)")
    p.add_argument("--out", required=True, metavar="MODEL.npz", help="model file, rewritten after every epoch")
    data = p.add_argument_group("data")
    data.add_argument("--format", choices=FORMATS, help="corpus format; auto: .csv is reddit-csv" + _d(DataConfig, "format"))
    data.add_argument("--level", choices=LEVELS, help="word tokens, or characters (each line a sequence)"
                                                      + _d(DataConfig, "level"))
    data.add_argument("--vocab-size", dest="vocabulary_size", type=int, metavar="N",
                      help="words kept, UNKNOWN_TOKEN included" + _d(DataConfig, "vocabulary_size"))
    data.add_argument("--max-records", type=int, metavar="N", help="use only the first N comments/lines")
    model = p.add_argument_group("model")
    model.add_argument("--cell", choices=CELLS, help="recurrent cell" + _d(ModelConfig, "cell"))
    model.add_argument("--hidden", dest="hidden_size", type=int, metavar="H",
                       help="hidden units per layer" + _d(ModelConfig, "hidden_size"))
    model.add_argument("--bptt-truncate", dest="bptt_truncate", type=_truncation, metavar="K",
                       help="steps the error flows back, or 'full'" + _d(ModelConfig, "bptt_truncate"))
    model.add_argument("--layers", dest="num_layers", type=int, metavar="L",
                       help="stacked recurrent layers" + _d(ModelConfig, "num_layers"))
    model.add_argument("--embed-size", dest="embed_size", type=int, metavar="E",
                       help="word embedding width (default: one-hot input, the tutorial's model)")
    model.add_argument("--peephole", action="store_true", default=None, help="LSTM with peephole connections")
    model.add_argument("--coupled-gates", action="store_true", default=None,
                       help="LSTM with the input gate tied to 1 - forget gate")
    model.add_argument("--softmax", choices=SOFTMAXES,
                       help="output layer: one softmax over all words, or class-based (Mikolov et al. 2011: "
                            "words binned by frequency, much faster for big vocabularies, exact probabilities)"
                       + _d(ModelConfig, "softmax"))
    model.add_argument("--classes", dest="num_classes", type=int, metavar="K",
                       help="word classes for --softmax class (default: sqrt of the vocabulary size)")
    opt = p.add_argument_group("training")
    opt.add_argument("--epochs", type=int, metavar="N", help="total epochs" + _d(TrainConfig, "epochs"))
    opt.add_argument("--learning-rate", type=float, metavar="LR", help="learning rate" + _d(TrainConfig, "learning_rate"))
    opt.add_argument("--batch-size", type=int, metavar="N", help="sentences per batch" + _d(TrainConfig, "batch_size"))
    opt.add_argument("--valid-fraction", type=float, metavar="F",
                     help="sentences held out for validation" + _d(TrainConfig, "valid_fraction"))
    opt.add_argument("--seed", type=int, help="seed for initialisation, split and batch order" + _d(TrainConfig, "seed"))
    opt.add_argument("--optimizer", choices=OPTIMIZERS, help="update rule" + _d(TrainConfig, "optimizer"))
    opt.add_argument("--momentum", type=float, help="SGD momentum" + _d(TrainConfig, "momentum"))
    opt.add_argument("--clip", type=float, metavar="NORM", help="global gradient-norm limit" + _d(TrainConfig, "clip"))
    opt.add_argument("--no-clip", action="store_true", help="no gradient clipping")
    opt.add_argument("--evaluate-loss-after", type=int, metavar="N",
                     help="halve the rate if the loss rose, checked every N epochs" + _d(TrainConfig, "evaluate_loss_after"))
    opt.add_argument("--resume", nargs="?", const=True, metavar="MODEL.npz",
                     help="continue training from --out (or from MODEL.npz) up to --epochs in total")
    opt.add_argument("--plot", metavar="LOSS.png", help="write a loss-curve PNG")
    opt.add_argument("--no-progress", action="store_true", help="no progress bar")
    _add_threads_option(opt)
    p.set_defaults(run=cmd_train)

    p = command("evaluate", "cross-entropy and perplexity of a model on a corpus")
    p.add_argument("corpus", help="a corpus file, tokenized with the model's own vocabulary")
    p.add_argument("--model", metavar="MODEL.npz", help="model file (default: the bundled Reddit model)")
    p.add_argument("--format", choices=FORMATS, default=_default(DataConfig, "format"), help="corpus format"
                   + _d(DataConfig, "format"))
    p.add_argument("--max-records", type=int, metavar="N", help="use only the first N comments/lines")
    _add_threads_option(p)
    p.set_defaults(run=cmd_evaluate)

    p = command("generate", "generate sentences, one per line")
    p.add_argument("--model", metavar="MODEL.npz", help="model file (default: the bundled Reddit model)")
    p.add_argument("-n", type=int, metavar="N", help="number of sentences" + _d(GenerateConfig, "num_sentences"))
    p.add_argument("--min-length", type=int, metavar="N",
                   help="resample sentences of fewer than N words (punctuation does not count)"
                   + _d(GenerateConfig, "min_length"))
    p.add_argument("--max-length", type=int, metavar="N",
                   help="end a sentence after N tokens, punctuation included" + _d(GenerateConfig, "max_length"))
    p.add_argument("--temperature", type=float, metavar="T",
                   help="0 is greedy, below 1 is safer, above 1 wilder" + _d(GenerateConfig, "temperature"))
    p.add_argument("--prefix", metavar="TEXT", help="start every sentence with these words (characters at char level)")
    p.add_argument("--seed", type=int, help="the same seed gives the same sentences (default: random)")
    p.set_defaults(run=cmd_generate)

    p = command("gradcheck", "check BPTT's gradients numerically (the tutorial's demo)")
    p.add_argument("--seed", type=int, default=GRADCHECK_SEED, help=f"model seed (default: {GRADCHECK_SEED})")
    p.set_defaults(run=cmd_gradcheck)

    p = command("export", "copy a model without its training state (smaller, for sharing)")
    p.add_argument("model", metavar="MODEL.npz", help="a model file")
    p.add_argument("--out", required=True, metavar="OUT.npz", help="the copy to write")
    p.add_argument("--dtype", choices=["float32", "float16"], default="float32",
                   help="store the parameters in this type; loading casts back to float32 (default: float32)")
    p.set_defaults(run=cmd_export)

    p = command("download", "download a dataset and verify its checksum")
    p.add_argument("dataset", choices=["reddit"], help="reddit: the tutorial's Reddit comments")
    p.add_argument("--dir", default="data", help="folder to save into (default: data)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--url", help=argparse.SUPPRESS)   # for tests and mirrors
    p.add_argument("--sha1", help=argparse.SUPPRESS)  # the git blob SHA-1 expected from --url
    p.set_defaults(run=cmd_download)
    return parser


def _one_line(message):
    return " ".join(str(message).split()) or "unknown error"


def main(argv=None):
    """Run the command line; returns the exit code (0 success, 1 gradcheck failed, 2 bad input, 130 Ctrl-C)."""
    for stream in (sys.stdout, sys.stderr):
        try:  # never crash on a terminal that cannot show a character of a generated sentence
            stream.reconfigure(errors="backslashreplace")
        except (AttributeError, ValueError):
            pass
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, usage errors (exit 2)
        return exc.code
    try:
        return args.run(args)
    except RnnlmError as exc:
        message = str(exc)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except MemoryError:
        message = "out of memory; try a smaller --vocab-size, --hidden or --batch-size"
    except OSError as exc:
        name = f" {exc.filename}" if getattr(exc, "filename", None) else ""
        message = f"{exc.strerror or exc}{':' + name if name else ''}"
    print(f"{PROG}: error: {_one_line(message)}", file=sys.stderr)
    return EXIT_ERROR

"""The `rnnlm` command: train, evaluate, generate, gradcheck, export, download.

The only module that prints or exits. Every `RnnlmError` (and any OSError about a file)
becomes one line `rnnlm: error: <message>` on stderr and exit code 2, with no traceback;
so do argparse's usage errors. Ctrl-C (or SIGTERM) during training keeps the last finished
epoch's checkpoint and exits 130. A closed stdout ends output quietly (`train` keeps training).
Outputs are checked against the inputs and locked before a command runs (`_guarded_outputs`). Option names carry the field names of the config dataclasses
(`--hidden` sets `ModelConfig.hidden_size`), and every default comes from those
dataclasses (or `GenerateConfig`): nothing here repeats a default value.
"""

import argparse
import contextlib
import hashlib
import math
import os
import signal
import sys
import time
from dataclasses import fields, replace
from pathlib import Path

import numpy as np

from rnnlm.version import __version__
from rnnlm.io import checkpoint as ckpt
from rnnlm.config import (CELLS, DEFAULT_LEARNING_RATES, FORMATS, LEVELS, LR_SCHEDULES, OPTIMIZERS, SOFTMAXES,
                     ComputeConfig, DataConfig, ModelConfig, TrainConfig)
from rnnlm.errors import ConfigError, DataError, ModelFileError, RnnlmError
from rnnlm.models.generate import (GenerateConfig, detokenize, generate_sentence, is_greedy, sentence_length, tokenize_prefix,
                       unknown_tokens)
from rnnlm.nn.numerics import perplexity

from rnnlm.training import loop as training

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
    """--threads, validated by `ComputeConfig` (0: one worker per core; absent: None, automatic)."""
    return ComputeConfig(**_fields(args, ComputeConfig)).threads


def _add_threads_option(parser):
    parser.add_argument("--threads", type=int, metavar="N",
                        help="worker threads for the output layer; 1 = a single loop, 0 = one per core (BLAS always one thread)"
                             " (default: automatic, one per core for a large full softmax)")


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
    """Turns `train`'s (or `train_trees`') events into a tqdm bar (stderr) and one result line per
    epoch (stdout, through `on_epoch`); tokens/s is shown when the events count tokens."""

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
            counted = getattr(event, "tokens", None) is not None  # tree events count no tokens
            if counted and self.started is None:
                self.started, self.tokens = time.perf_counter() - event.tokens / event.tokens_per_second, 0
            if counted:
                self.tokens += event.tokens
            if self.bar is not None:
                rate = f", {self.tokens / max(time.perf_counter() - self.started, 1e-9):,.0f} tokens/s" if counted else ""
                last = event.batch + 1 == event.num_batches
                self.bar.set_postfix_str(f"loss {event.loss:.3f}{rate}", refresh=last)
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

def _outputs(args):
    """The files this command writes, as (option, path), and what they must not be: (description, path)."""
    command = f"trees {args.trees_command}" if args.command == "trees" else args.command
    if command not in ("train", "export", "import", "trees train"):
        return [], []
    outputs = [(option, getattr(args, name, None)) for option, name in (("--out", "out"), ("--plot", "plot"))]
    outputs = [(option, path) for option, path in outputs if path is not None]
    if command == "train":  # where the resumable last epoch goes when --out keeps the best one
        outputs.append(("--out's last-epoch file", _last_path(args.out)))
    inputs = [("the corpus", getattr(args, "corpus", None))]
    if command == "export":
        inputs.append(("the model being exported", args.model))
    elif command == "import":
        inputs.append(("the input file itself", args.file))
    elif command == "trees train":
        inputs += [("the training trees", args.train), ("the development trees", args.dev)]
    return outputs, inputs


@contextlib.contextmanager
def _guarded_outputs(args):
    """Check every output against the inputs and each other, and hold a write lock on each for the command."""
    outputs, inputs = _outputs(args)
    resumed = getattr(args, "resume", None)
    for i, (option, path) in enumerate(outputs):
        others = [(f"also {o}", p) for o, p in outputs[:i]]
        if option == "--plot" and isinstance(resumed, str):  # --out may be the resumed model; a plot may not
            others.append(("the model being resumed", resumed))
        example = "loss.png" if option == "--plot" else ("model.safetensors" if str(path).endswith(".safetensors")
                                                          else "model.npz")
        ckpt.check_output(path, option, inputs + others, example=example)
    with contextlib.ExitStack() as locks:
        for _, path in outputs:
            locks.enter_context(ckpt.output_lock(path))
        yield


def _describe(model, level):
    """One line on a model: its class (by what it is, not only its config's shape), sizes and options."""
    c = model.config
    kind = ckpt.kind_of(model)
    name = {"fast-rnn": "FastRNN (the tutorial's Elman RNN)",
            "reference-rnn": "RNNNumpy (the tutorial's Elman RNN, float64)"}.get(kind, f"LanguageModel ({c.cell})")
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
    _refuse_resume_changes(args, checkpoint, base)
    train_config = replace(base, **_fields(args, TrainConfig))
    if args.no_clip:
        train_config = replace(train_config, clip=None)
    data_config = replace(checkpoint.data_config, **{k: v for k, v in given_data.items() if k == "format"})
    return data_config, checkpoint.model.config, train_config


# options that decide which text is trained on, how it is split or laid out, or how the optimizer's
# stored state is read: changing one on --resume would silently train a different run
_FIXED_ON_RESUME = {"optimizer": "--optimizer", "seed": "--seed", "valid_fraction": "--valid-fraction",
                    "max_records": "--max-records", "stream": "--stream", "seq_length": "--seq-length",
                    "max_sentence_length": "--max-sentence-length"}


def _refuse_resume_changes(args, checkpoint, base):
    """ConfigError naming the first option given on --resume that differs from what the run was started with."""
    data = checkpoint.state.data if checkpoint.state is not None else {}
    stored = {"optimizer": base.optimizer, "seed": base.seed, "seq_length": base.seq_length,
              "valid_fraction": data.get("valid_fraction", base.valid_fraction),
              "max_records": data.get("max_records"), "stream": checkpoint.data_config.stream,
              "max_sentence_length": checkpoint.data_config.max_sentence_length}
    given = {"optimizer": args.optimizer, "seed": args.seed, "valid_fraction": args.valid_fraction,
             "max_records": args.max_records, "stream": True if args.stream else None,
             "seq_length": args.seq_length, "max_sentence_length": args.max_sentence_length}
    fixed = dict(_FIXED_ON_RESUME)
    if checkpoint.data_config.stream:  # the number of parallel streams decides how the text is laid out
        fixed["batch_size"] = "--batch-size"
        stored["batch_size"], given["batch_size"] = base.batch_size, args.batch_size
    for name, option in fixed.items():
        if name == "max_records" and "max_records" not in data:
            continue  # a file from before the corpus was recorded
        if (given[name] is not None or name == "max_records") and given[name] != stored[name]:
            shown = "none" if stored[name] is None else stored[name]
            raise ConfigError(f"{option} cannot change on --resume: {checkpoint.path} was trained with {option} "
                              f"{shown} (it decides the data or the optimizer); drop {option}, or train a new model")


def _last_path(out):
    """Where the resumable last-epoch state goes when --out keeps the best epoch: model.npz -> model.last.npz."""
    out = Path(out)
    return out.with_name(f"{out.stem}.last{out.suffix}")


def _resume_source(args, threads=1):
    """The file --resume continues from: the one given, else whichever of --out and its .last file got further."""
    if args.resume is not True:
        return ckpt.load_model(args.resume, threads=threads)
    best, last = Path(args.out), _last_path(args.out)
    if not last.exists():
        return ckpt.load_model(best, threads=threads)
    candidates = [ckpt.load_model(last, threads=threads)] + \
        ([ckpt.load_model(best, threads=threads)] if best.exists() else [])
    progress = lambda c: (c.state.epoch, c.state.batch) if c.state is not None else (-1, 0)  # noqa: E731
    return max(candidates, key=progress)


def _fingerprint(arrays):
    """SHA-256 of the encoded training text (its token ids, in order): the corpus as the model saw it."""
    digest = hashlib.sha256()
    for a in arrays:
        digest.update(np.asarray(a, dtype=np.int64).tobytes())
        digest.update(b"|")
    return digest.hexdigest()


def _rate_change(record, config):
    """'; learning rate 0.5 -> 0.25 (plateau ...)' when the schedule acted after this epoch, else ''."""
    if record.next_learning_rate is None or record.next_learning_rate == record.learning_rate:
        return ""
    if config.lr_schedule == "halving":
        why = "halving rule: the loss rose"
    else:
        why = (f"plateau: the smoothed {record.monitored} loss gained under {config.lr_threshold:.1%} "
               f"for {config.lr_patience} epochs")
        if record.next_learning_rate <= config.lr_floor:
            why += f"; at the floor {config.lr_floor:g}"
    return f"; learning rate {record.learning_rate:g} -> {record.next_learning_rate:g} ({why})"


def _plot(path, history, vocab_size, level="word"):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    epochs = [r.epoch + (r.batches / r.num_batches - 1 if not r.complete and r.num_batches else 0) for r in history]
    fig, (ax, lr_ax) = plt.subplots(1, 2, figsize=(10, 4))
    ax.plot(epochs, [r.train_loss for r in history], marker="o", label="train")
    if any(r.valid_loss is not None for r in history):
        ax.plot(epochs, [r.valid_loss for r in history], marker="o", label="validation")
    ax.axhline(math.log(vocab_size), color="gray", linestyle="--", label=f"uniform, log({vocab_size})")
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"cross-entropy per {'character' if level == 'char' else 'word'} (nats)")
    ax.set_title("rnnlm training loss")
    ax.legend()
    lr_ax.step(epochs, [r.learning_rate for r in history], where="post", marker="o", color="tab:green")
    lr_ax.set_yscale("log")
    lr_ax.set_xlabel("epoch")
    lr_ax.set_ylabel("learning rate (log scale)")
    lr_ax.set_title("learning rate used in each epoch")
    fig.tight_layout()
    with ckpt.atomic_write(path) as handle:
        fig.savefig(handle, format="png", dpi=100)
    plt.close(fig)


def _interrupted(args, epoch, finished, resume_file):
    """The Ctrl-C message. The partial epoch is dropped: --resume must replay whole epochs to be exact."""
    if not finished:
        kept = f"{args.out} is as it was" if Path(args.out).exists() else "nothing was saved"
        return f"{PROG}: interrupted during epoch {epoch}, before any epoch finished; {kept}"
    again = f"{PROG} train {args.corpus} --out {args.out} --resume"
    if args.max_records is not None:
        again += f" --max-records {args.max_records}"
    return (f"{PROG}: interrupted during epoch {epoch}; {resume_file} holds the model as of epoch "
            f"{finished[-1].epoch} (saved when it finished); continue with: {again}")


def _valid_fraction(args, train_config, X, Y):
    """The fraction actually held out, and why: the default is skipped when it would hold out too little."""
    if args.valid_fraction is not None or train_config.valid_fraction == 0:
        return train_config.valid_fraction, ""
    held = training.split_train_valid(X, Y, train_config.valid_fraction, train_config.seed)[3]
    tokens = sum(len(y) for y in held)
    if training.monitors_validation(train_config, tokens):
        return train_config.valid_fraction, ""
    return 0.0, (f"no validation set: the default {train_config.valid_fraction:g} of {len(X)} sequences would hold "
                 f"out only {tokens:,} tokens (fewer than {train_config.min_valid_tokens:,}); "
                 "give --valid-fraction to hold some out anyway")


def _monitor_text(train_config, valid_tokens, why_none):
    if training.monitors_validation(train_config, valid_tokens):
        return (f"the learning-rate rule ({train_config.lr_schedule}) follows the validation loss, and "
                "--out keeps the best validation epoch")
    if valid_tokens:
        why_none = (f"the {valid_tokens:,} held-out tokens are too few (fewer than {train_config.min_valid_tokens:,}) "
                    "for their loss to steer training; it is reported only")
    return f"the learning-rate rule ({train_config.lr_schedule}) follows the training loss ({why_none or 'no validation set'})"


def cmd_train(args):
    threads = _threads(args)
    if args.max_records is not None and args.max_records < 1:
        raise ConfigError(f"--max-records must be a positive integer, got {args.max_records}")
    checkpoint = None
    if args.resume:
        checkpoint = _resume_source(args, threads=threads)
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
        given_model = _fields(args, ModelConfig)
        if data_config.stream and args.bptt_truncate is None:
            given_model["bptt_truncate"] = None  # a stream window is already the truncation
        # validate the model options now, before the corpus is read (its vocabulary size comes later)
        model_config = ModelConfig(**{**given_model, "vocab_size": data_config.vocabulary_size})
        vocabulary = None

    prepared = _prepare_training_data(args, data_config, train_config, vocabulary)
    for line in prepared["report"]:
        print(printable(line))
    train_config = replace(train_config, valid_fraction=prepared["valid_fraction"])  # what was held out, for --resume
    if checkpoint is None:
        model_config = replace(model_config, vocab_size=len(prepared["vocabulary"]))
        kind = "language-model" if data_config.stream else None  # stream models carry state: LanguageModel
        model = ckpt.build_model(model_config, seed=train_config.seed, kind=kind,
                                 counts=prepared["vocabulary"].counts, threads=threads)
        state = training.TrainingState(epoch=0, learning_rate=float(train_config.learning_rate),
                                       data=prepared["data"])
    else:
        model, state = checkpoint.model, checkpoint.state
        stored = state.data.get("fingerprint")
        if stored is not None and stored != prepared["data"]["fingerprint"]:
            raise ConfigError(f"{args.corpus} is not the corpus {checkpoint.path} was trained on (its text "
                              f"differs); --resume continues on the same corpus, or train a new model")
        if args.learning_rate is not None:  # an explicit rate is used from now on, and the rule starts afresh
            state = state.restarted(train_config.learning_rate)
        state = replace(state, data={**state.data, **prepared["data"]})
        at = f"epoch {state.epoch}" + (f", batch {state.batch}" if state.batch else "")
        print(f"Resuming {checkpoint.path} after {at} (learning rate {state.learning_rate:g}"
              f"{', as given' if args.learning_rate is not None else ''}).")
    num_params = sum(int(p.size) for p in model.params.values())
    print(f"Model: {_describe(model, data_config.level)}; {num_params:,} parameters.")
    valid_tokens = prepared["valid_tokens"]
    limit = f", time limit {train_config.time_limit:g} s" if train_config.time_limit else ""
    print(f"Training on {prepared['train_text']}, validating on {prepared['valid_text']}; optimizer "
          f"{train_config.optimizer}, learning rate {state.learning_rate:g} (floor {train_config.lr_floor:g}), "
          f"batch size {train_config.batch_size}, clip {train_config.clip}{limit}.")
    print(f"Rule: {_monitor_text(train_config, valid_tokens, prepared['why_no_valid'])}.")
    if state.epoch >= train_config.epochs:
        print(f"{checkpoint.path} has already been trained for {state.epoch} epochs; "
              f"ask for more with --epochs (now {train_config.epochs}).")
        return 0

    keep_best = training.monitors_validation(train_config, valid_tokens)
    resume_file = _last_path(args.out) if keep_best else Path(args.out)

    def save(path, state_to_save):
        ckpt.save_model(path, model, prepared["vocabulary"], level=data_config.level, data_config=data_config,
                        train_config=train_config, state=state_to_save)

    def on_epoch(event):
        r, st = event.record, event.state
        valid = "" if r.valid_loss is None else f", {_loss_text('valid', r.valid_loss)}"
        save(resume_file, st)
        saved = str(resume_file)
        if keep_best and st.best_epoch == r.epoch:
            save(args.out, st)
            saved += f" and {args.out} (best validation so far)"
        finished.append(st)
        partial = "" if r.complete else f" (stopped by the time limit after batch {r.batches}/{r.num_batches})"
        print(f"epoch {r.epoch}/{event.epochs}{partial}: {_loss_text('train', r.train_loss)}"
              f"{valid}, learning rate {r.learning_rate:g}, {r.tokens_per_second:,.0f} tokens/s, {r.seconds:.1f} s"
              f"; saved {saved}{_rate_change(r, train_config)}", flush=True)
        if event.worse_than_uniform:
            print(f"{PROG}: warning: after epoch {r.epoch} the {r.monitored} loss is worse than a uniform guess "
                  f"(log {model.config.vocab_size} = {event.uniform_loss:.2f} nats): learning rate "
                  f"{r.learning_rate:g} is likely too large for {train_config.optimizer}; try "
                  f"--learning-rate {r.learning_rate / 10:g}", file=sys.stderr, flush=True)

    finished = []  # states of the epochs finished (and saved) in this run
    progress = _TrainingProgress(show_bar=not args.no_progress, on_epoch=on_epoch)
    try:
        state = prepared["train"](model, train_config, progress, state)
    except KeyboardInterrupt:
        progress.close()
        print(_interrupted(args, state.epoch + len(finished) + 1, finished, resume_file), file=sys.stderr)
        if finished and args.plot:
            _plot(args.plot, finished[-1].history, len(prepared["vocabulary"]), data_config.level)
        return EXIT_INTERRUPTED
    except training.TrainingDiverged as exc:
        kept = (f"{resume_file} holds the last good epoch ({finished[-1].epoch})" if finished else
                f"{args.out} was not written" if not Path(args.out).exists() else f"{args.out} is as it was")
        raise training.TrainingDiverged(f"{exc}; stopped, no diverged parameters were saved: {kept}") from None
    finally:
        progress.close()
    final = state.history[-1]
    summary = f"Done: {state.epoch} epochs"
    if not final.complete or state.epoch < train_config.epochs:
        summary = (f"Stopped by the time limit ({train_config.time_limit:g} s) after "
                   f"{state.epoch} epochs" + (f" and {state.batch} batches" if state.batch else ""))
    summary += f"; final {_loss_text('train', final.train_loss)}"
    if final.valid_loss is not None:
        summary += f", {_loss_text('validation', final.valid_loss)}"
    if keep_best:
        best = next(r for r in state.history if r.epoch == state.best_epoch)
        summary += (f"; kept epoch {state.best_epoch} ({_loss_text('best validation', best.valid_loss)}) in "
                    f"{args.out}; the last epoch, to --resume from, is in {resume_file}.")
    else:
        summary += f"; kept the last epoch in {args.out}."
    print(summary)
    if args.plot:
        _plot(args.plot, state.history, len(prepared["vocabulary"]), data_config.level)
        print(f"Loss and learning-rate curves written to {args.plot}.")
    return 0


def _prepare_training_data(args, data_config, train_config, vocabulary):
    """Read the corpus the way data_config says; returns what cmd_train needs as a dict.

    Keys: vocabulary, report (lines to print), train (a function (model, config, callback,
    state) -> TrainingState), valid_tokens, train_text / valid_text (banner pieces),
    why_no_valid, data (what the training state records to recognise the corpus on resume).
    """
    if data_config.stream:
        return _prepare_stream(args, data_config, train_config, vocabulary)
    from rnnlm.data.corpus import load_corpus
    corpus = load_corpus(args.corpus, vocabulary_size=data_config.vocabulary_size, format=data_config.format,
                         level=data_config.level, vocabulary=vocabulary, max_records=args.max_records,
                         link_placeholders=data_config.link_placeholders,
                         max_sentence_length=data_config.max_sentence_length)
    fraction, why = (train_config.valid_fraction, "") if args.resume else \
        _valid_fraction(args, train_config, corpus.X, corpus.Y)
    X, Y, Xv, Yv = training.split_train_valid(corpus.X, corpus.Y, fraction, train_config.seed)

    def run(model, config, callback, state):
        return training.train(model, X, Y, config, X_valid=Xv, Y_valid=Yv, callback=callback, state=state)

    return {"vocabulary": corpus.vocabulary, "report": corpus.report.lines(), "train": run, "valid_fraction": fraction,
            "valid_tokens": sum(len(y) for y in Yv), "why_no_valid": why,
            "train_text": f"{len(X)} sentences ({sum(len(y) for y in Y):,} tokens)",
            "valid_text": f"{len(Xv)} ({sum(len(y) for y in Yv):,} tokens)",
            "data": {"fingerprint": _fingerprint(corpus.X), "max_records": args.max_records,
                     "valid_fraction": fraction}}


def _prepare_stream(args, data_config, train_config, vocabulary):
    """`_prepare_training_data` for --stream: the text as one token stream, validated on its end."""
    from rnnlm.training.stream import load_stream, split_stream, train_stream, validation_streams
    corpus = load_stream(args.corpus, vocabulary_size=data_config.vocabulary_size, format=data_config.format,
                         level=data_config.level, vocabulary=vocabulary, max_records=args.max_records,
                         link_placeholders=data_config.link_placeholders)
    fraction, why = train_config.valid_fraction, ""
    if not args.resume and args.valid_fraction is None:
        held = max(len(split_stream(corpus.ids, fraction)[1]) - 1, 0)  # targets: every token but the first
        if not training.monitors_validation(train_config, held):
            fraction, why = 0.0, (f"no validation set: the last {train_config.valid_fraction:g} of the text is only "
                                  f"{held:,} tokens (fewer than {train_config.min_valid_tokens:,}); give "
                                  "--valid-fraction to hold it out anyway")
    train_ids, valid_ids = split_stream(corpus.ids, fraction)
    B, T = train_config.batch_size, train_config.seq_length

    def run(model, config, callback, state):
        return train_stream(model, train_ids, valid_ids, config, callback=callback, state=state)

    valid_text = "nothing"
    if len(valid_ids):
        valid_text = (f"the last {len(valid_ids):,} tokens as {validation_streams(valid_ids, B, T)} streams")
    return {"vocabulary": corpus.vocabulary, "report": corpus.report, "train": run, "valid_fraction": fraction,
            "valid_tokens": max(len(valid_ids) - 1, 0), "why_no_valid": why,
            "train_text": f"the first {len(train_ids):,} tokens as {B} parallel streams in windows of {T}",
            "valid_text": valid_text,
            "data": {"fingerprint": _fingerprint([corpus.ids]), "max_records": args.max_records,
                     "valid_fraction": fraction}}


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
    if checkpoint.data_config.stream:
        return _evaluate_stream(args, checkpoint)
    from rnnlm.data.corpus import load_corpus
    corpus = load_corpus(args.corpus, format=args.format, level=checkpoint.level, vocabulary=checkpoint.vocabulary,
                         max_records=args.max_records, link_placeholders=checkpoint.data_config.link_placeholders,
                         max_sentence_length=checkpoint.data_config.max_sentence_length)
    vocab = checkpoint.vocabulary
    for line in corpus.report.lines()[:2]:
        print(printable(line))
    trained = checkpoint.state.epoch if checkpoint.state is not None else 0
    print(f"Model: {checkpoint.path} ({_describe(checkpoint.model, checkpoint.level)}), "
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


def _evaluate_stream(args, checkpoint):
    """evaluate for a stream model: the file as one stream, one row, the state carried through it all."""
    from rnnlm.training.stream import batchify, load_stream, stream_loss
    corpus = load_stream(args.corpus, format=args.format, level=checkpoint.level, vocabulary=checkpoint.vocabulary,
                         max_records=args.max_records, link_placeholders=checkpoint.data_config.link_placeholders)
    print(corpus.report[0])
    print(f"Model: {checkpoint.path} ({_describe(checkpoint.model, checkpoint.level)}), a stream model.")
    X, Y = batchify(corpus.ids, 1)
    window = checkpoint.train_config.seq_length if checkpoint.train_config else _default(TrainConfig, "seq_length")
    loss = stream_loss(checkpoint.model, X, Y, window)[0] / Y.size
    print(f"Predicted tokens: {Y.size:,} (every token after the first, line breaks included); uniform baseline "
          f"log({len(checkpoint.vocabulary)}) = {math.log(len(checkpoint.vocabulary)):.4f}.")
    print(f"loss: {loss:.4f}")
    ppl = perplexity(loss)
    print(f"perplexity: {ppl:.4f}" if ppl < 1e6 else f"perplexity: {ppl:.6g}")
    return 0


def _generate_stream(args, checkpoint, config):
    """generate for a stream model: --length tokens of continuous text after --prefix."""
    from rnnlm.models.generate import detokenize_stream, generate_stream
    from rnnlm.training.stream import stream_tokens
    prefix = stream_tokens(args.prefix, checkpoint.level, checkpoint.data_config.link_placeholders) \
        if args.prefix else []
    missing = unknown_tokens(prefix, checkpoint.vocabulary)
    if missing:
        print(f"{PROG}: note: not in the model's vocabulary, read as UNKNOWN_TOKEN: "
              f"{', '.join(repr(t) for t in dict.fromkeys(missing))}", file=sys.stderr)
    tokens = generate_stream(checkpoint.model, checkpoint.vocabulary, np.random.default_rng(args.seed),
                             config.length, config.temperature, prefix)
    text = "\n".join(printable(line) for line in detokenize_stream(tokens, checkpoint.level).split("\n"))
    print(text if text.endswith("\n") else text + "\n", end="", flush=True)
    return 0


def _generate_config(args, level="word"):
    """The GenerateConfig of the options given. Defaults follow what the user did set: a
    --max-length below the default min length lowers the min length with it (the user never
    asked for 7 words), and a character-level model gets char_max_length characters."""
    given = {k: v for k, v in {"num_sentences": args.n, "min_length": args.min_length, "max_length": args.max_length,
                               "temperature": args.temperature,
                               "length": args.length}.items() if v is not None}
    if level == "char" and "max_length" not in given:
        given["max_length"] = GenerateConfig.char_max_length
    if "min_length" not in given and "max_length" in given:
        given["min_length"] = min(GenerateConfig.min_length, given["max_length"])
    return GenerateConfig(**given)


def cmd_generate(args):
    config = _generate_config(args)  # bad options are refused before the model is read
    if args.seed is not None and args.seed < 0:
        raise ConfigError(f"seed must be a non-negative integer, got {args.seed}")
    checkpoint = _load(args.model)
    config = _generate_config(args, checkpoint.level)
    if checkpoint.data_config.stream:
        return _generate_stream(args, checkpoint, config)
    prefix = tokenize_prefix(args.prefix, checkpoint.level, checkpoint.data_config.link_placeholders) \
        if args.prefix else []
    missing = unknown_tokens(prefix, checkpoint.vocabulary)
    if missing:
        print(printable(f"{PROG}: note: not in the model's vocabulary, read as UNKNOWN_TOKEN: "
                        f"{', '.join(repr(t) for t in dict.fromkeys(missing))}"), file=sys.stderr)
    rng = np.random.default_rng(args.seed)
    noted = False
    for _ in range(config.num_sentences):
        tokens = generate_sentence(checkpoint.model, checkpoint.vocabulary, rng, config.min_length, config.max_length,
                                   config.temperature, prefix, config.max_attempts, checkpoint.level,
                                   mask_blocklist=not args.no_blocklist)
        if is_greedy(config.temperature) and sentence_length(tokens, checkpoint.level) < config.min_length and not noted:
            print(f"{PROG}: note: at temperature {config.temperature:.3g} every draw is the same, so a sentence shorter than "
                  f"--min-length {config.min_length} is printed as it is (raise --temperature for longer ones)",
                  file=sys.stderr)
            noted = True
        print(printable(detokenize(tokens, checkpoint.level)), flush=True)
    return 0


# --------------------------------------------------------------------- gradcheck / download

def cmd_gradcheck(args):
    if args.seed < 0:
        raise ConfigError(f"seed must be a non-negative integer, got {args.seed}")
    from rnnlm.models.reference import RNNNumpy
    model = RNNNumpy(word_dim=100, hidden_dim=10, bptt_truncate=1000, seed=args.seed)
    print("Gradient check of RNNNumpy (vocabulary 100, hidden 10, bptt_truncate 1000) on x = [0, 1, 2, 3], "
          "y = [1, 2, 3, 4]:")
    report = model.gradient_check(np.array([0, 1, 2, 3]), np.array([1, 2, 3, 4]))
    print(report)
    return 0 if report else 1


def cmd_export(args):
    checkpoint = _load(args.model)
    if args.format == "safetensors":
        return _export_safetensors(args, checkpoint)
    before = checkpoint.path.stat().st_size
    ckpt.save_model(args.out, checkpoint.model, checkpoint.vocabulary, level=checkpoint.level,
                    data_config=checkpoint.data_config, train_config=checkpoint.train_config, state=checkpoint.state,
                    param_dtype=np.dtype(args.dtype), include_optimizer=False)
    after = Path(args.out).stat().st_size
    print(f"Wrote {args.out}: {_describe(checkpoint.model, checkpoint.level)}, parameters as {args.dtype}, "
          f"no optimizer state; {after:,} bytes (was {before:,}).")
    return 0


def _export_safetensors(args, checkpoint):
    """`export --format safetensors`: the model under PyTorch's names, vocabulary and configs in the metadata."""
    from rnnlm.io.exchange import save_safetensors
    export = save_safetensors(args.out, checkpoint.model, checkpoint.vocabulary, level=checkpoint.level,
                              data_config=checkpoint.data_config, train_config=checkpoint.train_config,
                              dtype=np.dtype(args.dtype))
    rnn = export.spec["rnn"]
    print(f"Wrote {args.out}: {_describe(checkpoint.model, checkpoint.level)}, tensors as {args.dtype} "
          f"under PyTorch's names (nn.Embedding, nn.{rnn['type']}, nn.Linear), vocabulary and configuration "
          f"in the metadata; {Path(args.out).stat().st_size:,} bytes.")
    return 0


def cmd_import(args):
    """`import`: a safetensors export (trained further in PyTorch or not) back into an rnnlm model file."""
    from rnnlm.io.exchange import load_safetensors
    checkpoint = load_safetensors(args.file)
    ckpt.save_model(args.out, checkpoint.model, checkpoint.vocabulary, level=checkpoint.level,
                    data_config=checkpoint.data_config, train_config=checkpoint.train_config)
    print(f"Wrote {args.out}: {_describe(checkpoint.model, checkpoint.level)}, from {args.file}; "
          f"try: {PROG} generate --model {args.out}")
    return 0


def cmd_download(args):
    from rnnlm.io.download import DATASETS, download
    dataset = DATASETS[args.dataset]
    url = args.url or dataset.url
    sha1 = args.sha1 or dataset.git_sha1
    destination = Path(args.dir) / dataset.filename
    print(f"Downloading {dataset.description}\n  from {url}\n  to {destination}")
    update, close = _download_progress(not args.no_progress)
    try:
        path, fetched = download(url, destination, sha1, progress=update, force=args.force)
    finally:
        close()
    size = path.stat().st_size
    verb = "Downloaded" if fetched else "Already present:"
    print(f"{verb} {path} ({size:,} bytes), git blob SHA-1 {sha1} verified.")
    print(f"Train on it with: {PROG} train {path} --out model.npz")
    return 0


# --------------------------------------------------------------------- info

def cmd_info(args):
    if args.words < 1:
        raise ConfigError(f"--words must be a positive integer, got {args.words}")
    checkpoint = _load(args.model)
    for line in ckpt.model_summary(checkpoint, words=args.words):
        print(printable(line))  # the file's strings (its rnnlm version, its path) are data
    return 0


# --------------------------------------------------------------------- course

def cmd_course(args):
    from rnnlm import course
    changed = course.build(args.solutions, args.out, check_only=args.check)
    total = len(course.solution_notebooks(args.solutions))
    if args.check:
        for path in changed:
            print(f"out of date: {path}")
        print(f"{total} notebooks, {len(changed)} out of date" + ("; run: rnnlm course build" if changed else "."))
        return 1 if changed else 0
    for path in changed:
        print(f"wrote {path}")
    print(f"{total} notebooks, {len(changed)} rewritten.")
    return 0


def cmd_check(args):
    from rnnlm import course
    report = course.grade_notebook(args.notebook, timeout=args.timeout)
    print("\n".join(printable(line) for line in str(report).split("\n")))  # error texts come from the notebook
    return 0 if report else 1


# --------------------------------------------------------------------- the parser

EXAMPLES = {
    "train": """example:
  rnnlm train data/reddit-comments-2015-08.csv --out model.npz --vocab-size 8000 --hidden 100 --epochs 10
  rnnlm train poems.txt --level char --cell gru --optimizer adam --learning-rate 0.01 --out poems.npz
  rnnlm train data/reddit-comments-2015-08.csv --out model.npz --epochs 20 --resume   # continue to 20 epochs
  rnnlm train play.txt --stream --level char --cell lstm --hidden 256 --time-limit 180 --out play.npz

Prints the tutorial's data report, a progress bar with the loss and tokens/s, and each epoch's
train/validation loss and perplexity. The learning rate falls when the smoothed loss stops
improving (never below --min-lr); the epoch line says when. With a validation set, --out keeps
the best validation epoch and MODEL.last.npz the last one; files are written atomically and never
hold NaN. Ctrl-C saves the last finished epoch and exits 130; --resume continues exactly where it
stopped (refusing options that would change the data or the optimizer).""",
    "evaluate": """example:
  rnnlm evaluate --model model.npz data/test-comments.csv

Tokenizes the corpus with the model's own vocabulary and prints the cross-entropy per token,
pooled over every predicted token (SENTENCE_END included), and a line 'perplexity: <number>'.
A stream model (trained with --stream) reads the file as one stream and prints 'loss: X' and
'perplexity: Y'.""",
    "generate": """example:
  rnnlm generate                                  # 10 sentences from the bundled Reddit model
  rnnlm generate --model model.npz -n 3 --temperature 0.7 --prefix "i think" --seed 1

One sentence per line. UNKNOWN_TOKEN is never produced; sentences of fewer than --min-length words
are drawn again (at most 100 times, then the longest draw is printed); --max-length ends a sentence;
--temperature 0 always picks the most probable token. Prefix words the model does not know are
read as UNKNOWN_TOKEN but printed as you wrote them.
A stream model (trained with --stream) writes --length tokens of continuous text instead, line
breaks included, after --prefix:  rnnlm generate --model play.npz --length 500 --prefix "ROMEO:" """,
    "gradcheck": """example:
  rnnlm gradcheck

Compares BPTT's gradients with central differences for every entry of U, V and W of a small
RNNNumpy (vocabulary 100, hidden 10, full BPTT). Exit code 0 when every entry passes, 1 when not.""",
    "export": """example:
  rnnlm export model.npz --out small.npz
  rnnlm export model.npz --out small.npz --dtype float16
  rnnlm export model.npz --format safetensors --out model.safetensors

Writes a copy without the optimizer's state (Adam keeps two arrays per parameter), for
sharing or bundling. The copy generates and evaluates like the original, and keeps its
loss history, but --resume refuses it because the optimizer state is gone.
--format safetensors writes the parameters under PyTorch's state-dict names (nn.Embedding,
nn.RNN/GRU/LSTM, nn.Linear; the tutorial's U/V/W model as an RNN with an identity input map),
with the vocabulary and configuration in the file's metadata: see docs/scaling.md. Models
PyTorch has no module for (Jordan, peephole or coupled LSTM) are refused.""",
    "import": """example:
  rnnlm import trained.safetensors --out model.npz
  rnnlm generate --model model.npz

Rebuilds an rnnlm model file, vocabulary included, from a safetensors file written by
'rnnlm export --format safetensors' or by examples/train_ddp.py (weights trained in PyTorch).
The new file has no training state (train it further with PyTorch, or train anew).""",
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
    data.add_argument("--keep-links", dest="link_placeholders", action="store_false", default=None,
                      help="keep links and r/..., u/... paths as words instead of replacing them by URL_TOKEN, "
                           "SUBREDDIT_TOKEN and USER_TOKEN (word level; placeholders are the default)")
    data.add_argument("--stream", action="store_true", default=None,
                      help="read the corpus as one continuous text (newlines kept as tokens) and train on "
                           "--batch-size parallel streams with the hidden state carried between windows")
    data.add_argument("--seq-length", type=int, metavar="T",
                      help="with --stream: tokens per window of truncated BPTT" + _d(TrainConfig, "seq_length"))
    data.add_argument("--max-sentence-length", type=int, metavar="N",
                      help="cut longer sentences into pieces of N tokens (a batch is padded to its longest)"
                           + _d(DataConfig, "max_sentence_length"))
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
    opt.add_argument("--learning-rate", type=float, metavar="LR",
                     help="initial learning rate (default: " + ", ".join(
                         f"{rate:g} for {name}" for name, rate in DEFAULT_LEARNING_RATES.items())
                     + "); on --resume, used from now on and the rule starts afresh")
    opt.add_argument("--batch-size", type=int, metavar="N",
                     help="sentences per batch; with --stream, parallel streams" + _d(TrainConfig, "batch_size"))
    opt.add_argument("--valid-fraction", type=float, metavar="F",
                     help="sequences held out for validation, or with --stream the end of the text"
                     + _d(TrainConfig, "valid_fraction") + "; by default none when that would hold out fewer than "
                     + f"{_default(TrainConfig, 'min_valid_tokens')} tokens, given explicitly always used")
    opt.add_argument("--seed", type=int, help="seed for initialisation, split and batch order" + _d(TrainConfig, "seed"))
    opt.add_argument("--optimizer", choices=OPTIMIZERS, help="update rule" + _d(TrainConfig, "optimizer"))
    opt.add_argument("--momentum", type=float, help="SGD momentum" + _d(TrainConfig, "momentum"))
    opt.add_argument("--clip", type=float, metavar="NORM", help="global gradient-norm limit" + _d(TrainConfig, "clip"))
    opt.add_argument("--no-clip", action="store_true", help="no gradient clipping")
    opt.add_argument("--evaluate-loss-after", type=int, metavar="N",
                     help="apply the learning-rate rule every N epochs" + _d(TrainConfig, "evaluate_loss_after"))
    opt.add_argument("--lr-schedule", choices=LR_SCHEDULES,
                     help="plateau: reduce the rate when the smoothed monitored loss stops improving; halving: the "
                          "tutorial's rule, halve whenever it rose" + _d(TrainConfig, "lr_schedule"))
    opt.add_argument("--lr-patience", type=int, metavar="N",
                     help="epochs without a gain before the plateau rule acts" + _d(TrainConfig, "lr_patience"))
    opt.add_argument("--min-lr", type=float, metavar="LR",
                     help="the rule never goes below this (default: the learning rate / 100)")
    opt.add_argument("--time-limit", type=float, metavar="SECONDS",
                     help="stop at the first batch boundary after this many seconds of training, saving a "
                          "resumable model (default: no limit)")
    opt.add_argument("--resume", nargs="?", const=True, metavar="MODEL.npz",
                     help="continue training from --out or its .last file, whichever got further (or from "
                          "MODEL.npz) up to --epochs in total")
    opt.add_argument("--plot", metavar="LOSS.png", help="write a PNG of the loss curves and the learning rate")
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
                   help="end a sentence after N tokens, punctuation included, at most "
                   f"{GenerateConfig.max_tokens:,}" + _d(GenerateConfig, "max_length"))
    p.add_argument("--temperature", type=float, metavar="T",
                   help=f"0 (or below {GenerateConfig.greedy_below:g}) is greedy, below 1 is safer, above 1 wilder"
                   + _d(GenerateConfig, "temperature"))
    p.add_argument("--prefix", metavar="TEXT", help="start every sentence with these words (characters at char level); "
                   "for a stream model, the text that primes the state")
    p.add_argument("--no-blocklist", action="store_true",
                   help="also draw the words of rnnlm's short blocklist of slurs and explicit terms "
                        "(masked by default at word level; see rnnlm/data/blocklist.py)")
    p.add_argument("--length", type=int, metavar="N",
                   help="for a stream model: tokens (characters at char level) of continuous text, newlines included, "
                   f"at most {GenerateConfig.max_tokens:,}" + _d(GenerateConfig, "length"))
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
    p.add_argument("--format", choices=["npz", "safetensors"], default="npz",
                   help="npz: an rnnlm model file; safetensors: for PyTorch, see docs/scaling.md (default: npz)")
    p.set_defaults(run=cmd_export)

    p = command("import", "rebuild an rnnlm model file from a safetensors export (e.g. trained in PyTorch)")
    p.add_argument("file", metavar="FILE.safetensors", help="written by 'rnnlm export --format safetensors'")
    p.add_argument("--out", required=True, metavar="MODEL.npz", help="the rnnlm model file to write")
    p.set_defaults(run=cmd_import)

    p = command("download", "download a dataset and verify its checksum")
    p.add_argument("dataset", choices=["reddit"], help="reddit: the tutorial's Reddit comments")
    p.add_argument("--dir", default="data", help="folder to save into (default: data)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--force", action="store_true",
                   help="replace an existing file (or symbolic link) of that name that differs from the published "
                        "one; without it such a file is kept and nothing is downloaded (a directory, pipe or device "
                        "is never replaced)")
    p.add_argument("--url", help=argparse.SUPPRESS)   # for tests and mirrors
    p.add_argument("--sha1", help=argparse.SUPPRESS)  # the git blob SHA-1 expected from --url
    p.set_defaults(run=cmd_download)
    _add_info_and_course_commands(command)
    _add_trees_parser(commands)
    return parser


EXAMPLES["course"] = """example:
  rnnlm course build            # notebooks/solutions/NN-name.ipynb -> notebooks/NN-name.ipynb
  rnnlm course build --check    # exit 1 if the student edition is out of date

The student edition is the solution edition with every region between '### BEGIN SOLUTION' and
'### END SOLUTION' replaced by 'raise NotImplementedError()', outputs cleared. Also runnable as
'python -m rnnlm.course build'. Deterministic: building twice changes nothing."""
EXAMPLES["check"] = """example:
  rnnlm check notebooks/03-bptt-and-gradient-checking.ipynb

Runs the notebook top to bottom in a fresh Jupyter kernel (needs the course extra:
pip install -e ".[course]") and prints, for each exercise, 'passed' or the error its cell or
its check cell raised. The checks come from notebooks/solutions/, so editing a check does not
change the grade. Exit code 0 when every exercise passes, 1 when not."""


EXAMPLES["info"] = """example:
  rnnlm info                      # the bundled model
  rnnlm info --model model.npz --words 20

Prints the model's kind (FastRNN, RNNNumpy or LanguageModel), its sizes and parameter count,
its level (word or char), its vocabulary with the most and least frequent words, and a summary
of its training history (first, last and best epochs)."""


def _add_info_and_course_commands(command):
    from rnnlm.course import SOLUTIONS_DIR, STUDENT_DIR
    p = command("info", "show a model file's kind, sizes, vocabulary and training history")
    p.add_argument("--model", metavar="MODEL.npz", help="a model file (default: the bundled Reddit model)")
    p.add_argument("--words", type=int, default=10, metavar="N",
                   help="most and least frequent words to list (default: 10)")
    p.set_defaults(run=cmd_info)

    p = command("course", "build the student edition of the notebooks from the solution edition")
    p.add_argument("action", choices=["build"], help="build: write the student notebooks")
    p.add_argument("--check", action="store_true", help="write nothing; exit 1 if a student notebook is stale")
    p.add_argument("--solutions", default=str(SOLUTIONS_DIR), metavar="DIR",
                   help="the solution notebooks (default: notebooks/solutions)")
    p.add_argument("--out", default=str(STUDENT_DIR), metavar="DIR", help="the student edition (default: notebooks)")
    p.set_defaults(run=cmd_course)

    p = command("check", "grade the exercises of a course notebook from the terminal")
    p.add_argument("notebook", metavar="NOTEBOOK.ipynb", help="a notebook of the course, e.g. your copy of 02-...")
    p.add_argument("--timeout", type=int, default=300, metavar="S", help="seconds allowed per cell (default: 300)")
    p.set_defaults(run=cmd_check)


# --------------------------------------------------------------------- trees (Tree-LSTM sentiment)

SENTIMENT_NAMES = ("very negative", "negative", "neutral", "positive", "very positive")

TREES_EXAMPLES = """examples:
  rnnlm trees train ../shared/data/sst/train.txt --dev ../shared/data/sst/dev.txt --out sst.npz --time-limit 840
  rnnlm trees evaluate --model sst.npz ../shared/data/sst/test.txt
  rnnlm trees predict --model sst.npz "not a bad film at all"
  rnnlm trees predict --model sst.npz "((not (a (bad film))) (at all))"

A Tree-LSTM (Tai et al. 2015) over Stanford-Sentiment-Treebank-style trees: one bracketed tree per
line with a label 0-4 on every node, e.g. (3 (2 It) (4 (2 's) (3 lovely)))."""


def _trees_read(path):
    from rnnlm.data.trees import read_trees
    return read_trees(path)


def _scores_text(scores):
    return (f"fine-grained {scores.fine:.1%} ({scores.sentences} sentences), binary {scores.binary:.1%} "
            f"({scores.binary_sentences} non-neutral), all phrases {scores.all_phrases:.1%} "
            f"({scores.phrases:,} nodes), loss {scores.loss:.4f} nats/node")


def cmd_trees_train(args):
    from rnnlm.models.tree_lstm import TreeLSTM, TreeLSTMConfig
    from rnnlm.training.trees import TreeTrainConfig, encode_all, train_trees
    from rnnlm.data.trees import build_vocabulary
    given = {f.name: getattr(args, f.name) for f in fields(TreeTrainConfig) if getattr(args, f.name, None) is not None}
    if args.no_clip:
        given["clip"] = None
    config = TreeTrainConfig(**given)
    shape = {f.name: getattr(args, f.name) for f in fields(TreeLSTMConfig)
             if f.name != "vocab_size" and getattr(args, f.name, None) is not None}
    TreeLSTMConfig(**shape)  # refuse impossible sizes before reading any data
    trees = _trees_read(args.train)
    dev = _trees_read(args.dev) if args.dev else []
    vocabulary = build_vocabulary(trees, config.vocabulary_size)
    model = TreeLSTM(TreeLSTMConfig(vocab_size=len(vocabulary), **shape), seed=config.seed, dtype=np.float32,
                     method=args.method)
    encoded, dev_encoded = encode_all(trees, vocabulary), encode_all(dev, vocabulary)
    nodes = sum(t.num_nodes for t in encoded)
    print(f"Read {len(trees):,} training trees ({nodes:,} labelled nodes) from {args.train}"
          + (f" and {len(dev):,} development trees from {args.dev}" if dev else "; no --dev: the last epoch is kept"))
    print(f"Vocabulary: {len(vocabulary):,} tokens (UNKNOWN_TOKEN included) of {vocabulary.unique_tokens:,} "
          "distinct training tokens.")
    c = model.config
    num_params = sum(int(p.size) for p in model.params.values())
    print(f"Model: Tree-LSTM, embedding {c.embed_size}, hidden {c.hidden_size}, {c.num_classes} classes, "
          f"{num_params:,} parameters, run by {args.method}; optimizer {config.optimizer}, learning rate "
          f"{config.learning_rate:g}, batch {config.batch_size}, l2 {config.l2:g}, clip {config.clip}, "
          f"word dropout {config.word_dropout:g}"
          + (f", time limit {config.time_limit:g} s" if config.time_limit else "") + ".")
    best = {"epoch": None, "fine": -1.0, "params": None}
    history = []

    def on_epoch(event):
        r = event.record
        history.append({"epoch": r.epoch, "train_loss": r.train_loss, "seconds": r.seconds, "complete": r.complete,
                        "dev": None if r.dev is None else r.dev.to_dict()})
        improved = r.dev is None or r.dev.fine > best["fine"]
        if improved:
            best.update(epoch=r.epoch, fine=-1.0 if r.dev is None else r.dev.fine,
                        params={k: v.copy() for k, v in model.params.items()})
        kept = model.params
        model.params = best["params"]
        try:
            ckpt.save_tree_model(args.out, model, vocabulary, train_config=config,
                                 training={"epoch": r.epoch, "best_epoch": best["epoch"], "history": history})
        finally:
            model.params = kept
        saved.append(r.epoch)
        dev_text = "" if r.dev is None else f"; dev {_scores_text(r.dev)}"
        cut = "" if r.complete else " (cut short by the time limit)"
        note = f"saved {args.out}" if improved else f"{args.out} keeps epoch {best['epoch']}"
        print(f"epoch {r.epoch}/{event.epochs}{cut}: train loss {r.train_loss:.4f} nats/node, "
              f"{r.trees_per_second:,.0f} trees/s, {r.seconds:.1f} s{dev_text}; {note}", flush=True)

    saved = []
    progress = _TrainingProgress(not args.no_progress, on_epoch)
    try:
        state = train_trees(model, encoded, config, dev_trees=dev_encoded, callback=progress)
    except KeyboardInterrupt:
        progress.close()
        kept = (f"{args.out} holds the model of epoch {best['epoch']} (saved after epoch {saved[-1]})" if saved
                else (f"{args.out} is as it was" if Path(args.out).exists() else "nothing was saved"))
        print(f"{PROG}: interrupted during epoch {len(saved) + 1}; {kept}", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        progress.close()
    which = "the best development fine-grained accuracy" if dev else "the last epoch"
    print(f"Done: {state.epoch} epochs; {args.out} holds epoch {best['epoch']} ({which}).")
    return 0


def cmd_trees_evaluate(args):
    from rnnlm.training.trees import encode_all, evaluate
    checkpoint = ckpt.load_tree_model(args.model)
    trees = _trees_read(args.trees)
    encoded = encode_all(trees, checkpoint.vocabulary)
    scores = evaluate(checkpoint.model, encoded)
    unknown = sum(int(np.sum(t.word == checkpoint.vocabulary.unknown_index)) for t in encoded)
    leaves = sum(int(np.sum(t.left < 0)) for t in encoded)
    print(f"{args.trees}: {len(trees):,} trees, {leaves:,} words ({unknown / max(leaves, 1):.1%} UNKNOWN_TOKEN)")
    print(f"fine-grained accuracy (5 classes, sentences): {scores.fine:.1%}")
    print(f"binary accuracy (non-neutral sentences, {scores.binary_sentences}): {scores.binary:.1%}")
    print(f"all-phrase accuracy (5 classes, {scores.phrases:,} nodes): {scores.all_phrases:.1%}")
    print(f"cross-entropy: {scores.loss:.4f} nats per node")
    return 0


def _labelled(tree, probs):
    """The tree with each node's predicted label, as brackets; probs in post-order."""
    predicted = {id(node): int(p.argmax()) for node, p in zip(tree.postorder(), probs)}
    return tree.bracketed(lambda node: predicted[id(node)])


def cmd_trees_predict(args):
    from rnnlm.data.trees import encode_tree, tree_from_text
    from rnnlm.training.trees import binary_prediction
    checkpoint = ckpt.load_tree_model(args.model)
    for text in args.text:
        if not text.strip():
            raise DataError("empty text; give a sentence or a bracketed tree")
        tree = tree_from_text(text, args.binarize)
        encoded = encode_tree(tree, checkpoint.vocabulary)
        unknown = [w for w in tree.leaves() if w not in checkpoint.vocabulary.word_to_index]
        if unknown:
            print(f"{PROG}: note: not in the model's vocabulary, read as UNKNOWN_TOKEN: "
                  f"{', '.join(repr(w) for w in dict.fromkeys(unknown))}", file=sys.stderr)
        probs = checkpoint.model.node_probabilities([encoded])[0]
        root = probs[-1]
        label = int(root.argmax())
        polarity = "positive" if binary_prediction(root) else "negative"
        print(f"{label} ({SENTIMENT_NAMES[label]}); binary: {polarity}; p = "
              + " ".join(f"{p:.3f}" for p in root))
        if args.tree:
            print(_labelled(tree, probs))
    return 0


def _add_trees_parser(commands):
    from rnnlm.models.tree_lstm import METHODS, TreeLSTMConfig
    from rnnlm.training.trees import TreeTrainConfig
    trees = commands.add_parser("trees", help="Tree-LSTM sentiment over parse trees (SST): train, evaluate, predict",
                                description="A Tree-LSTM sentiment classifier over binary parse trees with a "
                                            "label 0-4 on every node (the Stanford Sentiment Treebank).",
                                epilog=TREES_EXAMPLES, formatter_class=_Formatter)
    sub = trees.add_subparsers(dest="trees_command", metavar="COMMAND", required=True)

    p = sub.add_parser("train", help="train on labelled trees", epilog=TREES_EXAMPLES, formatter_class=_Formatter,
                       description="Train a Tree-LSTM on labelled trees. After each epoch the model is scored on "
                                   "--dev, and --out is rewritten atomically with the epoch of best development "
                                   "fine-grained accuracy (the last epoch without --dev). Ctrl-C keeps what was "
                                   "saved and exits 130.")
    p.add_argument("train", metavar="TRAIN", help="training trees, one bracketed tree per line")
    p.add_argument("--dev", metavar="DEV", help="development trees, scored after every epoch")
    p.add_argument("--out", required=True, metavar="MODEL.npz", help="model file")
    p.add_argument("--vocab-size", dest="vocabulary_size", type=int, metavar="N",
                   help="tokens kept, UNKNOWN_TOKEN included" + _d(TreeTrainConfig, "vocabulary_size"))
    p.add_argument("--embed-size", dest="embed_size", type=int, metavar="E",
                   help="word embedding width" + _d(TreeLSTMConfig, "embed_size"))
    p.add_argument("--hidden", dest="hidden_size", type=int, metavar="H",
                   help="Tree-LSTM units" + _d(TreeLSTMConfig, "hidden_size"))
    p.add_argument("--epochs", type=int, metavar="N", help="epochs" + _d(TreeTrainConfig, "epochs"))
    p.add_argument("--batch-size", type=int, metavar="N", help="trees per batch" + _d(TreeTrainConfig, "batch_size"))
    p.add_argument("--learning-rate", type=float, metavar="LR",
                   help="learning rate" + _d(TreeTrainConfig, "learning_rate"))
    p.add_argument("--optimizer", choices=OPTIMIZERS, help="update rule" + _d(TreeTrainConfig, "optimizer"))
    p.add_argument("--l2", type=float, metavar="LAMBDA",
                   help="L2 penalty on the weight matrices" + _d(TreeTrainConfig, "l2"))
    p.add_argument("--clip", type=float, metavar="NORM", help="global gradient-norm limit" + _d(TreeTrainConfig, "clip"))
    p.add_argument("--no-clip", action="store_true", help="no gradient clipping")
    p.add_argument("--word-dropout", type=float, metavar="P",
                   help="fraction of a batch's words whose embedding is zeroed" + _d(TreeTrainConfig, "word_dropout"))
    p.add_argument("--seed", type=int, help="seed for initialisation and batch order" + _d(TreeTrainConfig, "seed"))
    p.add_argument("--time-limit", type=float, metavar="SECONDS",
                   help="stop after this many seconds of training (the epoch running then is scored and kept)")
    p.add_argument("--method", choices=METHODS, default=METHODS[0],
                   help=f"how the trees are batched; all give the same numbers (default: {METHODS[0]})")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(run=cmd_trees_train)

    p = sub.add_parser("evaluate", help="accuracies of a tree model on labelled trees", epilog=TREES_EXAMPLES,
                       formatter_class=_Formatter,
                       description="Fine-grained (5-class) and binary (labels 0-1 vs 3-4, neutral sentences "
                                   "dropped) sentence accuracy, all-phrase accuracy and cross-entropy per node.")
    p.add_argument("trees", metavar="TREES", help="labelled trees, one bracketed tree per line")
    p.add_argument("--model", required=True, metavar="MODEL.npz", help="a model from 'rnnlm trees train'")
    p.set_defaults(run=cmd_trees_evaluate)

    p = sub.add_parser("predict", help="sentiment of sentences or bracketed trees", epilog=TREES_EXAMPLES,
                       formatter_class=_Formatter,
                       description="Prints the predicted label 0-4, the binary polarity and the five "
                                   "probabilities per input. No parser is needed: a TEXT starting with '(' is "
                                   "read as a bracketed tree (labels optional: '((not bad) .)'); any other text "
                                   "is split into Treebank tokens and composed by a balanced binary tree "
                                   "(--binarize right: (a (b (c d)))). SST tokens are cased, as written; words the model does not know are read as UNKNOWN_TOKEN (a note on stderr lists them).")
    p.add_argument("text", nargs="+", metavar="TEXT", help="a sentence, or a bracketed tree")
    p.add_argument("--model", required=True, metavar="MODEL.npz", help="a model from 'rnnlm trees train'")
    p.add_argument("--binarize", choices=("balanced", "right"), default="balanced",
                   help="tree shape for plain text (default: balanced)")
    p.add_argument("--tree", action="store_true", help="also print the tree with every node's predicted label")
    p.set_defaults(run=cmd_trees_predict)


def _one_line(message):
    return printable(" ".join(str(message).split()) or "unknown error")


# C0 and C1 control characters (ESC starts a terminal escape sequence, 0x9b is a one-byte CSI) and
# the bidirectional overrides that reorder what a terminal shows; tab stays.
_ESCAPES = {code: f"\\x{code:02x}" for code in (*range(0x20), 0x7f, *range(0x80, 0xa0)) if code != 0x09}
_ESCAPES.update({code: f"\\u{code:04x}" for code in (*range(0x202a, 0x202f), *range(0x2066, 0x206a))})
_ESCAPES.update({ord("\n"): "\\n", ord("\r"): "\\r"})


def printable(text):
    r"""`text` safe to print to a terminal: control characters from data (vocabulary words,
    generated text, file names) become visible escapes, so a corpus cannot move the cursor,
    recolour or clear the user's terminal: ESC [2J (clear screen) prints as \x1b[2J."""
    return str(text).translate(_ESCAPES)


class _OutputError(Exception):
    """Standard output could not be written (a full disk, /dev/full, an I/O error): not a closed pipe."""


class _ReportedWrites:
    """sys.stdout while rnnlm runs: a write or flush that fails for any reason but a closed pipe
    raises `_OutputError`, which `main` reports ("cannot write output: No space left on device")
    instead of letting the interpreter's last flush fail silently or with a traceback."""

    def __init__(self, stream):
        self._stream = stream

    def _guard(self, method, *args):
        try:
            return method(*args)
        except BrokenPipeError:
            raise
        except OSError as exc:
            raise _OutputError(exc.strerror or str(exc)) from None

    def write(self, text):
        return self._guard(self._stream.write, text)

    def flush(self):
        return self._guard(self._stream.flush)

    def __getattr__(self, name):
        return getattr(self._stream, name)


class _QuietWhenClosed:
    """sys.stdout for `train`: when the reader of the log goes away (`| head`), the log ends
    quietly and training goes on (and keeps saving); writes after that are dropped."""

    def __init__(self, stream):
        self._stream, self.closed_by_reader = stream, False

    def _guard(self, method, *args):
        if self.closed_by_reader:
            return None
        try:
            return method(*args)
        except BrokenPipeError:
            self.closed_by_reader = True
            _stdout_to_devnull(self._stream)
            return None

    def write(self, text):
        return self._guard(self._stream.write, text)

    def flush(self):
        return self._guard(self._stream.flush)

    def __getattr__(self, name):
        return getattr(self._stream, name)


def _flushed(stdout, code, error=None):
    """`code` once stdout is flushed (the end of --help and --version): 0 when its reader went away
    (`| head`), EXIT_ERROR with one line on stderr when it cannot be written."""
    if error is None:
        try:
            _ReportedWrites(stdout).flush()
        except (BrokenPipeError, _OutputError) as exc:
            error = exc
    if isinstance(error, BrokenPipeError):
        _stdout_to_devnull(stdout)
        return 0
    if error is not None:
        _stdout_to_devnull(stdout)
        print(f"{PROG}: error: cannot write output: {_one_line(error)}", file=sys.stderr)
        return EXIT_ERROR
    return code


def _stdout_to_devnull(stream):
    """Point file descriptor 1 at /dev/null, so the interpreter's last flush of a closed pipe is silent
    (what the Python docs recommend for SIGPIPE)."""
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, ValueError):  # not a real file (e.g. captured by a test)
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)


def _training_numerics(args):
    """During `train`, NumPy's overflow/invalid warnings are not shown: the training loop checks
    every loss and gradient norm itself and reports a diverged run as one error line, which the
    warnings printed on the way there would break up. Other commands keep NumPy's defaults."""
    if args.command != "train":
        return contextlib.nullcontext()
    return np.errstate(over="ignore", invalid="ignore", divide="ignore")


def _terminate(signum, frame):
    """SIGTERM (kill, a batch system's time limit) is handled like Ctrl-C: files cleaned, last epoch kept."""
    raise KeyboardInterrupt


def _out_of_memory(args):
    if args.command == "train":
        return "out of memory; try a smaller --vocab-size, --hidden or --batch-size"
    model = getattr(args, "model", None) or "the bundled model"
    return f"out of memory while {args.command.rstrip('e')}ing with {model}; the model is too large for this machine"


def main(argv=None):
    """Run the command line; returns the exit code (0 success, 1 gradcheck failed, 2 bad input, 130 Ctrl-C/SIGTERM)."""
    for stream in (sys.stdout, sys.stderr):
        try:  # never crash on a terminal that cannot show a character of a generated sentence
            stream.reconfigure(errors="backslashreplace")
        except (AttributeError, ValueError):
            pass
    parser = build_parser()
    stdout = sys.stdout
    sys.stdout = _ReportedWrites(stdout)
    try:
        args = parser.parse_args(argv)  # writes --help and --version itself, then raises SystemExit
    except SystemExit as exc:  # --help, --version, usage errors (exit 2): flushed here, or reported
        return _flushed(stdout, exc.code)
    except (BrokenPipeError, _OutputError) as exc:
        return _flushed(stdout, 0, exc)
    finally:
        sys.stdout = stdout
    if args.command == "train":
        sys.stdout = _QuietWhenClosed(_ReportedWrites(stdout))
    else:
        sys.stdout = _ReportedWrites(stdout)
    try:
        previous_sigterm = signal.signal(signal.SIGTERM, _terminate)
    except ValueError:  # not the main thread: leave signals alone
        previous_sigterm = None
    try:
        with _guarded_outputs(args), _training_numerics(args):
            code = args.run(args)
        sys.stdout.flush()  # buffered output fails here, not in the interpreter's silent last flush
        return code
    except _OutputError as exc:
        _stdout_to_devnull(stdout)  # what could not be written is dropped, not retried at exit
        message = f"cannot write output: {exc}"
    except RnnlmError as exc:
        message = str(exc)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # the reader of our output went away (`| head`): stop quietly, as Unix tools do
        _stdout_to_devnull(stdout)
        return 0
    except MemoryError:
        message = _out_of_memory(args)
    except OSError as exc:
        name = f" {exc.filename}" if getattr(exc, "filename", None) else ""
        message = f"{exc.strerror or exc}{':' + name if name else ''}"
    finally:
        sys.stdout = stdout
        if previous_sigterm is not None:
            signal.signal(signal.SIGTERM, previous_sigterm)
    print(f"{PROG}: error: {_one_line(message)}", file=sys.stderr)
    return EXIT_ERROR

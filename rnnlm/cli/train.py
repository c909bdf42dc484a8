"""`rnnlm train`: reads the corpus, builds or resumes a model, trains it with progress, saves after
every epoch (the best one when validation steers), plots the curves; Ctrl-C keeps the last
finished epoch.
"""

import sys
from dataclasses import replace
from pathlib import Path

from rnnlm.cli.common import EXIT_INTERRUPTED, OUT_RULES, PROG, add_threads_option, default_note, default_of, describe, given_fields, loss_text, threads_of, truncation, printable
from rnnlm.cli.outputs import last_path
from rnnlm.cli.progress import TrainingProgress
from rnnlm.config import CELLS, DEFAULT_LEARNING_RATES, DataConfig, FORMATS, LEVELS, LR_SCHEDULES, ModelConfig, OPTIMIZERS, SOFTMAXES, TrainConfig
from rnnlm.errors import ConfigError
from rnnlm.io import checkpoint as ckpt, kinds, safe_files
from rnnlm.training import loop as training, resume
from rnnlm.training.best import Best
from rnnlm.training.plots import plot_history
from rnnlm.wording import counted


def _resume_configs(args, checkpoint):
    """Configs for a resumed run: the file's, with the training options the user gave on top."""
    return resume.resumed_configs(
        checkpoint.path, checkpoint.model.config, checkpoint.data_config, checkpoint.train_config,
        level=checkpoint.level, vocabulary_size=len(checkpoint.vocabulary),
        state_data=checkpoint.state.data if checkpoint.state is not None else {},
        given_model=given_fields(args, ModelConfig), given_data=given_fields(args, DataConfig),
        given_train=given_fields(args, TrainConfig), max_records=args.max_records, no_clip=args.no_clip)


def _resume_source(args, threads=1):
    """The file --resume continues from: the one given, else whichever of --out and its .last file got further."""
    load = lambda path: ckpt.load_model(path, threads=threads)  # noqa: E731
    if args.resume is not True:
        return load(args.resume)
    return resume.resume_source(args.out, last_path(args.out), load)


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
    """`plot_history` into `path`, written atomically: an error leaves the old file (or none), never half a PNG."""
    with safe_files.atomic_write(path) as handle:
        plot_history(handle, history, vocab_size, level)


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
    """`rnnlm train`: configs, corpus, model and state, the banner, then the epochs, saved as they finish."""
    threads = threads_of(args)
    if args.max_records is not None and args.max_records < 1:
        raise ConfigError(f"--max-records must be a positive integer, got {args.max_records}")
    checkpoint, data_config, model_config, train_config = _run_configs(args, threads)
    prepared = _prepare_training_data(args, data_config, train_config,
                                      checkpoint.vocabulary if checkpoint is not None else None)
    for line in prepared["report"]:
        print(printable(line))
    train_config = replace(train_config, valid_fraction=prepared["valid_fraction"])  # what was held out, for --resume
    model, state = _model_and_state(args, checkpoint, data_config, model_config, train_config, prepared, threads)
    _print_plan(model, data_config, train_config, state, prepared)
    if state.epoch >= train_config.epochs:
        print(f"{checkpoint.path} has already been trained for {state.epoch} epochs; "
              f"ask for more with --epochs (now {train_config.epochs}).")
        return 0

    keep_best = training.monitors_validation(train_config, prepared["valid_tokens"])
    saver = _EpochSaver(args.out, model, prepared["vocabulary"], data_config, train_config, keep_best)
    progress = TrainingProgress(show_bar=not args.no_progress, on_epoch=saver)
    try:
        state = prepared["train"](model, train_config, progress, state)
    except KeyboardInterrupt:
        progress.close()
        finished = saver.finished
        print(_interrupted(args, state.epoch + len(finished) + 1, finished, saver.resume_file), file=sys.stderr)
        if finished and args.plot:
            _plot(args.plot, finished[-1].history, len(prepared["vocabulary"]), data_config.level)
        return EXIT_INTERRUPTED
    except training.TrainingDiverged as exc:
        raise training.TrainingDiverged(f"{exc}; stopped, no diverged parameters were saved: "
                                        f"{_kept_after_divergence(args.out, saver)}") from None
    finally:
        progress.close()
    print(_summary(state, train_config, keep_best, args.out, saver.resume_file))
    if args.plot:
        _plot(args.plot, state.history, len(prepared["vocabulary"]), data_config.level)
        print(f"Loss and learning-rate curves written to {args.plot}.")
    return 0


def _run_configs(args, threads):
    """(checkpoint, data_config, model_config, train_config): a resumed file's, or new ones from the options.

    checkpoint is None for a new run. Its model options are validated now, before the corpus is
    read; the vocabulary size is filled in once the corpus has built the vocabulary."""
    if args.resume:
        checkpoint = _resume_source(args, threads=threads)
        resume.require_training_state(checkpoint.path, checkpoint.state, checkpoint.metadata)
        return (checkpoint, *_resume_configs(args, checkpoint))
    data_config = DataConfig(**given_fields(args, DataConfig))
    train_config = TrainConfig(**given_fields(args, TrainConfig))
    if args.no_clip:
        train_config = replace(train_config, clip=None)
    given_model = given_fields(args, ModelConfig)
    if data_config.stream and args.bptt_truncate is None:
        given_model["bptt_truncate"] = None  # a stream window is already the truncation
    model_config = ModelConfig(**{**given_model, "vocab_size": data_config.vocabulary_size})
    return None, data_config, model_config, train_config


def _model_and_state(args, checkpoint, data_config, model_config, train_config, prepared, threads):
    """(model, TrainingState) to train: a new model at epoch 0, or the resumed file's, checked against the corpus."""
    if checkpoint is None:
        model_config = replace(model_config, vocab_size=len(prepared["vocabulary"]))
        kind = "language-model" if data_config.stream else None  # stream models carry state: LanguageModel
        model = kinds.build_model(model_config, seed=train_config.seed, kind=kind,
                                  counts=prepared["vocabulary"].counts, threads=threads)
        return model, training.TrainingState(epoch=0, learning_rate=float(train_config.learning_rate),
                                             data=prepared["data"])
    resume.refuse_other_corpus(checkpoint.path, args.corpus, checkpoint.state.data, prepared["data"]["fingerprint"])
    state = resume.resumed_state(checkpoint.state, data=prepared["data"],
                                 learning_rate=None if args.learning_rate is None else train_config.learning_rate)
    at = f"epoch {state.epoch}" + (f", batch {state.batch}" if state.batch else "")
    print(f"Resuming {checkpoint.path} after {at} (learning rate {state.learning_rate:g}"
          f"{', as given' if args.learning_rate is not None else ''}).")
    return checkpoint.model, state


def _print_plan(model, data_config, train_config, state, prepared):
    """The banner: the model, the data and the training options, and which loss steers."""
    num_params = sum(int(p.size) for p in model.params.values())
    print(f"Model: {describe(model, data_config.level)}; {num_params:,} parameters.")
    limit = f", time limit {train_config.time_limit:g} s" if train_config.time_limit else ""
    print(f"Training on {prepared['train_text']}, validating on {prepared['valid_text']}; optimizer "
          f"{train_config.optimizer}, learning rate {state.learning_rate:g} (floor {train_config.lr_floor:g}), "
          f"batch size {train_config.batch_size}, clip {train_config.clip}{limit}.")
    print(f"Rule: {_monitor_text(train_config, prepared['valid_tokens'], prepared['why_no_valid'])}.")


class _EpochSaver:
    """The "epoch" callback of `rnnlm train`: saves every finished epoch and prints its line.

    Every epoch goes to resume_file (--out itself, or its .last file when --out keeps the best
    validation epoch, which is then written too whenever it is the best so far). finished: the
    states saved in this run, for the Ctrl-C and divergence messages.
    """

    def __init__(self, out, model, vocabulary, data_config, train_config, keep_best):
        self.out, self.model, self.vocabulary = out, model, vocabulary
        self.data_config, self.train_config, self.keep_best = data_config, train_config, keep_best
        self.resume_file = last_path(out) if keep_best else Path(out)
        self.finished = []

    def save(self, path, state):
        ckpt.save_model(path, self.model, self.vocabulary, level=self.data_config.level,
                        data_config=self.data_config, train_config=self.train_config, state=state)

    def __call__(self, event):
        r, st = event.record, event.state
        valid = "" if r.valid_loss is None else f", {loss_text('valid', r.valid_loss)}"
        self.save(self.resume_file, st)
        saved = str(self.resume_file)
        if self.keep_best and Best(st.best_epoch, st.best_loss).holds(r.epoch):  # this epoch is the best so far
            self.save(self.out, st)
            saved += f" and {self.out} (best validation so far)"
        self.finished.append(st)
        partial = "" if r.complete else f" (stopped by the time limit after batch {r.batches}/{r.num_batches})"
        print(f"epoch {r.epoch}/{event.epochs}{partial}: {loss_text('train', r.train_loss)}"
              f"{valid}, learning rate {r.learning_rate:g}, {r.tokens_per_second:,.0f} tokens/s, {r.seconds:.1f} s"
              f"; saved {saved}{_rate_change(r, self.train_config)}", flush=True)
        if event.worse_than_uniform:
            print(f"{PROG}: warning: after epoch {r.epoch} the {r.monitored} loss is worse than a uniform guess "
                  f"(log {self.model.config.vocab_size} = {event.uniform_loss:.2f} nats): learning rate "
                  f"{r.learning_rate:g} is likely too large for {self.train_config.optimizer}; try "
                  f"--learning-rate {r.learning_rate / 10:g}", file=sys.stderr, flush=True)


def _kept_after_divergence(out, saver):
    """What is on disk after a divergence: the last good epoch, or --out untouched (or never written)."""
    if saver.finished:
        return f"{saver.resume_file} holds the last good epoch ({saver.finished[-1].epoch})"
    return f"{out} was not written" if not Path(out).exists() else f"{out} is as it was"


def _summary(state, train_config, keep_best, out, resume_file):
    """The closing line: how the run ended, its final losses and which file keeps which epoch."""
    final = state.history[-1]
    summary = f"Done: {counted(state.epoch, 'epoch')}"
    if not final.complete or state.epoch < train_config.epochs:
        summary = (f"Stopped by the time limit ({train_config.time_limit:g} s) after "
                   f"{counted(state.epoch, 'epoch')}" + (f" and {counted(state.batch, 'batch', 'batches')}" if state.batch else ""))
    summary += f"; final {loss_text('train', final.train_loss)}"
    if final.valid_loss is not None:
        summary += f", {loss_text('validation', final.valid_loss)}"
    if keep_best:
        best = next(r for r in state.history if r.epoch == state.best_epoch)
        summary += (f"; kept epoch {state.best_epoch} ({loss_text('best validation', best.valid_loss)}) in "
                    f"{out}; the last epoch, to --resume from, is in {resume_file}.")
    else:
        summary += f"; kept the last epoch in {out}."
    return summary


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
                         max_sentence_length=data_config.max_sentence_length, min_count=data_config.min_count)
    fraction, why = (train_config.valid_fraction, "") if args.resume else \
        _valid_fraction(args, train_config, corpus.X, corpus.Y)
    X, Y, Xv, Yv = training.split_train_valid(corpus.X, corpus.Y, fraction, train_config.seed)

    def run(model, config, callback, state):
        return training.train(model, X, Y, config, X_valid=Xv, Y_valid=Yv, callback=callback, state=state)

    return {"vocabulary": corpus.vocabulary, "report": corpus.report.lines(), "train": run, "valid_fraction": fraction,
            "valid_tokens": sum(len(y) for y in Yv), "why_no_valid": why,
            "train_text": f"{len(X)} sentences ({sum(len(y) for y in Y):,} tokens)",
            "valid_text": f"{len(Xv)} ({sum(len(y) for y in Yv):,} tokens)",
            "data": {"fingerprint": resume.corpus_fingerprint(corpus.X), "max_records": args.max_records,
                     "valid_fraction": fraction}}


def _prepare_stream(args, data_config, train_config, vocabulary):
    """`_prepare_training_data` for --stream: the text as one token stream, validated on its end."""
    from rnnlm.training.stream import load_stream, split_stream, train_stream, validation_streams
    corpus = load_stream(args.corpus, vocabulary_size=data_config.vocabulary_size, format=data_config.format,
                         level=data_config.level, vocabulary=vocabulary, max_records=args.max_records,
                         link_placeholders=data_config.link_placeholders, min_count=data_config.min_count)
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
            "data": {"fingerprint": resume.corpus_fingerprint([corpus.ids]), "max_records": args.max_records,
                     "valid_fraction": fraction}}


def add_train_parser(command):
    """`rnnlm train`: corpus, data, model and training options."""
    p = command("train", "train a language model on a corpus (Reddit CSV or plain text)")
    p.add_argument("corpus", help="a UTF-8 CSV with a 'body' column, or a text file (one document per line)")
    p.add_argument("--out", required=True, metavar="MODEL.npz",
                   help="model file, rewritten after every epoch" + OUT_RULES)
    _add_data_options(p.add_argument_group("data"))
    _add_model_options(p.add_argument_group("model"))
    _add_training_options(p.add_argument_group("training"))
    p.set_defaults(run=cmd_train)


def _add_data_options(data):
    """`rnnlm train`'s data group: format, level, vocabulary, stream."""
    data.add_argument("--format", choices=FORMATS, help="corpus format; auto: .csv is reddit-csv" + default_note(DataConfig, "format"))
    data.add_argument("--level", choices=LEVELS, help="word tokens, or characters (each line a sequence)"
                                                      + default_note(DataConfig, "level"))
    data.add_argument("--vocab-size", dest="vocabulary_size", type=int, metavar="N",
                      help="words kept at most, UNKNOWN_TOKEN included" + default_note(DataConfig, "vocabulary_size"))
    data.add_argument("--min-count", dest="min_count", type=int, metavar="K",
                      help="a word seen fewer than K times becomes UNKNOWN_TOKEN (word level; 1 keeps every word, "
                           "the tutorial's rule)" + default_note(DataConfig, "min_count"))
    data.add_argument("--max-records", type=int, metavar="N", help="use only the first N comments/lines")
    data.add_argument("--keep-links", dest="link_placeholders", action="store_false", default=None,
                      help="keep links and r/..., u/... paths as words instead of replacing them by URL_TOKEN, "
                           "SUBREDDIT_TOKEN and USER_TOKEN (word level; placeholders are the default)")
    data.add_argument("--stream", action="store_true", default=None,
                      help="read the corpus as one continuous text (newlines kept as tokens) and train on "
                           "--batch-size parallel streams with the hidden state carried between windows")
    data.add_argument("--seq-length", type=int, metavar="T",
                      help="with --stream: tokens per window of truncated BPTT" + default_note(TrainConfig, "seq_length"))
    data.add_argument("--max-sentence-length", type=int, metavar="N",
                      help="cut longer sentences into pieces of N tokens (a batch is padded to its longest)"
                           + default_note(DataConfig, "max_sentence_length"))


def _add_model_options(model):
    """`rnnlm train`'s model group: cell, sizes, LSTM options, output layer, dropout, tied weights."""
    model.add_argument("--cell", choices=CELLS, help="recurrent cell" + default_note(ModelConfig, "cell"))
    model.add_argument("--hidden", dest="hidden_size", type=int, metavar="H",
                       help="hidden units per layer" + default_note(ModelConfig, "hidden_size"))
    model.add_argument("--bptt-truncate", dest="bptt_truncate", type=truncation, metavar="K",
                       help="steps the error flows back, or 'full'" + default_note(ModelConfig, "bptt_truncate"))
    model.add_argument("--layers", dest="num_layers", type=int, metavar="L",
                       help="stacked recurrent layers" + default_note(ModelConfig, "num_layers"))
    model.add_argument("--embed-size", dest="embed_size", type=int, metavar="E",
                       help="word embedding width (default: one-hot input, the tutorial's model)")
    model.add_argument("--peephole", action="store_true", default=None, help="LSTM with peephole connections")
    model.add_argument("--coupled-gates", action="store_true", default=None,
                       help="LSTM with the input gate tied to 1 - forget gate")
    model.add_argument("--softmax", choices=SOFTMAXES,
                       help="output layer: one softmax over all words, or class-based (Mikolov et al. 2011: "
                            "words binned by frequency, much faster for big vocabularies, exact probabilities)"
                       + default_note(ModelConfig, "softmax"))
    model.add_argument("--classes", dest="num_classes", type=int, metavar="K",
                       help="word classes for --softmax class (default: sqrt of the vocabulary size)")
    model.add_argument("--dropout", type=float, metavar="P",
                       help="LanguageModel only (needs --embed-size, or --stream): in training, zero each unit of "
                            "the embedding output, between stacked layers and before the softmax with probability "
                            "P (never the recurrent connections; off in evaluation and generation)"
                            + default_note(ModelConfig, "dropout"))
    model.add_argument("--tie-weights", dest="tie_weights", action="store_true", default=None,
                       help="LanguageModel only (needs --embed-size equal to --hidden and the full softmax): the "
                            "output matrix is the embedding's transpose, one parameter instead of two")


def _add_training_options(opt):
    """`rnnlm train`'s training group: epochs, rates, optimizer, limits, resume, plot, threads."""
    opt.add_argument("--epochs", type=int, metavar="N", help="total epochs" + default_note(TrainConfig, "epochs"))
    opt.add_argument("--learning-rate", type=float, metavar="LR",
                     help="initial learning rate (default: " + ", ".join(
                         f"{rate:g} for {name}" for name, rate in DEFAULT_LEARNING_RATES.items())
                     + "); on --resume, used from now on and the rule starts afresh")
    opt.add_argument("--batch-size", type=int, metavar="N",
                     help="sentences per batch; with --stream, parallel streams" + default_note(TrainConfig, "batch_size"))
    opt.add_argument("--valid-fraction", type=float, metavar="F",
                     help="sequences held out for validation, or with --stream the end of the text"
                     + default_note(TrainConfig, "valid_fraction") + "; by default none when that would hold out fewer than "
                     + f"{default_of(TrainConfig, 'min_valid_tokens')} tokens, given explicitly always used")
    opt.add_argument("--seed", type=int, help="seed for initialisation, split and batch order" + default_note(TrainConfig, "seed"))
    opt.add_argument("--optimizer", choices=OPTIMIZERS, help="update rule" + default_note(TrainConfig, "optimizer"))
    opt.add_argument("--momentum", type=float, help="SGD momentum" + default_note(TrainConfig, "momentum"))
    opt.add_argument("--clip", type=float, metavar="NORM", help="global gradient-norm limit" + default_note(TrainConfig, "clip"))
    opt.add_argument("--no-clip", action="store_true", help="no gradient clipping")
    opt.add_argument("--evaluate-loss-after", type=int, metavar="N",
                     help="apply the learning-rate rule every N epochs" + default_note(TrainConfig, "evaluate_loss_after"))
    opt.add_argument("--lr-schedule", choices=LR_SCHEDULES,
                     help="plateau: reduce the rate when the smoothed monitored loss stops improving; halving: the "
                          "tutorial's rule, halve whenever it rose" + default_note(TrainConfig, "lr_schedule"))
    opt.add_argument("--lr-patience", type=int, metavar="N",
                     help="epochs without a gain before the plateau rule acts" + default_note(TrainConfig, "lr_patience"))
    opt.add_argument("--min-lr", type=float, metavar="LR",
                     help="the rule never goes below this (default: the learning rate / 100)")
    opt.add_argument("--time-limit", type=float, metavar="SECONDS",
                     help="stop at the first batch boundary after this many seconds of training, saving a "
                          "resumable model (default: no limit)")
    opt.add_argument("--resume", nargs="?", const=True, metavar="MODEL.npz",
                     help="continue training from --out or its .last file, whichever got further (or from "
                          "MODEL.npz) up to --epochs in total")
    opt.add_argument("--plot", metavar="LOSS.png",
                     help="write a PNG of the loss curves and the learning rate" + OUT_RULES)
    opt.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_threads_option(opt)

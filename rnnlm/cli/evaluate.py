"""`rnnlm evaluate` (a model's loss and perplexity on a corpus) and `rnnlm gradcheck` (the tutorial's
numerical check of BPTT).
"""

import math

import numpy as np

from rnnlm.cli.common import add_threads_option, default_note, default_of, describe, load_checkpoint, threads_of, printable
from rnnlm.cli.progress import step_progress
from rnnlm.config import DataConfig, FORMATS, TrainConfig
from rnnlm.errors import ConfigError
from rnnlm.nn.numerics import perplexity
from rnnlm.wording import counted


GRADCHECK_SEED = 10  # the tutorial's np.random.seed(10) before its gradient check


def cmd_evaluate(args):
    if args.max_records is not None and args.max_records < 1:
        raise ConfigError(f"--max-records must be a positive integer, got {args.max_records}")
    checkpoint = load_checkpoint(args.model, threads=threads_of(args))
    if args.format == "auto" and checkpoint.data_config.format == "tokens":
        args.format = "tokens"  # a model trained on pre-tokenized text reads its test file the same way
    if checkpoint.data_config.stream:
        return _evaluate_stream(args, checkpoint)
    from rnnlm.data.corpus import load_corpus
    update, close = step_progress(not args.no_progress, "tokenizing", "doc")
    try:
        corpus = load_corpus(args.corpus, format=args.format, level=checkpoint.level, vocabulary=checkpoint.vocabulary,
                             max_records=args.max_records, link_placeholders=checkpoint.data_config.link_placeholders,
                             max_sentence_length=checkpoint.data_config.max_sentence_length, progress=update)
    finally:
        close()
    vocab = checkpoint.vocabulary
    for line in corpus.report.lines()[:2]:
        print(printable(line))
    trained = checkpoint.state.epoch if checkpoint.state is not None else 0
    print(f"Model: {checkpoint.path} ({describe(checkpoint.model, checkpoint.level)}), "
          f"trained {counted(trained, 'epoch')}.")
    tokens = corpus.num_tokens
    unknown = sum(vocab.unknown_count(y) for y in corpus.Y)
    update, close = step_progress(not args.no_progress, "scoring", "batch")
    try:
        total = float(checkpoint.model.total_loss(corpus.X, corpus.Y, progress=update))
    finally:
        close()
    loss = total / tokens
    print(f"Predicted tokens: {tokens:,} (SENTENCE_END counted, SENTENCE_START never predicted); "
          f"{unknown:,} ({unknown / tokens:.1%}) of them are UNKNOWN_TOKEN.")
    print(f"Uniform baseline: cross-entropy log({len(vocab)}) = {math.log(len(vocab)):.4f}, perplexity {len(vocab)}.")
    print(f"cross-entropy: {loss:.4f} nats per token")
    ppl = perplexity(loss)
    print(f"perplexity: {ppl:.2f}" if ppl < 1e6 else f"perplexity: {ppl:.6g}")
    return 0


def _evaluate_stream(args, checkpoint):
    """evaluate for a stream model: the file as one stream, one row, the state carried through it all."""
    from rnnlm.training.stream import batchify, load_stream, stream_total_loss
    corpus = load_stream(args.corpus, format=args.format, level=checkpoint.level, vocabulary=checkpoint.vocabulary,
                         max_records=args.max_records, link_placeholders=checkpoint.data_config.link_placeholders)
    print(corpus.report[0])
    print(f"Model: {checkpoint.path} ({describe(checkpoint.model, checkpoint.level)}), a stream model.")
    X, Y = batchify(corpus.ids, 1)
    window = checkpoint.train_config.seq_length if checkpoint.train_config else default_of(TrainConfig, "seq_length")
    update, close = step_progress(not args.no_progress, "scoring", "window")
    try:
        loss = stream_total_loss(checkpoint.model, X, Y, window, progress=update)[0] / Y.size
    finally:
        close()
    unknown = int(np.sum(Y == checkpoint.vocabulary.unknown_index))
    print(f"Predicted tokens: {Y.size:,} (every token after the first, line breaks included); "
          f"{unknown:,} ({unknown / Y.size:.1%}) of them are UNKNOWN_TOKEN; uniform baseline "
          f"log({len(checkpoint.vocabulary)}) = {math.log(len(checkpoint.vocabulary)):.4f}.")
    print(f"loss: {loss:.4f}")
    ppl = perplexity(loss)
    print(f"perplexity: {ppl:.4f}" if ppl < 1e6 else f"perplexity: {ppl:.6g}")
    return 0


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


def add_evaluate_parser(command):
    """`rnnlm evaluate`: a model's loss and perplexity on a corpus."""
    p = command("evaluate", "cross-entropy and perplexity of a model on a corpus")
    p.add_argument("corpus", help="a corpus file, tokenized with the model's own vocabulary")
    p.add_argument("--model", metavar="MODEL.npz", help="model file (default: the bundled Reddit model)")
    p.add_argument("--format", choices=FORMATS, default=default_of(DataConfig, "format"),
                   help="corpus format; auto: .csv is reddit-csv, else the model's own tokens format if it was "
                   "trained with --format tokens, else text" + default_note(DataConfig, "format"))
    p.add_argument("--max-records", type=int, metavar="N", help="use only the first N comments/lines")
    add_threads_option(p)
    p.add_argument("--no-progress", action="store_true",
                   help="no progress bars (on stderr, while tokenizing and while scoring)")
    p.set_defaults(run=cmd_evaluate)


def add_gradcheck_parser(command):
    """`rnnlm gradcheck`: the tutorial's numerical gradient check."""
    p = command("gradcheck", "check BPTT's gradients numerically (the tutorial's demo)")
    p.add_argument("--seed", type=int, default=GRADCHECK_SEED, help=f"model seed (default: {GRADCHECK_SEED})")
    p.set_defaults(run=cmd_gradcheck)

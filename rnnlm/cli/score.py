"""`rnnlm score`: each sentence's log-probability and per-token perplexity under a model, to rank candidates.
"""

import sys

from rnnlm.cli.common import add_threads_option, load_checkpoint, printable, reads_tokens, threads_of
from rnnlm.data.text import MAX_CORPUS_BYTES, file_lines, read_text_file, tokenize_tokens_line
from rnnlm.errors import DataError
from rnnlm.models.generate import tokenize_prefix
from rnnlm.models.scoring import RANKINGS, rank, score_sentences

SCORE_FORMATS = ("auto", "text", "tokens")
HEADER = "log_prob\tperplexity\tsentence"
STDIN = "-"


def read_sentences(source):
    """The non-blank lines of a file, or of standard input for '-', stripped: the sentences to score."""
    if source == STDIN:
        raw = sys.stdin.buffer.read(MAX_CORPUS_BYTES + 1) if hasattr(sys.stdin, "buffer") else sys.stdin.read().encode()
        if len(raw) > MAX_CORPUS_BYTES:
            raise DataError(f"standard input is larger than {MAX_CORPUS_BYTES:,} bytes; score it in parts")
        try:
            text = raw.decode("utf-8-sig").replace("\r\n", "\n").replace("\r", "\n")
        except UnicodeDecodeError as exc:
            raise DataError(f"standard input is not UTF-8 text: byte 0x{raw[exc.start]:02x} at offset {exc.start}; "
                            "convert it to UTF-8") from None
        name = "standard input"
    else:
        text, name = read_text_file(source), source
    sentences = [line.strip() for line in file_lines(text) if line.strip()]
    if not sentences:
        raise DataError(f"{name} holds no sentences to score; give one sentence per line")
    return sentences


def cmd_score(args):
    checkpoint = load_checkpoint(args.model, threads=threads_of(args))
    tokens_format = reads_tokens(args, checkpoint)  # a char model refuses --format tokens before reading
    lines = read_sentences(args.sentences)
    if tokens_format:
        sentences = [tokenize_tokens_line(line) for line in lines]
    else:
        sentences = [tokenize_prefix(line, checkpoint.level, checkpoint.data_config.link_placeholders)
                     for line in lines]
    scores = score_sentences(checkpoint.model, checkpoint.vocabulary, sentences,
                             stream=checkpoint.data_config.stream,
                             max_sentence_length=checkpoint.data_config.max_sentence_length)
    order = rank(scores, args.by) if args.sort else range(len(scores))
    print(HEADER)
    for i in order:
        score = scores[i]
        print(f"{score.log_prob:.4f}\t{score.perplexity:.4f}\t{printable(lines[i].replace(chr(9), ' '))}")
    return 0


def add_score_parser(command):
    """`rnnlm score`: log-probability and perplexity of each sentence of a file or standard input."""
    p = command("score", "log-probability and per-token perplexity of each sentence (one per line)")
    p.add_argument("sentences", metavar="SENTENCES", help="a file of sentences, one per line, or - for standard input")
    p.add_argument("--model", metavar="MODEL.npz", help="model file (default: the bundled Reddit model)")
    p.add_argument("--format", choices=SCORE_FORMATS, default="auto",
                   help="how each line is tokenized: text = as the model's training text (lowercased Treebank words, "
                        "or characters for a char model); tokens = split at white space, case kept, <unk> is "
                        "UNKNOWN_TOKEN; auto (default) = tokens for a model trained with --format tokens, else text")
    p.add_argument("--sort", action="store_true",
                   help="print the sentences best first, by --by (default: in input order)")
    p.add_argument("--by", choices=RANKINGS, default=RANKINGS[0],
                   help="what --sort ranks by: perplexity = lowest per-token perplexity first (fair between "
                        "sentences of different lengths; the default), logprob = highest total log-probability "
                        "first (favours short sentences)")
    add_threads_option(p)
    p.set_defaults(run=cmd_score)

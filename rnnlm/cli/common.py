"""What every command shares: the program name and exit codes, option helpers that read defaults
from the config dataclasses, the argument parser that reports usage errors as one line, how a
model is described and loaded, and `printable` (control characters escaped before they reach a terminal).
"""

import argparse
import re
import sys
from dataclasses import fields

from rnnlm.config import ComputeConfig
from rnnlm.errors import ConfigError, ModelFileError
from rnnlm.io import checkpoint as ckpt, kinds
from rnnlm.nn.numerics import perplexity


PROG = "rnnlm"


EXIT_ERROR = 2


EXIT_INTERRUPTED = 130


FULL_BPTT = "full"


def default_of(cls, name):
    return next(f.default for f in fields(cls) if f.name == name)


def default_note(cls, name):
    """' (default: X)' for help texts, X read from the dataclass."""
    return f" (default: {default_of(cls, name)})"


def given_fields(args, cls):
    """The options of `cls` the user actually gave (argparse defaults are None; `--bptt-truncate full` is None too)."""
    given = {f.name: getattr(args, f.name) for f in fields(cls) if getattr(args, f.name, None) is not None}
    if given.get("bptt_truncate") == FULL_BPTT:
        given["bptt_truncate"] = None
    return given


def threads_of(args):
    """--threads, validated by `ComputeConfig` (0: one worker per core; absent: None, automatic)."""
    return ComputeConfig(**given_fields(args, ComputeConfig)).threads


def add_threads_option(parser):
    parser.add_argument("--threads", type=int, metavar="N",
                        help="worker threads for the output layer; 1 = a single loop, 0 = one per core (BLAS always one thread)"
                             " (default: automatic, one per core for a large full softmax)")


def truncation(text):
    """--bptt-truncate: a number of steps, or 'full' for no truncation."""
    if text.strip().lower() in (FULL_BPTT, "none"):
        return FULL_BPTT
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of steps or 'full', got {text!r}") from None


class Formatter(argparse.RawDescriptionHelpFormatter):
    pass


class Parser(argparse.ArgumentParser):
    """argparse, with usage errors as the same single line as every other error (still exit 2)."""

    def error(self, message, prog=None):
        message = re.sub(r"^argument (\S+): \1 ", r"\1 ", message)  # "argument --timeout: --timeout must" once
        self.exit(EXIT_ERROR, f"{PROG}: error: {one_line(message)}; see '{prog or self.prog} --help'\n")

    def parse_known_args(self, args=None, namespace=None):
        # The innermost (sub)command's parser finishes first and names itself, so that an option no
        # parser knows (`rnnlm train --bogus`), reported by the top-level parser, points to
        # 'rnnlm train --help' and not to 'rnnlm --help'.
        namespace, extras = super().parse_known_args(args, namespace)
        if not hasattr(namespace, USAGE_PROG):
            setattr(namespace, USAGE_PROG, self.prog)
        return namespace, extras

    def parse_args(self, args=None, namespace=None):
        namespace, extras = self.parse_known_args(args, namespace)
        if extras:
            self.error(f"unrecognized arguments: {' '.join(extras)}", prog=getattr(namespace, USAGE_PROG, None))
        delattr(namespace, USAGE_PROG)
        return namespace


# The namespace attribute that names the parser an unrecognized option's message points to.
USAGE_PROG = "_usage_prog"


# What every --out's help adds: how an existing file, a link or a folder is treated.
OUT_RULES = ("; replaced atomically (a crash leaves the old file); a symlink is written through: the file it "
             "points to is replaced and the link stays a link; a write-protected file (chmod a-w) is refused, "
             "as cp refuses it")


def describe(model, level):
    """One line on a model: its class (by what it is, not only its config's shape), sizes and options."""
    c = model.config
    name = kinds.short_name(kinds.kind_of(model), c.cell)
    extra = f", {c.num_layers} layers" if c.num_layers > 1 else ""
    extra += f", embedding {c.embed_size}" if c.embed_size else ""
    extra += ", peephole" if c.peephole else ""
    extra += ", coupled gates" if c.coupled_gates else ""
    extra += f", class softmax ({c.classes} classes)" if c.softmax == "class" else ""
    extra += f", dropout {c.dropout:g}" if c.dropout else ""
    extra += ", tied weights" if c.tie_weights else ""
    return (f"{name}, {level} level, vocabulary {c.vocab_size}, hidden {c.hidden_size}{extra}, "
            f"bptt_truncate {c.bptt_truncate}")


def loss_text(label, loss):
    """'train loss 4.1234 (perplexity 61.8)', compact when training has blown up."""
    ppl = perplexity(loss)
    if ppl < 1e6:
        return f"{label} loss {loss:.4f} (perplexity {ppl:.1f})"
    return f"{label} loss {loss:.4g} (perplexity {ppl:.3g})"


def load_checkpoint(path, threads=1):
    if path is None:
        if not ckpt.BUNDLED_MODEL.is_file():
            raise ModelFileError(f"the bundled model {ckpt.BUNDLED_MODEL} is missing from this installation; "
                                 "reinstall rnnlm or pass --model MODEL.npz")
        path = ckpt.BUNDLED_MODEL
    return ckpt.load_model(path, threads=threads)


def reads_tokens(args, checkpoint):
    """Whether --prefix (and score's sentences) are read in the tokens format: asked for with --format
    tokens, or by default (auto) for a model trained with --format tokens."""
    if args.format == "auto":
        return checkpoint.data_config.format == "tokens"
    if args.format == "tokens" and checkpoint.level == "char":
        raise ConfigError("--format tokens is word level; this is a character-level model (drop --format)")
    return args.format == "tokens"


def one_line(message):
    return printable(" ".join(str(message).split()) or "unknown error")


# C0 and C1 control characters (ESC starts a terminal escape sequence, 0x9b is a one-byte CSI) and
# the bidirectional overrides that reorder what a terminal shows; tab stays.
_ESCAPES = {**{code: f"\\x{code:02x}" for code in (*range(0x20), 0x7f, *range(0x80, 0xa0)) if code != 0x09},
            **{code: f"\\u{code:04x}" for code in (*range(0x202a, 0x202f), *range(0x2066, 0x206a))},
            **{ord("\n"): "\\n", ord("\r"): "\\r"}}


def printable(text):
    r"""`text` safe to print to a terminal: control characters from data (vocabulary words,
    generated text, file names) become visible escapes, so a corpus cannot move the cursor,
    recolour or clear the user's terminal: ESC [2J (clear screen) prints as \x1b[2J."""
    return str(text).translate(_ESCAPES)


class Interrupts:
    """Ctrl-C and SIGTERM, remembered for the whole command.

    The signal handler raises KeyboardInterrupt wherever the program happens to be; when that is
    inside a destructor (`__del__`, which NLTK's regex objects have) Python cannot propagate it and
    only reports it as "Exception ignored". The request is kept here, that report is silenced, and
    the training callbacks ask again at every batch (`raise_if_interrupted`), so no Ctrl-C is lost.
    """

    requested = False

    @classmethod
    def handle(cls, signum, frame):
        cls.requested = True
        raise KeyboardInterrupt

    @classmethod
    def unraisable(cls, report, default=sys.unraisablehook):
        if isinstance(report.exc_value, KeyboardInterrupt):
            cls.requested = True  # swallowed where it was raised: acted on at the next batch
        else:
            default(report)


def raise_if_interrupted():
    """Raise KeyboardInterrupt if a Ctrl-C or SIGTERM arrived and was swallowed before reaching the command."""
    if Interrupts.requested:
        raise KeyboardInterrupt

"""The single source of defaults: frozen dataclasses for data, model and training options.

The CLI's flags carry these field names, library functions take these objects, and
model files store them (as JSON) so a checkpoint rebuilds everything from itself.
Every field is validated in `__post_init__`, so an impossible size fails where it
is written down, with a message that says what to fix.
"""

import math
import numbers
from dataclasses import asdict, dataclass, fields

import numpy as np

from rnnlm.errors import ConfigError

# The tutorial's special tokens, exactly as it spells them.
UNKNOWN_TOKEN = "UNKNOWN_TOKEN"
SENTENCE_START = "SENTENCE_START"
SENTENCE_END = "SENTENCE_END"
SPECIAL_TOKENS = (UNKNOWN_TOKEN, SENTENCE_START, SENTENCE_END)
# What the word tokenizer writes in place of a link, a subreddit path and a user path
# (see text.replace_links): ordinary vocabulary entries, spelled like the special tokens.
URL_TOKEN = "URL_TOKEN"
SUBREDDIT_TOKEN = "SUBREDDIT_TOKEN"
USER_TOKEN = "USER_TOKEN"
# Smallest vocabulary that still holds the three special tokens and one real word.
MIN_VOCABULARY_SIZE = 4
# Largest sizes accepted anywhere (options, model files): far beyond what a NumPy model on one
# machine trains, small enough that a typo or a hostile model file cannot ask for terabytes.
MAX_VOCABULARY_SIZE = 1 << 22
MAX_HIDDEN_SIZE = 1 << 14
MAX_EMBED_SIZE = 1 << 14
MAX_LAYERS = 64
# Longest sequence one training pair may be (tokens predicted): a longer sentence is cut into pieces
# of this length (rnnlm.data.corpus.training_pairs). A batch is padded to its longest pair and the
# forward keeps every step's states, so without a bound one 1M-token line (a file with no sentence
# ends) asked for gigabytes: 16 sentences padded to 1M steps x H units.
MAX_SENTENCE_LENGTH = 1000

CELLS = ("rnn", "gru", "lstm", "jordan")
LEVELS = ("word", "char")
OPTIMIZERS = ("sgd", "adagrad", "rmsprop", "adam")
# "tokens": whitespace-separated tokens, one sentence a line, `<unk>` read as UNKNOWN_TOKEN (the Penn
# Treebank files of PyTorch's word_language_model); see rnnlm.data.text.read_token_lines.
FORMATS = ("auto", "reddit-csv", "text", "tokens")
# How the tokens format spells the unknown word (the Penn Treebank's, as word_language_model reads it).
TOKENS_UNKNOWN = "<unk>"
LR_SCHEDULES = ("plateau", "halving")
# A learning rate that works for each update rule when gradients are averaged per word and
# clipped (TrainConfig.clip): SGD wants a large step, the adaptive rules (which divide by a running
# gradient scale) a small one. Adam's 0.01 (with clip 5) is the bundled model's recipe
# (docs/bundled-model.md); RMSProp's 0.002 is char-rnn's.
DEFAULT_LEARNING_RATES = {"sgd": 1.0, "adagrad": 0.1, "rmsprop": 0.002, "adam": 0.01}
SOFTMAXES = ("full", "class")


def _require(condition, message):
    if not condition:
        raise ConfigError(message)


def is_int(value):
    """True for Python and NumPy integers (np.int64(100) is a size), never for bools (True is not)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def _positive_int(name, value, maximum=None):
    _require(is_int(value) and value > 0, f"{name} must be a positive integer, got {value!r}")
    _require(maximum is None or value <= maximum, f"{name} must be at most {maximum}, got {value!r}")


def _finite_number(name, value):
    _require(isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value),
             f"{name} must be a finite number, got {value!r}")


def _bool(name, value):
    _require(isinstance(value, bool), f"{name} must be True or False, got {value!r}")


def plain_numbers(config):
    """Store NumPy numbers (np.int64(100), np.float32(0.1)) as Python ints and floats, so configs
    compare equal and go to JSON (a model file)."""
    for f in fields(config):
        value = getattr(config, f.name)
        if is_int(value) and type(value) is not int:
            object.__setattr__(config, f.name, int(value))
        elif isinstance(value, np.floating):
            object.__setattr__(config, f.name, float(value))


def _vocabulary_size(value, name="vocabulary size"):
    _require(is_int(value) and value >= MIN_VOCABULARY_SIZE,
             f"{name} must be at least {MIN_VOCABULARY_SIZE} (3 special tokens + 1 word), got {value!r}")
    _require(value <= MAX_VOCABULARY_SIZE, f"{name} must be at most {MAX_VOCABULARY_SIZE}, got {value!r}")


def _training_options(config):
    """The checks of the options every trainer shares (`TrainConfig`, the Tree-LSTM's `TreeTrainConfig`):
    epochs, batch_size, learning_rate, seed, optimizer, clip and time_limit, in the same words for both."""
    _positive_int("epochs", config.epochs)
    _positive_int("batch size", config.batch_size)
    _finite_number("learning rate", config.learning_rate)
    _require(config.learning_rate > 0, f"learning rate must be positive, got {config.learning_rate!r}")
    _require(is_int(config.seed) and config.seed >= 0, f"seed must be a non-negative integer, got {config.seed!r}")
    _require(isinstance(config.optimizer, str) and config.optimizer in OPTIMIZERS,
             f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {config.optimizer!r}")
    if config.clip is not None:
        _finite_number("clip norm", config.clip)
    _require(config.clip is None or config.clip > 0, f"clip norm must be positive, got {config.clip!r}")
    _require(config.time_limit is None or config.time_limit > 0,
             f"time limit must be a positive number of seconds, got {config.time_limit!r}")


class _Config:
    """Shared helpers: conversion to/from plain dicts for JSON in model files."""

    def to_dict(self):
        return asdict(self)

    @classmethod
    def from_dict(cls, data):
        if not isinstance(data, dict):
            raise ConfigError(f"{cls.__name__} must be a JSON object of option names and values, "
                              f"got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass(frozen=True)
class DataConfig(_Config):
    """How a corpus becomes training pairs.

    vocabulary_size: number of words kept, `UNKNOWN_TOKEN` included (tutorial: 8000): a cap.
    min_count: a word seen fewer times than this in the training corpus is not kept (it becomes
        UNKNOWN_TOKEN). With it the vocabulary adapts to the corpus: the tutorial's 8000 fitted
        15,000 comments, where the 8000th word is seen about 10 times; on the 211-comment sample
        the cap keeps all 4,252 words, most seen once, and a model cannot learn a word from one
        occurrence. Default 2 (measured on the sample: see docs/training.md); 1 is the tutorial's rule.
        Word level only: at character level, and for format "tokens" (a file that has decided its own
        <unk>), every token the cap allows is kept; so is every word of a text that has none seen
        min_count times. `rnnlm train --min-count K`; in Python `load_corpus(..., min_count=K)`.
    format: "auto" (by extension: .csv is a Reddit CSV, anything else plain text),
        "reddit-csv", "text", or "tokens" (already tokenized: whitespace-separated tokens, one
        sentence a line, kept exactly as written, `<unk>` read as UNKNOWN_TOKEN; word level only).
    level: "word" (tokenised sentences) or "char" (each line a sequence of code points).
    link_placeholders: at word level, replace links by URL_TOKEN and r/... and u/...
        paths by SUBREDDIT_TOKEN and USER_TOKEN before tokenizing (see text.replace_links).
        On by default: a model learns that "a link goes here" instead of memorising
        addresses, and never prints one. Ignored at character level.
    stream: read the corpus as one continuous token stream (newlines kept as tokens)
        instead of separate sentences; see rnnlm.training.stream.
    max_sentence_length: a sentence predicting more tokens than this (its words + SENTENCE_END)
        is cut into consecutive pieces of at most this many, each read from the zero state;
        the corpus report says how many were cut. Bounds a batch's memory (see MAX_SENTENCE_LENGTH).
    """

    vocabulary_size: int = 8000
    min_count: int = 2
    format: str = "auto"
    level: str = "word"
    link_placeholders: bool = True
    stream: bool = False
    max_sentence_length: int = MAX_SENTENCE_LENGTH

    def __post_init__(self):
        plain_numbers(self)
        _positive_int("max sentence length", self.max_sentence_length)
        _positive_int("minimum count", self.min_count)
        _vocabulary_size(self.vocabulary_size)
        _require(isinstance(self.format, str) and self.format in FORMATS, f"format must be one of {', '.join(FORMATS)}, got {self.format!r}")
        _require(isinstance(self.level, str) and self.level in LEVELS, f"level must be one of {', '.join(LEVELS)}, got {self.level!r}")
        _require(not (self.format == "tokens" and self.level == "char"),
                 "--format tokens is word level (whitespace-separated tokens); drop --level char or use --format text")
        _require(isinstance(self.link_placeholders, bool),
                 f"link_placeholders must be True or False, got {self.link_placeholders!r}")


@dataclass(frozen=True)
class ModelConfig(_Config):
    """The shape of a language model.

    cell: "rnn" (Elman, the tutorial's model), "gru", "lstm" or "jordan".
    hidden_size: H, units in each recurrent layer (tutorial: 100; default 128, the bundled model's).
    bptt_truncate: how many steps back the error at each output flows, as in the tutorial's
        `bptt` (default 4): 0 keeps only the step itself; None means full BPTT.
    num_layers: stacked recurrent layers. embed_size: None means the tutorial's
        one-hot input (embedding width = hidden size for the Elman model).
    peephole / coupled_gates: LSTM variants (not exportable to PyTorch).
    softmax: "full" (one softmax over the C words) or "class" (Mikolov et al. 2011:
        P(w | h) = P(class(w) | h) P(w | class(w), h), words binned by frequency; exact
        probabilities at about (K + C / K) H instead of C H per token; not exportable to PyTorch).
    num_classes: K for the class softmax; None means round(sqrt(C)).
    dropout: P, LanguageModel only (Zaremba et al. 2014): units of the embedding output, of the
        outputs between stacked layers and of the top layer's output are zeroed with probability P
        and the rest divided by 1 - P, in training only; never on the recurrent connections.
    tie_weights: LanguageModel only: the output matrix is the embedding's transpose (Press & Wolf
        2017, Inan et al. 2017); needs embedding size = hidden size and the full softmax.
    """

    vocab_size: int = 8000
    hidden_size: int = 128
    bptt_truncate: int = 4
    cell: str = "rnn"
    num_layers: int = 1
    embed_size: int | None = None
    peephole: bool = False
    coupled_gates: bool = False
    softmax: str = "full"
    num_classes: int | None = None
    dropout: float = 0.0
    tie_weights: bool = False

    def __post_init__(self):
        plain_numbers(self)
        _require(is_int(self.vocab_size) and self.vocab_size >= MIN_VOCABULARY_SIZE,
                 f"vocabulary size must be at least {MIN_VOCABULARY_SIZE}, got {self.vocab_size!r}")
        _require(self.vocab_size <= MAX_VOCABULARY_SIZE,
                 f"vocabulary size must be at most {MAX_VOCABULARY_SIZE}, got {self.vocab_size!r}")
        _positive_int("hidden size", self.hidden_size, MAX_HIDDEN_SIZE)
        _positive_int("number of layers", self.num_layers, MAX_LAYERS)
        _require(self.bptt_truncate is None or (is_int(self.bptt_truncate) and self.bptt_truncate >= 0),
                 f"bptt truncation must be a non-negative integer (or None for full BPTT), "
                 f"got {self.bptt_truncate!r}")
        if self.embed_size is not None:
            _positive_int("embedding size", self.embed_size, MAX_EMBED_SIZE)
        _bool("peephole", self.peephole)
        _bool("coupled gates", self.coupled_gates)
        _require(isinstance(self.cell, str) and self.cell in CELLS, f"cell must be one of {', '.join(CELLS)}, got {self.cell!r}")
        _require(self.cell == "lstm" or not (self.peephole or self.coupled_gates),
                 "peephole and coupled gates are LSTM options; use --cell lstm")
        _require(self.softmax in SOFTMAXES, f"softmax must be one of {', '.join(SOFTMAXES)}, got {self.softmax!r}")
        if self.num_classes is not None:
            _require(self.softmax == "class", "--classes needs --softmax class")
            _positive_int("number of classes", self.num_classes)
            _require(self.num_classes <= self.vocab_size,
                     f"number of classes ({self.num_classes}) cannot exceed the vocabulary size ({self.vocab_size})")
        _finite_number("dropout", self.dropout)
        _require(0.0 <= self.dropout < 1.0, f"dropout must be at least 0 and below 1, got {self.dropout!r}")
        _bool("tie weights", self.tie_weights)
        if self.tie_weights:
            _require(self.softmax == "full", "--tie-weights needs the full softmax (--softmax full)")
            _require(self.embed_size is None or self.embed_size == self.hidden_size,
                     f"--tie-weights needs --embed-size equal to --hidden (got {self.embed_size} and {self.hidden_size})")

    @property
    def classes(self):
        """K, the number of word classes of the class softmax (None for the full softmax)."""
        if self.softmax != "class":
            return None
        return self.num_classes or max(1, min(self.vocab_size, round(self.vocab_size ** 0.5)))


@dataclass(frozen=True)
class ComputeConfig(_Config):
    """How the computation uses the machine (never stored in a model file: it is the machine's, not the model's).

    threads: worker threads for the output layer's chunks. None (the default) is automatic: one
        per available core (at most 8) for a full softmax large enough to pay for them (at least
        `rnnlm.nn.threads.AUTO_MIN_WORK` multiply-adds per product, e.g. C = 8000, H = 100 and
        a batch of 64 x 45 tokens), the plain single loop otherwise and for the class softmax.
        0 means one per available core, 1 the plain single loop, N that many workers.
        Whatever the count, BLAS runs one thread inside rnnlm's work (`rnnlm.nn.threads`, the
        thread policy): measured on the 2-core development machine, full softmax at C = 8000,
        H = 100, 2880 tokens: one BLAS thread 143 ms, two BLAS threads 83, two workers 73 on an
        idle machine; with one other busy process 137, 193 (OpenBLAS's threads spin-wait for
        the taken core) and 141. Workers that wait sleep, so they do not lose under load.
    """

    threads: int | None = None

    def __post_init__(self):
        _require(self.threads is None or (isinstance(self.threads, int) and not isinstance(self.threads, bool)
                                          and self.threads >= 0),
                 f"threads must be a non-negative integer (0: one per core) or None (automatic), got {self.threads!r}")


@dataclass(frozen=True)
class TrainConfig(_Config):
    """How a model is trained.

    learning_rate: None means DEFAULT_LEARNING_RATES[optimizer], filled in on construction.
        The tutorial's 0.005 suits per-sentence SGD on summed gradients; minibatch
        training averages gradients over the batch's words, so SGD wants a larger rate:
        1.0 with clip 1.0 trained stably on both the Reddit sample and tinyshakespeare
        (2.0 diverged on the latter with clip 5). Adam at 1.0 blows up; 0.01 with clip 5 works.
        The defaults (Adam, 0.01, batch 32, clip 5, with ModelConfig's 128 hidden units and
        DataConfig's min_count 2) are the bundled model's recipe, which suits small corpora and
        large ones alike (Adam scales each step by the gradients' own size): on the
        211-comment sample the all-defaults `rnnlm train` reaches a validation perplexity
        close to the tuned recipe's (docs/training.md), where SGD 1.0, batch 16 and every
        word kept reached 501.
    epochs, batch_size (sentences, or parallel streams with `DataConfig.stream`),
    valid_fraction (0 <= f < 1), seed,
    optimizer: "sgd", "adagrad", "rmsprop" or "adam"; momentum for SGD;
    clip: global gradient-norm limit, None for no clipping;
    evaluate_loss_after: evaluate (and maybe change the rate) every this many epochs.
    lr_schedule: "plateau" (see rnnlm.training.schedules.PlateauSchedule) or "halving" (the tutorial's
        rule: halve whenever the loss rose since the previous evaluation).
    lr_patience, lr_threshold, lr_smoothing, lr_factor: the plateau rule multiplies the
        rate by lr_factor after lr_patience evaluations in a row in which the smoothed
        loss (s = lr_smoothing s + (1 - lr_smoothing) loss) failed to fall below
        (1 - lr_threshold) x its best value.
    min_lr: the rate is never reduced below this; None means learning_rate / 100.
    min_valid_tokens: a held-out part predicting fewer tokens than this is too small to
        mean anything: the default split is skipped, and an explicit one is evaluated
        and reported but neither drives the rule nor picks the model kept.
    time_limit: seconds of training after which the run stops at the next batch
        boundary (None: no limit).
    seq_length: stream training's window: tokens per truncated-BPTT step.
    """

    epochs: int = 10
    learning_rate: float | None = None
    batch_size: int = 32
    valid_fraction: float = 0.1
    seed: int = 0
    optimizer: str = "adam"
    momentum: float = 0.0
    clip: float | None = 5.0
    evaluate_loss_after: int = 1
    lr_schedule: str = "plateau"
    lr_patience: int = 2
    lr_threshold: float = 0.001
    lr_smoothing: float = 0.5
    lr_factor: float = 0.5
    min_lr: float | None = None
    min_valid_tokens: int = 2000
    time_limit: float | None = None
    seq_length: int = 64

    def __post_init__(self):
        plain_numbers(self)
        _require(isinstance(self.optimizer, str) and self.optimizer in OPTIMIZERS,
                 f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}")
        if self.learning_rate is None:  # the rate that suits the optimizer
            object.__setattr__(self, "learning_rate", DEFAULT_LEARNING_RATES[self.optimizer])
        _training_options(self)
        _positive_int("evaluate_loss_after", self.evaluate_loss_after)
        _finite_number("validation fraction", self.valid_fraction)
        _require(0 <= self.valid_fraction < 1, f"validation fraction must be in [0, 1), got {self.valid_fraction!r}")
        _finite_number("momentum", self.momentum)
        _require(0 <= self.momentum < 1, f"momentum must be in [0, 1), got {self.momentum!r}")
        self._check_schedule()

    def _check_schedule(self):
        _require(self.lr_schedule in LR_SCHEDULES,
                 f"learning-rate schedule must be one of {', '.join(LR_SCHEDULES)}, got {self.lr_schedule!r}")
        _positive_int("lr patience", self.lr_patience)
        _positive_int("seq length", self.seq_length)
        _require(isinstance(self.min_valid_tokens, int) and self.min_valid_tokens >= 0,
                 f"min valid tokens must be a non-negative integer, got {self.min_valid_tokens!r}")
        _require(0 <= self.lr_threshold < 1, f"lr threshold must be in [0, 1), got {self.lr_threshold!r}")
        _require(0 <= self.lr_smoothing < 1, f"lr smoothing must be in [0, 1), got {self.lr_smoothing!r}")
        _require(0 < self.lr_factor < 1, f"lr factor must be in (0, 1), got {self.lr_factor!r}")
        _require(self.min_lr is None or (0 < self.min_lr <= self.learning_rate),
                 f"min lr must be positive and at most the learning rate {self.learning_rate:g}, got {self.min_lr!r}")

    @property
    def lr_floor(self):
        """The smallest rate the schedule may reach: min_lr, or learning_rate / 100."""
        return self.min_lr if self.min_lr is not None else self.learning_rate / 100

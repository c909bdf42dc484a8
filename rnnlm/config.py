"""The single source of defaults: frozen dataclasses for data, model and training options.

The CLI's flags carry these field names, library functions take these objects, and
model files store them (as JSON) so a checkpoint rebuilds everything from itself.
Every field is validated in `__post_init__`, so an impossible size fails where it
is written down, with a message that says what to fix.
"""

from dataclasses import asdict, dataclass, fields

from .errors import ConfigError

# The tutorial's special tokens, exactly as it spells them.
UNKNOWN_TOKEN = "UNKNOWN_TOKEN"
SENTENCE_START = "SENTENCE_START"
SENTENCE_END = "SENTENCE_END"
SPECIAL_TOKENS = (UNKNOWN_TOKEN, SENTENCE_START, SENTENCE_END)
# Smallest vocabulary that still holds the three special tokens and one real word.
MIN_VOCABULARY_SIZE = 4

CELLS = ("rnn", "gru", "lstm", "jordan")
LEVELS = ("word", "char")
OPTIMIZERS = ("sgd", "adagrad", "rmsprop", "adam")
FORMATS = ("auto", "reddit-csv", "text")
SOFTMAXES = ("full", "class")


def _require(condition, message):
    if not condition:
        raise ConfigError(message)


def _positive_int(name, value):
    _require(isinstance(value, int) and not isinstance(value, bool) and value > 0,
             f"{name} must be a positive integer, got {value!r}")


class _Config:
    """Shared helpers: conversion to/from plain dicts for JSON in model files."""

    def to_dict(self):
        return asdict(self)

    @classmethod
    def from_dict(cls, data):
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass(frozen=True)
class DataConfig(_Config):
    """How a corpus becomes training pairs.

    vocabulary_size: number of words kept, `UNKNOWN_TOKEN` included (tutorial: 8000).
    format: "auto" (by extension: .csv is a Reddit CSV, anything else plain text),
        "reddit-csv" or "text".
    level: "word" (tokenised sentences) or "char" (each line a sequence of code points).
    """

    vocabulary_size: int = 8000
    format: str = "auto"
    level: str = "word"

    def __post_init__(self):
        _require(isinstance(self.vocabulary_size, int) and self.vocabulary_size >= MIN_VOCABULARY_SIZE,
                 f"vocabulary size must be at least {MIN_VOCABULARY_SIZE} (3 special tokens + 1 word), "
                 f"got {self.vocabulary_size!r}")
        _require(self.format in FORMATS, f"format must be one of {', '.join(FORMATS)}, got {self.format!r}")
        _require(self.level in LEVELS, f"level must be one of {', '.join(LEVELS)}, got {self.level!r}")


@dataclass(frozen=True)
class ModelConfig(_Config):
    """The shape of a language model.

    cell: "rnn" (Elman, the tutorial's model), "gru", "lstm" or "jordan".
    hidden_size: H, units in each recurrent layer (tutorial: 100).
    bptt_truncate: how many steps back the error at each output flows, as in the tutorial's
        `bptt` (default 4): 0 keeps only the step itself; None means full BPTT.
    num_layers: stacked recurrent layers. embed_size: None means the tutorial's
        one-hot input (embedding width = hidden size for the Elman model).
    peephole / coupled_gates: LSTM variants (not exportable to PyTorch).
    softmax: "full" (one softmax over the C words) or "class" (Mikolov et al. 2011:
        P(w | h) = P(class(w) | h) P(w | class(w), h), words binned by frequency; exact
        probabilities at about (K + C / K) H instead of C H per token; not exportable to PyTorch).
    num_classes: K for the class softmax; None means round(sqrt(C)).
    """

    vocab_size: int = 8000
    hidden_size: int = 100
    bptt_truncate: int = 4
    cell: str = "rnn"
    num_layers: int = 1
    embed_size: int | None = None
    peephole: bool = False
    coupled_gates: bool = False
    softmax: str = "full"
    num_classes: int | None = None

    def __post_init__(self):
        _require(isinstance(self.vocab_size, int) and self.vocab_size >= MIN_VOCABULARY_SIZE,
                 f"vocabulary size must be at least {MIN_VOCABULARY_SIZE}, got {self.vocab_size!r}")
        _positive_int("hidden size", self.hidden_size)
        _positive_int("number of layers", self.num_layers)
        _require(self.bptt_truncate is None or (isinstance(self.bptt_truncate, int) and self.bptt_truncate >= 0),
                 f"bptt truncation must be a non-negative integer (or None for full BPTT), "
                 f"got {self.bptt_truncate!r}")
        if self.embed_size is not None:
            _positive_int("embedding size", self.embed_size)
        _require(self.cell in CELLS, f"cell must be one of {', '.join(CELLS)}, got {self.cell!r}")
        _require(self.cell == "lstm" or not (self.peephole or self.coupled_gates),
                 "peephole and coupled gates are LSTM options; use --cell lstm")
        _require(self.softmax in SOFTMAXES, f"softmax must be one of {', '.join(SOFTMAXES)}, got {self.softmax!r}")
        if self.num_classes is not None:
            _require(self.softmax == "class", "--classes needs --softmax class")
            _positive_int("number of classes", self.num_classes)
            _require(self.num_classes <= self.vocab_size,
                     f"number of classes ({self.num_classes}) cannot exceed the vocabulary size ({self.vocab_size})")

    @property
    def classes(self):
        """K, the number of word classes of the class softmax (None for the full softmax)."""
        if self.softmax != "class":
            return None
        return self.num_classes or max(1, min(self.vocab_size, round(self.vocab_size ** 0.5)))


@dataclass(frozen=True)
class ComputeConfig(_Config):
    """How the computation uses the machine (never stored in a model file: it is the machine's, not the model's).

    threads: worker threads for the output layer's chunks; 0 means one per available core
        (at most 8). 1 (the default) is the plain single loop, with BLAS's own threads on
        every core for the products. With more than one, BLAS is held to one thread for the
        whole loss computation and the chunks (products, exp, sums) run in our own workers.
        Measured on the 2-core development machine (FastRNN, C = 8000, full BPTT): 2 workers
        1.09x the plain loop when the machine was otherwise idle, no faster while other jobs
        shared it (the three products already keep both cores busy; exp is a small part), so
        1 is the default: never slower, on any number of cores.
    """

    threads: int = 1

    def __post_init__(self):
        _require(isinstance(self.threads, int) and not isinstance(self.threads, bool) and self.threads >= 0,
                 f"threads must be a non-negative integer (0: one per core), got {self.threads!r}")


@dataclass(frozen=True)
class TrainConfig(_Config):
    """How a model is trained.

    learning_rate: the tutorial's 0.005 suits per-sentence SGD on summed gradients;
        minibatch training averages gradients over the batch's words, so it wants a
        larger rate. 1.0 with clip 1.0 trained stably on both the Reddit sample and
        tinyshakespeare (2.0 diverged on the latter with clip 5).
    epochs, batch_size, valid_fraction (0 <= f < 1), seed,
    optimizer: "sgd", "adagrad", "rmsprop" or "adam"; momentum for SGD;
    clip: global gradient-norm limit, None for no clipping;
    evaluate_loss_after: evaluate (and maybe halve the rate) every this many epochs.
    """

    epochs: int = 10
    learning_rate: float = 1.0
    batch_size: int = 64
    valid_fraction: float = 0.1
    seed: int = 0
    optimizer: str = "sgd"
    momentum: float = 0.0
    clip: float | None = 1.0
    evaluate_loss_after: int = 1

    def __post_init__(self):
        _positive_int("epochs", self.epochs)
        _positive_int("batch size", self.batch_size)
        _positive_int("evaluate_loss_after", self.evaluate_loss_after)
        _require(isinstance(self.learning_rate, (int, float)) and self.learning_rate > 0,
                 f"learning rate must be positive, got {self.learning_rate!r}")
        _require(isinstance(self.valid_fraction, (int, float)) and 0 <= self.valid_fraction < 1,
                 f"validation fraction must be in [0, 1), got {self.valid_fraction!r}")
        _require(isinstance(self.seed, int) and self.seed >= 0, f"seed must be a non-negative integer, got {self.seed!r}")
        _require(self.optimizer in OPTIMIZERS,
                 f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}")
        _require(0 <= self.momentum < 1, f"momentum must be in [0, 1), got {self.momentum!r}")
        _require(self.clip is None or self.clip > 0, f"clip norm must be positive, got {self.clip!r}")

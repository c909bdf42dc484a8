"""Text as a stream: one token sequence, cut into B parallel streams, read in windows of T tokens.

The protocol of char-rnn, min-char-rnn and the Penn Treebank language-model papers. The whole
corpus is one sequence of N tokens (characters, or words with the line break kept as the token
"\\n"), so the model learns where lines end, speaker names, blank lines. With inputs
x = ids[:-1] and targets y = ids[1:] (N - 1 predictions), the text is cut into B contiguous
pieces of L = (N - 1) // B tokens (the remainder is dropped), one per row:

    X (B, L): X[b] = x[b L : (b + 1) L]        Y (B, L): Y[b] = y[b L : (b + 1) L]

and read left to right in windows X[:, a : a + T] (the last one may be shorter). Window after
window the hidden state of every row is carried over (`model.window_total_loss_and_gradients(X, Y,
state) -> (loss, grads, next_state)`), and the gradient stops at each window's start: truncated
BPTT over T steps, while the forward pass sees the whole history. The loss over a text is
therefore exactly the loss of B (or, for evaluation, one) long sequences.

Validation is the last `valid_fraction` of the tokens, also read as a stream.

Public API
----------
stream_tokens(text, level) -> list of tokens;  StreamCorpus (ids, vocabulary, report lines)
load_stream(path, vocabulary_size, format, level, vocabulary=None, max_records=None) -> StreamCorpus
stream_from_text(text, path="<text>", vocabulary_size, level, vocabulary=None) -> StreamCorpus
split_stream(ids, valid_fraction) -> (train ids, valid ids)
batchify(ids, streams) -> (X (B, L), Y (B, L));  stream_total_loss(model, X, Y, seq_length, state=None)
StreamBatches: the batch source `rnnlm.training.loop.run_training` reads (same protocol as SentenceBatches)
train_stream(model, train_ids, valid_ids, config, callback=None, state=None) -> TrainingState
"""

from dataclasses import dataclass, field

import numpy as np

from rnnlm.config import DataConfig
from rnnlm.errors import ConfigError, DataError
from rnnlm.nn.inputs import check_count, check_fraction, check_ids, check_stream
from rnnlm.data.text import read_stream_text, token_stream, tokenize_text
from rnnlm.models.language_model import flatten_state, unflatten_state
from rnnlm.training.loop import LossSource, run_training
from rnnlm.data.vocab import Vocabulary
from rnnlm.nn.optim import scale_gradients
from rnnlm.nn.threads import holds_blas

NEWLINE = "\n"


def stream_tokens(text, level="word", link_placeholders=True):
    """The text as one token list, line breaks kept.

    level "char": every character, "\\n" included, case kept. level "word": each line lowercased
    and split into Treebank words (as the sentence pipeline does), with "\\n" between lines;
    with link_placeholders, links and r/..., u/... paths first become their placeholder tokens
    (`text.replace_links`), as in the sentence pipeline. It is `text.tokenize_text` with line_breaks.
    """
    return tokenize_text(text, level, link_placeholders, line_breaks=True)


@dataclass(frozen=True)
class StreamCorpus:
    """A corpus read as one stream: ids (N,) int64 in the vocabulary, and the report's lines."""

    ids: np.ndarray
    vocabulary: Vocabulary
    report: list = field(default_factory=list)


def load_stream(path, vocabulary_size=DataConfig.vocabulary_size, format=DataConfig.format, level=DataConfig.level,
                vocabulary=None, max_records=None, link_placeholders=DataConfig.link_placeholders,
                min_count=DataConfig.min_count):
    """Read a corpus file as one token stream (see `stream_tokens`).

    The file is read by `rnnlm.data.text.read_stream_text`: a text file whole (blank lines and all),
    a Reddit CSV's comments joined with a blank line between them. max_records: only the first this
    many lines (text) or comments.
    vocabulary: encode with a model's vocabulary instead of building one from the text.
    min_count: a token seen fewer times is left out of a built vocabulary (`DataConfig.min_count`).
    """
    config = DataConfig(vocabulary_size=vocabulary_size, format=format, level=level, stream=True, min_count=min_count)
    text, used = read_stream_text(path, config.format, max_records)
    return stream_from_text(text, path=path, vocabulary_size=config.vocabulary_size, level=config.level,
                            vocabulary=vocabulary, link_placeholders=link_placeholders, format=used,
                            min_count=config.min_count)


def stream_from_text(text, path="<text>", vocabulary_size=DataConfig.vocabulary_size, level=DataConfig.level,
                     vocabulary=None, link_placeholders=DataConfig.link_placeholders, format=DataConfig.format,
                     min_count=DataConfig.min_count):
    """Like `load_stream` for a text already in memory (a str). format "tokens": `text.token_stream`."""
    config = DataConfig(vocabulary_size=vocabulary_size, level=level, stream=True, format=format, min_count=min_count)
    tokens = token_stream(text, NEWLINE) if config.format == "tokens" else stream_tokens(text, config.level,
                                                                                         link_placeholders)
    if len(tokens) < 2:
        raise DataError(f"{path} holds fewer than 2 tokens; a stream needs at least one to read and one to predict")
    built = vocabulary is None
    if built:
        # every character, and every token of an already tokenized file (as in load_corpus)
        min_count = config.min_count if config.level == "word" and config.format != "tokens" else 1
        vocabulary = Vocabulary.build([tokens], config.vocabulary_size, min_count=min_count)
    ids = np.asarray(vocabulary.encode(tokens), dtype=np.int64)
    unknown = vocabulary.unknown_count(ids) / len(ids)
    if not built and unknown == 1.0:
        raise DataError(f"no token of {path} is in the model's vocabulary; "
                        "evaluate on text in the language and style the model was trained on")
    unit = "characters" if config.level == "char" else "tokens (words and line breaks)"
    if config.format == "tokens":
        unit = "tokens (whitespace tokens, and a line break ending each line as its <eos>)"
    report = [f"Read {path} as one stream of {len(ids):,} {unit}.",
              f"Using vocabulary size {len(vocabulary)} ({len(set(tokens)):,} distinct tokens in the text); "
              f"{unknown:.1%} of the tokens map to UNKNOWN_TOKEN."]
    return StreamCorpus(ids=ids, vocabulary=vocabulary, report=report)


def split_stream(ids, valid_fraction):
    """(train ids, valid ids): the last round(valid_fraction x N) tokens validate, the rest train.

    Both parts keep at least 2 tokens (one to read, one to predict), or validation is empty.
    """
    check_ids(ids, None, "ids")
    check_fraction(valid_fraction, "valid_fraction")
    n = len(ids)
    n_valid = int(round(valid_fraction * n))
    if n_valid < 2 or n - n_valid < 2:
        return ids, ids[:0]
    return ids[:n - n_valid], ids[n - n_valid:]


def batchify(ids, streams):
    """Inputs and targets of `ids` as `streams` contiguous rows: (X (B, L), Y (B, L)), L = (N - 1) // B."""
    ids = check_ids(ids, None, "ids")
    streams = check_count(streams, "streams")
    length = (len(ids) - 1) // streams
    if length < 1:
        raise DataError(f"the text has {len(ids)} tokens, too few for {streams} parallel streams; "
                        "use a smaller --batch-size")
    x, y = ids[:-1][:streams * length], ids[1:][:streams * length]
    return x.reshape(streams, length), y.reshape(streams, length)


@holds_blas
def stream_total_loss(model, X, Y, seq_length, state=None, progress=None):
    """Returns (sum over the B L tokens of the streams X, Y of -log p(y | ...), final state).

    The streams are read window by window with the state carried. seq_length only bounds memory:
    forward only, the result equals one pass over the whole rows. progress: called as
    progress(windows_done, num_windows).
    """
    X, Y = check_stream(X, Y, model.config.vocab_size)
    check_count(seq_length, "seq_length")
    state = model.start_state(X.shape[0]) if state is None else state
    total = 0.0
    num_windows = -(-X.shape[1] // seq_length)
    for done, a in enumerate(range(0, X.shape[1], seq_length), start=1):
        loss, state = model.window_total_loss(X[:, a:a + seq_length], Y[:, a:a + seq_length], state)
        total += float(loss)
        if progress is not None:
            progress(done, num_windows)
    return total, state


class StreamBatches(LossSource):
    """B parallel streams of `ids` in windows of seq_length: the batch source of `run_training`.

    Every epoch starts at the beginning of the streams from the zero state; the state is
    carried from window to window (and saved in `carry()` so a run stopped mid-epoch resumes
    exactly). Window w covers columns [w T, (w + 1) T).
    """

    def __init__(self, ids, streams, seq_length):
        check_count(seq_length, "seq_length")
        self.X, self.Y = batchify(ids, streams)
        self.seq_length = seq_length
        self.num_tokens = int(self.X.size)
        self.state = None

    def plan(self, epoch):
        return list(range(0, self.X.shape[1], self.seq_length))

    def begin_epoch(self, model, epoch, carry):
        fresh = model.start_state(self.X.shape[0])
        if carry:
            state = unflatten_state(carry)
            if [[s.shape for s in layer] for layer in state] != [[s.shape for s in layer] for layer in fresh]:
                raise ConfigError(f"the training state's carried stream state has shapes "
                                  f"{sorted(tuple(v.shape) for v in carry.values())}, but this run's "
                                  f"{self.X.shape[0]} streams need {[s.shape for layer in fresh for s in layer]}: "
                                  "the model file is damaged")
            fresh = state
        self.state = fresh

    def batch(self, model, start):
        window = slice(start, start + self.seq_length)
        loss, grads, self.state = model.window_total_loss_and_gradients(self.X[:, window], self.Y[:, window], self.state,
                                                                  sparse=True)
        tokens = int(self.X[:, window].size)
        return loss, scale_gradients(grads, 1.0 / tokens), tokens

    def carry(self):
        return flatten_state(self.state)

    def total_loss(self, model):
        return stream_total_loss(model, self.X, self.Y, self.seq_length)[0]


def validation_streams(ids, streams, seq_length):
    """How many parallel streams the validation text is read as: up to `streams`, each at least one window long."""
    return max(1, min(streams, (len(ids) - 1) // seq_length))


def train_stream(model, train_ids, valid_ids, config, callback=None, state=None):
    """Stream training with a `TrainConfig` (batch_size = B streams, seq_length = T): see `rnnlm.training.loop.run_training`.

    model: has `start_state(B)`, `window_total_loss_and_gradients` and `window_total_loss` (`LanguageModel`).
    valid_ids: may be empty (no validation); otherwise read as
    `validation_streams(valid_ids, B, T)` parallel streams with carried state.
    """
    data = StreamBatches(train_ids, config.batch_size, config.seq_length)
    valid = None
    if len(valid_ids) >= 2:
        valid = StreamBatches(valid_ids, validation_streams(valid_ids, config.batch_size, config.seq_length),
                              config.seq_length)
    return run_training(model, data, config, valid, callback=callback, state=state)

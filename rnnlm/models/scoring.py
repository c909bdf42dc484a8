"""Scoring sentences: how probable a language model finds each one, to choose between candidates.

The tutorial's use of a language model beyond generation: of several candidate sentences (a
translation's or a speech recogniser's outputs), prefer the one the model finds most probable.

For a sentence model the score of tokens w_1 .. w_k is the log-probability of reading
SENTENCE_START and then predicting w_1, ..., w_k, SENTENCE_END:

    log P = sum_t log P(y_t | SENTENCE_START, w_1 .. w_{t-1})     over the k + 1 predicted tokens

(natural log), and its per-token perplexity is exp(-log P / (k + 1)): exactly the perplexity
`rnnlm evaluate` reports for a corpus of that one sentence (the same pairs through the same
`total_loss`, a sentence longer than the model's max_sentence_length cut into the same pieces).
A stream model (one continuous text, line breaks as tokens) reads a line break first, as if the
sentence began a line, then predicts w_1 .. w_k and the line break that ends it; its perplexity
is `evaluate`'s on the file "\\n" + sentence + "\\n".

Public API
----------
SentenceScore(tokens, log_prob, predicted, unknown) with .perplexity
score_sentence(model, vocabulary, tokens, stream=False, max_sentence_length=..., window=...) -> SentenceScore
score_sentences(model, vocabulary, sentences, ...) -> list of SentenceScore
rank(scores, by="perplexity") -> the indices of `scores`, best first
"""

from dataclasses import dataclass

import numpy as np

from rnnlm.config import MAX_SENTENCE_LENGTH
from rnnlm.data.corpus import training_pairs
from rnnlm.errors import ConfigError
from rnnlm.nn.numerics import perplexity

LINE_BREAK = "\n"  # a stream model's line token (rnnlm.training.stream.NEWLINE)
STREAM_WINDOW = 256  # a stream model reads a long sentence in windows of this many steps, state carried
RANKINGS = ("perplexity", "logprob")


@dataclass(frozen=True)
class SentenceScore:
    """tokens: the sentence as the model read it (no markers); log_prob: natural log of its probability,
    end marker included; predicted: how many tokens that sums over (len(tokens) + 1); unknown: how
    many of them are UNKNOWN_TOKEN."""

    tokens: tuple
    log_prob: float
    predicted: int
    unknown: int

    @property
    def perplexity(self):
        """Per-token perplexity exp(-log_prob / predicted) (inf rather than an overflow)."""
        return perplexity(-self.log_prob / self.predicted)


def score_sentence(model, vocabulary, tokens, stream=False, max_sentence_length=MAX_SENTENCE_LENGTH,
                   window=STREAM_WINDOW):
    """One sentence's SentenceScore (see the module's docstring).

    model: any rnnlm model with `total_loss` (sentence models) or `start_state` and `window_total_loss`
    (stream = True: a model trained with --stream). vocabulary: the model's. tokens: a list of str,
    words the vocabulary lacks read as UNKNOWN_TOKEN.
    """
    tokens = [str(t) for t in tokens]
    if stream:
        if not hasattr(model, "window_total_loss"):
            raise ConfigError(f"{type(model).__name__} is not a stream model; score it with stream=False")
        line = vocabulary.word_to_index.get(LINE_BREAK, vocabulary.unknown_index)
        ids = np.concatenate([[line], vocabulary.encode(tokens), [line]]).astype(np.int64)
        x, y = ids[:-1], ids[1:]
        state, loss = model.start_state(1), 0.0
        for a in range(0, len(x), window):
            piece, state = model.window_total_loss(x[None, a:a + window], y[None, a:a + window], state)
            loss += float(piece)
        targets = y
    else:
        X, Y = training_pairs([tokens], vocabulary, max_sentence_length)
        loss = float(model.total_loss(X, Y))
        targets = np.concatenate(Y)
    return SentenceScore(tokens=tuple(tokens), log_prob=-loss, predicted=int(len(targets)),
                         unknown=int(np.sum(targets == vocabulary.unknown_index)))


def score_sentences(model, vocabulary, sentences, stream=False, max_sentence_length=MAX_SENTENCE_LENGTH,
                    window=STREAM_WINDOW):
    """`score_sentence` of each token list in `sentences`, in order."""
    return [score_sentence(model, vocabulary, tokens, stream, max_sentence_length, window) for tokens in sentences]


def rank(scores, by="perplexity"):
    """Indices of `scores` best first: by "perplexity" (lowest per-token perplexity first, fair between
    sentences of different lengths) or "logprob" (highest total log-probability first, which favours
    short sentences). Ties keep the input order."""
    if by not in RANKINGS:
        raise ConfigError(f"rank by one of {', '.join(RANKINGS)}, got {by!r}")
    if by == "perplexity":
        key = lambda i: -scores[i].log_prob / scores[i].predicted  # noqa: E731 - the log of the perplexity, no overflow
    else:
        key = lambda i: -scores[i].log_prob  # noqa: E731
    return sorted(range(len(scores)), key=key)

"""Generating sentences from a trained language model (tokens back to text: rnnlm.data.detokenize).

Works with any model that has `start_state(n)` and `step(state, x) -> (logits (n, C), state)`
(`FastRNN`, `LanguageModel`), at word or character level.

One sentence, as in the tutorial: feed SENTENCE_START (then the prefix, if any), and
repeatedly draw the next token from softmax(logits / temperature) until SENTENCE_END.
Unlike the tutorial's loop, which could spin forever:

- UNKNOWN_TOKEN and SENTENCE_START are masked out (probability 0) before sampling,
  so they are never drawn and no rejection loop is needed; so are the words of
  `blocklist.BLOCKLIST` (slurs, explicit sexual terms) unless `mask_blocklist` is False;
- sampling is in float64 from renormalised probabilities, with an explicit, seeded
  `np.random.Generator` (same seed, same sentences);
- `max_length` tokens end a sentence even without SENTENCE_END (termination is guaranteed);
- a sentence of fewer than `min_length` words is drawn again, at most `max_attempts`
  times (a word is a token with a letter or digit in it, so punctuation does not count;
  at character level every character counts); if every attempt is short, the longest one is returned (it is never an error,
  and never an endless loop). Greedy decoding (temperature 0) is deterministic, so it
  makes exactly one attempt; so is any temperature below `GenerateConfig.greedy_below` (1e-3).
- `max_length` and a stream's `length` are at most `GenerateConfig.max_tokens` (10,000).

Prefix tokens that the vocabulary lacks condition the model as UNKNOWN_TOKEN (what the
model saw in training for rare words), but the sentence keeps the user's own token.
"""

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from rnnlm.data.blocklist import blocked_ids
from rnnlm.data.text import tokenize_text
from rnnlm.config import is_int, plain_numbers
from rnnlm.errors import ConfigError, InputError
from rnnlm.nn.inputs import check_config, check_finite, check_generation, check_ids
from rnnlm.nn.threads import holds_blas
from rnnlm.nn.numerics import softmax


@dataclass(frozen=True)
class GenerateConfig:
    """How sentences are drawn: the single source of the `rnnlm generate` defaults.

    num_sentences: how many. min_length: words per sentence at least (see `sentence_length`),
    max_length: tokens at most (punctuation included: it guarantees termination); both
    count characters for a character-level model, and both include the prefix. temperature: divides
    the logits; 1 samples the model's distribution, below 1 is more conservative, 0 is
    greedy (argmax). max_attempts: draws per sentence before the longest is accepted.
    mask_blocklist: never draw a word of `blocklist.BLOCKLIST` (word level).
    char_max_length: the max length `rnnlm generate` uses for a character-level model when
    none is given (50 characters would stop most sentences mid-word).
    length: tokens (characters at char level) of continuous text from a stream model.
    max_tokens: the largest max_length and length accepted (a model that never ends a sentence
    would otherwise write for as long as asked). greedy_below: a temperature below this (0
    included) is greedy: dividing logits by a tinier one overflows to inf and NaN.
    """

    max_tokens: ClassVar[int] = 10_000
    greedy_below: ClassVar[float] = 1e-3

    num_sentences: int = 10
    min_length: int = 7
    max_length: int = 50
    temperature: float = 1.0
    max_attempts: int = 100
    mask_blocklist: bool = True
    char_max_length: int = 300
    length: int = 500

    def __post_init__(self):
        plain_numbers(self)
        for name in ("num_sentences", "max_length", "max_attempts", "length"):
            value = getattr(self, name)
            if not is_int(value) or value < 1:
                raise ConfigError(f"{name.replace('_', ' ')} must be a positive integer, got {value!r}")
        for name in ("max_length", "length", "char_max_length"):
            value = getattr(self, name)
            if not is_int(value) or not 1 <= value <= self.max_tokens:
                raise ConfigError(f"{name.replace('_', ' ')} must be at most {self.max_tokens:,} tokens "
                                  f"(characters at char level), got {value!r}")
        if not is_int(self.min_length) or self.min_length < 0:
            raise ConfigError(f"min length must be a non-negative integer, got {self.min_length!r}")
        if self.min_length > self.max_length:
            raise ConfigError(f"min length ({self.min_length}) is larger than max length ({self.max_length})")
        if not isinstance(self.temperature, (int, float)) or not self.temperature >= 0 \
                or self.temperature == float("inf"):
            raise ConfigError(f"temperature must be 0 (greedy) or a positive number, got {self.temperature!r}")


def is_greedy(temperature):
    """True when `temperature` means argmax: 0, or below `GenerateConfig.greedy_below`."""
    return temperature < GenerateConfig.greedy_below


def next_token(logits, rng, temperature, banned):
    """Draw one token id from (C,) logits: argmax at temperature 0 (or below
    `GenerateConfig.greedy_below`, see `is_greedy`), else softmax(logits / temperature).

    banned: ids that are never returned. Computed in float64 and renormalised, and drawn
    by inverting the cumulative distribution, so round-off never makes a sum exceed 1.
    Raises InputError (a ValueError) for NaN or +inf scores, banned ids outside the logits,
    or when no token is left to draw.
    """
    if not (isinstance(temperature, (int, float)) and 0 <= temperature < float("inf")):
        raise InputError(f"temperature must be 0 (greedy) or a positive finite number, got {temperature!r}")
    scores = np.asarray(logits, dtype=np.float64).copy()
    banned = check_ids(banned, len(scores), "banned")
    if len(np.unique(banned)) == len(scores):
        raise InputError("every token is banned; nothing can be drawn")
    scores[banned] = -np.inf
    if np.isnan(scores).any() or np.isposinf(scores).any() or not np.isfinite(scores).any():
        raise InputError("the model's scores (logits) are NaN or infinite: its parameters are not finite, "
                         "or so large that they overflow")
    if is_greedy(temperature):
        return int(np.argmax(scores))
    probs = softmax(scores / temperature)
    cumulative = np.cumsum(probs)
    index = int(np.searchsorted(cumulative, rng.random() * cumulative[-1], side="right"))
    index = min(index, len(probs) - 1)
    while probs[index] == 0.0:  # only reachable through round-off at the very end of the cumsum
        index -= 1
    return index


def _sample_once(model, vocabulary, rng, prefix_ids, max_length, temperature, banned):
    """One attempt: the generated token ids after the prefix (SENTENCE_END not included)."""
    state = model.start_state(1)
    logits = None
    for token in [vocabulary.start_index] + list(prefix_ids):
        logits, state = model.step(state, np.array([token]))
    generated = []
    while len(prefix_ids) + len(generated) < max_length:
        token = next_token(logits[0], rng, temperature, banned)
        if token == vocabulary.end_index:
            break
        generated.append(token)
        logits, state = model.step(state, np.array([token]))
    return generated


@holds_blas
def generate_sentence(model, vocabulary, rng, min_length=GenerateConfig.min_length,
                      max_length=GenerateConfig.max_length, temperature=GenerateConfig.temperature,
                      prefix_tokens=(), max_attempts=GenerateConfig.max_attempts, level="word",
                      mask_blocklist=GenerateConfig.mask_blocklist):
    """One sentence as a list of tokens: `prefix_tokens` (as given) followed by the generated ones.

    Never contains UNKNOWN_TOKEN (unless the caller's prefix does), SENTENCE_START or
    SENTENCE_END, nor (with mask_blocklist) a word of the blocklist after the prefix. See the module docstring for the length rules; `level` says how
    `min_length` counts (see `sentence_length`).
    """
    GenerateConfig(min_length=min_length, max_length=max_length, temperature=temperature,
                   max_attempts=max_attempts)
    check_finite(getattr(model, "params", {}))  # generation needs only start_state and step; NaN logits are caught by next_token too
    prefix_tokens = check_generation(model, vocabulary, rng, prefix_tokens, level)
    if len(prefix_tokens) > max_length:
        raise ConfigError(f"the prefix has {len(prefix_tokens)} tokens, more than max length {max_length}")
    prefix_ids = vocabulary.encode(prefix_tokens)
    banned = [vocabulary.unknown_index, vocabulary.start_index]
    if mask_blocklist and level == "word":
        banned += blocked_ids(vocabulary)
    best, best_length = None, -1
    for _ in range(1 if is_greedy(temperature) else max_attempts):
        tokens = prefix_tokens + vocabulary.decode(
            _sample_once(model, vocabulary, rng, prefix_ids, max_length, temperature, banned))
        length = sentence_length(tokens, level)
        if length > best_length:
            best, best_length = tokens, length
        if length >= min_length:
            break
    return best


@holds_blas
def generate_stream(model, vocabulary, rng, length=GenerateConfig.length, temperature=GenerateConfig.temperature,
                    prefix_tokens=()):
    """Continuous text from a stream model (see rnnlm.training.stream): `length` tokens after the prefix, as a token list.

    The state starts at zero and reads a line break ("\n", as if the text began after one;
    UNKNOWN_TOKEN if the vocabulary has none), then the prefix; each drawn token is fed
    back. Line breaks are ordinary tokens, so the text keeps the corpus's lines.
    Never draws UNKNOWN_TOKEN, SENTENCE_START or SENTENCE_END. Returns prefix + generated.
    """
    GenerateConfig(length=length, temperature=temperature)
    prefix_tokens = check_generation(model, vocabulary, rng, prefix_tokens)
    banned = [vocabulary.unknown_index, vocabulary.start_index, vocabulary.end_index]
    first = vocabulary.word_to_index.get("\n", vocabulary.unknown_index)
    state = model.start_state(1)
    logits = None
    for token in [first] + list(vocabulary.encode(list(prefix_tokens))):
        logits, state = model.step(state, np.array([token]))
    generated = []
    for _ in range(length):
        token = next_token(logits[0], rng, temperature, banned)
        generated.append(token)
        logits, state = model.step(state, np.array([token]))
    return list(prefix_tokens) + vocabulary.decode(generated)


def sentence_length(tokens, level="word"):
    """What --min-length counts: words (tokens with a letter or digit), or characters at char level."""
    if level == "char":
        return len(tokens)
    return sum(any(ch.isalnum() for ch in token) for token in tokens)


@holds_blas
def generate_sentences(model, vocabulary, rng, config=GenerateConfig(), prefix_tokens=(), level="word"):
    """`config.num_sentences` sentences (token lists) from one generator, in order."""
    check_config(config, GenerateConfig)
    return [generate_sentence(model, vocabulary, rng, config.min_length, config.max_length, config.temperature,
                              prefix_tokens, config.max_attempts, level, config.mask_blocklist)
            for _ in range(config.num_sentences)]


def tokenize_prefix(text, level="word", link_placeholders=True):
    """A user's --prefix text as the model's tokens: lowercased Treebank words, or characters.

    link_placeholders: links and r/, u/ paths become placeholder tokens, as in training.
    """
    return tokenize_text(text, level, link_placeholders)

"""`Vocabulary`: the tutorial's word <-> index mapping, with its special tokens.

The vocabulary keeps the `vocabulary_size - 1` most frequent tokens plus
`UNKNOWN_TOKEN`, which stands for every other token. `SENTENCE_START` and
`SENTENCE_END` are always kept. Ties in frequency are broken by the token itself,
so the same corpus always gives the same indices. Index order: most frequent
first (ties alphabetical), `UNKNOWN_TOKEN` last, as in the tutorial.
"""

from collections import Counter
from dataclasses import dataclass

import numpy as np

from rnnlm.config import MIN_VOCABULARY_SIZE, DataConfig, SENTENCE_END, SENTENCE_START, UNKNOWN_TOKEN, is_int
from rnnlm.errors import ConfigError, ModelFileError
from rnnlm.nn.inputs import check_ids


@dataclass(frozen=True)
class Vocabulary:
    """index_to_word: tuple of tokens, position = index. counts: each kept token's corpus count.

    Build one with `Vocabulary.build`; use `word_to_index`, `encode`, `decode`.
    """

    index_to_word: tuple
    counts: tuple

    def __post_init__(self):
        missing = [t for t in (UNKNOWN_TOKEN, SENTENCE_START, SENTENCE_END) if t not in self.index_to_word]
        if missing:
            raise ModelFileError(f"vocabulary lacks the special token(s) {', '.join(missing)}")
        if len(set(self.index_to_word)) != len(self.index_to_word):
            raise ModelFileError("vocabulary lists a token twice")
        object.__setattr__(self, "word_to_index", {w: i for i, w in enumerate(self.index_to_word)})

    @classmethod
    def build(cls, sentences, vocabulary_size=DataConfig.vocabulary_size, min_count=1):
        """Count tokens in `sentences` (lists of tokens, without start/end markers) and keep the top ones.

        The start/end markers are counted once per sentence, as in the tutorial, where
        they are part of every sentence. Returns a Vocabulary of at most `vocabulary_size` tokens.
        min_count: a token seen fewer times than this is not kept (it becomes UNKNOWN_TOKEN),
        however much room the cap leaves; 1 keeps every token the cap allows (the tutorial's rule).
        A text in which no token is seen min_count times keeps every token (as with 1).
        `rare_tokens` on the result: how many distinct tokens min_count left out; `capped_tokens`:
        how many seen often enough the cap left out.
        """
        if not is_int(min_count) or min_count < 1:
            raise ConfigError(f"minimum count must be a positive integer, got {min_count!r}")
        if not is_int(vocabulary_size) or vocabulary_size < MIN_VOCABULARY_SIZE:
            raise ConfigError(f"vocabulary size must be at least {MIN_VOCABULARY_SIZE} "
                              f"(3 special tokens + 1 word), got {vocabulary_size!r}")
        counter = Counter(token for sentence in sentences for token in sentence)
        read_as_unknown = counter.pop(UNKNOWN_TOKEN, 0)  # the tokens format's <unk>
        counter[SENTENCE_START] = counter[SENTENCE_END] = len(sentences)
        others = sorted((t for t in counter if t not in (SENTENCE_START, SENTENCE_END)),
                        key=lambda t: (-counter[t], t))
        frequent = [t for t in others if counter[t] >= min_count]
        if not frequent:  # a tiny text where no word is seen min_count times: keep every word, as min_count 1
            frequent, min_count = others, 1
        rare = len(others) - len(frequent)
        others = frequent
        kept = sorted([SENTENCE_START, SENTENCE_END] + others[:vocabulary_size - 3],
                      key=lambda t: (-counter[t], t))
        index_to_word = tuple(kept) + (UNKNOWN_TOKEN,)
        kept_set = set(kept)
        unknown_count = read_as_unknown + sum(c for t, c in counter.items() if t not in kept_set)
        counts = tuple(counter[t] for t in kept) + (unknown_count,)
        vocab = cls(index_to_word=index_to_word, counts=counts)
        object.__setattr__(vocab, "unique_tokens", len(counter))
        object.__setattr__(vocab, "rare_tokens", rare)
        object.__setattr__(vocab, "capped_tokens", max(0, len(others) - (vocabulary_size - 3)))
        object.__setattr__(vocab, "min_count", min_count)
        return vocab

    def __len__(self):
        return len(self.index_to_word)

    @property
    def unknown_index(self):
        return self.word_to_index[UNKNOWN_TOKEN]

    @property
    def start_index(self):
        return self.word_to_index[SENTENCE_START]

    @property
    def end_index(self):
        return self.word_to_index[SENTENCE_END]

    def least_frequent(self):
        """(token, count) of the least frequent real token kept (the tutorial's report line)."""
        # index order is (-count, token), so the last real token is the least frequent
        for word, count in zip(reversed(self.index_to_word), reversed(self.counts)):
            if word not in (UNKNOWN_TOKEN, SENTENCE_START, SENTENCE_END):
                return word, count
        return None, 0

    def index_of(self, token):
        """The id `token` is read as: its own, or UNKNOWN_TOKEN's when the vocabulary lacks it.

        The one place a token becomes UNKNOWN_TOKEN: `encode`, tree encoding and generation's prefixes use it.
        """
        return self.word_to_index.get(token, self.word_to_index[UNKNOWN_TOKEN])

    def unknown_tokens(self, tokens):
        """The tokens of `tokens` that are read as UNKNOWN_TOKEN (absent, or UNKNOWN_TOKEN itself), in order."""
        unk = self.unknown_index
        return [t for t in tokens if self.index_of(t) == unk]

    def unknown_count(self, ids):
        """How many of the encoded `ids` (an int array) are UNKNOWN_TOKEN."""
        return int(np.count_nonzero(np.asarray(ids) == self.unknown_index))

    def encode(self, tokens):
        """Tokens -> (T,) int64 indices; tokens not in the vocabulary map to UNKNOWN_TOKEN's index (`index_of`)."""
        return np.array([self.index_of(t) for t in tokens], dtype=np.int64)

    def encode_sentence(self, tokens):
        """Wrap with SENTENCE_START ... SENTENCE_END and encode: (T+2,) int64."""
        return np.concatenate([[self.start_index], self.encode(tokens), [self.end_index]]).astype(np.int64)

    def decode(self, indices):
        """Indices -> tokens (list of str)."""
        return [self.index_to_word[i] for i in check_ids(list(indices), len(self.index_to_word), "indices").tolist()]

    def to_arrays(self):
        """Plain arrays for a model file (no pickling): tokens as a unicode array, counts as int64."""
        return {"index_to_word": np.array(self.index_to_word, dtype=str),
                "counts": np.array(self.counts, dtype=np.int64)}

    @classmethod
    def from_arrays(cls, arrays):
        words = arrays["index_to_word"]
        counts = arrays.get("counts")
        if counts is None or len(counts) != len(words):
            counts = np.zeros(len(words), dtype=np.int64)
        return cls(index_to_word=tuple(str(w) for w in words), counts=tuple(int(c) for c in counts))

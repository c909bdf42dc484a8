"""From a corpus file to training pairs: the tutorial's data pipeline in one call.

    file -> documents -> sentences of tokens -> vocabulary -> X, Y

X[n] = [SENTENCE_START, w_1, ..., w_k] and Y[n] = [w_1, ..., w_k, SENTENCE_END] as
int64 index arrays: the model reads X[n][t] and must predict Y[n][t], the next token.
`find_corpus` decides which corpus a notebook or example uses when none is named.
"""

from dataclasses import dataclass, field
from typing import ClassVar
from pathlib import Path

from rnnlm.config import SPECIAL_TOKENS, DataConfig
from rnnlm.errors import DataError
from rnnlm.wording import counted
from rnnlm.data.text import fallback_corpus_text, in_unspaced_script, read_documents, tokenize_documents
from rnnlm.data.vocab import Vocabulary


@dataclass(frozen=True)
class CorpusReport:
    """What the tutorial prints while preparing its data, as values."""

    path: str
    format: str
    documents: int
    sentences: int
    tokens: int
    unique_tokens: int
    vocabulary_size: int
    least_frequent_word: str
    least_frequent_count: int
    unknown_fraction: float
    sentence_splitter: str
    split_sentences: int = 0          # sentences longer than max_sentence_length, cut into pieces
    max_sentence_length: int | None = None
    pieces: int = 0                   # the training pairs those sentences became
    min_count: int = 1                # words seen fewer times became UNKNOWN_TOKEN ...
    rare_tokens: int = 0              # ... this many distinct ones
    capped_tokens: int = 0            # words seen min_count times or more that the cap left out

    # A least frequent "word" longer than this is shown cut, with its length.
    shown_word_chars: ClassVar[int] = 40

    def lines(self):
        kind = "comment" if self.format == "reddit-csv" else "line"
        if self.format == "tokens":
            lines = [f"Read {counted(self.documents, 'line')} from {self.path} (--format tokens).",
                     f"Parsed {counted(self.sentences, 'sentence')} ({self.sentence_splitter}).",
                     f"Found {self.unique_tokens} unique tokens (SENTENCE_START, SENTENCE_END and UNKNOWN_TOKEN "
                     f"included); using vocabulary size {self.vocabulary_size}"
                     + (", every token kept." if self.vocabulary_size >= self.unique_tokens else
                        f"; raise --vocab-size to {self.unique_tokens} to keep every token."),
                     f"{self.unknown_fraction:.1%} of the {self.tokens} tokens map to UNKNOWN_TOKEN."]
            return lines
        parsed = f"Parsed {counted(self.sentences, 'sentence')} ({self.sentence_splitter})."
        if self.split_sentences:
            one = self.split_sentences == 1
            parsed += (f" {counted(self.split_sentences, 'sentence', grouped=True)} longer than "
                       f"{self.max_sentence_length:,} tokens {'was' if one else 'were'} cut into {self.pieces:,} "
                       f"pieces of at most {self.max_sentence_length:,} (--max-sentence-length).")
        return [
            f"Read {counted(self.documents, kind)} from {self.path}.",
            parsed,
            f"Found {self.unique_tokens} unique tokens (words and punctuation).",
            f"Using vocabulary size {self.vocabulary_size}.",
            *self._min_count_lines(),
            self._least_frequent_line(),
            f"{self.unknown_fraction:.1%} of the {self.tokens} tokens map to UNKNOWN_TOKEN.",
        ]

    def _min_count_lines(self):
        if self.min_count <= 1:
            return []
        words = self.vocabulary_size - 3  # the special tokens are not words seen in the text
        rarer = counted(self.rare_tokens, "rarer word", grouped=True)
        if self.capped_tokens:
            return [f"Kept the {counted(words, 'most frequent word')} (--vocab-size); {self.capped_tokens:,} more seen "
                    f"at least {counted(self.min_count, 'time')} and {rarer} become UNKNOWN_TOKEN."]
        return [f"Kept {counted(words, 'word')} seen at least {counted(self.min_count, 'time')}; "
                f"{rarer} become UNKNOWN_TOKEN."]

    def _least_frequent_line(self):
        word, count = self.least_frequent_word, self.least_frequent_count
        if word is None:
            return "The vocabulary holds no word."
        shown = f"'{word}'"
        if len(word) > self.shown_word_chars:
            shown = f"'{word[:self.shown_word_chars]}...' ({len(word):,} characters)"
        line = f"The least frequent word in our vocabulary is {shown} and appeared {counted(count, 'time')}."
        if in_unspaced_script(word):
            line += (" (The word tokenizer splits on spaces and punctuation, so a run of Chinese, Japanese or "
                     "other text written without spaces stays one token.)")
        return line

    def __str__(self):
        return "\n".join(self.lines())


@dataclass(frozen=True)
class Corpus:
    """Training pairs with the vocabulary that encoded them.

    X, Y: lists of (T_n,) int64 arrays (pair n's inputs and next-token targets): one pair per
        sentence, or several for a sentence longer than the maximum length (`training_pairs`).
    sentences: the token lists before encoding (without start/end markers).
    """

    X: list
    Y: list
    vocabulary: Vocabulary
    sentences: list = field(repr=False)
    report: CorpusReport

    @property
    def num_tokens(self):
        """Number of predicted tokens (targets), the denominator of the per-word loss."""
        return sum(len(y) for y in self.Y)


def training_pairs(sentences, vocabulary, max_length=None):
    """Token lists -> (X, Y): encode each with start/end markers, X = s[:-1], Y = s[1:].

    max_length: a sentence whose pair is longer (more than max_length - 1 words) is cut into
    consecutive pieces X[i:i + max_length], Y[i:i + max_length]: the first still reads
    SENTENCE_START, the last still predicts SENTENCE_END, and no marker is invented between them.
    """
    X, Y = [], []
    for tokens in sentences:
        encoded = vocabulary.encode_sentence(tokens)
        x, y = encoded[:-1], encoded[1:]
        if max_length is None or len(x) <= max_length:
            X.append(x)
            Y.append(y)
        else:
            for start in range(0, len(x), max_length):
                X.append(x[start:start + max_length].copy())
                Y.append(y[start:start + max_length].copy())
    return X, Y


def load_corpus(path, vocabulary_size=DataConfig.vocabulary_size, format=DataConfig.format, level=DataConfig.level,
                vocabulary=None, max_records=None, link_placeholders=DataConfig.link_placeholders,
                max_sentence_length=DataConfig.max_sentence_length, min_count=DataConfig.min_count,
                progress=None):
    """Read, tokenize and encode a corpus file.

    vocabulary: encode with this existing Vocabulary (a model's) instead of building one;
        then `vocabulary_size` is ignored and DataError is raised if no token is known.
    max_records: use only the first this many comments/lines.
    link_placeholders: word level: links and r/, u/ paths become placeholder tokens.
    max_sentence_length: longer sentences are cut into pieces of this many tokens (`training_pairs`).
    progress: called as progress(documents_done, num_documents) while tokenizing (`tokenize_documents`).
    min_count: a word seen fewer times is left out of a built vocabulary (`DataConfig.min_count`).
    Returns a Corpus whose `report` holds the tutorial's figures.
    """
    config = DataConfig(vocabulary_size=vocabulary_size, format=format, level=level, min_count=min_count,
                        link_placeholders=link_placeholders, max_sentence_length=max_sentence_length)
    documents, used_format = read_documents(path, config.format, max_records=max_records)
    return corpus_from_documents(documents, path=str(path), format=used_format, level=config.level,
                                 vocabulary_size=config.vocabulary_size, vocabulary=vocabulary,
                                 link_placeholders=config.link_placeholders,
                                 max_sentence_length=config.max_sentence_length, min_count=config.min_count,
                                 progress=progress)


def corpus_from_documents(documents, path="<text>", format="text", level=DataConfig.level,
                          vocabulary_size=DataConfig.vocabulary_size, vocabulary=None,
                          link_placeholders=DataConfig.link_placeholders,
                          max_sentence_length=DataConfig.max_sentence_length, min_count=DataConfig.min_count,
                          progress=None):
    """Like `load_corpus` for documents already in memory (a list of str)."""
    DataConfig(max_sentence_length=max_sentence_length, min_count=min_count)  # bad bounds fail before any work
    sentences, splitter = tokenize_documents(documents, level=level, link_placeholders=link_placeholders,
                                             format=format, progress=progress)
    if not sentences or not any(sentences):
        raise DataError(f"{path} holds no sentences with any {'characters' if level == 'char' else 'words'}")
    built = vocabulary is None
    # an alphabet is small (keep every character), and an already tokenized file has decided its own
    # vocabulary (the Penn Treebank's <unk>: keep every token, as word_language_model does)
    min_count = min_count if level == "word" and format != "tokens" else 1
    if built:
        vocabulary = Vocabulary.build(sentences, vocabulary_size, min_count=min_count)
    X, Y = training_pairs(sentences, vocabulary, max_sentence_length)
    tokens = sum(len(s) for s in sentences)
    unknown = sum(vocabulary.unknown_count(y) for y in Y)  # every word once (SENTENCE_END is known)
    split = sum(len(s) + 1 > max_sentence_length for s in sentences)
    if not built and unknown == tokens:
        raise DataError(f"no word of {path} is in the model's vocabulary; "
                        "evaluate on text in the language and style the model was trained on")
    word, count = vocabulary.least_frequent()
    report = CorpusReport(
        path=str(path), format=format, documents=len(documents), sentences=len(sentences), tokens=tokens,
        unique_tokens=(len({t for s in sentences for t in s} | set(SPECIAL_TOKENS)) if format == "tokens"
                       else len({t for s in sentences for t in s}) + 2), vocabulary_size=len(vocabulary),
        least_frequent_word=word, least_frequent_count=count,
        unknown_fraction=unknown / max(tokens, 1), sentence_splitter=splitter, split_sentences=split,
        max_sentence_length=max_sentence_length, pieces=len(X) - (len(sentences) - split),
        min_count=vocabulary.min_count if built else 1, rare_tokens=vocabulary.rare_tokens if built else 0,
        capped_tokens=vocabulary.capped_tokens if built else 0)
    return Corpus(X=X, Y=Y, vocabulary=vocabulary, sentences=sentences, report=report)


# Where the data lives relative to a source checkout of rnnlm.
_PROJECT_ROOT = Path(__file__).resolve().parents[2]
FULL_DATASET = _PROJECT_ROOT / "data" / "reddit-comments-2015-08.csv"
SHARED_SAMPLE = _PROJECT_ROOT.parent / "shared" / "data" / "reddit-comments-2015-08-sample.csv"


@dataclass(frozen=True)
class CorpusSource:
    """Which corpus `find_corpus` chose: a path (None for the built-in stand-in) and why."""

    path: Path | None
    format: str
    description: str

    def load(self, vocabulary_size=DataConfig.vocabulary_size, max_records=None, min_count=1):
        """The chosen corpus as a Corpus. min_count defaults to 1, the tutorial's rule (the top
        `vocabulary_size` words, however rare), since the notebooks that use this reproduce the
        tutorial; `load_corpus` and `rnnlm train` default to `DataConfig.min_count`."""
        if self.path is None:
            documents = fallback_corpus_text().split("\n")
            if max_records is not None:
                documents = documents[:max_records]
            return corpus_from_documents(documents, path="pydoc_data.topics (built-in stand-in)",
                                         format="text", vocabulary_size=vocabulary_size, min_count=min_count)
        return load_corpus(self.path, vocabulary_size=vocabulary_size, format=self.format,
                           max_records=max_records, min_count=min_count)


# `rnnlm download reddit` saves into ./data by default, wherever it was run.
DOWNLOADED_DATASET = Path("data") / "reddit-comments-2015-08.csv"


def find_corpus(search=(DOWNLOADED_DATASET, FULL_DATASET, SHARED_SAMPLE)):
    """The corpus examples and notebooks use, first found of:

    1. the full tutorial dataset in data/ (after `rnnlm download reddit`), under the current
       folder or the source checkout;
    2. ../shared/data/reddit-comments-2015-08-sample.csv (developer and CI machines);
    3. an offline stand-in every Python has: the English prose of `pydoc_data.topics`.
    Returns a CorpusSource whose `description` says which one is in use.
    """
    for path in search:
        path = Path(path)
        if path.is_file():
            return CorpusSource(path=path, format="reddit-csv",
                                description=f"Using the Reddit comments in {path}")
    return CorpusSource(path=None, format="text",
                        description="No Reddit dataset found: using the English prose of Python's "
                                    "pydoc_data.topics as a stand-in corpus (run `rnnlm download reddit` "
                                    "for the real data)")

"""Reading corpora and splitting text into sentences and words, offline, always.

Knows nothing about vocabularies: it turns a file into documents (Reddit comments
or lines of text) and documents into lists of tokens.

Sentence splitting uses NLTK's pretrained Punkt model when it is installed, and
otherwise trains NLTK's unsupervised `PunktTrainer` on the corpus itself, so a
missing `nltk_data` never reaches the user as a LookupError and nothing is ever
downloaded. Word splitting uses NLTK's Treebank-style word tokenizer (the one
behind `nltk.word_tokenize`), which needs no data: "He left!" -> he, left, !
"""

import codecs
import csv
import io
import os
import re
import stat
from pathlib import Path

from rnnlm.config import SUBREDDIT_TOKEN, TOKENS_UNKNOWN, UNKNOWN_TOKEN, URL_TOKEN, USER_TOKEN
from rnnlm.errors import DataError

CSV_BODY_COLUMN = "body"
# The whole corpus is read into memory and tokenized there: beyond this, split the file.
MAX_CORPUS_BYTES = 2 << 30
# Byte-order marks of the encodings people save "Unicode text" in, longest first (UTF-32-LE starts like UTF-16-LE).
_BOMS = ((codecs.BOM_UTF32_LE, "UTF-32"), (codecs.BOM_UTF32_BE, "UTF-32"),
         (codecs.BOM_UTF16_LE, "UTF-16"), (codecs.BOM_UTF16_BE, "UTF-16"))


def detect_format(path, format="auto"):
    """"reddit-csv" for a .csv file (or when asked), otherwise "text"."""
    if format != "auto":
        return format
    return "reddit-csv" if str(path).lower().endswith(".csv") else "text"


def read_text_file(path):
    """The file's contents as str, or a DataError saying exactly what is wrong with it.

    Rejects a missing path, a directory, anything but a regular file (a FIFO would block
    forever, /dev/zero never ends), a file over `MAX_CORPUS_BYTES`, an empty file, UTF-16
    or UTF-32 (saying how to convert), a binary file (NUL bytes) and bytes that are not
    UTF-8 (naming the offset and line of the first bad byte).
    A UTF-8 byte-order mark is dropped and CRLF line ends become LF.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"corpus file not found: {path}")
    if path.is_dir():
        raise DataError(f"{path} is a directory; give the path of a corpus file (.csv or .txt)")
    try:
        if not stat.S_ISREG(path.stat().st_mode):  # checked before opening: opening a FIFO blocks
            raise DataError(f"{path} is not a regular file (a pipe or a device); save the corpus to a file first")
        with open(path, "rb") as handle:
            # read(n) allocates n bytes before reading: ask for what the file holds, not the 2 GiB limit
            # (a 1 MB file would momentarily take 2 GiB); a size of 0 (/proc) or a file that grew reads on
            size = os.fstat(handle.fileno()).st_size
            raw = handle.read(min(size, MAX_CORPUS_BYTES) + 1)
            if len(raw) > size:
                raw += handle.read(MAX_CORPUS_BYTES + 1 - len(raw))
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror or exc}") from None
    if len(raw) > MAX_CORPUS_BYTES:
        raise DataError(f"{path} is larger than {MAX_CORPUS_BYTES:,} bytes, more than rnnlm reads into memory; "
                        "use --max-records on a shorter file (e.g. head -n 100000)")
    if not raw.strip():
        raise DataError(f"{path} is empty; give a file with some text in it")
    for bom, encoding in _BOMS:
        if raw.startswith(bom):
            raise DataError(f"{path} is {encoding} text (it starts with a {encoding} byte-order mark), not UTF-8; "
                            f"convert it with: iconv -f {encoding} -t UTF-8 {path} > converted.txt")
    nul = raw.find(b"\x00")
    if nul >= 0:
        raise DataError(f"{path} looks like a binary file (NUL byte at offset {nul}); give a UTF-8 text or CSV file")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise DataError(f"{path} is not UTF-8 text: byte 0x{raw[exc.start]:02x} at offset {exc.start} (line {line}); "
                        "convert it to UTF-8") from None
    return text.replace("\r\n", "\n").replace("\r", "\n")


def read_documents(path, format="auto", max_records=None):
    """Read a corpus file into a list of documents (str).

    format: "reddit-csv": a header row with a `body` column, one (possibly quoted,
    multi-line) comment per record, each comment one document; "text": each
    non-empty line one document; "tokens": every line one document, blank lines
    included (see `token_lines`); "auto": by extension (see `detect_format`).
    max_records: keep only the first this many documents.
    Returns (documents, format used).
    """
    format = detect_format(path, format)
    text = read_text_file(path)
    if format == "reddit-csv":
        documents = _read_reddit_csv(text, path)
    elif format == "text":
        documents = [line.strip() for line in text.split("\n") if line.strip()]
    elif format == "tokens":
        documents = file_lines(text)
    else:
        raise DataError(f"unknown corpus format {format!r}; use reddit-csv, text or tokens")
    if max_records is not None:
        documents = documents[:max_records]
    if not documents:
        raise DataError(f"{path} holds no text to train on")
    return documents, format


def read_stream_text(path, format="auto", max_records=None):
    """(text, format used): a corpus file as one text to read as a token stream.

    A text or tokens file is read whole (blank lines and all); a Reddit CSV's comments are joined
    with a blank line between them. max_records: only the first this many lines (a tokens file's
    as `file_lines` counts them) or comments.
    """
    used = detect_format(path, format)
    if used == "reddit-csv":
        documents, _ = read_documents(path, used, max_records=max_records)
        return "\n\n".join(documents) + "\n", used
    text = read_text_file(path)
    if max_records is not None:
        lines = file_lines(text) if used == "tokens" else text.split("\n")
        text = "\n".join(lines[:max_records]) + "\n"
    return text, used


def file_lines(text):
    """The lines of a text, as Python's `for line in file` sees them: a final line break ends the
    last line rather than starting an empty one; blank lines are kept."""
    lines = text.split("\n")
    return lines[:-1] if lines and lines[-1] == "" else lines


def tokenize_tokens_line(line):
    """One line of the tokens format -> its tokens, exactly as written (no lower-casing, no
    link placeholders, no NLTK): split at white space, `<unk>` read as UNKNOWN_TOKEN.

    "The <unk> fell N %" -> The, UNKNOWN_TOKEN, fell, N, %. An empty line has no tokens.
    """
    return [UNKNOWN_TOKEN if token == TOKENS_UNKNOWN else token for token in line.split()]


def token_lines(text):
    """The tokens format read as sentences: one token list per line (`tokenize_tokens_line`), blank
    lines included as empty sentences, so with SENTENCE_END after each line the predicted tokens are
    exactly PyTorch word_language_model's: every whitespace token plus one <eos> per line."""
    return [tokenize_tokens_line(line) for line in file_lines(text)]


def token_stream(text, line_end="\n"):
    """The tokens format read as one stream, as word_language_model's `Corpus.tokenize` does: each
    line's tokens followed by `line_end` (its <eos>; the stream pipeline's line-break token)."""
    tokens = []
    for line in token_lines(text):
        tokens.extend(line)
        tokens.append(line_end)
    return tokens


def _read_reddit_csv(text, path):
    # newline="" semantics: the csv module itself must see the newlines inside quotes
    reader = csv.reader(io.StringIO(text, newline=""), skipinitialspace=True)
    try:
        header = next(reader)
    except (StopIteration, csv.Error):
        raise DataError(f"{path} has no CSV header row") from None
    names = [h.strip().lower() for h in header]
    if CSV_BODY_COLUMN not in names:
        found = ", ".join(repr(h) for h in header[:5]) or "nothing"
        raise DataError(f"{path} has no '{CSV_BODY_COLUMN}' column in its header (found {found}); "
                        "use --format text for a plain-text file")
    column = names.index(CSV_BODY_COLUMN)
    documents = []
    try:
        for row in reader:
            if len(row) > column and row[column].strip():
                documents.append(row[column].strip())
    except csv.Error as exc:
        raise DataError(f"{path} is not a well-formed CSV file (record {reader.line_num}): {exc}") from None
    return documents


class SentenceSplitter:
    """Splits a document into sentences with Punkt, pretrained if installed, else trained here.

    `source` says which: "pretrained Punkt (english)" or "Punkt trained on this corpus".
    """

    def __init__(self, training_text=None, language="english"):
        self._tokenizer = _pretrained_punkt(language)
        if self._tokenizer is not None:
            self.source = f"pretrained Punkt ({language})"
            return
        from nltk.tokenize.punkt import PunktSentenceTokenizer, PunktTrainer
        trainer = PunktTrainer()
        # learn abbreviations from the whole corpus, not just frequent collocations
        trainer.INCLUDE_ALL_COLLOCS = True
        if training_text:
            trainer.train(training_text, finalize=True)
        else:
            trainer.finalize_training()
        self._tokenizer = PunktSentenceTokenizer(trainer.get_params())
        self.source = "Punkt trained on this corpus"

    def split(self, document):
        return [s for s in self._tokenizer.tokenize(document) if s.strip()]


def _pretrained_punkt(language):
    """NLTK's pretrained Punkt if nltk_data holds it (punkt_tab: plain-text tables), else None.

    The older `punkt/*.pickle` is never loaded: unpickling a file can run code.
    """
    try:
        from nltk.tokenize import PunktTokenizer  # NLTK >= 3.9 (the floor in pyproject.toml)
        return PunktTokenizer(language)
    except (ImportError, LookupError, OSError, ValueError):
        return None


def tokenize_words(sentence):
    """Treebank-style word tokens: "don't stop!" -> do, n't, stop, !  (needs no NLTK data)."""
    from nltk.tokenize.destructive import NLTKWordTokenizer
    return NLTKWordTokenizer().tokenize(sentence)


# A link: a scheme or "www." (or a bare domain with a common top-level domain) and
# everything up to white space, a bracket or a quote, minus trailing punctuation, so
# "[text](http://x.com/a)." keeps its brackets and full stop.
_LINK_END = r"(?:[^\s()\[\]<>\"']*[^\s()\[\]<>\"'.,!?;:])?"
_SCHEME = r"\b(?:(?:https?|ftp)://|www\.)"
_TLD = r"(?:com|org|net|edu|gov|io|co|uk|de|be|gl|ly|tv|me|gg)"
# What a link is, as one regex. It is only ever matched at a start that `_link_spans` found:
# searched with, its bare-domain branch re-reads a long dotted run from every word start
# inside it ("a.a.a..." or "a-a-a-..."), quadratic time (16 KB took 16 s).
_URL = re.compile(_SCHEME + _LINK_END
                  + r"|\b[a-z0-9-]+(?:\.[a-z0-9-]+)*\." + _TLD + r"\b"
                  + r"(?:/" + _LINK_END + r")?", re.IGNORECASE)
# Where a link can start: a scheme, or a "run" (a maximal chain of labels joined by single
# dots, found from its first character only, so each character is read once) holding a dot.
_CANDIDATE = re.compile(_SCHEME + r"|(?P<run>(?<![a-z0-9-])(?<![a-z0-9-]\.)[a-z0-9-]+(?:\.[a-z0-9-]+)+)",
                        re.IGNORECASE)
_SCHEME_START = re.compile(_SCHEME, re.IGNORECASE)
_WORD_START = re.compile(r"\b[a-z0-9-]", re.IGNORECASE)  # where the bare-domain branch may start
_LAST_TLD = re.compile(r"[a-z0-9.-]*(\.)" + _TLD + r"\b", re.IGNORECASE)
_WORD_CHAR = re.compile(r"\w")


def _last_tld_dot(text, start, end):
    """Index of the dot before the run's last label that starts with a top-level domain, or -1."""
    found = _LAST_TLD.match(text, start, end)
    # `end` cuts the text for the match, so a "\b" there holds even before a word character: check it
    if found and found.end() == end and _WORD_CHAR.match(text, end):
        found = _LAST_TLD.match(text, start, found.start(1))
    return found.start(1) if found else -1


def _link_spans(text):
    """(start, end) of each link, left to right, exactly where `_URL.finditer` would find them, in linear time.

    A match can only start at a scheme or inside a dotted run. Within a run the bare-domain
    branch matches from the first word start before the run's last top-level-domain label,
    or nowhere (every later start sees a subset of the same labels), so each run is decided
    once, and `_URL` is then matched at that one start.
    """
    pos = 0
    for candidate in _CANDIDATE.finditer(text):
        start, end = candidate.span()
        if candidate.group("run") is None:  # a scheme outside any dotted run
            if start >= pos:
                pos = _URL.match(text, start).end()
                yield start, pos
            continue
        tld_dot = _last_tld_dot(text, start, end)
        cursor = max(pos, start)
        while cursor < end:
            word = _WORD_START.search(text, cursor, end)
            if word is None:
                break
            first = word.start()
            if first >= tld_dot:  # no bare domain from here on: only a scheme can start a link
                scheme = _SCHEME_START.search(text, first, min(len(text), end + 8))
                if scheme is None or scheme.start() >= end:
                    break
                first = scheme.start()
            match = _URL.match(text, first)
            pos = cursor = match.end()
            yield first, pos


def _replace_urls(text):
    pieces, done = [], 0
    for start, end in _link_spans(text):
        pieces += [text[done:start], URL_TOKEN]
        done = end
    pieces.append(text[done:])
    return "".join(pieces)


# Reddit's own short links: r/name and u/name, with or without a leading slash.
_SUBREDDIT = re.compile(r"(?<![\w/.])/?r/[a-z0-9_]+", re.IGNORECASE)
_USER = re.compile(r"(?<![\w/.])/?u(?:ser)?/[a-z0-9_-]+", re.IGNORECASE)


def replace_links(text):
    """Links -> URL_TOKEN, r/name -> SUBREDDIT_TOKEN, u/name -> USER_TOKEN.

    "see [this](https://x.com/a?b=1) on /r/python" -> "see [this](URL_TOKEN) on SUBREDDIT_TOKEN".
    Applied before sentence and word splitting (a link's dots would otherwise end
    sentences and its pieces become words). The placeholders are upper case, so they
    survive the lowercasing of word-level text and never collide with a real word.
    """
    text = _replace_urls(text)
    text = _SUBREDDIT.sub(SUBREDDIT_TOKEN, text)
    return _USER.sub(USER_TOKEN, text)


def normalize_words(text, link_placeholders=True):
    """What word-level text is tokenized from: lowercased, then (with link_placeholders) `replace_links`.

    The placeholders are upper case, so they are put in after lowercasing.
    """
    text = text.lower()
    return replace_links(text) if link_placeholders else text


def tokenize_text(text, level="word", link_placeholders=True, line_breaks=False):
    """Text a user gives (a --prefix, a stream corpus) as a model's tokens: the one tokenizer for it.

    level "char": every character, case kept. level "word": `normalize_words`, then Treebank words
    (`tokenize_words`). line_breaks: each line is tokenized on its own and "\n" is kept as a token
    between lines (a stream model's text); otherwise a line break is white space like any other.
    """
    if level == "char":
        return list(text)
    if line_breaks:
        lines = text.split("\n")
        tokens = []
        for i, line in enumerate(lines):
            tokens.extend(tokenize_text(line, level, link_placeholders))
            if i < len(lines) - 1:
                tokens.append("\n")
        return tokens
    return tokenize_words(normalize_words(text, link_placeholders))


def tokenize_documents(documents, level="word", splitter=None, link_placeholders=True, format="text", progress=None):
    """Documents -> sentences as token lists, without the start/end markers.

    level "word": lowercase, replace links by placeholders (`replace_links`, unless
    link_placeholders is False), split into sentences (Punkt) and words (Treebank).
    level "char": each non-empty line is a sequence of Unicode code points, case kept.
    splitter: a SentenceSplitter to reuse (default: one trained on these documents).
    format "tokens" (word level): each document is one line of whitespace tokens, taken as it is
    (`tokenize_tokens_line`): no lowercasing, no placeholders, no NLTK; an empty line stays an
    empty sentence (it still predicts SENTENCE_END).
    progress: called as progress(documents_done, num_documents): with 0 before the word level's sentence
    splitter is trained, then after every document (once at the end for the tokens format and characters).
    Returns (sentences: list[list[str]], splitter source description).
    """
    report = progress if progress is not None else (lambda done, total: None)
    if format == "tokens":
        sentences = [tokenize_tokens_line(doc) for doc in documents]
        report(len(documents), len(documents))
        return sentences, "one sentence per line (whitespace tokens)"
    if level == "char":
        lines = [line for doc in documents for line in doc.split("\n") if line.strip()]
        report(len(documents), len(documents))
        return [list(line.strip()) for line in lines], "one sequence per line (characters)"
    report(0, len(documents))
    lowered = [normalize_words(doc, link_placeholders) for doc in documents]
    try:
        if splitter is None:
            splitter = SentenceSplitter(training_text="\n\n".join(lowered))
    except TimeoutError:  # NLTK's regex backstop: a pathological document, not a broken machine
        longest = max(range(len(lowered)), key=lambda i: len(lowered[i]))
        raise DataError(_too_long(longest, lowered[longest])) from None
    from nltk.tokenize.destructive import NLTKWordTokenizer
    word_tokenizer = NLTKWordTokenizer()
    sentences = []
    for number, doc in enumerate(lowered):
        try:
            for sentence in splitter.split(doc):
                tokens = word_tokenizer.tokenize(sentence)
                if tokens:
                    sentences.append(tokens)
        except TimeoutError:
            raise DataError(_too_long(number, doc)) from None
        report(number + 1, len(lowered))
    return sentences, splitter.source


def _too_long(number, document):
    return (f"document {number + 1} ({len(document):,} characters) is too long for NLTK's tokenizer to split in time; "
            "break it into shorter lines or paragraphs")


def fallback_corpus_text():
    """English prose every Python installation has: the help topics of `pydoc_data`.

    Used as an offline stand-in corpus when no dataset is present.
    """
    from pydoc_data.topics import topics
    paragraphs = []
    for body in topics.values():
        for para in body.split("\n\n"):
            line = " ".join(para.split())
            # keep prose, skip code, grammar rules and tables
            if len(line) > 80 and line[0].isalpha() and not any(ch in line for ch in ":=>|"):
                paragraphs.append(line)
    return "\n".join(paragraphs)



# Scripts written without spaces between words: Han (Chinese, Japanese kanji), kana, Hangul,
# Thai, Lao, Khmer, Myanmar. The Treebank word tokenizer splits on spaces and punctuation only,
# so a run of these characters stays one token: a whole clause may be a single "word".
_UNSPACED = re.compile("[\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff"
                       "\uac00-\ud7af\uf900-\ufaff\uff66-\uff9f]")


def in_unspaced_script(token):
    """True when `token` holds a character of a script written without spaces (see `_UNSPACED`):
    the word tokenizer keeps such a run whole, so the token may be a phrase, not a word."""
    return bool(_UNSPACED.search(token))

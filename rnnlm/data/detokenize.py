"""Tokens back to readable text: the inverse of the word tokenizer, for people.

`detokenize` glues Treebank tokens into a sentence; `detokenize_stream` does it line by
line for a stream model's text. Knows nothing about models or sampling.

What it undoes, and how (each rule has a test in tests/test_detokenize.py):

- Treebank clitics ("do", "n't" -> "don't"; 's 're 've 'll 'd 'm) glue onto the word before.
  A clitic that would land on a word that already has one, or on no word at all, is
  written out instead: "they", "'re", "n't" -> "they're not" (a model can draw that sequence;
  "they'ren't" is not English); so is an n't after a word that is no auxiliary verb
  ("like", "n't" -> "like not").
- The tokenizer does not know the curly apostrophe: "don’t" arrives as "don", "’", "t".
  Those three become the clitic form ("do", "n't"), so they read "don't", with the
  straight apostrophe the vocabulary's own clitics have.
- Quotes: `` and '' (Treebank's double quotes) become '"'; “ and ‘ open (no space after),
  ” closes and a lone ’ closes or is a plural possessive (no space before). Straight single
  quotes that come in pairs open and close; an unpaired one is an apostrophe ("the cats' toys").
- Placeholders (see rnnlm.data.text.replace_links) are shown as `PLACEHOLDER_TEXT` says
  (URL_TOKEN -> <link>, SUBREDDIT_TOKEN -> r/<subreddit>, USER_TOKEN -> u/<user>), and a
  markdown link around one, "[text](URL_TOKEN)" (or a broken "text](URL_TOKEN"), reads
  "text (<link>)". raw_placeholders=True keeps the tokens and the markdown as they are.
- HTML entities the Reddit CSV escapes (&gt; &lt; &amp;) are undone; "i" becomes "I"; the
  first letter is capitalised (not inside a placeholder: "<link> is..." stays lower case).
"""

from rnnlm.config import SENTENCE_END, SENTENCE_START, SUBREDDIT_TOKEN, URL_TOKEN, USER_TOKEN

# Treebank splits clitics off the word before them ("don't" -> "do", "n't"): glue them back.
_CLITICS = {"n't", "'s", "'re", "'ll", "'ve", "'m", "'d"}
# A clitic with no word to land on (or on a word that has one already) is written out.
_CLITIC_WORDS = {"n't": "not", "'s": "is", "'re": "are", "'ll": "will", "'ve": "have", "'m": "am", "'d": "would"}
# n't glues only onto the verbs Treebank splits it from ("do", "ca" of can't, "wo" of won't);
# after any other word ("like", "n't": a model can draw that) it is written out: "like not".
_NT_HOSTS = set("""do does did is are was were have has had ca wo could would should must might
                   need ai sha dare may ought""".split())
# What follows a curly apostrophe the tokenizer left alone: "don", "’", "t"; "it", "’", "s".
_CURLY_APOSTROPHE = "’"
_CURLY_RESTS = {"t", "s", "re", "ll", "ve", "m", "d"}
_NO_SPACE_BEFORE = {",", ".", "!", "?", ";", ":", ")", "]", "}", "%", "...", "''", "”", _CURLY_APOSTROPHE}
_NO_SPACE_AFTER = {"(", "[", "{", "$", "#", "``", "“", "‘"}
# Treebank also splits "gonna", "wanna", "gotta", "cannot" in two; the second halves attach.
_SPLIT_PAIRS = {("gon", "na"), ("wan", "na"), ("got", "ta"), ("can", "not")}
_QUOTES = {"``": '"', "''": '"'}
_ENTITIES = {"gt": ">", "lt": "<", "amp": "&", "nbsp": " ", "quot": '"'}
# How a placeholder token reads for people (raw_placeholders=True prints the token itself).
PLACEHOLDER_TEXT = {URL_TOKEN: "<link>", SUBREDDIT_TOKEN: "r/<subreddit>", USER_TOKEN: "u/<user>"}
_OPEN_QUOTE, _CLOSE_QUOTE = "\x00open'", "\x00close'"  # straight single quotes once paired


def detokenize(tokens, level="word", raw_placeholders=False):
    """Tokens -> text for humans (see the module docstring for every rule).

    level "char": the characters joined without spaces. level "word": Treebank tokens
    joined with spaces except before , . ! ? ; : ) ] and clitics and after ( [ $ and opening
    quotes; placeholders shown for people unless raw_placeholders; the first letter capitalised.
    ["i", "do", "n't", "know", ",", "really", "."] -> "I don't know, really."
    """
    tokens = [t for t in tokens if t not in (SENTENCE_START, SENTENCE_END)]
    if level == "char":
        return "".join(tokens)
    tokens = _pair_single_quotes(_curly_contractions(_html_entities(tokens)))
    if not raw_placeholders:
        tokens = _markdown_links(tokens)
    pieces = []  # (text, capitalisable)
    previous = previous_word = None
    has_clitic = False  # the word just written already carries a clitic
    for token in tokens:
        if token in _CLITICS and (previous is None or has_clitic or not any(ch.isalnum() for ch in previous_word)
                                  or (token == "n't" and previous.lower() not in _NT_HOSTS)):
            token, has_clitic = _CLITIC_WORDS[token], False
            glue = False
        else:
            glue = previous is not None and (token in _NO_SPACE_BEFORE or token in _CLITICS
                                             or token == "'" or token == _CLOSE_QUOTE
                                             or previous in _NO_SPACE_AFTER or previous == _OPEN_QUOTE
                                             or (previous.lower(), token) in _SPLIT_PAIRS
                                             or (previous == ":" and token.startswith("//"))  # http: //x -> http://x
                                             or (previous == "]" and token == "("))  # markdown [text](link)
            has_clitic = token in _CLITICS
        placeholder = not raw_placeholders and token in PLACEHOLDER_TEXT
        if placeholder:
            word = PLACEHOLDER_TEXT[token]
        elif token in (_OPEN_QUOTE, _CLOSE_QUOTE):
            word = "'"
        else:
            word = "I" if token == "i" else _QUOTES.get(token, token)
        if pieces and not glue:
            pieces.append((" ", False))
        pieces.append((word, not placeholder))
        previous, previous_word = token, word
    return _capitalise(pieces)


def _capitalise(pieces):
    """Join the pieces, the first letter upper case unless a placeholder comes first."""
    out, done = [], False
    for text, capitalisable in pieces:
        if not done and any(ch.isalpha() for ch in text):
            done = True
            if capitalisable:
                i = next(i for i, ch in enumerate(text) if ch.isalpha())
                text = text[:i] + text[i].upper() + text[i + 1:]
        out.append(text)
    return "".join(out)


def _html_entities(tokens):
    """Reddit's CSV escapes > < & as &gt; &lt; &amp;, which Treebank splits into "&", "gt", ";": undo both."""
    merged, i = [], 0
    while i < len(tokens):
        if tokens[i] == "&" and i + 2 < len(tokens) and tokens[i + 2] == ";" and tokens[i + 1] in _ENTITIES:
            merged.append(_ENTITIES[tokens[i + 1]])
            i += 3
        else:
            merged.append(tokens[i])
            i += 1
    return merged


def _curly_contractions(tokens):
    """"don", "’", "t" -> "do", "n't"; "it", "’", "s" -> "it", "'s": the clitics the tokenizer
    would have made of a straight apostrophe. A "’" not between a word and a clitic stays a quote."""
    out, i = [], 0
    while i < len(tokens):
        token = tokens[i]
        if (token == _CURLY_APOSTROPHE and out and out[-1][-1:].isalnum() and i + 1 < len(tokens)
                and tokens[i + 1] in _CURLY_RESTS):
            rest = tokens[i + 1]
            if rest != "t":
                out.append("'" + rest)
                i += 2
                continue
            if len(out[-1]) > 1 and out[-1].endswith("n"):
                out[-1] = out[-1][:-1]
                out.append("n't")
                i += 2
                continue
        out.append(token)
        i += 1
    return out


def _pair_single_quotes(tokens):
    """Lone straight single quotes that come in pairs open and close a quotation; an odd
    number of them are apostrophes (a plural possessive, "the cats' toys") and stay "'"."""
    quotes = [i for i, t in enumerate(tokens) if t == "'"]
    if len(quotes) < 2 or len(quotes) % 2:
        return tokens
    tokens = list(tokens)
    for n, i in enumerate(quotes):
        tokens[i] = _OPEN_QUOTE if n % 2 == 0 else _CLOSE_QUOTE
    return tokens


def _markdown_links(tokens):
    """"[", "text", "]", "(", URL_TOKEN, ")" -> "text", "(", URL_TOKEN, ")": the link text reads
    as text, the placeholder after it in brackets. A "]" without its "[" (or a missing ")") too."""
    out, i = [], 0
    while i < len(tokens):
        if (tokens[i] == "]" and i + 2 < len(tokens) and tokens[i + 1] == "("
                and tokens[i + 2] in PLACEHOLDER_TEXT):
            opening = max((j for j, t in enumerate(out) if t == "["), default=None)
            if opening is not None and "]" not in out[opening:]:
                del out[opening]
            out += ["(", tokens[i + 2], ")"]
            i += 4 if i + 3 < len(tokens) and tokens[i + 3] == ")" else 3
        else:
            out.append(tokens[i])
            i += 1
    return out


def detokenize_stream(tokens, level="word", raw_placeholders=False):
    """Stream tokens -> text: characters joined; words detokenized line by line, the line breaks kept."""
    if level == "char":
        return "".join(tokens)
    lines, line = [], []
    for token in tokens:
        if token == "\n":
            lines.append(detokenize(line, raw_placeholders=raw_placeholders) if line else "")
            line = []
        else:
            line.append(token)
    lines.append(detokenize(line, raw_placeholders=raw_placeholders) if line else "")
    return "\n".join(lines)

"""Tokens back to readable text: the inverse of the word tokenizer, for people.

`detokenize` glues Treebank tokens into a sentence; `detokenize_stream` does it line by
line for a stream model's text. Knows nothing about models or sampling.
"""

from rnnlm.config import SENTENCE_END, SENTENCE_START

# Treebank splits clitics off the word before them ("don't" -> "do", "n't"): glue them back.
_CLITICS = {"n't", "'s", "'re", "'ll", "'ve", "'m", "'d", "'"}
_NO_SPACE_BEFORE = {",", ".", "!", "?", ";", ":", ")", "]", "}", "%", "...", "''"} | _CLITICS
_NO_SPACE_AFTER = {"(", "[", "{", "$", "#", "``"}
# Treebank also splits "gonna", "wanna", "gotta", "cannot" in two; the second halves attach.
_SPLIT_PAIRS = {("gon", "na"), ("wan", "na"), ("got", "ta"), ("can", "not")}
_QUOTES = {"``": '"', "''": '"'}
_ENTITIES = {"gt": ">", "lt": "<", "amp": "&", "nbsp": " ", "quot": '"'}


def detokenize(tokens, level="word"):
    """Tokens -> text for humans.

    level "char": the characters joined without spaces. level "word": Treebank tokens
    joined with spaces except before , . ! ? ; : ) ] and clitics (n't 's 're 'll 've 'm 'd)
    and after ( [ $; `` and '' become '"'; "i" becomes "I"; the first letter is capitalised.
    ["i", "do", "n't", "know", ",", "really", "."] -> "I don't know, really."
    """
    tokens = [t for t in tokens if t not in (SENTENCE_START, SENTENCE_END)]
    if level == "char":
        return "".join(tokens)
    tokens = _html_entities(tokens)
    pieces = []
    previous = None
    for token in tokens:
        word = "I" if token == "i" else _QUOTES.get(token, token)
        glue = previous is not None and (token in _NO_SPACE_BEFORE or previous in _NO_SPACE_AFTER
                                         or (previous.lower(), token) in _SPLIT_PAIRS
                                         or (previous == ":" and token.startswith("//"))  # http: //x -> http://x
                                         or (previous == "]" and token == "("))  # markdown [text](link)
        if pieces and not glue:
            pieces.append(" ")
        pieces.append(word)
        previous = token
    text = "".join(pieces)
    for i, ch in enumerate(text):
        if ch.isalpha():
            return text[:i] + ch.upper() + text[i + 1:]
    return text


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


def detokenize_stream(tokens, level="word"):
    """Stream tokens -> text: characters joined; words detokenized line by line, the line breaks kept."""
    if level == "char":
        return "".join(tokens)
    lines, line = [], []
    for token in tokens:
        if token == "\n":
            lines.append(detokenize(line) if line else "")
            line = []
        else:
            line.append(token)
    lines.append(detokenize(line) if line else "")
    return "\n".join(lines)

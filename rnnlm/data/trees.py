"""Sentiment trees: the PTB-bracket reader, the vocabulary of their leaves, and trees as flat arrays.

The Stanford Sentiment Treebank writes one binary tree per line with a label 0-4 on every
node (0 very negative ... 4 very positive):

    (3 (2 It) (4 (2 's) (3 lovely)))

A leaf is `(label token)`; an inner node is `(label left right)`. `parse_tree` reads one
such line into a `Tree`; a malformed line is a `DataError` naming the line, the column and
what was expected there. `read_trees` reads a file. `EncodedTree` is the same tree as
flat arrays in post-order (children before parents), the form the batched code wants:

    word (M,) int    vocabulary index of each leaf, -1 for inner nodes
    left, right (M,) int   child positions of each inner node, -1 for leaves
    label (M,) int   every node's label; the root is the last node, M = 2 n - 1 for n leaves

For text without a parse (`rnnlm trees predict "a sentence"`), `binarize` builds a tree
over the tokens: balanced (split in the middle) or right-branching.
"""

from pathlib import Path
from typing import NamedTuple

import numpy as np

from rnnlm.errors import DataError
from rnnlm.data.text import read_text_file, tokenize_words
from rnnlm.data.vocab import Vocabulary

NUM_CLASSES = 5
NEUTRAL = 2
BINARIZATIONS = ("balanced", "right")


class Tree:
    """A node: `label` (int 0-4, or None when unknown), and either `word` (a leaf) or `left`, `right`."""

    __slots__ = ("label", "word", "left", "right")

    def __init__(self, label, word=None, left=None, right=None):
        self.label, self.word, self.left, self.right = label, word, left, right

    @property
    def is_leaf(self):
        return self.word is not None

    def leaves(self):
        """The tokens, left to right."""
        if self.is_leaf:
            return [self.word]
        return self.left.leaves() + self.right.leaves()

    def num_nodes(self):
        return 1 if self.is_leaf else 1 + self.left.num_nodes() + self.right.num_nodes()

    def height(self):
        """0 for a leaf, 1 + the taller child's height otherwise."""
        return 0 if self.is_leaf else 1 + max(self.left.height(), self.right.height())

    def __str__(self):
        label = "?" if self.label is None else self.label
        if self.is_leaf:
            return f"({label} {self.word})"
        return f"({label} {self.left} {self.right})"

    __repr__ = __str__


# --------------------------------------------------------------------- reading brackets

def _tokens(text):
    """(token, column) pairs: '(' , ')' and maximal runs of other non-space characters."""
    out, i, n = [], 0, len(text)
    while i < n:
        ch = text[i]
        if ch.isspace():
            i += 1
        elif ch in "()":
            out.append((ch, i))
            i += 1
        else:
            j = i
            while j < n and not text[j].isspace() and text[j] not in "()":
                j += 1
            out.append((text[i:j], i))
            i = j
    return out


def _fail(where, message, column=None):
    col = f" column {column + 1}" if column is not None else ""
    raise DataError(f"{where}{col}: {message}")


def _expect_end(tokens, pos, where):
    if pos != len(tokens):
        tok, col = tokens[pos]
        _fail(where, f"unexpected {tok!r} after the end of the tree (unbalanced brackets?)", col)


def parse_tree(text, where="input"):
    """One bracketed tree -> `Tree`. where: names the text in errors (e.g. 'train.txt line 4').

    Raises DataError (one line) for unbalanced brackets, a missing or non-0-4 label, a node with
    other than one token or two children, or text after the tree.
    """
    tokens = _tokens(text)
    if not tokens:
        raise DataError(f"{where}: empty line where a bracketed tree was expected")
    pos = 0

    def fail(message, column=None):
        _fail(where, message, column)

    def node():
        nonlocal pos
        if pos >= len(tokens):
            fail("the tree ends early: a '(' is not closed")
        tok, col = tokens[pos]
        if tok != "(":
            fail(f"expected '(' to start a node, found {tok!r}", col)
        pos += 1
        if pos >= len(tokens) or tokens[pos][0] in "()":
            fail("a node has no label: expected an integer 0-4 after '('", col)
        text_label, lcol = tokens[pos]
        if text_label not in ("0", "1", "2", "3", "4"):
            fail(f"label {text_label!r} is not an integer 0-4", lcol)
        label = int(text_label)
        pos += 1
        if pos >= len(tokens):
            fail("the tree ends early: a '(' is not closed")
        tok, tcol = tokens[pos]
        if tok == ")":
            fail("a node has neither a token nor two children", tcol)
        if tok != "(":  # a leaf: its token is all the text up to ')' (SST has one with a space: "8 1\\/2")
            words = []
            while pos < len(tokens) and tokens[pos][0] not in "()":
                words.append(tokens[pos][0])
                pos += 1
            if pos >= len(tokens):
                fail("the tree ends early: a '(' is not closed")
            if tokens[pos][0] != ")":
                fail(f"a leaf cannot have children: found '(' after {' '.join(words)!r}", tokens[pos][1])
            pos += 1
            return Tree(label, word=" ".join(words))
        left = node()
        right = node() if pos < len(tokens) and tokens[pos][0] == "(" else None
        if right is None:
            fail("an inner node has one child; the trees must be binary", col)
        if pos >= len(tokens):
            fail("the tree ends early: a '(' is not closed")
        if tokens[pos][0] != ")":
            fail(f"an inner node has more than two children (found {tokens[pos][0]!r}); the trees must be binary",
                 tokens[pos][1])
        pos += 1
        return Tree(label, left=left, right=right)

    tree = node()
    _expect_end(tokens, pos, where)
    return tree


def read_trees(path):
    """Every tree of a file with one bracketed tree per line (blank lines skipped); DataError if none."""
    text = read_text_file(path)
    name = Path(path).name
    trees = [parse_tree(line, where=f"{name} line {number}")
             for number, line in enumerate(text.splitlines(), start=1) if line.strip()]
    if not trees:
        raise DataError(f"{path} holds no trees; expected one bracketed tree per line, e.g. (3 (2 It) (3 works))")
    return trees


def binarize(tokens, how="balanced"):
    """A label-less binary tree over `tokens`: 'balanced' splits in the middle, 'right' is (a (b (c d)))."""
    if not tokens:
        raise DataError("no words to build a tree from")
    if how not in BINARIZATIONS:
        raise DataError(f"unknown binarization {how!r}; choose one of {', '.join(BINARIZATIONS)}")

    def build(lo, hi):
        if hi - lo == 1:
            return Tree(None, word=tokens[lo])
        mid = (lo + hi) // 2 if how == "balanced" else lo + 1
        return Tree(None, left=build(lo, mid), right=build(mid, hi))

    return build(0, len(tokens))


def parse_unlabelled(text, where="input"):
    """A label-less binary bracketing, leaves bare tokens: '((not bad) .)' -> Tree with labels None."""
    tokens = _tokens(text)
    pos = 0

    def fail(message, column=None):
        _fail(where, message, column)

    def child():
        nonlocal pos
        if pos >= len(tokens):
            fail("the tree ends early: a '(' is not closed")
        tok, col = tokens[pos]
        pos += 1
        if tok == ")":
            fail("expected a word or '(' here, found ')'", col)
        if tok != "(":
            return Tree(None, word=tok)
        left, right = child(), child()
        if pos >= len(tokens):
            fail("the tree ends early: a '(' is not closed")
        if tokens[pos][0] != ")":
            fail(f"a node has more than two children (found {tokens[pos][0]!r}); bracket words in pairs, "
                 "e.g. ((not bad) .)", tokens[pos][1])
        pos += 1
        return Tree(None, left=left, right=right)

    tree = child()
    _expect_end(tokens, pos, where)
    return tree


def tree_from_text(text, how="balanced"):
    """A tree for `rnnlm trees predict`: bracketed text as given, else words binarized.

    '(3 (2 not) (1 bad))' (SST form, labels ignored) and '((not bad) .)' (no labels, bare words)
    are read as trees; any other text is split into Treebank tokens and binarized `how`
    ('balanced' or 'right').
    """
    stripped = text.strip()
    if not stripped.startswith("("):
        return binarize(tokenize_words(stripped), how)
    tokens = _tokens(stripped)
    if len(tokens) > 1 and tokens[1][0] in ("0", "1", "2", "3", "4") and len(tokens) > 2 and tokens[2][0] != ")":
        return parse_tree(stripped, where="the bracketed tree")
    return parse_unlabelled(stripped, where="the bracketed tree")


# --------------------------------------------------------------------- vocabulary and flat arrays

def build_vocabulary(trees, vocabulary_size):
    """`Vocabulary.build` over the leaves of `trees` (tokens kept as written: SST is cased)."""
    return Vocabulary.build([tree.leaves() for tree in trees], vocabulary_size=vocabulary_size)


class EncodedTree(NamedTuple):
    """A tree as post-order arrays (see the module docstring); the root is the last node."""

    word: np.ndarray
    left: np.ndarray
    right: np.ndarray
    label: np.ndarray

    @property
    def num_nodes(self):
        return len(self.word)


def encode_tree(tree, vocabulary):
    """Tree -> EncodedTree; unknown tokens become UNKNOWN_TOKEN, a missing label -1."""
    word, left, right, label = [], [], [], []
    unk = vocabulary.unknown_index

    def visit(node):  # returns the node's position; children are written first
        if node.is_leaf:
            w, lft, rgt = vocabulary.word_to_index.get(node.word, unk), -1, -1
        else:
            lft, rgt, w = visit(node.left), visit(node.right), -1
        word.append(w)
        left.append(lft)
        right.append(rgt)
        label.append(-1 if node.label is None else node.label)
        return len(word) - 1

    visit(tree)
    as_int = lambda values: np.array(values, dtype=np.int64)  # noqa: E731
    return EncodedTree(as_int(word), as_int(left), as_int(right), as_int(label))


def sentence_labels(trees):
    """(N,) int: the root label of each tree."""
    return np.array([t.label for t in trees], dtype=np.int64)

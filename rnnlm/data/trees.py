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

    # Every walk below is a loop over an explicit stack, never a recursion: an SST-style
    # right-branching tree of a few thousand words is as deep as it is long, past Python's
    # recursion limit (1,000 by default).

    def postorder(self):
        """Every node, children before their parent, left subtree before right: the `EncodedTree` order."""
        out, stack = [], [self]
        while stack:
            node = stack.pop()
            out.append(node)
            if not node.is_leaf:
                stack.append(node.left)
                stack.append(node.right)
        out.reverse()  # (node, right..., left...) reversed is (left..., right..., node)
        return out

    def leaves(self):
        """The tokens, left to right."""
        return [node.word for node in self.postorder() if node.is_leaf]

    def num_nodes(self):
        return len(self.postorder())

    def height(self):
        """0 for a leaf, 1 + the taller child's height otherwise."""
        heights = []  # a stack of the finished subtrees' heights, in post-order
        for node in self.postorder():
            if node.is_leaf:
                heights.append(0)
            else:
                right, left = heights.pop(), heights.pop()
                heights.append(1 + max(left, right))
        return heights[0]

    def bracketed(self, label_of=None):
        """The tree as brackets; label_of(node) gives the label printed (default: node.label, '?' when None)."""
        if label_of is None:
            label_of = lambda node: "?" if node.label is None else node.label  # noqa: E731
        pieces, stack = [], [self]
        while stack:
            item = stack.pop()
            if isinstance(item, str):
                pieces.append(item)
            elif item.is_leaf:
                pieces.append(f"({label_of(item)} {item.word})")
            else:
                pieces.append(f"({label_of(item)} ")
                stack.extend((")", item.right, " ", item.left))
        return "".join(pieces)

    def __str__(self):
        return self.bracketed()

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
    n = len(tokens)

    def fail(message, column=None):
        _fail(where, message, column)

    pos = 0
    open_nodes = []  # (label, column of its '(', children read so far): the inner nodes not yet closed
    while True:  # read the node that starts at pos
        if pos >= n:
            fail("the tree ends early: a '(' is not closed")
        tok, col = tokens[pos]
        if tok != "(":
            fail(f"expected '(' to start a node, found {tok!r}", col)
        pos += 1
        if pos >= n or tokens[pos][0] in "()":
            fail("a node has no label: expected an integer 0-4 after '('", col)
        text_label, lcol = tokens[pos]
        if text_label not in ("0", "1", "2", "3", "4"):
            fail(f"label {text_label!r} is not an integer 0-4", lcol)
        label = int(text_label)
        pos += 1
        if pos >= n:
            fail("the tree ends early: a '(' is not closed")
        tok, tcol = tokens[pos]
        if tok == ")":
            fail("a node has neither a token nor two children", tcol)
        if tok == "(":  # an inner node: read its children next
            open_nodes.append((label, col, []))
            continue
        # a leaf: its token is all the text up to ')' (SST has one with a space: "8 1\\/2")
        words = []
        while pos < n and tokens[pos][0] not in "()":
            words.append(tokens[pos][0])
            pos += 1
        if pos >= n:
            fail("the tree ends early: a '(' is not closed")
        if tokens[pos][0] != ")":
            fail(f"a leaf cannot have children: found '(' after {' '.join(words)!r}", tokens[pos][1])
        pos += 1
        done = Tree(label, word=" ".join(words))
        while open_nodes:  # give the finished node to its parent; close every parent that now has two
            parent_label, parent_col, children = open_nodes[-1]
            children.append(done)
            if len(children) == 1:
                if pos < n and tokens[pos][0] == "(":
                    break  # read the right child
                fail("an inner node has one child; the trees must be binary", parent_col)
            if pos >= n:
                fail("the tree ends early: a '(' is not closed")
            if tokens[pos][0] != ")":
                fail(f"an inner node has more than two children (found {tokens[pos][0]!r}); the trees must be binary",
                     tokens[pos][1])
            pos += 1
            open_nodes.pop()
            done = Tree(parent_label, left=children[0], right=children[1])
        else:
            break  # the root is finished
    _expect_end(tokens, pos, where)
    return done


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

    finished, todo = [], [(0, len(tokens), False)]  # (lo, hi, children done?): an explicit stack, no recursion
    while todo:
        lo, hi, children_done = todo.pop()
        if hi - lo == 1:
            finished.append(Tree(None, word=tokens[lo]))
        elif children_done:
            right = finished.pop()
            finished.append(Tree(None, left=finished.pop(), right=right))
        else:
            mid = (lo + hi) // 2 if how == "balanced" else lo + 1
            todo.extend(((lo, hi, True), (mid, hi, False), (lo, mid, False)))
    return finished[0]


def parse_unlabelled(text, where="input"):
    """A label-less binary bracketing, leaves bare tokens: '((not bad) .)' -> Tree with labels None."""
    tokens = _tokens(text)
    n = len(tokens)

    def fail(message, column=None):
        _fail(where, message, column)

    pos = 0
    open_nodes = []  # the children read so far of each '(' not yet closed
    while True:  # read the child that starts at pos
        if pos >= n:
            fail("the tree ends early: a '(' is not closed")
        tok, col = tokens[pos]
        pos += 1
        if tok == ")":
            fail("expected a word or '(' here, found ')'", col)
        if tok == "(":
            open_nodes.append([])
            continue
        done = Tree(None, word=tok)
        while open_nodes:
            children = open_nodes[-1]
            children.append(done)
            if len(children) == 1:
                break  # read the second child
            if pos >= n:
                fail("the tree ends early: a '(' is not closed")
            if tokens[pos][0] != ")":
                fail(f"a node has more than two children (found {tokens[pos][0]!r}); bracket words in pairs, "
                     "e.g. ((not bad) .)", tokens[pos][1])
            pos += 1
            open_nodes.pop()
            done = Tree(None, left=children[0], right=children[1])
        else:
            break
    _expect_end(tokens, pos, where)
    return done


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
    positions = []  # a stack of the finished subtrees' root positions
    for node in tree.postorder():  # children are written before their parent
        if node.is_leaf:
            w, lft, rgt = vocabulary.index_of(node.word), -1, -1
        else:
            rgt, lft, w = positions.pop(), positions.pop(), -1
        positions.append(len(word))
        word.append(w)
        left.append(lft)
        right.append(rgt)
        label.append(-1 if node.label is None else node.label)
    as_int = lambda values: np.array(values, dtype=np.int64)  # noqa: E731
    return EncodedTree(as_int(word), as_int(left), as_int(right), as_int(label))


def sentence_labels(trees):
    """(N,) int: the root label of each tree."""
    return np.array([t.label for t in trees], dtype=np.int64)

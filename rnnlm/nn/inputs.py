"""Checking what callers pass to the public model methods, once, at the boundary.

Word ids index rows and columns of the parameters, and NumPy indexing is forgiving in
exactly the wrong ways: -1 silently reads the last word's column, 2.7 is truncated to 2
by `astype(int)`, and a sentence whose targets are one shorter than its inputs is
broadcast or cut. Every public entry point (`RNNNumpy`'s methods, `FastRNN` and
`LanguageModel`'s losses, `start_state` and `step`, `TreeLSTM`'s methods, `rnnlm.training.stream`'s
`batchify`, `split_stream`, `stream_total_loss` and `StreamBatches`, `generate_sentence` and
`generate_stream`) calls one of these first, so a wrong argument is an `InputError` (a
`ValueError`, and an `RnnlmError` the CLI prints as one line) that names it, and the inner
loops stay free of checks. Each check costs O(size of the argument) NumPy work at most.

    check_ids        word ids: integers, the right number of dimensions, inside the vocabulary
    check_pair       one sentence x, y;   check_pairs: sentences X, Y;   check_stream: (B, L) streams
    check_state      a recurrent state against the model's own `start_state(n)`: structure, shape, finite
    check_count      a whole number of things (n, batch_size, streams, seq_length)
    check_rate       a positive finite number (learning_rate, h);   check_fraction: a number in [0, 1)
    check_trees      encoded sentiment trees: ids, labels, and a binary tree in post-order
    check_generation generate_sentence / generate_stream's rng, prefix tokens and level
    check_config     a config object of the expected class
    check_finite     parameters valid by `numerics.parameter_fault` (finite, within its bound)
"""

import math
import numbers
from collections.abc import Sequence

import numpy as np

from rnnlm.errors import InputError
from rnnlm.nn.numerics import first_parameter_fault, parameter_message
from rnnlm.wording import counted


def _example(ids):
    """The first entry of a non-empty array, as a plain Python value for a message."""
    first = ids.flat[0]
    return first.item() if isinstance(first, np.generic) else first


def _describe(value):
    """How a message names a wrong value: its type, and the value itself when it is short."""
    text = repr(value)
    return f"{type(value).__name__} {text}" if len(text) <= 40 else type(value).__name__


def check_ids(x, vocab_size, name="x", ndim=1, allow_empty=True):
    """`x` as an int64 array of `ndim` dimensions whose entries are word ids in [0, vocab_size).

    Raises InputError naming `name` for floats, bools, strings, objects (None, dicts), ragged
    input, the wrong number of dimensions, ids outside the vocabulary (negative ones included),
    and, unless allow_empty, for no ids at all. vocab_size None: ids need only be non-negative.
    """
    try:
        ids = np.asarray(x)
    except ValueError:  # ragged nested lists
        raise InputError(f"{name} must be a {ndim}-D array of integer word ids, got ragged input") from None
    if ids.size == 0:
        if not allow_empty:
            raise InputError(f"{name} is empty: give at least one word id")
        return np.zeros(ids.shape if ids.ndim == ndim else (0,) * ndim, dtype=np.int64)
    if ids.dtype.kind not in "iu":
        raise InputError(f"{name} must hold integer word ids, got {ids.dtype} values (e.g. {_example(ids)!r})")
    if ids.ndim != ndim:
        hint = f"; wrap a single id as [{_example(ids)}]" if ids.ndim == 0 and ndim == 1 else ""
        raise InputError(f"{name} must be a {ndim}-D array of word ids, got shape {ids.shape}{hint}")
    low, high = int(ids.min()), int(ids.max())
    if vocab_size is None:
        if low < 0:
            raise InputError(f"{name} holds word id {low}; word ids are 0 or more")
    elif low < 0 or high >= vocab_size:
        bad = low if low < 0 else high
        raise InputError(f"{name} holds word id {bad}, outside the vocabulary of {vocab_size} words (ids 0 to "
                         f"{vocab_size - 1})")
    return ids.astype(np.int64, copy=False)


def check_pair(x, y, vocab_size, names=("x", "y"), allow_empty=False):
    """One sentence: inputs `x` and targets `y`, (T,) word ids each, of equal length. Returns both as int64.

    An empty sentence is refused (there is nothing to run or predict) unless allow_empty,
    as inside a batch, where it adds nothing to the loss.
    """
    x = check_ids(x, vocab_size, names[0], allow_empty=allow_empty)
    y = check_ids(y, vocab_size, names[1], allow_empty=allow_empty)
    if len(x) != len(y):
        raise InputError(f"len({names[0]}) is {len(x)} but len({names[1]}) is {len(y)}; each target y[t] is the "
                         f"word after x[t], so they must have the same length")
    return x, y


def _check_sentences(X, name):
    """X must be a sized sequence of sentences (a list, tuple or array), not one read once or a mapping."""
    if isinstance(X, (str, bytes, dict)) or not (isinstance(X, (Sequence, np.ndarray))):
        raise InputError(f"{name} must be a list of sentences (word-id arrays), got {type(X).__name__}")
    if isinstance(X, np.ndarray) and X.ndim == 0:
        raise InputError(f"{name} must be a list of sentences (word-id arrays), got a 0-D array")


def check_pairs(X, Y, vocab_size):
    """Sentences: sequences X and Y of (T_n,) word-id arrays, as many in each, X[n] as long as Y[n].

    Empty sentences are allowed (they add nothing); a generator, None or a single number is not.
    """
    if isinstance(X, np.ndarray) and X.dtype.kind in "iu" and X.ndim == 1 or \
            isinstance(Y, np.ndarray) and Y.dtype.kind in "iu" and Y.ndim == 1:
        raise InputError("X and Y must be sequences of sentences (lists of word-id arrays), not one sentence; "
                         "wrap a single sentence as [x], [y]")
    _check_sentences(X, "X")
    _check_sentences(Y, "Y")
    X, Y = list(X), list(Y)
    if len(X) != len(Y):
        raise InputError(f"X has {len(X)} sentences but Y has {len(Y)}")
    if _valid_batch(X, Y, vocab_size):  # the usual case, in a few NumPy calls for the whole batch
        return
    for n, (x, y) in enumerate(zip(X, Y)):
        check_pair(x, y, vocab_size, names=(f"X[{n}]", f"Y[{n}]"), allow_empty=True)


def _valid_batch(X, Y, vocab_size):
    """True when X and Y are 1-D int arrays of ids in [0, vocab_size), X[n] as long as Y[n]: what `check_pair`
    accepts for every n, checked with one min and one max over all of them. False sends the caller to the
    sentence-by-sentence checks, which say what is wrong."""
    arrays = X + Y
    if not arrays or not all(type(a) is np.ndarray and a.ndim == 1 and a.dtype.kind in "iu" for a in arrays):
        return False
    if any(len(x) != len(y) for x, y in zip(X, Y)):
        return False
    ids = np.concatenate(arrays)
    return ids.size == 0 or (int(ids.min()) >= 0 and int(ids.max()) < vocab_size)


def check_stream(X, Y, vocab_size):
    """Streams for `stream_total_loss`: X and Y (B, L) word ids of one shape (Y[b, t] the word after X[b, t]).

    Returns both as int64 arrays."""
    X = check_ids(X, vocab_size, "X", ndim=2, allow_empty=False)
    Y = check_ids(Y, vocab_size, "Y", ndim=2, allow_empty=False)
    if X.shape != Y.shape:
        raise InputError(f"X has shape {X.shape} but Y has shape {Y.shape}; Y[b, t] is the word after X[b, t], "
                         "so they must have the same shape (see batchify)")
    return X, Y


# --------------------------------------------------------------------- states and numbers

def check_state(state, model, n, name="state"):
    """A recurrent state for n sequences shaped like `model.start_state(n)`: the same nesting of tuples,
    arrays of the same shapes, real numbers, all finite. Raises InputError naming the part (state,
    state[0], state[0][1]) that differs and saying what it should be; returns None."""
    _check_state_part(state, model.start_state(n), name, f"start_state({n})")


def _check_state_part(state, expected, name, source):
    if isinstance(expected, tuple):
        want = f"a tuple of {counted(len(expected), 'entry', 'entries')} (like {source})"
        if not isinstance(state, (tuple, list)):
            raise InputError(f"{name} must be {want}, got {_describe(state)}")
        if len(state) != len(expected):
            raise InputError(f"{name} must be {want}, got {len(state)}")
        for k, (part, want) in enumerate(zip(state, expected)):
            _check_state_part(part, want, f"{name}[{k}]", f"{source}[{k}]")
        return
    try:
        array = state if type(state) is np.ndarray else np.asarray(state)
    except ValueError:
        raise InputError(f"{name} must be an array of shape {expected.shape} (like {source}), got ragged input") \
            from None
    if array.dtype.kind not in "fiu":
        raise InputError(f"{name} must hold real numbers, got {array.dtype} values"
                         + (f" (e.g. {_example(array)!r})" if array.size else ""))
    if array.shape != expected.shape:
        raise InputError(f"{name} must have shape {expected.shape} (like {source}), got {array.shape}")
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        raise InputError(f"{name} holds NaN or infinite values; start from {source} or a state the model returned")


def _is_int(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def check_count(value, name, minimum=1, what=""):
    """A whole number of things, at least `minimum` (Python or NumPy int, never a bool). Returns it as an int."""
    if not _is_int(value) or value < minimum:
        bound = {0: "a non-negative integer", 1: "a positive integer"}.get(minimum, f"an integer of at least {minimum}")
        raise InputError(f"{name} must be {bound}{what}, got {value!r}")
    return int(value)


def check_rate(value, name):
    """A positive finite real number (a learning rate, a finite-difference step). Returns it as a float."""
    if not isinstance(value, numbers.Real) or isinstance(value, (bool, np.bool_)) or not math.isfinite(value) \
            or value <= 0:
        raise InputError(f"{name} must be a positive finite number, got {value!r}")
    return float(value)


def check_fraction(value, name):
    """A real number in [0, 1) (a share of the data). Returns it as a float."""
    if not isinstance(value, numbers.Real) or isinstance(value, (bool, np.bool_)) or not 0 <= value < 1:
        raise InputError(f"{name} must be a number from 0 up to (not including) 1, got {value!r}")
    return float(value)


# --------------------------------------------------------------------- trees

# rnnlm.data.trees.EncodedTree's fields; the class is not imported (nn sits below the data layer)
_TREE_FIELDS = ("word", "left", "right", "label")


def _is_encoded_tree(value):
    return isinstance(value, tuple) and getattr(value, "_fields", None) == _TREE_FIELDS


def check_trees(trees, vocab_size, num_classes, name="trees"):
    """Encoded sentiment trees (`rnnlm.data.trees.encode_tree`): a non-empty list; in each, word, left, right and
    label are 1-D int arrays of one length; leaves (left = right = -1) hold word ids in [0, vocab_size);
    labels are in [0, num_classes) or -1 (unscored); and the nodes form one binary tree in post-order (each
    inner node right after its right subtree, which comes right after its left one; the root last), the
    order the recursive, fold and SPINN implementations all read. Checked for the whole batch at once."""
    if _is_encoded_tree(trees):
        raise InputError(f"{name} must be a list of encoded trees, got one EncodedTree; wrap it as [tree]")
    if isinstance(trees, (str, bytes, dict)) or not isinstance(trees, Sequence):
        raise InputError(f"{name} must be a list of encoded trees (rnnlm.data.trees.encode_tree), got "
                         f"{type(trees).__name__}")
    if len(trees) == 0:
        raise InputError(f"{name} is empty: give at least one encoded tree")
    columns = {"word": [], "left": [], "right": [], "label": []}
    for n, tree in enumerate(trees):
        if hasattr(tree, "is_leaf") and hasattr(tree, "leaves"):  # an rnnlm.data.trees.Tree
            raise InputError(f"{name}[{n}] is a Tree; encode it first with "
                             "rnnlm.data.trees.encode_tree(tree, vocabulary)")
        if not _is_encoded_tree(tree):
            raise InputError(f"{name}[{n}] must be an EncodedTree (rnnlm.data.trees.encode_tree), got "
                             f"{type(tree).__name__}")
        size = None
        for field, values in zip(_TREE_FIELDS, tree):
            where = f"{name}[{n}].{field}"
            array = values if isinstance(values, np.ndarray) else None
            if array is None or array.ndim != 1:
                raise InputError(f"{where} must be a 1-D NumPy array of integers (as encode_tree makes), got "
                                 f"{_describe(values) if array is None else f'shape {array.shape}'}")
            if array.dtype.kind not in "iu" and array.size:
                raise InputError(f"{where} must hold integers, got {array.dtype} values (e.g. {_example(array)!r})")
            if size is None:
                size = len(array)
                if size == 0:
                    raise InputError(f"{name}[{n}] has no nodes: a tree has at least one leaf")
            elif len(array) != size:
                raise InputError(f"{where} has {len(array)} entries but {name}[{n}].word has {size}; every node "
                                 "needs a word, left, right and label entry")
            columns[field].append(array.astype(np.int64, copy=False))
    sizes = np.array([len(w) for w in columns["word"]])
    word, left, right, label = (np.concatenate(columns[f]) for f in _TREE_FIELDS)
    tree_of = np.repeat(np.arange(len(sizes)), sizes)
    start = np.repeat(np.cumsum(sizes) - sizes, sizes)
    node = np.arange(len(word)) - start

    def fail(mask, message):
        k = int(np.flatnonzero(mask)[0])
        raise InputError(f"{name}[{tree_of[k]}]{message(k, int(node[k]))}")

    leaf = left < 0
    bad = leaf & ((word < 0) | (word >= vocab_size))
    if bad.any():
        fail(bad, lambda k, i: f".word holds word id {word[k]} at leaf {i}, outside the vocabulary of "
                               f"{vocab_size} words (ids 0 to {vocab_size - 1})")
    bad = (label < -1) | (label >= num_classes)
    if bad.any():
        fail(bad, lambda k, i: f".label holds {label[k]} at node {i}; labels are 0 to {num_classes - 1}, "
                               "or -1 for an unscored node")
    # post-order is the shift-reduce sequence of the tree: a leaf pushes, an inner node pops its two children
    # and pushes itself. depth: the stack's size after each node, counted within its own tree.
    steps = np.where(leaf, 1, -1)
    depth = np.cumsum(steps)
    depth -= np.repeat(depth[np.cumsum(sizes) - sizes] - steps[np.cumsum(sizes) - sizes], sizes)
    # the node just below the top when inner node k reduces: the last earlier node of its tree at k's depth
    order = np.lexsort((np.arange(len(word)), depth, tree_of))
    below = np.full(len(word), -1)
    same = (tree_of[order[1:]] == tree_of[order[:-1]]) & (depth[order[1:]] == depth[order[:-1]])
    below[order[1:][same]] = order[:-1][same]
    ends = np.cumsum(sizes) - 1
    bad = (~leaf & ((depth < 1) | (right != node - 1) | (left != np.where(below >= 0, below - start, -2)))) \
        | (leaf & (right >= 0)) | (depth < 1)
    bad[ends] |= depth[ends] != 1
    if bad.any():
        fail(bad, lambda k, i: f" is not a binary tree in post-order at node {i} (left={left[k]}, right={right[k]}): "
                               "a leaf has left = right = -1, an inner node follows its right child, which follows "
                               "its left subtree, and the root is last; build trees with rnnlm.data.trees.encode_tree")


# --------------------------------------------------------------------- generation

def check_generation(model, vocabulary, rng, prefix_tokens, level="word"):
    """generate_sentence / generate_stream's arguments: a NumPy Generator, a list of token strings, a level,
    and a vocabulary no larger than the model's. Returns the prefix as a list."""
    if not isinstance(rng, np.random.Generator):
        raise InputError(f"rng must be a numpy.random.Generator (np.random.default_rng(seed)), got "
                         f"{_describe(rng)}")
    if isinstance(prefix_tokens, (str, bytes)) or not isinstance(prefix_tokens, (Sequence, np.ndarray)):
        hint = " (split the text into tokens, e.g. with rnnlm.models.generate.tokenize_prefix)" \
            if isinstance(prefix_tokens, str) else ""
        raise InputError(f"prefix_tokens must be a list of token strings, got {_describe(prefix_tokens)}{hint}")
    prefix = list(prefix_tokens)
    for k, token in enumerate(prefix):
        if not isinstance(token, str):
            raise InputError(f"prefix_tokens[{k}] must be a token string, got {_describe(token)}; "
                             "decode word ids first with vocabulary.decode")
    if level not in ("word", "char"):
        raise InputError(f"level must be 'word' or 'char', got {level!r}")
    size = getattr(getattr(model, "config", None), "vocab_size", None)
    if size is not None and len(vocabulary) > size:
        raise InputError(f"vocabulary has {len(vocabulary)} words but the model reads {size}; use the vocabulary "
                         "the model was trained with")
    return prefix


def check_config(config, cls, name="config"):
    """`config` must be an instance of the config dataclass `cls` (a GenerateConfig, not a dict of its fields)."""
    if not isinstance(config, cls):
        raise InputError(f"{name} must be a {cls.__name__}, got {type(config).__name__}; build one with "
                         f"{cls.__name__}(...)")


def check_finite(params, what="the model"):
    """Raise InputError when a parameter array is not a valid one: `numerics.parameter_fault`, the rule
    model files are written and read by (NaN, infinite, or beyond its magnitude bound: a diverged model)."""
    bad = first_parameter_fault(params)
    if bad is not None:
        raise InputError(f"{what}'s {parameter_message(*bad)}; use a model saved before it diverged")

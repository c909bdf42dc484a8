"""Checking what callers pass to the public model methods, once, at the boundary.

Word ids index rows and columns of the parameters, and NumPy indexing is forgiving in
exactly the wrong ways: -1 silently reads the last word's column, 2.7 is truncated to 2
by `astype(int)`, and a sentence whose targets are one shorter than its inputs is
broadcast or cut. Every public entry point (`RNNNumpy`'s methods, `FastRNN` and
`LanguageModel`'s `loss_and_gradients`, `total_loss` and `step`, `generate_sentence`)
calls one of these first, so a wrong argument is an `InputError` (a `ValueError`, and an
`RnnlmError` the CLI prints as one line) that names it, and the inner loops stay free of checks.
"""

import numpy as np

from rnnlm.errors import InputError


def check_ids(x, vocab_size, name="x", ndim=1):
    """`x` as an int64 array of `ndim` dimensions whose entries are word ids in [0, vocab_size).

    Raises InputError naming `name` for floats, bools, strings, ragged input, the wrong
    number of dimensions, and ids outside the vocabulary (negative ones included).
    """
    try:
        ids = np.asarray(x)
    except ValueError:  # ragged nested lists
        raise InputError(f"{name} must be a {ndim}-D array of integer word ids, got ragged input") from None
    if ids.size == 0:
        return np.zeros(ids.shape if ids.ndim == ndim else (0,) * ndim, dtype=np.int64)
    if ids.dtype.kind not in "iu":
        raise InputError(f"{name} must hold integer word ids, got {ids.dtype} values (e.g. {ids.flat[0].item()!r})")
    if ids.ndim != ndim:
        raise InputError(f"{name} must be a {ndim}-D array of word ids, got shape {ids.shape}")
    low, high = int(ids.min()), int(ids.max())
    if low < 0 or high >= vocab_size:
        bad = low if low < 0 else high
        raise InputError(f"{name} holds word id {bad}, outside the vocabulary of {vocab_size} words (ids 0 to "
                         f"{vocab_size - 1})")
    return ids.astype(np.int64, copy=False)


def check_pair(x, y, vocab_size, names=("x", "y")):
    """One sentence: inputs `x` and targets `y`, (T,) word ids each, of equal length. Returns both as int64."""
    x = check_ids(x, vocab_size, names[0])
    y = check_ids(y, vocab_size, names[1])
    if len(x) != len(y):
        raise InputError(f"len({names[0]}) is {len(x)} but len({names[1]}) is {len(y)}; each target y[t] is the "
                         f"word after x[t], so they must have the same length")
    return x, y


def check_pairs(X, Y, vocab_size):
    """Sentences: sequences X and Y of (T_n,) word-id arrays, as many in each, X[n] as long as Y[n]."""
    if isinstance(X, np.ndarray) and X.dtype.kind in "iu" and X.ndim == 1 or \
            isinstance(Y, np.ndarray) and Y.dtype.kind in "iu" and Y.ndim == 1:
        raise InputError("X and Y must be sequences of sentences (lists of word-id arrays), not one sentence; "
                         "wrap a single sentence as [x], [y]")
    X, Y = list(X), list(Y)
    if len(X) != len(Y):
        raise InputError(f"X has {len(X)} sentences but Y has {len(Y)}")
    if _valid_batch(X, Y, vocab_size):  # the usual case, in a few NumPy calls for the whole batch
        return
    for n, (x, y) in enumerate(zip(X, Y)):
        check_pair(x, y, vocab_size, names=(f"X[{n}]", f"Y[{n}]"))


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


def check_finite(params, what="the model"):
    """Raise InputError when a parameter array holds NaN or infinity (a diverged model)."""
    for name, value in params.items():
        if not np.all(np.isfinite(value)):
            raise InputError(f"{what}'s parameter {name!r} holds NaN or infinite values (training diverged?); "
                             "use a model saved before it diverged")

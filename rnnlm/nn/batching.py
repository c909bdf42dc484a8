"""Batch order and batch arithmetic for ragged sentences: length-bucketed batches, per-key row sums, word counts.

The models never pad: every batch is packed (`rnnlm.nn.sequence.Packing`: sorted by length,
time-major, only real tokens computed), so there is no mask anywhere in the library. This
module gives the order batches come in (`bucketed_batches`, similar lengths together), the
sparse sum behind every embedding / U gradient (`segment_sum`), and the per-word denominator
(`num_targets`). `pad_batch` (padded (N, T) arrays and a 0/1 mask) is no longer used by the
library; it stays for code outside it that wants dense arrays (examples/train_ddp.py).
Sentences stay a list of int arrays throughout (never a ragged object array, which
NumPy >= 1.24 refuses to build).
"""

import numpy as np

from rnnlm.errors import InputError


def pad_batch(X, Y, dtype=np.float32):
    """Pad a list of sentences to a common length.

    X, Y: sequences of N (T_n,) int arrays, len(X[n]) == len(Y[n]).
    Returns (x, y, mask): x, y (N, T) int64 padded with 0; mask (N, T) `dtype`, 1 on real tokens.
    """
    if len(X) != len(Y):
        raise ValueError(f"X has {len(X)} sentences but Y has {len(Y)}")
    lengths = np.array([len(s) for s in X], dtype=np.int64)
    if np.any(lengths != np.array([len(s) for s in Y], dtype=np.int64)):
        raise ValueError("each X[n] must have the same length as Y[n]")
    N, T = len(X), int(lengths.max(initial=0))
    x = np.zeros((N, T), dtype=np.int64)
    y = np.zeros((N, T), dtype=np.int64)
    for n, (xs, ys) in enumerate(zip(X, Y)):
        x[n, :len(xs)] = xs
        y[n, :len(ys)] = ys
    mask = (np.arange(T)[None, :] < lengths[:, None]).astype(dtype)
    return x, y, mask


def bucketed_batches(lengths, batch_size, rng=None, bucket=True):
    """Split sentence indices into minibatches of similar lengths, in a (seeded) random order.

    lengths: (S,) int sentence lengths. With `bucket`, sentences are shuffled, sorted
    by length within windows of 50 batches, cut into batches, and the batches shuffled:
    a packed batch's steps stay nearly full (few sequences end early), yet a different mix every epoch. Returns a list of (B,) int index arrays.
    """
    lengths = np.asarray(lengths)
    order = np.arange(len(lengths)) if rng is None else rng.permutation(len(lengths))
    if bucket:
        window = batch_size * 50
        chunks = [order[i:i + window] for i in range(0, len(order), window)]
        order = np.concatenate([c[np.argsort(lengths[c], kind="stable")] for c in chunks]) if chunks else order
    batches = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    if rng is not None:
        batches = [batches[i] for i in rng.permutation(len(batches))]
    return batches


def segment_sum(keys, rows):
    """Sum the rows that share a key: returns (unique keys (K,), sums (K, D)), without np.add.at.

    Sorting brings equal keys together; np.add.reduceat then adds each run in one pass. It pays
    per run, and most keys of a batch (rare words) make runs of one row, which are their own sum:
    only the runs of two or more rows go through reduceat (the same sums, bit for bit).
    """
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    if len(sorted_keys) == 0:
        return sorted_keys, rows[:0]
    starts = np.concatenate(([0], np.flatnonzero(sorted_keys[1:] != sorted_keys[:-1]) + 1))
    sums = rows[order[starts]]  # each run's first row: the sum of a run of one
    lengths = np.diff(np.append(starts, len(sorted_keys)))
    many = np.flatnonzero(lengths > 1)
    if len(many):
        taken = np.flatnonzero(np.repeat(lengths > 1, lengths))  # the sorted rows of runs of two or more
        sums[many] = np.add.reduceat(rows[order[taken]], np.concatenate(([0], np.cumsum(lengths[many])[:-1])), axis=0)
    return sorted_keys[starts], sums


def num_targets(Y):
    """Number of predicted tokens in Y, the denominator of every per-word loss; never zero."""
    count = sum(len(y) for y in Y)
    if count == 0:
        raise InputError("Y holds no target words (no sentences, or only empty ones); a per-word loss needs at "
                         "least one")
    return count

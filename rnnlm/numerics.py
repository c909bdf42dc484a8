"""Numerically stable softmax, log-softmax, cross-entropy, sigmoid and perplexity: the only home of these.

All functions are pure and work along the last axis, so the same code serves one
time step (C,), one sentence (T, C) or a batch (N, T, C).
"""

import math

import numpy as np


def softmax(z):
    """softmax(z)_k = exp(z_k - max z) / sum_j exp(z_j - max z), along the last axis.

    Subtracting the max changes nothing mathematically but keeps exp() from overflowing.
    """
    shifted = z - np.max(z, axis=-1, keepdims=True)
    e = np.exp(shifted)
    return e / np.sum(e, axis=-1, keepdims=True)


def log_softmax(z):
    """log softmax(z) = z - max z - log sum exp(z - max z), along the last axis."""
    shifted = z - np.max(z, axis=-1, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=-1, keepdims=True))


def cross_entropy(logits, targets):
    """Summed cross-entropy -sum_t log softmax(logits_t)[targets_t].

    logits: (..., C) unnormalised scores; targets: (...) int class indices.
    Returns a Python float (the total, not the mean).
    """
    logp = log_softmax(logits)
    picked = np.take_along_axis(logp, np.asarray(targets)[..., None], axis=-1)
    return float(-np.sum(picked))


def sigmoid(z):
    """sigmoid(z) = 1 / (1 + exp(-z)), computed without overflow for large |z|."""
    z = np.asarray(z)
    # exp of a negative number never overflows; pick the form that uses one per sign
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def perplexity(loss):
    """exp(loss) of a per-word cross-entropy; inf beyond exp(700), near float64's limit, not an OverflowError."""
    return math.exp(loss) if loss < 700.0 else math.inf

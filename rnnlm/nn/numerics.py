"""Numerically stable elementwise and last-axis functions, and the rule for a valid parameter value.

What this module owns: the plain, stable definitions of softmax, log-softmax, cross-entropy,
sigmoid and perplexity, and `parameter_fault` (with MAX_PARAMETER_MAGNITUDE), the one test of a
valid parameter array, with `parameter_message`, the one wording of its refusal. They are pure and work along the last axis, so the same code serves one
time step (C,), one sentence (T, C) or a batch (N, T, C). They are the readable forms that
`rnnlm.models.reference`, the Tree-LSTM, the cells (sigmoid) and the tests use; they are not the
models' output layer: `rnnlm.nn.output` builds that on `log_softmax` with its own chunked,
unnormalised exp2 computation of the softmax cross-entropy and its gradients.
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


# No trained model comes near this; below it no forward pass can overflow float32 (hidden <= 16384).
MAX_PARAMETER_MAGNITUDE = 1e6


def parameter_fault(value):
    """What makes `value` an invalid model parameter, as a phrase ("is not finite ..."), or None when it is valid.

    The one definition of a valid parameter array, used by every writer (`save_model`, `save_tree_model`,
    and so `rnnlm import`), by every reader (`fill_params`) and by the training loop's divergence check:
    a floating-point array whose values are all finite and within +-MAX_PARAMETER_MAGNITUDE.
    Costs one min and one max pass (NaN propagates through both), no temporary array.
    """
    value = np.asarray(value)
    if value.dtype.kind != "f":
        return f"is not a floating-point array (it is {value.dtype})"
    if value.size == 0:
        return None
    with np.errstate(invalid="ignore"):
        lo, hi = float(value.min()), float(value.max())
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return "is not finite (it holds NaN or infinite values)"
    if lo < -MAX_PARAMETER_MAGNITUDE or hi > MAX_PARAMETER_MAGNITUDE:
        return (f"holds values up to {max(-lo, hi):.6g}, beyond ±{MAX_PARAMETER_MAGNITUDE:g}, "
                "the range of a valid model parameter")
    return None


def parameter_message(name, fault, what="parameter"):
    """The one wording of an invalid parameter, for every reader and writer that refuses one:
    "parameter 'W' is not finite (it holds NaN or infinite values) (training diverged?)".

    fault: what `parameter_fault` said; what: how the caller names the array ("parameter", "tensor").
    Callers add where it was found and what to do about it, never their own description of the fault.
    """
    return f"{what} {name!r} {fault} (training diverged?)"


def first_parameter_fault(params):
    """(name, fault) of the first array of the dict `params` that `parameter_fault` refuses, or None."""
    for name, value in params.items():
        fault = parameter_fault(value)
        if fault is not None:
            return name, fault
    return None


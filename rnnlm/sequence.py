"""Time loops over the cells, the embedding lookup and its sparse backward, and the masked softmax loss.

Letters: N sentences in a batch, T the longest, E input width, H hidden units, C vocabulary,
M the real (unpadded) tokens. Arrays are batch-first, (N, T, ...), like torch's batch_first=True.

Padding convention: a batch comes from `rnnlm.batching.pad_batch`, so padding only ever sits
at the end of a sentence. Padded steps are computed (their values are never read by a real
step, which always comes earlier), the loss ignores them (mask 0), so the error entering
them is exactly zero, and every backward is linear in its upstream gradient: zero in, zero
out. That is why the loops below need no mask; tests/test_models.py checks padding invariance.

Truncated BPTT (`truncate=k`), the tutorial's meaning (`RNNNumpy.bptt`, `FastRNN`): the error
entering a layer at step t (from the softmax at t, or from the layer above at t) flows back
through the recurrence to steps t, t-1, ..., max(0, t - k) and no further; k = 0 keeps only
step t itself. None (or k >= T - 1) is full BPTT. It is computed lag by lag: at each step
the signals that have travelled 0, 1, ..., k steps are kept apart, each is pushed one step
back on its own, and the one that has travelled k steps is dropped.
"""

import numpy as np

from .batching import segment_sum  # sort + np.add.reduceat: no np.add.at, no one-hot
from .cells import CELLS
from .numerics import log_softmax


# --------------------------------------------------------------------- recurrent layers

def layer_forward(cell, x, state0, p, **options):
    """Run one recurrent layer over a batch of sequences.

    x (N, T, E); state0: the cell's state tuple of (N, H) arrays; p: the layer's parameters;
    options: passed to the cell (peephole, coupled for the LSTM).
    Returns (out (N, T, H): the first state entry at every step, caches: list of T step
    caches, final state tuple).
    """
    step_forward = CELLS[cell][0]
    N, T = x.shape[:2]
    state = state0
    out = np.empty((N, T, state0[0].shape[1]), dtype=state0[0].dtype)
    caches = []
    for t in range(T):
        state, cache = step_forward(x[:, t], state, p, **options)
        out[:, t] = state[0]
        caches.append(cache)
    return out, caches, state


def _add_grads(total, grads):
    for k, v in grads.items():
        total[k] = total[k] + v if k in total else v.copy()


def layer_backward(cell, dout, caches, truncate=None):
    """Backward of `layer_forward`: BPTT, full or truncated (see the module docstring).

    dout (N, T, H): the error reaching each step's output from outside the recurrence
    (the softmax or the layer above). Returns (dx (N, T, E), grads summed over time and
    batch, dstate0: the gradient of the initial state tuple).
    """
    step_backward, nstate = CELLS[cell][1], CELLS[cell][2]
    N, T, H = dout.shape
    E = caches[0].x.shape[1] if T else 0
    dx = np.zeros((N, T, E), dtype=dout.dtype)
    grads = {}
    zeros = np.zeros((N, H), dtype=dout.dtype)
    if truncate is None or truncate >= T - 1:
        dstate = (zeros,) * nstate
        for t in range(T - 1, -1, -1):
            upstream = (dstate[0] + dout[:, t],) + tuple(dstate[1:])
            dx[:, t], dstate, g = step_backward(upstream, caches[t])
            _add_grads(grads, g)
        return dx, grads, dstate
    # lags[m]: the signal that has travelled m steps back from where it entered
    lags = []
    for t in range(T - 1, -1, -1):
        lags = [(dout[:, t],) + (zeros,) * (nstate - 1)] + lags
        moved = []
        for m, upstream in enumerate(lags):
            dxt, dprev, g = step_backward(upstream, caches[t])
            dx[:, t] += dxt
            _add_grads(grads, g)
            if m < truncate:  # a signal that has travelled `truncate` steps stops here
                moved.append(dprev)
        lags = moved
    dstate0 = tuple(sum(parts) for parts in zip(*lags)) if lags else (zeros,) * nstate
    return dx, grads, dstate0


# --------------------------------------------------------------------- embedding

def embedding_forward(ids, weight):
    """Row lookup: weight[ids] (same as one-hot(ids) @ weight). ids (N, T) int, weight (C, E) -> (N, T, E)."""
    return weight[ids]


def embedding_backward(ids, dx):
    """Gradient of `embedding_forward` as (unique word ids (K,), summed rows (K, E)).

    ids (M,) the words looked up, dx (M, E) their errors. Row w of dweight is the sum of dx
    over the tokens whose word is w (a repeated word adds up; plain fancy-index += would not):
    sorting brings a word's tokens together and np.add.reduceat adds each run in one pass.
    """
    return segment_sum(ids, dx)


# --------------------------------------------------------------------- output layer and loss

def softmax_loss(hs, targets, W, b, rows=1024, gradients=True):
    """Summed cross-entropy of logits = hs W + b over M real tokens, in chunks of `rows`.

    hs (M, H) gathered real tokens only (no padding), targets (M,) int, W (H, C), b (C,).
    The logits are one GEMM per chunk and log-softmax is stable (max-shifted), so memory
    is bounded by rows x C. Returns (loss, dhs (M, H), dW, db), or (loss, None, None, None).
    dlogits = softmax(logits) - onehot(targets).
    """
    M = hs.shape[0]
    loss = 0.0
    if gradients:
        dhs = np.empty_like(hs)
        dW = np.zeros_like(W)
        db = np.zeros_like(b)
    for a in range(0, M, rows):
        logits = hs[a:a + rows] @ W + b  # (m, C)
        m = logits.shape[0]
        logp = log_softmax(logits)
        picked = logp[np.arange(m), targets[a:a + rows]]
        loss -= float(np.sum(picked, dtype=np.float64))
        if gradients:
            dlogits = np.exp(logp, out=logp)  # softmax, reusing the block
            dlogits[np.arange(m), targets[a:a + rows]] -= 1
            dhs[a:a + rows] = dlogits @ W.T
            dW += hs[a:a + rows].T @ dlogits
            db += dlogits.sum(axis=0)
    if not gradients:
        return loss, None, None, None
    return loss, dhs, dW, db

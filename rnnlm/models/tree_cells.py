"""The binary Tree-LSTM cell (Tai et al., 2015, N-ary with N = 2): leaf and inner node as forward/backward pairs.

Letters: N nodes in a batch, E embedding width, H hidden units, K = 5 sentiment classes.
Row vectors, as in rnnlm.nn.cells. A leaf reads its word's embedding x (N, E); an inner node
reads its two children's states (h_l, c_l) and (h_r, c_r), each (N, H):

    leaf:   [i, o, u] = x W_leaf + b_leaf                       (blocks of W_leaf (E, 3H))
            c = sigmoid(i) * tanh(u);  h = sigmoid(o) * tanh(c)
    inner:  [i, f_l, f_r, o, u] = [h_l, h_r] U + b              (blocks of U (2H, 5H))
            c = sigmoid(i) * tanh(u) + sigmoid(f_l) * c_l + sigmoid(f_r) * c_r;  h = sigmoid(o) * tanh(c)

Each forget gate sees both children (Tai's U^(f)_{kl}), so the cell can learn to keep the
left child's memory and drop the right's. Every node, leaf or inner, is classified:
p(y | node) = softmax(h W_s + b_s), and the loss is the cross-entropy summed over every
labelled node (the treebank labels every phrase).

Parameters: E (V, E), W_leaf (E, 3H), b_leaf (3H,), U (2H, 5H), b (5H,), W_s (H, K), b_s (K,).
Gradients come back in a dict with the same keys; dE is a `SparseGradient` over the words seen.

The node classifier (`score_nodes`) and the gradient helpers the executors share live here too.
Three executors run these cells over whole trees and give the same loss and gradients:
`rnnlm.models.tree_recursive` (one node at a time, the reading copy), `rnnlm.models.fold` (by
height) and `rnnlm.models.spinn` (shift/reduce); `rnnlm.models.tree_lstm.TreeLSTM` picks one.
"""

from typing import NamedTuple

import numpy as np

from rnnlm.nn.batching import segment_sum
from rnnlm.nn.numerics import sigmoid
from rnnlm.nn.optim import SparseGradient
from rnnlm.nn.output import softmax_cross_entropy


# --------------------------------------------------------------------- the cell

class LeafCache(NamedTuple):
    x: np.ndarray       # (N, E)
    i: np.ndarray       # (N, H) input gate
    o: np.ndarray       # (N, H) output gate
    u: np.ndarray       # (N, H) candidate
    tanh_c: np.ndarray  # (N, H)
    p: dict


def leaf_forward(x, p):
    """Leaf step: [i, o, u] = x W_leaf + b_leaf; c = sigmoid(i) tanh(u); h = sigmoid(o) tanh(c).

    x (N, E). Returns ((h, c) each (N, H), cache).
    """
    H = p["W_leaf"].shape[1] // 3
    a = x @ p["W_leaf"] + p["b_leaf"]
    i, o, u = sigmoid(a[:, :H]), sigmoid(a[:, H:2 * H]), np.tanh(a[:, 2 * H:])
    c = i * u
    tanh_c = np.tanh(c)
    return (o * tanh_c, c), LeafCache(x, i, o, u, tanh_c, p)


def leaf_backward(dh, dc, cache):
    """Backward of `leaf_forward`: dc_total = dc + dh o (1 - tanh(c)^2); da = [dc_total u i(1-i), dh tanh(c) o(1-o),
    dc_total i (1-u^2)]. Returns (dx (N, E), {"W_leaf": x^T da, "b_leaf": sum of da})."""
    x, i, o, u, tanh_c, p = cache
    dc = dc + dh * o * (1 - tanh_c * tanh_c)
    da = np.concatenate([dc * u * i * (1 - i), dh * tanh_c * o * (1 - o), dc * i * (1 - u * u)], axis=1)
    return da @ p["W_leaf"].T, {"W_leaf": x.T @ da, "b_leaf": da.sum(axis=0)}


class ComposeCache(NamedTuple):
    hlr: np.ndarray     # (N, 2H) [h_l, h_r]
    c_l: np.ndarray     # (N, H)
    c_r: np.ndarray     # (N, H)
    i: np.ndarray       # (N, H) input gate
    f_l: np.ndarray     # (N, H) forget gate of the left child's memory
    f_r: np.ndarray     # (N, H) forget gate of the right child's memory
    o: np.ndarray       # (N, H) output gate
    u: np.ndarray       # (N, H) candidate
    tanh_c: np.ndarray  # (N, H)
    p: dict


def compose_forward(h_l, c_l, h_r, c_r, p):
    """Inner step: [i, f_l, f_r, o, u] = [h_l, h_r] U + b; c = i u + f_l c_l + f_r c_r; h = o tanh(c).

    (sigmoid on i, f_l, f_r, o; tanh on u.) All inputs (N, H). Returns ((h, c), cache).
    """
    H = h_l.shape[1]
    hlr = np.concatenate([h_l, h_r], axis=1)
    a = hlr @ p["U"] + p["b"]
    gates = sigmoid(a[:, :4 * H])
    i, f_l, f_r, o = gates[:, :H], gates[:, H:2 * H], gates[:, 2 * H:3 * H], gates[:, 3 * H:]
    u = np.tanh(a[:, 4 * H:])
    c = i * u + f_l * c_l + f_r * c_r
    tanh_c = np.tanh(c)
    return (o * tanh_c, c), ComposeCache(hlr, c_l, c_r, i, f_l, f_r, o, u, tanh_c, p)


def compose_backward(dh, dc, cache):
    """Backward of `compose_forward`. dh, dc (N, H): the gradient reaching the node's h and c.

    dc_total = dc + dh o (1 - tanh(c)^2); dc_l = dc_total f_l; dc_r = dc_total f_r;
    gate pre-activations: di = dc_total u i(1-i), df_l = dc_total c_l f_l(1-f_l), df_r likewise,
    do = dh tanh(c) o(1-o), du = dc_total i (1-u^2); [dh_l, dh_r] = da U^T.
    Returns ((dh_l, dc_l), (dh_r, dc_r), {"U": [h_l, h_r]^T da, "b": sum of da}).
    """
    hlr, c_l, c_r, i, f_l, f_r, o, u, tanh_c, p = cache
    H = c_l.shape[1]
    dc = dc + dh * o * (1 - tanh_c * tanh_c)
    da = np.concatenate([dc * u * i * (1 - i), dc * c_l * f_l * (1 - f_l), dc * c_r * f_r * (1 - f_r),
                         dh * tanh_c * o * (1 - o), dc * i * (1 - u * u)], axis=1)
    dhlr = da @ p["U"].T
    return (dhlr[:, :H], dc * f_l), (dhlr[:, H:], dc * f_r), {"U": hlr.T @ da, "b": da.sum(axis=0)}


def zero_grads(params):
    """Dense zero gradients for every parameter but E (whose gradient is sparse)."""
    return {k: np.zeros_like(v) for k, v in params.items() if k != "E"}


def embedding_gradient(words, dx):
    """dE as a SparseGradient: the rows dx (n, E) of the leaves, summed per word id words (n,)."""
    ids, rows = segment_sum(np.asarray(words, dtype=np.int64), dx)
    return SparseGradient(ids, rows, axis=0)


def score_nodes(params, h, labels, gradients=True):
    """The classifier over a table of node states: h (M, H), labels (M,) (-1: not scored).

    Returns (summed cross-entropy, dh (M, H) with zeros on unscored rows, grads: zero_grads with
    dW_s and db_s filled in), or (loss, None, None) when gradients=False.
    """
    scored = np.flatnonzero(labels >= 0)
    loss, dh_scored, dW_s, db_s = softmax_cross_entropy(h[scored], labels[scored], params["W_s"], params["b_s"],
                                               gradients=gradients)
    if not gradients:
        return loss, None, None
    grads = zero_grads(params)
    grads["W_s"] += dW_s
    grads["b_s"] += db_s
    dh = np.zeros_like(h)
    dh[scored] = dh_scored
    return loss, dh, grads


def leaves_backward(dh, dc, cache, words, grads):
    """`leaf_backward` for a batch of leaves, adding dW_leaf, db_leaf to `grads` and setting grads["E"] (sparse)."""
    dx, g = leaf_backward(dh, dc, cache)
    grads["W_leaf"] += g["W_leaf"]
    grads["b_leaf"] += g["b_leaf"]
    grads["E"] = embedding_gradient(words, dx)
    return grads

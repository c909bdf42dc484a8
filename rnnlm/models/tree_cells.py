"""The binary Tree-LSTM cell (Tai et al., 2015, N-ary with N = 2): leaf and inner node as forward/backward pairs.

Letters: N nodes in a batch, E embedding width, H hidden units, K = 5 sentiment classes.
Row vectors, as in rnnlm.nn.cells. A leaf reads its word's embedding x (N, E); an inner node
reads its two children's states (h_l, c_l) and (h_r, c_r), each (N, H):

    leaf:   [i, o, u] = x W_leaf + b_leaf                       (blocks of W_leaf (E, 3H))
            c = sigmoid(i) * tanh(u);  h = sigmoid(o) * tanh(c)
    inner:  [i, f_l, f_r, o, u] = [h_l, h_r] U + b              (blocks of U (2H, 5H))
            c = sigmoid(i) * tanh(u) + sigmoid(f_l) * c_l + sigmoid(f_r) * c_r;  h = sigmoid(o) * tanh(c)

From the gates' pre-activations on, both cells are the LSTM's gated memory update
(rnnlm.nn.cells.gated_memory_forward / _backward), the inner node with one forget gate per child.
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
from rnnlm.nn.cells import MemoryCache, gated_memory_backward, gated_memory_forward
from rnnlm.nn.optim import SparseGradient
from rnnlm.nn.output import softmax_cross_entropy


# --------------------------------------------------------------------- the cell

class LeafCache(NamedTuple):
    x: np.ndarray         # (N, E)
    p: dict
    memory: MemoryCache   # the gates i, o, candidate u (as g), c, tanh(c); no forget gate


def leaf_forward(x, p):
    """Leaf step: [i, o, u] = x W_leaf + b_leaf; c = sigmoid(i) tanh(u); h = sigmoid(o) tanh(c).

    x (N, E). From the pre-activations on it is rnnlm.nn.cells.gated_memory_forward with no memory
    carried in. Returns ((h, c) each (N, H), cache).
    """
    H = p["W_leaf"].shape[1] // 3
    a = x @ p["W_leaf"] + p["b_leaf"]
    (h, c), memory = gated_memory_forward(a[:, :H], a[:, 2 * H:], a[:, H:2 * H])
    return (h, c), LeafCache(x, p, memory)


def leaf_backward(dh, dc, cache):
    """Backward of `leaf_forward`: da = [da_i, da_o, da_u] from `gated_memory_backward` (dc_total = dc +
    dh o (1 - tanh(c)^2); da_i = dc_total u i(1-i), da_o = dh tanh(c) o(1-o), da_u = dc_total i (1-u^2)).
    Returns (dx (N, E), {"W_leaf": x^T da, "b_leaf": sum of da})."""
    x, p, memory = cache
    da_i, da_u, da_o, _ = gated_memory_backward(dh, dc, memory)
    da = np.concatenate([da_i, da_o, da_u], axis=1)  # (N, 3H)
    return da @ p["W_leaf"].T, {"W_leaf": x.T @ da, "b_leaf": da.sum(axis=0)}


class ComposeCache(NamedTuple):
    hlr: np.ndarray       # (N, 2H) [h_l, h_r]
    p: dict
    memory: MemoryCache   # gates i, o, candidate u (as g), c, tanh(c); forgets: (f_l, c_l), (f_r, c_r)


def compose_forward(h_l, c_l, h_r, c_r, p):
    """Inner step: [i, f_l, f_r, o, u] = [h_l, h_r] U + b; c = i u + f_l c_l + f_r c_r; h = o tanh(c).

    (sigmoid on i, f_l, f_r, o; tanh on u.) All inputs (N, H). From the pre-activations on it is
    rnnlm.nn.cells.gated_memory_forward with the two children's memories, each under its own forget
    gate. Returns ((h, c), cache).
    """
    H = h_l.shape[1]
    hlr = np.concatenate([h_l, h_r], axis=1)
    a = hlr @ p["U"] + p["b"]  # (N, 5H)
    forgets = ((a[:, H:2 * H], c_l), (a[:, 2 * H:3 * H], c_r))
    (h, c), memory = gated_memory_forward(a[:, :H], a[:, 4 * H:], a[:, 3 * H:4 * H], forgets)
    return (h, c), ComposeCache(hlr, p, memory)


def compose_backward(dh, dc, cache):
    """Backward of `compose_forward`. dh, dc (N, H): the gradient reaching the node's h and c.

    `gated_memory_backward` gives, with dc_total = dc + dh o (1 - tanh(c)^2): dc_l = dc_total f_l,
    dc_r = dc_total f_r and the pre-activations' da_i = dc_total u i(1-i), da_fl = dc_total c_l f_l(1-f_l),
    da_fr likewise, da_o = dh tanh(c) o(1-o), da_u = dc_total i (1-u^2); then [dh_l, dh_r] = da U^T.
    Returns ((dh_l, dc_l), (dh_r, dc_r), {"U": [h_l, h_r]^T da, "b": sum of da}).
    """
    hlr, p, memory = cache
    H = dh.shape[1]
    da_i, da_u, da_o, ((da_fl, dc_l), (da_fr, dc_r)) = gated_memory_backward(dh, dc, memory)
    da = np.concatenate([da_i, da_fl, da_fr, da_o, da_u], axis=1)  # (N, 5H)
    dhlr = da @ p["U"].T
    return (dhlr[:, :H], dc_l), (dhlr[:, H:], dc_r), {"U": hlr.T @ da, "b": da.sum(axis=0)}


def add_to_children(dh, dc, lft, rgt, backward, grads):
    """Route a batch of `compose_backward` results to the nodes' children and add its dU, db to `grads`.

    dh, dc (M, H): the gradient tables over every node state; lft, rgt: the children's rows of the
    batch's nodes; backward: ((dh_l, dc_l), (dh_r, dc_r), {"U", "b"}) as `compose_backward` returns it.
    Every node has a single parent, so these scatters never write one row twice.
    """
    (dh_l, dc_l), (dh_r, dc_r), g = backward
    dh[lft] += dh_l
    dc[lft] += dc_l
    dh[rgt] += dh_r
    dc[rgt] += dc_r
    grads["U"] += g["U"]
    grads["b"] += g["b"]


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

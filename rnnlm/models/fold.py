"""Fold-style dynamic batching of the Tree-LSTM: every node of the same height, across a batch of trees, in one step.

A node can be computed once its children are; the height of a node (0 for a leaf, else
1 + its taller child's) says exactly when that is. So the nodes of a whole batch of trees
are pooled and grouped by height (TensorFlow Fold, Looks et al. 2017; TorchFold):

    height 0: every leaf of every tree     -> one `leaf_forward` over all of them
    height 1, 2, ...: the inner nodes       -> one `compose_forward` per height, children gathered
                                               from the state table, results scattered back
    every node                              -> one classifier GEMM and softmax (`output.softmax_cross_entropy`)

The backward runs the heights in reverse: each height's `compose_backward` scatters its
dh, dc into its children's rows (each node has one parent, so no two rows collide).
A batch of 25 SST trees has ~ 900 nodes but only ~ 20 heights: ~ 20 cell steps instead of 900.
"""

from typing import NamedTuple

import numpy as np

from rnnlm.models.tree_cells import (add_to_children, compose_backward, compose_forward, leaf_forward, leaves_backward,
                                     score_nodes)


class Schedule(NamedTuple):
    """The pooled nodes of a batch of trees (M nodes in all), and when each is computed.

    word, left, right, label (M,): the trees' post-order arrays concatenated, child positions
    shifted to index the pool. offsets (B+1,): tree n's nodes are offsets[n]:offsets[n+1].
    levels: list of (m_h,) int arrays, the nodes of height h; levels[0] are the leaves.
    """

    word: np.ndarray
    left: np.ndarray
    right: np.ndarray
    label: np.ndarray
    offsets: np.ndarray
    levels: list


def schedule(trees):
    """Pool the nodes of `trees` (EncodedTree list) and group them by height (see `Schedule`)."""
    sizes = [t.num_nodes for t in trees]
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    word = np.concatenate([t.word for t in trees])
    label = np.concatenate([t.label for t in trees])
    left = np.concatenate([np.where(t.left >= 0, t.left + o, -1) for t, o in zip(trees, offsets)])
    right = np.concatenate([np.where(t.right >= 0, t.right + o, -1) for t, o in zip(trees, offsets)])
    height = np.zeros(len(word), dtype=np.int64)
    for k in range(len(word)):  # post-order: children come before their parent
        if left[k] >= 0:
            height[k] = 1 + max(height[left[k]], height[right[k]])
    order = np.argsort(height, kind="stable")
    bounds = np.searchsorted(height[order], np.arange(height.max() + 2))
    levels = [order[bounds[h]:bounds[h + 1]] for h in range(height.max() + 1)]
    return Schedule(word, left, right, label, offsets, levels)


def _forward(params, s):
    """States of every pooled node: (h (M, H), c (M, H), caches per level)."""
    H = params["U"].shape[0] // 2
    M = len(s.word)
    h = np.empty((M, H), dtype=params["U"].dtype)
    c = np.empty_like(h)
    leaves = s.levels[0]
    (h[leaves], c[leaves]), leaf_cache = leaf_forward(params["E"][s.word[leaves]], params)
    caches = [leaf_cache]
    for nodes in s.levels[1:]:
        lft, rgt = s.left[nodes], s.right[nodes]
        (h[nodes], c[nodes]), cache = compose_forward(h[lft], c[lft], h[rgt], c[rgt], params)
        caches.append(cache)
    return h, c, caches


def fold_states(params, trees):
    """Forward only: (h (M, H) of every node of `trees`, pooled; offsets (B+1,)), for prediction."""
    s = schedule(trees)
    h, _, _ = _forward(params, s)
    return h, s.offsets


def fold_total_loss_and_gradients(params, trees, gradients=True):
    """Returns (sum over the scored nodes of `trees` of -log p(label), grads of that sum), one cell step per height.

    The same numbers as `rnnlm.models.tree_recursive.recursive_total_loss_and_gradients`."""
    s = schedule(trees)
    h, c, caches = _forward(params, s)
    loss, dh, grads = score_nodes(params, h, s.label, gradients)
    if not gradients:
        return loss, None
    dc = np.zeros_like(c)
    for nodes, cache in zip(reversed(s.levels[1:]), reversed(caches[1:])):
        add_to_children(dh, dc, s.left[nodes], s.right[nodes], compose_backward(dh[nodes], dc[nodes], cache), grads)
    leaves = s.levels[0]
    return loss, leaves_backward(dh[leaves], dc[leaves], caches[0], s.word[leaves], grads)

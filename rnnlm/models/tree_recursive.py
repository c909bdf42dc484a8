"""The Tree-LSTM's reading copy: one node at a time, the way the model reads on paper.

The oracle the batched executors (`rnnlm.models.fold`, `rnnlm.models.spinn`) are tested against;
the cells it steps are `rnnlm.models.tree_cells`.
"""

import numpy as np

from rnnlm.models.tree_cells import (compose_backward, compose_forward, embedding_gradient, leaf_backward,
                                     leaf_forward, zero_grads)
from rnnlm.nn.output import softmax_cross_entropy


def recursive_total_loss_and_gradients(params, trees, gradients=True):
    """Returns (sum over the scored nodes of `trees` of -log p(label), grads of that sum); trees: `EncodedTree`s.

    One node at a time, walking down from the root (an explicit stack, so any depth works): the way
    the model reads on paper, and the oracle the batched versions are tested against. Nodes with label -1 are not scored.
    Returns (loss, grads) (grads None when gradients=False).
    """
    grads = zero_grads(params)
    leaf_words, leaf_dx = [], []
    total = 0.0
    zeros = np.zeros((1, params["U"].shape[0] // 2), dtype=params["U"].dtype)
    for tree in trees:
        caches = {}  # node -> (cell cache, its h, its c)
        root = tree.num_nodes - 1
        # The recursion, written with an explicit stack so that a tree as deep as it is long (a
        # right-branching sentence of thousands of words) does not reach Python's recursion limit.
        # forward(k): forward(left), forward(right), then the node itself (the same order as the recursion)
        todo = [(root, False)]
        while todo:
            k, children_done = todo.pop()
            if tree.left[k] < 0:
                (h, c), cache = leaf_forward(params["E"][tree.word[k]][None, :], params)
            elif not children_done:
                todo.extend(((k, True), (tree.right[k], False), (tree.left[k], False)))
                continue
            else:
                _, h_l, c_l = caches[tree.left[k]]
                _, h_r, c_r = caches[tree.right[k]]
                (h, c), cache = compose_forward(h_l, c_l, h_r, c_r, params)
            caches[k] = (cache, h, c)
            if tree.label[k] >= 0:
                loss, _, _, _ = softmax_cross_entropy(h, tree.label[k:k + 1], params["W_s"], params["b_s"], gradients=False)
                total += loss
        if not gradients:
            continue
        # backward(k, dh, dc): the node itself, then backward(left, ...), then backward(right, ...)
        todo = [(root, zeros, zeros)]
        while todo:
            k, dh, dc = todo.pop()
            cache, h, _ = caches[k]
            if tree.label[k] >= 0:
                _, dh_own, dW_s, db_s = softmax_cross_entropy(h, tree.label[k:k + 1], params["W_s"], params["b_s"])
                grads["W_s"] += dW_s
                grads["b_s"] += db_s
                dh = dh + dh_own
            if tree.left[k] < 0:
                dx, g = leaf_backward(dh, dc, cache)
                leaf_words.append(tree.word[k])
                leaf_dx.append(dx[0])
            else:
                (dh_l, dc_l), (dh_r, dc_r), g = compose_backward(dh, dc, cache)
                todo.append((tree.right[k], dh_r, dc_r))
                todo.append((tree.left[k], dh_l, dc_l))  # popped first: the left subtree before the right
            for name, value in g.items():
                grads[name] += value
    if not gradients:
        return total, None
    E = params["E"]
    dx = np.array(leaf_dx, dtype=E.dtype).reshape(-1, E.shape[1])
    grads["E"] = embedding_gradient(leaf_words, dx)
    return total, grads

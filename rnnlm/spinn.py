"""SPINN without a tracker (Bowman et al., 2016): the Tree-LSTM as shift-reduce transitions, batched per time step.

Read a binary tree's nodes in post-order and each is one transition of a shift-reduce parser:
a leaf is SHIFT (move the next word from the buffer onto the stack), an inner node is REDUCE
(pop the top two entries, right then left, compose them with the Tree-LSTM cell, push the
result). A sentence of n words takes 2n - 1 transitions, and at every time step t each example
of the batch does one of them, so the REDUCEs of all examples at step t are one batched
`compose_forward`. The stack is SPINN's "thin stack": every value ever pushed is kept in one
array at the slot of the step that pushed it, and the stack itself holds only slot numbers,
so the backward can walk the steps in reverse and send each reduce's gradient to the two
slots it popped.

    buffer:  the leaf states of every word of every example (one batched `leaf_forward`)
    step t:  SHIFT rows copy buffer[next word]; REDUCE rows compose two stack slots -> slot t
    loss:    every slot is a node: one classifier GEMM over them all (`softmax_loss`)

Fold batches by height (~ 20 steps for 25 SST trees); SPINN by time step (2 n_max - 1 steps,
~ 100), with fewer nodes per step, but it needs only a sequence of transitions, so it also
runs while a parser (SPINN's tracker) is still choosing them. Without the tracker it computes
exactly the Tree-LSTM: same loss, same gradients as `rnnlm.tree_lstm.recursive_loss_and_gradients`.
"""

from typing import NamedTuple

import numpy as np

from .tree_lstm import compose_backward, compose_forward, leaf_forward, leaves_backward, score_nodes

SHIFT, REDUCE = 0, 1


def transitions(tree):
    """(2n - 1,) int: SHIFT (0) for each leaf, REDUCE (1) for each inner node, in post-order."""
    return np.where(tree.left >= 0, REDUCE, SHIFT).astype(np.int64)


class Plan(NamedTuple):
    """What each time step does, found by running every example's stack on its transitions.

    slots are b * T + t (example b, step t; T = the longest sequence). words: the buffer's word
    ids, example by example; steps: per time step t, (shift_slots, shift_buffer_rows,
    reduce_slots, left_slots, right_slots). labels (B*T,): the label of the node pushed at each
    slot (-1 where nothing was pushed or the node is unlabelled).
    """

    T: int
    words: np.ndarray
    steps: list
    labels: np.ndarray


def plan(trees):
    """Simulate each example's buffer and stack over its transitions; group the operations by time step."""
    B, T = len(trees), max(t.num_nodes for t in trees)
    words = np.concatenate([t.word[t.left < 0] for t in trees])
    buffer_start = np.concatenate([[0], np.cumsum([int(np.sum(t.left < 0)) for t in trees])])
    labels = np.full(B * T, -1, dtype=np.int64)
    steps = [([], [], [], [], []) for _ in range(T)]
    for b, tree in enumerate(trees):
        stack, next_word = [], buffer_start[b]
        for t, op in enumerate(transitions(tree)):
            slot = b * T + t
            shift_slots, shift_rows, reduce_slots, left_slots, right_slots = steps[t]
            if op == SHIFT:
                shift_slots.append(slot)
                shift_rows.append(next_word)
                next_word += 1
            else:
                right_slots.append(stack.pop())
                left_slots.append(stack.pop())
                reduce_slots.append(slot)
            stack.append(slot)
            labels[slot] = tree.label[t]
    as_arrays = [tuple(np.array(x, dtype=np.int64) for x in step) for step in steps]
    return Plan(T, words, as_arrays, labels)


def spinn_loss_and_gradients(params, trees, gradients=True):
    """The same (loss, grads) as the recursive Tree-LSTM, computed by batched shift-reduce steps."""
    p = plan(trees)
    H = params["U"].shape[0] // 2
    (buf_h, buf_c), leaf_cache = leaf_forward(params["E"][p.words], params)
    stack_h = np.zeros((len(trees) * p.T, H), dtype=params["U"].dtype)  # the thin stack
    stack_c = np.zeros_like(stack_h)
    caches = []
    for shift_slots, shift_rows, reduce_slots, lft, rgt in p.steps:
        stack_h[shift_slots] = buf_h[shift_rows]
        stack_c[shift_slots] = buf_c[shift_rows]
        cache = None
        if len(reduce_slots):
            (stack_h[reduce_slots], stack_c[reduce_slots]), cache = compose_forward(
                stack_h[lft], stack_c[lft], stack_h[rgt], stack_c[rgt], params)
        caches.append(cache)
    loss, dstack_h, grads = score_nodes(params, stack_h, p.labels, gradients)
    if not gradients:
        return loss, None
    dstack_c = np.zeros_like(stack_c)
    dbuf_h = np.zeros_like(buf_h)
    dbuf_c = np.zeros_like(buf_c)
    for (shift_slots, shift_rows, reduce_slots, lft, rgt), cache in zip(reversed(p.steps), reversed(caches)):
        if cache is not None:
            (dh_l, dc_l), (dh_r, dc_r), g = compose_backward(dstack_h[reduce_slots], dstack_c[reduce_slots], cache)
            dstack_h[lft] += dh_l
            dstack_c[lft] += dc_l
            dstack_h[rgt] += dh_r
            dstack_c[rgt] += dc_r
            grads["U"] += g["U"]
            grads["b"] += g["b"]
        # each word is shifted exactly once, so its buffer row receives exactly one slot's gradient
        dbuf_h[shift_rows] = dstack_h[shift_slots]
        dbuf_c[shift_rows] = dstack_c[shift_slots]
    return loss, leaves_backward(dbuf_h, dbuf_c, leaf_cache, p.words, grads)

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
    loss:    every slot is a node: one classifier GEMM over them all (`output.softmax_cross_entropy`)

Fold batches by height (~ 20 steps for 25 SST trees); SPINN by time step (2 n_max - 1 steps,
~ 100), with fewer nodes per step, but it needs only a sequence of transitions, so it also
runs while a parser (SPINN's tracker) is still choosing them. Without the tracker it computes
exactly the Tree-LSTM: same loss, same gradients as `rnnlm.models.tree_recursive.recursive_total_loss_and_gradients`.

The tracker (the SPINN paper's extension, `add_tracker`): an LSTM (`rnnlm.nn.cells.lstm_step_forward`,
T units) that runs beside the stack, one step per time step for every example, reading the top of
the buffer and the top two stack entries (zeros where there are none) before each transition;
its state e enters every REDUCE as a third input, [i, f_l, f_r, o, u] = [h_l, h_r] U + e W_e + b.
This changes the model (the composition now sees the sentence read so far); with W_e = 0 it is the
Tree-LSTM again. The paper also lets the tracker predict the transitions; here they come from the tree.
"""

from typing import NamedTuple

import numpy as np

from rnnlm.nn.cells import lstm_step_backward, lstm_step_forward
from rnnlm.models.tree_cells import (add_to_children, compose_backward, compose_forward, leaf_forward, leaves_backward,
                                     score_nodes)

SHIFT, REDUCE = 0, 1
TRACKER = ("track_W_ih", "track_W_hh", "track_b_ih", "track_b_hh", "W_e")


def transitions(tree):
    """(2n - 1,) int: SHIFT (0) for each leaf, REDUCE (1) for each inner node, in post-order."""
    return np.where(tree.left >= 0, REDUCE, SHIFT).astype(np.int64)


class Plan(NamedTuple):
    """What each time step does, found by running every example's stack on its transitions.

    slots are b * T + t (example b, step t; T = the longest sequence). words: the buffer's word
    ids, example by example; steps: per time step t, (shift_slots, shift_buffer_rows,
    reduce_slots, left_slots, right_slots). labels (B*T,): the label of the node pushed at each
    slot (-1 where nothing was pushed or the node is unlabelled). reads: per time step, the
    (B, 3) int rows the tracker reads before the transition: buffer top (a buffer row), stack top,
    stack second (slots); -1 where there is none (the example has finished, or the stack or
    buffer is too short).
    """

    T: int
    words: np.ndarray
    steps: list
    labels: np.ndarray
    reads: list


def plan(trees):
    """Simulate each example's buffer and stack over its transitions; group the operations by time step."""
    B, T = len(trees), max(t.num_nodes for t in trees)
    words = np.concatenate([t.word[t.left < 0] for t in trees])
    buffer_start = np.concatenate([[0], np.cumsum([int(np.sum(t.left < 0)) for t in trees])])
    labels = np.full(B * T, -1, dtype=np.int64)
    steps = [([], [], [], [], []) for _ in range(T)]
    reads = [np.full((B, 3), -1, dtype=np.int64) for _ in range(T)]
    for b, tree in enumerate(trees):
        stack, next_word = [], buffer_start[b]
        for t, op in enumerate(transitions(tree)):
            slot = b * T + t
            reads[t][b] = [next_word if next_word < buffer_start[b + 1] else -1,
                           stack[-1] if stack else -1, stack[-2] if len(stack) > 1 else -1]
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
    return Plan(T, words, as_arrays, labels, reads)


def add_tracker(params, tracker_size, seed=0):
    """Add the tracker's parameters to `params` (in place) and return it: an LSTM reading [buffer top,
    stack top, stack second] (3H) with `tracker_size` units (torch's gate order, as rnnlm.nn.cells), and W_e
    (tracker_size, 5H), which starts at zero, so a fresh tracker leaves the Tree-LSTM unchanged."""
    rng = np.random.default_rng(seed)
    H, dtype, T = params["U"].shape[0] // 2, params["U"].dtype, tracker_size
    bound = 1 / np.sqrt(T)
    params.update({
        "track_W_ih": rng.uniform(-bound, bound, (3 * H, 4 * T)).astype(dtype),
        "track_W_hh": rng.uniform(-bound, bound, (T, 4 * T)).astype(dtype),
        "track_b_ih": np.zeros(4 * T, dtype=dtype), "track_b_hh": np.zeros(4 * T, dtype=dtype),
        "W_e": np.zeros((T, 5 * H), dtype=dtype)})
    return params


def spinn_total_loss_and_gradients(params, trees, gradients=True):
    """Returns (sum over the scored nodes of `trees` of -log p(label), grads of that sum), by shift-reduce.

    The same numbers as the recursive Tree-LSTM (`recursive_total_loss_and_gradients`), computed by
    batched shift-reduce steps.

    With the tracker's parameters in `params` (see `add_tracker`) the tracker runs too, and its
    parameters get gradients like the others.
    """
    p = plan(trees)
    B, H = len(trees), params["U"].shape[0] // 2
    tracked = "W_e" in params
    (buf_h, buf_c), leaf_cache = leaf_forward(params["E"][p.words], params)
    # one zero row at the end of the buffer and of the thin stack: what a read of "none" (-1) gets
    buf_h, buf_c = np.vstack([buf_h, np.zeros((1, H), buf_h.dtype)]), np.vstack([buf_c, np.zeros((1, H), buf_c.dtype)])
    stack_h = np.zeros((B * p.T + 1, H), dtype=params["U"].dtype)  # the thin stack
    stack_c = np.zeros_like(stack_h)
    if tracked:
        track = {k: params[f"track_{k}"] for k in ("W_ih", "W_hh", "b_ih", "b_hh")}
        T_track = params["W_e"].shape[0]
        state = (np.zeros((B, T_track), dtype=stack_h.dtype), np.zeros((B, T_track), dtype=stack_h.dtype))
        composer = {"U": np.vstack([params["U"], params["W_e"]]), "b": params["b"]}
    caches, track_caches = [], []
    for t, (shift_slots, shift_rows, reduce_slots, lft, rgt) in enumerate(p.steps):
        if tracked:  # the tracker reads the buffer and stack as they are before this step's transition
            buffer_top, top, second = p.reads[t].T
            state, track_cache = lstm_step_forward(
                np.concatenate([buf_h[buffer_top], stack_h[top], stack_h[second]], axis=1), state, track)
            track_caches.append(track_cache)
        stack_h[shift_slots] = buf_h[shift_rows]
        stack_c[shift_slots] = buf_c[shift_rows]
        cache = None
        if len(reduce_slots):
            if tracked:  # e joins the right child's input columns: [h_l, h_r, e] [U; W_e]
                e = state[0][reduce_slots // p.T]
                h_r = np.concatenate([stack_h[rgt], e], axis=1)
                (stack_h[reduce_slots], stack_c[reduce_slots]), cache = compose_forward(
                    stack_h[lft], stack_c[lft], h_r, stack_c[rgt], composer)
            else:
                (stack_h[reduce_slots], stack_c[reduce_slots]), cache = compose_forward(
                    stack_h[lft], stack_c[lft], stack_h[rgt], stack_c[rgt], params)
        caches.append(cache)
    loss, dstack_h, grads = score_nodes(params, stack_h[:-1], p.labels, gradients)
    if not gradients:
        return loss, None
    dstack_h = np.vstack([dstack_h, np.zeros((1, H), dstack_h.dtype)])
    dstack_c = np.zeros_like(stack_c)
    dbuf_h = np.zeros_like(buf_h)
    dbuf_c = np.zeros_like(buf_c)
    if tracked:
        dstate = (np.zeros_like(state[0]), np.zeros_like(state[1]))
        grads.update({k: np.zeros_like(params[k]) for k in TRACKER})
    for t in reversed(range(len(p.steps))):
        shift_slots, shift_rows, reduce_slots, lft, rgt = p.steps[t]
        cache = caches[t]
        if cache is not None:
            (dh_l, dc_l), (dh_r, dc_r), g = compose_backward(dstack_h[reduce_slots], dstack_c[reduce_slots], cache)
            if tracked:
                dh_r, de = dh_r[:, :H], dh_r[:, H:]
                dstate[0][reduce_slots // p.T] += de
                g["U"], grads["W_e"] = g["U"][:2 * H], grads["W_e"] + g["U"][2 * H:]
            add_to_children(dstack_h, dstack_c, lft, rgt, ((dh_l, dc_l), (dh_r, dc_r), g), grads)
        # a shift copies a buffer row to a slot; the tracker may read that row too, so add
        dbuf_h[shift_rows] += dstack_h[shift_slots]
        dbuf_c[shift_rows] += dstack_c[shift_slots]
        if tracked:
            dx, dstate, g = lstm_step_backward(dstate, track_caches[t])
            buffer_top, top, second = p.reads[t].T
            np.add.at(dbuf_h, buffer_top, dx[:, :H])  # add.at: several examples may read "none" (-1)
            np.add.at(dstack_h, top, dx[:, H:2 * H])
            np.add.at(dstack_h, second, dx[:, 2 * H:])
            for k, v in g.items():
                grads[f"track_{k}"] += v
    return loss, leaves_backward(dbuf_h[:-1], dbuf_c[:-1], leaf_cache, p.words, grads)

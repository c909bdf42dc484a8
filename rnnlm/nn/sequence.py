"""The one recurrence of every model: packed sequences, a layer's time loop, and (truncated) BPTT.

Letters: N sequences in a batch, T the longest, E input width, H hidden units, M the real
(unpadded) tokens of the batch.

Packed layout (PyTorch's packed sequences). Sequences are sorted longest first and laid out
time-major, so the sequences still running at step t are the first n_t of them, and step t's
rows of any per-token array are rows offsets[t]:offsets[t + 1] of one (M, ...) array. The time
loop touches no padding at all, every per-token quantity (embeddings, layer outputs, errors) is
an (M, ...) array, and the output layer reads the top layer's (M, H) outputs as they are.
`Packing` holds the bookkeeping: the sort order, n_t, the offsets, and for each row the row of
the same sequence one step earlier.

Every cell has the calling convention of rnnlm.nn.cells (`step_forward(x, state, p)`,
`step_backward(dstate, cache)`, a backward linear in dstate), so one loop serves them all;
`FastRNN` is the Elman cell with the tutorial's U, V, W. Each layer starts from a given state
(zero for a sentence, the previous window's last state in stream training) and hands back its
final state, and `layer_backward` returns the gradient of that initial state.

Truncated BPTT (`truncate=k`), the tutorial's meaning (`RNNNumpy.bptt`): the error entering a
layer at step t (from the softmax at t, or from the layer above at t) flows back through the
recurrence to steps t, t-1, ..., max(0, t - k) and no further; k = 0 keeps only step t itself.
None (or k >= T - 1) is full BPTT: one sweep back, g_t = e_t + P_{t+1}(g_{t+1}), P being one
step back through the cell. Truncated, the total error at step t is g_t = sum_{j=0..k} P^j e_{t+j}
(the signal that entered j steps later, moved back j steps). It is computed lag by lag over
all M rows at once: lag 0 is e, lag j is lag j-1 moved one step back (one call of the cell's
backward on every row, then a shift to the row one step earlier), and g is their sum. Because
the backward is linear in its upstream error, one last call on g gives every step's input
error and the parameter gradients summed over time.
"""

from typing import NamedTuple

import numpy as np

from rnnlm.nn.batching import segment_sum  # sort + np.add.reduceat: no np.add.at, no one-hot
from rnnlm.nn.cells import CELLS, input_projection, input_projection_backward
from rnnlm.nn.fused import FUSED, fused_layer_backward, fused_layer_forward, truncated_lags


# --------------------------------------------------------------------- packing

class Packing(NamedTuple):
    """How a batch of N sequences is packed (see the module docstring).

    order (N,): order[i] is the original index of the i-th longest sequence.
    lengths (N,): their lengths, sorted (longest first). batch_sizes (T,): n_t.
    offsets (T + 1,): step t's rows are offsets[t]:offsets[t + 1]. real (M,): each packed
    row's flat index into the (T, N) time-major grid. prev_rows (M,): the row of the same
    sequence one step earlier, -1 at t = 0.
    """

    order: np.ndarray
    lengths: np.ndarray
    batch_sizes: np.ndarray
    offsets: np.ndarray
    real: np.ndarray
    prev_rows: np.ndarray

    @classmethod
    def of_lengths(cls, lengths):
        """The packing of sequences with these lengths, (N,) int."""
        lengths = np.asarray(lengths, dtype=np.int64)
        order = np.argsort(-lengths, kind="stable")  # stable: equal lengths keep their order
        lengths = lengths[order]
        N, T = len(lengths), int(lengths.max(initial=0))
        batch_sizes = (lengths[None, :] > np.arange(T)[:, None]).sum(axis=1)  # (T,) n_t
        offsets = np.concatenate(([0], np.cumsum(batch_sizes))).astype(np.int64)
        real = np.flatnonzero(np.arange(N)[None, :] < batch_sizes[:, None])  # (M,) into (T, N)
        t, n = real // max(N, 1), real % max(N, 1)
        prev_rows = np.where(t > 0, offsets[np.maximum(t - 1, 0)] + n, -1)
        return cls(order, lengths, batch_sizes, offsets, real, prev_rows)

    @classmethod
    def of(cls, X, Y=None):
        """The packing of sentences X (sequence of (T_n,) arrays); Y, if given, must match X's lengths."""
        if Y is not None and len(X) != len(Y):
            raise ValueError(f"X has {len(X)} sentences but Y has {len(Y)}")
        lengths = np.array([len(x) for x in X], dtype=np.int64)
        if Y is not None and np.any(lengths != np.array([len(y) for y in Y], dtype=np.int64)):
            raise ValueError("each X[n] must have the same length as Y[n]")
        return cls.of_lengths(lengths)

    @property
    def num_sequences(self):
        return len(self.order)

    @property
    def num_tokens(self):
        return int(self.offsets[-1])

    def pack(self, X, dtype=np.int64):
        """Ragged sequences X (N of them, in the original order) -> their tokens, packed: (M,)."""
        N, T = self.num_sequences, len(self.batch_sizes)
        grid = np.zeros((T, N), dtype=dtype)
        for i, n in enumerate(self.order):
            grid[:self.lengths[i], i] = X[n]
        return grid.reshape(-1)[self.real]

    def unpack(self, values):
        """Packed rows (M, ...) -> (N, T, ...) batch-first in the original order, zero on padding."""
        N, T = self.num_sequences, len(self.batch_sizes)
        grid = np.zeros((T * N,) + values.shape[1:], dtype=values.dtype)
        grid[self.real] = values
        out = np.zeros((N, T) + values.shape[1:], dtype=values.dtype)
        out[self.order] = np.swapaxes(grid.reshape((T, N) + values.shape[1:]), 0, 1)
        return out

    def sort_state(self, state):
        """A state tuple of (N, H) arrays in the original order -> in packing order."""
        return tuple(s[self.order] for s in state)

    def unsort_state(self, state):
        """Inverse of `sort_state`."""
        out = []
        for s in state:
            back = np.empty_like(s)
            back[self.order] = s
            out.append(back)
        return tuple(out)


# --------------------------------------------------------------------- recurrent layers

class StepCaches(list):
    """A layer's step caches, one per time step, plus what the hoisted input projection needs.

    inputs (M, E): the layer's packed inputs x; projection: {"W_ih", "b_ih"} when the layer
    projected x W_ih + b_ih for all M tokens before its time loop (the steps then saw the
    projected rows and their caches hold parameters without W_ih, b_ih), else empty.
    """

    def __init__(self, steps=(), inputs=None, projection=None, fused=None):
        super().__init__(steps)
        self.inputs = inputs
        self.projection = projection or {}
        self.fused = fused  # the fused loop's buffers (`rnnlm.nn.fused.fused_layer_forward`), or None


def packed_layer_forward(cell, x, state0, p, packing, **options):
    """Run one recurrent layer over a packed batch.

    x (M, E) packed inputs; state0: the cell's state tuple of (N, H) arrays, in packing order;
    p: the layer's parameters; options: passed to the cell (peephole, coupled for the LSTM).
    Returns (out (M, H): the first state entry at every real step, caches: a `StepCaches`,
    one step cache per time step (step t's covers n_t rows), final state tuple (N, H): each
    sequence's state after its own last step, packing order; state0's rows for empty sequences).

    The input side of every cell, x_t W_ih + b_ih, does not depend on the recurrence, so it is
    computed for all M tokens in one matrix product here, and the steps get the projected rows
    (the cells' already-projected convention, rnnlm.nn.cells): T small products become one big one.
    """
    if cell in FUSED and not any(options.values()):
        out, steps, projection, buffers, final = fused_layer_forward(cell, x, state0, p, packing)
        return out, StepCaches(steps, inputs=x, projection=projection, fused=buffers), final
    step_forward = CELLS[cell][0]
    sizes, offsets = packing.batch_sizes, packing.offsets
    inputs, projection = x, {}
    if "W_ih" in p:
        projection = {k: p[k] for k in ("W_ih", "b_ih") if k in p}
        x = input_projection(x, projection)  # (M, G H)
        p = {k: v for k, v in p.items() if k not in projection}
    final = [np.array(s, copy=True) for s in state0]
    out = np.empty((packing.num_tokens, state0[0].shape[1]), dtype=state0[0].dtype)
    caches = StepCaches(inputs=inputs, projection=projection)
    state = tuple(state0)
    for t, n in enumerate(sizes):
        state, cache = step_forward(x[offsets[t]:offsets[t + 1]], tuple(s[:n] for s in state), p, **options)
        out[offsets[t]:offsets[t + 1]] = state[0]
        caches.append(cache)
        ending = sizes[t + 1] if t + 1 < len(sizes) else 0  # rows ending..n-1 take their last step here
        for f, s in zip(final, state):
            f[ending:n] = s[ending:]
    return out, caches, tuple(final)


def _projection_backward(dx, grads, caches):
    """Backward of the hoisted input projection: dx (M, G H) the projected rows' error -> the inputs' (M, E).

    Returns (dx, grads with dW_ih = x^T dx and db_ih = dx summed over the tokens added).
    """
    projection = caches.projection if isinstance(caches, StepCaches) else {}
    if not projection:
        return dx, grads
    extra = {}
    dx = input_projection_backward(caches.inputs, dx, projection, extra)
    return dx, {**extra, **grads}


def _add_grads(total, grads):
    for k, v in grads.items():
        if k in total:
            total[k] += v
        else:
            total[k] = np.array(v, copy=True)


def _stack_caches(caches):
    """Step caches -> one cache over all M rows (array fields concatenated; parameters and flags shared)."""
    first = caches[0]
    return type(first)(*[np.concatenate([c[i] for c in caches]) if isinstance(v, np.ndarray) else v
                         for i, v in enumerate(first)])


def packed_layer_backward(cell, dout, caches, packing, truncate=None):
    """Backward of `packed_layer_forward`: BPTT, full or truncated (see the module docstring).

    dout (M, H): the error reaching each step's output from outside the recurrence (the
    softmax or the layer above). Returns (dx (M, E), grads summed over time and batch,
    dstate0: the gradient of the initial state tuple, (N, H) arrays in packing order).
    """
    step_backward, nstate = CELLS[cell][1], CELLS[cell][2]
    sizes, offsets = packing.batch_sizes, packing.offsets
    M, H = dout.shape
    T, N = len(sizes), packing.num_sequences
    dstate0 = tuple(np.zeros((N, H), dtype=dout.dtype) for _ in range(nstate))
    if T == 0:
        return np.zeros((0, 0), dtype=dout.dtype), {}, dstate0
    if isinstance(caches, StepCaches) and caches.fused is not None:
        return fused_layer_backward(cell, dout, caches, packing, truncate)
    if truncate is None or truncate >= T - 1:
        grads, dx, carry = {}, None, None
        for t in range(T - 1, -1, -1):
            a, e = offsets[t], offsets[t + 1]
            upstream = [dout[a:e].copy()] + [np.zeros((e - a, H), dtype=dout.dtype) for _ in range(nstate - 1)]
            if carry is not None:
                for u, c in zip(upstream, carry):
                    u[:len(c)] += c
            dxt, carry, g = step_backward(tuple(upstream), caches[t])
            if dx is None:
                dx = np.empty((M, dxt.shape[1]), dtype=dxt.dtype)
            dx[a:e] = dxt
            _add_grads(grads, g)
        for d, c in zip(dstate0, carry):
            d[:len(c)] = c
        dx, grads = _projection_backward(dx, grads, caches)
        return dx, grads, dstate0
    every = _stack_caches(caches)
    upstream = (dout,) + tuple(np.zeros_like(dout) for _ in range(nstate - 1))
    total, lag = truncated_lags(upstream, lambda lag: step_backward(lag, every)[1], packing.prev_rows, truncate)
    dx, _, grads = step_backward(tuple(total), every)
    # only the signals that have not yet travelled `truncate` steps go on to the initial state
    n0 = int(sizes[0])
    _, back, _ = step_backward(tuple(g[:n0] - v[:n0] for g, v in zip(total, lag)), caches[0])
    for d, b in zip(dstate0, back):
        d[:n0] = b
    dx, grads = _projection_backward(dx, grads, caches)
    return dx, grads, dstate0


def layer_forward(cell, x, state0, p, **options):
    """`packed_layer_forward` for a dense batch-first batch of N sequences of equal length T.

    x (N, T, E); state0: the cell's state tuple of (N, H) arrays. Returns (out (N, T, H),
    caches: T step caches of N rows, final state tuple).
    """
    N, T, E = x.shape
    packing = Packing.of_lengths(np.full(N, T))
    out, caches, final = packed_layer_forward(cell, np.swapaxes(x, 0, 1).reshape(T * N, E), state0, p,
                                              packing, **options)
    return np.swapaxes(out.reshape(T, N, -1), 0, 1), caches, final


def layer_backward(cell, dout, caches, truncate=None):
    """Backward of `layer_forward`: dout (N, T, H) -> (dx (N, T, E), grads, dstate0 tuple of (N, H))."""
    N, T, H = dout.shape
    packing = Packing.of_lengths(np.full(N, T))
    dx, grads, dstate0 = packed_layer_backward(cell, np.swapaxes(dout, 0, 1).reshape(T * N, H), caches,
                                               packing, truncate)
    return np.swapaxes(dx.reshape(T, N, -1), 0, 1), grads, dstate0


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


# --------------------------------------------------------------------- a model's forward pass

class Forward(NamedTuple):
    """What a model's forward pass over a packed batch keeps for its backward.

    packing: the `Packing`. x, y (M,) int: packed inputs and targets. top (M, H): the top
    layer's outputs (what the output layer reads). caches: per layer, its step caches.
    final: per layer, the final state tuple of (N, H) arrays, original order. masks: None, or the
    dropout masks (L + 1 of them, each (M, width) or None): masks[k] scaled layer k's input, masks[L] top.
    """

    packing: Packing
    x: np.ndarray
    y: np.ndarray
    top: np.ndarray
    caches: list
    final: tuple
    masks: tuple = None


def stack_forward(layers, inputs, X, Y, state0, masks=None):
    """Run packed sentences X (targets Y) through stacked layers; returns a `Forward`.

    layers: per layer (cell, p, options); inputs(x) -> (M, E) the first layer's input rows for the
    packed word ids x; state0: per layer, a state tuple of (N, H) arrays in the original order.
    masks: None, or masks(packing) -> L + 1 dropout masks (see `Forward`), multiplied into each
    layer's input and the top output: never into the recurrence.
    """
    packing = Packing.of(X, Y)
    x = packing.pack(X)
    y = packing.pack(Y)
    inp = inputs(x)
    drop = masks(packing) if masks is not None else None
    caches, final = [], []
    for k, ((cell, p, options), s0) in enumerate(zip(layers, state0)):
        if drop is not None and drop[k] is not None:
            inp = inp * drop[k]
        inp, layer_caches, last = packed_layer_forward(cell, inp, packing.sort_state(s0), p, packing, **options)
        caches.append(layer_caches)
        final.append(packing.unsort_state(last))
    if drop is not None and drop[-1] is not None:
        inp = inp * drop[-1]
    return Forward(packing, x, y, inp, caches, tuple(final), None if drop is None else tuple(drop))


def stack_backward(layers, forward, dtop, truncate):
    """Backward of `stack_forward`: dtop (M, H) -> (dx (M, E) error of the first layer's inputs, per-layer grads).

    Truncation applies to each layer's own recurrence (see the module docstring).
    """
    masks = forward.masks or (None,) * (len(layers) + 1)
    dout, grads = dtop if masks[-1] is None else dtop * masks[-1], []
    for k in range(len(layers) - 1, -1, -1):
        cell = layers[k][0]
        dout, layer_grads, _ = packed_layer_backward(cell, dout, forward.caches[k], forward.packing, truncate)
        if masks[k] is not None:
            dout = dout * masks[k]
        grads.append(layer_grads)
    return dout, grads[::-1]

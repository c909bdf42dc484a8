"""Fused steps of the plain rnn, gru and lstm cells, for the packed time loop of rnnlm.nn.sequence.

The step functions of rnnlm.nn.cells are the cells as one reads them: every intermediate a new array and
every step its own parameter products. At H ~ 100-500 a step's twenty-odd NumPy calls cost as
much as its one matrix product, so rnnlm.nn.sequence runs plain rnn, gru and lstm layers through
the fused pairs below instead. Same equations, same caches (their fields are views into buffers
the loop allocates once for all M rows), but:
  - the gate columns come in a fused layout (`fused_layout`): the LSTM's sigmoid gates i, f, o
    first and contiguous, g last; and every sigmoid gate's columns halved, because
    sigmoid(z) = (1 + tanh(z / 2)) / 2: one tanh then activates every block of the row;
  - the biases are added to the input projection once, before the loop (the GRU's b_hn excepted:
    the reset gate multiplies it);
  - what a backward multiplies by that depends only on the forward (s (1 - s), 1 - tanh^2, ...) is
    computed for all M rows at once before the backward's loop (`*_fused_coefficients`), so a
    step is a handful of calls: the ones that involve the error carried from step t + 1;
  - a backward stops at the pre-activation errors, written into the loop's (M, G H) buffer; the
    loop multiplies by W_hh^T for dh_{t-1}, and after the loop does dW_hh = h_prev^T da for all
    steps in one product (one big GEMM instead of T small ones and T additions).
Writes go into the `out=` views given; nothing else is mutated.

`fused_layer_forward` and `fused_layer_backward` are the time loops around these steps. Truncated BPTT
(rnnlm.nn.sequence's definition) takes each lag one step back through every row at once with the same
coefficients (`_lags`, through `truncated_lags`, the one lag loop of both backward paths), so it costs
one (M, G H)(G H, H) product per step of truncation and computes the parameters' gradients once, from
the summed lags.
"""

import numpy as np

from rnnlm.nn.cells import GRUCache, LSTMCache, RNNCache, input_projection_backward


def fused_layout(cell, hidden_size):
    """(blocks, scale): fused gate block j is torch's block blocks[j]; column j is scaled by scale[j].

    lstm: blocks i, f, o, g with i, f, o halved; gru: r, z, n with r, z halved; rnn: as is.
    """
    blocks, halved = {"rnn": ((0,), 0), "gru": ((0, 1, 2), 2), "lstm": ((0, 1, 3, 2), 3)}[cell]
    scale = np.ones(len(blocks) * hidden_size)
    scale[:halved * hidden_size] = 0.5
    return blocks, scale


def reorder_blocks(a, blocks, hidden_size):
    """a's last axis, (G H) wide, with its H-wide blocks in the order `blocks` (a itself when unchanged).

    Block slices and one concatenate: a fancy index over columns is ~80x slower on (M, 4H) arrays.
    The LSTM's (0, 1, 3, 2) is its own inverse, so this also maps the fused layout back to torch's.
    """
    if tuple(blocks) == tuple(range(len(blocks))):
        return a
    H = hidden_size
    return np.concatenate([a[..., k * H:(k + 1) * H] for k in blocks], axis=-1)


def _sigmoid_from_tanh(block):
    """In place: tanh(z / 2) -> sigmoid(z) = (1 + tanh(z / 2)) / 2."""
    block *= 0.5
    block += 0.5


def rnn_fused_forward(xa, h_prev, W, p, h):
    """`rnn_step_forward` into h (N, H): h = tanh(xa + h_prev W), xa = x_t W_ih + b_ih + b_hh (N, H)."""
    np.matmul(h_prev, W, out=h)
    h += xa
    np.tanh(h, out=h)
    return (h,), RNNCache(None, h_prev, h, p)


def rnn_fused_coefficients(h):
    """The factor of `rnn_step_backward` that depends only on the forward, for all M rows at once: 1 - h^2 (M, H)."""
    k = np.multiply(h, h)
    return np.subtract(1, k, out=k)


def rnn_fused_backward(dh, k, da):
    """Backward of `rnn_fused_forward` to the pre-activation: da = dh (1 - h^2), k = 1 - h^2, into da (N, H)."""
    np.multiply(dh, k, out=da)


def gru_fused_forward(xa, h_prev, W, b_hn, p, gh, gates, h, scratch):
    """`gru_step_forward` into buffers. xa (N, 3H) = x_t W_ih + b_ih + (b_hr, b_hz, 0), W (H, 3H) = W_hh,
    both in the fused layout; b_hn (H,) or None. Writes gh = h_prev W (+ b_hn on the n block) (N, 3H),
    gates = (r, z, n) (N, 3H), h (N, H); scratch (N, H).
    """
    H = h.shape[1]
    np.matmul(h_prev, W, out=gh)
    hn = gh[:, 2 * H:]  # h_{t-1} W_hn + b_hn, which the reset gate multiplies
    if b_hn is not None:
        hn += b_hn
    rz = gates[:, :2 * H]
    np.add(xa[:, :2 * H], gh[:, :2 * H], out=rz)
    np.tanh(rz, out=rz)
    _sigmoid_from_tanh(rz)
    r, z, n = gates[:, :H], gates[:, H:2 * H], gates[:, 2 * H:]
    np.multiply(r, hn, out=n)
    n += xa[:, 2 * H:]
    np.tanh(n, out=n)
    np.subtract(h_prev, n, out=scratch)  # h = (1 - z) n + z h_prev = n + z (h_prev - n)
    scratch *= z
    np.add(n, scratch, out=h)
    return (h,), GRUCache(None, h_prev, r, z, n, hn, p)


def gru_fused_coefficients(gates, hn, h_prev):
    """The factors of `gru_step_backward` that depend only on the forward, for all M rows at once.

    gates (M, 3H) = (r, z, n), hn (M, H), h_prev (M, H). Returns (K (M, 3H), k_n (M, H)) with
    dgh = dh K blockwise (dar, daz, dan r), dan = dh k_n:
    k_n = (1 - z)(1 - n^2), K = (k_n hn r (1 - r), (h_prev - n) z (1 - z), k_n r).
    """
    H = hn.shape[1]
    r, z, n = gates[:, :H], gates[:, H:2 * H], gates[:, 2 * H:]
    K = np.empty_like(gates)
    k_n = np.multiply(n, n)
    np.subtract(1, k_n, out=k_n)
    k_n *= 1 - z
    np.subtract(1, gates[:, :2 * H], out=K[:, :2 * H])
    K[:, :2 * H] *= gates[:, :2 * H]  # sigmoid' = s (1 - s) for r and z at once
    K[:, :H] *= hn
    K[:, :H] *= k_n
    K[:, H:2 * H] *= h_prev - n
    np.multiply(k_n, r, out=K[:, 2 * H:])
    return K, k_n


def gru_fused_backward(dh, z, K, dgh, scratch):
    """Backward of `gru_fused_forward` to the hidden side's pre-activations (equations of `gru_step_backward`).

    Writes dgh (N, 3H) = dh K blockwise: the error of h_{t-1} W_hh + b_hh. Returns dh z (in scratch
    (N, H)), the part of dh_{t-1} that does not go through W_hh. (The input side's n block, dh k_n,
    does not feed the recurrence: the loop computes it for all rows afterwards.)
    """
    N, H = dh.shape
    np.multiply(K.reshape(N, 3, H), dh[:, None, :], out=dgh.reshape(N, 3, H))
    return np.multiply(dh, z, out=scratch)


def lstm_fused_forward(xa, h_prev, c_prev, W, p, gates, c, tanh_c, h, scratch):
    """`lstm_step_forward` (no peepholes, uncoupled) into buffers.

    xa (N, 4H) = x_t W_ih + b_ih + b_hh and W (H, 4H) = W_hh in the fused layout (i, f, o, g; i, f, o
    halved). Writes gates (N, 4H) = (i, f, o, g), c, tanh_c, h (N, H); scratch (N, H).
    """
    H = h.shape[1]
    np.matmul(h_prev, W, out=gates)
    gates += xa
    np.tanh(gates, out=gates)  # i, f, o halved: tanh(z / 2); g: tanh(z)
    _sigmoid_from_tanh(gates[:, :3 * H])
    i, f, o, g = gates[:, :H], gates[:, H:2 * H], gates[:, 2 * H:3 * H], gates[:, 3 * H:]
    np.multiply(f, c_prev, out=c)
    np.multiply(i, g, out=scratch)
    c += scratch
    np.tanh(c, out=tanh_c)
    np.multiply(o, tanh_c, out=h)
    return (h, c), LSTMCache(None, h_prev, c_prev, i, f, g, o, c, tanh_c, p, False, False)


def lstm_fused_coefficients(gates, c_prev, tanh_c):
    """The factors of `lstm_step_backward` that depend only on the forward, for all M rows at once.

    gates (M, 4H) = (i, f, o, g), c_prev, tanh_c (M, H). Returns (K (M, 4H), k_c (M, H)) with
    dc = dc_in + dh k_c, and da = dc K on blocks i, f, g, dh K on block o:
    k_c = o (1 - tanh(c)^2), K = (g i (1 - i), c_prev f (1 - f), tanh(c) o (1 - o), i (1 - g^2)).
    """
    H = tanh_c.shape[1]
    i, o, g = gates[:, :H], gates[:, 2 * H:3 * H], gates[:, 3 * H:]
    K = np.empty_like(gates)
    s = K[:, :3 * H]
    np.subtract(1, gates[:, :3 * H], out=s)
    s *= gates[:, :3 * H]  # sigmoid' = s (1 - s) for i, f, o at once
    K[:, :H] *= g
    K[:, H:2 * H] *= c_prev
    K[:, 2 * H:3 * H] *= tanh_c
    kg = K[:, 3 * H:]
    np.multiply(g, g, out=kg)
    np.subtract(1, kg, out=kg)
    kg *= i
    k_c = np.multiply(tanh_c, tanh_c)
    np.subtract(1, k_c, out=k_c)
    k_c *= o
    return K, k_c


def lstm_fused_backward(dh, dc, f, K, k_c, da, scratch):
    """Backward of `lstm_fused_forward` to the pre-activations (equations of `lstm_step_backward`).

    dh, dc (N, H): the errors of h_t and c_t; f (N, H) the forget gate; K, k_c this step's rows of
    `lstm_fused_coefficients`. Writes da (N, 4H), the error of x_t W_ih + b_ih + h_{t-1} W_hh + b_hh
    in the fused layout (not halved), and overwrites dc with dc_{t-1} = dc f. scratch (N, H).
    """
    N, H = dh.shape
    np.multiply(dh, k_c, out=scratch)
    dc += scratch
    np.multiply(K.reshape(N, 4, H), dc[:, None, :], out=da.reshape(N, 4, H))  # i, f, g (o fixed next)
    np.multiply(dh, K[:, 2 * H:3 * H], out=da[:, 2 * H:3 * H])
    dc *= f


def fused_layer_forward(cell, x, state0, p, packing):
    """`rnnlm.nn.sequence.packed_layer_forward` for plain rnn, gru and lstm layers, through the fused steps.

    Same results and the same step caches (their arrays are views into buffers allocated here once
    for all M rows). The input projection, in the fused layout and with the biases folded in, is one
    product before the loop. Returns (out (M, H), the T step caches, the projection's parameters
    {"W_ih", "b_ih"} (empty when x was the projection), the buffers `fused_layer_backward` reads, the
    final state tuple).
    """
    step_forward = FUSED[cell][0]
    sizes, offsets = packing.batch_sizes, packing.offsets
    M, (N, H) = packing.num_tokens, state0[0].shape
    dtype = state0[0].dtype
    blocks, scale = fused_layout(cell, H)
    scale = scale.astype(p["W_hh"].dtype)
    G = len(scale)
    projection = {k: p[k] for k in ("W_ih", "b_ih") if k in p} if "W_ih" in p else {}
    W = reorder_blocks(p["W_hh"], blocks, H) * scale
    bias = np.zeros(G, dtype=p["W_hh"].dtype)  # torch's column order
    if "b_ih" in p:
        bias += p["b_ih"]
    b_hn = None
    if "b_hh" in p:
        if cell == "gru":  # the reset gate multiplies b_hn: it stays in the loop
            bias[:2 * H] += p["b_hh"][:2 * H]
            b_hn = p["b_hh"][2 * H:]
        else:
            bias += p["b_hh"]
    xa = x @ (reorder_blocks(p["W_ih"], blocks, H) * scale) if "W_ih" in p else reorder_blocks(x, blocks, H) * scale
    xa += reorder_blocks(bias, blocks, H) * scale
    cache_p = {k: v for k, v in p.items() if k not in projection}
    out = np.empty((M, H), dtype=dtype)
    gates = np.empty((M, G), dtype=dtype) if cell != "rnn" else None
    c_all = tanh_c = gh = None
    if cell == "lstm":
        c_all, tanh_c = np.empty((M, H), dtype=dtype), np.empty((M, H), dtype=dtype)
    if cell == "gru":
        gh = np.empty((M, 3 * H), dtype=dtype)
    scratch = np.empty((N, H), dtype=dtype)
    buffers = {"blocks": blocks, "gates": gates, "out": out, "c": c_all, "tanh_c": tanh_c, "gh": gh}
    caches = []
    final = [np.array(s, copy=True) for s in state0]
    state = tuple(state0)
    for t, n in enumerate(sizes):
        a, e = offsets[t], offsets[t + 1]
        prev = tuple(s[:n] for s in state)
        if cell == "rnn":
            state, cache = step_forward(xa[a:e], prev[0], W, cache_p, out[a:e])
        elif cell == "gru":
            state, cache = step_forward(xa[a:e], prev[0], W, b_hn, cache_p, gh[a:e], gates[a:e], out[a:e],
                                        scratch[:n])
        else:
            state, cache = step_forward(xa[a:e], prev[0], prev[1], W, cache_p, gates[a:e], c_all[a:e],
                                        tanh_c[a:e], out[a:e], scratch[:n])
        caches.append(cache)
        ending = sizes[t + 1] if t + 1 < len(sizes) else 0  # rows ending..n-1 take their last step here
        if ending < n:
            for f, s in zip(final, state):
                f[ending:n] = s[ending:]
    return out, caches, projection, buffers, tuple(final)


def _step_back(cell, dh, dc, K, k_c, middle, W_T, da, scratch, out=None):
    """One step back through a fused cell for any rows at once: one time step's, or all M (truncated BPTT).

    dh (n, H): the error of h_t; dc (n, H): of c_t (lstm, overwritten with dc_{t-1}; else None); K, k_c:
    the rows' `*_fused_coefficients` (k_c for lstm only); middle: the rows' gates[:, H:2 H] (z of the gru,
    f of the lstm). Writes da (n, G H), the pre-activation errors; with out (n, H), also writes
    dh_{t-1} = da W_hh^T (+ dh z for the gru) there and returns it.
    """
    direct = None
    if cell == "rnn":
        rnn_fused_backward(dh, K, da)
    elif cell == "gru":
        direct = gru_fused_backward(dh, middle, K, da, scratch)
    else:
        lstm_fused_backward(dh, dc, middle, K, k_c, da, scratch)
    if out is None:
        return None
    np.matmul(da, W_T, out=out)
    if direct is not None:
        out += direct
    return out


def fused_layer_backward(cell, dout, caches, packing, truncate=None):
    """BPTT of `fused_layer_forward`, full (truncate None) or truncated as rnnlm.nn.sequence defines it.

    caches: the layer's `StepCaches` (its `fused` buffers). The pre-activation errors of every row go
    into one (M, G H) buffer, and W_hh's, the biases' and the input projection's gradients are each one
    product after the loop. Returns (dx, grads, dstate0) as `packed_layer_backward`.
    """
    sizes = packing.batch_sizes
    M, H = dout.shape
    fused = caches.fused
    blocks, gates = fused["blocks"], fused["gates"]
    p = caches[0].p
    # (G H, H): dh_{t-1} = da W_hh^T in the fused layout; contiguous, because OpenBLAS multiplies the
    # step's (N, G H) rows by a transposed view ~1.2-1.5x slower at N = 32
    W_T = np.ascontiguousarray(reorder_blocks(p["W_hh"], blocks, H).T)
    h_prev = _previous_rows(fused["out"], caches[0].h_prev, packing)  # (M, H): each row's h_{t-1}
    k_c = k_n = None
    if cell == "lstm":
        K, k_c = lstm_fused_coefficients(gates, _previous_rows(fused["c"], caches[0].c_prev, packing),
                                         fused["tanh_c"])
    elif cell == "gru":
        K, k_n = gru_fused_coefficients(gates, fused["gh"][:, 2 * H:], h_prev)
    else:
        K = rnn_fused_coefficients(fused["out"])
    factors = (K, k_c, None if gates is None else gates[:, H:2 * H], W_T)
    dgh = np.empty((M, W_T.shape[0]), dtype=dout.dtype)
    if truncate is None or truncate >= len(sizes) - 1:
        dh_all, dstate0 = _sweep(cell, dout, factors, packing, dgh)
    else:
        dh_all, dstate0 = _lags(cell, dout, factors, packing, truncate, dgh)
    grads = {"W_hh": reorder_blocks(h_prev.T @ dgh, blocks, H)}  # every step's h_{t-1}^T da in one product
    if "b_hh" in p:
        grads["b_hh"] = reorder_blocks(dgh.sum(axis=0), blocks, H)
    # (M, G H), fused layout; the GRU's input side differs from dgh in its n block: dan = dh k_n
    dgi = np.concatenate([dgh[:, :2 * H], dh_all * k_n], axis=1) if cell == "gru" else dgh
    # the input projection's backward (rnnlm.nn.cells.input_projection_backward) in the fused layout: its
    # products read dgi as it is, only their small results (and dx, when the input was the projection) move
    projection = caches.projection or {k: p[k] for k in ("b_ih",) if k in p}
    extra = {}
    dx = input_projection_backward(caches.inputs, dgi, {k: reorder_blocks(v, blocks, H) for k, v in projection.items()},
                                   extra)
    grads = {**{k: reorder_blocks(v, blocks, H) for k, v in extra.items()}, **grads}
    if not caches.projection:  # the input was the projection: its error, back in torch's layout
        dx = reorder_blocks(dx, blocks, H)
    return dx, grads, dstate0


def _sweep(cell, dout, factors, packing, dgh):
    """Full BPTT: one sweep from the last step to the first, writing every row's da into dgh (M, G H).

    Returns (dh_all (M, H): each row's whole error dh_t, dstate0: the initial state's gradient)."""
    K, k_c, middle, W_T = factors
    sizes, offsets = packing.batch_sizes, packing.offsets
    H, T, N = dout.shape[1], len(sizes), packing.num_sequences
    dh_all = np.array(dout, copy=True)  # each step's dh: dout plus what flows back from step t + 1
    dc = np.zeros((N, H), dtype=dout.dtype) if cell == "lstm" else None
    carry = np.empty((N, H), dtype=dout.dtype)
    scratch = np.empty((N, H), dtype=dout.dtype)
    for t in range(T - 1, -1, -1):
        a, e = offsets[t], offsets[t + 1]
        n = e - a
        if t + 1 < T:
            m = sizes[t + 1]
            dh_all[a:a + m] += carry[:m]
            if dc is not None and m < n:
                dc[m:n] = 0  # sequences whose last step is t
        _step_back(cell, dh_all[a:e], None if dc is None else dc[:n], K[a:e], None if k_c is None else k_c[a:e],
                   None if middle is None else middle[a:e], W_T, dgh[a:e], scratch[:n], carry[:n])
    n0 = int(sizes[0])
    dstate0 = [np.zeros((N, H), dtype=dout.dtype) for _ in range(2 if cell == "lstm" else 1)]
    dstate0[0][:n0] = carry[:n0]
    if dc is not None:
        dstate0[1][:n0] = dc[:n0]
    return dh_all, tuple(dstate0)


def truncated_lags(upstream, one_step_back, prev_rows, truncate):
    """Truncated BPTT's sum of lags over all M packed rows at once (rnnlm.nn.sequence's module docstring).

    The one lag loop, for the fused backward (`_lags`) and rnnlm.nn.sequence's step pairs alike.
    upstream: the state-shaped tuple of (M, H) errors entering each row from outside the recurrence
    (lag 0); one_step_back(lag): every row's error taken one step back through its own cell, a tuple
    like lag (it may overwrite lag's arrays); prev_rows: `Packing.prev_rows`. Lag j is lag j - 1 taken
    back and moved to the row one step earlier. Returns (total, last): the sum of lags 0..truncate at
    each row, and lag `truncate` (total - last: what has travelled fewer than `truncate` steps).
    """
    moves = prev_rows >= 0
    later, earlier = np.flatnonzero(moves), prev_rows[moves]
    lag = tuple(upstream)
    total = [np.array(v, copy=True) for v in lag]
    for _ in range(truncate):
        back = one_step_back(lag)
        lag = tuple(np.zeros_like(b) for b in back)
        for moved, b in zip(lag, back):
            moved[earlier] = b[later]
        for g, moved in zip(total, lag):
            g += moved
    return total, lag


def _lags(cell, dout, factors, packing, truncate, dgh):
    """Truncated BPTT through the fused cells: `truncated_lags` with one product of all M rows per lag.

    One last step back of the totals gives dgh (M, G H). Returns (the totals' dh (M, H), dstate0).
    """
    K, k_c, middle, W_T = factors
    H, N, n0 = dout.shape[1], packing.num_sequences, int(packing.batch_sizes[0])
    back, scratch = np.empty_like(dout), np.empty_like(dout)

    def one_step_back(lag):
        dc = lag[1] if cell == "lstm" else None  # overwritten with every row's dc_{t-1}
        _step_back(cell, lag[0], dc, K, k_c, middle, W_T, dgh, scratch, back)
        return (back, dc) if cell == "lstm" else (back,)
    upstream = (dout, np.zeros_like(dout)) if cell == "lstm" else (dout,)
    total, lag = truncated_lags(upstream, one_step_back, packing.prev_rows, truncate)
    # only the signals that have not yet travelled `truncate` steps go on to the initial state
    rest = [g[:n0] - v[:n0] for g, v in zip(total, lag)]
    dstate0 = [np.zeros((N, H), dtype=dout.dtype) for _ in rest]
    _step_back(cell, rest[0], rest[1] if cell == "lstm" else None, K[:n0], None if k_c is None else k_c[:n0],
               None if middle is None else middle[:n0], W_T, np.empty((n0, W_T.shape[0]), dtype=dout.dtype),
               scratch[:n0], dstate0[0][:n0])
    if cell == "lstm":
        dstate0[1][:n0] = rest[1]  # _step_back left dc_{-1} = dc_0 f_0 there
    _step_back(cell, total[0], total[1] if cell == "lstm" else None, K, k_c, middle, W_T, dgh, scratch)
    return total[0], tuple(dstate0)


def _previous_rows(values, first, packing):
    """Each packed row's value one step earlier, (M, H): `first` (n_0, H) for the rows of step 0, and for
    every later row the row `packing.prev_rows` names in values (M, H) (one gather, not T slices)."""
    n0 = len(first)
    previous = np.empty_like(values)
    previous[:n0] = first
    if packing.batch_sizes[-1] == n0:  # every sequence as long as the longest (stream windows): a shift
        previous[n0:] = values[:len(values) - n0]
    else:
        np.take(values, packing.prev_rows[n0:], axis=0, out=previous[n0:])
    return previous


# cell name -> the fused forward, backward and backward coefficients (plain cells only: no peepholes, no coupled gates)
FUSED = {"rnn": (rnn_fused_forward, rnn_fused_backward, rnn_fused_coefficients),
         "gru": (gru_fused_forward, gru_fused_backward, gru_fused_coefficients),
         "lstm": (lstm_fused_forward, lstm_fused_backward, lstm_fused_coefficients)}

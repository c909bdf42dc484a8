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
"""

import numpy as np

from rnnlm.nn.cells import GRUCache, LSTMCache, RNNCache


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


# cell name -> the fused forward, backward and backward coefficients (plain cells only: no peepholes, no coupled gates)
FUSED = {"rnn": (rnn_fused_forward, rnn_fused_backward, rnn_fused_coefficients),
         "gru": (gru_fused_forward, gru_fused_backward, gru_fused_coefficients),
         "lstm": (lstm_fused_forward, lstm_fused_backward, lstm_fused_coefficients)}

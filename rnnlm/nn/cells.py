"""Recurrent cells as forward/backward step pairs with named caches: Elman RNN, GRU, LSTM, Jordan.

Two shared pieces live here once: `input_projection` (x W_ih + b_ih, every cell's input side, and
rnnlm.nn.sequence's hoisted projection) and `gated_memory_forward` (the LSTM's gates-to-(h, c)
update, which the Tree-LSTM cells in rnnlm.models.tree_cells reuse), each with its backward.

Letters: N sequences in the batch, E input width, H hidden units. Row vectors throughout:
x (N, E), h (N, H), and a weight maps rows on the right, x W_ih with W_ih (E, G H), G the
number of gate blocks. The blocks are stacked in PyTorch's order (GRU r, z, n; LSTM i, f, g, o)
and both biases b_ih and b_hh are kept, so exporting to torch is a transpose
(torch's weight_ih_l0 is W_ih.T). The equations are torch's (torch.nn.RNN, GRU, LSTM docs).

Every cell has the same calling convention, so one time loop (rnnlm.nn.sequence) serves all:

    *_step_forward(x, state_prev, p, **options) -> (state, cache)
    *_step_backward(dstate, cache) -> (dx, dstate_prev, grads)

`state` is a tuple of (N, H) arrays: (h,) for rnn and gru, (h, c) for lstm, (y,) for
jordan. Its first entry is what the layer outputs (to the next layer or the softmax).
`p` is the cell's dict of parameters; `grads` has the same keys and shapes. A backward
never mutates its arguments or its cache, and is linear in `dstate` (which the truncated
BPTT in rnnlm.nn.sequence relies on).

Already-projected inputs: every cell also runs without "W_ih" (and "b_ih") in p, reading x as
the input projection x W_ih + b_ih itself (width G H). Its backward then returns, as dx, the
gradient of that projection and no W_ih, b_ih gradients. rnnlm.nn.sequence uses this to project
all of a layer's tokens in one matrix product before its time loop; `FastRNN` uses it to feed
the tutorial's U[:, x_t] columns in directly.

rnnlm.nn.sequence runs plain rnn, gru and lstm layers through rnnlm.nn.fused instead: the same
equations with buffers reused across steps (these step functions stay the readable definition,
and serve peepholes, coupled gates, Jordan, truncated BPTT and single steps).
"""

from typing import NamedTuple

import numpy as np

from rnnlm.nn.numerics import sigmoid


def input_projection(x, p):
    """The input side of every cell: x W_ih + b_ih, (N, G H) from x (N, E), W_ih (E, G H), b_ih (G H,).

    Without "W_ih" in p, x (N, G H) is that projection already (plus b_ih if present); a missing b_ih is
    zero. The one definition: the cells call it per step, rnnlm.nn.sequence once for a layer's M tokens.
    """
    if "W_ih" in p:
        return x @ p["W_ih"] + p["b_ih"]
    return x + p["b_ih"] if "b_ih" in p else x


def input_projection_backward(x, da, p, grads):
    """Backward of `input_projection` for its gradient da (N, G H): returns dx = da W_ih^T (N, E) (da itself
    without "W_ih"), and sets grads["W_ih"] = x^T da (E, G H), grads["b_ih"] = da summed over rows (G H,)
    for those of the two that p holds (x is not read without "W_ih")."""
    if "W_ih" in p:
        grads["W_ih"] = x.T @ da
    if "b_ih" in p:
        grads["b_ih"] = da.sum(axis=0)
    return da @ p["W_ih"].T if "W_ih" in p else da


# --------------------------------------------------------------------- Elman (torch.nn.RNN)

class RNNCache(NamedTuple):
    x: np.ndarray       # (N, E)
    h_prev: np.ndarray  # (N, H)
    h: np.ndarray       # (N, H)
    p: dict


def rnn_step_forward(x, state_prev, p):
    """Elman step, torch.nn.RNN with tanh:  h_t = tanh(x_t W_ih + b_ih + h_{t-1} W_hh + b_hh).

    x (N, E); state_prev (h_{t-1},) with h (N, H); p: W_ih (E, H), W_hh (H, H), b_ih (H,), b_hh (H,).
    Without "W_ih" in p the input is already projected (E = H), as in the tutorial's model
    (`FastRNN`), where x_t is the column U[:, x_t]; a missing bias is zero. Returns ((h_t,), cache).
    """
    (h_prev,) = state_prev
    a = input_projection(x, p) + h_prev @ p["W_hh"]  # a fresh (N, H) array: tanh may overwrite it
    if "b_hh" in p:
        a += p["b_hh"]
    h = np.tanh(a, out=a)
    return (h,), RNNCache(x, h_prev, h, p)


def rnn_step_backward(dstate, cache):
    """Backward of `rnn_step_forward`: da = dh (1 - h^2); dx = da W_ih^T; dh_prev = da W_hh^T.

    Returns (dx (N, E), (dh_prev,), grads): dW_ih = x^T da, dW_hh = h_prev^T da, db_ih = db_hh =
    da summed over the batch; only for the parameters the cache's p holds (dx = da without W_ih).
    """
    (dh,) = dstate
    x, h_prev, h, p = cache
    da = dh * (1 - h * h)  # (N, H)
    grads = {}
    dx = input_projection_backward(x, da, p, grads)
    grads["W_hh"] = h_prev.T @ da
    if "b_hh" in p:
        grads["b_hh"] = da.sum(axis=0)
    return dx, (da @ p["W_hh"].T,), grads


# --------------------------------------------------------------------- GRU (torch.nn.GRU)

class GRUCache(NamedTuple):
    x: np.ndarray       # (N, E)
    h_prev: np.ndarray  # (N, H)
    r: np.ndarray       # (N, H) reset gate
    z: np.ndarray       # (N, H) update gate
    n: np.ndarray       # (N, H) candidate
    hn: np.ndarray      # (N, H) h_{t-1} W_hn + b_hn, before the reset gate multiplies it
    p: dict


def gru_step_forward(x, state_prev, p):
    """GRU step, exactly torch.nn.GRU (blocks r, z, n in W_ih (E, 3H), W_hh (H, 3H), b_ih, b_hh (3H,)):

        r_t = sigmoid(x_t W_ir + b_ir + h_{t-1} W_hr + b_hr)
        z_t = sigmoid(x_t W_iz + b_iz + h_{t-1} W_hz + b_hz)
        n_t = tanh(x_t W_in + b_in + r_t * (h_{t-1} W_hn + b_hn))
        h_t = (1 - z_t) * n_t + z_t * h_{t-1}

    Note the reset gate multiplies (h W_hn + b_hn), bias included (torch's choice, not Cho et al.'s).
    Without "W_ih" in p, x (N, 3H) is x_t W_ih + b_ih already. Returns ((h_t,), cache).
    """
    (h_prev,) = state_prev
    H = h_prev.shape[1]
    gi = input_projection(x, p)  # (N, 3H)
    gh = h_prev @ p["W_hh"] + p["b_hh"]  # (N, 3H)
    r = sigmoid(gi[:, :H] + gh[:, :H])
    z = sigmoid(gi[:, H:2 * H] + gh[:, H:2 * H])
    hn = gh[:, 2 * H:]
    n = np.tanh(gi[:, 2 * H:] + r * hn)
    h = (1 - z) * n + z * h_prev
    return (h,), GRUCache(x, h_prev, r, z, n, hn, p)


def gru_step_backward(dstate, cache):
    """Backward of `gru_step_forward`. Returns (dx (N, E), (dh_prev,), grads with W_ih, W_hh, b_ih, b_hh).

    dn = dh (1 - z); dz = dh (h_prev - n); dan = dn (1 - n^2) (input side of n);
    dhn = dan r (hidden side of n); dr = dan hn; gate pre-activations ar = dr r (1 - r), az = dz z (1 - z).
    """
    (dh,) = dstate
    x, h_prev, r, z, n, hn, p = cache
    dn = dh * (1 - z)
    dz = dh * (h_prev - n)
    dan = dn * (1 - n * n)
    dar = dan * hn * r * (1 - r)
    daz = dz * z * (1 - z)
    dgi = np.concatenate([dar, daz, dan], axis=1)  # (N, 3H)
    dgh = np.concatenate([dar, daz, dan * r], axis=1)  # (N, 3H)
    grads = {}
    dx = input_projection_backward(x, dgi, p, grads)
    grads.update({"W_hh": h_prev.T @ dgh, "b_hh": dgh.sum(axis=0)})
    dh_prev = dgh @ p["W_hh"].T + dh * z
    return dx, (dh_prev,), grads


# --------------------------------------------------------------------- the LSTM's gated memory

class Forget(NamedTuple):
    f: np.ndarray       # (N, H) forget gate (1 - i when coupled)
    c_prev: np.ndarray  # (N, H) the memory it gates
    coupled: bool


class MemoryCache(NamedTuple):
    i: np.ndarray       # (N, H) input gate
    g: np.ndarray       # (N, H) cell candidate
    o: np.ndarray       # (N, H) output gate
    c: np.ndarray       # (N, H)
    tanh_c: np.ndarray  # (N, H)
    forgets: tuple      # one `Forget` per memory carried in
    w_co: np.ndarray    # (H,) the output gate's peephole, or None


def gated_memory_forward(a_i, a_g, a_o, forgets=(), w_co=None):
    """The LSTM's gated memory update, from gate pre-activations to (h, c); all arrays (N, H):

        i = sigmoid(a_i),  g = tanh(a_g),  f_k = sigmoid(a_fk)
        c = i * g + sum_k f_k * c_k
        o = sigmoid(a_o  [+ w_co * c]),  h = o * tanh(c)

    forgets: (a_fk, c_k) pairs, one per memory carried in: the LSTM's one c_{t-1}, the binary
    Tree-LSTM's two children (rnnlm.models.tree_cells), none for its leaf. a_fk None is the coupled
    gate f_k = 1 - i (CIFG). w_co (H,): the output gate's peephole on the new c; the peepholes of
    i and f on c_{t-1} are the caller's, inside its a_i, a_fk. Returns ((h, c), `MemoryCache`).
    """
    i = sigmoid(a_i)
    g = np.tanh(a_g)
    c = i * g
    kept = []
    for a_f, c_prev in forgets:
        f = 1 - i if a_f is None else sigmoid(a_f)
        c = c + f * c_prev
        kept.append(Forget(f, c_prev, a_f is None))
    o = sigmoid(a_o if w_co is None else a_o + w_co * c)
    tanh_c = np.tanh(c)
    return (o * tanh_c, c), MemoryCache(i, g, o, c, tanh_c, tuple(kept), w_co)


def gated_memory_backward(dh, dc, cache):
    """Backward of `gated_memory_forward`: dh, dc (N, H) the gradients reaching h and c from outside.

        da_o = dh tanh(c) o (1 - o);  dc_total = dc + dh o (1 - tanh(c)^2)  [+ da_o w_co]
        da_i = (dc_total g - sum over coupled k of dc_total c_k) i (1 - i);  da_g = dc_total i (1 - g^2)
        da_fk = dc_total c_k f_k (1 - f_k);  dc_k = dc_total f_k

    Returns (da_i, da_g, da_o, one (da_fk, dc_k) pair per forget, da_fk None when coupled), all (N, H).
    The peephole is the caller's parameter: its gradient is da_o c summed over the rows.
    """
    i, g, o, c, tanh_c, forgets, w_co = cache
    da_o = dh * tanh_c * o * (1 - o)
    dc = dc + dh * o * (1 - tanh_c * tanh_c)
    if w_co is not None:
        dc = dc + da_o * w_co  # o peeks at c
    di = dc * g
    dforgets = []
    for f, c_prev, coupled in forgets:
        df = dc * c_prev
        if coupled:
            di = di - df  # f = 1 - i
        dforgets.append((None if coupled else df * f * (1 - f), dc * f))
    return di * i * (1 - i), dc * i * (1 - g * g), da_o, dforgets


# --------------------------------------------------------------------- LSTM (torch.nn.LSTM + options)

class LSTMCache(NamedTuple):
    x: np.ndarray       # (N, E)
    h_prev: np.ndarray  # (N, H)
    c_prev: np.ndarray  # (N, H)
    i: np.ndarray       # (N, H) input gate
    f: np.ndarray       # (N, H) forget gate (1 - i when coupled)
    g: np.ndarray       # (N, H) cell candidate
    o: np.ndarray       # (N, H) output gate
    c: np.ndarray       # (N, H)
    tanh_c: np.ndarray  # (N, H)
    p: dict
    peephole: bool
    coupled: bool

    def memory(self):
        """The step's `MemoryCache` (kept flat here: rnnlm.nn.fused builds these caches too)."""
        w_co = self.p["w_co"] if self.peephole else None
        return MemoryCache(self.i, self.g, self.o, self.c, self.tanh_c, (Forget(self.f, self.c_prev, self.coupled),),
                           w_co)


def lstm_gate_names(coupled=False):
    """The gate blocks of W_ih / W_hh in order: torch's i, f, g, o; coupled gates drop f (f = 1 - i)."""
    return ("i", "g", "o") if coupled else ("i", "f", "g", "o")


def lstm_step_forward(x, state_prev, p, peephole=False, coupled=False):
    """LSTM step, torch.nn.LSTM (blocks i, f, g, o in W_ih (E, 4H), W_hh (H, 4H), b_ih, b_hh (4H,)):

        i_t = sigmoid(x_t W_ii + b_ii + h_{t-1} W_hi + b_hi  [+ w_ci * c_{t-1}])
        f_t = sigmoid(x_t W_if + b_if + h_{t-1} W_hf + b_hf  [+ w_cf * c_{t-1}])
        g_t = tanh(x_t W_ig + b_ig + h_{t-1} W_hg + b_hg)
        o_t = sigmoid(x_t W_io + b_io + h_{t-1} W_ho + b_ho  [+ w_co * c_t])
        c_t = f_t * c_{t-1} + i_t * g_t
        h_t = o_t * tanh(c_t)

    peephole (Gers & Schmidhuber 2000): the bracketed terms, with diagonal (H,) weights
    p["w_ci"], p["w_cf"], p["w_co"]; the output gate peeks at the new cell c_t.
    coupled (Greff et al. 2017, "CIFG"): f_t = 1 - i_t, so there is no f block (W_ih is
    (E, 3H) with blocks i, g, o) and no w_cf. Neither option exists in torch.
    Without "W_ih" in p, x (N, G H) is x_t W_ih + b_ih already.
    The pre-activations are this function's; from them on it is `gated_memory_forward`.
    state_prev = (h_{t-1}, c_{t-1}); returns ((h_t, c_t), cache).
    """
    h_prev, c_prev = state_prev
    H = h_prev.shape[1]
    a = input_projection(x, p) + h_prev @ p["W_hh"] + p["b_hh"]  # (N, G H)
    blocks = {k: a[:, j * H:(j + 1) * H] for j, k in enumerate(lstm_gate_names(coupled))}
    a_i, a_f = blocks["i"], blocks.get("f")  # a_f None: coupled, f = 1 - i
    if peephole:
        a_i = a_i + p["w_ci"] * c_prev
        a_f = None if coupled else a_f + p["w_cf"] * c_prev
    (h, c), m = gated_memory_forward(a_i, blocks["g"], blocks["o"], [(a_f, c_prev)], p["w_co"] if peephole else None)
    return (h, c), LSTMCache(x, h_prev, c_prev, m.i, m.forgets[0].f, m.g, m.o, c, m.tanh_c, p, peephole, coupled)


def lstm_step_backward(dstate, cache):
    """Backward of `lstm_step_forward`. dstate = (dh_t, dc_t) from later steps and layers.

    Returns (dx (N, E), (dh_prev, dc_prev), grads): W_ih, W_hh, b_ih, b_hh, plus w_ci, w_cf, w_co
    with peepholes (w_cf absent when coupled); without "W_ih" in p, dx (N, G H) is the gradient
    of the projected input and there are no W_ih, b_ih gradients. The gates' pre-activation
    gradients come from `gated_memory_backward`; the peepholes on c_{t-1} add to dc_prev.
    """
    dh, dc_in = dstate
    x, h_prev, c_prev, i, f, g, o, c, tanh_c, p, peephole, coupled = cache
    dai, dag, dao, ((daf, dc_prev),) = gated_memory_backward(dh, dc_in, cache.memory())
    grads = {}
    if peephole:
        dc_prev = dc_prev + dai * p["w_ci"]
        grads["w_ci"] = (dai * c_prev).sum(axis=0)
        if not coupled:
            dc_prev = dc_prev + daf * p["w_cf"]
            grads["w_cf"] = (daf * c_prev).sum(axis=0)
        grads["w_co"] = (dao * c).sum(axis=0)
    blocks = {"i": dai, "f": daf, "g": dag, "o": dao}
    da = np.concatenate([blocks[k] for k in lstm_gate_names(coupled)], axis=1)  # (N, G H)
    dx = input_projection_backward(x, da, p, grads)
    grads.update({"W_hh": h_prev.T @ da, "b_hh": da.sum(axis=0)})
    return dx, (da @ p["W_hh"].T, dc_prev), grads


# --------------------------------------------------------------------- Jordan

class JordanCache(NamedTuple):
    x: np.ndarray       # (N, E)
    y_prev: np.ndarray  # (N, H)
    h: np.ndarray       # (N, H)
    y: np.ndarray       # (N, H)
    p: dict


def jordan_step_forward(x, state_prev, p):
    """Jordan step: the recurrence feeds back the previous *output* y_{t-1}, not the hidden state.

        h_t = tanh(x_t W_ih + b_ih + y_{t-1} W_yh + b_yh)
        y_t = tanh(h_t W_hy + b_hy)

    W_ih (E, H), W_yh (H, H), W_hy (H, H), biases (H,). y_t is the layer's output (what the
    softmax, or the next layer, reads) and its state. Why y_t is this layer's own H-wide
    output and not the C-wide softmax: it keeps the cell self-contained like the others (the
    recurrence costs H x H, not C x H, per step, and the cell knows nothing of the loss),
    while keeping Jordan's defining structure (Jordan 1986; Wikipedia's "Jordan network":
    h_t = s(W x_t + U y_{t-1} + b), y_t = s(W_y h_t + b_y)). Stacked layers are stacked
    Jordan layers, each feeding its own output back.
    Without "W_ih" in p, x (N, H) is x_t W_ih + b_ih already.
    state_prev = (y_{t-1},); returns ((y_t,), cache).
    """
    (y_prev,) = state_prev
    h = np.tanh(input_projection(x, p) + y_prev @ p["W_yh"] + p["b_yh"])
    y = np.tanh(h @ p["W_hy"] + p["b_hy"])
    return (y,), JordanCache(x, y_prev, h, y, p)


def jordan_step_backward(dstate, cache):
    """Backward of `jordan_step_forward`. Returns (dx (N, E), (dy_prev,), grads of all six parameters)."""
    (dy,) = dstate
    x, y_prev, h, y, p = cache
    day = dy * (1 - y * y)
    dah = (day @ p["W_hy"].T) * (1 - h * h)
    grads = {}
    dx = input_projection_backward(x, dah, p, grads)
    grads.update({"W_yh": y_prev.T @ dah, "b_yh": dah.sum(axis=0), "W_hy": h.T @ day, "b_hy": day.sum(axis=0)})
    return dx, (dah @ p["W_yh"].T,), grads


# --------------------------------------------------------------------- registry

# cell name -> (step_forward, step_backward, number of state arrays)
CELLS = {
    "rnn": (rnn_step_forward, rnn_step_backward, 1),
    "gru": (gru_step_forward, gru_step_backward, 1),
    "lstm": (lstm_step_forward, lstm_step_backward, 2),
    "jordan": (jordan_step_forward, jordan_step_backward, 1),
}


def cell_param_shapes(cell, input_size, hidden_size, peephole=False, coupled=False):
    """{name: shape} of one layer's parameters, in a fixed order."""
    E, H = input_size, hidden_size
    if cell == "jordan":
        return {"W_ih": (E, H), "W_yh": (H, H), "b_ih": (H,), "b_yh": (H,), "W_hy": (H, H), "b_hy": (H,)}
    G = {"rnn": 1, "gru": 3, "lstm": len(lstm_gate_names(coupled))}[cell]
    shapes = {"W_ih": (E, G * H), "W_hh": (H, G * H), "b_ih": (G * H,), "b_hh": (G * H,)}
    if cell == "lstm" and peephole:
        shapes["w_ci"] = (H,)
        if not coupled:
            shapes["w_cf"] = (H,)
        shapes["w_co"] = (H,)
    return shapes

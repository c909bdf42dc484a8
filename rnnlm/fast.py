"""`FastRNN`: the tutorial's Elman RNN language model, computed for a minibatch at once.

Same model, same parameters and same column orientation as `rnnlm.reference.RNNNumpy`:

    s_t = tanh(U[:, x_t] + W s_{t-1})        U: (H, C), W: (H, H), s_{-1} = 0
    o_t = softmax(V s_t)                      V: (C, H)

Letters: N sentences in a batch, T the longest of them, M the real (unpadded) tokens
of the batch, K the distinct words among them, C vocabulary size, H hidden size.

What makes it fast, in the order the time is spent:

1. Output layer. The hidden states of all M real tokens are gathered into one (M, H)
   matrix, so padding costs no softmax, and the three C x H products (logits, dV, dS)
   run as large float32 matrix multiplies over chunks of `softmax_rows` tokens (about
   4.8 MFLOP per token at C = 8000, H = 100). Only two passes touch the (M, C) block
   besides those products: its matmul output and one exp. The softmax is never
   normalised explicitly: with E = exp(logits) and z = E 1 its row sums,

       dV = (E / z)^T S - onehot(y)^T S        dS = (E / z) V - V[y]

   so the 1/z is a cheap (M, H) scaling, the onehot terms are row gathers and adds,
   and z comes out of the dS product as an extra column (E [V | 1]). The exp is
   computed as exp2 of log2(e)-scaled logits, which NumPy runs ~2.5x faster in float32.
   The max-subtraction pass of a stable softmax is skipped when a bound on |V s_t|
   proves exp cannot overflow (see `_EXP_SAFE`), and done otherwise.
2. Recurrence. Sentences are sorted by length and laid out time-major, so at step t
   the sentences still running are the first n_t rows (PyTorch's packed sequences):
   the loop over time touches no padding at all.
3. Truncated BPTT. In `RNNNumpy.bptt` the error at output t flows back through steps
   t, t-1, ..., max(0, t - bptt_truncate). Writing e_j for the error entering the
   hidden layer at step j, and P for one step back (delta -> (W^T delta) * (1 - s^2)),
   the total error at step j is g_j = sum_{k=0..truncate} P^k e_{j+k}. We compute it
   lag by lag, each lag one (N T, H) x (H, H) product over all steps at once. With no
   truncation (None, or truncate >= T - 1) it is the usual recurrence
   g_j = e_j + P g_{j+1}, one sweep.
4. dU is sparse: column w of dU is the sum of g_j over the tokens whose input is word w.
   We sort the M tokens by word and add each run with `np.add.reduceat`, producing only
   the K columns of the words seen; no one-hot vector or dense (H, C) update is built.

Memory for a batch is bounded by softmax_rows x C (the logits block) plus N T H for
the states; `total_loss` walks a corpus in batches, so it never holds corpus x C.

Public API
----------
FastRNN(word_dim, hidden_dim=100, bptt_truncate=4, seed=None, dtype=np.float32)
    .U (H, C), .V (C, H), .W (H, H); .params {"U", "V", "W"}; .config -> ModelConfig
    .loss_and_gradients(X, Y, sparse=False) -> (total_loss, grads)
    .total_loss(X, Y, batch_size=64) -> float;  .loss_per_word(X, Y) -> float
    .start_state(n) -> (n, H);  .step(state, x) -> (logits (n, C), new_state)
    FastRNN.from_reference(model, dtype=np.float32);  .to_reference() -> RNNNumpy
"""

from typing import NamedTuple

import numpy as np

from .batching import num_targets, segment_sum
from .config import ModelConfig
from .inputs import check_ids, check_pairs
from .optim import SparseGradient
from .reference import RNNNumpy

# exp(x) of float32 neither overflows (summed over C = 8000 words) nor underflows to
# zero for |x| <= 40, so logits bounded by this need no max-subtraction pass.
_EXP_SAFE = 40.0
_LOG2E = 1.4426950408889634  # log2(e)
_LN2 = 0.6931471805599453  # ln(2) = 1 / log2(e)


class FastRNN:
    """The tutorial's RNN language model, batched and float32 by default.

    word_dim: C, the vocabulary size. hidden_dim: H. bptt_truncate: how many steps back
    the error at each output flows, exactly as in `RNNNumpy.bptt` (0 = the step itself
    only; None = full BPTT). seed: the same seed gives the same parameters as
    `RNNNumpy(..., seed=seed)` (same draws, cast to `dtype`). dtype: np.float32 for
    speed, np.float64 for tests. softmax_rows: tokens per output-layer chunk; it sets
    the memory bound (softmax_rows x C) and barely changes speed between 256 and 2048.
    """

    def __init__(self, word_dim, hidden_dim=100, bptt_truncate=4, seed=None, dtype=np.float32,
                 softmax_rows=1024):
        ModelConfig(vocab_size=word_dim, hidden_size=hidden_dim, bptt_truncate=bptt_truncate)
        self.word_dim = word_dim
        self.hidden_dim = hidden_dim
        self.bptt_truncate = bptt_truncate
        self.dtype = np.dtype(dtype)
        self.softmax_rows = int(softmax_rows)
        # the reference's draws, so one seed means one model in both implementations
        ref = RNNNumpy(word_dim, hidden_dim, bptt_truncate=0, seed=seed)
        self.U = ref.U.astype(self.dtype)
        self.V = ref.V.astype(self.dtype)
        self.W = ref.W.astype(self.dtype)

    # ----------------------------------------------------------------- parameters

    @property
    def params(self):
        """{"U": (H, C), "V": (C, H), "W": (H, H)}: the arrays themselves, so in-place updates stick."""
        return {"U": self.U, "V": self.V, "W": self.W}

    @property
    def config(self):
        return ModelConfig(vocab_size=self.word_dim, hidden_size=self.hidden_dim,
                           bptt_truncate=self.bptt_truncate, cell="rnn")

    @classmethod
    def from_reference(cls, model, dtype=np.float32):
        """A FastRNN holding `model`'s U, V, W (copied, cast to `dtype`) and truncation."""
        fast = cls(model.word_dim, model.hidden_dim, bptt_truncate=model.bptt_truncate, dtype=dtype)
        for name, value in model.params.items():
            fast.params[name][...] = value
        return fast

    def to_reference(self):
        """An `RNNNumpy` (float64) with this model's parameters and truncation."""
        ref = RNNNumpy(self.word_dim, self.hidden_dim, bptt_truncate=self.bptt_truncate)
        for name, value in self.params.items():
            ref.params[name][...] = value
        return ref

    # ----------------------------------------------------------------- generation

    def start_state(self, n):
        """The initial hidden state s_{-1} = 0 for n sequences: (n, H)."""
        return np.zeros((n, self.hidden_dim), dtype=self.dtype)

    def step(self, state, x):
        """One time step for n sequences: s_t = tanh(U[:, x_t] + W s_{t-1}), logits = V s_t.

        state: (n, H) s_{t-1}; x: (n,) int word ids. Returns (logits (n, C), s_t (n, H));
        the logits are pre-softmax scores.
        """
        check_ids(x, self.config.vocab_size)
        x = np.asarray(x, dtype=np.int64)
        new_state = np.tanh(self.U.T[x] + np.asarray(state, dtype=self.dtype) @ self.W.T)  # (n, H)
        return new_state @ self.V.T, new_state

    # ----------------------------------------------------------------- losses

    def loss_and_gradients(self, X, Y, sparse=False):
        """Summed cross-entropy over the sentences and its gradients (truncated BPTT).

        X, Y: sequences of N (T_n,) int arrays. Returns (total_loss, grads): total_loss
        a float, equal to summing `RNNNumpy.calculate_total_loss` over the sentences;
        grads {"U": (H, C), "V": (C, H), "W": (H, H)}, equal to summing `RNNNumpy.bptt`
        over them (the tutorial's list [dU, dV, dW] is `[grads[k] for k in "UVW"]`).
        sparse: grads["U"] becomes a `SparseGradient` over the K words seen, values (H, K).
        """
        check_pairs(X, Y, self.config.vocab_size)
        batch = self._forward(X, Y)
        loss, dV, e_real = self._output_layer(batch, gradients=True)
        g_real = self._backward(batch, e_real)
        dW = (g_real.T @ batch.s_prev_real()).astype(self.dtype, copy=False)  # (H, H)
        words, dU_cols = segment_sum(batch.x_real, g_real)  # (K,), (K, H)
        dU = SparseGradient(words, np.ascontiguousarray(dU_cols.T), axis=1)
        if not sparse:
            dU = dU.to_dense(self.U.shape, self.dtype)
        return loss, {"U": dU, "V": dV, "W": dW}

    def total_loss(self, X, Y, batch_size=64):
        """Cross-entropy summed over every word, computed in batches of `batch_size` sentences.

        Sentences are sorted by length first so batches carry little padding; memory is
        bounded by batch_size x T x H plus softmax_rows x C, never corpus x C.
        """
        check_pairs(X, Y, self.config.vocab_size)
        lengths = np.array([len(y) for y in Y])
        order = np.argsort(lengths, kind="stable")
        total = 0.0
        for start in range(0, len(order), batch_size):
            chunk = order[start:start + batch_size]
            batch = self._forward([X[i] for i in chunk], [Y[i] for i in chunk])
            total += self._output_layer(batch, gradients=False)[0]
        return total

    def loss_per_word(self, X, Y, batch_size=64):
        """Mean cross-entropy per predicted word (the tutorial's `calculate_loss`)."""
        return self.total_loss(X, Y, batch_size=batch_size) / num_targets(Y)

    # ----------------------------------------------------------------- internals

    def _forward(self, X, Y):
        """Run the recurrence over a ragged batch; returns a `_Batch` holding every s_t."""
        if len(X) != len(Y):
            raise ValueError(f"X has {len(X)} sentences but Y has {len(Y)}")
        lengths = np.array([len(x) for x in X], dtype=np.int64)
        if np.any(lengths != np.array([len(y) for y in Y], dtype=np.int64)):
            raise ValueError("each X[n] must have the same length as Y[n]")
        # longest first, so the sentences still running at step t are rows 0..n_t-1
        order = np.argsort(-lengths, kind="stable")
        lengths = lengths[order]
        N, T, H = len(X), int(lengths.max(initial=0)), self.hidden_dim
        active = (lengths[None, :] > np.arange(T)[:, None]).sum(axis=1)  # (T,) n_t = #{n: len_n > t}
        x = np.zeros((T, N), dtype=np.int64)  # time-major; padding reads word 0, never used
        y = np.zeros((T, N), dtype=np.int64)
        for n, i in enumerate(order):
            x[:lengths[n], n] = X[i]
            y[:lengths[n], n] = Y[i]
        # s[0] is the zero initial state s_{-1}; s[t + 1] is s_t
        s = np.zeros((T + 1, N, H), dtype=self.dtype)
        inputs = self.U.T[x]  # (T, N, H): column x_t of U for every token
        WT = self.W.T
        for t in range(T):
            n = active[t]
            h = s[t + 1, :n]
            np.matmul(s[t, :n], WT, out=h)
            h += inputs[t, :n]
            np.tanh(h, out=h)
        real = np.flatnonzero(np.arange(N)[None, :] < active[:, None])  # (M,) into the (T, N) grid
        return _Batch(s=s, active=active, real=real, x_real=x.reshape(-1)[real], y_real=y.reshape(-1)[real])

    def _output_layer(self, batch, gradients):
        """Loss of the M real tokens and, with `gradients`, (dV, e): e (M, H) the error entering each s_t's tanh."""
        H, C = self.hidden_dim, self.word_dim
        s_real = batch.s_real()  # (M, H)
        M = len(s_real)
        # exp2(log2(e) x) = exp(x), and NumPy's float32 exp2 runs about 2.5x faster than its exp
        V2T = (self.V * self.dtype.type(_LOG2E)).T  # (H, C)
        # one bound for the whole batch: |V_c . s| <= max_c |V_c| max_m |s_m|
        bound = float(np.sqrt(np.max(np.einsum("ch,ch->c", self.V, self.V), initial=0.0))
                      * np.sqrt(np.max(np.einsum("mh,mh->m", s_real, s_real), initial=0.0)))
        shift = bound > _EXP_SAFE
        rows = max(1, min(self.softmax_rows, M))
        block = np.empty((rows, C), dtype=self.dtype)
        loss = 0.0
        if gradients:
            dV = np.zeros_like(self.V)
            # [V | 1]: one product gives both E V and the softmax denominators z = E 1
            V1 = np.ones((C, H + 1), dtype=self.dtype)
            V1[:, :H] = self.V
            ds1 = np.empty((M, H + 1), dtype=self.dtype)
        for a in range(0, M, rows):
            b = min(M, a + rows)
            m = b - a
            logits = block[:m]
            np.matmul(s_real[a:b], V2T, out=logits)  # (m, C): log2(e) V s_t
            if shift:
                logits -= logits.max(axis=1, keepdims=True)
            loss -= _LN2 * float(np.sum(logits[np.arange(m), batch.y_real[a:b]], dtype=np.float64))
            np.exp2(logits, out=logits)  # E = exp(V s_t), unnormalised softmax
            if gradients:
                np.matmul(logits, V1, out=ds1[a:b])  # (m, H + 1): [E V | z]
                z = ds1[a:b, H]
            else:
                z = logits.sum(axis=1)
            loss += float(np.sum(np.log(z.astype(np.float64))))
            if gradients:
                # the softmax o_t = E / z: divide the (m, H) products, never the (m, C) block
                r = (1.0 / z)[:, None]  # (m, 1)
                ds1[a:b, :H] *= r
                dV += logits.T @ (s_real[a:b] * r)  # (C, H)
        if not gradients:
            return loss, None, None
        # the -onehot(y_t) half of o_t - onehot(y_t): row y_t of dV loses s_t, and dS_t loses V[y_t]
        targets, s_sums = segment_sum(batch.y_real, s_real)
        dV[targets] -= s_sums
        ds = ds1[:, :H]
        ds -= self.V[batch.y_real]
        ds *= 1.0 - s_real * s_real  # through the tanh: e_t = V^T (o_t - y_t) * (1 - s_t^2)
        return loss, dV, ds

    def _backward(self, batch, e_real):
        """Total error g_j at each real token's hidden pre-activation, (M, H), with the truncation."""
        s, active = batch.s, batch.active
        T, N, H = s.shape[0] - 1, s.shape[1], s.shape[2]
        e = np.zeros((T, N, H), dtype=self.dtype)
        e.reshape(-1, H)[batch.real] = e_real
        tanh_grad = 1.0 - s[1:] * s[1:]  # (T, N, H): 1 - s_t^2, 1 on padding (where errors are 0)
        truncate = self.bptt_truncate
        if truncate is None or truncate >= T - 1:
            # g_j = e_j + (W^T g_{j+1}) * (1 - s_j^2): one sweep back, no padding touched
            g = e
            for t in range(T - 2, -1, -1):
                n = active[t + 1]
                g[t, :n] += (g[t + 1, :n] @ self.W) * tanh_grad[t, :n]
        else:
            # g_j = sum_{k=0..truncate} P^k e_{j+k}: lag k's term is lag k-1's moved one step back
            g = e.copy()
            lag = e
            for k in range(1, truncate + 1):
                steps = T - k  # lag k reaches steps 0..T-1-k only
                moved = (lag[1:steps + 1].reshape(-1, H) @ self.W).reshape(steps, N, H)  # (T-k, N, H)
                moved *= tanh_grad[:steps]
                g[:steps] += moved
                lag = moved
        return g.reshape(-1, H)[batch.real]


class _Batch(NamedTuple):
    """A forward pass over one ragged batch, time-major, longest sentence first.

    s: (T + 1, N, H), s[0] = 0 the initial state and s[t + 1] = s_t (zero on padding).
    Unlike RNNNumpy's s[-1] trick, the zero state comes first here, so s[:-1] lines up
    every s_{t-1} with its s_t = s[1:].
    active: (T,) n_t, how many sentences are still running at step t.
    real: (M,) flat indices of the real tokens in the (T, N) grid.
    x_real, y_real: (M,) their input and target words.
    """

    s: np.ndarray
    active: np.ndarray
    real: np.ndarray
    x_real: np.ndarray
    y_real: np.ndarray

    def s_real(self):
        return self.s[1:].reshape(-1, self.s.shape[2])[self.real]  # (M, H): s_t of each real token

    def s_prev_real(self):
        return self.s[:-1].reshape(-1, self.s.shape[2])[self.real]  # (M, H): s_{t-1} of each real token


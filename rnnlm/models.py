"""`LanguageModel`: embedding -> L stacked recurrent layers (rnn, gru, lstm or jordan) -> affine -> softmax.

Letters: N sentences, T the longest, C vocabulary, E embedding width, H hidden units, L layers,
M real tokens in a batch. Row vectors: logits = h W_out + b_out with W_out (H, C).

Parameters (`model.params`, float arrays; the gradients from `loss_and_gradients` use the same keys):

    "embedding"          (C, E)   row w is word w's input vector
    "l{k}.W_ih"          (E or H, G H)   layer k's input weights (layer 0 reads E, others H)
    "l{k}.W_hh"          (H, G H)        recurrent weights; "l{k}.b_ih", "l{k}.b_hh" (G H,)
      G = 1 (rnn), 3 (gru: r, z, n), 4 (lstm: i, f, g, o) or 3 (lstm coupled: i, g, o)
    "l{k}.w_ci", "l{k}.w_cf", "l{k}.w_co"   (H,)  LSTM peepholes (no w_cf when coupled)
    jordan: "l{k}.W_ih", "l{k}.b_ih", "l{k}.W_yh", "l{k}.b_yh", "l{k}.W_hy", "l{k}.b_hy"
    "W_out" (H, C), "b_out" (C,)

`torch_state_dict()` renames and transposes these to nn.Embedding ("embedding.weight"),
nn.RNN/GRU/LSTM(num_layers=L, batch_first=True) ("rnn.weight_ih_l{k}" = W_ih.T, ...) and
nn.Linear ("out.weight" = W_out.T, "out.bias").
"""

import numpy as np

from .batching import num_targets, pad_batch
from .cells import CELLS, cell_param_shapes
from .config import ModelConfig
from .inputs import check_ids, check_pairs
from .errors import ConfigError
from .optim import SparseGradient
from .sequence import embedding_backward, layer_backward, layer_forward, softmax_loss


class LanguageModel:
    """A word- or character-level language model with stacked recurrent layers.

    vocab_size C; hidden_size H; cell "rnn" (Elman, torch.nn.RNN with both biases), "gru",
    "lstm" or "jordan" (see rnnlm.cells); num_layers L; embed_size E (None: E = H);
    bptt_truncate: None for full BPTT, or k: the error entering a layer at step t flows back
    at most k steps (the tutorial's meaning; see rnnlm.sequence); peephole / coupled_gates:
    LSTM options; seed; dtype (float32 for training, float64 for checks).
    Initialisation follows torch: recurrent and output weights U(-1/sqrt(H), 1/sqrt(H)),
    the embedding N(0, 1) scaled by 1/sqrt(E), the output bias 0, so the first loss per word is about log C.
    """

    def __init__(self, vocab_size, hidden_size, cell="rnn", num_layers=1, embed_size=None, bptt_truncate=None,
                 peephole=False, coupled_gates=False, seed=None, dtype=np.float32):
        self._config = ModelConfig(vocab_size=vocab_size, hidden_size=hidden_size, bptt_truncate=bptt_truncate,
                                   cell=cell, num_layers=num_layers, embed_size=embed_size, peephole=peephole,
                                   coupled_gates=coupled_gates)
        self.dtype = np.dtype(dtype)
        self.softmax_rows = 1024
        rng = np.random.default_rng(seed)
        C, H, E, L = vocab_size, hidden_size, self.embed_size, num_layers
        bound = 1.0 / np.sqrt(H)
        params = {"embedding": rng.standard_normal((C, E)) / np.sqrt(E)}
        for k in range(L):
            for name, shape in self._layer_shapes(k).items():
                params[f"l{k}.{name}"] = rng.uniform(-bound, bound, shape)
        params["W_out"] = rng.uniform(-bound, bound, (H, C))
        params["b_out"] = np.zeros(C)
        self.params = {k: v.astype(self.dtype) for k, v in params.items()}

    @classmethod
    def from_config(cls, config, seed=None, dtype=np.float32):
        """A fresh model of `config`'s shape (a `ModelConfig`)."""
        return cls(config.vocab_size, config.hidden_size, cell=config.cell, num_layers=config.num_layers,
                   embed_size=config.embed_size, bptt_truncate=config.bptt_truncate, peephole=config.peephole,
                   coupled_gates=config.coupled_gates, seed=seed, dtype=dtype)

    # ----------------------------------------------------------------- shape

    @property
    def config(self):
        return self._config

    @property
    def embed_size(self):
        return self._config.embed_size or self._config.hidden_size

    def _layer_shapes(self, k):
        c = self._config
        return cell_param_shapes(c.cell, self.embed_size if k == 0 else c.hidden_size, c.hidden_size,
                                 peephole=c.peephole, coupled=c.coupled_gates)

    def _layer(self, k):
        """Layer k's parameters under the cell's own names (W_ih, ...): views, not copies."""
        return {name: self.params[f"l{k}.{name}"] for name in self._layer_shapes(k)}

    def _options(self):
        c = self._config
        return {"peephole": c.peephole, "coupled": c.coupled_gates} if c.cell == "lstm" else {}

    # ----------------------------------------------------------------- generation

    def start_state(self, n):
        """Zero initial state for n sequences: a tuple over layers of the cell's state tuple of (n, H) arrays."""
        nstate = CELLS[self._config.cell][2]
        H = self._config.hidden_size
        return tuple(tuple(np.zeros((n, H), dtype=self.dtype) for _ in range(nstate))
                     for _ in range(self._config.num_layers))

    def step(self, state, x):
        """One time step for n sequences: x (n,) int word ids -> (logits (n, C) pre-softmax, new state)."""
        check_ids(x, self.config.vocab_size)
        step_forward = CELLS[self._config.cell][0]
        inp = self.params["embedding"][np.asarray(x, dtype=np.int64)]  # (n, E)
        new_state = []
        for k, layer_state in enumerate(state):
            layer_state, _ = step_forward(inp, layer_state, self._layer(k), **self._options())
            new_state.append(layer_state)
            inp = layer_state[0]
        return inp @ self.params["W_out"] + self.params["b_out"], tuple(new_state)

    # ----------------------------------------------------------------- losses

    def _forward(self, X, Y):
        """Padded batch through every layer: (x, y, mask, caches per layer, top outputs (N, T, H))."""
        x, y, mask = pad_batch(X, Y)
        inp = self.params["embedding"][x]  # (N, T, E)
        caches = []
        for k, state0 in enumerate(self.start_state(len(X))):
            inp, layer_caches, _ = layer_forward(self._config.cell, inp, state0, self._layer(k), **self._options())
            caches.append(layer_caches)
        return x, y, mask.astype(bool), caches, inp

    def loss_and_gradients(self, X, Y, sparse=False):
        """Cross-entropy summed over every word of every sentence, and its gradients.

        X, Y: sequences of N (T_n,) int arrays (ragged; padded internally, padding changes nothing).
        Returns (total_loss: float, grads: dict keyed like `params`). sparse: grads["embedding"]
        is a `SparseGradient` over the K distinct input words (values (K, E), axis 0).
        """
        check_pairs(X, Y, self.config.vocab_size)
        if sum(len(s) for s in X) == 0:  # nothing to predict (no sentences, or only empty ones)
            grads = {k: np.zeros_like(v) for k, v in self.params.items()}
            if sparse:
                grads["embedding"] = SparseGradient(np.zeros(0, np.int64), grads["embedding"][:0], axis=0)
            return 0.0, grads
        x, y, mask, caches, top = self._forward(X, Y)
        N, T, H = top.shape
        real = mask.reshape(-1)
        loss, dh_real, dW, db = softmax_loss(top.reshape(-1, H)[real], y.reshape(-1)[real], self.params["W_out"],
                                             self.params["b_out"], rows=self.softmax_rows)
        dout = np.zeros((N * T, H), dtype=self.dtype)
        dout[real] = dh_real
        return loss, self._backward(x, real, dout.reshape(N, T, H), caches, {"W_out": dW, "b_out": db}, sparse)

    def _backward(self, x, real, dout, caches, grads, sparse):
        """The layers' BPTT and the embedding's sparse gradient, from the error dout (N, T, H) at the top outputs.

        x (N, T) inputs; real (N T,) bool: the tokens whose inputs get an embedding gradient;
        grads: the output layer's gradients, completed here into a dict keyed like `params`.
        """
        c = self._config
        N, T, _ = dout.shape
        for k in range(c.num_layers - 1, -1, -1):
            dout, layer_grads, _ = layer_backward(c.cell, dout, caches[k], truncate=c.bptt_truncate)
            for name, g in layer_grads.items():
                grads[f"l{k}.{name}"] = g
        words, rows = embedding_backward(x.reshape(-1)[real], dout.reshape(N * T, -1)[real])
        demb = SparseGradient(words, rows.astype(self.dtype, copy=False), axis=0)
        grads["embedding"] = demb if sparse else demb.to_dense(self.params["embedding"].shape, self.dtype)
        return {k: grads[k] for k in self.params}

    # ----------------------------------------------------------------- streams (carried state)

    def _window_forward(self, X, state):
        """(B, T) window from `state` through every layer: (x, top outputs (B, T, H), caches, next state)."""
        x = np.asarray(X, dtype=np.int64)
        if x.ndim != 2 or len(state) != self._config.num_layers:
            raise ConfigError(f"a window is a (streams, steps) array with a state per layer; got shape {x.shape}")
        inp = self.params["embedding"][x]  # (B, T, E)
        caches, next_state = [], []
        for k, state0 in enumerate(state):
            inp, layer_caches, final = layer_forward(self._config.cell, inp, tuple(state0), self._layer(k),
                                                     **self._options())
            caches.append(layer_caches)
            next_state.append(tuple(np.array(s, dtype=self.dtype) for s in final))  # detached copies
        return x, inp, caches, tuple(next_state)

    def window_loss_and_gradients(self, X, Y, state, sparse=False):
        """Summed loss and gradients of one window of B parallel streams, starting from a carried state.

        X, Y: (B, T) int, no padding (Y[b, t] is the token after X[b, t]); state: what
        `start_state(B)` returns or a previous call's next_state. Gradients stop at the
        window's start (truncated BPTT across windows; inside it, `bptt_truncate` applies).
        Returns (loss_sum, grads keyed like params, next_state: plain arrays, detached).
        """
        x, top, caches, next_state = self._window_forward(X, state)
        B, T, H = top.shape
        loss, dh, dW, db = softmax_loss(top.reshape(-1, H), np.asarray(Y, dtype=np.int64).reshape(-1),
                                        self.params["W_out"], self.params["b_out"], rows=self.softmax_rows)
        real = np.ones(B * T, dtype=bool)
        grads = self._backward(x, real, dh.reshape(B, T, H), caches, {"W_out": dW, "b_out": db}, sparse)
        return loss, grads, next_state

    def window_loss(self, X, Y, state):
        """Summed loss of one (B, T) window from a carried state: (loss_sum, next_state). No caches kept for BPTT."""
        _, top, _, next_state = self._window_forward(X, state)
        H = top.shape[2]
        loss = softmax_loss(top.reshape(-1, H), np.asarray(Y, dtype=np.int64).reshape(-1), self.params["W_out"],
                            self.params["b_out"], rows=self.softmax_rows, gradients=False)[0]
        return loss, next_state

    def total_loss(self, X, Y, batch_size=64):
        """Cross-entropy summed over every word, in batches of `batch_size` sentences (sorted by length).

        Memory is bounded by batch_size x T x H plus softmax_rows x C, never corpus x C.
        """
        check_pairs(X, Y, self.config.vocab_size)
        order = np.argsort([len(y) for y in Y], kind="stable")
        total = 0.0
        for a in range(0, len(order), batch_size):
            chunk = order[a:a + batch_size]
            x, y, mask, _, top = self._forward([X[i] for i in chunk], [Y[i] for i in chunk])
            real = mask.reshape(-1)
            total += softmax_loss(top.reshape(-1, top.shape[2])[real], y.reshape(-1)[real], self.params["W_out"],
                                  self.params["b_out"], rows=self.softmax_rows, gradients=False)[0]
        return total

    def loss_per_word(self, X, Y, batch_size=64):
        """Mean cross-entropy per predicted word."""
        return self.total_loss(X, Y, batch_size=batch_size) / num_targets(Y)

    # ----------------------------------------------------------------- torch export

    def torch_state_dict(self, params_or_grads=None):
        """Parameters (or a gradient dict keyed like them) under torch's names and layouts, as NumPy arrays.

        Names: "embedding.weight" (C, E); "rnn.weight_ih_l{k}" (G H, E or H), "rnn.weight_hh_l{k}" (G H, H),
        "rnn.bias_ih_l{k}", "rnn.bias_hh_l{k}" (G H,); "out.weight" (C, H), "out.bias" (C,): load them into
        nn.Embedding, nn.RNN/GRU/LSTM(num_layers=L, batch_first=True) and nn.Linear. Raises ConfigError for
        the jordan cell and the LSTM options, which torch does not have.
        """
        c = self._config
        if c.cell == "jordan":
            raise ConfigError("a Jordan network has no PyTorch counterpart, so it cannot be exported")
        if c.peephole or c.coupled_gates:
            raise ConfigError("LSTM peephole connections and coupled gates have no PyTorch counterpart, "
                              "so this model cannot be exported")
        source = self.params if params_or_grads is None else params_or_grads

        def dense(name):
            v = source[name]
            return v.to_dense(self.params[name].shape, self.dtype) if isinstance(v, SparseGradient) else np.asarray(v)

        out = {"embedding.weight": dense("embedding").copy()}
        for k in range(c.num_layers):
            out[f"rnn.weight_ih_l{k}"] = dense(f"l{k}.W_ih").T.copy()
            out[f"rnn.weight_hh_l{k}"] = dense(f"l{k}.W_hh").T.copy()
            out[f"rnn.bias_ih_l{k}"] = dense(f"l{k}.b_ih").copy()
            out[f"rnn.bias_hh_l{k}"] = dense(f"l{k}.b_hh").copy()
        out["out.weight"] = dense("W_out").T.copy()
        out["out.bias"] = dense("b_out").copy()
        return out

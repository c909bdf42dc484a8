"""`LanguageModel`: embedding -> L stacked recurrent layers (rnn, gru, lstm or jordan) -> affine -> softmax.

Letters: N sentences, T the longest, C vocabulary, E embedding width, H hidden units, L layers,
M real tokens in a batch. Row vectors: logits = h W_out + b_out with W_out (H, C).

Parameters (`model.params`, float arrays; the gradients from `total_loss_and_gradients` use the same keys):

    "embedding"          (C, E)   row w is word w's input vector
    "l{k}.W_ih"          (E or H, G H)   layer k's input weights (layer 0 reads E, others H)
    "l{k}.W_hh"          (H, G H)        recurrent weights; "l{k}.b_ih", "l{k}.b_hh" (G H,)
      G = 1 (rnn), 3 (gru: r, z, n), 4 (lstm: i, f, g, o) or 3 (lstm coupled: i, g, o)
    "l{k}.w_ci", "l{k}.w_cf", "l{k}.w_co"   (H,)  LSTM peepholes (no w_cf when coupled)
    jordan: "l{k}.W_ih", "l{k}.b_ih", "l{k}.W_yh", "l{k}.b_yh", "l{k}.W_hy", "l{k}.b_hy"
    "W_out" (H, C), "b_out" (C,)    (no "W_out" with tie_weights: the output matrix is embedding.T)
    class softmax only: "W_class" (H, K), "b_class" (K,)   P(class | h) = softmax(h W_class + b_class)

The forward and backward are `rnnlm.nn.sequence`'s packed recurrence (no padding computed) and
`rnnlm.nn.output`'s output layer, the same code `FastRNN` runs.

`torch_state_dict()` renames and transposes these to nn.Embedding ("embedding.weight"),
nn.RNN/GRU/LSTM(num_layers=L, batch_first=True) ("rnn.weight_ih_l{k}" = W_ih.T, ...) and
nn.Linear ("out.weight" = W_out.T, "out.bias"); tied, "out.weight" is "embedding.weight" (equal
arrays under both names, as torch's state_dict gives them for word_language_model's tied model).

Dropout (`dropout` P > 0, Zaremba et al. 2014): in training (`total_loss_and_gradients`,
`window_total_loss_and_gradients`) the embedding output, each layer's output that feeds the next layer
and the top layer's output are multiplied by masks of 0 and 1 / (1 - P) (inverted dropout, so
the expected activation is unchanged); the recurrence never is. Evaluation (`total_loss`,
`window_total_loss`) and generation (`step`) use no masks. The masks come from a generator seeded by
(the model's seed, `dropout_step`), and `dropout_step` counts the training calls: a run is
reproducible, and setting `dropout_step` back replays a mask (what the gradient checks do).
"""

import numpy as np

from rnnlm.nn.batching import num_targets
from rnnlm.nn.cells import CELLS, cell_param_shapes
from rnnlm.config import ComputeConfig, ModelConfig
from rnnlm.errors import ConfigError
from rnnlm.nn.inputs import check_count, check_ids, check_pairs, check_state
from rnnlm.nn.optim import SparseGradient
from rnnlm.nn.output import output_loss, output_scores, word_classes
from rnnlm.nn.threads import holds_blas, threads_held
from rnnlm.nn.sequence import embedding_backward, stack_backward, stack_forward


class PackedModel:
    """The loss protocol `FastRNN` and `LanguageModel` share, written once: the public entry points
    and the one loss-and-gradient body (`_total_loss_and_gradients`). A model says what differs in hooks:

    `_forward(X, Y, state, train)`: the packed forward, a `sequence.Forward` (train: dropout, if any);
    `_layers()`: the recurrent layers for `sequence.stack_backward`; `_output()`: the output layer's
    arrays for `output.output_loss`; `_next_state(final)`: the model's state from `Forward.final`;
    `_input`: (name, axis) of the input matrix, whose slices along `axis` are the words' vectors
    (FastRNN's U (H, C): columns, axis 1; LanguageModel's embedding (C, E): rows, axis 0);
    `_gradients(layers, out)`: the layers' and the output layer's gradients (in `stack_backward`'s
    and `output_loss`'s names) under the model's parameter names.
    Public entry points check their ids once (`inputs.check_pairs`) and hold BLAS threads
    as the thread policy says (`rnnlm.nn.threads.threads_held`)."""

    def total_loss_and_gradients(self, X, Y, sparse=False):
        """Returns (sum over the batch's M tokens of -log p(y_t | x_<=t), grads of that sum keyed like `params`).

        X, Y: sequences of N (T_n,) int arrays (ragged; packed internally, no padding computed).
        A sum, not a mean: `mean_loss` divides by M, the training loop divides the grads by M.
        sparse: the input-side gradient (FastRNN's U, LanguageModel's embedding) is a `SparseGradient`
        over the words seen.
        """
        check_pairs(X, Y, self.config.vocab_size)
        with threads_held(self.threads, self.classes):
            return self._total_loss_and_gradients(X, Y, None, sparse)[:2]

    def window_total_loss_and_gradients(self, X, Y, state, sparse=False):
        """Returns (sum over the window's B T tokens of -log p(y | ...), grads of that sum, next_state).

        Stream training: one (B, T) window continuing from `state` (from `start_state(B)` or the last
        call). The gradient stops at the window's start (the state is a constant here); next_state is
        the model's state after the window, detached.
        """
        check_pairs(X, Y, self.config.vocab_size)
        if state is not None:
            check_state(state, self, len(X))
        with threads_held(self.threads, self.classes):
            return self._total_loss_and_gradients(list(X), list(Y), state, sparse)

    def window_total_loss(self, X, Y, state):
        """Returns (sum over the window's B T tokens of -log p(y | ...), next_state): no gradients."""
        check_pairs(X, Y, self.config.vocab_size)
        if state is not None:
            check_state(state, self, len(X))
        with threads_held(self.threads, self.classes):
            forward = self._forward(list(X), list(Y), state)
            loss = output_loss(forward.top, forward.y, **self._output(), gradients=False, rows=self.softmax_rows,
                               threads=self.threads)[0]
        return loss, self._next_state(forward.final)

    def _total_loss_and_gradients(self, X, Y, state, sparse):
        """The loss summed over the batch's M tokens, its gradients and the state after the batch.

        Forward: x_t's vector e_t (the input matrix's slice for word x_t, width E), the layers'
        recurrence h_t = f(e_t, h_{t-1}) (packed, `sequence.stack_forward`), the loss
        sum_t -log softmax(h_t W + b)[y_t] over the top layer's h_t (M, H). Backward: the output
        layer gives dh (M, H) and its own gradients; `stack_backward` takes dh back through the
        layers (truncated BPTT) to the errors dx (M, E) entering the e_t; the input matrix's
        gradient is dx summed per word, non-zero only for the K words seen (a `SparseGradient`;
        sparse=False, or a matrix the output layer uses too, makes it dense). Returns (loss, grads
        keyed like `params`, next_state).
        """
        forward = self._forward(X, Y, state, train=True)
        next_state = self._next_state(forward.final)
        name, axis = self._input
        shape = self.params[name].shape
        if forward.packing.num_tokens == 0:  # nothing to predict (no sentences, or only empty ones)
            grads = {k: np.zeros_like(v) for k, v in self.params.items()}
            if sparse:  # no words seen: zero slices along the words' axis
                none = np.zeros(0, np.int64)
                grads[name] = SparseGradient(none, np.take(grads[name], none, axis=axis), axis=axis)
            return 0.0, grads, next_state
        loss, dh, out = output_loss(forward.top, forward.y, **self._output(), rows=self.softmax_rows,
                                    threads=self.threads)
        dx, layers = stack_backward(self._layers(), forward, dh, self.config.bptt_truncate)
        words, rows = embedding_backward(forward.x, dx)  # (K,), (K, E): the errors of each word's vector, summed
        rows = rows.astype(self.dtype, copy=False)
        d_input = SparseGradient(words, rows if axis == 0 else np.ascontiguousarray(rows.T), axis=axis)
        grads = self._gradients(layers, out)
        if name in grads:  # the input matrix is the output layer's too (tied weights): both uses add up, dense
            grads[name] = d_input.to_dense(shape, self.dtype) + grads[name]
        else:
            grads[name] = d_input if sparse else d_input.to_dense(shape, self.dtype)
        return loss, {k: grads[k] for k in self.params}, next_state

    @holds_blas
    def total_loss(self, X, Y, batch_size=64, progress=None):
        """Returns the sum over all M target tokens of -log p(y | ...), a float, computed in batches.

        Batches of `batch_size` sentences sorted by length; memory is bounded by batch_size x T x H
        plus softmax_rows x C, never corpus x C.
        progress: called as progress(batches_done, num_batches) after each batch.
        """
        check_pairs(X, Y, self.config.vocab_size)
        check_count(batch_size, "batch_size")
        order = np.argsort([len(y) for y in Y], kind="stable")
        total = 0.0
        num_batches = -(-len(order) // batch_size)
        for done, a in enumerate(range(0, len(order), batch_size), start=1):
            chunk = order[a:a + batch_size]
            total += self.window_total_loss([X[i] for i in chunk], [Y[i] for i in chunk], None)[0]
            if progress is not None:
                progress(done, num_batches)
        return total

    def mean_loss(self, X, Y, batch_size=64):
        """Returns the mean over the M target tokens of -log p(y | ...): `total_loss` / M (`calculate_loss`'s)."""
        return self.total_loss(X, Y, batch_size=batch_size) / num_targets(Y)


# ----------------------------------------------------------------- the state, flat

def state_parts(config):
    """How many (n, H) arrays one layer's state holds for `config`'s cell (two for the LSTM: h and c)."""
    return CELLS[config.cell][2]


def state_key(layer, part):
    """The flat name of layer `layer`'s state array `part`: "<layer>/<part>" (a model file's carry/ entries)."""
    return f"{layer}/{part}"


def parse_state_key(name):
    """(layer, part) of a flat state name `state_key` wrote, or None when `name` is not one."""
    pieces = name.split("/")
    if len(pieces) != 2 or not all(p.isdigit() for p in pieces):
        return None
    return int(pieces[0]), int(pieces[1])


def flatten_state(state):
    """A `LanguageModel` state (per layer, the cell's state tuple) as a flat {state_key: array} dict of copies."""
    return {state_key(k, j): np.array(s) for k, layer in enumerate(state) for j, s in enumerate(layer)}


def unflatten_state(flat):
    """Inverse of `flatten_state`: the nested tuple of tuples, layers and parts in index order."""
    layers = {}
    for name, value in flat.items():
        key = parse_state_key(name)
        if key is None:
            raise ConfigError(f"{name!r} is not the name of a state array (<layer>/<part>)")
        layers.setdefault(key[0], {})[key[1]] = value
    return tuple(tuple(layers[k][j] for j in sorted(layers[k])) for k in sorted(layers))


class LanguageModel(PackedModel):
    """A word- or character-level language model with stacked recurrent layers.

    vocab_size C; hidden_size H; cell "rnn" (Elman, torch.nn.RNN with both biases), "gru",
    "lstm" or "jordan" (see rnnlm.nn.cells); num_layers L; embed_size E (None: E = H);
    bptt_truncate: k: the error entering a layer at step t flows back at most k steps (the tutorial's
    meaning; see rnnlm.nn.sequence), or None for full BPTT; the default is `ModelConfig`'s (4), like
    every default here, so `LanguageModel(C, H).config == ModelConfig(vocab_size=C, hidden_size=H)`
    (pass bptt_truncate=None for the exact gradient of the whole sequence); peephole / coupled_gates:
    LSTM options; softmax "full" or "class" and num_classes (see `ModelConfig`); counts: the
    words' corpus counts that bin them into classes (None: a frequency-sorted vocabulary is
    assumed); seed; dtype (float32 for training, float64 for checks); threads: output-layer
    workers (None, the default: automatic, one per core for large layers; 1: the plain loop;
    0: one per core; see `ComputeConfig` and `rnnlm.nn.threads`).
    Initialisation: every recurrent-layer parameter (weights and biases, and the peephole weights)
    and the output and class weights are U(-1/sqrt(H), 1/sqrt(H)), as torch initialises nn.RNN /
    nn.GRU / nn.LSTM and nn.Linear weights. Two choices differ from torch: the embedding is
    N(0, 1) scaled by 1/sqrt(E) (torch's nn.Embedding: N(0, 1) unscaled) and the output and class
    biases are 0 (torch's nn.Linear: U(-1/sqrt(H), 1/sqrt(H))), so the first logits are small and
    the first loss per word is about log C.
    """

    def __init__(self, vocab_size, hidden_size, cell=ModelConfig.cell, num_layers=ModelConfig.num_layers,
                 embed_size=ModelConfig.embed_size, bptt_truncate=ModelConfig.bptt_truncate,
                 peephole=ModelConfig.peephole, coupled_gates=ModelConfig.coupled_gates, seed=None, dtype=np.float32,
                 softmax=ModelConfig.softmax, num_classes=ModelConfig.num_classes, counts=None,
                 threads=ComputeConfig.threads, dropout=ModelConfig.dropout, tie_weights=ModelConfig.tie_weights):
        self._config = ModelConfig(vocab_size=vocab_size, hidden_size=hidden_size, bptt_truncate=bptt_truncate,
                                   cell=cell, num_layers=num_layers, embed_size=embed_size, peephole=peephole,
                                   coupled_gates=coupled_gates, softmax=softmax, num_classes=num_classes,
                                   dropout=dropout, tie_weights=tie_weights)
        self.seed = int(np.random.SeedSequence().entropy) if seed is None else int(seed)
        self.dropout_step = 0
        self.dtype = np.dtype(dtype)
        self.softmax_rows = 1024
        self.threads = threads
        self.classes = word_classes(self._config, counts)
        rng = np.random.default_rng(seed)
        C, H, E, L = vocab_size, hidden_size, self.embed_size, num_layers
        bound = 1.0 / np.sqrt(H)
        params = {"embedding": rng.standard_normal((C, E)) / np.sqrt(E)}
        for k in range(L):
            for name, shape in self._layer_shapes(k).items():
                params[f"l{k}.{name}"] = rng.uniform(-bound, bound, shape)
        if not tie_weights:
            params["W_out"] = rng.uniform(-bound, bound, (H, C))
        params["b_out"] = np.zeros(C)
        if self.classes is not None:
            params["W_class"] = rng.uniform(-bound, bound, (H, self.classes.num_classes))
            params["b_class"] = np.zeros(self.classes.num_classes)
        self.params = {k: v.astype(self.dtype) for k, v in params.items()}

    @classmethod
    def from_config(cls, config, seed=None, dtype=np.float32, counts=None, threads=ComputeConfig.threads):
        """A fresh model of `config`'s shape (a `ModelConfig`); counts bin the words for the class softmax."""
        return cls(config.vocab_size, config.hidden_size, cell=config.cell, num_layers=config.num_layers,
                   embed_size=config.embed_size, bptt_truncate=config.bptt_truncate, peephole=config.peephole,
                   coupled_gates=config.coupled_gates, seed=seed, dtype=dtype, softmax=config.softmax,
                   num_classes=config.num_classes, counts=counts, threads=threads, dropout=config.dropout,
                   tie_weights=config.tie_weights)

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
        check_count(n, "n", minimum=0, what=" (how many sequences)")
        nstate = state_parts(self._config)
        H = self._config.hidden_size
        return tuple(tuple(np.zeros((n, H), dtype=self.dtype) for _ in range(nstate))
                     for _ in range(self._config.num_layers))

    def step(self, state, x):
        """One time step for n sequences: x (n,) int word ids -> (scores (n, C), new state).

        scores: the pre-softmax logits h W_out + b_out, or log P(w | h) with the class softmax
        (softmax(scores) is the model's distribution either way).
        """
        x = check_ids(x, self.config.vocab_size, allow_empty=False)
        check_state(state, self, len(x))
        step_forward = CELLS[self._config.cell][0]
        inp = self.params["embedding"][np.asarray(x, dtype=np.int64)]  # (n, E)
        new_state = []
        for k, layer_state in enumerate(state):
            layer_state, _ = step_forward(inp, layer_state, self._layer(k), **self._options())
            new_state.append(layer_state)
            inp = layer_state[0]
        return output_scores(inp, **self._output()), tuple(new_state)

    # ----------------------------------------------------------------- losses

    def _layers(self):
        return [(self._config.cell, self._layer(k), self._options()) for k in range(self._config.num_layers)]

    def _output(self):
        p = self.params
        W = p["embedding"].T if self._config.tie_weights else p["W_out"]
        return {"W": W, "b": p["b_out"], "Wc": p.get("W_class"), "bc": p.get("b_class"),
                "classes": self.classes}

    def _forward(self, X, Y, state=None, train=False):
        """Packed batch through every layer: a `rnnlm.nn.sequence.Forward` (state: per layer, None for zeros).

        train: draw dropout masks (when the config has dropout), advancing `dropout_step`.
        """
        state0 = self.start_state(len(X)) if state is None else state
        masks = self._dropout_masks if train and self._config.dropout > 0 else None
        return stack_forward(self._layers(), lambda x: self.params["embedding"][x], X, Y, state0, masks=masks)

    def _dropout_masks(self, packing):
        """The L + 1 inverted-dropout masks for a packed batch: embedding output (M, E), then (M, H) per layer."""
        P, M = self._config.dropout, packing.num_tokens
        rng = np.random.default_rng([self.seed % 2 ** 63, self.dropout_step])
        self.dropout_step += 1
        widths = [self.embed_size] + [self._config.hidden_size] * self._config.num_layers
        scale = np.asarray(1.0 / (1.0 - P), dtype=self.dtype)
        return [(rng.random((M, w), dtype=np.float64) >= P).astype(self.dtype) * scale for w in widths]

    _input = ("embedding", 0)  # row w of the embedding is word w's input vector

    def _gradients(self, layers, out):
        """Layer k's gradients as "l{k}.<name>", the output layer's as W_out, b_out (and W_class, b_class).

        Tied, the output matrix is embedding.T, so its gradient is dW.T under "embedding" (the
        common body adds the input rows' part).
        """
        grads = {"b_out": out["b"]}
        grads.update({"embedding": out["W"].T} if self._config.tie_weights else {"W_out": out["W"]})
        if self.classes is not None:
            grads.update({"W_class": out["Wc"], "b_class": out["bc"]})
        for k, layer in enumerate(layers):
            grads.update({f"l{k}.{name}": value for name, value in layer.items()})
        return grads

    def _next_state(self, final):
        """The model's state from a `Forward.final`: per layer, the cell's state tuple."""
        return final

    # ----------------------------------------------------------------- torch export

    def torch_state_dict(self, params_or_grads=None):
        """Parameters (or a gradient dict keyed like them) under torch's names and layouts, as NumPy arrays.

        Names: "embedding.weight" (C, E); "rnn.weight_ih_l{k}" (G H, E or H), "rnn.weight_hh_l{k}" (G H, H),
        "rnn.bias_ih_l{k}", "rnn.bias_hh_l{k}" (G H,); "out.weight" (C, H), "out.bias" (C,): load them into
        nn.Embedding, nn.RNN/GRU/LSTM(num_layers=L, batch_first=True) and nn.Linear. Raises ConfigError for
        the jordan cell and the LSTM options, which torch does not have.
        """
        c = self._config
        if c.softmax == "class":
            raise ConfigError("a class-based softmax has no PyTorch counterpart (nn.Linear + cross-entropy is the "
                              "full softmax), so this model cannot be exported")
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
        out["out.weight"] = dense("embedding").copy() if c.tie_weights else dense("W_out").T.copy()
        out["out.bias"] = dense("b_out").copy()
        return out

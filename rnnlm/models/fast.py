"""`FastRNN`: the tutorial's Elman RNN language model, computed for a minibatch at once.

Same model, same parameters and same column orientation as `rnnlm.models.reference.RNNNumpy`:

    s_t = tanh(U[:, x_t] + W s_{t-1})        U: (H, C), W: (H, H), s_{-1} = 0
    o_t = softmax(V s_t)                      V: (C, H)

Letters: N sentences in a batch, M their real (unpadded) tokens, K the distinct words among
them, C vocabulary size, H hidden size.

FastRNN is a thin adapter: it owns U, V, W and their tutorial orientation, and nothing else.
What makes it fast lives in the modules every model shares, in the order the time is spent:

1. Output layer: `rnnlm.nn.output` with W = V^T. The M real tokens' states form one (M, H)
   matrix and the three C x H products (logits, dV, dS) run as GEMMs in the model's dtype
   (float32 by default, float64 for gradient checks) over chunks of rows; exp is computed as exp2; the softmax is never normalised explicitly (its row sums
   come out of the dS product as an extra column); the max-shift is skipped only when a
   bound proves exp cannot overflow; with several workers the chunks run in a thread pool. Or the
   class-based softmax, with class weights V_class (K, H).
2. Recurrence and truncated BPTT: `rnnlm.nn.sequence`'s packed recurrence (length-sorted,
   time-major, no padding computed) with the Elman cell of `rnnlm.nn.cells`, given the column
   U[:, x_t] as its already-projected input and W_hh = W^T (row vectors), no biases.
   Truncation runs lag by lag over all tokens at once.
3. dU is sparse: column w of dU is the sum of the errors entering s_t over the tokens whose
   input is word w, added per word with `segment_sum` (only the K words seen).

The loss and gradient body that strings 1-3 together is `PackedModel._total_loss_and_gradients`,
the one `LanguageModel` runs too; FastRNN only says, in hooks, that its input matrix is U's
columns and how the generic gradients (dW_out, dW_hh) turn back into dV and dW.

Memory for a batch is bounded by softmax_rows x C per worker (the logits block) plus M H for
the states; `total_loss` walks a corpus in batches, so it never holds corpus x C.

Public API
----------
FastRNN(word_dim, hidden_dim=100, bptt_truncate=4, seed=None, dtype=np.float32, softmax_rows=1024,
        softmax="full", num_classes=None, counts=None, threads=None)
    .U (H, C), .V (C, H), .W (H, H) (and .V_class (K, H) with the class softmax); .params; .config
    .total_loss_and_gradients(X, Y, sparse=False) -> (loss summed over the M tokens, grads of that sum)
    .window_total_loss_and_gradients(X, Y, state, sparse=False) -> (loss_sum, grads, next_state)
    .window_total_loss(X, Y, state) -> (loss_sum, next_state)
    .total_loss(X, Y, batch_size=64, progress=None) -> sum;  .mean_loss(X, Y) -> mean per token (total_loss / M)
    .start_state(n) -> (n, H);  .step(state, x) -> (scores (n, C), new_state)
    FastRNN.from_reference(model, dtype=np.float32);  .to_reference() -> RNNNumpy
"""

import numpy as np

from rnnlm.nn.cells import rnn_step_forward
from rnnlm.config import ComputeConfig, ModelConfig
from rnnlm.nn.inputs import check_count, check_ids, check_state
from rnnlm.models.language_model import PackedModel
from rnnlm.nn.output import output_scores, word_classes
from rnnlm.models.reference import RNNNumpy
from rnnlm.nn.sequence import stack_forward


class FastRNN(PackedModel):
    """The tutorial's RNN language model, batched and float32 by default.

    word_dim: C, the vocabulary size. hidden_dim: H. bptt_truncate: how many steps back
    the error at each output flows, exactly as in `RNNNumpy.bptt` (0 = the step itself
    only; None = full BPTT). seed: the same seed gives the same parameters as
    `RNNNumpy(..., seed=seed)` (same draws, cast to `dtype`). dtype: np.float32 for
    speed, np.float64 for tests. softmax_rows: tokens per output-layer chunk; it sets
    the memory bound (softmax_rows x C) and barely changes speed between 256 and 2048.
    softmax, num_classes: see `ModelConfig`; counts: the words' corpus counts that bin
    them into classes (None: a frequency-sorted vocabulary is assumed). threads: output-layer
    workers (None, the default: automatic, one per core for large layers; 1: the plain loop;
    0: one per core; see `ComputeConfig` and `rnnlm.nn.threads`).

    The losses come from `PackedModel`: `total_loss_and_gradients(X, Y)` equals summing
    `RNNNumpy.calculate_total_loss` and `RNNNumpy.bptt` over the sentences, with grads
    {"U": (H, C), "V": (C, H), "W": (H, H)} (the tutorial's list [dU, dV, dW] is
    `[grads[k] for k in "UVW"]`; sparse=True makes grads["U"] a `SparseGradient` over
    the K words seen, values (H, K)).
    """

    def __init__(self, word_dim, hidden_dim=ModelConfig.hidden_size, bptt_truncate=ModelConfig.bptt_truncate,
                 seed=None, dtype=np.float32, softmax_rows=1024, softmax=ModelConfig.softmax,
                 num_classes=ModelConfig.num_classes, counts=None, threads=ComputeConfig.threads):
        self._config = ModelConfig(vocab_size=word_dim, hidden_size=hidden_dim, bptt_truncate=bptt_truncate,
                                   cell="rnn", softmax=softmax, num_classes=num_classes)
        self.word_dim = word_dim
        self.hidden_dim = hidden_dim
        self.bptt_truncate = bptt_truncate
        self.dtype = np.dtype(dtype)
        self.softmax_rows = int(softmax_rows)
        self.threads = threads
        # the reference's draws, so one seed means one model in both implementations
        ref = RNNNumpy(word_dim, hidden_dim, bptt_truncate=0, seed=seed)
        self.U = ref.U.astype(self.dtype)
        self.V = ref.V.astype(self.dtype)
        self.W = ref.W.astype(self.dtype)
        self.classes = word_classes(self._config, counts)
        if self.classes is not None:
            bound = np.sqrt(1.0 / hidden_dim)
            rng = np.random.default_rng(None if seed is None else [seed, 1])
            self.V_class = rng.uniform(-bound, bound, (self.classes.num_classes, hidden_dim)).astype(self.dtype)

    # ----------------------------------------------------------------- parameters

    @property
    def params(self):
        """{"U": (H, C), "V": (C, H), "W": (H, H)} (+ "V_class" (K, H)): the arrays themselves, so in-place updates stick."""
        params = {"U": self.U, "V": self.V, "W": self.W}
        if self.classes is not None:
            params["V_class"] = self.V_class
        return params

    @property
    def config(self):
        return ModelConfig(vocab_size=self.word_dim, hidden_size=self.hidden_dim, bptt_truncate=self.bptt_truncate,
                           cell="rnn", softmax=self._config.softmax, num_classes=self._config.num_classes)

    @classmethod
    def from_reference(cls, model, dtype=np.float32):
        """A FastRNN holding `model`'s U, V, W (copied, cast to `dtype`) and truncation."""
        fast = cls(model.word_dim, model.hidden_dim, bptt_truncate=model.bptt_truncate, dtype=dtype)
        for name, value in model.params.items():
            fast.params[name][...] = value
        return fast

    def to_reference(self):
        """An `RNNNumpy` (float64) with this model's parameters and truncation (full softmax only)."""
        ref = RNNNumpy(self.word_dim, self.hidden_dim, bptt_truncate=self.bptt_truncate)
        for name in "UVW":
            ref.params[name][...] = self.params[name]
        return ref

    def _layers(self):
        """The one Elman layer: input already projected (U[:, x_t]), W_hh = W^T, no biases."""
        return [("rnn", {"W_hh": self.W.T}, {})]

    def _output(self):
        """The output layer's weights in its row-vector orientation: W = V^T (H, C), Wc = V_class^T."""
        return {"W": self.V.T, "Wc": self.V_class.T if self.classes is not None else None, "classes": self.classes}

    # ----------------------------------------------------------------- generation

    def start_state(self, n):
        """The initial hidden state s_{-1} = 0 for n sequences: (n, H)."""
        check_count(n, "n", minimum=0, what=" (how many sequences)")
        return np.zeros((n, self.hidden_dim), dtype=self.dtype)

    def step(self, state, x):
        """One time step for n sequences: s_t = tanh(U[:, x_t] + W s_{t-1}), scores from s_t.

        state: (n, H) s_{t-1}; x: (n,) int word ids. Returns (scores (n, C), s_t (n, H)): the
        logits V s_t (pre-softmax), or log P(w | s_t) with the class softmax.
        """
        x = check_ids(x, self.config.vocab_size, allow_empty=False)
        check_state(state, self, len(x))
        (new_state,), _ = rnn_step_forward(self.U.T[x], (np.asarray(state, dtype=self.dtype),), self._layers()[0][1])
        return output_scores(new_state, **self._output()), new_state

    # ----------------------------------------------------------------- losses

    def _forward(self, X, Y, state=None, train=False):
        """The packed forward of the one layer, each token's input the column U[:, x_t] (train: no dropout here)."""
        state0 = [(self.start_state(len(X)) if state is None else np.asarray(state, dtype=self.dtype),)]
        return stack_forward(self._layers(), lambda x: self.U.T[x], X, Y, state0)

    _input = ("U", 1)  # column w of U is word w's input vector: dU is the per-word error sums, transposed

    def _gradients(self, layers, out):
        """The generic gradients back in the tutorial's orientation: dV = dW_out^T, dW = dW_hh^T (dV_class = dWc^T)."""
        grads = {"V": np.ascontiguousarray(out["W"].T), "W": np.ascontiguousarray(layers[0]["W_hh"].T)}
        if self.classes is not None:
            grads["V_class"] = np.ascontiguousarray(out["Wc"].T)
        return grads

    def _next_state(self, final):
        """The model's state from a `Forward.final`: the one layer's hidden state (B, H)."""
        return final[0][0]

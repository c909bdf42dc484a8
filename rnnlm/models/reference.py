"""`RNNNumpy`: the tutorial's Elman RNN language model, one sentence at a time, in float64.

This is the reading copy and the correctness oracle: every other implementation in
rnnlm is tested against it. It keeps the tutorial's names and column orientation:

    s_t = tanh(U[:, x_t] + W s_{t-1})        U: (H, C), W: (H, H)
    o_t = softmax(V s_t)                      V: (C, H)

Letters: C vocabulary size (`word_dim`), H hidden size (`hidden_dim`), T sentence length.
Indexing the column U[:, x_t] is the same as multiplying U by the one-hot vector of
word x_t, without ever building that 8000-long vector.

The hidden states `s` have T+1 rows: row t is s_t for t = 0..T-1, and the extra
last row stays zero. Python's s[-1] therefore reads that zero row at t = 0, which is
how the tutorial supplies the initial state s_{-1} = 0 without a special case.
"""

import numpy as np

from rnnlm.nn.batching import num_targets
from rnnlm.config import ModelConfig
from rnnlm.nn.gradcheck import check_gradients
from rnnlm.nn.inputs import check_count, check_ids, check_pair, check_pairs, check_rate, check_state
from rnnlm.nn.numerics import cross_entropy, softmax


PROGRESS_SENTENCES = 64  # `total_loss` reports progress per this many sentences, as the batched models do


class RNNNumpy:
    """The tutorial's RNN language model (float64, per sentence, loops written out).

    word_dim: C, the vocabulary size. hidden_dim: H. bptt_truncate: how many steps
    the error at each output flows back in `bptt` (the tutorial's 4).
    seed: seeds this model's own generator; the same seed gives the same parameters.
    """

    def __init__(self, word_dim, hidden_dim=100, bptt_truncate=4, seed=None):
        # validates the sizes with one-line messages (hidden 0, vocabulary < 4, ...)
        ModelConfig(vocab_size=word_dim, hidden_size=hidden_dim, bptt_truncate=bptt_truncate)
        self.word_dim = word_dim
        self.hidden_dim = hidden_dim
        self.bptt_truncate = bptt_truncate
        rng = np.random.default_rng(seed)
        # uniform in [-1/sqrt(n), 1/sqrt(n)], n = incoming connections of the receiving unit
        self.U = rng.uniform(-np.sqrt(1.0 / word_dim), np.sqrt(1.0 / word_dim), (hidden_dim, word_dim))
        self.V = rng.uniform(-np.sqrt(1.0 / hidden_dim), np.sqrt(1.0 / hidden_dim), (word_dim, hidden_dim))
        self.W = rng.uniform(-np.sqrt(1.0 / hidden_dim), np.sqrt(1.0 / hidden_dim), (hidden_dim, hidden_dim))

    @property
    def params(self):
        """The parameters by name, {"U": (H, C), "V": (C, H), "W": (H, H)}; the arrays themselves, not copies."""
        return {"U": self.U, "V": self.V, "W": self.W}

    @property
    def config(self):
        """The model's shape as a `ModelConfig` (what `save_model` stores)."""
        return ModelConfig(vocab_size=self.word_dim, hidden_size=self.hidden_dim,
                           bptt_truncate=self.bptt_truncate, cell="rnn")

    def forward_propagation(self, x):
        """Run the sentence through the network.

        x: (T,) int word indices. Returns (o, s): o (T, C) softmax outputs, o[t] the
        predicted distribution of word t+1; s (T+1, H) hidden states, s[-1] the zero
        initial state (see the module docstring).
        """
        x = check_ids(x, self.word_dim, allow_empty=False)
        T = len(x)
        s = np.zeros((T + 1, self.hidden_dim))
        o = np.zeros((T, self.word_dim))
        for t in range(T):
            s[t] = np.tanh(self.U[:, x[t]] + self.W.dot(s[t - 1]))
            o[t] = softmax(self.V.dot(s[t]))
        return o, s

    def start_state(self, n):
        """For generation: the zero initial state s_{-1} of n sentences, (n, H)."""
        check_count(n, "n", minimum=0, what=" (how many sentences)")
        return np.zeros((n, self.hidden_dim))

    def step(self, state, x):
        """For generation: one step of n sentences, the loop body of `forward_propagation` as rows.

        state: (n, H) s_{t-1}; x: (n,) int. Returns (scores V s_t as (n, C), s_t (n, H));
        softmax of the scores is o_t. With this and `start_state`, `generate_sentence`,
        `rnnlm generate` and `rnnlm evaluate` work on the tutorial's model as it is.
        """
        x = check_ids(x, self.word_dim, allow_empty=False)
        check_state(state, self, len(x))
        s = np.tanh(self.U[:, x].T + np.asarray(state) @ self.W.T)
        return s @ self.V.T, s

    def predict(self, x):
        """The most probable next word after each prefix of x: (T,) int."""
        o, _ = self.forward_propagation(x)
        return np.argmax(o, axis=1)

    def calculate_total_loss(self, X, Y):
        """Cross-entropy summed over every word of every sentence: -sum_n sum_t log o_t[y_t].

        X, Y: sequences of (T_n,) int arrays. Computed from the scores V s_t with a
        stable log-softmax, so a confident wrong guess gives a large loss, not -log 0.
        """
        check_pairs(X, Y, self.word_dim)
        total = 0.0
        for x, y in zip(X, Y):
            if len(y) == 0:  # an empty sentence predicts nothing and adds nothing
                continue
            _, s = self.forward_propagation(x)
            total += cross_entropy(s[:-1].dot(self.V.T), y)
        return total

    def total_loss(self, X, Y, progress=None):
        """`calculate_total_loss` under the name every rnnlm model shares (for `rnnlm evaluate`).

        progress: called as progress(batches_done, num_batches) after every 64 sentences (and the last);
        the sum is the same, added sentence by sentence in the same order."""
        if progress is None:
            return self.calculate_total_loss(X, Y)
        check_pairs(X, Y, self.word_dim)
        total, num_batches = 0.0, -(-len(X) // PROGRESS_SENTENCES)
        for i, (x, y) in enumerate(zip(X, Y)):
            total += self.calculate_total_loss([x], [y])
            if (i + 1) % PROGRESS_SENTENCES == 0 or i + 1 == len(X):
                progress(-(-(i + 1) // PROGRESS_SENTENCES), num_batches)
        return total

    def calculate_loss(self, X, Y):
        """Returns the mean over the M target words of -log o_t[y_t]: `calculate_total_loss` / M (the tutorial's)."""
        return self.calculate_total_loss(X, Y) / num_targets(Y)

    def bptt(self, x, y):
        """Backpropagation through time for one sentence: returns [dU, dV, dW].

        The error at output t, delta_o_t = o_t - onehot(y_t), gives dV += delta_o_t s_t^T
        and enters the hidden layer as delta_t = V^T delta_o_t * (1 - s_t^2). It then
        flows back through steps t, t-1, ..., max(0, t - bptt_truncate), each step adding
        delta to dW (times s_{step-1}^T) and to column x_step of dU, and being multiplied
        by W^T and the tanh derivative of the previous state. With `bptt_truncate = None`
        every error flows back to step 0, which gives the exact gradient of
        `calculate_total_loss`; a truncation gives an approximation of it.

        This is the method a student overrides (in a subclass, or the tutorial's
        `RNNNumpy.bptt = bptt`): `gradient_check`, `sgd_step` and `train_with_sgd` all
        call it, so whatever is written here is what gets checked and trained.
        """
        x, y = check_pair(x, y, self.word_dim)
        T = len(y)
        truncate = T if self.bptt_truncate is None else self.bptt_truncate
        o, s = self.forward_propagation(x)
        dU = np.zeros_like(self.U)
        dV = np.zeros_like(self.V)
        dW = np.zeros_like(self.W)
        delta_o = o.copy()  # a copy: the tutorial's alias edited o in place
        delta_o[np.arange(T), y] -= 1.0
        for t in reversed(range(T)):
            dV += np.outer(delta_o[t], s[t])
            delta_t = self.V.T.dot(delta_o[t]) * (1 - s[t] ** 2)
            for step in reversed(range(max(0, t - truncate), t + 1)):
                dW += np.outer(delta_t, s[step - 1])  # s[-1] is the zero initial state
                dU[:, x[step]] += delta_t
                delta_t = self.W.T.dot(delta_t) * (1 - s[step - 1] ** 2)
        return [dU, dV, dW]

    def full_bptt(self, x, y):
        """`bptt` (whichever is installed: a subclass's, a monkeypatched one) with truncation off.

        Sets `bptt_truncate` to the sentence length for the call and restores it after,
        even if `bptt` raises. Returns {"U": dU, "V": dV, "W": dW}, the exact gradient of
        `calculate_total_loss([x], [y])` when `bptt` is right.
        """
        saved = self.bptt_truncate
        try:
            self.bptt_truncate = len(x)
            grads = self.bptt(x, y)
        finally:
            self.bptt_truncate = saved
        if isinstance(grads, dict):
            return grads
        grads = list(grads)
        if len(grads) != 3:
            raise ValueError(f"bptt must return [dU, dV, dW], got {len(grads)} arrays")
        return dict(zip(self.params, grads))

    def gradient_check(self, x, y, h=0.001, error_threshold=0.01):
        """Check the public `bptt` against central differences for every entry of U, V and W.

        Differentiates through `self.bptt`, so a subclass's override or the tutorial's
        `RNNNumpy.bptt = bptt` is what gets checked. The comparison uses full BPTT
        (`full_bptt`: truncation switched off for the check, then restored): the
        numerical gradient is the derivative of the true loss, which a truncated
        gradient does not equal. Returns a `GradCheckReport`, truthy when all pass;
        `str(report)` names each parameter's worst entry, both gradients and the error.
        """
        check_pair(x, y, self.word_dim)
        check_rate(h, "h")
        check_rate(error_threshold, "error_threshold")
        grads = self.full_bptt(x, y)
        return check_gradients(lambda: self.calculate_total_loss([x], [y]), self.params, grads,
                               h=h, threshold=error_threshold, note="full BPTT through bptt(), float64")

    def sgd_step(self, x, y, learning_rate):
        """One plain SGD update on one sentence: theta -= learning_rate * dtheta."""
        check_pair(x, y, self.word_dim)
        check_rate(learning_rate, "learning_rate")
        dU, dV, dW = self.bptt(x, y)
        self.U -= learning_rate * dU
        self.V -= learning_rate * dV
        self.W -= learning_rate * dW

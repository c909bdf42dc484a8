"""Behaviour the docstrings promise that no other test pinned: each test here fails on a hand mutation
of the line it names (a mutation review found the suite did not catch them).

Every expected value is computed independently of the code under test: by hand on a tiny fake model,
from a second run started from scratch, or in float64 with a max-shifted log-softmax.
"""

import numpy as np

from rnnlm.config import SENTENCE_END, SENTENCE_START, TrainConfig, UNKNOWN_TOKEN
from rnnlm.data.trees import EncodedTree
from rnnlm.data.vocab import Vocabulary
from rnnlm.models.generate import generate_sentence
from rnnlm.models.language_model import LanguageModel
from rnnlm.models.tree_lstm import TreeLSTM, TreeLSTMConfig, init_params
from rnnlm.models.tree_cells import compose_forward
from rnnlm.nn.optim import SparseGradient
from rnnlm.nn.output import EXP_SAFE, ClassSoftmax, exp_bound, softmax_cross_entropy
from rnnlm.training.loop import TrainingState, train
from rnnlm.training.stream import train_stream
from rnnlm.training.trees import TreeTrainConfig, binary_prediction, train_trees


def _log_softmax64(logits):
    logits = np.asarray(logits, dtype=np.float64)
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


# --------------------------------------------------------------------- 1. stream: zero state at every epoch start

def _stream_model(seed=3):
    return LanguageModel(7, 5, cell="rnn", seed=seed, dtype=np.float64)


def test_stream_training_starts_every_epoch_from_the_zero_state():
    """training/stream.py StreamBatches.begin_epoch: epoch 2 of a two-epoch run must equal a one-epoch
    run started from epoch 1's parameters with a fresh zero state (SGD, no momentum: nothing else carries)."""
    ids = np.random.default_rng(0).integers(0, 7, size=61)
    config = dict(batch_size=2, seq_length=5, optimizer="sgd", learning_rate=0.5, clip=None,
                  valid_fraction=0.0, lr_schedule="halving")
    empty = ids[:0]

    two = _stream_model()
    train_stream(two, ids, empty, TrainConfig(epochs=2, **config))

    one = _stream_model()
    train_stream(one, ids, empty, TrainConfig(epochs=1, **config))
    again = _stream_model()
    again.params = {k: v.copy() for k, v in one.params.items()}
    train_stream(again, ids, empty, TrainConfig(epochs=1, **config))

    assert any(not np.allclose(one.params[k], two.params[k]) for k in one.params)  # epoch 2 did move them
    for name in two.params:
        np.testing.assert_allclose(two.params[name], again.params[name], rtol=1e-12, atol=1e-12, err_msg=name)


# --------------------------------------------------------------------- 2. average per word, then clip

class ConstantGradientModel:
    """A model whose summed gradient is always `grad` (and summed loss `loss`), whatever the batch."""

    def __init__(self, grad, loss=5.0):
        self.params = {"w": np.zeros(len(grad))}
        self.grad, self.loss = np.asarray(grad, dtype=np.float64), loss

    def total_loss_and_gradients(self, X, Y, sparse=False):
        return self.loss, {"w": self.grad.copy()}

    def total_loss(self, X, Y):
        return self.loss * len(X)


def test_train_averages_the_gradient_per_word_then_clips():
    """training/loop.py run_training: g = clip(g_sum / M, clip), then SGD. One sentence of M = 5 targets,
    summed gradient (30, 40): the mean (6, 8) has norm 10, clipped to norm 1 -> (0.6, 0.8), step 0.5."""
    model = ConstantGradientModel([30.0, 40.0])
    X, Y = [np.arange(5)], [np.arange(1, 6)]
    config = TrainConfig(epochs=1, batch_size=1, optimizer="sgd", learning_rate=0.5, clip=1.0, valid_fraction=0.0)
    train(model, X, Y, config)
    np.testing.assert_allclose(model.params["w"], [-0.3, -0.4], rtol=1e-12)

    # a limit the mean (norm 10) stays under but the sum (norm 50) exceeds: no clipping at all
    model = ConstantGradientModel([30.0, 40.0])
    train(model, X, Y, TrainConfig(epochs=1, batch_size=1, optimizer="sgd", learning_rate=0.5, clip=20.0,
                                   valid_fraction=0.0))
    np.testing.assert_allclose(model.params["w"], [-3.0, -4.0], rtol=1e-12)


# --------------------------------------------------------------------- 7. the rate after a time-limited epoch

def test_an_epoch_cut_by_the_time_limit_does_not_move_the_learning_rate():
    """training/loop.py run_training: the schedule is updated only after a complete epoch. The halving rule
    remembering a previous loss of 0 would halve on any loss; an epoch stopped after its first batch
    (time limit) keeps the rate, and the resumed run that completes it halves it once."""
    X, Y = [np.arange(3), np.arange(3)], [np.arange(1, 4), np.arange(1, 4)]
    base = dict(epochs=1, batch_size=1, optimizer="sgd", learning_rate=0.5, clip=None, valid_fraction=0.0,
                lr_schedule="halving")
    primed = TrainingState(epoch=0, learning_rate=0.5, previous_loss=0.0)

    whole = train(ConstantGradientModel([1.0]), X, Y, TrainConfig(**base), state=primed)
    assert whole.history[-1].complete and whole.learning_rate == 0.25  # the rule does halve here

    model = ConstantGradientModel([1.0])
    cut = train(model, X, Y, TrainConfig(time_limit=1e-9, **base), state=primed)
    record = cut.history[-1]
    assert not record.complete and (cut.epoch, cut.batch) == (0, 1)
    assert record.learning_rate == 0.5 and record.next_learning_rate == 0.5 and cut.learning_rate == 0.5
    assert cut.previous_loss == 0.0  # the rule saw nothing

    done = train(model, X, Y, TrainConfig(**base), state=cut)
    assert done.history[-1].complete and done.epoch == 1 and done.learning_rate == 0.25


# --------------------------------------------------------------------- 3. tree training

LEAF = EncodedTree(word=np.array([1]), left=np.array([-1]), right=np.array([-1]), label=np.array([3]))
# ((w1 w2) (w3 w4)) in post-order: leaves 0, 1, 3, 4; inner 2 = (0, 1), 5 = (3, 4), root 6 = (2, 5)
FOUR = EncodedTree(word=np.array([1, 2, -1, 3, 4, -1, -1]), left=np.array([-1, -1, 0, -1, -1, 3, 2]),
                   right=np.array([-1, -1, 1, -1, -1, 4, 5]), label=np.array([3, 1, 2, 4, 0, 3, 4]))


class FakeTreeModel:
    """Tree-LSTM-shaped parameters; the gradient with respect to E is `dE_rows[w]` for every leaf word w
    (a loss linear in the embeddings it sees), zero for everything else. Records the E it was run with."""

    def __init__(self, dE_rows=None, V=6, seed=0):
        rng = np.random.default_rng(seed)
        self.params = {"E": rng.standard_normal((V, 2)), "W_leaf": rng.standard_normal((2, 3)),
                       "b_leaf": rng.standard_normal(3), "U": rng.standard_normal((2, 5)),
                       "b": rng.standard_normal(5), "W_s": rng.standard_normal((1, 5)), "b_s": rng.standard_normal(5)}
        self.dE_rows = dE_rows
        self.seen = []

    def total_loss_and_gradients(self, trees):
        self.seen.append(self.params["E"].copy())
        grads = {k: np.zeros_like(v) for k, v in self.params.items() if k != "E"}
        words = np.unique(np.concatenate([t.word[t.left < 0] for t in trees]))
        rows = self.dE_rows[words] if self.dE_rows is not None else np.zeros((len(words), 2))
        grads["E"] = SparseGradient(words, rows, axis=0)
        return 1.0, grads


def _tree_config(**kw):
    return TreeTrainConfig(**{"vocabulary_size": 6, "epochs": 1, "batch_size": 1, "learning_rate": 0.1,
                              "optimizer": "sgd", "l2": 0.0, "clip": None, "word_dropout": 0.0, **kw})


def test_tree_weight_decay_moves_the_weights_toward_zero():
    """training/trees.py regularized_gradients: + l2 theta for W_leaf, U, W_s only. With a zero data gradient
    one SGD step multiplies each of them by (1 - lr l2) and leaves biases and embeddings alone."""
    model = FakeTreeModel()
    before = {k: v.copy() for k, v in model.params.items()}
    train_trees(model, [LEAF], _tree_config(l2=0.5, learning_rate=0.1))
    for name in ("W_leaf", "U", "W_s"):
        np.testing.assert_allclose(model.params[name], before[name] * (1 - 0.1 * 0.5), rtol=1e-12, err_msg=name)
    for name in ("E", "b_leaf", "b", "b_s"):
        np.testing.assert_array_equal(model.params[name], before[name], err_msg=name)


def test_tree_word_dropout_scales_the_kept_words_gradient_by_one_over_keep():
    """training/trees.py _total_loss_and_gradients: the model runs on E' = E keep (kept rows x 1/(1-p), dropped 0),
    so dLoss/dE = dLoss/dE' keep: with p = 0.5 a kept word's gradient is doubled, a dropped one's is 0."""
    dE_rows = np.arange(12, dtype=np.float64).reshape(6, 2) + 1.0
    model = FakeTreeModel(dE_rows)
    before = model.params["E"].copy()
    train_trees(model, [FOUR], _tree_config(word_dropout=0.5, learning_rate=1.0, seed=0))
    (seen,) = model.seen
    words = np.array([1, 2, 3, 4])
    factor = seen[words, 0] / before[words, 0]  # the mask the run drew, as the model saw it
    np.testing.assert_allclose(seen[words], before[words] * factor[:, None], rtol=1e-12)
    kept, dropped = np.isclose(factor, 2.0), np.isclose(factor, 0.0)
    assert (kept | dropped).all() and kept.any() and dropped.any()  # seed 0 drops some words, keeps others
    np.testing.assert_allclose(model.params["E"][words], before[words] - factor[:, None] * dE_rows[words], rtol=1e-12)
    np.testing.assert_array_equal(model.params["E"][[0, 5]], before[[0, 5]])  # words not in the batch


def _two_leaf_tree():
    return EncodedTree(word=np.array([1, 2, -1]), left=np.array([-1, -1, 0]), right=np.array([-1, -1, 1]),
                       label=np.array([3, 1, 4]))


def test_tree_batch_gradient_is_the_mean_over_its_trees():
    """training/trees.py: the batch loss is (1/B) sum over its trees: a batch of two copies of a tree
    makes exactly the update of that tree alone (a sum would make it twice as large)."""
    config = TreeLSTMConfig(vocab_size=5, embed_size=3, hidden_size=4)
    single, double = TreeLSTM(config, seed=1), TreeLSTM(config, seed=1)
    start = {k: v.copy() for k, v in single.params.items()}
    tree = _two_leaf_tree()
    train_trees(single, [tree], _tree_config(vocabulary_size=5, batch_size=1, learning_rate=0.5, l2=0.01))
    train_trees(double, [tree, tree], _tree_config(vocabulary_size=5, batch_size=2, learning_rate=0.5, l2=0.01))
    assert not np.allclose(single.params["W_s"], start["W_s"])
    for name in single.params:
        np.testing.assert_allclose(double.params[name], single.params[name], rtol=1e-10, atol=1e-12, err_msg=name)


def test_binary_prediction_ignores_the_neutral_class():
    """training/trees.py binary_prediction: positive iff p(3) + p(4) > p(0) + p(1); p(2) counts for neither."""
    probs = np.array([[0.1, 0.1, 0.5, 0.15, 0.15],   # 0.3 > 0.2: positive, though neutral holds half
                      [0.15, 0.15, 0.5, 0.1, 0.1],   # negative
                      [0.0, 0.05, 0.9, 0.05, 0.0]])  # a tie is not positive
    np.testing.assert_array_equal(binary_prediction(probs), [1, 0, 0])


# --------------------------------------------------------------------- 4. Tree-LSTM forget-gate bias

def test_fresh_tree_lstm_forget_gates_start_at_plus_one_for_both_children():
    """models/tree_lstm.py init_params: b = [i, f_l, f_r, o, u] blocks of H; +1 on f_l and f_r, 0 elsewhere,
    and every other bias 0. Checked through compose_forward too: with zero inputs both forget gates are sigmoid(1)."""
    H = 4
    config = TreeLSTMConfig(vocab_size=6, embed_size=3, hidden_size=H)
    for params in (init_params(config, seed=2), TreeLSTM(config, seed=5).params):
        b = params["b"]
        assert b.shape == (5 * H,)
        np.testing.assert_array_equal(b[H:2 * H], 1.0)
        np.testing.assert_array_equal(b[2 * H:3 * H], 1.0)
        np.testing.assert_array_equal(b[:H], 0.0)
        np.testing.assert_array_equal(b[3 * H:], 0.0)
        np.testing.assert_array_equal(params["b_leaf"], 0.0)
        np.testing.assert_array_equal(params["b_s"], 0.0)
        zeros = np.zeros((1, H))
        _, cache = compose_forward(zeros, zeros, zeros, zeros, params)
        sig1 = 1 / (1 + np.exp(-1.0))
        (f_l, _, _), (f_r, _, _) = cache.memory.forgets
        np.testing.assert_allclose(f_l, sig1, rtol=1e-12)
        np.testing.assert_allclose(f_r, sig1, rtol=1e-12)
        np.testing.assert_allclose(cache.memory.i, 0.5, rtol=1e-12)
        np.testing.assert_allclose(cache.memory.o, 0.5, rtol=1e-12)


# --------------------------------------------------------------------- 5. max_length counts the prefix

class AlwaysCat:
    """A 'model' whose scores always favour the word "cat" and make SENTENCE_END least likely: it never ends."""

    def __init__(self, vocab):
        self.logits = np.zeros((1, len(vocab)))
        self.logits[0, vocab.word_to_index["cat"]] = 5.0
        self.logits[0, vocab.end_index] = -50.0

    def start_state(self, n):
        return np.zeros((n, 1))

    def step(self, state, x):
        return self.logits.copy(), state


def test_max_length_counts_the_prefix():
    """models/generate.py: max_length is tokens at most, the prefix included (GenerateConfig's docstring):
    a 3-token prefix and max_length 10 give 10 tokens, 7 of them generated."""
    vocab = Vocabulary.build([["the", "cat", "sat", "on", "mat"]], vocabulary_size=8)
    model = AlwaysCat(vocab)
    prefix = ["the", "dog", "sat"]  # "dog" is not in the vocabulary: kept as written
    for temperature in (0, 1.0):
        tokens = generate_sentence(model, vocab, np.random.default_rng(0), min_length=0, max_length=10,
                                   temperature=temperature, prefix_tokens=prefix)
        assert len(tokens) == 10 and tokens[:3] == prefix
        assert not {SENTENCE_END, SENTENCE_START, UNKNOWN_TOKEN} & set(tokens[3:])
    tokens = generate_sentence(model, vocab, np.random.default_rng(0), min_length=0, max_length=3,
                               temperature=0, prefix_tokens=prefix)
    assert tokens == prefix


# --------------------------------------------------------------------- 6. the overflow bounds

def test_exp_bound_uses_the_column_norms_of_W():
    """nn/output.py exp_bound: |(h W)_c| <= |h| |W[:, c]|, so the bound is max column norm x max row norm of h.
    W (H = 100, C = 2) with column 0 all ones: column norm 10, every row norm 1. h all ones (float32):
    logit 0 is 100, beyond float32's exp; only the column-norm bound (100 > EXP_SAFE) asks for the shift."""
    H = 100
    W = np.zeros((H, 2), dtype=np.float32)
    W[:, 0] = 1.0
    h = np.ones((3, H), dtype=np.float32)
    logits = h.astype(np.float64) @ W
    assert exp_bound(h, W) >= np.abs(logits).max() > EXP_SAFE
    np.testing.assert_allclose(exp_bound(h, W), 100.0, rtol=1e-6)
    targets = np.array([1, 0, 1])
    reference = -_log_softmax64(logits)[np.arange(3), targets].sum()
    loss, dh, dW, _ = softmax_cross_entropy(h, targets, W)
    assert np.isfinite(loss) and np.isfinite(dh).all() and np.isfinite(dW).all()
    np.testing.assert_allclose(loss, reference, rtol=1e-5)


def test_class_softmax_bound_includes_the_word_bias():
    """nn/output.py ClassSoftmax.loss: a class's bound is max |W col| x max |h| + max |b| over its words.
    W = 0 and a word bias of 100 (float32): only the bias makes the bound exceed EXP_SAFE, and without the
    shift exp(100) overflows float32."""
    H, C = 3, 4
    classes = ClassSoftmax(np.array([0, 0, 1, 1]), 2)
    h = np.random.default_rng(0).standard_normal((4, H)).astype(np.float32)
    W = np.zeros((H, C), dtype=np.float32)
    b = np.array([100.0, 0.0, 0.0, 0.0], dtype=np.float32)
    Wc = np.zeros((H, 2), dtype=np.float32)
    bc = np.array([0.5, -0.5], dtype=np.float32)
    targets = np.array([1, 0, 1, 3])
    loss, dh, dW, db, dWc, dbc = classes.loss(h, targets, W, b, Wc, bc)
    assert np.isfinite(loss) and all(np.isfinite(g).all() for g in (dh, dW, db, dWc, dbc))
    h64 = h.astype(np.float64)
    class_logp = _log_softmax64(h64 @ Wc + bc)
    reference = 0.0
    for m, y in enumerate(targets):
        c = classes.word_class[y]
        words = classes.members[c]
        within = _log_softmax64(h64[m] @ W[:, words] + b[words])
        reference -= class_logp[m, c] + within[classes.position[y]]
    np.testing.assert_allclose(loss, reference, rtol=1e-5)

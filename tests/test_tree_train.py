"""Tree-LSTM training pieces: the SST accuracies against a hand count, embedding dropout, the time limit."""

import numpy as np

from rnnlm.nn.optim import SparseGradient
from rnnlm.models.tree_lstm import TreeLSTM, TreeLSTMConfig
from rnnlm.training.trees import TreeTrainConfig, _total_loss_and_gradients, evaluate, train_trees
from rnnlm.data.trees import build_vocabulary, encode_tree, parse_tree

TEXTS = ["(4 (3 a) (4 great))", "(0 (1 an) (0 awful))", "(2 (2 a) (2 film))", "(1 (2 not) (1 good))"]


def setup(seed=0):
    trees = [parse_tree(t) for t in TEXTS]
    vocab = build_vocabulary(trees, vocabulary_size=20)
    model = TreeLSTM(TreeLSTMConfig(vocab_size=len(vocab), embed_size=3, hidden_size=4), seed=seed)
    return model, [encode_tree(t, vocab) for t in trees]


class FixedModel:
    """node_probabilities returns given arrays: lets evaluate be checked against a hand count."""

    def __init__(self, probs):
        self.probs = probs

    def node_probabilities(self, trees):
        return self.probs[:len(trees)]


def test_evaluate_counts_like_the_papers():
    _, encoded = setup()
    p = lambda *row: np.array(row, dtype=float)  # noqa: E731
    probs = [  # per tree: 3 nodes (left leaf, right leaf, root), post-order
        np.stack([p(0, 0, 0, 1, 0), p(0, 0, 0, 0, 1), p(0, 0, 0, .4, .6)]),    # root 4 -> right (fine, binary)
        np.stack([p(0, 1, 0, 0, 0), p(.3, .3, .4, 0, 0), p(.3, .3, .4, 0, 0)]),  # root 0 -> 2 wrong; binary neg right
        np.stack([p(0, 0, 1, 0, 0), p(0, 0, 1, 0, 0), p(0, 0, 1, 0, 0)]),      # neutral root right; not in binary
        np.stack([p(0, 0, .5, .5, 0), p(0, .9, .1, 0, 0), p(.1, .1, .2, .3, .3)]),  # root 1 -> 3/4 wrong; binary wrong
    ]
    s = evaluate(FixedModel(probs), encoded)
    assert (s.sentences, s.binary_sentences, s.phrases) == (4, 3, 12)
    assert s.fine == 2 / 4
    assert abs(s.binary - 2 / 3) < 1e-12
    # nodes right: tree 1 all 3; tree 2: left leaf (1) yes, right leaf (0) no (argmax 2), root no; tree 3 all 3;
    # tree 4: left leaf label 2 vs argmax 2 (tie 2/3 -> first) yes, right leaf 1 yes, root no
    assert abs(s.all_phrases - 9 / 12) < 1e-12


def test_word_dropout_zeroes_whole_words_and_their_gradients():
    model, encoded = setup()
    rng = np.random.default_rng(3)
    loss, grads = _total_loss_and_gradients(model, encoded, 0.5, rng)
    dE = grads["E"]
    assert isinstance(dE, SparseGradient)
    dropped = dE.indices[np.all(dE.values == 0, axis=1)]
    assert 0 < len(dropped) < len(dE.indices)
    # the same loss as the model with those rows zeroed and the others doubled
    E = model.params["E"]
    scale = np.full(len(E), 2.0)
    scale[dropped] = 0.0
    model.params["E"] = E * scale[:, None]
    expected, _ = model.total_loss_and_gradients(encoded)
    model.params["E"] = E
    assert abs(loss - expected) < 1e-10
    assert np.array_equal(model.params["E"], E)  # the parameters are left as they were


def test_training_lowers_the_loss_and_the_time_limit_stops_it():
    model, encoded = setup()
    before = model.total_loss_and_gradients(encoded)[0]
    config = TreeTrainConfig(epochs=30, batch_size=2, learning_rate=0.1, word_dropout=0.0, l2=0.0)
    state = train_trees(model, encoded, config, dev_trees=encoded)
    assert state.epoch == 30 and model.total_loss_and_gradients(encoded)[0] < 0.5 * before
    ticks = iter(range(1000))
    limited = TreeTrainConfig(epochs=30, batch_size=1, time_limit=2.5, word_dropout=0.0)
    state = train_trees(setup()[0], encoded, limited, clock=lambda: next(ticks))
    # the clock advances 1 per call (start 0, epoch start 1, then once per batch): the limit is
    # crossed after the second of epoch 1's four batches, and training stops there
    assert state.epoch == 1 and not state.history[0].complete
    assert state.history[0].trees_per_second == 2 / 3  # 2 trees in the 3 ticks from epoch start


def test_a_saved_state_continues_the_run_exactly():
    """2 epochs, the state through to_dict / from_dict (as a model file stores it), 2 more = 4 straight."""
    from rnnlm.training.trees import TreeTrainingState
    _, encoded = setup()
    config = TreeTrainConfig(epochs=4, batch_size=2, learning_rate=0.1, word_dropout=0.3, optimizer="adam")
    straight, _ = setup()
    whole = train_trees(straight, encoded, config, dev_trees=encoded)
    model, _ = setup()
    half = train_trees(model, encoded, TreeTrainConfig(**{**config.to_dict(), "epochs": 2}), dev_trees=encoded)
    optimizer_arrays = {k: np.array(v) for k, v in half.optimizer.state_dict().items()}
    restored = TreeTrainingState.from_dict(half.to_dict(), optimizer_arrays, config)
    assert restored.epoch == 2 and restored.history == half.history and restored.best == half.best
    resumed = train_trees(model, encoded, config, dev_trees=encoded, state=restored)
    for name in straight.params:
        np.testing.assert_array_equal(model.params[name], straight.params[name])
    assert resumed.epoch == 4 and resumed.best == whole.best
    assert [r.train_loss for r in resumed.history] == [r.train_loss for r in whole.history]


def test_a_diverged_tree_run_stops_with_the_shared_loops_error():
    """The tree batches go through `run_training`'s divergence check: a NaN loss stops the run before its update."""
    import pytest
    from rnnlm.training.loop import TrainingDiverged
    model, encoded = setup()
    before = {k: v.copy() for k, v in model.params.items()}
    real = model.total_loss_and_gradients
    model.total_loss_and_gradients = lambda trees: (float("nan"), real(trees)[1])
    with pytest.raises(TrainingDiverged, match="epoch 1, batch 0: the batch loss is nan"):
        train_trees(model, encoded, TreeTrainConfig(epochs=2, batch_size=2, word_dropout=0.0))
    for name in before:
        np.testing.assert_array_equal(model.params[name], before[name])

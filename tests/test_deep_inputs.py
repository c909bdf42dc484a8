"""Deep and long inputs that are legitimate: trees as deep as they are long, and one-line corpora.

A right-branching SST tree of n words has height n - 1; Python's default recursion limit is 1,000,
so every walk over a tree (parsing, binarizing, encoding, printing, the recursive Tree-LSTM) must
be a loop over an explicit stack.
"""

import sys

import numpy as np
import pytest

from rnnlm.io import checkpoint
from rnnlm.cli import main
from rnnlm.models.fold import fold_loss_and_gradients
from rnnlm.nn.optim import SparseGradient
from rnnlm.models.spinn import spinn_loss_and_gradients
from rnnlm.models.tree_lstm import TreeLSTM, TreeLSTMConfig, init_params, recursive_loss_and_gradients
from rnnlm.training.trees import TreeTrainConfig, train_trees
from rnnlm.data.trees import (binarize, build_vocabulary, encode_tree, parse_tree, parse_unlabelled, read_trees,
                         tree_from_text)
from rnnlm.data.vocab import Vocabulary

DEEP = 1200


def right_branching(n, label=lambda k: 3, word=lambda k: f"w{k % 7}"):
    """'(3 (2 w0) (3 (2 w1) ... (2 wn-1)))': labels on every node, height n - 1."""
    text = f"(2 {word(n - 1)})"
    for k in reversed(range(n - 1)):
        text = f"({label(k)} (2 {word(k)}) {text})"
    return text


def dense(grads, params):
    return {k: (g.to_dense(params[k].shape) if isinstance(g, SparseGradient) else g) for k, g in grads.items()}


def test_the_deep_tree_is_deeper_than_the_recursion_limit():
    assert DEEP > sys.getrecursionlimit()  # else these tests would prove nothing


def test_parse_encode_print_a_deep_tree():
    text = right_branching(DEEP, label=lambda k: k % 5)
    tree = parse_tree(text)
    assert tree.height() == DEEP - 1 and tree.num_nodes() == 2 * DEEP - 1
    assert tree.leaves() == [f"w{k % 7}" for k in range(DEEP)]
    assert str(tree) == text  # printing walks the same tree back to the same brackets
    vocab = build_vocabulary([tree], vocabulary_size=20)
    enc = encode_tree(tree, vocab)
    assert enc.num_nodes == 2 * DEEP - 1 and enc.label[-1] == 0 and enc.left[-1] == 0 and enc.right[-1] == 2 * DEEP - 3
    left = "w0"
    for k in range(1, DEEP):
        left = f"({left} w{k})"
    unl = parse_unlabelled(left)
    assert unl.height() == DEEP - 1  # left-branching, no labels
    assert binarize([f"w{k}" for k in range(2000)], "right").height() == 1999


def test_iterative_walks_keep_the_old_orders():
    tree = parse_tree("(1 (2 (2 a) (3 b)) (4 (0 c) (2 (1 d) (2 e))))")
    assert [n.label for n in tree.postorder()] == [2, 3, 2, 0, 1, 2, 2, 4, 1]
    assert tree.leaves() == list("abcde") and tree.height() == 3 and tree.num_nodes() == 9
    assert str(binarize(list("abcde"))) == "(? (? (? a) (? b)) (? (? c) (? (? d) (? e))))"
    assert str(binarize(list("abc"), "right")) == "(? (? a) (? (? b) (? c)))"
    vocab = build_vocabulary([tree], vocabulary_size=10)
    enc = encode_tree(tree, vocab)
    assert enc.left.tolist() == [-1, -1, 0, -1, -1, -1, 4, 3, 2]
    assert enc.right.tolist() == [-1, -1, 1, -1, -1, -1, 5, 6, 7]


def test_a_read_trees_file_with_a_deep_tree(tmp_path):
    path = tmp_path / "deep.txt"
    path.write_text(right_branching(DEEP) + "\n(3 (2 a) (3 b))\n", encoding="utf-8")
    trees = read_trees(path)
    assert len(trees) == 2 and trees[0].height() == DEEP - 1


@pytest.fixture(scope="module")
def deep_batch():
    tree = parse_tree(right_branching(DEEP, label=lambda k: (k * 3) % 5))
    vocab = build_vocabulary([tree], vocabulary_size=8)
    return vocab, [encode_tree(tree, vocab), encode_tree(parse_tree("(3 (2 w1) (4 w2))"), vocab)]


def test_recursive_fold_and_spinn_agree_on_a_deep_tree(deep_batch):
    vocab, trees = deep_batch
    params = init_params(TreeLSTMConfig(vocab_size=len(vocab), embed_size=3, hidden_size=4), seed=3)
    loss_r, grads_r = recursive_loss_and_gradients(params, trees)
    for other in (fold_loss_and_gradients, spinn_loss_and_gradients):
        loss_o, grads_o = other(params, trees)
        assert abs(loss_r - loss_o) <= 1e-9 * abs(loss_r)
        for name in params:
            np.testing.assert_allclose(dense(grads_o, params)[name], dense(grads_r, params)[name], rtol=0,
                                       atol=1e-9, err_msg=name)


def test_deep_tree_gradient_matches_finite_differences(deep_batch):
    """The directional derivative along random directions, by central differences, equals <grad, v>."""
    vocab, trees = deep_batch
    params = init_params(TreeLSTMConfig(vocab_size=len(vocab), embed_size=3, hidden_size=4), seed=4)
    _, grads = recursive_loss_and_gradients(params, trees)
    grads = dense(grads, params)
    rng = np.random.default_rng(0)
    for _ in range(3):
        v = {k: rng.normal(size=p.shape) for k, p in params.items()}
        h = 1e-5

        def loss_at(sign):
            moved = {k: params[k] + sign * h * v[k] for k in params}
            return fold_loss_and_gradients(moved, trees, gradients=False)[0]

        numeric = (loss_at(1) - loss_at(-1)) / (2 * h)
        analytic = sum(float(np.sum(grads[k] * v[k])) for k in params)
        assert abs(numeric - analytic) <= 1e-5 * max(1.0, abs(analytic)), (numeric, analytic)


@pytest.mark.parametrize("method", ["recursive", "fold", "spinn"])
def test_one_training_step_on_a_deep_tree(deep_batch, method):
    vocab, trees = deep_batch
    model = TreeLSTM(TreeLSTMConfig(vocab_size=len(vocab), embed_size=3, hidden_size=4), seed=0, method=method)
    before = {k: v.copy() for k, v in model.params.items()}
    state = train_trees(model, trees, TreeTrainConfig(epochs=1, batch_size=2, word_dropout=0.0))
    assert state.epoch == 1 and np.isfinite(state.history[0].train_loss)
    assert any(not np.array_equal(before[k], model.params[k]) for k in before)


def test_predict_a_2000_word_sentence_right_branching(tmp_path, capsys):
    words = [f"w{k % 50}" for k in range(2000)]
    vocab = Vocabulary.build([words], vocabulary_size=40)
    model = TreeLSTM(TreeLSTMConfig(vocab_size=len(vocab), embed_size=3, hidden_size=4), seed=0)
    checkpoint.save_tree_model(tmp_path / "m.npz", model, vocab)
    sentence = " ".join(words)
    assert tree_from_text(sentence, "right").height() == 1999
    assert main(["trees", "predict", "--model", str(tmp_path / "m.npz"), "--binarize", "right", "--tree",
                 sentence]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "binary:" in out[0]
    assert out[1].count("(") == 2 * 2000 - 1 and out[1].endswith(")" * 2000)

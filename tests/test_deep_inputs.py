"""Deep and long inputs that are legitimate: trees as deep as they are long, and one-line corpora.

A right-branching SST tree of n words has height n - 1; Python's default recursion limit is 1,000,
so every walk over a tree (parsing, binarizing, encoding, printing, the recursive Tree-LSTM) must
be a loop over an explicit stack.
"""

import sys

import numpy as np
import pytest

from rnnlm.io import checkpoint
from rnnlm.io import tree_checkpoint
from rnnlm.cli import main
from rnnlm.models.fold import fold_total_loss_and_gradients
from rnnlm.nn.optim import SparseGradient
from rnnlm.models.spinn import spinn_total_loss_and_gradients
from rnnlm.models.tree_lstm import TreeLSTM, TreeLSTMConfig, init_params
from rnnlm.models.tree_recursive import recursive_total_loss_and_gradients
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
    loss_r, grads_r = recursive_total_loss_and_gradients(params, trees)
    for other in (fold_total_loss_and_gradients, spinn_total_loss_and_gradients):
        loss_o, grads_o = other(params, trees)
        assert abs(loss_r - loss_o) <= 1e-9 * abs(loss_r)
        for name in params:
            np.testing.assert_allclose(dense(grads_o, params)[name], dense(grads_r, params)[name], rtol=0,
                                       atol=1e-9, err_msg=name)


def test_deep_tree_gradient_matches_finite_differences(deep_batch):
    """The directional derivative along random directions, by central differences, equals <grad, v>."""
    vocab, trees = deep_batch
    params = init_params(TreeLSTMConfig(vocab_size=len(vocab), embed_size=3, hidden_size=4), seed=4)
    _, grads = recursive_total_loss_and_gradients(params, trees)
    grads = dense(grads, params)
    rng = np.random.default_rng(0)
    for _ in range(3):
        v = {k: rng.normal(size=p.shape) for k, p in params.items()}
        h = 1e-5

        def loss_at(sign):
            moved = {k: params[k] + sign * h * v[k] for k in params}
            return fold_total_loss_and_gradients(moved, trees, gradients=False)[0]

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
    tree_checkpoint.save_tree_model(tmp_path / "m.npz", model, vocab)
    sentence = " ".join(words)
    assert tree_from_text(sentence, "right").height() == 1999
    assert main(["trees", "predict", "--model", str(tmp_path / "m.npz"), "--binarize", "right", "--tree",
                 sentence]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "binary:" in out[0]
    assert out[1].count("(") == 2 * 2000 - 1 and out[1].endswith(")" * 2000)


# --------------------------------------------------------------------- one-line corpora

import tracemalloc  # noqa: E402

from rnnlm.config import MAX_SENTENCE_LENGTH, DataConfig  # noqa: E402
from rnnlm.data.corpus import load_corpus, training_pairs  # noqa: E402
from rnnlm.errors import ConfigError  # noqa: E402
from rnnlm.models.fast import FastRNN  # noqa: E402
from rnnlm.data.text import read_text_file  # noqa: E402
from rnnlm.training.loop import train  # noqa: E402
from rnnlm.config import TrainConfig  # noqa: E402


def peak_bytes(function):
    tracemalloc.start()
    try:
        result = function()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_reading_a_small_file_allocates_about_its_size(tmp_path):
    path = tmp_path / "small.txt"
    path.write_text("a line of text\n" * 1000, encoding="utf-8")
    text, peak = peak_bytes(lambda: read_text_file(path))
    assert text == "a line of text\n" * 1000
    assert peak < 1 << 20  # not the 2 GiB read limit


def test_training_pairs_cut_long_sentences_into_pieces():
    vocab = Vocabulary.build([["a", "b", "c"]], vocabulary_size=10)
    sentences = [list("abcabcabca"), ["a", "b"]]  # 10 words: the pair predicts 11 tokens
    X, Y = training_pairs(sentences, vocab, max_length=4)
    assert [len(x) for x in X] == [4, 4, 3, 3] and [len(y) for y in Y] == [4, 4, 3, 3]
    whole_x, whole_y = training_pairs(sentences[:1], vocab)  # the uncut pair, computed without a limit
    np.testing.assert_array_equal(np.concatenate(X[:3]), whole_x[0])
    np.testing.assert_array_equal(np.concatenate(Y[:3]), whole_y[0])
    assert X[0][0] == vocab.start_index and Y[2][-1] == vocab.end_index
    assert vocab.start_index not in np.concatenate(X[1:3]) and vocab.end_index not in np.concatenate(Y[:2])
    X4, _ = training_pairs(sentences, vocab, max_length=11)  # exactly the limit: not cut
    assert [len(x) for x in X4] == [11, 3]


def test_a_200k_character_line_is_cut_and_trains_in_bounded_memory(tmp_path):
    rng = np.random.default_rng(0)
    line = "".join(rng.choice(list("abcdefgh "), size=200_000))
    path = tmp_path / "one-line.txt"
    path.write_text(line + "\n", encoding="utf-8")
    corpus, peak = peak_bytes(lambda: load_corpus(path, level="char", vocabulary_size=20))
    assert peak < 200 * 2**20, f"{peak / 2**20:.0f} MiB to prepare the data"
    assert max(len(x) for x in corpus.X) == MAX_SENTENCE_LENGTH and len(corpus.X) == 201
    assert corpus.num_tokens == len(line.strip()) + 1
    assert corpus.report.split_sentences == 1 and corpus.report.pieces == 201
    assert "1 sentence longer than 1,000 tokens was cut into 201 pieces" in corpus.report.lines()[1]
    model = FastRNN(len(corpus.vocabulary), 8, seed=0)
    before = model.params["U"].copy()
    config = TrainConfig(epochs=1, batch_size=16, valid_fraction=0.0)
    state, step_peak = peak_bytes(lambda: train(model, corpus.X[:16], corpus.Y[:16], config))
    assert state.epoch == 1 and np.isfinite(state.history[0].train_loss)
    assert not np.array_equal(before, model.params["U"])
    assert step_peak < 200 * 2**20


def test_cli_train_reports_the_cut_sentences(tmp_path, capsys):
    words = " ".join(f"w{k % 13}" for k in range(1500))
    path = tmp_path / "long.txt"
    path.write_text(f"{words}\nshort line here .\n", encoding="utf-8")
    assert main(["train", str(path), "--out", str(tmp_path / "m.npz"), "--epochs", "1", "--hidden", "4",
                 "--vocab-size", "20", "--max-sentence-length", "400", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "1 sentence longer than 400 tokens was cut into 4 pieces of at most 400 (--max-sentence-length)." in out
    saved = checkpoint.load_model(tmp_path / "m.npz")
    assert saved.data_config.max_sentence_length == 400
    # the pieces are the data: --resume keeps them (changing the bound would train on other sequences)
    assert main(["train", str(path), "--out", str(tmp_path / "m.npz"), "--epochs", "2", "--resume",
                 "--max-sentence-length", "300", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("rnnlm: error: --max-sentence-length cannot change on --resume") and err.count("\n") == 1


def test_a_bad_max_sentence_length_is_one_line(tmp_path, capsys):
    with pytest.raises(ConfigError, match="max sentence length"):
        DataConfig(max_sentence_length=0)
    path = tmp_path / "c.txt"
    path.write_text("a b c .\n", encoding="utf-8")
    assert main(["train", str(path), "--out", str(tmp_path / "m.npz"), "--max-sentence-length", "0"]) == 2
    err = capsys.readouterr().err
    assert err == "rnnlm: error: max sentence length must be a positive integer, got 0\n"

"""The tutorial's model end to end (save, load, generate, evaluate), and `rnnlm info` on every kind of model file."""

import re
from pathlib import Path

import numpy as np
import pytest

from rnnlm.io.checkpoint import load_model, save_model
from rnnlm.data.corpus import load_corpus
from rnnlm.models.generate import generate_sentence
from rnnlm.models.language_model import LanguageModel
from rnnlm.models.reference import RNNNumpy
from rnnlm.training.tutorial import train_with_sgd

from helpers import run

COMMENTS = Path(__file__).resolve().parent / "fixtures" / "comments.csv"
TINY = ["--vocab-size", "60", "--hidden", "8", "--batch-size", "8", "--seed", "1", "--no-progress"]


@pytest.fixture(scope="module")
def corpus():
    return load_corpus(COMMENTS, vocabulary_size=60)


def test_rnnnumpy_trained_with_its_own_loop_saves_loads_and_generates(corpus, tmp_path, capsys):
    model = RNNNumpy(len(corpus.vocabulary), 8, seed=0)
    train_with_sgd(model, corpus.X[:20], corpus.Y[:20], learning_rate=0.01, nepoch=2)
    path = tmp_path / "ref.npz"
    save_model(path, model, corpus.vocabulary)
    checkpoint = load_model(path)
    assert isinstance(checkpoint.model, RNNNumpy) and checkpoint.kind == "reference-rnn"
    for name in "UVW":  # float64 kept, bit for bit
        np.testing.assert_array_equal(checkpoint.model.params[name], model.params[name])
    assert checkpoint.model.bptt_truncate == model.bptt_truncate
    # step() is forward_propagation's loop body: the same distribution at every position
    x = corpus.X[0]
    o, _ = model.forward_propagation(x)
    state = model.start_state(1)
    for t, token in enumerate(x):
        scores, state = model.step(state, np.array([token]))
        p = np.exp(scores[0] - scores[0].max())
        np.testing.assert_allclose(p / p.sum(), o[t], rtol=1e-12)
    tokens = generate_sentence(model, corpus.vocabulary, np.random.default_rng(0), min_length=0, max_length=12)
    assert 0 < len(tokens) <= 12 and "UNKNOWN_TOKEN" not in tokens
    code, out, _ = run(capsys, "generate", "--model", path, "-n", 3, "--seed", 1, "--min-length", 0)
    assert code == 0 and len(out.splitlines()) == 3
    code, out, _ = run(capsys, "evaluate", "--model", path, COMMENTS)
    loss = model.calculate_loss(corpus.X, corpus.Y)
    assert code == 0 and f"cross-entropy: {loss:.4f}" in out


def _info(capsys, path=None):
    code, out, err = run(capsys, "info", *([] if path is None else ["--model", path]))
    assert code == 0, err
    return out


def test_info_on_the_bundled_model(capsys):
    out = _info(capsys)
    assert "kind: fast-rnn" in out and "vocabulary 2000, hidden 128" in out and "level: word" in out
    assert "528,384 parameters" in out
    assert re.search(r"most frequent: '\.' [\d,]+, 'the'", out)
    assert "training: 11 epochs" in out and "best validation: epoch 11" in out


def test_info_on_a_fast_rnn_trained_by_the_cli(tmp_path, capsys):
    path = tmp_path / "fast.npz"
    assert run(capsys, "train", COMMENTS, "--out", path, "--epochs", 2, *TINY)[0] == 0
    checkpoint = load_model(path)
    history = checkpoint.state.history
    out = _info(capsys, path)
    assert "kind: fast-rnn" in out and "hidden 8" in out and "resumable: yes" in out
    assert f"epoch 2: train loss {history[-1].train_loss:.4f}" in out
    words = [w for w in checkpoint.vocabulary.index_to_word if not w.isupper()]
    assert f"most frequent: {words[0]!r}" in out  # the vocabulary is ordered by count


def test_info_on_an_rnnnumpy_file(corpus, tmp_path, capsys):
    path = tmp_path / "ref.npz"
    save_model(path, RNNNumpy(len(corpus.vocabulary), 5, bptt_truncate=None, seed=0), corpus.vocabulary)
    out = _info(capsys, path)
    assert "kind: reference-rnn: RNNNumpy" in out and "bptt_truncate full" in out and "stored as float64" in out
    assert "training: none recorded" in out


def test_info_on_a_language_model_file(corpus, tmp_path, capsys):
    path = tmp_path / "lm.npz"
    model = LanguageModel(len(corpus.vocabulary), 6, cell="gru", num_layers=2, embed_size=4, seed=0)
    save_model(path, model, corpus.vocabulary, level="word")
    out = _info(capsys, path)
    n = sum(p.size for p in model.params.values())
    assert "kind: language-model" in out and "cell gru, layers 2, embedding 4" in out and f"{n:,} parameters" in out


def test_info_refuses_bad_input(tmp_path, capsys):
    code, _, err = run(capsys, "info", "--model", tmp_path / "missing.npz")
    assert code == 2 and "not found" in err and "Traceback" not in err
    code, _, err = run(capsys, "info", "--words", 0)
    assert code == 2 and "--words" in err


def test_one_epoch_is_singular_in_info_and_evaluate(tmp_path, capsys):
    path = tmp_path / "one.npz"
    assert run(capsys, "train", COMMENTS, "--out", path, "--epochs", 1, *TINY)[0] == 0
    out = _info(capsys, path)
    assert "training: 1 epoch;" in out and "over 1 epoch," in out and "1 epochs" not in out
    code, out, _ = run(capsys, "evaluate", COMMENTS, "--model", path)
    assert code == 0 and "trained 1 epoch." in out


# --------------------------------------------------------------------- Tree-LSTM files

TREES = ["(4 (3 (2 a) (4 great)) (2 film))", "(0 (1 (2 a) (0 awful)) (2 film))", "(3 (2 truly) (3 good))",
         "(1 (2 truly) (1 bad))"]


def test_info_on_a_tree_model_trained_by_the_cli(tmp_path, capsys):
    from rnnlm.io.tree_checkpoint import load_tree_model
    train = tmp_path / "train.txt"
    train.write_text("\n".join(TREES * 3) + "\n", encoding="utf-8")
    path = tmp_path / "trees.npz"
    assert run(capsys, "trees", "train", train, "--dev", train, "--out", path, "--hidden", 8, "--embed-size", 6,
               "--epochs", 3, "--no-progress", "--word-dropout", 0)[0] == 0
    checkpoint = load_tree_model(path)
    out = _info(capsys, path)
    n = sum(p.size for p in checkpoint.model.params.values())
    assert "kind: tree-lstm: Tree-LSTM sentiment classifier" in out
    assert f"sizes: vocabulary {len(checkpoint.vocabulary)}, embedding 6, hidden 8, 5 classes" in out
    assert f"{n:,} parameters (E (" in out and "stored as float32" in out
    assert re.search(r"most frequent: '(a|film|truly)' 6", out)
    assert "training: 3 epochs; optimizer adagrad" in out and "resumable: no" in out
    assert f"the file holds epoch {checkpoint.training['best_epoch']}" in out
    last = checkpoint.training["history"][-1]
    assert f"epoch 3: train loss {last['train_loss']:.4f} nats/node, development fine-grained {last['dev']['fine']:.1%}" in out
    assert "best development: epoch" in out and "time: " in out


def test_info_on_an_untrained_tree_model_and_a_malformed_history(tmp_path, capsys):
    from rnnlm.data.trees import build_vocabulary, parse_tree
    from rnnlm.io.tree_checkpoint import save_tree_model
    from rnnlm.models.tree_lstm import TreeLSTM, TreeLSTMConfig
    vocabulary = build_vocabulary([parse_tree(t) for t in TREES], 20)
    model = TreeLSTM(TreeLSTMConfig(vocab_size=len(vocabulary), embed_size=3, hidden_size=4), seed=0)
    path = tmp_path / "t.npz"
    save_tree_model(path, model, vocabulary)
    out = _info(capsys, path)
    assert "kind: tree-lstm" in out and "hidden 4" in out and "training: none recorded" in out
    save_tree_model(path, model, vocabulary, training={"history": [{"epoch": 1, "train_loss": "x"}, 7,
                                                                   {"epoch": 2, "train_loss": 0.5, "dev": "?"}]})
    out = _info(capsys, path)
    assert "training: 1 epoch;" in out and "epoch 2: train loss 0.5000 nats/node" in out and "development" not in out

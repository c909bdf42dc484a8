"""Tree-LSTM model files hold a 5-class classifier (the treebank's labels 0-4); tree files hold labels 0-4."""

import numpy as np
import pytest

from rnnlm.io import tree_checkpoint
from rnnlm.cli import main
from rnnlm.errors import ModelFileError
from rnnlm.models.tree_lstm import TreeLSTM, TreeLSTMConfig
from rnnlm.data.vocab import Vocabulary


def tree_model(num_classes):
    vocab = Vocabulary.build([["good", "bad", "film"]], vocabulary_size=10)
    return TreeLSTM(TreeLSTMConfig(vocab_size=len(vocab), embed_size=3, hidden_size=4, num_classes=num_classes)), vocab


def crafted(tmp_path, num_classes, monkeypatch):
    """A file as a hand-edited or foreign writer would make it: save_tree_model's class check bypassed."""
    path = tmp_path / f"k{num_classes}.npz"
    with monkeypatch.context() as m:
        m.setattr(tree_checkpoint, "_check_tree_classes", lambda *a: None)
        tree_checkpoint.save_tree_model(path, *tree_model(num_classes))
    return path


@pytest.mark.parametrize("num_classes", [2, 3, 7])
def test_a_model_file_with_other_than_5_classes_is_one_line(tmp_path, monkeypatch, capsys, num_classes):
    path = crafted(tmp_path, num_classes, monkeypatch)
    with pytest.raises(ModelFileError, match=f"{num_classes} output classes"):
        tree_checkpoint.load_tree_model(path)
    trees = tmp_path / "t.txt"
    trees.write_text("(3 (2 good) (3 film))\n(1 (2 bad) (1 film))\n", encoding="utf-8")
    for command in (["predict", "--model", str(path), "good film", "--tree"], ["evaluate", "--model", str(path), str(trees)]):
        assert main(["trees", *command]) == 2
        captured = capsys.readouterr()
        assert captured.err.startswith("rnnlm: error:") and captured.err.count("\n") == 1
        assert f"{num_classes} output classes" in captured.err and "0-4" in captured.err and not captured.out


def test_such_a_model_is_never_written(tmp_path):
    with pytest.raises(ModelFileError, match="7 output classes"):
        tree_checkpoint.save_tree_model(tmp_path / "k7.npz", *tree_model(7))
    assert not (tmp_path / "k7.npz").exists()


def test_a_5_class_model_still_round_trips(tmp_path):
    model, vocab = tree_model(5)
    tree_checkpoint.save_tree_model(tmp_path / "k5.npz", model, vocab)
    loaded = tree_checkpoint.load_tree_model(tmp_path / "k5.npz", dtype=np.float64)
    for name, value in model.params.items():
        np.testing.assert_array_equal(loaded.model.params[name], value)


@pytest.mark.parametrize("label", ["5", "7", "-1", "10", "2.5", "x"])
def test_tree_file_labels_outside_0_4_name_the_line(tmp_path, capsys, label):
    model, vocab = tree_model(5)
    tree_checkpoint.save_tree_model(tmp_path / "k5.npz", model, vocab)
    trees = tmp_path / "bad.txt"
    trees.write_text(f"(3 (2 good) (3 film))\n\n(1 (2 bad) ({label} film))\n", encoding="utf-8")
    assert main(["trees", "evaluate", "--model", str(tmp_path / "k5.npz"), str(trees)]) == 2
    err = capsys.readouterr().err
    assert err == f"rnnlm: error: bad.txt line 3 column 13: label {label!r} is not an integer 0-4\n"

"""`rnnlm trees`: train, evaluate and predict on tiny trees written here; bad input is one line and exit 2."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rnnlm.io import checkpoint
from rnnlm.io import tree_checkpoint
from rnnlm.cli import main
from rnnlm.errors import ModelFileError

ROOT = Path(__file__).resolve().parent.parent
TRAIN = ["(4 (3 (2 a) (4 great)) (2 film))", "(0 (1 (2 a) (0 awful)) (2 film))", "(3 (2 truly) (3 good))",
         "(1 (2 truly) (1 bad))", "(4 (2 really) (4 (4 great) (2 fun)))", "(0 (2 really) (0 (0 awful) (2 mess)))"]


@pytest.fixture
def sst(tmp_path):
    train, dev = tmp_path / "train.txt", tmp_path / "dev.txt"
    train.write_text("\n".join(TRAIN * 3) + "\n", encoding="utf-8")
    dev.write_text("\n".join(TRAIN[:4]) + "\n", encoding="utf-8")
    return tmp_path, train, dev


def train_args(tmp_path, train, dev, *extra):
    return ["trees", "train", str(train), "--dev", str(dev), "--out", str(tmp_path / "m.npz"), "--hidden", "8",
            "--embed-size", "6", "--batch-size", "4", "--no-progress", "--learning-rate", "0.1", "--word-dropout", "0",
            *extra]


def test_train_evaluate_predict(sst, capsys):
    tmp_path, train, dev = sst
    assert main(train_args(tmp_path, train, dev, "--epochs", "12")) == 0
    out = capsys.readouterr().out
    assert "epoch 12/12" in out and "holds epoch" in out
    ck = tree_checkpoint.load_tree_model(tmp_path / "m.npz")
    assert ck.training["epoch"] == 12 and len(ck.training["history"]) == 12
    assert main(["trees", "evaluate", "--model", str(tmp_path / "m.npz"), str(dev)]) == 0
    out = capsys.readouterr().out
    fine = float(out.split("fine-grained accuracy (5 classes, sentences): ")[1].split("%")[0])
    assert fine >= 75.0  # the tiny training set is learnable
    assert main(["trees", "predict", "--model", str(tmp_path / "m.npz"), "truly good", "(truly bad)", "--tree"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[0] in "34" and "binary: positive" in lines[0]
    assert lines[1].count("(") == 3  # the tree, every node labelled
    assert "binary: negative" in lines[2]
    assert main(["trees", "predict", "--model", str(tmp_path / "m.npz"), "truly zorgblat"]) == 0
    assert "UNKNOWN_TOKEN: 'zorgblat'" in capsys.readouterr().err


def test_methods_train_the_same_model(sst, capsys):
    tmp_path, train, dev = sst
    params = []
    for method in ("fold", "spinn", "recursive"):
        assert main(train_args(tmp_path, train, dev, "--epochs", "2", "--method", method)) == 0
        params.append(tree_checkpoint.load_tree_model(tmp_path / "m.npz").model.params)
    for other in params[1:]:
        for name in params[0]:
            assert abs(other[name] - params[0][name]).max() < 1e-4, name


@pytest.mark.parametrize("content, message", [
    ("(3 (2 a) (2 b)\n", "line 1: the tree ends early"),
    ("\x00\x01binary", ""),
    ("", "empty"),
])
def test_bad_training_file_is_one_line_and_keeps_the_model(sst, capsys, content, message):
    tmp_path, train, dev = sst
    assert main(train_args(tmp_path, train, dev, "--epochs", "1")) == 0
    before = (tmp_path / "m.npz").read_bytes()
    bad = tmp_path / "bad.txt"
    bad.write_text(content, encoding="utf-8")
    capsys.readouterr()
    assert main(train_args(tmp_path, bad, dev, "--epochs", "1")) == 2
    err = capsys.readouterr().err
    assert err.startswith("rnnlm: error:") and err.count("\n") == 1 and message in err
    assert (tmp_path / "m.npz").read_bytes() == before


def test_bad_options_and_model_files(sst, capsys, tmp_path):
    _, train, dev = sst
    assert main(train_args(tmp_path, train, dev, "--hidden", "0")) == 2
    assert main(train_args(tmp_path, train, dev, "--word-dropout", "1")) == 2
    assert main(["trees", "evaluate", "--model", str(tmp_path / "missing.npz"), str(dev)]) == 2
    (tmp_path / "junk.npz").write_bytes(b"not a model")
    assert main(["trees", "predict", "--model", str(tmp_path / "junk.npz"), "good"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 4 and all(line.startswith("rnnlm: error:") for line in err)


def test_language_model_and_tree_model_files_refuse_each_other(sst, capsys, tmp_path):
    _, train, dev = sst
    assert main(train_args(tmp_path, train, dev, "--epochs", "1")) == 0
    with pytest.raises(ModelFileError, match="Tree-LSTM"):
        checkpoint.load_model(tmp_path / "m.npz")
    assert main(["evaluate", "--model", str(tmp_path / "m.npz"), str(dev)]) == 2
    assert main(["trees", "predict", "--model", str(checkpoint.BUNDLED_MODEL), "good"]) == 2
    assert "not a Tree-LSTM" in capsys.readouterr().err


def test_ctrl_c_keeps_the_last_saved_epoch(sst, tmp_path):
    _, train, dev = sst
    train.write_text("\n".join(TRAIN * 400) + "\n", encoding="utf-8")
    args = [sys.executable, "-m", "rnnlm"] + train_args(tmp_path, train, dev, "--epochs", "1000")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    for line in proc.stdout:
        if line.startswith("epoch 1/"):
            break
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert "interrupted" in err and "Traceback" not in err
    ck = tree_checkpoint.load_tree_model(tmp_path / "m.npz")
    assert ck.training["epoch"] >= 1


def test_resume_continues_the_uninterrupted_run(sst, capsys, tmp_path):
    """2 epochs, then --resume to 4, equals 4 epochs straight: --out (the best epoch) and its .last file."""
    _, train, dev = sst
    straight, parted = tmp_path / "straight", tmp_path / "parted"
    straight.mkdir(), parted.mkdir()
    extra = ("--word-dropout", "0.3", "--optimizer", "adam")
    assert main(train_args(straight, train, dev, "--epochs", "4", *extra)) == 0
    assert main(train_args(parted, train, dev, "--epochs", "2", *extra)) == 0
    assert main(train_args(parted, train, dev, "--epochs", "4", "--resume", *extra)) == 0
    assert "Resuming" in capsys.readouterr().out
    for name in ("m.npz", "m.last.npz"):
        a, b = (tree_checkpoint.load_tree_model(d / name) for d in (straight, parted))
        assert a.training["epoch"] == b.training["epoch"] == 4 and len(b.training["history"]) == 4
        assert a.training["best_epoch"] == b.training["best_epoch"]
        for key in a.model.params:
            assert np.allclose(a.model.params[key], b.model.params[key], rtol=1e-6, atol=1e-7), (name, key)
    assert tree_checkpoint.load_tree_model(parted / "m.last.npz").state.epoch == 4
    # without --dev --out itself is resumable, and is the last epoch
    no_dev = ["trees", "train", str(train), "--out", str(tmp_path / "n.npz"), "--hidden", "4", "--no-progress"]
    assert main(no_dev + ["--epochs", "1"]) == 0
    assert tree_checkpoint.load_tree_model(tmp_path / "n.npz").state.epoch == 1
    assert main(no_dev + ["--epochs", "2", "--resume"]) == 0
    assert tree_checkpoint.load_tree_model(tmp_path / "n.npz").state.epoch == 2


def test_resume_refuses_another_shape_optimizer_or_corpus(sst, capsys, tmp_path):
    _, train, dev = sst
    assert main(train_args(tmp_path, train, dev, "--epochs", "1")) == 0
    capsys.readouterr()
    assert main(train_args(tmp_path, train, dev, "--epochs", "2", "--resume", "--hidden", "9")) == 2
    assert "--hidden cannot change on --resume" in capsys.readouterr().err
    assert main(train_args(tmp_path, train, dev, "--epochs", "2", "--resume", "--optimizer", "adam")) == 2
    assert "--optimizer cannot change on --resume" in capsys.readouterr().err
    other = tmp_path / "other.txt"
    other.write_text("\n".join(TRAIN[:3]) + "\n", encoding="utf-8")
    assert main(train_args(tmp_path, other, dev, "--epochs", "2", "--resume")) == 2
    assert "is not the corpus" in capsys.readouterr().err
    assert main(train_args(tmp_path, train, dev, "--epochs", "2", "--resume", str(tmp_path / "missing.npz"))) == 2


def test_trees_train_guards_its_last_epoch_file_like_out(tmp_path, capsys):
    """The .last file `trees train --dev` writes is checked before training, as --out is: a folder there is refused."""
    (tmp_path / "t.last.npz").mkdir()
    trees = tmp_path / "t.txt"
    trees.write_text("(3 (2 good) (3 film))\n(1 (2 bad) (1 film))\n", encoding="utf-8")
    code = main(["trees", "train", str(trees), "--dev", str(trees), "--out", str(tmp_path / "t.npz"),
                 "--epochs", "1", "--hidden", "4", "--embed-size", "3", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "last-epoch file" in err
    assert not (tmp_path / "t.npz").exists()

"""`rnnlm generate` defaults that follow what the user set, and the training plot's unit at character level."""

import argparse

import pytest

from rnnlm import cli
from rnnlm.cli import generate as cli_generate
from rnnlm.models.generate import GenerateConfig


def args(**given):
    base = dict(n=None, min_length=None, max_length=None, temperature=None, length=None)
    return argparse.Namespace(**{**base, **given})


def test_max_length_below_the_default_min_length_lowers_it():
    config = cli_generate._generate_config(args(max_length=5))
    assert config.max_length == 5 and config.min_length == 5
    assert cli_generate._generate_config(args(max_length=40)).min_length == GenerateConfig.min_length
    with pytest.raises(Exception, match="larger than max length"):  # but an explicit contradiction is refused
        cli_generate._generate_config(args(min_length=9, max_length=5))


def test_character_models_get_room_for_whole_sentences():
    assert cli_generate._generate_config(args(), "char").max_length == GenerateConfig.char_max_length > 50
    assert cli_generate._generate_config(args(max_length=80), "char").max_length == 80
    assert cli_generate._generate_config(args(), "word").max_length == GenerateConfig.max_length


def test_generate_max_length_5_runs(capsys):
    assert cli.main(["generate", "--max-length", "5", "-n", "3", "--seed", "1"]) == 0
    out, err = capsys.readouterr()
    assert len(out.splitlines()) == 3 and not err


def test_greedy_sentences_shorter_than_min_length_get_one_note(capsys):
    assert cli.main(["generate", "--temperature", "0", "-n", "3", "--min-length", "30"]) == 0
    out, err = capsys.readouterr()
    assert len(out.splitlines()) == 3
    assert err.count("note: at temperature 0") == 1 and "--min-length 30" in err
    assert cli.main(["generate", "--temperature", "0", "-n", "1", "--min-length", "1"]) == 0
    assert "note" not in capsys.readouterr().err


@pytest.mark.parametrize("level, unit", [("word", "per word"), ("char", "per character")])
def test_plot_axis_names_the_unit(tmp_path, monkeypatch, level, unit):
    from matplotlib.axes import Axes

    from rnnlm.training.loop import EpochRecord
    from rnnlm.training.plots import plot_history
    labels = []
    real = Axes.set_ylabel
    monkeypatch.setattr(Axes, "set_ylabel", lambda self, text, *a, **k: labels.append(text) or real(self, text, *a, **k))
    history = [EpochRecord(epoch=1, train_loss=3.0, valid_loss=3.5, learning_rate=0.1, seconds=1.0, tokens=10,
                           tokens_per_second=10.0)]
    plot_history(tmp_path / "loss.png", history, 50, level)
    assert (tmp_path / "loss.png").stat().st_size > 0
    assert labels[0] == f"cross-entropy {unit} (nats)"  # then the learning-rate panel


def test_plot_history_writes_a_png_into_a_file_object_and_marks_a_partial_epoch():
    import io

    from rnnlm.training.loop import EpochRecord
    from rnnlm.training.plots import _epoch_positions, plot_history
    history = [EpochRecord(epoch=1, train_loss=3.0, valid_loss=None, learning_rate=0.1, seconds=1.0, tokens=10,
                           tokens_per_second=10.0),
               EpochRecord(epoch=2, train_loss=2.5, valid_loss=None, learning_rate=0.05, seconds=1.0, tokens=5,
                           tokens_per_second=5.0, batches=1, num_batches=4, complete=False)]
    handle = io.BytesIO()
    plot_history(handle, history, 50)
    assert handle.getvalue().startswith(b"\x89PNG")
    assert _epoch_positions(history) == [1, 1.25]  # a quarter of epoch 2

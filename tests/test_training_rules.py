"""Training that works on any corpus, through the command line: the poem, the kept model, resume, NaN, time limit.

Each test drives `rnnlm train` in-process on a corpus it writes itself (or a fixture) and checks the
files it leaves behind against what the run printed and against an independent computation.
"""

import math
from pathlib import Path

import numpy as np
import pytest

from rnnlm.io import checkpoint as ckpt
from rnnlm.config import TrainConfig

from helpers import run

FIXTURES = Path(__file__).parent / "fixtures"
# Cao Cao's "Short Song" (public domain), first eight lines: the example
POEM = FIXTURES / "poem-duangexing.txt"
COMMENTS = FIXTURES / "comments.csv"
TINY = ["--vocab-size", "60", "--hidden", "8", "--batch-size", "8", "--seed", "1", "--no-progress"]


@pytest.fixture(scope="module")
def patterned_text(tmp_path_factory):
    """A 3,000-line word corpus whose 10% held-out part is big enough to steer training (> 2,000 tokens)."""
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(20)]
    lines = []
    for _ in range(3000):
        start = int(rng.integers(0, 20))
        lines.append(" ".join(words[(start + k) % 20] for k in range(int(rng.integers(4, 9)))) + " .")
    path = tmp_path_factory.mktemp("patterned") / "patterned.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# --------------------------------------------------------------------- the poem

@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_the_natural_poem_command_recites_every_line(tmp_path, capsys, cell):
    out = tmp_path / "p.npz"
    code, stdout, err = run(capsys, "train", POEM, "--level", "char", "--cell", cell, "--hidden", 32, "--epochs", 300,
                            "--optimizer", "adam", "--learning-rate", 0.01, "--out", out, "--no-progress")
    assert code == 0, err
    assert "validating on 0" in stdout and "no validation set" in stdout and "follows the training loss" in stdout
    history = ckpt.load_model(out).state.history
    assert min(r.learning_rate for r in history) >= 0.01 / 100  # the floor, never the halving rule's 7e-11
    lines = POEM.read_text(encoding="utf-8").split()
    for line in lines:
        code, text, _ = run(capsys, "generate", "--model", out, "--prefix", line[0], "--temperature", 0, "-n", 1,
                            "--min-length", 1)
        assert code == 0 and text == line + "\n", f"{cell}: {line[0]} -> {text!r}"


# --------------------------------------------------------------------- defaults

def test_explicit_valid_fraction_always_wins_over_the_small_corpus_rule(tmp_path, capsys):
    code, stdout, _ = run(capsys, "train", COMMENTS, "--out", tmp_path / "a.npz", "--epochs", 1, *TINY)
    assert code == 0 and "validating on 0 (0 tokens)" in stdout and "no validation set" in stdout
    code, stdout, _ = run(capsys, "train", COMMENTS, "--out", tmp_path / "b.npz", "--epochs", 1, *TINY,
                          "--valid-fraction", 0.2)
    assert code == 0 and "validating on 0 " not in stdout and "valid loss" in stdout
    assert "held-out tokens are too few" in stdout and "follows the training loss" in stdout
    assert ckpt.load_model(tmp_path / "b.npz").train_config.valid_fraction == 0.2


def test_adam_without_a_rate_uses_its_own_default_and_a_too_large_rate_is_reported(tmp_path, capsys):
    code, stdout, err = run(capsys, "train", COMMENTS, "--out", tmp_path / "a.npz", "--epochs", 2, *TINY,
                            "--optimizer", "adam")
    assert code == 0 and "learning rate 0.01 " in stdout and "warning" not in err
    assert ckpt.load_model(tmp_path / "a.npz").train_config.learning_rate == TrainConfig(optimizer="adam").learning_rate
    code, stdout, err = run(capsys, "train", COMMENTS, "--out", tmp_path / "b.npz", "--epochs", 2, *TINY,
                            "--optimizer", "adam", "--learning-rate", 3.0, "--no-clip")
    assert code in (0, 2)
    assert "worse than a uniform guess" in err and "likely too large" in err


# --------------------------------------------------------------------- the kept model

def test_out_keeps_the_best_validation_epoch_and_last_resumes(tmp_path, capsys, patterned_text):
    out = tmp_path / "m.npz"
    args = ["train", patterned_text, "--out", out, "--hidden", 8, "--batch-size", 64, "--no-progress",
            "--optimizer", "adam", "--learning-rate", 0.05]
    code, stdout, err = run(capsys, *args, "--epochs", 3)
    assert code == 0, err
    assert "follows the validation loss" in stdout
    last = tmp_path / "m.last.npz"
    final = ckpt.load_model(last).state
    losses = [r.valid_loss for r in final.history]
    best = int(np.argmin(losses)) + 1
    kept = ckpt.load_model(out)
    assert final.epoch == 3 and final.best_epoch == best and kept.state.epoch == best
    assert f"kept epoch {best}" in stdout
    # the kept parameters really are that epoch's: evaluate reproduces its validation loss
    from rnnlm.data.corpus import load_corpus
    from rnnlm.training.loop import split_train_valid
    corpus = load_corpus(patterned_text, vocabulary=kept.vocabulary)
    _, _, Xv, Yv = split_train_valid(corpus.X, corpus.Y, kept.train_config.valid_fraction, kept.train_config.seed)
    assert kept.model.mean_loss(Xv, Yv) == pytest.approx(losses[best - 1], rel=1e-5)
    code, stdout, err = run(capsys, *args, "--epochs", 4, "--resume")
    assert code == 0 and "Resuming " + str(last) in stdout and "epoch 4/4" in stdout, err


# --------------------------------------------------------------------- resume means resume

def test_resume_with_a_new_learning_rate_uses_it_and_restarts_the_rule(tmp_path, capsys):
    out = tmp_path / "m.npz"
    base = ["train", COMMENTS, "--out", out, *TINY, "--learning-rate", 0.5]
    assert run(capsys, *base, "--epochs", 2)[0] == 0
    code, stdout, err = run(capsys, "train", COMMENTS, "--out", out, *TINY, "--epochs", 3, "--resume",
                            "--learning-rate", 0.125)
    assert code == 0, err
    assert "(learning rate 0.125, as given)" in stdout
    state = ckpt.load_model(out).state
    assert [r.learning_rate for r in state.history] == [0.5, 0.5, 0.125]
    # the rule forgot the old run: its memory holds only the resumed epoch's loss
    assert state.schedule["bad_evaluations"] == 0
    assert state.schedule["best"] == pytest.approx(state.history[-1].train_loss)


@pytest.mark.parametrize("option", [["--optimizer", "sgd"], ["--seed", "7"], ["--valid-fraction", "0.3"],
                                    ["--max-records", "5"]])
def test_resume_refuses_options_that_change_the_data_or_the_optimizer(tmp_path, capsys, option):
    out = tmp_path / "m.npz"
    assert run(capsys, "train", COMMENTS, "--out", out, *TINY, "--epochs", 1)[0] == 0
    before = out.read_bytes()
    argv = ["train", COMMENTS, "--out", out, "--no-progress", "--epochs", 2, "--resume", *option]
    code, _, err = run(capsys, *argv)
    assert code == 2 and err.count("\n") == 1 and f"{option[0]} cannot change on --resume" in err
    assert out.read_bytes() == before
    # the same value as stored is not a change
    same = {"--optimizer": "adam", "--seed": "1", "--valid-fraction": "0.0"}.get(option[0])
    if same is not None:
        code, _, err = run(capsys, "train", COMMENTS, "--out", out, "--no-progress", "--epochs", 2, "--resume",
                           option[0], same)
        assert code == 0, err


# --------------------------------------------------------------------- never write NaN

@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_a_diverging_run_never_writes_non_finite_parameters(tmp_path, capsys):
    out = tmp_path / "m.npz"
    assert run(capsys, "train", COMMENTS, "--out", out, *TINY, "--epochs", 1)[0] == 0
    before = out.read_bytes()
    code, _, err = run(capsys, "train", COMMENTS, "--out", out, *TINY, "--epochs", 5, "--resume",
                       "--learning-rate", 1e38, "--no-clip")
    assert code == 2 and "diverged" in err and "no diverged parameters were saved" in err
    assert out.read_bytes() == before
    loaded = ckpt.load_model(out)
    assert all(np.isfinite(p).all() for p in loaded.model.params.values())
    fresh = tmp_path / "fresh.npz"
    code, _, err = run(capsys, "train", COMMENTS, "--out", fresh, *TINY, "--epochs", 5, "--learning-rate", 1e38,
                       "--no-clip")
    assert code == 2 and "diverged" in err and not fresh.exists()


def test_the_update_check_catches_what_the_batch_loss_cannot_see(rng):
    """The loss is measured before an update, so only a check after it sees parameters the update broke."""
    from rnnlm.errors import RnnlmError
    from rnnlm.models.fast import FastRNN
    from rnnlm.training.loop import train
    X = [np.array([0, 1, 2]), np.array([2, 1])]
    Y = [np.array([1, 2, 3]), np.array([1, 0])]
    model = FastRNN(5, 4, seed=0)
    real = model.total_loss_and_gradients

    def poisoned(X, Y, sparse=False):
        loss, grads = real(X, Y, sparse=sparse)
        grads["W"] = np.full_like(model.W, np.inf)  # finite loss, inf gradient...
        return loss, grads

    model.total_loss_and_gradients = poisoned
    seen = []
    with pytest.raises(RnnlmError, match="diverged"):
        train(model, X, Y, TrainConfig(epochs=1, batch_size=2, clip=None, valid_fraction=0), callback=seen.append)
    assert not [e for e in seen if e.kind == "epoch"]  # ...so no epoch event (nothing to save) ever came


# --------------------------------------------------------------------- time limit

def test_time_limit_stops_at_a_batch_boundary_with_a_resumable_model(tmp_path, capsys, patterned_text):
    out, whole = tmp_path / "m.npz", tmp_path / "whole.npz"
    args = [patterned_text, "--hidden", 8, "--batch-size", 64, "--no-progress", "--valid-fraction", 0,
            "--optimizer", "adam", "--epochs", 2]
    code, stdout, err = run(capsys, "train", *args, "--out", out, "--time-limit", 1e-6)
    assert code == 0, err
    assert "stopped by the time limit after batch 1/" in stdout and "Stopped by the time limit" in stdout
    state = ckpt.load_model(out).state
    assert state.epoch == 0 and state.batch == 1 and not state.history[-1].complete
    # resume (without the limit: it is a training option that may change) finishes exactly like one run
    code, stdout, err = run(capsys, "train", *args, "--out", out, "--resume", "--time-limit", 1e6)
    assert code == 0 and "after epoch 0, batch 1" in stdout, err
    assert run(capsys, "train", *args, "--out", whole)[0] == 0
    a, b = ckpt.load_model(whole), ckpt.load_model(out)
    assert b.state.epoch == 2 and b.state.batch == 0
    for name in a.model.params:
        np.testing.assert_allclose(a.model.params[name], b.model.params[name], rtol=1e-6, atol=1e-7)
    # the two records of epoch 1 cover its batches once, and pool to the uninterrupted epoch's loss
    first, rest = b.state.history[0], b.state.history[1]
    assert (first.first_batch, first.batches, rest.first_batch, rest.batches) == (0, 1, 1, first.num_batches)
    pooled = (first.train_loss * first.tokens + rest.train_loss * rest.tokens) / (first.tokens + rest.tokens)
    assert pooled == pytest.approx(a.state.history[0].train_loss, rel=1e-6)
    assert math.isfinite(b.state.history[-1].train_loss)


# --------------------------------------------------------------------- the rule, by name, through the CLI

@pytest.mark.parametrize("rule, rate, floor", [("plateau", 1e-4, 2e-5), ("halving", 0.3, None)])
def test_the_rule_named_on_the_command_line_is_the_one_applied(tmp_path, capsys, rule, rate, floor):
    """Replaying the recorded losses through the named rule reproduces every rate the run used.

    Adam at 0.3 makes the loss bounce, which the halving rule reacts to; SGD at 1e-4 barely moves
    it, a real plateau, which the plateau rule reacts to down to its floor.
    """
    from rnnlm.training.schedules import HalvingSchedule, PlateauSchedule
    out = tmp_path / "m.npz"
    options = ["--optimizer", "adam"] if rule == "halving" else ["--min-lr", floor]
    code, stdout, err = run(capsys, "train", COMMENTS, "--out", out, *TINY, "--epochs", 12, "--lr-schedule", rule,
                            "--learning-rate", rate, "--lr-patience", 1, *options)
    assert code == 0, err
    loaded = ckpt.load_model(out)
    history, config = loaded.state.history, loaded.train_config
    assert config.lr_schedule == rule
    if rule == "halving":
        replay = HalvingSchedule(rate)
    else:
        replay = PlateauSchedule(rate, min_lr=floor, patience=1, threshold=config.lr_threshold,
                                 smoothing=config.lr_smoothing, factor=config.lr_factor)
    expected = [rate]
    for record in history[:-1]:
        expected.append(replay.update(record.train_loss))
    assert [r.learning_rate for r in history] == expected
    assert len(set(expected)) > 1, "the run never changed its rate: the test would not see a wrong rule"
    if rule == "plateau":
        assert min(expected) == floor
        assert "(plateau: the smoothed train loss gained under" in stdout and "at the floor" in stdout

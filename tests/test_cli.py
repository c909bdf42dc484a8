"""The `rnnlm` command end to end: every command, exact resume, Ctrl-C, and the bad-input matrix.

Most tests call `rnnlm.cli.main(argv)` in-process (fast); a few run `python -m rnnlm` in a
subprocess to see what a user sees (exit codes, no traceback, SIGINT).
"""

import json
import math
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from rnnlm.io import checkpoint as ckpt
from rnnlm import cli
from rnnlm.training import loop as training_loop
from rnnlm.data.corpus import load_corpus

from helpers import run

FIXTURES = Path(__file__).parent / "fixtures"
COMMENTS = FIXTURES / "comments.csv"
REPO = Path(__file__).resolve().parent.parent
TINY = ["--vocab-size", "60", "--hidden", "8", "--batch-size", "8", "--seed", "1", "--valid-fraction", "0.1",
        "--no-progress"]


def train(capsys, out, *extra, corpus=COMMENTS, epochs=3):
    code, stdout, err = run(capsys, "train", corpus, "--out", out, "--epochs", epochs, *TINY, *extra)
    assert code == 0, err
    return stdout


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "tiny.npz"
    assert cli.main(["train", str(COMMENTS), "--out", str(path), "--epochs", "4", "--optimizer", "adam",
                     "--learning-rate", "0.02", *TINY]) == 0
    return path


def python_m_rnnlm(*argv, **kwargs):
    env = {**os.environ, "PYTHONPATH": str(REPO), "MPLBACKEND": "Agg"}
    return subprocess.run([sys.executable, "-m", "rnnlm", *map(str, argv)], capture_output=True, text=True,
                          env=env, timeout=60, **kwargs)


# --------------------------------------------------------------------- help

@pytest.mark.parametrize("command", ["train", "evaluate", "generate", "gradcheck", "download", "export"])
def test_every_command_explains_itself_with_an_example(capsys, command):
    code, out, _ = run(capsys, command, "--help")
    assert code == 0 and "example" in out and f"rnnlm {command}" in out


def test_help_shows_the_config_dataclass_defaults(capsys):
    from rnnlm.config import DataConfig, ModelConfig, TrainConfig
    code, out, _ = run(capsys, "train", "--help")
    out = " ".join(out.split())
    for option, value in [("--vocab-size", DataConfig.vocabulary_size), ("--hidden", ModelConfig.hidden_size),
                          ("--bptt-truncate", ModelConfig.bptt_truncate), ("--epochs", TrainConfig.epochs),
                          ("--batch-size", TrainConfig.batch_size),
                          ("--valid-fraction", TrainConfig.valid_fraction), ("--optimizer", TrainConfig.optimizer)]:
        # the default must stand in this option's own entry, not in a later option's ("-- X" + a metavar starts one)
        entry = r"\b(?:(?! --[a-z-]+ [A-Z{])[^(])*\(default: "
        assert re.search(re.escape(option) + entry + re.escape(str(value)) + r"\)", out), option
    # the learning rate's default depends on the optimizer: each one is shown, read from the dataclass
    for optimizer in ("sgd", "adagrad", "rmsprop", "adam"):
        rate = TrainConfig(optimizer=optimizer).learning_rate
        assert re.search(r"--learning-rate LR [^(]*\(default: [^)]*\b" + re.escape(f"{rate:g} for {optimizer}"), out)


def test_docs_option_table_matches_the_dataclasses():
    """docs/cli.md lists each option's field and default; fail when a default changes and the doc does not."""
    from rnnlm import config
    rows = re.findall(r"^\| `[^`]+` \| `(\w+)\.(\w+)`[^|]* \| ([^|]+) \|", (REPO / "docs" / "cli.md").read_text(), re.M)
    assert len(rows) >= 15
    for cls, name, documented in rows:
        default = getattr(getattr(config, cls), name)
        expected = "none" if default is None else "off" if default is False else str(default)
        assert documented.strip() == expected, f"docs/cli.md says {cls}.{name} defaults to {documented.strip()}"


def test_top_level_help_and_usage_errors(capsys):
    code, out, _ = run(capsys, "--help")
    assert code == 0 and all(c in out for c in ("train", "evaluate", "generate", "gradcheck", "download"))
    code, _, err = run(capsys)
    assert code == 2 and err == "rnnlm: error: the following arguments are required: COMMAND; see 'rnnlm --help'\n"
    code, _, err = run(capsys, "train", COMMENTS, "--out", "x.npz", "--cell", "transformer")
    assert code == 2 and err.count("\n") == 1 and "invalid choice: 'transformer'" in err
    assert err.endswith("see 'rnnlm train --help'\n")
    code, _, err = run(capsys, "generate", "-n", "many")
    assert code == 2 and err.count("\n") == 1 and "invalid int value: 'many'" in err


def test_a_mistyped_option_points_to_the_subcommands_help(capsys):
    code, _, err = run(capsys, "train", COMMENTS, "--out", "x.npz", "--bogus")
    assert code == 2 and err == "rnnlm: error: unrecognized arguments: --bogus; see 'rnnlm train --help'\n"
    code, _, err = run(capsys, "trees", "predict", "--bogus", "x")
    assert code == 2 and err.endswith("see 'rnnlm trees predict --help'\n")
    code, _, err = run(capsys, "--bogus", "generate")
    assert code == 2 and err.endswith("see 'rnnlm generate --help'\n")


# --------------------------------------------------------------------- train

def test_train_prints_report_progress_and_saves_every_epoch(tmp_path, capsys):
    out = tmp_path / "m.npz"
    plot = tmp_path / "loss.png"
    stdout = train(capsys, out, "--plot", plot)
    assert "Read 24 comments" in stdout and "Using vocabulary size 60." in stdout
    assert "least frequent word" in stdout and "map to UNKNOWN_TOKEN" in stdout
    assert re.search(r"Model: FastRNN .* [\d,]+ parameters", stdout)
    epochs = re.findall(r"epoch (\d)/3: train loss [\d.]+ \(perplexity [\d.]+\), valid loss [\d.]+ "
                        r"\(perplexity [\d.]+\)", stdout)
    assert epochs == ["1", "2", "3"]
    loaded = ckpt.load_model(out)
    assert loaded.kind == "fast-rnn" and loaded.state.epoch == 3 and len(loaded.state.history) == 3
    assert loaded.model.config.hidden_size == 8 and len(loaded.vocabulary) == 60
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_progress_bar_goes_to_stderr(tmp_path, capsys):
    pytest.importorskip("tqdm")
    code, out, err = run(capsys, "train", COMMENTS, "--out", tmp_path / "m.npz", "--epochs", 1,
                         *[a for a in TINY if a != "--no-progress"])
    assert code == 0 and "tokens/s" in err and "batch" in err and "epoch 1/1" in out


@pytest.mark.parametrize("optimizer", [["--optimizer", "sgd", "--momentum", "0.9", "--learning-rate", "0.3"],
                                       ["--optimizer", "adam", "--learning-rate", "0.01"],
                                       ["--cell", "lstm", "--optimizer", "rmsprop", "--learning-rate", "0.01"]])
def test_resume_reproduces_the_uninterrupted_run(tmp_path, capsys, optimizer):
    whole, split = tmp_path / "whole.npz", tmp_path / "split.npz"
    train(capsys, whole, *optimizer, epochs=4)
    train(capsys, split, *optimizer, epochs=2)
    stdout = train(capsys, split, "--resume", epochs=4)
    assert "Resuming" in stdout and "epoch 3/4" in stdout and "epoch 1/4" not in stdout
    a, b = ckpt.load_model(whole), ckpt.load_model(split)
    assert a.state.epoch == b.state.epoch == 4
    for ra, rb in zip(a.state.history, b.state.history):
        assert (ra.train_loss, ra.valid_loss, ra.learning_rate) == (rb.train_loss, rb.valid_loss, rb.learning_rate)
    for name in a.model.params:
        np.testing.assert_array_equal(a.model.params[name], b.model.params[name])


def test_full_bptt(tmp_path, capsys):
    out = tmp_path / "m.npz"
    stdout = train(capsys, out, "--bptt-truncate", "full", epochs=1)
    assert "bptt_truncate None" in stdout and ckpt.load_model(out).model.config.bptt_truncate is None
    code, _, err = run(capsys, "train", COMMENTS, "--out", out, "--resume", "--bptt-truncate", "3", "--epochs", 2)
    assert code == 2 and "bptt_truncate None, not 3" in err


def test_resume_when_already_done_changes_nothing(tmp_path, capsys):
    out = tmp_path / "m.npz"
    train(capsys, out, epochs=2)
    before = out.read_bytes()
    code, stdout, _ = run(capsys, "train", COMMENTS, "--out", out, "--resume", "--epochs", 2, "--no-progress")
    assert code == 0 and "already been trained for 2 epochs" in stdout and out.read_bytes() == before


def test_ctrl_c_saves_the_last_epoch_and_resume_matches(tmp_path, capsys, monkeypatch):
    real_train = training_loop.train

    def interrupted(model, X, Y, config, callback=None, **kwargs):
        def on_event(event):
            callback(event)
            if event.kind == "batch" and event.epoch == 2:
                raise KeyboardInterrupt
        return real_train(model, X, Y, config, callback=on_event, **kwargs)

    out, whole = tmp_path / "m.npz", tmp_path / "whole.npz"
    monkeypatch.setattr(training_loop, "train", interrupted)
    code, stdout, err = run(capsys, "train", COMMENTS, "--out", out, "--epochs", 3, *TINY)
    assert code == 130 and "epoch 1/3" in stdout
    assert err.strip().splitlines()[-1].startswith("rnnlm: interrupted during epoch 2; ") and "--resume" in err
    assert ckpt.load_model(out).state.epoch == 1
    monkeypatch.setattr(training_loop, "train", real_train)
    train(capsys, out, "--resume")
    train(capsys, whole)
    a, b = ckpt.load_model(whole), ckpt.load_model(out)
    assert [r.valid_loss for r in a.state.history] == [r.valid_loss for r in b.state.history]


def test_ctrl_c_in_the_first_epoch_leaves_an_existing_out_alone(tmp_path, capsys, monkeypatch, model_file):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    out = tmp_path / "m.npz"
    out.write_bytes(model_file.read_bytes())
    monkeypatch.setattr(training_loop, "train", interrupted)
    code, _, err = run(capsys, "train", COMMENTS, "--out", out, "--epochs", 3, *TINY)
    assert code == 130 and "before any epoch finished" in err and "is as it was" in err
    assert out.read_bytes() == model_file.read_bytes()


def test_sigint_to_a_real_training_process(tmp_path):
    out = tmp_path / "m.npz"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "rnnlm", "train", str(COMMENTS), "--out", str(out),
                             "--epochs", "100000", *TINY], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)
    try:
        deadline = time.monotonic() + 30
        while not out.exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        assert out.exists(), proc.stderr.read() if proc.poll() is not None else "no checkpoint after 30 s"
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "rnnlm: interrupted during epoch" in err
    assert ckpt.load_model(out).state.epoch >= 1
    assert [p.name for p in tmp_path.iterdir()] == ["m.npz"]  # no temporary file left behind


def test_resume_on_another_corpus_is_refused_and_changes_nothing(tmp_path, capsys, tiny_text):
    out = tmp_path / "m.npz"
    train(capsys, out, epochs=1)
    before = out.read_bytes()
    code, _, err = run(capsys, "train", tiny_text, "--out", out, "--epochs", 2, *TINY, "--resume")
    assert code == 2 and err.count("\n") == 1 and "is not the corpus" in err and str(tiny_text) in err
    assert out.read_bytes() == before


def test_kill_9_at_any_moment_leaves_a_loadable_model(tmp_path):
    out = tmp_path / "m.npz"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    for delay in (0.0, 0.13, 0.37):
        proc = subprocess.Popen([sys.executable, "-m", "rnnlm", "train", str(COMMENTS), "--out", str(out),
                                 "--epochs", "100000", *TINY], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                env=env)
        deadline = time.monotonic() + 30
        while not out.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(delay)
        proc.kill()
        proc.wait(timeout=30)
        assert ckpt.load_model(out).state.epoch >= 1  # never a half-written file


@pytest.mark.parametrize("options, kind", [
    (["--cell", "gru", "--optimizer", "adam", "--learning-rate", "0.01"], "language-model"),
    (["--cell", "lstm", "--peephole", "--clip", "1"], "language-model"),
    (["--cell", "jordan", "--embed-size", "6"], "language-model"),
    (["--layers", "2", "--optimizer", "rmsprop", "--learning-rate", "0.01"], "language-model"),
    (["--cell", "lstm", "--embed-size", "8", "--dropout", "0.2", "--tie-weights"], "language-model"),
])
def test_every_model_kind_trains_evaluates_and_generates(tmp_path, capsys, options, kind):
    out = tmp_path / "m.npz"
    train(capsys, out, *options, epochs=1)
    assert ckpt.load_model(out).kind == kind
    code, stdout, _ = run(capsys, "evaluate", "--model", out, COMMENTS)
    assert code == 0 and re.search(r"^perplexity: [\d.]+$", stdout, re.M)
    code, stdout, _ = run(capsys, "generate", "--model", out, "-n", 2, "--prefix", "the game", "--seed", 1)
    assert code == 0 and all(line.startswith("The game") for line in stdout.splitlines())


def test_train_dropout_and_tied_weights_are_stored_and_shown_by_info(tmp_path, capsys):
    out = tmp_path / "m.npz"
    train(capsys, out, "--cell", "gru", "--embed-size", "8", "--dropout", "0.3", "--tie-weights", epochs=1)
    loaded = ckpt.load_model(out)
    assert (loaded.model.config.dropout, loaded.model.config.tie_weights) == (0.3, True)
    assert "W_out" not in loaded.model.params
    code, stdout, _ = run(capsys, "info", "--model", out)
    assert code == 0 and "dropout 0.3, tied weights yes" in stdout


@pytest.mark.parametrize("options, message", [
    (["--embed-size", "6", "--tie-weights"], "--tie-weights needs --embed-size equal to --hidden (got 6 and 8)"),
    (["--dropout", "0.2"], "--dropout and --tie-weights need a LanguageModel"),
    (["--dropout", "1.5", "--embed-size", "8"], "dropout must be at least 0 and below 1"),
])
def test_train_refuses_dropout_and_tying_it_cannot_do_in_one_line(tmp_path, capsys, options, message):
    code, _, err = run(capsys, "train", COMMENTS, "--out", tmp_path / "m.npz", "--epochs", 1, *TINY, *options)
    assert code != 0 and message in err and len(err.strip().splitlines()) == 1


def test_train_help_says_where_dropout_and_tying_apply(capsys):
    code, out, _ = run(capsys, "train", "--help")
    text = " ".join(out.split())
    assert code == 0 and "--dropout P" in text and "--tie-weights" in text and "needs --embed-size" in text


# --------------------------------------------------------------------- evaluate

def test_evaluate_reports_pooled_perplexity(model_file, capsys):
    code, out, _ = run(capsys, "evaluate", "--model", model_file, COMMENTS)
    assert code == 0
    perplexity = float(re.search(r"^perplexity: ([\d.]+)$", out, re.M).group(1))
    assert "log(60) = 4.0943" in out and "UNKNOWN_TOKEN" in out
    # the same number from the tutorial's own float64 RNNNumpy
    loaded = ckpt.load_model(model_file)
    corpus = load_corpus(COMMENTS, vocabulary=loaded.vocabulary)
    expected = math.exp(loaded.model.to_reference().calculate_loss(corpus.X, corpus.Y))
    assert perplexity == pytest.approx(expected, rel=1e-3)
    tokens = int(re.search(r"Predicted tokens: ([\d,]+)", out).group(1).replace(",", ""))
    assert tokens == sum(len(s) + 1 for s in corpus.sentences)  # every word plus SENTENCE_END


# --------------------------------------------------------------------- generate

def test_generate_is_reproducible_and_readable(model_file, capsys):
    argv = ("generate", "--model", model_file, "-n", 4, "--seed", 3, "--min-length", 2, "--max-length", 12)
    code, first, _ = run(capsys, *argv)
    _, second, _ = run(capsys, *argv)
    assert code == 0 and first == second and len(first.splitlines()) == 4
    for line in first.splitlines():
        assert "UNKNOWN_TOKEN" not in line and "SENTENCE_" not in line and line[:1].isupper()
        assert len(line.split()) <= 12


def test_generate_greedy_and_prefix(model_file, capsys):
    code, out, _ = run(capsys, "generate", "--model", model_file, "-n", 3, "--temperature", 0, "--min-length", 0)
    assert code == 0 and len(set(out.splitlines())) == 1
    code, out, err = run(capsys, "generate", "--model", model_file, "-n", 2, "--prefix", "I think zorblax",
                         "--seed", 0, "--min-length", 0)
    assert code == 0 and all(line.startswith("I think zorblax") for line in out.splitlines())
    assert "zorblax" in err and "UNKNOWN_TOKEN" in err


def test_generate_with_the_bundled_model(capsys):
    if not ckpt.BUNDLED_MODEL.is_file():
        pytest.skip("bundled model not built yet")
    code, out, _ = run(capsys, "generate", "-n", 3, "--seed", 0)
    assert code == 0 and len(out.splitlines()) == 3 and "UNKNOWN_TOKEN" not in out


def test_generate_shows_placeholders_for_people_unless_raw_tokens(capsys):
    if not ckpt.BUNDLED_MODEL.is_file():
        pytest.skip("bundled model not built yet")
    argv = ("generate", "-n", 2, "--seed", 0, "--max-length", 6, "--prefix", "see https://x.com and /r/python")
    code, out, _ = run(capsys, *argv)
    assert code == 0 and all(line.startswith("See <link> and r/<subreddit>") for line in out.splitlines())
    assert "_TOKEN" not in out
    code, out, _ = run(capsys, *argv, "--raw-tokens")
    assert code == 0 and all(line.startswith("See URL_TOKEN and SUBREDDIT_TOKEN") for line in out.splitlines())
    code, out, _ = run(capsys, "generate", "--help")
    assert "--raw-tokens" in out


def test_subprocess_generate(model_file):
    first = python_m_rnnlm("generate", "--model", model_file, "-n", 2, "--seed", 5)
    second = python_m_rnnlm("generate", "--model", model_file, "-n", 2, "--seed", 5)
    assert first.returncode == 0 and first.stdout == second.stdout and len(first.stdout.splitlines()) == 2


# --------------------------------------------------------------------- export

@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_export_drops_the_optimizer_state_and_cannot_be_resumed(model_file, tmp_path, capsys, dtype):
    small = tmp_path / "small.npz"
    code, out, _ = run(capsys, "export", model_file, "--out", small, "--dtype", dtype)
    assert code == 0 and "no optimizer state" in out
    assert small.stat().st_size < model_file.stat().st_size
    original, copy = ckpt.load_model(model_file), ckpt.load_model(small)
    assert copy.state.history == original.state.history and copy.state.optimizer_state == {}
    for name, value in original.model.params.items():
        np.testing.assert_allclose(copy.model.params[name], value, rtol=1e-3 if dtype == "float16" else 0, atol=1e-3)
    argv = ("generate", "--model", small, "-n", 2, "--seed", 1)
    if dtype == "float32":  # the same parameters give the same sentences
        assert run(capsys, *argv)[1] == run(capsys, "generate", "--model", model_file, "-n", 2, "--seed", 1)[1]
    code, _, err = run(capsys, "train", COMMENTS, "--out", tmp_path / "m.npz", "--resume", small, "--epochs", 9)
    assert code == 2 and "no training state to resume from" in err


# --------------------------------------------------------------------- gradcheck

def test_gradcheck_passes_and_fails(capsys, monkeypatch):
    code, out, _ = run(capsys, "gradcheck")
    assert code == 0 and "all parameters passed" in out and "U (10, 100)" in out
    from rnnlm.models.reference import RNNNumpy
    real = RNNNumpy.bptt
    monkeypatch.setattr(RNNNumpy, "bptt", lambda self, x, y: [g * 1.5 for g in real(self, x, y)])
    code, out, _ = run(capsys, "gradcheck")
    assert code == 1 and "FAILED" in out


# --------------------------------------------------------------------- bad input

def _files(tmp_path, model_file):
    """Bad files of every kind, and a copy of a good model to check nothing is modified."""
    files = {"model": tmp_path / "model.npz", "empty": tmp_path / "empty.csv", "binary": tmp_path / "bin.txt",
             "dir": tmp_path / "folder", "nobody": tmp_path / "nobody.csv", "notmodel": tmp_path / "notmodel.npz",
             "truncated": tmp_path / "truncated.npz", "future": tmp_path / "future.npz",
             "foreign": tmp_path / "foreign.txt", "missing": tmp_path / "missing.csv", "out": tmp_path / "out.npz"}
    good = model_file.read_bytes()
    files["model"].write_bytes(good)
    files["out"].write_bytes(good)
    files["empty"].write_bytes(b"  \n")
    files["binary"].write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    files["dir"].mkdir()
    files["nobody"].write_text("id,text\n1,hello there\n", encoding="utf-8")
    files["notmodel"].write_text("this is not a model\n", encoding="utf-8")
    files["truncated"].write_bytes(good[:len(good) // 2])
    with np.load(model_file) as data:
        arrays = dict(data)
    meta = json.loads(arrays["metadata"].tobytes())
    meta["format_version"] = 7
    arrays["metadata"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    np.savez(files["future"], **arrays)
    files["foreign"].write_text("Ζεύς ἐβασίλευε πολλῶν χρόνων\nκαὶ ἡ θάλασσα ἦν ἥσυχος\n", encoding="utf-8")
    return files


T = ["train", "{corpus}", "--out", "{out}", "--no-progress", "--epochs", "1"]
BAD_INPUT = [
    # (argv with {placeholders}, part of the expected message)
    (["train", "{missing}", "--out", "{out}"], "not found"),
    (["train", "{empty}", "--out", "{out}"], "empty"),
    (["train", "{binary}", "--out", "{out}"], "binary"),
    (["train", "{dir}", "--out", "{out}"], "directory"),
    (["train", "{nobody}", "--out", "{out}"], "no 'body' column"),
    (["train", "{comments}", "--out", "{out}", "--hidden", "0"], "hidden size must be a positive integer"),
    (["train", "{comments}", "--out", "{out}", "--vocab-size", "3"], "vocabulary size must be at least 4"),
    (["train", "{comments}", "--out", "{out}", "--epochs", "0"], "epochs must be a positive integer"),
    (["train", "{comments}", "--out", "{out}", "--epochs", "-2"], "epochs must be a positive integer"),
    (["train", "{comments}", "--out", "{out}", "--batch-size", "-1"], "batch size"),
    (["train", "{comments}", "--out", "{out}", "--layers", "0"], "number of layers"),
    (["train", "{comments}", "--out", "{out}", "--bptt-truncate", "-1"], "bptt truncation"),
    (["train", "{comments}", "--out", "{out}", "--valid-fraction", "1.5"], "validation fraction"),
    (["train", "{comments}", "--out", "{out}", "--learning-rate", "-0.1"], "learning rate must be positive"),
    (["train", "{comments}", "--out", "{out}", "--max-records", "-3"], "max-records"),
    (["train", "{comments}", "--out", "{out}", "--peephole"], "LSTM options"),
    (["train", "{comments}", "--out", "{dir}"], "is a directory"),
    (["train", "{comments}", "--out", "{dir}/no/such/folder/m.npz"], "does not exist"),
    (["train", "{comments}", "--out", "{out}", "--resume", "{notmodel}"], "not an rnnlm model file"),
    (["train", "{comments}", "--out", "{out}", "--resume", "--hidden", "30"], "keeps its shape"),
    (["train", "{comments}", "--out", "{out}", "--resume", "{truncated}"], "truncated"),
    (["evaluate", "--model", "{notmodel}", "{comments}"], "not an rnnlm model file"),
    (["evaluate", "--model", "{truncated}", "{comments}"], "truncated"),
    (["evaluate", "--model", "{future}", "{comments}"], "format version 7"),
    (["evaluate", "--model", "{missing}", "{comments}"], "model file not found"),
    (["evaluate", "--model", "{model}", "{foreign}"], "no word of"),
    (["evaluate", "--model", "{model}", "{empty}"], "empty"),
    (["generate", "--model", "{dir}"], "directory"),
    (["generate", "--model", "{model}", "-n", "-1"], "num sentences must be a positive integer"),
    (["generate", "--model", "{model}", "--min-length", "9", "--max-length", "5"], "larger than max length"),
    (["generate", "--model", "{model}", "--temperature", "-1"], "temperature"),
    (["generate", "--model", "{model}", "--seed", "-4"], "seed"),
]


@pytest.mark.parametrize("argv, message", BAD_INPUT, ids=[f"{a[0]}-{m}" for a, m in BAD_INPUT])
def test_bad_input_one_line_exit_2_nothing_modified(tmp_path, model_file, capsys, argv, message):
    files = _files(tmp_path, model_file)
    names = {**{k: str(v) for k, v in files.items()}, "comments": str(COMMENTS)}
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    code, out, err = run(capsys, *[a.format(**names) for a in argv])
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("rnnlm: error: ") and message in err, err
    assert "Traceback" not in err
    after = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    assert after == before  # --out and every model file byte-identical, nothing new written


def test_subprocess_bad_input_has_no_traceback(tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"PK\x03\x04 broken")
    result = python_m_rnnlm("evaluate", "--model", bad, COMMENTS)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    result = python_m_rnnlm("train", tmp_path / "nothing.csv", "--out", tmp_path / "m.npz")
    assert result.returncode == 2 and result.stderr.startswith("rnnlm: error: corpus file not found")


def test_a_ctrl_c_swallowed_by_a_destructor_still_stops_training(tmp_path, capsys, monkeypatch):
    """A SIGINT that lands in a __del__ (NLTK's regex objects have one) is only 'ignored' by Python: the
    command must still stop at the next batch, exit 130, keep the last epoch and print no traceback."""
    out = tmp_path / "m.npz"
    calls = []
    real = training_loop.clip_global_norm

    class Doomed:
        def __del__(self):
            raise KeyboardInterrupt  # what the signal handler does, at the worst moment

    def clip(*args, **kwargs):
        calls.append(1)
        if len(calls) == 12:  # well into training: after the first saved epoch
            Doomed()  # collected at once: its KeyboardInterrupt goes to sys.unraisablehook, not to us
        return real(*args, **kwargs)

    monkeypatch.setattr(training_loop, "clip_global_norm", clip)
    code, out_text, err = run(capsys, "train", COMMENTS, "--out", out, "--epochs", 1000, *TINY)
    assert code == 130, err
    assert "Traceback" not in err and "Exception ignored" not in err and "interrupted during epoch" in err
    assert len(calls) in (12, 13)  # stopped at that batch's report or the next, not 1000 epochs later
    assert ckpt.load_model(out).state.epoch >= 1


def test_min_count_sets_which_words_the_vocabulary_keeps(tmp_path, capsys):
    """--min-count K: words seen fewer than K times become UNKNOWN_TOKEN; 1 keeps every word (the tutorial's rule)."""
    sizes = {}
    for k in (1, 2, 3):
        out = tmp_path / f"m{k}.npz"
        code, text, err = run(capsys, "train", COMMENTS, "--out", out, "--epochs", 1, "--min-count", k,
                              "--vocab-size", 8000, "--hidden", 8, "--seed", 1, "--no-progress")
        assert code == 0, err
        sizes[k] = len(ckpt.load_model(out).vocabulary)
    assert sizes[1] > sizes[2] > sizes[3]
    code, _, err = run(capsys, "train", COMMENTS, "--out", tmp_path / "x.npz", "--min-count", 0)
    assert code == 2 and err.count("\n") == 1 and "minimum count" in err

"""Stream training: batching layout, state carried exactly across windows, gradients stopping at the window, the CLI.

The independent computation throughout is `model.step` run token by token over a whole sequence with
`numerics.log_softmax`: it shares no code with the windowed, batched forward pass being tested.
"""

import numpy as np
import pytest

from rnnlm.io import checkpoint as ckpt
from rnnlm.nn.gradcheck import check_gradients
from rnnlm.models.language_model import LanguageModel
from rnnlm.nn.numerics import log_softmax
from rnnlm.training.stream import StreamBatches, batchify, load_stream, split_stream, stream_total_loss, stream_tokens

from helpers import run

CELLS = ["rnn", "gru", "lstm", "jordan"]
TEXT = ("FIRST:\nWe are accounted poor citizens.\n\nSECOND:\nWould you proceed especially against him?\n"
        "ALL:\nAgainst him first: he is a very dog to the commonalty.\n") * 6


def stepwise_loss(model, x, y):
    """Summed cross-entropy of one sequence, one `step` at a time from the zero state."""
    state, total = model.start_state(1), 0.0
    for token, target in zip(x, y):
        scores, state = model.step(state, np.array([token]))
        total -= float(log_softmax(np.asarray(scores, dtype=np.float64))[0, target])
    return total


def test_batchify_lays_the_text_out_as_contiguous_rows():
    X, Y = batchify(np.arange(12), 3)  # 11 predictions, 3 rows of 3, the last 2 dropped
    np.testing.assert_array_equal(X, [[0, 1, 2], [3, 4, 5], [6, 7, 8]])
    np.testing.assert_array_equal(Y, X + 1)
    assert split_stream(np.arange(10), 0.3)[1].tolist() == [7, 8, 9]
    assert split_stream(np.arange(10), 0.0)[1].size == 0


def test_stream_tokens_keep_line_breaks():
    assert stream_tokens("ab\n\nc", "char") == ["a", "b", "\n", "\n", "c"]
    assert stream_tokens("He left.\n\nWe stay", "word") == ["he", "left", ".", "\n", "\n", "we", "stay"]


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("layers", [1, 2])
def test_windowed_loss_with_carried_state_equals_the_whole_sequence_loss(cell, layers):
    rng = np.random.default_rng(1)
    model = LanguageModel(11, 6, cell=cell, num_layers=layers, embed_size=5, seed=2, dtype=np.float64)
    ids = rng.integers(0, 11, 61)
    # one stream: the text is one sequence
    X, Y = batchify(ids, 1)
    expected = stepwise_loss(model, X[0], Y[0])
    for window in (1, 7, 60, 100):
        assert stream_total_loss(model, X, Y, window)[0] == pytest.approx(expected, rel=1e-10)
    # three streams: each row is its own sequence, all carried side by side
    X, Y = batchify(ids, 3)
    expected = sum(stepwise_loss(model, x, y) for x, y in zip(X, Y))
    assert stream_total_loss(model, X, Y, 6)[0] == pytest.approx(expected, rel=1e-10)
    # and the training path (window_total_loss_and_gradients) carries the same state
    data = StreamBatches(ids, 3, 6)
    data.begin_epoch(model, 1, None)
    total = sum(data.batch(model, start)[0] for start in data.plan(1))
    assert total == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_window_gradients_stop_at_the_window_start(cell):
    """Central differences of window_total_loss with the carried state held constant: the truncation across windows."""
    rng = np.random.default_rng(3)
    model = LanguageModel(7, 4, cell=cell, embed_size=3, seed=0, dtype=np.float64)
    X, Y = rng.integers(0, 7, (2, 5)), rng.integers(0, 7, (2, 5))
    _, state = model.window_total_loss(rng.integers(0, 7, (2, 4)), rng.integers(0, 7, (2, 4)), model.start_state(2))
    assert np.abs(state[0][0]).max() > 0.01  # a real carried state, not zeros
    loss, grads, next_state = model.window_total_loss_and_gradients(X, Y, state)
    assert loss == pytest.approx(model.window_total_loss(X, Y, state)[0], rel=1e-12)
    report = check_gradients(lambda: model.window_total_loss(X, Y, state)[0], model.params, grads, threshold=1e-5)
    assert report, str(report)
    # next_state is detached: it is the caller's own arrays, sharing memory with nothing the model
    # keeps or was given (its parameters, the state passed in), so changing it changes nothing else
    assert all(isinstance(s, np.ndarray) for layer in next_state for s in layer)
    kept_params = {k: v.copy() for k, v in model.params.items()}
    kept_state = [[s.copy() for s in layer] for layer in state]
    kept_next = [[s.copy() for s in layer] for layer in next_state]
    before = model.window_total_loss(X, Y, state)[0]
    for layer in next_state:
        for s in layer:
            s += 0.25
    for name, value in kept_params.items():
        np.testing.assert_array_equal(model.params[name], value, err_msg=name)
    for layer, kept in zip(state, kept_state):
        for s, k in zip(layer, kept):
            np.testing.assert_array_equal(s, k)
    # the next calls from the same state are unaffected (same loss, same next state), and they do not
    # write into the state the caller holds (no buffer shared between calls)
    again_loss, _, again_next = model.window_total_loss_and_gradients(X, Y, state)
    assert again_loss == loss and model.window_total_loss(X, Y, state)[0] == before
    for layer, kept, held in zip(again_next, kept_next, next_state):
        for s, k, h in zip(layer, kept, held):
            np.testing.assert_array_equal(s, k)
            np.testing.assert_array_equal(h, k + 0.25)
    # and the change was real: continuing from the changed state gives a different loss
    assert model.window_total_loss(X, Y, next_state)[0] != model.window_total_loss(X, Y, kept_next)[0]


# --------------------------------------------------------------------- the command line


@pytest.fixture(scope="module")
def text_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("stream") / "play.txt"
    path.write_text(TEXT, encoding="utf-8")
    return path


STREAM = ["--stream", "--level", "char", "--hidden", 16, "--batch-size", 4, "--seq-length", 16,
          "--optimizer", "adam", "--learning-rate", 0.01, "--no-progress", "--seed", 0]


@pytest.mark.parametrize("cell", CELLS)
def test_stream_train_generate_evaluate(tmp_path, capsys, text_file, cell):
    out = tmp_path / "s.npz"
    code, stdout, err = run(capsys, "train", text_file, "--out", out, "--cell", cell, "--epochs", 3, *STREAM)
    assert code == 0, err
    assert "as one stream of" in stdout and "4 parallel streams in windows of 16" in stdout
    loaded = ckpt.load_model(out)
    assert loaded.data_config.stream and loaded.kind == "language-model"
    # generate: exactly --length characters after the prefix, line breaks included
    code, text, err = run(capsys, "generate", "--model", out, "--length", 300, "--prefix", "ALL:\n", "--seed", 3)
    assert code == 0, err
    body = text[len("ALL:\n"):]
    assert text.startswith("ALL:\n") and len(body.rstrip("\n")) <= 300 <= len(body)
    assert "\n" in body.rstrip("\n")
    # evaluate: the file as one stream, against the token-by-token computation
    code, report, err = run(capsys, "evaluate", "--model", out, text_file)
    assert code == 0, err
    ids = load_stream(text_file, level="char", vocabulary=loaded.vocabulary).ids
    expected = stepwise_loss(loaded.model, ids[:-1], ids[1:]) / (len(ids) - 1)
    loss = float(report.split("loss: ")[1].split()[0])
    perplexity = float(report.split("perplexity: ")[1].split()[0])
    assert loss == pytest.approx(expected, abs=1e-4) and perplexity == pytest.approx(np.exp(expected), rel=1e-3)


def test_word_level_stream_keeps_line_breaks(tmp_path, capsys, text_file):
    out = tmp_path / "w.npz"
    argv = [a if a != "char" else "word" for a in STREAM]
    code, _, err = run(capsys, "train", text_file, "--out", out, "--epochs", 8, *argv)
    assert code == 0, err
    assert "\n" in ckpt.load_model(out).vocabulary.word_to_index
    code, text, _ = run(capsys, "generate", "--model", out, "--length", 60, "--seed", 0)
    assert code == 0 and text.count("\n") >= 2


def test_stream_time_limit_resumes_with_the_carried_state(tmp_path, capsys, text_file):
    """Stopped after one window and resumed, the run equals the uninterrupted one: the carried state was saved."""
    out, whole = tmp_path / "s.npz", tmp_path / "whole.npz"
    argv = [text_file, "--cell", "lstm", "--epochs", 2, "--valid-fraction", 0, *STREAM]
    code, stdout, err = run(capsys, "train", *argv, "--out", out, "--time-limit", 1e-6)
    assert code == 0 and "stopped by the time limit after batch 1/" in stdout, err
    state = ckpt.load_model(out).state
    assert state.batch == 1 and state.carry and all(np.abs(v).max() > 0 for v in state.carry.values())
    code, _, err = run(capsys, "train", *argv, "--out", out, "--resume", "--time-limit", 1e6)
    assert code == 0, err
    assert run(capsys, "train", *argv, "--out", whole)[0] == 0
    a, b = ckpt.load_model(whole).model.params, ckpt.load_model(out).model.params
    for name in a:
        np.testing.assert_allclose(a[name], b[name], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("option", [["--seq-length", 8], ["--batch-size", 2]])
def test_stream_resume_refuses_a_new_layout(tmp_path, capsys, text_file, option):
    out = tmp_path / "s.npz"
    assert run(capsys, "train", text_file, "--out", out, "--epochs", 1, *STREAM)[0] == 0
    code, _, err = run(capsys, "train", text_file, "--out", out, "--epochs", 2, "--resume", *option)
    assert code == 2 and f"{option[0]} cannot change on --resume" in err


def test_word_streams_replace_links_like_the_sentence_pipeline():
    from rnnlm.training.stream import stream_tokens
    text = "see https://example.com/a?b=1 on /r/python\nthanks u/someone"
    tokens = stream_tokens(text, "word")
    assert "URL_TOKEN" in tokens and "SUBREDDIT_TOKEN" in tokens and "USER_TOKEN" in tokens
    assert not any("example" in t for t in tokens) and tokens.count("\n") == 1
    kept = stream_tokens(text, "word", link_placeholders=False)
    assert "URL_TOKEN" not in kept and any("example" in t for t in kept)


def test_a_stream_model_in_the_tutorials_shape_is_described_as_the_languagemodel_it_is(tmp_path, capsys):
    text = tmp_path / "t.txt"
    text.write_text("to be or not to be\nthat is the question\n" * 3, encoding="utf-8")
    out = tmp_path / "m.npz"
    code, stdout, _ = run(capsys, "train", text, "--out", out, "--stream", "--level", "char", "--epochs", 1,
                          "--hidden", 8, "--seq-length", 8, "--batch-size", 2, "--no-progress")
    assert code == 0 and "Model: LanguageModel (rnn), char level" in stdout
    code, stdout, _ = run(capsys, "evaluate", "--model", out, text)
    assert code == 0 and "(LanguageModel (rnn), char level" in stdout and "FastRNN" not in stdout


def test_read_stream_text_is_the_file_part_of_load_stream(tmp_path):
    """rnnlm.data.text.read_stream_text reads the file (format detection, max_records); load_stream encodes it."""
    from rnnlm.data.text import read_stream_text
    path = tmp_path / "lines.txt"
    path.write_text("one two\n\nthree four\nfive\n", encoding="utf-8")
    assert read_stream_text(path) == ("one two\n\nthree four\nfive\n", "text")
    assert read_stream_text(path, max_records=2) == ("one two\n\n", "text")
    assert read_stream_text(path, "tokens", max_records=3) == ("one two\n\nthree four\n", "tokens")
    corpus = load_stream(path, vocabulary_size=50, level="word", max_records=2, min_count=1)
    assert corpus.vocabulary.decode(corpus.ids) == ["one", "two", "\n", "\n"]

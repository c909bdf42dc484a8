"""Bounded time and output (issue 17): link detection is linear, generation is bounded,
tiny temperatures are greedy, write errors on stdout are reported, control characters escaped."""

import json
import os
import random
import re
import subprocess
import sys
import time
import warnings
from pathlib import Path

import nbformat
import numpy as np
import pytest

from rnnlm.course import grade, notebooks
from rnnlm.io.checkpoint import save_model
from rnnlm.cli import main
from rnnlm.config import UNKNOWN_TOKEN, URL_TOKEN
from rnnlm.errors import ConfigError
from rnnlm.models.fast import FastRNN
from rnnlm.models.generate import GenerateConfig, generate_sentence, generate_stream, next_token
from rnnlm.models.language_model import LanguageModel
from rnnlm.data.text import replace_links
from rnnlm.data.vocab import Vocabulary

# The one-regex link rule as it was before the linear scanner: the reference it must agree with.
_OLD_LINK_END = r"(?:[^\s()\[\]<>\"']*[^\s()\[\]<>\"'.,!?;:])?"
_OLD_URL = re.compile(r"\b(?:(?:https?|ftp)://|www\.)" + _OLD_LINK_END
                      + r"|\b[a-z0-9-]+(?:\.[a-z0-9-]+)*\.(?:com|org|net|edu|gov|io|co|uk|de|be|gl|ly|tv|me|gg)\b"
                      + r"(?:/" + _OLD_LINK_END + r")?", re.IGNORECASE)
_PIECES = list("aw.-/:_ (,!é1xWC\u212a") + ["www.", "http://", "https://", "ftp://", "com", "co", "uk", "io",
                                           "om", "..", ".com", ".co-", ".org/"]


def test_links_are_found_exactly_where_the_one_regex_rule_found_them():
    rng = random.Random(17)
    for _ in range(20000):
        text = "".join(rng.choice(_PIECES) for _ in range(rng.randint(0, 12)))
        assert replace_links(text) == _OLD_URL.sub(URL_TOKEN, text), repr(text)


def test_tricky_links_keep_their_old_reading():
    assert replace_links("google.com.au and foo.co-op") == f"{URL_TOKEN}.au and {URL_TOKEN}-op"
    assert replace_links("x.www.y, -www.foo.com, _a-b.com") == f"x.{URL_TOKEN}, -{URL_TOKEN}, _a{URL_TOKEN}"
    assert replace_links("x.com_ and a.b.com.") == f"x.com_ and {URL_TOKEN}."


MEGABYTE = 1 << 20
ADVERSARIAL = {
    "a.a.a...": "a." * (MEGABYTE // 2),
    "a-a-a-...": "a-" * (MEGABYTE // 2),
    "http://a.a...": "http://" + "a." * (MEGABYTE // 2),
    "www.www....": "www." * (MEGABYTE // 4),
    "a.a a.a ...": "a.a " * (MEGABYTE // 4),
    "-a.-a....": "-a." * (MEGABYTE // 3),
    "a.a...a.com": "a." * (MEGABYTE // 2) + "com",
    "http://....": "http://" + "." * MEGABYTE + " ",
}


@pytest.mark.parametrize("shape", ADVERSARIAL)
def test_a_megabyte_of_an_adversarial_shape_takes_under_two_seconds(shape):
    text = ADVERSARIAL[shape]
    started = time.perf_counter()
    replace_links(text)
    assert time.perf_counter() - started < 2.0  # the one-regex rule took 16 s on 16 KB of "a.a.a..."


# ------------------------------------------------------------------ generation bounds


WORDS = ["the", "cat", "dog", "sat", "ran", "on", "mat", "."]


@pytest.fixture
def vocab():
    return Vocabulary.build([WORDS[:4], WORDS[3:], ["the", "cat", "ran", "."]], vocabulary_size=len(WORDS) + 3)


def _models(vocab):
    C = len(vocab)
    return {"full softmax": FastRNN(C, hidden_dim=8, seed=0),
            "class softmax": FastRNN(C, hidden_dim=8, seed=1, dtype=np.float64, softmax="class", num_classes=3),
            "class-softmax LanguageModel": LanguageModel(C, 6, cell="gru", seed=2, softmax="class", num_classes=3)}


@pytest.mark.parametrize("kind", ["full softmax", "class softmax", "class-softmax LanguageModel"])
@pytest.mark.parametrize("tiny", [1e-320, 5e-324, 1e-300, 1e-9, 9e-4])
def test_a_tiny_temperature_is_greedy_without_warnings(vocab, kind, tiny):
    model = _models(vocab)[kind]
    greedy = generate_sentence(model, vocab, np.random.default_rng(0), min_length=0, max_length=30, temperature=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an overflow or invalid-value RuntimeWarning fails the test
        tiny_one = generate_sentence(model, vocab, np.random.default_rng(0), min_length=0, max_length=30,
                                     temperature=tiny)
        streamed = generate_stream(model, vocab, np.random.default_rng(0), length=20, temperature=tiny)
    assert tiny_one == greedy and UNKNOWN_TOKEN not in tiny_one
    assert streamed == generate_stream(model, vocab, np.random.default_rng(0), length=20, temperature=0)


def test_next_token_at_a_denormal_temperature_is_the_argmax_of_what_may_be_drawn():
    logits = np.array([3.0, 9.0, 1.0, 8.5])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert next_token(logits, np.random.default_rng(0), 1e-320, banned=[1]) == 3


def test_the_greedy_threshold_leaves_real_temperatures_sampling(vocab):
    model = FastRNN(len(vocab), hidden_dim=8, seed=0)
    rng = np.random.default_rng(3)
    drawn = {tuple(generate_sentence(model, vocab, rng, min_length=0, max_length=10,
                                     temperature=GenerateConfig.greedy_below * 1000)) for _ in range(10)}
    assert len(drawn) > 1


def test_max_length_and_stream_length_are_bounded():
    bound = GenerateConfig.max_tokens
    assert GenerateConfig(max_length=bound, length=bound).max_length == bound
    with pytest.raises(ConfigError, match=f"max length must be at most {bound:,}"):
        GenerateConfig(max_length=1_000_000_000)
    with pytest.raises(ConfigError, match=f"length must be at most {bound:,}"):
        GenerateConfig(length=bound + 1)


# ------------------------------------------------------------------ writing to stdout


ROOT = Path(__file__).resolve().parent.parent
COMMENTS = ROOT / "tests" / "fixtures" / "comments.csv"
FULL = "cannot write output: No space left on device"
TREES = ["(4 (3 (2 a) (4 great)) (2 film))", "(0 (1 (2 a) (0 awful)) (2 film))", "(3 (2 truly) (3 good))"]


def _rnnlm(args, stdout, cwd):
    env = dict(os.environ, PYTHONPATH=str(ROOT), OPENBLAS_NUM_THREADS="1", MPLBACKEND="Agg")
    return subprocess.run([sys.executable, "-m", "rnnlm", *args], stdout=stdout, stderr=subprocess.PIPE,
                          cwd=cwd, env=env, timeout=60, text=True)


@pytest.fixture(scope="module")
def tree_model(tmp_path_factory):
    folder = tmp_path_factory.mktemp("trees")
    (folder / "t.txt").write_text("\n".join(TREES) + "\n", encoding="utf-8")
    assert main(["trees", "train", str(folder / "t.txt"), "--dev", str(folder / "t.txt"), "--out",
                 str(folder / "m.npz"), "--hidden", "4", "--embed-size", "3", "--epochs", "1", "--no-progress"]) == 0
    return folder / "m.npz"


COMMANDS = {
    "generate": ["generate", "-n", "2", "--seed", "1"],
    "info": ["info"],
    "--help": ["--help"],
    "generate --help": ["generate", "--help"],
    "--version": ["--version"],
    "train": ["train", str(COMMENTS), "--out", "m.npz", "--epochs", "1", "--vocab-size", "40", "--hidden", "4",
              "--batch-size", "8", "--no-progress"],
    "trees predict": ["trees", "predict", "--model", "TREE_MODEL", "truly good"],
}


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
@pytest.mark.parametrize("name", COMMANDS)
def test_a_full_stdout_is_one_error_line_and_a_nonzero_exit(name, tmp_path, tree_model):
    args = [str(tree_model) if a == "TREE_MODEL" else a for a in COMMANDS[name]]
    with open("/dev/full", "w") as full:
        result = _rnnlm(args, full, tmp_path)
    assert result.returncode == 2 and result.stderr == f"rnnlm: error: {FULL}\n", result.stderr


@pytest.mark.parametrize("name", ["generate", "--help", "info", "train"])
def test_a_closed_pipe_still_ends_quietly_with_0(name, tmp_path):
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first byte, like `| head -0`
    try:
        result = _rnnlm(COMMANDS[name], write_end, tmp_path)
    finally:
        os.close(write_end)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    assert (tmp_path / "m.npz").exists() == (name == "train")  # training goes on without its reader


# ------------------------------------------------------------------ control characters from files


ESC = "\x1b[31m"


def test_info_escapes_the_strings_a_model_file_holds(vocab, tmp_path, capsys):
    path = tmp_path / "m.npz"
    save_model(path, FastRNN(len(vocab), hidden_dim=4, seed=0), vocab)
    arrays = dict(np.load(path))
    meta = json.loads(arrays["metadata"].tobytes())
    meta["rnnlm_version"] = f"{ESC}9.9\x1b]0;owned\x07"
    arrays["metadata"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    np.savez(path, **arrays)
    assert main(["info", "--model", str(path)]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out and "rnnlm \\x1b[31m9.9" in out


def test_check_escapes_error_texts_from_the_notebook(tmp_path, monkeypatch, capsys):
    notebook = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell(f"{notebooks.BEGIN_SOLUTION}\nx = 1\n{notebooks.END_SOLUTION}"),
        nbformat.v4.new_code_cell("assert x == 2"),
        nbformat.v4.new_code_cell("print(1)")])
    path = tmp_path / "01-mine.ipynb"
    nbformat.write(notebook, str(path))

    def run_with_errors(nb, working_dir, timeout=180, on_cell=None, **kwargs):  # no kernel: the errors a run left
        nb.cells[1].outputs = [nbformat.v4.new_output("error", ename="AssertionError", evalue=f"{ESC}red\x9b2J",
                                                      traceback=[])]
        nb.cells[2].outputs = [nbformat.v4.new_output("error", ename=f"E{ESC}", evalue="x\x1b[2J", traceback=[])]
        return None  # every cell ran

    monkeypatch.setattr(grade, "_run_cells", run_with_errors)
    assert main(["check", str(path), "--solutions", str(tmp_path)]) == 1  # a solution notebook: its own checks
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x9b" not in out
    assert "not passed: AssertionError: \\x1b[31mred\\x9b2J" in out and "note: cell 2: E\\x1b[31m: x\\x1b[2J" in out

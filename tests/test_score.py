"""`rnnlm score` and rnnlm.models.scoring: a sentence's log-probability and per-token perplexity.

The perplexity of one sentence equals what `evaluate` computes for a corpus of that sentence
(word, char, class-softmax and stream models, and --format tokens), the bundled model prefers
grammatical sentences to scrambled copies, and bad input is one line and exit 2.
"""

import math
import re
import subprocess
import sys
from pathlib import Path

import pytest

from rnnlm.data.corpus import load_corpus
from rnnlm.io import checkpoint as ckpt
from rnnlm.models.generate import tokenize_prefix
from rnnlm.models.scoring import rank, score_sentence, score_sentences
from rnnlm.training.stream import batchify, load_stream, stream_total_loss

from helpers import run

FIXTURES = Path(__file__).parent / "fixtures"
COMMENTS = FIXTURES / "comments.csv"
REPO = Path(__file__).resolve().parent.parent
TINY = ["--vocab-size", "60", "--hidden", "8", "--batch-size", "8", "--seed", "1", "--valid-fraction", "0",
        "--epochs", "1", "--no-progress"]

# 20 pairs: a grammatical sentence, and a scrambled or corrupted copy of it.
PAIRS = [
    ("i think this is a good idea .", "idea good a this is think i ."),
    ("i do n't know what you mean .", "mean you what know n't do i ."),
    ("this is the best thing i have ever seen .", "seen ever have i thing best the is this ."),
    ("thank you for the help .", "help the for you thank ."),
    ("i have never played that game .", "game that played never have i ."),
    ("he said that he would be here .", "here be would he that said he ."),
    ("what do you think about it ?", "it about think you do what ?"),
    ("it was a lot of fun .", "fun of lot a was it ."),
    ("you should try it again .", "again it try should you ."),
    ("i agree with you on that .", "that on you with agree i ."),
    ("the game is really good .", "good really is game the ."),
    ("i would love to see that .", "that see to love would i ."),
    ("people are going to be upset .", "upset be to going are people ."),
    ("that is not what i said .", "said i what not is that ."),
    ("we need to talk about this .", "this about talk to need we ."),
    ("i can not believe it .", "it believe not can i ."),
    ("this is why i love reddit .", "reddit love i why is this ."),
    ("she has a really nice car .", "car nice really a has she ."),
    ("i want to go home now .", "now home go to want i ."),
    ("the best part of the movie was the ending .", "the the the of movie part ending was best ."),
]


def rows(stdout):
    lines = stdout.splitlines()
    assert lines[0] == "log_prob\tperplexity\tsentence"
    return [(float(a), float(b), c) for a, b, c in (line.split("\t") for line in lines[1:])]


@pytest.fixture(scope="module")
def bundled():
    return ckpt.load_model(ckpt.BUNDLED_MODEL)


def test_the_bundled_model_prefers_the_grammatical_sentence(bundled):
    right = 0
    for good, bad in PAIRS:
        scores = score_sentences(bundled.model, bundled.vocabulary, [tokenize_prefix(good), tokenize_prefix(bad)])
        right += rank(scores)[0] == 0
    assert right >= 18, f"only {right} of {len(PAIRS)} pairs ranked right"


def test_score_command_ranks_pairs_best_first(capsys, tmp_path):
    path = tmp_path / "candidates.txt"
    path.write_text("".join(f"{bad}\n{good}\n" for good, bad in PAIRS[:3]) + "\n", encoding="utf-8")
    code, out, err = run(capsys, "score", "--sort", path)
    assert code == 0, err
    table = rows(out)
    assert [r[1] for r in table] == sorted(r[1] for r in table)
    assert table[0][2] in {good for good, _ in PAIRS[:3]}
    code, out, err = run(capsys, "score", "--sort", "--by", "logprob", path)
    logprobs = [r[0] for r in rows(out)]
    assert logprobs == sorted(logprobs, reverse=True) and len(logprobs) == 6  # the blank line is skipped


def test_one_sentence_perplexity_is_what_evaluate_computes(capsys, tmp_path, bundled):
    sentence = "i think this is a good idea , but it will never work ."
    corpus_file = tmp_path / "one.txt"
    corpus_file.write_text(sentence + "\n", encoding="utf-8")
    corpus = load_corpus(corpus_file, format="text", vocabulary=bundled.vocabulary)
    assert corpus.sentences == [tokenize_prefix(sentence)]
    loss = bundled.model.total_loss(corpus.X, corpus.Y) / corpus.num_tokens
    score = score_sentence(bundled.model, bundled.vocabulary, tokenize_prefix(sentence))
    assert score.predicted == corpus.num_tokens
    assert score.perplexity == pytest.approx(math.exp(loss), rel=1e-9)
    assert score.log_prob == pytest.approx(-loss * corpus.num_tokens, rel=1e-9)
    code, out, err = run(capsys, "evaluate", corpus_file)
    evaluated = float(re.search(r"perplexity: ([\d.]+)", out).group(1))
    code, out, err = run(capsys, "score", corpus_file)
    assert code == 0, err
    assert rows(out)[0][1] == pytest.approx(evaluated, abs=0.01)


@pytest.mark.parametrize("options", [["--level", "char"], ["--softmax", "class", "--classes", "4"],
                                     ["--stream", "--seq-length", "5"], ["--format", "tokens"],
                                     ["--format", "tokens", "--stream", "--seq-length", "5"]],
                         ids=["char", "class", "stream", "tokens", "tokens-stream"])
def test_score_equals_evaluate_for_every_kind_of_model(capsys, tmp_path, options):
    model_file = tmp_path / "model.npz"
    corpus = COMMENTS
    if "tokens" in options:
        corpus = tmp_path / "ptb-like.txt"
        corpus.write_text(" the cat sat on the <unk> mat\n a dog sat on the Cat\n" * 20, encoding="utf-8")
    code, out, err = run(capsys, "train", corpus, "--out", model_file, *TINY, *options)
    assert code == 0, err
    checkpoint = ckpt.load_model(model_file)
    sentence = "the Cat sat on <unk> mat" if "tokens" in options else "i think it is good ."
    one = tmp_path / "one.txt"
    stream = "--stream" in options
    # a stream model's score reads a line break first: evaluate's file of "\n" + the sentence + "\n"
    one.write_text(("\n" if stream else "") + sentence + "\n", encoding="utf-8")
    fmt = "tokens" if "tokens" in options else "text"
    if stream:
        data = load_stream(one, format=fmt, level=checkpoint.level, vocabulary=checkpoint.vocabulary)
        X, Y = batchify(data.ids, 1)
        expected = stream_total_loss(checkpoint.model, X, Y, 5)[0] / Y.size
    else:
        data = load_corpus(one, format=fmt, level=checkpoint.level, vocabulary=checkpoint.vocabulary)
        expected = checkpoint.model.total_loss(data.X, data.Y) / data.num_tokens
    one.write_text(sentence + "\n", encoding="utf-8")
    code, out, err = run(capsys, "score", "--model", model_file, one)
    assert code == 0, err
    (log_prob, ppl, text), = rows(out)
    assert text == sentence
    assert ppl == pytest.approx(math.exp(expected), abs=1e-3)


def test_tokens_format_keeps_case_and_reads_unk(bundled):
    from rnnlm.data.text import tokenize_tokens_line
    score = score_sentence(bundled.model, bundled.vocabulary, tokenize_tokens_line("I <unk> it"))
    assert score.tokens == ("I", "UNKNOWN_TOKEN", "it") and score.unknown == 2  # "I" is not in a lowercased vocabulary


@pytest.mark.parametrize("argv, message", [
    (["score", "missing.txt"], "rnnlm: error: corpus file not found: missing.txt"),
    (["score", "empty.txt"], "rnnlm: error: empty.txt is empty; give a file with some text in it"),
    (["score", "blank.txt"], "rnnlm: error: blank.txt is empty; give a file with some text in it"),
    (["score", "binary.txt"], "rnnlm: error: binary.txt looks like a binary file (NUL byte at offset 1); "
                              "give a UTF-8 text or CSV file"),
    (["score", "--format", "tokens", "--model", "chars.npz", "ok.txt"],
     "rnnlm: error: --format tokens is word level; this is a character-level model (drop --format)"),
])
def test_bad_input_is_one_line_and_exit_2(capsys, tmp_path, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)
    Path("empty.txt").write_text("")
    Path("blank.txt").write_text(" \n\t\n \n")
    Path("binary.txt").write_bytes(b"a\x00b\n")
    Path("ok.txt").write_text("hello there\n")
    if "chars.npz" in argv:
        assert run(capsys, "train", COMMENTS, "--out", "chars.npz", "--level", "char", *TINY)[0] == 0
    code, out, err = run(capsys, *argv)
    assert code == 2 and err == message + "\n"


def _python(*argv, stdin=None):
    env = {"PYTHONPATH": str(REPO), "OPENBLAS_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, "-m", "rnnlm", *argv], input=stdin, capture_output=True, env=env,
                          timeout=120)


def test_standard_input_and_a_closed_stdout():
    text = "".join(f"{good}\n{bad}\n" for good, bad in PAIRS).encode() * 50
    done = _python("score", "-", stdin=text)
    assert done.returncode == 0 and len(done.stdout.decode().splitlines()) == 1 + 2 * len(PAIRS) * 50
    shell = subprocess.run(f"{sys.executable} -m rnnlm score - | head -n 2", shell=True, input=text,
                           capture_output=True, env={"PYTHONPATH": str(REPO), "OPENBLAS_NUM_THREADS": "1",
                                                     "PATH": "/usr/bin:/bin"}, timeout=120)
    assert shell.returncode == 0 and shell.stderr == b"" and len(shell.stdout.splitlines()) == 2
    blank = _python("score", "-", stdin=b"\n \n")
    assert blank.returncode == 2 and blank.stderr.decode() == (
        "rnnlm: error: standard input holds no sentences to score; give one sentence per line\n")
    bad = _python("score", "-", stdin=b"\xff\xfe caf\xe9\n")
    assert bad.returncode == 2
    assert bad.stderr.decode() == ("rnnlm: error: standard input is not UTF-8 text: byte 0xff at offset 0; "
                                   "convert it to UTF-8\n")

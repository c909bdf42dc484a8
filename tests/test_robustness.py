"""Nothing a user types destroys data, hangs, or prints a traceback (issue 11).

Each test here failed before its fix. CLI cases run `rnnlm.cli.main` in-process unless they need
a real process (closed pipes, signals, FIFOs); library cases call the public API directly.
"""

import json
import math
import os
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from rnnlm.io import checkpoint as ckpt
from rnnlm.io import kinds
from rnnlm.io import safe_files
from rnnlm import cli
from rnnlm.config import DataConfig, ModelConfig, TrainConfig
from rnnlm.errors import ConfigError, DataError, ModelFileError

from helpers import local_http_server, one_line_error, run

FIXTURES = Path(__file__).parent / "fixtures"
COMMENTS = FIXTURES / "comments.csv"
REPO = Path(__file__).resolve().parent.parent
TINY = ["--vocab-size", "60", "--hidden", "8", "--batch-size", "8", "--seed", "1", "--no-progress"]


def python_m_rnnlm(*argv, timeout=120, **kwargs):
    env = {**os.environ, "PYTHONPATH": str(REPO), "MPLBACKEND": "Agg"}
    return subprocess.run([sys.executable, "-m", "rnnlm", *map(str, argv)], capture_output=True, text=True,
                          env=env, timeout=timeout, **kwargs)


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "tiny.npz"
    assert cli.main(["train", str(COMMENTS), "--out", str(path), "--epochs", "2", "--optimizer", "adam",
                     "--learning-rate", "0.02", *TINY]) == 0
    return path


def snapshot(folder):
    return {p: p.read_bytes() for p in Path(folder).rglob("*") if p.is_file()}


# --------------------------------------------------------------------- configs

@pytest.mark.parametrize("field, value", [("learning_rate", math.inf), ("learning_rate", math.nan),
                                          ("momentum", math.nan), ("clip", math.inf), ("clip", math.nan),
                                          ("valid_fraction", math.nan), ("learning_rate", "1"),
                                          ("epochs", 2.0), ("seed", True)])
def test_train_config_rejects_non_finite_and_wrong_types(field, value):
    with pytest.raises(ConfigError, match=field.split("_")[0]):
        TrainConfig(**{field: value})


def test_model_config_bools_must_be_bools_and_numpy_ints_are_accepted():
    with pytest.raises(ConfigError, match="peephole"):
        ModelConfig(cell="lstm", peephole="no")
    with pytest.raises(ConfigError, match="coupled"):
        ModelConfig(cell="lstm", coupled_gates=1)
    config = ModelConfig(vocab_size=np.int64(50), hidden_size=np.int32(7), num_layers=np.int64(2), cell="gru",
                         embed_size=np.int64(5), bptt_truncate=np.int64(3))
    assert config.hidden_size == 7 and type(config.hidden_size) is int and type(config.vocab_size) is int
    assert json.dumps(config.to_dict())  # plain ints: a model file can store it
    assert type(TrainConfig(epochs=np.int64(3), seed=np.int64(2)).epochs) is int
    train_config = TrainConfig(learning_rate=np.float32(0.5), clip=np.float64(2.0), momentum=np.float32(0.5))
    assert type(train_config.learning_rate) is float and json.dumps(train_config.to_dict())
    assert type(DataConfig(vocabulary_size=np.int64(9)).vocabulary_size) is int


@pytest.mark.parametrize("field, value", [("hidden_size", 10 ** 20), ("embed_size", 10 ** 20), ("num_layers", 3_000_000),
                                          ("vocab_size", 10 ** 12)])
def test_model_config_bounds_every_size(field, value):
    with pytest.raises(ConfigError, match="at most"):
        ModelConfig(**{field: value})


@pytest.mark.parametrize("data", [[1, 2], "rnn", None, 5])
def test_config_from_dict_needs_a_dict(data):
    with pytest.raises(ConfigError, match="object"):
        ModelConfig.from_dict(data)


# --------------------------------------------------------------------- malformed model files

def _arrays(model_file):
    with np.load(model_file) as data:
        arrays = dict(data)
    return arrays, json.loads(arrays["metadata"].tobytes())


def _write(path, arrays, meta=None, raw_meta=None):
    arrays = dict(arrays)
    if meta is not None or raw_meta is not None:
        text = raw_meta if raw_meta is not None else json.dumps(meta)
        arrays["metadata"] = np.frombuffer(text.encode(), dtype=np.uint8)
    np.savez_compressed(path, **arrays)
    return path


def _edit(meta, dotted, value):
    keys = dotted.split(".")
    target = meta
    for key in keys[:-1]:
        target = target[int(key)] if isinstance(target, list) else target[key]
    target[keys[-1]] = value
    return meta


METADATA_CASES = [
    ("model_config", [8, 60], "JSON object"),
    ("data_config", ["word"], "JSON object"),
    ("training.epoch", -1, "epoch -1"),
    ("training.learning_rate", "fast", "learning rate"),
    ("training.history", "none", "history"),
    ("training.history.0.train_loss", "low", "history"),
    ("training.history.0.surprise", 1, "history"),
    ("level", "bogus", "level 'bogus'"),
    ("model_config.cell", "lstm", "does not match"),  # a FastRNN file claiming an LSTM's config
    ("model_config.hidden_size", 16000, "does not match the arrays"),
    ("model_config.num_layers", 3_000_000, "at most 64"),
    ("model_config.peephole", "no", "peephole"),
]


@pytest.mark.parametrize("field, value, message", METADATA_CASES, ids=[c[0] + "-" + str(c[1])[:8] for c in METADATA_CASES])
def test_malformed_metadata_is_one_line_exit_2(model_file, tmp_path, capsys, monkeypatch, field, value, message):
    arrays, meta = _arrays(model_file)
    bad = _write(tmp_path / "bad.npz", arrays, _edit(meta, field, value))
    built = []
    real_build = kinds.build_model
    monkeypatch.setattr(ckpt, "build_model", lambda *a, **k: built.append(a) or real_build(*a, **k))
    code, out, err = run(capsys, "generate", "--model", bad, "-n", 1)
    one_line_error(code, err, message)
    assert not built  # refused before any array was allocated


@pytest.mark.parametrize("raw, message", [
    ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
    ('{"format": "rnnlm-model", "format_version": ' + "9" * 5000 + "}", "thousands of digits"),
    ('{"format": "rnnlm-model", "format_version": 1, "model_config": {"hidden_size": ' + "9" * 5000 + "}}",
     "metadata"),
])
def test_hostile_json_is_one_line(model_file, tmp_path, capsys, raw, message):
    arrays, _ = _arrays(model_file)
    bad = _write(tmp_path / "bad.npz", arrays, raw_meta=raw)
    code, _, err = run(capsys, "generate", "--model", bad, "-n", 1)
    one_line_error(code, err, message)


@pytest.mark.parametrize("edit, message", [
    (lambda a: a.__setitem__("param/W", np.full_like(a["param/W"], np.nan)), "NaN"),
    (lambda a: a.__setitem__("param/W", np.full(a["param/W"].shape, 1e300)), "beyond"),
    (lambda a: a.__setitem__("param/V", np.full(a["param/V"].shape, 3e38, np.float32)), "beyond"),
    (lambda a: a.__setitem__("optimizer/W/m", np.zeros((2, 2), np.float32)), "expected"),
    (lambda a: a.__setitem__("optimizer/W/m", np.full_like(a["optimizer/W/m"], np.nan)), "not finite"),
    (lambda a: a.__setitem__("optimizer/steps", np.array("many")), "steps"),
    (lambda a: a.__setitem__("optimizer/learning_rate", np.array(np.nan)), "not finite"),
    (lambda a: a.__setitem__("vocab/index_to_word", a["vocab/index_to_word"][:-1]), "vocabulary"),
    (lambda a: a.pop("param/W"), "lacks the parameter"),
])
def test_malformed_arrays_are_one_line_exit_2(model_file, tmp_path, capsys, edit, message):
    arrays, _ = _arrays(model_file)
    assert "optimizer/W/m" in arrays  # trained with Adam
    edit(arrays)
    bad = _write(tmp_path / "bad.npz", arrays)
    code, _, err = run(capsys, "train", COMMENTS, "--out", tmp_path / "o.npz", "--resume", bad, "--epochs", 3, *TINY)
    one_line_error(code, err, message)
    assert not (tmp_path / "o.npz").exists()


def test_unknown_archive_members_are_never_read(model_file, tmp_path):
    arrays, _ = _arrays(model_file)
    arrays["junk"] = np.array([{"would": "unpickle"}], dtype=object)  # reading it would raise
    good = _write(tmp_path / "extra.npz", arrays)
    checkpoint = ckpt.load_model(good)
    assert checkpoint.vocabulary.index_to_word == ckpt.load_model(model_file).vocabulary.index_to_word


# --------------------------------------------------------------------- writing: nothing non-finite, nothing lost

def test_save_model_refuses_non_finite_parameters_and_keeps_the_old_file(model_file, tmp_path):
    path = tmp_path / "m.npz"
    path.write_bytes(model_file.read_bytes())
    checkpoint = ckpt.load_model(path)
    checkpoint.model.params["W"][0, 0] = np.inf
    with pytest.raises(ModelFileError, match="not finite"):
        ckpt.save_model(path, checkpoint.model, checkpoint.vocabulary, state=checkpoint.state)
    assert path.read_bytes() == model_file.read_bytes()
    assert [p.name for p in tmp_path.iterdir()] == ["m.npz"]  # no temporary file left either


def _big_model(model_file, tmp_path):
    arrays, _ = _arrays(model_file)
    arrays["param/W"] = arrays["param/W"].copy()
    arrays["param/W"][0, 0] = 70000.0  # fine in float32, above float16's 65504
    return _write(tmp_path / "big.npz", arrays)


def test_export_float16_overflow_is_refused_before_writing(model_file, tmp_path, capsys):
    big = _big_model(model_file, tmp_path)
    before = snapshot(tmp_path)
    code, _, err = run(capsys, "export", big, "--out", tmp_path / "small.npz", "--dtype", "float16")
    one_line_error(code, err, "float16")
    assert snapshot(tmp_path) == before


def test_export_never_overwrites_its_own_input(model_file, tmp_path, capsys):
    big = _big_model(model_file, tmp_path)
    before = snapshot(tmp_path)
    for dtype in ("float16", "float32"):
        code, _, err = run(capsys, "export", big, "--out", big, "--dtype", dtype)
        one_line_error(code, err, "is the model being exported")
    assert snapshot(tmp_path) == before


def test_export_reports_the_size_before_and_after(model_file, tmp_path, capsys):
    code, out, _ = run(capsys, "export", model_file, "--out", tmp_path / "s.npz")
    assert code == 0
    assert f"{(tmp_path / 's.npz').stat().st_size:,} bytes (was {model_file.stat().st_size:,})" in out


@pytest.fixture
def corpus_copy(tmp_path):
    path = tmp_path / "c.txt"
    path.write_bytes(COMMENTS.read_bytes())
    return path


@pytest.mark.parametrize("argv, message", [
    (["--out", "{corpus}"], "--out {corpus} is the corpus"),
    (["--out", "{link}"], "is the corpus"),
    (["--out", "{model}", "--plot", "{corpus}"], "--plot {corpus} is the corpus"),
    (["--out", "{model}", "--plot", "{model}"], "is also --out"),
    (["--out", "{model}", "--resume", "{old}", "--plot", "{old}"], "is the model being resumed"),
    (["--out", "{fifo}"], "not a regular file"),
    (["--out", "{device}"], "not a regular file"),
])
def test_outputs_never_replace_the_corpus_each_other_or_special_files(tmp_path, capsys, corpus_copy, argv, message):
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "link.txt").symlink_to(corpus_copy)
    names = {"corpus": corpus_copy, "link": tmp_path / "link.txt", "model": tmp_path / "m.npz",
             "fifo": tmp_path / "fifo", "device": tmp_path / "null", "old": tmp_path / "old.npz"}
    shutil.copy(COMMENTS, tmp_path / "old.npz")  # the check comes before the file is read
    if "{device}" in argv:
        # a private copy of /dev/null: as root, a wrong rnnlm would replace the real one
        try:
            os.mknod(names["device"], 0o666 | stat.S_IFCHR, os.makedev(1, 3))
        except (PermissionError, AttributeError):
            pytest.skip("creating a device node needs root")
    argv = [a.format(**names) for a in argv]
    before = snapshot(tmp_path)
    code, _, err = run(capsys, "train", corpus_copy, *argv, "--epochs", 1, *TINY)
    one_line_error(code, err, message.format(**names))
    assert snapshot(tmp_path) == before and stat.S_ISFIFO(os.stat(tmp_path / "fifo").st_mode)
    if names["device"].exists():
        assert stat.S_ISCHR(os.stat(names["device"]).st_mode)


def test_a_second_train_on_the_same_out_is_refused(tmp_path, capsys, monkeypatch):
    out = tmp_path / "m.npz"
    holding = threading.Event()
    release = threading.Event()

    def first():
        with safe_files.output_lock(out):
            holding.set()
            release.wait(30)

    thread = threading.Thread(target=first)
    thread.start()
    try:
        assert holding.wait(30)
        code, _, err = run(capsys, "train", COMMENTS, "--out", out, "--epochs", 1, *TINY)
        one_line_error(code, err, "another rnnlm process is writing")
        assert not out.exists()
    finally:
        release.set()
        thread.join()
    code, out_text, err = run(capsys, "train", COMMENTS, "--out", out, "--epochs", 1, *TINY)
    assert code == 0 and out.exists(), err
    assert not (tmp_path / ".m.npz.lock").exists()


def test_a_real_second_process_is_refused(tmp_path):
    out = tmp_path / "m.npz"
    script = ("import sys, time; from rnnlm.io import safe_files\n"
              "with safe_files.output_lock(sys.argv[1]):\n    print('locked', flush=True); time.sleep(60)\n")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    holder = subprocess.Popen([sys.executable, "-c", script, str(out)], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert holder.stdout.readline().strip() == "locked"
        result = python_m_rnnlm("train", COMMENTS, "--out", out, "--epochs", 1, *TINY)
        assert result.returncode == 2 and "another rnnlm process is writing" in result.stderr
        assert result.stderr.count("\n") == 1
    finally:
        holder.kill()
        holder.wait()


def test_stale_temporary_files_of_the_same_target_are_cleaned(tmp_path, capsys):
    out = tmp_path / "m.npz"
    stale = [tmp_path / ".m.npz.abc_1234.tmp", tmp_path / ".m.npz.zz99zz99.tmp"]
    others = [tmp_path / ".other.npz.abc_1234.tmp", tmp_path / ".m.npz.notours.tmp", tmp_path / "m.npz.abc_1234.tmp"]
    for path in stale + others:
        path.write_bytes(b"half a model")
    code, _, err = run(capsys, "train", COMMENTS, "--out", out, "--epochs", 1, *TINY)
    assert code == 0, err
    assert not any(p.exists() for p in stale) and all(p.exists() for p in others)


# --------------------------------------------------------------------- corpora that hang or mislead

@pytest.mark.parametrize("special", ["fifo", "/dev/zero", "/dev/urandom"])
def test_a_corpus_must_be_a_regular_file(tmp_path, special):
    if special == "fifo":
        special = tmp_path / "fifo"
        os.mkfifo(special)
    start = time.monotonic()
    result = python_m_rnnlm("train", special, "--out", tmp_path / "m.npz", "--no-progress", timeout=60)
    assert result.returncode == 2 and "not a regular file" in result.stderr and result.stderr.count("\n") == 1
    assert time.monotonic() - start < 30 and not (tmp_path / "m.npz").exists()
    result = python_m_rnnlm("evaluate", special, timeout=60)
    assert result.returncode == 2 and "not a regular file" in result.stderr


def test_corpus_size_is_bounded(tmp_path, monkeypatch):
    from rnnlm.data import text
    path = tmp_path / "big.txt"
    path.write_text("word " * 1000)
    monkeypatch.setattr(text, "MAX_CORPUS_BYTES", 100)
    with pytest.raises(DataError, match="larger than"):
        text.read_text_file(path)


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be", "utf-32"])
def test_utf16_with_a_bom_says_how_to_convert(tmp_path, encoding):
    from rnnlm.data.text import read_text_file
    path = tmp_path / "u.txt"
    bom = {"utf-16": b"", "utf-16-be": b"\xfe\xff", "utf-32": b""}[encoding]
    path.write_bytes(bom + "hello there.\n".encode(encoding))
    with pytest.raises(DataError, match=r"is UTF-(16|32) text.*iconv -f UTF-(16|32) -t UTF-8"):
        read_text_file(path)


def test_nltk_regex_timeout_becomes_a_data_error(monkeypatch):
    from rnnlm.data import text
    splitter = text.SentenceSplitter(training_text="a b. c d.")

    def slow(document):
        raise TimeoutError("regex match exceeded the wall-clock timeout of 5s; see nltk.redos")

    monkeypatch.setattr(splitter, "split", slow)
    with pytest.raises(DataError, match="document 1 .* too long") as info:
        text.tokenize_documents(["x" * 100], splitter=splitter)
    assert "redos" not in str(info.value)


# --------------------------------------------------------------------- the command line

@pytest.mark.parametrize("argv, message", [
    (["gradcheck", "--seed", "-1"], "seed must be a non-negative integer"),
    (["train", str(COMMENTS), "--out", "{out}", "--hidden", "100000000000000000000"], "hidden size must be at most"),
    (["train", str(COMMENTS), "--out", "{out}", "--embed-size", "100000000000000000000", "--cell", "gru"],
     "embedding size must be at most"),
    (["train", str(COMMENTS), "--out", "{out}", "--learning-rate", "inf"], "learning rate must be a finite number"),
    (["train", str(COMMENTS), "--out", "{out}", "--learning-rate", "nan"], "learning rate must be a finite number"),
    (["train", str(COMMENTS), "--out", "{out}", "--clip", "nan"], "clip norm must be a finite number"),
    (["generate", "--model", "{out}"], "model file not found"),
])
def test_usage_errors_are_one_line(tmp_path, capsys, argv, message):
    code, _, err = run(capsys, *[a.format(out=tmp_path / "m.npz") for a in argv])
    one_line_error(code, err, message)
    assert list(tmp_path.iterdir()) == []


def test_generate_into_a_closed_pipe_ends_quietly(model_file):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen([sys.executable, "-m", "rnnlm", "generate", "--model", str(model_file), "-n", "100000",
                                "--seed", "1", "--min-length", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               env=env)
    assert process.stdout.readline()
    process.stdout.close()  # what `| head -1` does after its line
    _, err = process.communicate(timeout=60)
    assert process.returncode == 0 and err == b""


def test_train_keeps_training_and_saving_when_its_log_reader_goes_away(tmp_path):
    out = tmp_path / "m.npz"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen([sys.executable, "-m", "rnnlm", "train", str(COMMENTS), "--out", str(out),
                                "--epochs", "3", *TINY], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    assert process.stdout.readline()  # the first line of the data report
    process.stdout.close()
    _, err = process.communicate(timeout=120)
    assert process.returncode == 0 and err == b"", err
    assert ckpt.load_model(out).state.epoch == 3


def test_sigterm_during_training_is_an_interruption(tmp_path):
    out = tmp_path / "m.npz"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    big = tmp_path / "big.txt"
    # an epoch of about a second (65,000 tokens): the signal lands in the second epoch, long after the first
    # epoch's save, and reading the corpus takes about 1 s (400 lines: 4 s, and 3.5 s an epoch)
    big.write_text(("the cat sat on the mat . the dog ate the log . " * 50 + "\n") * 100)
    process = subprocess.Popen([sys.executable, "-m", "rnnlm", "train", str(big), "--out", str(out), "--epochs", "1000",
                                "--hidden", "16", "--no-progress", "--batch-size", "4"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    for line in process.stdout:
        if line.startswith("epoch 1/"):
            break
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    assert ckpt.load_model(out).state.epoch >= 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.txt", "m.last.npz", "m.npz"]  # no temporary file


def test_control_characters_from_data_are_escaped_on_output(tmp_path, capsys):
    corpus = tmp_path / "evil.txt"
    corpus.write_text("\n".join(["red \x1b[31mred\x1b[0m alert \x07 now"] * 20 + ["plain words here"] * 5) + "\n")
    code, out, err = run(capsys, "train", corpus, "--out", tmp_path / "m.npz", "--epochs", 1, "--level", "char",
                         *TINY[2:])
    assert code == 0, err
    code, gen, err = run(capsys, "generate", "--model", tmp_path / "m.npz", "-n", 20, "--seed", 3, "--prefix", "\x1b[2J")
    assert code == 0
    for text in (out, gen, err):
        assert "\x1b" not in text and "\x07" not in text
    assert "\\x1b" in gen


def test_printable_escapes_only_what_a_terminal_would_obey():
    from rnnlm.cli.common import printable
    assert printable("café 🙂 a\tb") == "café 🙂 a\tb"
    assert printable("\x1b[31mred\x9b\x07\n\u202e") == "\\x1b[31mred\\x9b\\x07\\n\\u202e"


def test_out_of_memory_in_generate_does_not_suggest_training_options(model_file, capsys, monkeypatch):
    from rnnlm.io import checkpoint

    def no_memory(*args, **kwargs):
        raise MemoryError()

    monkeypatch.setattr(checkpoint, "load_model", no_memory)
    code, _, err = run(capsys, "generate", "--model", model_file)
    one_line_error(code, err, "out of memory")
    assert "--vocab-size" not in err and "--batch-size" not in err


# --------------------------------------------------------------------- download: deadline, size cap, full disk, SIGTERM

@pytest.fixture
def slow_server():
    """/trickle.csv sends one byte every 50 ms forever; /huge.csv announces 10 GB; /small.csv is 1000 bytes."""
    import http.server

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            size = {"/huge.csv": 10 ** 10, "/small.csv": 1000}.get(self.path, 10 ** 6)
            self.send_header("Content-Length", str(size))
            self.end_headers()
            try:
                if self.path == "/trickle.csv":
                    for _ in range(10 ** 6):
                        self.wfile.write(b"x")
                        self.wfile.flush()
                        time.sleep(0.05)
                else:
                    self.wfile.write(b"y" * min(size, 10 ** 6))
            except OSError:
                pass

        def log_message(self, *args):
            pass

    with local_http_server(Handler) as url:
        yield url


SHA = "0" * 40


def test_download_has_an_overall_deadline(tmp_path, slow_server):
    from rnnlm.io.download import DownloadError, download
    start = time.monotonic()
    with pytest.raises(DownloadError, match="did not finish within 1 s"):
        download(f"{slow_server}/trickle.csv", tmp_path / "d" / "f.csv", SHA, timeout=5, deadline=1)
    assert time.monotonic() - start < 4
    assert list(tmp_path.iterdir()) == []


def test_download_has_a_size_cap(tmp_path, slow_server):
    from rnnlm.io.download import DownloadError, download
    with pytest.raises(DownloadError, match="larger than"):
        download(f"{slow_server}/huge.csv", tmp_path / "f.csv", SHA, max_bytes=5000)
    with pytest.raises(DownloadError, match="larger than"):
        download(f"{slow_server}/default.csv", tmp_path / "f.csv", SHA, max_bytes=5000)
    assert list(tmp_path.iterdir()) == []


def test_a_full_disk_is_reported_as_such(tmp_path, slow_server, monkeypatch):
    from rnnlm.io import download as dl

    class FullDisk:
        name = str(tmp_path / "x")

        def write(self, data):
            raise OSError(28, "No space left on device")

    with pytest.raises(dl.DownloadError, match="disk .* is full") as info:
        dl._fetch(f"{slow_server}/small.csv", FullDisk(), None, 5, tmp_path / "f.csv", 60, 10 ** 6)
    assert "offline" not in str(info.value)


def test_sigterm_during_download_leaves_nothing(tmp_path, slow_server):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    target = tmp_path / "new" / "folder"
    process = subprocess.Popen([sys.executable, "-m", "rnnlm", "download", "reddit", "--dir", str(target),
                                "--url", f"{slow_server}/trickle.csv", "--no-progress"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 30
    while not list(target.glob(".*.tmp")) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert list(target.glob(".*.tmp")), "the download never started"
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=30)
    assert process.returncode == 130 and "Traceback" not in err, err
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------- the library API checks its inputs

V = 20


def _models():
    from rnnlm.models.fast import FastRNN
    from rnnlm.models.language_model import LanguageModel
    from rnnlm.models.reference import RNNNumpy
    return {"reference": RNNNumpy(V, 5, seed=0), "fast": FastRNN(V, 5, seed=0),
            "lstm": LanguageModel(V, 5, cell="lstm", seed=0)}


BAD_SENTENCES = [
    ([0, -1, 2], [1, 2, 3], "word id -1"),
    ([0, 1, 2], [1, 2, V], f"word id {V}"),
    ([0.0, 1.5, 2.0], [1, 2, 3], "integer word ids"),
    ([0, 1, 2], [1, 2], "len"),
    (["a", "b"], [1, 2], "integer word ids"),
    ([[0, 1]], [[1, 2]], "1-D"),
]


@pytest.mark.parametrize("x, y, message", BAD_SENTENCES, ids=[m for _, _, m in BAD_SENTENCES])
def test_reference_methods_name_the_bad_argument(x, y, message):
    model = _models()["reference"]
    calls = [lambda: model.bptt(x, y), lambda: model.sgd_step(x, y, 0.1), lambda: model.gradient_check(x, y),
             lambda: model.calculate_total_loss([x], [y]), lambda: model.calculate_loss([x], [y])]
    if "len" not in message:
        calls += [lambda: model.forward_propagation(x if "id -1" in message or "1-D" in message
                                                    or "integer" in message else y),
                  lambda: model.predict(x if "id -1" in message or "1-D" in message or "integer" in message else y)]
    before = {k: v.copy() for k, v in model.params.items()}
    for call in calls:
        with pytest.raises(ValueError, match=message):
            call()
    assert all(np.array_equal(before[k], v) for k, v in model.params.items())


@pytest.mark.parametrize("kind", ["fast", "lstm"])
@pytest.mark.parametrize("x, y, message", BAD_SENTENCES, ids=[m for _, _, m in BAD_SENTENCES])
def test_fast_models_name_the_bad_argument(kind, x, y, message):
    model = _models()[kind]
    for call in (lambda: model.total_loss_and_gradients([x], [y]), lambda: model.total_loss([x], [y])):
        with pytest.raises(ValueError, match=message):
            call()


@pytest.mark.parametrize("kind", ["fast", "lstm"])
def test_step_and_batch_shapes_are_checked(kind):
    model = _models()[kind]
    state = model.start_state(2)
    for x, message in [([0, -1], "word id -1"), ([0, V], f"word id {V}"), ([0.5, 1.0], "integer")]:
        with pytest.raises(ValueError, match=message):
            model.step(state, x)
    with pytest.raises(ValueError, match="X has 2 sentences but Y has 1"):
        model.total_loss_and_gradients([[0, 1], [1]], [[1, 2]])
    with pytest.raises(ValueError, match="not one sentence"):
        model.total_loss(np.array([0, 1]), np.array([1, 2]))
    loss, _ = model.total_loss_and_gradients([np.array([0, 1], dtype=np.int32)], [[1, np.int64(2)]])
    assert np.isfinite(loss)


def test_generate_refuses_nan_parameters_instead_of_emitting_unknown():
    from rnnlm.models.generate import generate_sentence
    from rnnlm.data.vocab import Vocabulary
    model = _models()["fast"]
    vocabulary = Vocabulary.build([[f"w{i}" for i in range(V - 3)]], V)
    model.params["V"][:] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        generate_sentence(model, vocabulary, np.random.default_rng(0))


@pytest.mark.parametrize("temperature", [0, 1.0])
def test_next_token_never_returns_a_banned_id(temperature):
    from rnnlm.models.generate import next_token
    rng = np.random.default_rng(0)
    logits = np.array([5.0, 1.0, -np.inf, 2.0])
    for _ in range(50):
        assert next_token(logits, rng, temperature, [0, 3]) == 1
    with pytest.raises(ValueError, match="every token is banned"):
        next_token(np.array([1.0, 2.0]), rng, temperature, [0, 1])
    with pytest.raises(ValueError, match="overflow"):
        next_token(np.array([-np.inf, -np.inf, 2.0]), rng, temperature, [2])
    with pytest.raises(ValueError, match="NaN"):
        next_token(np.array([np.nan, 1.0, 2.0]), rng, temperature, [2])
    with pytest.raises(ValueError, match="banned"):
        next_token(np.array([1.0, 2.0]), rng, temperature, [5])
    with pytest.raises(ValueError, match="banned"):
        next_token(np.array([1.0, 2.0]), rng, temperature, [-1])


def test_a_diverging_run_prints_one_line_and_keeps_the_last_good_model(model_file, tmp_path):
    out = tmp_path / "m.npz"
    out.write_bytes(model_file.read_bytes())
    result = python_m_rnnlm("train", COMMENTS, "--out", out, "--epochs", 2, "--learning-rate", "1e308",
                            "--optimizer", "sgd", *TINY)
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("rnnlm: error: "), result.stderr
    assert out.read_bytes() == model_file.read_bytes()


def test_nltk_floor_is_a_release_that_loads_punkt_without_pickle():
    text = (REPO / "pyproject.toml").read_text()
    assert '"nltk>=3.9"' in text
    import inspect
    from rnnlm.data import text as text_module
    assert "nltk.data.load" not in inspect.getsource(text_module)  # the only way it unpickled Punkt


def test_failure_table_and_exit_codes_are_documented_and_linked():
    failures = (REPO / "docs" / "failures.md").read_text()
    for code in ("| 0 |", "| 2 |", "| 130 |"):
        assert code in failures
    assert failures.count("| `rnnlm ") >= 50  # the table of cases tried
    assert "docs/failures.md" in (REPO / "README.md").read_text()
    assert "(failures.md)" in (REPO / "docs" / "cli.md").read_text()


def test_a_model_whose_scores_would_overflow_is_refused_without_warnings(model_file, tmp_path):
    arrays, _ = _arrays(model_file)
    arrays["param/V"] = np.full(arrays["param/V"].shape, 3e38, np.float32)  # finite, but V s_t overflows
    arrays["param/U"] = np.full(arrays["param/U"].shape, -3e38, np.float32)
    huge = _write(tmp_path / "huge.npz", arrays)
    for argv in (["generate", "--model", huge, "-n", 2], ["evaluate", "--model", huge, COMMENTS]):
        result = python_m_rnnlm(*argv)
        assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
        assert "beyond" in result.stderr and "Warning" not in result.stderr


def test_a_model_path_that_is_a_fifo_or_a_big_npy_is_refused_unread(tmp_path, monkeypatch):
    os.mkfifo(tmp_path / "fifo.npz")
    with pytest.raises(ModelFileError, match="not a regular file"):
        ckpt.load_model(tmp_path / "fifo.npz")  # opening it would block forever
    np.save(tmp_path / "a.npy", np.zeros(1000))
    monkeypatch.setattr(np, "load", lambda *a, **k: pytest.fail("np.load read a .npy model file"))
    with pytest.raises(ModelFileError, match="single NumPy array"):
        ckpt.load_model(tmp_path / "a.npy")


def test_numpy_integers_are_sizes_everywhere_and_decode_checks_ids():
    from rnnlm.models.generate import GenerateConfig, next_token
    from rnnlm.data.vocab import Vocabulary
    config = GenerateConfig(num_sentences=np.int64(3), min_length=np.int64(2), max_length=np.int64(9))
    assert config.num_sentences == 3 and type(config.max_length) is int
    vocabulary = Vocabulary.build([["a", "b", "a"]], np.int64(5))
    assert len(vocabulary) == 5 and vocabulary.decode(np.array([3, 4])) == list(vocabulary.index_to_word[3:5])
    for bad in ([-1], [5], [1.0]):
        with pytest.raises(ValueError, match="indices"):
            vocabulary.decode(bad)
    with pytest.raises(ValueError, match="temperature"):
        next_token(np.zeros(5), np.random.default_rng(0), -1.0, [])


@pytest.mark.parametrize("bad", ["negative", "too large", "short y", "uint64 huge", "float", "2-D", "empty float"])
def test_a_batch_of_arrays_is_checked_as_a_whole_and_each_sentence_named(bad, rng):
    # batches of 1-D int arrays take one vectorised check; any fault must still be found and named
    from rnnlm.nn.inputs import check_pairs
    X = [rng.integers(0, V, n) for n in (4, 3, 5)]
    Y = [rng.integers(0, V, n) for n in (4, 3, 5)]
    check_pairs(X, Y, V)  # valid: no error
    check_pairs([x.astype(np.uint8) for x in X], [y.astype(np.int32) for y in Y], V)
    good_y = Y[1]
    Y[1] = {"negative": np.array([0, -1, 2]), "too large": np.array([0, V, 2]), "short y": np.array([0, 1]),
            "uint64 huge": np.array([0, 2 ** 64 - 1, 2], dtype=np.uint64), "float": np.array([0.0, 1.0, 2.0]),
            "2-D": np.array([[0, 1, 2]]), "empty float": np.zeros(0)}[bad]
    message = {"negative": "Y\\[1\\] holds word id -1", "too large": f"Y\\[1\\] holds word id {V}",
               "short y": "len\\(X\\[1\\]\\) is 3 but len\\(Y\\[1\\]\\) is 2",
               "uint64 huge": f"Y\\[1\\] holds word id {2 ** 64 - 1}", "float": "Y\\[1\\] must hold integer",
               "2-D": "Y\\[1\\] must be a 1-D", "empty float": "len\\(X\\[1\\]\\) is 3 but len\\(Y\\[1\\]\\) is 0"}[bad]
    with pytest.raises(ValueError, match=message):
        check_pairs(X, Y, V)
    Y[1] = good_y
    check_pairs(X, Y, V)

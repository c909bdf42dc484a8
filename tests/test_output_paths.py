"""Outputs replace only what the user named, and only when allowed (issue 17).

A write-protected --out is refused as `cp` refuses it (an explicit mode-bit test, so it holds as
root too); an --out that is a symlink is written through, atomically at its target, and stays a
link; a symlink loop as any path, and an --out that names no file, are one line each.
"""

import os
import stat
from pathlib import Path

import pytest

from rnnlm.io import checkpoint as ckpt
from rnnlm.io import safe_files
from rnnlm.io import tree_checkpoint
from rnnlm import cli
from rnnlm.cli import outputs
from rnnlm.errors import ConfigError, ModelFileError

from helpers import one_line_error, run

FIXTURES = Path(__file__).parent / "fixtures"
COMMENTS = FIXTURES / "comments.csv"
TINY = ["--vocab-size", "60", "--hidden", "8", "--batch-size", "8", "--seed", "1", "--no-progress", "--epochs", "1"]
TREES = ["(4 (3 (2 a) (4 great)) (2 film))", "(0 (1 (2 a) (0 awful)) (2 film))", "(3 (2 truly) (3 good))"]
TREE_TINY = ["--hidden", "4", "--embed-size", "3", "--batch-size", "4", "--no-progress", "--epochs", "1"]


def snapshot(folder):
    """Every entry under `folder`: file bytes and mode, and where each link points."""
    state = {}
    for p in sorted(Path(folder).rglob("*")):
        if p.is_symlink():
            state[p] = ("link", os.readlink(p))
        elif p.is_file():
            state[p] = (p.read_bytes(), stat.S_IMODE(p.stat().st_mode))
        else:
            state[p] = "dir"
    return state


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """A tiny model, its safetensors export and a trees file, made once, outside each test's folder."""
    folder = tmp_path_factory.mktemp("inputs")
    model = folder / "model.npz"
    assert cli.main(["train", str(COMMENTS), "--out", str(model), *TINY]) == 0
    exported = folder / "model.safetensors"
    assert cli.main(["export", str(model), "--format", "safetensors", "--out", str(exported)]) == 0
    trees = folder / "trees.txt"
    trees.write_text("\n".join(TREES) + "\n", encoding="utf-8")
    return {"model": model, "safetensors": exported, "trees": trees}


def writer(inputs, command, out):
    """argv of each command that takes --out, writing `out`."""
    return {
        "train": ["train", COMMENTS, "--out", out, *TINY],
        "export": ["export", inputs["model"], "--out", out],
        "import": ["import", inputs["safetensors"], "--out", out],
        "trees train": ["trees", "train", inputs["trees"], "--out", out, *TREE_TINY],
    }[command]


WRITERS = ["train", "export", "import", "trees train"]


# --------------------------------------------------------------------- write-protected

def test_write_protected_tests_the_mode_bit_even_as_root(tmp_path):
    path = tmp_path / "m.npz"
    path.write_bytes(b"x")
    os.chmod(path, 0o644)
    assert not safe_files.write_protected(path)
    os.chmod(path, 0o444)
    assert safe_files.write_protected(path)  # os.access alone says True here when running as root
    assert not safe_files.write_protected(tmp_path / "new.npz")


@pytest.mark.parametrize("command", WRITERS)
def test_a_write_protected_out_is_refused_and_kept(tmp_path, capsys, inputs, command):
    out = tmp_path / "model.npz"
    out.write_bytes(b"the user's read-only file")
    os.chmod(out, 0o444)
    before = snapshot(tmp_path)
    code, _, err = run(capsys, *writer(inputs, command, out))
    one_line_error(code, err, f"--out {out} is write-protected; chmod u+w it or choose another --out")
    assert snapshot(tmp_path) == before


def test_a_write_protected_target_of_a_link_is_refused(tmp_path, capsys, inputs):
    (tmp_path / "real").mkdir()
    target = tmp_path / "real" / "m.npz"
    target.write_bytes(b"read-only")
    os.chmod(target, 0o444)
    (tmp_path / "link.npz").symlink_to(target)
    before = snapshot(tmp_path)
    code, _, err = run(capsys, *writer(inputs, "export", tmp_path / "link.npz"))
    one_line_error(code, err, f"is write-protected; chmod u+w {target}")
    assert snapshot(tmp_path) == before


def test_a_write_protected_plot_is_refused(tmp_path, capsys):
    plot = tmp_path / "loss.png"
    plot.write_bytes(b"png")
    os.chmod(plot, 0o444)
    code, _, err = run(capsys, "train", COMMENTS, "--out", tmp_path / "m.npz", "--plot", plot, *TINY)
    one_line_error(code, err, f"--plot {plot} is write-protected; chmod u+w it or choose another --plot")
    assert plot.read_bytes() == b"png" and not (tmp_path / "m.npz").exists()


def test_the_corpus_check_comes_before_the_write_protected_one(tmp_path, capsys):
    corpus = tmp_path / "c.csv"
    corpus.write_bytes(COMMENTS.read_bytes())
    os.chmod(corpus, 0o444)
    code, _, err = run(capsys, "train", corpus, "--out", corpus, *TINY)
    one_line_error(code, err, f"--out {corpus} is the corpus")


# --------------------------------------------------------------------- symlinks

@pytest.mark.parametrize("command", WRITERS)
def test_an_out_symlink_is_written_through_and_stays_a_link(tmp_path, capsys, inputs, command):
    (tmp_path / "real").mkdir()
    (tmp_path / "here").mkdir()
    target = tmp_path / "real" / "m.npz"
    target.write_bytes(b"old")
    link = tmp_path / "here" / "link.npz"
    link.symlink_to(Path("..") / "real" / "m.npz")  # relative, as `ln -s` makes them
    code, _, err = run(capsys, *writer(inputs, command, link))
    assert code == 0, err
    assert link.is_symlink() and os.readlink(link) == str(Path("..") / "real" / "m.npz")
    assert target.read_bytes()[:2] == b"PK"  # the model, at the link's target
    assert os.listdir(tmp_path / "here") == ["link.npz"]  # no temporary or lock file next to the link
    assert os.listdir(tmp_path / "real") == ["m.npz"]  # nor left next to the target
    loader = tree_checkpoint.load_tree_model if command == "trees train" else ckpt.load_model
    loader(link)


def test_a_dangling_out_symlink_creates_its_target(tmp_path, capsys, inputs):
    (tmp_path / "real").mkdir()
    link = tmp_path / "link.npz"
    link.symlink_to(tmp_path / "real" / "new.npz")
    code, _, err = run(capsys, *writer(inputs, "export", link))
    assert code == 0, err
    assert link.is_symlink() and (tmp_path / "real" / "new.npz").is_file()


def test_side_files_are_named_from_the_target_of_a_link(tmp_path):
    (tmp_path / "real").mkdir()
    link = tmp_path / "link.npz"
    link.symlink_to(tmp_path / "real" / "m.npz")
    assert outputs.last_path(link) == tmp_path / "real" / "m.last.npz"
    assert outputs.last_path(tmp_path / "plain.npz") == tmp_path / "plain.last.npz"
    stale = tmp_path / "real" / ".m.npz.abcd1234.tmp"
    stale.write_bytes(b"half a model")
    with safe_files.output_lock(link):
        assert (tmp_path / "real" / ".m.npz.lock").exists() and not (tmp_path / ".link.npz.lock").exists()
        assert not stale.exists()
        with pytest.raises(ConfigError, match="another rnnlm process"):  # the target's lock, by either name
            with safe_files.output_lock(tmp_path / "real" / "m.npz"):
                pass
    with safe_files.atomic_write(link) as handle:
        handle.write(b"new")
    assert link.is_symlink() and (tmp_path / "real" / "m.npz").read_bytes() == b"new"
    assert sorted(os.listdir(tmp_path)) == ["link.npz", "real"]


LOOPS = [
    (["train", "{loop}", "--out", "{out}"], "the corpus {loop}"),
    (["train", COMMENTS, "--out", "{loop}"], "--out {loop}"),
    (["train", COMMENTS, "--out", "{out}", "--plot", "{loop}"], "--plot {loop}"),
    (["train", COMMENTS, "--out", "{out}", "--resume", "{loop}"], "--resume {loop}"),
    (["train", COMMENTS, "--out", "{inloop}"], "{inloop}"),
    (["evaluate", "--model", "{loop}", COMMENTS], "model file {loop}"),
    (["evaluate", "--model", "{model}", "{loop}"], "the corpus {loop}"),
    (["generate", "--model", "{loop}"], "model file {loop}"),
    (["info", "--model", "{loop}"], "model file {loop}"),
    (["export", "{loop}", "--out", "{out}"], "model file {loop}"),
    (["export", "{model}", "--out", "{loop}"], "--out {loop}"),
    (["import", "{loop}", "--out", "{out}"], "the input file {loop}"),
    (["import", "{safetensors}", "--out", "{loop}"], "--out {loop}"),
    (["trees", "train", "{loop}", "--out", "{out}"], "the training trees {loop}"),
    (["trees", "train", "{trees}", "--dev", "{loop}", "--out", "{out}"], "--dev {loop}"),
    (["trees", "train", "{trees}", "--out", "{loop}"], "--out {loop}"),
    (["trees", "evaluate", "--model", "{loop}", "{trees}"], "model file {loop}"),
    (["trees", "predict", "--model", "{loop}", "good"], "model file {loop}"),
    (["check", "{loop}"], "the notebook {loop}"),
    (["course", "build", "--solutions", "{loop}", "--out", "{tmp}"], "--solutions {loop}"),
    (["course", "build", "--solutions", "{tmp}", "--out", "{loop}"], "--out {loop}"),
    (["download", "reddit", "--dir", "{loop}"], "--dir {loop}"),
]


@pytest.mark.parametrize("argv, message", LOOPS, ids=[f"{i}-{m.split()[0]}-{a[0]}"
                                                      for i, (a, m) in enumerate(LOOPS)])
def test_a_symlink_loop_as_any_path_is_one_line(tmp_path, capsys, inputs, argv, message):
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    names = {"loop": tmp_path / "a", "inloop": tmp_path / "a" / "m.npz", "out": tmp_path / "out.npz",
             "tmp": tmp_path, **inputs}
    before = snapshot(tmp_path)
    code, _, err = run(capsys, *[str(a).format(**names) for a in argv])
    one_line_error(code, err, message.format(**names) + " is a symlink loop")
    assert snapshot(tmp_path) == before


def test_loading_a_model_through_a_symlink_loop_says_so(tmp_path):
    (tmp_path / "m.npz").symlink_to(tmp_path / "m.npz")
    with pytest.raises(ModelFileError, match="is a symlink loop"):  # not "model file not found"
        ckpt.load_model(tmp_path / "m.npz")


# --------------------------------------------------------------------- --out must name a file

@pytest.mark.parametrize("command", WRITERS)
@pytest.mark.parametrize("out, message", [
    ("", "--out is empty; --out must name a file"),
    (".", "--out . names a directory; --out must name a file"),
    ("/", "--out / names a directory; --out must name a file"),
    ("{tmp}/sub", "--out {tmp}/sub is a directory; --out must name a file"),
    ("{tmp}/model.npz/", "--out {tmp}/model.npz/ ends with '/', so it names a directory; --out must name a file"),
    ("{tmp}/..", "names a directory; --out must name a file"),
])
def test_an_out_that_names_no_file_is_one_line(tmp_path, capsys, inputs, command, out, message):
    (tmp_path / "sub").mkdir()
    out, message = out.format(tmp=tmp_path), message.format(tmp=tmp_path)
    before = snapshot(tmp_path)
    code, _, err = run(capsys, *writer(inputs, command, out))
    one_line_error(code, err, message)
    assert snapshot(tmp_path) == before and not (tmp_path / "model.npz").exists()


def test_a_trailing_slash_on_plot_is_refused(tmp_path, capsys):
    code, _, err = run(capsys, "train", COMMENTS, "--out", tmp_path / "m.npz", "--plot", f"{tmp_path}/loss.png/",
                       *TINY)
    one_line_error(code, err, "ends with '/', so it names a directory; --plot must name a file")
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("command", [["train"], ["export"], ["import"], ["trees", "train"]])
def test_help_says_a_link_is_written_through_and_a_read_only_file_refused(capsys, command):
    code, out, _ = run(capsys, *command, "--help")
    text = " ".join(out.split())
    assert code == 0 and "a symlink is written through" in text
    assert "write-protected file (chmod a-w) is refused" in text


def test_a_ctrl_c_inside_tempfile_leaves_no_temporary_behind(tmp_path, monkeypatch):
    """Ctrl-C can arrive after the temporary file exists but before atomic_write's `try` owns it (inside
    tempfile.NamedTemporaryFile): the output lock's exit removes it, so only the model stays."""
    out = tmp_path / "m.npz"
    out.write_bytes(b"old model")
    real = safe_files.tempfile.NamedTemporaryFile

    def interrupted(*args, **kwargs):
        real(*args, **kwargs).close()  # the file is on disk, the handle never reaches the caller
        raise KeyboardInterrupt
    monkeypatch.setattr(safe_files.tempfile, "NamedTemporaryFile", interrupted)
    with pytest.raises(KeyboardInterrupt):
        with safe_files.output_lock(out):
            with safe_files.atomic_write(out) as handle:
                handle.write(b"new model")
    assert sorted(os.listdir(tmp_path)) == ["m.npz"] and out.read_bytes() == b"old model"

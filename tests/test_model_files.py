"""Crafted model and exchange files (issue 17): each refused with one line, fast, without a large allocation."""

import io
import json
import time
import tracemalloc
import zipfile

import numpy as np
import pytest

from rnnlm.io import checkpoint as ckpt
from rnnlm.io import archive
from rnnlm.io import tree_checkpoint
from rnnlm.errors import ModelFileError
from rnnlm.models.fast import FastRNN
from rnnlm.data.vocab import Vocabulary


@pytest.fixture
def vocab():
    return Vocabulary.build([["the", "cat", "sat"], ["a", "dog", "ran"]], vocabulary_size=8)


@pytest.fixture
def model_file(tmp_path, vocab):
    path = tmp_path / "m.npz"
    ckpt.save_model(path, FastRNN(len(vocab), hidden_dim=4, seed=1), vocab)
    return path


def _npy_header(shape, dtype="<f4"):
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)),
                                                  "fortran_order": False, "shape": tuple(shape)})
    return buffer.getvalue()


def _npy(array):
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def _craft(source, target, params, hidden, compression=zipfile.ZIP_DEFLATED):
    """`source`'s model file with hidden size `hidden` and its param members replaced by `params` ({name: bytes})."""
    with zipfile.ZipFile(source) as src:
        meta = json.loads(np.frombuffer(np.load(source)["metadata"].tobytes(), np.uint8).tobytes())
        meta["model_config"]["hidden_size"] = hidden
        with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as out:
            out.writestr("metadata.npy", _npy(np.frombuffer(json.dumps(meta).encode(), np.uint8)))
            for name in src.namelist():
                if name.startswith("vocab/"):
                    out.writestr(name, src.read(name))
            for name, data in params.items():
                out.writestr(f"param/{name}.npy", data, compress_type=compression, compresslevel=9)
    return target


def _refused_cheaply(path, match):
    tracemalloc.start()
    start = time.perf_counter()
    try:
        with pytest.raises(ModelFileError, match=match) as info:
            ckpt.load_model(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert time.perf_counter() - start < 1.0
    assert peak < 50 * 2 ** 20, f"refusing the file allocated {peak / 2 ** 20:.0f} MB"
    assert "\n" not in str(info.value)
    return str(info.value)


def test_header_only_file_is_refused_before_the_model_is_built(tmp_path, model_file, vocab):
    H, C = 3000, len(vocab)
    path = _craft(model_file, tmp_path / "headers.npz",
                  {"U": _npy_header((H, C)), "V": _npy_header((C, H)), "W": _npy_header((H, H))}, H)
    assert path.stat().st_size < 4096
    message = _refused_cheaply(path, r"parameter 'U' declares .* KB but the file stores 128 bytes: "
                                     r"the file is truncated or crafted")
    assert str(path) in message


@pytest.mark.parametrize("compression", [zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2])
def test_zip_bomb_member_is_refused_before_it_is_inflated(tmp_path, model_file, vocab, compression):
    H, C = 3000, len(vocab)
    rng = np.random.default_rng(0)
    params = {"U": _npy(rng.standard_normal((H, C), dtype=np.float32)),
              "V": _npy(rng.standard_normal((C, H), dtype=np.float32)),
              "W": _npy(np.zeros((H, H), dtype=np.float32))}  # 36 MB of zeros
    path = _craft(model_file, tmp_path / "bomb.npz", params, H, compression)
    info = zipfile.ZipFile(path).getinfo("param/W.npy")
    assert info.file_size > archive.MAX_INFLATION * info.compress_size  # the fixture really is a bomb
    _refused_cheaply(path, r"parameter 'W' would inflate its .* of stored bytes to 34 MB, over 1000x, more than any "
                           r"model file compresses: the file is crafted \(a zip bomb\)")


def test_member_claiming_more_compressed_bytes_than_the_file_has(tmp_path, model_file):
    data = bytearray(model_file.read_bytes())
    # the central directory's compressed size of the first member, raised far beyond the file
    at = data.find(b"PK\x01\x02")
    data[at + 20:at + 24] = (10 ** 9).to_bytes(4, "little")
    data[at + 24:at + 28] = (10 ** 9).to_bytes(4, "little")
    bad = model_file.with_name("claims.npz")
    bad.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="truncated or crafted|damaged"):
        ckpt.load_model(bad)


def test_header_only_tree_model_is_refused_before_it_is_built(tmp_path, vocab):
    from rnnlm.models.tree_lstm import TreeLSTM, TreeLSTMConfig, param_shapes
    small = TreeLSTMConfig(vocab_size=len(vocab), embed_size=4, hidden_size=4)
    source = tmp_path / "tree.npz"
    tree_checkpoint.save_tree_model(source, TreeLSTM(small, seed=0), vocab)
    big = TreeLSTMConfig(vocab_size=len(vocab), embed_size=4, hidden_size=2000)  # U alone: 4000 x 10000 floats
    with zipfile.ZipFile(source) as src:
        meta = json.loads(np.load(source)["metadata"].tobytes())
        meta["model_config"] = big.to_dict()
        path = tmp_path / "crafted-tree.npz"
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as out:
            out.writestr("metadata.npy", _npy(np.frombuffer(json.dumps(meta).encode(), np.uint8)))
            for name in src.namelist():
                if name.startswith("vocab/"):
                    out.writestr(name, src.read(name))
            for name, shape in param_shapes(big).items():
                out.writestr(f"param/{name}.npy", _npy_header(shape))
    tracemalloc.start()
    try:
        with pytest.raises(ModelFileError, match=r"parameter 'W_leaf' declares .* but the file stores .*: the file is "
                                                 r"truncated or crafted"):
            tree_checkpoint.load_tree_model(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 50 * 2 ** 20


def test_ordinary_files_still_load(model_file, vocab):
    assert ckpt.load_model(model_file).vocabulary == vocab


# --------------------------------------------------------------------- crafted --resume training state

from pathlib import Path  # noqa: E402

from rnnlm import cli  # noqa: E402

from helpers import run  # noqa: E402

COMMENTS = Path(__file__).parent / "fixtures" / "comments.csv"
TINY = ["--vocab-size", "60", "--hidden", "8", "--batch-size", "4", "--seed", "1", "--no-progress"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A 2-epoch Adam run of each kind: sentence batches, and --stream (a LanguageModel that carries state)."""
    folder = tmp_path_factory.mktemp("trained")
    paths = {}
    for name, extra in {"sentences": [], "stream": ["--stream", "--seq-length", "5"]}.items():
        paths[name] = folder / f"{name}.npz"
        assert cli.main(["train", str(COMMENTS), "--out", str(paths[name]), "--epochs", "2", "--optimizer", "adam",
                         *TINY, *extra]) == 0
    return paths


def _edited(source, target, edit_meta=None, edit_arrays=None):
    with np.load(source) as data:
        arrays = dict(data)
    meta = json.loads(arrays["metadata"].tobytes())
    if edit_meta:
        edit_meta(meta)
    if edit_arrays:
        edit_arrays(arrays, meta)
    arrays["metadata"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    np.savez(target, **arrays)
    return target


def _set(key, value):
    return lambda meta: meta["training"].__setitem__(key, value)


H = 8
RESUME_CASES = {
    "negative batch": ("sentences", _set("batch", -3), None, "batch -3 is not a non-negative integer"),
    "fractional batch": ("sentences", _set("batch", 1.5), None, "batch 1.5 is not a non-negative integer"),
    "batch beyond the epoch": ("sentences", _set("batch", 10 ** 6), None,
                               "resumes epoch 3 at batch 1000000, but the epoch has"),
    "epoch beyond the plan": ("sentences", _set("epoch", 7), None,
                              "epoch 7 is beyond the 2 epochs its train_config plans"),
    "fractional best epoch": ("sentences", _set("best_epoch", 1.5), None, "best epoch 1.5 is not a positive integer"),
    "best epoch in the future": ("sentences", _set("best_epoch", 5), None, "best epoch 5 is after epoch 3, the one it resumes"),
    "schedule memory": ("sentences", _set("schedule", {"smoothed": "low", "oops": 1}), None,
                        "learning-rate rule's memory"),
    "fractional schedule count": ("sentences", _set("schedule", {"smoothed": 1.0, "best": 1.0, "bad_evaluations": 0.5}),
                                  None, "learning-rate rule's memory"),
    "unknown optimizer slot": ("sentences", None,
                               lambda a, m: a.__setitem__("optimizer/W/zzz", np.zeros_like(a["optimizer/W/m"])),
                               "'optimizer/W/zzz' is not state the adam optimizer keeps (m, v)"),
    "carry of the wrong width": ("stream", _set("batch", 1),
                                 lambda a, m: a.__setitem__("optimizer/carry/0/0", np.zeros((4, H + 1), np.float32)),
                                 "has shape (4, 9): expected (streams, 8)"),
    "carry of a layer the model lacks": ("stream", _set("batch", 1),
                                         lambda a, m: a.__setitem__("optimizer/carry/3/0", np.zeros((4, H), np.float32)),
                                         "the model has 1 layer(s) of 1 state array(s)"),
    "carry with a bad name": ("stream", _set("batch", 1),
                              lambda a, m: a.__setitem__("optimizer/carry/x", np.zeros((4, H), np.float32)),
                              "its name is not <layer>/<part>"),
    "carry for other streams": ("stream", _set("batch", 1),
                                lambda a, m: a.__setitem__("optimizer/carry/0/0", np.zeros((3, H), np.float32)),
                                "carried stream state has shapes [(3, 8)], but this run's 4 streams need [(4, 8)]"),
}


@pytest.mark.parametrize("case", sorted(RESUME_CASES))
def test_crafted_resume_state_is_refused_in_one_line(trained, tmp_path, capsys, case):
    source, edit_meta, edit_arrays, message = RESUME_CASES[case]
    bad = _edited(trained[source], tmp_path / "bad.npz", edit_meta, edit_arrays)
    extra = ["--stream", "--seq-length", "5"] if source == "stream" else []
    before = bad.read_bytes()
    code, _, err = run(capsys, "train", COMMENTS, "--out", bad, "--resume", "--epochs", 3, "--optimizer", "adam",
                       *TINY, *extra)
    assert code == 2 and err.startswith("rnnlm: error: ") and err.count("\n") == 1, err
    assert message in err, err
    assert bad.read_bytes() == before  # the model being resumed is untouched


def test_a_time_limited_epoch_may_hold_the_best_validation_loss(trained):
    """Stopped part-way through epoch 3 after its validation loss was the best: best_epoch 3, epoch 2 (a real file)."""
    training = {"epoch": 2, "batch": 1, "learning_rate": 0.01, "best_epoch": 3, "best_loss": 2.0, "history": []}
    ckpt._check_training(training, "m.npz")


def test_an_untouched_state_still_resumes(trained, tmp_path, capsys):
    copy = _edited(trained["stream"], tmp_path / "ok.npz")
    code, _, err = run(capsys, "train", COMMENTS, "--out", copy, "--resume", "--epochs", 3, "--optimizer", "adam",
                       *TINY, "--stream", "--seq-length", "5")
    assert code == 0, err

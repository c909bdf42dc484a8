"""Model files: round trips, no pickle, atomic writes, and every kind of broken file rejected."""

import dataclasses
import json
import os
import pickle

import numpy as np
import pytest

from rnnlm.io import checkpoint as ckpt
from rnnlm.io import archive
from rnnlm.io import kinds
from rnnlm.io import safe_files
from rnnlm.config import ModelConfig, TrainConfig
from rnnlm.errors import ModelFileError
from rnnlm.models.fast import FastRNN
from rnnlm.models.language_model import LanguageModel
from rnnlm.nn.optim import make_optimizer
from rnnlm.training.loop import EpochRecord, TrainingState
from rnnlm.data.vocab import Vocabulary

SENTENCES = [["the", "cat", "sat"], ["the", "dog", "ran"], ["a", "cat", "ran"]]


@pytest.fixture
def vocab():
    return Vocabulary.build(SENTENCES, vocabulary_size=8)


@pytest.fixture
def model(vocab):
    return FastRNN(len(vocab), hidden_dim=6, bptt_truncate=3, seed=1)


def _state(model):
    optimizer = make_optimizer("adam", 0.01)
    grads = {k: np.ones_like(v) for k, v in model.params.items()}
    optimizer.step({k: v.copy() for k, v in model.params.items()}, grads)
    record = EpochRecord(epoch=2, train_loss=2.5, valid_loss=2.75, learning_rate=0.01, seconds=0.1, tokens=20,
                         tokens_per_second=200.0, next_learning_rate=0.005, first_batch=1, batches=3, num_batches=4,
                         complete=False, monitored="validation")
    # every field away from its default, so a field the file drops or resets cannot pass unseen
    return TrainingState(epoch=2, learning_rate=0.005, history=[record], previous_loss=2.75,
                         optimizer_state={k: np.array(v) for k, v in optimizer.state_dict().items()},
                         schedule={"smoothed": 2.8, "best": 2.75, "bad_evaluations": 1}, batch=3,
                         carry=_carry() if isinstance(model, LanguageModel) else {},
                         best_epoch=1, best_loss=2.7, data={"fingerprint": "abc123", "sentences": 3})


def _carry():
    return {"0/0": np.linspace(-0.5, 0.5, 12).reshape(2, 6).astype(np.float32)}  # layer 0, part 0: (streams, H)


def _is_default(f, value):
    default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
    if default is dataclasses.MISSING:
        return False
    if isinstance(value, (dict, list)):
        return len(value) == 0 and not default
    return value == default


def _assert_same_field(name, got, want):
    if isinstance(want, dict) and any(isinstance(v, np.ndarray) for v in want.values()):
        assert set(got) == set(want), name
        for key, value in want.items():
            np.testing.assert_array_equal(got[key], value, err_msg=f"{name}[{key!r}]")
            assert np.asarray(got[key]).dtype == value.dtype, f"{name}[{key!r}]"
    else:
        assert got == want, name


def test_round_trip_keeps_everything(tmp_path, vocab):
    # a LanguageModel: the one kind that carries stream state, so every TrainingState field can be set
    model = LanguageModel(len(vocab), 6, bptt_truncate=3, seed=1)
    path = tmp_path / "m.npz"
    state = _state(model)
    train_config = TrainConfig(epochs=5, optimizer="adam", learning_rate=0.01, seed=3)
    ckpt.save_model(path, model, vocab, level="word", train_config=train_config, state=state)
    loaded = ckpt.load_model(path)
    assert loaded.kind == "language-model" and loaded.level == "word"
    assert loaded.model.config == model.config
    for name, value in model.params.items():
        np.testing.assert_array_equal(loaded.model.params[name], value)
        assert loaded.model.params[name].dtype == np.float32
    assert loaded.vocabulary == vocab
    assert loaded.train_config == train_config
    for f in dataclasses.fields(TrainingState):  # a field added later is covered without touching this test
        want = getattr(state, f.name)
        assert not _is_default(f, want), f"the test state leaves {f.name} at its default"
        _assert_same_field(f.name, getattr(loaded.state, f.name), want)
    for f in dataclasses.fields(EpochRecord):
        assert f.default is dataclasses.MISSING or getattr(state.history[0], f.name) != f.default, f.name
    meta = loaded.metadata
    assert meta["format_version"] == archive.FORMAT_VERSION and meta["rng"]["seed"] == 3
    assert meta["special_tokens"]["UNKNOWN_TOKEN"] == vocab.unknown_index


def test_untrained_model_and_float16_storage(tmp_path, model, vocab):
    path = tmp_path / "half.npz"
    ckpt.save_model(path, model, vocab, param_dtype=np.float16)
    loaded = ckpt.load_model(path)
    assert loaded.state is None and loaded.train_config is None
    for name, value in model.params.items():
        assert loaded.model.params[name].dtype == np.float32
        np.testing.assert_allclose(loaded.model.params[name], value, rtol=1e-3, atol=1e-4)


def test_written_file_is_readable_by_others(tmp_path, model, vocab):
    path = tmp_path / "m.npz"
    old = os.umask(0o022)
    try:
        ckpt.save_model(path, model, vocab)
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644


def test_object_arrays_are_never_unpickled(tmp_path, model, vocab):
    path = tmp_path / "m.npz"
    ckpt.save_model(path, model, vocab)
    with np.load(path) as data:
        arrays = dict(data)
    arrays["param/U"] = np.array([{"payload": 1}], dtype=object)
    evil = tmp_path / "evil.npz"
    np.savez(evil, **arrays)
    with pytest.raises(ModelFileError, match="pickled"):
        ckpt.load_model(evil)


def test_a_pickle_file_is_rejected(tmp_path):
    path = tmp_path / "evil.npz"
    path.write_bytes(pickle.dumps({"U": [1, 2, 3]}))
    with pytest.raises(ModelFileError, match="pickle"):
        ckpt.load_model(path)


@pytest.mark.parametrize("content, match", [
    (b"just some text\n", "not an rnnlm model"),
    (b"", "not an rnnlm model"),
])
def test_not_a_model(tmp_path, content, match):
    path = tmp_path / "m.npz"
    path.write_bytes(content)
    with pytest.raises(ModelFileError, match=match):
        ckpt.load_model(path)


def test_npy_and_foreign_npz_are_rejected(tmp_path):
    np.save(tmp_path / "a.npy", np.zeros(3))
    with pytest.raises(ModelFileError, match="single NumPy array"):
        ckpt.load_model(tmp_path / "a.npy")
    np.savez(tmp_path / "b.npz", weights=np.zeros(3))
    with pytest.raises(ModelFileError, match="not an rnnlm model file"):
        ckpt.load_model(tmp_path / "b.npz")


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(ModelFileError, match="not found"):
        ckpt.load_model(tmp_path / "nope.npz")
    with pytest.raises(ModelFileError, match="directory"):
        ckpt.load_model(tmp_path)


@pytest.mark.parametrize("keep", [0.1, 0.5, 0.9, 0.99])
def test_truncated_file(tmp_path, model, vocab, keep):
    path = tmp_path / "m.npz"
    ckpt.save_model(path, model, vocab, state=_state(model))
    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * keep)])
    with pytest.raises(ModelFileError, match="truncated"):
        ckpt.load_model(path)


def _rewrite_metadata(path, edit):
    with np.load(path) as data:
        arrays = dict(data)
    meta = json.loads(arrays["metadata"].tobytes())
    edit(meta)
    arrays["metadata"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    np.savez(path, **arrays)


def test_unknown_format_version(tmp_path, model, vocab):
    path = tmp_path / "m.npz"
    ckpt.save_model(path, model, vocab)
    _rewrite_metadata(path, lambda meta: meta.update(format_version=99))
    with pytest.raises(ModelFileError, match="format version 99"):
        ckpt.load_model(path)


def test_inconsistent_shapes_are_rejected(tmp_path, model, vocab):
    path = tmp_path / "m.npz"
    ckpt.save_model(path, model, vocab)
    _rewrite_metadata(path, lambda meta: meta["model_config"].update(hidden_size=7))
    with pytest.raises(ModelFileError, match="shape"):
        ckpt.load_model(path)


def _snapshot(folder):
    return {p.name: p.read_bytes() for p in folder.iterdir()}


def test_crash_while_writing_leaves_the_old_file(tmp_path, model, vocab, monkeypatch):
    path = tmp_path / "m.npz"
    ckpt.save_model(path, model, vocab)
    before = _snapshot(tmp_path)

    def half_written(handle, **arrays):
        handle.write(b"PK\x03\x04 half a zip archive")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "savez_compressed", half_written)
    model.params["U"][...] = 0.0
    with pytest.raises(OSError):
        ckpt.save_model(path, model, vocab)
    assert _snapshot(tmp_path) == before  # same file, same bytes, no temporary left behind


def test_crash_at_the_rename_leaves_the_old_file(tmp_path, model, vocab, monkeypatch):
    path = tmp_path / "m.npz"
    ckpt.save_model(path, model, vocab)
    before = _snapshot(tmp_path)

    def killed(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        ckpt.save_model(path, model, vocab, state=_state(model))
    assert _snapshot(tmp_path) == before
    monkeypatch.undo()
    ckpt.load_model(path)


def test_atomic_write_replaces_only_on_success(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(b"old")
    with pytest.raises(ValueError):
        with safe_files.atomic_write(path) as handle:
            handle.write(b"new")
            raise ValueError("boom")
    assert path.read_bytes() == b"old" and len(list(tmp_path.iterdir())) == 1
    with safe_files.atomic_write(path) as handle:
        handle.write(b"new")
    assert path.read_bytes() == b"new" and len(list(tmp_path.iterdir())) == 1


def test_model_kind_picks_fast_rnn_for_the_tutorial_shape():
    assert kinds.model_kind(ModelConfig(vocab_size=10)) == "fast-rnn"
    assert kinds.model_kind(ModelConfig(vocab_size=10, num_layers=2)) == "language-model"
    assert kinds.model_kind(ModelConfig(vocab_size=10, embed_size=4)) == "language-model"
    assert kinds.model_kind(ModelConfig(vocab_size=10, cell="gru")) == "language-model"


@pytest.mark.parametrize("cell", ["gru", "lstm", "jordan"])
def test_language_model_round_trip(tmp_path, vocab, cell):
    config = ModelConfig(vocab_size=len(vocab), hidden_size=5, cell=cell, bptt_truncate=4)
    model = kinds.build_model(config, seed=2)
    path = tmp_path / "lm.npz"
    ckpt.save_model(path, model, vocab, level="char")
    loaded = ckpt.load_model(path)
    assert loaded.kind == "language-model" and loaded.level == "char"
    assert loaded.model.config == model.config
    for name, value in model.params.items():
        np.testing.assert_array_equal(loaded.model.params[name], value)


def test_bundled_model_loads():
    if not ckpt.BUNDLED_MODEL.is_file():
        pytest.skip("bundled model not built yet")
    loaded = ckpt.load_model(ckpt.BUNDLED_MODEL)
    assert loaded.level == "word" and len(loaded.vocabulary) == loaded.model.config.vocab_size
    assert ckpt.BUNDLED_MODEL.stat().st_size <= 5 * 1024 * 1024


def test_saving_does_not_need_a_file_name_ending_in_npz(tmp_path, model, vocab):
    path = tmp_path / "model"
    ckpt.save_model(path, model, vocab)
    assert path.is_file() and not (tmp_path / "model.npz").exists()
    assert ckpt.load_model(path).vocabulary == vocab


def test_the_writer_refuses_carried_state_the_reader_would_refuse(tmp_path, model, vocab):
    """One rule for stream state: a FastRNN carries none, so a state holding some is not written."""
    state = dataclasses.replace(_state(model), carry=_carry())
    with pytest.raises(ModelFileError, match="carries no stream state; nothing was written"):
        ckpt.save_model(tmp_path / "m.npz", model, vocab, state=state)
    assert not (tmp_path / "m.npz").exists()

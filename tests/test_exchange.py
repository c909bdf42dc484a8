"""safetensors export/import without PyTorch: layouts, exact round trips, refusals, damaged files, the CLI.

The torch side (losses equal PyTorch's, DistributedDataParallel) is in test_exchange_torch.py.
"""

import json
import struct

import numpy as np
import pytest
import safetensors.numpy

from rnnlm.io import checkpoint as ckpt
from rnnlm.io import kinds
from rnnlm import cli
from rnnlm.io import exchange
from rnnlm.errors import ConfigError, ModelFileError
from rnnlm.models.fast import FastRNN
from rnnlm.models.language_model import LanguageModel
from rnnlm.nn.numerics import log_softmax
from rnnlm.models.reference import RNNNumpy
from rnnlm.data.vocab import Vocabulary

from helpers import run

SENTENCES = [["the", "cat", "sat", "on", "the", "mat", "."], ["a", "dog", "sat", "."], ["the", "dog", "ran", "."]]
VOCAB = Vocabulary.build(SENTENCES, 11)
C = len(VOCAB)
H, E = 6, 5

EXPORTABLE = {
    "rnn": lambda dtype: LanguageModel(C, H, cell="rnn", embed_size=E, seed=1, dtype=dtype),
    "gru-2-layers": lambda dtype: LanguageModel(C, H, cell="gru", num_layers=2, embed_size=E, seed=2, dtype=dtype),
    "lstm-2-layers": lambda dtype: LanguageModel(C, H, cell="lstm", num_layers=2, seed=3, dtype=dtype),
    "lstm-embedding": lambda dtype: LanguageModel(C, H, cell="lstm", embed_size=E, seed=4, dtype=dtype),
    "fast-rnn": lambda dtype: FastRNN(C, H, seed=5, dtype=dtype),
    # what `rnnlm train --stream` writes: a LanguageModel in the tutorial's shape (model_kind "language-model")
    "stream-tutorial-shape": lambda dtype: LanguageModel(C, H, cell="rnn", seed=6, dtype=dtype),
    # word_language_model's tied LSTM (out.weight = embedding.weight) and a model trained with dropout
    "lstm-tied": lambda dtype: LanguageModel(C, H, cell="lstm", num_layers=2, tie_weights=True, seed=7, dtype=dtype),
    "gru-dropout": lambda dtype: LanguageModel(C, H, cell="gru", embed_size=E, dropout=0.3, seed=8, dtype=dtype),
}


def batch(seed=0):
    rng = np.random.default_rng(seed)
    lengths = (6, 2, 4, 1)
    return [rng.integers(0, C, n) for n in lengths], [rng.integers(0, C, n) for n in lengths]


def randomize_biases(model, seed=0):
    """Non-zero biases, so a bias exported under the wrong name would change the loss."""
    rng = np.random.default_rng(seed)
    for name, value in model.params.items():
        if "b_" in name:
            value[...] = rng.uniform(-0.5, 0.5, value.shape)
    return model


# --------------------------------------------------------------------- layouts and exact round trips

def test_tutorial_model_maps_to_embedding_identity_rnn_and_linear():
    m = FastRNN(C, H, seed=0, dtype=np.float64)
    t = exchange.torch_tensors(m)
    assert set(t) == {"embedding.weight", "rnn.weight_ih_l0", "rnn.weight_hh_l0", "out.weight"}
    np.testing.assert_array_equal(t["embedding.weight"], m.U.T)
    np.testing.assert_array_equal(t["rnn.weight_ih_l0"], np.eye(H))
    np.testing.assert_array_equal(t["rnn.weight_hh_l0"], m.W)
    np.testing.assert_array_equal(t["out.weight"], m.V)
    assert exchange.torch_spec(m.config)["frozen"] == ["rnn.weight_ih_l0"]


def test_lstm_tensors_have_torchs_documented_shapes():
    m = LanguageModel(C, H, cell="lstm", num_layers=2, embed_size=E, seed=0)
    shapes = {k: v.shape for k, v in exchange.torch_tensors(m).items()}
    assert shapes == {"embedding.weight": (C, E), "rnn.weight_ih_l0": (4 * H, E), "rnn.weight_hh_l0": (4 * H, H),
                      "rnn.bias_ih_l0": (4 * H,), "rnn.bias_hh_l0": (4 * H,), "rnn.weight_ih_l1": (4 * H, H),
                      "rnn.weight_hh_l1": (4 * H, H), "rnn.bias_ih_l1": (4 * H,), "rnn.bias_hh_l1": (4 * H,),
                      "out.weight": (C, H), "out.bias": (C,)}


@pytest.mark.parametrize("kind", sorted(EXPORTABLE))
def test_export_then_import_rebuilds_the_same_model(tmp_path, kind):
    m = randomize_biases(EXPORTABLE[kind](np.float64))
    path = tmp_path / "m.safetensors"
    exchange.save_safetensors(path, m, VOCAB, level="word")
    back = exchange.load_safetensors(path, dtype=np.float64)
    assert type(back.model) is type(m) and back.model.config == m.config
    assert back.vocabulary == VOCAB and back.level == "word" and back.state is None
    for name, value in m.params.items():
        np.testing.assert_array_equal(back.model.params[name], value, err_msg=name)
    X, Y = batch()
    assert back.model.total_loss(X, Y) == m.total_loss(X, Y)


def test_rnnnumpy_exports_as_the_tutorial_model(tmp_path):
    ref = RNNNumpy(C, H, bptt_truncate=3, seed=7)
    exchange.save_safetensors(tmp_path / "r.safetensors", ref, VOCAB)
    back = exchange.load_safetensors(tmp_path / "r.safetensors", dtype=np.float64)
    assert isinstance(back.model, FastRNN) and back.model.bptt_truncate == 3
    X, Y = batch(1)
    assert back.model.total_loss(X, Y) == pytest.approx(ref.calculate_total_loss(X, Y), rel=1e-12)


def test_a_trained_input_map_is_folded_into_U(tmp_path):
    """Weights changed on the torch side, weight_ih included, give the loss of torch's own equations."""
    m = FastRNN(C, H, seed=0, dtype=np.float64)
    export = exchange.export_model(m, VOCAB)
    rng = np.random.default_rng(3)
    tensors = {k: v + rng.normal(0, 0.3, v.shape) for k, v in export.tensors.items()}
    exchange.write_safetensors(tmp_path / "t.safetensors", export.with_tensors(tensors))
    back = exchange.load_safetensors(tmp_path / "t.safetensors", dtype=np.float64)

    emb, A, Whh, out = (tensors[k] for k in ("embedding.weight", "rnn.weight_ih_l0", "rnn.weight_hh_l0",
                                              "out.weight"))
    X, Y = batch(2)
    expected = 0.0
    for x, y in zip(X, Y):  # nn.RNN(bias=False) + nn.Linear(bias=False), written out
        h = np.zeros(H)
        for xt, yt in zip(x, y):
            h = np.tanh(emb[xt] @ A.T + h @ Whh.T)
            expected -= log_softmax(h @ out.T)[yt]
    assert back.model.total_loss(X, Y) == pytest.approx(expected, rel=1e-12)


def test_metadata_alone_rebuilds_the_model(tmp_path):
    m = LanguageModel(C, H, cell="gru", embed_size=E, seed=0)
    exchange.save_safetensors(tmp_path / "m.safetensors", m, VOCAB, level="char")
    from safetensors import safe_open
    with safe_open(str(tmp_path / "m.safetensors"), framework="numpy") as f:
        meta = f.metadata()
    assert meta["format"] == "rnnlm-safetensors" and meta["level"] == "char"
    assert json.loads(meta["vocabulary"]) == list(VOCAB.index_to_word)
    assert json.loads(meta["model_config"])["cell"] == "gru"
    assert json.loads(meta["torch_module"])["rnn"] == {"type": "GRU", "input_size": E, "hidden_size": H,
                                                       "num_layers": 1, "bias": True}


# --------------------------------------------------------------------- refusals

@pytest.mark.parametrize("options", [{"cell": "jordan"}, {"cell": "lstm", "peephole": True},
                                     {"cell": "lstm", "coupled_gates": True}])
def test_models_torch_has_no_module_for_are_refused(tmp_path, options):
    m = LanguageModel(C, H, seed=0, **options)
    with pytest.raises(ConfigError, match="PyTorch counterpart"):
        exchange.save_safetensors(tmp_path / "m.safetensors", m, VOCAB)
    assert not (tmp_path / "m.safetensors").exists()


def test_cli_refuses_a_jordan_model_in_one_line(tmp_path, capsys):
    path = tmp_path / "j.npz"
    ckpt.save_model(path, LanguageModel(C, H, cell="jordan", seed=0), VOCAB)
    code, _, err = run(capsys, "export", path, "--format", "safetensors", "--out", tmp_path / "j.safetensors")
    assert code == 2 and err.count("\n") == 1 and "Jordan" in err
    assert not (tmp_path / "j.safetensors").exists()


# --------------------------------------------------------------------- damaged and foreign files

@pytest.fixture
def good_file(tmp_path):
    path = tmp_path / "good.safetensors"
    exchange.save_safetensors(path, LanguageModel(C, H, cell="lstm", embed_size=E, seed=0), VOCAB)
    return path


def rewrite(path, target, edit_tensors=None, edit_meta=None):
    """A copy of `path` with its tensors and/or metadata changed (as a foreign tool might write it)."""
    from safetensors import safe_open
    with safe_open(str(path), framework="numpy") as f:
        meta, tensors = dict(f.metadata()), {k: f.get_tensor(k) for k in f.keys()}
    if edit_tensors:
        edit_tensors(tensors)
    if edit_meta:
        edit_meta(meta)
    safetensors.numpy.save_file(tensors, str(target), metadata=meta or None)
    return target


def damage_cases(good, tmp):
    data = good.read_bytes()
    header_length = struct.unpack("<Q", data[:8])[0]
    cases = {
        "no rnnlm metadata": rewrite(good, tmp / "foreign.safetensors", edit_meta=lambda m: m.clear()),
        "wrong shape": rewrite(good, tmp / "shape.safetensors",
                               edit_tensors=lambda t: t.update({"out.weight": t["out.weight"][:, :-1].copy()})),
        "wrong dtype": rewrite(good, tmp / "dtype.safetensors",
                               edit_tensors=lambda t: t.update({"out.bias": t["out.bias"].astype(np.int32)})),
        "missing tensor": rewrite(good, tmp / "missing.safetensors", edit_tensors=lambda t: t.pop("out.bias")),
        "not finite": rewrite(good, tmp / "nan.safetensors",
                              edit_tensors=lambda t: t["out.bias"].__setitem__(0, np.nan)),
        "other version": rewrite(good, tmp / "version.safetensors",
                                 edit_meta=lambda m: m.update({"format_version": "99"})),
        "bad json": rewrite(good, tmp / "json.safetensors", edit_meta=lambda m: m.update({"vocabulary": "[oops"})),
        "vocabulary size": rewrite(good, tmp / "vocab.safetensors", edit_meta=lambda m: m.update(
            {"vocabulary": json.dumps(list(VOCAB.index_to_word)[1:]),
             "vocabulary_counts": json.dumps(list(VOCAB.counts)[1:])})),
        "config mismatch": rewrite(good, tmp / "config.safetensors", edit_meta=lambda m: m.update(
            {"model_config": m["model_config"].replace('"cell": "lstm"', '"cell": "gru"')})),
        "bogus level": rewrite(good, tmp / "level.safetensors", edit_meta=lambda m: m.update({"level": "klingon"})),
        "level contradicts vocabulary": rewrite(good, tmp / "charlevel.safetensors", edit_meta=lambda m: m.update(
            {"level": "char", "data_config": m["data_config"].replace('"level": "word"', '"level": "char"')})),
        "level contradicts data_config": rewrite(good, tmp / "datalevel.safetensors",
                                                 edit_meta=lambda m: m.update({"level": "char"})),
        "huge values": rewrite(good, tmp / "huge.safetensors",
                               edit_tensors=lambda t: t["out.bias"].__setitem__(0, 3e7)),
        "deep json": rewrite(good, tmp / "deep.safetensors",
                             edit_meta=lambda m: m.update({"model_config": "[" * 200000 + "]" * 200000})),
        "huge number": rewrite(good, tmp / "digits.safetensors",
                               edit_meta=lambda m: m.update({"vocabulary_counts": "[" + "9" * 5000 + "]"})),
        "config types": rewrite(good, tmp / "types.safetensors", edit_meta=lambda m: m.update(
            {"model_config": m["model_config"].replace('"hidden_size": 6', '"hidden_size": "6"')})),
        "unknown kind": rewrite(good, tmp / "kind.safetensors", edit_meta=lambda m: m.update({"model_kind": "tree-lstm"})),
        "class softmax": rewrite(good, tmp / "class.safetensors", edit_meta=lambda m: m.update(
            {"model_config": m["model_config"].replace('"softmax": "full"', '"softmax": "class"')})),
    }
    for name, content in {"truncated header": data[:8 + header_length // 2], "truncated data": data[:-10],
                          "empty": b"", "random bytes": bytes(range(256)) * 4, "an npz": None}.items():
        path = tmp / f"{name.replace(' ', '-')}.safetensors"
        if content is None:
            ckpt.save_model(path, LanguageModel(C, H, cell="gru", seed=0), VOCAB)
        else:
            path.write_bytes(content)
        cases[name] = path
    return cases


def test_every_damaged_or_foreign_file_gets_one_line_and_nothing_is_overwritten(good_file, tmp_path, capsys):
    out = tmp_path / "existing.npz"
    out.write_bytes(b"precious")
    for name, path in damage_cases(good_file, tmp_path).items():
        with pytest.raises(ModelFileError):
            exchange.read_safetensors(path)
        code, stdout, err = run(capsys, "import", path, "--out", out)
        assert code == 2 and stdout == "", name
        assert err.startswith("rnnlm: error: ") and err.count("\n") == 1, (name, err)
        assert out.read_bytes() == b"precious", name
    assert sorted(p.name for p in tmp_path.glob(".*tmp")) == []  # no temporary file left behind


def test_messages_say_what_is_wrong(good_file, tmp_path):
    cases = damage_cases(good_file, tmp_path)
    expected = {"no rnnlm metadata": "without rnnlm's metadata", "wrong shape": "has shape",
                "wrong dtype": "dtype int32", "missing tensor": "lacks out.bias", "not finite": "NaN",
                "other version": "version '99'", "truncated header": "truncated", "vocabulary size": "vocabulary has",
                "config mismatch": "does not match",
                "bogus level": "level 'klingon' is not one of word, char",
                "level contradicts vocabulary": "level 'char' contradicts its vocabulary, which holds 'the'",
                "level contradicts data_config": "level 'char' contradicts its data_config's level 'word'",
                "huge values": "tensor 'out.bias' holds values up to 3e\\+07, beyond",
                "deep json": "'model_config' is JSON nested too deeply",
                "huge number": "'vocabulary_counts' holds a number thousands of digits long",
                "config types": "hidden size",
                "unknown kind": "model kind 'tree-lstm' does not match",
                "class softmax": "class-based softmax has no PyTorch counterpart"}
    for name, words in expected.items():
        with pytest.raises(ModelFileError, match=words):
            exchange.read_safetensors(cases[name])


# --------------------------------------------------------------------- the command line

@pytest.fixture
def npz_model(tmp_path):
    path = tmp_path / "model.npz"
    ckpt.save_model(path, randomize_biases(LanguageModel(C, H, cell="gru", num_layers=2, embed_size=E, seed=0)), VOCAB)
    return path


def test_cli_export_import_generate_evaluate(npz_model, tmp_path, capsys):
    st, back = tmp_path / "model.safetensors", tmp_path / "back.npz"
    code, out, err = run(capsys, "export", npz_model, "--format", "safetensors", "--out", st)
    assert code == 0, err
    assert "nn.GRU" in out
    code, out, err = run(capsys, "import", st, "--out", back)
    assert code == 0, err
    original, restored = ckpt.load_model(npz_model), ckpt.load_model(back)
    for name, value in original.model.params.items():
        np.testing.assert_array_equal(restored.model.params[name], value)
    assert restored.vocabulary == original.vocabulary
    code, out, err = run(capsys, "generate", "--model", back, "-n", "2", "--seed", "0")
    assert code == 0 and len(out.splitlines()) == 2, err
    corpus = tmp_path / "c.txt"
    corpus.write_text("the cat sat on the mat.\n", encoding="utf-8")
    code, out, err = run(capsys, "evaluate", "--model", back, corpus)
    assert code == 0 and "perplexity:" in out, err


def test_cli_export_keeps_npz_as_the_default(npz_model, tmp_path, capsys):
    code, _, err = run(capsys, "export", npz_model, "--out", tmp_path / "copy.npz")
    assert code == 0, err
    assert ckpt.load_model(tmp_path / "copy.npz").model.config == ckpt.load_model(npz_model).model.config


def test_cli_refuses_to_write_over_its_input(npz_model, tmp_path, capsys):
    st = tmp_path / "model.safetensors"
    assert run(capsys, "export", npz_model, "--format", "safetensors", "--out", st)[0] == 0
    before = st.read_bytes()
    code, _, err = run(capsys, "import", st, "--out", st)
    assert code == 2 and "input file itself" in err and st.read_bytes() == before
    before = npz_model.read_bytes()
    code, _, err = run(capsys, "export", npz_model, "--format", "safetensors", "--out", npz_model)
    assert code == 2 and "is the model being exported" in err and npz_model.read_bytes() == before


def test_cli_import_of_a_missing_file(tmp_path, capsys):
    code, _, err = run(capsys, "import", tmp_path / "nope.safetensors", "--out", tmp_path / "m.npz")
    assert code == 2 and "not found" in err and not (tmp_path / "m.npz").exists()


def test_import_explains_itself(capsys):
    code, out, _ = run(capsys, "import", "--help")
    assert code == 0 and "rnnlm import trained.safetensors --out model.npz" in out
    code, out, _ = run(capsys, "export", "--help")
    assert code == 0 and "--format safetensors" in out


@pytest.mark.parametrize("make", [lambda: FastRNN(C, H, seed=0, softmax="class", num_classes=3, counts=VOCAB.counts),
                                  lambda: LanguageModel(C, H, cell="gru", seed=0, softmax="class", num_classes=3,
                                                        counts=VOCAB.counts)],
                         ids=["fast-rnn", "language-model"])
def test_cli_refuses_a_class_softmax_model_saying_what_export_supports(tmp_path, capsys, make):
    path = tmp_path / "c.npz"
    ckpt.save_model(path, make(), VOCAB)
    code, _, err = run(capsys, "export", path, "--format", "safetensors", "--out", tmp_path / "c.safetensors")
    assert code == 2 and err.count("\n") == 1, err
    assert "class-based softmax" in err and "export supports full-softmax" in err
    assert not (tmp_path / "c.safetensors").exists()


def test_cli_exports_and_imports_a_stream_model(tmp_path, capsys):
    """`train --stream` writes a LanguageModel in the tutorial's shape; export used to die with KeyError: 'U'."""
    path = tmp_path / "stream.npz"
    m = randomize_biases(LanguageModel(C, H, cell="rnn", seed=0))
    ckpt.save_model(path, m, VOCAB)
    assert ckpt.load_model(path).kind == "language-model" and kinds.model_kind(m.config) == "fast-rnn"
    code, _, err = run(capsys, "export", path, "--format", "safetensors", "--out", tmp_path / "s.safetensors")
    assert code == 0, err
    code, _, err = run(capsys, "import", tmp_path / "s.safetensors", "--out", tmp_path / "back.npz")
    assert code == 0, err
    back = ckpt.load_model(tmp_path / "back.npz")
    assert back.kind == "language-model" and isinstance(back.model, LanguageModel)
    X, Y = batch(3)
    assert back.model.total_loss(X, Y) == m.total_loss(X, Y)


def test_import_refuses_a_folded_input_map_beyond_the_parameter_range(tmp_path):
    """Each tensor is in range, but U = weight_ih @ embedding.weight^T is not: the model would never load again."""
    export = exchange.export_model(FastRNN(C, H, seed=0, dtype=np.float64), VOCAB)
    tensors = dict(export.tensors, **{"rnn.weight_ih_l0": np.eye(H) * 1e5,
                                      "embedding.weight": np.full((C, H), 1e3)})
    exchange.write_safetensors(tmp_path / "t.safetensors", export.with_tensors(tensors))
    out = tmp_path / "out.npz"
    out.write_bytes(b"precious")
    code = cli.main(["import", str(tmp_path / "t.safetensors"), "--out", str(out)])
    assert code == 2 and out.read_bytes() == b"precious"
    with pytest.raises(ModelFileError, match="the imported parameter 'U' holds values up to 1e\\+08, beyond"):
        exchange.load_safetensors(tmp_path / "t.safetensors")

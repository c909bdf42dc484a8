"""Model files for every kind and size load back (the exact per-kind parameter check), and one rule,
`rnnlm.nn.numerics.parameter_fault`, decides what a valid parameter is for writers, readers and training."""

import numpy as np
import pytest

from rnnlm.io import checkpoint as ckpt
from rnnlm.io import kinds
from rnnlm.nn import numerics
from rnnlm.config import ModelConfig, TrainConfig
from rnnlm.errors import ModelFileError
from rnnlm.training.loop import train
from rnnlm.data.vocab import Vocabulary

from helpers import run

NAMES = ["anna", "bert", "carl", "dora", "emil", "finn", "gina", "hugo", "ines", "jonas",
         "karl", "lena", "mila", "nora", "otto", "paul", "quinn", "rosa", "sven", "tina"]


def _vocabulary(size):
    words = [f"w{i}" for i in range(size - 3)]  # Vocabulary adds 3 special tokens
    vocab = Vocabulary.build([words], size)
    assert len(vocab) == size
    return vocab


def _data(size, rng):
    X = [rng.integers(0, size, 5) for _ in range(3)]
    return X, [np.roll(x, -1) for x in X]


KINDS = [("reference-rnn", {}), ("fast-rnn", {}), ("fast-rnn", {"softmax": "class"}),
         ("language-model", {"cell": "rnn"}), ("language-model", {"cell": "gru"}),
         ("language-model", {"cell": "lstm"}), ("language-model", {"cell": "lstm", "softmax": "class"})]


@pytest.mark.parametrize("kind,extra", KINDS, ids=[f"{k}-{'-'.join(map(str, e.values()))}" for k, e in KINDS])
def test_every_kind_and_size_round_trips_with_the_same_loss(kind, extra, tmp_path):
    rng = np.random.default_rng(0)
    layer_options = (1, 2) if kind == "language-model" else (1,)
    for V in (4, 20, 300):
        vocab = _vocabulary(V)
        X, Y = _data(V, rng)
        for H in (1, 8, 64):
            for L in layer_options:
                config = ModelConfig(vocab_size=V, hidden_size=H, num_layers=L, **extra)
                if kind == "language-model" and L == 1 and config.cell == "rnn":
                    pass  # a LanguageModel in the tutorial's shape: still a "language-model" file
                model = kinds.build_model(config, seed=1, kind=kind, counts=vocab.counts)
                if kind == "reference-rnn":
                    model.sgd_step(X[0], Y[0], 0.01)
                    loss = model.calculate_loss(X, Y)
                    state = None
                else:
                    state = train(model, X, Y, TrainConfig(epochs=1, batch_size=3, valid_fraction=0, seed=1))
                    loss = model.total_loss(X, Y)
                assert kinds.max_parameters(config, kind) == sum(p.size for p in model.params.values())
                assert {k: v.shape for k, v in model.params.items()} == kinds.expected_param_shapes(config, kind)
                path = tmp_path / "m.npz"
                ckpt.save_model(path, model, vocab, state=state)
                loaded = ckpt.load_model(path, dtype=np.float32)
                assert loaded.kind == kind
                again = loaded.model.calculate_loss(X, Y) if kind == "reference-rnn" else loaded.model.total_loss(X, Y)
                assert again == pytest.approx(loss, rel=1e-5, abs=1e-6), (V, H, L)


def test_stream_model_round_trips(tmp_path):
    from rnnlm.models.language_model import LanguageModel
    vocab = _vocabulary(4)
    model = LanguageModel(4, 1, seed=0)  # a stream model is a LanguageModel, even in the tutorial's shape
    path = tmp_path / "s.npz"
    ckpt.save_model(path, model, vocab)
    X, Y = _data(4, np.random.default_rng(0))
    assert ckpt.load_model(path).model.total_loss(X, Y) == pytest.approx(model.total_loss(X, Y), rel=1e-6)


def test_a_char_model_of_a_small_vocabulary_is_readable_by_every_command(tmp_path, capsys):
    corpus = tmp_path / "names.txt"
    corpus.write_text("\n".join(NAMES) + "\n")
    out = tmp_path / "names.npz"
    code, _, err = run(capsys, "train", corpus, "--level", "char", "--out", out, "--epochs", 1, "--no-progress")
    assert code == 0, err
    for argv in (["info", "--model", out], ["evaluate", "--model", out, corpus], ["generate", "--model", out, "--seed", 1],
                 ["train", corpus, "--level", "char", "--out", out, "--epochs", 2, "--resume", "--no-progress"]):
        code, _, err = run(capsys, *argv)
        assert code == 0 and "does not match" not in err, (argv, err)


def test_a_file_whose_shapes_differ_from_its_config_is_refused(tmp_path):
    vocab = _vocabulary(20)
    model = kinds.build_model(ModelConfig(vocab_size=20, hidden_size=8), seed=0)
    path = tmp_path / "m.npz"
    ckpt.save_model(path, model, vocab)
    arrays = dict(np.load(path))
    arrays["param/W"] = np.zeros((8, 9), np.float32)
    np.savez(path, **arrays)
    with pytest.raises(ModelFileError, match="does not match"):
        ckpt.load_model(path)


@pytest.mark.parametrize("value,ok", [(0.5, True), (-1e6, True), (1.5e6, False), (-2e6, False),
                                      (np.nan, False), (np.inf, False)])
def test_one_rule_for_writer_and_reader(value, ok, tmp_path):
    vocab = _vocabulary(4)
    model = kinds.build_model(ModelConfig(vocab_size=4, hidden_size=2), seed=0)
    model.params["U"][0, 0] = value
    assert (numerics.parameter_fault(model.params["U"]) is None) == ok
    path = tmp_path / "m.npz"
    if ok:
        ckpt.save_model(path, model, vocab)
        assert ckpt.load_model(path).model.params["U"][0, 0] == np.float32(value)
    else:
        with pytest.raises(ModelFileError, match="nothing was written"):
            ckpt.save_model(path, model, vocab)
        assert not path.exists()


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_a_huge_but_finite_run_is_stopped_as_diverged_and_keeps_the_old_file(tmp_path, capsys):
    corpus = tmp_path / "c.txt"
    corpus.write_text("\n".join(f"{a} likes {b} ." for a in NAMES for b in NAMES[:5]) + "\n")
    out = tmp_path / "good.npz"
    common = ["--vocab-size", 30, "--hidden", 8, "--batch-size", 8, "--seed", 1, "--no-progress"]
    assert run(capsys, "train", corpus, "--out", out, "--epochs", 1, *common)[0] == 0
    before = out.read_bytes()
    code, _, err = run(capsys, "train", corpus, "--out", out, "--epochs", 1, "--optimizer", "sgd",
                       "--learning-rate", 1e8, "--no-clip", *common)
    assert code == 2 and "diverged" in err and "Traceback" not in err, err
    assert len(err.strip().splitlines()) == 1, err
    assert out.read_bytes() == before
    assert run(capsys, "info", "--model", out)[0] == 0


# The corners of the grid the issue names: vocabulary 4 to 20,000, hidden 1 to 512, 1 to 3 layers.
# (20,000 x 512 is left out only for time: saving its 80 MB of parameters compressed takes ~10 s.)
CORNERS = [("fast-rnn", dict(vocab_size=20000, hidden_size=128)),
           ("fast-rnn", dict(vocab_size=300, hidden_size=512)),
           ("fast-rnn", dict(vocab_size=20000, hidden_size=1, softmax="class")),
           ("language-model", dict(vocab_size=4, hidden_size=512, num_layers=3, cell="lstm")),
           ("language-model", dict(vocab_size=20000, hidden_size=64, num_layers=3, cell="gru", softmax="class")),
           ("language-model", dict(vocab_size=20000, hidden_size=1, num_layers=3, cell="rnn", embed_size=16))]


@pytest.mark.parametrize("kind,options", CORNERS, ids=[f"{k}-{o['vocab_size']}x{o['hidden_size']}" for k, o in CORNERS])
def test_the_corners_of_the_size_grid_round_trip_with_the_same_loss(kind, options, tmp_path):
    rng = np.random.default_rng(1)
    vocab = _vocabulary(options["vocab_size"])
    X, Y = _data(options["vocab_size"], rng)
    config = ModelConfig(**options)
    model = kinds.build_model(config, seed=1, kind=kind, counts=vocab.counts)
    state = train(model, X, Y, TrainConfig(epochs=1, batch_size=3, valid_fraction=0, seed=1))
    loss = model.total_loss(X, Y)
    path = tmp_path / "m.npz"
    ckpt.save_model(path, model, vocab, state=state)
    loaded = ckpt.load_model(path, dtype=np.float32)
    assert loaded.kind == kind
    assert loaded.model.total_loss(X, Y) == pytest.approx(loss, rel=1e-5, abs=1e-6)


@pytest.mark.parametrize("level,extra", [("word", []), ("char", []), ("char", ["--cell", "lstm", "--layers", "3"]),
                                         ("word", ["--softmax", "class"]), ("char", ["--stream", "--seq-length", "8"])])
def test_a_model_rnnlm_train_writes_is_read_by_evaluate_with_the_loss_it_reported(level, extra, tmp_path, capsys):
    """Word and char level through the CLI: what `train` saves, `evaluate` and `info` read."""
    corpus = tmp_path / "names.txt"
    corpus.write_text("\n".join(NAMES) + "\n", encoding="utf-8")
    out = tmp_path / "m.npz"
    code, _, err = run(capsys, "train", corpus, "--out", out, "--level", level, "--epochs", 1, "--hidden", 6,
                       "--seed", 1, "--no-progress", "--valid-fraction", 0, *extra)
    assert code == 0, err
    code, text, err = run(capsys, "evaluate", "--model", out, corpus)
    assert code == 0 and "perplexity" in text.lower(), err
    assert run(capsys, "info", "--model", out)[0] == 0

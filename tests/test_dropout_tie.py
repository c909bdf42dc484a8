"""Dropout (Zaremba et al. 2014 placement, inverted scaling, training only) and tied input/output weights
(Press & Wolf 2017): gradients checked by finite differences, evaluation and generation untouched,
the model file, the expected shapes and the one-line refusals."""

import numpy as np
import pytest

from rnnlm.config import ModelConfig
from rnnlm.errors import ConfigError
from rnnlm.io import checkpoint as ckpt
from rnnlm.io import kinds
from rnnlm.models.language_model import LanguageModel
from rnnlm.nn.gradcheck import numerical_gradient
from rnnlm.nn.sequence import Packing

from test_exchange import VOCAB

C = len(VOCAB)


def batch(seed=0, lengths=(7, 3, 5)):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, C, n) for n in lengths], [rng.integers(0, C, n) for n in lengths]


def worst_error(model, X, Y, step=3, samples=6):
    """Largest relative error of total_loss_and_gradients against central differences, the mask frozen at `step`."""
    model.dropout_step = step
    _, grads = model.total_loss_and_gradients(X, Y)

    def loss():
        model.dropout_step = step  # the same mask for every evaluation
        return model.total_loss_and_gradients(X, Y)[0]

    rng, worst = np.random.default_rng(1), 0.0
    for name, p in model.params.items():
        indices = {tuple(int(rng.integers(0, s)) for s in p.shape) for _ in range(samples)}
        n = numerical_gradient(loss, p, indices=indices)
        for i in indices:
            a = grads[name][i]
            worst = max(worst, abs(a - n[i]) / max(abs(a) + abs(n[i]), 1e-8) if abs(a - n[i]) > 1e-9 else 0.0)
    return worst


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
@pytest.mark.parametrize("options", [{"dropout": 0.3}, {"tie_weights": True}, {"dropout": 0.5, "tie_weights": True}])
def test_gradients_match_finite_differences(cell, options):
    m = LanguageModel(C, 6, cell=cell, num_layers=2, seed=2, dtype=np.float64, bptt_truncate=None, **options)
    assert worst_error(m, *batch()) < 1e-5


def test_dropout_zero_is_the_model_as_before():
    X, Y = batch()
    plain = LanguageModel(C, 6, cell="lstm", num_layers=2, seed=4, dtype=np.float64)
    zero = LanguageModel(C, 6, cell="lstm", num_layers=2, seed=4, dtype=np.float64, dropout=0.0)
    a, b = plain.total_loss_and_gradients(X, Y), zero.total_loss_and_gradients(X, Y)
    assert a[0] == b[0]
    assert all(np.array_equal(a[1][k], b[1][k]) for k in a[1])
    assert zero.dropout_step == 0  # no masks drawn at all


def test_evaluation_and_generation_ignore_dropout():
    X, Y = batch()
    plain = LanguageModel(C, 6, cell="gru", num_layers=2, seed=5, dtype=np.float64)
    dropped = LanguageModel(C, 6, cell="gru", num_layers=2, seed=5, dtype=np.float64, dropout=0.5)
    assert dropped.total_loss(X, Y) == plain.total_loss(X, Y)
    state = plain.start_state(2)
    assert np.array_equal(dropped.step(state, np.array([1, 2]))[0], plain.step(state, np.array([1, 2]))[0])
    assert dropped.window_total_loss(X, Y, None)[0] == plain.window_total_loss(X, Y, None)[0]
    assert dropped.total_loss_and_gradients(X, Y)[0] != plain.total_loss_and_gradients(X, Y)[0]  # training does drop


def test_masks_keep_the_expected_activation_and_are_reproducible():
    m = LanguageModel(C, 50, cell="lstm", num_layers=2, embed_size=40, seed=6, dropout=0.3)
    masks = m._dropout_masks(Packing.of_lengths([400, 300]))
    assert [mask.shape for mask in masks] == [(700, 40), (700, 50), (700, 50)]
    for mask in masks:
        assert set(np.unique(mask)) <= {0.0, np.float32(1 / 0.7)}
        assert mask.mean() == pytest.approx(1.0, abs=0.02)  # inverted scaling: E[mask] = 1
        assert (mask == 0).mean() == pytest.approx(0.3, abs=0.02)
    again = LanguageModel(C, 50, cell="lstm", num_layers=2, embed_size=40, seed=6, dropout=0.3)
    assert all(np.array_equal(a, b) for a, b in zip(masks, again._dropout_masks(Packing.of_lengths([400, 300]))))
    assert not np.array_equal(masks[0], m._dropout_masks(Packing.of_lengths([400, 300]))[0])  # the step moved on


def test_tied_model_has_one_matrix_and_its_shapes_are_the_expected_ones():
    m = LanguageModel(C, 6, cell="lstm", num_layers=2, tie_weights=True, seed=7)
    assert "W_out" not in m.params
    assert kinds.expected_param_shapes(m.config, "language-model") == {k: v.shape for k, v in m.params.items()}
    untied = ModelConfig(vocab_size=C, hidden_size=6, cell="lstm", num_layers=2)
    assert kinds.max_parameters(untied) - kinds.max_parameters(m.config) == 6 * C
    scores, _ = m.step(m.start_state(1), np.array([3]))
    assert np.allclose(scores, 0.0, atol=1.0)  # reads embedding.T; finite and small at the start


def test_dropout_does_not_change_the_expected_shapes():
    c = ModelConfig(vocab_size=C, hidden_size=6, cell="gru", num_layers=2, embed_size=4)
    from dataclasses import replace
    assert kinds.expected_param_shapes(replace(c, dropout=0.5), "language-model") == \
        kinds.expected_param_shapes(c, "language-model")


@pytest.mark.parametrize("options", [{"dropout": 0.2}, {"tie_weights": True}, {"dropout": 0.2, "tie_weights": True}])
def test_model_file_round_trip(tmp_path, options):
    m = LanguageModel(C, 6, cell="lstm", num_layers=2, embed_size=6, seed=8, **options)
    ckpt.save_model(tmp_path / "m.npz", m, VOCAB)
    back = ckpt.load_model(tmp_path / "m.npz").model
    assert back.config == m.config
    assert back.params.keys() == m.params.keys()
    assert all(np.array_equal(back.params[k], m.params[k]) for k in m.params)
    X, Y = batch()
    assert back.total_loss(X, Y) == pytest.approx(m.total_loss(X, Y), rel=1e-6)


def test_refusals_are_one_line():
    with pytest.raises(ConfigError, match=r"^--tie-weights needs --embed-size equal to --hidden \(got 64 and 100\)$"):
        ModelConfig(vocab_size=C, hidden_size=100, embed_size=64, tie_weights=True)
    with pytest.raises(ConfigError, match="full softmax"):
        ModelConfig(vocab_size=C, hidden_size=6, embed_size=6, tie_weights=True, softmax="class")
    for bad in (-0.1, 1.0, float("nan")):
        with pytest.raises(ConfigError, match="dropout"):
            ModelConfig(vocab_size=C, dropout=bad)
    with pytest.raises(ConfigError, match="--embed-size"):  # the tutorial's FastRNN has no embedding to drop or tie
        kinds.build_model(ModelConfig(vocab_size=C, hidden_size=6, dropout=0.2))


def test_torch_module_ties_like_word_language_model(tmp_path):
    torch = pytest.importorskip("torch")
    pytest.importorskip("safetensors.numpy")
    from rnnlm.io import exchange
    m = LanguageModel(C, 6, cell="lstm", num_layers=2, tie_weights=True, seed=9)
    exchange.save_safetensors(tmp_path / "m.safetensors", m, VOCAB)
    export = exchange.read_safetensors(tmp_path / "m.safetensors")
    assert np.array_equal(export.tensors["out.weight"], export.tensors["embedding.weight"])
    module = exchange.torch_module(export)
    assert module.out.weight is module.embedding.weight  # decoder.weight = encoder.weight
    state = module.state_dict()
    assert torch.equal(state["out.weight"], state["embedding.weight"])
    untied = dict(export.tensors, **{"out.weight": export.tensors["out.weight"] + 1})
    exchange.write_safetensors(tmp_path / "bad.safetensors", export.with_tensors(untied))
    with pytest.raises(Exception, match="differs from its embedding"):
        exchange.load_safetensors(tmp_path / "bad.safetensors")
    back = exchange.load_safetensors(tmp_path / "m.safetensors").model
    assert back.params.keys() == m.params.keys()

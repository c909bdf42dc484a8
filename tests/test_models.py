"""LanguageModel: whole-model gradient checks for every cell and option, truncation, packed batches, generation, losses."""

import numpy as np
import pytest

from rnnlm.config import ModelConfig
from rnnlm.errors import ConfigError
from rnnlm.models.fast import FastRNN
from rnnlm.nn.gradcheck import check_gradients
from rnnlm.models.language_model import LanguageModel
from rnnlm.nn.optim import Adam, SparseGradient

C = 7


def sentences(rng, lengths=(5, 3, 1, 4)):
    X = [rng.integers(0, C, n) for n in lengths]
    Y = [rng.integers(0, C, n) for n in lengths]
    return X, Y


def model(cell="rnn", layers=1, **kw):
    kw.setdefault("embed_size", 3)
    return LanguageModel(C, 4, cell=cell, num_layers=layers, seed=1, dtype=np.float64, **kw)


CASES = [(cell, layers, {}) for cell in ("rnn", "gru", "lstm", "jordan") for layers in (1, 2)] + [
    ("lstm", layers, opts) for layers in (1, 2)
    for opts in ({"peephole": True}, {"coupled_gates": True}, {"peephole": True, "coupled_gates": True})]


@pytest.mark.parametrize("cell, layers, options", CASES)
def test_gradients_match_finite_differences(cell, layers, options, rng):
    X, Y = sentences(rng)
    m = model(cell, layers, **options)
    loss, grads = m.total_loss_and_gradients(X, Y)
    assert set(grads) == set(m.params)
    report = check_gradients(lambda: m.total_loss_and_gradients(X, Y)[0], m.params, grads, threshold=1e-6)
    assert report, str(report)


def test_gradient_check_catches_a_wrong_gradient(rng):
    X, Y = sentences(rng)
    m = model("gru", 2)
    _, grads = m.total_loss_and_gradients(X, Y)
    grads["l0.W_hh"] = grads["l0.W_hh"] * 1.01
    report = check_gradients(lambda: m.total_loss_and_gradients(X, Y)[0], m.params, grads, threshold=1e-6)
    assert not report and [c.name for c in report.failures] == ["l0.W_hh"]


def test_parameter_names_and_shapes():
    m = LanguageModel(C, 4, cell="lstm", num_layers=2, embed_size=3, peephole=True)
    shapes = {k: v.shape for k, v in m.params.items()}
    assert shapes["embedding"] == (C, 3) and shapes["l0.W_ih"] == (3, 16) and shapes["l1.W_ih"] == (4, 16)
    assert shapes["l1.W_hh"] == (4, 16) and shapes["l0.w_cf"] == (4,) and shapes["W_out"] == (4, C)
    assert LanguageModel(C, 4, cell="lstm", coupled_gates=True).params["l0.W_hh"].shape == (4, 12)
    assert LanguageModel(C, 4, cell="gru").params["l0.W_ih"].shape == (4, 12)  # embed_size None: E = H
    assert set(LanguageModel(C, 4, cell="jordan").params) == {
        "embedding", "l0.W_ih", "l0.b_ih", "l0.W_yh", "l0.b_yh", "l0.W_hy", "l0.b_hy", "W_out", "b_out"}
    assert all(v.dtype == np.float32 for v in m.params.values())


def test_config_round_trip_and_validation():
    m = LanguageModel(C, 4, cell="gru", num_layers=2, embed_size=3, bptt_truncate=2, seed=5)
    assert m.config == ModelConfig(vocab_size=C, hidden_size=4, cell="gru", num_layers=2, embed_size=3,
                                   bptt_truncate=2)
    twin = LanguageModel.from_config(m.config, seed=5)
    assert all(np.array_equal(twin.params[k], v) for k, v in m.params.items())
    with pytest.raises(ConfigError):
        LanguageModel(C, 4, cell="elman")
    with pytest.raises(ConfigError):
        LanguageModel(C, 4, cell="gru", peephole=True)
    with pytest.raises(ConfigError):
        LanguageModel(C, 0)


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm", "jordan"])
def test_sparse_equals_dense(cell, rng):
    X, Y = sentences(rng)
    m = model(cell, 2)
    loss, dense = m.total_loss_and_gradients(X, Y)
    loss2, sparse = m.total_loss_and_gradients(X, Y, sparse=True)
    g = sparse["embedding"]
    assert isinstance(g, SparseGradient) and g.axis == 0
    assert np.array_equal(g.indices, np.unique(np.concatenate(X)))
    np.testing.assert_allclose(g.to_dense((C, 3)), dense["embedding"], rtol=1e-12, atol=1e-15)
    assert loss == loss2


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm", "jordan"])
def test_a_batch_is_the_sum_of_its_sentences_alone(cell, rng):
    """A packed batch of mixed lengths gives the sum of its sentences taken one at a time (and an
    empty sentence adds nothing): no sentence reads another's state or receives another's error."""
    X, Y = sentences(rng)
    m = model(cell, 2, bptt_truncate=2)
    loss, grads = m.total_loss_and_gradients(X + [np.array([], int)], Y + [np.array([], int)])
    alone = [m.total_loss_and_gradients([x], [y]) for x, y in zip(X, Y)]
    assert loss == pytest.approx(sum(a[0] for a in alone), rel=1e-12)
    for k in grads:
        np.testing.assert_allclose(grads[k], sum(a[1][k] for a in alone), rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("cell, options", [("rnn", {}), ("gru", {}), ("lstm", {"peephole": True}), ("jordan", {})])
def test_step_logits_equal_batched_forward(cell, options, rng):
    X, Y = sentences(rng)
    m = model(cell, 2, **options)
    forward = m._forward(X, Y)
    top = forward.packing.unpack(forward.top)
    batched = top @ m.params["W_out"] + m.params["b_out"]  # (N, T, C)
    state = m.start_state(len(X))
    x = np.zeros((len(X), top.shape[1]), int)
    for n, s in enumerate(X):
        x[n, :len(s)] = s
    for t in range(top.shape[1]):
        logits, state = m.step(state, x[:, t])
        live = [n for n, s in enumerate(X) if len(s) > t]
        np.testing.assert_allclose(logits[live], batched[live, t], rtol=1e-12)


def test_step_loss_equals_total_loss(rng):
    X, Y = sentences(rng)
    m = model("lstm", 2)
    total = 0.0
    for x, y in zip(X, Y):
        state = m.start_state(1)
        for a, b in zip(x, y):
            logits, state = m.step(state, np.array([a]))
            total -= logits[0, b] - np.log(np.sum(np.exp(logits[0])))
    assert total == pytest.approx(m.total_loss_and_gradients(X, Y)[0], rel=1e-12)


def test_total_loss_in_chunks_equals_one_batch(rng):
    X, Y = sentences(rng, lengths=(5, 3, 1, 4, 2, 6, 3))
    m = model("gru", 2)
    m.softmax_rows = 3  # several output-layer chunks too
    whole = m.total_loss_and_gradients(X, Y)[0]
    assert m.total_loss(X, Y, batch_size=2) == pytest.approx(whole, rel=1e-12)
    assert m.total_loss(X, Y, batch_size=100) == pytest.approx(whole, rel=1e-12)
    assert m.mean_loss(X, Y) == pytest.approx(whole / sum(map(len, Y)), rel=1e-12)


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm", "jordan"])
def test_initial_loss_is_about_log_vocabulary(cell, rng):
    vocab = 200
    X = [rng.integers(0, vocab, 20) for _ in range(10)]
    m = LanguageModel(vocab, 16, cell=cell, num_layers=2, seed=0)
    per_word = m.total_loss(X, X) / 200
    assert abs(per_word - np.log(vocab)) < 0.02 * np.log(vocab)


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm", "jordan"])
def test_the_loss_at_step_3_depends_on_the_word_at_step_0(cell):
    # what the log C check cannot see: the recurrence carries the past (a model that ignored its
    # state would still start near log C)
    m = model(cell, 2)
    x, y = np.array([1, 4, 0, 2, 5]), np.array([4, 0, 2, 5, 1])

    def loss_at_step_3(x):  # the model is causal: the prefix of 4 words minus the prefix of 3
        return m.total_loss([x[:4]], [y[:4]]) - m.total_loss([x[:3]], [y[:3]])
    changed = x.copy()
    changed[0] = 3
    assert abs(loss_at_step_3(changed) - loss_at_step_3(x)) > 1e-4


def test_elman_states_worked_by_hand():
    # h_t = tanh(e_{x_t} W_ih + b_ih + h_{t-1} W_hh + b_hh), read back as the window's final state
    m = model("rnn", 1)
    p = m.params
    assert not np.allclose(p["l0.W_hh"], p["l0.W_hh"].T)
    x = np.array([1, 4, 0, 2, 5])
    h = np.zeros(4)
    for t in range(len(x)):
        h = np.tanh(p["embedding"][x[t]] @ p["l0.W_ih"] + p["l0.b_ih"] + h @ p["l0.W_hh"] + p["l0.b_hh"])
        _, state = m.window_total_loss([x[:t + 1]], [x[:t + 1]], None)
        np.testing.assert_allclose(state[0][0][0], h, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm", "jordan"])
def test_two_adam_steps_on_a_model_follow_the_bias_corrected_formula(cell, rng):
    # the model's own (sparse) gradients through Adam, against Kingma & Ba's update written out:
    # m_t = b1 m + (1 - b1) g, v_t = b2 v + (1 - b2) g^2, p -= lr m_t / (1 - b1^t) / (sqrt(v_t / (1 - b2^t)) + eps)
    X = [rng.integers(0, C, 8) for _ in range(6)]
    Y = [np.roll(x, -1) for x in X]
    m = LanguageModel(C, 8, cell=cell, seed=0, dtype=np.float64)
    lr, b1, b2, eps = 0.05, 0.9, 0.999, 1e-8
    opt = Adam(lr, beta1=b1, beta2=b2, eps=eps)
    expected = {k: v.copy() for k, v in m.params.items()}
    mean = {k: np.zeros_like(v) for k, v in expected.items()}
    square = {k: np.zeros_like(v) for k, v in expected.items()}
    first, first_params = m.total_loss(X, Y), {k: v.copy() for k, v in m.params.items()}
    for t in (1, 2):
        dense = m.total_loss_and_gradients(X, Y)[1]
        _, grads = m.total_loss_and_gradients(X, Y, sparse=True)
        opt.step(m.params, grads)
        for k, g in dense.items():
            mean[k] = b1 * mean[k] + (1 - b1) * g
            square[k] = b2 * square[k] + (1 - b2) * g ** 2
            expected[k] -= lr * (mean[k] / (1 - b1 ** t)) / (np.sqrt(square[k] / (1 - b2 ** t)) + eps)
        for k, v in m.params.items():
            np.testing.assert_allclose(v, expected[k], rtol=1e-12, atol=1e-14, err_msg=f"step {t}: {k}")
        if t == 1:  # m_hat / sqrt(v_hat) = sign(g): every entry with a gradient moved by lr
            assert np.abs(m.params["W_out"] - first_params["W_out"]).max() == pytest.approx(lr, rel=1e-6)
    assert m.total_loss(X, Y) < first


def tutorial_twin(fast, cell_model):
    """Put FastRNN's U, V, W into an Elman LanguageModel: embedding U^T, W_ih = I, W_hh = W^T, W_out = V^T, no biases."""
    p = cell_model.params
    p["embedding"][...] = fast.U.T
    p["l0.W_ih"][...] = np.eye(fast.hidden_dim)
    p["l0.W_hh"][...] = fast.W.T
    p["W_out"][...] = fast.V.T
    for k in ("l0.b_ih", "l0.b_hh", "b_out"):
        p[k][...] = 0


@pytest.mark.parametrize("truncate", [0, 1, 2, None])
def test_truncation_is_the_tutorials(truncate, rng):
    """With biases 0 and W_ih = I the Elman cell is the tutorial's model: same loss, same truncated gradients."""
    X, Y = sentences(rng, lengths=(6, 4, 1))
    fast = FastRNN(C, 4, bptt_truncate=truncate, seed=3, dtype=np.float64)
    m = LanguageModel(C, 4, cell="rnn", bptt_truncate=truncate, dtype=np.float64)
    tutorial_twin(fast, m)
    loss_f, gf = fast.total_loss_and_gradients(X, Y)
    loss_m, gm = m.total_loss_and_gradients(X, Y)
    assert loss_m == pytest.approx(loss_f, rel=1e-12)
    np.testing.assert_allclose(gm["embedding"], gf["U"].T, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(gm["l0.W_hh"], gf["W"].T, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(gm["W_out"], gf["V"].T, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm", "jordan"])
def test_truncation_at_or_beyond_the_length_is_full_bptt(cell, rng):
    X, Y = sentences(rng)  # longest is 5 steps, so truncate 4 lets every error reach step 0
    full = model(cell, 2).total_loss_and_gradients(X, Y)[1]
    for k in (4, 10):
        cut = model(cell, 2, bptt_truncate=k).total_loss_and_gradients(X, Y)[1]
        for name in full:
            np.testing.assert_allclose(cut[name], full[name], rtol=1e-12, atol=1e-15)
    short = model(cell, 2, bptt_truncate=1).total_loss_and_gradients(X, Y)[1]
    assert not np.allclose(short["l0.W_ih"], full["l0.W_ih"])
    np.testing.assert_allclose(short["W_out"], full["W_out"])  # the output layer is not recurrent


def test_torch_state_dict_layout_without_torch():
    m = LanguageModel(C, 4, cell="lstm", num_layers=2, embed_size=3)
    sd = m.torch_state_dict()
    assert {k: v.shape for k, v in sd.items()} == {
        "embedding.weight": (C, 3), "rnn.weight_ih_l0": (16, 3), "rnn.weight_hh_l0": (16, 4),
        "rnn.bias_ih_l0": (16,), "rnn.bias_hh_l0": (16,), "rnn.weight_ih_l1": (16, 4), "rnn.weight_hh_l1": (16, 4),
        "rnn.bias_ih_l1": (16,), "rnn.bias_hh_l1": (16,), "out.weight": (C, 4), "out.bias": (C,)}
    np.testing.assert_array_equal(sd["rnn.weight_ih_l1"], m.params["l1.W_ih"].T)
    _, grads = m.total_loss_and_gradients([np.array([1, 2])], [np.array([2, 3])], sparse=True)
    assert m.torch_state_dict(grads)["embedding.weight"].shape == (C, 3)


@pytest.mark.parametrize("kw", [{"cell": "jordan"}, {"cell": "lstm", "peephole": True},
                                {"cell": "lstm", "coupled_gates": True}])
def test_models_without_a_torch_counterpart_refuse_to_export(kw):
    with pytest.raises(ConfigError, match="PyTorch"):
        LanguageModel(C, 4, **kw).torch_state_dict()


@pytest.mark.parametrize("X", [[], [np.array([], int)]])
def test_nothing_to_predict_gives_zero_loss_and_gradients(X):
    m = model("lstm", 2, bptt_truncate=1)
    loss, grads = m.total_loss_and_gradients(X, X, sparse=True)
    assert loss == 0.0 and m.total_loss(X, X) == 0.0
    assert grads["embedding"].values.shape == (0, 3)
    assert all(not np.any(g) for k, g in grads.items() if k != "embedding")

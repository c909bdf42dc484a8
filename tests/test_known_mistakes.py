"""One test per mistake that used to pass the whole suite: each fails when its mistake is made.

The mistakes (issue 12): the training step not averaged per word, `generate` ignoring the
temperature, `gradient_check` checking a truncated gradient, Adam's eps inside the square
root, `evaluate_loss_after` ignored, `predict` taking the argmin. (The output layer's skipped
max-shift, a zeroed initial-state gradient and a consistent change of the peephole LSTM are
caught in test_output.py and test_sequence.py.)
"""

import numpy as np
import pytest

from rnnlm.config import TrainConfig
from rnnlm.models.fast import FastRNN
from rnnlm.models.generate import next_token
from rnnlm.nn.optim import Adam
from rnnlm.models.reference import RNNNumpy
from rnnlm.training.loop import train


def test_a_training_step_moves_by_the_mean_gradient_per_word(rng):
    X = [rng.integers(0, 10, n) for n in (4, 7, 2)]
    Y = [rng.integers(0, 10, n) for n in (4, 7, 2)]
    model = FastRNN(10, 4, bptt_truncate=None, seed=0, dtype=np.float64)
    before = {k: v.copy() for k, v in model.params.items()}
    _, grads = model.total_loss_and_gradients(X, Y)
    config = TrainConfig(epochs=1, batch_size=len(X), optimizer="sgd", learning_rate=0.5, clip=None, valid_fraction=0.0)
    train(model, X, Y, config)  # one batch holding every sentence: one SGD step
    for k, value in model.params.items():
        np.testing.assert_allclose(value, before[k] - 0.5 * grads[k] / 13, rtol=1e-9, atol=1e-12, err_msg=k)


@pytest.mark.parametrize("temperature", [0.25, 4.0])
def test_sampling_follows_the_tempered_distribution(temperature):
    logits = np.array([0.0, 1.0, 2.0, -1.0])
    expected = np.exp(logits / temperature)
    expected /= expected.sum()
    rng = np.random.default_rng(0)
    draws = np.array([next_token(logits, rng, temperature, banned=[3]) for _ in range(4000)])
    observed = np.bincount(draws, minlength=4) / len(draws)
    expected[3] = 0.0
    expected /= expected.sum()
    # 4000 draws: the standard error of each frequency is below 0.008
    np.testing.assert_allclose(observed, expected, atol=0.03)


def test_gradient_check_checks_the_full_gradient_of_a_truncated_model(rng):
    # truncation 0 with a strong recurrence: the truncated gradient is far from the true one,
    # so checking it against finite differences of the loss would fail
    model = RNNNumpy(8, 5, bptt_truncate=0, seed=3)
    model.W *= 4.0
    x, y = rng.integers(0, 8, 6), rng.integers(0, 8, 6)
    truncated = model.bptt(x, y)[2]
    model.bptt_truncate = None
    full = model.bptt(x, y)[2]
    model.bptt_truncate = 0
    assert np.abs(truncated - full).max() > 0.1 * np.abs(full).max()
    report = model.gradient_check(x, y)
    assert report, str(report)


def test_adam_first_step_by_hand():
    # step 1: m_hat = g, v_hat = g^2, so the update is lr g / (|g| + eps); with |g| ~ eps^(1/2) the
    # placement of eps matters: sqrt(g^2 + eps) would be 1.41e-4 instead of 1.0001e-4
    param = np.array([1.0, -2.0])
    grad = np.array([1e-4, -3e-4])
    Adam(0.1, eps=1e-8).step({"p": param}, {"p": grad})
    np.testing.assert_allclose(param, [1.0 - 0.1 * 1e-4 / (1e-4 + 1e-8), -2.0 + 0.1 * 3e-4 / (3e-4 + 1e-8)],
                               rtol=1e-12)


def _rising_validation_run(evaluate_loss_after, epochs):
    # training teaches "always word 0"; the validation sentences always want word 1, so their loss rises
    X = [np.array([2, 3, 4, 5])] * 6
    Y = [np.zeros(4, dtype=np.int64)] * 6
    Xv, Yv = [np.array([2, 3, 4, 5])], [np.ones(4, dtype=np.int64)]
    model = FastRNN(6, 4, seed=0, dtype=np.float64)
    config = TrainConfig(epochs=epochs, batch_size=6, learning_rate=0.5, clip=None, valid_fraction=0.0,
                         evaluate_loss_after=evaluate_loss_after, lr_schedule="halving", min_valid_tokens=1)
    history = train(model, X, Y, config, X_valid=Xv, Y_valid=Yv).history
    assert all(b.valid_loss > a.valid_loss for a, b in zip(history, history[1:]))
    return [r.learning_rate for r in history]


def test_the_learning_rate_is_checked_only_every_evaluate_loss_after_epochs():
    assert _rising_validation_run(1, 4) == [0.5, 0.5, 0.25, 0.125]
    # every 3 epochs: epoch 3 is the first evaluation, so nothing can be halved within 4 epochs
    assert _rising_validation_run(3, 4) == [0.5, 0.5, 0.5, 0.5]


def test_predict_is_the_most_probable_next_word(rng):
    model = RNNNumpy(6, 3, seed=0)
    model.U[...] = 1.0  # every hidden unit positive, whatever the word
    model.W[...] = 0.0
    model.V[...] = 0.0
    model.V[4] = 5.0  # word 4 scores highest, word 0..3 and 5 score 0
    model.V[2] = -5.0
    np.testing.assert_array_equal(model.predict(np.array([0, 3, 5, 1])), [4, 4, 4, 4])

"""RNNNumpy against independent computations: a hand-worked case, finite differences, log C."""

import math

import numpy as np
import pytest

from rnnlm.errors import ConfigError
from rnnlm.nn.gradcheck import check_gradients, numerical_gradient
from rnnlm.models.reference import RNNNumpy
from rnnlm.nn.numerics import softmax


def random_sentence(rng, C, T):
    x = rng.integers(0, C, T)
    return x, np.append(x[1:], rng.integers(0, C))


def test_hand_worked_forward_pass():
    model = RNNNumpy(word_dim=4, hidden_dim=1, seed=0)
    model.U[:] = [[0.5, -0.5, 0.0, 0.0]]
    model.W[:] = [[0.5]]
    model.V[:] = [[1.0], [-1.0], [0.0], [0.0]]
    o, s = model.forward_propagation(np.array([0, 1]))
    s0 = math.tanh(0.5)
    s1 = math.tanh(-0.5 + 0.5 * s0)
    assert s.shape == (3, 1) and s[-1, 0] == 0.0
    np.testing.assert_allclose(s[:2, 0], [s0, s1], rtol=1e-15)
    for t, st in enumerate((s0, s1)):
        z = [math.exp(st), math.exp(-st), 1.0, 1.0]
        np.testing.assert_allclose(o[t], np.array(z) / sum(z), rtol=1e-14)
    expected_loss = -math.log(o[0, 1]) - math.log(o[1, 0])
    assert model.calculate_total_loss([np.array([0, 1])], [np.array([1, 0])]) == pytest.approx(expected_loss)
    assert model.calculate_loss([np.array([0, 1])], [np.array([1, 0])]) == pytest.approx(expected_loss / 2)


def test_shapes_and_parameter_init_ranges():
    model = RNNNumpy(50, 8, seed=1)
    assert model.U.shape == (8, 50) and model.V.shape == (50, 8) and model.W.shape == (8, 8)
    assert np.abs(model.U).max() <= 1 / np.sqrt(50) and np.abs(model.W).max() <= 1 / np.sqrt(8)
    o, s = model.forward_propagation(np.arange(7))
    assert o.shape == (7, 50) and s.shape == (8, 8)
    np.testing.assert_allclose(o.sum(axis=1), 1.0)
    assert model.predict(np.arange(7)).shape == (7,)


def test_same_seed_same_parameters():
    a, b = RNNNumpy(30, 5, seed=7), RNNNumpy(30, 5, seed=7)
    for k in a.params:
        np.testing.assert_array_equal(a.params[k], b.params[k])
    assert not np.array_equal(a.U, RNNNumpy(30, 5, seed=8).U)


def test_tutorial_gradient_check_passes_vocab_100_hidden_10():
    model = RNNNumpy(100, 10, bptt_truncate=1000, seed=0)
    x = np.array([0, 1, 2, 3, 4, 5, 6])
    report = model.gradient_check(x, np.append(x[1:], 7))
    assert report, str(report)
    assert [c.name for c in report.checks] == ["U", "V", "W"]
    assert sum(c.checked for c in report.checks) == 100 * 10 * 2 + 100


def test_bptt_full_matches_tight_finite_differences(rng):
    model = RNNNumpy(12, 5, bptt_truncate=1000, seed=3)
    x, y = random_sentence(rng, 12, 9)
    grads = dict(zip("UVW", model.bptt(x, y)))
    report = check_gradients(lambda: model.calculate_total_loss([x], [y]), model.params, grads,
                             h=1e-5, threshold=1e-6)
    assert report, str(report)


def _bptt_written_out(self, x, y, tanh_derivative=True):
    """A student's bptt, typed in full (tutorial signature), optionally missing the tanh derivative."""
    T = len(y)
    o, s = self.forward_propagation(x)
    dU, dV, dW = np.zeros_like(self.U), np.zeros_like(self.V), np.zeros_like(self.W)
    delta_o = o.copy()
    delta_o[np.arange(T), y] -= 1.0
    for t in reversed(range(T)):
        dV += np.outer(delta_o[t], s[t])
        delta_t = self.V.T.dot(delta_o[t]) * (1 - s[t] ** 2)
        for step in reversed(range(max(0, t - self.bptt_truncate), t + 1)):
            dW += np.outer(delta_t, s[step - 1])
            dU[:, x[step]] += delta_t
            delta_t = self.W.T.dot(delta_t)
            if tanh_derivative:
                delta_t = delta_t * (1 - s[step - 1] ** 2)
    return [dU, dV, dW]


class StudentBptt(RNNNumpy):
    """A correct override of the public method, written independently of the package's."""

    def bptt(self, x, y):
        return _bptt_written_out(self, x, y)


class DropsTanhDerivative(RNNNumpy):
    def bptt(self, x, y):
        return _bptt_written_out(self, x, y, tanh_derivative=False)


class DoublesDV(RNNNumpy):
    def bptt(self, x, y):
        dU, dV, dW = RNNNumpy.bptt(self, x, y)
        return [dU, 2 * dV, dW]


class ReturnsZeros(RNNNumpy):
    def bptt(self, x, y):
        return [np.zeros_like(self.U), np.zeros_like(self.V), np.zeros_like(self.W)]


SENTENCE = np.array([0, 1, 2, 3, 4, 5, 6])


@pytest.mark.parametrize("model_class, failing", [
    (DropsTanhDerivative, {"U", "W"}),  # V's gradient does not involve the recurrence
    (DoublesDV, {"V"}),
    (ReturnsZeros, {"U", "V", "W"}),
])
def test_gradient_check_fails_for_a_wrong_public_bptt_and_names_the_parameter(model_class, failing):
    # the tutorial's truncation of 4 is in force: the check must switch it off itself
    model = model_class(100, 10, bptt_truncate=4, seed=0)
    report = model.gradient_check(SENTENCE, np.append(SENTENCE[1:], 7))
    assert not report
    assert {c.name for c in report.failures} == failing
    assert all(f"{name} (" in str(report) for name in failing) and "FAILED" in str(report)
    assert model.bptt_truncate == 4  # restored


def test_a_correct_override_passes_with_truncation_restored():
    model = StudentBptt(100, 10, bptt_truncate=2, seed=0)
    report = model.gradient_check(SENTENCE, np.append(SENTENCE[1:], 7))
    assert report, str(report)
    assert model.bptt_truncate == 2
    # and the check really ran full BPTT: with truncation 2 the W gradient differs
    truncated = dict(zip("UVW", model.bptt(SENTENCE, np.append(SENTENCE[1:], 7))))
    assert not np.allclose(truncated["W"], model.full_bptt(SENTENCE, np.append(SENTENCE[1:], 7))["W"])


def test_the_tutorials_monkeypatch_is_checked(monkeypatch):
    monkeypatch.setattr(RNNNumpy, "bptt", lambda self, x, y: _bptt_written_out(self, x, y, tanh_derivative=False))
    model = RNNNumpy(100, 10, seed=0)
    assert not model.gradient_check(SENTENCE, np.append(SENTENCE[1:], 7))
    monkeypatch.setattr(RNNNumpy, "bptt", _bptt_written_out)
    assert model.gradient_check(SENTENCE, np.append(SENTENCE[1:], 7))


def test_truncation_is_restored_when_bptt_raises():
    class Broken(RNNNumpy):
        def bptt(self, x, y):
            raise RuntimeError("student bug")
    model = Broken(10, 3, bptt_truncate=4, seed=0)
    with pytest.raises(RuntimeError, match="student bug"):
        model.gradient_check(np.array([0, 1]), np.array([1, 2]))
    assert model.bptt_truncate == 4


def test_sgd_step_and_train_with_sgd_use_the_public_bptt(rng):
    from rnnlm.training.tutorial import train_with_sgd
    model = ReturnsZeros(10, 4, seed=0)
    before = {k: v.copy() for k, v in model.params.items()}
    X = [rng.integers(0, 10, 5) for _ in range(3)]
    train_with_sgd(model, X, [np.roll(x, -1) for x in X], learning_rate=0.1, nepoch=2, evaluate_loss_after=1)
    for k in "UVW":  # zero gradients: nothing moved
        np.testing.assert_array_equal(model.params[k], before[k])


def test_truncated_bptt_equals_gradient_with_early_states_held_fixed(rng):
    """Independent definition of truncation: the loss at output t, with the state from
    before step t - k treated as a constant input, differentiated numerically."""
    C, H, T, k = 7, 4, 8, 2
    model = RNNNumpy(C, H, bptt_truncate=k, seed=5)
    x, y = random_sentence(rng, C, T)
    _, s_fixed = model.forward_propagation(x)

    def truncated_loss_sum():
        total = 0.0
        for t in range(T):
            start = max(0, t - k)
            h = s_fixed[start - 1].copy() if start > 0 else np.zeros(H)
            for step in range(start, t + 1):
                h = np.tanh(model.U[:, x[step]] + model.W @ h)
            z = model.V @ h
            total += -(z[y[t]] - z.max() - np.log(np.exp(z - z.max()).sum()))
        return total

    analytic = model.bptt(x, y)
    for name, grad in zip("UVW", analytic):
        numeric = numerical_gradient(truncated_loss_sum, model.params[name], h=1e-6)
        np.testing.assert_allclose(grad, numeric, atol=1e-7, rtol=1e-5)
    # and truncation really changes something here, so the test can tell them apart
    full = model.full_bptt(x, y)
    assert not np.allclose(full["W"], analytic[2])


def test_initial_loss_is_close_to_log_c():
    C = 8000
    model = RNNNumpy(C, 100, seed=0)
    rng = np.random.default_rng(1)
    X = [rng.integers(0, C, 12) for _ in range(20)]
    Y = [rng.integers(0, C, 12) for _ in range(20)]
    assert model.calculate_loss(X, Y) == pytest.approx(np.log(C), abs=0.02)


def test_each_state_follows_the_recurrence_and_a_later_loss_depends_on_an_earlier_word():
    # the log C check above passes with a broken recurrence (W ignored, W^T for W): here every
    # s_t = tanh(U[:, x_t] + W s_{t-1}) by hand, with H = 3 and a W that is not symmetric
    model = RNNNumpy(6, 3, seed=2)
    assert not np.allclose(model.W, model.W.T)
    x, y = np.array([1, 4, 0, 2, 5]), np.array([4, 0, 2, 5, 1])
    o, s = model.forward_propagation(x)
    prev = np.zeros(3)
    for t, word in enumerate(x):
        prev = np.tanh(model.U[:, word] + model.W @ prev)
        np.testing.assert_allclose(s[t], prev, rtol=1e-14, atol=1e-15)
        np.testing.assert_allclose(o[t], softmax(model.V @ prev), rtol=1e-13)

    def loss_at_step_3(x):  # the model is causal: the prefix of 4 words minus the prefix of 3
        return model.calculate_total_loss([x[:4]], [y[:4]]) - model.calculate_total_loss([x[:3]], [y[:3]])
    changed = x.copy()
    changed[0] = 3
    assert abs(loss_at_step_3(changed) - loss_at_step_3(x)) > 1e-4


def test_sgd_step_is_theta_minus_rate_times_the_gradient(rng):
    # truncation beyond the sentence length is full BPTT, so the gradient is the finite-difference
    # gradient of the sentence's loss, computed here without bptt
    C, rate = 20, 0.05
    model = RNNNumpy(C, 8, bptt_truncate=10, seed=0)
    x = rng.integers(0, C, 6)
    y = np.roll(x, -1)
    loss_sum = lambda: model.calculate_total_loss([x], [y])  # noqa: E731
    before, loss_before = {k: v.copy() for k, v in model.params.items()}, loss_sum()
    gradient = {k: numerical_gradient(loss_sum, v, h=1e-6) for k, v in model.params.items()}
    model.sgd_step(x, y, rate)
    for k, g in gradient.items():
        assert np.abs(g).max() > 1e-3, k
        np.testing.assert_allclose(model.params[k], before[k] - rate * g, rtol=1e-7, atol=1e-9, err_msg=k)
    assert loss_sum() < loss_before


@pytest.mark.parametrize("kwargs, message", [
    (dict(word_dim=3), "at least 4"),
    (dict(word_dim=10, hidden_dim=0), "hidden size must be a positive integer"),
    (dict(word_dim=10, bptt_truncate=-1), "bptt truncation"),
])
def test_impossible_sizes_are_rejected(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        RNNNumpy(**kwargs)

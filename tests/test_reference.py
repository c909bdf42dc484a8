"""RNNNumpy against independent computations: a hand-worked case, finite differences, log C."""

import math

import numpy as np
import pytest

from rnnlm.errors import ConfigError
from rnnlm.gradcheck import check_gradients, numerical_gradient
from rnnlm.reference import RNNNumpy


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


class DropsTanhDerivative(RNNNumpy):
    """A deliberately wrong backward pass: forgets the (1 - s^2) factor when stepping back."""

    def _bptt(self, x, y, truncate):
        T = len(y)
        o, s = self.forward_propagation(x)
        dU, dV, dW = np.zeros_like(self.U), np.zeros_like(self.V), np.zeros_like(self.W)
        delta_o = o.copy()
        delta_o[np.arange(T), y] -= 1.0
        for t in reversed(range(T)):
            dV += np.outer(delta_o[t], s[t])
            delta_t = self.V.T.dot(delta_o[t]) * (1 - s[t] ** 2)
            for step in reversed(range(max(0, t - truncate), t + 1)):
                dW += np.outer(delta_t, s[step - 1])
                dU[:, x[step]] += delta_t
                delta_t = self.W.T.dot(delta_t)
        return [dU, dV, dW]


def test_gradient_check_fails_for_a_corrupted_backward_pass():
    model = DropsTanhDerivative(100, 10, bptt_truncate=1000, seed=0)
    x = np.array([0, 1, 2, 3, 4, 5, 6])
    report = model.gradient_check(x, np.append(x[1:], 7))
    assert not report
    failed = {c.name for c in report.failures}
    assert failed == {"U", "W"}  # V's gradient does not involve the recurrence
    assert "FAILED" in str(report)


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
    full = model._bptt(x, y, truncate=T)
    assert not np.allclose(full[2], analytic[2])


def test_initial_loss_is_close_to_log_c():
    C = 8000
    model = RNNNumpy(C, 100, seed=0)
    rng = np.random.default_rng(1)
    X = [rng.integers(0, C, 12) for _ in range(20)]
    Y = [rng.integers(0, C, 12) for _ in range(20)]
    assert model.calculate_loss(X, Y) == pytest.approx(np.log(C), abs=0.02)


def test_sgd_lowers_the_loss_on_a_small_corpus(rng):
    C = 20
    model = RNNNumpy(C, 8, seed=0)
    X = [rng.integers(0, C, 6) for _ in range(10)]
    Y = [np.roll(x, -1) for x in X]
    before = model.calculate_loss(X, Y)
    for _ in range(30):
        for x, y in zip(X, Y):
            model.sgd_step(x, y, 0.05)
    assert model.calculate_loss(X, Y) < 0.7 * before


@pytest.mark.parametrize("kwargs, message", [
    (dict(word_dim=3), "at least 4"),
    (dict(word_dim=10, hidden_dim=0), "hidden size must be a positive integer"),
    (dict(word_dim=10, bptt_truncate=-1), "bptt truncation"),
])
def test_impossible_sizes_are_rejected(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        RNNNumpy(**kwargs)

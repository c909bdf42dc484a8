"""The gradient checker itself: it must pass true gradients and fail wrong or NaN ones."""

import numpy as np
import pytest

from rnnlm.errors import ConfigError
from rnnlm.nn.gradcheck import check_gradients, numerical_gradient, rel_error


def test_rel_error_is_zero_not_nan_when_both_are_zero():
    assert rel_error(0.0, 0.0) == 0.0
    assert rel_error(1.0, 3.0) == 0.5


def test_numerical_gradient_of_a_cubic_and_params_restored():
    x = np.array([1.0, -2.0, 0.5])
    original = x.copy()
    grad = numerical_gradient(lambda: float(np.sum(x ** 3)), x, h=1e-5)
    np.testing.assert_allclose(grad, 3 * original ** 2, rtol=1e-8)
    np.testing.assert_array_equal(x, original)


def _quadratic_problem():
    A = np.array([[2.0, 1.0], [0.0, 3.0]])
    params = {"w": np.array([[0.5, -1.0], [0.0, 2.0]])}
    loss = lambda: float(np.sum(A * params["w"] ** 2))
    return params, loss, {"w": 2 * A * params["w"]}


def test_true_gradient_passes_including_exact_zeros():
    params, loss, grads = _quadratic_problem()
    report = check_gradients(loss, params, grads)
    assert report and report.checks[0].checked == 4


def test_wrong_entry_fails_and_is_named():
    params, loss, grads = _quadratic_problem()
    grads["w"][1, 1] += 0.1
    report = check_gradients(loss, params, grads)
    assert not report
    check = report.failures[0]
    assert check.name == "w" and check.worst_index == (1, 1) and check.failed == 1
    assert "FAILED" in str(report) and "w[1, 1]" in str(report)


def test_nan_gradient_fails():
    params, loss, grads = _quadratic_problem()
    grads["w"][0, 0] = np.nan
    assert not check_gradients(loss, params, grads)


def test_max_entries_samples_a_subset():
    params, loss, grads = _quadratic_problem()
    report = check_gradients(loss, params, grads, max_entries=2, rng=np.random.default_rng(1))
    assert report.checks[0].checked == 2


def test_float32_parameters_are_refused_with_a_clear_message():
    params = {"w": np.ones((2, 2), dtype=np.float32)}
    with pytest.raises(ConfigError, match="float64.*'w' is float32"):
        check_gradients(lambda: float(np.sum(params["w"] ** 2)), params, {"w": 2 * params["w"]})


def test_language_model_float32_check_is_refused():
    from rnnlm.models.language_model import LanguageModel
    model = LanguageModel(6, 3, cell="gru", seed=0)
    X, Y = [np.array([0, 1, 2])], [np.array([1, 2, 3])]
    assert all(p.dtype == np.float32 for p in model.params.values())
    _, grads = model.total_loss_and_gradients(X, Y)
    with pytest.raises(ConfigError, match="float64"):
        check_gradients(lambda: model.total_loss(X, Y), model.params, grads)

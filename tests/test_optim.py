"""Every update rule against a step computed by hand, sparse vs dense, clipping, and state round trips."""

import numpy as np
import pytest

from rnnlm.errors import ConfigError
from rnnlm.nn.optim import (SGD, Adagrad, Adam, RMSProp, SparseGradient, clip_global_norm, global_norm,
                         make_optimizer)


def one(value=1.0):
    return {"w": np.array([value, -2.0], dtype=np.float64)}


G = np.array([0.5, -1.0])


def test_sgd_step_by_hand():
    p = one()
    SGD(0.1).step(p, {"w": G})
    np.testing.assert_allclose(p["w"], [1.0 - 0.05, -2.0 + 0.1], rtol=1e-15)


def test_sgd_momentum_two_steps_by_hand():
    p = one()
    opt = SGD(0.1, momentum=0.9)
    opt.step(p, {"w": G})  # v = -0.1 g = [-0.05, 0.1]
    opt.step(p, {"w": G})  # v = 0.9 v - 0.1 g = [-0.095, 0.19]
    np.testing.assert_allclose(p["w"], [1.0 - 0.05 - 0.095, -2.0 + 0.1 + 0.19], rtol=1e-14)


def test_adagrad_two_steps_by_hand():
    p = one()
    opt = Adagrad(0.1, eps=0.0)
    opt.step(p, {"w": G})  # G = g^2: step lr * sign(g)
    np.testing.assert_allclose(p["w"], [0.9, -1.9], rtol=1e-15)
    opt.step(p, {"w": G})  # G = 2 g^2: step lr / sqrt(2) * sign(g)
    np.testing.assert_allclose(p["w"], [0.9 - 0.1 / np.sqrt(2), -1.9 + 0.1 / np.sqrt(2)], rtol=1e-14)


def test_rmsprop_step_by_hand():
    p = one()
    opt = RMSProp(0.01, decay=0.9, eps=0.0)
    opt.step(p, {"w": G})  # cache = 0.1 g^2: step 0.01 g / (sqrt(0.1) |g|)
    np.testing.assert_allclose(p["w"], [1.0 - 0.01 / np.sqrt(0.1), -2.0 + 0.01 / np.sqrt(0.1)], rtol=1e-14)
    opt.step(p, {"w": G * 0})  # zero gradient: no move, cache decays to 0.09 g^2
    np.testing.assert_allclose(opt.state["w"]["mean_square"], 0.09 * G ** 2, rtol=1e-14)


def test_adam_two_steps_by_hand():
    p = one()
    opt = Adam(0.001, beta1=0.9, beta2=0.999, eps=0.0)
    opt.step(p, {"w": G})  # bias-corrected m_hat = g, v_hat = g^2: a step of exactly lr * sign(g)
    np.testing.assert_allclose(p["w"], [1.0 - 0.001, -2.0 + 0.001], rtol=1e-12)
    g2 = np.array([-0.5, 3.0])
    opt.step(p, {"w": g2})
    m = 0.9 * 0.1 * G + 0.1 * g2
    v = 0.999 * 0.001 * G ** 2 + 0.001 * g2 ** 2
    m_hat, v_hat = m / (1 - 0.9 ** 2), v / (1 - 0.999 ** 2)
    np.testing.assert_allclose(p["w"], np.array([0.999, -1.999]) - 0.001 * m_hat / np.sqrt(v_hat), rtol=1e-12)


@pytest.mark.parametrize("shape", [(3, 4), (400, 300)])  # one block, and several (`_row_blocks`)
def test_adam_with_eps_follows_the_textbook_rule_for_five_steps(rng, shape):
    # eps large enough to matter: it sits outside the square root of the bias-corrected v_hat
    w = rng.standard_normal(shape)
    p, opt = {"w": w.copy()}, Adam(0.01, beta1=0.8, beta2=0.95, eps=0.05)
    m = v = np.zeros_like(w)
    for t in range(1, 6):
        g = rng.standard_normal(w.shape)
        opt.step(p, {"w": g})
        m, v = 0.8 * m + 0.2 * g, 0.95 * v + 0.05 * g ** 2
        w = w - 0.01 * (m / (1 - 0.8 ** t)) / (np.sqrt(v / (1 - 0.95 ** t)) + 0.05)
        np.testing.assert_allclose(p["w"], w, rtol=1e-12, atol=1e-14)


def embedding_problem(rng):
    params = {"E": rng.standard_normal((6, 3)), "b": rng.standard_normal(3)}
    sparse = SparseGradient(np.array([0, 2, 5]), rng.standard_normal((3, 3)), axis=0)
    return params, {"E": sparse, "b": rng.standard_normal(3)}


@pytest.mark.parametrize("make", [lambda: SGD(0.1), lambda: SGD(0.1, momentum=0.5), lambda: Adagrad(0.1),
                                  lambda: RMSProp(0.01), lambda: Adam(0.01)])
def test_sparse_gradient_equals_its_dense_form(make, rng):
    params, grads = embedding_problem(rng)
    dense_params = {k: v.copy() for k, v in params.items()}
    dense_grads = {"E": grads["E"].to_dense((6, 3)), "b": grads["b"]}
    a, b = make(), make()
    for _ in range(3):
        a.step(params, grads)
        b.step(dense_params, dense_grads)
    for k in params:
        np.testing.assert_allclose(params[k], dense_params[k], rtol=1e-13, atol=1e-15)


def test_sparse_sgd_and_adagrad_touch_only_the_rows_seen(rng):
    params, grads = embedding_problem(rng)
    untouched = params["E"][[1, 3, 4]].copy()
    for opt in (SGD(0.1), Adagrad(0.1)):
        opt.step(params, grads)
    np.testing.assert_array_equal(params["E"][[1, 3, 4]], untouched)


def test_sparse_gradient_along_axis_one(rng):
    g = SparseGradient(np.array([1, 3]), np.ones((2, 2)), axis=1)
    np.testing.assert_array_equal(g.to_dense((2, 4)), [[0, 1, 0, 1], [0, 1, 0, 1]])
    U = np.zeros((2, 4))
    SGD(1.0).step({"U": U}, {"U": g})
    np.testing.assert_array_equal(U, -g.to_dense((2, 4)))


def test_clip_global_norm_scales_everything_by_one_factor():
    grads = {"a": np.array([3.0, 0.0]), "b": SparseGradient(np.array([1]), np.array([[4.0]]), axis=0)}
    assert global_norm(grads) == pytest.approx(5.0)
    clipped, norm = clip_global_norm(grads, 1.0)
    assert norm == pytest.approx(5.0)
    np.testing.assert_allclose(clipped["a"], [0.6, 0.0])
    np.testing.assert_allclose(clipped["b"].values, [[0.8]])
    assert global_norm(clipped) == pytest.approx(1.0)
    same, _ = clip_global_norm(grads, 10.0)
    assert same is grads  # under the limit: untouched
    assert clip_global_norm(grads, None)[0] is grads


def test_clipping_a_zero_gradient_is_a_no_op():
    grads = {"a": np.zeros(3)}
    clipped, norm = clip_global_norm(grads, 1.0)
    assert norm == 0.0 and not np.any(np.isnan(clipped["a"]))


@pytest.mark.parametrize("name", ["sgd", "adagrad", "rmsprop", "adam"])
def test_state_dict_round_trip_resumes_exactly(name, rng):
    momentum = 0.9 if name == "sgd" else 0.0
    params = {"w": rng.standard_normal(4)}
    steps = [{"w": rng.standard_normal(4)} for _ in range(4)]
    a = make_optimizer(name, 0.01, momentum=momentum)
    for g in steps[:2]:
        a.step(params, g)
    resumed_params = {"w": params["w"].copy()}
    b = make_optimizer(name, 0.5, momentum=momentum)
    b.load_state_dict({k: np.array(v) for k, v in a.state_dict().items()})
    assert b.steps == 2 and b.learning_rate == 0.01
    for g in steps[2:]:
        a.step(params, g)
        b.step(resumed_params, g)
    np.testing.assert_array_equal(params["w"], resumed_params["w"])


def test_bad_settings_are_config_errors():
    with pytest.raises(ConfigError):
        SGD(0.0)
    with pytest.raises(ConfigError):
        SGD(0.1, momentum=1.0)
    with pytest.raises(ConfigError):
        make_optimizer("lbfgs", 0.1)


def test_float32_parameters_stay_float32():
    for opt in (SGD(0.1), Adagrad(0.1), RMSProp(0.1), Adam(0.1)):
        p = {"w": np.ones(3, dtype=np.float32)}
        opt.step(p, {"w": np.ones(3, dtype=np.float32)})
        assert p["w"].dtype == np.float32

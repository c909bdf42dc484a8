"""Softmax, log-softmax, cross-entropy and sigmoid against direct formulas and extreme inputs."""

import math

import numpy as np
import pytest

from rnnlm.nn.numerics import cross_entropy, log_softmax, perplexity, sigmoid, softmax


def test_softmax_matches_the_formula_and_survives_huge_scores():
    z = np.array([1.0, 2.0, 3.0])
    e = np.exp(z)
    np.testing.assert_allclose(softmax(z), e / e.sum())
    big = softmax(np.array([1000.0, 1000.0]))
    np.testing.assert_allclose(big, [0.5, 0.5])


def test_log_softmax_is_log_of_softmax_along_the_last_axis(rng):
    z = rng.normal(size=(3, 4, 5))
    np.testing.assert_allclose(log_softmax(z), np.log(softmax(z)), atol=1e-12)
    np.testing.assert_allclose(np.exp(log_softmax(z)).sum(axis=-1), 1.0)


def test_cross_entropy_sums_negative_log_probabilities():
    logits = np.array([[0.0, 0.0], [math.log(3.0), 0.0]])
    assert cross_entropy(logits, [1, 0]) == pytest.approx(math.log(2) + math.log(4 / 3), rel=1e-14)


def test_sigmoid_is_stable_at_both_ends():
    z = np.array([-800.0, 0.0, 800.0, 2.0])
    with np.errstate(over="raise"):
        out = sigmoid(z)
    np.testing.assert_allclose(out, [0.0, 0.5, 1.0, 1 / (1 + math.exp(-2))])


def test_perplexity_is_exp_of_the_loss_and_inf_when_it_would_overflow():
    assert perplexity(math.log(2000)) == pytest.approx(2000)
    assert perplexity(800.0) == math.inf

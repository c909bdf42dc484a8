"""Each cell's step backward against central differences of sum(forward * dout), in float64."""

import numpy as np
import pytest

from rnnlm.nn import cells
from rnnlm.nn.gradcheck import numerical_gradient, rel_error

N, E, H = 3, 4, 5
CASES = [("rnn", {}), ("gru", {}), ("jordan", {}), ("lstm", {}), ("lstm", {"peephole": True}),
         ("lstm", {"coupled": True}), ("lstm", {"peephole": True, "coupled": True})]


def make(cell, options, rng):
    shapes = cells.cell_param_shapes(cell, E, H, **options)
    p = {k: rng.standard_normal(s) * 0.5 for k, s in shapes.items()}
    nstate = cells.CELLS[cell][2]
    x = rng.standard_normal((N, E))
    state = tuple(rng.standard_normal((N, H)) * 0.5 for _ in range(nstate))
    dstate = tuple(rng.standard_normal((N, H)) for _ in range(nstate))
    return p, x, state, dstate


def check_step(cell, options, rng, backward=None):
    """Largest relative error between the analytic and numerical gradients of every input and parameter."""
    forward = cells.CELLS[cell][0]
    backward = backward or cells.CELLS[cell][1]
    p, x, state, dstate = make(cell, options, rng)

    def f():  # the scalar sum_k <state_k, dstate_k>: its gradient is the backward of dstate
        new, _ = forward(x, state, p, **options)
        return sum(float(np.sum(a * d)) for a, d in zip(new, dstate))

    _, cache = forward(x, state, p, **options)
    dx, dprev, grads = backward(dstate, cache)
    assert set(grads) == set(p)
    pairs = [(dx, x)] + list(zip(dprev, state)) + [(grads[k], p[k]) for k in p]
    worst = 0.0
    for analytic, array in pairs:
        assert analytic.shape == array.shape
        numeric = numerical_gradient(f, array)
        worst = max(worst, float(np.max(rel_error(analytic, numeric, floor=1e-3))))  # |a|+|n| < 1e-3: judged absolutely (1e-10)
    return worst


@pytest.mark.parametrize("cell, options", CASES)
def test_step_backward_matches_finite_differences(cell, options, rng):
    assert check_step(cell, options, rng) < 1e-7


def test_backward_does_not_mutate_its_inputs(rng):
    p, x, state, dstate = make("lstm", {"peephole": True}, rng)
    _, cache = cells.lstm_step_forward(x, state, p, peephole=True)
    before = [a.copy() for a in dstate] + [a.copy() for a in cache if isinstance(a, np.ndarray)]
    cells.lstm_step_backward(dstate, cache)
    after = list(dstate) + [a for a in cache if isinstance(a, np.ndarray)]
    assert all(np.array_equal(a, b) for a, b in zip(before, after))


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm", "jordan"])
def test_negative_control_corrupted_backward_fails(cell, rng):
    """Doubling one returned gradient must be caught, so the check above can fail."""
    good = cells.CELLS[cell][1]

    def corrupted(dstate, cache):
        dx, dprev, grads = good(dstate, cache)
        grads = dict(grads, W_ih=grads["W_ih"] * 2)
        return dx, dprev, grads

    assert check_step(cell, {}, rng, backward=corrupted) > 1e-2


def test_negative_control_missing_tanh_derivative(rng, monkeypatch):
    """The classic bug: the Elman backward forgets the (1 - h^2) factor."""
    def wrong(dstate, cache):
        (dh,) = dstate
        da = dh
        return da @ cache.p["W_ih"].T, (da @ cache.p["W_hh"].T,), {
            "W_ih": cache.x.T @ da, "W_hh": cache.h_prev.T @ da, "b_ih": da.sum(0), "b_hh": da.sum(0)}
    assert check_step("rnn", {}, rng, backward=wrong) > 1e-2


def test_gru_reset_gate_multiplies_the_hidden_bias(rng):
    """torch's GRU: n = tanh(x W_in + b_in + r * (h W_hn + b_hn)); b_hn is inside the reset gate."""
    p, x, (h,), _ = make("gru", {}, rng)
    (h1,), cache = cells.gru_step_forward(x, (h,), p)
    p2 = {k: v.copy() for k, v in p.items()}
    p2["b_hh"][2 * H:] += 1.0
    (h2,), cache2 = cells.gru_step_forward(x, (h,), p2)
    np.testing.assert_allclose(np.arctanh(cache2.n) - np.arctanh(cache.n), cache.r, rtol=1e-8)


def test_lstm_equations_by_hand(rng):
    p, x, (h, c), _ = make("lstm", {}, rng)
    a = x @ p["W_ih"] + p["b_ih"] + h @ p["W_hh"] + p["b_hh"]
    sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    i, f, g, o = sig(a[:, :H]), sig(a[:, H:2 * H]), np.tanh(a[:, 2 * H:3 * H]), sig(a[:, 3 * H:])
    c_new = f * c + i * g
    (h1, c1), _ = cells.lstm_step_forward(x, (h, c), p)
    np.testing.assert_allclose(c1, c_new, rtol=1e-12)
    np.testing.assert_allclose(h1, o * np.tanh(c_new), rtol=1e-12)


def test_coupled_lstm_forgets_what_it_writes(rng):
    p, x, state, _ = make("lstm", {"coupled": True}, rng)
    _, cache = cells.lstm_step_forward(x, state, p, coupled=True)
    np.testing.assert_allclose(cache.f, 1 - cache.i, rtol=1e-12)
    assert p["W_ih"].shape == (E, 3 * H)


@pytest.mark.parametrize("forgets, peephole", [(0, False), (1, False), (2, False), (1, True), ("coupled", True)])
def test_gated_memory_backward_matches_finite_differences(forgets, peephole, rng):
    # the LSTM's gates-to-(h, c) update that the LSTM step and both Tree-LSTM cells share
    a_i, a_g, a_o = (rng.standard_normal((N, H)) for _ in range(3))
    pairs = [(None if forgets == "coupled" else rng.standard_normal((N, H)), rng.standard_normal((N, H)))
             for _ in range(1 if forgets == "coupled" else forgets)]
    w_co = rng.standard_normal(H) if peephole else None
    dh, dc = rng.standard_normal((N, H)), rng.standard_normal((N, H))

    def f():
        (h, c), _ = cells.gated_memory_forward(a_i, a_g, a_o, pairs, w_co)
        return float(np.sum(h * dh) + np.sum(c * dc))

    (_, c), cache = cells.gated_memory_forward(a_i, a_g, a_o, pairs, w_co)
    da_i, da_g, da_o, dforgets = cells.gated_memory_backward(dh, dc, cache)
    checks = [(da_i, a_i), (da_g, a_g), (da_o, a_o)]
    for (a_f, c_k), (da_f, dc_k) in zip(pairs, dforgets):
        assert (da_f is None) == (a_f is None)
        checks += [(dc_k, c_k)] + ([(da_f, a_f)] if a_f is not None else [])
    if peephole:
        checks.append(((da_o * c).sum(axis=0), w_co))  # the caller's rule for the peephole's gradient
    for analytic, array in checks:
        assert np.max(rel_error(analytic, numerical_gradient(f, array), floor=1e-3)) < 1e-7

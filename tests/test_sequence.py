"""The one packed recurrence: initial-state gradients, truncation, packing, stream windows, hand-worked cells."""

import numpy as np
import pytest

from rnnlm.nn.cells import CELLS, cell_param_shapes, jordan_step_forward, lstm_step_forward
from rnnlm.models.fast import FastRNN
from rnnlm.models.language_model import LanguageModel
from rnnlm.nn.sequence import Packing, layer_backward, layer_forward, packed_layer_backward, packed_layer_forward

CELL_CASES = [("rnn", {}), ("gru", {}), ("lstm", {}), ("lstm", {"peephole": True}), ("jordan", {})]
N, T, E, H = 3, 5, 2, 4


def layer_setup(cell, options, rng):
    shapes = cell_param_shapes(cell, E, H, **{"peephole": options.get("peephole", False)})
    p = {k: rng.uniform(-0.8, 0.8, s) for k, s in shapes.items()}
    x = rng.standard_normal((N, T, E))
    state0 = tuple(rng.uniform(-0.5, 0.5, (N, H)) for _ in range(CELLS[cell][2]))
    R = rng.standard_normal((N, T, H))  # loss = sum_t <R_t, out_t>, so dout = R
    return p, x, state0, R


def loss_of(cell, options, p, x, state0, R, steps=None):
    out = layer_forward(cell, x, state0, p, **options)[0]
    steps = T if steps is None else steps
    return float(np.sum(out[:, :steps] * R[:, :steps]))


def numerical_dstate0(cell, options, p, x, state0, R, steps=None, h=1e-6):
    grads = []
    for k, s in enumerate(state0):
        g = np.zeros_like(s)
        for idx in np.ndindex(s.shape):
            plus = [a.copy() for a in state0]
            minus = [a.copy() for a in state0]
            plus[k][idx] += h
            minus[k][idx] -= h
            g[idx] = (loss_of(cell, options, p, x, tuple(plus), R, steps)
                      - loss_of(cell, options, p, x, tuple(minus), R, steps)) / (2 * h)
        grads.append(g)
    return grads


@pytest.mark.parametrize("cell, options", CELL_CASES)
def test_initial_state_gradient_matches_finite_differences(cell, options, rng):
    p, x, state0, R = layer_setup(cell, options, rng)
    _, caches, _ = layer_forward(cell, x, state0, p, **options)
    _, _, dstate0 = layer_backward(cell, R, caches)
    for got, want in zip(dstate0, numerical_dstate0(cell, options, p, x, state0, R)):
        assert np.abs(want).max() > 1e-3
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("truncate", [0, 1, 2])
@pytest.mark.parametrize("cell, options", CELL_CASES)
def test_truncated_initial_state_gradient_comes_from_the_first_steps_only(cell, options, truncate, rng):
    # with truncation k, only the errors entering at steps 0..k-1 reach the initial state
    p, x, state0, R = layer_setup(cell, options, rng)
    _, caches, _ = layer_forward(cell, x, state0, p, **options)
    _, _, dstate0 = layer_backward(cell, R, caches, truncate=truncate)
    want = numerical_dstate0(cell, options, p, x, state0, R, steps=truncate)
    for got, w in zip(dstate0, want):
        np.testing.assert_allclose(got, w, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("cell, options", CELL_CASES)
def test_packed_ragged_batch_equals_each_sequence_alone(cell, options, rng):
    p, _, _, _ = layer_setup(cell, options, rng)
    lengths = [2, 5, 0, 3]
    xs = [rng.standard_normal((n, E)) for n in lengths]
    state0 = tuple(rng.uniform(-0.5, 0.5, (len(lengths), H)) for _ in range(CELLS[cell][2]))
    packing = Packing.of(xs)
    packed_x = np.concatenate([np.stack([xs[packing.order[i]][t] for i in range(n)])
                               for t, n in enumerate(packing.batch_sizes)])
    out, _, final = packed_layer_forward(cell, packed_x, packing.sort_state(state0), p, packing, **options)
    out, final = packing.unpack(out), packing.unsort_state(final)
    for n, length in enumerate(lengths):
        s0 = tuple(s[n:n + 1] for s in state0)
        if length == 0:
            for f, s in zip(final, s0):
                np.testing.assert_array_equal(f[n], s[0])
            continue
        alone, _, last = layer_forward(cell, xs[n][None], s0, p, **options)
        np.testing.assert_allclose(out[n, :length], alone[0], rtol=1e-12, atol=1e-14)
        assert not out[n, length:].any()
        for f, s in zip(final, last):
            np.testing.assert_allclose(f[n], s[0], rtol=1e-12, atol=1e-14)


ALL_CELL_OPTIONS = CELL_CASES + [("lstm", {"coupled": True}), ("lstm", {"peephole": True, "coupled": True})]


@pytest.mark.parametrize("truncate", [None, 0, 1, 3])
@pytest.mark.parametrize("cell, options", ALL_CELL_OPTIONS)
def test_hoisted_input_projection_equals_the_per_step_path(cell, options, truncate, rng):
    # the layer projects x W_ih + b_ih for all tokens before its loop; here every step projects its
    # own rows (the cells called with W_ih, as before the hoisting) and the backward gets those caches
    step_forward = CELLS[cell][0]
    shapes = cell_param_shapes(cell, E, H, **options)
    p = {k: rng.uniform(-0.8, 0.8, s) for k, s in shapes.items()}
    lengths = [6, 2, 0, 4, 6]
    packing = Packing.of_lengths(lengths)
    M, nstate = packing.num_tokens, CELLS[cell][2]
    x = rng.standard_normal((M, E))
    state0 = tuple(rng.uniform(-0.5, 0.5, (len(lengths), H)) for _ in range(nstate))
    dout = rng.standard_normal((M, H))
    out, caches, final = packed_layer_forward(cell, x, state0, p, packing, **options)
    assert caches.projection  # the hoisted path is the one under test
    steps, state, want_out = [], state0, np.empty((M, H))
    for t, n in enumerate(packing.batch_sizes):
        a, e = packing.offsets[t], packing.offsets[t + 1]
        state, cache = step_forward(x[a:e], tuple(s[:n] for s in state), p, **options)
        want_out[a:e] = state[0]
        steps.append(cache)
    np.testing.assert_allclose(out, want_out, rtol=1e-12, atol=1e-12)
    for f, s in zip(final, state):  # the longest sequences end last
        np.testing.assert_allclose(f[:len(s)], s, rtol=1e-12, atol=1e-12)
    dx, grads, dstate0 = packed_layer_backward(cell, dout, caches, packing, truncate)
    want_dx, want_grads, want_dstate0 = packed_layer_backward(cell, dout, steps, packing, truncate)
    np.testing.assert_allclose(dx, want_dx, rtol=1e-12, atol=1e-12)
    assert set(grads) == set(want_grads) == set(shapes)
    for name in shapes:
        np.testing.assert_allclose(grads[name], want_grads[name], rtol=1e-12, atol=1e-12, err_msg=name)
    for got, want in zip(dstate0, want_dstate0):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("make", [
    lambda: FastRNN(11, 5, bptt_truncate=None, seed=0, dtype=np.float64),
    lambda: LanguageModel(11, 5, cell="lstm", num_layers=2, embed_size=3, seed=0, dtype=np.float64),
    lambda: LanguageModel(11, 5, cell="gru", seed=0, dtype=np.float64, softmax="class", num_classes=3)],
    ids=["fast", "lstm", "gru-class"])
def test_two_windows_with_carried_state_equal_one_long_window(make, rng):
    model = make()
    X = rng.integers(0, 11, (3, 8))
    Y = rng.integers(0, 11, (3, 8))
    whole, whole_state = model.window_total_loss(X, Y, model.start_state(3))
    first, state = model.window_total_loss(X[:, :5], Y[:, :5], model.start_state(3))
    second, last = model.window_total_loss(X[:, 5:], Y[:, 5:], state)
    assert first + second == pytest.approx(whole, rel=1e-12)
    assert model.total_loss(list(X), list(Y)) == pytest.approx(whole, rel=1e-12)
    for a, b in zip(np.ravel(np.array(last, dtype=object)), np.ravel(np.array(whole_state, dtype=object))):
        np.testing.assert_allclose(a, b, rtol=1e-12)
    # the gradient variant gives the same loss and state, and stops at the window start
    loss2, grads, state2 = model.window_total_loss_and_gradients(X[:, 5:], Y[:, 5:], state)
    assert loss2 == pytest.approx(second, rel=1e-12) and set(grads) == set(model.params)
    for a, b in zip(np.ravel(np.array(state2, dtype=object)), np.ravel(np.array(last, dtype=object))):
        np.testing.assert_allclose(a, b, rtol=1e-12)


def test_window_gradient_treats_the_carried_state_as_a_constant(rng):
    # the gradient of the second window alone, holding its starting state fixed, by finite differences
    model = LanguageModel(9, 4, cell="rnn", seed=1, dtype=np.float64, embed_size=3)
    X, Y = rng.integers(0, 9, (2, 6)), rng.integers(0, 9, (2, 6))
    _, state = model.window_total_loss(X[:, :3], Y[:, :3], model.start_state(2))
    _, grads, _ = model.window_total_loss_and_gradients(X[:, 3:], Y[:, 3:], state)
    W = model.params["l0.W_hh"]
    W[0, 1] += 1e-6
    up = model.window_total_loss(X[:, 3:], Y[:, 3:], state)[0]
    W[0, 1] -= 2e-6
    down = model.window_total_loss(X[:, 3:], Y[:, 3:], state)[0]
    W[0, 1] += 1e-6
    assert grads["l0.W_hh"][0, 1] == pytest.approx((up - down) / 2e-6, rel=1e-6)


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def test_peephole_lstm_step_worked_by_hand():
    # H = E = 1. Pre-activations summed by hand from the numbers below:
    #   i: 0.5*0.1 - 0.2*0.5 + 0.01 + 0.9*0.3    =  0.23
    #   f: 0.5*(-0.2) - 0.2*0.6 + 0.02 - 0.5*0.3 = -0.35
    #   g: 0.5*0.3 - 0.2*(-0.7) + 0.03           =  0.32
    #   o: 0.5*0.4 - 0.2*0.8 + 0.04 + 0.25*c_t   =  0.08 + 0.25 c_t  (the output gate peeks at the new cell)
    p = {"W_ih": np.array([[0.1, -0.2, 0.3, 0.4]]), "W_hh": np.array([[0.5, 0.6, -0.7, 0.8]]),
         "b_ih": np.array([0.01, 0.02, 0.03, 0.04]), "b_hh": np.zeros(4),
         "w_ci": np.array([0.9]), "w_cf": np.array([-0.5]), "w_co": np.array([0.25])}
    (h, c), _ = lstm_step_forward(np.array([[0.5]]), (np.array([[-0.2]]), np.array([[0.3]])), p, peephole=True)
    c_hand = sigmoid(-0.35) * 0.3 + sigmoid(0.23) * np.tanh(0.32)
    h_hand = sigmoid(0.08 + 0.25 * c_hand) * np.tanh(c_hand)
    assert c[0, 0] == pytest.approx(c_hand, rel=1e-12) and c[0, 0] == pytest.approx(0.2964867941539479, rel=1e-12)
    assert h[0, 0] == pytest.approx(h_hand, rel=1e-12) and h[0, 0] == pytest.approx(0.15512560744915216, rel=1e-12)


def test_jordan_step_worked_by_hand():
    # h = tanh(0.5*0.6 + 0.1 + (-0.4)*0.7 - 0.2) = tanh(-0.08); y = tanh(1.5 h + 0.05)
    p = {"W_ih": np.array([[0.6]]), "b_ih": np.array([0.1]), "W_yh": np.array([[0.7]]), "b_yh": np.array([-0.2]),
         "W_hy": np.array([[1.5]]), "b_hy": np.array([0.05])}
    (y,), _ = jordan_step_forward(np.array([[0.5]]), (np.array([[-0.4]]),), p)
    assert y[0, 0] == pytest.approx(np.tanh(1.5 * np.tanh(-0.08) + 0.05), rel=1e-12)
    assert y[0, 0] == pytest.approx(-0.06963178657525008, rel=1e-12)


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
@pytest.mark.parametrize("projected", [False, True])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_fused_loop_equals_the_cells_reading_steps(cell, projected, dtype, rng, monkeypatch):
    """The fused time loop (rnnlm.nn.cells' fused pairs, one dW_hh product after the loop) gives the
    reading steps' outputs, final states and gradients, on a ragged batch, with and without W_ih."""
    import rnnlm.nn.sequence as sequence
    lengths = [5, 5, 3, 1, 0]
    packing = Packing.of_lengths(lengths)
    G = {"rnn": 1, "gru": 3, "lstm": 4}[cell]
    p = {k: rng.uniform(-0.8, 0.8, s).astype(dtype) for k, s in cell_param_shapes(cell, E, H).items()}
    if projected:  # the input is x W_ih already (FastRNN's convention); b_ih stays the cell's
        del p["W_ih"]
    x = rng.standard_normal((packing.num_tokens, G * H if projected else E)).astype(dtype)
    state0 = tuple(rng.uniform(-0.5, 0.5, (len(lengths), H)).astype(dtype) for _ in range(CELLS[cell][2]))
    dout = rng.standard_normal((packing.num_tokens, H)).astype(dtype)
    fused = packed_layer_forward(cell, x, state0, p, packing)
    assert fused[1].fused is not None
    fused_back = packed_layer_backward(cell, dout, fused[1], packing)
    monkeypatch.setattr(sequence, "FUSED", {})
    plain = packed_layer_forward(cell, x, state0, p, packing)
    plain_back = packed_layer_backward(cell, dout, plain[1], packing)
    tol = {"rtol": 1e-10, "atol": 1e-12} if dtype == np.float64 else {"rtol": 2e-4, "atol": 2e-5}
    np.testing.assert_allclose(fused[0], plain[0], **tol)
    for a, b in zip(fused[2] + fused_back[2], plain[2] + plain_back[2]):
        np.testing.assert_allclose(a, b, **tol)
    np.testing.assert_allclose(fused_back[0], plain_back[0], **tol)
    assert set(fused_back[1]) == set(plain_back[1])
    for k in plain_back[1]:
        np.testing.assert_allclose(fused_back[1][k], plain_back[1][k], err_msg=k, **tol)
    for truncate in (0, 1, 2, 3):  # truncated: the fused lags against the step pairs' lags
        dx, grads, dstate0 = packed_layer_backward(cell, dout, fused[1], packing, truncate)
        want_dx, want_grads, want_dstate0 = packed_layer_backward(cell, dout, plain[1], packing, truncate)
        np.testing.assert_allclose(dx, want_dx, **tol)
        for a, b in zip(dstate0, want_dstate0):
            np.testing.assert_allclose(a, b, **tol)
        assert set(grads) == set(want_grads)
        for k in want_grads:
            np.testing.assert_allclose(grads[k], want_grads[k], err_msg=f"{k}, truncate {truncate}", **tol)

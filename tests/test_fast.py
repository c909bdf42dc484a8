"""FastRNN against the per-sentence reference: losses, every gradient, padding, round trips, generation."""

import numpy as np
import pytest

from rnnlm.config import ModelConfig
from rnnlm.nn.batching import segment_sum
from rnnlm.models.fast import FastRNN
from rnnlm.models.language_model import LanguageModel, PackedModel
from rnnlm.nn.optim import SparseGradient
from rnnlm.models.reference import RNNNumpy

C, H = 40, 12
LENGTHS = [1, 5, 12, 3, 7, 12, 2, 9, 4, 11]


def corpus(rng, lengths=LENGTHS, vocab=C):
    X = [rng.integers(0, vocab, n) for n in lengths]
    Y = [rng.integers(0, vocab, n) for n in lengths]
    return X, Y


def max_rel_error(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-30))


def reference_sums(ref, X, Y):
    """The oracle: RNNNumpy.bptt summed over the sentences, as a dict."""
    total = {k: np.zeros_like(v) for k, v in ref.params.items()}
    for x, y in zip(X, Y):
        for k, g in zip("UVW", ref.bptt(x, y)):
            total[k] += g
    return ref.calculate_total_loss(X, Y), total


@pytest.mark.parametrize("truncate", [0, 1, 4, None, 1000])
@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-10), (np.float32, 1e-4)])
def test_loss_and_gradients_equal_summed_reference_bptt(rng, truncate, dtype, tol):
    X, Y = corpus(rng)
    ref = RNNNumpy(C, H, bptt_truncate=truncate, seed=1)
    fast = FastRNN.from_reference(ref, dtype=dtype)
    loss, grads = fast.total_loss_and_gradients(X, Y)
    ref_loss, ref_grads = reference_sums(ref, X, Y)
    assert abs(loss - ref_loss) / ref_loss <= tol
    for k in "UVW":
        assert grads[k].shape == ref.params[k].shape
        assert grads[k].dtype == dtype
        assert max_rel_error(grads[k], ref_grads[k]) <= tol, k


def test_truncation_changes_the_gradient(rng):
    # guards the test above against a truncation that is silently ignored
    X, Y = corpus(rng)
    fast = FastRNN(C, H, bptt_truncate=1, seed=2, dtype=np.float64)
    _, short = fast.total_loss_and_gradients(X, Y)
    fast.bptt_truncate = None
    _, full = fast.total_loss_and_gradients(X, Y)
    assert max_rel_error(short["W"], full["W"]) > 1e-3


def test_sparse_u_gradient_equals_dense(rng):
    X, Y = corpus(rng)
    fast = FastRNN(C, H, seed=3, dtype=np.float64)
    _, dense = fast.total_loss_and_gradients(X, Y)
    _, sparse = fast.total_loss_and_gradients(X, Y, sparse=True)
    dU = sparse["U"]
    assert isinstance(dU, SparseGradient) and dU.axis == 1
    seen = np.unique(np.concatenate(X))
    np.testing.assert_array_equal(dU.indices, seen)
    assert dU.values.shape == (H, len(seen))
    np.testing.assert_allclose(dU.to_dense(fast.U.shape), dense["U"], rtol=0, atol=1e-14)
    for k in "VW":
        np.testing.assert_array_equal(sparse[k], dense[k])


def test_segment_sum_matches_add_at(rng):
    keys = rng.integers(0, 9, 50)
    rows = rng.standard_normal((50, 3))
    unique, sums = segment_sum(keys, rows)
    expected = np.zeros((9, 3))
    np.add.at(expected, keys, rows)
    np.testing.assert_array_equal(unique, np.unique(keys))
    np.testing.assert_allclose(sums, expected[unique], atol=1e-12)


@pytest.mark.parametrize("kind", ["zipf", "all distinct", "all equal", "empty"])
def test_segment_sum_runs_of_one_row_and_of_many(rng, kind):
    # a batch's words: a few frequent ones (runs of many rows) and many rare ones (runs of one row)
    n = {"zipf": 300, "all distinct": 40, "all equal": 25, "empty": 0}[kind]
    keys = {"zipf": rng.zipf(1.3, n) % 500, "all distinct": rng.permutation(1000)[:n],
            "all equal": np.full(n, 7), "empty": np.zeros(0, np.int64)}[kind]
    rows = rng.standard_normal((n, 4)).astype(np.float32)
    unique, sums = segment_sum(keys, rows)
    np.testing.assert_array_equal(unique, np.unique(keys))
    assert sums.shape == (len(unique), 4) and sums.dtype == np.float32
    for key, total in zip(unique, sums):
        np.testing.assert_allclose(total, rows[keys == key].astype(np.float64).sum(axis=0), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("truncate", [4, None])
def test_sentences_packed_together_do_not_interact(rng, truncate):
    # batch A alone, vs. A + B minus B alone: B's longer and shorter sentences interleave with A's in
    # the packed (length-sorted, time-major) order, so a step that read another sentence's state or
    # moved an error to another sentence's row would change A's share
    A = corpus(rng, [3, 7, 2, 5])
    B = corpus(rng, [12, 1, 9])
    fast = FastRNN(C, H, bptt_truncate=truncate, seed=4, dtype=np.float64)
    loss_a, g_a = fast.total_loss_and_gradients(*A)
    loss_b, g_b = fast.total_loss_and_gradients(*B)
    loss_ab, g_ab = fast.total_loss_and_gradients(A[0] + B[0], A[1] + B[1])
    assert loss_ab - loss_b == pytest.approx(loss_a, rel=1e-12)
    for k in "UVW":
        assert np.abs(g_a[k]).max() > 1e-3  # a real gradient to compare
        np.testing.assert_allclose(g_ab[k] - g_b[k], g_a[k], rtol=1e-9, atol=1e-12)


def test_states_follow_the_tutorials_recurrence_worked_by_hand(rng):
    # s_t = tanh(U[:, x_t] + W s_{t-1}) with a W that is not symmetric, two sentences of different
    # lengths packed together, each state read back as the window's final state
    fast = FastRNN(C, 5, seed=8, dtype=np.float64)
    assert not np.allclose(fast.W, fast.W.T)
    X = [np.array([3, 17, 0, 29, 8]), np.array([11, 2, 36])]
    states = [np.zeros(5), np.zeros(5)]
    for t in range(5):
        for n, x in enumerate(X):
            if t < len(x):
                states[n] = np.tanh(fast.U[:, x[t]] + fast.W @ states[n])
        prefix = [x[:t + 1] for x in X]
        _, last = fast.window_total_loss(prefix, prefix, None)
        for n in range(2):
            np.testing.assert_allclose(last[n], states[n], rtol=1e-13, atol=1e-15)


def test_single_sentence_batch_and_empty_sentence(rng):
    ref = RNNNumpy(C, H, seed=5)
    fast = FastRNN.from_reference(ref, dtype=np.float64)
    x, y = rng.integers(0, C, 6), rng.integers(0, C, 6)
    loss, grads = fast.total_loss_and_gradients([x, x[:0]], [y, y[:0]])
    assert loss == pytest.approx(ref.calculate_total_loss([x], [y]), rel=1e-12)
    np.testing.assert_allclose(grads["U"], ref.bptt(x, y)[0], atol=1e-12)


def test_reference_round_trip_and_config():
    ref = RNNNumpy(C, H, bptt_truncate=3, seed=6)
    fast = FastRNN.from_reference(ref)
    assert fast.U.dtype == np.float32 and fast.bptt_truncate == 3
    back = fast.to_reference()
    assert isinstance(back, RNNNumpy) and back.U.dtype == np.float64 and back.bptt_truncate == 3
    for k in "UVW":
        np.testing.assert_array_equal(back.params[k], ref.params[k].astype(np.float32))
    exact = FastRNN.from_reference(ref, dtype=np.float64).to_reference()
    for k in "UVW":
        np.testing.assert_array_equal(exact.params[k], ref.params[k])
    assert fast.config == ModelConfig(vocab_size=C, hidden_size=H, bptt_truncate=3, cell="rnn")


def test_defaults_seed_and_params_are_live():
    fast = FastRNN(C, H, seed=7)
    assert fast.U.dtype == np.float32 and fast.bptt_truncate == 4
    assert (fast.U.shape, fast.V.shape, fast.W.shape) == ((H, C), (C, H), (H, H))
    # one seed, one model: the reference's draws cast to float32
    ref = RNNNumpy(C, H, seed=7)
    np.testing.assert_array_equal(fast.V, ref.V.astype(np.float32))
    fast.params["W"][0, 0] = 123.0
    assert fast.W[0, 0] == 123.0
    fast.params["U"] -= 1.0  # in-place update of the live array
    assert fast.U[0, 0] == np.float32(ref.U[0, 0] - 1.0)


def test_step_logits_equal_reference_forward(rng):
    ref = RNNNumpy(C, H, seed=8)
    fast = FastRNN.from_reference(ref, dtype=np.float64)
    x = rng.integers(0, C, 7)
    o, s = ref.forward_propagation(x)
    state = fast.start_state(2)
    assert state.shape == (2, H) and not state.any()
    for t in range(len(x)):
        logits, state = fast.step(state, np.array([x[t], x[t]]))
        assert logits.shape == (2, C)
        np.testing.assert_allclose(state[1], s[t], atol=1e-12)
        probs = np.exp(logits[0] - logits[0].max())
        np.testing.assert_allclose(probs / probs.sum(), o[t], atol=1e-12)


def hand_total_loss(U, V, W, X, Y):
    """sum_n sum_t -log softmax(V s_t)[y_t], written out from the tutorial's equations (no rnnlm code)."""
    total = 0.0
    for x, y in zip(X, Y):
        s = np.zeros(W.shape[0])
        for x_t, y_t in zip(x, y):
            s = np.tanh(U[:, x_t] + W @ s)
            z = V @ s
            total += np.log(np.exp(z - z.max()).sum()) + z.max() - z[y_t]
    return total


def test_the_names_say_sum_or_mean(rng):
    """total_* and calculate_total_loss sum over the M tokens; mean_loss and the tutorial's calculate_loss
    divide by M. Against a hand sum of -log softmax, so a sum/mean mix-up in any of them fails."""
    X, Y = corpus(rng, lengths=[3, 5, 2, 4])
    M = sum(len(y) for y in Y)  # 14 tokens: a mean and a sum differ 14-fold
    ref = RNNNumpy(C, H, bptt_truncate=None, seed=2)
    fast = FastRNN.from_reference(ref, dtype=np.float64)
    twin = tutorial_language_model(fast)  # the same weights as a LanguageModel
    hand = hand_total_loss(ref.U, ref.V, ref.W, X, Y)
    assert ref.calculate_total_loss(X, Y) == pytest.approx(hand, rel=1e-12)
    assert ref.total_loss(X, Y) == pytest.approx(hand, rel=1e-12)
    assert ref.calculate_loss(X, Y) == pytest.approx(hand / M, rel=1e-12)  # the tutorial's mean, kept
    assert fast.total_loss_and_gradients(X, Y)[0] == pytest.approx(hand, rel=1e-12)
    assert fast.total_loss_and_gradients(X, Y)[0] == pytest.approx(ref.calculate_loss(X, Y) * M, rel=1e-12)
    assert fast.total_loss(X, Y) == pytest.approx(hand, rel=1e-12)
    assert fast.mean_loss(X, Y) == pytest.approx(hand / M, rel=1e-12)
    # one (B, T) window from the zero state: the B rows are B sentences of length T
    Xw, Yw = np.stack([x[:2] for x in X]), np.stack([y[:2] for y in Y])
    window = hand_total_loss(ref.U, ref.V, ref.W, Xw, Yw)
    assert fast.window_total_loss(Xw, Yw, None)[0] == pytest.approx(window, rel=1e-12)
    assert fast.window_total_loss_and_gradients(Xw, Yw, None)[0] == pytest.approx(window, rel=1e-12)
    assert twin.total_loss_and_gradients(X, Y)[0] == pytest.approx(hand, rel=1e-12)
    assert twin.mean_loss(X, Y) == pytest.approx(hand / M, rel=1e-12)


@pytest.mark.parametrize("batch_size", [1, 3, 64])
def test_chunked_total_loss_equals_reference(rng, batch_size):
    X, Y = corpus(rng)
    ref = RNNNumpy(C, H, seed=9)
    fast = FastRNN.from_reference(ref)
    expected = ref.calculate_total_loss(X, Y)
    assert fast.total_loss(X, Y, batch_size=batch_size) == pytest.approx(expected, rel=1e-5)
    assert fast.mean_loss(X, Y) == pytest.approx(ref.calculate_loss(X, Y), rel=1e-5)


def test_large_logits_take_the_stable_path(rng):
    # |V s| up to ~60 exceeds the no-shift bound: exp would overflow without the max subtraction
    X, Y = corpus(rng, [6, 3])
    ref = RNNNumpy(C, H, bptt_truncate=None, seed=10)
    ref.V *= 200.0
    fast = FastRNN.from_reference(ref)
    loss, grads = fast.total_loss_and_gradients(X, Y)
    ref_loss, ref_grads = reference_sums(ref, X, Y)
    assert np.isfinite(loss) and loss == pytest.approx(ref_loss, rel=1e-4)
    assert max_rel_error(grads["V"], ref_grads["V"]) <= 1e-4


def test_softmax_chunks_do_not_change_results(rng):
    X, Y = corpus(rng)
    whole = FastRNN(C, H, seed=11, dtype=np.float64)
    chunked = FastRNN(C, H, seed=11, dtype=np.float64, softmax_rows=5)
    loss_w, g_w = whole.total_loss_and_gradients(X, Y)
    loss_c, g_c = chunked.total_loss_and_gradients(X, Y)
    assert loss_c == pytest.approx(loss_w, rel=1e-12)
    for k in "UVW":
        np.testing.assert_allclose(g_c[k], g_w[k], rtol=1e-10, atol=1e-13)


def test_memory_is_bounded_by_batch_times_vocabulary(rng):
    # corpus x C would be 20,000 x 2,000 float32 = 160 MB; the chunked loss may hold only a block
    import tracemalloc
    vocab, sentences, length = 2000, 2000, 10
    X = [rng.integers(0, vocab, length) for _ in range(sentences)]
    Y = [rng.integers(0, vocab, length) for _ in range(sentences)]
    fast = FastRNN(vocab, 8, seed=0, softmax_rows=256)
    tracemalloc.start()
    try:
        fast.total_loss(X, Y, batch_size=64)
        fast.total_loss_and_gradients(X[:500], Y[:500], sparse=True)  # 5,000 tokens in one call
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8e6, f"peak {peak / 1e6:.1f} MB"  # a 256 x 2000 block is 2 MB


# --------------------------------------------------------------------- one loss body for FastRNN and LanguageModel

def tutorial_language_model(fast):
    """A LanguageModel in the tutorial's shape holding `fast`'s weights: one Elman layer, E = H,
    embedding U^T, W_ih = I, W_hh = W^T, W_out = V^T (W_class = V_class^T), every bias 0."""
    m = LanguageModel(fast.word_dim, fast.hidden_dim, cell="rnn", bptt_truncate=fast.bptt_truncate, dtype=fast.dtype,
                      seed=0, softmax=fast.config.softmax, num_classes=fast.config.num_classes)
    p = m.params
    p["embedding"][...] = fast.U.T
    p["l0.W_ih"][...] = np.eye(fast.hidden_dim)
    # copies in the memory order of FastRNN's own views (W.T of a C-ordered W is Fortran-ordered):
    # BLAS may sum a one-row product in another order for another layout, and the comparison is exact
    views = {"l0.W_hh": fast.W.T, "W_out": fast.V.T}
    if fast.classes is not None:
        views["W_class"] = fast.V_class.T
    for name, view in views.items():
        p[name] = view.copy(order="K")
    for name in p:
        if name.startswith("b") or ".b_" in name:
            p[name][...] = 0
    return m


TWIN_NAMES = {"U": "embedding", "W": "l0.W_hh", "V": "W_out", "V_class": "W_class"}


@pytest.mark.parametrize("softmax", ["full", "class"])
@pytest.mark.parametrize("truncate", [0, 2, None])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fast_rnn_and_its_language_model_twin_give_identical_numbers(rng, softmax, truncate, dtype):
    """Both run PackedModel's one loss-and-gradient body, so in the tutorial's shape (x I and + 0 are
    exact) loss, gradients and carried state agree bit for bit, dense, sparse and streamed."""
    X, Y = corpus(rng)
    fast = FastRNN(C, H, bptt_truncate=truncate, seed=3, dtype=dtype, softmax=softmax,
                   num_classes=5 if softmax == "class" else None)
    twin = tutorial_language_model(fast)
    for sparse in (False, True):
        loss_f, grads_f = fast.total_loss_and_gradients(X, Y, sparse=sparse)
        loss_m, grads_m = twin.total_loss_and_gradients(X, Y, sparse=sparse)
        assert loss_f == loss_m
        assert set(grads_f) == set(fast.params)
        for name, g in grads_f.items():
            if isinstance(g, SparseGradient):  # dU's columns are the embedding gradient's rows
                other = grads_m["embedding"]
                np.testing.assert_array_equal(g.indices, other.indices)
                np.testing.assert_array_equal(g.values, other.values.T)
                assert (g.axis, other.axis) == (1, 0)
            else:
                assert g.dtype == fast.dtype
                np.testing.assert_array_equal(g, grads_m[TWIN_NAMES[name]].T, err_msg=name)
    state = rng.standard_normal((3, H)).astype(dtype)  # one 12-word sentence among 3: its last steps are one row
    loss_f, grads_f, next_f = fast.window_total_loss_and_gradients(X[:3], Y[:3], state)
    loss_m, grads_m, next_m = twin.window_total_loss_and_gradients(X[:3], Y[:3], ((state,),))
    assert loss_f == loss_m
    np.testing.assert_array_equal(next_f, next_m[0][0])
    for name, g in grads_f.items():
        np.testing.assert_array_equal(g, grads_m[TWIN_NAMES[name]].T, err_msg=name)


def test_the_loss_and_gradient_body_is_written_once():
    """Issue 22: FastRNN and LanguageModel define hooks only; the body is PackedModel's."""
    for cls in (FastRNN, LanguageModel):
        assert issubclass(cls, PackedModel)
        assert "_total_loss_and_gradients" not in vars(cls), cls.__name__
        assert cls._total_loss_and_gradients is PackedModel._total_loss_and_gradients

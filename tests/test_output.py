"""The one output layer (full and class-based softmax) against independent float64 computations."""

import numpy as np
import pytest

from rnnlm.io import checkpoint as ckpt
from rnnlm.io import kinds
from rnnlm.errors import ConfigError, ModelFileError
from rnnlm.models.fast import FastRNN
from rnnlm.nn.gradcheck import check_gradients
from rnnlm.models.language_model import LanguageModel
from rnnlm.nn.numerics import log_softmax, softmax
from rnnlm.nn.output import ClassSoftmax, frequency_classes, softmax_cross_entropy
from rnnlm.models.reference import RNNNumpy
from rnnlm.data.vocab import Vocabulary


def plain_softmax_loss(h, y, W, b):
    """The textbook computation in float64: loss, dh, dW, db of -sum log softmax(h W + b)[y]."""
    h, W = h.astype(np.float64), W.astype(np.float64)
    logits = h @ W + (0.0 if b is None else b.astype(np.float64))
    loss = -float(np.sum(log_softmax(logits)[np.arange(len(y)), y]))
    d = softmax(logits)
    d[np.arange(len(y)), y] -= 1.0
    return loss, d @ W.T, h.T @ d, d.sum(axis=0)


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("rows, threads", [(1024, 1), (7, 1), (7, 2), (5, 3), (1, 4)])
def test_full_softmax_equals_the_textbook_computation(rng, bias, rows, threads):
    M, H, C = 29, 6, 23
    h = rng.standard_normal((M, H))
    W = rng.standard_normal((H, C))
    b = rng.standard_normal(C) if bias else None
    y = rng.integers(0, C, M)
    loss, dh, dW, db = softmax_cross_entropy(h, y, W, b, rows=rows, threads=threads)
    e_loss, e_dh, e_dW, e_db = plain_softmax_loss(h, y, W, b)
    assert loss == pytest.approx(e_loss, rel=1e-12)
    np.testing.assert_allclose(dh, e_dh, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dW, e_dW, rtol=1e-10, atol=1e-12)
    if bias:
        np.testing.assert_allclose(db, e_db, rtol=1e-10, atol=1e-12)
    else:
        assert db is None
    assert softmax_cross_entropy(h, y, W, b, gradients=False, rows=rows, threads=threads)[0] == pytest.approx(
        e_loss, rel=1e-12)


@pytest.mark.parametrize("threads", [1, 2])
def test_logits_beyond_float32_exp_overflow_take_the_shifted_path(rng, threads):
    # logits up to ~500: exp overflows float32 above 88.7, so only the max-shifted softmax survives
    M, H, C = 40, 5, 30
    h = rng.uniform(-1, 1, (M, H)).astype(np.float32)
    W = (rng.standard_normal((H, C)) * 150).astype(np.float32)
    b = (rng.standard_normal(C) * 50).astype(np.float32)
    y = rng.integers(0, C, M)
    assert np.abs(h.astype(np.float64) @ W + b).max() > 200
    loss, dh, dW, db = softmax_cross_entropy(h, y, W, b, rows=16, threads=threads)
    e_loss, e_dh, e_dW, e_db = plain_softmax_loss(h, y, W, b)
    assert np.isfinite(loss) and loss == pytest.approx(e_loss, rel=1e-4)
    np.testing.assert_allclose(dh, e_dh, rtol=1e-3, atol=1e-3 * np.abs(e_dh).max())
    np.testing.assert_allclose(dW, e_dW, rtol=1e-3, atol=1e-3 * np.abs(e_dW).max())


def test_fast_rnn_with_huge_logits_equals_the_reference(rng):
    ref = RNNNumpy(30, 8, bptt_truncate=None, seed=10)
    ref.V *= 1000.0  # |V s| reaches the hundreds
    fast = FastRNN.from_reference(ref)
    X = [rng.integers(0, 30, n) for n in (6, 3, 5)]
    Y = [rng.integers(0, 30, n) for n in (6, 3, 5)]
    loss, _ = fast.total_loss_and_gradients(X, Y)
    assert np.isfinite(loss) and loss == pytest.approx(ref.calculate_total_loss(X, Y), rel=1e-4)


def test_frequency_classes_hand_worked():
    # shares 0.5 | 0.2 | 0.3: the first word fills class 0, the second class 1, the rest class 2
    np.testing.assert_array_equal(frequency_classes([50, 20, 10, 10, 5, 5], 3), [0, 1, 2, 2, 2, 2])
    # sorted by count, whatever the index order
    np.testing.assert_array_equal(frequency_classes([5, 10, 50, 20, 5, 10], 3), [2, 2, 0, 1, 2, 2])
    # one word holds all the mass: the tail still fills every class
    np.testing.assert_array_equal(frequency_classes([100, 0, 0, 0], 3), [0, 1, 2, 2])
    np.testing.assert_array_equal(frequency_classes([1, 1, 1, 1], 4), [0, 1, 2, 3])
    assert set(frequency_classes(1.0 / np.arange(1, 101), 10)) == set(range(10))


def class_probabilities(h, classes, W, b, Wc, bc):
    """P(w | h) = P(c(w) | h) P(w | c(w), h), written out word by word in float64."""
    pc = softmax(h @ Wc + bc)
    out = np.zeros((h.shape[0], W.shape[1]))
    for w in range(W.shape[1]):
        c = classes[w]
        same = np.flatnonzero(classes == c)
        pw = softmax(h @ W[:, same] + b[same])[:, list(same).index(w)]
        out[:, w] = pc[:, c] * pw
    return out


def test_class_softmax_is_the_factorised_probability(rng):
    M, H, C, K = 13, 4, 11, 3
    word_class = frequency_classes(rng.integers(1, 100, C), K)
    layer = ClassSoftmax(word_class, K)
    h = rng.standard_normal((M, H))
    W, b = rng.standard_normal((H, C)), rng.standard_normal(C)
    Wc, bc = rng.standard_normal((H, K)), rng.standard_normal(K)
    y = rng.integers(0, C, M)
    p = class_probabilities(h, word_class, W, b, Wc, bc)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-12)  # exactly normalised
    loss = layer.loss(h, y, W, b, Wc, bc)[0]
    assert loss == pytest.approx(-np.sum(np.log(p[np.arange(M), y])), rel=1e-12)
    np.testing.assert_allclose(np.exp(layer.log_probs(h, W, b, Wc, bc)), p, rtol=1e-10)
    assert layer.loss(h, y, W, b, Wc, bc, gradients=False)[0] == pytest.approx(loss, rel=1e-12)


CLASS_CASES = [("rnn", {}), ("gru", {}), ("lstm", {"peephole": True}), ("jordan", {})]


@pytest.mark.parametrize("cell, options", CLASS_CASES)
def test_class_softmax_gradients_match_finite_differences(cell, options, rng):
    X = [rng.integers(0, 9, n) for n in (5, 3, 1)]
    Y = [rng.integers(0, 9, n) for n in (5, 3, 1)]
    m = LanguageModel(9, 4, cell=cell, embed_size=3, seed=1, dtype=np.float64, softmax="class", num_classes=3,
                      counts=rng.integers(1, 50, 9), **options)
    for k in ("b_out", "b_class"):
        m.params[k][...] = rng.uniform(-0.5, 0.5, m.params[k].shape)
    _, grads = m.total_loss_and_gradients(X, Y)
    assert {"W_class", "b_class"} <= set(grads)
    report = check_gradients(lambda: m.total_loss_and_gradients(X, Y)[0], m.params, grads, threshold=1e-6)
    assert report, str(report)


def test_fast_rnn_class_softmax_gradients_and_step(rng):
    X = [rng.integers(0, 12, n) for n in (6, 2, 4)]
    Y = [rng.integers(0, 12, n) for n in (6, 2, 4)]
    fast = FastRNN(12, 5, bptt_truncate=None, seed=2, dtype=np.float64, softmax="class", num_classes=4)
    assert fast.V_class.shape == (4, 5) and set(fast.params) == {"U", "V", "W", "V_class"}
    loss, grads = fast.total_loss_and_gradients(X, Y)
    report = check_gradients(lambda: fast.total_loss_and_gradients(X, Y)[0], fast.params, grads, threshold=1e-6)
    assert report, str(report)
    # step's scores are log-probabilities: summing them along the sentences gives the loss
    total = 0.0
    for x, y in zip(X, Y):
        state = fast.start_state(1)
        for a, b in zip(x, y):
            scores, state = fast.step(state, [a])
            np.testing.assert_allclose(np.exp(scores).sum(), 1.0, rtol=1e-12)
            total -= scores[0, b]
    assert total == pytest.approx(loss, rel=1e-12)
    assert fast.total_loss(X, Y, batch_size=2) == pytest.approx(loss, rel=1e-12)


def test_class_softmax_has_no_torch_counterpart():
    with pytest.raises(ConfigError, match="class-based softmax"):
        LanguageModel(20, 4, softmax="class").torch_state_dict()


def test_class_softmax_config_is_validated():
    with pytest.raises(ConfigError, match="--softmax class"):
        LanguageModel(20, 4, num_classes=3)
    with pytest.raises(ConfigError, match="exceed"):
        LanguageModel(20, 4, softmax="class", num_classes=21)
    assert LanguageModel(20, 4, softmax="class").classes.num_classes == 4  # round(sqrt(20))


def _vocabulary(C):
    words = [f"w{i}" for i in range(C - 3)] + ["SENTENCE_START", "SENTENCE_END", "UNKNOWN_TOKEN"]
    return Vocabulary(index_to_word=tuple(words), counts=tuple(range(C, 0, -1)))


@pytest.mark.parametrize("kind", ["fast-rnn", "language-model"])
def test_class_model_file_round_trip(tmp_path, rng, kind):
    C = 15
    vocabulary = _vocabulary(C)
    config = LanguageModel(C, 4, softmax="class", num_classes=4).config
    if kind == "language-model":
        config = LanguageModel(C, 4, cell="gru", softmax="class", num_classes=4).config
    model = kinds.build_model(config, seed=3, counts=np.array(vocabulary.counts)[::-1], kind=kind)
    path = tmp_path / "m.npz"
    ckpt.save_model(path, model, vocabulary)
    back = ckpt.load_model(path).model
    assert back.config == model.config and back.config.softmax == "class"
    np.testing.assert_array_equal(back.classes.word_class, model.classes.word_class)
    X = [rng.integers(0, C, 5)]
    assert back.total_loss(X, X) == pytest.approx(model.total_loss(X, X), rel=1e-6)
    # a damaged class table is refused, not trusted
    arrays = dict(np.load(path))
    arrays["output/word_class"] = np.full(C, 9)
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(ModelFileError, match="word_class"):
        ckpt.load_model(tmp_path / "bad.npz")


COMMENTS = __import__("pathlib").Path(__file__).resolve().parent / "fixtures" / "comments.csv"


@pytest.mark.parametrize("model_options", [[], ["--cell", "gru", "--embed-size", "6"]])
def test_cli_trains_evaluates_and_generates_with_the_class_softmax(tmp_path, capsys, model_options):
    from rnnlm import cli
    out = tmp_path / "m.npz"
    assert cli.main(["train", str(COMMENTS), "--out", str(out), "--epochs", "1", "--vocab-size", "60", "--hidden", "8",
                     "--no-progress", "--softmax", "class", "--classes", "5", "--threads", "2", *model_options]) == 0
    assert "class softmax (5 classes)" in capsys.readouterr().out
    config = ckpt.load_model(out).model.config
    assert (config.softmax, config.num_classes) == ("class", 5)
    assert cli.main(["evaluate", str(COMMENTS), "--model", str(out), "--threads", "1"]) == 0
    assert "perplexity" in capsys.readouterr().out
    assert cli.main(["generate", "--model", str(out), "-n", "2", "--seed", "1"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 2


@pytest.mark.parametrize("argv, message", [
    (["--classes", "5"], "--softmax class"),
    (["--softmax", "class", "--classes", "0"], "number of classes"),
    (["--threads", "-1"], "threads must be"),
])
def test_cli_refuses_impossible_output_options(tmp_path, capsys, argv, message):
    from rnnlm import cli
    out = tmp_path / "m.npz"
    assert cli.main(["train", str(COMMENTS), "--out", str(out), "--no-progress", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1 and not out.exists()


def test_class_softmax_with_logits_beyond_float32_exp_overflow(rng):
    # each class's own bound must trigger the shift: logits in the hundreds, float32
    M, H, C, K = 30, 5, 20, 4
    word_class = frequency_classes(rng.integers(1, 100, C), K)
    layer = ClassSoftmax(word_class, K)
    h = rng.uniform(-1, 1, (M, H))
    W, b = rng.standard_normal((H, C)) * 150, rng.standard_normal(C) * 50
    Wc, bc = rng.standard_normal((H, K)) * 150, rng.standard_normal(K) * 50
    y = rng.integers(0, C, M)
    expected = 0.0  # in log space, token by token: the probabilities themselves underflow float64
    for m in range(M):
        c = word_class[y[m]]
        same = list(np.flatnonzero(word_class == c))
        expected -= log_softmax(h[m] @ Wc + bc)[c] + log_softmax(h[m] @ W[:, same] + b[same])[same.index(y[m])]
    f32 = [a.astype(np.float32) for a in (h, W, b, Wc, bc)]
    loss = layer.loss(f32[0], y, *f32[1:], gradients=False)[0]
    assert np.isfinite(loss) and loss == pytest.approx(expected, rel=1e-3)


def textbook_class_loss(h, y, word_class, W, b, Wc, bc):
    """loss, dh, dW, db, dWc, dbc of the class softmax from plain float64 softmaxes, class by class."""
    loss, dh, dWc, dbc = plain_softmax_loss(h, word_class[y], Wc, bc)
    dW, db = np.zeros(W.shape), np.zeros(b.shape)
    for c in np.unique(word_class):
        tokens = np.flatnonzero(word_class[y] == c)
        same = np.flatnonzero(word_class == c)
        if len(tokens) == 0:
            continue
        position = np.searchsorted(same, y[tokens])
        part = plain_softmax_loss(h[tokens], position, W[:, same], b[same])
        loss += part[0]
        dh[tokens] += part[1]
        dW[:, same], db[same] = part[2], part[3]
    return loss, dh, dW, db, dWc, dbc


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("layout", ["consecutive", "scattered"])
def test_class_softmax_loss_and_gradients_equal_the_textbook_computation(rng, layout, threads):
    # classes of consecutive word ids (a frequency-sorted vocabulary: weights sliced, not gathered) or of
    # scattered ids; one-word classes (no loss, no gradient) and a class no target falls in
    M, H, C, K = 40, 5, 30, 8
    counts = np.sort(rng.integers(1, 1000, C))[::-1] if layout == "consecutive" else rng.integers(1, 1000, C)
    counts[np.argsort(-counts)[:2]] = counts.sum() // 4  # two frequent words: classes of their own
    word_class = frequency_classes(counts, K)
    sizes = np.bincount(word_class, minlength=K)
    assert np.sum(sizes == 1) >= 2 and np.sum(sizes > 1) >= 4
    layer = ClassSoftmax(word_class, K)
    empty = np.flatnonzero(sizes > 1)[-1]  # a class no target falls in
    y = rng.choice(np.flatnonzero(word_class != empty), M)
    h = rng.uniform(-1, 1, (M, H)).astype(np.float32)
    W, b = (rng.standard_normal((H, C)) * 0.5).astype(np.float32), rng.standard_normal(C).astype(np.float32)
    Wc, bc = (rng.standard_normal((H, K)) * 0.5).astype(np.float32), rng.standard_normal(K).astype(np.float32)
    got = layer.loss(h, y, W, b, Wc, bc, rows=7, threads=threads)
    expected = textbook_class_loss(h, y, word_class, W, b, Wc, bc)
    assert got[0] == pytest.approx(expected[0], rel=1e-5)
    for g, e in zip(got[1:], expected[1:]):
        assert g.shape == e.shape
        np.testing.assert_allclose(g, e, rtol=1e-4, atol=1e-5)
    assert not np.any(got[2][:, word_class == empty]) and not np.any(got[3][word_class == empty])
    assert not np.any(got[2][:, np.isin(word_class, np.flatnonzero(sizes == 1))])
    # W in FastRNN's layout (V^T, a transposed view): the same numbers
    again = layer.loss(h, y, np.asfortranarray(W), b, Wc, bc, rows=7, threads=threads)
    for g, e in zip(again, got):
        np.testing.assert_array_equal(g, e)


def test_class_softmax_bound_covers_every_token_and_word_of_a_class(rng):
    # one class's tokens: most with tiny states, one whose logits overflow float32's exp; a bound taken
    # from any but the largest state (or word) would skip the shift and return inf
    M, H, C, K = 12, 4, 6, 2
    word_class = np.array([0, 0, 0, 1, 1, 1])
    layer = ClassSoftmax(word_class, K)
    h = rng.uniform(-1, 1, (M, H)) * 1e-3
    h[5] = rng.uniform(-1, 1, H)
    W = rng.standard_normal((H, C)) * 100
    W[:, 1] *= 1e-3  # one small word beside large ones
    y = np.full(M, 2)
    Wc = np.zeros((H, K))
    f32 = [a.astype(np.float32) for a in (h, W, Wc)]
    loss = layer.loss(f32[0], y, f32[1], None, f32[2], None)[0]
    expected = -sum(log_softmax(h[m] @ W[:, :3])[2] for m in range(M)) + M * np.log(2)
    assert np.isfinite(loss) and loss == pytest.approx(expected, rel=1e-4)


@pytest.mark.parametrize("softmax", ["class", "full"])
def test_loss_and_gradients_do_not_depend_on_blas_threads_or_output_workers(rng, softmax):
    # the result the thread policy must not change: BLAS at 1 or 2 threads, 1 to 3 output workers
    # (softmax_rows = 4, so the full softmax's rows really are split among the workers)
    threadpoolctl = pytest.importorskip("threadpoolctl")
    X = [rng.integers(0, 20, n) for n in (5, 3, 7, 2, 6)]
    options = {"num_classes": 4} if softmax == "class" else {}
    makers = [lambda: FastRNN(20, 4, seed=0, softmax=softmax, dtype=np.float64, **options),
              lambda: LanguageModel(20, 4, cell="gru", seed=0, softmax=softmax, dtype=np.float64, **options)]
    for make in makers:
        results = []
        for blas, workers in [(1, 1), (2, 1), (2, 2), (2, 3)]:
            m = make()
            m.softmax_rows, m.threads = 4, workers
            with threadpoolctl.threadpool_limits(blas, user_api="blas"):
                results.append(m.total_loss_and_gradients(X, X))
        loss, grads = results[0]
        for other_loss, other_grads in results[1:]:
            assert other_loss == pytest.approx(loss, rel=1e-12)
            for name, g in grads.items():
                np.testing.assert_allclose(other_grads[name], g, rtol=1e-10, atol=1e-13, err_msg=name)


def per_class_loop_loss(layer, h, y, W, b, Wc, bc):
    """The class softmax as it was computed before the within-class work was batched: one
    `softmax_cross_entropy` per class over that class's tokens and words."""
    loss, dh, dWc, dbc = softmax_cross_entropy(h, layer.word_class[y], Wc, bc)
    dW, db = np.zeros(W.shape, dtype=h.dtype), np.zeros(b.shape, dtype=h.dtype)
    for c, words in enumerate(layer.members):
        tokens = np.flatnonzero(layer.word_class[y] == c)
        if len(tokens) == 0 or len(words) == 1:
            continue
        part = softmax_cross_entropy(h[tokens], layer.position[y[tokens]], W[:, words], b[words])
        loss += part[0]
        dh[tokens] += part[1]
        dW[:, words], db[words] = part[2], part[3]
    return loss, dh, dW, db, dWc, dbc


@pytest.mark.parametrize("M, C, K", [(1, 12, 3), (50, 40, 6), (300, 800, 28), (600, 2000, 45)])
def test_batched_class_softmax_equals_the_per_class_loop(rng, M, C, K):
    # random inputs, Zipf-like counts (classes from one word to hundreds), words in a shuffled order
    counts = rng.permutation(np.round(1e5 / np.arange(1, C + 1)) + 1)
    layer = ClassSoftmax(frequency_classes(counts, K), K)
    H = 16
    h = rng.uniform(-1, 1, (M, H)).astype(np.float32)
    W, b = (rng.standard_normal((H, C)) * 0.5).astype(np.float32), rng.standard_normal(C).astype(np.float32)
    Wc, bc = (rng.standard_normal((H, K)) * 0.5).astype(np.float32), rng.standard_normal(K).astype(np.float32)
    y = rng.choice(C, M, p=counts / counts.sum())
    got = layer.loss(h, y, W, b, Wc, bc)
    expected = per_class_loop_loss(layer, h, y, W, b, Wc, bc)
    assert got[0] == pytest.approx(expected[0], rel=1e-5)
    for g, e in zip(got[1:], expected[1:]):
        assert g.shape == e.shape and g.dtype == e.dtype
        np.testing.assert_allclose(g, e, rtol=1e-4, atol=1e-5)
    assert layer.loss(h, y, W, b, Wc, bc, gradients=False)[0] == pytest.approx(got[0], rel=1e-6)

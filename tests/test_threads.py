"""The thread policy (rnnlm.nn.threads): BLAS held to one thread inside rnnlm's work, the user's setting outside.

No timing here: the tests record threadpoolctl.threadpool_info() from inside the computation (a
model function monkeypatched to look) and check the count, and that it is restored afterwards.
"""

import numpy as np
import pytest

threadpoolctl = pytest.importorskip("threadpoolctl")

from rnnlm.config import ComputeConfig, TrainConfig  # noqa: E402
from rnnlm.data.trees import EncodedTree  # noqa: E402
from rnnlm.data.vocab import Vocabulary  # noqa: E402
from rnnlm.errors import ConfigError  # noqa: E402
from rnnlm.models import fast, tree_lstm  # noqa: E402
from rnnlm.models import language_model as models  # noqa: E402
from rnnlm.models.fast import FastRNN  # noqa: E402
from rnnlm.models.generate import generate_stream  # noqa: E402
from rnnlm.models.language_model import LanguageModel  # noqa: E402
from rnnlm.nn import output, threads  # noqa: E402
from rnnlm.training.loop import train  # noqa: E402
from rnnlm.training.stream import train_stream  # noqa: E402
from rnnlm.training.trees import TreeTrainConfig, evaluate, train_trees  # noqa: E402

USER = 2  # the BLAS threads the "user" sets around rnnlm's calls

FOUR = EncodedTree(word=np.array([1, 2, -1, 3, 4, -1, -1]), left=np.array([-1, -1, 0, -1, -1, 3, 2]),
                   right=np.array([-1, -1, 1, -1, -1, 4, 5]), label=np.array([3, 1, 2, 4, 0, 3, 4]))


def blas_threads():
    counts = [p["num_threads"] for p in threadpoolctl.threadpool_info() if p["user_api"] == "blas"]
    if not counts:
        pytest.skip("no BLAS library that threadpoolctl can see")
    return max(counts)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture
def seen(monkeypatch):
    """A list that `spy(module, name)` fills with the BLAS threads seen at each call of module.name."""
    blas_threads()  # skips where threadpoolctl sees no BLAS

    class Record(list):
        pass
    record = Record()

    def spy(module, name):
        real = getattr(module, name)

        def looking(*args, **kwargs):
            record.append(blas_threads())
            return real(*args, **kwargs)
        monkeypatch.setattr(module, name, looking)
    record.spy = spy
    return record


def user_setting():
    return threadpoolctl.threadpool_limits(USER, user_api="blas")


@pytest.mark.parametrize("threads_option", [None, 1, 0, 3])
@pytest.mark.parametrize("make", [lambda t: FastRNN(20, 4, seed=0, threads=t),
                                  lambda t: LanguageModel(20, 4, cell="rnn", seed=0, threads=t),
                                  lambda t: LanguageModel(20, 4, cell="lstm", seed=0, threads=t),
                                  lambda t: FastRNN(20, 4, seed=0, softmax="class", num_classes=4, threads=t),
                                  lambda t: LanguageModel(20, 4, cell="gru", seed=0, softmax="class", num_classes=4,
                                                          threads=t)],
                         ids=["fast", "lm-rnn", "lm-lstm", "fast-class", "lm-gru-class"])
def test_a_loss_computation_runs_with_one_blas_thread_and_restores_the_users_setting(rng, seen, make,
                                                                                      threads_option):
    seen.spy(fast, "stack_forward")
    seen.spy(models, "stack_forward")
    seen.spy(output, "_bucket_loss")  # the class softmax's within-class products
    X = [rng.integers(0, 20, n) for n in (5, 3)]
    model = make(threads_option)
    with user_setting():
        model.total_loss_and_gradients(X, X)
        model.window_total_loss(X, X, None)
        model.total_loss(X, X)
        assert blas_threads() == USER
    assert seen and set(seen) == {1}


def test_training_runs_enter_the_blas_limit_once_not_once_per_step(rng, seen, monkeypatch):
    seen.spy(fast, "stack_forward")
    entered = []
    controller = threads._blas_controller()

    class Counting:
        def limit(self, **kwargs):
            entered.append(kwargs)
            return controller.limit(**kwargs)
    monkeypatch.setattr(threads, "_controller", Counting())
    X = [rng.integers(0, 20, n) for n in (5, 3, 7, 2, 6, 4)]
    with user_setting():
        state = train(FastRNN(20, 4, seed=0), X, X, TrainConfig(epochs=2, batch_size=2, valid_fraction=0.0))
        assert blas_threads() == USER
    assert state.epoch == 2
    assert len(seen) >= 6 and set(seen) == {1}  # every batch of both epochs, one thread
    assert entered == [{"limits": 1, "user_api": "blas"}]


def test_stream_training_and_generation_run_with_one_blas_thread(rng, seen):
    seen.spy(models, "stack_forward")
    seen.spy(output, "output_scores")  # generation's per-step scores
    ids = rng.integers(0, 7, size=61)
    model = LanguageModel(7, 5, cell="gru", seed=0)
    config = TrainConfig(epochs=1, batch_size=2, seq_length=5, valid_fraction=0.0)

    with user_setting():
        train_stream(model, ids[:50], ids[50:], config)
        assert blas_threads() == USER
        vocabulary = Vocabulary.build([["a", "b", "c", "d"]], vocabulary_size=7)
        generate_stream(LanguageModel(len(vocabulary), 5, seed=0), vocabulary, np.random.default_rng(0), length=3)
        assert blas_threads() == USER
    assert seen and set(seen) == {1} and len(seen) > 3


def test_tree_training_and_evaluation_run_with_one_blas_thread(seen):
    seen.spy(tree_lstm, "fold_total_loss_and_gradients")
    seen.spy(tree_lstm, "fold_states")
    model = tree_lstm.TreeLSTM(tree_lstm.TreeLSTMConfig(vocab_size=6, embed_size=3, hidden_size=4), seed=0)
    with user_setting():
        train_trees(model, [FOUR, FOUR], TreeTrainConfig(vocabulary_size=6, epochs=1, batch_size=1,
                                                         word_dropout=0.0), dev_trees=[FOUR])
        evaluate(model, [FOUR])
        assert blas_threads() == USER
    assert len(seen) >= 4 and set(seen) == {1}


def test_the_output_layer_called_directly_runs_with_one_blas_thread(rng, seen):
    # as a notebook measuring it does (notebook 10)
    seen.spy(output, "exp_bound")
    seen.spy(output, "_bucket_loss")
    h = rng.standard_normal((6, 3)).astype(np.float32)
    W = rng.standard_normal((3, 8)).astype(np.float32)
    y = rng.integers(0, 8, 6)
    layer = output.ClassSoftmax(output.frequency_classes(output.zipf_counts(8), 3), 3)
    with user_setting():
        output.softmax_cross_entropy(h, y, W, threads=1)
        layer.loss(h, y, W, None, W[:, :3], None)
        assert blas_threads() == USER
    assert len(seen) >= 3 and set(seen) == {1}


def test_blas_threads_none_leaves_blas_alone_except_where_the_workers_need_one(rng, seen, monkeypatch):
    # the escape hatch the benchmark uses to measure the old behaviour
    monkeypatch.setattr(threads, "BLAS_THREADS", None)
    seen.spy(fast, "stack_forward")
    X = [rng.integers(0, 20, n) for n in (5, 3)]
    with user_setting():
        FastRNN(20, 4, seed=0, threads=1).total_loss_and_gradients(X, X)  # plain loop: the user's threads
        FastRNN(20, 4, seed=0, threads=2).total_loss_and_gradients(X, X)  # workers: one BLAS thread each
    assert seen == [USER, 1]


def test_scopes_nest_and_an_inner_scope_with_another_count_is_undone():
    blas_threads()
    with user_setting():
        with threads.blas_held():
            assert blas_threads() == 1
            with threads.blas_held(2):
                assert blas_threads() == 2
                with threads.one_blas_thread():
                    assert blas_threads() == 1
                assert blas_threads() == 2
            assert blas_threads() == 1
        assert blas_threads() == USER
    assert not threads._scopes


def test_an_error_inside_leaves_the_users_setting(rng):
    blas_threads()
    with user_setting():
        with pytest.raises(ValueError):
            with threads.blas_held():
                raise ValueError
        assert blas_threads() == USER and not threads._scopes


def test_threads_zero_means_one_worker_per_core_and_the_default_is_automatic(rng, monkeypatch):
    monkeypatch.setattr(threads, "available_cores", lambda: 3)
    assert threads.resolve_threads(0) == 3 and threads.resolve_threads(1) == 1 and threads.resolve_threads(5) == 5
    # automatic: one per core from AUTO_MIN_WORK multiply-adds per product (M x C x H), else the plain loop
    assert threads.resolve_threads(None) == 1
    assert threads.resolve_threads(None, work=threads.AUTO_MIN_WORK - 1) == 1
    assert threads.resolve_threads(None, work=threads.AUTO_MIN_WORK) == 3
    assert threads.resolve_threads(None, work=64 * 45 * 8000 * 100) == 3  # the benchmark's FastRNN
    used = []
    real_pool = output.pool
    monkeypatch.setattr(output, "pool", lambda n: used.append(n) or real_pool(n))
    X = [rng.integers(0, 30, 12) for _ in range(3)]
    FastRNN(30, 4, seed=0, softmax_rows=8, threads=0).total_loss_and_gradients(X, X)
    assert used == [3]
    FastRNN(30, 4, seed=0, softmax_rows=8).total_loss_and_gradients(X, X)  # the default, a small layer: no pool
    FastRNN(30, 4, seed=0, softmax_rows=8, threads=1).total_loss_and_gradients(X, X)
    assert used == [3]
    monkeypatch.setattr(threads, "AUTO_MIN_WORK", 1)
    FastRNN(30, 4, seed=0, softmax_rows=8).total_loss_and_gradients(X, X)  # automatic, "large": the pool
    assert used == [3, 3]


def test_compute_config_threads_default_is_automatic():
    assert ComputeConfig().threads is None and ComputeConfig(threads=0).threads == 0
    with pytest.raises(ConfigError):
        ComputeConfig(threads=-1)

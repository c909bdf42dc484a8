"""Training loops: the halving rule, the tutorial's train_with_sgd, minibatch train, resume, divergence."""

import json
import math

import numpy as np
import pytest

from rnnlm.config import TrainConfig
from rnnlm.errors import RnnlmError
from rnnlm.models.fast import FastRNN
from rnnlm.models.reference import RNNNumpy
from rnnlm.training.loop import EpochRecord, TrainEvent, TrainingState, split_train_valid, train
from rnnlm.training.tutorial import train_with_sgd
from rnnlm.training.schedules import HalvingSchedule, PlateauSchedule

C, H = 30, 10


def patterned_corpus(rng, sentences=60, vocab=C):
    """Learnable sentences: each word is mostly followed by (word + 1) mod vocab."""
    X, Y = [], []
    for _ in range(sentences):
        n = int(rng.integers(2, 10))
        words = (int(rng.integers(0, vocab)) + np.arange(n + 1)) % vocab
        noise = rng.random(n + 1) < 0.1
        words[noise] = rng.integers(0, vocab, int(noise.sum()))
        X.append(words[:-1].astype(np.int64))
        Y.append(words[1:].astype(np.int64))
    return X, Y


# --------------------------------------------------------------------- HalvingSchedule

def test_halving_schedule_halves_only_when_the_loss_rises():
    schedule = HalvingSchedule(1.0)
    rates = [schedule.update(loss) for loss in [5.0, 4.0, 4.0, 4.5, 4.2, 4.3, 4.4, 3.0]]
    #         first  fell  equal  rose  fell  rose  rose  fell
    assert rates == [1.0, 1.0, 1.0, 0.5, 0.5, 0.25, 0.125, 0.125]
    assert schedule.previous_loss == 3.0


def test_halving_schedule_compares_with_the_previous_loss_not_the_best():
    # a rule that compares with the best loss keeps halving during a slow recovery
    schedule = HalvingSchedule(0.1, previous_loss=2.0)
    assert schedule.update(3.0) == 0.05
    assert [schedule.update(v) for v in [2.9, 2.8, 2.7]] == [0.05, 0.05, 0.05]


# --------------------------------------------------------------------- PlateauSchedule

def plateau(**overrides):
    settings = dict(learning_rate=1.0, min_lr=0.1, patience=2, threshold=0.01, smoothing=0.0, factor=0.5)
    settings.update(overrides)
    return PlateauSchedule(**settings)


def test_plateau_rule_waits_for_patience_and_ignores_gains_below_the_threshold():
    schedule = plateau()
    # smoothing 0: the rule sees the losses themselves. 4.0 is the best; 3.99 is < 1% better, so no gain
    rates = [schedule.update(v) for v in [5.0, 4.0, 3.99, 4.1, 3.0, 3.1, 2.99, 2.5]]
    assert rates == [1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.25, 0.25]
    assert schedule.best == 2.5 and schedule.bad_evaluations == 0


def test_plateau_rule_never_goes_below_its_floor():
    schedule = plateau(min_lr=0.3)
    rates = [schedule.update(5.0) for _ in range(40)]  # a flat loss: a plateau that never ends
    assert min(rates) == 0.3 and rates[-1] == 0.3
    assert rates[:6] == [1.0, 1.0, 0.5, 0.5, 0.3, 0.3]


def test_plateau_rule_smoothing_absorbs_one_epoch_noise_that_collapses_the_halving_rule():
    # a falling trend with alternating noise: every other evaluation rises
    losses = [5.0 - 0.05 * e + (0.08 if e % 2 else 0.0) for e in range(30)]
    halving = HalvingSchedule(1.0)
    assert [halving.update(v) for v in losses][-1] == 0.5 ** 15  # halves at every rise
    smoothed = PlateauSchedule(1.0, min_lr=0.01, patience=2, threshold=0.001, smoothing=0.5)
    assert [smoothed.update(v) for v in losses][-1] == 1.0  # the smoothed loss keeps falling


def test_plateau_rule_acts_on_a_real_plateau_with_noise():
    rng = np.random.default_rng(0)
    losses = 3.0 + 0.05 * rng.standard_normal(40)  # no trend at all
    schedule = PlateauSchedule(1.0, min_lr=0.01, patience=2, threshold=0.001, smoothing=0.5)
    rates = [schedule.update(v) for v in losses]
    assert rates[-1] < 0.1 and min(rates) >= 0.01


# --------------------------------------------------------------------- train_with_sgd

def test_train_with_sgd_is_the_tutorials_loop_and_returns_pairs(rng):
    X, Y = patterned_corpus(rng, sentences=15)
    model = RNNNumpy(C, H, seed=0)
    seen = []
    history = train_with_sgd(model, X, Y, learning_rate=0.05, nepoch=6, evaluate_loss_after=2,
                             callback=seen.append)
    # the same run written out: every sentence in order, theta -= rate * bptt, the rate of the last evaluation
    twin = RNNNumpy(C, H, seed=0)
    for epoch in range(6):
        rate = history[epoch // 2].learning_rate
        for x, y in zip(X, Y):
            for p, g in zip((twin.U, twin.V, twin.W), twin.bptt(x, y)):
                p -= rate * g
    for k in "UVW":
        np.testing.assert_allclose(model.params[k], twin.params[k], rtol=1e-12, atol=1e-14, err_msg=k)
    # evaluations before epochs 0, 2, 4 and after the last
    assert [h.epoch for h in history] == [0, 2, 4, 6]
    assert [n for n, _ in history] == [0, 30, 60, 90]
    assert seen == history
    assert history[0][1] == history[0].loss
    assert history[0].loss == pytest.approx(math.log(C), rel=0.05)
    assert history[-1].loss < history[0].loss - 0.3
    assert history[-1].loss == pytest.approx(model.calculate_loss(X, Y))


def test_train_with_sgd_halves_the_rate_when_the_loss_rises(rng):
    X, Y = patterned_corpus(rng, sentences=10)
    model = RNNNumpy(C, H, seed=0)
    losses = iter([3.0, 3.5, 3.2, 3.6])
    model.calculate_loss = lambda X, Y: next(losses)  # a scripted loss curve
    rates_used = []
    model.sgd_step = lambda x, y, lr: rates_used.append(lr)
    history = train_with_sgd(model, X, Y, learning_rate=0.1, nepoch=3, evaluate_loss_after=1)
    assert [h.learning_rate for h in history] == [0.1, 0.05, 0.05, 0.025]
    assert rates_used == [0.1] * 10 + [0.05] * 20


# --------------------------------------------------------------------- split

def test_split_train_valid_is_deterministic_and_disjoint(rng):
    X, Y = patterned_corpus(rng, sentences=20)
    a = split_train_valid(X, Y, 0.25, seed=3)
    b = split_train_valid(X, Y, 0.25, seed=3)
    c = split_train_valid(X, Y, 0.25, seed=4)
    assert len(a[0]) == 15 and len(a[2]) == 5
    ids = lambda part: {id(x) for x in part}  # noqa: E731
    assert ids(a[0]) | ids(a[2]) == ids(X) and not ids(a[0]) & ids(a[2])
    assert ids(a[2]) == ids(b[2]) and ids(a[2]) != ids(c[2])
    assert all(y is Y[[id(v) for v in X].index(id(x))] for x, y in zip(a[2], a[3]))
    assert split_train_valid(X, Y, 0.0, seed=3)[2] == []


# --------------------------------------------------------------------- minibatch train

def small_config(**overrides):
    settings = dict(epochs=4, optimizer="sgd", learning_rate=0.5, batch_size=8, valid_fraction=0.0, seed=1, clip=5.0)
    settings.update(overrides)
    return TrainConfig(**settings)


def test_train_lowers_the_loss_and_reports_progress(rng):
    X, Y = patterned_corpus(rng)
    Xt, Yt, Xv, Yv = split_train_valid(X, Y, 0.2, seed=0)
    model = FastRNN(C, H, seed=0)
    before = model.mean_loss(Xv, Yv)
    events = []
    state = train(model, Xt, Yt, small_config(epochs=5, learning_rate=2.0), Xv, Yv, callback=events.append)
    assert state.epoch == 5 and len(state.history) == 5
    assert state.history[-1].valid_loss < before - 0.5
    assert state.history[-1].train_loss < state.history[0].train_loss
    assert state.history[-1].valid_loss == pytest.approx(model.mean_loss(Xv, Yv), rel=1e-6)
    record = state.history[-1]
    assert record.valid_perplexity == pytest.approx(math.exp(record.valid_loss))
    assert record.tokens == sum(len(y) for y in Yt)
    batches = [e for e in events if e.kind == "batch"]
    epochs = [e for e in events if e.kind == "epoch"]
    assert len(batches) == 5 * math.ceil(len(Xt) / 8) and batches[0].num_batches == math.ceil(len(Xt) / 8)
    assert all(isinstance(e, TrainEvent) and e.epochs == 5 for e in events)
    assert sum(e.tokens for e in batches) == 5 * record.tokens
    assert [e.record for e in epochs] == state.history and epochs[-1].state is not None


def held_out_config(**overrides):
    """small_config's run with TrainConfig's own valid_fraction (0.1) instead of 0."""
    settings = dict(epochs=2, optimizer="sgd", learning_rate=0.5, batch_size=8, seed=1, clip=5.0)
    settings.update(overrides)
    return TrainConfig(**settings)


def test_train_holds_out_the_configs_valid_fraction_when_no_validation_set_is_given(rng):
    X, Y = patterned_corpus(rng)  # 60 sentences
    config = held_out_config()
    assert config.valid_fraction == 0.1
    Xt, Yt, Xv, Yv = split_train_valid(X, Y, 0.1, config.seed)  # the split rnnlm train makes
    assert len(Xv) == 6
    model = FastRNN(C, H, seed=0)
    state = train(model, X, Y, config)
    assert all(r.valid_loss is not None for r in state.history)
    assert all(r.tokens == sum(len(y) for y in Yt) < sum(len(y) for y in Y) for r in state.history)
    assert state.history[-1].valid_loss == pytest.approx(model.mean_loss(Xv, Yv), rel=1e-6)
    # exactly the run of a caller who split first
    twin = FastRNN(C, H, seed=0)
    twin_state = train(twin, Xt, Yt, config, Xv, Yv)
    assert [(r.train_loss, r.valid_loss) for r in state.history] == \
        [(r.train_loss, r.valid_loss) for r in twin_state.history]
    for k in "UVW":
        np.testing.assert_array_equal(model.params[k], twin.params[k])


def test_the_held_out_part_steers_training_only_when_big_enough(rng):
    X, Y = patterned_corpus(rng)
    held = sum(len(y) for y in split_train_valid(X, Y, 0.1, 1)[3])
    assert held < TrainConfig().min_valid_tokens
    small = train(FastRNN(C, H, seed=0), X, Y, held_out_config())
    assert [r.monitored for r in small.history] == ["train", "train"] and small.best_epoch is None
    enough = train(FastRNN(C, H, seed=0), X, Y, held_out_config(min_valid_tokens=held))
    assert [r.monitored for r in enough.history] == ["validation", "validation"] and enough.best_epoch is not None


def test_an_explicit_validation_set_wins_over_valid_fraction(rng):
    X, Y = patterned_corpus(rng)
    all_tokens = sum(len(y) for y in Y)
    model = FastRNN(C, H, seed=0)
    given = train(model, X, Y, held_out_config(), X[:5], Y[:5])  # valid_fraction 0.1, but a set is given
    assert all(r.tokens == all_tokens for r in given.history)
    assert given.history[-1].valid_loss == pytest.approx(model.mean_loss(X[:5], Y[:5]), rel=1e-6)
    none = train(FastRNN(C, H, seed=0), X, Y, held_out_config(), X_valid=[], Y_valid=[])  # empty: none
    assert all(r.tokens == all_tokens and r.valid_loss is None for r in none.history)


def test_valid_fraction_zero_trains_on_every_sentence(rng):
    X, Y = patterned_corpus(rng)
    model = FastRNN(C, H, seed=0)
    state = train(model, X, Y, held_out_config(valid_fraction=0.0))
    assert all(r.tokens == sum(len(y) for y in Y) and r.valid_loss is None for r in state.history)
    same = FastRNN(C, H, seed=0)
    train(same, X, Y, held_out_config(), X_valid=[], Y_valid=[])
    for k in "UVW":
        np.testing.assert_array_equal(model.params[k], same.params[k])


def test_resume_after_round_trip_reproduces_the_uninterrupted_run(rng):
    X, Y = patterned_corpus(rng)
    config = small_config(epochs=4, optimizer="adam", learning_rate=0.05)
    full = FastRNN(C, H, seed=0)
    full_state = train(full, X, Y, config)

    # the same run, stopped after epoch 2 with a checkpoint of parameters and state
    saved = {}

    def checkpoint(event):
        if event.kind == "epoch" and event.epoch == 2:
            stored = event.state.to_dict()
            saved["metadata"] = json.loads(json.dumps(stored["metadata"]))  # as a model file would hold it
            saved["arrays"] = {k: np.array(v) for k, v in stored["arrays"].items()}
            saved["params"] = {k: v.copy() for k, v in first.params.items()}

    first = FastRNN(C, H, seed=0)
    train(first, X, Y, small_config(epochs=2, optimizer="adam", learning_rate=0.05), callback=checkpoint)
    resumed = FastRNN(C, H, seed=99)
    for k, v in saved["params"].items():
        resumed.params[k][...] = v
    state = TrainingState.from_dict({"metadata": saved["metadata"], "arrays": saved["arrays"]})
    assert state.epoch == 2
    final = train(resumed, X, Y, config, state=state)
    assert [r.train_loss for r in final.history] == [r.train_loss for r in full_state.history]
    assert final.learning_rate == full_state.learning_rate
    for k in "UVW":
        np.testing.assert_array_equal(resumed.params[k], full.params[k])


def test_halving_in_train_uses_the_monitored_loss(rng):
    X, Y = patterned_corpus(rng, sentences=20)
    model = FastRNN(C, H, seed=0)
    valid_losses = iter([400.0, 500.0, 450.0])  # per word x 10 tokens: 40, 50, 45

    model.total_loss = lambda X, Y: next(valid_losses)
    config = small_config(epochs=3, learning_rate=0.4, lr_schedule="halving", min_valid_tokens=10)
    state = train(model, X, Y, config, X[:2], [np.arange(5), np.arange(5)])
    assert [r.valid_loss for r in state.history] == [40.0, 50.0, 45.0]
    assert [r.learning_rate for r in state.history] == [0.4, 0.4, 0.2]
    assert state.learning_rate == 0.2


def test_trained_fast_model_converts_to_the_same_reference_loss(rng):
    X, Y = patterned_corpus(rng, sentences=30)
    model = FastRNN(C, H, seed=0)
    train(model, X, Y, small_config(epochs=2))
    assert model.to_reference().calculate_total_loss(X, Y) == pytest.approx(model.total_loss(X, Y), rel=1e-5)


def test_same_seed_same_run(rng):
    X, Y = patterned_corpus(rng, sentences=30)
    runs = []
    for _ in range(2):
        model = FastRNN(C, H, seed=0)
        state = train(model, X, Y, small_config(epochs=2, momentum=0.9))
        runs.append(([r.train_loss for r in state.history], model.W.copy()))
    assert runs[0][0] == runs[1][0]
    np.testing.assert_array_equal(runs[0][1], runs[1][1])
    other = FastRNN(C, H, seed=0)
    other_state = train(other, X, Y, small_config(epochs=2, momentum=0.9, seed=2))
    assert [r.train_loss for r in other_state.history] != runs[0][0]


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_divergence_raises_with_the_learning_rate_in_the_message(rng):
    X, Y = patterned_corpus(rng, sentences=30)
    # float64 and an absurd rate: parameters near 1e200 give a gradient norm whose square overflows
    model = FastRNN(C, H, seed=0, dtype=np.float64)
    with pytest.raises(RnnlmError, match=r"gradient norm .* at learning rate 1e\+200"):
        train(model, X, Y, small_config(epochs=3, learning_rate=1e200, clip=None))


def test_nan_loss_raises(rng):
    X, Y = patterned_corpus(rng, sentences=10)
    model = FastRNN(C, H, seed=0)
    model.V[3, 0] = np.nan
    with pytest.raises(RnnlmError, match=r"epoch 1, batch 0: the batch loss is nan.*learning rate 0.5"):
        train(model, X, Y, small_config())


def test_training_state_round_trips_through_json_and_arrays():
    record = EpochRecord(epoch=1, train_loss=3.0, valid_loss=None, learning_rate=0.5, seconds=1.5,
                         tokens=100, tokens_per_second=66.7)
    state = TrainingState(epoch=1, learning_rate=0.25, history=[record], previous_loss=3.0,
                          optimizer_state={"U/velocity": np.ones((2, 3), np.float32), "steps": np.array(7)})
    stored = state.to_dict()
    metadata = json.loads(json.dumps(stored["metadata"]))
    back = TrainingState.from_dict({"metadata": metadata, "arrays": stored["arrays"]})
    assert back.epoch == 1 and back.learning_rate == 0.25 and back.previous_loss == 3.0
    assert back.history == [record] and back.history[0].valid_perplexity is None
    np.testing.assert_array_equal(back.optimizer_state["U/velocity"], np.ones((2, 3)))
    assert back.optimizer_state["U/velocity"].dtype == np.float32


class DenseGradients:
    """Any model: only params, total_loss_and_gradients and total_loss, here with dense gradients."""

    def __init__(self, model):
        self.model, self.params = model, model.params

    def total_loss_and_gradients(self, X, Y, sparse=True):
        return self.model.total_loss_and_gradients(X, Y, sparse=False)

    def total_loss(self, X, Y):
        return self.model.total_loss(X, Y)


def test_train_takes_any_model_with_dense_or_sparse_gradients(rng):
    X, Y = patterned_corpus(rng, sentences=30)
    sparse, dense = FastRNN(C, H, seed=0), FastRNN(C, H, seed=0)
    a = train(sparse, X, Y, small_config(epochs=2), X[:5], Y[:5])
    b = train(DenseGradients(dense), X, Y, small_config(epochs=2), X[:5], Y[:5])
    assert [r.valid_loss for r in a.history] == [r.valid_loss for r in b.history]
    np.testing.assert_array_equal(sparse.U, dense.U)

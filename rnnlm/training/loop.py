"""The minibatch training loop every model shares (the tutorial's per-sentence loop is `rnnlm.training.tutorial`).

Public API
----------
split_train_valid(X, Y, valid_fraction, seed) -> (X_train, Y_train, X_valid, Y_valid)
train(model, X, Y, config, X_valid=None, Y_valid=None, callback=None, state=None) -> TrainingState
run_training(model, data, config, valid=None, callback=None, state=None, clock=time.perf_counter) -> TrainingState
    the loop itself, over any batch source (SentenceBatches here, rnnlm.training.stream.StreamBatches,
    rnnlm.training.trees.TreeBatches); LossSource: what the language models' sources share.
monitors_validation(config, valid_tokens): whether a held-out part is big enough to steer training.
EpochRecord, TrainingState (to_dict / from_dict: JSON-able metadata + flat arrays), TrainEvent,
TrainingDiverged.

`train` works for any model with `.params` (dict of arrays), `.total_loss_and_gradients(X, Y,
sparse=True)` returning the summed loss and a gradient dict keyed like `params` (dense
arrays or `SparseGradient`s), and `.total_loss(X, Y)`: `FastRNN` and `LanguageModel` alike.

One minibatch step:

    loss, g = model.total_loss_and_gradients(batch)   # summed over the batch's M tokens
    g = clip(g / M, config.clip)                        # mean per word (the batch source divides), clipped
    optimizer.step(params, g)                           # then every parameter is checked finite

The loop is the Tree-LSTM's too (`rnnlm.training.trees.train_trees`): its batch source returns the
mean gradient over the batch's trees plus weight decay, and its development trees score by accuracy
(`higher_is_better`).

Per-word losses are pooled over predicted tokens (sum of losses / number of targets),
never averaged per batch, and perplexity = exp(per-word loss). The epoch's train loss
is the pooled loss of its batches, each measured just before its own update (free, but
slightly behind the final parameters); the validation loss is a full evaluation after
the epoch. Every `config.evaluate_loss_after` epochs the monitored loss goes through the
learning-rate rule: the validation loss when the held-out part predicts at least
config.min_valid_tokens tokens (else its loss is too noisy to steer by), otherwise the
train loss. The rule is `PlateauSchedule` unless config.lr_schedule is "halving" (both in
`rnnlm.training.schedules`).

Batches come from `bucketed_batches` with the generator `np.random.default_rng([seed,
epoch])`, so epoch e's order depends only on (seed, e): resuming from a saved state
at epoch e (or at batch b of it, after a time limit) reproduces the uninterrupted run.
Progress is reported through `callback(TrainEvent)`, never printed.
"""

import math
import time
from dataclasses import asdict, dataclass, field, replace

import numpy as np

from rnnlm.nn.batching import bucketed_batches
from rnnlm.errors import ConfigError, RnnlmError
from rnnlm.nn.numerics import first_parameter_fault, perplexity
from rnnlm.nn.optim import clip_global_norm, make_optimizer, scale_gradients
from rnnlm.nn.threads import holds_blas
from rnnlm.training.best import Best
from rnnlm.training.schedules import make_schedule


# --------------------------------------------------------------------- records and state

def _perplexity(loss):
    return None if loss is None else perplexity(loss)


@dataclass(frozen=True)
class EpochRecord:
    """What one epoch of `train` achieved. Losses are per word (pooled over tokens).

    learning_rate: the rate used during this epoch; next_learning_rate: the rate the
    schedule chose after it (None in files written before the plateau rule). tokens:
    training targets seen. seconds: wall time of the epoch's batches (the validation pass
    not included); tokens_per_second = tokens / seconds. first_batch, batches, num_batches:
    the record covers batches [first_batch, batches) of num_batches; complete is False when
    the time limit stopped the epoch early (a resumed run finishes it in a second record).
    monitored: "validation" or "train", the loss the schedule and the kept model follow.
    """

    epoch: int
    train_loss: float
    valid_loss: float | None
    learning_rate: float
    seconds: float
    tokens: int
    tokens_per_second: float
    next_learning_rate: float | None = None
    first_batch: int = 0
    batches: int | None = None
    num_batches: int | None = None
    complete: bool = True
    monitored: str = "train"

    @property
    def train_perplexity(self):
        return _perplexity(self.train_loss)

    @property
    def valid_perplexity(self):
        return _perplexity(self.valid_loss)


@dataclass
class TrainingState:
    """Everything needed to resume `train`: pass it back as `state=` (the model's parameters travel separately).

    epoch: epochs completed. batch: batches of epoch `epoch + 1` already done (0 unless the
    time limit stopped mid-epoch). learning_rate: the rate for the next batch.
    previous_loss: the halving rule's last evaluated loss; schedule: the plateau rule's
    memory (`PlateauSchedule.state_dict()`). optimizer_state: the optimizer's
    `state_dict()`, a flat dict of arrays. carry: a stream trainer's hidden state at the
    stopping point (flat dict of arrays). best_epoch, best_loss: the epoch with the lowest
    monitored validation loss so far (None without a usable validation set).
    data: what the caller needs to recognise its data on resume (JSON-able, e.g. a corpus
    fingerprint); `train` passes it through untouched.
    """

    epoch: int = 0
    learning_rate: float = 0.0
    history: list = field(default_factory=list)
    optimizer_state: dict = field(default_factory=dict)
    previous_loss: float | None = None
    schedule: dict | None = None
    batch: int = 0
    carry: dict = field(default_factory=dict)
    best_epoch: int | None = None
    best_loss: float | None = None
    data: dict = field(default_factory=dict)

    def to_dict(self):
        """{"metadata": JSON-able dict, "arrays": flat {name: ndarray}}: no pickle needed to store it.

        The carried stream state goes with the optimizer's arrays under the prefix "carry/".
        """
        metadata = {"epoch": self.epoch, "learning_rate": self.learning_rate,
                    "previous_loss": self.previous_loss, "schedule": self.schedule, "batch": self.batch,
                    "best_epoch": self.best_epoch, "best_loss": self.best_loss, "data": self.data,
                    "history": [asdict(r) for r in self.history]}
        arrays = {k: np.asarray(v) for k, v in self.optimizer_state.items()}
        arrays.update({f"{CARRY_PREFIX}{k}": np.asarray(v) for k, v in self.carry.items()})
        return {"metadata": metadata, "arrays": arrays}

    @classmethod
    def from_dict(cls, data):
        """Inverse of `to_dict` (accepts the arrays as read back from an .npz)."""
        meta = data["metadata"]
        arrays = data.get("arrays", {})
        optional = lambda key, kind: None if meta.get(key) is None else kind(meta[key])  # noqa: E731
        return cls(epoch=int(meta["epoch"]), learning_rate=float(meta["learning_rate"]),
                   previous_loss=optional("previous_loss", float), schedule=meta.get("schedule"),
                   batch=int(meta.get("batch", 0)), best_epoch=optional("best_epoch", int),
                   best_loss=optional("best_loss", float), data=dict(meta.get("data") or {}),
                   history=[EpochRecord(**r) for r in meta.get("history", [])],
                   optimizer_state={k: np.array(v) for k, v in arrays.items() if not k.startswith(CARRY_PREFIX)},
                   carry={k[len(CARRY_PREFIX):]: np.array(v) for k, v in arrays.items() if k.startswith(CARRY_PREFIX)})

    def restarted(self, learning_rate):
        """This state with a new learning rate and the schedule's memory forgotten (resume with --learning-rate)."""
        return replace(self, learning_rate=float(learning_rate), previous_loss=None, schedule=None)


CARRY_PREFIX = "carry/"


@dataclass(frozen=True)
class TrainEvent:
    """A progress report from `train`, passed to `callback`.

    kind "batch": epoch, batch (0-based), num_batches, loss (this batch's per-word loss,
        before its update), tokens (its predicted words), tokens_per_second (this batch),
        learning_rate.
    kind "epoch": epoch, record (its `EpochRecord`), state (a `TrainingState` to checkpoint),
        worse_than_uniform: after the first epoch of a fresh run, the loss (validation, else
        training measured after the epoch's updates) exceeds log C, the loss of a uniform guess:
        the learning rate is likely too large.
    epochs is the total number of epochs in the run, for progress bars.
    """

    kind: str
    epoch: int
    epochs: int
    batch: int | None = None
    num_batches: int | None = None
    loss: float | None = None
    tokens: int | None = None
    tokens_per_second: float | None = None
    learning_rate: float | None = None
    record: EpochRecord | None = None
    state: TrainingState | None = None
    worse_than_uniform: bool = False
    uniform_loss: float | None = None


# --------------------------------------------------------------------- data for the loop

def split_train_valid(X, Y, valid_fraction, seed):
    """Hold out round(valid_fraction x S) of the S sentences (at least 1 if valid_fraction > 0).

    The choice depends only on (seed, S); both parts keep the corpus order.
    Returns (X_train, Y_train, X_valid, Y_valid) as lists.
    """
    if not 0 <= valid_fraction < 1:
        raise RnnlmError(f"validation fraction must be in [0, 1), got {valid_fraction!r}")
    S = len(X)
    n_valid = 0 if valid_fraction == 0 else min(S - 1, max(1, round(valid_fraction * S)))
    if n_valid <= 0:
        return list(X), list(Y), [], []
    held = np.zeros(S, dtype=bool)
    held[np.random.default_rng(seed).permutation(S)[:n_valid]] = True
    return ([X[i] for i in np.flatnonzero(~held)], [Y[i] for i in np.flatnonzero(~held)],
            [X[i] for i in np.flatnonzero(held)], [Y[i] for i in np.flatnonzero(held)])


def monitors_validation(config, valid_tokens):
    """True when a held-out part of `valid_tokens` targets is big enough to drive the schedule and the kept model."""
    return valid_tokens > 0 and valid_tokens >= config.min_valid_tokens


class LossSource:
    """What the language models' batch sources share: a held-out part scores by its per-word loss
    (lower is better), and a fresh run is warned when it ends its first epoch worse than a uniform guess."""

    higher_is_better = False

    def score(self, model):
        return self.total_loss(model) / max(self.num_tokens, 1)

    def uniform_loss(self, model):
        return math.log(model.config.vocab_size) if hasattr(model, "config") else None


class SentenceBatches(LossSource):
    """The sentence trainer's data: length-bucketed minibatches, epoch e's order from rng([seed, e]).

    The protocol `run_training` uses (`rnnlm.training.stream.StreamBatches` and
    `rnnlm.training.trees.TreeBatches` have the same): num_tokens; plan(epoch) -> list of batch
    keys; begin_epoch(model, epoch, carry); batch(model, key) -> (summed loss, the gradient to step
    on, i.e. the mean per target (None: nothing to learn from), targets); carry() -> flat dict of
    arrays to resume mid-epoch; uniform_loss(model) -> the per-target loss of a uniform guess (None:
    no warning); total_loss(model) -> summed loss over every target (used when uniform_loss is not None).
    A validation source has num_tokens, score(model) and higher_is_better (`LossSource`).
    """

    def __init__(self, X, Y, batch_size, seed):
        self.X, self.Y = list(X), list(Y)
        self.batch_size, self.seed = batch_size, seed
        self.lengths = np.array([len(y) for y in self.Y], dtype=np.int64)
        self.num_tokens = int(self.lengths.sum())

    def plan(self, epoch):
        return bucketed_batches(self.lengths, self.batch_size, rng=np.random.default_rng([self.seed, epoch]))

    def begin_epoch(self, model, epoch, carry):
        pass  # sentences start from the zero state: nothing is carried between batches

    def batch(self, model, index):
        tokens = int(self.lengths[index].sum())
        if tokens == 0:
            return 0.0, None, 0  # a batch of empty sentences predicts nothing
        loss, grads = model.total_loss_and_gradients([self.X[i] for i in index], [self.Y[i] for i in index], sparse=True)
        return loss, scale_gradients(grads, 1.0 / tokens), tokens

    def carry(self):
        return {}

    def total_loss(self, model):
        return model.total_loss(self.X, self.Y)


# --------------------------------------------------------------------- minibatch training

class TrainingDiverged(RnnlmError):
    """A loss or gradient norm became NaN or infinite, or a parameter left the valid range
    (`rnnlm.nn.numerics.parameter_fault`); nothing was saved after it."""


def _diverged(what, value, learning_rate, norm, epoch, batch=None):
    where = f"epoch {epoch}" + ("" if batch is None else f", batch {batch}")
    what = what if value is None else f"{what} is {value}"  # value None: `what` is the whole phrase
    return TrainingDiverged(f"training diverged at {where}: {what}, gradient norm {norm:.4g} at "
                            f"learning rate {learning_rate:g}; lower the learning rate or set a clip norm")


def train(model, X, Y, config, X_valid=None, Y_valid=None, callback=None, state=None):
    """Minibatch training of whole sentences with a `TrainConfig`; returns the final `TrainingState`.

    model: see the module docstring. X, Y: training sentences, lists of (T_n,) int arrays.
    X_valid, Y_valid: held-out sentences. Not given (None): `train` holds out
        config.valid_fraction of X, Y itself with `split_train_valid(X, Y, config.valid_fraction,
        config.seed)`, the split `rnnlm train` makes (the same sentences on every call with
        the same seed, so a resumed run keeps them), trains on the rest and validates on those
        (the default 0.1 holds out 10%; 0 trains on every sentence without validation). Given,
        they are used as they are and X, Y is trained on whole; an empty list means no validation.
        Either way the held-out part steers the learning-rate rule and the kept model only when
        it predicts at least config.min_valid_tokens tokens (`monitors_validation`).
    callback: called with a `TrainEvent` after every batch and every epoch.
    state: a `TrainingState` to resume from (epoch state.epoch + 1 onwards, with its
        learning rate and optimizer state); config.epochs is the total, not the remainder.
    Raises TrainingDiverged (an RnnlmError) if a loss or gradient norm becomes NaN or infinite,
    or a parameter stops being valid (`rnnlm.nn.numerics.parameter_fault`: NaN, infinite or beyond
    +-1e6): it is checked after every update, so no callback ever sees (or saves) such a model.
    """
    if X_valid is None:
        X, Y, X_valid, Y_valid = split_train_valid(X, Y, config.valid_fraction, config.seed)
    has_valid = len(X_valid) > 0
    valid = SentenceBatches(X_valid, Y_valid, config.batch_size, config.seed) if has_valid else None
    return run_training(model, SentenceBatches(X, Y, config.batch_size, config.seed), config, valid,
                        callback=callback, state=state)


@holds_blas
def run_training(model, data, config, valid=None, callback=None, state=None, clock=time.perf_counter):
    """The loop behind `train`, `rnnlm.training.stream.train_stream` and `rnnlm.training.trees.train_trees`.

    data, valid: objects with the `SentenceBatches` protocol (valid may be None).
    After each epoch: the validation loss, the schedule's update (every
    config.evaluate_loss_after epochs, on the monitored loss), the best epoch, and an
    "epoch" event whose state the caller saves. config.time_limit: after that many seconds
    the run stops at the next batch boundary and ends as after an epoch, with an incomplete
    record and a state that resumes at the following batch. clock: the time limit's and the
    records' seconds (called once at the start, twice per epoch and once after each batch).
    """
    optimizer, schedule, state = _restore(config, state)
    fresh = not state.history  # the uniform-guess warning is for the first epoch of a new run only
    valid_tokens = valid.num_tokens if valid is not None else 0
    monitored = "validation" if monitors_validation(config, valid_tokens) else "train"
    uniform = data.uniform_loss(model)
    run_started = clock()  # the time limit counts from here, across epochs

    for epoch in range(state.epoch + 1, config.epochs + 1):
        plan = data.plan(epoch)
        first = _first_batch(state, epoch, len(plan))
        rate = optimizer.learning_rate
        data.begin_epoch(model, epoch, state.carry if first else None)
        done = _train_epoch(model, data, config, optimizer, callback, epoch, plan, first, (run_started, clock))
        valid_loss = _valid_loss(model, valid, done, monitored, rate, epoch)
        if done.complete and epoch % config.evaluate_loss_after == 0:  # a cut-short epoch is not a whole measure
            optimizer.learning_rate = schedule.update(valid_loss if monitored == "validation" else done.train_loss)
        record = EpochRecord(epoch=epoch, train_loss=float(done.train_loss),
                             valid_loss=None if valid_loss is None else float(valid_loss),
                             learning_rate=rate, seconds=done.seconds, tokens=done.tokens,
                             tokens_per_second=done.tokens / max(done.seconds, 1e-9),
                             next_learning_rate=optimizer.learning_rate, first_batch=first, batches=done.batches,
                             num_batches=len(plan), complete=done.complete, monitored=monitored)
        best = Best(state.best_epoch, state.best_loss)
        if monitored == "validation":  # without a usable validation set no epoch is "best"
            best = best.after(epoch, valid_loss, higher_is_better=valid.higher_is_better)
        worse = False
        if fresh and uniform is not None:
            fresh = False
            worse = _loss_after_epoch(model, data, valid_loss, done) > uniform
        state = _state_after(state, record, optimizer, schedule, data, best)
        if callback is not None:
            callback(TrainEvent("epoch", epoch, config.epochs, record=record, state=state,
                                worse_than_uniform=worse, uniform_loss=uniform))
        if _out_of_time(config, run_started, clock()):
            break
    return state


def _restore(config, state):
    """(optimizer, schedule, state) to train on with: fresh ones, or the stored state's, resumed exactly.

    The state is copied (its history and optimizer arrays), so the caller's object is never changed."""
    optimizer = make_optimizer(config.optimizer, config.learning_rate, config.momentum)
    if state is None:
        state = TrainingState(epoch=0, learning_rate=float(config.learning_rate))
    else:
        optimizer.load_state_dict(state.optimizer_state)
        state = replace(state, history=list(state.history), optimizer_state=dict(state.optimizer_state))
    optimizer.learning_rate = state.learning_rate
    schedule = make_schedule(config, state.learning_rate, state.schedule, state.previous_loss)
    return optimizer, schedule, state


def _first_batch(state, epoch, num_batches):
    """The batch `epoch` starts at: where a time limit stopped it (the first epoch of a resumed run), else 0."""
    first = state.batch if epoch == state.epoch + 1 else 0
    if first >= num_batches > 0 or first < 0:
        raise ConfigError(f"the training state resumes epoch {epoch} at batch {first}, but the epoch has "
                          f"{num_batches} batches: the model file is damaged, or was trained on other data")
    return first


def _out_of_time(config, run_started, now):
    return config.time_limit is not None and now - run_started >= config.time_limit


@dataclass
class _EpochPass:
    """What one pass over an epoch's batches (all, or up to the time limit) added up to.

    loss, tokens: summed over the batches that predicted something; late_loss, late_tokens:
    the same over the second half of the pass (measured after most of its updates); batches:
    the batch index the pass stopped before; seconds: its wall time."""

    first: int
    num_batches: int
    batches: int
    loss: float = 0.0
    tokens: int = 0
    late_loss: float = 0.0
    late_tokens: int = 0
    seconds: float = 0.0

    @property
    def complete(self):
        return self.batches == self.num_batches

    @property
    def train_loss(self):
        return self.loss / max(self.tokens, 1)


def _train_epoch(model, data, config, optimizer, callback, epoch, plan, first, timing):
    """Batches plan[first:] of `epoch`, one update each, stopping early at the time limit; returns an `_EpochPass`.

    timing: (the run's start, clock); the clock is read once after each batch (a batch's time runs from
    the previous reading, so it includes the previous batch's callback)."""
    (run_started, clock), rate = timing, optimizer.learning_rate
    done = _EpochPass(first=first, num_batches=len(plan), batches=first)
    started = batch_started = clock()
    for b in range(first, len(plan)):
        loss, grads, tokens = data.batch(model, plan[b])
        done.batches = b + 1
        if grads is not None:
            _update(model, optimizer, config, loss, grads, epoch, b)
            done.loss += loss
            done.tokens += tokens
            if 2 * (b - first) >= len(plan) - first:
                done.late_loss, done.late_tokens = done.late_loss + loss, done.late_tokens + tokens
        now = clock()
        if grads is not None and callback is not None:
            callback(TrainEvent("batch", epoch, config.epochs, batch=b, num_batches=len(plan),
                                loss=loss / max(tokens, 1), tokens=tokens, learning_rate=rate,
                                tokens_per_second=tokens / max(now - batch_started, 1e-9)))
        batch_started = now
        if _out_of_time(config, run_started, now):
            break
    done.seconds = clock() - started
    return done


def _update(model, optimizer, config, loss, grads, epoch, b):
    """One optimizer step on the batch's (mean) gradient, clipped; TrainingDiverged before or after it goes bad."""
    rate = optimizer.learning_rate
    grads, norm = clip_global_norm(grads, config.clip)
    if not (math.isfinite(loss) and math.isfinite(norm)):
        raise _diverged("the batch loss" if not math.isfinite(loss) else "the gradient norm",
                        loss if not math.isfinite(loss) else norm, rate, norm, epoch, b)
    optimizer.step(model.params, grads)
    # the rule of every model file writer and reader, so a run stops as diverged before it could
    # produce a model that no command would load
    bad = first_parameter_fault(model.params)
    if bad is not None:
        raise _diverged(f"parameter {bad[0]!r} after the update {bad[1]}", None, rate, norm, epoch, b)


def _valid_loss(model, valid, done, monitored, rate, epoch):
    """The validation score after the epoch (`valid.score`: the per-word loss for a language model; None
    without a validation set); TrainingDiverged when it, or the monitored loss, is not finite: no state
    of that epoch is reported."""
    valid_loss = valid.score(model) if valid is not None else None
    watched = valid_loss if monitored == "validation" else done.train_loss
    if not math.isfinite(watched) or (valid_loss is not None and not math.isfinite(valid_loss)):
        raise _diverged("the validation loss" if valid_loss is not None else "the train loss",
                        valid_loss if valid_loss is not None else done.train_loss, rate, float("nan"), epoch)
    return valid_loss


def _loss_after_epoch(model, data, valid_loss, done):
    """The loss to compare with a uniform guess after the first epoch: validation, else training after the updates."""
    if valid_loss is not None:
        return valid_loss
    if done.late_tokens and done.num_batches - done.first >= 4:
        return done.late_loss / done.late_tokens  # the second half of the epoch, after most updates
    return data.total_loss(model) / max(data.num_tokens, 1)  # few batches: measure it


def _state_after(state, record, optimizer, schedule, data, best):
    """The TrainingState after `record`'s epoch: finished, or (time limit) resumable at its next batch."""
    complete, done = record.complete, record.batches
    # copies: the optimizer keeps updating its own buffers in place after this epoch
    return replace(state, epoch=record.epoch if complete else record.epoch - 1, batch=0 if complete else done,
                   learning_rate=optimizer.learning_rate, history=state.history + [record],
                   optimizer_state={k: np.array(v) for k, v in optimizer.state_dict().items()},
                   previous_loss=getattr(schedule, "previous_loss", None),
                   schedule=schedule.state_dict() if hasattr(schedule, "state_dict") else None,
                   carry={} if complete else data.carry(), best_epoch=best.epoch, best_loss=best.score)

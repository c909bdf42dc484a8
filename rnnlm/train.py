"""Training loops: the tutorial's per-sentence `train_with_sgd` and the minibatch `train` every model shares.

Public API
----------
HalvingSchedule(learning_rate, previous_loss=None)
    .update(loss) -> learning rate: the tutorial's rule, halve when the loss rose.
train_with_sgd(model, X, Y, learning_rate=0.005, nepoch=100, evaluate_loss_after=5, callback=None)
    -> list of Evaluation, each unpacking as the tutorial's (examples_seen, loss) pair.
split_train_valid(X, Y, valid_fraction, seed) -> (X_train, Y_train, X_valid, Y_valid)
train(model, X, Y, config, X_valid=None, Y_valid=None, callback=None, state=None) -> TrainingState
EpochRecord, TrainingState (to_dict / from_dict: JSON-able metadata + flat arrays), TrainEvent.

`train` works for any model with `.params` (dict of arrays), `.loss_and_gradients(X, Y,
sparse=True)` returning the summed loss and a gradient dict keyed like `params` (dense
arrays or `SparseGradient`s), and `.total_loss(X, Y)`: `FastRNN` and `LanguageModel` alike.

One minibatch step:

    loss, g = model.loss_and_gradients(batch)     # summed over the batch's M tokens
    g = clip(g / M, config.clip)                  # mean per word, global-norm clipped
    optimizer.step(params, g)

Per-word losses are pooled over predicted tokens (sum of losses / number of targets),
never averaged per batch, and perplexity = exp(per-word loss). The epoch's train loss
is the pooled loss of its batches, each measured just before its own update (free, but
slightly behind the final parameters); the validation loss is a full evaluation after
the epoch. Every `config.evaluate_loss_after` epochs the monitored loss (validation
when there is a validation set, else train) goes through the halving rule.

Batches come from `bucketed_batches` with the generator `np.random.default_rng([seed,
epoch])`, so epoch e's order depends only on (seed, e): resuming from a saved state
at epoch e reproduces the uninterrupted run exactly. Progress is reported through
`callback(TrainEvent)`, never printed.
"""

import math
import time
from dataclasses import asdict, dataclass, field

import numpy as np

from .batching import bucketed_batches
from .errors import RnnlmError
from .numerics import perplexity
from .optim import clip_global_norm, make_optimizer, scale_gradients


# --------------------------------------------------------------------- the schedule

@dataclass
class HalvingSchedule:
    """The tutorial's learning-rate rule: halve the rate whenever the loss rose.

    Each `update(loss)` compares with the previous *evaluation* only (not with the best
    loss ever, and never on the first call), so a loss that rises once halves the rate
    once; a loss that merely stays equal keeps it.
    """

    learning_rate: float
    previous_loss: float | None = None

    def update(self, loss):
        """Record one evaluated loss; returns the learning rate to use from now on."""
        if self.previous_loss is not None and loss > self.previous_loss:
            self.learning_rate *= 0.5
        self.previous_loss = float(loss)
        return self.learning_rate


# --------------------------------------------------------------------- the tutorial's loop

@dataclass(frozen=True)
class Evaluation:
    """One evaluation of `train_with_sgd`; unpacks as the tutorial's (examples_seen, loss) pair.

    learning_rate is the rate in force after this evaluation; seconds since training began.
    """

    examples_seen: int
    loss: float
    epoch: int
    learning_rate: float
    seconds: float

    def __iter__(self):
        return iter((self.examples_seen, self.loss))

    def __getitem__(self, i):
        return (self.examples_seen, self.loss)[i]


def train_with_sgd(model, X, Y, learning_rate=0.005, nepoch=100, evaluate_loss_after=5, callback=None):
    """The tutorial's training loop: plain SGD, one sentence at a time.

    model: anything with `sgd_step(x, y, learning_rate)` and `calculate_loss(X, Y)`
        (the tutorial's `RNNNumpy`). Before epochs 0, k, 2k, ... (k = evaluate_loss_after)
        and once after the last epoch, the per-word loss over (X, Y) is evaluated and the
        rate halved if it rose since the previous evaluation.
    callback: called as callback(evaluation) after each evaluation.
    Returns a list of `Evaluation`; `for examples_seen, loss in history` works as in the tutorial.
    """
    schedule = HalvingSchedule(learning_rate)
    history = []
    examples_seen = 0
    start = time.perf_counter()

    def evaluate(epoch):
        loss = model.calculate_loss(X, Y)
        rate = schedule.update(loss)
        history.append(Evaluation(examples_seen, float(loss), epoch, rate, time.perf_counter() - start))
        if callback is not None:
            callback(history[-1])
        return rate

    for epoch in range(nepoch):
        if epoch % evaluate_loss_after == 0:
            learning_rate = evaluate(epoch)
        for x, y in zip(X, Y):
            model.sgd_step(x, y, learning_rate)
            examples_seen += 1
    evaluate(nepoch)
    return history


# --------------------------------------------------------------------- records and state

def _perplexity(loss):
    return None if loss is None else perplexity(loss)


@dataclass(frozen=True)
class EpochRecord:
    """What one epoch of `train` achieved. Losses are per word (pooled over tokens).

    learning_rate: the rate used during this epoch. tokens: training targets seen.
    seconds: wall time of the epoch's batches (the validation pass not included);
    tokens_per_second = tokens / seconds.
    """

    epoch: int
    train_loss: float
    valid_loss: float | None
    learning_rate: float
    seconds: float
    tokens: int
    tokens_per_second: float

    @property
    def train_perplexity(self):
        return _perplexity(self.train_loss)

    @property
    def valid_perplexity(self):
        return _perplexity(self.valid_loss)


@dataclass
class TrainingState:
    """Everything needed to resume `train`: pass it back as `state=` (the model's parameters travel separately).

    epoch: epochs completed. learning_rate: the rate for the next epoch.
    previous_loss: the halving rule's last evaluated loss. optimizer_state: the
    optimizer's `state_dict()`, a flat dict of arrays.
    """

    epoch: int = 0
    learning_rate: float = 0.0
    history: list = field(default_factory=list)
    optimizer_state: dict = field(default_factory=dict)
    previous_loss: float | None = None

    def to_dict(self):
        """{"metadata": JSON-able dict, "arrays": flat {name: ndarray}}: no pickle needed to store it."""
        metadata = {"epoch": self.epoch, "learning_rate": self.learning_rate,
                    "previous_loss": self.previous_loss, "history": [asdict(r) for r in self.history]}
        return {"metadata": metadata, "arrays": {k: np.asarray(v) for k, v in self.optimizer_state.items()}}

    @classmethod
    def from_dict(cls, data):
        """Inverse of `to_dict` (accepts the arrays as read back from an .npz)."""
        meta = data["metadata"]
        return cls(epoch=int(meta["epoch"]), learning_rate=float(meta["learning_rate"]),
                   previous_loss=None if meta.get("previous_loss") is None else float(meta["previous_loss"]),
                   history=[EpochRecord(**r) for r in meta.get("history", [])],
                   optimizer_state={k: np.array(v) for k, v in data.get("arrays", {}).items()})


@dataclass(frozen=True)
class TrainEvent:
    """A progress report from `train`, passed to `callback`.

    kind "batch": epoch, batch (0-based), num_batches, loss (this batch's per-word loss,
        before its update), tokens (its predicted words), tokens_per_second (this batch),
        learning_rate.
    kind "epoch": epoch, record (its `EpochRecord`), state (a `TrainingState` to checkpoint).
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


# --------------------------------------------------------------------- minibatch training

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


def _diverged(what, value, learning_rate, norm, epoch, batch=None):
    where = f"epoch {epoch}" + ("" if batch is None else f", batch {batch}")
    return RnnlmError(f"training diverged at {where}: {what} is {value}, gradient norm {norm:.4g} at "
                      f"learning rate {learning_rate:g}; lower the learning rate or set a clip norm")


def train(model, X, Y, config, X_valid=None, Y_valid=None, callback=None, state=None):
    """Minibatch training with a `TrainConfig`; returns the final `TrainingState`.

    model: see the module docstring. X, Y: training sentences, lists of (T_n,) int arrays.
    X_valid, Y_valid: optional held-out sentences; empty means none. `train` never splits by
        itself: callers hold out config.valid_fraction with `split_train_valid(X, Y,
        config.valid_fraction, config.seed)` first.
    callback: called with a `TrainEvent` after every batch and every epoch.
    state: a `TrainingState` to resume from (epoch state.epoch + 1 onwards, with its
        learning rate and optimizer state); config.epochs is the total, not the remainder.
    Raises RnnlmError if a loss or gradient norm becomes NaN or infinite.
    """
    optimizer = make_optimizer(config.optimizer, config.learning_rate, config.momentum)
    if state is None:
        state = TrainingState(epoch=0, learning_rate=float(config.learning_rate))
    else:
        optimizer.load_state_dict(state.optimizer_state)
        state = TrainingState(epoch=state.epoch, learning_rate=state.learning_rate, history=list(state.history),
                              optimizer_state=dict(state.optimizer_state), previous_loss=state.previous_loss)
    optimizer.learning_rate = state.learning_rate
    schedule = HalvingSchedule(state.learning_rate, state.previous_loss)
    has_valid = X_valid is not None and len(X_valid) > 0
    valid_tokens = sum(len(y) for y in Y_valid) if has_valid else 0
    lengths = np.array([len(y) for y in Y])

    for epoch in range(state.epoch + 1, config.epochs + 1):
        batches = bucketed_batches(lengths, config.batch_size, rng=np.random.default_rng([config.seed, epoch]))
        rate = optimizer.learning_rate
        epoch_loss, epoch_tokens, started = 0.0, 0, time.perf_counter()
        for b, index in enumerate(batches):
            tokens = int(lengths[index].sum())
            if tokens == 0:
                continue  # a batch of empty sentences predicts nothing
            batch_started = time.perf_counter()
            loss, grads = model.loss_and_gradients([X[i] for i in index], [Y[i] for i in index], sparse=True)
            grads, norm = clip_global_norm(scale_gradients(grads, 1.0 / tokens), config.clip)
            if not (math.isfinite(loss) and math.isfinite(norm)):
                raise _diverged("the batch loss" if not math.isfinite(loss) else "the gradient norm",
                                loss if not math.isfinite(loss) else norm, rate, norm, epoch, b)
            optimizer.step(model.params, grads)
            epoch_loss += loss
            epoch_tokens += tokens
            if callback is not None:
                callback(TrainEvent("batch", epoch, config.epochs, batch=b, num_batches=len(batches),
                                    loss=loss / tokens, tokens=tokens, learning_rate=rate,
                                    tokens_per_second=tokens / max(time.perf_counter() - batch_started, 1e-9)))
        seconds = time.perf_counter() - started
        train_loss = epoch_loss / max(epoch_tokens, 1)
        valid_loss = model.total_loss(X_valid, Y_valid) / max(valid_tokens, 1) if has_valid else None
        monitored = train_loss if valid_loss is None else valid_loss
        if not math.isfinite(monitored):
            raise _diverged("the validation loss" if has_valid else "the train loss", monitored, rate, float("nan"), epoch)
        if epoch % config.evaluate_loss_after == 0:
            optimizer.learning_rate = schedule.update(monitored)
        record = EpochRecord(epoch=epoch, train_loss=float(train_loss),
                             valid_loss=None if valid_loss is None else float(valid_loss),
                             learning_rate=rate, seconds=seconds, tokens=epoch_tokens,
                             tokens_per_second=epoch_tokens / max(seconds, 1e-9))
        # copies: the optimizer keeps updating its own buffers in place after this epoch
        state = TrainingState(epoch=epoch, learning_rate=optimizer.learning_rate,
                              history=state.history + [record],
                              optimizer_state={k: np.array(v) for k, v in optimizer.state_dict().items()},
                              previous_loss=schedule.previous_loss)
        if callback is not None:
            callback(TrainEvent("epoch", epoch, config.epochs, record=record, state=state))
    return state

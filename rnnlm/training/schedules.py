"""The learning-rate rules: the tutorial's halving and the default plateau rule.

Public API
----------
HalvingSchedule(learning_rate, previous_loss=None)
    .update(loss) -> learning rate: the tutorial's rule, halve when the loss rose.
PlateauSchedule(learning_rate, min_lr, patience, threshold, smoothing, factor)
    .update(loss) -> learning rate: reduce on a plateau of the smoothed loss, never below min_lr.
ConstantSchedule(learning_rate).update(loss) -> learning rate: no rule, the rate stays (the Tree-LSTM trainer's).
make_schedule(config, learning_rate, saved=None, previous_loss=None): the rule config.lr_schedule names.

Both are fed one monitored loss per evaluation by `rnnlm.training.loop.run_training`; their
memory (`state_dict`) is saved with the training state so a resumed run continues the rule.
"""

from dataclasses import dataclass


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


@dataclass
class PlateauSchedule:
    """The trainer's learning-rate rule: reduce on a plateau of a smoothed loss, never below a floor.

    Each `update(loss)` first smooths, s = smoothing s + (1 - smoothing) loss (s = loss at
    the first call), then compares s with the best smoothed value so far: an evaluation
    improves when s < (1 - threshold) best. After `patience` evaluations in a row that do
    not improve, the rate becomes max(factor x rate, min_lr) and the count starts again.

    Why not the tutorial's rule: `HalvingSchedule` halves on any single rise, and an
    epoch-to-epoch loss is noisy (a small validation set, a small batch, Adam's jitter
    near a minimum); every noisy rise halves again, so the rate decays geometrically
    (0.01 -> 7e-11 after 30 rises) while the model could still learn. Smoothing removes
    most one-epoch noise, the relative threshold ignores gains too small to matter,
    patience waits for a trend, and the floor makes a collapse impossible.
    """

    learning_rate: float
    min_lr: float
    patience: int = 2
    threshold: float = 0.001
    smoothing: float = 0.5
    factor: float = 0.5
    smoothed: float | None = None
    best: float | None = None
    bad_evaluations: int = 0

    def update(self, loss):
        """Record one evaluated loss; returns the learning rate to use from now on."""
        loss = float(loss)
        self.smoothed = loss if self.smoothed is None else self.smoothing * self.smoothed + (1 - self.smoothing) * loss
        if self.best is None or self.smoothed < (1 - self.threshold) * self.best:
            self.best, self.bad_evaluations = self.smoothed, 0
        else:
            self.bad_evaluations += 1
            if self.bad_evaluations >= self.patience:
                self.learning_rate = max(self.learning_rate * self.factor, self.min_lr)
                self.bad_evaluations = 0
        return self.learning_rate

    def state_dict(self):
        """The rule's memory as JSON-able values (what `TrainingState.schedule` stores)."""
        return {"smoothed": self.smoothed, "best": self.best, "bad_evaluations": self.bad_evaluations}


@dataclass
class ConstantSchedule:
    """No rule: the learning rate stays as set (lr_schedule "constant", what `train_trees` runs with)."""

    learning_rate: float

    def update(self, loss):
        return self.learning_rate


def make_schedule(config, learning_rate, saved=None, previous_loss=None):
    """The rule `config.lr_schedule` names, starting at `learning_rate` with a saved memory (or fresh).

    saved: a `PlateauSchedule.state_dict()`; previous_loss: the halving rule's memory.
    """
    if config.lr_schedule == "constant":
        return ConstantSchedule(learning_rate)
    if config.lr_schedule == "halving":
        return HalvingSchedule(learning_rate, previous_loss)
    return PlateauSchedule(learning_rate, min(config.lr_floor, learning_rate), patience=config.lr_patience,
                           threshold=config.lr_threshold, smoothing=config.lr_smoothing, factor=config.lr_factor,
                           **(saved or {}))

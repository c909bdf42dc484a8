"""The tutorial's training loop: plain SGD, one sentence at a time, the learning rate halved when the loss rose.

Public API
----------
train_with_sgd(model, X, Y, learning_rate=0.005, nepoch=100, evaluate_loss_after=5, callback=None)
    -> list of Evaluation, each unpacking as the tutorial's (examples_seen, loss) pair.
(also importable from `rnnlm.training.loop`, where it used to live)
"""

import time
from dataclasses import dataclass

from rnnlm.nn.threads import holds_blas
from rnnlm.training.schedules import HalvingSchedule


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


@holds_blas
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

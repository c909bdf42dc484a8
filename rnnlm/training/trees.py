"""Training and evaluating a Tree-LSTM sentiment model on labelled trees (the SST).

    loss of a batch = (1/B) sum over its B trees of the cross-entropy summed over every labelled node
                      + (l2 / 2) (|W_leaf|^2 + |U|^2 + |W_s|^2)

Minibatches of `batch_size` trees in a seeded order (epoch e uses numpy.random.default_rng([seed, e])),
gradients clipped to a global norm (`optim.clip_global_norm`), updated by Adagrad or Adam
(`optim.make_optimizer`). After every epoch the model is scored on the development trees
and `train_trees` reports it through the callback; its `TreeTrainingState` records the best
epoch (`rnnlm.training.best.Best`) and resumes the run exactly; the caller saves the models.
The epochs, batches, time limit and divergence check are the language models' loop,
`rnnlm.training.loop.run_training`, over `TreeBatches` (the trees as a batch source) and `DevTrees`
(the development accuracy as a score that is higher when better); a diverged run raises its
`TrainingDiverged`.

`evaluate` returns the numbers papers report: fine-grained (5-class) accuracy of the whole
sentence (the root), binary accuracy of the root over the non-neutral sentences (labels 0-1
negative, 3-4 positive; the prediction is whichever of p(0) + p(1) and p(3) + p(4) is larger,
so one 5-class model gives both numbers), and the 5-class accuracy over every phrase.
"""

import time
from dataclasses import asdict, dataclass, field
from typing import NamedTuple

import numpy as np

from rnnlm.config import _Config, _finite_number, _require, _training_options, _vocabulary_size, plain_numbers
from rnnlm.nn.numerics import cross_entropy
from rnnlm.nn.optim import SparseGradient, make_optimizer, scale_gradients
from rnnlm.nn.threads import holds_blas
from rnnlm.data.trees import NEUTRAL, encode_tree
from rnnlm.training.best import Best
from rnnlm.training.loop import TrainingState, run_training
from rnnlm.training.resume import corpus_fingerprint

REGULARIZED = ("W_leaf", "U", "W_s")


@dataclass(frozen=True)
class TreeTrainConfig(_Config):
    """How a Tree-LSTM is trained; the defaults are run B of docs/trees.md (vocabulary 10,000, word dropout 0.5).

    word_dropout: the fraction of a batch's word types whose embedding is
    zeroed for that batch (Gal & Ghahramani's embedding dropout; the others are scaled by 1 / (1 - p)).
    time_limit: seconds (None: no limit); the epoch running at the limit
    stops after its current batch and is scored and reported like a whole one."""

    vocabulary_size: int = 10000
    epochs: int = 10
    batch_size: int = 25
    learning_rate: float = 0.05
    optimizer: str = "adagrad"
    l2: float = 1e-4
    clip: float | None = 5.0
    word_dropout: float = 0.5
    seed: int = 0
    time_limit: float | None = None

    def __post_init__(self):
        plain_numbers(self)
        _vocabulary_size(self.vocabulary_size)
        _training_options(self)  # epochs, batch size, rate, seed, optimizer, clip, time limit: as TrainConfig
        _finite_number("l2", self.l2)
        _require(self.l2 >= 0, f"l2 must be a non-negative number, got {self.l2!r}")
        _finite_number("word dropout", self.word_dropout)
        _require(0 <= self.word_dropout < 1, f"word dropout must be in [0, 1), got {self.word_dropout!r}")


# --------------------------------------------------------------------- evaluation

@dataclass(frozen=True)
class Scores:
    """Accuracies on a set of trees (fractions in [0, 1]) and the mean cross-entropy per node."""

    fine: float            # 5-class, sentences (roots)
    binary: float          # 2-class, non-neutral sentences
    all_phrases: float     # 5-class, every labelled node
    loss: float            # nats per labelled node
    sentences: int
    binary_sentences: int
    phrases: int

    def to_dict(self):
        return asdict(self)


@holds_blas
def predict(model, encoded, batch_size=200):
    """Per tree, (M, K) node probabilities (post-order, root last), computed in batches."""
    out = []
    for start in range(0, len(encoded), batch_size):
        out.extend(model.node_probabilities(encoded[start:start + batch_size]))
    return out


def binary_prediction(probs):
    """1 (positive) where p(3) + p(4) > p(0) + p(1), else 0. probs (..., 5)."""
    return (probs[..., 3] + probs[..., 4] > probs[..., 0] + probs[..., 1]).astype(np.int64)


@holds_blas
def evaluate(model, encoded, batch_size=200):
    """`Scores` of `model` on encoded labelled trees."""
    probs = predict(model, encoded, batch_size)
    roots = np.array([p[-1] for p in probs])
    root_labels = np.array([t.label[-1] for t in encoded])
    fine = float(np.mean(roots.argmax(axis=1) == root_labels))
    polar = root_labels != NEUTRAL
    binary = float(np.mean(binary_prediction(roots[polar]) == (root_labels[polar] > NEUTRAL))) if polar.any() else 0.0
    nodes = np.concatenate(probs)
    labels = np.concatenate([t.label for t in encoded])
    scored = labels >= 0
    phrase = float(np.mean(nodes[scored].argmax(axis=1) == labels[scored]))
    # the summed -log p(label) of `cross_entropy`, read from probabilities (log of a distribution is its
    # own log-softmax); the clamp keeps a probability that underflowed to 0 from making the loss infinite
    loss = cross_entropy(np.log(np.maximum(nodes[scored], 1e-300)), labels[scored]) / max(int(scored.sum()), 1)
    return Scores(fine, binary, phrase, loss, len(encoded), int(polar.sum()), int(scored.sum()))


# --------------------------------------------------------------------- training

class EpochRecord(NamedTuple):
    epoch: int
    train_loss: float      # nats per labelled node, averaged over the epoch's batches
    dev: Scores | None
    seconds: float
    trees_per_second: float
    complete: bool         # False when the time limit cut the epoch short


class TreeEvent(NamedTuple):
    """kind "batch" (batch, num_batches, loss per node) or "epoch" (record, and the state to save)."""

    kind: str
    epoch: int
    epochs: int
    batch: int = 0
    num_batches: int = 0
    loss: float = 0.0
    record: EpochRecord | None = None
    state: "TreeTrainingState | None" = None


def record_to_dict(record):
    """An `EpochRecord` as JSON-able metadata (the model file's history)."""
    return {"epoch": record.epoch, "train_loss": record.train_loss, "seconds": record.seconds,
            "trees_per_second": record.trees_per_second, "complete": record.complete,
            "dev": None if record.dev is None else record.dev.to_dict()}


def record_from_dict(data):
    """Inverse of `record_to_dict`."""
    dev = None if data.get("dev") is None else Scores(**data["dev"])
    return EpochRecord(int(data["epoch"]), float(data["train_loss"]), dev, float(data["seconds"]),
                       float(data.get("trees_per_second", 0.0)), bool(data["complete"]))


@dataclass
class TreeTrainingState:
    """Where training stands: everything `train_trees(state=...)` needs to continue the run exactly.

    epoch: epochs finished (an epoch cut short by the time limit counts as finished, as it is
    scored and kept like a whole one). history: the `EpochRecord`s. optimizer: the optimizer,
    its learning rate and accumulators (None: a fresh one). best_epoch, best_score: the kept
    epoch (`rnnlm.training.best.Best`) and its development fine-grained accuracy (None without
    development trees: the last epoch is kept). data: what the caller records to recognise its
    trees on resume (`tree_fingerprint`).
    """

    epoch: int = 0
    history: list = field(default_factory=list)
    optimizer: object = None
    best_epoch: int | None = None
    best_score: float | None = None
    data: dict = field(default_factory=dict)

    @property
    def batch(self):
        """Batches of the next epoch already done: always 0 (`resume.resume_source` compares (epoch, batch))."""
        return 0

    @property
    def best(self):
        return Best(self.best_epoch, self.best_score)

    def to_dict(self):
        """JSON-able metadata; the optimizer's arrays travel separately (`optimizer.state_dict()`)."""
        return {"epoch": self.epoch, "best_epoch": self.best_epoch, "best_score": self.best_score,
                "data": self.data, "history": [record_to_dict(r) for r in self.history]}

    @classmethod
    def from_dict(cls, data, optimizer_state, config):
        """Inverse of `to_dict`: the optimizer is `config`'s, with `optimizer_state` (flat arrays) loaded."""
        optimizer = make_optimizer(config.optimizer, config.learning_rate)
        optimizer.load_state_dict(optimizer_state)
        best_score = data.get("best_score")
        return cls(epoch=int(data["epoch"]), history=[record_from_dict(r) for r in data.get("history", [])],
                   optimizer=optimizer, best_epoch=None if data.get("best_epoch") is None else int(data["best_epoch"]),
                   best_score=None if best_score is None else float(best_score), data=dict(data.get("data") or {}))


def tree_fingerprint(encoded):
    """`resume.corpus_fingerprint` of encoded trees: their words, shapes and labels, in order."""
    return corpus_fingerprint([a for t in encoded for a in (t.word, t.left, t.right, t.label)])


def regularized_gradients(params, grads, num_trees, l2):
    """grads / num_trees + l2 * theta for the weight matrices (not biases or embeddings)."""
    grads = scale_gradients(grads, 1.0 / num_trees)
    for name in REGULARIZED:
        if l2:
            grads[name] = grads[name] + l2 * params[name]
    return grads


def _total_loss_and_gradients(model, batch, dropout, rng):
    """model.total_loss_and_gradients, with the embeddings of a random `dropout` fraction of the batch's words zeroed."""
    if not dropout:
        return model.total_loss_and_gradients(batch)
    words = np.unique(np.concatenate([t.word[t.left < 0] for t in batch]))
    keep = np.ones(len(model.params["E"]), dtype=model.params["E"].dtype)
    keep[words[rng.random(len(words)) < dropout]] = 0.0
    keep /= 1.0 - dropout
    E = model.params["E"]
    model.params["E"] = E * keep[:, None]
    try:
        loss, grads = model.total_loss_and_gradients(batch)
    finally:
        model.params["E"] = E
    dE = grads["E"]
    grads["E"] = SparseGradient(dE.indices, dE.values * keep[dE.indices, None], dE.axis)
    return loss, grads


class TreeBatches:
    """The trees as a batch source of `rnnlm.training.loop.run_training` (see `SentenceBatches` for the protocol).

    Epoch e takes batches of batch_size trees in the order rng([seed, e]).permutation and draws its word
    dropout from rng([seed, e, 1]), one draw after another; a batch's gradient is its mean over the
    batch's trees plus weight decay (`regularized_gradients`), and its targets are its labelled nodes.
    The draws are not carried: an epoch cut short is never resumed mid-way (`train_trees` counts it done).
    """

    def __init__(self, trees, config):
        self.trees, self.config = list(trees), config
        self.num_tokens = sum(int(np.sum(t.label >= 0)) for t in self.trees)
        self.dropout_rng = None

    def plan(self, epoch):
        order = np.random.default_rng([self.config.seed, epoch]).permutation(len(self.trees))
        size = self.config.batch_size
        return [order[start:start + size] for start in range(0, len(order), size)]

    def begin_epoch(self, model, epoch, carry):
        self.dropout_rng = np.random.default_rng([self.config.seed, epoch, 1])

    def batch(self, model, index):
        batch = [self.trees[i] for i in index]
        loss, grads = _total_loss_and_gradients(model, batch, self.config.word_dropout, self.dropout_rng)
        nodes = sum(int(np.sum(t.label >= 0)) for t in batch)
        return loss, regularized_gradients(model.params, grads, len(batch), self.config.l2), nodes

    def carry(self):
        return {}

    def uniform_loss(self, model):
        return None  # no warning against a uniform guess


class DevTrees:
    """Development trees as `run_training`'s validation source: the score is the fine-grained accuracy
    (higher is better); `scores` holds the whole `Scores` of the latest `score` call."""

    higher_is_better = True

    def __init__(self, encoded):
        self.encoded, self.num_tokens, self.scores = encoded, len(encoded), None

    def score(self, model):
        self.scores = evaluate(model, self.encoded)
        return self.scores.fine


class _LoopConfig(NamedTuple):
    """What `run_training` reads of a `TrainConfig`, for a Tree-LSTM run: a constant learning rate, no momentum,
    and any development trees steer (the kept epoch; the constant rate ignores them)."""

    epochs: int
    learning_rate: float
    optimizer: str
    clip: float | None
    time_limit: float | None
    momentum: float = 0.0
    lr_schedule: str = "constant"
    evaluate_loss_after: int = 1
    min_valid_tokens: int = 1


@holds_blas
def train_trees(model, trees, config, dev_trees=None, callback=None, state=None, clock=time.perf_counter):
    """Train `model` (a TreeLSTM) on encoded labelled `trees`; returns the TreeTrainingState.

    dev_trees: encoded trees scored after each epoch (`evaluate`). callback(TreeEvent) is called
    after every batch and every epoch; raising from it (or Ctrl-C) stops training there.
    state: a `TreeTrainingState` to continue from (epoch state.epoch + 1 onwards, its optimizer
    and best epoch): with the model's parameters as they were then, the run goes on exactly
    as if it had never stopped (every epoch's order and dropout are seeded by (seed, epoch)).
    The loop is `rnnlm.training.loop.run_training` over `TreeBatches` and `DevTrees`; `state` is
    brought up to date in place after every epoch, before the callback sees it.
    """
    state = state or TreeTrainingState()
    if state.optimizer is None:
        state.optimizer = make_optimizer(config.optimizer, config.learning_rate)
    loop_config = _LoopConfig(config.epochs, config.learning_rate, config.optimizer, config.clip, config.time_limit)
    dev = DevTrees(dev_trees) if dev_trees else None
    begun = TrainingState(epoch=state.epoch, learning_rate=state.optimizer.learning_rate,
                          optimizer_state=state.optimizer.state_dict(), best_epoch=state.best_epoch,
                          best_loss=state.best_score, data=state.data)
    run_training(model, TreeBatches(trees, config), loop_config, dev, state=begun, clock=clock,
                 callback=lambda event: _tree_event(event, state, config, len(trees), dev, callback))
    return state


def _tree_event(event, state, config, num_trees, dev, callback):
    """`run_training`'s event as the tree trainer's; an epoch's also brings `state` up to date (in place)."""
    if event.kind == "batch":
        if callback is not None:
            callback(TreeEvent("batch", event.epoch, event.epochs, event.batch, event.num_batches, event.loss))
        return
    r, after = event.record, event.state
    trees = min(r.batches * config.batch_size, num_trees)  # an epoch runs from its first batch (`TreeBatches`)
    record = EpochRecord(r.epoch, r.train_loss, None if dev is None else dev.scores, r.seconds,
                         trees / max(r.seconds, 1e-9), r.complete)
    state.epoch = r.epoch  # an epoch cut short by the time limit counts as done: it is scored and kept
    state.history.append(record)
    state.optimizer = make_optimizer(config.optimizer, after.learning_rate)
    state.optimizer.load_state_dict(after.optimizer_state)
    # without development trees every epoch is kept (`Best.after` with no score)
    state.best_epoch, state.best_score = (after.best_epoch, after.best_loss) if dev is not None else (r.epoch, None)
    if callback is not None:
        callback(TreeEvent("epoch", event.epoch, event.epochs, record=record, state=state))


def encode_all(trees, vocabulary):
    """`encode_tree` over a list."""
    return [encode_tree(t, vocabulary) for t in trees]

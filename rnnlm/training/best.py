"""Which epoch's model a run keeps: the best score so far, shared by the sentence loop and the tree loop.

Public API
----------
Best(epoch=None, score=None): the epoch kept so far and its score (None, None: nothing yet).
Best.after(epoch, score, higher_is_better=False) -> Best: the kept epoch once `epoch` scored `score`.
Best.holds(epoch) -> bool: whether `epoch` is the one kept, i.e. its model is the one to save as the best.

The language-model loop scores epochs by validation loss (lower is better; an epoch must beat the
kept one strictly, so a tie keeps the earlier epoch) and keeps no best without a usable validation
set; the tree loop scores by development fine-grained accuracy (higher is better) and, without
development trees, passes score None so that every epoch replaces the kept one (the last is kept).
"""

from typing import NamedTuple


class Best(NamedTuple):
    """The epoch whose model is kept and its score. Immutable: `after` returns the next one."""

    epoch: int | None = None
    score: float | None = None

    def after(self, epoch, score, higher_is_better=False):
        """The kept epoch once `epoch` scored `score`: `epoch` when it is strictly better, or nothing was kept yet,
        or it has no score (None: nothing to compare, the latest epoch is kept); else this one."""
        if score is None or self.score is None or (score > self.score if higher_is_better else score < self.score):
            return Best(epoch, None if score is None else float(score))
        return self

    def holds(self, epoch):
        """True when `epoch` is the kept one: after `after(epoch, ...)`, its model is the best so far, to save."""
        return self.epoch is not None and self.epoch == epoch

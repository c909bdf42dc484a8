"""The kept-epoch rule both training loops share (rnnlm.training.best), without a model."""

from rnnlm.training.best import Best


def run(scores, higher_is_better=False):
    best, kept = Best(), []
    for epoch, score in enumerate(scores, start=1):
        best = best.after(epoch, score, higher_is_better)
        kept.append((best.epoch, best.holds(epoch)))
    return best, kept


def test_a_loss_keeps_the_lowest_and_a_tie_keeps_the_earlier_epoch():
    best, kept = run([3.0, 2.0, 2.5, 2.0, 1.5])
    assert kept == [(1, True), (2, True), (2, False), (2, False), (5, True)]
    assert best == Best(5, 1.5) and isinstance(best.score, float)


def test_an_accuracy_keeps_the_highest():
    best, kept = run([0.3, 0.5, 0.4, 0.5], higher_is_better=True)
    assert [e for e, _ in kept] == [1, 2, 2, 2] and best.score == 0.5


def test_without_scores_every_epoch_is_kept_in_turn():
    best, kept = run([None, None, None], higher_is_better=True)
    assert kept == [(1, True), (2, True), (3, True)] and best == Best(3, None)


def test_nothing_kept_holds_no_epoch_and_a_resumed_best_carries_on():
    assert not Best().holds(None) and not Best().holds(1)
    resumed = Best(4, 2.0)
    assert resumed.after(5, 2.5) is resumed and resumed.after(5, 1.0) == Best(5, 1.0)

"""Pictures of a training history: the loss curves and the learning rate, per epoch.

Public API
----------
plot_history(target, history, vocab_size, level="word"): a PNG of the train and validation
    losses (with the uniform guess, log vocab_size, for scale) beside the learning rate each
    epoch used. target: a path, or a binary file object (the command line passes one from an
    atomic write, so a failed plot never leaves half a file).

matplotlib is imported only when a plot is drawn, with the Agg backend: no display needed, and
the package imports without matplotlib installed.
"""

import math


def _epoch_positions(history):
    """Where each record sits on the epoch axis: a time-limited partial epoch at the fraction it reached."""
    return [r.epoch + (r.batches / r.num_batches - 1 if not r.complete and r.num_batches else 0) for r in history]


def plot_history(target, history, vocab_size, level="word"):
    """Draw `history` (a list of `rnnlm.training.loop.EpochRecord`) as a PNG into `target` (a path or binary file)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    epochs = _epoch_positions(history)
    fig, (ax, lr_ax) = plt.subplots(1, 2, figsize=(10, 4))
    ax.plot(epochs, [r.train_loss for r in history], marker="o", label="train")
    if any(r.valid_loss is not None for r in history):
        ax.plot(epochs, [r.valid_loss for r in history], marker="o", label="validation")
    ax.axhline(math.log(vocab_size), color="gray", linestyle="--", label=f"uniform, log({vocab_size})")
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"cross-entropy per {'character' if level == 'char' else 'word'} (nats)")
    ax.set_title("rnnlm training loss")
    ax.legend()
    lr_ax.step(epochs, [r.learning_rate for r in history], where="post", marker="o", color="tab:green")
    lr_ax.set_yscale("log")
    lr_ax.set_xlabel("epoch")
    lr_ax.set_ylabel("learning rate (log scale)")
    lr_ax.set_title("learning rate used in each epoch")
    fig.tight_layout()
    try:
        fig.savefig(target, format="png", dpi=100)
    finally:
        plt.close(fig)

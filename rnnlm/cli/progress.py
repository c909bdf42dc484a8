"""Progress on stderr: a tqdm bar per training epoch (one result line per epoch through a callback),
a byte counter for downloads and a counter for long steps (`evaluate`'s tokenizing and scoring);
plain lines when tqdm is missing (no bar for downloads and steps) or nothing with --no-progress.
"""

import sys
import time

from rnnlm.cli.common import raise_if_interrupted


def optional_tqdm():
    try:
        from tqdm import tqdm
        return tqdm
    except ImportError:  # tqdm is optional: fall back to a plain line per epoch
        return None


class TrainingProgress:
    """Turns `train`'s (or `train_trees`') events into a tqdm bar (stderr) and one result line per
    epoch (stdout, through `on_epoch`); tokens/s is shown when the events count tokens."""

    def __init__(self, show_bar, on_epoch):
        self.tqdm = optional_tqdm() if show_bar else None
        self.bar = None
        self.on_epoch = on_epoch
        self.tokens = 0
        self.started = None

    def __call__(self, event):
        raise_if_interrupted()  # a Ctrl-C that a destructor swallowed stops training here, at a batch boundary
        if event.kind == "batch":
            if self.bar is None and self.tqdm is not None:
                self.bar = self.tqdm(total=event.num_batches, desc=f"epoch {event.epoch}/{event.epochs}",
                                     unit="batch", file=sys.stderr, leave=False, dynamic_ncols=True)
            counted = getattr(event, "tokens", None) is not None  # tree events count no tokens
            if counted and self.started is None:
                self.started, self.tokens = time.perf_counter() - event.tokens / event.tokens_per_second, 0
            if counted:
                self.tokens += event.tokens
            if self.bar is not None:
                rate = f", {self.tokens / max(time.perf_counter() - self.started, 1e-9):,.0f} tokens/s" if counted else ""
                last = event.batch + 1 == event.num_batches
                self.bar.set_postfix_str(f"loss {event.loss:.3f}{rate}", refresh=last)
                self.bar.update(1)
        elif event.kind == "epoch":
            self.close()
            self.on_epoch(event)

    def close(self):
        if self.bar is not None:
            self.bar.close()
        self.bar, self.started = None, None


def download_progress(show):
    tqdm = optional_tqdm() if show else None
    if tqdm is None:
        return None, lambda: None
    bars = []  # made at the first byte, so a failed connection prints no empty bar

    def update(done, total):
        if not bars:
            bars.append(tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, file=sys.stderr,
                             desc="downloading"))
        bars[0].update(done - bars[0].n)

    return update, lambda: bars and bars[0].close()


def step_progress(show, desc, unit):
    """(update, close) for one long step: update(done, total) moves a bar on stderr (`desc`, counting `unit`s),
    close() removes it. The bar is made at the first update and leaves no line behind, so the step's
    results print as before. Only on a terminal: a redirected stderr (a log, a pipe) gets no bar, and an
    error stays its one line there. Without tqdm, with show False or off a terminal, update is None and
    close does nothing."""
    tqdm = optional_tqdm() if show and _is_terminal(sys.stderr) else None
    if tqdm is None:
        return None, lambda: None
    bars = []

    def update(done, total):
        if not bars:
            bars.append(tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, leave=False, dynamic_ncols=True))
        bars[0].update(done - bars[0].n)

    def close():
        if bars:
            bars.pop().close()

    return update, close


def _is_terminal(stream):
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or closed
        return False

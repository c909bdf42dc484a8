"""rnnlm's thread policy, in one place: how many BLAS threads its work runs with, and the output layer's worker pool.

The policy. While rnnlm computes (a training run, a loss or evaluation, a generation, a tree model's
step), BLAS is held to `BLAS_THREADS` threads, one by default, and restored afterwards:

* Most of an RNN's products are small (the recurrence's (B, H) x (H, G H), the class softmax's
  per-class products, a tree's per-level compositions), too small to gain from a second BLAS thread.
* OpenBLAS's threads spin-wait between products. With another busy process on the machine a spinning
  thread takes the core the other thread needs: measured on the 2-core development machine with one
  other busy process, `rnnlm train` ran at ~1k tokens/s with OpenBLAS's default two threads and
  10-14k with one (identical losses); a character model 2k against 42k characters/s.
* The large products are better served by the output layer's own workers than by BLAS's threads:
  its chunks run in a pool (`pool`), each worker with one BLAS thread, and a worker that waits
  sleeps instead of spinning. The full softmax at C = 8000, H = 100, 2880 tokens on 2 cores,
  idle machine: 143 ms with one BLAS thread, 83 with two, 73 with two workers; with one other busy
  process: 137, 193 and 141. So the default (`ComputeConfig.threads` None, automatic;
  `resolve_threads`) is one worker per core for a full softmax of at least AUTO_MIN_WORK
  multiply-adds per product, and the plain loop otherwise. `--threads N` (N workers; 1 the plain
  loop, 0 one per core) overrides it. BLAS threads x workers: with the default, never more than
  the cores (at most 8); with --threads N, N.

How it is applied. `blas_held()` is a context manager and `holds_blas` a decorator around rnnlm's
public entry points (the training loops, `PackedModel`'s loss methods, the output layer's
`softmax_cross_entropy` and `ClassSoftmax.loss`, the tree models' losses and predictions,
generation). It is scoped, not set at import: the user's other NumPy code keeps its own BLAS
threads. It nests: only a scope that changes the count calls threadpoolctl (about 6 us with the
cached controller, more than 0.1 ms building one), so a training run enters it once, not once per
step, and an inner call costs a list append under a lock.
No environment variable is needed (OPENBLAS_NUM_THREADS=1 used to be).

`BLAS_THREADS = None` (set `rnnlm.nn.threads.BLAS_THREADS`) leaves BLAS alone: the old behaviour,
kept for measurements (`benchmarks/bench_fast.py --busy`).
"""

import functools
import os
import threading
from concurrent.futures import ThreadPoolExecutor

BLAS_THREADS = 1  # BLAS threads inside rnnlm's work; None: BLAS's own setting

_controller = None
_lock = threading.Lock()
# the scopes entered and not yet left, innermost last: (BLAS threads or None, the threadpoolctl limit it set or None).
# Process-wide, like BLAS's own thread count.
_scopes = []
_pools = {}


def available_cores():
    """CPU cores this process may run on (the affinity mask where the OS has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return max(1, os.cpu_count() or 1)


# the automatic choice (threads None) uses one worker per core for a full softmax of at least this many
# multiply-adds per product (M tokens x C words x H units): below it a chunk is too small to pay for the pool
AUTO_MIN_WORK = 2 ** 24


def resolve_threads(threads, work=None):
    """The output layer's workers as a positive count.

    threads: a positive count (taken as it is), 0 (one per available core, at most 8) or None, the
    default, automatic: one per core when `work` (M x C x H of the full softmax's products) is at
    least AUTO_MIN_WORK, else 1 (the class softmax and small layers: the plain loop).
    """
    if threads is None:
        return resolve_threads(0) if work is not None and work >= AUTO_MIN_WORK else 1
    if not threads:
        return min(8, available_cores())
    return int(threads)


def pool(n):
    """The shared pool of `n` worker threads (created once per n, kept for the process)."""
    with _lock:
        if n not in _pools:
            _pools[n] = ThreadPoolExecutor(max_workers=n, thread_name_prefix="rnnlm-softmax")
        return _pools[n]


def _blas_controller():
    global _controller
    if _controller is None:
        from threadpoolctl import ThreadpoolController
        _controller = ThreadpoolController()
    return _controller


class _Held:
    """The context `blas_held` returns: it calls threadpoolctl only when the scope around it holds another count."""

    __slots__ = ("threads",)

    def __init__(self, threads):
        self.threads = threads

    def __enter__(self):
        with _lock:
            current = _scopes[-1][0] if _scopes else None
            limit = None
            if self.threads is not None and self.threads != current:
                limit = _blas_controller().limit(limits=self.threads, user_api="blas")
            _scopes.append((self.threads if self.threads is not None else current, limit))
        return self

    def __exit__(self, *exc):
        with _lock:
            _, limit = _scopes.pop()
            if limit is not None:
                limit.restore_original_limits()
        return False


def blas_held(threads=None):
    """A context in which BLAS uses `threads` threads (default `BLAS_THREADS`, one); nested scopes are free.

    The limit is process-wide (BLAS has one thread count per process); scopes are expected to nest
    (entered and left in order), as they do in rnnlm. threads None (with `BLAS_THREADS = None`): BLAS as it is.
    """
    return _Held(BLAS_THREADS if threads is None else threads)


def holds_blas(function):
    """Decorator: run `function` inside `blas_held()` (rnnlm's public entry points)."""
    @functools.wraps(function)
    def held(*args, **kwargs):
        with blas_held():
            return function(*args, **kwargs)
    return held


def threads_held(threads, classes=None):
    """The context a model runs a whole loss computation in (`PackedModel`'s entry points).

    With the output layer's workers or the class softmax (`classes` a `ClassSoftmax`) BLAS is held
    to one thread throughout, whatever BLAS_THREADS says. (An OpenBLAS thread woken by the
    recurrence's products keeps spinning for a while and competes with the workers: measured 131 ms
    per batch instead of 94; and every product of a class-softmax step is small: a FastRNN step at
    C = 8000, H = 100, batch 64 x 45 took 10.5 ms instead of 11.8.) Otherwise the policy, `blas_held()`.
    threads None (automatic) counts as workers: the output layer may choose them.
    """
    if threads is None or resolve_threads(threads) > 1 or classes is not None:
        return one_blas_thread()
    return blas_held()


def one_blas_thread():
    """A context in which BLAS uses exactly one thread, whatever `BLAS_THREADS` says: the output layer's
    worker pool and the class softmax's many small products need it (workers x BLAS threads <= cores)."""
    return _Held(1)

"""The output layer of every model: softmax cross-entropy over the vocabulary, full or class-based.

What this module owns: the output layers built on `rnnlm.nn.numerics` (the full softmax
cross-entropy with its gradients, the class-based softmax, their scores for generation, the
word classes). The thread policy they run under (BLAS threads, the worker pool) is `rnnlm.nn.threads`. The stable elementwise functions
themselves (softmax, log_softmax, cross_entropy) live in `rnnlm.nn.numerics`. `FastRNN` (logits
V s_t, V (C, H)), `LanguageModel` (logits h W_out + b_out, W_out (H, C)) and the Tree-LSTM's
node classifier call the layers here; `rnnlm.models.reference.RNNNumpy` keeps its own
loop-by-loop loss on `numerics.softmax` / `cross_entropy` as the oracle the tests use.

Letters: M tokens (rows of h), H hidden units, C vocabulary size, K classes. Row vectors:

    logits = h W + b                      h (M, H), W (H, C), b (C,) or None
    loss   = -sum_m log softmax(logits_m)[y_m]
    dlogits = softmax(logits) - onehot(y)

Full softmax, `softmax_cross_entropy`: what makes it fast, in the order the time is spent.

1. The three C x H products (logits, dW, dh) run as matrix multiplies in h's dtype (float32
   when training, float64 in gradient checks; W is cast to it) over chunks of
   `rows` tokens, so memory is bounded by rows x C. Only two other passes touch a chunk's
   (m, C) block: one exp, and the gather of the target logits.
2. The softmax is never normalised explicitly. With E = exp(logits) and z = E 1,

       dW = h^T (E / z) - h^T onehot(y)        dh = (E / z) W^T - W[:, y]^T

   so 1/z scales the (m, H) side, never the (m, C) block; the onehot terms are a gather (dh)
   and m entries of the block (E - z onehot(y), before the dW product); and
   z comes out of the dh product as an extra column: E [W^T | 1] (the fused sums). With a
   bias, db comes out of the dW product the same way: [h | 1]^T (E / z).
3. exp(x) is computed as exp2(log2(e) x), which NumPy runs about 2.5x faster (measured in float32);
   log2(e) is folded into the weights once per call.
4. The max-subtraction pass of a stable softmax is skipped only when a bound on |logits|
   (largest column norm of W times largest row norm of h, plus the largest |b|) proves exp
   can neither overflow nor underflow to zero (`EXP_SAFE`); otherwise every row is shifted.
5. With more than one worker (`threads`, resolved by `rnnlm.nn.threads.resolve_threads`: by
   default one per core for large layers) the chunks run in a small thread pool (NumPy releases
   the GIL in its products and its exp), each worker with its own block and accumulators, while
   BLAS is held to one thread so the two kinds of threads do not fight (threadpoolctl). With one
   worker: one loop, BLAS as the thread policy holds it (one thread, `rnnlm.nn.threads`).

Class-based softmax, `ClassSoftmax` (Mikolov et al. 2011, "Extensions of recurrent neural
network language model"): each word w belongs to one class c(w), and

    P(w | h) = P(c(w) | h) P(w | c(w), h) = softmax(h W_class + b_class)[c(w)]
                                            x softmax over the words of c(w) of (h W + b)[w]

Both factors are full softmaxes computed by `softmax_cross_entropy` (the first over K classes,
the second over one class's words, for the tokens whose target is in that class), so the
probabilities are exactly normalised and cost about (K + C / K) H per token instead of C H.
Words are binned by frequency (`frequency_classes`) into K ~ sqrt(C) classes.
"""

import math
from typing import NamedTuple

import numpy as np

from rnnlm.nn.numerics import log_softmax
from rnnlm.nn.threads import holds_blas, one_blas_thread, pool, resolve_threads

# exp(x) of float32 neither overflows (summed over C words) nor underflows to zero for
# |x| <= 40, so logits bounded by this need no max-subtraction pass.
EXP_SAFE = 40.0
_LOG2E = 1.4426950408889634  # log2(e)
_LN2 = 0.6931471805599453  # ln(2) = 1 / log2(e)


def _chunks(M, rows, threads):
    """[(a, b)] row ranges: at most `rows` each, and with threads, a multiple of `threads` of even size."""
    if M == 0:
        return []
    count = math.ceil(M / rows)
    if threads > 1:
        count = threads * math.ceil(count / threads)
    size = math.ceil(M / count)
    return [(a, min(M, a + size)) for a in range(0, M, size)]


# --------------------------------------------------------------------- the full softmax

def exp_bound(h, W, b=None):
    """An upper bound on |logits| = |h W + b|: max column norm of W x max row norm of h (+ max |b|)."""
    if h.shape[0] == 0 or W.shape[1] == 0:
        return 0.0
    w = float(np.sqrt(np.max(np.einsum("hc,hc->c", W, W))))
    s = float(np.sqrt(np.max(np.einsum("mh,mh->m", h, h))))
    return w * s + (float(np.max(np.abs(b))) if b is not None else 0.0)


@holds_blas
def softmax_cross_entropy(h, targets, W, b=None, gradients=True, rows=1024, threads=1, bound=None):
    """Summed cross-entropy of logits = h W + b over M tokens, and its gradients.

    h (M, H) float, targets (M,) int in [0, C), W (H, C) (any layout: FastRNN passes V.T),
    b (C,) or None. rows: tokens per chunk (memory: rows x C per worker). threads: workers
    for the chunks (1: the plain loop; 0: one per core; None: automatic, see `rnnlm.nn.threads.resolve_threads`). bound: an
    upper bound on |logits| if the caller knows one (else `exp_bound` computes it). Returns (loss, dh (M, H), dW (H, C), db (C,) or None),
    or (loss, None, None, None) without `gradients`.
    """
    h = np.ascontiguousarray(h)
    targets = np.asarray(targets, dtype=np.int64)
    M, H = h.shape
    C = W.shape[1]
    shift = (exp_bound(h, W, b) if bound is None else bound) > EXP_SAFE
    ops = _operands(h, targets, W, b, gradients, shift)
    threads = resolve_threads(threads, work=M * C * H)
    chunks = _chunks(M, max(1, int(rows)), threads)
    workers = min(threads, len(chunks))
    if workers <= 1:
        results = [_chunks_loss(ops, chunks)]
    else:
        with one_blas_thread():
            results = list(pool(threads).map(lambda part: _chunks_loss(ops, part),
                                             [chunks[i::workers] for i in range(workers)]))
    loss = sum(r[0] for r in results)
    if not gradients:
        return loss, None, None, None
    acc = results[0][1]
    for r in results[1:]:
        acc += r[1]
    # the -onehot(y) half of softmax - onehot(y) for dh: dh_m loses W[:, y_m] (a gather)
    has_bias = b is not None
    dW = acc[:H] if has_bias else acc
    db = acc[H].copy() if has_bias else None
    dh = ops.dh1[:, :H] - W.T[targets]
    return loss, dh, np.ascontiguousarray(dW), db


class _Operands(NamedTuple):
    """What every chunk of `softmax_cross_entropy` reads (and, for dh1, writes its own rows of)."""
    h: np.ndarray        # (M, H)
    h1: np.ndarray       # (M, H + 1) [h | 1] with a bias, else h: (h1 r)^T E holds dW (and db in its last row)
    targets: np.ndarray  # (M,)
    W2: np.ndarray       # (H, C) log2(e) W, C-contiguous: exp2(log2(e) x) = exp(x)
    b2: object           # (C,) log2(e) b, or None
    W1: object           # (C, H + 1) [W^T | 1]: one product gives E W^T and z = E 1; None without gradients
    dh1: object          # (M, H + 1) [E W^T | z] per row, scaled to softmax W^T; None without gradients
    shift: bool          # subtract each row's max before exp (a bound said exp could overflow)
    gradients: bool


def _operands(h, targets, W, b, gradients, shift):
    dtype = h.dtype
    M, H = h.shape
    C = W.shape[1]
    W2 = np.multiply(W, dtype.type(_LOG2E), order="C")  # one pass, any layout (FastRNN passes V.T)
    if W2.dtype != dtype:
        W2 = W2.astype(dtype)
    b2 = (b * dtype.type(_LOG2E)).astype(dtype) if b is not None else None
    W1 = dh1 = None
    h1 = h
    if gradients:
        W1 = np.empty((C, H + 1), dtype=dtype)
        W1[:, :H] = W.T
        W1[:, H] = 1
        dh1 = np.empty((M, H + 1), dtype=dtype)
        if b is not None:
            h1 = np.empty((M, H + 1), dtype=dtype)
            h1[:, :H] = h
            h1[:, H] = 1
    return _Operands(h, h1, targets, W2, b2, W1, dh1, shift, gradients)


def _chunks_loss(ops, ranges):
    """The summed loss of the token ranges [(a, e), ...] and the sum of their (H [+1], C) gradient products."""
    h, targets, gradients = ops.h, ops.targets, ops.gradients
    H, C = ops.W2.shape
    size = max((e - a for a, e in ranges), default=0)
    block = np.empty((size, C), dtype=h.dtype)
    acc = None  # the first chunk's product, then the sum of them
    loss = 0.0
    for a, e in ranges:
        m = e - a
        logits = block[:m]
        flat = logits.reshape(-1)  # a view: the block's rows are contiguous
        picked = np.arange(0, m * C, C) + targets[a:e]  # flat positions of the target logits
        np.matmul(h[a:e], ops.W2, out=logits)  # (m, C): log2(e) (h W + b)
        if ops.b2 is not None:
            logits += ops.b2
        if ops.shift:
            logits -= logits.max(axis=1, keepdims=True)
        loss -= _LN2 * float(flat[picked].sum(dtype=np.float64))
        np.exp2(logits, out=logits)  # E, the unnormalised softmax
        if gradients:
            np.matmul(logits, ops.W1, out=ops.dh1[a:e])  # (m, H + 1): [E W^T | z]
            z = ops.dh1[a:e, H]
        else:
            z = logits.sum(axis=1)
        loss += float(np.log(z, dtype=np.float64).sum())  # log z in float64
        if gradients:
            r = (1.0 / z)[:, None]  # (m, 1): softmax = E / z, applied to the (m, H) sides only
            ops.dh1[a:e, :H] *= r
            # E - z onehot(y), so that (E - z onehot(y)) / z = softmax - onehot(y) in the dW product
            flat[picked] -= z
            product = (ops.h1[a:e] * r).T @ logits
            if acc is None:
                acc = product
            else:
                acc += product
    if gradients and acc is None:  # no rows
        acc = np.zeros((ops.h1.shape[1], C), dtype=h.dtype)
    return loss, acc


# the same without the thread policy's scope, for callers already inside one (the class softmax's per-class loop)
_softmax_cross_entropy = softmax_cross_entropy.__wrapped__


def logits_of(h, W, b=None):
    """The pre-softmax scores h W + b: h (n, H), W (H, C) -> (n, C)."""
    out = h @ W
    return out + b if b is not None else out


# --------------------------------------------------------------------- the class-based softmax

def frequency_classes(counts, num_classes):
    """Bin words into `num_classes` classes by frequency (the RNNLM toolkit's rule): (C,) int class ids.

    Words sorted by count (descending) fill class 0 until it holds 1/K of the total count,
    then class 1, and so on; frequent words get small classes, rare words share big ones.
    Every class gets at least one word (the tail is spread over classes left empty).
    counts: (C,) non-negative numbers, C >= num_classes.
    """
    counts = np.asarray(counts, dtype=np.float64)
    C, K = len(counts), int(num_classes)
    if not 1 <= K <= C:
        raise ValueError(f"cannot bin {C} words into {K} classes")
    total = counts.sum()
    order = np.argsort(-counts, kind="stable")
    word_class = np.empty(C, dtype=np.int64)
    share, a = 0.0, 0
    for rank, w in enumerate(order):
        word_class[w] = a
        share += counts[w] / total if total > 0 else 1.0 / C
        words_left, classes_left = C - rank - 1, K - 1 - a
        if classes_left > 0 and (share > (a + 1) / K or words_left == classes_left):
            a += 1
    return word_class


def zipf_counts(vocab_size):
    """Stand-in counts when none are known: word i (vocabularies are sorted by frequency) gets 1/(i + 1)."""
    return 1.0 / np.arange(1, vocab_size + 1)


class ClassSoftmax:
    """The class-based output layer: P(w | h) = P(c(w) | h) P(w | c(w), h), exactly normalised.

    word_class: (C,) int, word -> class in [0, K); every class must hold at least one word.
    Parameters are passed to each call: W (H, C), b (C,) or None for the words; Wc (H, K),
    bc (K,) or None for the classes.
    """

    def __init__(self, word_class, num_classes):
        word_class = np.asarray(word_class, dtype=np.int64)
        sizes = np.bincount(word_class, minlength=num_classes)
        if len(sizes) != num_classes or np.any(sizes == 0):
            raise ValueError(f"every one of the {num_classes} classes needs at least one word")
        self.word_class = word_class
        self.num_classes = int(num_classes)
        order = np.argsort(word_class, kind="stable")
        self.members = np.split(order, np.cumsum(sizes)[:-1])  # class c -> its word ids (ascending)
        self.position = np.empty(len(word_class), dtype=np.int64)  # word -> index within its class
        for words in self.members:
            self.position[words] = np.arange(len(words))
        self.sizes = sizes  # (K,) words per class
        self._word_order = order  # (C,) word ids, class by class
        self._word_starts = np.concatenate([[0], np.cumsum(sizes)])  # (K + 1,) class c: _word_order[s[c]:s[c + 1]]
        # a class's words as a slice where they are consecutive ids (always so for frequency classes over
        # a frequency-sorted vocabulary): W[:, slice] is then a view, and dW[:, slice] = ... a block copy
        self._columns = [slice(int(w[0]), int(w[-1]) + 1) if w[-1] - w[0] == len(w) - 1 else w
                         for w in self.members]

    @holds_blas
    def loss(self, h, targets, W, b, Wc, bc, gradients=True, rows=1024, threads=1):
        """Summed -log P(y | h) over M tokens. Returns (loss, dh, dW, db, dWc, dbc) (gradients None without)."""
        h = np.ascontiguousarray(h)
        targets = np.asarray(targets, dtype=np.int64)
        M = h.shape[0]
        cls = self.word_class[targets]
        # automatic threads (None): the plain loop here too, every product of this layer is small
        threads = 1 if threads is None else threads
        loss, dh, dWc, dbc = softmax_cross_entropy(h, cls, Wc, bc, gradients, rows, threads)
        # tokens sorted by class once: a class's tokens are then the rows a:e of one gathered copy of h,
        # and their within-class gradients rows a:e of one block, scattered back once
        order = np.argsort(cls, kind="stable")
        token_starts = np.concatenate([[0], np.cumsum(np.bincount(cls, minlength=self.num_classes))])
        h_sorted = h[order]
        position = self.position[targets[order]]
        # a class of one word contributes log 1 = 0 and no gradient: it is skipped
        busy = np.flatnonzero((token_starts[1:] > token_starts[:-1]) & (self.sizes > 1))
        # exp_bound's norms, maximised per class in one pass each: a class's bound is the max over its own words and tokens
        w_max = np.maximum.reduceat(np.sqrt(np.einsum("hc,hc->c", W, W))[self._word_order], self._word_starts[:-1])
        b_max = (np.maximum.reduceat(np.abs(b)[self._word_order], self._word_starts[:-1]) if b is not None
                 else np.zeros(self.num_classes))
        h_norms = np.sqrt(np.einsum("mh,mh->m", h_sorted, h_sorted))
        h_max = np.maximum.reduceat(h_norms, token_starts[busy]) if len(busy) else np.zeros(0)
        bounds = w_max[busy].astype(np.float64) * h_max + b_max[busy]
        if gradients:
            # W's own layout (a class's words are then contiguous for V^T), written class by class: only the
            # words of classes without a product (one word, or no target) are zero-filled
            dW = np.empty_like(W, dtype=h.dtype)
            db = np.empty(b.shape, dtype=h.dtype) if b is not None else None
            idle = np.ones(self.num_classes, dtype=bool)
            idle[busy] = False
            idle_words = self._word_order[np.repeat(idle, self.sizes)]
            dW[:, idle_words] = 0
            if db is not None:
                db[idle_words] = 0
            dh_sorted = np.zeros_like(h_sorted)

        def within(groups):
            """P(w | c(w), h) for the tokens of some classes; classes own disjoint tokens and words."""
            total = 0.0
            for c, bound in groups:
                a, e = token_starts[c], token_starts[c + 1]
                words = self._columns[c]
                part = _softmax_cross_entropy(h_sorted[a:e], position[a:e], W[:, words],
                                             b[words] if b is not None else None, gradients, rows, bound=bound)
                total += part[0]
                if gradients:
                    dh_sorted[a:e] = part[1]
                    dW[:, words] = part[2]
                    if db is not None:
                        db[words] = part[3]
            return total

        groups = list(zip(busy.tolist(), bounds.tolist()))
        workers = min(resolve_threads(threads), len(groups))
        # many small products: BLAS threads cost more than they give, so they run one-threaded,
        # and with threads > 1 the classes are shared among our own workers
        with one_blas_thread():
            if workers <= 1:
                loss += within(groups)
            else:
                loss += sum(pool(workers).map(within, [groups[i::workers] for i in range(workers)]))
        if not gradients:
            return loss, None, None, None, None, None
        unsort = np.empty_like(order)
        unsort[order] = np.arange(M)
        dh += dh_sorted[unsort]  # a gather, cheaper than dh[order] += dh_sorted's gather and scatter
        return loss, dh, dW, db, dWc, dbc

    def log_probs(self, h, W, b, Wc, bc):
        """log P(w | h) for every word: h (n, H) -> (n, C), the exact normalised log-probabilities."""
        class_logp = log_softmax(logits_of(h, Wc, bc))  # (n, K)
        out = np.empty((h.shape[0], len(self.word_class)), dtype=np.result_type(h, W))
        for c, words in enumerate(self.members):
            out[:, words] = class_logp[:, c:c + 1] + log_softmax(logits_of(h, W[:, words],
                                                                           b[words] if b is not None else None))
        return out


# --------------------------------------------------------------------- what the models call

def output_loss(h, targets, W, b=None, Wc=None, bc=None, classes=None, gradients=True, rows=1024, threads=1):
    """The output layer's loss and gradients, full softmax (classes None) or class-based (a `ClassSoftmax`).

    Returns (loss, dh, {"W": dW, "b": db, "Wc": dWc, "bc": dbc}) with None for what the layer lacks;
    without `gradients`, (loss, None, None).
    """
    if classes is None:
        loss, dh, dW, db = softmax_cross_entropy(h, targets, W, b, gradients, rows, threads)
        dWc = dbc = None
    else:
        loss, dh, dW, db, dWc, dbc = classes.loss(h, targets, W, b, Wc, bc, gradients, rows, threads)
    if not gradients:
        return loss, None, None
    return loss, dh, {"W": dW, "b": db, "Wc": dWc, "bc": dbc}


def output_scores(h, W, b=None, Wc=None, bc=None, classes=None):
    """Scores whose softmax is P(w | h), (n, C): the logits h W + b, or the class softmax's log P(w | h)."""
    if classes is None:
        return logits_of(h, W, b)
    return classes.log_probs(h, W, b, Wc, bc)


def word_classes(config, counts=None):
    """The `ClassSoftmax` of a `ModelConfig` (None for the full softmax), words binned by `counts`.

    counts: (C,) corpus counts of the vocabulary's words; None assumes a frequency-sorted vocabulary.
    """
    K = config.classes
    if K is None:
        return None
    if counts is None or len(counts) != config.vocab_size or not np.any(np.asarray(counts) > 0):
        counts = zipf_counts(config.vocab_size)
    return ClassSoftmax(frequency_classes(counts, K), K)

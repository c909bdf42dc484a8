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

Both factors are full softmaxes (the first over K classes by `softmax_cross_entropy`, the second
over one class's words, for the tokens whose target is in that class, batched over all classes of
a step in padded products of classes of similar size), so the probabilities are exactly
normalised and cost about (K + C / K) H per token instead of C H.
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



class _Step:
    """What the buckets of one `ClassSoftmax.loss` call read (h sorted by class, a zero row last) and write."""

    def __init__(self, h, position, token_starts, Wt, b, gradients):
        self.h, self.position, self.token_starts, self.Wt, self.gradients = h, position, token_starts, Wt, gradients
        self.b = None if b is None else np.asarray(b, dtype=h.dtype)
        if gradients:
            self.dh = np.zeros((h.shape[0] - 1, h.shape[1]), dtype=h.dtype)
            self.dWt = np.zeros(Wt.shape, dtype=h.dtype)  # words of idle classes (one word, no target) stay 0
            self.db = None if b is None else np.zeros(len(b), dtype=h.dtype)


# a bucket's classes are padded to its largest: a class joins while it has at most this many times the words
# of the bucket's smallest (so padding at most doubles a bucket's words)
BUCKET_GROWTH = 2.0


def size_buckets(classes, sizes, growth=BUCKET_GROWTH):
    """`classes` (ids) sorted by size and cut into runs whose largest is at most growth x the smallest."""
    classes = classes[np.argsort(sizes[classes], kind="stable")]
    s = sizes[classes]
    cuts, first = [], 0
    for i in range(1, len(classes)):
        if s[i] > growth * s[first]:
            cuts.append(i)
            first = i
    return [part for part in np.split(classes, cuts) if len(part)]


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

    @holds_blas
    def loss(self, h, targets, W, b, Wc, bc, gradients=True, rows=1024, threads=1):
        """Summed -log P(y | h) over M tokens. Returns (loss, dh, dW, db, dWc, dbc) (gradients None without).

        The class part is one softmax over K (`softmax_cross_entropy`, `threads` workers). The within-class
        part is batched over the whole step: the tokens sorted by class once, the classes with a token
        and more than one word grouped into buckets of similar size (`size_buckets`), and each bucket
        computed with padded batched products, (k, T, H) x (k, H, S) for its k classes, T their most
        tokens, S their most words; padding is masked out, so probabilities and gradients stay exact.
        """
        h = np.ascontiguousarray(h)
        targets = np.asarray(targets, dtype=np.int64)
        M, H = h.shape
        cls = self.word_class[targets]
        # automatic threads (None): the plain loop here too, every product of this layer is small
        threads = 1 if threads is None else threads
        loss, dh, dWc, dbc = softmax_cross_entropy(h, cls, Wc, bc, gradients, rows, threads)
        order = np.argsort(cls, kind="stable")
        token_starts = np.concatenate([[0], np.cumsum(np.bincount(cls, minlength=self.num_classes))])
        h_sorted = np.zeros((M + 1, H), dtype=h.dtype)  # the last row: the zero state that pads a bucket
        h_sorted[:M] = h[order]
        step = _Step(h_sorted, self.position[targets[order]], token_starts,
                     np.ascontiguousarray(W.T, dtype=h.dtype),  # (C, H): a class's words are rows (V itself for FastRNN)
                     b, gradients)
        # a class of one word contributes log 1 = 0 and no gradient: it is skipped
        busy = np.flatnonzero((token_starts[1:] > token_starts[:-1]) & (self.sizes > 1))
        with one_blas_thread():  # many small products: BLAS threads cost more than they give
            for bucket in size_buckets(busy, self.sizes):
                loss += _bucket_loss(self, bucket, step)
        if not gradients:
            return loss, None, None, None, None, None
        unsort = np.empty_like(order)
        unsort[order] = np.arange(M)
        dh += step.dh[unsort]  # a gather, cheaper than dh[order] += dh_sorted's gather and scatter
        dW = step.dWt.T if W.flags.f_contiguous and not W.flags.c_contiguous else np.ascontiguousarray(step.dWt.T)
        return loss, dh, dW, step.db, dWc, dbc

    def log_probs(self, h, W, b, Wc, bc):
        """log P(w | h) for every word: h (n, H) -> (n, C), the exact normalised log-probabilities."""
        class_logp = log_softmax(logits_of(h, Wc, bc))  # (n, K)
        out = np.empty((h.shape[0], len(self.word_class)), dtype=np.result_type(h, W))
        for c, words in enumerate(self.members):
            out[:, words] = class_logp[:, c:c + 1] + log_softmax(logits_of(h, W[:, words],
                                                                           b[words] if b is not None else None))
        return out


def _bucket_loss(layer, bucket, step):
    """-sum log P(y | c(y), h) over the tokens of the classes `bucket` of the `ClassSoftmax` layer,
    gradients written into `step` (classes own disjoint tokens and words)."""
    M = step.h.shape[0] - 1
    counts = step.token_starts[bucket + 1] - step.token_starts[bucket]
    sizes = layer.sizes[bucket]
    t, j = np.arange(counts.max()), np.arange(sizes.max())
    tokens_in = t < counts[:, None]  # (k, T)
    words_in = j < sizes[:, None]  # (k, S)
    tok = np.where(tokens_in, step.token_starts[bucket][:, None] + t, M)  # padding: the zero row
    wid = layer._word_order[np.minimum(layer._word_starts[bucket][:, None] + j, len(layer._word_order) - 1)]
    hp, wp = step.h[tok], step.Wt[wid]  # (k, T, H), (k, S, H)
    logits = np.matmul(hp, wp.transpose(0, 2, 1))  # (k, T, S)
    pad = np.where(words_in, 0, -np.inf).astype(logits.dtype)
    if step.b is not None:
        pad += step.b[wid]
    logits += pad[:, None, :]
    logits -= logits.max(axis=2, keepdims=True)  # always shifted: exact, and safe for any scale
    target = np.where(tokens_in, step.position[np.minimum(tok, M - 1)], 0)[..., None]  # (k, T, 1)
    picked = np.take_along_axis(logits, target, axis=2)[..., 0]
    np.exp(logits, out=logits)  # E, zero on the padded words
    z = logits.sum(axis=2)  # (k, T)
    loss = float(((np.log(z, dtype=np.float64) - picked) * tokens_in).sum())
    if not step.gradients:
        return loss
    logits *= (tokens_in / z)[..., None]  # softmax on real tokens, 0 on padded ones
    kk, tt = np.nonzero(tokens_in)
    logits[kk, tt, target[kk, tt, 0]] -= 1  # softmax - onehot(y)
    step.dh[tok[tokens_in]] = np.matmul(logits, wp)[tokens_in]
    step.dWt[wid[words_in]] = np.matmul(logits.transpose(0, 2, 1), hp)[words_in]
    if step.db is not None:
        step.db[wid[words_in]] = logits.sum(axis=1)[words_in]
    return loss


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

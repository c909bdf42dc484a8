"""The binary Tree-LSTM (Tai et al., 2015, N-ary with N = 2) and its recursive, node-by-node reading copy.

Letters: N nodes in a batch, E embedding width, H hidden units, K = 5 sentiment classes.
Row vectors, as in rnnlm.nn.cells. A leaf reads its word's embedding x (N, E); an inner node
reads its two children's states (h_l, c_l) and (h_r, c_r), each (N, H):

    leaf:   [i, o, u] = x W_leaf + b_leaf                       (blocks of W_leaf (E, 3H))
            c = sigmoid(i) * tanh(u);  h = sigmoid(o) * tanh(c)
    inner:  [i, f_l, f_r, o, u] = [h_l, h_r] U + b              (blocks of U (2H, 5H))
            c = sigmoid(i) * tanh(u) + sigmoid(f_l) * c_l + sigmoid(f_r) * c_r;  h = sigmoid(o) * tanh(c)

Each forget gate sees both children (Tai's U^(f)_{kl}), so the cell can learn to keep the
left child's memory and drop the right's. Every node, leaf or inner, is classified:
p(y | node) = softmax(h W_s + b_s), and the loss is the cross-entropy summed over every
labelled node (the treebank labels every phrase).

Parameters: E (V, E), W_leaf (E, 3H), b_leaf (3H,), U (2H, 5H), b (5H,), W_s (H, K), b_s (K,).
Gradients come back in a dict with the same keys; dE is a `SparseGradient` over the words seen.

Three functions compute the same loss and gradients from the same parameters:
`recursive_loss_and_gradients` here (one node at a time, the reading copy), and the batched
`rnnlm.models.fold.fold_loss_and_gradients` and `rnnlm.models.spinn.spinn_loss_and_gradients`.
"""

from dataclasses import asdict, dataclass, fields
from typing import NamedTuple

import numpy as np

from rnnlm.nn.batching import segment_sum
from rnnlm.config import MAX_EMBED_SIZE, MAX_HIDDEN_SIZE, MAX_VOCABULARY_SIZE
from rnnlm.errors import ConfigError
from rnnlm.nn.inputs import check_trees
from rnnlm.nn.numerics import sigmoid, softmax
from rnnlm.nn.optim import SparseGradient
from rnnlm.nn.output import softmax_cross_entropy
from rnnlm.data.trees import NUM_CLASSES

MAX_CLASSES = 1000  # a bound for model files; the treebank has 5

METHODS = ("fold", "spinn", "recursive")


@dataclass(frozen=True)
class TreeLSTMConfig:
    """The shape of a Tree-LSTM sentiment model. vocab_size counts UNKNOWN_TOKEN and the special tokens."""

    vocab_size: int = 20000
    embed_size: int = 100
    hidden_size: int = 150
    num_classes: int = NUM_CLASSES

    def __post_init__(self):
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"{f.name} must be a positive integer, got {value!r}")
        if self.num_classes < 2:
            raise ConfigError(f"num_classes must be at least 2, got {self.num_classes}")
        for name, limit in (("vocab_size", MAX_VOCABULARY_SIZE), ("embed_size", MAX_EMBED_SIZE),
                            ("hidden_size", MAX_HIDDEN_SIZE), ("num_classes", MAX_CLASSES)):
            if getattr(self, name) > limit:
                raise ConfigError(f"{name} must be at most {limit}, got {getattr(self, name)}")

    def to_dict(self):
        return asdict(self)

    @classmethod
    def from_dict(cls, data):
        return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})


# --------------------------------------------------------------------- the cell

class LeafCache(NamedTuple):
    x: np.ndarray       # (N, E)
    i: np.ndarray       # (N, H) input gate
    o: np.ndarray       # (N, H) output gate
    u: np.ndarray       # (N, H) candidate
    tanh_c: np.ndarray  # (N, H)
    p: dict


def leaf_forward(x, p):
    """Leaf step: [i, o, u] = x W_leaf + b_leaf; c = sigmoid(i) tanh(u); h = sigmoid(o) tanh(c).

    x (N, E). Returns ((h, c) each (N, H), cache).
    """
    H = p["W_leaf"].shape[1] // 3
    a = x @ p["W_leaf"] + p["b_leaf"]
    i, o, u = sigmoid(a[:, :H]), sigmoid(a[:, H:2 * H]), np.tanh(a[:, 2 * H:])
    c = i * u
    tanh_c = np.tanh(c)
    return (o * tanh_c, c), LeafCache(x, i, o, u, tanh_c, p)


def leaf_backward(dh, dc, cache):
    """Backward of `leaf_forward`: dc_total = dc + dh o (1 - tanh(c)^2); da = [dc_total u i(1-i), dh tanh(c) o(1-o),
    dc_total i (1-u^2)]. Returns (dx (N, E), {"W_leaf": x^T da, "b_leaf": sum of da})."""
    x, i, o, u, tanh_c, p = cache
    dc = dc + dh * o * (1 - tanh_c * tanh_c)
    da = np.concatenate([dc * u * i * (1 - i), dh * tanh_c * o * (1 - o), dc * i * (1 - u * u)], axis=1)
    return da @ p["W_leaf"].T, {"W_leaf": x.T @ da, "b_leaf": da.sum(axis=0)}


class ComposeCache(NamedTuple):
    hlr: np.ndarray     # (N, 2H) [h_l, h_r]
    c_l: np.ndarray     # (N, H)
    c_r: np.ndarray     # (N, H)
    i: np.ndarray       # (N, H) input gate
    f_l: np.ndarray     # (N, H) forget gate of the left child's memory
    f_r: np.ndarray     # (N, H) forget gate of the right child's memory
    o: np.ndarray       # (N, H) output gate
    u: np.ndarray       # (N, H) candidate
    tanh_c: np.ndarray  # (N, H)
    p: dict


def compose_forward(h_l, c_l, h_r, c_r, p):
    """Inner step: [i, f_l, f_r, o, u] = [h_l, h_r] U + b; c = i u + f_l c_l + f_r c_r; h = o tanh(c).

    (sigmoid on i, f_l, f_r, o; tanh on u.) All inputs (N, H). Returns ((h, c), cache).
    """
    H = h_l.shape[1]
    hlr = np.concatenate([h_l, h_r], axis=1)
    a = hlr @ p["U"] + p["b"]
    gates = sigmoid(a[:, :4 * H])
    i, f_l, f_r, o = gates[:, :H], gates[:, H:2 * H], gates[:, 2 * H:3 * H], gates[:, 3 * H:]
    u = np.tanh(a[:, 4 * H:])
    c = i * u + f_l * c_l + f_r * c_r
    tanh_c = np.tanh(c)
    return (o * tanh_c, c), ComposeCache(hlr, c_l, c_r, i, f_l, f_r, o, u, tanh_c, p)


def compose_backward(dh, dc, cache):
    """Backward of `compose_forward`. dh, dc (N, H): the gradient reaching the node's h and c.

    dc_total = dc + dh o (1 - tanh(c)^2); dc_l = dc_total f_l; dc_r = dc_total f_r;
    gate pre-activations: di = dc_total u i(1-i), df_l = dc_total c_l f_l(1-f_l), df_r likewise,
    do = dh tanh(c) o(1-o), du = dc_total i (1-u^2); [dh_l, dh_r] = da U^T.
    Returns ((dh_l, dc_l), (dh_r, dc_r), {"U": [h_l, h_r]^T da, "b": sum of da}).
    """
    hlr, c_l, c_r, i, f_l, f_r, o, u, tanh_c, p = cache
    H = c_l.shape[1]
    dc = dc + dh * o * (1 - tanh_c * tanh_c)
    da = np.concatenate([dc * u * i * (1 - i), dc * c_l * f_l * (1 - f_l), dc * c_r * f_r * (1 - f_r),
                         dh * tanh_c * o * (1 - o), dc * i * (1 - u * u)], axis=1)
    dhlr = da @ p["U"].T
    return (dhlr[:, :H], dc * f_l), (dhlr[:, H:], dc * f_r), {"U": hlr.T @ da, "b": da.sum(axis=0)}


# --------------------------------------------------------------------- parameters

def init_params(config, seed=0, dtype=np.float64):
    """Uniform(-1/sqrt(fan_in), 1/sqrt(fan_in)) weights, embeddings Uniform(-0.1, 0.1), zero biases except
    the forget gates' (+1, so a fresh cell passes its children's memory up the tree)."""
    rng = np.random.default_rng(seed)
    V, E, H, K = config.vocab_size, config.embed_size, config.hidden_size, config.num_classes

    def uniform(shape, bound):
        return rng.uniform(-bound, bound, size=shape).astype(dtype)

    shapes = param_shapes(config)
    b = np.zeros(shapes["b"], dtype=dtype)
    b[H:3 * H] = 1.0
    return {"E": uniform(shapes["E"], 0.1), "W_leaf": uniform(shapes["W_leaf"], 1 / np.sqrt(E)),
            "b_leaf": np.zeros(shapes["b_leaf"], dtype=dtype), "U": uniform(shapes["U"], 1 / np.sqrt(2 * H)),
            "b": b, "W_s": uniform(shapes["W_s"], 1 / np.sqrt(H)), "b_s": np.zeros(shapes["b_s"], dtype=dtype)}


def param_shapes(config):
    """The shape of every parameter of a model of `config` (what a model file must store), allocating nothing."""
    V, E, H, K = config.vocab_size, config.embed_size, config.hidden_size, config.num_classes
    return {"E": (V, E), "W_leaf": (E, 3 * H), "b_leaf": (3 * H,), "U": (2 * H, 5 * H), "b": (5 * H,),
            "W_s": (H, K), "b_s": (K,)}


def zero_grads(params):
    """Dense zero gradients for every parameter but E (whose gradient is sparse)."""
    return {k: np.zeros_like(v) for k, v in params.items() if k != "E"}


def embedding_gradient(words, dx):
    """dE as a SparseGradient: the rows dx (n, E) of the leaves, summed per word id words (n,)."""
    ids, rows = segment_sum(np.asarray(words, dtype=np.int64), dx)
    return SparseGradient(ids, rows, axis=0)


def score_nodes(params, h, labels, gradients=True):
    """The classifier over a table of node states: h (M, H), labels (M,) (-1: not scored).

    Returns (summed cross-entropy, dh (M, H) with zeros on unscored rows, grads: zero_grads with
    dW_s and db_s filled in), or (loss, None, None) when gradients=False.
    """
    scored = np.flatnonzero(labels >= 0)
    loss, dh_scored, dW_s, db_s = softmax_cross_entropy(h[scored], labels[scored], params["W_s"], params["b_s"],
                                               gradients=gradients)
    if not gradients:
        return loss, None, None
    grads = zero_grads(params)
    grads["W_s"] += dW_s
    grads["b_s"] += db_s
    dh = np.zeros_like(h)
    dh[scored] = dh_scored
    return loss, dh, grads


def leaves_backward(dh, dc, cache, words, grads):
    """`leaf_backward` for a batch of leaves, adding dW_leaf, db_leaf to `grads` and setting grads["E"] (sparse)."""
    dx, g = leaf_backward(dh, dc, cache)
    grads["W_leaf"] += g["W_leaf"]
    grads["b_leaf"] += g["b_leaf"]
    grads["E"] = embedding_gradient(words, dx)
    return grads


# --------------------------------------------------------------------- the reading copy

def recursive_loss_and_gradients(params, trees, gradients=True):
    """Summed node cross-entropy of `trees` (list of `rnnlm.data.trees.EncodedTree`) and its gradients.

    One node at a time, walking down from the root (an explicit stack, so any depth works): the way
    the model reads on paper, and the oracle the batched versions are tested against. Nodes with label -1 are not scored.
    Returns (loss, grads) (grads None when gradients=False).
    """
    grads = zero_grads(params)
    leaf_words, leaf_dx = [], []
    total = 0.0
    zeros = np.zeros((1, params["U"].shape[0] // 2), dtype=params["U"].dtype)
    for tree in trees:
        caches = {}  # node -> (cell cache, its h, its c)
        root = tree.num_nodes - 1
        # The recursion, written with an explicit stack so that a tree as deep as it is long (a
        # right-branching sentence of thousands of words) does not reach Python's recursion limit.
        # forward(k): forward(left), forward(right), then the node itself (the same order as the recursion)
        todo = [(root, False)]
        while todo:
            k, children_done = todo.pop()
            if tree.left[k] < 0:
                (h, c), cache = leaf_forward(params["E"][tree.word[k]][None, :], params)
            elif not children_done:
                todo.extend(((k, True), (tree.right[k], False), (tree.left[k], False)))
                continue
            else:
                _, h_l, c_l = caches[tree.left[k]]
                _, h_r, c_r = caches[tree.right[k]]
                (h, c), cache = compose_forward(h_l, c_l, h_r, c_r, params)
            caches[k] = (cache, h, c)
            if tree.label[k] >= 0:
                loss, _, _, _ = softmax_cross_entropy(h, tree.label[k:k + 1], params["W_s"], params["b_s"], gradients=False)
                total += loss
        if not gradients:
            continue
        # backward(k, dh, dc): the node itself, then backward(left, ...), then backward(right, ...)
        todo = [(root, zeros, zeros)]
        while todo:
            k, dh, dc = todo.pop()
            cache, h, _ = caches[k]
            if tree.label[k] >= 0:
                _, dh_own, dW_s, db_s = softmax_cross_entropy(h, tree.label[k:k + 1], params["W_s"], params["b_s"])
                grads["W_s"] += dW_s
                grads["b_s"] += db_s
                dh = dh + dh_own
            if tree.left[k] < 0:
                dx, g = leaf_backward(dh, dc, cache)
                leaf_words.append(tree.word[k])
                leaf_dx.append(dx[0])
            else:
                (dh_l, dc_l), (dh_r, dc_r), g = compose_backward(dh, dc, cache)
                todo.append((tree.right[k], dh_r, dc_r))
                todo.append((tree.left[k], dh_l, dc_l))  # popped first: the left subtree before the right
            for name, value in g.items():
                grads[name] += value
    if not gradients:
        return total, None
    E = params["E"]
    dx = np.array(leaf_dx, dtype=E.dtype).reshape(-1, E.shape[1])
    grads["E"] = embedding_gradient(leaf_words, dx)
    return total, grads


# --------------------------------------------------------------------- the model

class TreeLSTM:
    """A Tree-LSTM sentiment classifier: `params`, `config`, and one of three ways to run it.

    method: "fold" (default; `rnnlm.models.fold`), "spinn" (`rnnlm.models.spinn`) or "recursive" (this module).
    All three give the same numbers; they differ in speed only.
    """

    def __init__(self, config, seed=0, dtype=np.float64, method="fold"):
        if method not in METHODS:
            raise ConfigError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
        self.config = config
        self.params = init_params(config, seed=seed, dtype=dtype)
        self.method = method

    def loss_and_gradients(self, trees):
        """(summed node cross-entropy, grads dict keyed like params; dE sparse) over encoded `trees`."""
        check_trees(trees, self.config.vocab_size, self.config.num_classes)
        if self.method == "recursive":
            return recursive_loss_and_gradients(self.params, trees)
        if self.method == "spinn":
            from rnnlm.models.spinn import spinn_loss_and_gradients
            return spinn_loss_and_gradients(self.params, trees)
        from rnnlm.models.fold import fold_loss_and_gradients
        return fold_loss_and_gradients(self.params, trees)

    def node_probabilities(self, trees):
        """Per tree, (M, K) class probabilities of its nodes in post-order (the root last); batched by fold."""
        check_trees(trees, self.config.vocab_size, self.config.num_classes)
        from rnnlm.models.fold import fold_states
        states, offsets = fold_states(self.params, trees)
        probs = softmax(states @ self.params["W_s"] + self.params["b_s"])
        return [probs[offsets[n]:offsets[n + 1]] for n in range(len(trees))]

"""The Tree-LSTM sentiment model: its configuration, parameters, and the class that runs one executor.

The cell math (leaf and inner node, forward/backward pairs, the node classifier) is in
`rnnlm.models.tree_cells`; three executors run it over whole trees with the same loss and
gradients: `rnnlm.models.tree_recursive` (node by node, the reading copy), `rnnlm.models.fold`
(dynamic batching by height) and `rnnlm.models.spinn` (shift/reduce). `TreeLSTM(method=...)` picks one.

Parameters: E (V, E), W_leaf (E, 3H), b_leaf (3H,), U (2H, 5H), b (5H,), W_s (H, K), b_s (K,).
"""

from dataclasses import dataclass

import numpy as np

from rnnlm.config import (MAX_EMBED_SIZE, MAX_HIDDEN_SIZE, MAX_VOCABULARY_SIZE, _Config, _positive_int, _require,
                          plain_numbers)
from rnnlm.data.trees import NUM_CLASSES
from rnnlm.errors import ConfigError
from rnnlm.models.fold import fold_total_loss_and_gradients, fold_states
from rnnlm.models.spinn import spinn_total_loss_and_gradients
from rnnlm.models.tree_recursive import recursive_total_loss_and_gradients
from rnnlm.nn.inputs import check_trees
from rnnlm.nn.numerics import softmax
from rnnlm.nn.threads import holds_blas

MAX_CLASSES = 1000  # a bound for model files; the treebank has 5

METHODS = ("fold", "spinn", "recursive")


@dataclass(frozen=True)
class TreeLSTMConfig(_Config):
    """The shape of a Tree-LSTM sentiment model. vocab_size counts UNKNOWN_TOKEN and the special tokens.

    A `config._Config`: validated on construction, to_dict / from_dict for model files, like `ModelConfig`.
    """

    vocab_size: int = 20000
    embed_size: int = 100
    hidden_size: int = 150
    num_classes: int = NUM_CLASSES

    def __post_init__(self):
        plain_numbers(self)
        for name, limit in (("vocab_size", MAX_VOCABULARY_SIZE), ("embed_size", MAX_EMBED_SIZE),
                            ("hidden_size", MAX_HIDDEN_SIZE), ("num_classes", MAX_CLASSES)):
            _positive_int(name, getattr(self, name), limit)
        _require(self.num_classes >= 2, f"num_classes must be at least 2, got {self.num_classes}")


# --------------------------------------------------------------------- parameters

def init_params(config, seed=0, dtype=np.float64):
    """Uniform(-1/sqrt(fan_in), 1/sqrt(fan_in)) weights, embeddings Uniform(-0.1, 0.1), zero biases except
    the forget gates' (+1, so a fresh cell passes its children's memory up the tree)."""
    rng = np.random.default_rng(seed)
    E, H = config.embed_size, config.hidden_size

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


# --------------------------------------------------------------------- the model

class TreeLSTM:
    """A Tree-LSTM sentiment classifier: `params`, `config`, and one of three ways to run it.

    method: "fold" (default; `rnnlm.models.fold`), "spinn" (`rnnlm.models.spinn`) or "recursive" (`rnnlm.models.tree_recursive`).
    All three give the same numbers; they differ in speed only.
    """

    def __init__(self, config, seed=0, dtype=np.float64, method="fold"):
        if method not in METHODS:
            raise ConfigError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
        self.config = config
        self.params = init_params(config, seed=seed, dtype=dtype)
        self.method = method

    @holds_blas
    def total_loss_and_gradients(self, trees):
        """Returns (sum over the scored nodes of all `trees` of -log p(label), grads of that sum; dE sparse).

        A sum, not a mean: the tree training loop divides the grads by the number of trees."""
        check_trees(trees, self.config.vocab_size, self.config.num_classes)
        if self.method == "recursive":
            return recursive_total_loss_and_gradients(self.params, trees)
        if self.method == "spinn":
            return spinn_total_loss_and_gradients(self.params, trees)
        return fold_total_loss_and_gradients(self.params, trees)

    @holds_blas
    def node_probabilities(self, trees):
        """Per tree, (M, K) class probabilities of its nodes in post-order (the root last); batched by fold."""
        check_trees(trees, self.config.vocab_size, self.config.num_classes)
        states, offsets = fold_states(self.params, trees)
        probs = softmax(states @ self.params["W_s"] + self.params["b_s"])
        return [probs[offsets[n]:offsets[n + 1]] for n in range(len(trees))]

"""Library entry points refuse impossible arguments with an InputError that names the argument (issue 17).

Every case below crashed with NumPy's IndexError / ValueError / AttributeError / TypeError, or returned
garbage (negative ids wrap around, mis-shaped states broadcast), before rnnlm.inputs checked it. The second
half checks that good arguments give exactly what the unchecked code gives.
"""

import functools
import re

import numpy as np
import pytest

from rnnlm.data.trees import EncodedTree, Tree, binarize, encode_tree
from rnnlm.data.vocab import Vocabulary
from rnnlm.errors import InputError
from rnnlm.models import generate
from rnnlm.models.fast import FastRNN
from rnnlm.models.fold import fold_total_loss_and_gradients
from rnnlm.models.language_model import LanguageModel
from rnnlm.models.reference import RNNNumpy
from rnnlm.models.spinn import spinn_total_loss_and_gradients
from rnnlm.models.tree_lstm import TreeLSTM, TreeLSTMConfig
from rnnlm.models.tree_recursive import recursive_total_loss_and_gradients
from rnnlm.training import stream

V, H = 10, 4


@functools.lru_cache(maxsize=None)
def models():
    m = {"ref": RNNNumpy(V, H, seed=0), "fast": FastRNN(V, H, seed=0, dtype=np.float64)}
    for cell in ("rnn", "gru", "lstm", "jordan"):
        m[cell] = LanguageModel(V, H, cell=cell, seed=0, dtype=np.float64)
    m["lstm2"] = LanguageModel(V, H, cell="lstm", num_layers=2, seed=0, dtype=np.float64)
    m["tree"] = {method: TreeLSTM(TreeLSTMConfig(vocab_size=V, embed_size=3, hidden_size=H), method=method)
                 for method in ("fold", "spinn", "recursive")}
    m["vocab"] = Vocabulary.build([[f"w{i}" for i in range(V - 3)]], V)
    return m


def T(word, left, right, label):
    return EncodedTree(*(np.array(a, dtype=np.int64) for a in (word, left, right, label)))


GOOD_TREE = T([1, 2, -1], [-1, -1, 0], [-1, -1, 1], [2, 3, 4])
S1 = np.zeros((1, H))  # a good (1, H) state
X2, Y2 = np.array([[0, 1, 2]]), np.array([[1, 2, 3]])  # one stream of three tokens


def _ref(method, *args, **kw):
    return lambda m: getattr(m["ref"], method)(*args, **kw)


_START = object()  # _step's default: the model's own start_state(1)


def _step(kind, x, state=_START):
    return lambda m: m[kind].step(m[kind].start_state(1) if state is _START else state, x)


def _lm_step(kind, make_state):
    return lambda m: m[kind].step(make_state(m[kind].start_state(1)), [0])


def _trees(trees, method="fold", call="total_loss_and_gradients"):
    return lambda m: getattr(m["tree"][method], call)(trees)


def _gen(**kw):
    return lambda m: generate.generate_sentence(m["fast"], m["vocab"], kw.pop("rng", np.random.default_rng(0)), **kw)


def _gen_stream(**kw):
    return lambda m: generate.generate_stream(m["lstm"], m["vocab"], kw.pop("rng", np.random.default_rng(0)), **kw)


def _empty_gen():
    return (x for x in [[0]])


NAN_C = lambda s: ((s[0][0], np.full_like(s[0][1], np.nan)),)  # noqa: E731

# (id, call, the argument the message must start with, a pattern the message must hold)
CASES = [
    # word ids: objects, None, dicts, empty, scalars, wrap-around ids, in every sequence model
    ("ref.forward_propagation object", _ref("forward_propagation", np.array([1, "a"], dtype=object)), "x",
     r"must hold integer word ids, got object values \(e\.g\. 1\)"),
    ("ref.predict None", _ref("predict", None), "x", r"must hold integer word ids, got object values \(e\.g\. None\)"),
    ("ref.bptt dict", _ref("bptt", {0: 1}, [1]), "x", "must hold integer word ids"),
    ("ref.forward_propagation empty", _ref("forward_propagation", []), "x", "is empty: give at least one word id"),
    ("ref.predict empty", _ref("predict", np.zeros(0)), "x", "is empty"),
    ("ref.bptt empty float arrays", _ref("bptt", np.zeros(0), np.zeros(0)), "x", "is empty"),
    ("ref.sgd_step empty", _ref("sgd_step", [], [], 0.1), "x", "is empty"),
    ("ref.gradient_check empty", _ref("gradient_check", [], []), "x", "is empty"),
    ("ref.calculate_loss object sentence", _ref("calculate_loss", [np.array([None])], [[1]]), "X[0]",
     "must hold integer word ids, got object"),
    ("ref.calculate_loss empty float sentence", _ref("calculate_loss", [np.zeros(0)], [np.zeros(0)]), "Y",
     "holds no target words"),
    ("ref.step negative id", _step("ref", [0, -1]), "x", "holds word id -1, outside the vocabulary of 10 words"),
    ("ref.step id too large", _step("ref", [V]), "x", "holds word id 10, outside the vocabulary"),
    ("ref.step uint64 wraps", _step("ref", np.array([2 ** 64 - 1], dtype=np.uint64)), "x",
     "holds word id 18446744073709551615"),
    ("ref.step float id", _step("ref", [1.0]), "x", "must hold integer word ids, got float64"),
    ("ref.step bool", _step("ref", np.array([True])), "x", "must hold integer word ids, got bool"),
    ("ref.step string", _step("ref", "12"), "x", "must hold integer word ids, got <U2"),
    ("ref.step 2-D", _step("ref", [[0, 1]]), "x", r"must be a 1-D array of word ids, got shape \(1, 2\)"),
    ("ref.step scalar", _step("ref", 3), "x", r"got shape \(\); wrap a single id as \[3\]"),
    ("fast.step empty", _step("fast", []), "x", "is empty"),
    ("fast.step None", _step("fast", None), "x", "got object values"),
    ("lstm.step object", _step("lstm", np.array([0, "a"], dtype=object)), "x", "got object values"),
    ("gru.step empty", _step("gru", np.zeros(0, dtype=np.int64)), "x", "is empty"),
    # sentence containers
    ("ref.calculate_loss None", _ref("calculate_loss", None, None), "X",
     r"must be a list of sentences \(word-id arrays\), got NoneType"),
    ("ref.calculate_total_loss generator", lambda m: m["ref"].calculate_total_loss(_empty_gen(), _empty_gen()), "X",
     "got generator"),
    ("fast.total_loss_and_gradients int", lambda m: m["fast"].total_loss_and_gradients(3, 3), "X", "got int"),
    ("fast.total_loss string", lambda m: m["fast"].total_loss("ab", "ab"), "X", "got str"),
    ("lstm.window_total_loss generator", lambda m: m["lstm"].window_total_loss(_empty_gen(), _empty_gen(), None), "X",
     "got generator"),
    ("fast.mean_loss no words", lambda m: m["fast"].mean_loss([[]], [[]]), "Y", "holds no target words"),
    ("ref.calculate_loss no sentences", _ref("calculate_loss", [], []), "Y", "holds no target words"),
    # rates and counts
    ("ref.sgd_step string rate", _ref("sgd_step", [0], [1], "a"), "learning_rate",
     "must be a positive finite number, got 'a'"),
    ("ref.sgd_step NaN rate", _ref("sgd_step", [0], [1], float("nan")), "learning_rate", "got nan"),
    ("ref.gradient_check h=0", _ref("gradient_check", [0], [1], h=0), "h", "must be a positive finite number, got 0"),
    ("ref.gradient_check h string", _ref("gradient_check", [0], [1], h="a"), "h", "positive finite number"),
    ("fast.total_loss batch_size 0", lambda m: m["fast"].total_loss([[0]], [[1]], batch_size=0), "batch_size",
     "must be a positive integer, got 0"),
    ("lstm.total_loss batch_size -1", lambda m: m["lstm"].total_loss([[0]], [[1]], batch_size=-1), "batch_size",
     "got -1"),
    ("ref.start_state -1", lambda m: m["ref"].start_state(-1), "n",
     r"must be a non-negative integer \(how many sentences\), got -1"),
    ("fast.start_state 2.5", lambda m: m["fast"].start_state(2.5), "n", "non-negative integer .*got 2.5"),
    ("lstm.start_state None", lambda m: m["lstm"].start_state(None), "n", "got None"),
    ("gru.start_state True", lambda m: m["gru"].start_state(True), "n", "got True"),
    # states of the array models
    ("ref.step state (H,)", _step("ref", [0], np.zeros(H)), "state",
     r"must have shape \(1, 4\) \(like start_state\(1\)\), got \(4,\)"),
    ("ref.step state for 2 rows, 1 id", _step("ref", [0], np.zeros((2, H))), "state", r"got \(2, 4\)"),
    ("ref.step NaN state", _step("ref", [0], np.full((1, H), np.nan)), "state", "holds NaN or infinite values"),
    ("ref.step infinite state", _step("ref", [0], np.full((1, H), np.inf)), "state", "holds NaN or infinite"),
    ("ref.step None state", _step("ref", [0], None), "state", "must hold real numbers, got object"),
    ("ref.step string state", _step("ref", [0], "a"), "state", "must hold real numbers, got <U1"),
    ("fast.step state (H,)", _step("fast", [0], np.zeros(H)), "state", r"got \(4,\)"),
    ("fast.step state 3-D", _step("fast", [0], np.zeros((1, 1, H))), "state", r"got \(1, 1, 4\)"),
    ("fast.step NaN state", _step("fast", [0], np.full((1, H), np.nan)), "state", "holds NaN"),
    ("fast.step object state", _step("fast", [0], np.array([[None] * H])), "state", "got object"),
    ("fast.step state too wide", _step("fast", [0], np.zeros((1, H + 1))), "state", r"got \(1, 5\)"),
    # states of LanguageModel: a tuple over layers of the cell's tuple of (n, H) arrays
    ("rnn.step bare array state", _lm_step("rnn", lambda s: np.zeros((1, H))), "state",
     r"must be a tuple of 1 entry \(like start_state\(1\)\), got ndarray"),
    ("lstm.step layer not a tuple", _lm_step("lstm", lambda s: (np.zeros((1, H)),)), "state[0]",
     r"must be a tuple of 2 entries \(like start_state\(1\)\[0\]\), got ndarray"),
    ("lstm.step missing c", _lm_step("lstm", lambda s: ((s[0][0],),)), "state[0]", r"tuple of 2 entries .*, got 1$"),
    ("lstm2.step wrong number of layers", _lm_step("lstm2", lambda s: s + s), "state",
     r"tuple of 2 entries .*, got 4$"),
    ("lstm.step NaN cell", _lm_step("lstm", NAN_C), "state[0][1]", "holds NaN or infinite values"),
    ("gru.step state (H,)", _lm_step("gru", lambda s: ((np.zeros(H),),)), "state[0][0]",
     r"must have shape \(1, 4\) \(like start_state\(1\)\[0\]\[0\]\), got \(4,\)"),
    ("jordan.step state (H,)", _lm_step("jordan", lambda s: ((np.zeros(H),),)), "state[0][0]", r"got \(4,\)"),
    ("jordan.step batch 2 for 1 id", _lm_step("jordan", lambda s: ((np.zeros((2, H)),),)), "state[0][0]",
     r"got \(2, 4\)"),
    ("rnn.step None state", _lm_step("rnn", lambda s: None), "state", "got NoneType None"),
    ("lstm.step empty tuple", _lm_step("lstm", lambda s: ()), "state", r"got 0$"),
    ("fast.window_total_loss state for 2 rows", lambda m: m["fast"].window_total_loss(X2, Y2, m["fast"].start_state(2)), "state",
     r"must have shape \(1, 4\) \(like start_state\(1\)\), got \(2, 4\)"),
    ("fast.window_total_loss_and_gradients NaN state",
     lambda m: m["fast"].window_total_loss_and_gradients(X2, Y2, np.full((1, H), np.nan)), "state", "holds NaN"),
    ("lstm.window_total_loss state (H,)", lambda m: m["lstm"].window_total_loss(X2, Y2, np.zeros(H)), "state",
     "must be a tuple of 1 entry"),
    ("rnn.window_total_loss_and_gradients NaN state",
     lambda m: m["rnn"].window_total_loss_and_gradients(X2, Y2, ((np.full((1, H), np.nan),),)), "state[0][0]", "holds NaN"),
    # Tree-LSTM trees
    ("tree word id too large", _trees([T([1, V, -1], [-1, -1, 0], [-1, -1, 1], [2, 3, 4])]), "trees[0].word",
     r"holds word id 10 at leaf 1, outside the vocabulary of 10 words \(ids 0 to 9\)"),
    ("tree negative word id (spinn)", _trees([T([1, -2, -1], [-1, -1, 0], [-1, -1, 1], [2, 3, 4])], "spinn"),
     "trees[0].word", "holds word id -2 at leaf 1"),
    ("tree word id -1 on a leaf (recursive)", _trees([T([1, -1, -1], [-1, -1, 0], [-1, -1, 1], [2, 3, 4])],
                                                     "recursive"), "trees[0].word", "holds word id -1 at leaf 1"),
    ("tree label 5", _trees([T([1, 2, -1], [-1, -1, 0], [-1, -1, 1], [2, 3, 5])]), "trees[0].label",
     r"holds 5 at node 2; labels are 0 to 4, or -1"),
    ("tree label -2 (node_probabilities)", _trees([GOOD_TREE, T([1, 2, -1], [-1, -1, 0], [-1, -1, 1], [2, -2, 4])],
                                                  call="node_probabilities"), "trees[1].label", "holds -2 at node 1"),
    ("tree float words", _trees([EncodedTree(np.array([1.0, 2.0, -1.0]), *GOOD_TREE[1:])]), "trees[0].word",
     "must hold integers, got float64"),
    ("tree float labels", _trees([GOOD_TREE._replace(label=np.array([2.5, 3, 4]))], "spinn"), "trees[0].label",
     "must hold integers, got float64"),
    ("tree lists, not arrays", _trees([EncodedTree([1, 2, -1], [-1, -1, 0], [-1, -1, 1], [2, 3, 4])]),
     "trees[0].word", "must be a 1-D NumPy array of integers"),
    ("tree child index out of range", _trees([T([1, 2, -1], [-1, -1, 7], [-1, -1, 1], [2, 3, 4])], "recursive"),
     "trees[0]", "is not a binary tree in post-order at node 2"),
    ("tree parent before children", _trees([T([-1, 1, 2], [1, -1, -1], [2, -1, -1], [2, 3, 4])]), "trees[0]",
     "is not a binary tree in post-order at node 0"),
    ("tree lengths differ", _trees([T([1, 2, -1], [-1, -1, 0], [-1, -1, 1], [2, 3])], "spinn"), "trees[0].label",
     "has 2 entries but trees\\[0\\].word has 3"),
    ("tree without nodes", _trees([T([], [], [], [])]), "trees[0]", "has no nodes"),
    ("tree only a left child", _trees([T([1, -1], [-1, 0], [-1, -1], [2, 3])], "recursive"), "trees[0]",
     "not a binary tree in post-order at node 1"),
    ("tree shared child", _trees([T([1, -1, -1], [-1, 0, 0], [-1, 0, 1], [2, 3, 4])], "spinn"), "trees[0]",
     "not a binary tree in post-order"),
    ("tree with two roots", _trees([T([1, 2], [-1, -1], [-1, -1], [2, 3])]), "trees[0]",
     "not a binary tree in post-order at node 1"),
    ("tree not in post-order", _trees([T([1, 2, 3, -1, -1], [-1, -1, -1, 0, 3], [-1, -1, -1, 1, 2],
                                         [1, 1, 1, 1, 1])], "spinn"), "trees[0]", "not a binary tree in post-order"),
    ("trees a string", _trees(["(2 a)"]), "trees[0]", "must be an EncodedTree .*got str"),
    ("trees an unencoded Tree", _trees([Tree(2, word="a")]), "trees[0]", "is a Tree; encode it first"),
    ("trees empty", _trees([]), "trees", "is empty: give at least one encoded tree"),
    ("trees one tree unwrapped", _trees(GOOD_TREE), "trees", r"got one EncodedTree; wrap it as \[tree\]"),
    ("trees None", _trees(None, "recursive"), "trees", "must be a list of encoded trees .*got NoneType"),
    # streams
    ("batchify negative id", lambda m: stream.batchify([0, 1, -1, 2], 1), "ids", "holds word id -1; word ids are 0"),
    ("batchify float ids", lambda m: stream.batchify([0.0, 1.0, 2.0], 1), "ids", "must hold integer word ids"),
    ("batchify string", lambda m: stream.batchify("abc", 1), "ids", "must hold integer word ids, got <U3"),
    ("batchify streams 0", lambda m: stream.batchify(np.arange(6), 0), "streams", "must be a positive integer, got 0"),
    ("batchify streams 1.5", lambda m: stream.batchify(np.arange(6), 1.5), "streams", "got 1.5"),
    ("split_stream NaN", lambda m: stream.split_stream(np.arange(10), float("nan")), "valid_fraction",
     r"must be a number from 0 up to \(not including\) 1, got nan"),
    ("split_stream 2", lambda m: stream.split_stream(np.arange(10), 2.0), "valid_fraction", "got 2.0"),
    ("split_stream string", lambda m: stream.split_stream(np.arange(10), "a"), "valid_fraction", "got 'a'"),
    ("split_stream negative id", lambda m: stream.split_stream([0, -1, 2], 0.5), "ids", "holds word id -1"),
    ("stream_total_loss seq_length 0", lambda m: stream.stream_total_loss(m["rnn"], X2, Y2, 0), "seq_length",
     "must be a positive integer, got 0"),
    ("stream_total_loss seq_length -1", lambda m: stream.stream_total_loss(m["rnn"], X2, Y2, -1), "seq_length", "got -1"),
    ("stream_total_loss seq_length None", lambda m: stream.stream_total_loss(m["fast"], X2, Y2, None), "seq_length", "got None"),
    ("stream_total_loss 1-D X", lambda m: stream.stream_total_loss(m["rnn"], np.array([0, 1]), np.array([1, 2]), 2), "X",
     r"must be a 2-D array of word ids, got shape \(2,\)"),
    ("stream_total_loss X and Y differ", lambda m: stream.stream_total_loss(m["rnn"], X2, np.array([[1, 2]]), 2), "X",
     r"has shape \(1, 3\) but Y has shape \(1, 2\)"),
    ("StreamBatches seq_length 0", lambda m: stream.StreamBatches(np.arange(6), 1, 0), "seq_length", "got 0"),
    ("StreamBatches negative id", lambda m: stream.StreamBatches(np.array([0, -1, 2, 3]), 1, 2), "ids",
     "holds word id -1"),
    # generation
    ("generate_sentence rng None", _gen(rng=None), "rng", r"must be a numpy\.random\.Generator .*got NoneType None"),
    ("generate_sentence rng 0", _gen(rng=0), "rng", "got int 0"),
    ("generate_sentence prefix of ids", _gen(prefix_tokens=[1, 2]), "prefix_tokens[0]",
     "must be a token string, got int 1; decode word ids first"),
    ("generate_sentence prefix a string", _gen(prefix_tokens="w1 w2"), "prefix_tokens",
     "must be a list of token strings, got str 'w1 w2'"),
    ("generate_sentence prefix None", _gen(prefix_tokens=None), "prefix_tokens", "got NoneType None"),
    ("generate_sentence nested prefix", _gen(prefix_tokens=[["w1"]]), "prefix_tokens[0]", "got list"),
    ("generate_sentence level", _gen(level="chars"), "level", "must be 'word' or 'char', got 'chars'"),
    ("generate_sentence vocabulary larger than the model",
     lambda m: generate.generate_sentence(FastRNN(5, 3, seed=0), m["vocab"], np.random.default_rng(0)), "vocabulary",
     "has 10 words but the model reads 5"),
    ("generate_stream prefix of ids", _gen_stream(prefix_tokens=[1, 2]), "prefix_tokens[0]", "got int 1"),
    ("generate_stream prefix None", _gen_stream(prefix_tokens=None), "prefix_tokens", "got NoneType"),
    ("generate_stream rng None", _gen_stream(rng=None), "rng", "Generator"),
    ("generate_sentences config dict",
     lambda m: generate.generate_sentences(m["fast"], m["vocab"], np.random.default_rng(0), {"num_sentences": 2}),
     "config", "must be a GenerateConfig, got dict"),
]


@pytest.mark.parametrize("call, argument, pattern", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_a_bad_argument_is_an_input_error_that_names_it(call, argument, pattern):
    m = models()
    before = {k: v.copy() for k, v in m["ref"].params.items()}
    with pytest.raises(InputError) as info:
        call(m)
    message = str(info.value)
    assert message.startswith(argument + " "), message
    assert "\n" not in message
    assert re.search(pattern, message), message
    assert all(np.array_equal(before[k], v) for k, v in m["ref"].params.items())  # nothing was half-applied


def test_the_cases_are_many_and_distinct():
    assert len(CASES) >= 60 and len({c[0] for c in CASES}) == len(CASES)


# --------------------------------------------------------------------- good arguments: unchanged results

def _close(a, b):
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b))
    return np.allclose(a, b, rtol=1e-5, atol=1e-6)


def _same(a, b):
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if hasattr(a, "to_dense"):
        return _same(a.indices, b.indices) and _same(a.values, b.values)
    return np.array_equal(a, b)


@pytest.mark.parametrize("kind", ["fast", "rnn", "gru", "lstm", "jordan", "lstm2"])
def test_checked_entry_points_give_what_the_unchecked_code_gives(kind, rng):
    model = models()[kind]
    X = [rng.integers(0, V, n) for n in (3, 0, 5, 1)]  # an empty sentence is allowed in a batch
    Y = [rng.integers(0, V, n) for n in (3, 0, 5, 1)]
    loss, grads = model.total_loss_and_gradients(X, Y)
    assert _same((loss, grads), model._total_loss_and_gradients(X, Y, None, False)[:2])
    as_lists = model.total_loss_and_gradients([x.tolist() for x in X], [y.astype(np.int32) for y in Y])
    assert _same(as_lists, (loss, grads))
    state = model.start_state(2)
    scores, new_state = model.step(state, np.array([1, 2], dtype=np.uint8))
    assert _same((scores, new_state), model.step(state, [1, 2]))
    forward = model._forward([np.array([1]), np.array([2])], [np.array([3]), np.array([4])], state)
    # the packed forward runs the fused loop (rnnlm.nn.fused: sigmoid as (1 + tanh(z/2)) / 2), the step the cell's
    # own step function: the same state to rounding, not bit for bit
    assert _close(model._next_state(forward.final), new_state)
    Xs, Ys = stream.batchify(rng.integers(0, V, 30), 2)
    assert _same(stream.stream_total_loss(model, Xs, Ys, 4), stream.stream_total_loss(model, Xs.tolist(), Ys.tolist(), 4))


def test_the_reference_model_is_unchanged_on_good_input(rng):
    model = models()["ref"]
    x, y = rng.integers(0, V, 6), rng.integers(0, V, 6)
    o, s = model.forward_propagation(x)
    h = np.zeros(H)
    for t, word in enumerate(x):  # the tutorial's loop, written out
        h = np.tanh(model.U[:, word] + model.W @ h)
        assert np.allclose(s[t], h)
    assert np.array_equal(model.predict(x.tolist()), np.argmax(o, axis=1))
    with_empty = model.calculate_total_loss([x, [], x[:2]], [y, [], y[:2]])
    assert with_empty == model.calculate_total_loss([x, x[:2]], [y, y[:2]])
    scores, state = model.step(model.start_state(1), [x[0]])
    assert np.allclose(state[0], s[0]) and np.allclose(scores[0], model.V @ s[0])
    assert _same(model.bptt(x, y), model.bptt(x.tolist(), y.astype(np.int16)))


def _sentiment_trees(rng, vocabulary):
    words = [w for w in vocabulary.index_to_word if w.startswith("w")]
    trees = []
    for n in (1, 2, 3, 5, 8, 13):
        for how in ("balanced", "right"):
            tree = encode_tree(binarize([words[i] for i in rng.integers(0, len(words), n)], how), vocabulary)
            trees.append(tree._replace(label=rng.integers(-1, 5, tree.num_nodes)))
    return trees


def test_every_encoded_tree_passes_and_the_three_methods_match_their_unchecked_functions(rng):
    m = models()
    trees = _sentiment_trees(rng, m["vocab"])
    params = m["tree"]["fold"].params
    expected = {"fold": fold_total_loss_and_gradients(params, trees), "spinn": spinn_total_loss_and_gradients(params, trees),
                "recursive": recursive_total_loss_and_gradients(params, trees)}
    for method, model in m["tree"].items():
        assert _same(model.total_loss_and_gradients(trees), expected[method])
    probs = m["tree"]["fold"].node_probabilities(trees)
    assert [len(p) for p in probs] == [t.num_nodes for t in trees]


def test_generation_takes_a_tuple_prefix_and_numpy_counts():
    m = models()
    vocab = m["vocab"]
    a = generate.generate_sentence(m["fast"], vocab, np.random.default_rng(3), prefix_tokens=("w1", "w2"))
    b = generate.generate_sentence(m["fast"], vocab, np.random.default_rng(3), prefix_tokens=["w1", "w2"])
    assert a == b and a[:2] == ["w1", "w2"]
    assert stream.batchify(np.arange(7, dtype=np.int32), np.int64(2))[0].shape == (2, 3)
    assert len(stream.split_stream(list(range(10)), 0)[1]) == 0

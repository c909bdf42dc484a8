"""The Tree-LSTM: the cell's gradients, a whole batch's gradients, and recursive = fold = SPINN."""

import numpy as np
import pytest

from rnnlm.models.fold import fold_total_loss_and_gradients, schedule
from rnnlm.nn.gradcheck import check_gradients
from rnnlm.nn.optim import SparseGradient
from rnnlm.models.spinn import REDUCE, SHIFT, add_tracker, plan, spinn_total_loss_and_gradients, transitions
from rnnlm.models.tree_lstm import TreeLSTM, TreeLSTMConfig, init_params
from rnnlm.models.tree_cells import compose_backward, compose_forward, leaf_backward, leaf_forward
from rnnlm.models.tree_recursive import recursive_total_loss_and_gradients
from rnnlm.data.trees import build_vocabulary, encode_tree, parse_tree

TREES = [
    "(3 (2 It) (4 (2 's) (3 lovely)))",
    "(1 (2 (2 not) (3 good)) (2 .))",
    "(0 bad)",
    "(4 (3 (2 a) (3 (3 really) (4 great))) (2 (2 film) (2 (2 ,) (3 (2 truly) (2 .)))))",
    "(2 (2 (2 the) (2 plot)) (1 (2 (2 is) (1 thin)) (2 (2 and) (2 slow))))",
]


@pytest.fixture
def batch():
    trees = [parse_tree(t) for t in TREES]
    vocab = build_vocabulary(trees, vocabulary_size=12)  # small: some words become UNKNOWN_TOKEN
    return vocab, [encode_tree(t, vocab) for t in trees]


def dense(grads, params):
    return {k: (g.to_dense(params[k].shape) if isinstance(g, SparseGradient) else g) for k, g in grads.items()}


def cell_params(rng, E=3, H=4):
    return {"W_leaf": rng.normal(size=(E, 3 * H)), "b_leaf": rng.normal(size=3 * H),
            "U": rng.normal(size=(2 * H, 5 * H)) * 0.5, "b": rng.normal(size=5 * H)}


def test_leaf_step_gradients(rng):
    p = cell_params(rng)
    x = rng.normal(size=(2, 3))
    wh, wc = rng.normal(size=(2, 4)), rng.normal(size=(2, 4))

    def loss():
        (h, c), _ = leaf_forward(x, p)
        return float(np.sum(wh * h) + np.sum(wc * c))

    _, cache = leaf_forward(x, p)
    dx, grads = leaf_backward(wh, wc, cache)
    assert check_gradients(loss, {"W_leaf": p["W_leaf"], "b_leaf": p["b_leaf"]}, grads)
    assert check_gradients(loss, {"x": x}, {"x": dx})


def test_compose_step_gradients(rng):
    p = cell_params(rng)
    h_l, c_l, h_r, c_r = (rng.normal(size=(3, 4)) for _ in range(4))
    wh, wc = rng.normal(size=(3, 4)), rng.normal(size=(3, 4))

    def loss():
        (h, c), _ = compose_forward(h_l, c_l, h_r, c_r, p)
        return float(np.sum(wh * h) + np.sum(wc * c))

    _, cache = compose_forward(h_l, c_l, h_r, c_r, p)
    (dh_l, dc_l), (dh_r, dc_r), grads = compose_backward(wh, wc, cache)
    assert check_gradients(loss, {"U": p["U"], "b": p["b"]}, grads)
    assert check_gradients(loss, {"h_l": h_l, "c_l": c_l, "h_r": h_r, "c_r": c_r},
                           {"h_l": dh_l, "c_l": dc_l, "h_r": dh_r, "c_r": dc_r})


def test_compose_equation_by_hand(rng):
    """The cell against its equations written out for one node with numbers, not the cell's own code."""
    p = cell_params(rng, H=2)
    h_l, c_l, h_r, c_r = (rng.normal(size=(1, 2)) for _ in range(4))
    a = np.hstack([h_l, h_r]) @ p["U"] + p["b"]
    s = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
    i, fl, fr, o, u = s(a[:, 0:2]), s(a[:, 2:4]), s(a[:, 4:6]), s(a[:, 6:8]), np.tanh(a[:, 8:10])
    c = i * u + fl * c_l + fr * c_r
    (h_got, c_got), _ = compose_forward(h_l, c_l, h_r, c_r, p)
    np.testing.assert_allclose(c_got, c, rtol=1e-12)
    np.testing.assert_allclose(h_got, o * np.tanh(c), rtol=1e-12)


def test_whole_batch_gradients(batch):
    vocab, trees = batch
    params = init_params(TreeLSTMConfig(vocab_size=len(vocab), embed_size=3, hidden_size=4), seed=1)
    _, grads = recursive_total_loss_and_gradients(params, trees)
    # the loss sums ~60 node terms, so h = 1e-4 keeps round-off below the threshold (as in notebook 8)
    report = check_gradients(lambda: recursive_total_loss_and_gradients(params, trees, gradients=False)[0],
                             params, dense(grads, params), h=1e-4, threshold=1e-5)
    assert report, str(report)


def test_gradient_check_catches_a_wrong_gradient(batch):
    vocab, trees = batch
    params = init_params(TreeLSTMConfig(vocab_size=len(vocab), embed_size=3, hidden_size=4), seed=1)
    _, grads = fold_total_loss_and_gradients(params, trees)
    grads = dense(grads, params)
    grads["U"][0, 0] += 1e-3
    assert not check_gradients(lambda: fold_total_loss_and_gradients(params, trees, gradients=False)[0], params, grads,
                               h=1e-4, threshold=1e-5)


@pytest.mark.parametrize("other", [fold_total_loss_and_gradients, spinn_total_loss_and_gradients], ids=["fold", "spinn"])
def test_batched_equals_recursive(batch, other):
    vocab, trees = batch
    params = init_params(TreeLSTMConfig(vocab_size=len(vocab), embed_size=5, hidden_size=6), seed=2)
    loss_r, grads_r = recursive_total_loss_and_gradients(params, trees)
    loss_o, grads_o = other(params, trees)
    assert abs(loss_r - loss_o) <= 1e-10
    assert set(grads_r) == set(grads_o) == set(params)
    for name in params:
        np.testing.assert_allclose(dense(grads_o, params)[name], dense(grads_r, params)[name], rtol=0, atol=1e-10,
                                   err_msg=name)


def test_model_methods_agree_and_probabilities_sum_to_one(batch):
    vocab, trees = batch
    config = TreeLSTMConfig(vocab_size=len(vocab), embed_size=4, hidden_size=5)
    losses = [TreeLSTM(config, seed=3, method=m).total_loss_and_gradients(trees)[0] for m in ("recursive", "fold", "spinn")]
    np.testing.assert_allclose(losses, losses[0], rtol=0, atol=1e-10)
    model = TreeLSTM(config, seed=3)
    probs = model.node_probabilities(trees)
    assert [p.shape for p in probs] == [(t.num_nodes, 5) for t in trees]
    np.testing.assert_allclose(np.concatenate(probs).sum(axis=1), 1.0)
    # the classifier of a node's state: check one node against the recursive forward written out
    leaf = trees[2]  # "(0 bad)": a single leaf
    (h, _), _ = leaf_forward(model.params["E"][leaf.word], model.params)
    logits = h @ model.params["W_s"] + model.params["b_s"]
    np.testing.assert_allclose(probs[2], np.exp(logits) / np.exp(logits).sum(), rtol=1e-12)


@pytest.mark.parametrize("method", ["recursive", "fold", "spinn"])
def test_tree_loss_is_a_sum_over_trees_and_nodes(batch, method):
    """total_loss_and_gradients sums: a batch's loss is its trees' losses added, and one tree's is the
    hand sum of -log softmax over its nodes (a mean over trees or nodes would fail both)."""
    vocab, trees = batch
    model = TreeLSTM(TreeLSTMConfig(vocab_size=len(vocab), embed_size=4, hidden_size=5), seed=3, method=method)
    whole = model.total_loss_and_gradients(trees)[0]
    assert whole == pytest.approx(sum(model.total_loss_and_gradients([t])[0] for t in trees), rel=1e-12)
    for tree, probs in zip(trees, model.node_probabilities(trees)):
        scored = tree.label >= 0
        hand = -np.log(probs[scored, tree.label[scored]]).sum()
        assert model.total_loss_and_gradients([tree])[0] == pytest.approx(hand, rel=1e-10)


def test_fold_schedule_groups_by_height(batch):
    _, trees = batch
    s = schedule(trees)
    # heights from the Tree objects (post-order, like the encoding), written independently
    def post_order_heights(node):
        if node.is_leaf:
            return [0]
        left, right = post_order_heights(node.left), post_order_heights(node.right)
        return left + right + [1 + max(left[-1], right[-1])]
    heights = np.concatenate([post_order_heights(parse_tree(t)) for t in TREES])
    assert len(s.levels) == heights.max() + 1 == 5
    for h, nodes in enumerate(s.levels):
        assert sorted(nodes.tolist()) == np.flatnonzero(heights == h).tolist()


def test_spinn_transitions_and_stack(batch):
    _, trees = batch
    assert transitions(trees[0]).tolist() == [SHIFT, SHIFT, SHIFT, REDUCE, REDUCE]
    p = plan(trees)
    # the stack simulation finds the same children as the tree's own arrays
    for t, (_, _, reduce_slots, lft, rgt) in enumerate(p.steps):
        for slot, ls, rs in zip(reduce_slots, lft, rgt):
            b = slot // p.T
            assert trees[b].left[t] == ls - b * p.T and trees[b].right[t] == rs - b * p.T


def test_spinn_tracker_gradients(batch):
    vocab, trees = batch
    params = add_tracker(init_params(TreeLSTMConfig(vocab_size=len(vocab), embed_size=3, hidden_size=4), seed=4),
                         tracker_size=3, seed=5)
    params["W_e"][...] = np.random.default_rng(6).normal(size=params["W_e"].shape)  # a tracker that matters
    _, grads = spinn_total_loss_and_gradients(params, trees)
    assert set(grads) == set(params)
    report = check_gradients(lambda: spinn_total_loss_and_gradients(params, trees, gradients=False)[0],
                             params, dense(grads, params), h=1e-4, threshold=1e-5)
    assert report, str(report)


def test_spinn_tracker_with_zero_W_e_is_the_tree_lstm(batch):
    vocab, trees = batch
    params = init_params(TreeLSTMConfig(vocab_size=len(vocab), embed_size=3, hidden_size=4), seed=4)
    loss, grads = recursive_total_loss_and_gradients(params, trees)
    tracked = add_tracker({k: v.copy() for k, v in params.items()}, tracker_size=3)
    loss_t, grads_t = spinn_total_loss_and_gradients(tracked, trees)
    assert abs(loss - loss_t) < 1e-10
    for name in params:
        np.testing.assert_allclose(dense(grads_t, tracked)[name], dense(grads, params)[name], atol=1e-10)
    # the tracker's own weights get no gradient through a zero W_e, but W_e does
    assert np.abs(grads_t["track_W_ih"]).max() == 0 and np.abs(grads_t["W_e"]).max() > 0
    tracked["W_e"] += 0.1
    assert abs(spinn_total_loss_and_gradients(tracked, trees, gradients=False)[0] - loss) > 1e-6


def test_a_tree_model_with_nan_parameters_is_never_written(tmp_path):
    # the loader refuses non-finite parameters, so the saver must never write them (the last good file stays)
    from rnnlm.io import tree_checkpoint
    from rnnlm.errors import ModelFileError
    from rnnlm.models.tree_lstm import TreeLSTM, TreeLSTMConfig
    from rnnlm.data.vocab import Vocabulary
    vocabulary = Vocabulary.build([["good", "bad"]], 10)
    model = TreeLSTM(TreeLSTMConfig(vocab_size=len(vocabulary), embed_size=4, hidden_size=3), seed=0)
    out = tmp_path / "t.npz"
    tree_checkpoint.save_tree_model(out, model, vocabulary)
    before = out.read_bytes()
    model.params["U"][0, 0] = np.nan
    with pytest.raises(ModelFileError, match="not finite"):
        tree_checkpoint.save_tree_model(out, model, vocabulary)
    assert out.read_bytes() == before and tree_checkpoint.load_tree_model(out).model.config == model.config

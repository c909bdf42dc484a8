"""The sentiment-tree reader: trees, flat encodings, one-line errors, binarization, vocabulary."""

import pytest

from rnnlm.config import UNKNOWN_TOKEN
from rnnlm.errors import DataError
from rnnlm.data.trees import (binarize, build_vocabulary, encode_tree, parse_tree, parse_unlabelled, read_trees,
                         tree_from_text)


def test_parse_reads_labels_words_and_shape():
    tree = parse_tree("(3 (2 It) (4 (2 's) (3 lovely)))")
    assert tree.label == 3 and tree.left.word == "It" and tree.right.label == 4
    assert tree.leaves() == ["It", "'s", "lovely"]
    assert tree.num_nodes() == 5 and tree.height() == 2
    assert str(tree) == "(3 (2 It) (4 (2 's) (3 lovely)))"


def test_a_leaf_token_may_hold_a_space():
    # the SST writes the film title "8 1/2" as one leaf
    tree = parse_tree(r"(2 (2 8 1\/2) (2 .))")
    assert tree.left.word == r"8 1\/2"


@pytest.mark.parametrize("text, message", [
    ("(3 (2 a) (2 b)", "not closed"),
    ("(3 (2 a) (2 b)))", "unexpected ')'"),
    ("(7 (2 a) (2 b))", "label '7' is not an integer 0-4"),
    ("((2 a) (2 b))", "no label"),
    ("(3 (2 a))", "one child"),
    ("(3 (2 a) (2 b) (2 c))", "more than two children"),
    ("(3 )", "neither a token nor two children"),
    ("(2 a (2 b))", "cannot have children"),
    ("hello", "expected '('"),
    ("   ", "empty line"),
])
def test_malformed_brackets_give_one_line_errors(text, message):
    with pytest.raises(DataError) as info:
        parse_tree(text, where="t.txt line 3")
    assert message in str(info.value) and str(info.value).startswith("t.txt line 3")
    assert "\n" not in str(info.value)


def test_read_trees_names_the_line(tmp_path):
    path = tmp_path / "trees.txt"
    path.write_text("(3 (2 a) (3 b))\n\n(1 (2 a) (1 c)\n", encoding="utf-8")
    with pytest.raises(DataError, match="trees.txt line 3"):
        read_trees(path)
    path.write_text("(3 (2 a) (3 b))\n\n(1 (2 a) (1 c))\n", encoding="utf-8")
    assert [t.label for t in read_trees(path)] == [3, 1]
    path.write_text("\n\n", encoding="utf-8")
    with pytest.raises(DataError, match="no trees|empty"):
        read_trees(path)


def test_encoding_is_post_order_with_unknown_words():
    trees = [parse_tree("(3 (2 a) (4 (2 b) (3 c)))"), parse_tree("(1 (2 a) (1 b))")]
    vocab = build_vocabulary(trees, vocabulary_size=5)  # 3 special tokens + "a" + "b" ("c" is rarest)
    assert "c" not in vocab.word_to_index and UNKNOWN_TOKEN in vocab.word_to_index
    e = encode_tree(trees[0], vocab)
    a, b = vocab.word_to_index["a"], vocab.word_to_index["b"]
    assert e.word.tolist() == [a, b, vocab.unknown_index, -1, -1]
    assert e.left.tolist() == [-1, -1, -1, 1, 0] and e.right.tolist() == [-1, -1, -1, 2, 3]
    assert e.label.tolist() == [2, 2, 3, 4, 3]


def test_binarize_and_text_input():
    assert str(binarize(["a", "b", "c", "d"])) == "(? (? (? a) (? b)) (? (? c) (? d)))"
    assert str(binarize(["a", "b", "c"], "right")) == "(? (? a) (? (? b) (? c)))"
    assert tree_from_text("not bad .").leaves() == ["not", "bad", "."]
    assert str(tree_from_text("((not bad) .)")) == "(? (? (? not) (? bad)) (? .))"
    assert str(parse_unlabelled("(a (b c))")) == "(? (? a) (? (? b) (? c)))"
    assert tree_from_text("(3 (2 not) (1 bad))").label == 3
    with pytest.raises(DataError, match="more than two children"):
        tree_from_text("(a b c)")
    with pytest.raises(DataError):
        binarize([])

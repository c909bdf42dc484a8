"""Issue 22, "one idea, one place": each piece of math or logic has one home, and the callers use it.

Every test here compares a caller with the home it now delegates to, on inputs where a second,
diverging copy would show (large logits, unknown words, odd state shapes), so a copy that comes back
and drifts fails here.
"""

import numpy as np
import pytest

from rnnlm.nn.numerics import cross_entropy, softmax


# --------------------------------------------------------------------- a. softmax / cross-entropy

def _inverse_cdf_draw(logits, seed, temperature, banned):
    """The draw next_token must make: numerics.softmax of the scaled scores, inverted at one uniform."""
    scores = np.asarray(logits, dtype=np.float64).copy()
    scores[list(banned)] = -np.inf
    probs = softmax(scores / temperature)
    cumulative = np.cumsum(probs)
    u = np.random.default_rng(seed).random()
    return min(int(np.searchsorted(cumulative, u * cumulative[-1], side="right")), len(probs) - 1)


@pytest.mark.parametrize("scale", [1.0, 50.0, 1e4, 1e300])
def test_next_token_samples_numerics_softmax_even_for_huge_logits(scale):
    from rnnlm.models.generate import next_token
    data = np.random.default_rng(1)
    for trial in range(20):
        logits = data.normal(size=12) * scale
        temperature = [1.0, 0.7, 2.0][trial % 3]
        banned = [3, 7]
        with np.errstate(over="raise", invalid="raise"):
            got = next_token(logits, np.random.default_rng(trial), temperature, banned)
        assert got == _inverse_cdf_draw(logits, trial, temperature, banned)
        assert got not in banned


def test_tree_evaluate_loss_is_numerics_cross_entropy_of_the_node_logits():
    from rnnlm.data.trees import build_vocabulary, encode_tree, parse_tree
    from rnnlm.models.fold import fold_states
    from rnnlm.models.tree_lstm import TreeLSTM, TreeLSTMConfig
    from rnnlm.training.trees import evaluate
    texts = ["(4 (3 a) (4 great))", "(0 (1 an) (0 awful))", "(2 (2 a) (2 film))", "(1 (2 not) (1 good))"]
    trees = [parse_tree(t) for t in texts]
    vocab = build_vocabulary(trees, vocabulary_size=20)
    encoded = [encode_tree(t, vocab) for t in trees]
    for scale in (1.0, 30.0):  # 30: confident, nearly one-hot node distributions (large logits)
        model = TreeLSTM(TreeLSTMConfig(vocab_size=len(vocab), embed_size=3, hidden_size=4), seed=5)
        model.params["W_s"] *= scale
        states, _ = fold_states(model.params, encoded)
        logits = states @ model.params["W_s"] + model.params["b_s"]
        labels = np.concatenate([t.label for t in encoded])
        np.testing.assert_allclose(np.concatenate(model.node_probabilities(encoded)), softmax(logits), rtol=1e-12)
        expected = cross_entropy(logits[labels >= 0], labels[labels >= 0]) / np.sum(labels >= 0)
        assert evaluate(model, encoded).loss == pytest.approx(expected, rel=1e-9)


# --------------------------------------------------------------------- b. one rule for a valid parameter

BAD_VALUES = [np.nan, np.inf, -np.inf, 2e6]


@pytest.mark.parametrize("bad", BAD_VALUES)
def test_every_parameter_check_refuses_the_same_values_in_the_same_words(bad, tmp_path):
    from rnnlm.config import ModelConfig
    from rnnlm.data.vocab import Vocabulary
    from rnnlm.errors import InputError, ModelFileError
    from rnnlm.io import checkpoint as ckpt
    from rnnlm.io import kinds
    from rnnlm.models.generate import generate_sentence
    from rnnlm.nn.inputs import check_finite
    from rnnlm.nn.numerics import first_parameter_fault, parameter_fault, parameter_message
    vocab = Vocabulary.build([["a", "b", "c"]], 6)
    model = kinds.build_model(ModelConfig(vocab_size=len(vocab), hidden_size=2), seed=0)
    good = tmp_path / "good.npz"
    ckpt.save_model(good, model, vocab)
    model.params["W"][0, 0] = bad
    fault = parameter_fault(model.params["W"])
    assert fault is not None
    phrase = parameter_message("W", fault)
    assert first_parameter_fault(model.params) == ("W", fault)
    with pytest.raises(InputError) as caught:
        check_finite(model.params)
    assert phrase in str(caught.value)
    with pytest.raises(InputError) as caught:
        generate_sentence(model, vocab, np.random.default_rng(0))
    assert phrase in str(caught.value)
    with pytest.raises(ModelFileError) as caught:
        ckpt.save_model(tmp_path / "bad.npz", model, vocab)
    assert phrase in str(caught.value)
    arrays = dict(np.load(good))  # a file written by something else: the reader says the same
    arrays["param/W"] = model.params["W"]
    np.savez(good, **arrays)
    with pytest.raises(ModelFileError) as caught:
        ckpt.load_model(good)
    assert phrase in str(caught.value)


def test_the_safetensors_checks_word_a_bad_tensor_like_the_rest():
    from rnnlm.errors import ModelFileError
    from rnnlm.io.exchange import _check_tensors, torch_spec
    from rnnlm.config import ModelConfig
    from rnnlm.nn.numerics import parameter_fault, parameter_message
    spec = torch_spec(ModelConfig(vocab_size=6, hidden_size=2))
    from rnnlm.io.exchange import _expected_shapes
    tensors = {name: np.zeros(shape, np.float32) for name, shape in _expected_shapes(spec).items()}
    name = sorted(tensors)[0]
    tensors[name][...] = np.nan
    with pytest.raises(ModelFileError) as caught:
        _check_tensors(tensors, spec, "here")
    assert parameter_message(name, parameter_fault(tensors[name]), "tensor") in str(caught.value)


# --------------------------------------------------------------------- c. one flat form of a model's state

@pytest.mark.parametrize("cell,layers", [("rnn", 1), ("gru", 2), ("lstm", 3), ("jordan", 1)])
def test_the_stream_carry_and_the_model_file_check_use_the_models_flat_state(cell, layers):
    from rnnlm.io.checkpoint import _carry_fault
    from rnnlm.models.language_model import LanguageModel, flatten_state, state_key, unflatten_state
    from rnnlm.training.stream import StreamBatches
    model = LanguageModel(6, 3, cell=cell, num_layers=layers, seed=0)
    data = StreamBatches(np.arange(40) % 6, 2, 4)
    data.begin_epoch(model, 1, None)
    data.batch(model, 0)
    flat = data.carry()
    assert flat.keys() == flatten_state(data.state).keys()
    for key in flat:
        np.testing.assert_array_equal(flat[key], flatten_state(data.state)[key])
    again = unflatten_state(flat)
    assert [[s.shape for s in layer] for layer in again] == [[s.shape for s in layer] for layer in data.state]
    resumed = StreamBatches(np.arange(40) % 6, 2, 4)
    resumed.begin_epoch(model, 1, flat)
    for a, b in zip(flatten_state(resumed.state).values(), flat.values()):
        np.testing.assert_array_equal(a, b)
    # the model-file check accepts exactly the names flatten_state writes for this config
    for key, value in flatten_state(model.start_state(2)).items():
        assert _carry_fault(key, value.shape, model.config, "language-model") is None
    parts = len(model.start_state(1)[0])
    assert _carry_fault(state_key(layers, 0), (2, 3), model.config, "language-model") is not None
    assert _carry_fault(state_key(0, parts), (2, 3), model.config, "language-model") is not None
    assert _carry_fault("x/0", (2, 3), model.config, "language-model") is not None


# --------------------------------------------------------------------- d. one home for UNKNOWN_TOKEN

def test_every_reader_of_unknown_words_agrees_with_the_vocabulary():
    from rnnlm.config import UNKNOWN_TOKEN
    from rnnlm.data.corpus import corpus_from_documents
    from rnnlm.data.trees import encode_tree, parse_tree
    from rnnlm.data.vocab import Vocabulary
    from rnnlm.training.stream import stream_from_text
    vocab = Vocabulary.build([["the", "cat", "sat"], ["the", "dog"]], 5)  # keeps "the" and one more
    tokens = ["the", "zebra", UNKNOWN_TOKEN, "cat", "dog", "the", "sat"]
    expected = [t for t, i in zip(tokens, vocab.encode(tokens)) if i == vocab.unknown_index]
    assert vocab.unknown_tokens(tokens) == expected
    assert [vocab.index_of(t) for t in tokens] == vocab.encode(tokens).tolist()
    assert vocab.unknown_count(vocab.encode(tokens)) == len(expected)
    tree = encode_tree(parse_tree("(1 (2 the) (3 (2 zebra) (4 cat)))"), vocab)
    assert tree.word[tree.left < 0].tolist() == vocab.encode(["the", "zebra", "cat"]).tolist()
    corpus = corpus_from_documents(["the zebra sat on the cat."], vocabulary=vocab)
    words = [t for s in corpus.sentences for t in s]
    assert corpus.report.unknown_fraction == pytest.approx(len(vocab.unknown_tokens(words)) / len(words))
    stream = stream_from_text("the zebra\nsat cat\n", vocabulary=vocab)
    assert f"{vocab.unknown_count(stream.ids) / len(stream.ids):.1%} of the tokens" in stream.report[1]


# --------------------------------------------------------------------- e. one tokenizer for user text

USER_TEXTS = ["Hello World!", "I don't KNOW, see https://x.com/a?b=1 on /r/Python and u/Someone.",
              "two\nlines\n\nand a blank one", "Café au lait 🙂", "", "   spaced   out  "]


@pytest.mark.parametrize("text", USER_TEXTS)
@pytest.mark.parametrize("level", ["word", "char"])
@pytest.mark.parametrize("links", [True, False])
def test_the_prefix_and_the_stream_are_tokenized_by_the_one_tokenizer(text, level, links):
    from rnnlm.data.text import tokenize_text
    from rnnlm.models.generate import tokenize_prefix
    from rnnlm.training.stream import stream_tokens
    assert tokenize_prefix(text, level, links) == tokenize_text(text, level, links)
    streamed = stream_tokens(text, level, links)
    assert streamed == tokenize_text(text, level, links, line_breaks=True)
    if level == "word":  # the stream's lines are the prefix tokenizer's, with "\n" between them
        expected = []
        for i, line in enumerate(text.split("\n")):
            expected += ([] if i == 0 else ["\n"]) + tokenize_prefix(line, level, links)
        assert streamed == expected
        assert [t for t in streamed if t != "\n"] == tokenize_prefix(text, level, links)


# --------------------------------------------------------------------- f. the tree configs are configs

SHARED_BAD = [("epochs", 0), ("epochs", 2.5), ("batch_size", -1), ("learning_rate", 0.0),
              ("learning_rate", float("nan")), ("learning_rate", float("inf")), ("seed", -1), ("seed", True),
              ("optimizer", "lbfgs"), ("clip", 0.0), ("clip", float("nan")), ("time_limit", 0)]


@pytest.mark.parametrize("name,value", SHARED_BAD, ids=[f"{n}={v}" for n, v in SHARED_BAD])
def test_the_tree_trainer_refuses_a_shared_option_in_the_words_of_train_config(name, value):
    from rnnlm.config import TrainConfig
    from rnnlm.errors import ConfigError
    from rnnlm.training.trees import TreeTrainConfig
    with pytest.raises(ConfigError) as plain:
        TrainConfig(**{name: value})
    with pytest.raises(ConfigError) as tree:
        TreeTrainConfig(**{name: value})
    assert str(tree.value) == str(plain.value)


@pytest.mark.parametrize("size", [3, 2.0, 10 ** 9])
def test_the_tree_vocabulary_size_is_checked_like_the_corpus_one(size):
    from rnnlm.config import DataConfig
    from rnnlm.errors import ConfigError
    from rnnlm.training.trees import TreeTrainConfig
    with pytest.raises(ConfigError) as data:
        DataConfig(vocabulary_size=size)
    with pytest.raises(ConfigError) as tree:
        TreeTrainConfig(vocabulary_size=size)
    assert str(tree.value) == str(data.value)


def test_the_tree_configs_are_configs_and_round_trip():
    from rnnlm.config import ModelConfig, _Config
    from rnnlm.errors import ConfigError
    from rnnlm.models.tree_lstm import TreeLSTMConfig
    from rnnlm.training.trees import TreeTrainConfig
    for cls, changed in ((TreeLSTMConfig, {"hidden_size": np.int64(7)}), (TreeTrainConfig, {"epochs": np.int64(3)})):
        assert issubclass(cls, _Config)
        config = cls(**changed)
        assert config == cls.from_dict(config.to_dict())
        assert type(config.to_dict()[next(iter(changed))]) is int  # NumPy numbers stored as plain ones
        assert cls.from_dict({**config.to_dict(), "unknown": 1}) == config
        with pytest.raises(ConfigError, match="JSON object"):
            cls.from_dict([1, 2])
    with pytest.raises(ConfigError) as model:
        ModelConfig(hidden_size=0)
    with pytest.raises(ConfigError) as tree:
        TreeLSTMConfig(hidden_size=0)
    assert str(tree.value) == str(model.value).replace("hidden size", "hidden_size")


# --------------------------------------------------------------------- g. one list of optimizer names

def test_the_optimizer_registry_is_config_optimizers():
    from rnnlm.config import DEFAULT_LEARNING_RATES, OPTIMIZERS, TrainConfig
    from rnnlm.errors import ConfigError
    from rnnlm.nn import optim
    from rnnlm.training.trees import TreeTrainConfig
    assert tuple(optim.OPTIMIZERS) == OPTIMIZERS
    assert set(optim._RULES) == set(OPTIMIZERS)  # no update rule that the options cannot name
    assert set(DEFAULT_LEARNING_RATES) == set(OPTIMIZERS)
    for name in OPTIMIZERS:
        assert optim.make_optimizer(name, 0.1).name == name
        TrainConfig(optimizer=name)
        TreeTrainConfig(optimizer=name)
    with pytest.raises(ConfigError) as made:
        optim.make_optimizer("lbfgs", 0.1)
    with pytest.raises(ConfigError) as configured:
        TrainConfig(optimizer="lbfgs")
    assert str(made.value) == str(configured.value)


# --------------------------------------------------------------------- h. defaults come from config.py

def _defaults(function):
    import inspect
    return {name: p.default for name, p in inspect.signature(function).parameters.items()
            if p.default is not inspect.Parameter.empty}


def test_a_model_built_with_the_defaults_has_the_default_config():
    from rnnlm.config import ModelConfig
    from rnnlm.models.fast import FastRNN
    from rnnlm.models.language_model import LanguageModel
    from rnnlm.models.reference import RNNNumpy
    assert LanguageModel(20, 7).config == ModelConfig(vocab_size=20, hidden_size=7)
    assert LanguageModel.from_config(ModelConfig(vocab_size=20, hidden_size=7)).config == LanguageModel(20, 7).config
    assert FastRNN(20).config == ModelConfig(vocab_size=20)
    # RNNNumpy keeps the tutorial's literal signature, RNNNumpy(word_dim, hidden_dim=100, bptt_truncate=4):
    # the reading copy follows the tutorial even where rnnlm's own default (ModelConfig) moved on
    assert RNNNumpy(20).config == ModelConfig(vocab_size=20, hidden_size=100)
    assert LanguageModel(20, 7, bptt_truncate=None).config.bptt_truncate is None  # full BPTT: still one word away


@pytest.mark.parametrize("cls,renamed", [
    ("rnnlm.models.language_model.LanguageModel", {}),
    ("rnnlm.models.fast.FastRNN", {"hidden_dim": "hidden_size"}),
])
def test_every_model_default_is_the_model_configs(cls, renamed):
    import importlib
    from dataclasses import fields
    from rnnlm.config import ComputeConfig, ModelConfig
    module, _, name = cls.rpartition(".")
    defaults = _defaults(getattr(importlib.import_module(module), name).__init__)
    known = {f.name: f.default for f in fields(ModelConfig)} | {"threads": ComputeConfig.threads}
    compared = {arg: value for arg, value in defaults.items() if renamed.get(arg, arg) in known}
    assert compared, defaults
    for arg, value in compared.items():
        assert value == known[renamed.get(arg, arg)], arg


@pytest.mark.parametrize("function", ["rnnlm.data.vocab.Vocabulary.build", "rnnlm.data.corpus.load_corpus",
                                      "rnnlm.data.corpus.corpus_from_documents", "rnnlm.data.corpus.CorpusSource.load",
                                      "rnnlm.training.stream.load_stream", "rnnlm.training.stream.stream_from_text"])
def test_the_data_functions_default_to_data_config(function):
    import importlib
    from dataclasses import fields
    from rnnlm.config import DataConfig
    parts = function.split(".")
    for split in range(len(parts) - 1, 0, -1):
        try:
            target = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        for attribute in parts[split:]:
            target = getattr(target, attribute)
        break
    known = {f.name: f.default for f in fields(DataConfig)}
    defaults = _defaults(target)
    assert "vocabulary_size" in defaults
    for arg, value in defaults.items():
        if arg in known and not (function.endswith("corpus_from_documents") and arg == "format"):
            if arg == "min_count" and function.endswith(("Vocabulary.build", "CorpusSource.load")):
                assert value == 1  # the tutorial's rule: the top vocabulary_size words, however rare
                continue
            assert value == known[arg], arg


# --------------------------------------------------------------------- counts in messages

def test_a_count_is_worded_by_the_one_counted():
    from rnnlm.wording import counted
    assert [counted(1, "epoch"), counted(0, "epoch"), counted(3, "epoch")] == ["1 epoch", "0 epochs", "3 epochs"]
    assert counted(2, "batch", "batches") == "2 batches" and counted(1, "entry", "entries") == "1 entry"
    assert counted(1234, "sentence", grouped=True) == "1,234 sentences" and counted(1234, "time") == "1234 times"


def test_no_module_words_a_plural_inline():
    """`{'' if n == 1 else 's'}` and its kin belong in rnnlm.wording.counted, not in each message."""
    import re
    from pathlib import Path
    inline = re.compile(r"""\{(['"])\w*\1 if [^{}]*== 1 else (['"])\w*\2\}""")
    package = Path(__file__).resolve().parents[1] / "rnnlm"
    found = [f"{path.relative_to(package.parent)}:{number}: {line.strip()}"
             for path in sorted(package.rglob("*.py"))
             for number, line in enumerate(path.read_text().splitlines(), start=1) if inline.search(line)]
    assert not found, "plurals worded inline (use rnnlm.wording.counted):\n" + "\n".join(found)

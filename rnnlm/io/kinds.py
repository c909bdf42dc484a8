"""The registry of model kinds: which class a model file's `model_kind` names, how to build it,
what parameters (names and shapes) each kind of each configuration has, and its human name.

One place decides these for save, load, export, import and `info`.
"""

import math

import numpy as np

from rnnlm.errors import ConfigError, ModelFileError


MODEL_KINDS = ("fast-rnn", "language-model", "reference-rnn")


def model_kind(config):
    """"fast-rnn" for the tutorial's one-layer one-hot Elman RNN, else "language-model"."""
    if config.cell == "rnn" and config.num_layers == 1 and config.embed_size is None:
        return "fast-rnn"
    return "language-model"


def kind_of(model):
    """The model_kind a model file records for `model`: "reference-rnn" for the tutorial's `RNNNumpy`;
    a `LanguageModel` stays one even in the tutorial's shape (stream models carry state)."""
    from rnnlm.models.language_model import LanguageModel
    from rnnlm.models.reference import RNNNumpy
    if isinstance(model, RNNNumpy):
        return "reference-rnn"
    return "language-model" if isinstance(model, LanguageModel) else model_kind(model.config)


def build_model(config, seed=None, dtype=np.float32, kind=None, counts=None, threads=None):
    """A freshly initialised model of `config`'s shape: `FastRNN` or `LanguageModel` (see `model_kind`),
    or with kind "reference-rnn" the tutorial's `RNNNumpy` (always float64, `dtype` ignored).

    counts: the vocabulary's corpus counts, which bin the words into classes for the class softmax.
    threads: output-layer workers (`ComputeConfig.threads`).
    """
    kind = kind or model_kind(config)
    if kind == "reference-rnn":
        from rnnlm.models.reference import RNNNumpy
        if config.softmax != "full":
            raise ConfigError("RNNNumpy, the tutorial's reading copy, has only the full softmax")
        return RNNNumpy(config.vocab_size, config.hidden_size, bptt_truncate=config.bptt_truncate, seed=seed)
    if kind == "fast-rnn":
        from rnnlm.models.fast import FastRNN
        if config.dropout or config.tie_weights:
            raise ConfigError("--dropout and --tie-weights need a LanguageModel, i.e. an embedding: give --embed-size "
                              "(FastRNN, the tutorial's one-hot Elman RNN, has neither)")
        return FastRNN(config.vocab_size, config.hidden_size, bptt_truncate=config.bptt_truncate,
                       seed=seed, dtype=dtype, softmax=config.softmax, num_classes=config.num_classes,
                       counts=counts, threads=threads)
    if kind == "language-model":
        try:
            from rnnlm.models.language_model import LanguageModel
        except ImportError:
            raise ConfigError(f"this rnnlm has no LanguageModel (rnnlm.models.language_model), needed for cell {config.cell!r}, "
                              f"{config.num_layers} layer(s), embed size {config.embed_size}") from None
        return LanguageModel.from_config(config, seed=seed, dtype=dtype, counts=counts, threads=threads)
    raise ModelFileError(f"unknown model kind {kind!r}; this rnnlm knows {', '.join(MODEL_KINDS)}")


def expected_param_shapes(config, kind):
    """{name: shape} of the parameters a model of `kind` built from `config` has, exactly (nothing allocated).

    Mirrors the constructors: RNNNumpy / FastRNN ("reference-rnn", "fast-rnn": U (H, C), V (C, H),
    W (H, H), plus V_class (K, H) for FastRNN's class softmax) and `LanguageModel` ("language-model":
    embedding (C, E), each layer's cell parameters l<k>.<name>, W_out (H, C) (none when tied), b_out (C,), plus W_class
    (H, K), b_class (K,) for the class softmax).
    """
    from rnnlm.nn.cells import cell_param_shapes
    C, H = config.vocab_size, config.hidden_size
    klass = config.softmax == "class"
    if kind in ("fast-rnn", "reference-rnn"):
        shapes = {"U": (H, C), "V": (C, H), "W": (H, H)}
        if kind == "fast-rnn" and klass:
            shapes["V_class"] = (config.classes, H)
        return shapes
    if kind == "language-model":
        E = config.embed_size or H
        shapes = {"embedding": (C, E)}
        for k in range(config.num_layers):
            for name, shape in cell_param_shapes(config.cell, E if k == 0 else H, H, peephole=config.peephole,
                                                 coupled=config.coupled_gates).items():
                shapes[f"l{k}.{name}"] = shape
        shapes.update({"b_out": (C,)} if config.tie_weights else {"W_out": (H, C), "b_out": (C,)})
        if klass:
            shapes.update({"W_class": (H, config.classes), "b_class": (config.classes,)})
        return shapes
    raise ModelFileError(f"unknown model kind {kind!r}; this rnnlm knows {', '.join(MODEL_KINDS)}")


def max_parameters(config, kind=None):
    """The number of parameters a model of `config` (and `kind`, default its natural kind) has, exactly."""
    shapes = expected_param_shapes(config, kind or model_kind(config))
    return sum(math.prod(shape) for shape in shapes.values())


def kinds_for(config):
    """The model kinds a file may record for `config`: its natural kind; a LanguageModel can hold any
    config (stream models are LanguageModels even in the tutorial's shape); RNNNumpy the tutorial's."""
    natural = model_kind(config)
    return {natural, "language-model"} | ({"reference-rnn"} if natural == "fast-rnn" else set())


# What each kind is called: at length by `rnnlm info` (KIND_NAMES), in one phrase by the commands'
# one-line model descriptions (`short_name`). Both live here, beside the kinds themselves.
KIND_NAMES = {"fast-rnn": "FastRNN, the tutorial's Elman RNN (batched, float32)",
              "reference-rnn": "RNNNumpy, the tutorial's Elman RNN (reading copy, float64)",
              "language-model": "LanguageModel (embedding, recurrent layers, softmax)",
              "tree-lstm": "Tree-LSTM sentiment classifier (binary constituency Tree-LSTM, 5 classes)"}
_SHORT_NAMES = {"fast-rnn": "FastRNN (the tutorial's Elman RNN)",
                "reference-rnn": "RNNNumpy (the tutorial's Elman RNN, float64)"}


def short_name(kind, cell):
    """The class of a model of `kind` in one phrase, e.g. "FastRNN (the tutorial's Elman RNN)", "LanguageModel (gru)"."""
    return _SHORT_NAMES.get(kind, f"LanguageModel ({cell})")


TREE_KIND = "tree-lstm"

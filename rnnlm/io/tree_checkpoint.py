"""Tree-LSTM model files: the same archive format as the language models (`model_kind` "tree-lstm"),
with the tree model's own parameters and configs.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rnnlm.data.vocab import Vocabulary
from rnnlm.errors import ModelFileError
from rnnlm.io.archive import FORMAT_NAME, FORMAT_VERSION, Archive, read_metadata, exception_line, open_archive, read_vocabulary, short_text
from rnnlm.io.checkpoint import fill_params, read_optimizer, stored_params, write_archive
from rnnlm.io.kinds import TREE_KIND


@dataclass
class TreeCheckpoint:
    """A tree model file, rebuilt: model (TreeLSTM), vocabulary, train_config, training metadata, optimizer arrays,
    and state: the `TreeTrainingState` to resume from (None unless the file is resumable)."""

    path: Path
    model: object
    vocabulary: Vocabulary
    train_config: object
    training: dict
    optimizer_state: dict
    metadata: dict
    state: object = None


def _check_tree_classes(num_classes, path):
    """Refuse a Tree-LSTM whose classifier has other than the treebank's 5 labels.

    TreeLSTMConfig allows any num_classes >= 2, but everything around the model is 5-class:
    the tree reader accepts labels 0-4 only, `tree_train.evaluate` and `binary_prediction`
    read p(0) + p(1) against p(3) + p(4) around the neutral 2, and `rnnlm trees predict` names
    the five sentiments. A 3-class file crashed there (index 3), a 7-class one predicted names
    it has none for; so such a file is neither written nor read."""
    from rnnlm.data.trees import NUM_CLASSES
    if num_classes != NUM_CLASSES:
        raise ModelFileError(f"{path}: a Tree-LSTM with {num_classes} output classes; rnnlm trees uses the "
                             f"{NUM_CLASSES} sentiment labels 0-4 only, so it cannot read this file "
                             "(train one with 'rnnlm trees train')")


def save_tree_model(path, model, vocabulary, train_config=None, training=None, optimizer=None):
    """Write a Tree-LSTM with its vocabulary, configs, JSON-able `training` dict and optimizer state, atomically.

    training: `TreeTrainingState.to_dict()`; with the optimizer the file is resumable (`rnnlm trees train --resume`).

    Only a 5-class model is written (see `_check_tree_classes`)."""
    if model.config.vocab_size != len(vocabulary):
        raise ModelFileError(f"model has {model.config.vocab_size} words but the vocabulary {len(vocabulary)}")
    _check_tree_classes(model.config.num_classes, path)
    from rnnlm.version import __version__
    params = stored_params(model.params, path)
    metadata = {
        "format": FORMAT_NAME, "format_version": FORMAT_VERSION, "rnnlm_version": __version__,
        "model_kind": TREE_KIND, "model_config": model.config.to_dict(),
        "train_config": None if train_config is None else train_config.to_dict(),
        "training": training, "resumable": optimizer is not None,
        "special_tokens": {"UNKNOWN_TOKEN": vocabulary.unknown_index},
        "params": {name: {"shape": list(p.shape), "dtype": str(p.dtype)} for name, p in params.items()},
    }
    write_archive(path, metadata, params, vocabulary, optimizer.state_dict() if optimizer is not None else {})


def load_tree_model(path, dtype=np.float32):
    """Read a file written by `save_tree_model` into a `TreeCheckpoint` (never unpickles anything).

    As for `load_model`: sizes bounded by `TreeLSTMConfig`, every stored array's header checked against
    the shapes the configuration implies before the model is allocated, only known members read."""
    from rnnlm.models.tree_lstm import TreeLSTM, TreeLSTMConfig, param_shapes
    from rnnlm.training.trees import TreeTrainConfig
    with open_archive(path) as npz:
        archive = Archive(npz, path)
        meta = read_metadata(archive, path)
        if meta.get("model_kind") != TREE_KIND:
            raise ModelFileError(f"{path} holds a language model ({short_text(meta.get('model_kind'))}), not a "
                                 "Tree-LSTM sentiment model; train one with 'rnnlm trees train'")
        try:
            config = TreeLSTMConfig.from_dict(meta["model_config"])
            train_config = None if meta.get("train_config") is None else TreeTrainConfig.from_dict(meta["train_config"])
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ModelFileError(f"{path} has incomplete or inconsistent metadata ({exception_line(exc)})") from None
        _check_tree_classes(config.num_classes, path)
        expected = param_shapes(config)
        shapes = {}
        for name, shape in expected.items():
            key = f"param/{name}"
            if key not in archive:
                raise ModelFileError(f"{path} lacks the parameter {name!r}")
            shapes[name], stored_dtype = archive.header(key)
            if stored_dtype.kind != "f" or shapes[name] != shape:
                raise ModelFileError(f"{path}: parameter {name!r} has shape {shapes[name]} of {stored_dtype}, "
                                     f"expected {shape} floats")
        if "vocab/index_to_word" not in archive or archive.header("vocab/index_to_word")[0] != (config.vocab_size,):
            raise ModelFileError(f"{path}: the vocabulary does not have the model's {config.vocab_size} words")
        vocabulary = read_vocabulary(archive, path)
        model = TreeLSTM(config, seed=0, dtype=dtype)
        fill_params(model.params, archive, shapes, path, dtype)
        optimizer_state = read_optimizer(archive, path, shapes)
    training = meta.get("training") or {}
    return TreeCheckpoint(path=Path(path), model=model, vocabulary=vocabulary, train_config=train_config,
                          training=training, optimizer_state=optimizer_state, metadata=meta,
                          state=_training_state(path, meta, training, optimizer_state, train_config))


def _training_state(path, meta, training, optimizer_state, train_config):
    """The file's `TreeTrainingState` when it was saved with its optimizer (resumable), else None."""
    from rnnlm.training.trees import TreeTrainingState
    if not meta.get("resumable") or not training or train_config is None:
        return None
    try:
        return TreeTrainingState.from_dict(training, optimizer_state, train_config)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ModelFileError(f"{path} has an incomplete or inconsistent training state ({exception_line(exc)})") from None

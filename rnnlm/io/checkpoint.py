"""Model files: one .npz holding parameters, vocabulary, configuration and training state.

Layout of a model file (format version 1), every entry a plain NumPy array:

    metadata                 uint8, UTF-8 bytes of one JSON object (see below)
    param/<name>             each model parameter, e.g. param/U, param/V, param/W
    vocab/index_to_word      unicode strings, position = word index
    vocab/counts             int64 corpus counts
    optimizer/<key>          the optimizer's flat state_dict() (e.g. optimizer/U/m, optimizer/steps)
    output/word_class        int64 (C,), class softmax only: each word's class (model_config holds
                             softmax "class" and num_classes)

The metadata JSON holds: "format" ("rnnlm-model"), "format_version" (1), "rnnlm_version",
"model_kind" ("fast-rnn": the tutorial's `FastRNN`; "language-model": `LanguageModel`;
"reference-rnn": the tutorial's `RNNNumpy`, float64, same parameters as "fast-rnn"),
"level" ("word" or "char"), "model_config", "data_config" and "train_config" (the
dataclasses of `rnnlm.config` as dicts), "training" (the `TrainingState` metadata:
epoch, batch, learning rate, the learning-rate rule's memory, the best epoch, the corpus
fingerprint and the per-epoch history, or null for an untrained model; a stream run stopped
mid-epoch adds its carried hidden state as optimizer/carry/... arrays), "rng" (how the training randomness is derived: batch order of
epoch e is `np.random.default_rng([seed, e])`, so the seed and the epoch are the whole
RNG state), "special_tokens" (their indices) and "params" (each name's shape and dtype).

This module is the format: `save_model` writes it, `load_model` reads and validates it, with
one rule for what is valid on both sides (`parameter_fault` for values, `kinds.expected_param_shapes`
for names and shapes, `_carry_fault` for carried stream state). Its neighbours do the rest:
`rnnlm.io.archive` reads the untrusted .npz (no pickle, sizes checked before allocating),
`rnnlm.io.safe_files` writes atomically and guards outputs, `rnnlm.io.kinds` says which class
each model_kind is, `rnnlm.io.summary` is what `rnnlm info` prints, and
`rnnlm.io.tree_checkpoint` is the Tree-LSTM's file in the same format.
"""

import json
import math
from dataclasses import MISSING, dataclass, fields
from pathlib import Path

import numpy as np

from rnnlm.config import DataConfig, LEVELS, ModelConfig, TrainConfig
from rnnlm.data.vocab import Vocabulary
from rnnlm.errors import ModelFileError
from rnnlm.io.archive import FORMAT_NAME, FORMAT_VERSION, MAX_WORD_CHARS, Archive, read_metadata, exception_line, open_archive, read_vocabulary, short_text
from rnnlm.io.kinds import MODEL_KINDS, TREE_KIND, kinds_for, build_model, expected_param_shapes, kind_of, model_kind
from rnnlm.io.safe_files import atomic_write
from rnnlm.nn.numerics import parameter_fault, parameter_message


BUNDLED_MODEL = Path(__file__).resolve().parents[1] / "assets" / "reddit-model.npz"


def save_model(path, model, vocabulary, level="word", data_config=None, train_config=None, state=None,
               param_dtype=None, include_optimizer=True):
    """Write `model` with its vocabulary, configuration and training state to `path`, atomically.

    state: a `rnnlm.training.loop.TrainingState` (None for an untrained model).
    param_dtype: store the parameters in this dtype (e.g. np.float16 to halve a bundled
        model); default: as they are. Loading casts them back to the model's dtype.
    include_optimizer: False drops the optimizer's arrays (Adam keeps two per parameter)
        for a smaller file to share; the epoch and loss history stay, but such a file
        cannot be resumed exactly, so `metadata["resumable"]` is False.
    """
    config = model.config
    if config.vocab_size != len(vocabulary):
        raise ModelFileError(f"model has {config.vocab_size} outputs but the vocabulary {len(vocabulary)} words")
    training = state.to_dict() if state is not None else {"metadata": None, "arrays": {}}
    if not include_optimizer:
        training["arrays"] = {}
    _check_carry(training["arrays"], config, kind_of(model), path)
    params = stored_params(model.params, path, param_dtype)
    from rnnlm.version import __version__
    metadata = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "rnnlm_version": __version__,
        "model_kind": kind_of(model),
        "level": level,
        "model_config": config.to_dict(),
        "data_config": (data_config or DataConfig(vocabulary_size=len(vocabulary), level=level)).to_dict(),
        "train_config": None if train_config is None else train_config.to_dict(),
        "training": training["metadata"],
        "resumable": state is not None and include_optimizer,
        "rng": None if train_config is None else {
            "seed": train_config.seed,
            "batch_order": "numpy.random.default_rng([seed, epoch]) for each epoch",
            "next_epoch": (state.epoch if state is not None else 0) + 1},
        "special_tokens": {"UNKNOWN_TOKEN": vocabulary.unknown_index, "SENTENCE_START": vocabulary.start_index,
                           "SENTENCE_END": vocabulary.end_index},
        "params": {name: {"shape": list(p.shape), "dtype": str(p.dtype)} for name, p in params.items()},
    }
    extra = {"output/word_class": model.classes.word_class} if getattr(model, "classes", None) is not None else {}
    write_archive(path, metadata, params, vocabulary, training["arrays"], extra)


def _check_carry(arrays, config, kind, path):
    """Refuse to write carried stream state the reader would refuse (`_carry_fault`, the one rule for both)."""
    from rnnlm.training.loop import CARRY_PREFIX
    for key, value in arrays.items():
        if key.startswith(CARRY_PREFIX):
            fault = _carry_fault(key[len(CARRY_PREFIX):], np.shape(value), config, kind)
            if fault:
                raise ModelFileError(f"carried state {key!r} has shape {np.shape(value)}: {fault}; "
                                     f"nothing was written to {path}")


def stored_params(model_params, path, param_dtype=None):
    """The parameters as they will be stored (cast to param_dtype if given), refusing before anything
    is written an invalid value (`parameter_fault`) or one the cast overflows (ModelFileError naming `path`)."""
    with np.errstate(over="ignore"):  # an overflowing cast is reported below, as one line
        params = {name: np.asarray(value if param_dtype is None else value.astype(param_dtype))
                  for name, value in model_params.items()}
    for name, value in model_params.items():
        fault = parameter_fault(value)
        if fault is not None:
            raise ModelFileError(f"{parameter_message(name, fault)}; nothing was written to {path}")
        if not np.all(np.isfinite(params[name])):
            raise ModelFileError(f"parameter {name!r} has values up to {float(np.max(np.abs(value))):.6g}, beyond the "
                                 f"range of {np.dtype(param_dtype)} (largest {float(np.finfo(param_dtype).max):g}); "
                                 f"nothing was written to {path}; keep float32")
    return params


def write_archive(path, metadata, params, vocabulary, optimizer_arrays, extra=None):
    """One model file (the layout in this module's docstring), written atomically."""
    arrays = {"metadata": np.frombuffer(json.dumps(metadata).encode("utf-8"), dtype=np.uint8)}
    arrays.update({f"param/{name}": p for name, p in params.items()})
    arrays.update({f"vocab/{k}": v for k, v in vocabulary.to_arrays().items()})
    arrays.update({f"optimizer/{k}": np.asarray(v) for k, v in optimizer_arrays.items()})
    arrays.update(extra or {})
    with atomic_write(path) as handle:
        np.savez_compressed(handle, **arrays)


@dataclass
class Checkpoint:
    """What a model file holds, rebuilt: the model, its vocabulary and how it was trained.

    state: a `TrainingState` to resume from, or None for an untrained model.
    train_config: the `TrainConfig` it was trained with, or None.
    """

    path: Path
    model: object
    vocabulary: Vocabulary
    level: str
    kind: str
    data_config: DataConfig
    train_config: TrainConfig | None
    state: object
    metadata: dict


def fill_params(params, archive, shapes, path, dtype):
    """Copy each stored param/<name> into params[name] (allocated by the caller): presence and shape
    from `shapes` (the headers, already read), values valid (`parameter_fault`, the writers' rule too)."""
    for name, target in params.items():
        if name not in shapes:
            raise ModelFileError(f"{path} lacks the parameter {name!r}")
        if shapes[name] != target.shape:
            raise ModelFileError(f"{path}: parameter {name!r} has shape {shapes[name]}, expected {target.shape}")
        stored = archive.read(f"param/{name}")
        fault = parameter_fault(stored)
        if fault is not None:
            raise ModelFileError(f"{path}: {parameter_message(name, fault)}; use an earlier model file")
        target[...] = stored


def _word_classes(archive, config, path):
    """The stored `ClassSoftmax` of a class-softmax model file, checked (header first), or ModelFileError."""
    from rnnlm.nn.output import ClassSoftmax
    key = "output/word_class"
    if key not in archive:
        raise ModelFileError(f"{path} has a class softmax but lacks its word classes ({key})")
    K = config.classes
    shape, dtype = archive.header(key)
    if shape != (config.vocab_size,) or dtype.kind not in "iu":
        raise ModelFileError(f"{path}: {key} must hold {config.vocab_size} class ids in [0, {K})")
    stored = archive.read(key)
    if stored.min(initial=0) < 0 or stored.max(initial=0) >= K:
        raise ModelFileError(f"{path}: {key} must hold {config.vocab_size} class ids in [0, {K})")
    try:
        return ClassSoftmax(stored, K)
    except ValueError as exc:
        raise ModelFileError(f"{path}: {exc}") from None


def _check_arrays(archive, path, meta, model_config, kind):
    """Check every parameter and vocabulary entry's header against the metadata, before anything is built:
    the file must store exactly the parameters (names and shapes) a `kind` model of `model_config` has."""
    declared = meta.get("params")
    if not isinstance(declared, dict) or not declared:
        raise ModelFileError(f"{path} has incomplete metadata (no list of parameters)")
    expected = expected_param_shapes(model_config, kind)
    shapes = {}
    for name in declared:
        key = f"param/{name}"
        if not isinstance(name, str) or key not in archive:
            raise ModelFileError(f"{path} lacks the parameter {short_text(name)}")
        if name not in expected:
            raise ModelFileError(f"{path}: parameter {short_text(name)} is not one a {kind!r} model of its model_config "
                                 "has; the metadata does not match the arrays")
        shape, dtype = archive.header(key)
        if dtype.kind != "f":
            raise ModelFileError(f"{path}: parameter {name!r} is not a floating-point array (it is {dtype})")
        if shape != expected[name]:
            raise ModelFileError(f"{path}: parameter {name!r} has shape {shape}, but its model_config implies "
                                 f"{expected[name]}; the metadata does not match the arrays")
        shapes[name] = shape
    missing = [name for name in expected if name not in shapes]
    if missing:
        raise ModelFileError(f"{path} lacks the parameter {missing[0]!r} (its model_config implies "
                             f"{len(expected)} parameters); the metadata does not match the arrays")
    vocab_key = "vocab/index_to_word"
    if vocab_key not in archive:
        raise ModelFileError(f"{path} has incomplete or inconsistent metadata (no vocabulary)")
    shape, dtype = archive.header(vocab_key)
    if dtype.kind != "U" or shape != (model_config.vocab_size,) or dtype.itemsize > 4 * MAX_WORD_CHARS:
        raise ModelFileError(f"{path}: vocabulary has shape {shape} and type {dtype}, expected "
                             f"{model_config.vocab_size} strings (the model's vocab_size)")
    if "vocab/counts" in archive:
        shape, dtype = archive.header("vocab/counts")
        if dtype.kind not in "iu" or shape != (model_config.vocab_size,):
            raise ModelFileError(f"{path}: vocabulary counts have shape {shape} and type {dtype}, expected "
                                 f"{model_config.vocab_size} integers")
    return shapes


def _optimizer_slots(train_config):
    """The slot names train_config's optimizer keeps per parameter (e.g. "m", "v" for Adam), asked of the optimizer
    itself on a one-number parameter; None when there is no train_config to ask."""
    if train_config is None:
        return None
    from rnnlm.nn.optim import make_optimizer
    probe = make_optimizer(train_config.optimizer, 0.1, train_config.momentum)
    probe.step({"p": np.zeros(1)}, {"p": np.ones(1)})
    return {key.split("/", 1)[1] for key in probe.state_dict() if key.startswith("p/")}


def _carry_fault(name, shape, config, kind):
    """What is wrong with carried stream state `name` ("<layer>/<part>") of `shape`, or None: a LanguageModel's
    state is one (streams, H) array per layer and part of the cell's state (two for the LSTM)."""
    from rnnlm.models.language_model import parse_state_key, state_parts
    if config is None:
        return None
    if kind != "language-model":
        return f"a {kind!r} model carries no stream state"
    key = parse_state_key(name)
    if key is None:
        return "its name is not <layer>/<part>"
    layer, part = key
    if layer >= config.num_layers or part >= state_parts(config):
        return f"the model has {config.num_layers} layer(s) of {state_parts(config)} state array(s)"
    if len(shape) != 2 or shape[1] != config.hidden_size:
        return f"expected (streams, {config.hidden_size}), one row per stream of the hidden size"
    return None


def read_optimizer(archive, path, shapes, config=None, kind=None, train_config=None):
    """The optimizer's arrays: only "steps", "learning_rate" and "<parameter>/<slot>" of the parameter's shape
    (slots the train_config's optimizer keeps), plus a stream run's carried hidden state under "carry/" (one
    (streams, H) array per layer and state part, every one for the same number of streams)."""
    from rnnlm.training.loop import CARRY_PREFIX
    slots = _optimizer_slots(train_config)
    streams = set()
    arrays = {}
    for key in archive.npz.files:
        if not key.startswith("optimizer/"):
            continue
        name = key[len("optimizer/"):]
        shape, dtype = archive.header(key)
        if name in ("steps", "learning_rate"):
            if shape != () or dtype.kind not in ("iu" if name == "steps" else "iuf"):
                raise ModelFileError(f"{path}: optimizer {name} must be one number, found shape {shape} of {dtype}")
        elif name.startswith(CARRY_PREFIX):  # a stream run's hidden state, saved mid-epoch
            if dtype.kind != "f" or len(shape) > 3:
                raise ModelFileError(f"{path}: carried state {key!r} has shape {shape} of {dtype}, expected floats")
            fault = _carry_fault(name[len(CARRY_PREFIX):], shape, config, kind)
            if fault:
                raise ModelFileError(f"{path}: carried state {key!r} has shape {shape}: {fault}")
            streams.add(shape[0])
            if len(streams) > 1:
                raise ModelFileError(f"{path}: carried state {key!r} is for {shape[0]} streams, another entry "
                                     f"for {min(streams - {shape[0]})}")
        else:
            param, _, slot = name.rpartition("/")
            if param not in shapes or "/" not in name:
                raise ModelFileError(f"{path}: unknown optimizer entry {key!r}")
            if slots is not None and slot not in slots:
                raise ModelFileError(f"{path}: optimizer entry {key!r} is not state the {train_config.optimizer} "
                                     f"optimizer keeps ({', '.join(sorted(slots)) or 'none'})")
            if shape != shapes[param] or dtype.kind != "f":
                raise ModelFileError(f"{path}: optimizer entry {key!r} has shape {shape} of {dtype}, "
                                     f"expected {shapes[param]} floats like parameter {param!r}")
        value = archive.read(key)
        if value.dtype.kind == "f" and not np.all(np.isfinite(value)):
            raise ModelFileError(f"{path}: optimizer entry {key!r} is not finite (a diverged run?)")
        if name == "steps" and value < 0:
            raise ModelFileError(f"{path}: optimizer steps must not be negative")
        if name == "learning_rate" and not value > 0:
            raise ModelFileError(f"{path}: optimizer learning rate must be positive")
        arrays[name] = value
    return arrays


def _is_epoch_record(record):
    """A JSON epoch record as `train.EpochRecord` writes it: its required fields and any of its optional
    ones, each of its type (numbers; valid_loss, next_learning_rate and the batch counts may be null)."""
    from rnnlm.training.loop import EpochRecord
    known = {f.name: f for f in fields(EpochRecord)}
    required = [f.name for f in fields(EpochRecord) if f.default is MISSING]
    if not isinstance(record, dict) or not set(required) <= set(record) <= set(known):
        return False

    def number(value):
        return isinstance(value, (int, float)) and not isinstance(value, bool)

    for name, value in record.items():
        if name == "complete":
            ok = isinstance(value, bool)
        elif name == "monitored":
            ok = value in ("train", "validation")
        elif name in ("valid_loss", "next_learning_rate", "batches", "num_batches"):
            ok = value is None or number(value)
        else:
            ok = number(value)
        if not ok:
            return False
    return True


def _check_training(training, path, train_config=None):
    """The `training` metadata: a non-negative epoch (at most the planned train_config.epochs), batch and
    counters that are integers, a finite positive rate, the learning-rate rule's memory, a list of epoch records."""
    def number(value):
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)

    def count(value, low=0):
        return isinstance(value, int) and not isinstance(value, bool) and low <= value <= 10 ** 9

    problem = None
    schedule = training.get("schedule") if isinstance(training, dict) else None
    if not isinstance(training, dict):
        problem = "it is not an object"
    elif not count(training.get("epoch")):
        problem = f"epoch {short_text(training.get('epoch'))} is not a non-negative integer"
    elif train_config is not None and training["epoch"] > train_config.epochs:
        problem = f"epoch {training['epoch']} is beyond the {train_config.epochs} epochs its train_config plans"
    elif not count(training.get("batch", 0)):
        problem = f"batch {short_text(training.get('batch'))} is not a non-negative integer"
    elif not (number(training.get("learning_rate")) and training["learning_rate"] > 0):
        problem = f"learning rate {short_text(training.get('learning_rate'))} is not a positive finite number"
    elif training.get("previous_loss") is not None and not number(training["previous_loss"]):
        problem = f"previous loss {short_text(training.get('previous_loss'))} is not a finite number"
    elif training.get("best_epoch") is not None and not count(training["best_epoch"], 1):
        problem = f"best epoch {short_text(training.get('best_epoch'))} is not a positive integer"
    elif training.get("best_epoch") is not None and training["best_epoch"] > training["epoch"] + 1:
        # a time limit may stop epoch + 1 part-way after its validation loss was the best so far
        problem = (f"best epoch {training['best_epoch']} is after epoch {training['epoch'] + 1}, the one it "
                   "resumes")
    elif training.get("best_loss") is not None and not number(training["best_loss"]):
        problem = f"best loss {short_text(training.get('best_loss'))} is not a finite number"
    elif schedule is not None and not (
            isinstance(schedule, dict) and set(schedule) <= {"smoothed", "best", "bad_evaluations"}
            and all(schedule.get(k) is None or number(schedule[k]) for k in ("smoothed", "best"))
            and count(schedule.get("bad_evaluations", 0))):
        problem = "its learning-rate rule's memory (schedule) is not smoothed/best numbers and a bad_evaluations count"
    elif training.get("data") is not None and not isinstance(training["data"], dict):
        problem = "its data record is not an object"
    elif not isinstance(training.get("history", []), list) or \
            not all(_is_epoch_record(r) for r in training.get("history", [])):
        problem = "its history is not a list of epoch records"
    if problem:
        raise ModelFileError(f"{path} has a damaged training state ({problem})")


def load_model(path, dtype=np.float32, threads=None):
    """Read a model file written by `save_model` into a `Checkpoint` (never unpickles anything).

    Every size in the metadata is bounded (`rnnlm.config.MAX_*`) and checked against the
    stored arrays' headers before the model is allocated; only the members this format
    names are read (anything else in the archive is ignored, unread); parameters must be
    finite and fit the model's dtype. threads: the model's output-layer workers
    (`ComputeConfig.threads`).
    """
    from rnnlm.training.loop import TrainingState
    with open_archive(path) as npz:
        archive = Archive(npz, path)
        meta = read_metadata(archive, path)
        if meta.get("model_kind") == TREE_KIND:
            raise ModelFileError(f"{path} is a Tree-LSTM sentiment model; use it with 'rnnlm trees evaluate' or "
                                 "'rnnlm trees predict'")
        try:
            model_config = ModelConfig.from_dict(meta["model_config"])
            data_config = DataConfig.from_dict(meta.get("data_config") or {})
            train_config = None if meta.get("train_config") is None else TrainConfig.from_dict(meta["train_config"])
            level = meta.get("level", "word")
            kind = meta["model_kind"]
        except (KeyError, TypeError, ValueError, AttributeError) as exc:  # ConfigError is a ValueError too
            raise ModelFileError(f"{path} has incomplete or inconsistent metadata ({exception_line(exc)})") from None
        if level not in LEVELS:
            raise ModelFileError(f"{path}: level {short_text(level)} is not one of {', '.join(LEVELS)}")
        if kind not in MODEL_KINDS:
            raise ModelFileError(f"{path} holds a model of unknown kind {short_text(kind)}; "
                                 f"this rnnlm knows {', '.join(MODEL_KINDS)}")
        if kind not in kinds_for(model_config):
            raise ModelFileError(f"{path}: model kind {kind!r} does not match its model_config (cell "
                                 f"{model_config.cell!r}, {model_config.num_layers} layer(s), embed size "
                                 f"{model_config.embed_size}), which is a {model_kind(model_config)!r} model")
        if meta.get("training") is not None:
            _check_training(meta["training"], path, train_config)
        shapes = _check_arrays(archive, path, meta, model_config, kind)
        vocabulary = read_vocabulary(archive, path)
        model = build_model(model_config, seed=0, dtype=dtype, kind=kind, threads=threads)
        if model_config.softmax == "class":
            model.classes = _word_classes(archive, model_config, path)
        fill_params(model.params, archive, shapes, path, dtype if kind != "reference-rnn" else np.float64)
        state = None
        if meta.get("training") is not None:
            optimizer = read_optimizer(archive, path, shapes, model_config, kind, train_config)
            try:
                state = TrainingState.from_dict({"metadata": meta["training"], "arrays": optimizer})
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                raise ModelFileError(f"{path} has a damaged training state ({exception_line(exc)})") from None
    return Checkpoint(path=Path(path), model=model, vocabulary=vocabulary, level=level, kind=kind,
                      data_config=data_config, train_config=train_config, state=state, metadata=meta)


def level_fault(level, data_config, vocabulary):
    """What makes `level` wrong for a file's data_config and vocabulary, as a phrase, or None: it must be one of
    LEVELS and the data_config's level, and a character-level vocabulary holds single characters (and the
    special tokens) only."""
    from rnnlm.config import SPECIAL_TOKENS
    if not isinstance(level, str) or level not in LEVELS:
        return f"level {short_text(level)} is not one of {', '.join(LEVELS)}"
    if data_config.level != level:
        return f"level {level!r} contradicts its data_config's level {data_config.level!r}"
    if level == "char":
        words = [w for w in vocabulary.index_to_word if w not in SPECIAL_TOKENS and len(w) != 1]
        if words:
            return (f"level 'char' contradicts its vocabulary, which holds {short_text(words[0])} (a character-level "
                    "vocabulary holds single characters)")
    return None

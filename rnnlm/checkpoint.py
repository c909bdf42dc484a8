"""Model files: one .npz holding parameters, vocabulary, configuration and training state.

Layout of a model file (format version 1), every entry a plain NumPy array:

    metadata                 uint8, UTF-8 bytes of one JSON object (see below)
    param/<name>             each model parameter, e.g. param/U, param/V, param/W
    vocab/index_to_word      unicode strings, position = word index
    vocab/counts             int64 corpus counts
    optimizer/<key>          the optimizer's flat state_dict() (e.g. optimizer/U/m, optimizer/steps)

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

Reading uses `np.load(..., allow_pickle=False)`, so opening a model file never runs
code: a file holding an object (pickled) array is rejected with `ModelFileError`.
Writing is atomic (`atomic_write`): a temporary file in the same folder, flushed and
fsync'ed, then `os.replace`d over the target, so a crash at any moment leaves either
the old file or the new one, never a broken one.
"""

import contextlib
import json
import os
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .config import DataConfig, ModelConfig, TrainConfig
from .errors import ConfigError, ModelFileError
from .vocab import Vocabulary

FORMAT_NAME = "rnnlm-model"
FORMAT_VERSION = 1
MODEL_KINDS = ("fast-rnn", "language-model", "reference-rnn")
BUNDLED_MODEL = Path(__file__).resolve().parent / "assets" / "reddit-model.npz"


# --------------------------------------------------------------------- models by kind

def model_kind(config):
    """"fast-rnn" for the tutorial's one-layer one-hot Elman RNN, else "language-model"."""
    if config.cell == "rnn" and config.num_layers == 1 and config.embed_size is None:
        return "fast-rnn"
    return "language-model"


def kind_of(model):
    """The model_kind a model file records for `model`: "reference-rnn" for the tutorial's `RNNNumpy`;
    a `LanguageModel` stays one even in the tutorial's shape (stream models carry state)."""
    from .models import LanguageModel
    from .reference import RNNNumpy
    if isinstance(model, RNNNumpy):
        return "reference-rnn"
    return "language-model" if isinstance(model, LanguageModel) else model_kind(model.config)


def build_model(config, seed=None, dtype=np.float32, kind=None):
    """A freshly initialised model of `config`'s shape: `FastRNN` or `LanguageModel` (see `model_kind`),
    or with kind "reference-rnn" the tutorial's `RNNNumpy` (always float64, `dtype` ignored)."""
    kind = kind or model_kind(config)
    if kind == "reference-rnn":
        from .reference import RNNNumpy
        return RNNNumpy(config.vocab_size, config.hidden_size, bptt_truncate=config.bptt_truncate, seed=seed)
    if kind == "fast-rnn":
        from .fast import FastRNN
        return FastRNN(config.vocab_size, config.hidden_size, bptt_truncate=config.bptt_truncate,
                       seed=seed, dtype=dtype)
    if kind == "language-model":
        try:
            from .models import LanguageModel
        except ImportError:
            raise ConfigError(f"this rnnlm has no LanguageModel (rnnlm.models), needed for cell {config.cell!r}, "
                              f"{config.num_layers} layer(s), embed size {config.embed_size}") from None
        return LanguageModel.from_config(config, seed=seed, dtype=dtype)
    raise ModelFileError(f"unknown model kind {kind!r}; this rnnlm knows {', '.join(MODEL_KINDS)}")


# --------------------------------------------------------------------- atomic writes

@contextlib.contextmanager
def atomic_write(path):
    """Yield a binary file object whose contents replace `path` only if the block completes.

    The temporary file lives in `path`'s folder (so `os.replace` is a rename on one file
    system), is fsync'ed before the rename, and is removed if anything fails.
    """
    path = Path(path)
    handle = tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp", delete=False)
    try:
        with handle:
            os.chmod(handle.name, _file_mode(path))  # mkstemp's 0600 would make the model private
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(handle.name, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(handle.name)
        raise
    with contextlib.suppress(OSError):  # make the rename itself durable (POSIX only)
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _file_mode(path):
    """The permissions the file should get: those of the file it replaces, else 0666 minus the umask."""
    try:
        return path.stat().st_mode & 0o777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


# --------------------------------------------------------------------- saving

def save_model(path, model, vocabulary, level="word", data_config=None, train_config=None, state=None,
               param_dtype=None, include_optimizer=True):
    """Write `model` with its vocabulary, configuration and training state to `path`, atomically.

    state: a `rnnlm.train.TrainingState` (None for an untrained model).
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
    params = {name: np.asarray(value if param_dtype is None else value.astype(param_dtype))
              for name, value in model.params.items()}
    from . import __version__
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
    arrays = {"metadata": np.frombuffer(json.dumps(metadata).encode("utf-8"), dtype=np.uint8)}
    arrays.update({f"param/{name}": p for name, p in params.items()})
    arrays.update({f"vocab/{k}": v for k, v in vocabulary.to_arrays().items()})
    arrays.update({f"optimizer/{k}": np.asarray(v) for k, v in training["arrays"].items()})
    with atomic_write(path) as handle:
        np.savez_compressed(handle, **arrays)


# --------------------------------------------------------------------- loading

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


def ensure_file_writable(path):
    """Raise ModelFileError, before any long work, when `path`'s folder is missing or read-only."""
    folder = Path(path).resolve().parent
    if not folder.is_dir():
        raise ModelFileError(f"folder {folder} does not exist; create it or choose another output path")
    if not os.access(folder, os.W_OK):
        raise ModelFileError(f"cannot write to folder {folder}; choose another output path")


def _read_arrays(path):
    """Every array of the .npz at `path`, read eagerly, or ModelFileError saying what is wrong."""
    path = Path(path)
    if not path.exists():
        raise ModelFileError(f"model file not found: {path}")
    if path.is_dir():
        raise ModelFileError(f"{path} is a directory, not a model file")
    try:
        with open(path, "rb") as handle:
            magic = handle.read(8)
        if magic.startswith(b"\x80") or magic.startswith(b"(dp") or magic.startswith(b"(lp"):
            raise ModelFileError(f"{path} is a Python pickle, which rnnlm never loads (loading one can run code); "
                                 "it is not an rnnlm model file")
        if not magic.startswith(b"PK") and not magic.startswith(b"\x93NUMPY"):
            raise ModelFileError(f"{path} is not an rnnlm model file (not an .npz archive)")
        data = np.load(path, allow_pickle=False)
        if not hasattr(data, "files"):  # a bare array: a .npy file, not an .npz archive
            raise ModelFileError(f"{path} is a single NumPy array, not an rnnlm model file")
        with data:
            return {key: data[key] for key in data.files}
    except ValueError as exc:
        if "pickle" in str(exc).lower():
            raise ModelFileError(f"{path} holds pickled (object) data, which rnnlm never loads; "
                                 "it is not an rnnlm model file") from None
        raise ModelFileError(f"{path} is not an rnnlm model file ({exc})") from None
    except (zipfile.BadZipFile, EOFError, KeyError, zipfile.LargeZipFile, NotImplementedError):
        raise ModelFileError(f"{path} is not an rnnlm model file, or it is truncated or damaged "
                             "(not a readable .npz archive)") from None
    except OSError as exc:
        raise ModelFileError(f"cannot read model file {path}: {exc.strerror or exc}") from None


def _metadata(arrays, path):
    raw = arrays.get("metadata")
    if raw is None or raw.dtype != np.uint8 or raw.ndim != 1:
        raise ModelFileError(f"{path} is an .npz archive but not an rnnlm model file (no metadata entry)")
    try:
        meta = json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ModelFileError(f"{path} has damaged metadata (not valid JSON)") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
        raise ModelFileError(f"{path} is an .npz archive but not an rnnlm model file")
    version = meta.get("format_version")
    if version != FORMAT_VERSION:
        raise ModelFileError(f"{path} has model-file format version {version!r}, but this rnnlm reads "
                             f"version {FORMAT_VERSION}; use the rnnlm version that wrote it")
    return meta


def _fill_params(params, arrays, path):
    """Copy each stored param/<name> into params[name], checking presence, shape and finiteness."""
    for name, target in params.items():
        stored = arrays.get(f"param/{name}")
        if stored is None:
            raise ModelFileError(f"{path} lacks the parameter {name!r}")
        if stored.shape != target.shape:
            raise ModelFileError(f"{path}: parameter {name!r} has shape {stored.shape}, expected {target.shape}")
        if not np.issubdtype(stored.dtype, np.floating) or not np.all(np.isfinite(stored)):
            raise ModelFileError(f"{path}: parameter {name!r} is not a finite floating-point array")
        target[...] = stored


def load_model(path, dtype=np.float32):
    """Read a model file written by `save_model` into a `Checkpoint` (never unpickles anything)."""
    from .train import TrainingState
    arrays = _read_arrays(path)
    meta = _metadata(arrays, path)
    if meta.get("model_kind") == TREE_KIND:
        raise ModelFileError(f"{path} is a Tree-LSTM sentiment model; use it with 'rnnlm trees evaluate' or "
                             "'rnnlm trees predict'")
    try:
        model_config = ModelConfig.from_dict(meta["model_config"])
        data_config = DataConfig.from_dict(meta.get("data_config") or {})
        train_config = None if meta.get("train_config") is None else TrainConfig.from_dict(meta["train_config"])
        level = meta.get("level", "word")
        kind = meta["model_kind"]
        vocabulary = Vocabulary.from_arrays({"index_to_word": arrays["vocab/index_to_word"],
                                             "counts": arrays.get("vocab/counts")})
    except (KeyError, TypeError, ValueError) as exc:  # ConfigError is a ValueError too
        raise ModelFileError(f"{path} has incomplete or inconsistent metadata ({exc})") from None
    if kind not in MODEL_KINDS:
        raise ModelFileError(f"{path} holds a model of unknown kind {kind!r}; this rnnlm knows {', '.join(MODEL_KINDS)}")
    if len(vocabulary) != model_config.vocab_size:
        raise ModelFileError(f"{path}: vocabulary has {len(vocabulary)} words but the model {model_config.vocab_size}")
    model = build_model(model_config, seed=0, dtype=dtype, kind=kind)
    _fill_params(model.params, arrays, path)
    state = None
    if meta.get("training") is not None:
        optimizer = {k[len("optimizer/"):]: v for k, v in arrays.items() if k.startswith("optimizer/")}
        try:
            state = TrainingState.from_dict({"metadata": meta["training"], "arrays": optimizer})
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelFileError(f"{path} has a damaged training state ({exc})") from None
    return Checkpoint(path=Path(path), model=model, vocabulary=vocabulary, level=level, kind=kind,
                      data_config=data_config, train_config=train_config, state=state, metadata=meta)


# --------------------------------------------------------------------- describing a model file

KIND_NAMES = {"fast-rnn": "FastRNN, the tutorial's Elman RNN (batched, float32)",
              "reference-rnn": "RNNNumpy, the tutorial's Elman RNN (reading copy, float64)",
              "language-model": "LanguageModel (embedding, recurrent layers, softmax)"}


def model_summary(checkpoint, words=10):
    """What `rnnlm info` prints, as lines: kind, sizes, level, vocabulary, training history.

    words: how many of the most and least frequent vocabulary words to list (by the corpus
    counts stored with the vocabulary; special tokens left out).
    """
    from .config import SPECIAL_TOKENS
    from .numerics import perplexity
    c, vocab, path = checkpoint.model.config, checkpoint.vocabulary, checkpoint.path
    params = checkpoint.model.params
    num_params = sum(int(p.size) for p in params.values())
    dtypes = ", ".join(sorted({str(p.dtype) for p in params.values()}))
    stored = ", ".join(sorted({v["dtype"] for v in checkpoint.metadata.get("params", {}).values()})) or dtypes
    size = path.stat().st_size if path.is_file() else 0
    lines = [f"file: {path} ({size:,} bytes, rnnlm {checkpoint.metadata.get('rnnlm_version', '?')})",
             f"kind: {checkpoint.kind}: {KIND_NAMES.get(checkpoint.kind, checkpoint.kind)}",
             f"level: {checkpoint.level}" + ("" if checkpoint.level == "char" else
                                            f" (links as placeholders: {'yes' if checkpoint.data_config.link_placeholders else 'no'})")]
    shape = f"vocabulary {c.vocab_size}, hidden {c.hidden_size}, cell {c.cell}, layers {c.num_layers}, " \
            f"embedding {c.embed_size if c.embed_size else 'one-hot (none)'}, " \
            f"bptt_truncate {'full' if c.bptt_truncate is None else c.bptt_truncate}"
    lines.append(f"sizes: {shape}; {num_params:,} parameters ({', '.join(f'{k} {tuple(v.shape)}' for k, v in params.items())}), "
                 f"stored as {stored}")
    real = [(w, n) for w, n in zip(vocab.index_to_word, vocab.counts) if w not in SPECIAL_TOKENS]
    lines.append(f"vocabulary: {len(vocab)} entries ({len(real)} words + {len(vocab) - len(real)} special tokens)")
    if real and any(n > 0 for _, n in real):
        ranked = sorted(real, key=lambda wn: (-wn[1], wn[0]))
        show = lambda items: ", ".join(f"{w!r} {n:,}" for w, n in items)
        lines.append(f"  most frequent: {show(ranked[:words])}")
        lines.append(f"  least frequent: {show(ranked[-words:][::-1])}")
        unknown = vocab.counts[vocab.unknown_index]
        total = sum(n for _, n in real) + unknown
        lines.append(f"  UNKNOWN_TOKEN stands for {unknown:,} of {total:,} training tokens ({unknown / max(total, 1):.1%})")
    else:
        lines.append("  (no word counts stored in this file)")
    state, t = checkpoint.state, checkpoint.train_config
    if state is None or not state.history:
        lines.append("training: none recorded (an untrained model, or one trained outside rnnlm train)")
        return lines
    h = state.history
    setup = "" if t is None else (f"; optimizer {t.optimizer}, learning rate {t.learning_rate:g}, batch size "
                                  f"{t.batch_size}, clip {t.clip}, seed {t.seed}")
    lines.append(f"training: {state.epoch} epochs{setup}; resumable: "
                 f"{'yes' if checkpoint.metadata.get('resumable') else 'no (no optimizer state)'}")
    first, last = h[0], h[-1]
    lines.append(f"  epoch {first.epoch}: train loss {first.train_loss:.4f}" + _valid(first, perplexity))
    lines.append(f"  epoch {last.epoch}: train loss {last.train_loss:.4f}" + _valid(last, perplexity)
                 + f", learning rate {last.learning_rate:g}")
    validated = [r for r in h if r.valid_loss is not None]
    if validated:
        best = min(validated, key=lambda r: r.valid_loss)
        lines.append(f"  best validation: epoch {best.epoch}, loss {best.valid_loss:.4f} "
                     f"(perplexity {perplexity(best.valid_loss):.1f})")
    seconds = sum(r.seconds for r in h)
    lines.append(f"  time: {seconds:.1f} s over {len(h)} epochs, {sum(r.tokens for r in h):,} tokens")
    return lines


def _valid(record, perplexity):
    return "" if record.valid_loss is None else \
        f", valid loss {record.valid_loss:.4f} (perplexity {perplexity(record.valid_loss):.1f})"
# --------------------------------------------------------------------- tree models (rnnlm trees)
#
# A Tree-LSTM sentiment model uses the same file format (version 1) with model_kind "tree-lstm":
# param/<name> (E, W_leaf, b_leaf, U, b, W_s, b_s), vocab/*, optimizer/*, and metadata whose
# "model_config" is a `rnnlm.tree_lstm.TreeLSTMConfig`, "train_config" a
# `rnnlm.tree_train.TreeTrainConfig`, and "training" {"epoch", "history": per-epoch records,
# "best_epoch"}. `load_model` refuses these files with a pointer here, and `load_tree_model`
# refuses language models, so neither command ever misreads the other's file.

TREE_KIND = "tree-lstm"


@dataclass
class TreeCheckpoint:
    """A tree model file, rebuilt: model (TreeLSTM), vocabulary, train_config, training metadata, optimizer arrays."""

    path: Path
    model: object
    vocabulary: Vocabulary
    train_config: object
    training: dict
    optimizer_state: dict
    metadata: dict


def save_tree_model(path, model, vocabulary, train_config=None, training=None, optimizer=None):
    """Write a Tree-LSTM with its vocabulary, configs, JSON-able `training` dict and optimizer state, atomically."""
    if model.config.vocab_size != len(vocabulary):
        raise ModelFileError(f"model has {model.config.vocab_size} words but the vocabulary {len(vocabulary)}")
    from . import __version__
    params = {name: np.asarray(value) for name, value in model.params.items()}
    metadata = {
        "format": FORMAT_NAME, "format_version": FORMAT_VERSION, "rnnlm_version": __version__,
        "model_kind": TREE_KIND, "model_config": model.config.to_dict(),
        "train_config": None if train_config is None else train_config.to_dict(),
        "training": training, "resumable": optimizer is not None,
        "special_tokens": {"UNKNOWN_TOKEN": vocabulary.unknown_index},
        "params": {name: {"shape": list(p.shape), "dtype": str(p.dtype)} for name, p in params.items()},
    }
    arrays = {"metadata": np.frombuffer(json.dumps(metadata).encode("utf-8"), dtype=np.uint8)}
    arrays.update({f"param/{name}": p for name, p in params.items()})
    arrays.update({f"vocab/{k}": v for k, v in vocabulary.to_arrays().items()})
    if optimizer is not None:
        arrays.update({f"optimizer/{k}": np.asarray(v) for k, v in optimizer.state_dict().items()})
    with atomic_write(path) as handle:
        np.savez_compressed(handle, **arrays)


def load_tree_model(path, dtype=np.float32):
    """Read a file written by `save_tree_model` into a `TreeCheckpoint` (never unpickles anything)."""
    from .tree_lstm import TreeLSTM, TreeLSTMConfig
    from .tree_train import TreeTrainConfig
    arrays = _read_arrays(path)
    meta = _metadata(arrays, path)
    if meta.get("model_kind") != TREE_KIND:
        raise ModelFileError(f"{path} holds a language model ({meta.get('model_kind')}), not a Tree-LSTM "
                             "sentiment model; train one with 'rnnlm trees train'")
    try:
        config = TreeLSTMConfig.from_dict(meta["model_config"])
        train_config = None if meta.get("train_config") is None else TreeTrainConfig.from_dict(meta["train_config"])
        vocabulary = Vocabulary.from_arrays({"index_to_word": arrays["vocab/index_to_word"],
                                             "counts": arrays.get("vocab/counts")})
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFileError(f"{path} has incomplete or inconsistent metadata ({exc})") from None
    if len(vocabulary) != config.vocab_size:
        raise ModelFileError(f"{path}: vocabulary has {len(vocabulary)} words but the model {config.vocab_size}")
    model = TreeLSTM(config, seed=0, dtype=dtype)
    _fill_params(model.params, arrays, path)
    optimizer_state = {k[len("optimizer/"):]: v for k, v in arrays.items() if k.startswith("optimizer/")}
    return TreeCheckpoint(path=Path(path), model=model, vocabulary=vocabulary, train_config=train_config,
                          training=meta.get("training") or {}, optimizer_state=optimizer_state, metadata=meta)

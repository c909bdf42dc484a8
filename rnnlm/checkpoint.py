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
"model_kind" ("fast-rnn": the tutorial's `FastRNN`; "language-model": `LanguageModel`),
"level" ("word" or "char"), "model_config", "data_config" and "train_config" (the
dataclasses of `rnnlm.config` as dicts), "training" (the `TrainingState` metadata:
epoch, learning rate, the halving rule's last loss and the per-epoch history, or null
for an untrained model), "rng" (how the training randomness is derived: batch order of
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
MODEL_KINDS = ("fast-rnn", "language-model")
BUNDLED_MODEL = Path(__file__).resolve().parent / "assets" / "reddit-model.npz"


# --------------------------------------------------------------------- models by kind

def model_kind(config):
    """"fast-rnn" for the tutorial's one-layer one-hot Elman RNN, else "language-model"."""
    if config.cell == "rnn" and config.num_layers == 1 and config.embed_size is None:
        return "fast-rnn"
    return "language-model"


def build_model(config, seed=None, dtype=np.float32, kind=None, counts=None, threads=1):
    """A freshly initialised model of `config`'s shape: `FastRNN` or `LanguageModel` (see `model_kind`).

    counts: the vocabulary's corpus counts, which bin the words into classes for the class softmax.
    threads: output-layer workers (`ComputeConfig.threads`).
    """
    kind = kind or model_kind(config)
    if kind == "fast-rnn":
        from .fast import FastRNN
        return FastRNN(config.vocab_size, config.hidden_size, bptt_truncate=config.bptt_truncate,
                       seed=seed, dtype=dtype, softmax=config.softmax, num_classes=config.num_classes,
                       counts=counts, threads=threads)
    if kind == "language-model":
        try:
            from .models import LanguageModel
        except ImportError:
            raise ConfigError(f"this rnnlm has no LanguageModel (rnnlm.models), needed for cell {config.cell!r}, "
                              f"{config.num_layers} layer(s), embed size {config.embed_size}") from None
        return LanguageModel.from_config(config, seed=seed, dtype=dtype, counts=counts, threads=threads)
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
        "model_kind": model_kind(config),
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
    if getattr(model, "classes", None) is not None:
        arrays["output/word_class"] = model.classes.word_class
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


def _word_classes(arrays, config, path):
    """The stored `ClassSoftmax` of a class-softmax model file, checked, or ModelFileError."""
    from .output import ClassSoftmax
    stored = arrays.get("output/word_class")
    if stored is None:
        raise ModelFileError(f"{path} has a class softmax but lacks its word classes (output/word_class)")
    K = config.classes
    if stored.shape != (config.vocab_size,) or not np.issubdtype(stored.dtype, np.integer) \
            or stored.min(initial=0) < 0 or stored.max(initial=0) >= K:
        raise ModelFileError(f"{path}: output/word_class must hold {config.vocab_size} class ids in [0, {K})")
    try:
        return ClassSoftmax(stored, K)
    except ValueError as exc:
        raise ModelFileError(f"{path}: {exc}") from None


def load_model(path, dtype=np.float32, threads=1):
    """Read a model file written by `save_model` into a `Checkpoint` (never unpickles anything).

    threads: the model's output-layer workers (`ComputeConfig.threads`).
    """
    from .train import TrainingState
    arrays = _read_arrays(path)
    meta = _metadata(arrays, path)
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
    model = build_model(model_config, seed=0, dtype=dtype, kind=kind, threads=threads)
    if model_config.softmax == "class":
        model.classes = _word_classes(arrays, model_config, path)
    for name, target in model.params.items():
        stored = arrays.get(f"param/{name}")
        if stored is None:
            raise ModelFileError(f"{path} lacks the parameter {name!r}")
        if stored.shape != target.shape:
            raise ModelFileError(f"{path}: parameter {name!r} has shape {stored.shape}, expected {target.shape}")
        if not np.issubdtype(stored.dtype, np.floating) or not np.all(np.isfinite(stored)):
            raise ModelFileError(f"{path}: parameter {name!r} is not a finite floating-point array")
        target[...] = stored
    state = None
    if meta.get("training") is not None:
        optimizer = {k[len("optimizer/"):]: v for k, v in arrays.items() if k.startswith("optimizer/")}
        try:
            state = TrainingState.from_dict({"metadata": meta["training"], "arrays": optimizer})
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelFileError(f"{path} has a damaged training state ({exc})") from None
    return Checkpoint(path=Path(path), model=model, vocabulary=vocabulary, level=level, kind=kind,
                      data_config=data_config, train_config=train_config, state=state, metadata=meta)

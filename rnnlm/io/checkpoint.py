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

Reading uses `np.load(..., allow_pickle=False)`, so opening a model file never runs
code: a file holding an object (pickled) array is rejected with `ModelFileError`.
Writing is atomic (`atomic_write`): a temporary file in the same folder, flushed and
fsync'ed, then `os.replace`d over the target, so a crash at any moment leaves either
the old file or the new one, never a broken one.
"""

import contextlib
import json
import math
import os
import re
import tempfile
import zipfile
from dataclasses import MISSING, dataclass, fields
from pathlib import Path

import numpy as np

from rnnlm.config import LEVELS, DataConfig, ModelConfig, TrainConfig
from rnnlm.errors import ConfigError, ModelFileError
from rnnlm.nn.numerics import parameter_fault
from rnnlm.data.vocab import Vocabulary

FORMAT_NAME = "rnnlm-model"
FORMAT_VERSION = 1
MODEL_KINDS = ("fast-rnn", "language-model", "reference-rnn")
BUNDLED_MODEL = Path(__file__).resolve().parents[1] / "assets" / "reddit-model.npz"


# --------------------------------------------------------------------- models by kind

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
    params = _stored_params(model.params, path, param_dtype)
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
    _write_archive(path, metadata, params, vocabulary, training["arrays"], extra)


def _check_carry(arrays, config, kind, path):
    """Refuse to write carried stream state the reader would refuse (`_carry_fault`, the one rule for both)."""
    from rnnlm.training.loop import CARRY_PREFIX
    for key, value in arrays.items():
        if key.startswith(CARRY_PREFIX):
            fault = _carry_fault(key[len(CARRY_PREFIX):], np.shape(value), config, kind)
            if fault:
                raise ModelFileError(f"carried state {key!r} has shape {np.shape(value)}: {fault}; "
                                     f"nothing was written to {path}")


def _stored_params(model_params, path, param_dtype=None):
    """The parameters as they will be stored (cast to param_dtype if given), refusing before anything
    is written an invalid value (`parameter_fault`) or one the cast overflows (ModelFileError naming `path`)."""
    with np.errstate(over="ignore"):  # an overflowing cast is reported below, as one line
        params = {name: np.asarray(value if param_dtype is None else value.astype(param_dtype))
                  for name, value in model_params.items()}
    for name, value in model_params.items():
        fault = parameter_fault(value)
        if fault is not None:
            raise ModelFileError(f"parameter {name!r} {fault} (training diverged); nothing was written to {path}")
        if not np.all(np.isfinite(params[name])):
            raise ModelFileError(f"parameter {name!r} has values up to {float(np.max(np.abs(value))):.6g}, beyond the "
                                 f"range of {np.dtype(param_dtype)} (largest {float(np.finfo(param_dtype).max):g}); "
                                 f"nothing was written to {path}; keep float32")
    return params


def _write_archive(path, metadata, params, vocabulary, optimizer_arrays, extra=None):
    """One model file (the layout in this module's docstring), written atomically."""
    arrays = {"metadata": np.frombuffer(json.dumps(metadata).encode("utf-8"), dtype=np.uint8)}
    arrays.update({f"param/{name}": p for name, p in params.items()})
    arrays.update({f"vocab/{k}": v for k, v in vocabulary.to_arrays().items()})
    arrays.update({f"optimizer/{k}": np.asarray(v) for k, v in optimizer_arrays.items()})
    arrays.update(extra or {})
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


def check_output(path, option="--out", inputs=(), example="model.npz"):
    """Refuse, before any long work, an output path whose writing would destroy something.

    path must be a new name or an existing regular file (never a folder, FIFO, device or
    socket, which `atomic_write` would replace by a regular file), in an existing writable
    folder, and not the same file as any of `inputs`: (description, path) pairs such as
    ("the corpus", "c.txt"); paths are compared after resolving links, and by inode when
    both exist. Raises ConfigError.
    """
    out = Path(path)
    if out.is_dir():
        raise ConfigError(f"{option} {out} is a directory; give a file name such as {out / example}")
    if out.exists() and not out.is_file():
        raise ConfigError(f"{option} {out} is not a regular file (a pipe, device or socket), which rnnlm would "
                          "replace; give the name of a file to create or replace")
    for description, other in inputs:
        if other is not None and same_file(out, other):
            raise ConfigError(f"{option} {out} is {description}; writing it would destroy it: choose another file name")
    ensure_file_writable(out)


def same_file(a, b):
    """True when paths `a` and `b` name one file (same inode if both exist, else the same resolved path)."""
    a, b = Path(a), Path(b)
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
        return a.resolve() == b.resolve()
    except OSError:
        return False


@contextlib.contextmanager
def output_lock(path):
    """Hold an exclusive advisory lock on writing `path` for the block; a second holder gets ConfigError.

    The lock is `flock` on a hidden sidecar file `.NAME.lock` next to `path`, removed on exit.
    While it is held no other rnnlm process writes `path`, so temporary files that
    `atomic_write` left for `path` (a killed writer's `.NAME.XXXXXXXX.tmp`) are stale and removed.
    """
    try:
        import fcntl
    except ImportError:  # not POSIX: no locking, nothing removed
        yield
        return
    path = Path(path)
    lock_path = path.parent / f".{path.name}.lock"
    while True:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise ConfigError(f"another rnnlm process is writing {path} (it holds {lock_path}); wait for it to "
                              "finish or choose another output file") from None
        try:  # the previous holder may have removed the lock file just before we locked it: lock the new one
            current = os.fstat(fd).st_ino == os.stat(lock_path).st_ino
        except OSError:
            current = False
        if current:
            break
        os.close(fd)
    try:
        remove_stale_temporaries(path)
        yield
    finally:
        with contextlib.suppress(OSError):
            os.unlink(lock_path)
        os.close(fd)


def remove_stale_temporaries(path):
    """Remove the temporary files `atomic_write` names for `path` (`.NAME.XXXXXXXX.tmp`); returns them.

    Only safe while holding `output_lock(path)`: then no writer of `path` is alive.
    """
    path = Path(path)
    pattern = re.compile(r"\." + re.escape(path.name) + r"\.[a-z0-9_]{8}\.tmp")
    removed = []
    with contextlib.suppress(OSError):
        for entry in os.scandir(path.parent):
            if pattern.fullmatch(entry.name) and entry.is_file(follow_symlinks=False):
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)
                    removed.append(Path(entry.path))
    return removed


def ensure_file_writable(path):
    """Raise ModelFileError, before any long work, when `path`'s folder is missing or read-only."""
    folder = Path(path).resolve().parent
    if not folder.is_dir():
        raise ModelFileError(f"folder {folder} does not exist; create it or choose another output path")
    if not os.access(folder, os.W_OK):
        raise ModelFileError(f"cannot write to folder {folder}; choose another output path")


MAX_METADATA_BYTES = 64 << 20  # the JSON; a long loss history is a few kB
MAX_WORD_CHARS = 1 << 16       # longest vocabulary entry read back


def _open_archive(path):
    """The .npz at `path`, opened lazily (members are read only when asked for), or ModelFileError."""
    path = Path(path)
    if not path.exists():
        raise ModelFileError(f"model file not found: {path}")
    if path.is_dir():
        raise ModelFileError(f"{path} is a directory, not a model file")
    if not path.is_file():
        raise ModelFileError(f"{path} is not a regular file (a pipe or a device?); give a model file")
    try:
        with open(path, "rb") as handle:
            magic = handle.read(8)
        if magic.startswith(b"\x80") or magic.startswith(b"(dp") or magic.startswith(b"(lp"):
            raise ModelFileError(f"{path} is a Python pickle, which rnnlm never loads (loading one can run code); "
                                 "it is not an rnnlm model file")
        if magic.startswith(b"\x93NUMPY"):  # refused unread: np.load would read the whole array
            raise ModelFileError(f"{path} is a single NumPy array, not an rnnlm model file")
        if not magic.startswith(b"PK"):
            raise ModelFileError(f"{path} is not an rnnlm model file (not an .npz archive)")
        return np.load(path, allow_pickle=False)
    except ValueError as exc:
        raise ModelFileError(f"{path} is not an rnnlm model file ({_one_line(exc)})") from None
    except (zipfile.BadZipFile, EOFError, KeyError, zipfile.LargeZipFile, NotImplementedError):
        raise ModelFileError(f"{path} is not an rnnlm model file, or it is truncated or damaged "
                             "(not a readable .npz archive)") from None
    except OSError as exc:
        raise ModelFileError(f"cannot read model file {path}: {exc.strerror or exc}") from None


def _one_line(exc):
    return " ".join(str(exc).split())[:200]


# Deflate cannot compress more than about 1032:1; a member declaring more is crafted (a zip bomb).
MAX_INFLATION = 1000
INFLATION_FLOOR = 1 << 20  # members of at most this many uncompressed bytes are never refused for their ratio


def _bytes(n):
    """A byte count for a message: "4 KB", "3.9 GB"."""
    for unit, size in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if n >= size:
            return f"{n / size:.1f} {unit}" if n < 10 * size else f"{n / size:.0f} {unit}"
    return f"{n} bytes"


def _entry_name(key):
    """How a message names archive member `key`: "parameter 'U'", "the vocabulary", "optimizer entry 'U/m'"."""
    group, _, name = key.partition("/")
    if group == "param":
        return f"parameter {name!r}"
    if key == "vocab/index_to_word":
        return "the vocabulary"
    if key == "vocab/counts":
        return "the vocabulary counts"
    if group == "optimizer":
        return f"optimizer entry {name!r}"
    return f"the entry {key!r}"


class _Archive:
    """Reads single members of an open .npz: a member's header (shape, dtype) costs a few bytes, its data on demand.

    Every member is checked against the bytes the file really stores before anything of its size is
    allocated (`_check_member`, `_check_stored`), so loading a file never costs more than a small multiple of its size."""

    def __init__(self, npz, path):
        self.npz, self.path = npz, path
        try:
            self.file_bytes = Path(path).stat().st_size
        except OSError:
            self.file_bytes = 0
        self.checked = {}  # key -> (shape, dtype) of the members already checked
        self.compressed = 0  # their compressed bytes, together: at most the file's size (no overlapping members)

    def __contains__(self, key):
        return key in self.npz.files

    def _check_member(self, key):
        """ModelFileError when member `key` claims more compressed bytes than the file holds, or would inflate
        to more than MAX_INFLATION times them; checked before the member is opened (bzip2 inflates on open)."""
        try:
            info = self.npz.zip.getinfo(f"{key}.npy")
        except KeyError:
            raise ModelFileError(f"{self.path}: the entry {key!r} is missing") from None
        what = _entry_name(key)
        self.compressed += info.compress_size
        if info.compress_size > self.file_bytes or self.compressed > self.file_bytes:
            raise ModelFileError(f"{self.path}: {what} claims {_bytes(info.compress_size)} of compressed data but "
                                 f"the file is {_bytes(self.file_bytes)} in all: the file is truncated or crafted")
        if info.file_size > INFLATION_FLOOR and info.file_size > MAX_INFLATION * info.compress_size:
            raise ModelFileError(f"{self.path}: {what} would inflate its {_bytes(info.compress_size)} of stored bytes to "
                                 f"{_bytes(info.file_size)}, over {MAX_INFLATION}x, more than any model file "
                                 "compresses: the file is crafted (a zip bomb)")
        return info

    def _check_stored(self, key, info, shape, dtype):
        """ModelFileError when member `key`'s .npy header declares more data than the member stores."""
        declared = math.prod(shape) * dtype.itemsize
        if declared > info.file_size:
            raise ModelFileError(f"{self.path}: {_entry_name(key)} declares {_bytes(declared)} but the file stores "
                                 f"{_bytes(info.file_size)}: the file is truncated or crafted")

    def header(self, key):
        """(shape, dtype) of member `key` from its .npy header, without reading its data; the header's
        declared size is checked against the stored bytes (`_check_stored`)."""
        if key in self.checked:
            return self.checked[key]
        info = self._check_member(key)
        try:
            with self.npz.zip.open(f"{key}.npy") as member:
                version = np.lib.format.read_magic(member)
                read = np.lib.format.read_array_header_1_0 if version == (1, 0) else \
                    np.lib.format.read_array_header_2_0
                shape, _, dtype = read(member)
        except (ValueError, KeyError, OSError, EOFError, zipfile.BadZipFile, NotImplementedError) as exc:
            raise ModelFileError(f"{self.path}: the entry {key!r} is damaged ({_one_line(exc)})") from None
        dtype = np.dtype(dtype)
        if dtype.hasobject:
            raise ModelFileError(f"{self.path} holds pickled (object) data in {key!r}, which rnnlm never loads; "
                                 "it is not an rnnlm model file")
        shape = tuple(shape)
        self._check_stored(key, info, shape, dtype)
        self.checked[key] = shape, dtype
        return shape, dtype

    def size(self, key):
        return self.npz.zip.getinfo(f"{key}.npy").file_size

    def read(self, key):
        """Member `key`'s array, read only after its header passed `_check_stored`."""
        self.header(key)
        try:
            return self.npz[key]
        except ValueError as exc:
            if "pickle" in str(exc).lower():
                raise ModelFileError(f"{self.path} holds pickled (object) data in {key!r}, which rnnlm never loads; "
                                     "it is not an rnnlm model file") from None
            raise ModelFileError(f"{self.path}: the entry {key!r} is damaged ({_one_line(exc)})") from None
        except (zipfile.BadZipFile, EOFError, KeyError, NotImplementedError, OSError) as exc:
            raise ModelFileError(f"{self.path} is truncated or damaged (entry {key!r}: "
                                 f"{_one_line(exc) or type(exc).__name__})") from None


def _metadata(archive, path):
    if "metadata" not in archive:
        raise ModelFileError(f"{path} is an .npz archive but not an rnnlm model file (no metadata entry)")
    shape, dtype = archive.header("metadata")
    if dtype != np.uint8 or len(shape) != 1 or archive.size("metadata") > MAX_METADATA_BYTES:
        raise ModelFileError(f"{path} is an .npz archive but not an rnnlm model file (its metadata entry is not "
                             f"JSON bytes of at most {MAX_METADATA_BYTES} bytes)")
    raw = archive.read("metadata")
    try:
        meta = json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ModelFileError(f"{path} has damaged metadata (not valid JSON)") from None
    except RecursionError:
        raise ModelFileError(f"{path} has damaged metadata (JSON nested too deeply)") from None
    except ValueError:  # an integer of more than 4300 digits: Python refuses to convert it
        raise ModelFileError(f"{path} has damaged metadata (a number thousands of digits long)") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
        raise ModelFileError(f"{path} is an .npz archive but not an rnnlm model file")
    version = meta.get("format_version")
    if version != FORMAT_VERSION:
        raise ModelFileError(f"{path} has model-file format version {_short(version)}, but this rnnlm reads "
                             f"version {FORMAT_VERSION}; use the rnnlm version that wrote it")
    return meta


def _fill_params(params, archive, shapes, path, dtype):
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
            raise ModelFileError(f"{path}: parameter {name!r} {fault} (a diverged run?); use an earlier model file")
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


def _read_vocabulary(archive, path):
    """The stored Vocabulary (vocab/index_to_word, optional vocab/counts), or ModelFileError."""
    try:
        return Vocabulary.from_arrays({"index_to_word": archive.read("vocab/index_to_word"),
                                       "counts": archive.read("vocab/counts") if "vocab/counts" in archive else None})
    except (TypeError, ValueError) as exc:
        raise ModelFileError(f"{path} has a damaged vocabulary ({_one_line(exc)})") from None


def _short(value):
    text = repr(value) if not isinstance(value, int) or abs(value) < 10 ** 30 else "<a huge integer>"
    return text if len(text) <= 60 else text[:57] + "..."


def expected_param_shapes(config, kind):
    """{name: shape} of the parameters a model of `kind` built from `config` has, exactly (nothing allocated).

    Mirrors the constructors: RNNNumpy / FastRNN ("reference-rnn", "fast-rnn": U (H, C), V (C, H),
    W (H, H), plus V_class (K, H) for FastRNN's class softmax) and `LanguageModel` ("language-model":
    embedding (C, E), each layer's cell parameters l<k>.<name>, W_out (H, C), b_out (C,), plus W_class
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
        shapes.update({"W_out": (H, C), "b_out": (C,)})
        if klass:
            shapes.update({"W_class": (H, config.classes), "b_class": (config.classes,)})
        return shapes
    raise ModelFileError(f"unknown model kind {kind!r}; this rnnlm knows {', '.join(MODEL_KINDS)}")


def max_parameters(config, kind=None):
    """The number of parameters a model of `config` (and `kind`, default its natural kind) has, exactly."""
    shapes = expected_param_shapes(config, kind or model_kind(config))
    return sum(math.prod(shape) for shape in shapes.values())


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
            raise ModelFileError(f"{path} lacks the parameter {_short(name)}")
        if name not in expected:
            raise ModelFileError(f"{path}: parameter {_short(name)} is not one a {kind!r} model of its model_config "
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
    from rnnlm.nn.cells import CELLS
    if config is None:
        return None
    if kind != "language-model":
        return f"a {kind!r} model carries no stream state"
    parts = name.split("/")
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        return "its name is not <layer>/<part>"
    layer, part = (int(p) for p in parts)
    if layer >= config.num_layers or part >= CELLS[config.cell][2]:
        return f"the model has {config.num_layers} layer(s) of {CELLS[config.cell][2]} state array(s)"
    if len(shape) != 2 or shape[1] != config.hidden_size:
        return f"expected (streams, {config.hidden_size}), one row per stream of the hidden size"
    return None


def _read_optimizer(archive, path, shapes, config=None, kind=None, train_config=None):
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
        problem = f"epoch {_short(training.get('epoch'))} is not a non-negative integer"
    elif train_config is not None and training["epoch"] > train_config.epochs:
        problem = f"epoch {training['epoch']} is beyond the {train_config.epochs} epochs its train_config plans"
    elif not count(training.get("batch", 0)):
        problem = f"batch {_short(training.get('batch'))} is not a non-negative integer"
    elif not (number(training.get("learning_rate")) and training["learning_rate"] > 0):
        problem = f"learning rate {_short(training.get('learning_rate'))} is not a positive finite number"
    elif training.get("previous_loss") is not None and not number(training["previous_loss"]):
        problem = f"previous loss {_short(training.get('previous_loss'))} is not a finite number"
    elif training.get("best_epoch") is not None and not count(training["best_epoch"], 1):
        problem = f"best epoch {_short(training.get('best_epoch'))} is not a positive integer"
    elif training.get("best_epoch") is not None and training["best_epoch"] > training["epoch"] + 1:
        # a time limit may stop epoch + 1 part-way after its validation loss was the best so far
        problem = (f"best epoch {training['best_epoch']} is after epoch {training['epoch'] + 1}, the one it "
                   "resumes")
    elif training.get("best_loss") is not None and not number(training["best_loss"]):
        problem = f"best loss {_short(training.get('best_loss'))} is not a finite number"
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
    with _open_archive(path) as npz:
        archive = _Archive(npz, path)
        meta = _metadata(archive, path)
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
            raise ModelFileError(f"{path} has incomplete or inconsistent metadata ({_one_line(exc)})") from None
        if level not in LEVELS:
            raise ModelFileError(f"{path}: level {_short(level)} is not one of {', '.join(LEVELS)}")
        if kind not in MODEL_KINDS:
            raise ModelFileError(f"{path} holds a model of unknown kind {_short(kind)}; "
                                 f"this rnnlm knows {', '.join(MODEL_KINDS)}")
        if kind not in _kinds_for(model_config):
            raise ModelFileError(f"{path}: model kind {kind!r} does not match its model_config (cell "
                                 f"{model_config.cell!r}, {model_config.num_layers} layer(s), embed size "
                                 f"{model_config.embed_size}), which is a {model_kind(model_config)!r} model")
        if meta.get("training") is not None:
            _check_training(meta["training"], path, train_config)
        shapes = _check_arrays(archive, path, meta, model_config, kind)
        vocabulary = _read_vocabulary(archive, path)
        model = build_model(model_config, seed=0, dtype=dtype, kind=kind, threads=threads)
        if model_config.softmax == "class":
            model.classes = _word_classes(archive, model_config, path)
        _fill_params(model.params, archive, shapes, path, dtype if kind != "reference-rnn" else np.float64)
        state = None
        if meta.get("training") is not None:
            optimizer = _read_optimizer(archive, path, shapes, model_config, kind, train_config)
            try:
                state = TrainingState.from_dict({"metadata": meta["training"], "arrays": optimizer})
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                raise ModelFileError(f"{path} has a damaged training state ({_one_line(exc)})") from None
    return Checkpoint(path=Path(path), model=model, vocabulary=vocabulary, level=level, kind=kind,
                      data_config=data_config, train_config=train_config, state=state, metadata=meta)


def level_fault(level, data_config, vocabulary):
    """What makes `level` wrong for a file's data_config and vocabulary, as a phrase, or None: it must be one of
    LEVELS and the data_config's level, and a character-level vocabulary holds single characters (and the
    special tokens) only."""
    from rnnlm.config import SPECIAL_TOKENS
    if not isinstance(level, str) or level not in LEVELS:
        return f"level {_short(level)} is not one of {', '.join(LEVELS)}"
    if data_config.level != level:
        return f"level {level!r} contradicts its data_config's level {data_config.level!r}"
    if level == "char":
        words = [w for w in vocabulary.index_to_word if w not in SPECIAL_TOKENS and len(w) != 1]
        if words:
            return (f"level 'char' contradicts its vocabulary, which holds {_short(words[0])} (a character-level "
                    "vocabulary holds single characters)")
    return None


def _kinds_for(config):
    """The model kinds a file may record for `config`: its natural kind; a LanguageModel can hold any
    config (stream models are LanguageModels even in the tutorial's shape); RNNNumpy the tutorial's."""
    natural = model_kind(config)
    return {natural, "language-model"} | ({"reference-rnn"} if natural == "fast-rnn" else set())


# --------------------------------------------------------------------- describing a model file

KIND_NAMES = {"fast-rnn": "FastRNN, the tutorial's Elman RNN (batched, float32)",
              "reference-rnn": "RNNNumpy, the tutorial's Elman RNN (reading copy, float64)",
              "language-model": "LanguageModel (embedding, recurrent layers, softmax)"}


def model_summary(checkpoint, words=10):
    """What `rnnlm info` prints, as lines: kind, sizes, level, vocabulary, training history.

    words: how many of the most and least frequent vocabulary words to list (by the corpus
    counts stored with the vocabulary; special tokens left out).
    """
    from rnnlm.config import SPECIAL_TOKENS
    from rnnlm.nn.numerics import perplexity
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
# "model_config" is a `rnnlm.models.tree_lstm.TreeLSTMConfig`, "train_config" a
# `rnnlm.training.trees.TreeTrainConfig`, and "training" {"epoch", "history": per-epoch records,
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

    Only a 5-class model is written (see `_check_tree_classes`)."""
    if model.config.vocab_size != len(vocabulary):
        raise ModelFileError(f"model has {model.config.vocab_size} words but the vocabulary {len(vocabulary)}")
    _check_tree_classes(model.config.num_classes, path)
    from rnnlm.version import __version__
    params = _stored_params(model.params, path)
    metadata = {
        "format": FORMAT_NAME, "format_version": FORMAT_VERSION, "rnnlm_version": __version__,
        "model_kind": TREE_KIND, "model_config": model.config.to_dict(),
        "train_config": None if train_config is None else train_config.to_dict(),
        "training": training, "resumable": optimizer is not None,
        "special_tokens": {"UNKNOWN_TOKEN": vocabulary.unknown_index},
        "params": {name: {"shape": list(p.shape), "dtype": str(p.dtype)} for name, p in params.items()},
    }
    _write_archive(path, metadata, params, vocabulary, optimizer.state_dict() if optimizer is not None else {})


def load_tree_model(path, dtype=np.float32):
    """Read a file written by `save_tree_model` into a `TreeCheckpoint` (never unpickles anything).

    As for `load_model`: sizes bounded by `TreeLSTMConfig`, every stored array's header checked against
    the shapes the configuration implies before the model is allocated, only known members read."""
    from rnnlm.models.tree_lstm import TreeLSTM, TreeLSTMConfig, param_shapes
    from rnnlm.training.trees import TreeTrainConfig
    with _open_archive(path) as npz:
        archive = _Archive(npz, path)
        meta = _metadata(archive, path)
        if meta.get("model_kind") != TREE_KIND:
            raise ModelFileError(f"{path} holds a language model ({_short(meta.get('model_kind'))}), not a "
                                 "Tree-LSTM sentiment model; train one with 'rnnlm trees train'")
        try:
            config = TreeLSTMConfig.from_dict(meta["model_config"])
            train_config = None if meta.get("train_config") is None else TreeTrainConfig.from_dict(meta["train_config"])
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ModelFileError(f"{path} has incomplete or inconsistent metadata ({_one_line(exc)})") from None
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
        vocabulary = _read_vocabulary(archive, path)
        model = TreeLSTM(config, seed=0, dtype=dtype)
        _fill_params(model.params, archive, shapes, path, dtype)
        optimizer_state = _read_optimizer(archive, path, shapes)
    return TreeCheckpoint(path=Path(path), model=model, vocabulary=vocabulary, train_config=train_config,
                          training=meta.get("training") or {}, optimizer_state=optimizer_state, metadata=meta)

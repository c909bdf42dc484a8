"""Reading an untrusted .npz archive: nothing is unpickled, nothing is allocated before it is checked.

Only the members a format names are read; every array's .npy header (shape, dtype) is read
first and its declared size checked against the bytes the file stores (a header-only file or a
zip bomb is refused before allocating); the JSON metadata is bounded in size, depth and number
length. Used by the model-file format (`rnnlm.io.checkpoint`) and the tree model format.
"""

import json
import math
import zipfile
from pathlib import Path

import numpy as np

from rnnlm.data.vocab import Vocabulary
from rnnlm.errors import ModelFileError
from rnnlm.io.safe_files import refuse_symlink_loop


FORMAT_NAME = "rnnlm-model"


FORMAT_VERSION = 1


MAX_METADATA_BYTES = 64 << 20  # the JSON; a long loss history is a few kB


MAX_WORD_CHARS = 1 << 16       # longest vocabulary entry read back


def open_archive(path):
    """The .npz at `path`, opened lazily (members are read only when asked for), or ModelFileError."""
    path = Path(path)
    refuse_symlink_loop(path, "model file", ModelFileError)  # Path.exists() is False for a loop: not "not found"
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
        raise ModelFileError(f"{path} is not an rnnlm model file ({exception_line(exc)})") from None
    except (zipfile.BadZipFile, EOFError, KeyError, zipfile.LargeZipFile, NotImplementedError):
        raise ModelFileError(f"{path} is not an rnnlm model file, or it is truncated or damaged "
                             "(not a readable .npz archive)") from None
    except OSError as exc:
        raise ModelFileError(f"cannot read model file {path}: {exc.strerror or exc}") from None


def exception_line(exc):
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


class Archive:
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
            raise ModelFileError(f"{self.path}: the entry {key!r} is damaged ({exception_line(exc)})") from None
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
            raise ModelFileError(f"{self.path}: the entry {key!r} is damaged ({exception_line(exc)})") from None
        except (zipfile.BadZipFile, EOFError, KeyError, NotImplementedError, OSError) as exc:
            raise ModelFileError(f"{self.path} is truncated or damaged (entry {key!r}: "
                                 f"{exception_line(exc) or type(exc).__name__})") from None


def read_metadata(archive, path):
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
        raise ModelFileError(f"{path} has model-file format version {short_text(version)}, but this rnnlm reads "
                             f"version {FORMAT_VERSION}; use the rnnlm version that wrote it")
    return meta


def read_model_kind(path):
    """The `model_kind` a model file records ("fast-rnn", "tree-lstm", ...; None when absent), reading only its
    metadata; ModelFileError for anything that is not an rnnlm model file."""
    with open_archive(path) as npz:
        kind = read_metadata(Archive(npz, path), path).get("model_kind")
    return kind if isinstance(kind, str) else None


def read_vocabulary(archive, path):
    """The stored Vocabulary (vocab/index_to_word, optional vocab/counts), or ModelFileError."""
    try:
        return Vocabulary.from_arrays({"index_to_word": archive.read("vocab/index_to_word"),
                                       "counts": archive.read("vocab/counts") if "vocab/counts" in archive else None})
    except (TypeError, ValueError) as exc:
        raise ModelFileError(f"{path} has a damaged vocabulary ({exception_line(exc)})") from None


def short_text(value):
    text = repr(value) if not isinstance(value, int) or abs(value) < 10 ** 30 else "<a huge integer>"
    return text if len(text) <= 60 else text[:57] + "..."

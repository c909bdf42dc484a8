"""Crafted model and exchange files (issue 17): each refused with one line, fast, without a large allocation."""

import io
import json
import time
import tracemalloc
import zipfile

import numpy as np
import pytest

from rnnlm import checkpoint as ckpt
from rnnlm.errors import ModelFileError
from rnnlm.fast import FastRNN
from rnnlm.vocab import Vocabulary


@pytest.fixture
def vocab():
    return Vocabulary.build([["the", "cat", "sat"], ["a", "dog", "ran"]], vocabulary_size=8)


@pytest.fixture
def model_file(tmp_path, vocab):
    path = tmp_path / "m.npz"
    ckpt.save_model(path, FastRNN(len(vocab), hidden_dim=4, seed=1), vocab)
    return path


def _npy_header(shape, dtype="<f4"):
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)),
                                                  "fortran_order": False, "shape": tuple(shape)})
    return buffer.getvalue()


def _npy(array):
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def _craft(source, target, params, hidden, compression=zipfile.ZIP_DEFLATED):
    """`source`'s model file with hidden size `hidden` and its param members replaced by `params` ({name: bytes})."""
    with zipfile.ZipFile(source) as src:
        meta = json.loads(np.frombuffer(np.load(source)["metadata"].tobytes(), np.uint8).tobytes())
        meta["model_config"]["hidden_size"] = hidden
        with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as out:
            out.writestr("metadata.npy", _npy(np.frombuffer(json.dumps(meta).encode(), np.uint8)))
            for name in src.namelist():
                if name.startswith("vocab/"):
                    out.writestr(name, src.read(name))
            for name, data in params.items():
                out.writestr(f"param/{name}.npy", data, compress_type=compression, compresslevel=9)
    return target


def _refused_cheaply(path, match):
    tracemalloc.start()
    start = time.perf_counter()
    try:
        with pytest.raises(ModelFileError, match=match) as info:
            ckpt.load_model(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert time.perf_counter() - start < 1.0
    assert peak < 50 * 2 ** 20, f"refusing the file allocated {peak / 2 ** 20:.0f} MB"
    assert "\n" not in str(info.value)
    return str(info.value)


def test_header_only_file_is_refused_before_the_model_is_built(tmp_path, model_file, vocab):
    H, C = 3000, len(vocab)
    path = _craft(model_file, tmp_path / "headers.npz",
                  {"U": _npy_header((H, C)), "V": _npy_header((C, H)), "W": _npy_header((H, H))}, H)
    assert path.stat().st_size < 4096
    message = _refused_cheaply(path, r"parameter 'U' declares .* KB but the file stores 128 bytes: "
                                     r"the file is truncated or crafted")
    assert str(path) in message


@pytest.mark.parametrize("compression", [zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2])
def test_zip_bomb_member_is_refused_before_it_is_inflated(tmp_path, model_file, vocab, compression):
    H, C = 3000, len(vocab)
    rng = np.random.default_rng(0)
    params = {"U": _npy(rng.standard_normal((H, C), dtype=np.float32)),
              "V": _npy(rng.standard_normal((C, H), dtype=np.float32)),
              "W": _npy(np.zeros((H, H), dtype=np.float32))}  # 36 MB of zeros
    path = _craft(model_file, tmp_path / "bomb.npz", params, H, compression)
    info = zipfile.ZipFile(path).getinfo("param/W.npy")
    assert info.file_size > ckpt.MAX_INFLATION * info.compress_size  # the fixture really is a bomb
    _refused_cheaply(path, r"parameter 'W' would inflate its .* of stored bytes to 34 MB, over 1000x, more than any "
                           r"model file compresses: the file is crafted \(a zip bomb\)")


def test_member_claiming_more_compressed_bytes_than_the_file_has(tmp_path, model_file):
    data = bytearray(model_file.read_bytes())
    # the central directory's compressed size of the first member, raised far beyond the file
    at = data.find(b"PK\x01\x02")
    data[at + 20:at + 24] = (10 ** 9).to_bytes(4, "little")
    data[at + 24:at + 28] = (10 ** 9).to_bytes(4, "little")
    bad = model_file.with_name("claims.npz")
    bad.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="truncated or crafted|damaged"):
        ckpt.load_model(bad)


def test_ordinary_files_still_load(model_file, vocab):
    assert ckpt.load_model(model_file).vocabulary == vocab

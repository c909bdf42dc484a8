#!/usr/bin/env python
"""Regenerate the "Every case tried" table of docs/failures.md from real runs of `python -m rnnlm`.

    python docs/failures_table.py            # run every case, print the table
    python docs/failures_table.py --write    # ... and replace the table in docs/failures.md

Each case runs as its own process (`sys.executable -m rnnlm ARGV`) in a fresh copy of one scratch
folder: a small trained model (model.npz, Adam state), the test fixture corpus c.csv, and the bad
files of FIXTURES below (crafted in code, most from model.npz; a few from the other files MAKE has rnnlm
make first: a class-softmax and a stream model, a safetensors export, a Tree-LSTM). "Data" compares
every entry of the folder before and after the run (content hashes and mode bits for files; FIFOs and
folders by type, links by where they point), so a case that changed or added anything says so.

Exit status: 0 when every case printed no traceback and, where it exited 2, exactly one stderr
line; 1 otherwise (the offending cases are listed on stderr). Standalone: stdlib, numpy, rnnlm.

To add a case, add a line to CASES (and, for a new kind of bad file, an entry to FIXTURES). A case's argv
is split as a shell would (shlex), so '' is an empty argument and 'good film' one.
"""

import argparse
import hashlib
import io
import json
import os
import pickle
import shlex
import shutil
import stat
import struct
import subprocess
import sys
import tempfile
import time
import zipfile
from collections import namedtuple
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
DOC = REPO / "docs" / "failures.md"
CORPUS = REPO / "tests" / "fixtures" / "comments.csv"
SECTION = "## Every case tried"
HEADER = "| command | exit | stderr (one line) | data |"
SEPARATOR = "|---|---|---|---|"
MAX_MESSAGE = 400   # longer stderr lines are cut to this many characters and end in "..."
TIMEOUT = 120       # seconds per case
HIDE = "…"          # in a case's argv: the words after it are run but shown as "…" in the table

# The small model everything else is made from (one epoch on the fixture corpus: well under a second).
MODEL_ARGV = "train c.csv --out model.npz --hidden 8 --vocab-size 15 --epochs 1 --optimizer adam --seed 1 --no-progress"
TINY = "--vocab-size 15 --hidden 8 --seed 1 --no-progress"

# (argv after `rnnlm`, the fixtures it needs[, a note for a case that succeeds]).
# Every case runs in a folder holding all the fixtures; the second field says which ones it reads.
CASES = [
    ("train c.csv --out c.csv", "c.csv"),
    ("train c.csv --out model.npz --plot c.csv", "c.csv, model.npz"),
    ("train c.csv --out new.npz --plot new.npz", "c.csv"),
    ("train c.csv --out fifo", "c.csv, fifo"),
    ("train c.csv --out folder", "c.csv, folder"),
    ("train c.csv --out no/such/dir/m.npz", "c.csv (no folder no/)"),
    ("train fifo --out new.npz", "fifo"),
    ("train /dev/zero --out new.npz", "/dev/zero"),
    ("train missing.csv --out new.npz", "no missing.csv"),
    ("train empty.txt --out new.npz", "empty.txt"),
    ("train binary.txt --out new.npz", "binary.txt"),
    ("train utf16.txt --out new.npz", "utf16.txt"),
    ("train latin1.txt --out new.npz", "latin1.txt"),
    ("train nobody.csv --out new.npz", "nobody.csv"),
    ("train c.csv --out new.npz --hidden 0", "c.csv"),
    ("train c.csv --out new.npz --hidden 100000000000000000000", "c.csv"),
    ("train c.csv --out new.npz --hidden 1e20", "c.csv"),
    ("train c.csv --out new.npz --layers 3000000", "c.csv"),
    ("train c.csv --out new.npz --vocab-size 3", "c.csv"),
    ("train c.csv --out new.npz --learning-rate inf", "c.csv"),
    ("train c.csv --out new.npz --learning-rate nan", "c.csv"),
    ("train c.csv --out new.npz --learning-rate -1", "c.csv"),
    ("train c.csv --out new.npz --valid-fraction 1.5", "c.csv"),
    ("train c.csv --out new.npz --peephole", "c.csv"),
    ("train c.csv --out model.npz --epochs 2 --learning-rate 1e308 --optimizer sgd … " + TINY, "c.csv, model.npz"),
    ("train c.csv --out good.npz --optimizer sgd --learning-rate 1e8 --no-clip", "c.csv, good.npz"),
    ("train c.csv --out model.npz --resume --hidden 30", "c.csv, model.npz"),
    ("train c.csv --out new.npz --resume truncated.npz", "c.csv, truncated.npz"),
    ("evaluate --model list-config.npz c.csv", "list-config.npz, c.csv"),
    ("evaluate --model deep.npz c.csv", "deep.npz, c.csv"),
    ("evaluate --model bigint.npz c.csv", "bigint.npz, c.csv"),
    ("evaluate --model neg-epoch.npz c.csv", "neg-epoch.npz, c.csv"),
    ("evaluate --model bogus-level.npz c.csv", "bogus-level.npz, c.csv"),
    ("evaluate --model kind.npz c.csv", "kind.npz, c.csv"),
    ("evaluate --model hidden.npz c.csv", "hidden.npz, c.csv"),
    ("evaluate --model layers.npz c.csv", "layers.npz, c.csv"),
    ("evaluate --model nan.npz c.csv", "nan.npz, c.csv"),
    ("evaluate --model f64.npz c.csv", "f64.npz, c.csv"),
    ("train c.csv --out new.npz --resume optshape.npz", "c.csv, optshape.npz"),
    ("train c.csv --out new.npz --resume steps.npz", "c.csv, steps.npz"),
    ("generate --model huge.npz", "huge.npz"),
    ("generate --model extra.npz -n 1 --seed 1", "extra.npz", "the unknown object-array member is never read"),
    ("generate --model fifo", "fifo"),
    ("train c.csv --out new.npz --resume model.npz --plot model.npz", "c.csv, model.npz"),
    ("evaluate --model truncated.npz c.csv", "truncated.npz, c.csv"),
    ("evaluate --model pickle.npz c.csv", "pickle.npz, c.csv"),
    ("evaluate --model missing.npz c.csv", "no missing.npz"),
    ("evaluate --model folder c.csv", "folder"),
    ("evaluate --model model.npz fifo", "model.npz, fifo"),
    ("generate --model model.npz -n -1", "model.npz"),
    ("generate --model model.npz --temperature -1", "model.npz"),
    ("generate --model model.npz --min-length 9 --max-length 5", "model.npz"),
    ("generate --model model.npz --seed -4", "model.npz"),
    ("gradcheck --seed -1", "-"),
    ("export big16.npz --out small.npz --dtype float16", "big16.npz"),
    ("export model.npz --out model.npz", "model.npz"),
    ("export model.npz --out fifo", "model.npz, fifo"),
    ("download reddit --dir dl --url http://127.0.0.1:9/x.csv", "nothing listening on 127.0.0.1:9"),
    ("frobnicate", "-"),
    ("train", "-"),
    # issue 17: outputs replace only what the user named, and only when allowed
    ("train c.csv --out ro.npz … --epochs 1 " + TINY, "c.csv, ro.npz"),
    ("export model.npz --out ro.npz", "model.npz, ro.npz"),
    ("export model.npz --out link.npz", "model.npz, link.npz, real",
     "written through the link: real/m.npz replaced, link.npz still a link"),
    ("train c.csv --out loop.npz", "c.csv, loop.npz"),
    ("evaluate --model loop.npz c.csv", "loop.npz, c.csv"),
    ("train c.csv --out ''", "c.csv"),
    ("train c.csv --out .", "c.csv"),
    ("train c.csv --out /", "c.csv"),
    ("train c.csv --out model.npz/", "c.csv, model.npz"),
    ("course build --solutions sol --out sol", "sol"),
    ("course build --solutions sol --out sol/inner", "sol"),
    ("check nb.ipynb --timeout 0", "nb.ipynb"),
    ("check fifo.ipynb", "fifo.ipynb"),
    ("check trunc.ipynb", "trunc.ipynb"),
    ("check list.ipynb", "list.ipynb"),
    # bounded work and crafted files
    ("generate --model model.npz --temperature 0 --max-length 1000000000", "model.npz"),
    ("generate --model model.npz --temperature 1e-320 -n 2 --seed 1", "model.npz",
     "both the temperature-0 sentence; no RuntimeWarning"),
    ("generate --model headers.npz", "headers.npz"),
    ("generate --model zipbomb.npz", "zipbomb.npz"),
    ("export cls.npz --format safetensors --out cls.safetensors", "cls.npz"),
    ("export stream.npz --format safetensors --out stream.safetensors", "stream.npz",
     "a stream model has a PyTorch counterpart"),
    ("import level.safetensors --out out.npz", "level.safetensors"),
    ("import huge.safetensors --out out.npz", "huge.safetensors"),
    ("import deep.safetensors --out out.npz", "deep.safetensors"),
    ("train c.csv --out negbatch.npz --resume … --epochs 3 --optimizer adam " + TINY, "c.csv, negbatch.npz"),
    ("train c.csv --out epoch7.npz --resume … --epochs 3 --optimizer adam " + TINY, "c.csv, epoch7.npz"),
    ("download reddit --dir dl-other --url http://127.0.0.1:9/x.csv", "dl-other"),
    ("download reddit --dir dl-fifo --url http://127.0.0.1:9/x.csv --force", "dl-fifo"),
    ("trees predict --model k3.npz 'good film'", "k3.npz"),
    ("trees train deep.txt --out deep-tree.npz --epochs 1 --hidden 8 --embed-size 6 --no-progress", "deep.txt",
     "the tree of height 1,199 trains"),
    ("train long.txt --out l.npz --epochs 1 --vocab-size 100 … --hidden 8 --seed 1 --no-progress", "long.txt",
     "the line is cut into 201 pieces of at most 1,000 tokens"),
    ("score missing.txt", "no missing.txt"),
    ("score empty.txt", "empty.txt"),
    ("score binary.txt", "binary.txt"),
    ("score utf16.txt", "utf16.txt"),
    ("score fifo", "fifo"),
    ("score folder", "folder"),
    ("score --model model.npz c.csv --sort --by bogus", "model.npz, c.csv"),
    ("evaluate --model model.npz c.csv --format tokens --level char", "model.npz, c.csv"),
]


# --------------------------------------------------------------------- the scratch folder

FIFO, FOLDER = "fifo", "folder"   # markers in a folder spec: {name: bytes | FIFO | FOLDER | Link | ReadOnly | spec}
Link = namedtuple("Link", "target")      # a symbolic link to `target` (relative to the folder it lies in)
ReadOnly = namedtuple("ReadOnly", "data")  # a file of mode 0444 (rnnlm reads the mode bits, so it holds as root)
# (a nested spec, {name: ...}, is a folder holding those entries)

# What build_spec makes with rnnlm itself before any fixture is built, {file name: its bytes}; the builders
# of FIXTURES below that need more than the trained model read these.
MADE = {}
TREES = ["(4 (3 (2 a) (4 great)) (2 film))", "(0 (1 (2 a) (0 awful)) (2 film))", "(3 (2 truly) (3 good))"]
MAKE = [  # (the file, the argv after `rnnlm` that makes it in the build folder: c.csv, trees.txt)
    ("model.npz", MODEL_ARGV),
    ("cls.npz", "train c.csv --out cls.npz --softmax class --epochs 1 " + TINY),
    ("stream.npz", "train c.csv --out stream.npz --stream --epochs 1 " + TINY),
    ("model.safetensors", "export model.npz --format safetensors --out model.safetensors"),
    ("tree.npz", "trees train trees.txt --out tree.npz --hidden 4 --embed-size 3 --epochs 1 --no-progress"),
]


def _npz(arrays):
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return buffer.getvalue()


def _arrays(model_bytes):
    with np.load(io.BytesIO(model_bytes)) as data:
        arrays = dict(data)
    return arrays, json.loads(arrays["metadata"].tobytes())


def _with_meta(arrays, meta=None, raw=None):
    text = raw if raw is not None else json.dumps(meta)
    return {**arrays, "metadata": np.frombuffer(text.encode(), dtype=np.uint8)}


def _meta_edit(model, edit):
    arrays, meta = _arrays(model)
    edit(meta)
    return _npz(_with_meta(arrays, meta))


def _array_edit(model, edit):
    arrays, _ = _arrays(model)
    edit(arrays)
    return _npz(arrays)


def _set(mapping, key, value):
    mapping[key] = value


def _big16(a):
    a["param/W"] = a["param/W"].copy()
    a["param/W"][0, 0] = 70000.0   # fine in float32, above float16's 65504


def _npy(array):
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def _npy_header(shape, dtype="<f4"):
    """An .npy member that is its header only: it declares `shape` and stores no data."""
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)),
                                                  "fortran_order": False, "shape": tuple(shape)})
    return buffer.getvalue()


BIG_HIDDEN = 3000  # the hidden size the crafted headers.npz and zipbomb.npz claim: W alone is 36 MB


def _crafted_model(model, params):
    """model.npz with hidden size BIG_HIDDEN, its vocabulary, and the param members `params` ({name: .npy bytes},
    each deflated at level 9) instead of its own; no training state."""
    arrays, meta = _arrays(model)
    meta["model_config"]["hidden_size"] = BIG_HIDDEN
    buffer = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(model)) as source, zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as out:
        out.writestr("metadata.npy", _npy(np.frombuffer(json.dumps(meta).encode(), np.uint8)))
        for name in source.namelist():
            if name.startswith("vocab/"):
                out.writestr(name, source.read(name))
        for name, data in params.items():
            out.writestr(f"param/{name}.npy", data, compresslevel=9)
    return buffer.getvalue()


def _headers(model):
    H, C = BIG_HIDDEN, _arrays(model)[0]["param/U"].shape[1]
    return _crafted_model(model, {"U": _npy_header((H, C)), "V": _npy_header((C, H)), "W": _npy_header((H, H))})


def _zipbomb(model):
    H, C = BIG_HIDDEN, _arrays(model)[0]["param/U"].shape[1]
    rng = np.random.default_rng(0)
    data = _crafted_model(model, {"U": _npy(rng.standard_normal((H, C), dtype=np.float32)),
                                  "V": _npy(rng.standard_normal((C, H), dtype=np.float32)),
                                  "W": _npy(np.zeros((H, H), dtype=np.float32))})
    info = zipfile.ZipFile(io.BytesIO(data)).getinfo("param/W.npy")
    assert info.file_size > 1000 * info.compress_size, "zipbomb.npz is no zip bomb"
    return data


def _safetensors_edit(data, meta=None, tensor=None):
    """A safetensors file (stdlib: 8-byte header length, JSON header, data) with its metadata updated by `meta`
    and, for tensor = (name, value), that float32 tensor's first element set to value."""
    length = struct.unpack("<Q", data[:8])[0]
    header, body = json.loads(data[8:8 + length]), bytearray(data[8 + length:])
    header["__metadata__"].update(meta or {})
    if tensor:
        name, value = tensor
        assert header[name]["dtype"] == "F32", header[name]
        start = header[name]["data_offsets"][0]
        body[start:start + 4] = struct.pack("<f", value)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + bytes(body)


def _three_classes(tree_model):
    """The tree model with 3 output classes, as a foreign writer would make it (rnnlm writes only 5)."""
    arrays, meta = _arrays(tree_model)
    meta["model_config"]["num_classes"] = 3
    arrays["param/W_s"], arrays["param/b_s"] = arrays["param/W_s"][:, :3], arrays["param/b_s"][:3]
    return _npz(_with_meta(arrays, meta))


def _right_branching(n):
    """'(3 (2 w0) (3 (2 w1) ... (2 wn-1)))': a labelled tree of n words, height n - 1."""
    text = f"(2 w{(n - 1) % 7})"
    for k in reversed(range(n - 1)):
        text = f"(3 (2 w{k % 7}) {text})"
    return text


def _notebook():
    """A one-exercise assignment notebook, its answer in a ### BEGIN SOLUTION region (nbformat, as the course's are)."""
    import nbformat
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("**Exercise 1.** Make x 42.", id="m"),
                nbformat.v4.new_code_cell("### BEGIN SOLUTION\nx = 42\n### END SOLUTION", id="a"),
                nbformat.v4.new_code_cell("assert x == 42, 'not yet'\nprint('correct')", id="c")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nbformat.writes(nb).encode()


# name: (what it is, builder from the trained model's bytes). The descriptions are the doc's.
FIXTURES = {
    "model.npz": ("a small trained model, Adam state", lambda m: m),
    "good.npz": ("a copy of model.npz", lambda m: m),
    "c.csv": ("tests/fixtures/comments.csv", lambda m: CORPUS.read_bytes()),
    "fifo": ("a named pipe", lambda m: FIFO),
    "folder": ("an empty folder", lambda m: FOLDER),
    "empty.txt": ("an empty file", lambda m: b""),
    "binary.txt": ("text with a NUL byte at offset 8", lambda m: b"hello wo\x00rld\n"),
    "utf16.txt": ("UTF-16 with its byte-order mark", lambda m: "hello there.\n".encode("utf-16")),
    "latin1.txt": ("Latin-1 text (0xe9 at offset 3)", lambda m: "café au lait.\n".encode("latin-1")),
    "nobody.csv": ("a CSV without a 'body' column", lambda m: b"id,text\n1,hello there.\n"),
    "truncated.npz": ("the first half of model.npz", lambda m: m[:len(m) // 2]),
    "pickle.npz": ("a Python pickle", lambda m: pickle.dumps({"U": [1, 2, 3]})),
    "list-config.npz": ("model_config a JSON list",
                        lambda m: _meta_edit(m, lambda d: _set(d, "model_config", [8, 15]))),
    "deep.npz": ("metadata nested 100,000 deep",
                 lambda m: _npz(_with_meta(_arrays(m)[0], raw="[" * 100_000 + "]" * 100_000))),
    "bigint.npz": ("a 5,000-digit integer",
                   lambda m: _npz(_with_meta(_arrays(m)[0], raw='{"format": "rnnlm-model", "format_version": '
                                                                 + "9" * 5000 + "}"))),
    "neg-epoch.npz": ("training epoch -1", lambda m: _meta_edit(m, lambda d: _set(d["training"], "epoch", -1))),
    "bogus-level.npz": ("level 'bogus'", lambda m: _meta_edit(m, lambda d: _set(d, "level", "bogus"))),
    "kind.npz": ("model_kind 'language-model' over a FastRNN",
                 lambda m: _meta_edit(m, lambda d: _set(d, "model_kind", "language-model"))),
    "hidden.npz": ("metadata claiming hidden 1000 over the real 8x8 arrays",
                   lambda m: _meta_edit(m, lambda d: _set(d["model_config"], "hidden_size", 1000))),
    "layers.npz": ("metadata claiming 3,000,000 layers",
                   lambda m: _meta_edit(m, lambda d: _set(d["model_config"], "num_layers", 3_000_000))),
    "nan.npz": ("NaN in W", lambda m: _array_edit(m, lambda a: _set(a, "param/W", np.full_like(a["param/W"], np.nan)))),
    "f64.npz": ("1e300 in a parameter",
                lambda m: _array_edit(m, lambda a: _set(a, "param/W", np.full(a["param/W"].shape, 1e300)))),
    "big16.npz": ("70000 in a parameter", lambda m: _array_edit(m, _big16)),
    "huge.npz": ("3e7 in V", lambda m: _array_edit(
        m, lambda a: _set(a, "param/V", np.full(a["param/V"].shape, 3e7, np.float32)))),
    "extra.npz": ("an extra object-array member", lambda m: _array_edit(
        m, lambda a: _set(a, "junk", np.array([{"would": "unpickle"}], dtype=object)))),
    "optshape.npz": ("Adam's m for W of shape (2, 2)", lambda m: _array_edit(
        m, lambda a: _set(a, "optimizer/W/m", np.zeros((2, 2), np.float32)))),
    "steps.npz": ("optimizer steps the string 'many'",
                  lambda m: _array_edit(m, lambda a: _set(a, "optimizer/steps", np.array("many")))),
    # issue 17
    "ro.npz": ("a write-protected (mode 0444) copy of model.npz", lambda m: ReadOnly(m)),
    "real": ("a folder holding m.npz, a copy of model.npz", lambda m: {"m.npz": m}),
    "link.npz": ("a symlink to real/m.npz", lambda m: Link("real/m.npz")),
    "loop.npz": ("a symlink to itself", lambda m: Link("loop.npz")),
    "sol": ("a folder holding 01-tiny.ipynb, a one-exercise solution notebook, and an empty folder inner",
            lambda m: {"01-tiny.ipynb": _notebook(), "inner": FOLDER}),
    "nb.ipynb": ("that notebook", lambda m: _notebook()),
    "fifo.ipynb": ("a named pipe", lambda m: FIFO),
    "trunc.ipynb": ("a notebook's JSON cut short", lambda m: b'{"cells": [{"cell_type": "code", "sou'),
    "list.ipynb": ("the JSON [1, 2]", lambda m: b"[1, 2]"),
    "headers.npz": (f"array headers only, declaring hidden {BIG_HIDDEN} (36 MB) in under 4 KB", _headers),
    "zipbomb.npz": (f"hidden {BIG_HIDDEN} with W 36 MB of zeros deflated over 1000-fold", _zipbomb),
    "cls.npz": ("a class-softmax model", lambda m: MADE["cls.npz"]),
    "stream.npz": ("a --stream model", lambda m: MADE["stream.npz"]),
    "level.safetensors": ("model.npz exported to safetensors with level 'bogus'",
                          lambda m: _safetensors_edit(MADE["model.safetensors"], meta={"level": "bogus"})),
    "huge.safetensors": ("3e7 in out.weight", lambda m: _safetensors_edit(MADE["model.safetensors"],
                                                                          tensor=("out.weight", 3e7))),
    "deep.safetensors": ("model_config nested 200,000 deep", lambda m: _safetensors_edit(
        MADE["model.safetensors"], meta={"model_config": "[" * 200_000 + "]" * 200_000})),
    "negbatch.npz": ("training batch -3", lambda m: _meta_edit(m, lambda d: _set(d["training"], "batch", -3))),
    "epoch7.npz": ("training epoch 7 of the 1 planned",
                   lambda m: _meta_edit(m, lambda d: _set(d["training"], "epoch", 7))),
    "dl-other": ("a folder holding another file named reddit-comments-2015-08.csv",
                 lambda m: {"reddit-comments-2015-08.csv": b"id,body\n1,my own file, not the download.\n"}),
    "dl-fifo": ("a folder holding a named pipe of that name", lambda m: {"reddit-comments-2015-08.csv": FIFO}),
    "k3.npz": ("a Tree-LSTM with 3 output classes", lambda m: _three_classes(MADE["tree.npz"])),
    "deep.txt": ("a 1,200-word right-branching labelled tree", lambda m: (_right_branching(1200) + "\n").encode()),
    "long.txt": ("one line of 200,000 words",
                 lambda m: (" ".join(f"w{k % 97}" for k in range(200_000)) + "\n").encode()),
}


def _env():
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": str(REPO) + (os.pathsep + path if path else ""),
            "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "MPLBACKEND": "Agg"}


def _rnnlm(argv, cwd):
    return subprocess.run([sys.executable, "-m", "rnnlm", *argv], cwd=cwd, env=_env(), capture_output=True,
                          text=True, errors="replace", timeout=TIMEOUT, stdin=subprocess.DEVNULL)


def build_spec(tmp):
    """The scratch folder's contents, {name: bytes | FIFO | FOLDER | Link | ReadOnly | spec}: make what MAKE
    lists (the trained model first), craft the rest."""
    work = Path(tmp) / "model"
    work.mkdir()
    shutil.copy(CORPUS, work / "c.csv")
    (work / "trees.txt").write_text("\n".join(TREES) + "\n", encoding="utf-8")
    for name, argv in MAKE:
        result = _rnnlm(argv.split(), work)
        if result.returncode != 0:
            raise SystemExit(f"making {name} failed ({result.returncode}): rnnlm {argv}\n{result.stderr}")
        MADE[name] = (work / name).read_bytes()
    model = MADE["model.npz"]
    if "optimizer/W/m" not in _arrays(model)[0]:
        raise SystemExit("the scratch model has no Adam state")
    return {name: build(model) for name, (_, build) in FIXTURES.items()}


def materialize(folder, spec):
    folder.mkdir()
    for name, content in spec.items():
        path = folder / name
        if isinstance(content, dict):
            materialize(path, content)
        elif isinstance(content, Link):
            os.symlink(content.target, path)
        elif isinstance(content, ReadOnly):
            path.write_bytes(content.data)
            os.chmod(path, 0o444)
        elif content == FIFO:
            os.mkfifo(path)
        elif content == FOLDER:
            path.mkdir()
        else:
            path.write_bytes(content)


def snapshot(folder):
    """{relative path: what it is}: files by content hash and mode, everything else by type (a FIFO is never
    opened)."""
    seen = {}
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            path = Path(root) / name
            mode = os.lstat(path).st_mode
            key = str(path.relative_to(folder))
            if stat.S_ISREG(mode):
                seen[key] = f"file {hashlib.sha256(path.read_bytes()).hexdigest()} {stat.S_IMODE(mode):o}"
            elif stat.S_ISFIFO(mode):
                seen[key] = "FIFO"
            elif stat.S_ISLNK(mode):
                seen[key] = "link " + os.readlink(path)
            elif stat.S_ISDIR(mode):
                seen[key] = "folder"
            else:
                seen[key] = "special " + oct(stat.S_IFMT(mode))
    return seen


# --------------------------------------------------------------------- one case, one row

def split_case(case):
    """(the command as shown, the argv run (split as a shell would), the fixtures it needs, its note or None)."""
    argv, fixtures, *note = case
    shown, _, hidden = argv.partition(HIDE)
    shown = shown.strip() + (" " + HIDE if hidden else "")
    return shown, shlex.split(argv.replace(HIDE, " ")), fixtures, (note[0] if note else None)


def shown_command(case):
    """The command as the table's first column shows it."""
    return f"`rnnlm {split_case(case)[0]}`"


def _at_risk(argv, before):
    """What the data column names: the existing entries --out and --plot name; for an export with nothing
    there to overwrite, its input model (the only file it could have damaged)."""
    names = [argv[i + 1] for i, word in enumerate(argv[:-1]) if word in ("--out", "--plot")]
    names = [name for name in names if name in before]
    if not names and argv[:1] == ["export"] and len(argv) > 1 and argv[1] in before:
        names = [argv[1]]
    return names


def _change(before, after):
    """How one entry of the folder changed: its contents, its mode, or what it is."""
    was, now = before.split(), after.split()
    if was[0] == now[0] == "file":
        return "new contents" if was[1] != now[1] else f"mode {was[2]}, now {now[2]}"
    if was[0] == now[0] == "link":
        return f"a link to {was[1]}, now to {now[1]}"
    return f"was a {was[0]}, now a {now[0]}"


def data_column(argv, before, after):
    """The data column: what changed, what is new, and for the entries at risk that they were kept."""
    changed = sorted(k for k in before if k in after and before[k] != after[k])
    removed = sorted(k for k in before if k not in after)
    new = sorted(k for k in after if k not in before)
    if changed or removed:
        parts = [f"{k} CHANGED ({_change(before[k], after[k])})" for k in changed]
        parts += [f"{k} REMOVED" for k in removed]
        return "; ".join(parts) + ("; new: " + ", ".join(new) if new else "; nothing new")
    tail = "new: " + ", ".join(new) if new else "nothing new"
    risk = _at_risk(argv, before)
    fifos = sorted({n for n in risk if before[n] == "FIFO"})
    files = sorted({n for n in risk if before[n].startswith("file ")})
    if not fifos and not files:
        return ("everything unchanged, " if not new else "everything there unchanged; ") + tail
    said = [f"{n} still a FIFO, untouched" for n in fifos]
    if files:
        said.append(", ".join(files) + " byte-identical")
    return "; ".join(said) + "; " + tail


def _cell(text):
    return text.replace("|", "\\|")


def check_output(code, err):
    """What breaks the rule that every refusal is one line: a traceback, or exit 2 without exactly one line."""
    problems = []
    if "Traceback (most recent call last)" in err:
        problems.append("printed a traceback")
    lines = err.splitlines()
    if code == 2 and len(lines) != 1:
        problems.append(f"exit 2 with {len(lines)} stderr lines")
    return problems


def stderr_cell(err, out, argv, note=None):
    """The stderr column: its one line (cut at MAX_MESSAGE), saying so when there were more; or what stdout had."""
    count = len(out.splitlines())
    unit = "sentence" if argv[:1] == ["generate"] else "line"
    stdout = f"{'one' if count == 1 else count} {unit}{'' if count == 1 else 's'} on stdout"
    lines = err.splitlines()
    if lines:
        message = lines[0] if len(lines[0]) <= MAX_MESSAGE else lines[0][:MAX_MESSAGE - 3] + "..."
        if len(lines) > 1:
            message += f" **[+{len(lines) - 1} more stderr line{'s' if len(lines) > 2 else ''}]**"
        return message + (f" (and {stdout}; {note})" if note else "")
    return f"(nothing: {stdout}" + (f"; {note})" if note else ")")


def run_case(case, spec, tmp, index):
    shown, argv, _, note = split_case(case)
    folder = Path(tmp) / f"case{index:02d}"
    materialize(folder, spec)
    before = snapshot(folder)
    start = time.monotonic()
    try:
        result = _rnnlm(argv, folder)
        code, out, err = result.returncode, result.stdout, result.stderr
    except subprocess.TimeoutExpired as exc:
        code = "timeout"
        out = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        err = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else (exc.stderr or "")
    seconds = time.monotonic() - start
    for prefix in {str(folder.resolve()) + os.sep, str(folder) + os.sep}:  # the doc's paths are relative
        out, err = out.replace(prefix, ""), err.replace(prefix, "")
    after = snapshot(folder)
    shutil.rmtree(folder)

    problems = check_output(code, err)
    if code == "timeout":
        problems.append(f"still running after {TIMEOUT} s")
    message = stderr_cell(err, out, argv, note)
    row = f"| `rnnlm {shown}` | {code} | {_cell(message)} | {data_column(argv, before, after)} |"
    return row, problems, seconds


# --------------------------------------------------------------------- the document

def table_span(lines):
    """(first, end) line indices of the table after SECTION: its header line up to the first non-row line."""
    section = lines.index(SECTION)
    first = lines.index(HEADER, section)
    end = first + 1
    while end < len(lines) and lines[end].startswith("|"):
        end += 1
    return first, end


def documented_rows(text=None):
    """The rows of the table in docs/failures.md (or in `text`)."""
    lines = (DOC.read_text(encoding="utf-8") if text is None else text).splitlines()
    first, end = table_span(lines)
    return lines[first + 2:end]


def needed_fixtures(case):
    """The FIXTURES names a case's second field lists ("-", "no x", "nothing ...", "/dev/..." name none)."""
    words = [part.split()[0] for part in case[1].split(",") if part.strip()]
    return [w for w in words if w not in ("-", "no", "nothing") and not w.startswith("/")]


def check_cases():
    """Every fixture a case names is built; no command is listed twice."""
    for case in CASES:
        for name in needed_fixtures(case):
            if name not in FIXTURES:
                raise SystemExit(f"case {case[0]!r} needs {name}, which FIXTURES does not build")
    commands = [shown_command(case) for case in CASES]
    duplicates = sorted({c for c in commands if commands.count(c) > 1})
    if duplicates:
        raise SystemExit(f"cases listed twice: {duplicates}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", action="store_true", help=f"replace the table in {DOC.relative_to(REPO)}")
    args = parser.parse_args(argv)
    check_cases()

    start = time.monotonic()
    rows, failed = [], []
    with tempfile.TemporaryDirectory(prefix="rnnlm-failures-") as tmp:
        spec = build_spec(tmp)
        for index, case in enumerate(CASES):
            row, problems, seconds = run_case(case, spec, tmp, index)
            rows.append(row)
            print(f"[{index + 1}/{len(CASES)}] {seconds:5.1f} s  rnnlm {split_case(case)[0]}", file=sys.stderr)
            if problems:
                failed.append(f"rnnlm {split_case(case)[0]}: {', '.join(problems)}")
    table = [HEADER, SEPARATOR, *rows]

    if args.write:
        text = DOC.read_text(encoding="utf-8")
        lines = text.splitlines()
        first, end = table_span(lines)
        lines[first:end] = table
        DOC.write_text("\n".join(lines) + ("\n" if text.endswith("\n") else ""), encoding="utf-8")
        print(f"wrote {len(rows)} rows to {DOC}", file=sys.stderr)
    else:
        print("\n".join(table))
    print(f"{len(CASES)} cases in {time.monotonic() - start:.0f} s", file=sys.stderr)
    if failed:
        print("cases that broke the one-line rule:\n  " + "\n  ".join(failed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

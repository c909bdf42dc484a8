#!/usr/bin/env python
"""Regenerate the "Every case tried" table of docs/failures.md from real runs of `python -m rnnlm`.

    python docs/failures_table.py            # run every case, print the table
    python docs/failures_table.py --write    # ... and replace the table in docs/failures.md

Each case runs as its own process (`sys.executable -m rnnlm ARGV`) in a fresh copy of one scratch
folder: a small trained model (model.npz, Adam state), the test fixture corpus c.csv, and the bad
files of FIXTURES below. "Data" compares every entry of the folder before and after the run
(content hashes for files; FIFOs, folders and links by type), so a case that changed or added
anything says so.

Exit status: 0 when every case printed no traceback and, where it exited 2, exactly one stderr
line; 1 otherwise (the offending cases are listed on stderr). Standalone: stdlib, numpy, rnnlm.

To add a case, add a line to CASES (and, for a new kind of bad file, an entry to FIXTURES).
"""

import argparse
import hashlib
import io
import json
import os
import pickle
import shutil
import stat
import subprocess
import sys
import tempfile
import time
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
]


# --------------------------------------------------------------------- the scratch folder

FIFO, FOLDER = "fifo", "folder"   # markers in a folder spec: {name: bytes | FIFO | FOLDER}


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
}


def _env():
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": str(REPO) + (os.pathsep + path if path else ""),
            "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "MPLBACKEND": "Agg"}


def _rnnlm(argv, cwd):
    return subprocess.run([sys.executable, "-m", "rnnlm", *argv], cwd=cwd, env=_env(), capture_output=True,
                          text=True, errors="replace", timeout=TIMEOUT, stdin=subprocess.DEVNULL)


def build_spec(tmp):
    """The scratch folder's contents, {name: bytes | FIFO | FOLDER}: train the model, craft the rest."""
    work = Path(tmp) / "model"
    work.mkdir()
    shutil.copy(CORPUS, work / "c.csv")
    result = _rnnlm(MODEL_ARGV.split(), work)
    if result.returncode != 0:
        raise SystemExit(f"training the scratch model failed ({result.returncode}):\n{result.stderr}")
    model = (work / "model.npz").read_bytes()
    if "optimizer/W/m" not in _arrays(model)[0]:
        raise SystemExit("the scratch model has no Adam state")
    return {name: build(model) for name, (_, build) in FIXTURES.items()}


def materialize(folder, spec):
    folder.mkdir()
    for name, content in spec.items():
        if content == FIFO:
            os.mkfifo(folder / name)
        elif content == FOLDER:
            (folder / name).mkdir()
        else:
            (folder / name).write_bytes(content)


def snapshot(folder):
    """{relative path: what it is}: files by content hash, everything else by type (a FIFO is never opened)."""
    seen = {}
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            path = Path(root) / name
            mode = os.lstat(path).st_mode
            key = str(path.relative_to(folder))
            if stat.S_ISREG(mode):
                seen[key] = "file " + hashlib.sha256(path.read_bytes()).hexdigest()
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
    argv, fixtures, *note = case
    """(the command as shown, the argv run, the fixtures it needs, its note or None)."""
    shown, _, hidden = argv.partition(HIDE)
    shown = shown.strip() + (" " + HIDE if hidden else "")
    return shown, argv.replace(HIDE, " ").split(), fixtures, (note[0] if note else None)


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


def data_column(argv, before, after):
    """The data column: what changed, what is new, and for the entries at risk that they were kept."""
    changed = sorted(k for k in before if k in after and before[k] != after[k])
    removed = sorted(k for k in before if k not in after)
    new = sorted(k for k in after if k not in before)
    if changed or removed:
        parts = [f"{k} CHANGED (" + ("new contents" if before[k].startswith("file ") and after[k].startswith("file ")
                                     else f"was a {before[k].split()[0]}, now a {after[k].split()[0]}") + ")"
                 for k in changed]
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
    lines = err.splitlines()
    if lines:
        message = lines[0] if len(lines[0]) <= MAX_MESSAGE else lines[0][:MAX_MESSAGE - 3] + "..."
        if len(lines) > 1:
            message += f" **[+{len(lines) - 1} more stderr line{'s' if len(lines) > 2 else ''}]**"
        return message
    count = len(out.splitlines())
    unit = "sentence" if argv[:1] == ["generate"] else "line"
    message = f"(nothing: {'one' if count == 1 else count} {unit}{'' if count == 1 else 's'} on stdout"
    return message + (f"; {note})" if note else ")")


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

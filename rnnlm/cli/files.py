"""The file commands: `rnnlm export` (npz or safetensors), `rnnlm import`, `rnnlm download`, `rnnlm info`.
"""

import argparse
from pathlib import Path

import numpy as np

from rnnlm.cli.common import OUT_RULES, PROG, describe, load_checkpoint, printable
from rnnlm.cli.progress import download_progress
from rnnlm.errors import ConfigError
from rnnlm.io import checkpoint as ckpt, summary


def cmd_export(args):
    checkpoint = load_checkpoint(args.model)
    if args.format == "safetensors":
        return _export_safetensors(args, checkpoint)
    before = checkpoint.path.stat().st_size
    ckpt.save_model(args.out, checkpoint.model, checkpoint.vocabulary, level=checkpoint.level,
                    data_config=checkpoint.data_config, train_config=checkpoint.train_config, state=checkpoint.state,
                    param_dtype=np.dtype(args.dtype), include_optimizer=False)
    after = Path(args.out).stat().st_size
    print(f"Wrote {args.out}: {describe(checkpoint.model, checkpoint.level)}, parameters as {args.dtype}, "
          f"no optimizer state; {after:,} bytes (was {before:,}).")
    return 0


def _export_safetensors(args, checkpoint):
    """`export --format safetensors`: the model under PyTorch's names, vocabulary and configs in the metadata."""
    from rnnlm.io.exchange import save_safetensors
    export = save_safetensors(args.out, checkpoint.model, checkpoint.vocabulary, level=checkpoint.level,
                              data_config=checkpoint.data_config, train_config=checkpoint.train_config,
                              dtype=np.dtype(args.dtype))
    rnn = export.spec["rnn"]
    print(f"Wrote {args.out}: {describe(checkpoint.model, checkpoint.level)}, tensors as {args.dtype} "
          f"under PyTorch's names (nn.Embedding, nn.{rnn['type']}, nn.Linear), vocabulary and configuration "
          f"in the metadata; {Path(args.out).stat().st_size:,} bytes.")
    return 0


def cmd_import(args):
    """`import`: a safetensors export (trained further in PyTorch or not) back into an rnnlm model file."""
    from rnnlm.io.exchange import load_safetensors
    checkpoint = load_safetensors(args.file)
    ckpt.save_model(args.out, checkpoint.model, checkpoint.vocabulary, level=checkpoint.level,
                    data_config=checkpoint.data_config, train_config=checkpoint.train_config)
    print(f"Wrote {args.out}: {describe(checkpoint.model, checkpoint.level)}, from {args.file}; "
          f"try: {PROG} generate --model {args.out}")
    return 0


def cmd_download(args):
    from rnnlm.io.download import DATASETS, ZipDataset, download
    dataset = DATASETS[args.dataset]
    if isinstance(dataset, ZipDataset):
        return _download_zip(args, dataset)
    url = args.url or dataset.url
    sha1 = args.sha1 or dataset.git_sha1
    destination = Path(args.dir) / dataset.filename
    print(f"Downloading {dataset.description}\n  from {url}\n  to {destination}")
    update, close = download_progress(not args.no_progress)
    try:
        path, fetched = download(url, destination, sha1, progress=update, force=args.force)
    finally:
        close()
    size = path.stat().st_size
    verb = "Downloaded" if fetched else "Already present:"
    print(f"{verb} {path} ({size:,} bytes), git blob SHA-1 {sha1} verified.")
    print(f"Train on it with: {PROG} train {path} --out model.npz")
    return 0


def _download_zip(args, dataset):
    """`download sst`: a zip of which only the dataset's members are extracted, each file verified."""
    from rnnlm.io.download import download_zip
    if args.sha1:
        raise ConfigError(f"--sha1 checks a one-file download; {dataset.name} is verified file by file")
    url = args.url or dataset.url
    folder = Path(args.dir) / dataset.folder
    print(f"Downloading {dataset.description}\n  from {url}\n  to {folder}/ "
          f"({', '.join(m.filename for m in dataset.members)}; the zip is not kept)")
    update, close = download_progress(not args.no_progress)
    try:
        paths, fetched = download_zip(url, folder, dataset.members, progress=update, force=args.force)
    finally:
        close()
    for path, member in zip(paths, dataset.members):
        print(f"{path}: {path.stat().st_size:,} bytes, git blob SHA-1 {member.git_sha1} verified.")
    print("Downloaded and extracted." if fetched else "Already present: nothing downloaded.")
    print(f"Train on it with: {PROG} {dataset.next_step.format(folder=folder)}")
    return 0


def cmd_info(args):
    if args.words < 1:
        raise ConfigError(f"--words must be a positive integer, got {args.words}")
    from rnnlm.io.archive import read_model_kind
    from rnnlm.io.kinds import TREE_KIND
    if args.model is not None and read_model_kind(args.model) == TREE_KIND:
        from rnnlm.io.tree_checkpoint import load_tree_model
        lines = summary.tree_summary(load_tree_model(args.model), words=args.words)
    else:
        lines = summary.model_summary(load_checkpoint(args.model), words=args.words)
    for line in lines:
        print(printable(line))  # the file's strings (its rnnlm version, its path) are data
    return 0


def add_export_parser(command):
    """`rnnlm export`: a copy without training state, as .npz or safetensors."""
    p = command("export", "copy a model without its training state (smaller, for sharing)")
    p.add_argument("model", metavar="MODEL.npz", help="a model file")
    p.add_argument("--out", required=True, metavar="OUT.npz", help="the copy to write" + OUT_RULES)
    p.add_argument("--dtype", choices=["float32", "float16"], default="float32",
                   help="store the parameters in this type; loading casts back to float32 (default: float32)")
    p.add_argument("--format", choices=["npz", "safetensors"], default="npz",
                   help="npz: an rnnlm model file; safetensors: for PyTorch, see docs/scaling.md (default: npz)")
    p.set_defaults(run=cmd_export)


def add_import_parser(command):
    """`rnnlm import`: an rnnlm model file from a safetensors export."""
    p = command("import", "rebuild an rnnlm model file from a safetensors export (e.g. trained in PyTorch)")
    p.add_argument("file", metavar="FILE.safetensors", help="written by 'rnnlm export --format safetensors'")
    p.add_argument("--out", required=True, metavar="MODEL.npz", help="the rnnlm model file to write" + OUT_RULES)
    p.set_defaults(run=cmd_import)


def add_download_parser(command):
    """`rnnlm download`: a dataset, checksum-verified."""
    p = command("download", "download a dataset (reddit or sst) and verify its checksum")
    p.add_argument("dataset", choices=["reddit", "sst"],
                   help="reddit: the tutorial's Reddit comments (DIR/reddit-comments-2015-08.csv); sst: the Stanford "
                        "Sentiment Treebank, PTB-bracket trees, standard split (DIR/sst/train.txt, dev.txt, test.txt)")
    p.add_argument("--dir", default="data", help="folder to save into (default: data)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--force", action="store_true",
                   help="replace an existing file (or symbolic link) of that name that differs from the published "
                        "one; without it such a file is kept and nothing is downloaded (a directory, pipe or device "
                        "is never replaced)")
    p.add_argument("--url", help=argparse.SUPPRESS)   # for tests and mirrors
    p.add_argument("--sha1", help=argparse.SUPPRESS)  # the git blob SHA-1 expected from --url
    p.set_defaults(run=cmd_download)


def add_info_parser(command):
    """`rnnlm info`: what a model file holds."""
    p = command("info", "show a model file's kind, sizes, vocabulary and training history")
    p.add_argument("--model", metavar="MODEL.npz",
                   help="a model file, language model or Tree-LSTM (default: the bundled Reddit model)")
    p.add_argument("--words", type=int, default=10, metavar="N",
                   help="most and least frequent words to list (default: 10)")
    p.set_defaults(run=cmd_info)

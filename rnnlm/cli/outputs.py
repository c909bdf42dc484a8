"""The command's outputs and stdout: every file a command writes is checked against its inputs and
locked before the command runs (`guarded_outputs`); a closed stdout (`| head`) ends output quietly,
a stdout that cannot be written (a full disk) is one error line.
"""

import contextlib
import os
import sys

from rnnlm.cli.common import EXIT_ERROR, PROG, one_line
from rnnlm.io import safe_files


def command_outputs(args):
    """The files this command writes, as (option, path), and what they must not be: (description, path)."""
    command = f"trees {args.trees_command}" if args.command == "trees" else args.command
    if command not in ("train", "export", "import", "trees train"):
        return [], []
    outputs = [(option, getattr(args, name, None)) for option, name in (("--out", "out"), ("--plot", "plot"))]
    outputs = [(option, path) for option, path in outputs if path is not None]
    for option, path in outputs:  # before a name is derived from --out: '' or 'model.npz/' names no file
        safe_files.check_file_name(path, option, example="loss.png" if option == "--plot" else "model.npz")
    if command in ("train", "trees train"):  # where the resumable last epoch goes when --out keeps the best one
        outputs.append(("--out's last-epoch file", last_path(args.out)))
    inputs = [("the corpus", getattr(args, "corpus", None))]
    if command == "export":
        inputs.append(("the model being exported", args.model))
    elif command == "import":
        inputs.append(("the input file itself", args.file))
    elif command == "trees train":
        inputs += [("the training trees", args.train), ("the development trees", args.dev)]
    return outputs, inputs


# Every argument that names a file or folder to read or write, with how an error names it.
PATH_ARGUMENTS = (("corpus", "the corpus"), ("model", "model file"), ("file", "the input file"),
                   ("train", "the training trees"), ("dev", "--dev"), ("trees", "the trees file"),
                   ("notebook", "the notebook"), ("solutions", "--solutions"), ("dir", "--dir"),
                   ("resume", "--resume"), ("out", "--out"), ("plot", "--plot"))


def refuse_symlink_loops(args):
    """A symlink loop as any path argument is one line here, not a RuntimeError from pathlib or a
    misleading 'not found' (Path.exists() is False for a loop) deeper down."""
    for name, what in PATH_ARGUMENTS:
        value = getattr(args, name, None)
        if isinstance(value, str) and value:
            safe_files.refuse_symlink_loop(value, what)


@contextlib.contextmanager
def guarded_outputs(args):
    """Check every output against the inputs and each other, and hold a write lock on each for the command."""
    outputs, inputs = command_outputs(args)
    resumed = getattr(args, "resume", None)
    for i, (option, path) in enumerate(outputs):
        others = [(f"also {o}", p) for o, p in outputs[:i]]
        if option == "--plot" and isinstance(resumed, str):  # --out may be the resumed model; a plot may not
            others.append(("the model being resumed", resumed))
        example = "loss.png" if option == "--plot" else ("model.safetensors" if str(path).endswith(".safetensors")
                                                          else "model.npz")
        safe_files.check_output(path, option, inputs + others, example=example)
    with contextlib.ExitStack() as locks:
        for _, path in outputs:
            locks.enter_context(safe_files.output_lock(path))
        yield


def last_path(out):
    """Where the resumable last-epoch state goes when --out keeps the best epoch: model.npz -> model.last.npz.
    When --out is a symlink, named from (and next to) the file it points to, which is what is written."""
    out = safe_files.write_target(out)
    return out.with_name(f"{out.stem}.last{out.suffix}")


class OutputError(Exception):
    """Standard output could not be written (a full disk, /dev/full, an I/O error): not a closed pipe."""


class _GuardedStream:
    """A stdout stand-in whose write and flush go through `_guard`; everything else is the stream's."""

    def __init__(self, stream):
        self._stream = stream

    def _guard(self, method, *args):
        return method(*args)

    def write(self, text):
        return self._guard(self._stream.write, text)

    def flush(self):
        return self._guard(self._stream.flush)

    def __getattr__(self, name):
        return getattr(self._stream, name)


class ReportedWrites(_GuardedStream):
    """sys.stdout while rnnlm runs: a write or flush that fails for any reason but a closed pipe
    raises `OutputError`, which `main` reports ("cannot write output: No space left on device")
    instead of letting the interpreter's last flush fail silently or with a traceback."""

    def _guard(self, method, *args):
        try:
            return method(*args)
        except BrokenPipeError:
            raise
        except OSError as exc:
            raise OutputError(exc.strerror or str(exc)) from None


class QuietWhenClosed(_GuardedStream):
    """sys.stdout for `train`: when the reader of the log goes away (`| head`), the log ends
    quietly and training goes on (and keeps saving); writes after that are dropped."""

    def __init__(self, stream):
        super().__init__(stream)
        self.closed_by_reader = False

    def _guard(self, method, *args):
        if self.closed_by_reader:
            return None
        try:
            return method(*args)
        except BrokenPipeError:
            self.closed_by_reader = True
            stdout_to_devnull(self._stream)
            return None


def flushed(stdout, code, error=None):
    """`code` once stdout is flushed (the end of --help and --version): 0 when its reader went away
    (`| head`), EXIT_ERROR with one line on stderr when it cannot be written."""
    if error is None:
        try:
            ReportedWrites(stdout).flush()
        except (BrokenPipeError, OutputError) as exc:
            error = exc
    if isinstance(error, BrokenPipeError):
        stdout_to_devnull(stdout)
        return 0
    if error is not None:
        stdout_to_devnull(stdout)
        print(f"{PROG}: error: cannot write output: {one_line(error)}", file=sys.stderr)
        return EXIT_ERROR
    return code


def stdout_to_devnull(stream):
    """Point file descriptor 1 at /dev/null, so the interpreter's last flush of a closed pipe is silent
    (what the Python docs recommend for SIGPIPE)."""
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, ValueError):  # not a real file (e.g. captured by a test)
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)

"""The `rnnlm` command's entry point: the parser of every command, and `main`, the one place that
turns errors into one line and an exit code (0 success, 1 a check said no, 2 refused, 130
interrupted).
"""

import contextlib
import signal
import sys

import numpy as np

from rnnlm.cli.common import EXIT_ERROR, EXIT_INTERRUPTED, PROG, Formatter, Interrupts, Parser, one_line
from rnnlm.cli.course import add_check_parser, add_course_parser
from rnnlm.cli.evaluate import add_evaluate_parser, add_gradcheck_parser
from rnnlm.cli.examples import EXAMPLES
from rnnlm.cli.files import add_download_parser, add_export_parser, add_import_parser, add_info_parser
from rnnlm.cli.generate import add_generate_parser
from rnnlm.cli.score import add_score_parser
from rnnlm.cli.outputs import OutputError, QuietWhenClosed, ReportedWrites, flushed, guarded_outputs, refuse_symlink_loops, stdout_to_devnull
from rnnlm.cli.train import add_train_parser
from rnnlm.cli.trees import add_trees_parser
from rnnlm.errors import RnnlmError
from rnnlm.version import __version__


def build_parser():
    parser = Parser(
        prog=PROG, formatter_class=Formatter,
        description="A from-scratch NumPy recurrent-neural-network language model (the WildML tutorial, and more).",
        epilog="examples:\n  rnnlm generate\n  rnnlm train corpus.csv --out model.npz\n"
               "  rnnlm evaluate --model model.npz corpus.csv\n  rnnlm score --sort candidates.txt\n  rnnlm gradcheck\n  rnnlm download reddit\n\n"
               "Run 'rnnlm COMMAND --help' for each command's options.")
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(name, help):
        return commands.add_parser(name, help=help, description=help, epilog=EXAMPLES[name], formatter_class=Formatter)

    for add_parser in (add_train_parser, add_evaluate_parser, add_score_parser, add_generate_parser, add_gradcheck_parser,
                       add_export_parser, add_import_parser, add_download_parser, add_info_parser,
                       add_course_parser, add_check_parser):
        add_parser(command)
    add_trees_parser(commands)
    return parser


def _training_numerics(args):
    """During `train`, NumPy's overflow/invalid warnings are not shown: the training loop checks
    every loss and gradient norm itself and reports a diverged run as one error line, which the
    warnings printed on the way there would break up. Other commands keep NumPy's defaults."""
    if args.command != "train":
        return contextlib.nullcontext()
    return np.errstate(over="ignore", invalid="ignore", divide="ignore")


def _out_of_memory(args):
    if args.command == "train":
        return "out of memory; try a smaller --vocab-size, --hidden or --batch-size"
    model = getattr(args, "model", None) or "the bundled model"
    return f"out of memory while {args.command.rstrip('e')}ing with {model}; the model is too large for this machine"


def main(argv=None):
    """Run the command line; returns the exit code (0 success, 1 gradcheck failed, 2 bad input, 130 Ctrl-C/SIGTERM)."""
    for stream in (sys.stdout, sys.stderr):
        try:  # never crash on a terminal that cannot show a character of a generated sentence
            stream.reconfigure(errors="backslashreplace")
        except (AttributeError, ValueError):
            pass
    parser = build_parser()
    stdout = sys.stdout
    sys.stdout = ReportedWrites(stdout)
    try:
        args = parser.parse_args(argv)  # writes --help and --version itself, then raises SystemExit
    except SystemExit as exc:  # --help, --version, usage errors (exit 2): flushed here, or reported
        return flushed(stdout, exc.code)
    except (BrokenPipeError, OutputError) as exc:
        return flushed(stdout, 0, exc)
    finally:
        sys.stdout = stdout
    if args.command == "train":
        sys.stdout = QuietWhenClosed(ReportedWrites(stdout))
    else:
        sys.stdout = ReportedWrites(stdout)
    Interrupts.requested = False
    try:  # SIGTERM (kill, a batch system's time limit) is handled like Ctrl-C: files cleaned, last epoch kept
        previous = {sig: signal.signal(sig, Interrupts.handle) for sig in (signal.SIGINT, signal.SIGTERM)}
    except ValueError:  # not the main thread: leave signals alone
        previous = {}
    previous_unraisable, sys.unraisablehook = sys.unraisablehook, Interrupts.unraisable
    try:
        refuse_symlink_loops(args)
        with guarded_outputs(args), _training_numerics(args):
            code = args.run(args)
        sys.stdout.flush()  # buffered output fails here, not in the interpreter's silent last flush
        return code
    except OutputError as exc:
        stdout_to_devnull(stdout)  # what could not be written is dropped, not retried at exit
        message = f"cannot write output: {exc}"
    except RnnlmError as exc:
        message = str(exc)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # the reader of our output went away (`| head`): stop quietly, as Unix tools do
        stdout_to_devnull(stdout)
        return 0
    except MemoryError:
        message = _out_of_memory(args)
    except OSError as exc:
        name = f" {exc.filename}" if getattr(exc, "filename", None) else ""
        message = f"{exc.strerror or exc}{':' + name if name else ''}"
    finally:
        sys.stdout = stdout
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        sys.unraisablehook = previous_unraisable
    print(f"{PROG}: error: {one_line(message)}", file=sys.stderr)
    return EXIT_ERROR

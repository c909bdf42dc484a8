"""`rnnlm course build` (the student edition) and `rnnlm check` (grade a notebook).
"""

import argparse
import math

from rnnlm.cli.common import printable


def cmd_course(args):
    from rnnlm.course import build  # the course tools (nbformat) are imported only by the commands that use them
    changed = build.build(args.solutions, args.out, check_only=args.check)
    total = len(build.solution_notebooks(args.solutions))
    if args.check:
        for path in changed:
            print(f"out of date: {path}")
        print(f"{total} notebooks, {len(changed)} out of date" + ("; run: rnnlm course build" if changed else "."))
        return 1 if changed else 0
    for path in changed:
        print(f"wrote {path}")
    print(f"{total} notebooks, {len(changed)} rewritten.")
    return 0


def cmd_check(args):
    from rnnlm.course import grade

    def progress(result):  # one line per exercise as it is graded; error texts come from the notebook
        print(f"  {printable(str(result))}", flush=True)

    def start(official, count):
        print(printable(f"grading {args.notebook}: {count} exercises, with the checks of {official}"), flush=True)

    report = grade.grade_notebook(args.notebook, solutions_dir=args.solutions, timeout=args.timeout,
                                  on_exercise=progress, on_start=start)
    lines = [report.summary()] + [f"  note: {e}" for e in report.other_errors]
    print("\n".join(printable(line) for line in lines))
    return 0 if report else 1


def _positive_seconds(text):
    """argparse type of --timeout: a positive, finite number of seconds (0 or -1 would mean no limit at all)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"--timeout must be a positive number of seconds, got {text!r}")
    return value


def add_course_parser(command):
    """`rnnlm course build`: the student edition from the solutions."""
    from rnnlm.course.notebooks import SOLUTIONS_DIR, STUDENT_DIR
    p = command("course", "build the student edition of the notebooks from the solution edition")
    p.add_argument("action", choices=["build"], help="build: write the student notebooks")
    p.add_argument("--check", action="store_true", help="write nothing; exit 1 if a student notebook is stale")
    p.add_argument("--solutions", default=str(SOLUTIONS_DIR), metavar="DIR",
                   help="the solution notebooks (default: notebooks/solutions)")
    p.add_argument("--out", default=str(STUDENT_DIR), metavar="DIR",
                   help="the student edition (default: notebooks); refused when it is --solutions or inside it, or "
                        "when a notebook there is a symlink, a hard link to a solution or not a regular file; each "
                        "notebook is replaced atomically")
    p.set_defaults(run=cmd_course)


def add_check_parser(command):
    """`rnnlm check`: grade a course notebook."""
    from rnnlm.course.notebooks import SOLUTIONS_DIR
    p = command("check", "grade the exercises of a course notebook from the terminal")
    p.add_argument("notebook", metavar="NOTEBOOK.ipynb", help="a notebook of the course, e.g. your copy of 02-...")
    p.add_argument("--timeout", type=_positive_seconds, default=300, metavar="S",
                   help="seconds allowed per cell, a positive number (default: 300)")
    p.add_argument("--solutions", default=str(SOLUTIONS_DIR), metavar="DIR",
                   help="the solution edition, whose checks grade the notebook (default: notebooks/solutions)")
    p.set_defaults(run=cmd_check)

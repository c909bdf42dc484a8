"""What an assignment notebook is: solution regions between marker lines, exercise and check cells,
the course's folders, and reading a notebook file safely (one line for a file that is not one).
"""

import json
import os
import re
import stat
from pathlib import Path

from rnnlm.errors import RnnlmError


BEGIN_SOLUTION = "### BEGIN SOLUTION"


END_SOLUTION = "### END SOLUTION"


PLACEHOLDER = ("# YOUR CODE HERE", "raise NotImplementedError()")
# Cell tags of the student edition: where the answers go, and the cells that grade them.
EXERCISE_TAG, CHECK_TAG = "exercise", "check"


NOTEBOOK_VERSION = 4


# From a source checkout: rnnlm/course/notebooks.py -> the repository root.
REPOSITORY = Path(__file__).resolve().parents[2]


SOLUTIONS_DIR = REPOSITORY / "notebooks" / "solutions"


STUDENT_DIR = REPOSITORY / "notebooks"


class CourseError(RnnlmError):
    """A notebook whose markers do not pair up, a notebook that cannot be read, or no Jupyter to run it."""


def _marker_regions(lines):
    """[(begin, end)] line indices of each BEGIN/END pair; CourseError if they do not pair up."""
    regions, begin = [], None
    for i, line in enumerate(lines):
        marker = line.strip()
        if marker == BEGIN_SOLUTION:
            if begin is not None:
                raise CourseError(f"line {i + 1}: {BEGIN_SOLUTION} inside another solution region")
            begin = i
        elif marker == END_SOLUTION:
            if begin is None:
                raise CourseError(f"line {i + 1}: {END_SOLUTION} without {BEGIN_SOLUTION}")
            regions.append((begin, i))
            begin = None
    if begin is not None:
        raise CourseError(f"line {begin + 1}: {BEGIN_SOLUTION} is never closed by {END_SOLUTION}")
    return regions


def has_solution(source):
    """True when a cell's source holds at least one solution region."""
    return bool(_marker_regions(source.split("\n")))


def strip_solutions(source):
    """A cell's source with each solution region replaced by the placeholder, same indentation."""
    lines = source.split("\n")
    out, last = [], 0
    for begin, end in _marker_regions(lines):
        indent = re.match(r"\s*", lines[begin]).group(0)
        out += lines[last:begin] + [indent + line for line in PLACEHOLDER]
        last = end + 1
    return "\n".join(out + lines[last:])


def exercises(notebook):
    """[(answer cell index, check cell index or None)] in order.

    An answer cell holds a solution region (solution edition) or carries the tag
    "exercise" (student edition, where the markers are gone; Jupyter keeps tags while the
    student edits). Its check is the next code cell tagged "check", or, in a notebook
    without tags, simply the next code cell.
    """
    cells = notebook.cells
    found = []
    for i, cell in enumerate(cells):
        if cell.cell_type == "code" and (EXERCISE_TAG in _tags(cell) or has_solution(cell.source)):
            later = [j for j in range(i + 1, len(cells)) if cells[j].cell_type == "code"]
            tagged = [j for j in later if CHECK_TAG in _tags(cells[j])]
            check = tagged[0] if tagged else (later[0] if later else None)
            found.append((i, check))
    return found


def _tags(cell):
    return cell.get("metadata", {}).get("tags", [])


REREAD = "open it in Jupyter and save it again, or take a fresh copy of the course notebook"


def _read(path):
    """The notebook at `path` (nbformat version 4, validated), or one-line CourseError: a missing file, a
    folder or special file (a FIFO would block the read forever), text that is not JSON (a truncated
    save), JSON that is not a notebook."""
    import nbformat
    path = Path(path)
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise CourseError(f"notebook not found: {path}") from None
    except OSError as exc:
        raise CourseError(f"cannot read notebook {path}: {exc.strerror or exc}") from None
    if stat.S_ISDIR(mode):
        raise CourseError(f"{path} is a directory, not a notebook; give a .ipynb file")
    if not stat.S_ISREG(mode):
        raise CourseError(f"{path} is not a regular file (a pipe, device or socket); give a notebook file (.ipynb)")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CourseError(f"cannot read notebook {path}: {exc.strerror or exc}") from None
    try:
        document = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise CourseError(f"{path} is not a notebook: it is not UTF-8 text; {REREAD}") from None
    except json.JSONDecodeError as exc:
        raise CourseError(f"{path} is not a notebook: it is not valid JSON ({exc.msg}, line {exc.lineno} column "
                          f"{exc.colno}; a truncated save?); {REREAD}") from None
    if not isinstance(document, dict) or not isinstance(document.get("cells", document.get("worksheets")), list):
        what = ("an object without a list of cells" if isinstance(document, dict)
                else f"a JSON {type(document).__name__}")
        raise CourseError(f"{path} is not a notebook: it holds {what}; {REREAD}")
    try:  # nbformat raises ValueError, jsonschema's ValidationError, AttributeError, ... for malformed notebooks
        notebook = nbformat.reads(data.decode("utf-8"), as_version=NOTEBOOK_VERSION)
        nbformat.validate(notebook)
    except Exception as exc:  # noqa: BLE001 - any failure to parse this file is the file's fault
        reason = " ".join(str(exc).split("\n")[0].split())[:160] or type(exc).__name__
        raise CourseError(f"{path} is not a notebook: {reason}; {REREAD}") from None
    return notebook

"""What an assignment notebook is: solution regions between marker lines, exercise and check cells,
the course's folders, and reading a notebook file safely (one line for a file that is not one).
"""

import difflib
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


def _looks_like_marker(line):
    """True for a comment line that is nearly, but not exactly, a marker: `### BEGIN SOLUTON`,
    `## BEGIN SOLUTION`, `### end solution`, `#BEGIN SOLUTION` (an exact marker is not one)."""
    text = line.strip()
    if not text.startswith("#") or text in (BEGIN_SOLUTION, END_SOLUTION):
        return False
    words = " ".join(text.lstrip("#").upper().split())
    if re.match(r"(BEGIN|END) ?SOL", words):
        return True
    return any(difflib.SequenceMatcher(None, words, marker.lstrip("# ")).ratio() >= 0.8
               for marker in (BEGIN_SOLUTION, END_SOLUTION))


def misspelled_markers(source):
    """[(line number, line)] of the lines of a cell that look like a marker but are not one."""
    return [(i + 1, line.strip()) for i, line in enumerate(source.split("\n")) if _looks_like_marker(line)]


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


# ---------------------------------------------------------------- exercise ids (nbgrader's cell metadata)
# Every exercise and check cell carries nbgrader's metadata, written by `rnnlm course build` into both
# editions. Its grade_id identifies the exercise for grading (`rnnlm check` matches the student's cells
# to the official checks by it) and for nbgrader (generate_assignment, validate, autograde).
NBGRADER_SCHEMA_VERSION = 3
CHECK_SUFFIX = "-check"


def grade_id(cell):
    """The nbgrader grade_id a cell carries, or None."""
    info = cell.get("metadata", {}).get("nbgrader")
    value = info.get("grade_id") if isinstance(info, dict) else None
    return value if isinstance(value, str) and value else None


def is_check_cell(cell):
    """A cell marked as a check: nbgrader's grade=True, or the tag "check"."""
    info = cell.get("metadata", {}).get("nbgrader")
    return (isinstance(info, dict) and info.get("grade") is True) or CHECK_TAG in _tags(cell)


def course_name(path):
    """The course name of a solution notebook: its file name without .ipynb, e.g. 04-training-with-sgd."""
    return Path(path).stem


def assignment(notebook, name):
    """The official exercises of a solution notebook: [(answer index, check index, exercise id)], in order.

    The id is the answer cell's nbgrader grade_id when it has one (so it never changes once written),
    else `{name}-{cell id}` (nbformat's cell id; the exercise's number where a cell has none). The check's
    id is the exercise's id + "-check". CourseError for an exercise without a check or a repeated id.
    """
    found, seen = [], {}
    for number, (answer, check) in enumerate(exercises(notebook), start=1):
        cell = notebook.cells[answer]
        ident = grade_id(cell) or re.sub(r"[^A-Za-z0-9_-]", "-", f"{name}-{cell.get('id') or f'exercise{number}'}")
        if check is None:
            raise CourseError(f"{name}: exercise {number} (cell {answer}) has no check cell after it")
        if ident in seen:
            raise CourseError(f"{name}: cells {seen[ident]} and {answer} carry the same exercise id {ident}")
        seen[ident] = answer
        found.append((answer, check, ident))
    return found


def nbgrader_metadata(ident, check):
    """nbgrader's cell metadata: an answer cell (solution, not graded) or its check (graded, locked, 1 point)."""
    if check:
        return {"grade": True, "grade_id": ident + CHECK_SUFFIX, "locked": True, "points": 1,
                "schema_version": NBGRADER_SCHEMA_VERSION, "solution": False}
    return {"grade": False, "grade_id": ident, "locked": False, "schema_version": NBGRADER_SCHEMA_VERSION,
            "solution": True}


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

"""The course's notebooks as assignments: the student edition built from the solution edition, and grading.

The solution edition lives in `notebooks/solutions/NN-name.ipynb` (what CI executes). In
its code cells each exercise's answer sits between two marker lines (the nbgrader
convention)::

    def pairs_for(k):
        ### BEGIN SOLUTION
        return k + 1
        ### END SOLUTION

The student edition `notebooks/NN-name.ipynb` is the same notebook with every such region
replaced, at the marker's indentation, by::

        # YOUR CODE HERE
        raise NotImplementedError()

and all outputs cleared. An exercise is a code cell holding a solution region; its check
is the next code cell, which asserts against the package without printing the answer. In
the student edition the two cells carry the tags "exercise" and "check", so grading
still finds them after the student has written an answer.

    python -m rnnlm.course build            # (re)write the student edition; idempotent
    python -m rnnlm.course build --check    # exit 1 if the student edition is out of date
    rnnlm check notebooks/03-bptt-and-gradient-checking.ipynb    # grade one notebook

Grading (`grade_notebook`) runs the notebook top to bottom in a fresh kernel and reports,
for each exercise, whether its cell and its check ran without error. When the notebook
has a counterpart in the solution edition, the checks are taken from there, so editing a
check cell does not change the grade. Running notebooks needs `nbclient` and `ipykernel`
(the `course` and `dev` extras); building needs only `nbformat`.
"""

import copy
import numbers
import re
from dataclasses import dataclass, field
from pathlib import Path

from rnnlm.errors import RnnlmError

BEGIN_SOLUTION = "### BEGIN SOLUTION"
END_SOLUTION = "### END SOLUTION"
PLACEHOLDER = ("# YOUR CODE HERE", "raise NotImplementedError()")
# Cell tags of the student edition: where the answers go, and the cells that grade them.
EXERCISE_TAG, CHECK_TAG = "exercise", "check"
NOTEBOOK_VERSION = 4
# From a source checkout: rnnlm/course/__init__.py -> the repository root.
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


def student_notebook(notebook):
    """A copy of `notebook` with solutions replaced by the placeholder, exercise and check cells
    tagged "exercise" and "check", and every output cleared."""
    student = copy.deepcopy(notebook)
    for answer, check in exercises(student):
        for index, tag in ((answer, EXERCISE_TAG), (check, CHECK_TAG)):
            if index is not None:
                tags = student.cells[index].metadata.setdefault("tags", [])
                if tag not in tags:
                    tags.append(tag)
    for cell in student.cells:
        if cell.cell_type != "code":
            continue
        cell.source = strip_solutions(cell.source)
        cell.outputs = []
        cell.execution_count = None
    return student


def answer_fingerprint(value):
    """The first 16 hex digits of SHA-256 of the answer's canonical text.

    Numbers are written with 5 significant digits (`format(float(value), ".5g")`), so a
    value computed another way, with different round-off, has the same fingerprint;
    anything else is written with `str`. A check cell compares fingerprints when the
    expected answer is a hand-worked number that nothing in the package computes.
    """
    import hashlib
    if isinstance(value, numbers.Number) and not isinstance(value, bool):
        text = format(float(value), ".5g")
    else:
        text = str(value)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def check_answer(value, fingerprint):
    """AssertionError (without the answer in it) unless `value`'s fingerprint is `fingerprint`."""
    if answer_fingerprint(value) != fingerprint:
        raise AssertionError(f"{value!r} is not the expected answer")


def _read(path):
    import nbformat
    try:
        return nbformat.read(str(path), as_version=NOTEBOOK_VERSION)
    except FileNotFoundError:
        raise CourseError(f"notebook not found: {path}") from None
    except (OSError, ValueError) as exc:  # nbformat's read errors are ValueErrors
        raise CourseError(f"{path} is not a readable notebook: {exc}") from None


def student_text(solution_path):
    """The student edition of one solution notebook, as the exact text `build` writes."""
    import nbformat
    try:
        student = student_notebook(_read(solution_path))
    except CourseError as exc:
        raise CourseError(f"{solution_path}: {exc}") from None
    return nbformat.writes(student) + "\n"


def solution_notebooks(solutions_dir=SOLUTIONS_DIR):
    return sorted(Path(solutions_dir).glob("*.ipynb"))


def build(solutions_dir=SOLUTIONS_DIR, student_dir=STUDENT_DIR, check_only=False):
    """Write the student edition of every solution notebook; returns the paths that changed.

    Deterministic and idempotent: a second run changes nothing. check_only: write nothing,
    only report which student notebooks are missing or differ from what would be built.
    """
    changed = []
    for path in solution_notebooks(solutions_dir):
        target = Path(student_dir) / path.name
        text = student_text(path)
        if not target.is_file() or target.read_text(encoding="utf-8") != text:
            changed.append(target)
            if not check_only:
                target.write_text(text, encoding="utf-8")
    return changed


# --------------------------------------------------------------------- grading

@dataclass(frozen=True)
class ExerciseResult:
    """One exercise: its number, its cell index, and what went wrong ('' when it passed)."""

    number: int
    cell: int
    error: str = ""

    @property
    def passed(self):
        return not self.error

    def __str__(self):
        if self.passed:
            return f"exercise {self.number} (cell {self.cell}): passed"
        return f"exercise {self.number} (cell {self.cell}): not passed: {self.error}"


@dataclass(frozen=True)
class GradeReport:
    """Per-exercise results for one notebook; truthy when every exercise passed."""

    path: str
    results: list = field(default_factory=list)
    other_errors: list = field(default_factory=list)

    def __bool__(self):
        return bool(self.results) and all(r.passed for r in self.results)

    def __str__(self):
        done = sum(r.passed for r in self.results)
        lines = [f"{self.path}: {done} of {len(self.results)} exercises passed"]
        lines += [f"  {r}" for r in self.results]
        lines += [f"  note: {e}" for e in self.other_errors]
        return "\n".join(lines)


def _error_text(outputs):
    for output in outputs:
        if output.get("output_type") == "error":
            value = output.get("evalue", "")
            return f"{output.get('ename', 'Error')}" + (f": {value}" if value else "")
    return ""


def run_notebook(notebook, working_dir, timeout=180, on_cell=None):
    """Execute `notebook` in place in a fresh python3 kernel, errors kept in the outputs, never raised.

    on_cell: called as on_cell(index, cell) after each code cell.
    """
    try:
        from nbclient import NotebookClient
    except ImportError:
        raise CourseError("running a notebook needs nbclient and ipykernel; "
                          "install the course tools with: pip install -e \".[course]\"") from None
    client = NotebookClient(notebook, timeout=timeout, kernel_name="python3", allow_errors=True,
                            resources={"metadata": {"path": str(working_dir)}})
    with client.setup_kernel():
        for index, cell in enumerate(notebook.cells):
            if cell.cell_type != "code":
                continue
            client.execute_cell(cell, index)
            if on_cell is not None:
                on_cell(index, cell)
    return notebook


def grade_notebook(path, solutions_dir=SOLUTIONS_DIR, timeout=180):
    """Run a student's notebook and grade each exercise. Returns a GradeReport."""
    path = Path(path)
    notebook = _read(path)
    found = exercises(notebook)
    if not found:
        raise CourseError(f"{path} has no exercises (no '{BEGIN_SOLUTION}' region; "
                          "grade the student edition, notebooks/NN-name.ipynb, or its solutions)")
    reference = Path(solutions_dir) / path.name
    if reference.is_file() and reference.resolve() != path.resolve():
        official = exercises(_read(reference))
        solution_cells = _read(reference).cells
        if len(official) == len(found):  # the same assignment: use its checks, not the notebook's own
            for (_, check), (_, official_check) in zip(found, official):
                if check is not None and official_check is not None:
                    notebook.cells[check].source = solution_cells[official_check].source
    run_notebook(notebook, path.parent.resolve(), timeout=timeout)
    results, graded = [], set()
    for number, (cell, check) in enumerate(found, start=1):
        error = _error_text(notebook.cells[cell].outputs)
        if not error and check is not None:
            error = _error_text(notebook.cells[check].outputs)
        results.append(ExerciseResult(number, cell, error))
        graded.update({cell, check})
    other = [f"cell {i}: {_error_text(c.outputs)}" for i, c in enumerate(notebook.cells)
             if c.cell_type == "code" and i not in graded and _error_text(c.outputs)]
    return GradeReport(path=str(path), results=results, other_errors=other)

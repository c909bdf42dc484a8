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

Neither destroys nor hangs: `build` refuses a student folder that is the solutions folder or
lies inside it, and student notebooks that are links to solutions or special files, then
writes each notebook atomically; grading refuses a FIFO or a file that is not a notebook in
one line, and a cell that kills the kernel or runs out of time fails its exercise (the later
ones are reported as not run).
"""

import copy
import json
import math
import numbers
import os
import re
import stat
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from rnnlm.errors import RnnlmError
from rnnlm.io.safe_files import atomic_write, write_protected

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

    Nothing is written when the student folder is the solutions folder or lies inside it, or
    when a student notebook to replace is a symlink, a hard link to a solution notebook, or not
    a regular file (`_check_targets`); the folders are compared by inode, so another spelling or
    a link is caught too. (The student folder may contain the solutions folder: the repository's
    notebooks/ holds notebooks/solutions/.) Each notebook is written atomically, so a full disk
    leaves the old file, never a truncated one.
    """
    solutions = solution_notebooks(solutions_dir)
    _check_folders(solutions_dir, student_dir, check_only)
    planned = [(Path(student_dir) / path.name, student_text(path)) for path in solutions]
    changed = [target for target, text in planned if not _same_text(target, text)]
    if check_only:
        return changed
    _check_targets(changed, solutions)
    for target, text in planned:
        if target in changed:
            try:
                with atomic_write(target) as handle:
                    handle.write(text.encode("utf-8"))
            except OSError as exc:
                raise CourseError(f"cannot write {target}: {exc.strerror or exc}; it is as it was") from None
    return changed


def _same_text(target, text):
    """True when `target` is a regular file holding exactly `text` (a FIFO is never opened: it would block)."""
    try:
        return stat.S_ISREG(os.stat(target).st_mode) and target.read_text(encoding="utf-8") == text
    except (OSError, UnicodeDecodeError):
        return False


def _identity(path):
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_dev, info.st_ino


def _check_folders(solutions_dir, student_dir, check_only=False):
    """CourseError when --solutions is no folder, or the student folder is it or lies inside it (by inode)."""
    solutions_dir, student_dir = Path(solutions_dir), Path(student_dir)
    if not solutions_dir.is_dir():
        raise CourseError(f"--solutions {solutions_dir} is not a folder; give the folder of solution notebooks")
    if not check_only and not student_dir.is_dir():
        raise CourseError(f"--out {student_dir} is not an existing folder; create it or choose another --out")
    solutions_id = _identity(solutions_dir)
    try:
        folders = [student_dir.resolve(), *student_dir.resolve().parents]
    except RuntimeError:  # a symlink loop (Python < 3.13)
        raise CourseError(f"--out {student_dir} is a symlink loop; give a real folder") from None
    for depth, folder in enumerate(folders):
        if _identity(folder) == solutions_id:
            if depth == 0:
                raise CourseError(f"--out {student_dir} is the solutions folder {solutions_dir}; building there "
                                  "would replace every solution notebook by its student edition: choose another --out")
            raise CourseError(f"--out {student_dir} is inside the solutions folder {solutions_dir}; keep the student "
                              "edition out of the solutions: choose another --out")


def _check_targets(targets, solutions):
    """CourseError, before anything is written, for a student notebook that is a symlink (writing it would
    write through to whatever it points to), a hard link to a solution notebook, not a regular file, or
    write-protected (as `cp` refuses it; `rnnlm train --out` does the same)."""
    solution_ids = {_identity(path): path for path in solutions}
    for target in targets:
        try:
            info = os.lstat(target)
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise CourseError(f"cannot check {target}: {exc.strerror or exc}") from None
        if stat.S_ISLNK(info.st_mode):
            pointed = os.readlink(target)
            raise CourseError(f"{target} is a symlink (to {pointed}); writing the student edition through it would "
                              "replace that file: remove the link, or choose another --out")
        if not stat.S_ISREG(info.st_mode):
            raise CourseError(f"{target} is not a regular file (a folder, pipe, device or socket); remove it, "
                              "or choose another --out")
        solution = solution_ids.get((info.st_dev, info.st_ino))
        if solution is not None:
            raise CourseError(f"{target} is the solution notebook {solution} under another name (a hard link); "
                              f"remove {target} and build again, or choose another --out")
        if write_protected(target):
            raise CourseError(f"{target} is write-protected; chmod u+w it or choose another --out")


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

    on_cell: called as on_cell(index, cell) after each code cell. A cell that kills the kernel
    (os._exit, a crash) or runs past `timeout` seconds gets an error output saying so, and the
    cells after it are not run (see `_run_cells`).
    """
    _run_cells(notebook, working_dir, timeout, on_cell)
    return notebook


def _run_cells(notebook, working_dir, timeout=180, on_cell=None):
    """`run_notebook`'s work; returns None when every code cell ran, else (index, why) of the cell after
    which nothing more could run: the kernel died in it, or it did not finish within `timeout` seconds."""
    try:
        from nbclient import NotebookClient
        from nbclient.exceptions import CellTimeoutError, DeadKernelError
    except ImportError:
        raise CourseError("running a notebook needs nbclient and ipykernel; "
                          "install the course tools with: pip install -e \".[course]\"") from None
    if timeout is not None and not timeout > 0:
        raise CourseError(f"the time allowed per cell must be a positive number of seconds, got {timeout}")
    limit = None if timeout is None else math.ceil(timeout)  # nbclient counts whole seconds
    client = NotebookClient(notebook, timeout=limit, kernel_name="python3", allow_errors=True,
                            resources={"metadata": {"path": str(working_dir)}})
    # The kernel process's own stderr is not the notebook's (cells' output comes over Jupyter's channels):
    # it holds only the kernel's log, e.g. a socket traceback when it is shut down after a timeout.
    with client.setup_kernel(stderr=subprocess.DEVNULL):
        for index, cell in enumerate(notebook.cells):
            if cell.cell_type != "code":
                continue
            try:
                client.execute_cell(cell, index)
            except DeadKernelError:
                error = ("KernelDied", "the kernel died while running this cell (os._exit, a crash, or out of memory)")
                summary = f"the kernel died in cell {index}"
            except CellTimeoutError:
                error = ("CellTimeout", f"this cell did not finish within {limit} seconds (rnnlm check --timeout)")
                summary = f"cell {index} ran past the {limit}-second limit per cell"
            else:
                if on_cell is not None:
                    on_cell(index, cell)
                continue
            cell.outputs.append({"output_type": "error", "ename": error[0], "evalue": error[1], "traceback": []})
            return index, summary
    return None


def grade_notebook(path, solutions_dir=SOLUTIONS_DIR, timeout=180):
    """Run a student's notebook and grade each exercise. Returns a GradeReport.

    An exercise whose cells were not run, because an earlier cell killed the kernel or ran out
    of time, is not passed; the report says which cell stopped the run and why.
    """
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
    stopped = _run_cells(notebook, path.parent.resolve(), timeout=timeout)
    last_run = stopped[0] if stopped is not None else len(notebook.cells)
    results, graded = [], set()
    for number, (cell, check) in enumerate(found, start=1):
        error = _error_text(notebook.cells[cell].outputs)
        if not error and check is not None:
            error = _error_text(notebook.cells[check].outputs)
        if not error and max(cell, check if check is not None else cell) > last_run:
            error = f"not run: {stopped[1]}"
        results.append(ExerciseResult(number, cell, error))
        graded.update({cell, check})
    other = [f"cell {i}: {_error_text(c.outputs)}" for i, c in enumerate(notebook.cells)
             if c.cell_type == "code" and i not in graded and _error_text(c.outputs)]
    if stopped is not None:
        other.append(f"{stopped[1]}; the cells after it were not run")
    return GradeReport(path=str(path), results=results, other_errors=other)

"""Grading a notebook: run it in a fresh kernel with the official checks, report each exercise.
"""

import math
import numbers
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from rnnlm.course.notebooks import BEGIN_SOLUTION, CourseError, SOLUTIONS_DIR, _read, exercises


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

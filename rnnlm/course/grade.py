"""Grading a notebook: run it in a fresh kernel with the official checks, report each exercise.
"""

import copy
import math
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from rnnlm.course.notebooks import (BEGIN_SOLUTION, CHECK_SUFFIX, EXERCISE_TAG, CourseError, SOLUTIONS_DIR, _read,
                                    _tags, assignment, course_name, exercises, grade_id, has_solution, is_check_cell)


@dataclass(frozen=True)
class ExerciseResult:
    """One exercise: its number, its cell index in the graded notebook (None when no cell carries its
    id), what went wrong ('' when it passed), and its id."""

    number: int
    cell: int = None
    error: str = ""
    ident: str = ""

    @property
    def passed(self):
        return not self.error

    def __str__(self):
        where = f"cell {self.cell}" if self.cell is not None else f"id {self.ident}"
        if self.passed:
            return f"exercise {self.number} ({where}): passed"
        return f"exercise {self.number} ({where}): not passed: {self.error}"


@dataclass(frozen=True)
class GradeReport:
    """Per-exercise results for one notebook; truthy when every exercise passed. `official`: the
    solution notebook whose checks graded it."""

    path: str
    results: list = field(default_factory=list)
    other_errors: list = field(default_factory=list)
    official: str = ""

    def __bool__(self):
        return bool(self.results) and all(r.passed for r in self.results)

    def summary(self):
        done = sum(r.passed for r in self.results)
        return f"{self.path}: {done} of {len(self.results)} exercises passed"

    def __str__(self):
        lines = [self.summary()]
        lines += [f"  {r}" for r in self.results]
        lines += [f"  note: {e}" for e in self.other_errors]
        return "\n".join(lines)


def _error_text(outputs):
    for output in outputs:
        if output.get("output_type") == "error":
            value = output.get("evalue", "")
            return f"{output.get('ename', 'Error')}" + (f": {value}" if value else "")
    return ""


# The graded run's kernel: one BLAS thread (on a busy machine OpenBLAS's worker threads wait on each other,
# and a training cell runs many times slower), no plotting window.
KERNEL_ENVIRONMENT = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def kernel_environment(base=None):
    """The environment of the graded run's kernel: `base` (os.environ) with BLAS held to one thread and
    matplotlib's non-interactive backend unless MPLBACKEND is set."""
    env = dict(os.environ if base is None else base)
    env.update(KERNEL_ENVIRONMENT)
    env.setdefault("MPLBACKEND", "Agg")
    return env


def run_notebook(notebook, working_dir, timeout=180, on_cell=None):
    """Execute `notebook` in place in a fresh python3 kernel, errors kept in the outputs, never raised.

    on_cell: called as on_cell(index, cell) after each code cell. A cell that kills the kernel
    (os._exit, a crash) or runs past `timeout` seconds gets an error output saying so; a fresh
    kernel then runs the cells before it again and goes on after it (see `_run_cells`).
    """
    _run_cells(notebook, working_dir, timeout, on_cell)
    return notebook


# How many times one run starts a fresh kernel after a cell killed the kernel or ran out of time.
RESTARTS = 3


def _run_cells(notebook, working_dir, timeout=180, on_cell=None, log=None, restarts=RESTARTS, name_of=None):
    """`run_notebook`'s work; returns None when every code cell ran, else (index, why) of the cell after
    which nothing more could run.

    A cell that kills the kernel or does not finish within `timeout` seconds gets an error output
    saying so; then a fresh kernel runs the code cells before it again (their outputs are kept from
    the first run; the cells that failed so are skipped) and the run goes on after it, so the cells
    that do not depend on it are still graded, and those that do fail (a NameError, say). After
    `restarts` such restarts, or when the cells before fail on the rerun, the run stops. `log`: a
    list that gets one line per restart. name_of(index): how the messages name a cell ("cell 7").
    """
    try:
        from nbclient import NotebookClient
        from nbclient.exceptions import CellTimeoutError, DeadKernelError
        import nbformat
    except ImportError:
        raise CourseError("running a notebook needs nbclient and ipykernel; "
                          "install the course tools with: pip install -e \".[course]\"") from None
    if timeout is not None and not timeout > 0:
        raise CourseError(f"the time allowed per cell must be a positive number of seconds, got {timeout}")
    limit = None if timeout is None else math.ceil(timeout)  # nbclient counts whole seconds
    log = [] if log is None else log
    name_of = name_of or (lambda index: f"cell {index}")
    code = [i for i, cell in enumerate(notebook.cells) if cell.cell_type == "code"]
    failed, position = [], 0

    def execute(client, cell, index):
        """None when the cell ran (errors or not), else (error name, text, summary)."""
        try:
            client.execute_cell(cell, index)
        except DeadKernelError:
            return ("KernelDied", "the kernel died while running this cell (os._exit, a crash, or out of memory)",
                    f"the kernel died in {name_of(index)}")
        except CellTimeoutError:
            return ("CellTimeout", f"this cell did not finish within {limit} seconds (rnnlm check --timeout)",
                    f"{name_of(index)} ran past the {limit}-second limit per cell")
        return None

    while position < len(code):
        client = NotebookClient(notebook, timeout=limit, kernel_name="python3", allow_errors=True,
                                resources={"metadata": {"path": str(working_dir)}})
        # The kernel process's own stderr is not the notebook's (cells' output comes over Jupyter's channels):
        # it holds only the kernel's log: ipykernel's "running over TCP without encryption" warning on every
        # start, a socket traceback when it is shut down after a timeout.
        with client.setup_kernel(stderr=subprocess.DEVNULL, env=kernel_environment()):
            if failed:  # a fresh kernel: the cells before the one that failed, again, outputs thrown away
                for index in code[:position]:
                    if index in {f for f, _ in failed}:
                        continue
                    again = nbformat.from_dict(copy.deepcopy(dict(notebook.cells[index])))
                    trouble = execute(client, again, index)
                    if trouble is not None:
                        log.append(f"after a fresh kernel, {name_of(index)} failed on its second run ({trouble[2]})")
                        return index, failed[-1][1]
            while position < len(code):
                index = code[position]
                position += 1
                cell = notebook.cells[index]
                trouble = execute(client, cell, index)
                if trouble is not None:
                    cell.outputs.append({"output_type": "error", "ename": trouble[0], "evalue": trouble[1],
                                         "traceback": []})
                    failed.append((index, trouble[2]))
                if on_cell is not None:
                    on_cell(index, cell)
                if trouble is not None:
                    break
        if failed and position < len(code) and failed[-1][0] == code[position - 1]:
            if len(failed) > restarts:
                return failed[-1][0], f"{failed[-1][1]}, after {restarts} fresh kernels"
            log.append(f"{failed[-1][1]}: a fresh kernel ran the cells before it again and went on after it")
    return None


# ---------------------------------------------------------------- which official checks grade a notebook

NO_SOLUTIONS = ("the solution edition (notebooks/solutions/), which holds the official checks, is not here "
                "(a plain `pip install .` leaves it out): grade from a checkout of the course")


def _inside(path, folder):
    try:
        return Path(path).resolve().parent == Path(folder).resolve()
    except OSError:
        return False


def find_official(path, notebook, solutions_dir=SOLUTIONS_DIR):
    """(solution notebook path, its notebook) whose checks grade `notebook`, read from `path`.

    Found by the exercise ids the notebook's cells carry (whatever the file is called), else by its
    course name: the file name is the solution's, or starts with it (`01-data-and-vocabulary-Copy1`).
    A notebook of the solution edition itself is graded with its own checks. CourseError, in one line,
    when no solution notebook matches or the solution edition is not installed.
    """
    path = Path(path)
    if _inside(path, solutions_dir) and any(has_solution(c.source) for c in notebook.cells if c.cell_type == "code"):
        return path, notebook
    solutions = sorted(Path(solutions_dir).glob("*.ipynb")) if Path(solutions_dir).is_dir() else []
    if not solutions:
        raise CourseError(f"cannot grade {path}: {NO_SOLUTIONS}")
    ids = {grade_id(c) for c in notebook.cells} - {None}
    best, best_overlap = None, 0
    for solution in solutions:
        official = {ident for _, _, ident in assignment(_read(solution), course_name(solution))}
        overlap = len(ids & (official | {i + CHECK_SUFFIX for i in official}))
        if overlap > best_overlap:
            best, best_overlap = solution, overlap
    if best is None:
        named = [s for s in solutions if path.stem == s.stem or path.stem.startswith(s.stem)]
        best = max(named, key=lambda s: len(s.stem)) if named else None
    if best is None:
        raise CourseError(f"cannot grade {path}: no notebook of the course in {solutions_dir} matches it (by its "
                          "exercise ids or its name); grade your copy of a course notebook, notebooks/NN-name.ipynb")
    return best, _read(best)


def graded_notebook(notebook, official, name):
    """The notebook to run: the student's cells with every check cell removed and, after the (last) cell
    carrying each exercise's id, the official check. Returns (notebook, plan, notes): plan holds, per
    official exercise, (number, id, [answer cells in the run], check cell in the run or None, why it
    cannot pass or ''); answer cell indices are those of the student's notebook mapped to the run."""
    exercises_official = assignment(official, name)
    ids = [ident for _, _, ident in exercises_official]
    check_ids = {ident + CHECK_SUFFIX for ident in ids}
    carries_ids = any(grade_id(c) is not None for c in notebook.cells)
    notes = []
    owner = {}  # student cell index -> exercise id
    if carries_ids:
        for index, cell in enumerate(notebook.cells):
            ident = grade_id(cell)
            if ident in ids and cell.cell_type == "code":
                owner[index] = ident
            elif ident is not None and ident not in check_ids:
                notes.append(f"cell {index} carries the id {ident}, which is no exercise of {name}; it is not graded")
    else:  # a copy made before exercises carried ids: the cells tagged "exercise" (or holding markers), by position
        answers = [i for i, c in enumerate(notebook.cells) if c.cell_type == "code"
                   and (EXERCISE_TAG in _tags(c) or has_solution(c.source)) and not is_check_cell(c)]
        if len(answers) == len(ids):
            owner = dict(zip(answers, ids))
            notes.append("this copy's cells carry no exercise ids (an older copy): exercises matched by position")
        else:
            notes.append(f"this copy's cells carry no exercise ids, and it has {len(answers)} exercise cells where "
                         f"{name} has {len(ids)}: take a fresh copy of the notebook and paste your answers in")
    by_id = {ident: [i for i, owned in owner.items() if owned == ident] for ident in ids}
    dropped = {i for i, c in enumerate(notebook.cells) if i not in owner
               and (is_check_cell(c) or grade_id(c) in check_ids)}
    if notebook is official:  # the solution edition graded by itself: its checks, found as `assignment` finds them
        owner = {answer: ident for answer, _, ident in exercises_official}
        dropped = {check for _, check, _ in exercises_official}
        notes = []
    run = copy.deepcopy(notebook)
    cells, where = [], {}
    for index, cell in enumerate(run.cells):
        if index in dropped:
            continue
        where[index] = len(cells)
        cells.append(cell)
        ident = owner.get(index)
        if ident is not None and index == max(by_id[ident]):
            _, check, _ = exercises_official[ids.index(ident)]
            official_check = copy.deepcopy(official.cells[check])
            official_check.outputs, official_check.execution_count = [], None
            official_check["id"] = f"official-check-{ids.index(ident) + 1}"
            cells.append(official_check)
    run.cells = cells
    plan = []
    for number, ident in enumerate(ids, start=1):
        mine = by_id[ident]
        why = ""
        if not mine:
            why = (f"no cell carries this exercise's id {ident} (was its cell deleted, or its answer pasted into a "
                   "new cell?); put your answer back into the exercise cell of a fresh copy")
        elif len(mine) > 1:
            why = (f"cells {', '.join(map(str, mine))} all carry this exercise's id (a duplicated cell); delete "
                   "the copies so that one cell holds your answer")
        check = where[max(mine)] + 1 if mine else None
        plan.append((number, ident, [where[i] for i in mine], check, why, max(mine) if mine else None))
    return run, plan, notes


def grade_notebook(path, solutions_dir=SOLUTIONS_DIR, timeout=180, on_exercise=None, on_start=None):
    """Run a student's notebook with the official checks and grade each exercise. Returns a GradeReport.

    The exercises are the solution notebook's (`find_official`), matched to the student's cells by the
    id in their metadata; every check cell of the notebook is replaced by the official check, so
    editing, duplicating, deleting or adding cells cannot change the grade of an exercise, only fail it
    with the reason. on_start(solution path, number of exercises): called once the official checks
    are found, before the run; on_exercise(result): called with each ExerciseResult as soon as it is known.

    An exercise whose cells were not run, because an earlier cell killed the kernel or ran out
    of time, is not passed; the report says which cell stopped the run and why.
    """
    path = Path(path)
    notebook = _read(path)
    official_path, official = find_official(path, notebook, solutions_dir)
    name = course_name(official_path)
    if not exercises(official):
        raise CourseError(f"{path} has no exercises (no '{BEGIN_SOLUTION}' region; "
                          "grade the student edition, notebooks/NN-name.ipynb, or its solutions)")
    run, plan, notes = graded_notebook(notebook, official, name)
    if on_start is not None:
        on_start(official_path, len(plan))
    results, pending = {}, list(plan)

    def result_of(entry, last_run, stopped):
        number, ident, answers, check, why, student_cell = entry
        error = why
        for index in [*answers, check]:
            if not error and index is not None:
                error = _error_text(run.cells[index].outputs)
        if not error and check is not None and check > last_run:
            error = f"not run: {stopped}"
        return ExerciseResult(number, student_cell, error, ident)

    def report(result):
        results[result.number] = result
        if on_exercise is not None:
            on_exercise(result)

    def on_cell(index, cell):
        while pending and (pending[0][3] is None or pending[0][3] <= index):
            report(result_of(pending.pop(0), index, ""))

    origin = {}  # run index -> the student's cell index, for the notes
    student_index = 0
    for index, cell in enumerate(run.cells):
        if not str(cell.get("id", "")).startswith("official-check-"):
            while student_index < len(notebook.cells) and notebook.cells[student_index].get("id") != cell.get("id"):
                student_index += 1
            origin[index] = student_index
            student_index += 1

    def name_of(index):
        if index in origin:
            return f"cell {origin[index]}"
        return f"the check of exercise {run.cells[index]['id'].rsplit('-', 1)[-1]}"

    restarts = []
    stopped = _run_cells(run, path.parent.resolve(), timeout=timeout, on_cell=on_cell, log=restarts,
                         name_of=name_of)
    last_run = stopped[0] if stopped is not None else len(run.cells)
    for entry in pending:
        report(result_of(entry, last_run, stopped[1] if stopped else ""))
    graded = {i for entry in plan for i in [*entry[2], entry[3]] if i is not None}
    other = notes + [f"cell {origin.get(i, i)}: {_error_text(c.outputs)}" for i, c in enumerate(run.cells)
                     if c.cell_type == "code" and i not in graded and _error_text(c.outputs)]
    other += restarts
    if stopped is not None:
        other.append(f"{stopped[1]}; the cells after it were not run")
    return GradeReport(path=str(path), results=[results[n] for n in sorted(results)], other_errors=other,
                       official=str(official_path))

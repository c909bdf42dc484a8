"""Editing a notebook cannot change its grade (issue 18): exercises are matched to the official checks by
the id in their cell metadata, whatever the file is called and whatever cells were added, copied or
untagged; a misspelled marker never reaches the student edition."""

import re
from pathlib import Path

import nbformat
import pytest

from rnnlm.cli import main
from rnnlm.course import build, grade
from rnnlm.course.notebooks import BEGIN_SOLUTION, END_SOLUTION, assignment, grade_id, misspelled_markers

ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS = ROOT / "notebooks" / "solutions"
# How many exercises each notebook has: adding or losing one (a misspelled marker loses one) must be deliberate.
EXERCISE_COUNTS = {"01-data-and-vocabulary": 3, "02-forward-propagation-and-loss": 6,
                   "03-bptt-and-gradient-checking": 4, "04-training-with-sgd": 3, "05-the-fast-path": 3,
                   "06-generating-text": 3, "07-vanishing-and-exploding-gradients": 3, "08-gru-and-lstm": 4,
                   "09-text-as-a-stream": 2, "10-big-vocabularies": 1, "11-trees-and-dynamic-batching": 3}


def _solution():
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("**Exercise 1.** Make x 42.", id="m"),
                nbformat.v4.new_code_cell(f"{BEGIN_SOLUTION}\nx = 42\n{END_SOLUTION}", id="a"),
                nbformat.v4.new_code_cell("assert x == 42, 'x is not yet right'", id="c"),
                nbformat.v4.new_code_cell(f"{BEGIN_SOLUTION}\ny = 1\n{END_SOLUTION}", id="b"),
                nbformat.v4.new_code_cell("assert y == 1, 'y is not yet right'", id="e")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


@pytest.fixture
def course(tmp_path):
    solutions = tmp_path / "solutions"
    solutions.mkdir()
    nbformat.write(_solution(), solutions / "01-tiny.ipynb")
    return solutions


def _student():
    return build.student_notebook(_solution(), "01-tiny")


def _grade(notebook, path, solutions):
    nbformat.write(notebook, path)
    seen = []
    report = grade.grade_notebook(path, solutions_dir=solutions, on_exercise=seen.append)
    assert [r.number for r in seen] == [r.number for r in report.results]  # one progress call per exercise
    return report


needs_kernel = pytest.mark.skipif(not all(__import__("importlib").util.find_spec(m) for m in ("nbclient", "ipykernel")),
                                  reason="needs nbclient and ipykernel")


def test_every_exercise_and_check_cell_carries_an_id():
    student = _student()
    assert [grade_id(c) for c in student.cells] == [None, "01-tiny-a", "01-tiny-a-check", "01-tiny-b", "01-tiny-b-check"]
    assert student.cells[2].metadata["nbgrader"] == {"grade": True, "grade_id": "01-tiny-a-check", "locked": True,
                                                     "points": 1, "schema_version": 3, "solution": False}
    assert student.cells[1].metadata["nbgrader"]["solution"] is True


@needs_kernel
def test_a_renamed_copy_with_weakened_checks_is_graded_by_the_official_ones(course, tmp_path):
    student = _student()
    student.cells[1].source = "x = 41"
    student.cells[3].source = "y = 1"
    for check in (2, 4):
        student.cells[check].source = "print('correct')"
    report = _grade(student, tmp_path / "01-tiny-Copy1.ipynb", course)
    assert report.official == str(course / "01-tiny.ipynb")
    assert [r.passed for r in report.results] == [False, True] and "x is not yet right" in report.results[0].error
    # any name: found by the ids its cells carry
    report = _grade(student, tmp_path / "my-homework.ipynb", course)
    assert [r.passed for r in report.results] == [False, True]


@needs_kernel
def test_duplicated_extra_and_untagged_cells_do_not_change_the_grade(course, tmp_path):
    student = _student()
    student.cells[3].source = "y = 1"
    extra = nbformat.v4.new_code_cell("z = 0", id="x1")
    extra.metadata["tags"] = ["exercise"]  # an extra cell tagged exercise is not an exercise
    copy = nbformat.from_dict(dict(student.cells[3]))
    copy["id"] = "dup"
    student.cells[2].metadata["tags"] = []  # a check cell that lost its tag (its nbgrader metadata stays)
    student.cells[2].metadata.pop("nbgrader")
    student.cells[2].source = "print('correct')"
    student.cells = student.cells + [extra, copy]
    report = _grade(student, tmp_path / "01-tiny.ipynb", course)
    assert len(report.results) == 2, report  # the official count, whatever the notebook holds
    assert not report.results[0].passed and "NotImplementedError" in report.results[0].error
    assert not report.results[1].passed and "duplicated cell" in report.results[1].error
    assert "cells 3, 6 all carry" in report.results[1].error


@needs_kernel
def test_a_deleted_exercise_cell_is_reported_and_an_unknown_id_noted(course, tmp_path):
    student = _student()
    student.cells[1].source = "x = 42"
    del student.cells[3:5]
    stray = nbformat.v4.new_code_cell("w = 2", id="s")
    stray.metadata["nbgrader"] = {"grade_id": "from-another-notebook", "solution": True, "grade": False}
    student.cells.append(stray)
    report = _grade(student, tmp_path / "01-tiny.ipynb", course)
    assert report.results[0].passed and not report.results[1].passed
    assert "no cell carries this exercise's id 01-tiny-b" in report.results[1].error
    assert any("from-another-notebook" in note for note in report.other_errors)


@needs_kernel
def test_an_older_copy_without_ids_is_matched_by_position_with_the_official_checks(course, tmp_path):
    student = _student()
    for cell in student.cells:
        cell.metadata.pop("nbgrader", None)
    student.cells[1].source, student.cells[3].source = "x = 42", "y = 2"
    student.cells[4].source = "print('correct')"
    report = _grade(student, tmp_path / "01-tiny.ipynb", course)
    assert [r.passed for r in report.results] == [True, False]
    assert any("matched by position" in note for note in report.other_errors)


@needs_kernel
def test_the_graded_kernel_runs_blas_on_one_thread(course, tmp_path):
    student = _student()
    student.cells[1].source = "import os\nx = 42 if os.environ.get('OPENBLAS_NUM_THREADS') == '1' else 0"
    student.cells[3].source = "import os\ny = 1 if os.environ.get('OMP_NUM_THREADS') == '1' else 0"
    assert _grade(student, tmp_path / "01-tiny.ipynb", course)


def test_without_the_solution_edition_check_says_so_in_one_line(tmp_path, capsys):
    path = tmp_path / "01-tiny.ipynb"
    nbformat.write(_student(), path)
    assert main(["check", str(path), "--solutions", str(tmp_path / "not-installed")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "the solution edition (notebooks/solutions/)" in err and "is not here" in err


@pytest.mark.parametrize("line", ["### BEGIN SOLUTON", "## BEGIN SOLUTION", "### end solution", "#BEGIN SOLUTION",
                                  "    ###  BEGIN   SOLUTION", "### BEGN SOLUTION", "### END SOLUTIN"])
def test_build_refuses_a_misspelled_marker_in_one_line(tmp_path, capsys, line):
    solutions, out = tmp_path / "solutions", tmp_path / "student"
    solutions.mkdir()
    out.mkdir()
    nb = _solution()
    nb.cells[3].source = f"{line}\ny = 1\n{END_SOLUTION if 'BEGIN' in line.upper() else BEGIN_SOLUTION}"
    nbformat.write(nb, solutions / "01-tiny.ipynb")
    assert main(["course", "build", "--solutions", str(solutions), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "01-tiny, cell 3, line 1" in err and "looks like a solution marker" in err, err
    assert not list(out.iterdir())


@pytest.mark.parametrize("line", ["# end of the loop", "# Begin with the vocabulary", "### BEGIN SOLUTION",
                                  "    ### END SOLUTION  ", "# the solution is below", "x = 1  # END"])
def test_ordinary_comments_are_not_markers(line):
    assert misspelled_markers(line) == []


def test_each_notebook_has_its_pinned_number_of_exercises():
    found = {path.stem: len(assignment(nbformat.read(path, as_version=4), path.stem))
             for path in sorted(SOLUTIONS.glob("*.ipynb"))}
    assert found == EXERCISE_COUNTS


def test_exercise_ids_are_unique_across_the_course_and_valid_for_nbgrader():
    ids = [ident for path in sorted(SOLUTIONS.glob("*.ipynb"))
           for _, _, ident in assignment(nbformat.read(path, as_version=4), path.stem)]
    assert len(ids) == len(set(ids)) and all(re.fullmatch(r"[A-Za-z0-9_-]+", i) for i in ids)


@needs_kernel
def test_check_prints_one_line_per_exercise_and_no_kernel_log(course, tmp_path):
    import subprocess
    import sys
    path = tmp_path / "01-tiny.ipynb"
    student = _student()
    student.cells[1].source = "x = 42"
    nbformat.write(student, path)
    result = subprocess.run([sys.executable, "-m", "rnnlm", "check", str(path), "--solutions", str(course)],
                            capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert result.returncode == 1, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"grading {path}: 2 exercises, with the checks of {course / '01-tiny.ipynb'}"
    assert lines[1:3] == ["  exercise 1 (cell 1): passed", "  exercise 2 (cell 3): not passed: NotImplementedError"]
    assert "1 of 2 exercises passed" in lines[3]
    assert "eavesdropping" not in result.stderr and "Traceback" not in result.stderr, result.stderr


@needs_kernel
def test_a_hanging_exercise_fails_alone_and_what_depends_on_it_fails_too(course, tmp_path):
    student = _student()
    student.cells[1].source = "x = 42\nwhile True:\n    pass"  # an infinite loop
    student.cells[3].source = "y = x - 41"  # depends on the cell that hung
    student.cells.append(nbformat.v4.new_code_cell("z = 3", id="z"))
    path = tmp_path / "01-tiny.ipynb"
    nbformat.write(student, path)
    seen = []
    report = grade.grade_notebook(path, solutions_dir=course, timeout=2, on_exercise=seen.append)
    assert [str(r) for r in seen] == [str(r) for r in report.results]
    assert "CellTimeout: this cell did not finish within 2 seconds" in report.results[0].error
    assert "NameError" in report.results[1].error  # x was never set in the fresh kernel
    assert any("cell 1 ran past the 2-second limit per cell: a fresh kernel" in n for n in report.other_errors), report

"""The student edition: built from the solutions without drift, with every answer removed; grading."""

import os
import stat
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from rnnlm.course import build
from rnnlm.course import grade
from rnnlm.cli import main
from rnnlm.course.notebooks import BEGIN_SOLUTION, END_SOLUTION, CourseError, exercises, strip_solutions

from helpers import one_line_error, run

ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS = sorted((ROOT / "notebooks" / "solutions").glob("*.ipynb"))


def test_strip_solutions_keeps_indentation_and_the_code_around():
    source = "def f(k):\n    \"\"\"doc\"\"\"\n    ### BEGIN SOLUTION\n    return k + 1\n    ### END SOLUTION\nprint(f)"
    assert strip_solutions(source) == ("def f(k):\n    \"\"\"doc\"\"\"\n    # YOUR CODE HERE\n"
                                       "    raise NotImplementedError()\nprint(f)")
    two = f"{BEGIN_SOLUTION}\na = 1\n{END_SOLUTION}\nb = 2\n{BEGIN_SOLUTION}\nc = 3\n{END_SOLUTION}"
    assert strip_solutions(two).count("raise NotImplementedError()") == 2 and "b = 2" in strip_solutions(two)
    assert "a = 1" not in strip_solutions(two) and "c = 3" not in strip_solutions(two)


@pytest.mark.parametrize("source, message", [
    (f"{BEGIN_SOLUTION}\nx = 1", "never closed"),
    (f"x = 1\n{END_SOLUTION}", "without"),
    (f"{BEGIN_SOLUTION}\n{BEGIN_SOLUTION}\n{END_SOLUTION}", "inside another"),
])
def test_unbalanced_markers_are_refused(source, message):
    with pytest.raises(CourseError, match=message):
        strip_solutions(source)


def test_the_student_edition_in_the_repository_is_exactly_what_the_builder_makes():
    assert SOLUTIONS, "no solution notebooks"
    stale = build.build(check_only=True)
    assert not stale, f"out of date (run: rnnlm course build): {', '.join(p.name for p in stale)}"


@pytest.mark.parametrize("path", SOLUTIONS, ids=[p.stem for p in SOLUTIONS])
def test_student_notebook_has_every_exercise_blank_and_nothing_else_changed(path):
    solution = nbformat.read(path, as_version=4)
    student = nbformat.read(path.parent.parent / path.name, as_version=4)
    assert exercises(solution), f"{path.name} has no exercise"
    assert len(student.cells) == len(solution.cells)
    for index, (s, t) in enumerate(zip(solution.cells, student.cells)):
        assert t.cell_type == s.cell_type and t.get("id") == s.get("id")
        if s.cell_type == "code":
            assert BEGIN_SOLUTION not in t.source and not t.outputs
            assert t.source == strip_solutions(s.source), f"cell {index}"
        else:
            assert t.source == s.source
    assert exercises(student) == exercises(solution)  # found again by their tags
    for answer, check in exercises(solution):
        assert "raise NotImplementedError()" in student.cells[answer].source
        assert student.cells[check].source == solution.cells[check].source
        assert "check" in student.cells[check].metadata["tags"]


def test_build_is_idempotent_and_check_reports_a_stale_copy(tmp_path, capsys):
    solutions, out = tmp_path / "solutions", tmp_path / "student"
    solutions.mkdir()
    out.mkdir()
    nbformat.write(_assignment("x = 41 + 1"), solutions / "01-tiny.ipynb")
    assert main(["course", "build", "--solutions", str(solutions), "--out", str(out)]) == 0
    first = (out / "01-tiny.ipynb").read_bytes()
    assert b"41 + 1" not in first and b"NotImplementedError" in first
    assert main(["course", "build", "--solutions", str(solutions), "--out", str(out)]) == 0
    assert (out / "01-tiny.ipynb").read_bytes() == first
    assert "0 rewritten" in capsys.readouterr().out
    (out / "01-tiny.ipynb").write_text("{}")
    assert main(["course", "build", "--check", "--solutions", str(solutions), "--out", str(out)]) == 1
    assert "out of date" in capsys.readouterr().out


def _assignment(answer):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("**Exercise 1.** Make x 42.", id="m"),
                nbformat.v4.new_code_cell(f"{BEGIN_SOLUTION}\n{answer}\n{END_SOLUTION}", id="a"),
                nbformat.v4.new_code_cell("assert x == 42, 'not yet'\nprint('correct')", id="c"),
                nbformat.v4.new_code_cell("y = 1", id="d")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


def test_rnnlm_check_grades_each_exercise(tmp_path, capsys):
    pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    solutions = tmp_path / "solutions"
    solutions.mkdir()
    nbformat.write(_assignment("x = 42"), solutions / "01-tiny.ipynb")
    student = tmp_path / "01-tiny.ipynb"
    nbformat.write(build.student_notebook(_assignment("x = 42"), "01-tiny"), student)
    report = grade.grade_notebook(student, solutions_dir=solutions)
    assert not report and "NotImplementedError" in report.results[0].error
    answered = build.student_notebook(_assignment("x = 42"), "01-tiny")
    answered.cells[1].source = "x = 6 * 7"
    answered.cells.insert(2, nbformat.v4.new_code_cell("scratch = 1", id="s"))  # a cell the student added
    nbformat.write(answered, student)
    assert grade.grade_notebook(student, solutions_dir=solutions)
    # a student who weakens the check is still graded by the official one
    answered.cells[1].source = "x = 41"
    answered.cells[3].source = "print('correct')"
    nbformat.write(answered, student)
    report = grade.grade_notebook(student, solutions_dir=solutions)
    assert not report and "not yet" in report.results[0].error
    # the CLI: a notebook with no counterpart in notebooks/solutions/ is not graded with its own checks
    assert main(["check", str(student)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no notebook of the course in" in err, err


def test_rnnlm_check_refuses_a_notebook_without_exercises(tmp_path, capsys):
    plain = tmp_path / "plain.ipynb"
    nbformat.write(nbformat.v4.new_notebook(), plain)
    assert main(["check", str(plain)]) == 2
    assert "no notebook of the course" in capsys.readouterr().err
    assert main(["check", str(tmp_path / "missing.ipynb")]) == 2
    assert "not found" in capsys.readouterr().err


# --------------------------------------------------------------------- build: outputs that would destroy the solutions

def _course(tmp_path):
    solutions = tmp_path / "solutions"
    solutions.mkdir()
    nbformat.write(_assignment("x = 41 + 1"), solutions / "01-tiny.ipynb")
    nbformat.write(_assignment("x = 40 + 2"), solutions / "02-tiny.ipynb")
    return solutions


def _files(folder):
    return {p: p.read_bytes() for p in Path(folder).rglob("*") if p.is_file() and not p.is_symlink()}


def _one_line_error(capsys, argv, message):
    code, _, err = run(capsys, *argv)
    one_line_error(code, err, message)


@pytest.mark.parametrize("out, message", [
    ("{sol}", "is the solutions folder"),
    ("{sol}/.", "is the solutions folder"),
    ("{tmp}/link", "is the solutions folder"),  # a symlink to it: compared by inode, not by name
    ("{sol}/student", "is inside the solutions folder"),
])
def test_build_refuses_an_out_that_is_or_lies_inside_the_solutions(tmp_path, capsys, out, message):
    solutions = _course(tmp_path)
    (solutions / "student").mkdir()
    (tmp_path / "link").symlink_to(solutions)
    before = _files(tmp_path)
    _one_line_error(capsys, ["course", "build", "--solutions", solutions,
                             "--out", out.format(sol=solutions, tmp=tmp_path)], message)
    assert _files(tmp_path) == before


def test_build_into_a_folder_holding_the_solutions_is_the_repository_layout(tmp_path, capsys):
    solutions = _course(tmp_path)
    assert main(["course", "build", "--solutions", str(solutions), "--out", str(tmp_path)]) == 0
    assert b"NotImplementedError" in (tmp_path / "01-tiny.ipynb").read_bytes()
    assert b"41 + 1" in (solutions / "01-tiny.ipynb").read_bytes()


@pytest.mark.parametrize("kind, message", [("symlink", "is a symlink (to "),
                                           ("hardlink", "is the solution notebook"),
                                           ("folder", "is not a regular file"),
                                           ("read-only", "is write-protected; chmod u+w it or choose another --out")])
def test_build_refuses_a_student_notebook_that_is_a_solution_or_no_file(tmp_path, capsys, kind, message):
    solutions = _course(tmp_path)
    out = tmp_path / "student"
    out.mkdir()
    target, solution = out / "02-tiny.ipynb", solutions / "02-tiny.ipynb"
    {"symlink": lambda: target.symlink_to(solution), "hardlink": lambda: os.link(solution, target),
     "folder": target.mkdir, "read-only": lambda: (target.write_text("{}"), target.chmod(0o444))}[kind]()
    before = _files(tmp_path)
    _one_line_error(capsys, ["course", "build", "--solutions", solutions, "--out", out], message)
    assert _files(tmp_path) == before  # the solution kept its answer, and no other notebook was written either
    assert not (out / "01-tiny.ipynb").exists()


def python_m_rnnlm(*argv, timeout=60, **kwargs):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run([sys.executable, "-m", "rnnlm", *map(str, argv)], capture_output=True, text=True,
                          env=env, timeout=timeout, **kwargs)


def test_build_refuses_a_fifo_student_notebook_without_blocking(tmp_path):
    solutions = _course(tmp_path)
    out = tmp_path / "student"
    out.mkdir()
    os.mkfifo(out / "01-tiny.ipynb")
    result = python_m_rnnlm("course", "build", "--solutions", solutions, "--out", out, timeout=30)
    assert result.returncode == 2 and "is not a regular file" in result.stderr, result.stderr
    assert stat.S_ISFIFO(os.lstat(out / "01-tiny.ipynb").st_mode)


def test_a_full_disk_leaves_the_old_student_notebook_whole(tmp_path):
    """A file-size limit (RLIMIT_FSIZE; Python ignores SIGXFSZ, so writes past it fail with EFBIG) stands in
    for a full disk: the student notebook is too big to write, and the old one must stay as it was."""
    resource = pytest.importorskip("resource")
    solutions = tmp_path / "solutions"
    solutions.mkdir()
    big = _assignment("x = 42")
    big.cells.append(nbformat.v4.new_markdown_cell("padding " * 2000, id="p"))
    nbformat.write(big, solutions / "01-tiny.ipynb")
    out = tmp_path / "student"
    out.mkdir()
    old = nbformat.writes(build.student_notebook(_assignment("x = 42"), "01-tiny"))
    (out / "01-tiny.ipynb").write_text(old, encoding="utf-8")
    limit = len(old.encode()) + 2000

    def small_files():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    result = python_m_rnnlm("course", "build", "--solutions", solutions, "--out", out, preexec_fn=small_files)
    assert result.returncode == 2 and result.stderr.startswith("rnnlm: error: cannot write"), result.stderr
    assert result.stderr.count("\n") == 1 and "as it was" in result.stderr
    assert (out / "01-tiny.ipynb").read_text(encoding="utf-8") == old
    assert os.listdir(out) == ["01-tiny.ipynb"]  # no temporary file left


# --------------------------------------------------------------------- check: hangs, crashes, not notebooks

@pytest.mark.parametrize("value", ["0", "-1", "nan", "soon"])
def test_check_timeout_must_be_positive(tmp_path, capsys, value):
    _one_line_error(capsys, ["check", tmp_path / "missing.ipynb", f"--timeout={value}"],
                    f"--timeout must be a positive number of seconds, got '{value}'")


def test_check_refuses_a_fifo_without_blocking(tmp_path):
    os.mkfifo(tmp_path / "nb.ipynb")
    result = python_m_rnnlm("check", tmp_path / "nb.ipynb", timeout=30)
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert "is not a regular file" in result.stderr


@pytest.mark.parametrize("content, reason", [
    (b'{"cells": [{"cell_type": "code", "sou', "it is not valid JSON"),
    (b"print('hello')\n", "it is not valid JSON"),
    (b"", "it is not valid JSON"),
    (b"\xff\xfe\x00\x01", "it is not UTF-8 text"),
    (b"[1, 2]", "it holds a JSON list"),
    (b'{"cells": 5, "nbformat": 4, "nbformat_minor": 5, "metadata": {}}', "it holds an object without a list of cells"),
    (b'{"cells": [{"cell_type": "code"}], "nbformat": 4, "nbformat_minor": 5, "metadata": {}}',
     "The notebook is invalid and is missing an expected key"),
])
def test_check_refuses_a_file_that_is_not_a_notebook_in_one_line(tmp_path, capsys, content, reason):
    path = tmp_path / "nb.ipynb"
    path.write_bytes(content)
    _one_line_error(capsys, ["check", path], f"{path} is not a notebook: {reason}")
    _one_line_error(capsys, ["check", path], "open it in Jupyter and save it again")


def _two_exercises_solution(first="x = 42"):
    nb = _assignment(first)
    nb.cells += [nbformat.v4.new_code_cell(f"{BEGIN_SOLUTION}\ny = 1\n{END_SOLUTION}", id="b"),
                 nbformat.v4.new_code_cell("assert y == 1", id="e")]
    return nb


def _two_exercises(first, solutions=None):
    """The student edition of a two-exercise notebook 01-tiny; its solution written into `solutions`."""
    if solutions is not None:
        solutions.mkdir(exist_ok=True)
        nbformat.write(_two_exercises_solution(), solutions / "01-tiny.ipynb")
    return build.student_notebook(_two_exercises_solution(first), "01-tiny")


@pytest.mark.parametrize("answer, expected, argv", [
    ("import os; os._exit(1)", "KernelDied: the kernel died", []),
    ("import time; time.sleep(60)", "CellTimeout: this cell did not finish within 1 seconds", ["--timeout", "1"]),
])
def test_check_grades_a_notebook_whose_kernel_dies_or_hangs(tmp_path, capsys, answer, expected, argv):
    pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    student = tmp_path / "01-tiny.ipynb"
    notebook = _two_exercises("x = 42", tmp_path / "solutions")
    notebook.cells[1].source = answer
    notebook.cells[4].source = "y = 1"
    nbformat.write(notebook, student)
    assert main(["check", str(student), "--solutions", str(tmp_path / "solutions"), *argv]) == 1
    out, err = capsys.readouterr()
    # a fresh kernel runs the cells before the one that failed again, then goes on: exercise 2 is still graded
    assert "1 of 2 exercises passed" in out and expected in out, out
    assert "exercise 2 (cell 4): passed" in out and "Traceback" not in err
    assert "a fresh kernel ran the cells before it again" in out

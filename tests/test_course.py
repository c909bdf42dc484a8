"""The student edition: built from the solutions without drift, with every answer removed; grading."""

from pathlib import Path

import nbformat
import pytest

from rnnlm import course
from rnnlm.cli import main
from rnnlm.course import (BEGIN_SOLUTION, END_SOLUTION, CourseError, answer_fingerprint, check_answer, exercises,
                          strip_solutions)

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


def test_fingerprints_ignore_round_off_and_do_not_reveal():
    assert answer_fingerprint(0.5 ** 10) == answer_fingerprint(0.5 ** 10 * (1 + 1e-12))
    assert answer_fingerprint(0.5 ** 10) != answer_fingerprint(0.5 ** 9)
    check_answer(3, answer_fingerprint(3.0))
    with pytest.raises(AssertionError) as error:
        check_answer(4, answer_fingerprint(3))
    assert "3" not in str(error.value)


def test_the_student_edition_in_the_repository_is_exactly_what_the_builder_makes():
    assert SOLUTIONS, "no solution notebooks"
    stale = course.build(check_only=True)
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
    nbformat.write(course.student_notebook(_assignment("x = 42")), student)
    report = course.grade_notebook(student, solutions_dir=solutions)
    assert not report and "NotImplementedError" in report.results[0].error
    answered = course.student_notebook(_assignment("x = 42"))
    answered.cells[1].source = "x = 6 * 7"
    answered.cells.insert(2, nbformat.v4.new_code_cell("scratch = 1", id="s"))  # a cell the student added
    nbformat.write(answered, student)
    assert course.grade_notebook(student, solutions_dir=solutions)
    # a student who weakens the check is still graded by the official one
    answered.cells[1].source = "x = 41"
    answered.cells[3].source = "print('correct')"
    nbformat.write(answered, student)
    report = course.grade_notebook(student, solutions_dir=solutions)
    assert not report and "not yet" in report.results[0].error
    # the CLI: a notebook with no counterpart in notebooks/solutions/ is graded with its own checks
    assert main(["check", str(student)]) == 0
    assert "1 of 1 exercises passed" in capsys.readouterr().out


def test_rnnlm_check_refuses_a_notebook_without_exercises(tmp_path, capsys):
    plain = tmp_path / "plain.ipynb"
    nbformat.write(nbformat.v4.new_notebook(), plain)
    assert main(["check", str(plain)]) == 2
    assert "no exercises" in capsys.readouterr().err
    assert main(["check", str(tmp_path / "missing.ipynb")]) == 2
    assert "not found" in capsys.readouterr().err

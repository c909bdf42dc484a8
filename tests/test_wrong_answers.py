"""Wrong answers must fail, with a message that teaches (issue 18).

For every exercise of the course, tests/fixtures/answers/NN.py lists common wrong answers and one
correct answer written independently of the solution. Each notebook's code cells run once, in this
process and without a Jupyter kernel (the notebooks' own execution is tested in test_notebooks.py);
slow demonstration cells that no exercise needs are replaced by the fixture's STANDINS (None: not
run). At each exercise the answer cell's source is swapped for a fixture answer and the official
check cell (the solution's) runs on a copy of the namespace:

* every wrong answer must make the answer or the check raise, and the exception must carry a message
  (a bare AssertionError teaches nothing: `rnnlm check` shows only "AssertionError");
* the independent correct answer must pass.

The solution itself then runs in the main namespace, so the next exercises see the notebook's state.
"""

import contextlib
import importlib.util
import io
import textwrap
from pathlib import Path

import nbformat
import pytest

from rnnlm.course.notebooks import BEGIN_SOLUTION, END_SOLUTION, exercises

ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS = ROOT / "notebooks" / "solutions"
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "answers"
NOTEBOOKS = sorted(SOLUTIONS.glob("*.ipynb"))


def _fixture(number):
    spec = importlib.util.spec_from_file_location(f"answers_{number}", FIXTURES / f"{number}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run(source, namespace, name):
    with contextlib.redirect_stdout(io.StringIO()):
        exec(compile(source, name, "exec"), namespace)


def _swap(cell_source, answer):
    """The answer cell with each solution region replaced by the fixture's answer (a str, or a tuple of one
    str per region), indented like the region's BEGIN marker."""
    lines = cell_source.split("\n")
    begins = [i for i, line in enumerate(lines) if line.strip() == BEGIN_SOLUTION]
    ends = [i for i, line in enumerate(lines) if line.strip() == END_SOLUTION]
    parts = (answer,) if isinstance(answer, str) else tuple(answer)
    assert len(parts) == len(begins) == len(ends), "one answer per solution region"
    out, last = [], 0
    for begin, end, part in zip(begins, ends, parts):
        indent = lines[begin][:len(lines[begin]) - len(lines[begin].lstrip())]
        out += lines[last:begin] + [indent + line for line in textwrap.dedent(part).split("\n")]
        last = end + 1
    return "\n".join(out + lines[last:])


def _outcome(answer, check, namespace, name):
    """'' when answer and check ran, else 'ExceptionName: message'."""
    trial = dict(namespace)
    try:
        _run(answer, trial, f"{name} (answer)")
        _run(check, trial, f"{name} (check)")
    except Exception as exc:  # noqa: BLE001 - any failure of a wrong answer is a failure
        return f"{type(exc).__name__}: {exc}"
    return ""


def _package_functions():
    """What a check may switch off while a student's function runs (and must put back, even when the function
    fails): the functions and methods of the models and of rnnlm.nn's cells and output layers, by identity, and
    the cell registries' entries."""
    from rnnlm.models import fast, language_model, reference
    from rnnlm.nn import cells, fused, numerics, output, sequence
    owners = [reference.RNNNumpy, fast.FastRNN, language_model.LanguageModel, output.ClassSoftmax,
              cells, fused, numerics, output, sequence]
    found = {(owner.__name__, name): value for owner in owners for name, value in vars(owner).items()
             if callable(value) and not isinstance(value, type)}
    found.update({("CELLS", kind): entry for kind, entry in cells.CELLS.items()})
    found.update({("FUSED", kind): entry for kind, entry in fused.FUSED.items()})
    return found


@pytest.fixture(autouse=True)
def _quiet_matplotlib(monkeypatch):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    monkeypatch.setattr(plt, "show", lambda *args, **kwargs: None)
    yield
    plt.close("all")


def test_every_exercise_has_wrong_answers_and_a_correct_one():
    for path in NOTEBOOKS:
        found = exercises(nbformat.read(path, as_version=4))
        answers = _fixture(path.name[:2]).ANSWERS
        assert sorted(answers) == list(range(1, len(found) + 1)), path.name
        for number, entry in answers.items():
            correct = (entry["correct"],) if isinstance(entry["correct"], str) else entry["correct"]
            assert entry["wrong"] and all(part.strip() for part in correct), (path.name, number)
            labels = [label for label, _ in entry["wrong"]]
            assert len(set(labels)) == len(labels), (path.name, number, "two wrong answers with one label")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name[:2] for p in NOTEBOOKS])
def test_wrong_answers_fail_with_a_message_and_a_correct_one_passes(path, monkeypatch):
    monkeypatch.chdir(path.parent.parent)   # the notebooks run in notebooks/
    notebook = nbformat.read(path, as_version=4)
    fixture = _fixture(path.name[:2])
    standins = getattr(fixture, "STANDINS", {})
    found = exercises(notebook)
    by_answer = {answer: (number, check) for number, (answer, check) in enumerate(found, start=1)}
    last = max(check for _, check in found)
    namespace = {"__name__": "__main__"}
    before = _package_functions()
    problems, checks, graded = [], set(check for _, check in found), []
    for index, cell in enumerate(notebook.cells[:last + 1]):
        if cell.cell_type != "code" or index in checks:
            continue
        if index in by_answer:
            number, check = by_answer[index]
            entry = fixture.ANSWERS[number]
            name = f"{path.name[:2]} exercise {number}"
            graded.append(number)
            check_source = notebook.cells[check].source
            for label, wrong in entry["wrong"]:
                outcome = _outcome(_swap(cell.source, wrong), check_source, namespace, name)
                if not outcome:
                    problems.append(f"{name}: the wrong answer {label!r} passes")
                elif outcome.endswith(": ") or outcome.split(":", 1)[1].strip() in ("", "None"):
                    problems.append(f"{name}: the wrong answer {label!r} fails without a message ({outcome})")
            outcome = _outcome(_swap(cell.source, entry["correct"]), check_source, namespace, name)
            if outcome:
                problems.append(f"{name}: the independent correct answer fails: {outcome}")
            _run(cell.source, namespace, f"{name} (solution)")
            _run(check_source, namespace, f"{name} (solution's check)")
            continue
        source = standins.get(index, cell.source)
        if source is not None:
            _run(source, namespace, f"{path.name} cell {index}")
    assert graded == sorted(fixture.ANSWERS), f"exercises graded: {graded}"
    assert not problems, "\n".join(problems)
    after = _package_functions()
    changed = sorted(".".join(key) for key in before.keys() | after.keys() if before.get(key) is not after.get(key))
    assert not changed, f"a check left the package's functions switched off or replaced: {', '.join(changed)}"

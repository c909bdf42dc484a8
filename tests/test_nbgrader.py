"""The course works with nbgrader out of the box (issue 18 C): `rnnlm course build` gives every exercise and
check cell nbgrader's metadata, so nbgrader's own API generates the assignment from the solution edition,
validate fails on a blank notebook, and autograde gives the solutions full points. Skipped only when
nbgrader is not installed (it is in the course and dev extras). Two notebooks are executed (01 and 10,
the quick ones); generate_assignment takes the whole course."""

import os
import shutil
import sys
from pathlib import Path

import pytest

nbgrader = pytest.importorskip("nbgrader")
pytestmark = pytest.mark.filterwarnings("ignore:Object of type:Warning")  # nbgrader's own SQLAlchemy use

ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS = ROOT / "notebooks" / "solutions"
GRADED = ("01-data-and-vocabulary", "10-big-vocabularies")
ASSIGNMENT, STUDENT = "rnnlm", "alice"


@pytest.fixture
def course(tmp_path, monkeypatch):
    """An nbgrader course folder holding a copy of the solution edition as source/rnnlm/."""
    # nbgrader runs its database migrations with the `alembic` command of the Python running the tests
    monkeypatch.setenv("PATH", os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    monkeypatch.setenv("PYTHONPATH", str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "1")
    monkeypatch.chdir(tmp_path)
    shutil.copytree(SOLUTIONS, tmp_path / "source" / ASSIGNMENT)
    return tmp_path


def _api(root):
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config import Config
    config = Config()
    config.CourseDirectory.root = str(root)
    config.CourseDirectory.db_assignments = [{"name": ASSIGNMENT}]
    config.CourseDirectory.db_students = [{"id": STUDENT}]
    config.ExecutePreprocessor.timeout = 300
    return NbGraderAPI(coursedir=CourseDirectory(config=config), config=config)


def test_nbgrader_generates_validates_and_autogrades_the_course(course):
    from nbgrader.api import Gradebook
    from nbgrader.validator import Validator
    api = _api(course)
    result = api.generate_assignment(ASSIGNMENT, force=True, create=True)
    assert result["success"], result.get("log") or result.get("error")
    released = sorted(p.name for p in (course / "release" / ASSIGNMENT).glob("*.ipynb"))
    assert released == sorted(p.name for p in SOLUTIONS.glob("*.ipynb"))

    validator = Validator()
    blank = validator.validate(str(course / "release" / ASSIGNMENT / f"{GRADED[1]}.ipynb"))
    assert blank.get("failed"), blank  # nbgrader's blank: validate says it fails
    ours = validator.validate(str(ROOT / "notebooks" / f"{GRADED[1]}.ipynb"))
    assert ours.get("failed"), ours  # and so it does on rnnlm's own student edition

    submitted = course / "submitted" / STUDENT / ASSIGNMENT
    submitted.mkdir(parents=True)
    for name in GRADED:
        shutil.copy(SOLUTIONS / f"{name}.ipynb", submitted)
    result = api.autograde(ASSIGNMENT, STUDENT, force=True, create=True)
    assert result["success"], result.get("log") or result.get("error")
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        for name in GRADED:
            graded = gradebook.find_submission_notebook(name, ASSIGNMENT, STUDENT)
            assert graded.max_score > 0 and graded.score == graded.max_score, (name, graded.score, graded.max_score)

"""Execute every solution notebook top to bottom in a fresh kernel; any error fails the test.

The notebooks are part of the test suite on purpose: their exercise cells assert the
reader's answers against the package, so a change to the package that breaks the
course breaks the build. In the same kernel, after the notebook has run, each exercise
is blanked as in the student edition (`rnnlm.course.notebooks.strip_solutions`) and its check
cell must then fail: a check that passes without an answer is a defect. Each notebook runs with notebooks/ as its working directory,
a non-interactive matplotlib backend, and the "python3" kernel of the Python running
pytest (jupyter_client starts that interpreter for the native kernel), so the kernel
imports the same rnnlm as the tests.
"""

import os
from pathlib import Path

import ast

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from rnnlm.course.notebooks import exercises, strip_solutions

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks" / "solutions"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
CELL_TIMEOUT_SECONDS = 180
# One BLAS thread per kernel unless the caller chose otherwise. On a machine shared with other
# jobs, OpenBLAS's worker threads wait on each other: notebook 4 measured 15 s single-threaded
# and 90 s with two threads while another process kept one core busy.
BLAS_THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
COURSE = ("01-data-and-vocabulary", "02-forward-propagation-and-loss", "03-bptt-and-gradient-checking",
          "04-training-with-sgd", "05-the-fast-path", "06-generating-text",
          "07-vanishing-and-exploding-gradients", "08-gru-and-lstm",
          "09-text-as-a-stream", "10-big-vocabularies", "11-trees-and-dynamic-batching")
# the corpus comes from rnnlm.data.corpus.find_corpus(), which works offline without ../shared
FORBIDDEN_IN_CELLS = ("shared/", "http://", "https://", "urllib", "requests", "download(")


def test_the_course_is_complete():
    missing = sorted(set(COURSE) - {p.stem for p in NOTEBOOKS})
    assert not missing, f"notebooks missing from {NOTEBOOK_DIR}: {', '.join(missing)}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_needs_no_network_and_no_shared_folder(path):
    notebook = nbformat.read(path, as_version=4)
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type == "code":
            found = [word for word in FORBIDDEN_IN_CELLS if word in cell.source]
            assert not found, f"{path.name}, cell {index}: {found}; use rnnlm.data.corpus.find_corpus() instead"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_without_errors(path, monkeypatch):
    # the kernel inherits this process's environment: no window, no display needed
    monkeypatch.setenv("MPLBACKEND", "Agg")
    for variable in BLAS_THREAD_VARIABLES:
        if variable not in os.environ:
            monkeypatch.setenv(variable, "1")
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(notebook, timeout=CELL_TIMEOUT_SECONDS, kernel_name="python3",
                            resources={"metadata": {"path": str(NOTEBOOK_DIR)}})
    with client.setup_kernel():
        for index, cell in enumerate(notebook.cells):
            if cell.cell_type == "code":
                _run(client, cell, index, path)
        for number, (answer, check) in enumerate(exercises(notebook), start=1):
            assert check is not None, f"{path.name}: exercise {number} (cell {answer}) has no check cell after it"
            _check_fails_on_the_blank(client, notebook.cells[answer], notebook.cells[check], path, number)


def _run(client, cell, index, path):
    try:
        client.execute_cell(cell, index)
    except CellExecutionError as error:
        pytest.fail(f"{path.name} failed:\n{error}", pytrace=False)


def _bound_names(source):
    """Names a cell's top-level code assigns, defines or imports (they must not survive from the solution)."""
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
    return names


def _check_fails_on_the_blank(client, answer, check, path, number):
    """Forget the answer's names, run the student's blank cell, then the check: it must raise.
    Afterwards the solution runs again, so the next exercise starts from the solved state."""
    forget = nbformat.v4.new_code_cell(f"for _name in {sorted(_bound_names(answer.source))!r}:\n"
                                       "    globals().pop(_name, None)")
    blank = nbformat.v4.new_code_cell(strip_solutions(answer.source))
    check_again = nbformat.v4.new_code_cell(check.source)
    client.execute_cell(forget, 0)
    for cell in (blank, check_again):
        try:
            client.execute_cell(cell, 0)
        except CellExecutionError:
            pass
    error = next((o for o in check_again.outputs if o.get("output_type") == "error"), None)
    assert error is not None, f"{path.name}, exercise {number}: the check passes on the student's blank"
    for cell in (answer, check):
        _run(client, nbformat.v4.new_code_cell(cell.source), 0, path)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_committed_notebook_is_light(path):
    # outputs are produced by running, not stored: keeps diffs readable and the repository small
    notebook = nbformat.read(path, as_version=4)
    stored = sum(len(str(cell.get("outputs", ""))) for cell in notebook.cells if cell.cell_type == "code")
    assert stored < 20_000, f"{path.name} stores {stored} characters of outputs; clear them before committing"

"""Execute every notebook in notebooks/ top to bottom in a fresh kernel; any error fails the test.

The notebooks are part of the test suite on purpose: their exercise cells assert the
reader's answers against the package, so a change to the package that breaks the
course breaks the build. Each notebook runs with notebooks/ as its working directory,
a non-interactive matplotlib backend, and the "python3" kernel of the Python running
pytest (jupyter_client starts that interpreter for the native kernel), so the kernel
imports the same rnnlm as the tests.
"""

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
CELL_TIMEOUT_SECONDS = 180
# One BLAS thread per kernel unless the caller chose otherwise. On a machine shared with other
# jobs, OpenBLAS's worker threads wait on each other: notebook 4 measured 15 s single-threaded
# and 90 s with two threads while another process kept one core busy.
BLAS_THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
COURSE = ("01-data-and-vocabulary", "02-forward-propagation-and-loss", "03-bptt-and-gradient-checking",
          "04-training-with-sgd", "05-the-fast-path", "06-generating-text",
          "07-vanishing-and-exploding-gradients", "08-gru-and-lstm")
# the corpus comes from rnnlm.corpus.find_corpus(), which works offline without ../shared
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
            assert not found, f"{path.name}, cell {index}: {found}; use rnnlm.corpus.find_corpus() instead"


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
    try:
        client.execute()
    except CellExecutionError as error:
        pytest.fail(f"{path.name} failed:\n{error}", pytrace=False)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_committed_notebook_is_light(path):
    # outputs are produced by running, not stored: keeps diffs readable and the repository small
    notebook = nbformat.read(path, as_version=4)
    stored = sum(len(str(cell.get("outputs", ""))) for cell in notebook.cells if cell.cell_type == "code")
    assert stored < 20_000, f"{path.name} stores {stored} characters of outputs; clear them before committing"

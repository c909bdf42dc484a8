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


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_without_errors(path, monkeypatch):
    # the kernel inherits this process's environment: no window, no display needed
    monkeypatch.setenv("MPLBACKEND", "Agg")
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

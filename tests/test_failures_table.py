"""docs/failures.md's table of every case tried and docs/failures_table.py's case list cannot drift apart.

Fast: reads the script's CASES and the doc; runs nothing (`python docs/failures_table.py --write` does).
"""

import importlib.util
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _script():
    spec = importlib.util.spec_from_file_location("failures_table", REPO / "docs" / "failures_table.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _documented_commands(script):
    return [row.split(" | ")[0].removeprefix("| ") for row in script.documented_rows()]


def test_every_case_in_the_script_is_a_row_of_the_doc():
    script = _script()
    documented = _documented_commands(script)
    missing = [script.shown_command(case) for case in script.CASES if script.shown_command(case) not in documented]
    assert not missing, f"cases not in docs/failures.md (run python docs/failures_table.py --write): {missing}"


def test_every_row_of_the_doc_is_a_case_of_the_script_in_the_same_order():
    script = _script()
    assert _documented_commands(script) == [script.shown_command(case) for case in script.CASES]


def test_the_case_list_is_well_formed():
    script = _script()
    script.check_cases()  # every fixture named is built, no command twice
    for case in script.CASES:
        assert len(case) in (2, 3) and all(isinstance(field, str) and field for field in case), case
        argv = script.split_case(case)[1]
        assert argv and "…" not in argv, case

"""benchmarks/bench_fast.py --grid: the shapes it measures, and a clean skip without PyTorch (no timing here)."""

import importlib.util
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_fast.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_fast", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_grid_covers_every_cell_hidden_size_batch_and_vocabulary(bench):
    shapes = bench.grid_shapes()
    assert len(shapes) == 3 * 3 * 2 * 2
    assert {(cell, H) for cell, H, *_ in shapes} == {(c, h) for c in ("rnn", "gru", "lstm") for h in (100, 256, 512)}
    for cell, H, B, T, C, E in shapes:
        assert (B, T) in ((32, 64), (128, 32))
        assert E == (64 if C == 65 else H)
    assert set(bench.grid_shapes(quick=True)) <= set(shapes)


def test_grid_without_torch_says_so_and_stops(bench, monkeypatch, capsys):
    monkeypatch.setattr(bench, "optional_torch", lambda: None)
    bench.main(["--grid", "--quick"])
    assert "PyTorch not installed" in capsys.readouterr().out

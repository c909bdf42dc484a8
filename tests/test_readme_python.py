"""The README's Python section runs as written (issue 20: a Python API a newcomer can find).

The block after `<!-- readme-python -->` is executed from a scratch folder whose `tests/` is the
repository's, so its paths read as from the repository root and its model.npz lands outside the
checkout. Its sizes are already small (the 24-comment fixture, hidden 32, 5 epochs): about a second.
"""

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MARKER = "<!-- readme-python -->"


def readme_python_block():
    lines = (REPO / "README.md").read_text(encoding="utf-8").splitlines()
    start = lines.index(MARKER)
    assert lines[start + 1].strip() == "```python", f"README.md:{start + 1}: {MARKER} must precede a ```python block"
    end = lines.index("```", start + 2)
    return "\n".join(lines[start + 2:end])


def test_the_readme_python_section_runs(tmp_path, monkeypatch, capsys):
    (tmp_path / "tests").symlink_to(REPO / "tests", target_is_directory=True)
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "readme"}
    exec(compile(readme_python_block(), "README.md (Python section)", "exec"), namespace)
    out = capsys.readouterr().out
    assert "Kept 67 words seen at least 2 times" in out          # what the README's notes say
    assert "FastRNN validation perplexity" in out and "LanguageModel validation perplexity" in out
    assert (tmp_path / "model.npz").is_file()
    fast, X_valid, Y_valid = namespace["fast"], namespace["X_valid"], namespace["Y_valid"]
    # rnnlm.train held out exactly the sentences the block's split_train_valid names, and trained on the rest
    last = namespace["states"][fast].history[-1]
    assert len(X_valid) == 5 and last.tokens == sum(len(y) for y in namespace["Y"])
    assert abs(last.valid_loss - fast.mean_loss(X_valid, Y_valid)) < 1e-5
    assert last.monitored == "train"  # 51 held-out tokens: under min_valid_tokens, as the notes say
    # the sums and means the README's notes describe
    tokens = sum(len(y) for y in Y_valid)
    assert abs(fast.total_loss(X_valid, Y_valid) / tokens - fast.mean_loss(X_valid, Y_valid)) < 1e-9
    loss_sum, _ = fast.total_loss_and_gradients(X_valid, Y_valid)
    assert abs(loss_sum - fast.total_loss(X_valid, Y_valid)) < 1e-3 * tokens
    assert namespace["loaded"].vocabulary == namespace["corpus"].vocabulary

"""The commands the docs mark runnable still print what the docs quote (issue 20: docs drift).

A block is runnable when the line before its ```bash fence is `<!-- runnable -->`:

    <!-- runnable -->
    ```bash
    rnnlm evaluate tests/fixtures/comments.csv
    ```

    ```
    ...
    perplexity: 41.32
    ```

Each `rnnlm ...` line of the block runs in-process (`rnnlm.cli.main.main`), in order, in a fresh
folder where `tests/` is the repository's, so paths read as from the repository root and anything
written stays out of the checkout. The plain ``` block right after it, if any, is the expected
output: each of its lines must be a whole line of the commands' output (stdout and stderr), in
order; `...` stands for anything (a path, a line left out). So a changed default, bundled model or
message shows up here, not in a reader's terminal. Only small fixtures and the bundled model:
offline and a few seconds.
"""

import os
import re
import shlex
from pathlib import Path

import pytest

from rnnlm.cli.main import main

REPO = Path(__file__).resolve().parents[1]
MARKER = "<!-- runnable -->"
DOCUMENTS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def runnable_blocks(path):
    """[(line number, commands, expected lines)] of the runnable blocks of one Markdown file."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks = []
    for i, line in enumerate(lines):
        if line.strip() != MARKER:
            continue
        assert i + 1 < len(lines) and lines[i + 1].strip() == "```bash", \
            f"{path.name}:{i + 1}: {MARKER} must be followed by a ```bash block"
        end = lines.index("```", i + 2)
        commands, pending = [], ""
        for text in lines[i + 2:end]:
            text = text.strip()
            if text.endswith("\\"):
                pending += text[:-1] + " "
                continue
            text = (pending + text).strip()
            pending = ""
            if text and not text.startswith("#"):
                assert text.startswith("rnnlm "), f"{path.name}:{i + 1}: only rnnlm commands run here: {text!r}"
                commands.append(shlex.split(text, comments=True)[1:])
        expected = []
        after = end + 1
        while after < len(lines) and not lines[after].strip():
            after += 1
        if after < len(lines) and lines[after].strip() == "```":
            close = lines.index("```", after + 1)
            expected = [t for t in lines[after + 1:close] if t.strip()]
        blocks.append((i + 1, commands, expected))
    return blocks


BLOCKS = [(path, number, commands, expected) for path in DOCUMENTS
          for number, commands, expected in runnable_blocks(path)]


def line_pattern(expected):
    """An expected line as a regular expression: literal, except `...` for anything."""
    return re.compile(".*".join(re.escape(part) for part in expected.strip().split("...")))


def test_the_docs_mark_their_runnable_commands():
    """The blocks this test exists for are still marked (a lost marker would silently test nothing)."""
    marked = {path.name for path, *_ in BLOCKS}
    assert {"README.md", "cli.md", "datasets.md"} <= marked
    assert all(commands for _, _, commands, _ in BLOCKS)


@pytest.mark.parametrize("path, number, commands, expected", BLOCKS,
                         ids=[f"{p.name}:{n}" for p, n, _, _ in BLOCKS])
def test_a_runnable_block_prints_what_the_docs_quote(tmp_path, capsys, monkeypatch, path, number, commands, expected):
    (tmp_path / "tests").symlink_to(REPO / "tests", target_is_directory=True)
    monkeypatch.chdir(tmp_path)
    output = []
    for argv in commands:
        code = main(argv)
        out, err = capsys.readouterr()
        assert code == 0, f"{path.name}:{number}: rnnlm {' '.join(argv)} exited {code}: {err}"
        output += (out + err).splitlines()
    position = 0
    for line in expected:
        if line.strip() == "...":
            continue
        pattern = line_pattern(line)
        while position < len(output) and not pattern.fullmatch(output[position].strip()):
            position += 1
        assert position < len(output), (f"{path.name}:{number} quotes {line!r}, which the commands no longer "
                                        f"print (in order); they printed:\n" + "\n".join(output))
        position += 1
    assert not os.path.exists(REPO / "poems.npz")  # written in the scratch folder, not the checkout

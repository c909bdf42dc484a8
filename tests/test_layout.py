"""The package layout is a promise: each folder is a layer, and imports only flow downwards.

Read from the source with `ast` (nothing is imported), so the test sees imports inside
functions too, the ones written lazily to dodge a cycle.
"""

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "rnnlm"

# Bottom to top. A module may import its own layer and the layers below it, never above.
LAYERS = [
    ("foundations", ["rnnlm.errors", "rnnlm.config", "rnnlm.version", "rnnlm.wording"]),
    ("nn", ["rnnlm.nn"]),
    ("data", ["rnnlm.data"]),
    ("models", ["rnnlm.models"]),
    ("training", ["rnnlm.training"]),
    ("io", ["rnnlm.io"]),
    ("course", ["rnnlm.course"]),
    ("cli", ["rnnlm.cli", "rnnlm.__main__", "rnnlm.course.__main__"]),  # entry points sit with the CLI
]
MAX_MODULE_LINES = 500


def module_name(path):
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules():
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imported_modules(path, known):
    """Every rnnlm module `path` imports, resolved to a module name in `known` (relative imports included)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    here = module_name(path)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(base + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            # `from rnnlm.io import checkpoint` imports the module rnnlm.io.checkpoint
            names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base
                     for alias in node.names]
        else:
            continue
        for name in names:
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name.startswith("rnnlm") and name != here:
                found.add(name)
    return found


def layer_of(name):
    """(index, layer name) of the layer whose longest prefix matches `name`; (None, None) for none."""
    matches = [(len(p), index, layer) for index, (layer, prefixes) in enumerate(LAYERS)
               for p in prefixes if name == p or name.startswith(p + ".")]
    if not matches:
        return None, None
    _, index, layer = max(matches)
    return index, layer


@pytest.fixture(scope="module")
def graph():
    known = modules()
    return {name: imported_modules(path, known) for name, path in known.items()}


def test_every_module_belongs_to_a_layer(graph):
    homeless = [name for name in graph if name != "rnnlm" and layer_of(name)[0] is None]
    assert not homeless, f"modules outside every layer folder: {homeless}; move them or add the layer to LAYERS"


def test_imports_only_flow_downwards(graph):
    upward = []
    for name, imports in graph.items():
        if name == "rnnlm":  # the package's public face re-exports from every layer
            continue
        mine, my_layer = layer_of(name)
        for target in sorted(imports):
            theirs, their_layer = layer_of(target)
            if target == "rnnlm":
                upward.append(f"{name} imports the package root (import from the module that defines it)")
            elif theirs is not None and theirs > mine:
                upward.append(f"{name} ({my_layer}) imports {target} ({their_layer})")
    assert not upward, "upward imports:\n" + "\n".join(upward)


def test_no_import_cycles(graph):
    cycles, state, stack = [], {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if target == "rnnlm":
                continue
            if state.get(target) == "open":
                cycles.append(" -> ".join(stack[stack.index(target):] + [target]))
            elif target not in state:
                visit(target)
        stack.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state and node != "rnnlm":
            visit(node)
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_modules_stay_readable_in_size():
    long = [f"{module_name(p)}: {n} lines" for p in sorted(PACKAGE.rglob("*.py"))
            if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES]
    assert not long, f"modules over {MAX_MODULE_LINES} lines (split them by job): {long}"


def test_the_checker_sees_an_upward_import(tmp_path):
    """The rules above can fail: a planted upward import and a planted cycle are both caught."""
    root = tmp_path / "rnnlm"
    (root / "nn").mkdir(parents=True)
    (root / "cli").mkdir()
    for path, text in {"__init__.py": "", "nn/__init__.py": "", "cli/__init__.py": "",
                       "nn/cells.py": "def f():\n    from ..cli import main\n",
                       "cli/main.py": "from rnnlm.nn import cells\n"}.items():
        (root / path).write_text(text)
    global PACKAGE
    saved, PACKAGE = PACKAGE, root
    try:
        known = modules()
        found = {name: imported_modules(path, known) for name, path in known.items()}
    finally:
        PACKAGE = saved
    assert found["rnnlm.nn.cells"] == {"rnnlm.cli.main"}
    assert found["rnnlm.cli.main"] == {"rnnlm.nn.cells"}
    assert layer_of("rnnlm.nn.cells")[0] < layer_of("rnnlm.cli.main")[0]


MAX_FUNCTION_LINES = 80
# The deliberately slow reading copies are written out loop by loop for reading, not for size.
READING_COPIES = {"rnnlm.models.reference", "rnnlm.models.tree_recursive"}


def test_functions_stay_readable_in_size():
    long = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if module_name(path) in READING_COPIES:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long.append(f"{module_name(path)}.{node.name}: {lines} lines")
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines (split them into named steps): {long}"


ARCHITECTURE = PACKAGE.parent / "docs" / "architecture.md"


def test_the_architecture_page_lists_every_module_in_its_folder():
    """docs/architecture.md has one table per folder and one row per module; it cannot drift from the tree."""
    text = ARCHITECTURE.read_text()
    sections = re.split(r"^### ", text, flags=re.M)[1:]
    documented = set()
    for section in sections:
        folder = re.search(r"`rnnlm/(\w*)/?`", section.splitlines()[0])
        if folder is None:
            continue
        prefix = f"rnnlm.{folder.group(1)}." if folder.group(1) else "rnnlm."
        documented |= {prefix + name for name in re.findall(r"^\| `(\w+)\.py` \|", section, flags=re.M)}
    actual = {name for name, path in modules().items() if path.name not in ("__init__.py", "__main__.py")}
    assert not actual - documented, f"modules missing from docs/architecture.md: {sorted(actual - documented)}"
    assert not documented - actual, f"docs/architecture.md lists modules that do not exist: {sorted(documented - actual)}"


def test_the_architecture_picture_shows_the_layers_this_test_enforces():
    picture = ARCHITECTURE.read_text().split("```")[1]
    drawn = [line.split()[0] for line in picture.splitlines() if line.strip() and line.strip() != "|"]
    assert drawn == [layer for layer, _ in reversed(LAYERS)], drawn

"""Building the student edition from the solution edition: every solution region blanked, outputs
cleared, exercise and check cells tagged; written atomically, never over the solutions.
"""

import copy
import os
import stat
from pathlib import Path

from rnnlm.course.notebooks import (BEGIN_SOLUTION, CHECK_TAG, CourseError, END_SOLUTION, EXERCISE_TAG, SOLUTIONS_DIR,
                                    STUDENT_DIR, _read, assignment, course_name, misspelled_markers,
                                    nbgrader_metadata, strip_solutions)
from rnnlm.io.safe_files import atomic_write, write_protected


def check_markers(notebook, where="notebook"):
    """CourseError, in one line naming the cell and line, for a line that looks like a solution marker
    but is not one (`### BEGIN SOLUTON` would leave the answer in the student edition)."""
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type == "code":
            for line_number, line in misspelled_markers(cell.source):
                raise CourseError(f"{where}, cell {index}, line {line_number}: {line!r} looks like a solution marker "
                                  f"but is not one; the markers are exactly {BEGIN_SOLUTION!r} and {END_SOLUTION!r}")


def with_metadata(notebook, name):
    """A copy of `notebook` whose exercise and check cells carry nbgrader's metadata (grade_id from
    `assignment`) and the tags "exercise" and "check"."""
    marked = copy.deepcopy(notebook)
    for answer, check, ident in assignment(marked, name):
        for index, tag, is_check in ((answer, EXERCISE_TAG, False), (check, CHECK_TAG, True)):
            metadata = marked.cells[index].metadata
            metadata["nbgrader"] = nbgrader_metadata(ident, is_check)
            tags = metadata.setdefault("tags", [])
            if tag not in tags:
                tags.append(tag)
    return marked


def student_notebook(notebook, name):
    """A copy of solution notebook `notebook` (course name `name`, e.g. 04-training-with-sgd) with solutions
    replaced by the placeholder, exercise and check cells tagged "exercise" and "check" and carrying
    nbgrader's metadata, and every output cleared."""
    check_markers(notebook, name)
    student = with_metadata(notebook, name)
    for cell in student.cells:
        if cell.cell_type != "code":
            continue
        cell.source = strip_solutions(cell.source)
        cell.outputs = []
        cell.execution_count = None
    return student


def student_text(solution_path):
    """The student edition of one solution notebook, as the exact text `build` writes."""
    import nbformat
    try:
        student = student_notebook(_read(solution_path), course_name(solution_path))
    except CourseError as exc:
        message = str(exc)
        raise CourseError(message if message.startswith(course_name(solution_path)) else f"{solution_path}: {message}") from None
    return nbformat.writes(student) + "\n"


def solution_text(solution_path):
    """The solution notebook with nbgrader's metadata on its exercise and check cells (`with_metadata`),
    as the exact text `build` writes; the file's own text when it already carries it."""
    import nbformat
    try:
        notebook = _read(solution_path)
        check_markers(notebook, course_name(solution_path))
        return nbformat.writes(with_metadata(notebook, course_name(solution_path))) + "\n"
    except CourseError as exc:
        message = str(exc)
        raise CourseError(message if message.startswith(course_name(solution_path)) else f"{solution_path}: {message}") from None


def solution_notebooks(solutions_dir=SOLUTIONS_DIR):
    return sorted(Path(solutions_dir).glob("*.ipynb"))


def build(solutions_dir=SOLUTIONS_DIR, student_dir=STUDENT_DIR, check_only=False):
    """Write the student edition of every solution notebook, and nbgrader's cell metadata (the exercise
    ids) into the solution notebooks themselves; returns the paths that changed.

    Deterministic and idempotent: a second run changes nothing. check_only: write nothing,
    only report which student notebooks are missing or differ from what would be built.

    Nothing is written when the student folder is the solutions folder or lies inside it, or
    when a student notebook to replace is a symlink, a hard link to a solution notebook, or not
    a regular file (`_check_targets`); the folders are compared by inode, so another spelling or
    a link is caught too. (The student folder may contain the solutions folder: the repository's
    notebooks/ holds notebooks/solutions/.) Each notebook is written atomically, so a full disk
    leaves the old file, never a truncated one.
    """
    solutions = solution_notebooks(solutions_dir)
    _check_folders(solutions_dir, student_dir, check_only)
    planned = [(Path(student_dir) / path.name, student_text(path)) for path in solutions]
    # the solution edition gets the same nbgrader metadata (its cells' sources and outputs are left alone)
    marked = [(path, solution_text(path)) for path in solutions]
    changed = [target for target, text in planned if not _same_text(target, text)]
    changed += [path for path, text in marked if not _same_text(path, text)]
    if check_only:
        return changed
    _check_targets([target for target, _ in planned if target in changed], solutions)
    planned += marked
    for target, text in planned:
        if target in changed:
            try:
                with atomic_write(target) as handle:
                    handle.write(text.encode("utf-8"))
            except OSError as exc:
                raise CourseError(f"cannot write {target}: {exc.strerror or exc}; it is as it was") from None
    return changed


def _same_text(target, text):
    """True when `target` is a regular file holding exactly `text` (a FIFO is never opened: it would block)."""
    try:
        return stat.S_ISREG(os.stat(target).st_mode) and target.read_text(encoding="utf-8") == text
    except (OSError, UnicodeDecodeError):
        return False


def _identity(path):
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_dev, info.st_ino


def _check_folders(solutions_dir, student_dir, check_only=False):
    """CourseError when --solutions is no folder, or the student folder is it or lies inside it (by inode)."""
    solutions_dir, student_dir = Path(solutions_dir), Path(student_dir)
    if not solutions_dir.is_dir():
        raise CourseError(f"--solutions {solutions_dir} is not a folder; give the folder of solution notebooks")
    if not check_only and not student_dir.is_dir():
        raise CourseError(f"--out {student_dir} is not an existing folder; create it or choose another --out")
    solutions_id = _identity(solutions_dir)
    try:
        folders = [student_dir.resolve(), *student_dir.resolve().parents]
    except RuntimeError:  # a symlink loop (Python < 3.13)
        raise CourseError(f"--out {student_dir} is a symlink loop; give a real folder") from None
    for depth, folder in enumerate(folders):
        if _identity(folder) == solutions_id:
            if depth == 0:
                raise CourseError(f"--out {student_dir} is the solutions folder {solutions_dir}; building there "
                                  "would replace every solution notebook by its student edition: choose another --out")
            raise CourseError(f"--out {student_dir} is inside the solutions folder {solutions_dir}; keep the student "
                              "edition out of the solutions: choose another --out")


def _check_targets(targets, solutions):
    """CourseError, before anything is written, for a student notebook that is a symlink (writing it would
    write through to whatever it points to), a hard link to a solution notebook, not a regular file, or
    write-protected (as `cp` refuses it; `rnnlm train --out` does the same)."""
    solution_ids = {_identity(path): path for path in solutions}
    for target in targets:
        try:
            info = os.lstat(target)
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise CourseError(f"cannot check {target}: {exc.strerror or exc}") from None
        if stat.S_ISLNK(info.st_mode):
            pointed = os.readlink(target)
            raise CourseError(f"{target} is a symlink (to {pointed}); writing the student edition through it would "
                              "replace that file: remove the link, or choose another --out")
        if not stat.S_ISREG(info.st_mode):
            raise CourseError(f"{target} is not a regular file (a folder, pipe, device or socket); remove it, "
                              "or choose another --out")
        solution = solution_ids.get((info.st_dev, info.st_ino))
        if solution is not None:
            raise CourseError(f"{target} is the solution notebook {solution} under another name (a hard link); "
                              f"remove {target} and build again, or choose another --out")
        if write_protected(target):
            raise CourseError(f"{target} is write-protected; chmod u+w it or choose another --out")

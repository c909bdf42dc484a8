"""Safe output files: every file rnnlm writes goes through here (model files, plots, exports,
the student edition of the course, downloads).

A write is atomic (a temporary file beside the target, fsync'ed, renamed over it: a crash or a
full disk leaves the old file or the new one, never a mix); a target is checked before anything
runs (not an input, not write-protected, not a FIFO or a folder, a symlink written through at its
target, a symlink loop named as such); two writers of one target are refused by an advisory lock;
the temporaries a killed writer left are removed.
"""

import contextlib
import errno
import os
import re
import stat
import tempfile
from pathlib import Path

from rnnlm.errors import ConfigError, ModelFileError


@contextlib.contextmanager
def atomic_write(path, follow_symlinks=True):
    """Yield a binary file object whose contents replace `path` only if the block completes.

    The temporary file lives in `path`'s folder (so `os.replace` is a rename on one file
    system), is fsync'ed before the rename, and is removed if anything fails. When `path`
    is a symlink, the file it points to is replaced, in that file's folder (`write_target`),
    and the link stays a link; follow_symlinks=False replaces the link itself instead (what
    `download --force` does), leaving its target alone.
    """
    path = write_target(path) if follow_symlinks else Path(path)
    handle = tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp", delete=False)
    try:
        with handle:
            os.chmod(handle.name, _file_mode(path))  # mkstemp's 0600 would make the model private
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(handle.name, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(handle.name)
        raise
    with contextlib.suppress(OSError):  # make the rename itself durable (POSIX only)
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _loop_error(what, path, error=ConfigError):
    return error(f"{what} {path} is a symlink loop (its links lead back to themselves); "
                       "point the link at a real file, or give another path")


def refuse_symlink_loop(path, what="--out", error=ConfigError):
    """`error` (ConfigError) when `path` is (or passes through) a symlink loop, which no open() can follow."""
    try:
        os.stat(path)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise _loop_error(what, path, error) from None
    except ValueError:  # an embedded NUL byte: whoever opens the path reports it
        pass


def write_target(path, what="--out"):
    """The file that writing `path` replaces: `path` itself, or, when `path` is a symlink, the file
    its links end at (which may not exist yet), as `cp` writes through a link. Side files named
    after an output (its `.last` file, lock and temporary files) are named from this target."""
    path = Path(path)
    refuse_symlink_loop(path, what)
    if not path.is_symlink():
        return path
    try:
        return path.resolve()
    except RuntimeError:  # Python < 3.13 reports a loop as RuntimeError ("Symlink loop from ...")
        raise _loop_error(what, path) from None


def check_file_name(path, option="--out", example="model.npz"):
    """ConfigError unless `path`, as typed, names a file: not empty, not ".", "..", "/", and not
    ending in a slash (`model.npz/` names a folder; pathlib would silently drop the slash)."""
    text = os.fspath(path)
    if text == "":
        raise ConfigError(f"{option} is empty; {option} must name a file, such as {example}")
    name = os.path.basename(text)
    if name == "" and text.rstrip("/") not in ("", ".", ".."):
        raise ConfigError(f"{option} {text} ends with '/', so it names a directory; {option} must name a file: "
                          f"drop the trailing /, or give a file name such as {os.path.join(text, example)}")
    if name in ("", ".", ".."):
        raise ConfigError(f"{option} {text} names a directory; {option} must name a file, such as "
                          f"{os.path.join(text, example)}")


def write_protected(path):
    """True when the existing file `path` may not be written by its owner (no u+w bit, as `chmod a-w`
    leaves it) or by this user (os.access). The mode bit is tested explicitly because root's
    os.access ignores it, and `os.replace` replaces even a read-only file."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return not mode & stat.S_IWUSR or not os.access(path, os.W_OK)


def _file_mode(path):
    """The permissions the file should get: those of the file it replaces, else 0666 minus the umask."""
    try:
        return path.stat().st_mode & 0o777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def check_output(path, option="--out", inputs=(), example="model.npz"):
    """Refuse, before any long work, an output path whose writing would destroy something.

    path must name a file (`check_file_name`), be no symlink loop, and be a new name or an
    existing regular file (never a folder, FIFO, device or socket, which `atomic_write` would
    replace by a regular file); it must not be the same file as any of `inputs`: (description,
    path) pairs such as ("the corpus", "c.txt"), compared after resolving links, and by inode
    when both exist; an existing file must not be write-protected (`write_protected`, as `cp`
    refuses it), and its folder must exist and be writable. A symlink is checked as the file it
    points to, which is what gets written. Raises ConfigError or ModelFileError.
    """
    check_file_name(path, option, example)
    given = Path(path)
    out = write_target(given, option)
    shown = str(given) if out == given else f"{given} (a link to {out})"
    if out.is_dir():
        raise ConfigError(f"{option} {shown} is a directory; {option} must name a file, such as {given / example}")
    if out.exists() and not out.is_file():
        raise ConfigError(f"{option} {shown} is not a regular file (a pipe, device or socket), which rnnlm would "
                          "replace; give the name of a file to create or replace")
    for description, other in inputs:
        if other is not None and same_file(out, other):
            raise ConfigError(f"{option} {shown} is {description}; writing it would destroy it: "
                              "choose another file name")
    if out.exists() and write_protected(out):
        choose = re.match(r"--[a-z-]+", option)
        raise ConfigError(f"{option} {shown} is write-protected; chmod u+w {'it' if out == given else out} or "
                          f"choose another {choose.group(0) if choose else 'output file'}")
    ensure_file_writable(out)


def same_file(a, b):
    """True when paths `a` and `b` name one file (same inode if both exist, else the same resolved path)."""
    a, b = Path(a), Path(b)
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
        return a.resolve() == b.resolve()
    except (OSError, RuntimeError):  # RuntimeError: a symlink loop (Python < 3.13)
        return False


@contextlib.contextmanager
def output_lock(path):
    """Hold an exclusive advisory lock on writing `path` for the block; a second holder gets ConfigError.

    The lock is `flock` on a hidden sidecar file `.NAME.lock` next to `path` (next to the file a
    symlink `path` points to), removed on exit.
    While it is held no other rnnlm process writes `path`, so temporary files that
    `atomic_write` left for `path` (a killed writer's `.NAME.XXXXXXXX.tmp`) are stale and removed.
    """
    try:
        import fcntl
    except ImportError:  # not POSIX: no locking, nothing removed
        yield
        return
    path = write_target(path)  # through a symlink: the lock sits next to the file that is written
    lock_path = path.parent / f".{path.name}.lock"
    while True:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise ConfigError(f"another rnnlm process is writing {path} (it holds {lock_path}); wait for it to "
                              "finish or choose another output file") from None
        try:  # the previous holder may have removed the lock file just before we locked it: lock the new one
            current = os.fstat(fd).st_ino == os.stat(lock_path).st_ino
        except OSError:
            current = False
        if current:
            break
        os.close(fd)
    try:
        remove_stale_temporaries(path)
        yield
    finally:
        # a Ctrl-C can land between a temporary file's creation and the `try` that would remove it
        # (inside tempfile itself): every writer of `path` in this block is done, so whatever is left goes
        remove_stale_temporaries(path)
        with contextlib.suppress(OSError):
            os.unlink(lock_path)
        os.close(fd)


def remove_stale_temporaries(path):
    """Remove the temporary files `atomic_write` names for `path` (`.NAME.XXXXXXXX.tmp`); returns them.

    Only safe while holding `output_lock(path)`: then no writer of `path` is alive.
    """
    path = write_target(path)
    pattern = re.compile(r"\." + re.escape(path.name) + r"\.[a-z0-9_]{8}\.tmp")
    removed = []
    with contextlib.suppress(OSError):
        for entry in os.scandir(path.parent):
            if pattern.fullmatch(entry.name) and entry.is_file(follow_symlinks=False):
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)
                    removed.append(Path(entry.path))
    return removed


def ensure_file_writable(path):
    """Raise ModelFileError, before any long work, when `path`'s folder is missing or read-only."""
    try:
        folder = Path(path).resolve().parent
    except RuntimeError:  # a symlink loop (Python < 3.13)
        raise _loop_error("output", path) from None
    if not folder.is_dir():
        raise ModelFileError(f"folder {folder} does not exist; create it or choose another output path")
    if not os.access(folder, os.W_OK):
        raise ModelFileError(f"cannot write to folder {folder}; choose another output path")

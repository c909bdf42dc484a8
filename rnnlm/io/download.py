"""Fetching the tutorial's dataset (and the Stanford Sentiment Treebank) on request, verified by git blob SHA-1.

Nothing in rnnlm downloads anything unless the user runs `rnnlm download`. The file is
streamed into a temporary file next to its destination, checked, and only then renamed
into place, so an interrupted or corrupted download never leaves a file that looks
finished. The check is the git blob hash that GitHub shows for the file:

    git blob SHA-1 = sha1(b"blob <size in bytes>\\0" + content)

so anyone can confirm it with `git hash-object FILE`.

The Stanford Sentiment Treebank comes as a zip (`ZipDataset`): the zip is fetched into an unnamed
temporary file and only its three tree files are extracted. What is verified is each EXTRACTED file
(trees/train.txt, dev.txt, test.txt) against its git blob SHA-1; the zip itself is not checksummed
(its bytes are not what rnnlm reads, and only the extracted files' hashes were recorded).
"""

import contextlib
import errno
import hashlib
import http.client
import os
import stat
import urllib.error
import urllib.parse
import urllib.request
import tempfile
import time
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from rnnlm.io.safe_files import atomic_write
from rnnlm.errors import RnnlmError


class DownloadError(RnnlmError):
    """A download failed: no connection, an HTTP error, or a file whose checksum is wrong."""


@dataclass(frozen=True)
class Dataset:
    """A downloadable file: where it comes from, its file name, and its git blob SHA-1."""

    name: str
    url: str
    filename: str
    git_sha1: str
    description: str


DATASETS = {
    "reddit": Dataset(
        name="reddit",
        url="https://raw.githubusercontent.com/dennybritz/rnn-tutorial-rnnlm/master/data/reddit-comments-2015-08.csv",
        filename="reddit-comments-2015-08.csv",
        git_sha1="5c116635bce430ed464bcfadc8cc202c26f0b8a5",
        description="the tutorial's Reddit comments (August 2015), from the public repository "
                    "dennybritz/rnn-tutorial-rnnlm"),
}

@dataclass(frozen=True)
class ZipMember:
    """One file taken out of a `ZipDataset`'s zip: its name in the zip, the file it becomes, its git blob SHA-1."""

    member: str
    filename: str
    git_sha1: str


@dataclass(frozen=True)
class ZipDataset:
    """A downloadable zip of which only `members` are extracted, into the folder `folder` (under --dir).

    Only the extracted files are verified (by their git blob SHA-1s); the zip itself is not checksummed."""

    name: str
    url: str
    folder: str
    members: tuple
    description: str
    next_step: str


# The Stanford Sentiment Treebank in PTB-bracket form, the standard split (Socher et al., 2013):
# 8,544 / 1,101 / 2,210 trees. The checksums are the git blob SHA-1s of the three files as extracted
# from trainDevTestTrees_PTB.zip (computed from a copy of those files, checked to hold those tree
# counts); the zip's own bytes are NOT checksummed, only the three files rnnlm takes out of it.
SST = ZipDataset(
    name="sst",
    url="https://nlp.stanford.edu/sentiment/trainDevTestTrees_PTB.zip",
    folder="sst",
    members=(ZipMember("trees/train.txt", "train.txt", "1c5317f7ccdc638e30091da2605654f0755e7ab5"),
             ZipMember("trees/dev.txt", "dev.txt", "bbc5d06608f69bfc42ebb1e06f20012409c36697"),
             ZipMember("trees/test.txt", "test.txt", "90684652f42dbd0cb7e2c849baa80eb31f292c5e")),
    description="the Stanford Sentiment Treebank (PTB-bracket trees, standard train/dev/test split), "
                "from nlp.stanford.edu",
    next_step="trees train {folder}/train.txt --dev {folder}/dev.txt --out trees.npz")

DATASETS["sst"] = SST

CHUNK_BYTES = 1 << 16
# The Reddit CSV is 8 MB: 15 minutes is under 10 kB/s, and nothing rnnlm downloads comes near 1 GiB.
DEADLINE_SECONDS = 15 * 60
MAX_BYTES = 1 << 30
# The SST zip is under 1 MB and its largest tree file 2.2 MB: 64 MiB and 32 MiB leave room and stop a zip bomb.
MAX_ZIP_BYTES = 64 << 20
MAX_MEMBER_BYTES = 32 << 20


def git_blob_sha1(path):
    """The git blob SHA-1 of a file (what `git hash-object` prints), read in chunks."""
    path = Path(path)
    digest = hashlib.sha1(b"blob %d\0" % path.stat().st_size)
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _already_present(destination, git_sha1, force):
    """True when `destination` already is the published file (nothing to fetch), False when it is absent or may
    be replaced; DownloadError for anything that must be kept: a different file or a symbolic link (unless
    `force`), a directory, a named pipe, a device or a socket (never replaced, not even with `force`)."""
    try:
        mode = os.lstat(destination).st_mode
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise DownloadError(f"cannot inspect {destination}: {exc.strerror or exc}") from None
    if stat.S_ISLNK(mode):
        if destination.is_file() and git_blob_sha1(destination) == git_sha1:
            return True  # a link to the published file: nothing to do, nothing written
        if not force:
            raise DownloadError(f"{destination} is a symbolic link (to {os.readlink(destination)}), not the published "
                                "file; keep it, or pass --force to replace the link (its target is left alone)")
        return False
    special = {stat.S_ISDIR: "a directory", stat.S_ISFIFO: "a named pipe (FIFO)", stat.S_ISCHR: "a character device",
               stat.S_ISBLK: "a block device", stat.S_ISSOCK: "a socket"}
    for test, what in special.items():
        if test(mode):
            raise DownloadError(f"{destination} is {what}, not a file; rnnlm never replaces it, not even with --force: "
                                "remove or rename it, or choose another --dir")
    actual = git_blob_sha1(destination)
    if actual == git_sha1:
        return True
    if not force:
        raise DownloadError(f"{destination} exists and differs from the published file (git blob SHA-1 {actual}, "
                            f"published {git_sha1}); keep it, or pass --force to replace it")
    return False


def download(url, destination, git_sha1, progress=None, timeout=30.0, deadline=DEADLINE_SECONDS, max_bytes=MAX_BYTES,
             force=False):
    """Download `url` to `destination`, keeping it only if its git blob SHA-1 is `git_sha1`.

    progress: called as progress(bytes_so_far, total_bytes_or_None) after every chunk.
    timeout: seconds of silence from the server before giving up; deadline: seconds for
    the whole download (a server trickling a byte at a time cannot hold it forever);
    max_bytes: refuse a larger file (announced or received).
    An existing `destination` with the right hash is kept and nothing is fetched; any other existing
    file or symbolic link is kept too (DownloadError) unless `force`, and a directory, pipe, device
    or socket is never replaced.
    Returns (destination Path, True if it was downloaded / False if already present).
    Raises DownloadError (offline, HTTP error, wrong checksum); `destination` is then
    left as it was.
    """
    destination = Path(destination)
    if _already_present(destination, git_sha1, force):
        return destination, False
    created = [] if destination.parent.exists() else [p for p in (destination.parent, *destination.parent.parents)
                                                     if not p.exists()]
    try:
        destination.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DownloadError(f"cannot create folder {destination.parent}: {exc.strerror or exc}") from None
    try:
        return _download_into(url, destination, git_sha1, progress, timeout, deadline, max_bytes), True
    except BaseException:
        for folder in created:  # leave no empty folders behind a failed download
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise


def _download_into(url, destination, git_sha1, progress, timeout, deadline, max_bytes):
    # atomic_write renames the temporary file into place only if this block completes
    with atomic_write(destination, follow_symlinks=False) as handle:  # --force replaces a link, not its target
        _fetch(url, handle, progress, timeout, destination, deadline, max_bytes)
        handle.flush()
        actual = git_blob_sha1(handle.name)
        if actual != git_sha1:
            raise DownloadError(f"the file from {url} is corrupted or has changed: its git blob SHA-1 is {actual}, "
                                f"expected {git_sha1}; nothing was saved, try again later")
    return destination


def _fetch(url, handle, progress, timeout, destination, deadline=DEADLINE_SECONDS, max_bytes=MAX_BYTES, advice=None):
    """Stream `url` into the open binary file `handle`, or raise DownloadError with what to do.

    advice: what to do when offline (default: copy the file to `destination`, or train on another corpus)."""
    host = urllib.parse.urlsplit(url).netloc or url
    advice = advice or (f"copy it to {destination}, or train on any UTF-8 CSV with a 'body' column or any "
                        "plain-text file")
    offline = (f"cannot download from {host}: {{reason}}. Are you offline? Fetch {url} on a machine with internet "
               f"and {advice}")
    too_big = (f"the file at {url} is larger than {max_bytes:,} bytes, more than rnnlm downloads; "
               "check the URL")
    end = time.monotonic() + deadline
    try:
        with urllib.request.urlopen(url, timeout=min(timeout, deadline)) as response:
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            if total is not None and total > max_bytes:
                raise DownloadError(too_big)
            done = 0
            # read1 returns what has arrived, so the deadline is checked even while a server trickles
            for chunk in iter(lambda: response.read1(CHUNK_BYTES), b""):
                done += len(chunk)
                if done > max_bytes:
                    raise DownloadError(too_big)
                _write(handle, chunk, destination)
                if progress is not None:
                    progress(done, total)
                if time.monotonic() > end:
                    raise DownloadError(f"the download from {host} did not finish within {deadline:g} s "
                                        f"({done:,} bytes arrived); try again later")
            if total is not None and done != total:
                raise DownloadError(f"the download from {host} stopped after {done} of {total} bytes; try again")
    except urllib.error.HTTPError as exc:
        raise DownloadError(f"{url} answered HTTP {exc.code} {exc.reason}; the file may have moved") from None
    except urllib.error.URLError as exc:
        reason = getattr(exc.reason, "strerror", None) or str(exc.reason)
        raise DownloadError(offline.format(reason=reason)) from None
    except http.client.HTTPException as exc:  # e.g. IncompleteRead: the server hung up mid-file
        raise DownloadError(f"the download from {host} broke off ({type(exc).__name__}); try again") from None
    except OSError as exc:  # timeouts and dropped connections while reading
        raise DownloadError(offline.format(reason=getattr(exc, "strerror", None) or str(exc) or "timed out")) from None


def _write(handle, chunk, destination):
    """Write one chunk; a full disk or an unwritable file is reported as such, not as being offline."""
    try:
        handle.write(chunk)
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise DownloadError(f"the disk holding {destination.parent} is full (or over quota); free some space "
                                "or choose another --dir") from None
        raise DownloadError(f"cannot write {destination}: {exc.strerror or exc}") from None


def download_zip(url, folder, members, progress=None, timeout=30.0, deadline=DEADLINE_SECONDS, max_bytes=MAX_ZIP_BYTES,
                 max_member_bytes=MAX_MEMBER_BYTES, force=False):
    """Download the zip at `url` and extract `members` (ZipMember) into `folder`, each kept only if its
    git blob SHA-1 is the member's.

    What is verified is each extracted file; the zip's own bytes are not checksummed. The zip is held in an
    unnamed temporary file in `folder` and never kept. Only the named members are read: a zip with any
    absolute or `..` member name is refused whole, as is a member larger than `max_member_bytes`
    (announced or read) or a zip larger than `max_bytes`. Every file is verified before any is renamed into
    place, so a failure leaves `folder` as it was. Existing files are treated as by `download`: the right
    one is kept and not rewritten, a different one is kept (DownloadError) unless `force`.
    Returns ([destination Paths], True if anything was downloaded / False if every file was already present).
    """
    folder = Path(folder)
    targets = [(m, folder / m.filename) for m in members]
    missing = [(m, path) for m, path in targets if not _already_present(path, m.git_sha1, force)]
    if not missing:
        return [path for _, path in targets], False
    created = [] if folder.exists() else [p for p in (folder, *folder.parents) if not p.exists()]
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DownloadError(f"cannot create folder {folder}: {exc.strerror or exc}") from None
    try:
        _extract_into(url, folder, missing, progress, timeout, deadline, max_bytes, max_member_bytes)
    except BaseException:
        for made in created:  # leave no empty folders behind a failed download
            with contextlib.suppress(OSError):
                made.rmdir()
        raise
    return [path for _, path in targets], True


def _unsafe_name(name):
    """True for a zip member name that could land outside the folder: absolute, a drive, or with a `..` part."""
    parts = name.replace("\\", "/").split("/")
    return name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":") or ".." in parts


def _extract_into(url, folder, missing, progress, timeout, deadline, max_bytes, max_member_bytes):
    advice = (f"unzip its trees/train.txt, trees/dev.txt and trees/test.txt into {folder}, "
              "or train on any file of bracketed trees")
    try:
        scratch = tempfile.TemporaryFile(dir=folder)  # unnamed: nothing is left behind, whatever happens
    except OSError as exc:
        raise DownloadError(f"cannot write in {folder}: {exc.strerror or exc}") from None
    with scratch, contextlib.ExitStack() as outputs:
        _fetch(url, scratch, progress, timeout, folder / Path(urllib.parse.urlsplit(url).path).name, deadline,
               max_bytes, advice=advice)
        scratch.flush()
        scratch.seek(0)
        try:
            archive = outputs.enter_context(zipfile.ZipFile(scratch))
            names = archive.namelist()
        except (zipfile.BadZipFile, EOFError, OSError) as exc:
            raise DownloadError(f"the file from {url} is not a readable zip ({exc}); nothing was saved, "
                                "try again later") from None
        unsafe = [n for n in names if _unsafe_name(n)]
        if unsafe:
            raise DownloadError(f"the zip from {url} holds a member outside its folder ({unsafe[0]!r}); "
                                "nothing was extracted")
        # entered after the zip, so each temporary file is renamed into place only once every one is verified
        for member, destination in missing:
            try:
                info = archive.getinfo(member.member)
            except KeyError:
                raise DownloadError(f"the zip from {url} has no {member.member}; it has changed, nothing was "
                                    "saved") from None
            too_big = (f"{member.member} in the zip from {url} is larger than {max_member_bytes:,} bytes, more than "
                       "rnnlm extracts; nothing was saved")
            if info.file_size > max_member_bytes:
                raise DownloadError(too_big)
            handle = outputs.enter_context(atomic_write(destination, follow_symlinks=False))
            done = 0
            try:
                with archive.open(info) as source:
                    for chunk in iter(lambda: source.read(CHUNK_BYTES), b""):
                        done += len(chunk)
                        if done > max_member_bytes:
                            raise DownloadError(too_big)
                        _write(handle, chunk, destination)
            except (zipfile.BadZipFile, EOFError, NotImplementedError, RuntimeError, zlib.error) as exc:
                raise DownloadError(f"{member.member} in the zip from {url} is damaged ({exc}); nothing was saved, "
                                    "try again later") from None
            handle.flush()
            actual = git_blob_sha1(handle.name)
            if actual != member.git_sha1:
                raise DownloadError(f"{member.member} in the zip from {url} is corrupted or has changed: its git "
                                    f"blob SHA-1 is {actual}, expected {member.git_sha1}; nothing was saved")

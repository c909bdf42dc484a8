"""`rnnlm download` against a local HTTP server: good file, corrupted file, no server at all.

Never touches the internet: every URL points at 127.0.0.1.
"""

import hashlib
import socket

import pytest

from rnnlm import cli
from rnnlm.io.download import DATASETS, DownloadError, download, git_blob_sha1

from helpers import serving_files

CONTENT = "body\n" + "".join(f'"comment number {i}, with some text."\n' for i in range(2000))
GOOD = CONTENT.encode("utf-8")
CORRUPT = GOOD[:-10] + b"XXXXXXXXXX"


def blob_sha1(data):
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@pytest.fixture
def server():
    """Serves /good.csv, /corrupt.csv and /short.csv (announces more bytes than it sends); counts requests."""
    with serving_files({"/good.csv": GOOD, "/corrupt.csv": CORRUPT, "/short.csv": GOOD},
                       announce_extra={"/short.csv": 100}) as served:
        yield served


@pytest.fixture
def closed_port():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens here now: connections are refused
    return port


def test_git_blob_sha1_is_what_git_hash_object_prints(tmp_path):
    path = tmp_path / "hello.txt"
    path.write_bytes(b"hello\n")
    assert git_blob_sha1(path) == "ce013625030ba8dba906f756967f9e9ca394464a"  # git hash-object hello.txt


def test_the_reddit_dataset_is_the_tutorial_file():
    reddit = DATASETS["reddit"]
    assert reddit.url == ("https://raw.githubusercontent.com/dennybritz/rnn-tutorial-rnnlm/master/"
                          "data/reddit-comments-2015-08.csv")
    assert reddit.git_sha1 == "5c116635bce430ed464bcfadc8cc202c26f0b8a5"


def test_good_download_is_verified_and_kept(tmp_path, server):
    url, hits = server
    seen = []
    path, fetched = download(f"{url}/good.csv", tmp_path / "data" / "r.csv", blob_sha1(GOOD),
                             progress=lambda done, total: seen.append((done, total)))
    assert fetched and path.read_bytes() == GOOD
    assert seen[-1] == (len(GOOD), len(GOOD))
    assert sorted(p.name for p in path.parent.iterdir()) == ["r.csv"]
    # a second call finds the verified file and fetches nothing
    assert download(f"{url}/good.csv", path, blob_sha1(GOOD)) == (path, False)
    assert hits == ["/good.csv"]


@pytest.mark.parametrize("name, match", [("corrupt.csv", "corrupted"), ("short.csv", "stopped after"),
                                         ("missing.csv", "HTTP 404")])
def test_bad_download_is_rejected_and_leaves_nothing(tmp_path, server, name, match):
    url, _ = server
    destination = tmp_path / "r.csv"
    destination.write_bytes(b"an older file")
    with pytest.raises(DownloadError, match=match):  # forced to replace it, and still the old file stays
        download(f"{url}/{name}", destination, blob_sha1(GOOD), force=True)
    assert destination.read_bytes() == b"an older file"
    assert [p.name for p in tmp_path.iterdir()] == ["r.csv"]


def test_offline_says_so_and_what_to_do(tmp_path, closed_port):
    with pytest.raises(DownloadError, match="offline") as info:
        download(f"http://127.0.0.1:{closed_port}/r.csv", tmp_path / "r.csv", blob_sha1(GOOD), timeout=5)
    assert f"copy it to {tmp_path / 'r.csv'}" in str(info.value)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(DownloadError):
        download(f"http://127.0.0.1:{closed_port}/r.csv", tmp_path / "new" / "sub" / "r.csv", blob_sha1(GOOD))
    assert list(tmp_path.iterdir()) == []  # the folders it made for the file are gone again


def test_cli_download(tmp_path, server, capsys):
    url, _ = server
    code = cli.main(["download", "reddit", "--dir", str(tmp_path), "--url", f"{url}/good.csv",
                     "--sha1", blob_sha1(GOOD), "--no-progress"])
    out = capsys.readouterr().out
    assert code == 0 and "verified" in out
    assert (tmp_path / DATASETS["reddit"].filename).read_bytes() == GOOD


def test_cli_download_corrupt_and_offline(tmp_path, server, closed_port, capsys):
    url, _ = server
    for bad_url in (f"{url}/corrupt.csv", f"http://127.0.0.1:{closed_port}/r.csv"):
        code = cli.main(["download", "reddit", "--dir", str(tmp_path), "--url", bad_url,
                         "--sha1", blob_sha1(GOOD), "--no-progress"])
        err = capsys.readouterr().err
        assert code == 2 and err.count("\n") == 1 and err.startswith("rnnlm: error: ")
        assert "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


def test_download_help_hides_the_test_options(capsys):
    assert cli.main(["download", "--help"]) == 0
    out = capsys.readouterr().out
    assert "example" in out and "--url" not in out and "reddit" in out


# --------------------------------------------------------------------- an existing file of that name

def _cli_download(tmp_path, url, *extra):
    return cli.main(["download", "reddit", "--dir", str(tmp_path), "--url", f"{url}/good.csv",
                     "--sha1", blob_sha1(GOOD), "--no-progress", *extra])


def test_a_different_existing_file_is_kept_unless_forced(tmp_path, server, capsys):
    url, hits = server
    target = tmp_path / DATASETS["reddit"].filename
    target.write_bytes(b"body\n\"my own comments\"\n")
    assert _cli_download(tmp_path, url) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{target} exists and differs from the published file (git blob SHA-1 " in err
    assert "keep it, or pass --force to replace it" in err
    assert target.read_bytes() == b"body\n\"my own comments\"\n" and hits == []
    assert _cli_download(tmp_path, url, "--force") == 0
    assert target.read_bytes() == GOOD and len(hits) == 1


def test_a_symbolic_link_is_kept_unless_forced_and_its_target_never_written(tmp_path, server, capsys):
    url, hits = server
    elsewhere = tmp_path / "elsewhere.csv"
    elsewhere.write_bytes(b"precious")
    folder = tmp_path / "data"
    folder.mkdir()
    link = folder / DATASETS["reddit"].filename
    link.symlink_to(elsewhere)
    assert _cli_download(folder, url) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is a symbolic link (to " in err and "--force" in err and hits == []
    assert _cli_download(folder, url, "--force") == 0
    assert not link.is_symlink() and link.read_bytes() == GOOD and elsewhere.read_bytes() == b"precious"


def test_a_link_to_the_published_file_is_already_present(tmp_path, server):
    url, hits = server
    real = tmp_path / "real.csv"
    real.write_bytes(GOOD)
    (tmp_path / "r.csv").symlink_to(real)
    assert download(f"{url}/good.csv", tmp_path / "r.csv", blob_sha1(GOOD)) == (tmp_path / "r.csv", False)
    assert hits == [] and (tmp_path / "r.csv").is_symlink()


@pytest.mark.parametrize("kind", ["fifo", "directory"])
def test_a_pipe_or_directory_is_never_replaced_even_with_force(tmp_path, server, capsys, kind):
    import os
    url, hits = server
    target = tmp_path / DATASETS["reddit"].filename
    os.mkfifo(target) if kind == "fifo" else target.mkdir()
    for extra in ([], ["--force"]):
        assert _cli_download(tmp_path, url, *extra) == 2
        err = capsys.readouterr().err
        what = "a named pipe (FIFO)" if kind == "fifo" else "a directory"
        assert err.count("\n") == 1 and f"{target} is {what}, not a file; rnnlm never replaces it" in err, err
    assert (target.is_fifo() if kind == "fifo" else target.is_dir()) and hits == []


def test_download_help_mentions_force(capsys):
    assert cli.main(["download", "--help"]) == 0
    assert "--force" in capsys.readouterr().out

"""`rnnlm download sst`: the treebank's zip, served from 127.0.0.1, its three tree files extracted and verified.

Never touches the internet: the zips are built here from small synthetic tree files, and the expected
checksums are injected for the test (as the Reddit tests pass --sha1).
"""

import dataclasses
import io
import zipfile
from pathlib import Path

import pytest

from rnnlm import cli
from rnnlm.io import download as dl
from rnnlm.io.download import DownloadError, ZipMember, download_zip

from helpers import serving_files
from test_download import blob_sha1

FILES = {"train.txt": b"(3 (2 It) (4 (2 's) (3 lovely)))\n(1 (2 not) (1 good))\n",
         "dev.txt": b"(2 (2 a) (2 film))\n",
         "test.txt": b"(4 (3 very) (4 good))\n(0 (0 awful) (2 .))\n"}
MEMBERS = tuple(ZipMember(f"trees/{name}", name, blob_sha1(data)) for name, data in FILES.items())


def make_zip(files=None, extra=()):
    """A zip like trainDevTestTrees_PTB.zip: trees/NAME for each of `files`, plus (name, bytes) pairs of `extra`."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in (FILES if files is None else files).items():
            z.writestr(f"trees/{name}", data)
        for name, data in extra:
            z.writestr(zipfile.ZipInfo(name), data)
    return buffer.getvalue()


def damaged_zip():
    """good.zip with one byte of trees/dev.txt's stored data changed: its CRC no longer matches."""
    data = bytearray(make_zip())
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as z:
        info = z.getinfo("trees/dev.txt")
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    data[start + info.compress_size // 2] ^= 0xFF
    return bytes(data)


ZIPS = {"/good.zip": make_zip(),
        "/damaged.zip": damaged_zip(),
        "/tampered.zip": make_zip({**FILES, "dev.txt": b"(0 (0 a) (0 film))\n"}),
        "/no-test.zip": make_zip({k: v for k, v in FILES.items() if k != "test.txt"}),
        "/escape.zip": make_zip(extra=[("../evil.txt", b"x")]),
        "/absolute.zip": make_zip(extra=[("/tmp/evil.txt", b"x")]),
        "/big.zip": make_zip({**FILES, "train.txt": FILES["train.txt"] * 2000}),
        "/not-a-zip.zip": b"<html>moved</html>"}


@pytest.fixture
def server():
    with serving_files(ZIPS) as served:
        yield served


@pytest.fixture
def sst(monkeypatch):
    """The sst dataset with the synthetic files' checksums in place of the real ones."""
    monkeypatch.setitem(dl.DATASETS, "sst", dataclasses.replace(dl.SST, members=MEMBERS))


def contents(folder):
    return {p.name: p.read_bytes() for p in Path(folder).iterdir()}


def test_the_sst_dataset_is_the_standard_ptb_split():
    sst = dl.DATASETS["sst"]
    assert sst.url == "https://nlp.stanford.edu/sentiment/trainDevTestTrees_PTB.zip"
    assert [m.member for m in sst.members] == ["trees/train.txt", "trees/dev.txt", "trees/test.txt"]


SHARED = Path("/work/shared/data/sst")


@pytest.mark.skipif(not (SHARED / "train.txt").is_file(), reason="no local copy of the SST files")
def test_the_recorded_checksums_are_those_of_the_standard_files():
    from rnnlm.data.trees import read_trees
    counts = {"train.txt": 8544, "dev.txt": 1101, "test.txt": 2210}
    for member in dl.SST.members:
        assert dl.git_blob_sha1(SHARED / member.filename) == member.git_sha1
        assert len(read_trees(SHARED / member.filename)) == counts[member.filename]


@pytest.mark.skipif(not (SHARED / "train.txt").is_file(), reason="no local copy of the SST files")
def test_the_standard_files_pass_the_recorded_checksums_end_to_end(tmp_path, server, monkeypatch, capsys):
    """A zip laid out like trainDevTestTrees_PTB.zip, built from the local copy, through `rnnlm download sst`
    with the checksums this rnnlm records (the real zip's bytes may differ: they are not checked)."""
    url, _ = server
    files = {name: (SHARED / name).read_bytes() for name in ("train.txt", "dev.txt", "test.txt")}
    monkeypatch.setitem(ZIPS, "/real.zip", make_zip(files))
    assert cli.main(["download", "sst", "--dir", str(tmp_path), "--url", f"{url}/real.zip", "--no-progress"]) == 0
    assert contents(tmp_path / "sst") == files
    assert capsys.readouterr().out.count("verified") == 3


def test_good_zip_is_extracted_verified_and_not_kept(tmp_path, server):
    url, hits = server
    seen = []
    folder = tmp_path / "data" / "sst"
    paths, fetched = download_zip(f"{url}/good.zip", folder, MEMBERS, progress=lambda d, t: seen.append((d, t)))
    assert fetched and [p.name for p in paths] == ["train.txt", "dev.txt", "test.txt"]
    assert contents(folder) == FILES  # nothing else: no zip, no temporary file
    assert seen[-1] == (len(ZIPS["/good.zip"]),) * 2
    assert download_zip(f"{url}/good.zip", folder, MEMBERS) == (paths, False) and hits == ["/good.zip"]


@pytest.mark.parametrize("name, match", [
    ("tampered.zip", "trees/dev.txt in the zip from .* is corrupted or has changed"),
    ("no-test.zip", "has no trees/test.txt"),
    ("escape.zip", "a member outside its folder \\('../evil.txt'\\)"),
    ("absolute.zip", "a member outside its folder \\('/tmp/evil.txt'\\)"),
    ("not-a-zip.zip", "not a readable zip"),
    ("damaged.zip", "trees/dev.txt in the zip from .* is (damaged|corrupted)"),
    ("missing.zip", "HTTP 404")])
def test_a_bad_zip_saves_nothing(tmp_path, server, name, match):
    url, _ = server
    folder = tmp_path / "sst"
    with pytest.raises(DownloadError, match=match):
        download_zip(f"{url}/{name}", folder, MEMBERS)
    assert list(tmp_path.iterdir()) == []  # not even train.txt, which was good, nor the folder
    assert not (tmp_path.parent / "evil.txt").exists()


def test_a_member_over_the_size_cap_is_refused(tmp_path, server):
    url, _ = server
    with pytest.raises(DownloadError, match="trees/train.txt in the zip .* is larger than 10,000 bytes"):
        download_zip(f"{url}/big.zip", tmp_path / "sst", MEMBERS, max_member_bytes=10_000)
    with pytest.raises(DownloadError, match="larger than 100 bytes"):
        download_zip(f"{url}/good.zip", tmp_path / "sst", MEMBERS, max_bytes=100)
    assert list(tmp_path.iterdir()) == []


def test_cli_download_sst(tmp_path, server, sst, capsys):
    url, _ = server
    code = cli.main(["download", "sst", "--dir", str(tmp_path), "--url", f"{url}/good.zip", "--no-progress"])
    out, err = capsys.readouterr()
    assert code == 0 and err == ""
    assert contents(tmp_path / "sst") == FILES
    assert out.count("verified") == 3 and "Downloaded and extracted." in out
    assert f"rnnlm trees train {tmp_path / 'sst' / 'train.txt'} --dev {tmp_path / 'sst' / 'dev.txt'}" in out
    code = cli.main(["download", "sst", "--dir", str(tmp_path), "--url", f"{url}/good.zip", "--no-progress"])
    assert code == 0 and "Already present" in capsys.readouterr().out


def test_cli_download_sst_refuses_a_tampered_file(tmp_path, server, sst, capsys):
    url, _ = server
    code = cli.main(["download", "sst", "--dir", str(tmp_path), "--url", f"{url}/tampered.zip", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "trees/dev.txt in the zip" in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


def test_cli_download_sst_keeps_a_different_file_unless_forced(tmp_path, server, sst, capsys):
    url, hits = server
    folder = tmp_path / "sst"
    folder.mkdir()
    (folder / "dev.txt").write_bytes(b"(2 my own tree)\n")
    argv = ["download", "sst", "--dir", str(tmp_path), "--url", f"{url}/good.zip", "--no-progress"]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert f"{folder / 'dev.txt'} exists and differs from the published file" in err and "--force" in err
    assert contents(folder) == {"dev.txt": b"(2 my own tree)\n"} and hits == []
    assert cli.main(argv + ["--force"]) == 0
    assert contents(folder) == FILES and len(hits) == 1


def test_cli_download_sst_offline_says_what_to_do(tmp_path, sst, capsys):
    import socket
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    code = cli.main(["download", "sst", "--dir", str(tmp_path), "--url", f"http://127.0.0.1:{port}/t.zip",
                     "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and "Are you offline?" in err and "unzip its trees/train.txt" in err
    assert list(tmp_path.iterdir()) == []


def test_cli_download_sst_refuses_sha1(tmp_path, capsys):
    assert cli.main(["download", "sst", "--dir", str(tmp_path), "--sha1", "0" * 40]) == 2
    assert "--sha1" in capsys.readouterr().err and list(tmp_path.iterdir()) == []


def test_download_help_lists_sst(capsys):
    assert cli.main(["download", "--help"]) == 0
    out = capsys.readouterr().out
    assert "{reddit,sst}" in out and "rnnlm download sst" in out

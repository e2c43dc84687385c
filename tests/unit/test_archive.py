"""extract(): zip and tar.gz, and every hostile archive refused with nothing left behind."""

from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from musicrec.archive import extract
from musicrec.errors import PipelineError, TransientError


def make_zip(path, entries):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return path


def make_tgz(path, entries, link=None):
    with tarfile.open(path, "w:gz") as tf:
        for name, data in entries.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        if link:
            info = tarfile.TarInfo(link[0])
            info.type, info.linkname = tarfile.SYMTYPE, link[1]
            tf.addfile(info)
    return path


def test_zip_and_tgz_extract(tmp_path):
    entries = {"data/ratings.csv": b"a,b\n1,2\n", "data/songs.csv": b"x\n"}
    for archive in (make_zip(tmp_path / "d.zip", entries), make_tgz(tmp_path / "d.tar.gz", entries)):
        target = tmp_path / ("out-" + archive.name)
        assert extract(archive, target) == 2
        assert (target / "data" / "ratings.csv").read_bytes() == b"a,b\n1,2\n"


def test_reextract_replaces_previous_content(tmp_path):
    target = tmp_path / "out"
    extract(make_zip(tmp_path / "a.zip", {"old.csv": b"1"}), target)
    extract(make_zip(tmp_path / "b.zip", {"new.csv": b"2"}), target)
    assert sorted(p.name for p in target.iterdir()) == ["new.csv"]


@pytest.mark.parametrize("name", ["../escape.csv", "/abs/escape.csv", "a/../../escape.csv"])
def test_path_escapes_are_refused(tmp_path, name):
    for archive in (make_zip(tmp_path / "e.zip", {name: b"x"}), make_tgz(tmp_path / "e.tgz", {name: b"x"})):
        with pytest.raises(PipelineError, match="outside the target"):
            extract(archive, tmp_path / "out")
        assert not (tmp_path / "out").exists()
        assert not (tmp_path / "escape.csv").exists()


def test_links_are_refused(tmp_path):
    with pytest.raises(PipelineError, match="link"):
        extract(make_tgz(tmp_path / "l.tgz", {"a.csv": b"x"}, link=("evil", "/etc/passwd")), tmp_path / "out")
    symlink_zip = tmp_path / "l.zip"
    with zipfile.ZipFile(symlink_zip, "w") as zf:
        info = zipfile.ZipInfo("evil")
        info.external_attr = 0o120777 << 16
        zf.writestr(info, "/etc/passwd")
    with pytest.raises(PipelineError, match="symbolic link"):
        extract(symlink_zip, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_zip_bomb_is_refused(tmp_path):
    bomb = make_zip(tmp_path / "bomb.zip", {"zeros.csv": b"0" * (50 << 20)})
    with pytest.raises(PipelineError, match="zip bomb"):
        extract(bomb, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_corrupt_and_truncated_archives_name_the_file(tmp_path):
    good = make_zip(tmp_path / "good.zip", {"a.csv": b"x" * 5000})
    truncated = tmp_path / "truncated.zip"
    truncated.write_bytes(good.read_bytes()[:-100])
    garbage = tmp_path / "garbage.zip"
    garbage.write_bytes(b"this is not an archive")
    tgz = make_tgz(tmp_path / "t.tar.gz", {"a.csv": bytes(range(256)) * 100})
    truncated_tgz = tmp_path / "truncated.tar.gz"
    truncated_tgz.write_bytes(tgz.read_bytes()[:200])
    for archive in (truncated, garbage, truncated_tgz):
        with pytest.raises(PipelineError, match=archive.name) as error:
            extract(archive, tmp_path / "out")
        assert not isinstance(error.value, TransientError)  # the same file fails the same way
        assert not (tmp_path / "out").exists()


def test_corrupt_compressed_data_is_a_final_error_not_a_crash(tmp_path):
    archive = make_zip(tmp_path / "bitrot.zip", {"a.csv": "".join(f"{i},{i * i % 977}\n" for i in range(5000)).encode()})
    data = bytearray(archive.read_bytes())
    data[30 + len("a.csv") + 3 : 30 + len("a.csv") + 9] = b"\xff" * 6  # inside the deflate stream
    archive.write_bytes(bytes(data))
    with pytest.raises(PipelineError, match="bitrot.zip is a corrupt or truncated zip") as error:
        extract(archive, tmp_path / "out")
    assert not isinstance(error.value, TransientError)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("code, words", [(errno.ENOSPC, "no space left"), (errno.EACCES, "permission denied"), (errno.EIO, "input/output error")])
@pytest.mark.parametrize("kind", ["zip", "tgz"])
def test_disk_and_permission_errors_are_retryable_not_corrupt(tmp_path, monkeypatch, code, words, kind):
    entries = {"data/ratings.csv": b"a,b\n1,2\n"}
    archive = make_zip(tmp_path / "d.zip", entries) if kind == "zip" else make_tgz(tmp_path / "d.tar.gz", entries)

    def fail(self, member, path, *args, **kwargs):  # extraction is member by member (progress lines)
        raise OSError(code, os.strerror(code), str(path))

    monkeypatch.setattr(zipfile.ZipFile if kind == "zip" else tarfile.TarFile, "extract", fail)
    with pytest.raises(TransientError, match=f"{words}.*not of the archive") as error:
        extract(archive, tmp_path / "out")
    assert "corrupt" not in str(error.value)
    assert list(tmp_path.iterdir()) == [archive]  # no target, no staging left


def test_unreadable_archive_is_retryable_not_unknown_format(tmp_path, monkeypatch):
    archive = make_zip(tmp_path / "d.zip", {"a.csv": b"x"})
    real_open = open

    def guarded_open(path, *args, **kwargs):
        if str(path) == str(archive):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr("builtins.open", guarded_open)
    monkeypatch.setattr(zipfile, "is_zipfile", lambda path: False)  # it swallows OSError itself
    with pytest.raises(TransientError, match="permission denied"):
        extract(archive, tmp_path / "out")


def test_checksum_is_verified_before_extracting(tmp_path):
    archive = make_zip(tmp_path / "d.zip", {"a.csv": b"x"})
    right = hashlib.sha256(archive.read_bytes()).hexdigest()
    assert extract(archive, tmp_path / "ok", sha256=right.upper()) == 1
    wrong = "ab" * 32
    with pytest.raises(PipelineError, match=f"sha256 {right}, not the {wrong}") as error:
        extract(archive, tmp_path / "out", sha256=wrong)
    assert not isinstance(error.value, TransientError)
    assert not (tmp_path / "out").exists()


def test_extract_job_checks_the_sha256_it_is_given(tmp_path):
    jobs = Path(__file__).resolve().parents[2] / "spark_jobs"
    archive = make_zip(tmp_path / "d.zip", {"a.csv": b"x"})

    def job(*args):
        command = [sys.executable, str(jobs / "extract.py"), "--run-dir", str(tmp_path / "run"), "--archive", str(archive), *args]
        return subprocess.run(command, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(jobs)}, timeout=60)

    done = job("--result-file", str(tmp_path / "bad.json"), "--sha256", "0" * 64)
    assert done.returncode == 2
    assert "not the " + "0" * 64 in json.loads((tmp_path / "bad.json").read_text())["error"]
    done = job("--result-file", str(tmp_path / "ok.json"), "--sha256", hashlib.sha256(archive.read_bytes()).hexdigest())
    assert done.returncode == 0, done.stderr
    assert json.loads((tmp_path / "ok.json").read_text())["file_count"] == 1

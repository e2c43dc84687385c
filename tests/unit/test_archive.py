"""extract(): zip and tar.gz, and every hostile archive refused with nothing left behind."""

from __future__ import annotations

import io
import tarfile
import zipfile

import pytest

from musicrec.archive import extract
from musicrec.errors import PipelineError


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
        with pytest.raises(PipelineError, match=archive.name):
            extract(archive, tmp_path / "out")
        assert not (tmp_path / "out").exists()

"""Unpack a dataset archive safely: zip or tar.gz, nothing outside the target, nothing half-done."""

from __future__ import annotations

import tarfile
import zipfile
from pathlib import Path, PurePosixPath

from musicrec.errors import PipelineError
from musicrec.paths import staged_dir

MAX_TOTAL_BYTES = 50 * (1 << 30)  # uncompressed
MAX_RATIO = 200  # uncompressed / compressed, per archive: real datasets compress ~3-10x


def extract(archive: Path, target: Path) -> int:
    """Extract `archive` into folder `target` (replacing it) and return the number of files."""
    archive = Path(archive)
    if not archive.is_file():
        raise PipelineError(f"archive {archive} does not exist")
    with staged_dir(target) as staging:
        if zipfile.is_zipfile(archive):
            count = _extract_zip(archive, staging)
        elif _is_tar(archive):
            count = _extract_tar(archive, staging)
        else:
            raise PipelineError(
                f"{archive.name} is neither a zip nor a tar archive (or it is corrupt or truncated); "
                "check the dataset_url"
            )
    return count


def _is_tar(archive: Path) -> bool:
    try:
        return tarfile.is_tarfile(archive)
    except OSError:
        return False


def _check_member_name(archive: Path, name: str) -> None:
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts or (path.parts and ":" in path.parts[0]):
        raise PipelineError(f"{archive.name}: entry {name!r} would be written outside the target folder; refusing it")


def _check_size(archive: Path, total: int) -> None:
    compressed = max(archive.stat().st_size, 1)
    if total > MAX_TOTAL_BYTES or total / compressed > MAX_RATIO:
        raise PipelineError(
            f"{archive.name}: uncompressed size {total} bytes ({total / compressed:.0f}x the archive) "
            f"exceeds the limits ({MAX_TOTAL_BYTES} bytes, {MAX_RATIO}x); refusing a likely zip bomb"
        )


def _extract_zip(archive: Path, target: Path) -> int:
    try:
        with zipfile.ZipFile(archive) as zf:
            members = zf.infolist()
            for info in members:
                _check_member_name(archive, info.filename)
                if (info.external_attr >> 16) & 0o170000 == 0o120000:
                    raise PipelineError(f"{archive.name}: entry {info.filename!r} is a symbolic link; refusing it")
            _check_size(archive, sum(info.file_size for info in members))
            zf.extractall(target)
            return sum(1 for info in members if not info.is_dir())
    except (zipfile.BadZipFile, EOFError, OSError) as error:
        raise PipelineError(f"{archive.name} is a corrupt or truncated zip archive: {error}") from None


def _extract_tar(archive: Path, target: Path) -> int:
    try:
        with tarfile.open(archive) as tf:
            members = tf.getmembers()
            for member in members:
                _check_member_name(archive, member.name)
                if member.issym() or member.islnk():
                    raise PipelineError(f"{archive.name}: entry {member.name!r} is a link; refusing it")
                if not (member.isfile() or member.isdir()):
                    raise PipelineError(f"{archive.name}: entry {member.name!r} is not a regular file; refusing it")
            _check_size(archive, sum(member.size for member in members))
            tf.extractall(target, filter="data")
            return sum(1 for member in members if member.isfile())
    except (tarfile.TarError, EOFError, OSError) as error:
        raise PipelineError(f"{archive.name} is a corrupt or truncated tar archive: {error}") from None

"""Unpack a dataset archive safely: zip or tar.gz, nothing outside the target, nothing half-done.

A corrupt or hostile archive is a PipelineError (final: the same file fails the same way). Trouble
of the machine rather than the file (disk full, permission denied, I/O error) is a TransientError,
so Airflow retries it.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import logging
import sys
import tarfile
import zipfile
import zlib
from pathlib import Path, PurePosixPath

from musicrec.errors import PipelineError, TransientError
from musicrec.paths import staged_dir
from musicrec.progress import every

log = logging.getLogger("musicrec")

MAX_TOTAL_BYTES = 50 * (1 << 30)  # uncompressed
MAX_RATIO = 200  # uncompressed / compressed, per archive: real datasets compress ~3-10x
# OSErrors that describe the machine, not the archive: worth a retry.
ENVIRONMENT_ERRNOS = {
    code: text
    for code, text in (
        (errno.ENOSPC, "no space left on the device"),
        (getattr(errno, "EDQUOT", None), "disk quota exceeded"),
        (errno.EACCES, "permission denied"),
        (errno.EPERM, "operation not permitted"),
        (errno.EROFS, "read-only file system"),
        (errno.EIO, "input/output error"),
        (errno.EMFILE, "too many open files"),
        (errno.ENFILE, "too many open files in the system"),
        (errno.ENOMEM, "out of memory"),
        (getattr(errno, "ESTALE", None), "stale network file handle"),
    )
    if code is not None
}


def extract(archive: Path, target: Path, sha256: str | None = None) -> int:
    """Extract `archive` into folder `target` (replacing it) and return the number of files.

    With `sha256`, the archive must have that checksum (the one download recorded): the shared
    download cache may hold a newer copy than the run that asks.
    """
    archive = Path(archive)
    if not archive.is_file():
        raise PipelineError(f"archive {archive} does not exist")
    try:
        if sha256:
            _check_sha256(archive, sha256)
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
    except OSError as error:
        if _is_environmental(error):
            raise _environment_error(archive, target, error) from None
        raise
    return count


def _check_sha256(archive: Path, expected: str) -> None:
    digest = hashlib.sha256()
    with open(archive, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    expected = expected.strip().lower()
    if digest.hexdigest() != expected:
        raise PipelineError(
            f"{archive} has sha256 {digest.hexdigest()}, not the {expected} that download recorded: the "
            "cached archive was replaced since (a newer snapshot of the same URL); re-run the run from download"
        )


def _is_environmental(error: OSError) -> bool:
    return error.errno in ENVIRONMENT_ERRNOS


def _environment_error(archive: Path, target: Path, error: OSError) -> TransientError:
    what = ENVIRONMENT_ERRNOS[error.errno]
    where = f" ({error.filename})" if error.filename else ""
    return TransientError(
        f"extracting {archive.name} into {target} failed: {what}{where} [{errno.errorcode.get(error.errno, error.errno)}]. "
        "This is a problem of the machine or its disk, not of the archive; the task will be retried"
    )


def _is_tar(archive: Path) -> bool:
    try:
        return tarfile.is_tarfile(archive)
    except OSError as error:
        if _is_environmental(error):  # unreadable is not "not a tar"
            raise
        return False


def _check_member_name(archive: Path, name: str) -> None:
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts or (path.parts and ":" in path.parts[0]):
        raise PipelineError(f"{archive.name}: entry {name!r} would be written outside the target folder; refusing it")


def _check_size(archive: Path, total: int) -> int:
    """`total` (uncompressed bytes), unless it is absurd for the archive's size."""
    compressed = max(archive.stat().st_size, 1)
    if total > MAX_TOTAL_BYTES or total / compressed > MAX_RATIO:
        raise PipelineError(
            f"{archive.name}: uncompressed size {total} bytes ({total / compressed:.0f}x the archive) "
            f"exceeds the limits ({MAX_TOTAL_BYTES} bytes, {MAX_RATIO}x); refusing a likely zip bomb"
        )
    return total


def _corrupt(archive: Path, kind: str, error: BaseException) -> PipelineError:
    return PipelineError(f"{archive.name} is a corrupt or truncated {kind} archive: {error}")


@contextlib.contextmanager
def _read_as(archive: Path, kind: str, format_errors: tuple[type[BaseException], ...]):
    """Report a broken archive as corrupt (bad input); the machine's own faults pass through."""
    try:
        yield
    except format_errors as error:
        raise _corrupt(archive, kind, error) from None
    except OSError as error:
        if _is_environmental(error):
            raise
        raise _corrupt(archive, kind, error) from None


def _extract_zip(archive: Path, target: Path) -> int:
    with _read_as(archive, "zip", (zipfile.BadZipFile, EOFError, zlib.error)):
        with zipfile.ZipFile(archive) as zf:
            members = zf.infolist()
            for info in members:
                _check_member_name(archive, info.filename)
                if (info.external_attr >> 16) & 0o170000 == 0o120000:
                    raise PipelineError(f"{archive.name}: entry {info.filename!r} is a symbolic link; refusing it")
            total = _check_size(archive, sum(info.file_size for info in members))
            due, done = every(), 0
            for number, info in enumerate(members, start=1):
                zf.extract(info, target)
                done += info.file_size
                _log_progress(archive, due, number, len(members), done, total)
            return sum(1 for info in members if not info.is_dir())


def _extract_tar(archive: Path, target: Path) -> int:
    if not hasattr(tarfile, "data_filter"):  # Python < 3.10.12 / 3.11.4: no extraction filters
        raise PipelineError(f"extracting {archive.name} needs Python 3.10.12+ or 3.11.4+ (tarfile filters); this is {sys.version.split()[0]}")
    with _read_as(archive, "tar", (tarfile.TarError, EOFError, zlib.error)):
        with tarfile.open(archive) as tf:
            members = tf.getmembers()
            for member in members:
                _check_member_name(archive, member.name)
                if member.issym() or member.islnk():
                    raise PipelineError(f"{archive.name}: entry {member.name!r} is a link; refusing it")
                if not (member.isfile() or member.isdir()):
                    raise PipelineError(f"{archive.name}: entry {member.name!r} is not a regular file; refusing it")
            total = _check_size(archive, sum(member.size for member in members))
            due, done = every(), 0
            for number, member in enumerate(members, start=1):
                tf.extract(member, target, filter="data")
                done += member.size
                _log_progress(archive, due, number, len(members), done, total)
            return sum(1 for member in members if member.isfile())


def _log_progress(archive: Path, due, number: int, count: int, done: int, total: int) -> None:
    """A line at most every 15 s (musicrec.progress.every): a big archive takes minutes."""
    if due() or number == count:
        log.info("extracting %s: %d of %d entries, %.0f of %.0f MB", archive.name, number, count, done / 1e6, total / 1e6)

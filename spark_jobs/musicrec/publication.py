"""The publication: the CSV and model that users read, swapped in together, newest date wins.

    <data root>/published/
      current -> versions/<n>-<run>                  the one link swapped to publish (atomic rename)
      recommended_songs.csv -> current/recommended_songs.csv
      model -> current/model
      publication.json -> current/publication.json   which run and logical date published it
      versions/<n>-<run>/                            the few latest publications, numbered (for rollback)
      publications.jsonl                             one line per publication or rollback

      .lock                                          held while publishing

`current` changes in one rename, so one look through it sees one publication's CSV and model. A
reader that needs both over time (Spark reads a model file by file) should resolve `current`
once and read from that version folder (`version_dir`; the XCom and asset event name it). A run publishes only if its logical date is not
older than the current publication's: a backfill of an old date, or a cleared old run, never
replaces what a newer date published.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from musicrec.paths import RECOMMENDATIONS_FILE, published_dir, safe_name, staged_dir

CURRENT = "current"
VERSIONS = "versions"
RECORD = "publication.json"
LOG = "publications.jsonl"
MODEL = "model"
STABLE_LINKS = (RECOMMENDATIONS_FILE, MODEL, RECORD)  # each -> current/<same name>


@dataclass(frozen=True)
class Outcome:
    published: bool
    reason: str
    record: dict[str, Any]  # what is published now (this run's record when published)


def current_record(root: Path) -> dict[str, Any] | None:
    """The record of what is published under data root `root`, or None before the first publication."""
    try:
        return json.loads((published_dir(root) / CURRENT / RECORD).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None


def publish(root: Path, csv: Path, model: Path, record: dict[str, Any], keep: int = 3) -> Outcome:
    """Publish `csv` and `model` of one run together, unless a newer logical date is published.

    `record` must hold `run_id` and `logical_date` (ISO 8601 with a zone); it is stored beside
    them. Copies, not the run's own files, so re-running that run cannot touch the publication.
    A retry of a run whose identical CSV is already current publishes nothing new.
    """
    out = published_dir(root)
    out.mkdir(parents=True, exist_ok=True)
    when = _parse_date(record["logical_date"])
    csv_sha256 = _sha256(csv)
    with _lock(out / ".lock"):
        _remove_crash_leftovers(out)
        current = current_record(root)
        if current is not None and _parse_date(current["logical_date"]) > when:
            return Outcome(
                False,
                f"not published: run {current['run_id']} of the newer logical date {current['logical_date']} "
                f"is published; this run's date is {record['logical_date']}",
                current,
            )
        if current is not None and (current["run_id"], current.get("csv_sha256")) == (record["run_id"], csv_sha256):
            return Outcome(True, f"already published: run {record['run_id']} (a retry)", current)
        sequence = max((_sequence(v) for v in _versions(out / VERSIONS)), default=0) + 1
        record = {
            **record,
            "csv_sha256": csv_sha256,
            "sequence": sequence,
            "published_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        version = out / VERSIONS / f"{sequence:06d}-{_label(record['run_id'])}"
        record["version"] = version.name
        with staged_dir(version) as staging:
            shutil.copytree(model, staging / MODEL)
            shutil.copyfile(csv, staging / RECOMMENDATIONS_FILE)
            (staging / RECORD).write_text(json.dumps(record, indent=2, sort_keys=True), encoding="utf-8")
            _fsync_tree(staging)
        _fsync_dir(out / VERSIONS)
        _point(out / CURRENT, Path(VERSIONS) / version.name)
        for name in STABLE_LINKS:
            _ensure_link(out / name, Path(CURRENT) / name)
        _fsync_dir(out)
        _log(out, record)
        _prune(out / VERSIONS, keep)
        return Outcome(True, f"published run {record['run_id']} ({record['logical_date']})", record)


def version_dir(root: Path) -> Path:
    """The folder of the current publication: stable while later publications come and go."""
    return (published_dir(root) / CURRENT).resolve()


def rollback(root: Path) -> dict[str, Any]:
    """Point `current` at the kept publication published before it (an operator's undo).

    Repeated rollbacks step further back. Returns the record now current.
    """
    out = published_dir(root)
    with _lock(out / ".lock"):
        now = _sequence((out / CURRENT).resolve())
        older = [v for v in _versions(out / VERSIONS) if _sequence(v) < now]
        if not older:
            raise FileNotFoundError(f"no publication older than the current one is kept in {out / VERSIONS}")
        _point(out / CURRENT, Path(VERSIONS) / older[0].name)
        _fsync_dir(out)
        record = json.loads((older[0] / RECORD).read_text(encoding="utf-8"))
        _log(out, {"rollback_to": older[0].name, "run_id": record["run_id"],
                   "at": datetime.now(timezone.utc).isoformat(timespec="seconds")})
        return record


def _parse_date(text: str) -> datetime:
    when = datetime.fromisoformat(text)
    if when.tzinfo is None:
        raise ValueError(f"logical date {text!r} has no time zone")
    return when


def _label(run_id: str) -> str:
    return safe_name(run_id)[:80]


@contextlib.contextmanager
def _lock(path: Path) -> Iterator[None]:
    """An exclusive lock between publishers on this filesystem (two runs finishing at once)."""
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _point(link: Path, target: Path) -> None:
    """Make `link` point at `target` (relative) with one atomic rename."""
    tmp = link.parent / f".{link.name}.{uuid.uuid4().hex[:8]}.tmp"
    os.symlink(target, tmp)
    os.replace(tmp, link)


def _ensure_link(link: Path, target: Path) -> None:
    if not (link.is_symlink() and Path(os.readlink(link)) == target):
        if link.is_dir() and not link.is_symlink():  # a layout older than this module
            shutil.rmtree(link)
        _point(link, target)


def _sequence(version: Path) -> int:
    """A version's publication number (its folder name starts with it)."""
    head = version.name.split("-", 1)[0]
    return int(head) if head.isdigit() else 0


def _versions(folder: Path) -> list[Path]:
    """Kept publications, the most recently published first."""
    if not folder.exists():
        return []
    found = [p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")]
    return sorted(found, key=_sequence, reverse=True)


def _prune(folder: Path, keep: int) -> None:
    """Keep the `keep` most recent publications, and always the current one."""
    current = (folder.parent / CURRENT).resolve()
    for old in _versions(folder)[keep:]:
        if old.resolve() != current:
            shutil.rmtree(old, ignore_errors=True)


def _remove_crash_leftovers(out: Path) -> None:
    """A publisher killed half-way leaves a hidden staging copy or a link being made: drop them."""
    for leftover in [*(out / VERSIONS).glob(".*"), *out.glob(f".{CURRENT}.*.tmp"), *out.glob(".*.tmp")]:
        if leftover.is_dir() and not leftover.is_symlink():
            shutil.rmtree(leftover, ignore_errors=True)
        else:
            leftover.unlink(missing_ok=True)


def _log(out: Path, entry: dict[str, Any]) -> None:
    with open(out / LOG, "a", encoding="utf-8") as log:
        log.write(json.dumps(entry, sort_keys=True) + "\n")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _fsync_tree(folder: Path) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())


def _fsync_dir(folder: Path) -> None:
    """Make renames in `folder` durable (a power cut must not undo a reported publication)."""
    if folder.exists():
        handle = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(handle)
        finally:
            os.close(handle)

"""The publication: the CSV and model that users read, swapped in together, newest date wins.

    <data root>/published/
      current -> versions/<run>-<id>                 the one link swapped to publish (atomic rename)
      recommended_songs.csv -> current/recommended_songs.csv
      model -> current/model
      publication.json -> current/publication.json   which run and logical date published it
      versions/<run>-<id>/                           the few newest publications (for rollback)
      publications.jsonl                             one line per publication, for operators
      .lock                                          held while publishing

A reader that opens `recommended_songs.csv` and `model` sees one publication's pair: both resolve
through `current`, which changes in one rename. A run publishes only if its logical date is not
older than the current publication's: a backfill of an old date, or a cleared old run, never
replaces what a newer date published.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from musicrec.paths import RECOMMENDATIONS_FILE, published_dir, staged_dir

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
    """
    out = published_dir(root)
    out.mkdir(parents=True, exist_ok=True)
    when = _parse_date(record["logical_date"])
    with _lock(out / ".lock"):
        current = current_record(root)
        if current is not None and _parse_date(current["logical_date"]) > when:
            return Outcome(
                False,
                f"not published: run {current['run_id']} of the newer logical date {current['logical_date']} "
                f"is published; this run's date is {record['logical_date']}",
                current,
            )
        record = {**record, "published_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        version = out / VERSIONS / f"{_label(record['run_id'])}-{uuid.uuid4().hex[:8]}"
        with staged_dir(version) as staging:
            shutil.copytree(model, staging / MODEL)
            shutil.copyfile(csv, staging / RECOMMENDATIONS_FILE)
            (staging / RECORD).write_text(json.dumps(record, indent=2, sort_keys=True), encoding="utf-8")
            _fsync_tree(staging)
        _point(out / CURRENT, Path(VERSIONS) / version.name)
        for name in STABLE_LINKS:
            _ensure_link(out / name, Path(CURRENT) / name)
        with open(out / LOG, "a", encoding="utf-8") as log:
            log.write(json.dumps({**record, "version": version.name}, sort_keys=True) + "\n")
        _prune(out / VERSIONS, keep, keep_also=version)
        return Outcome(True, f"published run {record['run_id']} ({record['logical_date']})", record)


def rollback(root: Path) -> dict[str, Any]:
    """Point `current` at the publication before it (an operator's undo); returns its record."""
    out = published_dir(root)
    with _lock(out / ".lock"):
        now = (out / CURRENT).resolve()
        older = [v for v in _versions(out / VERSIONS) if v.resolve() != now and v.stat().st_mtime <= now.stat().st_mtime]
        if not older:
            raise FileNotFoundError(f"no earlier publication is kept in {out / VERSIONS}")
        _point(out / CURRENT, Path(VERSIONS) / older[0].name)
        os.utime(older[0])  # it is the newest publication now, so pruning keeps it
        return json.loads((older[0] / RECORD).read_text(encoding="utf-8"))


def _parse_date(text: str) -> datetime:
    when = datetime.fromisoformat(text)
    if when.tzinfo is None:
        raise ValueError(f"logical date {text!r} has no time zone")
    return when


def _label(run_id: str) -> str:
    from musicrec.paths import safe_name

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


def _versions(folder: Path) -> list[Path]:
    """Kept publications, newest first."""
    if not folder.exists():
        return []
    found = [p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")]
    return sorted(found, key=lambda p: p.stat().st_mtime, reverse=True)


def _prune(folder: Path, keep: int, keep_also: Path) -> None:
    current = (folder.parent / CURRENT).resolve()
    for old in _versions(folder)[keep:]:
        if old.resolve() not in (current, keep_also.resolve()):
            shutil.rmtree(old, ignore_errors=True)


def _fsync_tree(folder: Path) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())

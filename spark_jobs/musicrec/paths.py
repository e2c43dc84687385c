"""Where everything lives on disk, and how outputs appear there atomically.

    <data root>/
      runs/<run id>/<step>/...        each run writes only here; a re-run replaces its own steps
      published/recommended_songs.csv the latest good CSV, swapped in by an atomic rename
      published/model -> models/<run>  the latest good model, swapped in by an atomic symlink rename
      cache/downloads/<key>/<archive>  downloaded archives, by URL and checksum, shared by runs

Every step output is written to a hidden staging sibling and renamed into place only when the
step succeeded, so a retry never reads a half-written output and a failure damages nothing.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

DATA_ROOT_ENV = "MUSICREC_DATA_ROOT"
PROJECT_ROOT = Path(__file__).resolve().parents[2]
RECOMMENDATIONS_FILE = "recommended_songs.csv"
_STAGING_MARK = ".staging-"


def data_root() -> Path:
    """The data root: $MUSICREC_DATA_ROOT, or `data/` inside the project (ignored by git)."""
    return Path(os.environ.get(DATA_ROOT_ENV) or PROJECT_ROOT / "data").resolve()


def safe_name(run_id: str) -> str:
    """A run ID as a folder name: Airflow's `manual__2026-01-01T00:00:00+00:00` has `:` and `+`."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", run_id).strip("._")
    if not name:
        raise ValueError(f"run id {run_id!r} has no usable characters for a folder name")
    return name


def run_dir(root: Path, run_id: str) -> Path:
    return root / "runs" / safe_name(run_id)


def published_dir(root: Path) -> Path:
    return root / "published"


@contextlib.contextmanager
def staged_dir(final: Path) -> Iterator[Path]:
    """Yield an empty staging folder that replaces `final` only if the block succeeds.

    Leftovers of earlier crashed attempts are removed first. The swap is two renames on the same
    filesystem; the old content is deleted only after the new one is in place.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    for stale in final.parent.glob(f".{final.name}{_STAGING_MARK}*"):
        shutil.rmtree(stale, ignore_errors=True)
    staging = final.parent / f".{final.name}{_STAGING_MARK}{uuid.uuid4().hex[:8]}"
    staging.mkdir()
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    replace_dir(staging, final)


def replace_dir(source: Path, final: Path) -> None:
    """Move folder `source` to `final`, replacing what was there."""
    if final.exists() or final.is_symlink():
        retired = final.parent / f".{final.name}{_STAGING_MARK}old-{uuid.uuid4().hex[:8]}"
        os.rename(final, retired)
        os.rename(source, final)
        shutil.rmtree(retired, ignore_errors=True)
    else:
        os.rename(source, final)


def publish_file(source: Path, final: Path) -> Path:
    """Copy `source` to `final` so that readers see either the old file or the new, never half."""
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / f".{final.name}.{uuid.uuid4().hex[:8]}.tmp"
    try:
        shutil.copyfile(source, tmp)
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)
    return final


def publish_dir_as_link(source: Path, versions_dir: Path, link: Path, label: str, keep: int = 3) -> Path:
    """Copy folder `source` into `versions_dir` and point `link` at it with an atomic rename.

    A copy, not the run's own folder, so that re-running that run cannot touch the published one.
    The `keep` newest versions stay; older ones are removed once nothing points at them.
    """
    versions_dir.mkdir(parents=True, exist_ok=True)
    version = versions_dir / f"{label}-{uuid.uuid4().hex[:8]}"
    with staged_dir(version) as staging:
        shutil.copytree(source, staging, dirs_exist_ok=True)
    os.utime(version)  # copytree copied the source's times; the version's age is its publication
    tmp_link = link.parent / f".{link.name}.{uuid.uuid4().hex[:8]}.tmp"
    os.symlink(os.path.relpath(version, link.parent), tmp_link)
    os.replace(tmp_link, link)
    versions = sorted(
        (p for p in versions_dir.iterdir() if p.is_dir() and not p.name.startswith(".")),
        key=lambda p: p.stat().st_mtime,
        reverse=True,
    )
    for old in versions[keep:]:
        if old.resolve() != link.resolve():
            shutil.rmtree(old, ignore_errors=True)
    return link


def published_dir_of_run(run: Path) -> Path:
    """The published folder of the data root that holds run folder `run`."""
    return published_dir(Path(run).parents[1])


def download_cache_of_run(run: Path) -> Path:
    """The download cache of the data root that holds run folder `run`."""
    return Path(run).parents[1] / "cache" / "downloads"

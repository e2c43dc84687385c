"""Where everything lives on disk, and how outputs appear there atomically.

    <data root>/
      runs/<run id>/<step>/...        each run writes only here; a re-run replaces its own steps
      published/...                   the CSV and model users read (musicrec.publication)
      cache/downloads/<key>/<archive>  downloaded archives, by URL and checksum, shared by runs

Every step output is written to a hidden staging sibling and renamed into place only when the
step succeeded, so a retry never reads a half-written output and a failure damages nothing.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

DATA_ROOT_ENV = "MUSICREC_DATA_ROOT"
PROJECT_ROOT = Path(__file__).resolve().parents[2]
RECOMMENDATIONS_FILE = "recommended_songs.csv"
REPORT_FILE = "report.html"  # evaluate's self-contained HTML report of a run
_STAGING_MARK = ".staging-"


def data_root() -> Path:
    """The data root: $MUSICREC_DATA_ROOT, or `data/` inside the project (ignored by git)."""
    return Path(os.environ.get(DATA_ROOT_ENV) or PROJECT_ROOT / "data").resolve()


_HASH_SUFFIX = re.compile(r"-h[0-9a-f]{12}$")


def safe_name(run_id: str) -> str:
    """A run ID as a folder name, one folder per run ID.

    Airflow's `manual__2026-01-01T00:00:00+00:00` has `:` and `+`: they become `_`, and since
    that could make two run IDs look alike (`a:b`, `a+b`), a changed name gets `-h` and 12 hex
    digits of the original ID's SHA-256. A clean ID stays as it is, unless it already ends like
    such a suffix (then it gets one too), so no clean ID can equal another's sanitised name.
    """
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", run_id).strip("._")
    if not name:
        raise ValueError(f"run id {run_id!r} has no usable characters for a folder name")
    if name != run_id or _HASH_SUFFIX.search(name):
        name += "-h" + hashlib.sha256(run_id.encode("utf-8")).hexdigest()[:12]
    return name


def run_dir(root: Path, run_id: str) -> Path:
    return root / "runs" / safe_name(run_id)


def report_path(root: Path, run_id: str) -> Path:
    """Where evaluate writes a run's report (also when the gate refuses the run)."""
    return run_dir(root, run_id) / "evaluate" / REPORT_FILE


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


def data_root_of_run(run: Path) -> Path:
    """The data root that holds run folder `run`."""
    return Path(run).parents[1]


def download_cache_of_run(run: Path) -> Path:
    """The download cache of the data root that holds run folder `run`."""
    return data_root_of_run(run) / "cache" / "downloads"

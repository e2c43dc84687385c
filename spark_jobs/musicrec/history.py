"""The run history: one row per run, in a SQLite file under the data root (`history.sqlite`).

evaluate records each run's params, metrics, data fingerprint (URL, sha256, row counts), split,
timings, logical date and the gate's decision; recommend adds whether it published; a task that
fails adds the step and error (the operator's failure callback). Each write is one transaction,
so a run that dies half-way leaves the rows before it intact. The report's history plot reads it.
SQLite wants a local filesystem: on a cluster, keep the data root on the Airflow machine (it is:
jobs run their driver there, client mode) or on a volume with working locks.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

FILE = "history.sqlite"
COLUMNS = (
    "run_id", "dataset_key", "logical_date", "status", "headline_metric", "model_score", "baseline_score",
    "champion_score", "promoted", "published", "failed_step", "error", "details", "recorded_at",
)
_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    dataset_key TEXT,
    logical_date TEXT,
    status TEXT,              -- promoted | forced | refused | superseded (a backfill) | failed
    headline_metric TEXT,
    model_score REAL,
    baseline_score REAL,
    champion_score REAL,
    promoted INTEGER,         -- 1: passed the gate (or forced)
    published INTEGER,        -- 1: recommend published its CSV; NULL: not reached
    failed_step TEXT,
    error TEXT,
    details TEXT,             -- JSON: params, metrics, fingerprint, split, timings, gate
    recorded_at TEXT
)
"""


def history_file(root: Path) -> Path:
    return Path(root) / FILE


@contextlib.contextmanager
def _connect(root: Path) -> Iterator[sqlite3.Connection]:
    path = history_file(root)
    path.parent.mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(path, timeout=60)
    try:
        with connection:  # one transaction: committed on success, rolled back on any error
            connection.execute(_SCHEMA)
            yield connection
    finally:
        connection.close()


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def record_evaluation(root: Path, run_id: str, dataset_key: str, logical_date: str, decision: dict,
                      headline: dict, details: dict) -> None:
    """The run's evaluation and gate decision (a re-run of the same run replaces its row)."""
    row = {
        "run_id": run_id, "dataset_key": dataset_key, "logical_date": logical_date,
        "status": decision["decision"], "headline_metric": headline["metric"],
        "model_score": headline["model"], "baseline_score": headline["baseline"],
        "champion_score": headline.get("champion"), "promoted": int(bool(decision["promote"])),
        "published": None, "failed_step": None, "error": None,
        "details": json.dumps(details, sort_keys=True, default=str), "recorded_at": _now(),
    }
    with _connect(root) as db:
        db.execute(f"INSERT OR REPLACE INTO runs ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})",
                   [row[name] for name in COLUMNS])


def record_publication(root: Path, run_id: str, published: bool) -> None:
    with _connect(root) as db:
        db.execute("UPDATE runs SET published = ?, recorded_at = ? WHERE run_id = ?", (int(published), _now(), run_id))


def record_failure(root: Path, run_id: str, step: str, error: str, dataset_key: str | None = None,
                   logical_date: str | None = None) -> None:
    """A failed step: the run's row keeps what evaluate recorded (a refusal stays a refusal)."""
    with _connect(root) as db:
        db.execute(
            "INSERT INTO runs (run_id, dataset_key, logical_date, status, failed_step, error, recorded_at) "
            "VALUES (?, ?, ?, 'failed', ?, ?, ?) ON CONFLICT(run_id) DO UPDATE SET "
            "failed_step = excluded.failed_step, error = excluded.error, recorded_at = excluded.recorded_at",
            (run_id, dataset_key, logical_date, step, error, _now()),
        )


def runs(root: Path, dataset_key: str | None = None) -> list[dict[str, Any]]:
    """Every recorded run (of one dataset), oldest logical date first."""
    if not history_file(root).exists():
        return []
    with _connect(root) as db:
        db.row_factory = sqlite3.Row
        query = "SELECT * FROM runs" + (" WHERE dataset_key = ?" if dataset_key else "") + " ORDER BY logical_date, recorded_at"
        rows = db.execute(query, (dataset_key,) if dataset_key else ()).fetchall()
    return [{**dict(row), "details": json.loads(row["details"]) if row["details"] else {}} for row in rows]

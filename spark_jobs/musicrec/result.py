"""The XCom contract: what each step returns, written once for the jobs and the operator.

A job writes its result as a small JSON file; the operator reads it back and returns it, so it
becomes the task's XCom. Downstream tasks take their inputs only from these keys.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from musicrec.errors import PipelineError, TransientError

# The keys each step must return (it may return more facts, such as counts).
STEP_OUTPUTS: dict[str, tuple[str, ...]] = {
    "download": ("archive_path", "source_url", "dataset_url_template", "size_bytes", "sha256"),
    "extract": ("dataset_dir", "file_count", "dataset_bytes", "estimated_rows"),
    "preprocess": (
        "interactions_path",
        "items_path",
        "user_ids_path",
        "song_ids_path",
        "rejects_path",
        "dataset_format",
        "feedback",
        "rating_max",
        "rows_read",
        "rows_kept",
        "rows_rejected",
        "users",
        "songs",
    ),
    "train": (
        "model_path", "eval_model_path", "refit", "train_path", "test_path", "feedback", "split", "params", "tuning",
        "train_rows", "test_rows", "train_max_timestamp",
    ),
    "evaluate": (
        "metrics_path", "report_path", "feedback", "headline_metric", "model_score", "baseline_score", "gate",
        "dataset_key", "champion_record",
    ),
    "recommend": (
        "csv_path",
        "published",
        "publication",
        "published_csv_path",
        "published_model_path",
        "published_run_id",
        "users",
        "rows",
    ),
}
STEPS = tuple(STEP_OUTPUTS)


def write_result(path: str | os.PathLike, step: str, facts: dict[str, Any]) -> None:
    """Write a successful step's facts; refuse a result that breaks the contract."""
    missing = [key for key in STEP_OUTPUTS[step] if key not in facts]
    if missing:
        raise ValueError(f"step {step!r} result lacks {missing}: see musicrec.result.STEP_OUTPUTS")
    _write_json(path, {"step": step, **facts})


def write_error(path: str | os.PathLike, step: str, message: str, retryable: bool) -> None:
    _write_json(path, {"step": step, "error": message, "retryable": retryable})


def read_result(path: str | os.PathLike) -> dict[str, Any]:
    """Read a step's result; a recorded error is raised again with its message."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if "error" in data:
        error_type = TransientError if data.get("retryable") else PipelineError
        raise error_type(data["error"])
    return data


def _write_json(path: str | os.PathLike, data: dict[str, Any]) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True, default=str), encoding="utf-8")
    os.replace(tmp, path)

"""The run history: rows per run, refusals and failures kept, a broken write leaves nothing half-done."""

from __future__ import annotations

import sqlite3

import pytest

from musicrec import history

DECISION = {"promote": True, "decision": "promoted", "reasons": [], "warnings": []}
HEADLINE = {"metric": "rmse", "model": 0.84, "baseline": 0.87, "champion": None}


def test_evaluation_publication_and_failure_are_recorded(tmp_path):
    history.record_evaluation(tmp_path, "run-1", "sample|csv|explicit", "2026-01-01T00:00:00+00:00", DECISION, HEADLINE, {"params": {"rank": 20}})
    history.record_publication(tmp_path, "run-1", True)
    refused = {**DECISION, "promote": False, "decision": "refused"}
    history.record_evaluation(tmp_path, "run-2", "sample|csv|explicit", "2026-01-02T00:00:00+00:00", refused, {**HEADLINE, "model": 0.9}, {})
    history.record_failure(tmp_path, "run-2", "evaluate", "the quality gate refused")
    history.record_failure(tmp_path, "run-3", "preprocess", "too many bad rows", logical_date="2026-01-03T00:00:00+00:00")
    history.record_evaluation(tmp_path, "other-1", "ml|csv|explicit", "2026-01-01T00:00:00+00:00", DECISION, HEADLINE, {})

    rows = {row["run_id"]: row for row in history.runs(tmp_path)}
    assert rows["run-1"]["status"] == "promoted" and rows["run-1"]["published"] == 1
    assert rows["run-1"]["details"] == {"params": {"rank": 20}}
    assert rows["run-2"]["status"] == "refused" and rows["run-2"]["failed_step"] == "evaluate"  # still a refusal
    assert rows["run-3"]["status"] == "failed" and rows["run-3"]["error"] == "too many bad rows"
    assert [row["run_id"] for row in history.runs(tmp_path, "sample|csv|explicit")] == ["run-1", "run-2"]


def test_a_write_that_fails_half_way_changes_nothing(tmp_path, monkeypatch):
    history.record_evaluation(tmp_path, "run-1", "k", "2026-01-01T00:00:00+00:00", DECISION, HEADLINE, {})
    with pytest.raises(sqlite3.Error):
        with history._connect(tmp_path) as db:
            db.execute("UPDATE runs SET status = 'broken' WHERE run_id = 'run-1'")
            db.execute("INSERT INTO no_such_table VALUES (1)")
    assert history.runs(tmp_path)[0]["status"] == "promoted"


def test_no_history_yet_is_empty(tmp_path):
    assert history.runs(tmp_path / "nothing") == []

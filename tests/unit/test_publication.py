"""The publication: CSV and model swapped in together, newest logical date wins, rollback."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest

from musicrec import publication
from musicrec.paths import RECOMMENDATIONS_FILE


def make_run(root: Path, run_id: str, content: str) -> tuple[Path, Path]:
    run = root / "runs" / run_id
    (run / "model" / "data").mkdir(parents=True, exist_ok=True)
    (run / "model" / "data" / "weights").write_text(content)
    (run / RECOMMENDATIONS_FILE).write_text(f"user_id,rank\n{content},1\n")
    return run / RECOMMENDATIONS_FILE, run / "model"


def publish(root: Path, run_id: str, day: str, content: str | None = None):
    csv, model = make_run(root, run_id, content or run_id)
    return publication.publish(root, csv, model, {"run_id": run_id, "logical_date": f"{day}T00:00:00+00:00"})


def published(root: Path) -> tuple[str, str, str]:
    out = root / "published"
    return (
        (out / RECOMMENDATIONS_FILE).read_text().splitlines()[1],
        (out / "model" / "data" / "weights").read_text(),
        json.loads((out / "publication.json").read_text())["run_id"],
    )


def test_csv_and_model_are_published_together_as_copies(tmp_path):
    assert publication.current_record(tmp_path) is None
    outcome = publish(tmp_path, "r1", "2026-03-01")
    assert outcome.published and outcome.record["run_id"] == "r1"
    assert published(tmp_path) == ("r1,1", "r1", "r1")
    (tmp_path / "runs" / "r1" / "model" / "data" / "weights").write_text("changed by a re-run")
    assert published(tmp_path)[1] == "r1"
    # One link is swapped; the names users read are stable links through it.
    out = tmp_path / "published"
    for name in (RECOMMENDATIONS_FILE, "model", "publication.json"):
        assert os.readlink(out / name) == f"current/{name}"
    assert os.readlink(out / "current").startswith("versions/r1-")


def test_an_older_logical_date_never_replaces_a_newer_one(tmp_path):
    publish(tmp_path, "scheduled__2026-03-03", "2026-03-03")
    outcome = publish(tmp_path, "backfill__2026-03-01", "2026-03-01")
    assert not outcome.published
    assert "newer logical date 2026-03-03" in outcome.reason and "2026-03-01" in outcome.reason
    assert published(tmp_path) == ("scheduled__2026-03-03,1", "scheduled__2026-03-03", "scheduled__2026-03-03")
    assert publish(tmp_path, "scheduled__2026-03-04", "2026-03-04").published
    assert publish(tmp_path, "scheduled__2026-03-04", "2026-03-04", "cleared and re-run").published  # same date: replaces
    assert published(tmp_path)[0] == "cleared and re-run,1"
    log = [json.loads(line) for line in (tmp_path / "published" / "publications.jsonl").read_text().splitlines()]
    assert [entry["run_id"] for entry in log] == ["scheduled__2026-03-03", "scheduled__2026-03-04", "scheduled__2026-03-04"]


def test_failure_half_way_leaves_the_publication_whole(tmp_path, monkeypatch):
    publish(tmp_path, "r1", "2026-03-01")
    before = published(tmp_path)
    real_copy = publication.shutil.copyfile

    def disk_full(src, dst, *args, **kwargs):
        real_copy(src, dst, *args, **kwargs)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(publication.shutil, "copyfile", disk_full)
    with pytest.raises(OSError, match="No space"):
        publish(tmp_path, "r2", "2026-03-02")
    assert published(tmp_path) == before
    assert [p.name for p in (tmp_path / "published" / "versions").iterdir() if p.name.startswith(".")] == []


def test_old_versions_are_pruned_but_never_the_current_one(tmp_path):
    for day in range(1, 7):
        publish(tmp_path, f"r{day}", f"2026-03-0{day}")
    versions = sorted(p.name.split("-")[0] for p in (tmp_path / "published" / "versions").iterdir())
    assert versions == ["r4", "r5", "r6"]
    # After a rollback the current version is older than three newer ones: it must survive pruning.
    assert publication.rollback(tmp_path)["run_id"] == "r5"
    assert published(tmp_path)[2] == "r5"
    publish(tmp_path, "r7", "2026-03-07")
    publish(tmp_path, "r8", "2026-03-08")
    assert published(tmp_path)[2] == "r8"


def test_rollback_points_at_the_previous_publication(tmp_path):
    publish(tmp_path, "r1", "2026-03-01")
    with pytest.raises(FileNotFoundError, match="no earlier publication"):
        publication.rollback(tmp_path)
    publish(tmp_path, "r2", "2026-03-02")
    assert publication.rollback(tmp_path)["run_id"] == "r1"
    assert published(tmp_path) == ("r1,1", "r1", "r1")


def test_two_publishes_at_once_leave_one_whole_publication(tmp_path):
    runs = [make_run(tmp_path, f"r{i}", f"r{i}") for i in range(6)]
    errors = []

    def go(i):
        try:
            csv, model = runs[i]
            publication.publish(tmp_path, csv, model, {"run_id": f"r{i}", "logical_date": "2026-03-01T00:00:00+00:00"})
        except Exception as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=go, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    csv_user, weights, run_id = published(tmp_path)
    assert csv_user == f"{run_id},1" and weights == run_id  # the CSV, model and record of one run
    assert len((tmp_path / "published" / "publications.jsonl").read_text().splitlines()) == 6


def test_a_date_without_zone_is_refused(tmp_path):
    csv, model = make_run(tmp_path, "r1", "x")
    with pytest.raises(ValueError, match="no time zone"):
        publication.publish(tmp_path, csv, model, {"run_id": "r1", "logical_date": "2026-03-01T00:00:00"})

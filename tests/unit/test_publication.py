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
    assert os.readlink(out / "current") == "versions/000001-r1"
    assert publication.version_dir(tmp_path) == (out / "versions" / "000001-r1").resolve()


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
    versions = sorted(p.name for p in (tmp_path / "published" / "versions").iterdir())
    assert versions == ["000004-r4", "000005-r5", "000006-r6"]
    # Roll back twice: r4 is current, and older than the three kept after three more publications.
    assert publication.rollback(tmp_path)["run_id"] == "r5"
    assert publication.rollback(tmp_path)["run_id"] == "r4"
    for day in (7, 8, 9):
        publish(tmp_path, f"r{day}", f"2026-03-0{day}")
    assert publication.rollback(tmp_path)["run_id"] == "r8"
    kept = sorted(p.name for p in (tmp_path / "published" / "versions").iterdir())
    assert kept == ["000007-r7", "000008-r8", "000009-r9"]


def test_rollback_steps_back_one_publication_at_a_time(tmp_path):
    publish(tmp_path, "r1", "2026-03-01")
    with pytest.raises(FileNotFoundError, match="no publication older"):
        publication.rollback(tmp_path)
    publish(tmp_path, "r2", "2026-03-02")
    publish(tmp_path, "r3", "2026-03-03")
    assert publication.rollback(tmp_path)["run_id"] == "r2"
    assert published(tmp_path) == ("r2,1", "r2", "r2")
    assert publication.rollback(tmp_path)["run_id"] == "r1"  # further back, not forward again
    assert published(tmp_path) == ("r1,1", "r1", "r1")
    log = (tmp_path / "published" / "publications.jsonl").read_text().splitlines()
    assert [json.loads(line).get("rollback_to") for line in log[-2:]] == ["000002-r2", "000001-r1"]


def test_a_retry_of_the_published_run_publishes_nothing_new(tmp_path):
    first = publish(tmp_path, "r1", "2026-03-01")
    again = publish(tmp_path, "r1", "2026-03-01")
    assert again.published and "already published" in again.reason
    assert again.record["version"] == first.record["version"]
    assert len((tmp_path / "published" / "publications.jsonl").read_text().splitlines()) == 1
    assert len(list((tmp_path / "published" / "versions").iterdir())) == 1


def test_a_killed_publishers_leftovers_are_removed(tmp_path):
    publish(tmp_path, "r1", "2026-03-01")
    out = tmp_path / "published"
    (out / "versions" / ".000002-r2.staging-dead").mkdir()
    (out / "versions" / ".000002-r2.staging-dead" / "model").write_text("a half copy")
    os.symlink("versions/nowhere", out / ".current.deadbeef.tmp")
    publish(tmp_path, "r2", "2026-03-02")
    assert sorted(p.name for p in (out / "versions").iterdir()) == ["000001-r1", "000002-r2"]
    assert not list(out.glob(".*.tmp"))


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

"""The DAG under the real scheduler on Postgres, its tasks on a Spark standalone cluster.

In order (they share one deployment, and publication follows the newest logical date):
  1. unpausing starts the nightly run; a Spark worker is killed while it trains: it still succeeds;
  2. a conf that breaks the params' schema is refused at trigger time with the schema's message;
  3. a backfill over three dated snapshots: three runs, three folders, each its own file; the
     older dates do not replace the nightly run's publication, even when one is cleared and re-run;
  4. a REST trigger with a conf (what the UI's form sends): XComs through the API, CSV on disk;
  5. the scheduler is stopped in the middle of a run and started again: the run finishes, and
     its publication happens once, whole.
"""

from __future__ import annotations

import csv
import hashlib
import json
import time
from pathlib import Path

import pytest

from names import BACKFILL_DAYS, DAG_ID
from processes import wait_for

pytestmark = pytest.mark.deploy


def read_csv(path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def publication(deployment) -> dict:
    return json.loads((deployment.data_root / "published" / "publication.json").read_text())


def publications_log(deployment) -> list[dict]:
    log = deployment.data_root / "published" / "publications.jsonl"
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def wait_task_running(deployment, run_id: str, task_id: str, timeout: float = 600) -> None:
    def running():
        states = deployment.api.task_states(run_id)
        assert states.get(task_id) not in ("success", "failed", "upstream_failed"), f"{task_id} ended first: {states}"
        return states.get(task_id) == "running"

    wait_for(f"{task_id} of {run_id} to run", running, timeout=timeout, every=1)


def test_nightly_run_survives_a_lost_spark_worker(deployment):
    cluster = deployment.spark
    runs = wait_for(
        "the scheduler to start the nightly run after unpausing",
        lambda: deployment.api.json("GET", f"/dags/{DAG_ID}/dagRuns", params={"run_type": "scheduled"})["dag_runs"],
        timeout=120, every=2,
    )
    run_id = runs[0]["dag_run_id"]
    wait_task_running(deployment, run_id, "train")

    def train_has_executors_on_both_workers():
        apps = [app for app in cluster.status()["activeapps"] if app["name"] == "musicrec-train"]
        workers = {w["id"] for w in cluster.status()["workers"] if w["coresused"] > 0}
        return apps and len(workers) == 2

    wait_for("train's executors on both workers", train_has_executors_on_both_workers, timeout=120, every=0.5)
    lost = next(iter(cluster.workers))
    deployment.processes.kill(lost)  # the machine dies: worker and its executor at once
    assert deployment.api.wait_run(run_id, timeout=900) == "success", deployment.api.task_states(run_id)

    run = deployment.api.run(run_id)
    print(f"\nnightly run on the sample, Spark standalone, one worker lost: {run['start_date']} .. {run['end_date']}")
    status = cluster.status()
    assert cluster.alive_workers() == 1
    finished = [app["name"] for app in status["completedapps"]]
    assert {"musicrec-preprocess", "musicrec-train", "musicrec-evaluate", "musicrec-recommend"} <= set(finished)
    record = publication(deployment)
    assert record["run_id"] == run_id and record["logical_date"].startswith(runs[0]["logical_date"][:10])
    recommend = deployment.api.xcom(run_id, "recommend")
    assert recommend["published"] is True
    assert (deployment.data_root / "published" / "recommended_songs.csv").read_bytes() == Path(recommend["csv_path"]).read_bytes()
    cluster.start_worker(deployment.processes, lost)  # the machine comes back: the later tests get two
    wait_for("the restarted worker to register", lambda: cluster.alive_workers() == 2, timeout=180)


def test_conf_that_breaks_the_params_schema_is_refused_at_trigger(deployment):
    for conf, words in (({"top_n": 0}, "top_n"), ({"rank": "twenty"}, "rank"), ({"feedback": "loud"}, "feedback"),
                        ({"ranking_users": 500}, "ranking_users")):
        reply = deployment.api.call("POST", f"/dags/{DAG_ID}/dagRuns", json={"logical_date": None, "conf": conf})
        assert reply.status_code in (400, 422), reply.text
        assert words in reply.text and any(
            reason in reply.text for reason in ("minimum", "not of type", "is not one of", "should not be valid")
        ), reply.text


def test_backfill_reads_each_dates_snapshot_and_never_republishes_older_dates(deployment, snapshot_server):
    base, folder = snapshot_server
    nightly = publication(deployment)
    conf = json.dumps({"dataset_url": base + "/plays-{{ ds }}.zip"})
    done = deployment.airflow("backfill", "create", "--dag-id", DAG_ID, "--from-date", BACKFILL_DAYS[0],
                              "--to-date", BACKFILL_DAYS[-1], "--dag-run-conf", conf)
    assert done.returncode == 0, done.stdout + done.stderr

    def backfill_runs():
        runs = deployment.api.json("GET", f"/dags/{DAG_ID}/dagRuns", params={"run_type": "backfill"})["dag_runs"]
        return runs if len(runs) == 3 and all(r["state"] in ("success", "failed") for r in runs) else None

    runs = wait_for("three backfill runs to finish", backfill_runs, timeout=1800, every=5)
    runs = sorted(runs, key=lambda r: r["logical_date"])
    assert [r["state"] for r in runs] == ["success"] * 3, [deployment.api.task_states(r["dag_run_id"]) for r in runs]
    assert [r["logical_date"][:10] for r in runs] == list(BACKFILL_DAYS)
    run_folders = set()
    for run, day in zip(runs, BACKFILL_DAYS):
        download = deployment.api.xcom(run["dag_run_id"], "download")
        expected = folder / f"plays-{day}.zip"
        assert download["source_url"] == f"{base}/plays-{day}.zip"
        assert download["dataset_url_template"] == base + "/plays-{{ ds }}.zip"
        assert download["sha256"] == hashlib.sha256(expected.read_bytes()).hexdigest()
        run_folders.add(Path(deployment.api.xcom(run["dag_run_id"], "extract")["dataset_dir"]).parent)
        # The nightly run's date is newer: recommend writes its CSV but publishes nothing (skipped).
        assert deployment.api.task_states(run["dag_run_id"])["recommend"] == "skipped"
        recommend = deployment.api.xcom(run["dag_run_id"], "recommend")
        assert recommend["published"] is False and "newer logical date" in recommend["publication"]
        assert Path(recommend["csv_path"]).exists()
    assert len(run_folders) == 3 and all(f.is_dir() for f in run_folders)
    assert publication(deployment) == nightly

    # Clearing an old date's recommend re-runs it; it still must not replace the newer publication.
    oldest = runs[0]["dag_run_id"]
    deployment.api.json("POST", f"/dags/{DAG_ID}/clearTaskInstances",
                        json={"dag_run_id": oldest, "task_ids": ["recommend"], "dry_run": False, "only_failed": False})
    wait_for("the cleared recommend to run again",
             lambda: deployment.api.task_states(oldest)["recommend"] == "skipped"
             and deployment.api.json("GET", f"/dags/{DAG_ID}/dagRuns/{oldest}/taskInstances/recommend")["try_number"] >= 2,
             timeout=600, every=3)
    assert publication(deployment) == nightly


def test_rest_trigger_with_conf_runs_on_the_cluster_and_publishes(deployment, snapshot_server):
    base, _ = snapshot_server
    before = len(deployment.spark.status()["completedapps"])
    started = time.monotonic()
    run_id = deployment.api.trigger({"dataset_url": f"{base}/small.zip", "top_n": 4, "rank": 8})
    assert deployment.api.wait_run(run_id, timeout=900) == "success", deployment.api.task_states(run_id)
    print(f"\nREST trigger to success on the cluster: {time.monotonic() - started:.0f} s")
    assert deployment.api.run(run_id)["conf"]["top_n"] == 4
    xcoms = {task: deployment.api.xcom(run_id, task) for task in ("download", "train", "evaluate", "recommend")}
    assert xcoms["download"]["source_url"] == f"{base}/small.zip"
    assert xcoms["train"]["params"]["rank"] == 8
    assert xcoms["evaluate"]["model_score"] < xcoms["evaluate"]["baseline_score"]
    assert xcoms["recommend"]["published"] is True and xcoms["recommend"]["top_n"] == 4
    rows = read_csv(deployment.data_root / "published" / "recommended_songs.csv")
    per_user: dict[str, int] = {}
    for row in rows:
        per_user[row["user_id"]] = per_user.get(row["user_id"], 0) + 1
    assert set(per_user.values()) == {4} and len(rows) == xcoms["recommend"]["rows"]
    assert publication(deployment)["run_id"] == run_id
    assert len(deployment.spark.status()["completedapps"]) >= before + 4  # preprocess .. recommend on the master
    # The Asset event carries the publication's facts for DAGs scheduled on fresh recommendations.
    events = deployment.api.json("GET", "/assets/events", params={"source_run_id": run_id})["asset_events"]
    assert len(events) == 1 and events[0]["extra"]["rows"] == len(rows) and events[0]["extra"]["run_id"] == run_id


def test_scheduler_stopped_mid_run_finishes_after_restart_and_publishes_once(deployment, snapshot_server):
    run_id = deployment.api.trigger({"top_n": 6})
    wait_task_running(deployment, run_id, "train")
    deployment.processes.stop("airflow-scheduler", grace=10)  # as `docker compose stop`: TERM, then KILL
    assert deployment.api.run(run_id)["state"] == "running"
    deployment.start_scheduler()
    assert deployment.api.wait_run(run_id, timeout=1200) == "success", deployment.api.task_states(run_id)
    entries = [e for e in publications_log(deployment) if e["run_id"] == run_id]
    assert len(entries) == 1, entries
    recommend = deployment.api.xcom(run_id, "recommend")
    published = deployment.data_root / "published"
    assert (published / "recommended_songs.csv").read_bytes() == Path(recommend["csv_path"]).read_bytes()
    assert json.loads((published / "publication.json").read_text())["run_id"] == run_id
    assert (published / "model" / "metadata.json").exists() or any((published / "model").iterdir())
    rows = read_csv(published / "recommended_songs.csv")
    assert len(rows) == recommend["rows"] == 6 * recommend["users"]

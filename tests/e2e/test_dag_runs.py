"""The whole DAG with dag.test(): on the embedded sample, on ml-latest-small over HTTP, and a
failing run that must leave the published CSV and model untouched.

Each run submits six real spark-submit jobs (local[2]); about a minute and a half each.
"""

from __future__ import annotations

import csv
import json
import math
import os
import sys
from pathlib import Path

import pytest

from musicrec.id_tables import read_id_tables, with_ids
from support import ROOT, shared_dataset

sys.path.insert(0, str(ROOT / "scripts"))
from summarize_run import TASKS, load_run  # noqa: E402

pytestmark = pytest.mark.e2e
TOP_N = 7


@pytest.fixture(scope="module")
def airflow_db():
    from airflow.utils.db import initdb

    initdb()


def run_dag(conf, **test_args):
    """One dag.test() run on a freshly parsed DAG: dag.test() leaves a run's conf in the DAG's
    params, which would leak into the next run of the same object."""
    from airflow.dag_processing.dagbag import DagBag

    dag = DagBag(dag_folder=str(ROOT / "dags")).dags["music_recommendation"]
    dag_run = dag.test(run_conf=conf, **test_args)
    (run_id, state), states, xcoms = load_run(dag_run.run_id)
    return state, states, xcoms


@pytest.fixture(scope="module")
def sample_run(airflow_db):
    state, states, xcoms = run_dag({"top_n": TOP_N})
    assert state == "success", states
    return xcoms


def read_csv(path):
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_every_xcom_path_exists(sample_run):
    assert set(sample_run) == set(TASKS)
    keys = {"archive_path", "dataset_dir", "interactions_path", "items_path", "rejects_path", "model_path",
            "train_path", "test_path", "metrics_path", "csv_path", "published_csv_path", "published_model_path"}
    found = {key: value for facts in sample_run.values() for key, value in facts.items() if key in keys}
    assert set(found) == keys
    for key, path in found.items():
        assert Path(path).exists(), f"{key}: {path}"
    assert json.loads(Path(sample_run["evaluate"]["metrics_path"]).read_text())["model"]["rmse"] == sample_run["evaluate"]["model_score"]


def test_csv_has_top_n_unseen_songs_for_every_trained_user(spark, sample_run):
    rows = read_csv(sample_run["recommend"]["published_csv_path"])
    assert list(rows[0]) == ["user_id", "rank", "song_id", "title", "artist", "predicted_rating"]
    # The interactions and splits keep the indices only; the ID tables map them back.
    pre = sample_run["preprocess"]
    ids = read_id_tables(spark, pre["user_ids_path"], pre["song_ids_path"])
    train_users = {r["user_id"] for r in with_ids(spark.read.parquet(sample_run["train"]["train_path"]), ids).select("user_id").distinct().collect()}
    by_user: dict[str, list[dict]] = {}
    for row in rows:
        by_user.setdefault(row["user_id"], []).append(row)
    assert set(by_user) == train_users
    interactions = spark.read.parquet(pre["interactions_path"])
    assert "user_id" not in interactions.columns and interactions.count() == pre["rows_kept"]
    seen = {(r["user_id"], r["song_id"]) for r in with_ids(interactions, ids).collect()}
    assert len(seen) == pre["rows_kept"]  # every row's IDs found in the tables
    for user, recs in by_user.items():
        assert [int(r["rank"]) for r in recs] == list(range(1, TOP_N + 1))
        assert len({r["song_id"] for r in recs}) == TOP_N
        scores = [float(r["predicted_rating"]) for r in recs]
        assert all(math.isfinite(s) for s in scores) and scores == sorted(scores, reverse=True)
        assert all(r["title"].strip() for r in recs)
        assert not any((user, r["song_id"]) in seen for r in recs)
        int(user), [int(r["song_id"]) for r in recs]  # original numeric IDs


def test_model_beats_bias_baseline_on_sample(sample_run):
    evaluation = sample_run["evaluate"]
    assert evaluation["headline_metric"] == "rmse"
    assert evaluation["model_score"] < evaluation["baseline_score"]
    assert sample_run["preprocess"]["rows_kept"] == sample_run["preprocess"]["rows_read"] > 50_000


def test_report_and_metrics_describe_the_run(sample_run):
    import base64
    import re

    evaluation, training = sample_run["evaluate"], sample_run["train"]
    assert training["split"] == {"kind": "stratified", "test_fraction": 0.2, "seed": 42}
    assert training["refit"] is True and training["model_path"] != training["eval_model_path"]
    assert sample_run["recommend"]["users"] == sample_run["preprocess"]["users"]  # the refit knows every user
    metrics = json.loads(Path(evaluation["metrics_path"]).read_text())
    assert "refitted on every interaction" in metrics["estimates"]
    for name in ("model", "popularity_baseline"):
        assert 0 < metrics[name]["coverage"] <= 1 and 0 <= metrics[name]["popular_share"] <= 1
    assert metrics["popularity_baseline"]["popular_share"] > metrics["model"]["popular_share"]
    html = Path(evaluation["report_path"]).read_text(encoding="utf-8")
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', html)
    assert len(images) >= 4 and all(base64.b64decode(image).startswith(b"\x89PNG") for image in images)
    assert sample_run["download"]["source_url"] in html and evaluation["gate"]["decision"] in html


def test_nightly_sequence_never_publishes_a_worse_model(airflow_db, sample_run, data_root):
    """Night 2 is sabotaged (rank 1, one iteration): the gate refuses it at evaluate, and the
    published CSV and the champion stay byte for byte. Night 3 forces the same model through."""
    from musicrec import champion, history, paths

    published_csv = data_root / "published" / "recommended_songs.csv"
    key = sample_run["evaluate"]["dataset_key"]
    champion_file = Path(champion.read(data_root, key)["path"]) / champion.RECORD
    csv_before, champion_before = published_csv.read_bytes(), champion_file.read_bytes()

    sabotage = {"top_n": TOP_N, "rank": 1, "max_iter": 1}
    state, states, xcoms = run_dag(sabotage)
    assert state == "failed" and states["evaluate"][0] == "failed" and states["recommend"][0] == "upstream_failed"
    assert states["evaluate"][2] == 1  # a refusal is not retried
    assert published_csv.read_bytes() == csv_before and champion_file.read_bytes() == champion_before
    refused = history.runs(data_root, key)[-1]
    assert refused["status"] == "refused" and refused["published"] is None
    assert refused["champion_score"] == pytest.approx(sample_run["evaluate"]["model_score"], rel=1e-6)
    assert "worse than the champion" in " ".join(refused["details"]["gate"]["reasons"])
    report = run_dir_of(xcoms) / "evaluate" / paths.REPORT_FILE  # a refused run has no evaluate XCom
    assert "refused" in report.read_text(encoding="utf-8")

    state, states, xcoms = run_dag({**sabotage, "force_promote": True})
    assert state == "success", states
    assert xcoms["evaluate"]["gate"]["decision"] == "forced"
    assert published_csv.read_bytes() != csv_before
    assert champion.read(data_root, key)["run_id"] == xcoms["recommend"]["published_run_id"]
    assert history.runs(data_root, key)[-1]["published"] == 1


def test_a_backfilled_older_date_is_scored_and_recorded_but_never_replaces_the_champion(airflow_db, sample_run, data_root):
    """A backfill of an older date, with a temporal split the champion's stratified one cannot be
    compared with: the run succeeds, evaluate says "superseded", recommend writes the run's own
    CSV, and the published CSV and champion stay byte for byte."""
    from datetime import datetime, timedelta, timezone

    from musicrec import champion, history

    published_csv = data_root / "published" / "recommended_songs.csv"
    key = sample_run["evaluate"]["dataset_key"]
    champion_file = Path(champion.read(data_root, key)["path"]) / champion.RECORD
    csv_before, champion_before = published_csv.read_bytes(), champion_file.read_bytes()

    older = datetime.now(timezone.utc) - timedelta(days=30)
    state, states, xcoms = run_dag({"top_n": TOP_N, "split": "temporal"}, logical_date=older)
    assert state == "success", states
    gate = xcoms["evaluate"]["gate"]
    assert gate["decision"] == "superseded" and "newer logical date" in gate["reasons"][0], gate
    assert xcoms["recommend"]["published"] is False
    assert Path(xcoms["recommend"]["csv_path"]).is_file()
    assert published_csv.read_bytes() == csv_before and champion_file.read_bytes() == champion_before
    recorded = history.runs(data_root, key)[0]  # oldest logical date first
    assert recorded["logical_date"].startswith(older.date().isoformat()) and recorded["status"] == "superseded"
    assert recorded["published"] == 0


def test_a_superseded_run_publishes_nothing_even_when_its_date_would(sample_run, data_root):
    """After a rollback the publication can be older than the champion; a backfill between the
    two must still not publish: recommend follows the gate's decision, not only the dates."""
    from datetime import datetime, timedelta, timezone

    from musicrec_operators import SparkJobOperator

    published_csv = data_root / "published" / "recommended_songs.csv"
    before = (published_csv.read_bytes(), os.readlink(data_root / "published" / "current"))
    pre, train = sample_run["preprocess"], sample_run["train"]
    operator = SparkJobOperator(task_id="recommend", job="recommend", job_args={
        "model": train["model_path"], "interactions": pre["interactions_path"], "items": pre["items_path"],
        "user_ids": pre["user_ids_path"], "song_ids": pre["song_ids_path"], "top_n": "3",
        "gate_decision": "superseded",
    })
    later = datetime.now(timezone.utc) + timedelta(days=1)  # publish() alone would take this date
    facts = operator.execute({"run_id": "backfill__superseded-check", "logical_date": later})
    assert facts["published"] is False and "superseded" in facts["publication"]
    assert Path(facts["csv_path"]).is_file()
    assert (published_csv.read_bytes(), os.readlink(data_root / "published" / "current")) == before


def run_dir_of(xcoms):
    return Path(xcoms["extract"]["dataset_dir"]).parent


def test_failed_run_keeps_published_csv_and_model(airflow_db, sample_run, http_server, tmp_path):
    published_csv = Path(sample_run["recommend"]["published_csv_path"])
    published_model = Path(sample_run["recommend"]["published_model_path"])
    csv_before, model_before = published_csv.read_bytes(), os.readlink(published_model.parent / "current")
    model_files_before = {p: p.read_bytes() for p in published_model.resolve().rglob("*") if p.is_file()}

    base = http_server(tmp_path)  # serves an empty folder: every archive is a 404
    state, states, _ = run_dag({"dataset_url": f"{base}/no-such-dataset.zip"})
    assert state == "failed"
    assert states["download"][0] == "failed" and states["recommend"][0] != "success"
    assert states["download"][2] == 1  # a 404 is bad input: failed at once, not retried
    from musicrec import history

    failed = [row for row in history.runs(Path(os.environ["MUSICREC_DATA_ROOT"])) if row["failed_step"] == "download"]
    assert failed and "404" in failed[-1]["error"]  # the history keeps failed runs
    assert published_csv.read_bytes() == csv_before
    assert os.readlink(published_model.parent / "current") == model_before
    assert {p: p.read_bytes() for p in published_model.resolve().rglob("*") if p.is_file()} == model_files_before


def test_failure_inside_recommend_keeps_the_publication_and_is_retried(airflow_db, sample_run, data_root):
    """recommend has written its CSV when publishing fails (here: the publication lock cannot be
    opened): an unexpected fault, so it is retried, and nothing published changes."""
    published = data_root / "published"
    before = {p.relative_to(published): p.read_bytes() for p in published.rglob("*") if p.is_file() and p.name != ".lock"}
    current_before = os.readlink(published / "current")
    lock = published / ".lock"
    lock.unlink(missing_ok=True)
    lock.mkdir()  # open(".lock", "a") now fails inside recommend, after its CSV is written
    try:
        state, states, xcoms = run_dag({"top_n": 4})
    finally:
        lock.rmdir()
    assert state == "failed" and states["recommend"][0] == "failed"
    assert states["recommend"][2] == 3  # a machine's fault: tried again twice
    assert states["evaluate"][0] == "success"
    run_dir = Path(xcoms["extract"]["dataset_dir"]).parent
    assert (run_dir / "recommend" / "recommended_songs.csv").exists()  # it had begun writing
    assert os.readlink(published / "current") == current_before
    after = {p.relative_to(published): p.read_bytes() for p in published.rglob("*") if p.is_file() and p.name != ".lock"}
    assert after == before


def test_generic_format_through_the_dag(airflow_db, tmp_path):
    """The column_mapping param reaches preprocess through the DAG's `tojson` template."""
    import zipfile

    plays = ["listener\ttrack\tcount"] + [f"u{u}\tt{(u * 7 + i) % 40}\t{1 + (u + i) % 9}" for u in range(60) for i in range(12)]
    archive = tmp_path / "plays.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("export/plays.tsv", "\n".join(plays) + "\n")
        zf.writestr("export/tracks.tsv", "id\tname\n" + "".join(f"t{i}\tTrack {i}\n" for i in range(40)))
    mapping = {"file": "plays.tsv", "sep": "\t", "user": "listener", "item": "track", "value": "count",
               "feedback": "implicit", "items_file": "tracks.tsv", "item_id": "id", "title": "name"}
    state, states, xcoms = run_dag({"dataset_url": archive.as_uri(), "column_mapping": mapping, "top_n": 3})
    assert state == "success", states
    assert (xcoms["preprocess"]["dataset_format"], xcoms["preprocess"]["feedback"]) == ("generic", "implicit")
    assert xcoms["preprocess"]["rows_kept"] == len(plays) - 1 - xcoms["preprocess"]["rows_rejected"]
    rows = read_csv(xcoms["recommend"]["csv_path"])
    assert rows and all(r["user_id"].startswith("u") and r["title"] == f"Track {r['song_id'][1:]}" for r in rows)
    # Another dataset than the sample's: its first run needs no force.
    assert xcoms["evaluate"]["gate"]["decision"] == "promoted"
    assert "first run of dataset" in xcoms["evaluate"]["gate"]["reasons"][0]


def test_ml_latest_small_over_http_reaches_target_rmse(airflow_db, http_server):
    archive = shared_dataset("ml-latest-small.zip")
    base = http_server(archive.parent)
    state, states, xcoms = run_dag({"dataset_url": f"{base}/{archive.name}"})
    assert state == "success", states
    assert xcoms["download"]["source_url"].startswith("http://127.0.0.1")
    assert xcoms["preprocess"]["rows_kept"] == 100_836
    evaluation = xcoms["evaluate"]
    print(f"ml-latest-small RMSE {evaluation['model_score']:.4f} vs bias baseline {evaluation['baseline_score']:.4f}")
    assert evaluation["model_score"] <= 0.90
    assert evaluation["model_score"] < evaluation["baseline_score"]


def test_ml_100k_explicit_reaches_target_rmse(airflow_db):
    archive = shared_dataset("ml-100k.zip")
    state, states, xcoms = run_dag({"dataset_url": archive.as_uri(), "test_fraction": 0.25})
    assert state == "success", states
    assert xcoms["preprocess"]["dataset_format"] == "movielens-100k"
    assert xcoms["preprocess"]["rows_kept"] == 100_000
    evaluation = xcoms["evaluate"]
    print(f"ml-100k RMSE {evaluation['model_score']:.4f} vs bias baseline {evaluation['baseline_score']:.4f}")
    assert evaluation["model_score"] <= 0.93  # Microsoft Recommenders' Spark ALS: 0.9665
    assert evaluation["model_score"] < evaluation["baseline_score"]


def test_lastfm_hetrec_implicit_beats_popularity(airflow_db):
    archive = shared_dataset("hetrec2011-lastfm-2k.zip")
    state, states, xcoms = run_dag({"dataset_url": archive.as_uri()})
    assert state == "success", states
    assert (xcoms["preprocess"]["dataset_format"], xcoms["preprocess"]["feedback"]) == ("lastfm-hetrec", "implicit")
    evaluation = xcoms["evaluate"]
    assert evaluation["headline_metric"] == "ndcg_at_10"
    print(f"hetrec-2k NDCG@10 {evaluation['model_score']:.4f} vs popularity {evaluation['baseline_score']:.4f}")
    assert evaluation["model_score"] >= 1.2 * evaluation["baseline_score"]
    rows = read_csv(xcoms["recommend"]["published_csv_path"])
    assert len(rows) == 10 * xcoms["recommend"]["users"]
    assert all(r["title"] for r in rows)  # artist names


def test_too_many_bad_rows_fail_preprocess_and_keep_published(airflow_db, sample_run, tmp_path):
    import zipfile

    published_csv = Path(sample_run["recommend"]["published_csv_path"])
    before = published_csv.read_bytes()
    lines = ["userId,songId,rating,timestamp"] + [f"{u},{i},{'x' if i % 3 == 0 else 4.0},1" for u in range(1, 30) for i in range(1, 30)]
    archive = tmp_path / "bad.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("bad/ratings.csv", "\n".join(lines) + "\n")
        zf.writestr("bad/songs.csv", "songId,title,artist\n" + "".join(f"{i},Song {i},Band\n" for i in range(1, 30)))
    state, states, _ = run_dag({"dataset_url": archive.as_uri()})
    assert state == "failed" and states["preprocess"][0] == "failed"
    assert published_csv.read_bytes() == before


def test_hostile_archives_fail_at_extract_and_keep_published(airflow_db, sample_run, tmp_path):
    import zipfile

    published_csv = Path(sample_run["recommend"]["published_csv_path"])
    published_model = Path(sample_run["recommend"]["published_model_path"])
    before = (published_csv.read_bytes(), os.readlink(published_model.parent / "current"))
    escape = tmp_path / "escape.zip"
    with zipfile.ZipFile(escape, "w") as zf:
        zf.writestr("../../../../evil.csv", "x")
    corrupt = tmp_path / "corrupt.zip"
    corrupt.write_bytes(Path(sample_run["download"]["archive_path"]).read_bytes()[:5000])
    for archive in (escape, corrupt):
        state, states, _ = run_dag({"dataset_url": archive.as_uri()})
        assert state == "failed" and states["extract"][0] == "failed", archive.name
        assert (published_csv.read_bytes(), os.readlink(published_model.parent / "current")) == before
    assert not list(Path(os.environ["MUSICREC_DATA_ROOT"]).parent.glob("**/evil.csv"))


def test_rerun_after_a_crash_half_way_needs_no_cleanup(spark, sample_run):
    """What a task retry or an Airflow "clear" does: run the step again in the same run folder."""
    from datetime import datetime, timezone

    from musicrec import paths
    from musicrec_operators import SparkJobOperator

    run_dir = Path(sample_run["extract"]["dataset_dir"]).parent
    crashed = run_dir / ".preprocess.staging-crashed"  # a half-written output of a killed attempt
    (crashed / "interactions").mkdir(parents=True)
    (crashed / "interactions" / "part-0.parquet").write_bytes(b"half")
    (run_dir / "results" / "preprocess.json").write_text('{"step": "preprocess", "error": "killed", "retryable": true}')

    run_id = sample_run["recommend"]["published_run_id"]  # the sample run published itself
    assert paths.run_dir(paths.data_root(), run_id) == run_dir
    operator = SparkJobOperator(task_id="preprocess", job="preprocess", job_args={"dataset_dir": sample_run["extract"]["dataset_dir"]})
    facts = operator.execute({"run_id": run_id, "logical_date": datetime.now(timezone.utc)})

    assert facts["rows_kept"] == sample_run["preprocess"]["rows_kept"]
    assert facts["interactions_path"] == sample_run["preprocess"]["interactions_path"]
    assert spark.read.parquet(facts["interactions_path"]).count() == facts["rows_kept"]
    assert not crashed.exists()

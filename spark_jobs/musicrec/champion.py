"""The champion of each dataset: the model the gate compares tonight's model with.

    <data root>/champions/<dataset slug>/
      champion.json   run ID, logical date, dataset key, split, params, headline score,
                      train_max_timestamp (the newest interaction it was trained on)
      eval_model/     the champion's evaluation model: fitted on its training split only
      users/, songs/  its ID -> index tables (indices differ between snapshots)

The champion is crowned by recommend when its run publishes, so it is always the evaluation
twin of the published model of that dataset. Why its *evaluation* model: the published model
was refitted on every interaction, so it has seen most of tonight's test split; the evaluation
model was fitted on its own training split, and splits draw each interaction's side from a hash
of its IDs (musicrec.splits), so an interaction held out tonight was held out then too. When
the split settings changed since, only interactions newer than the champion's training data are
fair (`fair_rows`).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from pathlib import Path
from typing import Any

from musicrec import columns as C
from musicrec.id_tables import IdTables, read_id_tables, with_ids
from musicrec.paths import staged_dir

RECORD = "champion.json"
EVAL_MODEL = "eval_model"
SAMPLE_KEY = "embedded-sample"
MIN_FAIR_ROWS = 20  # fewer shared held-out interactions (or users) than this say nothing about who is better


def dataset_key(url_template: str, dataset_format: str, feedback: str) -> str:
    """What "the same dataset" means for the gate and the history: the dataset URL as given,
    with its date template unrendered (each night's snapshot of one feed is one dataset), its
    format and its feedback kind."""
    return f"{url_template.strip() or SAMPLE_KEY}|{dataset_format}|{feedback}"


def champion_dir(root: Path, key: str) -> Path:
    readable = re.sub(r"[^A-Za-z0-9._-]+", "_", key.split("|")[0].rsplit("/", 1)[-1])[:40].strip("._") or "dataset"
    return Path(root) / "champions" / f"{readable}-{hashlib.sha256(key.encode()).hexdigest()[:16]}"


def read(root: Path, key: str) -> dict[str, Any] | None:
    """The champion's record (with `path`), or None when the dataset has no champion yet."""
    folder = champion_dir(root, key)
    _recover(folder)
    try:
        record = json.loads((folder / RECORD).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    return {**record, "path": str(folder)}


def _recover(folder: Path) -> None:
    """Crowning swaps folders with two renames (musicrec.paths.replace_dir); a crash between them
    leaves the old champion retired and none in place. Put it back rather than call the next run
    a first run (which would skip the comparison)."""
    if folder.exists():
        return
    retired = sorted(folder.parent.glob(f".{folder.name}.staging-old-*"), key=lambda p: p.stat().st_mtime)
    if retired and (retired[-1] / RECORD).exists():
        os.rename(retired[-1], folder)


def crown(root: Path, key: str, eval_model: Path, user_ids, song_ids, record: dict[str, Any]) -> Path:
    """Make this run's evaluation model the champion of `key` (one folder swap), with the run's ID
    tables (`user_ids`: user_id, user_index; `song_ids`: song_id, item_index) to map later runs'
    IDs into its index space."""
    import shutil

    folder = champion_dir(root, key)
    with staged_dir(folder) as staging:
        shutil.copytree(eval_model, staging / EVAL_MODEL)
        user_ids.select(C.USER_ID, C.USER_INDEX).write.parquet(str(staging / "users"))
        song_ids.select(C.ITEM_ID, C.ITEM_INDEX).write.parquet(str(staging / "songs"))
        (staging / RECORD).write_text(json.dumps({**record, "dataset_key": key}, indent=2, sort_keys=True))
    return folder


def is_newer(date: str | None, than: str | None) -> bool:
    """Whether ISO 8601 date `date` is later than `than` (False when either is unknown; a date
    without a zone is UTC, as Airflow's are)."""
    from datetime import datetime, timezone

    def parse(text: str) -> datetime:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
        return when if when.tzinfo else when.replace(tzinfo=timezone.utc)

    if not date or not than:
        return False
    return parse(date) > parse(than)


def same_split(champion: dict[str, Any], split: dict[str, Any]) -> bool:
    return all(champion.get("split", {}).get(name) == split.get(name) for name in ("kind", "test_fraction", "seed"))


def fair_rows(champion: dict[str, Any], split: dict[str, Any], test):
    """(held-out rows the champion never trained on, why they are fair)."""
    from pyspark.sql import functions as F

    if same_split(champion, split) and split.get("kind") != "temporal":
        return test, "the same split settings: every held-out interaction was held out from the champion too"
    newest = champion.get("train_max_timestamp")
    if split.get("kind") == "temporal" and same_split(champion, split):
        # Tonight's cut can fall before the champion's (an older snapshot, late rows): compare only after it.
        why = f"temporal split: only interactions newer than the champion's training data (after {newest}) are compared"
    else:
        why = (
            f"the split changed since the champion (then {champion.get('split')}, now {split}): only interactions "
            f"newer than its training data (after {newest}) are compared"
        )
    if newest is None:
        return test.limit(0), why
    return test.filter(F.col(C.TIMESTAMP) > F.lit(newest)), why


def champion_id_tables(spark, champion: dict[str, Any]) -> IdTables:
    """The champion's own ID tables (user_id, user_index and song_id, item_index), kept by `crown`."""
    folder = Path(champion["path"])
    return read_id_tables(spark, str(folder / "users"), str(folder / "songs"))


def in_champion_space(spark, champion: dict[str, Any], frame):
    """`frame` (user_id, song_id, ...) with the champion's user_index and item_index instead of ours;
    rows with a user or song the champion does not know are dropped."""
    users, songs = champion_id_tables(spark, champion)
    return frame.drop(C.USER_INDEX, C.ITEM_INDEX).join(users, C.USER_ID).join(songs, C.ITEM_ID)


def score_on_same_rows(spark, champion: dict[str, Any], champion_model, model, train, fair, feedback: str, k: int,
                       ranking_users: int | None = None, ids: IdTables | None = None):
    """Tonight's `model` and the champion on the same fair held-out interactions.

    Ratings: RMSE of both on the rows both can score. Play counts: NDCG@k of both over the users
    both know, each recommending from its own catalogue minus what the user has in tonight's
    training split, judged against the same relevant songs (tonight's song IDs), over at most
    about `ranking_users` of those users (evaluation.ranking_sample). `fair` has the IDs; `train`
    has them or gets them from `ids` (musicrec.id_tables). Returns
    {"metric", "model", "champion", "rows", "users"}.
    """
    from pyspark.sql import functions as F

    from musicrec.evaluation import EXPLICIT, ranking_sample, relevant_rows, rows_of_users
    from musicrec.metrics import ranking_metrics, rating_errors_of
    from musicrec.recommend import top_n_unseen

    if feedback == EXPLICIT:
        ours = model.predict(fair).select(C.USER_ID, C.ITEM_ID, C.RATING, F.col(C.PREDICTION).alias("_model"))
        theirs = champion_model.predict(in_champion_space(spark, champion, fair)).select(
            C.USER_ID, C.ITEM_ID, F.col(C.PREDICTION).alias("_champion")
        )
        errors = rating_errors_of(ours.join(theirs, [C.USER_ID, C.ITEM_ID]), {"model": "_model", "champion": "_champion"})
        return {"metric": "rmse", "model": errors["model"]["rmse"], "champion": errors["champion"]["rmse"],
                "rows": errors["model"]["rows"], "users": None}
    relevant = relevant_rows(fair, feedback)  # play counts: every held-out play
    champion_users = in_champion_space(spark, champion, relevant.select(C.USER_ID, C.ITEM_ID)).select(
        C.USER_ID, F.col(C.USER_INDEX).alias("_theirs")
    ).join(champion_model.als.userFactors.select(F.col("id").alias("_theirs")), "_theirs").select(C.USER_ID).distinct()
    known = model.als.userFactors.select(F.col("id").alias(C.USER_INDEX))
    shared = relevant.join(known, C.USER_INDEX).join(champion_users, C.USER_ID).cache()
    relevant, sample = ranking_sample(shared, ranking_users)
    relevant = relevant.cache()  # the same frame as `shared` when not sampled
    if relevant.isEmpty():
        relevant.unpersist()
        shared.unpersist()
        return {"metric": f"ndcg_at_{k}", "model": math.nan, "champion": math.nan, "rows": 0, "users": 0, "ranking_sample": sample}
    # Only the ranked users' training rows matter (their seen songs): mapping every training row
    # into the champion's indices joined all of them on their string IDs (25M plays: ~20 s).
    with_their_ids = [name for name in (C.USER_ID, C.ITEM_ID) if name in train.columns]
    seen = with_ids(rows_of_users(train.select(*with_their_ids, C.USER_INDEX, C.ITEM_INDEX), relevant), ids).cache()
    ours = top_n_unseen(model, seen, k, users=relevant)
    theirs_space = in_champion_space(spark, champion, relevant.select(C.USER_ID, C.ITEM_ID))
    theirs = top_n_unseen(champion_model, in_champion_space(spark, champion, seen), k, users=theirs_space)
    theirs = _in_our_space(spark, champion, theirs, relevant)
    scores = {"model": ranking_metrics(ours, relevant, k), "champion": ranking_metrics(theirs, relevant, k)}
    seen.unpersist()
    relevant.unpersist()
    shared.unpersist()
    name = f"ndcg_at_{k}"
    return {"metric": name, "model": scores["model"][name], "champion": scores["champion"][name],
            "rows": None, "users": scores["model"]["ranking_users"], "ranking_sample": sample}


def _in_our_space(spark, champion: dict[str, Any], lists, ours):
    """The champion's top-k lists (its indices) in tonight's indices, through `ours` (user_id,
    user_index, song_id, item_index rows: the relevant rows suffice, as a song outside them is
    not relevant either way); a song `ours` lacks gets a negative index, so it is never relevant."""
    from pyspark.sql import functions as F

    users, songs = champion_id_tables(spark, champion)
    our_users = ours.select(C.USER_ID, F.col(C.USER_INDEX).alias("_user")).distinct()
    our_songs = ours.select(C.ITEM_ID, F.col(C.ITEM_INDEX).alias("_item")).distinct()
    return (
        lists.join(users, C.USER_INDEX).join(songs, C.ITEM_INDEX)
        .join(our_users, C.USER_ID).join(our_songs, C.ITEM_ID, "left")
        .select(
            F.col("_user").alias(C.USER_INDEX),
            F.coalesce("_item", -1 - F.col(C.ITEM_INDEX)).alias(C.ITEM_INDEX),
            "score", "rank",
        )
    )


def compare(spark, root: Path, key: str, run_id: str, split: dict[str, Any], model, train, test, feedback: str, k: int,
            logical_date: str | None = None, ranking_users: int | None = None,
            ids: IdTables | None = None) -> dict[str, Any]:
    """What the gate needs to know about the champion of `key`, for tonight's `model`.

    {"champion_run": None, "note": ...} without a champion (or when this run is the champion: a
    re-run); {"champion_run", "superseded": ...} when the champion is of a newer logical date than
    this run's (a backfill: nothing to compare, it cannot replace the champion anyway);
    {"champion_run", "blocked": ...} when it cannot be scored fairly; otherwise
    {"champion_run", "why_fair", "metric", "model_score", "champion_score", "rows", "users"}: both
    models on the same fair held-out interactions. `train` and `test` are the splits as train
    wrote them: the IDs the comparison needs come from `ids` (musicrec.id_tables) where they lack
    them.
    """
    from musicrec.model import load

    record = read(root, key)
    if record is None:
        return {"champion_run": None, "note": f"first run of dataset {key}: no champion to compare with"}
    if is_newer(record.get("logical_date"), logical_date):
        return {
            "champion_run": record["run_id"],
            "superseded": f"the champion (run {record['run_id']}) is of the newer logical date {record['logical_date']}; "
            f"this run's is {logical_date}: a run of an older date (a backfill) is scored and recorded, and never "
            "replaces a newer model",
        }
    # Cached here unless the caller cached it (then the cache is the caller's to drop): evaluate
    # passes its test split uncached, as its metrics cache only the indices and values, and this
    # needs the IDs too. The columns the scoring reads are cached, not the split as read: the
    # metrics' plans (running beside this on small data) read the same files, and caching or
    # dropping the files' own plan (or all of its columns, the same plan to Spark) would make
    # Spark swap it into theirs or recompile them.
    fair, why = fair_rows(record, split, test)
    fair = with_ids(fair, ids)  # a new frame (so cached below) when the split has only the indices
    owned = not fair.is_cached
    if owned:
        fair = fair.select(C.USER_ID, C.ITEM_ID, C.USER_INDEX, C.ITEM_INDEX, C.RATING).cache()
    rows = fair.count()
    if rows < MIN_FAIR_ROWS:
        if owned:
            fair.unpersist()
        return {
            "champion_run": record["run_id"],
            "blocked": f"the champion (run {record['run_id']}) cannot be scored fairly: {why}, and only {rows} "
            f"held-out interactions qualify (at least {MIN_FAIR_ROWS} are needed). Keep the champion's split "
            "settings, or set force_promote to start afresh",
        }
    scores = score_on_same_rows(spark, record, load(spark, Path(record["path"]) / EVAL_MODEL), model, train, fair,
                                feedback, k, ranking_users, ids)
    if owned:
        fair.unpersist()
    shared = scores["rows"] if feedback == "explicit" else scores["users"]
    if not (math.isfinite(scores["model"]) and math.isfinite(scores["champion"])) or (shared or 0) < MIN_FAIR_ROWS:
        unit = "interactions" if feedback == "explicit" else "users"
        return {"champion_run": record["run_id"], "blocked": f"the champion (run {record['run_id']}) and this model share "
                f"only {shared or 0} held-out {unit} they can both score (at least {MIN_FAIR_ROWS} are needed; {why}). "
                "Set force_promote to start afresh"}
    return {
        "champion_run": record["run_id"], "why_fair": why, "metric": scores["metric"],
        "model_score": scores["model"], "champion_score": scores["champion"], "rows": scores["rows"], "users": scores["users"],
        **({"ranking_sample": scores["ranking_sample"]} if "ranking_sample" in scores else {}),
    }

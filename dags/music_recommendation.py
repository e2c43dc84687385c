"""
### Music recommendations with Spark ALS

Downloads a ratings or play-count dataset, cleans it, trains Spark MLlib ALS, evaluates it
against a baseline and publishes the top-N songs per user as `recommended_songs.csv`.

| task | job | takes (XCom of the task before) | returns (XCom) |
|---|---|---|---|
| download | `spark_jobs/download.py` | param `dataset_url` (empty: embedded sample) | `archive_path` |
| extract | `spark_jobs/extract.py` | `archive_path` | `dataset_dir` |
| preprocess | `spark_jobs/preprocess.py` | `dataset_dir` | `interactions_path`, `items_path`, `user_ids_path`, `song_ids_path`, `rejects_path`, counts |
| train | `spark_jobs/train.py` | `interactions_path`, `user_ids_path`, `song_ids_path` | `eval_model_path`, `model_path` (refit), `train_path`, `test_path` |
| evaluate | `spark_jobs/evaluate.py` | `eval_model_path`, `train_path`, `test_path`, `user_ids_path`, `song_ids_path` | `metrics_path`, `report_path`, gate decision |
| recommend | `spark_jobs/recommend.py` | `model_path`, `interactions_path`, `items_path`, `user_ids_path`, `song_ids_path` | `csv_path`, `published_csv_path` |

**The quality gate** (evaluate): the model must beat its baseline and must not be worse than the
dataset's champion, scored on the same held-out interactions, by more than `gate_tolerance`;
otherwise evaluate fails with the numbers and nothing is published (`force_promote` overrides).
A run of an older logical date than the champion's (a backfill) is scored and recorded but never
replaces it: its decision is `superseded`, the run succeeds (unless its model fails its
baseline) and `recommend` ends *skipped*.
Each run's HTML report (`report_path`) shows the metrics, the gate's decision and plots.

Each run writes under `$MUSICREC_DATA_ROOT/runs/<run id>/`. `recommend` publishes the CSV and
model together to `$MUSICREC_DATA_ROOT/published/` unless a newer logical date is already
published (then it is *skipped*, and the run's own CSV stays in its run folder); the published
CSV is the Asset `musicrec_recommended_songs`. `dataset_url` may contain `{{ ds }}` or
`{{ ds_nodash }}`: each scheduled or backfilled date downloads its own snapshot.
The Spark master comes from `spark_default`; every task takes a slot of the `musicrec_spark` pool.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import DAG, Asset, Param, chain
from musicrec_operators import ALS_DEFAULTS as DEFAULTS
from musicrec_operators import (
    DAG_ID,
    DEFAULT_SPLIT,
    FORMAT_NAMES,
    MIN_RANKING_USERS,
    PUBLISHED_CSV_URI,
    RANKING_USERS,
    SPARK_POOL,
    SPLITS,
    SparkJobOperator,
    log_task_failure,
    upstream,
    upstream_if_any,
    upstream_result,
)

RECOMMENDATIONS = Asset(name="musicrec_recommended_songs", uri=PUBLISHED_CSV_URI, group="musicrec")

PARAMS = {
    # Optional strings are null-able: the UI's trigger form treats "" in a plain string as missing.
    "dataset_url": Param(
        None,
        type=["null", "string"],
        title="Dataset URL",
        description="http(s) or file URL of a MovieLens-style zip; may contain {{ ds }} or {{ ds_nodash }} "
        "(the run's logical date) to read dated snapshots. Empty: the embedded music sample.",
    ),
    "sha256": Param(None, type=["null", "string"], title="Expected SHA-256", description="Optional checksum of the archive."),
    "dataset_format": Param(
        "auto", type="string", enum=list(FORMAT_NAMES), title="Dataset format",
        description="Detected from the archive's files unless forced here; 'generic' needs column_mapping.",
    ),
    "column_mapping": Param(
        {}, type="object", title="Column mapping (your own CSV/TSV)",
        description='e.g. {"file": "plays.csv", "user": "listener", "item": "track", "value": "count", '
        '"feedback": "implicit", "items_file": "tracks.csv", "item_id": "id", "title": "name"}. Empty: not used.',
    ),
    "feedback": Param(
        "auto", type="string", enum=["auto", "explicit", "implicit"], title="Feedback kind",
        description="explicit ratings (RMSE) or implicit play counts (ranking metrics); auto: from the format.",
    ),
    "rank": Param(DEFAULTS.rank, type="integer", minimum=1, maximum=500, title="ALS rank", description="Number of latent factors."),
    "reg_param": Param(DEFAULTS.reg_param, type="number", minimum=0, title="ALS regularization", description="ALS regParam."),
    "max_iter": Param(DEFAULTS.max_iter, type="integer", minimum=1, maximum=200, title="ALS iterations", description="ALS maxIter."),
    "alpha": Param(DEFAULTS.alpha, type="number", minimum=0, title="Implicit alpha", description="Confidence weight for play counts."),
    "top_n": Param(10, type="integer", minimum=1, maximum=1000, title="Songs per user", description="N of the top-N list."),
    "split": Param(
        DEFAULT_SPLIT, type="string", enum=list(SPLITS), title="Evaluation split",
        description="stratified: each user's interactions split by the fraction (every test user is known); "
        "random: each interaction at random; temporal: the latest interactions by timestamp are held out.",
    ),
    "test_fraction": Param(
        0.2, type="number", exclusiveMinimum=0, exclusiveMaximum=1, title="Test fraction",
        description="Share of interactions held out for evaluation.",
    ),
    "tune": Param(
        False, type="boolean", title="Tune ALS",
        description="Grid-search rank, regParam (and alpha for play counts) on a validation split of the training data first.",
    ),
    "refit": Param(
        True, type="boolean", title="Refit on all data",
        description="Recommend from a model refitted on every interaction (the evaluation model otherwise).",
    ),
    "ranking_users": Param(
        RANKING_USERS, type="integer", minimum=0, title="Users ranked at evaluation",
        # Refused at the trigger, not by train after its retries: fewer say too little to judge a model.
        **{"not": {"minimum": 1, "maximum": MIN_RANKING_USERS - 1}},
        description="Ranking metrics (the champion's comparison and tuning on play counts too) over at most about "
        "this many held-out users, drawn by a fixed hash of the user ID. 0: every user; otherwise at least 1000.",
    ),
    "gate_tolerance": Param(
        0.01, type="number", minimum=0, maximum=1, title="Gate tolerance",
        description="How much worse than the champion (relative, 0.01 = 1%) a model may score and still be published.",
    ),
    "force_promote": Param(
        False, type="boolean", title="Force promotion",
        description="Publish even if the quality gate refuses (a deliberate reset, a known data change).",
    ),
    "seed": Param(DEFAULTS.seed, type="integer", title="Random seed", description="Seed of the split and of ALS."),
    "max_reject_share": Param(
        0.05, type="number", minimum=0, maximum=1, title="Max reject share",
        description="Fail the run when a larger share of rows is malformed or invalid.",
    ),
}

with DAG(
    dag_id=DAG_ID,
    description="Spark ALS music recommendations: download, extract, preprocess, train, evaluate, recommend",
    doc_md=__doc__,
    schedule="@daily",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    params=PARAMS,
    tags=["recommendations", "spark", "als"],
    default_args={
        "retries": 2,
        "retry_delay": timedelta(seconds=30),
        "retry_exponential_backoff": True,
        "max_retry_delay": timedelta(minutes=10),
        "execution_timeout": timedelta(hours=1),
        "pool": SPARK_POOL,  # one Spark job at a time on the cluster, whichever run it belongs to
        "on_failure_callback": log_task_failure,
    },
) as dag:
    download = SparkJobOperator(
        task_id="download",
        job="download",
        job_args={"url": "{{ params.dataset_url or '' }}", "sha256": "{{ params.sha256 or '' }}"},
        doc_md="Fetch the archive (http, https or file URL) into the run folder; retries transient errors.",
    )
    extract = SparkJobOperator(
        task_id="extract",
        job="extract",
        job_args={"archive": upstream("download", "archive_path"), "sha256": upstream("download", "sha256")},
        execution_timeout=timedelta(minutes=30),
        doc_md="Unpack the zip or tar.gz safely (no path escapes, links or zip bombs).",
    )
    # The Spark steps' settings follow the data's size (JIT, driver memory): an estimate from the
    # extracted bytes for preprocess, then preprocess's own count.
    interactions = upstream("preprocess", "rows_kept")
    preprocess = SparkJobOperator(
        task_id="preprocess",
        job="preprocess",
        job_args={
            "dataset_dir": upstream("extract", "dataset_dir"),
            "dataset_format": "{{ params.dataset_format }}",
            "column_mapping": "{{ params.column_mapping | tojson }}",
            "feedback": "{{ params.feedback }}",
            "max_reject_share": "{{ params.max_reject_share }}",
        },
        data_rows=upstream("extract", "estimated_rows"),
        doc_md="Read with explicit schemas, reject bad rows by reason, dedupe, join titles, index IDs; parquet out.",
    )
    train = SparkJobOperator(
        task_id="train",
        job="train",
        job_args={
            "interactions": upstream("preprocess", "interactions_path"),
            "user_ids": upstream_if_any("preprocess", "user_ids_path"),
            "song_ids": upstream_if_any("preprocess", "song_ids_path"),
            "feedback": upstream("preprocess", "feedback"),
            "split": "{{ params.split }}",
            "test_fraction": "{{ params.test_fraction }}",
            "seed": "{{ params.seed }}",
            "rank": "{{ params.rank }}",
            "reg_param": "{{ params.reg_param }}",
            "max_iter": "{{ params.max_iter }}",
            "alpha": "{{ params.alpha }}",
            "tune": "{{ params.tune }}",
            "refit": "{{ params.refit }}",
            "k": "{{ params.top_n }}",
            "ranking_users": "{{ params.ranking_users }}",
        },
        data_rows=interactions,
        execution_timeout=timedelta(hours=3),
        doc_md="Split (param split), optionally tune, fit the evaluation model, refit on every interaction.",
    )
    evaluate = SparkJobOperator(
        task_id="evaluate",
        job="evaluate",
        job_args={
            "model": upstream("train", "eval_model_path"),
            "train": upstream("train", "train_path"),
            "test": upstream("train", "test_path"),
            "feedback": upstream("train", "feedback"),
            "rating_max": upstream("preprocess", "rating_max"),
            "k": "{{ params.top_n }}",
            "ranking_users": "{{ params.ranking_users }}",
            "gate_tolerance": "{{ params.gate_tolerance }}",
            "force_promote": "{{ params.force_promote }}",
            "download": upstream_result("download"),
            "dataset": upstream_result("preprocess"),
            "training": upstream_result("train"),
        },
        data_rows=interactions,
        doc_md="RMSE/MAE vs. a bias baseline (explicit); ranking metrics, coverage vs. popularity; the quality "
        "gate against the champion; run history; HTML report.",
    )
    recommend = SparkJobOperator(
        task_id="recommend",
        job="recommend",
        job_args={
            "model": upstream("train", "model_path"),
            "interactions": upstream("preprocess", "interactions_path"),
            "items": upstream("preprocess", "items_path"),
            "user_ids": upstream_if_any("preprocess", "user_ids_path"),
            "song_ids": upstream_if_any("preprocess", "song_ids_path"),
            "top_n": "{{ params.top_n }}",
            "headline_metric": upstream("evaluate", "headline_metric"),
            "headline_score": upstream("evaluate", "model_score"),
            "eval_model": upstream("train", "eval_model_path"),
            "dataset_key": upstream("evaluate", "dataset_key"),
            "champion_record": "{{ ti.xcom_pull(task_ids='evaluate')['champion_record'] | tojson }}",
            "gate_decision": "{{ ti.xcom_pull(task_ids='evaluate')['gate']['decision'] }}",
        },
        data_rows=interactions,
        outlets=[RECOMMENDATIONS],
        doc_md="Top-N unseen songs per user to recommended_songs.csv; publish CSV and model together, "
        "unless a newer logical date is published or the gate said superseded (then skipped).",
    )
    chain(download, extract, preprocess, train, evaluate, recommend)

"""Top-N unseen songs for every user; write recommended_songs.csv, then publish it and the model
together (musicrec.publication), unless a newer logical date is already published or the gate's
decision is `superseded` (a backfill older than the champion). A published run's
evaluation model becomes its dataset's champion (musicrec.champion), and the history says so."""

import math
from pathlib import Path

from musicrec import champion, history, job
from musicrec.errors import PipelineError
from musicrec.id_tables import required_id_tables
from musicrec.model import load
from musicrec.paths import RECOMMENDATIONS_FILE, data_root_of_run
from musicrec.gate import SUPERSEDED
from musicrec.publication import Outcome, current_record, publish, version_dir
from musicrec.recommend import recommendation_counts, top_n_unseen_in_files, with_original_ids, write_single_csv
from musicrec.spark_config import get_spark


def work(args):
    run_dir = Path(args.run_dir)
    spark = get_spark("musicrec-recommend")
    user_ids, song_ids = required_id_tables(spark, args.user_ids, args.song_ids)
    model = load(spark, args.model)
    # Exclude everything the user already has, train and test alike: a recommendation is news.
    # Only the two index columns are read: the IDs come from preprocess's small ID tables.
    top = top_n_unseen_in_files(model, args.interactions, args.top_n)
    rows = with_original_ids(top, user_ids, song_ids, spark.read.parquet(args.items)).cache()
    # Counted before the CSV is written: the count scores every user on all cores and fills the
    # cache, and the single-file CSV then only sorts and writes (scoring under its coalesce(1)
    # would run in one task).
    row_count, users = recommendation_counts(rows)
    top.unpersist()  # scored file by file, the lists were cached before the IDs were put back
    if row_count == 0:
        raise PipelineError(f"no recommendations were produced from {args.interactions}: nothing to publish")
    csv_path = write_single_csv(rows, run_dir / "recommend" / RECOMMENDATIONS_FILE)
    root = data_root_of_run(run_dir)
    if args.gate_decision == SUPERSEDED:
        # Not only when a newer date is published: after a rollback the publication can be older
        # than the champion, and a backfill between the two must still not replace it.
        outcome = Outcome(False, "not published: the gate's decision is superseded (the dataset's champion is of "
                          "a newer logical date; see evaluate)", current_record(root) or {})
    else:
        check_champion_unchanged(root, args)
        # Every check is done: publish the CSV and the model together, last.
        outcome = publish_run(root, run_dir, csv_path, args, row_count, users)
    if outcome.published and args.champion_record:
        # After the publication, so that a crash between the two is mended by the retry (which
        # publishes nothing new, then crowns).
        champion.crown(root, args.dataset_key, Path(args.eval_model), user_ids, song_ids, args.champion_record)
    history.record_publication(root, args.run_id or run_dir.name, outcome.published)
    published = root / "published"
    return {
        "csv_path": str(csv_path),
        "published": outcome.published,
        "publication": outcome.reason,
        "published_csv_path": str(published / RECOMMENDATIONS_FILE),
        "published_model_path": str(published / "model"),
        "published_run_id": outcome.record.get("run_id"),
        "published_version_path": str(version_dir(root)),
        "users": users,
        "rows": row_count,
        "top_n": args.top_n,
        "headline_metric": args.headline_metric,
        "headline_score": _finite_or_none(args.headline_score),
    }


def publish_run(root: Path, run_dir: Path, csv_path: Path, args, row_count: int, users: int):
    """Publish this run's CSV and model together, with the facts the record keeps."""
    return publish(
        root, csv_path, Path(args.model),
        {
            "run_id": args.run_id or run_dir.name,
            "logical_date": args.logical_date,
            "rows": row_count,
            "users": users,
            "top_n": args.top_n,
            "headline_metric": args.headline_metric,
            "headline_score": _finite_or_none(args.headline_score),
        },
    )


def check_champion_unchanged(root: Path, args) -> None:
    """Publish only a model the gate compared with the current champion: another run of the same
    dataset (a backfill beside the nightly) may have been crowned since this run's evaluate."""
    if not args.champion_record:
        return
    published = current_record(root)
    if published and champion.is_newer(published["logical_date"], args.logical_date):
        return  # a newer date is published: this run publishes nothing and crowns nobody anyway
    current = champion.read(root, args.dataset_key)
    now = current["run_id"] if current else None
    compared_with = args.champion_record.get("compared_with")
    if now not in (compared_with, args.champion_record.get("run_id")):
        raise PipelineError(
            f"the champion of {args.dataset_key} changed after this run's evaluate compared it with "
            f"{compared_with or 'no champion'}: it is now run {now}. Nothing is published; clear this run's "
            "evaluate (and recommend) to compare with the new champion."
        )


def _finite_or_none(value):
    """NaN or infinity is not JSON: strict readers of the record and the asset event reject it."""
    return value if value is not None and math.isfinite(value) else None


if __name__ == "__main__":
    parser = job.parser_for("recommend", __doc__)
    parser.add_argument("--model", required=True, help="train's model_path")
    parser.add_argument("--interactions", required=True, help="preprocess's interactions_path")
    parser.add_argument("--items", required=True, help="preprocess's items_path")
    parser.add_argument("--user-ids", default="", help="preprocess's user_ids_path (user_id, user_index)")
    parser.add_argument("--song-ids", default="", help="preprocess's song_ids_path (song_id, item_index)")
    parser.add_argument("--top-n", type=int, default=10)
    parser.add_argument("--headline-metric", default="", help="evaluate's headline_metric, recorded with the publication")
    parser.add_argument("--headline-score", type=float, default=None, help="evaluate's model_score")
    parser.add_argument("--eval-model", default="", help="train's eval_model_path: the champion-to-be")
    parser.add_argument("--dataset-key", default="", help="evaluate's dataset_key")
    parser.add_argument("--champion-record", type=job.json_object, default={}, help="evaluate's champion_record (JSON)")
    parser.add_argument("--gate-decision", default="", help="evaluate's gate decision: 'superseded' publishes nothing")
    job.run("recommend", parser, work)

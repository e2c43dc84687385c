"""Read, validate and index the dataset; write interactions, items and rejects as parquet."""

from pathlib import Path

from musicrec import job
from musicrec.datasets import detect_format
from musicrec.paths import staged_dir
from musicrec.prepare import add_indices, check_usable, prepare
from musicrec.spark_config import get_spark


def work(args):
    run_dir = Path(args.run_dir)
    fmt, base = detect_format(Path(args.dataset_dir), args.dataset_format)
    feedback = fmt.feedback if args.feedback == "auto" else args.feedback
    spark = get_spark("musicrec-preprocess")
    raw = fmt.read_interactions(spark, base)
    raw_items = fmt.read_items(spark, base)
    rating_range = fmt.rating_range if feedback == fmt.feedback else None
    prepared = prepare(raw, raw_items, feedback, rating_range)
    # Rejects are written first: they matter most when the check below fails the run.
    with staged_dir(run_dir / "preprocess_rejects") as rejects_dir:
        prepared.rejects.write.parquet(str(rejects_dir / "rejects"))
    check_usable(prepared, args.max_reject_share, source=str(base))
    with staged_dir(run_dir / "preprocess") as out:
        add_indices(prepared.interactions).write.parquet(str(out / "interactions"))
        prepared.items.write.parquet(str(out / "items"))
    final = run_dir / "preprocess"
    facts = {
        "interactions_path": str(final / "interactions"),
        "items_path": str(final / "items"),
        "rejects_path": str(run_dir / "preprocess_rejects" / "rejects"),
        "dataset_format": fmt.name,
        "feedback": feedback,
        "rows_read": prepared.rows_read,
        "rows_kept": prepared.rows_kept,
        "rows_rejected": prepared.rows_rejected,
        "rejected_by_reason": prepared.rejected_by_reason,
    }
    users_songs = spark.read.parquet(facts["interactions_path"]).selectExpr(
        "count(distinct user_id) AS users", "count(distinct song_id) AS songs"
    ).first()
    facts.update(users=users_songs["users"], songs=users_songs["songs"])
    return facts


if __name__ == "__main__":
    parser = job.parser_for("preprocess", __doc__)
    parser.add_argument("--dataset-dir", required=True, help="extracted dataset folder (extract's dataset_dir)")
    parser.add_argument("--dataset-format", default="auto", help="force a format instead of detecting it")
    parser.add_argument("--feedback", default="auto", choices=["auto", "explicit", "implicit"])
    parser.add_argument("--max-reject-share", type=float, default=0.05, help="fail above this share of bad rows")
    job.run("preprocess", parser, work)

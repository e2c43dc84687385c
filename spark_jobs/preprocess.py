"""Read, validate and index the dataset; write interactions, items and rejects as parquet."""

import json
from pathlib import Path

from musicrec import job
from musicrec.datasets import detect_format
from musicrec.errors import PipelineError
from musicrec.paths import staged_dir
from musicrec.prepare import MIN_ROWS, add_indices, check_enough, check_rejects, prepare, write_interactions
from musicrec.spark_config import get_spark


def work(args):
    run_dir = Path(args.run_dir)
    options = parse_mapping(args.column_mapping)
    fmt, base = detect_format(Path(args.dataset_dir), args.dataset_format, options)
    feedback = fmt.feedback if args.feedback == "auto" else args.feedback
    spark = get_spark("musicrec-preprocess")
    raw = fmt.read_interactions(spark, base, options)
    raw_items = fmt.read_items(spark, base, options)
    rating_range = fmt.rating_range if feedback == fmt.feedback else None
    prepared = prepare(raw, raw_items, feedback, rating_range)
    # Rejects are written first: they matter most when a check below fails the run.
    with staged_dir(run_dir / "preprocess_rejects") as rejects_dir:
        prepared.rejects.write.parquet(str(rejects_dir / "rejects"))
    check_rejects(prepared, args.max_reject_share, source=str(base))
    if not prepared.sum_plays or prepared.rows_kept < MIN_ROWS:
        check_enough(prepared, source=str(base))  # known already: no need to index first
    indexed = add_indices(prepared.rows, sum_plays=prepared.sum_plays)
    with staged_dir(run_dir / "preprocess") as out:
        written = write_interactions(indexed, out / "interactions")
        if indexed.summed:  # only now is it known how many interactions the sums left
            prepared.counted_interactions = written
            check_enough(prepared, source=str(base))  # inside the staging: nothing of the step is kept
        indexed.users.write.parquet(str(out / "user_ids"))
        indexed.songs.write.parquet(str(out / "song_ids"))
        prepared.items.write.parquet(str(out / "items"))
    final = run_dir / "preprocess"
    facts = {
        "interactions_path": str(final / "interactions"),
        "items_path": str(final / "items"),
        "user_ids_path": str(final / "user_ids"),  # user_id, user_index
        "song_ids_path": str(final / "song_ids"),  # song_id, item_index
        "rejects_path": str(run_dir / "preprocess_rejects" / "rejects"),
        "dataset_format": fmt.name,
        "feedback": feedback,
        # The top of the rating scale (explicit, when the format knows it): evaluate's relevance.
        "rating_max": rating_range[1] if feedback == "explicit" and rating_range else None,
        "rows_read": prepared.rows_read,
        "rows_kept": prepared.rows_kept,
        "rows_rejected": prepared.rows_rejected,
        "plays_aggregated": prepared.plays_aggregated,  # play events summed into another row (play counts)
        "rejected_by_reason": prepared.rejected_by_reason,
        "users": indexed.user_count,
        "songs": indexed.song_count,
    }
    return facts


def parse_mapping(text: str) -> dict:
    try:
        mapping = json.loads(text or "{}")
    except json.JSONDecodeError as error:
        raise PipelineError(f"column_mapping is not valid JSON ({error}): {text!r}") from None
    if not isinstance(mapping, dict):
        raise PipelineError(f"column_mapping must be a JSON object, got {text!r}")
    return mapping


if __name__ == "__main__":
    parser = job.parser_for("preprocess", __doc__)
    parser.add_argument("--dataset-dir", required=True, help="extracted dataset folder (extract's dataset_dir)")
    parser.add_argument("--dataset-format", default="auto", help="force a format instead of detecting it")
    parser.add_argument("--column-mapping", default="", help="JSON column mapping for a generic CSV/TSV")
    parser.add_argument("--feedback", default="auto", choices=["auto", "explicit", "implicit"])
    parser.add_argument("--max-reject-share", type=float, default=0.05, help="fail above this share of bad rows")
    job.run("preprocess", parser, work)

"""Score the evaluation model on the held-out split against baselines and the dataset's champion,
decide at the quality gate, record the run in the history, write metrics JSON and the HTML report.

Explicit ratings: RMSE (headline) and MAE vs. the bias baseline. Both modes: precision, recall,
NDCG and MAP at k, catalogue coverage and popular_share vs. the popularity baseline (implicit
headline: NDCG@k), over at most about --ranking-users held-out users. For ratings, a held-out
rating >= 80% of the top of the dataset's scale (--rating-max, preprocess's rating_max) is
relevant. A refused model fails this step with the numbers: recommend does not run, and the
published CSV and champion stay (musicrec.gate). A run of an older logical date than the
champion's (a backfill) is scored and recorded, not compared: recommend then writes its CSV into
the run folder and publishes nothing.
"""

import json
from pathlib import Path

from musicrec import champion, history, job, side_by_side
from musicrec import columns as C
from musicrec.errors import PipelineError
from musicrec.evaluation import EXPLICIT, RANKING_USERS, evaluate_model, headline_of, ranking_users_arg
from musicrec.gate import REFUSED, decide
from musicrec.id_tables import has_ids, read_id_tables
from musicrec.model import load
from musicrec.paths import REPORT_FILE, data_root_of_run, staged_dir
from musicrec.report import write_report
from musicrec.spark_config import get_spark

VALUE_SAMPLE = 20_000  # ratings or play counts drawn for the report's distribution plot


def work(args):
    run_dir, root = Path(args.run_dir), data_root_of_run(Path(args.run_dir))
    run_id = args.run_id or run_dir.name
    spark = get_spark("musicrec-evaluate")
    # The metrics need only the splits' indices and values, cached. The ranking sample draws
    # users by user_id from preprocess's ID table; the champion's comparison maps IDs into its
    # own index space: it reads the splits as written and puts the IDs back from the ID tables
    # (splits written before the IDs were dropped carry them already).
    train_all, test_all = spark.read.parquet(args.train), spark.read.parquet(args.test)
    train = train_all.select(C.USER_INDEX, C.ITEM_INDEX, C.RATING).cache()
    test = test_all.select(C.USER_INDEX, C.ITEM_INDEX, C.RATING).cache()
    ids = read_id_tables(spark, args.dataset.get("user_ids_path"), args.dataset.get("song_ids_path"))
    if ids is None and not has_ids(test_all):
        raise PipelineError(
            f"preprocess gave no user_ids_path / song_ids_path, and the splits at {args.test} carry no IDs: "
            "clear the run from preprocess on, so that preprocess writes the ID tables"
        )
    user_ids = ids.users if ids else test_all.select(C.USER_ID, C.USER_INDEX).distinct()
    model = load(spark, args.model)
    key = champion.dataset_key(args.download["dataset_url_template"], args.dataset["dataset_format"], args.feedback)
    split = args.training.get("split", {})
    rows = [args.training.get(name) for name in ("train_rows", "test_rows")]
    small = side_by_side.pays_off(None if None in rows else sum(rows))
    # Tonight's metrics and the champion's comparison read the same splits and nothing of each other.
    results, _ = side_by_side.run_timed({
        "metrics": lambda: evaluate_model(model, train, test, args.feedback, args.k, rating_max=args.rating_max,
                                          details=True, ranking_users=args.ranking_users, together=small,
                                          user_ids=user_ids),
        "champion": lambda: champion.compare(spark, root, key, run_id, split, model, train_all, test_all, args.feedback,
                                             args.k, logical_date=args.logical_date, ranking_users=args.ranking_users,
                                             ids=ids),
    }, together=small)
    metrics, versus = results["metrics"], results["champion"]
    plots = metrics.pop("_plots")
    plots["values"] = value_sample(train)
    headline, baseline_name = headline_of(args.feedback, args.k)
    lower_is_better = args.feedback == EXPLICIT
    decision = decide(
        headline, lower_is_better, metrics["model"][headline], metrics[baseline_name][headline],
        versus.get("champion_score"),
        args.gate_tolerance, force=args.force_promote, baseline_name=baseline_name.replace("_", " "),
        champion_note=versus.get("note", ""), model_on_champion_rows=versus.get("model_score"),
        blocked=versus.get("blocked"), superseded=versus.get("superseded"),
    )
    scores = {
        "metric": headline, "lower_is_better": lower_is_better,
        "model": metrics["model"][headline], "baseline": metrics[baseline_name][headline],
        "champion": versus.get("champion_score"), "model_on_champion_rows": versus.get("model_score"),
    }
    metrics.update(
        estimates=("the model refitted on every interaction with these parameters (what recommend uses)"
                   if args.training.get("refit") else "the evaluation model itself (refit was off)"),
        gate=decision.as_dict(), champion=versus, dataset_key=key, split=split,
        params=args.training.get("params"), tuning=args.training.get("tuning", []),
    )
    out_dir = run_dir / "evaluate"
    facts = report_facts(args, run_id, key, metrics, scores, decision, baseline_name)
    history.record_evaluation(root, run_id, key, args.logical_date, decision.as_dict(), scores, {
        "params": metrics["params"], "split": split, "metrics": {"model": metrics["model"], baseline_name: metrics[baseline_name]},
        "fingerprint": fingerprint(args), "timings": args.training.get("fit_seconds"), "gate": decision.as_dict(),
        "report_path": str(out_dir / REPORT_FILE),
    })
    plots["history"] = [
        {"logical_date": row["logical_date"], "run_id": row["run_id"], "score": row["model_score"], "promoted": bool(row["promoted"])}
        for row in history.runs(root, key) if row["model_score"] is not None
    ]
    with staged_dir(out_dir) as out:
        (out / "metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True, default=str))
        write_report(out / REPORT_FILE, facts, plots)
    if decision.decision == REFUSED:
        raise PipelineError(
            f"the quality gate refused this run's model: {'; '.join(decision.reasons)}. Nothing is published; "
            f"the previous CSV and champion stay. Report: {out_dir / REPORT_FILE}. To publish it anyway, "
            "trigger with force_promote=true."
        )
    return {
        "metrics_path": str(out_dir / "metrics.json"),
        "report_path": str(out_dir / REPORT_FILE),
        "feedback": args.feedback,
        "headline_metric": headline,
        "model_score": scores["model"],
        "baseline_score": scores["baseline"],
        "champion_score": scores["champion"],
        "gate": decision.as_dict(),
        "dataset_key": key,
        "metrics": {name: metrics[name] for name in ("model", baseline_name)},
        # What recommend stores when it publishes this run and crowns its evaluation model; none
        # for a superseded run (recommend writes its CSV in the run folder and publishes nothing).
        "champion_record": {} if not decision.promote else {
            "run_id": run_id, "logical_date": args.logical_date, "split": split, "params": metrics["params"],
            "headline_metric": headline, "model_score": scores["model"],
            "train_max_timestamp": args.training.get("train_max_timestamp"),
            "compared_with": versus.get("champion_run"),  # recommend crowns only if it is still the champion
        },
    }


def value_sample(train) -> list[float]:
    from pyspark.sql import functions as F

    rows = train.select(C.RATING).orderBy(F.xxhash64(C.USER_INDEX, C.ITEM_INDEX)).limit(VALUE_SAMPLE).collect()
    return [float(row[0]) for row in rows]


def fingerprint(args) -> dict:
    """What identifies the data this run read."""
    return {
        "source_url": args.download.get("source_url"), "sha256": args.download.get("sha256"),
        **{name: args.dataset.get(name) for name in ("rows_read", "rows_kept", "rows_rejected", "users", "songs")},
        "train_rows": args.training.get("train_rows"), "test_rows": args.training.get("test_rows"),
    }


def report_facts(args, run_id, key, metrics, scores, decision, baseline_name) -> dict:
    """The report's facts (musicrec.report) from this step's results and the upstream XComs."""
    champion_metrics = {}
    if metrics["champion"].get("champion_score") is not None:  # on the rows both could score
        champion_metrics = {scores["metric"]: metrics["champion"]["champion_score"]}
    return {
        "run": {"run_id": run_id, "logical_date": args.logical_date, "dataset_key": key},
        "dataset": {**{name: args.dataset.get(name) for name in (
            "dataset_format", "feedback", "rows_read", "rows_kept", "rows_rejected", "rejected_by_reason",
            "users", "songs", "plays_aggregated")}, "source_url": args.download.get("source_url")},
        "split": {**metrics["split"], "train_rows": args.training.get("train_rows"), "test_rows": args.training.get("test_rows")},
        "params": {name: (metrics["params"] or {}).get(name) for name in ("rank", "reg_param", "max_iter", "alpha")},
        "metrics": {
            "model": metrics["model"],
            **{name: metrics[name] for name in ("bias_baseline", "popularity_baseline") if name in metrics},
            **({"champion": champion_metrics} if champion_metrics else {}),
            "ranking_sample": metrics["ranking_sample"],
        },
        "headline": scores,
        "gate": {**decision.as_dict(), "tolerance": args.gate_tolerance},
        "tuning": metrics["tuning"],
        "warnings": decision.warnings,
        "timings": args.training.get("fit_seconds") or {},
    }


def optional_number(text: str):
    """A float, or None for "" / "None" / "null" (an XCom value that was None renders as "None")."""
    if text is None or text.strip().lower() in ("", "none", "null"):
        return None
    return float(text)


if __name__ == "__main__":
    parser = job.parser_for("evaluate", __doc__)
    parser.add_argument("--model", required=True, help="train's eval_model_path (fitted on the training split)")
    parser.add_argument("--train", required=True, help="train's train_path")
    parser.add_argument("--test", required=True, help="train's test_path")
    parser.add_argument("--feedback", required=True, choices=["explicit", "implicit"])
    parser.add_argument("--k", type=int, default=10, help="cut-off of the ranking metrics")
    parser.add_argument(
        "--rating-max", type=optional_number, default=None,
        help="top of the dataset's rating scale (preprocess's rating_max); empty: the highest training rating",
    )
    parser.add_argument(
        "--ranking-users", type=ranking_users_arg, default=RANKING_USERS,
        help="ranking metrics over at most about this many held-out users, chosen by a hash of the user ID; 0: all",
    )
    parser.add_argument("--gate-tolerance", type=float, default=0.01, help="how much worse than the champion is accepted")
    parser.add_argument("--force-promote", type=job.flag, default=False, help="promote even if the gate refuses")
    parser.add_argument("--download", type=job.json_object, required=True, help="download's result (JSON)")
    parser.add_argument("--dataset", type=job.json_object, required=True, help="preprocess's result (JSON)")
    parser.add_argument("--training", type=job.json_object, default={}, help="train's result (JSON)")
    job.run("evaluate", parser, work)

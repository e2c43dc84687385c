"""Score the model on the held-out split against baselines; write metrics JSON.

Explicit ratings: RMSE (headline) and MAE vs. the bias baseline. Both modes: precision, recall,
NDCG and MAP at k vs. the popularity baseline (implicit headline: NDCG@k). For ratings, a
held-out rating >= 80% of the top of the dataset's scale (--rating-max, preprocess's rating_max)
is relevant; without it, 80% of the highest training rating. See musicrec.evaluation.
"""

import json
from pathlib import Path

from musicrec import job
from musicrec.evaluation import evaluate_model, headline_of
from musicrec.model import load
from musicrec.paths import staged_dir
from musicrec.spark_config import get_spark


def work(args):
    spark = get_spark("musicrec-evaluate")
    model = load(spark, args.model)
    train, test = spark.read.parquet(args.train).cache(), spark.read.parquet(args.test).cache()
    metrics = evaluate_model(model, train, test, args.feedback, args.k, rating_max=args.rating_max)
    headline, baseline_name = headline_of(args.feedback, args.k)
    with staged_dir(Path(args.run_dir) / "evaluate") as out:
        (out / "metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True))
    return {
        "metrics_path": str(Path(args.run_dir) / "evaluate" / "metrics.json"),
        "feedback": args.feedback,
        "headline_metric": headline,
        "model_score": metrics["model"][headline],
        "baseline_score": metrics[baseline_name][headline],
        "metrics": metrics,
    }


def optional_number(text: str):
    """A float, or None for "" / "None" / "null" (an XCom value that was None renders as "None")."""
    if text is None or text.strip().lower() in ("", "none", "null"):
        return None
    return float(text)


if __name__ == "__main__":
    parser = job.parser_for("evaluate", __doc__)
    parser.add_argument("--model", required=True, help="train's model_path")
    parser.add_argument("--train", required=True, help="train's train_path")
    parser.add_argument("--test", required=True, help="train's test_path")
    parser.add_argument("--feedback", required=True, choices=["explicit", "implicit"])
    parser.add_argument("--k", type=int, default=10, help="cut-off of the ranking metrics")
    parser.add_argument(
        "--rating-max", type=optional_number, default=None,
        help="top of the dataset's rating scale (preprocess's rating_max); empty: the highest training rating",
    )
    job.run("evaluate", parser, work)

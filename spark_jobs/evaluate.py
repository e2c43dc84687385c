"""Score the model on the held-out split against baselines; write metrics JSON.

Explicit ratings: RMSE (headline) and MAE vs. the bias baseline. Both modes: precision, recall,
NDCG and MAP at k vs. the popularity baseline (implicit headline: NDCG@k).
"""

import json
from pathlib import Path

from musicrec import columns as C
from musicrec import job
from musicrec.metrics import ranking_metrics, rating_errors_of
from musicrec.model import EXPLICIT, load
from musicrec.paths import staged_dir
from musicrec.recommend import popular_unseen, top_n_unseen
from musicrec.spark_config import get_spark

RELEVANT_SHARE_OF_SCALE = 0.8  # explicit: a held-out rating >= 80% of the top of the scale is "relevant"


def work(args):
    spark = get_spark("musicrec-evaluate")
    model = load(spark, args.model)
    train, test = spark.read.parquet(args.train).cache(), spark.read.parquet(args.test).cache()
    metrics = {"feedback": args.feedback, "k": args.k}
    if args.feedback == EXPLICIT:
        # The baseline is the model's own bias terms, scored on the same rows (cold-start dropped).
        scored = model.predict_baseline(model.predict(test), "baseline_prediction")
        metrics.update(rating_errors_of(scored, {"model": C.PREDICTION, "bias_baseline": "baseline_prediction"}))
        top_rating = train.agg({C.RATING: "max"}).first()[0]
        relevant = test.filter(test[C.RATING] >= RELEVANT_SHARE_OF_SCALE * top_rating)
    else:
        relevant = test
    relevant = relevant.join(model.als.userFactors.selectExpr(f"id AS {C.USER_INDEX}"), C.USER_INDEX).cache()
    metrics["model"] = {**metrics.get("model", {}), **ranking_metrics(top_n_unseen(model, train, args.k, users=relevant), relevant, args.k)}
    metrics["popularity_baseline"] = ranking_metrics(popular_unseen(train, train, relevant, args.k), relevant, args.k)
    headline, baseline_name = ("rmse", "bias_baseline") if args.feedback == EXPLICIT else (f"ndcg_at_{args.k}", "popularity_baseline")
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


if __name__ == "__main__":
    parser = job.parser_for("evaluate", __doc__)
    parser.add_argument("--model", required=True, help="train's model_path")
    parser.add_argument("--train", required=True, help="train's train_path")
    parser.add_argument("--test", required=True, help="train's test_path")
    parser.add_argument("--feedback", required=True, choices=["explicit", "implicit"])
    parser.add_argument("--k", type=int, default=10, help="cut-off of the ranking metrics")
    job.run("evaluate", parser, work)

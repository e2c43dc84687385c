"""What the evaluate step computes, as functions of a model and its splits (the job wires them).

Explicit ratings: RMSE and MAE of the model and of its own bias baseline on the held-out rows,
and ranking metrics at k where a held-out song is relevant when its rating reaches
RELEVANT_SHARE_OF_SCALE of the top of the dataset's rating scale. Implicit play counts: every
held-out play is relevant. Ranking metrics compare the model with the popularity baseline, over
the held-out users the model has factors for (cold-start users are dropped for both).
"""

from __future__ import annotations

from musicrec import columns as C
from musicrec.errors import PipelineError
from musicrec.metrics import ranking_metrics, rating_errors_of

EXPLICIT = "explicit"
RELEVANT_SHARE_OF_SCALE = 0.8  # explicit: a held-out rating >= 80% of the top of the scale is relevant


def relevance_threshold(rating_max: float | None, train_max: float | None) -> tuple[float, str]:
    """(threshold, what it is based on) for explicit ratings.

    The top of the dataset's scale (`rating_max`: 5 for MovieLens, so 4.0) when the format knows
    it; otherwise (a generic file without rating_max, or ratings forced on other data) the highest
    rating of the training split.
    """
    if rating_max is not None:
        return RELEVANT_SHARE_OF_SCALE * float(rating_max), "rating_scale"
    if train_max is None:
        raise PipelineError("the training split has no ratings: nothing to evaluate")
    return RELEVANT_SHARE_OF_SCALE * float(train_max), "highest_training_rating"


def relevant_rows(test, feedback: str, threshold: float | None = None):
    """The held-out rows that count as relevant: ratings >= threshold, or every play (implicit)."""
    if feedback == EXPLICIT:
        return test.filter(test[C.RATING] >= threshold)
    return test


def headline_of(feedback: str, k: int) -> tuple[str, str]:
    """(headline metric, the baseline it is compared with)."""
    return ("rmse", "bias_baseline") if feedback == EXPLICIT else (f"ndcg_at_{k}", "popularity_baseline")


def evaluate_model(model, train, test, feedback: str, k: int, rating_max: float | None = None) -> dict:
    """Every metric of the evaluate step, as written to metrics.json."""
    from pyspark.sql import functions as F

    from musicrec.recommend import popular_unseen, top_n_unseen

    metrics: dict = {"feedback": feedback, "k": k}
    threshold = None
    if feedback == EXPLICIT:
        # The baseline is the model's own bias terms, scored on the same rows (cold-start dropped).
        scored = model.predict_baseline(model.predict(test), "baseline_prediction")
        metrics.update(rating_errors_of(scored, {"model": C.PREDICTION, "bias_baseline": "baseline_prediction"}))
        train_max = None if rating_max is not None else train.agg(F.max(C.RATING)).first()[0]
        threshold, basis = relevance_threshold(rating_max, train_max)
        metrics["relevance"] = {"threshold": threshold, "based_on": basis}
    relevant = relevant_rows(test, feedback, threshold)
    relevant = relevant.join(model.als.userFactors.selectExpr(f"id AS {C.USER_INDEX}"), C.USER_INDEX).cache()
    metrics["model"] = {**metrics.get("model", {}), **ranking_metrics(top_n_unseen(model, train, k, users=relevant), relevant, k)}
    metrics["popularity_baseline"] = ranking_metrics(popular_unseen(train, train, relevant, k), relevant, k)
    relevant.unpersist()
    return metrics

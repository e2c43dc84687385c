"""The optional search over ALS parameters (the `tune` param), scored on a validation split.

The grid comes from Spark's ParamGridBuilder over ALS's own params. Spark's validators
(TrainValidationSplit, CrossValidator) fit one Estimator and score it with one Evaluator; the
explicit model here is ALS on bias residuals plus the biases, and the implicit score is NDCG of
seen-filtered top-k lists, neither of which is an Estimator/Evaluator pair. So the loop is ours,
with the validators' rule: candidates are fitted on the training split minus a validation split
carved from it (musicrec.splits.validation_split), and the test split is not read at all. The
train job then refits the winner on the whole training split and evaluate touches the test split
once.
"""

from __future__ import annotations

import time
from dataclasses import replace

from musicrec.model import IMPLICIT, AlsParams, fit

EXPLICIT_GRID = {"rank": (10, 20, 40), "regParam": (0.05, 0.1, 0.2)}
IMPLICIT_GRID = {"rank": (10, 20, 40), "regParam": (0.01, 0.1), "alpha": (1.0, 10.0, 40.0)}
VALIDATION_FRACTION = 0.2  # of the training split
_FIELDS = {"rank": "rank", "regParam": "reg_param", "alpha": "alpha"}


def candidate_params(base: AlsParams) -> list[AlsParams]:
    """Every grid point as AlsParams (the other settings from `base`), built with ParamGridBuilder."""
    from pyspark.ml.recommendation import ALS
    from pyspark.ml.tuning import ParamGridBuilder

    als = ALS()
    grid = IMPLICIT_GRID if base.feedback == IMPLICIT else EXPLICIT_GRID
    builder = ParamGridBuilder()
    for name, values in grid.items():
        builder = builder.addGrid(als.getParam(name), list(values))
    return [replace(base, **{_FIELDS[param.name]: value for param, value in point.items()}) for point in builder.build()]


def search(fit_split, validation, base: AlsParams, score, lower_is_better: bool, checkpoint_dir: str) -> list[dict]:
    """Fit every candidate on `fit_split`, score it with `score(model, fit_split, validation)`.

    Returns one row per candidate ({rank, reg_param, alpha, score, seconds, chosen}), the best
    one marked chosen (ties: the first, which is the smaller rank and regularisation).
    """
    rows = []
    for params in candidate_params(base):
        started = time.perf_counter()
        model = fit(fit_split, params, checkpoint_dir)
        value = float(score(model, fit_split, validation))
        rows.append({
            "rank": params.rank, "reg_param": params.reg_param, "alpha": params.alpha,
            "score": value, "seconds": round(time.perf_counter() - started, 3), "chosen": False,
        })
        model.unpersist()
    best = choose(rows, lower_is_better)
    rows[best]["chosen"] = True
    return rows


def choose(rows: list[dict], lower_is_better: bool) -> int:
    """Index of the best finite score; NaN (a candidate that scored nothing) never wins."""
    finite = [i for i, row in enumerate(rows) if row["score"] == row["score"]]
    if not finite:
        return 0
    sign = 1.0 if lower_is_better else -1.0
    return min(finite, key=lambda i: (sign * rows[i]["score"], i))


def chosen_params(rows: list[dict], base: AlsParams) -> AlsParams:
    (row,) = [row for row in rows if row["chosen"]]
    return replace(base, rank=row["rank"], reg_param=row["reg_param"], alpha=row["alpha"])

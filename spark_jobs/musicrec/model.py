"""ALS: the train/test split, the confidence transform for play counts, fitting and persistence."""

from __future__ import annotations

from dataclasses import dataclass

from musicrec import columns as C
from musicrec.errors import PipelineError

EXPLICIT, IMPLICIT = "explicit", "implicit"


@dataclass(frozen=True)
class AlsParams:
    rank: int = 10
    reg_param: float = 0.1
    max_iter: int = 15
    seed: int = 42
    feedback: str = EXPLICIT
    alpha: float = 1.0  # implicit only: weight of confidence
    checkpoint_interval: int = 5


def random_split(interactions, test_fraction: float, seed: int):
    """Random train/test split of the interactions; both sides must be non-empty."""
    if not 0.0 < test_fraction < 1.0:
        raise PipelineError(f"test_fraction must be between 0 and 1 (exclusive), got {test_fraction}")
    train, test = interactions.randomSplit([1.0 - test_fraction, test_fraction], seed=seed)
    return train, test


def confidence_column(feedback: str):
    """What ALS learns from: the rating itself, or log(1 + plays) for play counts.

    Raw play counts span 1 to 10^5; the log keeps a few obsessive listeners from dominating
    (Hu, Koren & Volinsky 2008, eq. 6 with epsilon = 1).
    """
    from pyspark.sql import functions as F

    return F.col(C.RATING) if feedback == EXPLICIT else F.log1p(F.col(C.RATING))


def fit(train, params: AlsParams, checkpoint_dir: str):
    """Fit ALS on `train` (user_index, item_index, rating)."""
    from pyspark.ml.recommendation import ALS

    train.sparkSession.sparkContext.setCheckpointDir(checkpoint_dir)
    als = ALS(
        userCol=C.USER_INDEX,
        itemCol=C.ITEM_INDEX,
        ratingCol="_confidence",
        rank=params.rank,
        regParam=params.reg_param,
        maxIter=params.max_iter,
        seed=params.seed,
        implicitPrefs=params.feedback == IMPLICIT,
        alpha=params.alpha,
        coldStartStrategy="drop",
        checkpointInterval=params.checkpoint_interval,
    )
    return als.fit(train.withColumn("_confidence", confidence_column(params.feedback)))


def load(path: str):
    from pyspark.ml.recommendation import ALSModel

    return ALSModel.load(path)

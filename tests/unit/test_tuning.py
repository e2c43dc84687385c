"""The `tune` search: its grid, how the winner is chosen, and a real search on tiny ratings."""

from __future__ import annotations

import math

import numpy as np
import pytest

from musicrec import columns as C
from musicrec.evaluation import validation_score
from musicrec.model import AlsParams
from musicrec.tuning import EXPLICIT_GRID, IMPLICIT_GRID, candidate_params, choose, chosen_params, search


def test_the_grid_is_every_combination_and_keeps_the_other_settings(spark):  # ALS() needs a live SparkContext
    base = AlsParams(max_iter=7, seed=3)
    explicit = candidate_params(base)
    assert sorted((p.rank, p.reg_param) for p in explicit) == sorted(
        (rank, reg) for rank in EXPLICIT_GRID["rank"] for reg in EXPLICIT_GRID["regParam"]
    )
    assert {(p.max_iter, p.seed, p.alpha, p.feedback) for p in explicit} == {(7, 3, base.alpha, "explicit")}
    implicit = candidate_params(AlsParams(feedback="implicit"))
    assert len(implicit) == len(IMPLICIT_GRID["rank"]) * len(IMPLICIT_GRID["regParam"]) * len(IMPLICIT_GRID["alpha"])
    assert {p.alpha for p in implicit} == set(IMPLICIT_GRID["alpha"]) and len(set(implicit)) == len(implicit)


def test_the_best_finite_score_wins_and_ties_go_to_the_first():
    rows = [{"score": s} for s in (0.9, 0.8, math.nan, 0.8, 1.1)]
    assert choose(rows, lower_is_better=True) == 1  # RMSE: the smallest; the tie at 0.8 goes to the first
    assert choose(rows, lower_is_better=False) == 4  # NDCG: the largest
    assert choose([{"score": math.nan}, {"score": 0.1}], lower_is_better=False) == 1  # NaN never wins
    chosen = [{"rank": 10, "reg_param": 0.1, "alpha": 1.0, "chosen": False}, {"rank": 40, "reg_param": 0.05, "alpha": 1.0, "chosen": True}]
    assert (chosen_params(chosen, AlsParams(max_iter=4)).rank, chosen_params(chosen, AlsParams(max_iter=4)).max_iter) == (40, 4)


def test_a_search_scores_every_candidate_on_the_validation_split_and_marks_the_best(spark, tmp_path):
    # Ratings with a rank-2 taste structure: some candidates fit it better than others.
    rng = np.random.default_rng(5)
    users, songs = rng.normal(size=(30, 2)), rng.normal(size=(25, 2))
    rows = [(u, s, float(np.clip(3 + users[u] @ songs[s] + rng.normal(0, 0.3), 0.5, 5)))
            for u in range(30) for s in range(25) if rng.random() < 0.5]
    frame = spark.createDataFrame(rows, f"{C.USER_INDEX} int, {C.ITEM_INDEX} int, {C.RATING} double")
    fit_split, validation = (part.cache() for part in frame.randomSplit([0.8, 0.2], seed=1))

    def score(model, fitted_on, held_out):
        return validation_score(model, fitted_on, held_out, "explicit", 5)

    found = search(fit_split, validation, AlsParams(max_iter=3), score, lower_is_better=True, checkpoint_dir=str(tmp_path / "ck"))
    assert len(found) == len(EXPLICIT_GRID["rank"]) * len(EXPLICIT_GRID["regParam"])
    assert all(row["seconds"] > 0 and 0 < row["score"] < 2 for row in found)
    assert len({round(row["score"], 6) for row in found}) > 1  # the candidates really differ
    (best,) = [row for row in found if row["chosen"]]
    assert best["score"] == min(row["score"] for row in found)
    assert chosen_params(found, AlsParams(max_iter=3)).rank == best["rank"]

"""The evaluate step's pieces: relevance, explicit ranking metrics on fixed factors (hand-checked),
and the implicit branch end to end on generated play counts."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from musicrec import columns as C
from musicrec.errors import PipelineError
from musicrec.evaluation import (
    evaluate_model, headline_of, ranking_sample, ranking_users_arg, relevance_threshold, relevant_rows, rows_of_ranked_users,
    validation_score,
)
from musicrec.model import AlsParams, RecommenderModel, fit
from support import FixedFactors, cached_rdd_ids, job_module

LOG2_3 = math.log2(3)


def test_relevance_threshold_is_80_percent_of_the_scale_not_of_the_data():
    assert relevance_threshold(5.0, 3.5) == (4.0, "rating_scale")  # MovieLens: 4 stars of 5
    assert relevance_threshold(10, None) == (8.0, "rating_scale")
    assert relevance_threshold(None, 3.5) == (pytest.approx(2.8), "highest_training_rating")  # scale unknown
    with pytest.raises(PipelineError, match="no ratings"):
        relevance_threshold(None, None)


def test_relevant_rows_by_feedback(spark):
    test = spark.createDataFrame([(0, 0, 4.0), (0, 1, 3.9), (1, 0, 5.0)], f"{C.USER_INDEX} int, {C.ITEM_INDEX} int, {C.RATING} double")
    assert sorted(tuple(r)[:2] for r in relevant_rows(test, "explicit", 4.0).collect()) == [(0, 0), (1, 0)]
    assert relevant_rows(test, "implicit").count() == 3  # every held-out play


def test_evaluate_job_reads_an_absent_rating_max_as_none():
    job = job_module("evaluate")
    assert [job.optional_number(text) for text in ("", " ", "None", "null", "5", "4.5")] == [None, None, None, None, 5.0, 4.5]


def test_evaluate_job_without_id_tables_or_ids_in_the_splits_says_what_to_clear(spark, tmp_path):
    from types import SimpleNamespace

    from musicrec.errors import PipelineError

    schema = f"{C.USER_INDEX} int, {C.ITEM_INDEX} int, {C.RATING} double, {C.TIMESTAMP} long"
    for side in ("train", "test"):  # as train writes them: no string IDs
        spark.createDataFrame([(0, 0, 1.0, 1)], schema).write.parquet(str(tmp_path / side))
    args = SimpleNamespace(run_dir=str(tmp_path / "runs" / "r1"), run_id="r1", model=str(tmp_path / "no-model"),
                           train=str(tmp_path / "train"), test=str(tmp_path / "test"),
                           dataset={"user_ids_path": "", "song_ids_path": ""})
    with pytest.raises(PipelineError, match=r"no user_ids_path / song_ids_path.*clear the run from preprocess on"):
        job_module("evaluate").work(args)


@pytest.fixture
def fixed_model(spark):
    """Every user prefers songs 0 > 1 > 2 > 3; no biases (mu = b_u = b_i = 0)."""
    als = FixedFactors(spark, {0: [1.0], 1: [1.0], 2: [1.0]}, {0: [3.0], 1: [2.0], 2: [1.0], 3: [0.5]})
    zeros_u = spark.createDataFrame([(u, 0.0) for u in range(3)], f"{C.USER_INDEX} int, b_u double")
    zeros_i = spark.createDataFrame([(i, 0.0) for i in range(4)], f"{C.ITEM_INDEX} int, b_i double")
    model = RecommenderModel(als, AlsParams(), 0.0, zeros_u, zeros_i)
    schema = f"{C.USER_INDEX} int, {C.ITEM_INDEX} int, {C.RATING} double"
    train = spark.createDataFrame([(0, 0, 3.0), (1, 3, 2.0), (2, 1, 3.5)], schema)  # highest: 3.5
    test = spark.createDataFrame([(0, 1, 3.0), (0, 2, 4.5), (1, 0, 4.0), (2, 0, 3.0)], schema)
    return model, train, test


@pytest.mark.parametrize("together", [False, True], ids=["one-after-the-other", "side-by-side"])
def test_explicit_ranking_metrics_use_the_rating_scale(fixed_model, together):
    # Top-2 unseen: user 0 -> [1, 2], user 1 -> [0, 1], user 2 -> [0, 2]. Popularity (one
    # training row each for songs 0, 1, 3; ties by index): user 0 -> [1, 3], user 1 -> [0, 1].
    # Scale 0.5-5: relevant = held-out >= 4.0: user 0 {2} (hit at rank 2), user 1 {0} (rank 1).
    # Side by side (small data), the model's and the baseline's lists are scored at once.
    metrics = evaluate_model(*fixed_model, "explicit", k=2, rating_max=5.0, together=together)
    assert metrics["relevance"] == {"threshold": 4.0, "based_on": "rating_scale"}
    assert metrics["model"] == pytest.approx({
        "precision_at_2": 0.5, "recall_at_2": 1.0, "ndcg_at_2": (1 / LOG2_3 + 1) / 2, "map_at_2": (0.5 + 1) / 2,
        "ranking_users": 2,
        "rmse": math.sqrt((1 + 3.5**2 + 1 + 0) / 4), "mae": (1 + 3.5 + 1 + 0) / 4, "rows": 4,  # predictions 2, 1, 3, 3
        # Training has songs 0, 1, 3 (one row each); the top 10% (1 song, ties by index) is song 0.
        # Recommended {0, 1, 2}: 3 of the 3 catalogue songs; song 0 is 1 of the 4 recommendations.
        "coverage": 1.0, "popular_share": 0.25,
    })
    assert metrics["bias_baseline"] == pytest.approx({"rmse": math.sqrt((9 + 4.5**2 + 16 + 9) / 4), "mae": 14.5 / 4, "rows": 4})
    assert metrics["popularity_baseline"] == pytest.approx(
        {"precision_at_2": 0.25, "recall_at_2": 0.5, "ndcg_at_2": 0.5, "map_at_2": 0.5, "ranking_users": 2,
         "coverage": 1.0, "popular_share": 0.25}  # {1, 3} and {0, 1}: song 0 once in 4
    )


def test_explicit_ranking_metrics_without_a_scale_fall_back_to_the_training_maximum(fixed_model):
    # Threshold 0.8 * 3.5 = 2.8: user 0 {1, 2} (both hits), user 1 {0} (rank 1), user 2 {0} (rank 1).
    metrics = evaluate_model(*fixed_model, "explicit", k=2, rating_max=None)
    assert metrics["relevance"] == {"threshold": pytest.approx(2.8), "based_on": "highest_training_rating"}
    model = {key: metrics["model"][key] for key in ("precision_at_2", "recall_at_2", "ndcg_at_2", "map_at_2", "ranking_users")}
    assert model == pytest.approx({"precision_at_2": 2 / 3, "recall_at_2": 1.0, "ndcg_at_2": 1.0, "map_at_2": 1.0, "ranking_users": 3})


@pytest.fixture(scope="module")
def play_counts(spark):
    """Two listener groups with disjoint tastes (songs 0-14, 15-29), balanced, so popularity
    cannot tell the groups apart; each listener also has one stray play in the other group."""
    rng = np.random.default_rng(7)
    rows = []
    for user in range(40):
        own = range(0, 15) if user < 20 else range(15, 30)
        other = range(15, 30) if user < 20 else range(0, 15)
        rows += [(user, song, float(rng.integers(1, 60))) for song in own if rng.random() < 0.6]
        rows.append((user, int(rng.choice(list(other))), 1.0))
    return spark.createDataFrame(rows, f"{C.USER_INDEX} int, {C.ITEM_INDEX} int, {C.RATING} double")


def test_implicit_fit_and_ranking_metrics(play_counts, tmp_path):
    train, test = play_counts.randomSplit([0.75, 0.25], seed=3)
    train, test = train.cache(), test.cache()
    model = fit(train, AlsParams(rank=4, reg_param=0.1, max_iter=10, feedback="implicit", alpha=5.0), str(tmp_path / "ck"))
    assert model.user_bias is None and model.item_bias is None  # implicit: no bias terms

    metrics = evaluate_model(model, train, test, "implicit", k=5)
    assert "rmse" not in metrics["model"] and "relevance" not in metrics and "bias_baseline" not in metrics
    assert headline_of("implicit", 5) == ("ndcg_at_5", "popularity_baseline")
    test_users = {r[C.USER_INDEX] for r in test.select(C.USER_INDEX).distinct().collect()}
    assert metrics["model"]["ranking_users"] == metrics["popularity_baseline"]["ranking_users"] == len(test_users)
    model_ndcg, popular_ndcg = metrics["model"]["ndcg_at_5"], metrics["popularity_baseline"]["ndcg_at_5"]
    assert model_ndcg > popular_ndcg + 0.15, metrics
    assert metrics["model"]["precision_at_5"] > metrics["popularity_baseline"]["precision_at_5"]

    # Preference scores: higher for a listener's own group, roughly 0..1 (README's promise).
    scored = model.predict(spark_pairs(train, [(0, s) for s in range(30)])).toPandas().set_index(C.ITEM_INDEX)[C.PREDICTION]
    assert scored[scored.index < 15].mean() > scored[scored.index >= 15].mean() + 0.3
    assert scored.between(-0.5, 1.5).all()


def test_ranking_metrics_over_a_sample_of_users_when_asked(play_counts, tmp_path):
    train, test = play_counts.randomSplit([0.75, 0.25], seed=3)
    train, test = train.cache(), test.cache()
    model = fit(train, AlsParams(rank=4, reg_param=0.1, max_iter=5, feedback="implicit", alpha=5.0), str(tmp_path / "ck"))
    test_users = test.select(C.USER_INDEX).distinct().count()
    metrics = evaluate_model(model, train, test, "implicit", k=5, ranking_users=test_users // 3, details=True)
    sample = metrics["ranking_sample"]
    assert sample["sampled"] and sample["held_out_users"] == test_users and sample["max_users"] == test_users // 3
    ranked = metrics["model"]["ranking_users"]
    assert 0 < ranked < test_users and metrics["popularity_baseline"]["ranking_users"] == ranked  # the same users
    assert len(metrics["_plots"]["user_ndcg"]) == ranked  # the report's per-user NDCG: the same users
    everyone = evaluate_model(model, train, test, "implicit", k=5, ranking_users=0)["model"]
    assert everyone["ranking_users"] == test_users
    # Tuning's score is the same NDCG over the same sample of users, and leaves nothing cached behind
    # (it scores up to 18 candidates in one session).
    cached = cached_rdd_ids(train.sparkSession)
    assert validation_score(model, train, test, "implicit", 5, ranking_users=test_users // 3) == pytest.approx(
        metrics["model"]["ndcg_at_5"])
    assert cached_rdd_ids(train.sparkSession) <= cached
    assert validation_score(model, train, test, "implicit", 5, ranking_users=0) == pytest.approx(everyone["ndcg_at_5"])
    assert metrics["model"]["ndcg_at_5"] != pytest.approx(everyone["ndcg_at_5"])  # the sample is not everyone


def test_ranking_users_is_every_user_or_enough_of_them():
    import argparse

    assert [ranking_users_arg(text) for text in ("0", "1000", "50000")] == [0, 1000, 50000]
    for text in ("5", "999", "-1"):
        with pytest.raises(argparse.ArgumentTypeError, match="use 0 to rank every held-out user, or at least 1000"):
            ranking_users_arg(text)


def test_the_ranking_sample_is_chosen_by_user_id_and_keeps_whole_users(spark):
    schema = f"{C.USER_ID} string, {C.USER_INDEX} int, {C.ITEM_INDEX} int"
    rows = [(f"listener-{n}", n, song) for n in range(2000) for song in range(3)]
    renumbered = [(user_id, (index * 7919) % 2000, song) for user_id, index, song in rows]  # another night's indices
    frame, other_night = spark.createDataFrame(rows, schema), spark.createDataFrame(renumbered, schema)

    sampled, about = ranking_sample(frame, 500)
    assert about["sampled"] and about["held_out_users"] == 2000 and about["max_users"] == 500
    chosen = sampled.groupBy(C.USER_ID).count().collect()
    assert 400 <= len(chosen) <= 600, len(chosen)  # about max_users: a hash, not an exact count
    assert {row["count"] for row in chosen} == {3}  # every row of a chosen user
    again, _ = ranking_sample(other_night, 500)
    assert {r[C.USER_ID] for r in again.select(C.USER_ID).distinct().collect()} == {r[C.USER_ID] for r in chosen}
    # Indices only (evaluate's cached splits): the same users, by user_id from the ID table, whole.
    ids = other_night.select(C.USER_ID, C.USER_INDEX).distinct()
    by_table, about = ranking_sample(other_night.drop(C.USER_ID), 500, user_ids=ids)
    assert about["sampled"] and by_table.columns == [C.USER_INDEX, C.ITEM_INDEX] and by_table.count() == 3 * len(chosen)
    assert {r[C.USER_ID] for r in by_table.join(ids, C.USER_INDEX).select(C.USER_ID).distinct().collect()} == {
        r[C.USER_ID] for r in chosen}

    for everyone in (0, None, 2000, 5000):
        unchanged, about = ranking_sample(frame, everyone)
        assert unchanged is frame and not about["sampled"] and about["held_out_users"] == 2000


def test_seen_songs_are_grouped_for_the_ranked_users_only_and_all_of_their_rows(spark):
    schema = f"{C.USER_ID} string, {C.USER_INDEX} int, {C.ITEM_INDEX} int"
    train = spark.createDataFrame([(f"listener-{n}", n, song) for n in range(2000) for song in range(n % 4 + 1)], schema)
    held_out = spark.createDataFrame([(f"listener-{n}", n, 99) for n in range(0, 2000, 2)], schema)  # every other user
    relevant, about = ranking_sample(held_out, 200)
    ranked = {r[C.USER_INDEX] for r in relevant.select(C.USER_INDEX).distinct().collect()}
    assert about["sampled"] and 100 <= len(ranked) <= 300
    kept = rows_of_ranked_users(train, relevant, about)
    got = sorted((r[C.USER_INDEX], r[C.ITEM_INDEX]) for r in kept.collect())
    assert got == sorted((u, s) for u in ranked for s in range(u % 4 + 1))  # each ranked user's every row, nobody else's
    assert kept.columns == train.columns
    everyone, about = ranking_sample(held_out, 0)
    assert rows_of_ranked_users(train, everyone, about) is train  # not sampled: nothing to cut


def spark_pairs(like, pairs):
    return like.sparkSession.createDataFrame(pairs, f"{C.USER_INDEX} int, {C.ITEM_INDEX} int")


@pytest.mark.parametrize(
    "files, mapping, feedback, expected",
    [
        ({"ratings.csv": "userId,songId,rating,timestamp\n" + "".join(f"{u},{s},{1 + (u + s) % 3},1\n" for u in range(4) for s in range(3)),
          "songs.csv": "songId,title,artist\n0,A,X\n1,B,Y\n2,C,Z\n"}, "", "auto", 5.0),  # MovieLens scale 0.5-5, though no rating passes 3
        ({"user_artists.dat": "userID\tartistID\tweight\n" + "".join(f"{u}\t{s}\t{u + s + 1}\n" for u in range(4) for s in range(3)),
          "artists.dat": "id\tname\turl\tpictureURL\n0\tA\tu\tp\n1\tB\tu\tp\n2\tC\tu\tp\n"}, "", "auto", None),  # play counts
        ({"plays.csv": "u,s,r\n" + "".join(f"{u},{s},{1 + (u + s) % 7}\n" for u in range(4) for s in range(3))},
         '{"file": "plays.csv", "user": "u", "item": "s", "value": "r", "rating_min": 1, "rating_max": 10}', "auto", 10.0),
        ({"plays.csv": "u,s,r\n" + "".join(f"{u},{s},{1 + (u + s) % 7}\n" for u in range(4) for s in range(3))},
         '{"file": "plays.csv", "user": "u", "item": "s", "value": "r"}', "auto", None),  # no scale declared
    ],
)
def test_preprocess_records_the_rating_scale_for_evaluate(spark, tmp_path, files, mapping, feedback, expected):
    from argparse import Namespace

    for name, text in files.items():
        (tmp_path / "data" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "data" / name).write_text(text)
    args = Namespace(run_dir=str(tmp_path / "run"), dataset_dir=str(tmp_path / "data"), dataset_format="auto",
                     column_mapping=mapping, feedback=feedback, max_reject_share=0.05)
    facts = job_module("preprocess").work(args)
    assert facts["rating_max"] == expected

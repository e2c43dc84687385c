"""Top-N: exactly N unseen songs per user, best first; the CSV keeps awkward titles intact."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from musicrec import columns as C
from musicrec.model import AlsParams, fit
from musicrec.recommend import popular_unseen, top_n_unseen, with_original_ids, write_single_csv


@pytest.fixture(scope="module")
def trained(spark, tmp_path_factory):
    rng = np.random.default_rng(0)
    rows = [(int(u), int(i), float(rng.integers(1, 6))) for u in range(30) for i in range(25) if rng.random() < 0.4]
    frame = spark.createDataFrame(rows, f"{C.USER_INDEX} int, {C.ITEM_INDEX} int, {C.RATING} double")
    model = fit(frame, AlsParams(rank=3, max_iter=5), str(tmp_path_factory.mktemp("ck")))
    return model, frame


def test_top_n_is_unseen_exact_and_best_first(trained):
    model, seen = trained
    top = top_n_unseen(model, seen, 5).toPandas()
    seen_pairs = {(r[C.USER_INDEX], r[C.ITEM_INDEX]) for r in seen.collect()}
    assert set(top[C.USER_INDEX]) == {r[C.USER_INDEX] for r in seen.select(C.USER_INDEX).distinct().collect()}
    for _, group in top.groupby(C.USER_INDEX):
        assert list(group.sort_values("rank")["rank"]) == [1, 2, 3, 4, 5]
        assert group[C.ITEM_INDEX].is_unique
        assert list(group.sort_values("rank")["score"]) == sorted(group["score"], reverse=True)
    assert not seen_pairs & set(zip(top[C.USER_INDEX], top[C.ITEM_INDEX]))


def test_top_n_scores_match_the_models_predictions(trained):
    model, seen = trained
    top = top_n_unseen(model, seen.limit(0), 3).limit(20)
    predicted = model.predict(top).toPandas()
    assert np.allclose(predicted["score"], predicted[C.PREDICTION], atol=1e-4)


def test_popularity_baseline(spark, trained):
    _, seen = trained
    train = spark.createDataFrame([(0, 7), (1, 7), (2, 7), (0, 8), (1, 8), (0, 9)], f"{C.USER_INDEX} int, {C.ITEM_INDEX} int")
    users = spark.createDataFrame([(0,), (3,)], f"{C.USER_INDEX} int")
    top = popular_unseen(train, train, users, 2).toPandas().sort_values([C.USER_INDEX, "rank"])
    assert top[top[C.USER_INDEX] == 3][C.ITEM_INDEX].tolist() == [7, 8]
    assert top[top[C.USER_INDEX] == 0][C.ITEM_INDEX].tolist() == []  # user 0 has seen all three


def test_csv_round_trips_awkward_titles(spark, tmp_path):
    awkward = ['Hello, Goodbye', 'Say "Hi"', "Two\nLines", "Café — Ünïcode"]
    top = spark.createDataFrame([(0, i, 5.0 - i, i + 1) for i in range(4)], f"{C.USER_INDEX} int, {C.ITEM_INDEX} int, score double, rank int")
    interactions = spark.createDataFrame([("u1", f"s{i}", 0, i) for i in range(4)], f"{C.USER_ID} string, {C.ITEM_ID} string, {C.USER_INDEX} int, {C.ITEM_INDEX} int")
    items = spark.createDataFrame([(f"s{i}", t, None) for i, t in enumerate(awkward)], f"{C.ITEM_ID} string, {C.TITLE} string, {C.ARTIST} string")
    path = write_single_csv(with_original_ids(top, interactions, items), tmp_path / "out" / "recommended_songs.csv")
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == list(C.RECOMMENDATION_COLUMNS)
    assert [r[C.TITLE] for r in rows] == awkward
    assert [r["rank"] for r in rows] == ["1", "2", "3", "4"]
    assert sorted(p.name for p in path.parent.iterdir()) == ["recommended_songs.csv"]

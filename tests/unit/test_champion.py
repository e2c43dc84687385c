"""The champion store and the gate's comparison: the same model under tonight's other indices must
score exactly what the champion scores, so any mix-up of the two ID spaces shows."""

from __future__ import annotations

import random

import pytest

from musicrec import champion
from musicrec import columns as C
from musicrec.errors import PipelineError
from musicrec.id_tables import IdTables
from musicrec.model import AlsParams, RecommenderModel, fit, load
from musicrec.splits import split_interactions
from support import FixedFactors, cached_rdd_ids

SPLIT = {"kind": "random", "test_fraction": 0.25, "seed": 11}
USERS, SONGS = 40, 16


def interactions(spark, index_of_user, index_of_song, implicit: bool):
    rng = random.Random(5)
    taste = {u: rng.choice([-1, 1]) for u in range(USERS)}
    kind = {s: rng.choice([-1, 1]) for s in range(SONGS)}
    rows = []
    for u in range(USERS):
        for s in range(SONGS):
            if rng.random() < 0.6:
                value = float(rng.randint(1, 30)) if implicit else 3.0 + 1.5 * taste[u] * kind[s] + rng.gauss(0, 0.3)
                if implicit and taste[u] != kind[s]:
                    continue
                rows.append((f"u{u}", f"s{s}", index_of_user(u), index_of_song(s), value, 1000 + u * SONGS + s))
    schema = f"{C.USER_ID} string, {C.ITEM_ID} string, {C.USER_INDEX} int, {C.ITEM_INDEX} int, {C.RATING} double, {C.TIMESTAMP} long"
    return spark.createDataFrame(rows, schema)


def id_tables(frame):
    """The (user_ids, song_ids) tables preprocess writes, from an indexed frame."""
    return (frame.select(C.USER_ID, C.USER_INDEX).distinct(), frame.select(C.ITEM_ID, C.ITEM_INDEX).distinct())


def rekeyed(spark, model: RecommenderModel, user_map: dict[int, int], song_map: dict[int, int]) -> RecommenderModel:
    """The same model with its users and songs renumbered (old index -> new index)."""
    users = {user_map[r["id"]]: list(r["features"]) for r in model.als.userFactors.collect()}
    songs = {song_map[r["id"]]: list(r["features"]) for r in model.als.itemFactors.collect()}
    twin = RecommenderModel(FixedFactors(spark, users, songs), model.params, model.global_mean)
    if model.user_bias is not None:
        twin.user_bias = spark.createDataFrame(
            [(user_map[r[C.USER_INDEX]], r["b_u"]) for r in model.user_bias.collect()], f"{C.USER_INDEX} int, b_u double")
        twin.item_bias = spark.createDataFrame(
            [(song_map[r[C.ITEM_INDEX]], r["b_i"]) for r in model.item_bias.collect()], f"{C.ITEM_INDEX} int, b_i double")
    return twin


@pytest.mark.parametrize("feedback", ["explicit", "implicit"])
def test_the_champion_under_tonights_indices_scores_what_it_scores_itself(spark, tmp_path, feedback, monkeypatch):
    implicit = feedback == "implicit"
    last_night = interactions(spark, lambda u: u, lambda s: s, implicit)
    train, _ = split_interactions(last_night, SPLIT["kind"], SPLIT["test_fraction"], SPLIT["seed"])
    params = AlsParams(rank=3, reg_param=0.05, max_iter=6, feedback=feedback, alpha=5.0)
    fit(train, params, str(tmp_path / "ck")).save(tmp_path / "eval_model")
    key = champion.dataset_key("https://example.org/plays-{{ ds }}.zip", "generic", feedback)
    champion.crown(tmp_path, key, tmp_path / "eval_model", *id_tables(last_night),
                   {"run_id": "night-1", "split": SPLIT, "train_max_timestamp": 10**6})
    assert champion.read(tmp_path, key)["run_id"] == "night-1"

    # Tonight: the same data, numbered backwards; tonight's model is the champion, renumbered.
    user_map, song_map = {u: USERS - 1 - u for u in range(USERS)}, {s: SONGS - 1 - s for s in range(SONGS)}
    tonight = interactions(spark, user_map.get, song_map.get, implicit)
    train2, test2 = split_interactions(tonight, SPLIT["kind"], SPLIT["test_fraction"], SPLIT["seed"])
    model = rekeyed(spark, load(spark, tmp_path / "eval_model"), user_map, song_map)
    got = champion.compare(spark, tmp_path, key, "night-2", SPLIT, model, train2.cache(), test2.cache(), feedback, 5)
    assert got["champion_run"] == "night-1" and "same split settings" in got["why_fair"]
    # The fair rows are tonight's test split itself: its cache is the caller's, whose metrics may be
    # reading it at the same time (musicrec.side_by_side).
    assert test2.is_cached
    assert got["model_score"] == pytest.approx(got["champion_score"], rel=1e-5)
    # Given the splits as train writes them (indices only, no string IDs) uncached, as evaluate
    # does (its metrics cache only indices and values), and the ID tables: it puts the IDs back,
    # caches the rows itself, scores the same, and leaves nothing cached behind.
    cached = cached_rdd_ids(spark)
    as_written = [side.drop(C.USER_ID, C.ITEM_ID)
                  for side in split_interactions(tonight, SPLIT["kind"], SPLIT["test_fraction"], SPLIT["seed"])]
    uncached = champion.compare(spark, tmp_path, key, "night-2", SPLIT, model, *as_written, feedback, 5,
                                ids=IdTables(*id_tables(tonight)))
    assert cached_rdd_ids(spark) <= cached
    with pytest.raises(PipelineError, match="no ID tables were given"):
        champion.compare(spark, tmp_path, key, "night-2", SPLIT, model, *as_written, feedback, 5)
    assert (uncached["model_score"], uncached["champion_score"]) == pytest.approx((got["model_score"], got["champion_score"]))
    if implicit:
        assert got["users"] > 5 and got["model_score"] > 0.1
        # ...and what tonight's model scores is its NDCG by definition: its lists exclude every song
        # the user has in tonight's whole training split.
        from pyspark.sql import functions as F

        from musicrec.evaluation import relevant_rows
        from musicrec.metrics import ranking_metrics
        from musicrec.recommend import top_n_unseen

        known = model.als.userFactors.select(F.col("id").alias(C.USER_INDEX))
        held_out = relevant_rows(test2, feedback).join(known, C.USER_INDEX)
        direct = ranking_metrics(top_n_unseen(model, train2, 5, users=held_out), held_out, 5)
        assert got["model_score"] == pytest.approx(direct["ndcg_at_5"], rel=1e-9)
    else:
        assert got["rows"] == test2.count()
    if implicit:  # over a sample of the users: still the same users for both models
        cached = cached_rdd_ids(spark)
        with monkeypatch.context() as patched:
            patched.setattr(champion, "MIN_FAIR_ROWS", 5)  # half of these few users is too few to judge otherwise
            sampled = champion.compare(spark, tmp_path, key, "night-2", SPLIT, model, train2, test2, feedback, 5,
                                       ranking_users=got["users"] // 2)
        assert cached_rdd_ids(spark) <= cached  # nothing left cached
        assert 0 < sampled["users"] < got["users"], (sampled, got["users"])
        assert sampled["model_score"] == pytest.approx(sampled["champion_score"], rel=1e-5)
        assert sampled["ranking_sample"]["sampled"] and sampled["ranking_sample"]["held_out_users"] == got["users"]

    # A worse tonight's model scores worse on the same rows: the comparison is not blind.
    shuffled = dict(zip(range(SONGS), random.Random(1).sample(list(song_map.values()), SONGS)))
    worse = champion.compare(spark, tmp_path, key, "night-2", SPLIT,
                             rekeyed(spark, load(spark, tmp_path / "eval_model"), user_map, shuffled),
                             train2, test2, feedback, 5)
    if implicit:
        assert worse["model_score"] < got["champion_score"]
    else:
        assert worse["model_score"] > got["champion_score"]


def test_no_champion_and_a_changed_split(spark, tmp_path):
    frame = interactions(spark, lambda u: u, lambda s: s, False)
    key = champion.dataset_key("", "movielens-csv", "explicit")
    assert key == "embedded-sample|movielens-csv|explicit"
    first = champion.compare(spark, tmp_path, key, "night-1", SPLIT, None, frame, frame, "explicit", 5)
    assert first == {"champion_run": None, "note": f"first run of dataset {key}: no champion to compare with"}

    train, _ = split_interactions(frame, "random", 0.25, 11)
    fit(train, AlsParams(rank=2, max_iter=2), str(tmp_path / "ck")).save(tmp_path / "m")
    newest = max(r[C.TIMESTAMP] for r in frame.collect())
    champion.crown(tmp_path, key, tmp_path / "m", *id_tables(frame), {"run_id": "night-1", "split": SPLIT, "train_max_timestamp": newest})
    # Another seed: the champion trained on some of tonight's test rows; none are newer than its data.
    other = {**SPLIT, "seed": 12}
    blocked = champion.compare(spark, tmp_path, key, "night-2", other, None, frame, frame, "explicit", 5)
    assert blocked["champion_run"] == "night-1" and "cannot be scored fairly" in blocked["blocked"]
    assert "only 0 held-out interactions qualify" in blocked["blocked"]
    # Interactions newer than the champion's training data are fair whatever the split.
    fair, why = champion.fair_rows(champion.read(tmp_path, key), other, frame.filter(f"{C.TIMESTAMP} >= {newest - 30}"))
    assert fair.count() == 0 and "newer than its training data" in why
    from pyspark.sql import functions as F

    later = frame.withColumn(C.TIMESTAMP, F.col(C.TIMESTAMP) + 10**6)
    assert champion.fair_rows(champion.read(tmp_path, key), other, later)[0].count() == later.count()


def test_a_run_older_than_the_champion_is_superseded_without_scoring(spark, tmp_path):
    frame = interactions(spark, lambda u: u, lambda s: s, False)
    key = champion.dataset_key("https://example.org/ratings-{{ ds }}.zip", "movielens-csv", "explicit")
    train, test = split_interactions(frame, SPLIT["kind"], SPLIT["test_fraction"], SPLIT["seed"])
    fit(train, AlsParams(rank=2, max_iter=2), str(tmp_path / "ck")).save(tmp_path / "m")
    champion.crown(tmp_path, key, tmp_path / "m", *id_tables(frame),
                   {"run_id": "scheduled__2026-03-10", "logical_date": "2026-03-10T00:00:00+00:00", "split": SPLIT,
                    "train_max_timestamp": 10**6})
    # The model is never touched for a superseded run: None would fail any scoring.
    older = champion.compare(spark, tmp_path, key, "backfill__2026-03-01", SPLIT, None, train, test, "explicit", 5,
                             logical_date="2026-03-01T00:00:00+00:00")
    assert older["champion_run"] == "scheduled__2026-03-10"
    assert "newer logical date 2026-03-10" in older["superseded"] and "2026-03-01" in older["superseded"]
    assert champion.is_newer("2026-03-10T00:00:00", "2026-03-01T00:00:00Z")  # no zone: UTC
    assert not champion.is_newer("2026-03-01T01:00:00+02:00", "2026-03-01T00:00:00+00:00")
    # The same date (a re-run of the champion's night) or a later one is compared as usual.
    model = load(spark, tmp_path / "m")
    for date in ("2026-03-10T00:00:00+00:00", "2026-03-11T00:00:00+00:00"):
        later = champion.compare(spark, tmp_path, key, "n", SPLIT, model, train, test, "explicit", 5, logical_date=date)
        assert "superseded" not in later and later["champion_score"] == pytest.approx(later["model_score"])


def test_champion_folders_are_per_dataset(tmp_path):
    a = champion.champion_dir(tmp_path, champion.dataset_key("https://x.org/a-{{ ds }}.zip", "generic", "implicit"))
    b = champion.champion_dir(tmp_path, champion.dataset_key("https://x.org/a-{{ ds }}.zip", "generic", "explicit"))
    assert a != b and a.parent == b.parent == tmp_path / "champions"
    assert champion.read(tmp_path, "nothing|x|y") is None


def test_a_crash_between_the_two_renames_of_a_crowning_keeps_the_champion(spark, tmp_path):
    import os

    frame = interactions(spark, lambda u: u, lambda s: s, False)
    fit(frame, AlsParams(rank=2, max_iter=1), str(tmp_path / "ck")).save(tmp_path / "m")
    key = champion.dataset_key("", "movielens-csv", "explicit")
    folder = champion.crown(tmp_path, key, tmp_path / "m", *id_tables(frame), {"run_id": "night-1", "split": SPLIT})
    os.rename(folder, folder.parent / f".{folder.name}.staging-old-1234abcd")  # the first rename, then the crash
    assert champion.read(tmp_path, key)["run_id"] == "night-1"
    assert folder.exists()


def test_temporal_split_compares_only_after_the_champions_newest_training_interaction(spark):
    temporal = {"kind": "temporal", "test_fraction": 0.2, "seed": 1}
    frame = interactions(spark, lambda u: u, lambda s: s, False)
    record = {"run_id": "night-1", "split": temporal, "train_max_timestamp": 1000 + 12 * SONGS}
    fair, why = champion.fair_rows(record, temporal, frame)
    assert why.startswith("temporal split") and fair.count() == frame.filter(f"{C.TIMESTAMP} > {1000 + 12 * SONGS}").count() > 0

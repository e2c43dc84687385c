"""Top-N: exactly N unseen songs per user, best first; the CSV keeps awkward titles intact."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from musicrec import columns as C
from musicrec import recommend, top_n_scoring
from musicrec.model import AlsParams, fit
from musicrec.recommend import (
    popular_unseen, recommendation_counts, seen_songs, top_n_unseen, with_original_ids, write_single_csv,
)


@pytest.fixture(scope="module")
def trained(spark, tmp_path_factory):
    rng = np.random.default_rng(0)
    rows = [(int(u), int(i), float(rng.integers(1, 6))) for u in range(30) for i in range(25) if rng.random() < 0.4]
    frame = spark.createDataFrame(rows, f"{C.USER_INDEX} int, {C.ITEM_INDEX} int, {C.RATING} double")
    model = fit(frame, AlsParams(rank=3, max_iter=5), str(tmp_path_factory.mktemp("ck")))
    return model, frame


@pytest.fixture(params=["in_driver", "python_workers"])
def top_n_path(request, monkeypatch):
    """Top-N computed both ways: in the job's process (small data) and by Spark's Python workers;
    the test fails if the other way ran."""
    in_driver_calls = []
    real = recommend._in_driver_frame
    monkeypatch.setattr(recommend, "_in_driver_frame", lambda spark, frames: in_driver_calls.append(1) or real(spark, frames))
    if request.param == "python_workers":
        monkeypatch.setattr(recommend, "IN_DRIVER_SCORES", 0)
    yield request.param
    assert bool(in_driver_calls) == (request.param == "in_driver"), f"top-N did not run {request.param}"


def brute_force_top_n(model, seen_pairs, n):
    """{user: [(item, score), ...]}: every unseen song scored one by one, best first, ties to the
    smaller item index; users with no unseen song are absent."""
    items = [(r[C.ITEM_INDEX], np.array(r["features"], dtype=np.float64), r["offset"]) for r in model.item_table().collect()]
    expected = {}
    for user in model.user_table().collect():
        u, vector = user[C.USER_INDEX], np.array(user["features"], dtype=np.float64)
        scored = sorted(
            ((-(float(vector @ features) + offset + user["offset"]), item) for item, features, offset in items if (u, item) not in seen_pairs)
        )
        if scored:
            expected[u] = [(item, -negative) for negative, item in scored[:n]]
    return expected


def as_lists(top):
    got = {}
    for row in sorted(top.collect(), key=lambda r: (r[C.USER_INDEX], r["rank"])):
        got.setdefault(row[C.USER_INDEX], []).append((row[C.ITEM_INDEX], row["score"], row["rank"]))
    return got


def assert_same_top_n(got, expected):
    assert set(got) == set(expected)
    for user, rows in got.items():
        assert [rank for _, _, rank in rows] == list(range(1, len(rows) + 1)), user
        assert [item for item, _, _ in rows] == [item for item, _ in expected[user]], user
        # Scored in single precision (top_n_scoring.SCORE_DTYPE), as Spark's ALS does.
        assert np.allclose([score for _, score, _ in rows], [score for _, score in expected[user]], rtol=0, atol=1e-5), user


def test_top_n_is_unseen_exact_and_best_first(trained, top_n_path):
    model, seen = trained
    seen_pairs = {(r[C.USER_INDEX], r[C.ITEM_INDEX]) for r in seen.collect()}
    some_seen = seen.filter(f"NOT ({C.USER_INDEX} = 0 AND {C.ITEM_INDEX} >= 3)")  # user 0 has seen items 0-2 at most
    for frame, n in ((seen, 5), (some_seen, 20)):
        pairs = {(r[C.USER_INDEX], r[C.ITEM_INDEX]) for r in frame.collect()}
        expected = brute_force_top_n(model, pairs, n)
        assert_same_top_n(as_lists(top_n_unseen(model, frame, n)), expected)
        # The seen songs grouped beforehand (as evaluate does, once for two lists) give the same lists.
        grouped = seen_songs(frame)
        assert seen_songs(grouped) is grouped
        assert_same_top_n(as_lists(top_n_unseen(model, grouped, n)), expected)
    assert seen_pairs  # the fixture has history to exclude


@pytest.mark.parametrize("users_per_chunk", [1, 7])
def test_top_n_is_the_same_in_chunks_of_a_few_users(trained, top_n_path, monkeypatch, users_per_chunk):
    """Users are scored a chunk at a time (SCORES_PER_CHUNK): each chunk's seen songs are masked in
    its own rows; 7 leaves a partial last chunk (30 users)."""
    model, seen = trained
    songs = model.item_table().count()
    monkeypatch.setattr(top_n_scoring, "SCORES_PER_CHUNK", users_per_chunk * songs)
    pairs = {(r[C.USER_INDEX], r[C.ITEM_INDEX]) for r in seen.collect()}
    assert_same_top_n(as_lists(top_n_unseen(model, seen, 6)), brute_force_top_n(model, pairs, 6))


class TableModel:
    """A model reduced to what top_n_unseen reads: user and song tables (features, offset)."""

    def __init__(self, spark, users, items):
        self.users = spark.createDataFrame(users, f"{C.USER_INDEX} int, features array<float>, offset double")
        self.items = spark.createDataFrame(items, f"{C.ITEM_INDEX} int, features array<float>, offset double")

    def user_table(self):
        return self.users

    def item_table(self):
        return self.items


def test_top_n_breaks_ties_by_item_and_shortens_lists_when_few_songs_are_unseen(spark, top_n_path):
    # Small whole numbers: scores tie exactly. Item indices are not in table order.
    items = [(10, [1.0, 0.0], 0.0), (3, [0.0, 1.0], 0.0), (7, [1.0, 0.0], 0.0), (1, [1.0, 1.0], -1.0), (12, [0.0, 0.0], 1.0), (5, [2.0, 0.0], -1.0)]
    users = [(0, [1.0, 0.0], 0.0), (1, [0.0, 2.0], 0.5), (2, [1.0, 1.0], 0.0), (3, [3.0, 0.0], 0.0), (4, [1.0, 0.0], 0.0)]
    seen_rows = [(1, 99)] + [(2, i) for i in (10, 3, 7, 1, 12)] + [(3, i) for i in (10, 3, 7, 1, 12, 5)]
    seen = spark.createDataFrame(seen_rows, f"{C.USER_INDEX} int, {C.ITEM_INDEX} int")  # user 0 and 4: nothing seen
    model = TableModel(spark, users, items)
    for n in (3, 10):
        expected = brute_force_top_n(model, set(seen_rows), n)
        got = as_lists(top_n_unseen(model, seen, n))
        assert_same_top_n(got, expected)
    # By hand, n = 3: user 0 scores 1 on items 10, 7, 12 and 5 (a four-way tie): the smallest three.
    top3 = as_lists(top_n_unseen(model, seen, 3))
    assert [item for item, _, _ in top3[0]] == [5, 7, 10]
    assert [item for item, _, _ in top3[1]] == [3, 1, 12]  # 2.5, then 1.5 tied (1 before 12)
    assert [(item, score) for item, score, _ in top3[2]] == [(5, 1.0)]  # one unseen song: a list of one
    assert 3 not in top3  # has seen everything: no rows at all
    assert len(as_lists(top_n_unseen(model, seen, 10))[4]) == 6  # n beyond the catalogue: all of it


def test_top_n_ties_at_the_cut_off_go_to_the_smallest_items_in_a_large_catalogue(spark, top_n_path):
    # 300 songs scoring 0, 1 or 2 (a hundred-way tie each), listed in shuffled order.
    order = np.random.default_rng(5).permutation(300)
    items = [(int(i), [float(i % 3)], 0.0) for i in order]
    users = [(0, [1.0], 0.0), (1, [-1.0], 0.0), (2, [1.0], 0.5)]
    seen_rows = [(2, i) for i in range(2, 300, 3)][:95]  # user 2 has seen 95 of the 100 songs scoring 2
    seen = spark.createDataFrame(seen_rows, f"{C.USER_INDEX} int, {C.ITEM_INDEX} int")
    model = TableModel(spark, users, items)
    got = as_lists(top_n_unseen(model, seen, 10))
    assert_same_top_n(got, brute_force_top_n(model, set(seen_rows), 10))
    assert [item for item, _, _ in got[0]] == list(range(2, 30, 3))
    assert [item for item, _, _ in got[2]][:5] == [287, 290, 293, 296, 299]  # its 5 unseen 2s, then 1s


def test_top_n_of_no_users_is_empty_with_the_same_schema_both_ways(spark, trained, top_n_path):
    model, seen = trained
    nobody = spark.createDataFrame([], f"{C.USER_INDEX} int")
    for top in (top_n_unseen(model, seen, 3, users=nobody), popular_unseen(seen, seen, nobody, 3)):
        assert top.count() == 0
        assert top.schema.simpleString() == "struct<user_index:int,item_index:int,score:double,rank:int>"


def test_top_n_scores_match_the_models_predictions(trained):
    model, seen = trained
    top = top_n_unseen(model, seen.limit(0), 3).limit(20)
    predicted = model.predict(top).toPandas()
    assert np.allclose(predicted["score"], predicted[C.PREDICTION], atol=1e-4)


def test_popularity_baseline(spark, trained, top_n_path):
    _, seen = trained
    train = spark.createDataFrame([(0, 7), (1, 7), (2, 7), (0, 8), (1, 8), (0, 9)], f"{C.USER_INDEX} int, {C.ITEM_INDEX} int")
    users = spark.createDataFrame([(0,), (3,)], f"{C.USER_INDEX} int")
    top = popular_unseen(train, train, users, 2).toPandas().sort_values([C.USER_INDEX, "rank"])
    assert top[top[C.USER_INDEX] == 3][C.ITEM_INDEX].tolist() == [7, 8]
    assert top[top[C.USER_INDEX] == 0][C.ITEM_INDEX].tolist() == []  # user 0 has seen all three


def test_recommendation_counts_count_rows_and_users_with_lists_of_any_length(spark):
    # Lists of 3, 1 and 2 songs (a user with few unseen songs gets a shorter list); two users
    # share a song, and a rank-2 song is the same song as another user's rank 1.
    rows = [("a", 1, "s1"), ("a", 2, "s2"), ("a", 3, "s3"), ("b", 1, "s2"), ("c", 1, "s1"), ("c", 2, "s4")]
    frame = spark.createDataFrame(rows, f"{C.USER_ID} string, rank int, {C.ITEM_ID} string")
    assert recommendation_counts(frame) == (6, 3)
    assert recommendation_counts(frame.limit(0)) == (0, 0)


def test_csv_round_trips_awkward_titles_and_artists(spark, tmp_path):
    awkward = ['Hello, Goodbye', 'Say "Hi"', "Two\nLines", "Café — Ünïcode"]
    artists = ["The Band", None, 'Crosby, "Stills"', "Ünïcode"]  # None: the dataset names no artist
    top = spark.createDataFrame([(0, i, 5.0 - i, i + 1) for i in range(4)], f"{C.USER_INDEX} int, {C.ITEM_INDEX} int, score double, rank int")
    interactions = spark.createDataFrame([("u1", f"s{i}", 0, i) for i in range(4)], f"{C.USER_ID} string, {C.ITEM_ID} string, {C.USER_INDEX} int, {C.ITEM_INDEX} int")
    items = spark.createDataFrame([(f"s{i}", t, a) for i, (t, a) in enumerate(zip(awkward, artists))], f"{C.ITEM_ID} string, {C.TITLE} string, {C.ARTIST} string")
    user_ids, song_ids = interactions.select(C.USER_ID, C.USER_INDEX), interactions.select(C.ITEM_ID, C.ITEM_INDEX)
    path = write_single_csv(with_original_ids(top, user_ids.distinct(), song_ids, items), tmp_path / "out" / "recommended_songs.csv")
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == list(C.RECOMMENDATION_COLUMNS) == ["user_id", "rank", "song_id", "title", "artist", "predicted_rating"]
    assert [r[C.TITLE] for r in rows] == awkward
    assert [r[C.ARTIST] for r in rows] == [a or "" for a in artists]
    assert [r["rank"] for r in rows] == ["1", "2", "3", "4"]
    assert sorted(p.name for p in path.parent.iterdir()) == ["recommended_songs.csv"]


def _user_id(u: int) -> str:
    """Dataset user IDs of every shape: numbers (negative, short, long, 64-bit) and text."""
    if u == 3:
        return "9223372036854775807"
    return {0: str(1000 - 37 * u), 1: f"user{u}", 2: str(7 * u), 3: f"Zed{u:02d}"}[u % 4]


def test_csv_with_many_users_is_ordered_and_matches_the_model(spark, trained, tmp_path):
    model, seen = trained
    ids = spark.createDataFrame([(u, _user_id(u)) for u in range(30)], f"{C.USER_INDEX} int, {C.USER_ID} string")
    songs = spark.createDataFrame([(i, f"s{(i * 7) % 25:03d}") for i in range(25)], f"{C.ITEM_INDEX} int, {C.ITEM_ID} string")
    interactions = seen.join(ids, C.USER_INDEX).join(songs, C.ITEM_INDEX)
    items = spark.createDataFrame([(f"s{i:03d}", f"Title of s{i:03d}", None) for i in range(25)], f"{C.ITEM_ID} string, {C.TITLE} string, {C.ARTIST} string")
    top = top_n_unseen(model, interactions, 3)
    path = write_single_csv(with_original_ids(top, ids, songs, items), tmp_path / "out" / "recommended_songs.csv")
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))

    assert list(rows[0]) == list(C.RECOMMENDATION_COLUMNS)
    users_in_order = list(dict.fromkeys(r[C.USER_ID] for r in rows))
    numeric = sorted((u for u in users_in_order if u.lstrip("-").isdigit()), key=int)
    text = sorted(u for u in users_in_order if not u.lstrip("-").isdigit())
    assert users_in_order == numeric + text  # numbers as numbers (-36 < 14 < 852 < 2^63-1), then text
    assert set(users_in_order) == {_user_id(u) for u in range(30)}
    assert users_in_order[:7] == ["-36", "14", "42", "70", "98", "112", "126"] and users_in_order[-1] == "user9" and "Zed07" in text
    for user in users_in_order:
        assert [r["rank"] for r in rows if r[C.USER_ID] == user] == ["1", "2", "3"]
    assert all(r[C.TITLE] == f"Title of {r[C.ITEM_ID]}" for r in rows)  # each song_id beside its own title

    index_of_user = {_user_id(u): u for u in range(30)}
    index_of_song = {f"s{(i * 7) % 25:03d}": i for i in range(25)}
    pairs = spark.createDataFrame(
        [(index_of_user[r[C.USER_ID]], index_of_song[r[C.ITEM_ID]], float(r["predicted_rating"])) for r in rows],
        f"{C.USER_INDEX} int, {C.ITEM_INDEX} int, written double",
    )
    predicted = model.predict(pairs).toPandas()
    assert len(predicted) == len(rows)
    assert np.allclose(predicted["written"], predicted[C.PREDICTION], rtol=0, atol=6e-5)  # rounded to 4 places
    seen_pairs = {(r[C.USER_INDEX], r[C.ITEM_INDEX]) for r in seen.collect()}
    assert not seen_pairs & set(zip(predicted[C.USER_INDEX], predicted[C.ITEM_INDEX]))


def test_songs_collected_from_many_partitions_in_any_order(spark):
    """collected_songs sorts the songs by index whatever partitions and order Spark hands them
    in, keeps each song's factors with it, and refuses factors of unequal lengths."""
    rng = np.random.default_rng(3)
    items = [(int(i), [float(v) for v in rng.standard_normal(3)], float(i) / 10) for i in rng.permutation(50)]
    frame = spark.createDataFrame(items, f"{C.ITEM_INDEX} int, features array<float>, offset double").repartition(7)
    ids, factors_t, position_of = recommend.collected_songs(frame)[:3]
    assert ids.tolist() == list(range(50)) and position_of.tolist() == list(range(50))
    by_id = {i: (features, offset) for i, features, offset in items}
    assert np.allclose(factors_t[:3].T, [by_id[i][0] for i in range(50)], atol=1e-6)
    assert np.allclose(factors_t[3], [by_id[i][1] for i in range(50)], atol=1e-6)
    ragged = spark.createDataFrame([(0, [1.0], 0.0), (1, [1.0, 2.0], 0.0)], f"{C.ITEM_INDEX} int, features array<float>, offset double")
    with pytest.raises(ValueError, match="one length"):
        recommend.collected_songs(ragged)


def ways_taken(monkeypatch) -> list:
    """Names of the top-N ways recommend.top_n_unseen_in_files takes past the in-driver one."""
    ways = []
    for name in ("_scored_file_by_file", "_top_n"):
        real = getattr(recommend, name)
        monkeypatch.setattr(recommend, name, lambda *args, real=real, name=name, **kw: ways.append(name) or real(*args, **kw))
    return ways


@pytest.mark.parametrize("layout", ["whole_users", "unmarked", "too_many_users_to_broadcast"])
def test_top_n_read_from_the_files_is_top_n_unseen(spark, trained, top_n_path, tmp_path, monkeypatch, layout):
    """recommend reads preprocess's files itself: in the driver (any layout), file by file in
    the Python workers (whole users per file, as marked, and few enough users to broadcast their
    factors), or else through Spark's grouping. A user without factors (as with an evaluation
    model, whose users' interactions can all be held out) gets no list either way."""
    from musicrec import interaction_files
    from musicrec.spark_config import session_settings

    model, seen = trained
    stranger = spark.createDataFrame([(99, 0, 1.0), (99, 1, 1.0)], seen.schema)  # no factors
    folder = tmp_path / "interactions"
    with session_settings(spark, {"spark.sql.adaptive.enabled": "false", "spark.sql.shuffle.partitions": "3"}):
        interaction_files.by_user(seen.unionByName(stranger)).write.parquet(str(folder))
    assert len(interaction_files.part_files(folder)) == 3
    if layout != "unmarked":
        interaction_files.mark_whole_users(folder)
    if layout == "too_many_users_to_broadcast":
        monkeypatch.setattr(recommend, "BROADCAST_USER_VALUES", 29 * 4)  # 30 users of rank 3 (+ 1)
    ways = ways_taken(monkeypatch)
    pairs = {(r[C.USER_INDEX], r[C.ITEM_INDEX]) for r in seen.collect()}
    assert_same_top_n(as_lists(recommend.top_n_unseen_in_files(model, folder, 5)), brute_force_top_n(model, pairs, 5))
    expected_way = {"in_driver": [], "python_workers": ["_scored_file_by_file" if layout == "whole_users" else "_top_n"]}
    assert ways == expected_way[top_n_path]


def test_top_n_read_file_by_file_refuses_files_whose_users_are_not_whole(spark, trained, tmp_path, monkeypatch):
    from musicrec import interaction_files
    from musicrec.errors import PipelineError

    model, seen = trained
    folder = tmp_path / "interactions"
    seen.repartition(3).write.parquet(str(folder))  # round robin: users in several files
    interaction_files.mark_whole_users(folder)  # wrongly
    monkeypatch.setattr(recommend, "IN_DRIVER_SCORES", 0)
    with pytest.raises(PipelineError, match=r"lists for 30 users: users have rows in more than one file of .*interactions.*_musicrec_layout"):
        recommend.top_n_unseen_in_files(model, folder, 5)


def test_top_n_read_file_by_file_from_play_counts_as_preprocess_writes_them(spark, tmp_path, monkeypatch):
    """The chain as the DAG runs it: play counts summed and written by preprocess's functions with
    adaptive execution on, a model fitted on them, top-N scored file by file."""
    from musicrec.prepare import add_indices, write_interactions
    from musicrec.spark_config import session_settings

    rng = np.random.default_rng(1)
    plays = [(f"u{u}", f"s{int(s)}", float(rng.integers(1, 4)), None) for u in range(60) for s in rng.choice(40, 8, replace=False)]
    rows = spark.createDataFrame(plays * 2, f"{C.USER_ID} string, {C.ITEM_ID} string, {C.RATING} double, {C.TIMESTAMP} long")
    folder = tmp_path / "interactions"
    with session_settings(spark, {"spark.sql.adaptive.enabled": "true", "spark.sql.shuffle.partitions": "5",
                                  "spark.sql.adaptive.coalescePartitions.parallelismFirst": "false",
                                  "spark.sql.adaptive.coalescePartitions.minPartitionSize": "1",
                                  "spark.sql.adaptive.advisoryPartitionSizeInBytes": "3000"}):
        write_interactions(add_indices(rows, sum_plays=True), folder)
    interactions = spark.read.parquet(str(folder))
    model = fit(interactions, AlsParams(rank=3, max_iter=3, feedback="implicit"), str(tmp_path / "ck"))
    monkeypatch.setattr(recommend, "IN_DRIVER_SCORES", 0)
    ways = ways_taken(monkeypatch)
    pairs = {(r[C.USER_INDEX], r[C.ITEM_INDEX]) for r in interactions.collect()}
    got = as_lists(recommend.top_n_unseen_in_files(model, folder, 5))
    assert ways == ["_scored_file_by_file"]
    assert len(got) == 60 and all(len(rows) == 5 for rows in got.values())
    assert_same_top_n(got, brute_force_top_n(model, pairs, 5))


def test_top_n_read_in_the_driver_lists_users_with_factors_and_no_interaction(spark, trained, tmp_path):
    model, seen = trained
    without_user_0 = seen.filter(f"{C.USER_INDEX} <> 0")
    without_user_0.write.parquet(str(tmp_path / "interactions"))
    pairs = {(r[C.USER_INDEX], r[C.ITEM_INDEX]) for r in without_user_0.collect()}
    got = as_lists(recommend.top_n_unseen_in_files(model, tmp_path / "interactions", 5))
    assert len(got[0]) == 5
    assert_same_top_n(got, brute_force_top_n(model, pairs, 5))


def test_top_n_read_from_a_folder_python_cannot_open_goes_through_spark(spark, trained, tmp_path, monkeypatch):
    model, seen = trained
    seen.write.parquet(str(tmp_path / "interactions"))
    ways = ways_taken(monkeypatch)
    pairs = {(r[C.USER_INDEX], r[C.ITEM_INDEX]) for r in seen.collect()}
    got = recommend.top_n_unseen_in_files(model, f"file://{tmp_path / 'interactions'}", 5)
    assert_same_top_n(as_lists(got), brute_force_top_n(model, pairs, 5))
    assert ways == ["_top_n"]

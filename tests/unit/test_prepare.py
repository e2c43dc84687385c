"""Validation: each class of bad row gets its reason; the kept rows are clean and indexed."""

from __future__ import annotations

import re

import pytest

from musicrec import columns as C
from musicrec import interaction_files
from musicrec.datasets import detect_format
from musicrec.errors import PipelineError
from musicrec.id_tables import with_ids
from musicrec.prepare import add_indices, check_enough, check_rejects, prepare, write_interactions
from support import job_module

RATINGS = """userId,songId,rating,timestamp
1,10,4.0,100
1,11,3.5,100
2,10,5.0,100
2,10,2.0,200
3,12,4.5,
4,10,five,100
5,10,4.0,yesterday
6,10,9.0,100
7,99,3.0,100
,10,3.0,100
8,10
9,11,NaN,100
"""
SONGS = 'songId,title,artist\n10,"Hello, Goodbye",The Band\n11,"Say ""Hi""",Other\n12,Plain,Third\n'
EXPECTED_REASONS = {
    "duplicate": 1,  # user 2, song 10: the older of the two
    "non_numeric_value": 3,  # "five", "yesterday", NaN
    "rating_out_of_range": 1,  # 9.0
    "unknown_song": 1,  # song 99 has no title
    "missing_field": 1,  # empty user
    "malformed_line": 1,  # "8,10": too few fields
}


@pytest.fixture
def dataset_dir(tmp_path):
    folder = tmp_path / "archive" / "my-data"
    folder.mkdir(parents=True)
    (folder / "ratings.csv").write_text(RATINGS)
    (folder / "songs.csv").write_text(SONGS)
    return tmp_path / "archive"


def run_prepare(spark, dataset_dir):
    fmt, base = detect_format(dataset_dir)
    return prepare(fmt.read_interactions(spark, base, {}), fmt.read_items(spark, base, {}), "explicit", fmt.rating_range)


def test_every_bad_row_is_counted_by_reason(spark, dataset_dir):
    prepared = run_prepare(spark, dataset_dir)
    assert prepared.rejected_by_reason == dict(sorted(EXPECTED_REASONS.items()))
    assert prepared.rows_read == 12
    assert prepared.rows_kept == 4
    rejects = {(r[C.USER_ID], r[C.REJECT_REASON]) for r in prepared.rejects.collect()}
    assert ("8", "malformed_line") in rejects and ("6", "rating_out_of_range") in rejects


def test_duplicates_keep_the_latest_rating(spark, dataset_dir):
    rows = run_prepare(spark, dataset_dir).interactions.collect()
    kept = {(r[C.USER_ID], r[C.ITEM_ID]): r[C.RATING] for r in rows}
    assert kept == {("1", "10"): 4.0, ("1", "11"): 3.5, ("2", "10"): 2.0, ("3", "12"): 4.5}
    assert len(rows) == len(kept)  # one row per user and song: ratings are not summed


def test_a_rejected_rating_never_makes_a_valid_one_a_duplicate(spark, tmp_path):
    """Labelled in one pass: the rejected rows share the window with the valid ones, and must not
    count as a later rating of the same user and song. Rejects keep their raw texts."""
    folder = tmp_path / "archive" / "d"
    folder.mkdir(parents=True)
    (folder / "ratings.csv").write_text(
        "userId,songId,rating,timestamp\n1,10,9.0,300\n1,10,4.0,100\n1,10,3.0,50\n2,10,x,400\n2,10,2.5,100\n"
        "3,99,x,100\n"  # an unknown song too: the first reason stays
    )
    (folder / "songs.csv").write_text(SONGS)
    prepared = run_prepare(spark, tmp_path / "archive")
    assert prepared.rejected_by_reason == {"duplicate": 1, "non_numeric_value": 2, "rating_out_of_range": 1}
    kept = {(r[C.USER_ID], r[C.RATING]) for r in prepared.interactions.collect()}
    assert kept == {("1", 4.0), ("2", 2.5)}
    rejects = {(r[C.USER_ID], r[C.RATING], r[C.TIMESTAMP], r[C.REJECT_REASON]) for r in prepared.rejects.collect()}
    assert rejects == {("1", "9.0", "300", "rating_out_of_range"), ("1", "3.0", "50", "duplicate"),
                       ("2", "x", "400", "non_numeric_value"), ("3", "x", "100", "non_numeric_value")}


def test_titles_with_commas_and_quotes_survive(spark, dataset_dir):
    titles = {r[C.ITEM_ID]: r[C.TITLE] for r in run_prepare(spark, dataset_dir).items.collect()}
    assert titles == {"10": "Hello, Goodbye", "11": 'Say "Hi"', "12": "Plain"}


def test_indices_are_dense_and_the_id_tables_map_them_back(spark, dataset_dir):
    rows = run_prepare(spark, dataset_dir).interactions
    result = add_indices(rows)
    assert (result.user_count, result.song_count) == (3, 3)
    assert result.interactions.columns == [C.USER_INDEX, C.ITEM_INDEX, C.RATING, C.TIMESTAMP]  # no string IDs
    assert result.users.columns == [C.USER_ID, C.USER_INDEX] and result.songs.columns == [C.ITEM_ID, C.ITEM_INDEX]
    users, songs = dict(map(tuple, result.users.collect())), dict(map(tuple, result.songs.collect()))
    assert sorted(users.values()) == [0, 1, 2] and sorted(songs.values()) == [0, 1, 2]  # dense, one per ID
    # Each row under its IDs' indices, and the IDs put back by the tables are the row's own.
    originals = sorted((r[C.USER_ID], r[C.ITEM_ID], r[C.RATING], r[C.TIMESTAMP]) for r in rows.collect())
    assert sorted(tuple(r) for r in result.interactions.collect()) == sorted(
        (users[u], songs[i], rating, stamp) for u, i, rating, stamp in originals)
    back = with_ids(result.interactions, result.id_tables)
    assert back.columns == [C.USER_ID, C.ITEM_ID, C.USER_INDEX, C.ITEM_INDEX, C.RATING, C.TIMESTAMP]
    assert sorted((r[C.USER_ID], r[C.ITEM_ID], r[C.RATING], r[C.TIMESTAMP]) for r in back.collect()) == originals


def test_play_counts_are_summed_on_the_indices(spark):
    # A listen log: s1 three plays by ana; s2 one by ana, three by bo; s3 one each by bo and cy.
    plays = [("ana", "s1", 1.0, 1), ("ana", "s1", 1.0, 3), ("ana", "s1", 2.0, 2), ("ana", "s2", 1.0, None),
             ("bo", "s2", 1.0, 7), ("bo", "s2", 1.0, 9), ("bo", "s2", 1.0, 8), ("bo", "s3", 4.0, 4), ("cy", "s3", 1.0, 6)]
    rows = spark.createDataFrame(plays, f"{C.USER_ID} string, {C.ITEM_ID} string, {C.RATING} double, {C.TIMESTAMP} long")
    result = add_indices(rows, sum_plays=True)
    assert result.interactions.columns == [C.USER_INDEX, C.ITEM_INDEX, C.RATING, C.TIMESTAMP]
    written = [r.asDict() for r in with_ids(result.interactions, result.id_tables).collect()]
    assert sorted((r[C.USER_ID], r[C.ITEM_ID], r[C.RATING], r[C.TIMESTAMP]) for r in written) == [
        ("ana", "s1", 4.0, 3), ("ana", "s2", 1.0, None), ("bo", "s2", 3.0, 9), ("bo", "s3", 4.0, 4), ("cy", "s3", 1.0, 6)]
    # Most rows first: ana and bo have 4 rows each (ties by ID), cy 1; s2 4 rows, s1 3, s3 2.
    users, songs = dict(map(tuple, result.users.collect())), dict(map(tuple, result.songs.collect()))
    assert users == {"ana": 0, "bo": 1, "cy": 2} and songs == {"s2": 0, "s1": 1, "s3": 2}
    assert all((users[r[C.USER_ID]], songs[r[C.ITEM_ID]]) == (r[C.USER_INDEX], r[C.ITEM_INDEX]) for r in written)
    assert (result.user_count, result.song_count, result.summed) == (3, 3, True)


def test_reject_share_over_threshold_fails_with_reasons(spark, dataset_dir):
    prepared = run_prepare(spark, dataset_dir)
    with pytest.raises(PipelineError, match=r"8 of 12 rows \(66.7%\).*max_reject_share.*non_numeric_value: 3"):
        check_rejects(prepared, 0.05, "my-data")
    with pytest.raises(PipelineError, match="at least 10 are needed"):
        check_enough(prepared, "my-data")


def test_unknown_layout_is_a_clear_error(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(PipelineError, match=r"does not hold a known layout.*notes.txt"):
        detect_format(tmp_path)
    with pytest.raises(PipelineError, match="unknown dataset_format"):
        detect_format(tmp_path, "lastfm-9000")


def test_undecodable_ids_are_rejected(spark, tmp_path):
    folder = tmp_path / "enc"
    folder.mkdir()
    (folder / "ratings.csv").write_bytes(b"userId,songId,rating,timestamp\n1,10,4.0,1\nj\xff\xfeo,10,3.0,1\n")
    (folder / "songs.csv").write_text("songId,title,artist\n10,Song,Band\n")
    prepared = run_prepare(spark, tmp_path)
    assert prepared.rejected_by_reason == {"undecodable_text": 1}
    assert prepared.rows_kept == 1


def test_an_item_id_listed_twice_keeps_its_smallest_title(spark, tmp_path):
    folder = tmp_path / "dups"
    folder.mkdir()
    (folder / "ratings.csv").write_text("userId,songId,rating,timestamp\n1,10,4.0,1\n1,11,3.0,1\n")
    # The larger title comes first in the file: "first row wins" would pick it.
    (folder / "songs.csv").write_text("songId,title,artist\n10,Zebra Song,Z\n11,Only,O\n10,Alpha Song,A\n 10 ,Middle Song,M\n")
    items = {r[C.ITEM_ID]: (r[C.TITLE], r[C.ARTIST]) for r in run_prepare(spark, tmp_path).items.collect()}
    assert items == {"10": ("Alpha Song", "A"), "11": ("Only", "O")}


NOON = 1772366400  # 2026-03-01T12:00:00Z
TIMESTAMPS = {  # user: timestamp as written; every accepted form means NOON
    "secs": str(NOON),
    "millis": str(NOON * 1000),
    "iso-z": "2026-03-01T12:00:00Z",
    "iso-offset": "2026-03-01 14:00:00+02:00",
    "iso-fraction": "2026-03-01T12:00:00.123Z",
    "secs-fraction": f"{NOON}.9",
}


def test_seconds_milliseconds_and_iso_timestamps_become_the_same_epoch_seconds(spark, tmp_path):
    edges = {"below-1e11": "99999999999", "at-1e11": "100000000000"}  # year 5138 in seconds; 1973 in ms
    garbage = {"time-only": "12:00:00", "words": "soon", "infinite": "Infinity"}
    # Explicit duplicates are ordered by the normalised time: the later rating is in seconds, the
    # earlier in milliseconds (a larger number); the other pair mixes ISO and seconds.
    duplicates = [("dup-ms", "1.0", str(NOON + 1)), ("dup-ms", "5.0", str(NOON * 1000)),
                  ("dup-iso", "2.0", "2026-03-01T12:00:01Z"), ("dup-iso", "3.0", str(NOON))]
    rows = [(user, "4.0", ts) for user, ts in {**TIMESTAMPS, **edges, **garbage}.items()] + duplicates
    (tmp_path / "ts").mkdir()
    (tmp_path / "ts" / "ratings.csv").write_text("userId,songId,rating,timestamp\n" + "".join(f"{u},10,{r},{t}\n" for u, r, t in rows))
    (tmp_path / "ts" / "songs.csv").write_text("songId,title,artist\n10,Song,Band\n")
    prepared = run_prepare(spark, tmp_path)
    kept = {r[C.USER_ID]: (r[C.RATING], r[C.TIMESTAMP]) for r in prepared.interactions.collect()}
    assert {user: kept[user][1] for user in TIMESTAMPS} == dict.fromkeys(TIMESTAMPS, NOON)
    assert (kept["below-1e11"][1], kept["at-1e11"][1]) == (99_999_999_999, 100_000_000)
    assert (kept["dup-ms"], kept["dup-iso"]) == ((1.0, NOON + 1), (2.0, NOON + 1))
    assert prepared.rejected_by_reason == {"duplicate": 2, "non_numeric_value": 3}
    rejected = {r[C.USER_ID]: r[C.TIMESTAMP] for r in prepared.rejects.collect() if r[C.REJECT_REASON] == "non_numeric_value"}
    assert rejected == garbage  # as written


def raw_plays(spark, rows):
    """Raw interactions as an adapter returns them: (user, song, value, timestamp) strings."""
    schema = ", ".join(f"{name} string" for name in (C.USER_ID, C.ITEM_ID, C.RATING, C.TIMESTAMP, C.RAW_LINE))
    return spark.createDataFrame([(*row, None) for row in rows], schema)


def songs_frame(spark, ids):
    return spark.createDataFrame([(i, f"Title {i}", None) for i in ids], f"{C.ITEM_ID} string, {C.TITLE} string, {C.ARTIST} string")


def test_repeated_plays_are_summed_with_the_latest_timestamp(spark):
    plays = [
        ("ana", "s1", "2", "100"), ("ana", "s1", "3", ""), ("ana", "s1", "1", str(NOON * 1000)),  # 6 plays, latest NOON
        ("ana", "s2", "4", ""),  # once, no timestamp
        ("bo", "s1", "1", "50"), ("bo", "s1", "0", "60"),  # the 0 is rejected, not summed
        ("bo", "s9", "1", "1"), ("bo", "s9", "2", "2"),  # unknown song: rejected row by row
    ]
    prepared = prepare(raw_plays(spark, plays), songs_frame(spark, ["s1", "s2"]), "implicit", None)
    kept = {(r[C.USER_ID], r[C.ITEM_ID]): (r[C.RATING], r[C.TIMESTAMP]) for r in prepared.interactions.collect()}
    assert kept == {("ana", "s1"): (6.0, NOON), ("ana", "s2"): (4.0, None), ("bo", "s1"): (1.0, 50)}
    assert prepared.rejected_by_reason == {"non_positive_count": 1, "unknown_song": 2}
    assert (prepared.rows_read, prepared.rows_kept, prepared.plays_aggregated, prepared.interactions_kept) == (8, 5, 2, 3)
    assert prepared.rows_read == prepared.rows_kept + prepared.rows_rejected


def test_many_plays_of_few_songs_are_too_few_interactions(spark):
    plays = [("ana", f"s{i % 3}", "1", str(i)) for i in range(12)]  # 12 good rows, 3 user-song pairs
    prepared = prepare(raw_plays(spark, plays), songs_frame(spark, ["s0", "s1", "s2"]), "implicit", None)
    assert (prepared.rows_kept, prepared.plays_aggregated) == (12, 9)
    with pytest.raises(PipelineError, match=r"9 repeated plays summed.*giving 3 user-song interactions; at least 10"):
        check_enough(prepared, "plays")


def test_preprocess_refuses_too_few_summed_plays_and_keeps_nothing_of_its_tables(spark, tmp_path):
    # 12 plays of 3 user-song pairs: enough rows, too few interactions once summed (known after the write).
    from argparse import Namespace

    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "log.csv").write_text("listener,track\n" + "".join(f"ana,t{i % 3}\n" for i in range(12)))
    mapping = '{"file": "log.csv", "user": "listener", "item": "track", "feedback": "implicit"}'
    args = Namespace(run_dir=str(tmp_path / "run"), dataset_dir=str(tmp_path / "data"), dataset_format="auto",
                     column_mapping=mapping, feedback="auto", max_reject_share=0.05)
    with pytest.raises(PipelineError, match=r"9 repeated plays summed.*giving 3 user-song interactions; at least 10"):
        job_module("preprocess").work(args)
    left = sorted(p.name for p in (tmp_path / "run").iterdir())
    assert left == ["preprocess_rejects"], left  # no preprocess folder, no staging leftovers


# Settings under which a small write is still several files: 4 shuffle partitions that adaptive
# execution does not merge; or adaptive execution merging tiny partitions, with the settings
# that would scatter users if write_whole_users did not pin them (a second shuffle by every
# grouping key, files cut every 3 records).
SEVERAL_FILES = {
    "fixed": {"spark.sql.adaptive.enabled": "false", "spark.sql.shuffle.partitions": "4"},
    "adaptive": {"spark.sql.adaptive.enabled": "true", "spark.sql.shuffle.partitions": "6",
                 "spark.sql.adaptive.coalescePartitions.parallelismFirst": "false",
                 "spark.sql.adaptive.coalescePartitions.minPartitionSize": "1",
                 "spark.sql.adaptive.advisoryPartitionSizeInBytes": "2000", "spark.sql.files.maxRecordsPerFile": "3",
                 "spark.sql.requireAllClusterKeysForDistribution": "true"},
}


def several_files(spark, settings: str = "fixed"):
    from musicrec.spark_config import session_settings

    return session_settings(spark, SEVERAL_FILES[settings])


@pytest.mark.parametrize("settings", sorted(SEVERAL_FILES))
def test_summed_play_counts_are_written_with_each_users_rows_in_one_file_and_marked(spark, tmp_path, settings):
    """recommend scores such files one by one (musicrec.interaction_files): a user split over two
    files would get two lists, each missing the other file's seen songs."""
    import pyarrow.parquet as pq

    plays = [(f"u{u}", f"s{(u * 7 + k % 8) % 30}", 1.0, k) for u in range(40) for k in range(12)]  # repeats to sum
    rows = spark.createDataFrame(plays, f"{C.USER_ID} string, {C.ITEM_ID} string, {C.RATING} double, {C.TIMESTAMP} long")
    folder = tmp_path / "interactions"
    with several_files(spark, settings):
        indexed = add_indices(rows, sum_plays=True)
        written = write_interactions(indexed, folder)
    # The sum reuses the shuffle by user (under the session's settings): one exchange, hashed on
    # user_index alone.
    plan = indexed.interactions._jdf.queryExecution().executedPlan().toString()
    assert re.findall(r"Exchange (\w+)\(([^,)#]*)", plan) == [("hashpartitioning", C.USER_INDEX)], plan
    files = interaction_files.part_files(folder)
    assert written == 40 * 8 and len(files) >= 3, files  # the users are spread over several files
    file_of = {}
    for name in files:
        for user in set(pq.read_table(name, columns=[C.USER_INDEX]).column(0).to_pylist()):
            assert user not in file_of, f"user {user} is in {file_of[user]} and {name}"
            file_of[user] = name
    assert len(file_of) == 40
    assert interaction_files.has_whole_users(folder)


def test_ratings_are_written_as_they_come_and_not_marked_as_whole_users(spark, dataset_dir, tmp_path):
    """Ratings are not shuffled at the write: recommend must group them with Spark."""
    with several_files(spark):
        write_interactions(add_indices(run_prepare(spark, dataset_dir).rows), tmp_path / "interactions")
    assert interaction_files.part_files(tmp_path / "interactions")
    assert not interaction_files.has_whole_users(tmp_path / "interactions")


def test_only_local_folders_of_parquet_parts_are_read_file_by_file(tmp_path):
    folder = tmp_path / "interactions"
    assert interaction_files.part_files(folder) is None  # missing
    folder.mkdir()
    (folder / "_SUCCESS").write_text("")
    (folder / ".part-00000.parquet.crc").write_text("")
    assert interaction_files.part_files(folder) is None  # no data file
    for name in ("part-00001.parquet", "part-00000.parquet"):
        (folder / name).write_bytes(b"")
    assert interaction_files.part_files(folder) == [str(folder / "part-00000.parquet"), str(folder / "part-00001.parquet")]
    assert interaction_files.part_files(f"file://{folder}") is None  # a URI: Spark's to read
    assert not interaction_files.has_whole_users(folder)
    (folder / interaction_files.LAYOUT_FILE).write_text("{not json")
    assert not interaction_files.has_whole_users(folder)
    interaction_files.mark_whole_users(folder)
    assert interaction_files.has_whole_users(folder)

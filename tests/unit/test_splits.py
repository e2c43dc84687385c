"""The three splits, on tiny frames where the wrong rows on the wrong side would show."""

from __future__ import annotations

import math

import pytest

from musicrec import columns as C
from musicrec import splits
from musicrec.errors import PipelineError
from musicrec.id_tables import IdTables
from musicrec.splits import split_interactions, validation_split, write_split

SCHEMA = f"{C.USER_ID} string, {C.ITEM_ID} string, {C.RATING} double, {C.TIMESTAMP} long"


def frame(spark, rows, partitions=2):
    return spark.createDataFrame(rows, SCHEMA).repartition(partitions)


def pairs(df):
    return {(r[C.USER_ID], r[C.ITEM_ID]) for r in df.collect()}


def test_bad_fraction_and_kind_are_refused(spark):
    df = frame(spark, [("u", "s", 1.0, 1)])
    for fraction in (0.0, 1.0, 1.5):
        with pytest.raises(PipelineError, match="test_fraction"):
            split_interactions(df, "random", fraction, 1)
    with pytest.raises(PipelineError, match="unknown split 'sideways'"):
        split_interactions(df, "sideways", 0.2, 1)


def test_random_split_keeps_each_interaction_on_its_side_across_snapshots(spark):
    rows = [(f"u{u}", f"s{s}", 3.0, 1000 + u * 40 + s) for u in range(30) for s in range(40) if (u + s) % 3]
    train, test = split_interactions(frame(spark, rows, 2), "random", 0.25, 7)
    assert pairs(train) | pairs(test) == {(u, s) for u, s, _, _ in rows} and not pairs(train) & pairs(test)
    assert abs(len(pairs(test)) / len(rows) - 0.25) < 0.05
    # Tomorrow's snapshot: more rows, other partitioning. Yesterday's test rows are still held out.
    more = rows + [(f"u{u}", f"new{s}", 4.0, 9000 + s) for u in range(30) for s in range(5)]
    train2, test2 = split_interactions(frame(spark, more, 5), "random", 0.25, 7)
    assert pairs(test) <= pairs(test2) and pairs(train) <= pairs(train2)
    # Another seed draws another split.
    _, other = split_interactions(frame(spark, rows), "random", 0.25, 8)
    assert pairs(other) != pairs(test)


def test_stratified_split_holds_out_each_users_share_and_keeps_every_test_user_known(spark):
    counts = {"a": 1, "b": 2, "c": 4, "d": 10, "e": 7}
    rows = [(user, f"s{i}", 4.0, i) for user, n in counts.items() for i in range(n)]
    train, test = split_interactions(frame(spark, rows), "stratified", 0.25, 3)
    held = {user: sum(1 for u, _ in pairs(test) if u == user) for user in counts}
    # round half up of n * 0.25, at most n - 1: 1 -> 0, 2 -> 1 (0.5 up), 4 -> 1, 10 -> 3 (2.5 up), 7 -> 2
    assert held == {"a": 0, "b": 1, "c": 1, "d": 3, "e": 2}
    assert {u for u, _ in pairs(test)} <= {u for u, _ in pairs(train)}
    assert not pairs(train) & pairs(test) and len(pairs(train)) + len(pairs(test)) == len(rows)


def stratified_by_definition(interactions, fraction, seed):
    """The test rows of the stratified split as its definition reads: per user, the first
    held_out_count rows ordered by (draw, song ID), as a window over every row."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    per_user = Window.partitionBy(C.USER_ID)
    lots = (
        interactions.withColumn(splits.DRAW, splits.draw(seed))
        .withColumn("_n", F.count("*").over(per_user).cast("bigint"))
        .withColumn("_place", F.row_number().over(per_user.orderBy(splits.DRAW, C.ITEM_ID)))
    )
    return lots.filter(F.col("_place") <= splits.held_out_count(F.col("_n"), fraction))


@pytest.mark.parametrize("draws", ["hashed", "three values"])
@pytest.mark.parametrize("with_index", [False, True])
def test_stratified_split_is_its_definition_even_with_ties_at_the_cut(spark, monkeypatch, draws, with_index):
    from pyspark.sql import functions as F

    if draws == "three values":  # most cuts then fall inside a run of equal draws
        monkeypatch.setattr(splits, "draw", lambda seed: (
            F.pmod(F.xxhash64(F.lit(seed), F.col(C.USER_ID), F.col(C.ITEM_ID)), F.lit(3)) / F.lit(3.0)).alias(splits.DRAW))
    rows = [(f"u{u}", f"s{(u * 7 + i) % 40}", 1.0, i) for u in range(40) for i in range(1 + u % 13)]
    df = frame(spark, rows, 3)
    if with_index:  # the split groups by user_index when the frame has it
        df = df.withColumn(C.USER_INDEX, F.substring(C.USER_ID, 2, 9).cast("int"))
    train, test = split_interactions(df, "stratified", 0.3, 5)
    assert pairs(test) == pairs(stratified_by_definition(df, 0.3, 5))
    assert pairs(train) | pairs(test) == {(u, s) for u, s, _, _ in rows} and not pairs(train) & pairs(test)
    assert train.columns == df.columns


def test_temporal_split_holds_out_the_latest(spark):
    rows = [(f"u{i % 7}", f"s{i}", 1.0, 1_000 + i * 10) for i in range(100)]
    train, test = split_interactions(frame(spark, rows), "temporal", 0.2, 1)
    train_times = [r[C.TIMESTAMP] for r in train.collect()]
    test_times = [r[C.TIMESTAMP] for r in test.collect()]
    assert max(train_times) < min(test_times)
    assert len(test_times) == 20 and len(train_times) == 80


def test_temporal_split_keeps_a_tie_at_the_cut_in_training(spark):
    rows = [(f"u{i}", "s", 1.0, 5 if i < 6 else 9) for i in range(10)]  # 60% at t=5, 40% at t=9
    train, test = split_interactions(frame(spark, rows), "temporal", 0.5, 1)
    assert {r[C.TIMESTAMP] for r in test.collect()} == {9}
    assert {r[C.TIMESTAMP] for r in train.collect()} == {5}


def test_temporal_split_needs_timestamps(spark):
    with pytest.raises(PipelineError, match="has none; use split 'random' or 'stratified'"):
        split_interactions(frame(spark, [("u", f"s{i}", 1.0, None) for i in range(5)]), "temporal", 0.2, 1)
    some = [("u", f"s{i}", 1.0, i if i % 2 else None) for i in range(6)]
    with pytest.raises(PipelineError, match="3 of 6 have none"):
        split_interactions(frame(spark, some), "temporal", 0.2, 1)


def test_validation_split_comes_from_the_training_split_only(spark):
    rows = [(f"u{u}", f"s{s}", 3.0, u * 100 + s) for u in range(10) for s in range(12)]
    train, test = split_interactions(frame(spark, rows), "stratified", 0.2, 5)
    fit_part, validation = validation_split(train, "stratified", 0.2, 5)
    assert pairs(fit_part) | pairs(validation) == pairs(train)
    assert not (pairs(validation) & pairs(test))
    assert math.isclose(len(pairs(validation)), 0.2 * len(pairs(train)), abs_tol=len(pairs(train)) * 0.05)
    # Tuning reads the training split as written, without the IDs: the ID tables give the same split.
    _, ids, with_both = indexed(spark, rows)
    train_both, _ = split_interactions(with_both, "stratified", 0.2, 5)
    by_index = {name: {(r[C.USER_INDEX], r[C.ITEM_INDEX]) for r in side.collect()}
                for name, side in zip(("fit", "validation"), validation_split(train_both, "stratified", 0.2, 5))}
    from_tables = validation_split(train_both.drop(C.USER_ID, C.ITEM_ID), "stratified", 0.2, 5, ids)
    assert {name: {(r[C.USER_INDEX], r[C.ITEM_INDEX]) for r in side.collect()}
            for name, side in zip(("fit", "validation"), from_tables)} == by_index


def indexed(spark, rows, partitions=2):
    """(the rows as preprocess writes them: indices, no IDs; its ID tables; the rows with both).
    Indices in reverse order of the IDs, so that a draw hashing indices would differ."""
    with_both = frame(spark, rows, partitions)
    users = sorted({r[0] for r in rows}, reverse=True)
    songs = sorted({r[1] for r in rows}, reverse=True)
    ids = IdTables(
        spark.createDataFrame([(u, i) for i, u in enumerate(users)], f"{C.USER_ID} string, {C.USER_INDEX} int"),
        spark.createDataFrame([(s, i) for i, s in enumerate(songs)], f"{C.ITEM_ID} string, {C.ITEM_INDEX} int"),
    )
    with_both = with_both.join(ids.users, C.USER_ID).join(ids.songs, C.ITEM_ID).select(
        C.USER_ID, C.ITEM_ID, C.USER_INDEX, C.ITEM_INDEX, C.RATING, C.TIMESTAMP)
    return with_both.drop(C.USER_ID, C.ITEM_ID), ids, with_both


@pytest.mark.parametrize("kind", ["random", "stratified", "temporal"])
def test_the_written_split_is_the_split_without_the_ids(spark, tmp_path, kind):
    rows = [(f"u{u}", f"s{s}", float(s % 5), 1000 + u * 40 + s) for u in range(12) for s in range(30) if (u * s) % 4]
    df, ids, with_both = indexed(spark, rows, 3)
    train_dir, test_dir = write_split(df, kind, 0.25, 7, tmp_path / "split", ids)
    assert (train_dir, test_dir) == (tmp_path / "split" / "train", tmp_path / "split" / "test")
    assert sorted(p.name for p in (tmp_path / "split").iterdir()) == ["test", "train"]
    # The same rows on the same sides as a split of the rows with their IDs: the draw hashes the
    # IDs from the ID tables, never the indices (which change between snapshots).
    train, test = split_interactions(with_both, kind, 0.25, 7)
    for written, expected in ((train_dir, train), (test_dir, test)):
        read = spark.read.parquet(str(written))
        assert read.columns == df.columns
        assert sorted(map(tuple, read.collect())) == sorted(map(tuple, expected.drop(C.USER_ID, C.ITEM_ID).collect()))
        assert read.count() > 0
    # Rows that carry their IDs already need no tables, and are written without them too.
    written_ids = write_split(with_both, kind, 0.25, 7, tmp_path / "from_ids")
    assert [sorted(map(tuple, spark.read.parquet(str(side)).collect())) for side in written_ids] == [
        sorted(map(tuple, spark.read.parquet(str(side)).collect())) for side in (train_dir, test_dir)]


def test_a_split_that_hashes_ids_needs_the_id_tables(spark, tmp_path):
    df, _, _ = indexed(spark, [(f"u{u}", f"s{s}", 1.0, u * 10 + s) for u in range(4) for s in range(5)])
    for kind in ("random", "stratified"):
        with pytest.raises(PipelineError, match="no ID tables were given.*clear the run from preprocess on"):
            write_split(df, kind, 0.25, 7, tmp_path / kind)
    train_dir, test_dir = write_split(df, "temporal", 0.25, 7, tmp_path / "temporal")  # by timestamp: no IDs needed
    assert spark.read.parquet(str(test_dir)).count() == 5


def test_a_side_without_rows_is_written_as_an_empty_table(spark, tmp_path):
    # One interaction per user: stratified holds none out (every user keeps at least one).
    df, ids, _ = indexed(spark, [(f"u{u}", "s", 1.0, u) for u in range(5)])
    _, test_dir = write_split(df, "stratified", 0.2, 1, tmp_path, ids)
    empty = spark.read.parquet(str(test_dir))
    assert empty.count() == 0 and empty.columns == df.columns


def test_the_newest_timestamp_is_read_from_the_written_files_footers(spark, tmp_path):
    # Several files, nulls among the timestamps, the newest in no particular file: train reads
    # train_max_timestamp (the champion's fair rows start after it) from the footers, not a scan.
    rows = [(f"u{u}", f"s{s}", 1.0, None if (u + s) % 3 == 0 else 10_000 - (u * 37 + s * 11) % 997)
            for u in range(20) for s in range(15)]
    df = frame(spark, rows, 4)
    train_dir, test_dir = write_split(df, "random", 0.3, 5, tmp_path / "split")
    assert len(list(train_dir.glob("*.parquet"))) > 1
    for written in (train_dir, test_dir):
        expected = spark.read.parquet(str(written)).agg({C.TIMESTAMP: "max"}).first()[0]
        assert expected is not None and splits.newest_timestamp(written) == expected
    no_times = write_split(frame(spark, [(f"u{u}", "s", 1.0, None) for u in range(6)], 2), "random", 0.5, 1, tmp_path / "none")
    assert [splits.newest_timestamp(side) for side in no_times] == [None, None]
    # An empty side (one interaction per user: stratified holds none out) has no row group.
    one_each = write_split(frame(spark, [(f"u{u}", "s", 1.0, u) for u in range(5)]), "stratified", 0.2, 1, tmp_path / "one")
    assert [splits.newest_timestamp(side) for side in one_each] == [4, None]

"""musicrec.spark_config: runtime settings scoped to a block, and where preprocess uses them."""

import pytest

from musicrec import columns as C
from musicrec.prepare import sum_repeated_plays
from musicrec.spark_config import BYPASS_PARTIAL_AGGREGATION, session_settings

KEY = "spark.sql.execution.bypassPartialAggregation"


def test_settings_hold_inside_the_block_and_are_restored_after_it_even_on_error(spark):
    spark.conf.set("spark.sql.musicrec.test", "before")
    with pytest.raises(RuntimeError, match="inside"):
        with session_settings(spark, {"spark.sql.musicrec.test": "inside", "spark.sql.musicrec.unset": "x"}):
            assert spark.conf.get("spark.sql.musicrec.test") == "inside"
            assert spark.conf.get("spark.sql.musicrec.unset") == "x"
            raise RuntimeError("inside")
    assert spark.conf.get("spark.sql.musicrec.test") == "before"
    assert spark.conf.get("spark.sql.musicrec.unset", None) is None
    spark.conf.unset("spark.sql.musicrec.test")


def test_inside_the_block_an_aggregation_is_planned_in_one_phase(spark):
    frame = spark.createDataFrame([("u1", "s1", 2.0, 10), ("u1", "s1", 3.0, 20)], f"{C.USER_ID} string, {C.ITEM_ID} string, {C.RATING} double, {C.TIMESTAMP} long")

    def plan():
        return sum_repeated_plays(frame)._jdf.queryExecution().executedPlan().toString()

    assert "partial_sum" in plan()
    with session_settings(spark, BYPASS_PARTIAL_AGGREGATION):
        assert "partial_sum" not in plan() and "sum(" in plan()


def test_play_counts_are_summed_inside_the_block_as_they_are_written_and_nothing_else(spark, tmp_path, monkeypatch):
    from musicrec.prepare import add_indices, write_interactions

    writer_class = type(spark.range(1).write)
    original = writer_class.parquet
    during = []  # the setting when each write is planned and run

    def watched(writer, path, *args, **kwargs):
        during.append(spark.conf.get(KEY, None))
        return original(writer, path, *args, **kwargs)

    monkeypatch.setattr(writer_class, "parquet", watched)
    rows = spark.createDataFrame(
        [("u1", "s1", 2.0, 10), ("u1", "s1", 3.0, 20), ("u2", "s1", 1.0, 5)],
        f"{C.USER_ID} string, {C.ITEM_ID} string, {C.RATING} double, {C.TIMESTAMP} long",
    )
    assert write_interactions(add_indices(rows, sum_plays=True), tmp_path / "plays") == 2
    assert write_interactions(add_indices(rows), tmp_path / "ratings") is None  # not summed: a row per row
    assert spark.read.parquet(str(tmp_path / "ratings")).count() == 3
    assert [value in ("true",) for value in during] == [True, False]
    assert spark.conf.get(KEY, None) in (None, "false")
    written = spark.read.parquet(str(tmp_path / "plays"))
    assert written.columns == [C.USER_INDEX, C.ITEM_INDEX, C.RATING, C.TIMESTAMP]  # the IDs stay in the ID tables
    assert sorted((r[C.USER_INDEX], r[C.RATING], r[C.TIMESTAMP]) for r in written.collect()) == [(0, 5.0, 20), (1, 1.0, 5)]


def test_the_labeled_rows_are_cached_uncompressed_and_the_setting_is_restored(spark, monkeypatch):
    # Spark's columnar compression made preprocess's labeling cache 5 s slower to build at 25M
    # play counts; the setting must hold while the counts build the cache, and only then.
    from musicrec.prepare import prepare
    from musicrec.spark_config import UNCOMPRESSED_CACHE

    (key, value), = UNCOMPRESSED_CACHE.items()
    frame_class = type(spark.range(1))
    original = frame_class.collect
    during = []  # the setting at each collect

    def watched(frame, *args, **kwargs):
        during.append(spark.conf.get(key, None))
        return original(frame, *args, **kwargs)

    monkeypatch.setattr(frame_class, "collect", watched)
    raw = spark.createDataFrame(
        [("u1", "s1", "2", "10", None), ("u2", "s1", "two", "5", None), ("u2", "s1", "3", "7", None)],
        f"{C.USER_ID} string, {C.ITEM_ID} string, {C.RATING} string, {C.TIMESTAMP} string, {C.RAW_LINE} string",
    )
    items = spark.createDataFrame([("s1", "A Song", "A Band")], f"{C.ITEM_ID} string, {C.TITLE} string, {C.ARTIST} string")
    prepared = prepare(raw, items, "implicit", None)
    assert during[:1] == [value]  # the counts by reason: the collect that builds the cache
    assert spark.conf.get(key, None) in (None, "true")
    assert (prepared.rows_kept, prepared.rejected_by_reason) == (2, {"non_numeric_value": 1})
    monkeypatch.undo()
    assert sorted(r[C.RATING] for r in prepared.rows.collect()) == [2.0, 3.0]


def test_a_file_is_read_in_splits_per_core_unless_the_setting_is_set(spark, tmp_path):
    from musicrec.spark_config import FILE_SPLITS_PER_CORE, MIN_FILE_SPLITS, get_spark, split_files_per_core

    # 12 MB of CSV and a 1 MB open cost: Spark's own rule (one split per core) gives 2 splits on
    # local[2]; the jobs' rule gives FILE_SPLITS_PER_CORE per core.
    path = tmp_path / "plays.csv"
    path.write_text("".join(f"{i},{i % 97},{i % 5}.0,{1700000000 + i}\n" for i in range(500_000)))
    cores = spark.sparkContext.defaultParallelism
    before = spark.conf.get(MIN_FILE_SPLITS, None)  # a job's work() may have set it on this shared session
    spark.conf.unset(MIN_FILE_SPLITS)
    try:
        with session_settings(spark, {"spark.sql.files.openCostInBytes": str(1 << 20)}):
            assert spark.read.csv(str(path)).rdd.getNumPartitions() == cores
            split_files_per_core(spark)
            assert spark.conf.get(MIN_FILE_SPLITS) == str(FILE_SPLITS_PER_CORE * cores)
            assert spark.read.csv(str(path)).rdd.getNumPartitions() == FILE_SPLITS_PER_CORE * cores
        spark.conf.set(MIN_FILE_SPLITS, "3")  # set by the user: kept
        split_files_per_core(spark)
        assert spark.conf.get(MIN_FILE_SPLITS) == "3"
        spark.conf.unset(MIN_FILE_SPLITS)
        assert get_spark("musicrec-tests").conf.get(MIN_FILE_SPLITS) == str(FILE_SPLITS_PER_CORE * cores)  # every job's session
    finally:
        spark.conf.unset(MIN_FILE_SPLITS)
        if before is not None:
            spark.conf.set(MIN_FILE_SPLITS, before)

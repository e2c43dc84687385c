"""musicrec.id_tables: reading preprocess's ID tables."""

from musicrec import columns as C
from musicrec.id_tables import read_id_tables


def jobs_run_by(spark, group: str, action) -> list[int]:
    """The Spark jobs `action()` runs, tagged with job group `group`."""
    context = spark.sparkContext
    context.setJobGroup(group, group)
    try:
        action()
    finally:
        context._jsc.clearJobGroup()  # the group, its description and interrupt flag
    context._jsc.sc().listenerBus().waitUntilEmpty()  # the status store is filled by a listener
    return context.statusTracker().getJobIdsForGroup(group)


def test_the_id_tables_are_read_with_their_schema_and_no_spark_job(spark, tmp_path):
    users_path, songs_path = str(tmp_path / "user_ids"), str(tmp_path / "song_ids")
    spark.createDataFrame([("u7", 0), ("u3", 1)], f"{C.USER_ID} string, {C.USER_INDEX} int").write.parquet(users_path)
    spark.createDataFrame([("s9", 0)], f"{C.ITEM_ID} string, {C.ITEM_INDEX} int").write.parquet(songs_path)
    read = []
    # Inferring a parquet schema runs a job (the control); every step reads these tables.
    assert jobs_run_by(spark, "musicrec-test-infer", lambda: spark.read.parquet(users_path))
    assert jobs_run_by(spark, "musicrec-test-read-id-tables",
                       lambda: read.append(read_id_tables(spark, users_path, songs_path))) == []
    (ids,) = read
    assert ids.users.dtypes == [(C.USER_ID, "string"), (C.USER_INDEX, "int")]
    assert ids.songs.dtypes == [(C.ITEM_ID, "string"), (C.ITEM_INDEX, "int")]
    assert sorted(map(tuple, ids.users.collect())) == [("u3", 1), ("u7", 0)]
    assert [tuple(row) for row in ids.songs.collect()] == [("s9", 0)]
    assert read_id_tables(spark, users_path, "") is None  # a run whose preprocess wrote none
